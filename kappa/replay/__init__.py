"""Kappa reprocessing (`kappa replay`): re-run a job over the log into versioned outputs, compare, promote.

Changed logic is not patched into old results: the job is run again over the log into versioned
outputs (`device_agg_1m_v2`, `alerts_v2`, ...), exactly those its `OUTPUTS` declare (kappa.outputs),
compared with what readers see now, and promoted by switching the job's reader views in one
transaction. A replay reads exactly the offsets captured when it started (recorded in
`replay_versions`), so it finishes, and re-running it gives the same rows.

`--follow` is the classic Kappa handover instead: the same job from the same start offsets, but
unbounded, on the cluster. The command returns once the job has caught up with the end offsets
captured at start (state `following`) and leaves it running as the version's live job.

Modules: offsets (ranges, Kafka), versions (the replay_versions registry), watch (job health and
progress lines), runner (running and watching the job), compare, promote (promote and drop); its commands are in
kappa.cli.replay.
"""

from kappa.errors import KappaError


class ReplayError(KappaError):
    """A replay could not be started, compared, promoted or dropped, or its job failed."""
