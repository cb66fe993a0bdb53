"""The Parquet outputs of a replayed version: a topic the job declares archived (kappa.outputs
ArchivedTopic; the aggregation job's exactly-once aggregates topic) archived under the version's own
prefix (`aggregates-1m_v2/...`), next to its tables and topics, and removed with them.

A replay never touches the live archive: the version's rows come from the version's topic
(`<aggregates_topic>_v2`), through the same writer, manifest and commit protocol as the live archive
(kappa/archive.py), so `kappa query --dataset aggregates --prefix aggregates-1m_v2` reads it.
"""

from __future__ import annotations

import psycopg

from kappa.archive import ArchiveWriter
from kappa.archive_datasets import AGGREGATES, DATASETS
from kappa.config import Config
from kappa.s3_security import WRITER
from kappa.stack.objectstore import s3_filesystem


def version_prefix(suffix: str, dataset: str = AGGREGATES.name) -> str:
    """The object key prefix of a version's archived dataset, e.g. `aggregates-1m_v2`."""
    return f"{DATASETS[dataset].default_prefix}{suffix}"


def version_topic(config: Config, suffix: str) -> str:
    return f"{config.kafka.aggregates_topic}{suffix}"


def archive_version(config: Config, suffix: str, dataset: str = AGGREGATES.name, topic: str | None = None) -> int:
    """Archive everything in the version's topic (default: its aggregates topic); returns the rows written."""
    writer = ArchiveWriter(config, topic or version_topic(config, suffix), prefix=version_prefix(suffix, dataset),
                           dataset=DATASETS[dataset])
    try:
        return writer.run(once=True)
    finally:
        writer.close()


def drop_version_archive(config: Config, conn: psycopg.Connection, suffix: str, dataset: str = AGGREGATES.name,
                         topic: str | None = None) -> list[str]:
    """Remove the version's objects (whatever the manifest says: orphans of a crash too), its
    manifest rows and its archive offsets. Returns what went."""
    prefix, topic = version_prefix(suffix, dataset), topic or version_topic(config, suffix)
    registered = conn.execute("SELECT count(*) FROM archive_files WHERE prefix = %s", (prefix,)).fetchone()
    offsets = conn.execute("SELECT count(*) FROM archive_offsets WHERE topic = %s", (topic,)).fetchone()
    if not (registered and registered[0]) and not (offsets and offsets[0]):
        return []
    s3_filesystem(config, WRITER).delete_dir_contents(f"{config.s3.bucket}/{prefix}", missing_dir_ok=True)
    with conn.transaction():
        conn.execute("DELETE FROM archive_files WHERE prefix = %s", (prefix,))
        conn.execute("DELETE FROM archive_offsets WHERE topic = %s", (topic,))
    return [f"archive s3://{config.s3.bucket}/{prefix}/ ({registered[0] if registered else 0} objects)"]
