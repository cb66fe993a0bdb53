"""DEVICE_SILENT: a device sent no reading for longer than its `silent_after_s`, decided on event time.

`MATCH_RECOGNIZE` matches rows that exist; silence is the absence of rows (a device that stops for
good never produces the row a pattern would end on), so this rule is a keyed process function with
event-time timers instead. Per device it keeps the last reading and the readings not yet ordered:

* Every on-time reading is parked until the watermark passes its event time (a timer at that time),
  then taken in event-time order, so out-of-order arrival inside the watermark delay never looks
  like a gap.
* After the last reading the function waits for its deadline, `last + silent_after_s`. When the
  watermark passes the deadline with no newer reading, the device has been silent longer than
  allowed: an open alert is raised (last_event_time = the deadline). Any reading that could still
  fill the gap would be late by then (it is at or behind the watermark), so the decision is final.
* When the device speaks again, the same alert (same first reading, so the same alert id
  downstream) is raised again as resolved, with last_event_time = the reading that ended the gap.

Watermarks come from all devices' readings: a silent device is detected as soon as the rest of the
fleet moves event time on. At the end of a bounded run (replay, tests) Flink sends the final
watermark (Long.MAX): a deadline reached only by it is no evidence of silence, since the data simply
ended; such a device is not alerted unless a later reading of it exists. The decisions therefore
depend only on the readings and their event times, so a replay of the same log raises the same
alerts.

The logic (`DeviceClock`, `on_reading`, `on_timer`) is plain Python, unit-tested without Flink;
`detect_silences` wires it into a job as a PyFlink `KeyedProcessFunction`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

MAX_WATERMARK = 2**63 - 1  # Flink's final watermark at the end of bounded input

SILENCE_FIELDS = (  # the rows `detect_silences` returns (names and SQL types)
    ("device_id", "STRING"), ("site_id", "STRING"), ("first_ms", "BIGINT"), ("last_ms", "BIGINT"),
    ("silent_after_s", "INT"), ("rule_version", "STRING"), ("cooldown_s", "INT"), ("resolved", "BOOLEAN"),
)


@dataclass(frozen=True)
class Seen:
    """What the silence rule needs of one reading (thresholds as looked up for it)."""

    event_ms: int
    site_id: str
    silent_after_s: int
    rule_version: str
    cooldown_s: int

    @property
    def deadline_ms(self) -> int:
        return self.event_ms + self.silent_after_s * 1000


@dataclass
class DeviceClock:
    """Per-device state: the last reading in event-time order, the readings not yet ordered, and
    the last reading whose silence was already raised."""

    last: Seen | None = None
    pending: dict[int, Seen] = field(default_factory=dict)
    alerted_for_ms: int | None = None


@dataclass(frozen=True)
class Silence:
    """One DEVICE_SILENT alert: open (resolved=False, last_ms = deadline) or resolved (last_ms =
    the reading that ended the gap). Both carry the first_ms of the last reading before the gap."""

    device_id: str
    site_id: str
    first_ms: int
    last_ms: int
    silent_after_s: int
    rule_version: str
    cooldown_s: int
    resolved: bool


def _silence(device_id: str, before: Seen, last_ms: int, resolved: bool) -> Silence:
    return Silence(device_id, before.site_id, before.event_ms, last_ms, before.silent_after_s,
                   before.rule_version, before.cooldown_s, resolved)


def on_reading(clock: DeviceClock, seen: Seen) -> list[int]:
    """Park a reading until the watermark passes it; returns the event-time timers to register.
    A re-sent copy (same event time) is parked once."""
    clock.pending.setdefault(seen.event_ms, seen)
    return [seen.event_ms]


def on_timer(clock: DeviceClock, device_id: str, timestamp: int, watermark: int,
             seen_watermark: int | None = None) -> tuple[list[Silence], list[int]]:
    """The watermark reached `timestamp`: take the parked readings up to it in event-time order,
    resolve the gap they end, and raise an open silence once the watermark has passed the deadline
    of the last reading. Returns the alerts and the timers to register.

    `seen_watermark` is the highest watermark below the final one that the operator has seen. It
    matters only when the final watermark fires a timer: PyFlink registers the timers asked for in a
    timer callback after that callback's bundle, so at the end of a bounded run a deadline the data's
    own watermark had passed can fire only with Long.MAX. The data proved that silence all the same."""
    alerts: list[Silence] = []
    timers: list[int] = []
    due = sorted(ms for ms in clock.pending if ms <= timestamp)
    for ms in due:
        seen = clock.pending.pop(ms)
        last = clock.last
        if last is not None and ms <= last.event_ms:
            continue  # cannot happen for on-time readings; kept safe
        if last is not None and ms > last.deadline_ms:
            # PyFlink may fire a timer registered during a timer callback after later ones: the
            # deadline timer of `last` can come after this reading; the gap proves the silence anyway
            if clock.alerted_for_ms != last.event_ms:
                alerts.append(_silence(device_id, last, last.deadline_ms, resolved=False))
            alerts.append(_silence(device_id, last, ms, resolved=True))
            clock.alerted_for_ms = last.event_ms
        clock.last = seen
    if due and clock.last is not None:
        timers.append(clock.last.deadline_ms)
    last = clock.last
    if last is not None and clock.alerted_for_ms != last.event_ms and _silent(clock, last, watermark, seen_watermark):
        alerts.append(_silence(device_id, last, last.deadline_ms, resolved=False))
        clock.alerted_for_ms = last.event_ms
    return alerts, timers


def _silent(clock: DeviceClock, last: Seen, watermark: int, seen_watermark: int | None) -> bool:
    """The data's watermark passed the deadline of `last` and no parked reading fills the gap (one
    that does is taken by its own timer). The final watermark alone proves nothing: the data ended."""
    proven = watermark if watermark < MAX_WATERMARK else seen_watermark
    if proven is None or proven < last.deadline_ms:
        return False
    return not any(ms <= last.deadline_ms for ms in clock.pending)


def detect_silences(t_env: Any, readings_view: str) -> Any:
    """A Table of `SILENCE_FIELDS` rows from a view of on-time readings with (device_id, site_id,
    event_ms, silent_after_s, rule_version, cooldown_s) and an event-time attribute."""
    from pyflink.common import Row, Types
    from pyflink.datastream import KeyedProcessFunction
    from pyflink.datastream.state import ValueStateDescriptor

    flink_types = {"STRING": Types.STRING(), "BIGINT": Types.LONG(), "INT": Types.INT(),
                   "BOOLEAN": Types.BOOLEAN()}
    output_type = Types.ROW_NAMED([name for name, _ in SILENCE_FIELDS],
                                  [flink_types[kind] for _, kind in SILENCE_FIELDS])

    class DeviceSilenceFunction(KeyedProcessFunction):  # type: ignore[misc]
        def open(self, runtime_context: Any) -> None:
            self.clock = runtime_context.get_state(
                ValueStateDescriptor("device_clock", Types.PICKLED_BYTE_ARRAY()))
            self.seen_watermark: int | None = None  # the highest data watermark (see `on_timer`)
            group = runtime_context.get_metrics_group().add_group("kappa")  # docs/metrics.md, "Inside the jobs"
            self.raised = group.counter("silences_raised")
            self.resolved = group.counter("silences_resolved")

        def _see(self, ctx: Any) -> int:
            watermark: int = ctx.timer_service().current_watermark()
            if watermark < MAX_WATERMARK and (self.seen_watermark is None or watermark > self.seen_watermark):
                self.seen_watermark = watermark
            return watermark

        def process_element(self, value: Any, ctx: Any) -> Iterator[Any]:
            self._see(ctx)
            clock = self.clock.value() or DeviceClock()
            seen = Seen(int(value.event_ms), value.site_id, int(value.silent_after_s), value.rule_version,
                        int(value.cooldown_s))
            for timer in on_reading(clock, seen):
                ctx.timer_service().register_event_time_timer(timer)
            self.clock.update(clock)
            yield from ()

        def on_timer(self, timestamp: int, ctx: Any) -> Iterator[Any]:
            clock = self.clock.value() or DeviceClock()
            watermark = self._see(ctx)
            alerts, timers = on_timer(clock, ctx.get_current_key(), timestamp, watermark, self.seen_watermark)
            for timer in timers:
                ctx.timer_service().register_event_time_timer(timer)
            self.clock.update(clock)
            for alert in alerts:
                (self.resolved if alert.resolved else self.raised).inc()
                yield Row(alert.device_id, alert.site_id, alert.first_ms, alert.last_ms, alert.silent_after_s,
                          alert.rule_version, alert.cooldown_s, alert.resolved)

    readings = t_env.to_data_stream(t_env.from_path(readings_view))
    silences = (readings.key_by(lambda row: row.device_id, key_type=Types.STRING())
                .process(DeviceSilenceFunction(), output_type=output_type)
                .name("device_silence"))
    return t_env.from_data_stream(silences)
