"""Records Kafka acknowledged without an offset (a retried idempotent write answered DUPLICATE_SEQUENCE_NUMBER)
are found in their partition's log by order, key and bytes (kappa/simulate/offsets.py)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from kappa.simulate import offsets

pytestmark = pytest.mark.unit

UNKNOWN = -1001  # librdkafka's RD_KAFKA_OFFSET_INVALID in a delivery report


@dataclass
class _Record:
    key: str
    value: bytes
    partition: int | None
    offset: int | None


def _log(*entries: tuple[int, str, bytes]) -> offsets.Stretch:
    return [(o, k.encode(), v) for o, k, v in entries]


def test_only_partitions_with_a_record_of_unknown_offset_are_looked_up() -> None:
    a, b = _Record("d1", b"a", 0, 5), _Record("d2", b"b", 1, UNKNOWN)
    c, d = _Record("d3", b"c", 1, 7), _Record("d4", b"d", 2, None)
    assert offsets.unknown([a, b, c, d]) == {1: [b, c], 2: [d]}
    assert offsets.unknown([a, c]) == {}
    assert offsets.first_offset([c, b]) == 7  # reading starts at the run's first known record
    assert offsets.first_offset([b, c]) == 0  # ... or at the start when an unknown one comes first


def test_an_unknown_record_between_known_ones_takes_the_free_offset_with_its_bytes() -> None:
    first, retried, last = _Record("d1", b"x", 0, 10), _Record("d2", b"y", 0, UNKNOWN), _Record("d1", b"z", 0, 13)
    # offset 11 is another writer's record; 12 is the retried one's copy
    log = _log((10, "d1", b"x"), (11, "d9", b"other"), (12, "d2", b"y"), (13, "d1", b"z"))
    assert offsets.place([first, retried, last], log) == []
    assert (first.offset, retried.offset, last.offset) == (10, 12, 13)


def test_identical_records_are_placed_in_order_on_offsets_no_other_record_holds() -> None:
    # three copies of one reading (the simulator's planted duplicates), the middle one of unknown offset
    one, two, three = (_Record("d1", b"same", 0, o) for o in (20, UNKNOWN, 22))
    log = _log((20, "d1", b"same"), (21, "d1", b"same"), (22, "d1", b"same"))
    assert offsets.place([one, two, three], log) == []
    assert two.offset == 21


def test_with_no_known_record_before_it_the_nearest_copy_below_the_next_known_one_is_taken() -> None:
    # offset 3 holds identical bytes from an earlier run of the same seed: the run's copy is the later one
    retried, known = _Record("d1", b"r", 0, UNKNOWN), _Record("d1", b"k", 0, 9)
    log = _log((3, "d1", b"r"), (8, "d1", b"r"), (9, "d1", b"k"))
    assert offsets.place([retried, known], log) == []
    assert retried.offset == 8


def test_a_record_not_in_the_log_is_reported_lost_and_the_others_still_placed() -> None:
    known = _Record("d1", b"a", 0, 0)
    lost, found = _Record("d1", b"never written", 0, UNKNOWN), _Record("d2", b"b", 0, UNKNOWN)
    log = _log((0, "d1", b"a"), (1, "d2", b"b"))
    assert offsets.place([known, lost, found], log) == [lost]
    assert lost.offset == UNKNOWN and found.offset == 1


def test_a_copy_at_another_record_s_offset_is_not_taken_twice() -> None:
    # the only copy with these bytes is at offset 4, which a record of known offset already holds
    holder, retried = _Record("d1", b"v", 0, 4), _Record("d1", b"v", 0, UNKNOWN)
    assert offsets.place([holder, retried], _log((4, "d1", b"v"))) == [retried]
