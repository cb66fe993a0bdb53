"""The alerting job (jobs/alerts.py) on the real stack: golden sequences per pattern (positive and
negative cases, out-of-order and re-sent input, a per-device threshold override, the cool-down),
and a simulator run where every planted anomaly raises its alert and nothing else does."""

from __future__ import annotations

import io
import json
import struct
import uuid
from collections import Counter
from typing import Any

import fastavro
import pytest

from kappa import kafka_clients
from kappa.config import Config
from kappa.registry import WRITE, ca_file, credentials
from kappa.rules import service as rules
from kappa.rules.model import Rule
from kappa.schemas import read_schema
from kappa.simulate import SCHEMA_DIR, Manifest, parse_time_ms, register_schema, simulate
from kappa.stack import kafka_setup
from kappa.stack.postgres import connect
from tests.integration.aggregate_support import faulty_spec
from tests.integration.alerts_support import alert_rows, assert_alerts_match_planted, ms, planted_anomalies
from tests.integration.kafka_support import committed_messages
from tests.integration.scratch import Names, run_bounded, versioned_outputs

pytestmark = pytest.mark.integration

T0 = parse_time_ms("2026-03-02T08:00:00Z")
SILENT_AFTER_MS = 180_000  # alert_thresholds.silent_after_s of every seeded device type

Alert = tuple[str, str, int, int]  # (alert_type, device_id, first event ms, last event ms)


_ms = ms
_alerts = alert_rows


def _committed_keys(config: Config, topic: str) -> list[bytes]:
    return [key or b"" for key, _ in committed_messages(config, topic)]


# A watermark after every record, as a live stream at a device's pace gets it: a bounded run then
# reaches every watermark a live run would reach before the input ends (see DeviceClock in udfs/java).
ON_EVENT_WATERMARKS = (",\n  'scan.bounded.mode' = 'latest-offset'"
                       ",\n  'scan.watermark.emit.strategy' = 'on-event'")


def _run(config: Config, topic: str, suffix: str, **extra: str) -> None:
    run_bounded(config, "alerts", topic, versioned_outputs(config, suffix, "alerts"), extra=extra)


# --------------------------------------------------------------------------- golden sequences


class Fleet:
    """Hand-written readings, produced in the order given (out-of-order on purpose where noted)."""

    def __init__(self, tag: str) -> None:
        self.tag = tag
        self.records: list[tuple[int, dict[str, Any]]] = []  # (send order key, record)
        self.seqs: dict[str, int] = {}
        self.partitions: dict[int, int] = {}  # id(record) -> Kafka partition, where not by key

    def dev(self, name: str) -> str:
        return f"g-{name}-{self.tag}"

    def reading(self, name: str, dtype: str, at_ms: int, *, temp: float = 40.0, vib: float | None = None,
                battery: float | None = 60.0, seq: int | None = None, send_at: int | None = None,
                partition: int | None = None) -> int:
        device = self.dev(name)
        if seq is None:
            seq = self.seqs.get(device, 1000) + 1
            self.seqs[device] = seq
        rec = {"device_id": device, "site_id": "site-g", "device_type": dtype, "seq": seq, "event_time": at_ms,
               "status": "OK", "firmware_version": "2.0.1", "temperature_c": temp, "humidity_pct": None,
               "pressure_hpa": None, "vibration_mm_s": vib if dtype == "vibration" else None, "power_w": None,
               "battery_pct": battery, "signal_rssi_dbm": -70, "location": None}
        if partition is not None:
            self.partitions[id(rec)] = partition
        self.records.append((at_ms if send_at is None else send_at, rec))
        return at_ms

    def series(self, name: str, dtype: str, temps: list[float], *, step_ms: int = 10_000,
               start: int = T0, **kwargs: Any) -> list[int]:
        return [self.reading(name, dtype, start + k * step_ms, temp=t, **kwargs) for k, t in enumerate(temps)]

    def produce(self, config: Config, topic: str) -> None:
        kafka_setup.ensure_topics(config, [topic])  # auto-create is off
        schema = read_schema(config.root / SCHEMA_DIR / "v2.avsc")
        schema_id = register_schema(config.registry.url, f"{topic}-value", schema, auto=True,
                                    auth=credentials(config, WRITE), verify=ca_file(config))
        parsed = fastavro.parse_schema(json.loads(schema))
        producer = kafka_clients.producer(config, **{"enable.idempotence": True,
                             "acks": "all", "partitioner": "murmur2_random"})
        for _, rec in sorted(self.records, key=lambda item: item[0]):  # stable: ties keep the given order
            buf = io.BytesIO()
            buf.write(struct.pack(">bI", 0, schema_id))
            fastavro.schemaless_writer(buf, parsed, rec)
            where = {"partition": self.partitions[id(rec)]} if id(rec) in self.partitions else {}
            producer.produce(topic, key=rec["device_id"].encode(), value=buf.getvalue(),
                             timestamp=rec["event_time"], **where)
        assert producer.flush(30) == 0


