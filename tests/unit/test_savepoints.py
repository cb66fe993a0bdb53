"""The restore guard against apache/iceberg#10892 (kappa.savepoints), without a cluster."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from kappa import savepoints
from kappa.config import Config
from kappa.errors import KappaError

pytestmark = pytest.mark.unit


def _metadata(checkpoint: int, magic: int = savepoints.METADATA_MAGIC) -> bytes:
    return struct.pack(">iiq", magic, 5, checkpoint) + b"operator state follows"


def test_the_checkpoint_id_is_read_from_the_metadata_head() -> None:
    assert savepoints.checkpoint_id(_metadata(42)) == 42
    with pytest.raises(KappaError, match="magic"):
        savepoints.checkpoint_id(_metadata(42, magic=0x1234))
    with pytest.raises(KappaError, match="too short"):
        savepoints.checkpoint_id(b"\x49\x60")


def test_a_local_savepoint_is_read_by_path_or_file_uri(tmp_path: Path, test_config: Config) -> None:
    folder = tmp_path / "savepoint-3fa2c1-0123456789ab"
    folder.mkdir()
    (folder / "_metadata").write_bytes(_metadata(7))
    for location in (str(folder), f"file:{folder}", f"file://{folder}"):
        assert savepoints.checkpoint_id(savepoints.read_metadata(test_config, location)) == 7
    assert savepoints.job_prefix(f"file:{folder}/") == "3fa2c1"
    with pytest.raises(KappaError, match="not a savepoint folder"):
        savepoints.job_prefix(str(tmp_path / "chk-12"))


def test_only_the_savepoints_own_job_counts_and_its_highest_commit_wins() -> None:
    history = [
        {"flink.job-id": "3fa2c1aa", "flink.max-committed-checkpoint-id": "9"},
        {"flink.job-id": "3fa2c1aa", "flink.max-committed-checkpoint-id": "12"},
        {"flink.job-id": "77b0e2ff", "flink.max-committed-checkpoint-id": "40"},  # another job's lineage
        {"operation": "replace"},  # compaction: no Flink summary
    ]
    assert savepoints.committed_by(history, "3fa2c1") == 12
    assert savepoints.committed_by(history, "000000") is None
