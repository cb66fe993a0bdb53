-- `kappa replay run JOB --as V --follow`: the version is computed by one unbounded job on the cluster
-- that starts at start_offsets and keeps running; once its committed offsets reach end_offsets (the
-- end captured at start) the version is 'following': caught up, and kept current by that job.
-- job_id is that Flink job (NULL for bounded replays): `drop` refuses while it runs, and a following
-- version that is un-promoted returns to 'following', not 'finished'.
ALTER TABLE replay_versions ADD COLUMN IF NOT EXISTS job_id TEXT;

ALTER TABLE replay_versions DROP CONSTRAINT IF EXISTS replay_versions_state_check;
ALTER TABLE replay_versions ADD CONSTRAINT replay_versions_state_check
  CHECK (state IN ('running', 'finished', 'failed', 'promoted', 'following'));
