"""Finding the offset of a record that Kafka acknowledged without one.

An idempotent producer that retries a batch the broker had already written (its first answer was lost with a
broker that died, say) may be told DUPLICATE_SEQUENCE_NUMBER: the write stands, but the broker kept no offset
for it. librdkafka then reports the record delivered with offset -1001 (Kafka's Java producer does the same,
with -1). Kafka 4's brokers answer a recent repeat with its original offsets instead, so this guards runs
against other brokers (docs/design.md). A manifest must say where each record is (tests compare outputs by
partition and offset), so such a record is looked up in its partition: the producer keeps a partition's
order, so it lies after the run's previous record there whose offset is known and before the next one,
and it has its key and bytes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, TypeVar


class Placed(Protocol):
    """What `place` needs of a produced record (kappa.simulate.model.ProducedRecord has it)."""

    key: str
    value: bytes
    partition: int | None
    offset: int | None


R = TypeVar("R", bound=Placed)

# (offset, key, value) of each record in a stretch of one partition, in offset order
Stretch = list[tuple[int, bytes | None, bytes | None]]


def known(record: Placed) -> bool:
    return record.offset is not None and record.offset >= 0


def unknown(records: Sequence[R]) -> dict[int, list[R]]:
    """Partition -> the run's records there, in the order produced, for partitions holding a record
    acknowledged without an offset."""
    by_partition: dict[int, list[R]] = {}
    for record in records:
        if record.partition is not None:
            by_partition.setdefault(record.partition, []).append(record)
    return {p: rs for p, rs in by_partition.items() if not all(known(r) for r in rs)}


def first_offset(in_partition: Sequence[Placed]) -> int:
    """Where the stretch to read starts: the run's first record in this partition if its offset is known,
    else the partition's start (0)."""
    first = in_partition[0].offset if in_partition else None
    return first if first is not None and first >= 0 else 0


def place(in_partition: Sequence[R], stretch: Stretch) -> list[R]:
    """Give each record of `in_partition` (one partition, in the order produced) that has no offset the
    offset of its copy in `stretch`; returns those not found (lost, as far as the log shows).

    Between two records of known offsets the unknown ones are matched in order, by key and bytes, against
    the offsets no other record of the run holds: forwards from the earlier known record, or backwards from
    the later one when none comes before (an older run may hold identical bytes further back)."""
    claimed = {r.offset for r in in_partition if known(r)}
    free = [c for c in stretch if c[0] not in claimed]
    lost: list[R] = []
    i = 0
    while i < len(in_partition):
        if known(in_partition[i]):
            i += 1
            continue
        j = i
        while j < len(in_partition) and not known(in_partition[j]):
            j += 1
        low = in_partition[i - 1].offset if i > 0 else None
        high = in_partition[j].offset if j < len(in_partition) else None
        window = [c for c in free if (low is None or c[0] > low) and (high is None or c[0] < high)]
        lost += _match(in_partition[i:j], window, backwards=low is None)
        i = j
    return lost


def _match(gap: Sequence[R], window: Stretch, *, backwards: bool) -> list[R]:
    """In-order matching of `gap` against `window` by key and bytes; the records with no copy there."""
    records, candidates = (list(reversed(gap)), list(reversed(window))) if backwards else (list(gap), window)
    lost: list[R] = []
    at = 0
    for record in records:
        key = record.key.encode()
        found = next((n for n in range(at, len(candidates))
                      if candidates[n][1] == key and candidates[n][2] == record.value), None)
        if found is None:
            lost.append(record)
            continue
        record.offset, at = candidates[found][0], found + 1
    return lost
