"""Refuse to restore a job from a savepoint older than what its Iceberg sinks already committed.

apache/iceberg#10892 (open): Iceberg's Flink committer, restored from a checkpoint or savepoint,
looks up the highest checkpoint id the *restored* job already committed to the table
(`flink.max-committed-checkpoint-id` in the snapshot summaries of that `flink.job-id`) and skips
every later checkpoint whose id is not above it, as if already committed. Checkpoint ids continue
from the savepoint's, so a job restored from savepoint m of a job that had committed up to n > m
silently drops the data files of its checkpoints m+1..n: records lost, with no error. Restoring the
newest savepoint (the one `kappa stop --savepoint` prints) or the latest checkpoint (HA recovery) is
safe, since nothing above it was committed.

So `kappa submit --from-savepoint` compares the savepoint's checkpoint id (from its `_metadata`) with
what the tables the job writes have committed in their current history, and refuses with the way
out: replay into a new version (new tables, no sink state: the Kappa way to recompute a range), or
roll the tables back to a snapshot at or below the savepoint first (a rolled-back history no longer
holds the later commits, so the check then passes).
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from kappa.config import Config
from kappa.errors import KappaError

# Flink's checkpoint metadata file: int magic number, int serializer version, then (every version
# since 2) the checkpoint id as a long; big-endian (java.io.DataOutputStream).
METADATA_MAGIC = 0x4960672D
_HEADER = struct.Struct(">iiq")


class SavepointTooOld(KappaError):
    """The savepoint predates commits its job's Iceberg sinks already made (apache/iceberg#10892)."""


def checkpoint_id(metadata: bytes) -> int:
    """The checkpoint id in the head of a `_metadata` file."""
    if len(metadata) < _HEADER.size:
        raise KappaError("not a Flink checkpoint metadata file: too short")
    magic, _version, checkpoint = _HEADER.unpack_from(metadata)
    if magic != METADATA_MAGIC:
        raise KappaError(f"not a Flink checkpoint metadata file (magic {magic:#x})")
    return int(checkpoint)


def job_prefix(savepoint: str) -> str:
    """The hex prefix of the job id a savepoint's folder is named after (`savepoint-<6 hex>-<12 hex>`)."""
    name = savepoint.rstrip("/").rsplit("/", 1)[-1]
    parts = name.split("-")
    if len(parts) != 3 or parts[0] != "savepoint":
        raise KappaError(f"{savepoint}: not a savepoint folder (savepoint-<job>-<id>)")
    return parts[1]


def read_metadata(config: Config, savepoint: str) -> bytes:
    """The head of `<savepoint>/_metadata`, on the local disk (`file:` URIs too) or the stack's S3."""
    if savepoint.startswith(("s3://", "s3a://", "s3p://")):
        from kappa.stack.objectstore import s3_filesystem

        with s3_filesystem(config).open_input_stream(f"{savepoint.split('://', 1)[1].rstrip('/')}/_metadata") as f:
            return bytes(f.read(_HEADER.size))
    local = savepoint.removeprefix("file://") if savepoint.startswith("file://") else savepoint.removeprefix("file:")
    with open(Path(local) / "_metadata", "rb") as f:
        return f.read(_HEADER.size)


def committed_by(snapshots: Iterable[Any], prefix: str) -> int | None:
    """The highest `flink.max-committed-checkpoint-id` among snapshots committed by a job whose id starts
    with `prefix` (snapshot summaries as Iceberg's Flink committer writes them)."""
    ids = [int(summary["flink.max-committed-checkpoint-id"]) for summary in snapshots
           if str(summary.get("flink.job-id", "")).startswith(prefix)
           and "flink.max-committed-checkpoint-id" in summary]
    return max(ids) if ids else None


def _history(table: Any) -> list[dict[str, str]]:
    """The summaries of the table's current snapshot and its ancestors (a rolled-back branch excluded)."""
    from pyiceberg.table.snapshots import ancestors_of

    current = table.current_snapshot()
    if current is None:
        return []
    return [dict(s.summary.additional_properties) if s.summary else {} for s in ancestors_of(current, table.metadata)]


def check_restore(config: Config, job: str, suffix: str, savepoint: str) -> None:
    """Raise SavepointTooOld if a table the job writes committed a later checkpoint of the savepoint's job."""
    from kappa import lake, outputs

    tables = outputs.job_outputs(job).lake
    if not tables:
        return
    restored = checkpoint_id(read_metadata(config, savepoint))
    prefix = job_prefix(savepoint)
    catalog = lake.catalog(config)
    ahead = {}
    for table in tables:
        identifier = table.identifier(config, suffix)
        if not catalog.table_exists(identifier):
            continue
        committed = committed_by(_history(catalog.load_table(identifier)), prefix)
        if committed is not None and committed > restored:
            ahead[identifier] = committed
    if ahead:
        listing = ", ".join(f"{name} up to checkpoint {n}" for name, n in sorted(ahead.items()))
        raise SavepointTooOld(
            f"savepoint {savepoint} is checkpoint {restored} of job {prefix}..., but its Iceberg sinks already "
            f"committed later ones ({listing}). Restored, the job would skip its checkpoints up to those as "
            "already committed and lose their records (apache/iceberg#10892). Restore the newest savepoint "
            "instead, or recompute the range as a new version (`kappa replay run`), or roll the tables back "
            "to a snapshot at or before the savepoint first.")
