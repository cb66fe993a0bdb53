"""Event-to-alert latency of the alerting job (jobs/alerts.py), unbounded on the standalone cluster.

Readings are produced at a steady rate with event time = wall time at send; thermal devices get
planted overheating runs (3 readings above 85.0 C), so OVERHEATING alerts occur throughout the run.
Latency = wall time an alert record is seen by a consumer of the alerts topic - wall time the
reading that completed the match was sent (matched by device_id and last_event_time). Two
consumers: read_uncommitted (records as the transactional sink writes them) and read_committed
(records once the checkpoint commits their transaction). Expect roughly the watermark delay plus,
for read_committed, up to one checkpoint interval on top. The bench's devices get their own rule
versions (kappa rules) with cooldown_s = 0, so every planted run is an alert. The job waits
job.reference_idle_timeout_s once at start (the rules source must go idle): inside the warm-up.

    .venv/bin/python bench/alert_latency.py [--rate 250] [--duration 90] [--devices 50] [--period 120]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import random
import statistics
import struct
import sys
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

import fastavro
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext

from kappa import jobrunner, kafka_clients, outputs, reference, waiting
from kappa.config import Config, get_config
from kappa.db import migrate
from kappa.flinkenv import JobOptions
from kappa.registry import READ, WRITE, ca_file, client_conf, credentials
from kappa.rules import service as rules
from kappa.rules.model import Rule
from kappa.schemas import read_schema
from kappa.simulate import SCHEMA_DIR, register_schema
from kappa.stack import manager
from kappa.stack.kafka_setup import recreate_topic
from kappa.stack.postgres import connect

HOT, COOL = 90.0, 60.0  # thermal threshold: above 85.0 on 3 consecutive readings
WARMUP_CAP_S = 180.0  # the longest warm-up: a job that raised no alert by then is measured as it is


def _ms(value: datetime | int) -> int:
    if isinstance(value, int):
        return value
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return int(value.timestamp() * 1000)


class AlertWatcher(threading.Thread):
    """Consumes the alerts topic from the start; records (device_id, last_event_ms) -> first seen time."""

    def __init__(self, config: Config, topic: str, isolation: str) -> None:
        super().__init__(daemon=True)
        self.topic, self.isolation = topic, isolation
        self.seen: dict[tuple[str, int], float] = {}
        self.records = 0
        self.stop = threading.Event()
        self.ready = threading.Event()
        self.consumer = kafka_clients.consumer(config, uuid.uuid4().hex, **{
            "isolation.level": isolation, "enable.auto.commit": False,
            "auto.offset.reset": "earliest", "fetch.wait.max.ms": 10})
        self.deserialize = AvroDeserializer(SchemaRegistryClient(client_conf(config, READ)))

    def run(self) -> None:
        self.consumer.subscribe([self.topic], on_assign=lambda c, p: self.ready.set())
        try:
            while not self.stop.is_set():
                message = self.consumer.poll(0.05)
                if message is None or message.error():
                    continue
                now = time.time()
                value = self.deserialize(message.value(), SerializationContext(self.topic, MessageField.VALUE))
                assert value is not None
                self.records += 1
                self.seen.setdefault((value["device_id"], _ms(value["last_event_time"])), now)
        finally:
            self.consumer.close()


def device_ids(tag: str, devices: int) -> list[str]:
    return [f"lat-{tag}-{d:03d}" for d in range(devices)]


def produce(config: Config, topic: str, rate: float, duration_s: float, devices: int, period: int,
            warmup_s: float, tail_s: float, tag: str, warm: Callable[[], bool]
            ) -> tuple[dict[tuple[str, int], float], set[tuple[str, int]]]:
    """Steady production; returns (device_id, event_ms) -> wall time of the send, for readings that
    complete an overheating run (the third hot reading) in the measured part, and the keys of the
    warm-up's runs.

    The warm-up lasts at least `warmup_s` and until `warm()` (the alert consumers have seen an alert of the
    warm-up's own runs), at most WARMUP_CAP_S: a job that is RUNNING may still be starting its tasks and
    waiting for its reference sources to go idle, and its first alerts would measure that, not the
    steady state. The measured part then lasts `duration_s`, its last `tail_s` without runs (their alerts
    need the watermark to move on)."""
    schema = read_schema(config.root / SCHEMA_DIR / "v2.avsc")
    schema_id = register_schema(config.registry.url, f"{topic}-value", schema, auto=True,
                                auth=credentials(config, WRITE), verify=ca_file(config))
    parsed = fastavro.parse_schema(json.loads(schema))
    producer = kafka_clients.producer(config, **{"enable.idempotence": True, "acks": "all",
                         "linger.ms": 0, "partitioner": "murmur2_random"})
    rng = random.Random(7)
    ids = device_ids(tag, devices)
    offsets = [rng.randrange(period) for _ in range(devices)]
    counts = [0] * devices
    last_ms = [0] * devices
    streak = [0] * devices
    completing: dict[tuple[str, int], float] = {}
    warmup_runs: set[tuple[str, int]] = set()
    started = time.monotonic()
    measured_from: float | None = None  # seconds since start when the warm-up ended
    i = 0
    while measured_from is None or time.monotonic() - started < measured_from + duration_s:
        ahead = started + i / rate - time.monotonic()
        if ahead > 0:
            producer.poll(0)
            time.sleep(ahead)
        d = i % devices
        i += 1
        k = counts[d]
        counts[d] += 1
        elapsed = time.monotonic() - started
        if measured_from is None and elapsed >= warmup_s and (warm() or elapsed >= WARMUP_CAP_S):
            measured_from = elapsed
            print(f"  warm-up done after {elapsed:.0f} s; measuring for {duration_s:.0f} s ...", flush=True)
        measuring = measured_from is not None and elapsed < measured_from + duration_s - tail_s
        hot = (measured_from is None or measuring) and (k + offsets[d]) % period < 3 and k >= 3
        now = time.time()
        event_ms = max(int(now * 1000), last_ms[d] + 1)  # strictly increasing per device
        last_ms[d] = event_ms
        rec = {"device_id": ids[d], "site_id": "site-lat", "device_type": "thermal", "seq": k + 1,
               "event_time": event_ms, "status": "FAULT" if hot else "OK", "firmware_version": "2.0.1",
               "temperature_c": HOT if hot else COOL + rng.uniform(-0.5, 0.5), "humidity_pct": None,
               "pressure_hpa": None, "vibration_mm_s": None, "power_w": None, "battery_pct": 60.0,
               "signal_rssi_dbm": -70, "location": None}
        buf = io.BytesIO()
        buf.write(struct.pack(">bI", 0, schema_id))
        fastavro.schemaless_writer(buf, parsed, rec)
        while True:
            try:
                producer.produce(topic, key=ids[d].encode(), value=buf.getvalue(), timestamp=event_ms)
                break
            except BufferError:
                producer.poll(0.1)
        streak[d] = streak[d] + 1 if hot else 0
        if streak[d] == 3 and measuring:  # the third consecutive hot reading completes the match
            completing[(ids[d], event_ms)] = now
        elif streak[d] == 3:
            warmup_runs.add((ids[d], event_ms))
    producer.flush(30)
    return completing, warmup_runs


def without_cooldown(config: Config, devices: list[str]) -> None:
    """A version per bench device (valid from the epoch) with cooldown_s = 0 and the thermal defaults
    otherwise, so every planted run is an alert (with the default 300 s cool-down only each device's
    first would be). The versions stay in the rules topic (it keeps every version); they name only
    the bench's own devices."""
    with connect(config) as conn:
        rules.write(config, conn, [Rule("thermal", device, {"cooldown_s": 0}, "rules-bench") for device in devices])


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=250.0, help="readings per second")
    parser.add_argument("--duration", type=float, default=90.0, help="seconds of measured production")
    parser.add_argument("--devices", type=int, default=50)
    parser.add_argument("--period", type=int, default=120, help="readings of a device between overheating runs")
    parser.add_argument("--warmup", type=float, default=10.0,
                        help="least seconds of warm-up (it lasts until the job has raised an alert)")
    parser.add_argument("--tail", type=float, default=10.0, help="last seconds of production without anomalies")
    parser.add_argument("--drain", type=float, default=20.0, help="seconds to wait for the last alerts")
    args = parser.parse_args()
    config = get_config()
    started = manager.up(config, only=["postgres", "kafka", "registry", "flink"])
    job_id = None
    watchers: list[AlertWatcher] = []
    try:
        with connect(config) as conn:
            migrate(conn)
            reference.seed(config, conn)
        tag = uuid.uuid4().hex[:6]
        suffix = f"_latency_{tag}"
        topic = f"bench-latency-{tag}"
        alerts_topic = f"{config.kafka.alerts_topic}{suffix}"
        for name in (topic, alerts_topic):
            recreate_topic(config, name)
        with connect(config) as conn:
            outputs.create_versioned_tables(conn, suffix, "alerts")
        without_cooldown(config, device_ids(tag, args.devices))
        options = JobOptions(bounded=False, output_suffix=suffix, extra={"telemetry_topic": topic})
        job_id = jobrunner.submit(config, "alerts", options)
        jobrunner.wait_for_state(config, job_id, {"RUNNING"}, timeout_s=120)
        watchers = [AlertWatcher(config, alerts_topic, iso) for iso in ("read_uncommitted", "read_committed")]
        for watcher in watchers:
            watcher.start()
            watcher.ready.wait(30)
        print(f"job {job_id} running; producing {args.rate:.0f} readings/s for {args.duration:.0f} s "
              f"({args.devices} devices, overheating every {args.period} readings per device) ...", flush=True)
        completing, warmup_runs = produce(config, topic, args.rate, args.duration, args.devices, args.period,
                                          args.warmup, args.tail, tag, warm=lambda: all(w.records for w in watchers))
        with contextlib.suppress(waiting.WaitTimeout):  # what was not seen by then counts as missed
            waiting.wait_until(lambda: all(len(w.seen) >= len(completing) for w in watchers), timeout_s=args.drain,
                               what="every alert")
        for watcher in watchers:
            watcher.stop.set()
            watcher.join(10)
        interval = config.flink.checkpoint_interval_ms
        print(f"planted overheating runs: {len(completing)}; checkpoint interval: {interval} ms; "
              f"watermark delay: {config.job.watermark_delay_s} s")
        delay_s, interval_s = config.job.watermark_delay_s, interval / 1000
        goals = {"read_uncommitted": delay_s + 1.0, "read_committed": delay_s + interval_s + 1.0}  # issue 12
        p99s: dict[str, float] = {}
        for watcher in watchers:
            latencies = [watcher.seen[key] - sent for key, sent in completing.items() if key in watcher.seen]
            unmatched = len(set(watcher.seen) - set(completing) - warmup_runs)
            if not latencies:
                print(f"  {watcher.isolation:<17}: no alerts seen ({watcher.records} records)")
                continue
            p99s[watcher.isolation] = percentile(latencies, 99)
            print(f"  {watcher.isolation:<17}: {len(latencies):>4} alerts measured "
                  f"(of {len(completing)} planted; {unmatched} unmatched), "
                  f"p50 {percentile(latencies, 50):6.2f} s, p99 {percentile(latencies, 99):6.2f} s, "
                  f"min {min(latencies):5.2f} s, max {max(latencies):5.2f} s, mean {statistics.mean(latencies):5.2f} s")
            print(f"  {'':<17}  p99 / goal ({goals[watcher.isolation]:.1f} s): "
                  f"{p99s[watcher.isolation] / goals[watcher.isolation]:.2f}")
            first_sent = min(completing.values())  # where the tail sits in the run: start-up, or throughout
            worst = sorted(((watcher.seen[key] - sent, sent - first_sent) for key, sent in completing.items()
                            if key in watcher.seen), reverse=True)[:3]
            print(f"  {'':<17}  slowest: " + ", ".join(f"{lat:.1f} s (sent at +{at:.0f} s)" for lat, at in worst))
        if len(p99s) == 2:  # the baseline of the same run: what the transactional commit adds
            print(f"ratio p99 read_committed / read_uncommitted: "
                  f"{p99s['read_committed'] / p99s['read_uncommitted']:.2f} "
                  f"(+{p99s['read_committed'] - p99s['read_uncommitted']:.2f} s)")
    finally:
        for watcher in watchers:
            watcher.stop.set()
        if job_id is not None:
            try:
                jobrunner.cancel(config, job_id)
                print(f"job {job_id} cancelled")
            except jobrunner.JobError as exc:
                print(f"cancel failed: {exc}", file=sys.stderr)
        for svc in reversed(started):
            svc.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
