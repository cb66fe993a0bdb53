"""The replicated-Kafka test's allowance for a producer's duplicate write (tests/integration/aggregate_support.py):
only an earlier byte-for-byte copy of an acknowledged record in the same partition counts as one, and the
manifest the outputs are checked against then holds it as one more record."""

from __future__ import annotations

import pytest

from kappa.config import load_config
from kappa.simulate import Category, Manifest, SimulationSpec, simulate
from tests.integration.aggregate_support import producer_copies, with_copies

pytestmark = pytest.mark.unit


def _manifest() -> Manifest:
    manifest = simulate(load_config(profile="test"), SimulationSpec(devices=2, readings_per_device=6, malformed=1,
                                                                    topic="t"), produce=False, log=lambda _: None)
    for i, record in enumerate(manifest.records):  # two partitions, offsets 10 apart: room for copies
        record.partition, record.offset = i % 2, 10 * i
    return manifest


def _log(manifest: Manifest) -> dict[tuple[int, int], bytes | None]:
    return {(r.partition or 0, r.offset or 0): r.value for r in manifest.records}


def test_an_exact_log_has_no_copies_and_keeps_its_manifest() -> None:
    manifest = _manifest()
    assert producer_copies(manifest, _log(manifest)) == []
    assert with_copies(manifest, []) is manifest


def test_an_earlier_copy_in_the_same_partition_is_the_producer_s_and_counts_as_a_record() -> None:
    manifest = _manifest()
    valid = next(r for r in manifest.records if r.category == Category.VALID and (r.offset or 0) > 0)
    malformed = next(r for r in manifest.records if r.category == Category.MALFORMED and (r.offset or 0) > 0)
    log = _log(manifest)
    log[(valid.partition or 0, (valid.offset or 0) - 5)] = valid.value
    log[(malformed.partition or 0, (malformed.offset or 0) - 5)] = malformed.value
    copies = producer_copies(manifest, log)
    assert [(c.partition, c.offset, c.value, c.device_id, c.seq) for c in copies] == sorted(
        [(r.partition, (r.offset or 0) - 5, r.value, r.device_id, r.seq) for r in (valid, malformed)])
    counts = manifest.data["counts"]
    effective = with_copies(manifest, copies)
    assert effective.data["counts"]["total"] == counts["total"] + 2
    assert effective.data["counts"]["malformed"] == counts["malformed"] + 1  # dead-lettered once more
    assert effective.records == [*manifest.records, *copies]
    assert manifest.data["counts"] is counts and counts == _manifest().data["counts"]  # the original untouched


def test_later_copies_other_partitions_and_other_bytes_are_not_the_producer_s() -> None:
    manifest = _manifest()
    record = manifest.records[4]
    log = _log(manifest)
    log[(record.partition or 0, (record.offset or 0) + 5)] = record.value  # after the acknowledged one
    log[(1 - (record.partition or 0), 1)] = record.value  # in the other partition
    log[(record.partition or 0, 1)] = b"never produced"
    assert producer_copies(manifest, log) == []