@pytest.fixture
def override_device(migrated: Config) -> str:
    """A device of this test only with its own version in the rules topic (valid from the epoch): an
    override of two thresholds, the others from the thermal default."""
    device = f"g-override-{uuid.uuid4().hex[:6]}"
    with connect(migrated) as conn:
        rules.write(migrated, conn, [Rule("thermal", device, {"overheat_temp_c": 70.0, "temp_spike_c": 70.0},
                                          "rules-test")])
    return device


def test_golden_sequences_raise_exactly_the_expected_alerts(migrated: Config, override_device: str) -> None:
    names = Names.new("alerts-golden")
    suffix, topic = names.suffix, names.topic
    f = Fleet(names.tag)
    want: set[Alert] = set()
    hot, cool = 90.0, 60.0

    # OVERHEATING (thermal: above 85.0, 3 readings). Three runs: the first alerts at its third reading
    # (T0+70 s); the second starts 50 s later, inside the 300 s cool-down: suppressed; the third
    # starts at T0+400 s, after the cool-down (T0+370 s): a new alert.
    temps = [cool] * 5 + [hot] * 4 + [cool] * 3 + [hot] * 3 + [cool] * 25 + [hot] * 3 + [cool] * 2
    t = f.series("oh-pos", "thermal", temps)
    want |= {("OVERHEATING", f.dev("oh-pos"), t[5], t[7]), ("OVERHEATING", f.dev("oh-pos"), t[40], t[42])}
    # negatives: runs of two, exactly at the threshold (not above), below it
    f.series("oh-neg", "thermal", [cool, hot, hot, cool, hot, hot, cool, 85.0, 85.0, 85.0, 75.0, 75.0, 75.0, cool])
    # out of order (2 s apart, inside the 5 s watermark delay) and a re-sent reading: still one alert
    start = T0 + 3_000
    temps = [cool, cool, cool, hot, hot, hot, cool, cool]
    t = [start + k * 2_000 for k in range(len(temps))]
    for k, temp in enumerate(temps):
        send = t[k] + (2_500 if k == 3 else 0)  # reading 3 is sent after reading 4
        f.reading("oh-ooo", "thermal", t[k], temp=temp, send_at=send)
    f.reading("oh-ooo", "thermal", t[4], temp=hot, seq=f.seqs[f.dev("oh-ooo")] - 3, send_at=t[5] + 500)  # re-sent 4
    want.add(("OVERHEATING", f.dev("oh-ooo"), t[3], t[5]))
    # per-device override (overheat above 70.0 for this device only): 75.0 x 3 fires here, not on oh-neg
    t = [f.reading("override", "thermal", T0 + k * 10_000, temp=75.0 if 2 <= k <= 4 else cool) for k in range(8)]
    f.records = [(s, {**r, "device_id": override_device}) if r["device_id"] == f.dev("override") else (s, r)
                 for s, r in f.records]
    want.add(("OVERHEATING", override_device, t[2], t[4]))

    # TEMPERATURE_TREND (rise >= 9.0 over >= 12 strictly rising readings)
    t = f.series("tr-pos", "thermal", [65.0, 64.0, 63.0, 62.0] + [60.0 + k for k in range(12)] + [55.0, 56.0])
    want.add(("TEMPERATURE_TREND", f.dev("tr-pos"), t[4], t[15]))
    f.series("tr-small", "thermal", [60.0 + 0.5 * k for k in range(14)] + [50.0])  # rise 6.5 only
    f.series("tr-flat", "thermal", [60.0 + k for k in range(8)] + [67.0] + [68.0 + k for k in range(5)] + [50.0])

    # VIBRATION_THEN_HEAT (vibration: above 20.0 mm/s, then above 80.0 C within 60 s)
    t = [f.reading("vh-pos", "vibration", T0 + k * 10_000, vib=30.0 if k == 3 else 3.0,
                   temp=85.0 if k == 5 else 40.0) for k in range(9)]
    want.add(("VIBRATION_THEN_HEAT", f.dev("vh-pos"), t[3], t[5]))
    for k in range(14):  # heat 70 s after the spike: too late
        f.reading("vh-late", "vibration", T0 + k * 10_000, vib=30.0 if k == 3 else 3.0, temp=85.0 if k == 10 else 40.0)
    for k in range(9):  # heat before the spike: wrong order
        f.reading("vh-order", "vibration", T0 + k * 10_000, vib=30.0 if k == 5 else 3.0, temp=85.0 if k == 3 else 40.0)

    # LOW_BATTERY (below 15.0 % for at least 60 s)
    t = [f.reading("lb-pos", "thermal", T0 + k * 10_000, temp=cool, battery=12.0 if 3 <= k <= 12 else 50.0)
         for k in range(15)]
    want.add(("LOW_BATTERY", f.dev("lb-pos"), t[3], t[9]))
    for k in range(16):  # 50 s low, one reading back above, 40 s low, then exactly 15.0
        battery = 12.0 if 3 <= k <= 8 or 10 <= k <= 14 else (16.0 if k == 9 else 15.0)
        f.reading("lb-neg", "thermal", T0 + k * 10_000, temp=cool, battery=battery)

    # DEVICE_SILENT (no reading for more than 180 s): a 200 s gap, resolved by the next reading;
    # a gap of exactly 180 s and one of 170 s are not silences; out-of-order arrival is no gap
    # (the device's final silence, from T0+620 s, starts after the cool-down of this one: two alerts)
    t = (f.series("sl-pos", "thermal", [cool] * 4, start=T0 + 100_000)
         + f.series("sl-pos", "thermal", [cool] * 30, start=T0 + 330_000))
    want.add(("DEVICE_SILENT", f.dev("sl-pos"), t[3], t[4]))
    f.series("sl-neg", "thermal", [cool] * 2, step_ms=180_000)
    f.series("sl-neg", "thermal", [cool] * 2, step_ms=170_000, start=T0 + 360_000)
    # 183 s arrives before 179 s (inside the 5 s watermark delay): in arrival order it would look
    # like a 183 s gap; in event-time order the gaps are 179 s and 4 s
    for at, send in ((0, 0), (183_000, 183_000), (179_000, 183_500), (200_000, 200_000)):
        f.reading("sl-ooo", "thermal", T0 + at, temp=cool, send_at=T0 + send)

    # keep the watermark moving past the last readings: quiet devices well after everything, one in
    # each Kafka partition (the watermark is the minimum over partitions). By then every other device
    # has been silent for longer than 180 s after its last reading: each raises one open
    # DEVICE_SILENT alert (the tails themselves end with the input, which is no silence).
    tail = [T0 + 3_600_000 + k * 10_000 for k in range(3)]
    for p in range(migrated.kafka.partitions):
        for at in tail:
            f.reading(f"tail{p}", "thermal", at, temp=cool, partition=p)
    last_reading: dict[str, int] = {}
    for _, rec in f.records:
        last_reading[rec["device_id"]] = max(last_reading.get(rec["device_id"], 0), rec["event_time"])
    for device, at in last_reading.items():
        if at < tail[0] - SILENT_AFTER_MS:
            want.add(("DEVICE_SILENT", device, at, at + SILENT_AFTER_MS))
    f.produce(migrated, topic)
    _run(migrated, topic, suffix, source_options=ON_EVENT_WATERMARKS)

    with connect(migrated) as conn:
        rows = _alerts(conn, suffix)
    got = {(r["alert_type"], r["device_id"], _ms(r["first_event_time"]), _ms(r["last_event_time"])) for r in rows}
    assert got == want, f"missing {sorted(want - got)}; unexpected {sorted(got - want)}"
    assert len(rows) == len(got)
    for row in rows:
        assert row["detected_at"] == row["last_event_time"]
        assert row["rule_version"] == ("rules-test" if row["device_id"] == override_device else "rules-v1")
        assert isinstance(row["trigger_values_json"], dict) and row["trigger_values_json"]
        assert row["severity"] in ("WARNING", "CRITICAL")
    resolved = [r for r in rows if r["alert_type"] == "DEVICE_SILENT" and r["trigger_values_json"]["resolved"]]
    assert [r["device_id"] for r in resolved] == [f.dev("sl-pos")]
    assert resolved[0]["trigger_values_json"] == {"silent_s": 200.0, "silent_after_s": 180.0, "resolved": 1.0}
    keys = _committed_keys(migrated, f"{migrated.kafka.alerts_topic}{suffix}")
    assert {k.decode() for k in keys} == {r["alert_id"] for r in rows}
    types = {r["alert_id"]: (r["alert_type"], r["device_id"]) for r in rows}
    repeated = sorted(types[k.decode()] for k, n in Counter(keys).items() if n > 1)
    assert len(keys) == len(rows) + len(resolved), repeated  # a resolution: a second record, same key


# --------------------------------------------------------------------------- the simulator


def test_every_planted_anomaly_raises_its_alert_and_nothing_else(migrated: Config) -> None:
    names = Names.new("alerts-sim")
    suffix, topic = names.suffix, names.topic
    # faults included (out-of-order, late, duplicates, malformed, v1); readings inside a planted
    # anomaly are never made late by the simulator. Seeded defaults match the simulator's constants.
    manifest: Manifest = simulate(migrated, faulty_spec(topic, seed=23, devices=8, readings=40),
                                  produce=True, log=lambda _: None)
    planted_anomalies(manifest)
    _run(migrated, topic, suffix)
    with connect(migrated) as conn:
        assert_alerts_match_planted(_alerts(conn, suffix), manifest)
