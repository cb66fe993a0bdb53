"""MQTT -> Kafka bridge: throughput against a plain confluent-kafka producer, and latency at a steady rate.

Throughput: `--messages` JSON readings from `--devices` registered devices (each with its own password)
are queued in the bridge's persistent session while it is stopped; then the bridge (`python -m
kappa.bridge`, a subprocess, acks=all + idempotence, PUBACK only after Kafka's report) drains them.
Rate = messages / (last - first broker append time, the topic uses LogAppendTime). Baseline, same
run: a plain confluent-kafka producer (same acks/idempotence) sends the same readings as Avro records
through `AvroSerializer` to a twin topic; rate = messages / (first produce -> flush done).
Latency: the devices publish at a steady `--rate` for `--seconds`; latency = broker append time of the
record - wall time just before the device's publish call (same machine clock). Prints p50/p99.
The bench removes its bridge session at the end: a bridge session lives for
mqtt.bridge_session_expiry_s (7 days), so one left behind gets a copy of every later device message,
and Mosquitto's periodic save of its (then growing) persistence file stalls the whole broker for
seconds. The size of that file is printed first, since it explains a bad p99 better than anything in the bridge.

    .venv/bin/python bench/bridge_throughput.py [--messages 50000] [--devices 20] [--rate 1000] [--seconds 30]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
import warnings

from confluent_kafka import TopicPartition
from confluent_kafka.admin import NewTopic

from kappa import kafka_clients, waiting
from kappa.bridge import status
from kappa.config import Config, get_config
from kappa.db import migrate
from kappa.devices import admin as device_admin
from kappa.devices.model import parse_csv
from kappa.registry import READ, WRITE, client_conf
from kappa.schemas import default_root
from kappa.stack import manager
from kappa.stack.mosquitto import MosquittoService
from kappa.stack.mosquitto import client as broker_client
from kappa.stack.postgres import connect

with warnings.catch_warnings(record=True):
    from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
    from confluent_kafka.schema_registry.avro import AvroSerializer
    from confluent_kafka.serialization import MessageField, SerializationContext


def reading(device_id: str, seq: int) -> dict:
    return {"device_id": device_id, "site_id": "bench", "device_type": "thermal", "seq": seq,
            "event_time": 1_767_225_600_000 + seq * 1000, "status": "OK", "firmware_version": "1.0.0",
            "temperature_c": 20.0 + seq % 13, "battery_pct": 80.0, "signal_rssi_dbm": -70}


def create_topic(config: Config, topic: str) -> None:
    admin = kafka_clients.admin(config)
    new = NewTopic(topic, config.kafka.partitions, config.kafka.replication_factor,
                   config={"message.timestamp.type": "LogAppendTime"})
    admin.create_topics([new])[topic].result(30)


def register(config: Config, topic: str, schema_file: str) -> None:
    client = SchemaRegistryClient(client_conf(config, WRITE))
    client.register_schema(f"{topic}-value", Schema((default_root(config.root) / schema_file).read_text(), "AVRO"))


def append_times(config: Config, topic: str, expected: int, timeout_s: float = 600) -> dict[bytes, int]:
    """Broker append time (ms) of each record's value, once `expected` records are in `topic`."""
    consumer = kafka_clients.consumer(config, f"bench-{uuid.uuid4().hex}", **{"enable.auto.commit": False})
    consumer.assign([TopicPartition(topic, p, 0) for p in range(config.kafka.partitions)])
    seen: dict[bytes, int] = {}
    deadline = waiting.Deadline(timeout_s)
    try:
        while len(seen) < expected and not deadline.passed:
            for message in consumer.consume(1000, 0.5):
                if not message.error():
                    seen[message.value()] = message.timestamp()[1]
    finally:
        consumer.close()
    if len(seen) < expected:
        raise RuntimeError(f"only {len(seen)} of {expected} records reached {topic}")
    return seen


def forget_session(config: Config, client_id: str) -> None:
    """End the bridge session `client_id` on the broker (clean start, expiry 0) so nothing queues for it."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    c = broker_client(config, config.mqtt.bridge_user, config.secret(config.mqtt.bridge_password_env),
                      client_id=client_id, protocol=mqtt.MQTTv5)
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = 0
    c.connect(config.mqtt.host, config.mqtt.port, keepalive=30, clean_start=True, properties=props)
    c.loop_start()
    time.sleep(0.5)
    c.disconnect()
    c.loop_stop()


def broker_db_mb(config: Config) -> float:
    db = config.data_dir / MosquittoService.name / "mosquitto.db"
    return db.stat().st_size / 1e6 if db.exists() else 0.0


class BridgeProcess:
    def __init__(self, config: Config, tag: str) -> None:
        self.config, self.tag = config, tag
        self.env = {**os.environ, "KAPPA_PROFILE": config.profile, "KAPPA_KAFKA__TELEMETRY_TOPIC": tag,
                    "KAPPA_KAFKA__EDGE_DEAD_LETTER_TOPIC": f"{tag}-dlq", "KAPPA_MQTT__BRIDGE_SHARE_GROUP": tag}
        self.log = config.data_dir / "logs" / f"{tag}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "kappa.bridge", "--client-id", self.tag],
                                         env=self.env, stdout=log, stderr=subprocess.STDOUT, cwd=self.config.root)
        proc = self.proc

        def ready() -> bool:
            current = status.read(status.status_file(self.config, self.tag))
            return current is not None and current.pid == proc.pid and current.ready

        waiting.wait_until(ready, timeout_s=60, interval_s=0.2, what="the bench bridge",
                           on_timeout=lambda _: RuntimeError(f"bench bridge not ready; see {self.log}"))

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(30)
            self.proc = None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=50_000)
    parser.add_argument("--devices", type=int, default=20)
    parser.add_argument("--rate", type=int, default=1000, help="messages/s of the latency run")
    parser.add_argument("--seconds", type=int, default=30, help="length of the latency run")
    args = parser.parse_args()
    config = get_config()
    started = manager.up(config, only=["postgres", "mqtt", "kafka", "registry"])
    print(f"broker persistence file at start: {broker_db_mb(config):.1f} MB (saved every few seconds; "
          "a large one means sessions left behind, and stalls)", flush=True)
    tag = f"bench-bridge-{uuid.uuid4().hex[:6]}"
    bridge = BridgeProcess(config, tag)
    clients = []
    try:
        with connect(config) as conn:
            migrate(conn)
            csv = "device_id,site_id,device_type\n" + "".join(f"{tag}-{i},bench,thermal\n" for i in range(args.devices))
            with contextlib.redirect_stdout(io.StringIO()):
                passwords = dict(device_admin.add(config, conn, parse_csv(csv, config.mqtt.bridge_user)))
        for topic in (tag, f"{tag}-base", f"{tag}-dlq"):
            create_topic(config, topic)
        for topic in (tag, f"{tag}-base"):
            register(config, topic, "telemetry/v2.avsc")
        register(config, f"{tag}-dlq", "dead_letters/v1.avsc")
        time.sleep(1)  # the broker reloads its password file
        for device_id, password in passwords.items():
            c = broker_client(config, device_id, password, client_id=device_id)
            c.max_queued_messages_set(0)
            c.connect(config.mqtt.host, config.mqtt.port, keepalive=30)
            c.loop_start()
            clients.append((device_id, c))
        per_device = args.messages // args.devices
        total = per_device * args.devices

        # ---- throughput: a queued backlog drained by the bridge -------------------------------
        bridge.start()  # creates the persistent session and its subscription
        bridge.stop()
        print(f"queueing {total} readings from {args.devices} devices while the bridge is stopped ...", flush=True)
        infos = [c.publish(config.mqtt.device_topic(d), json.dumps(reading(d, s)), qos=1)
                 for s in range(per_device) for d, c in clients]
        for info in infos:
            info.wait_for_publish(120)
        bridge.start()
        times = append_times(config, tag, total)
        bridge_rate = total / max(1e-3, (max(times.values()) - min(times.values())) / 1000)

        # ---- baseline: a plain producer, same records, same settings --------------------------
        serializer = AvroSerializer(SchemaRegistryClient(client_conf(config, READ)), None,
                                    conf={"auto.register.schemas": False, "use.latest.version": True})
        ctx = SerializationContext(f"{tag}-base", MessageField.VALUE)
        records = [(d, reading(d, s)) for s in range(per_device) for d, _ in clients]
        producer = kafka_clients.reliable_producer(config, **{"linger.ms": 5})
        t0 = time.monotonic()
        for device_id, record in records:
            while True:
                try:
                    producer.produce(f"{tag}-base", key=device_id.encode(), value=serializer(record, ctx))
                    break
                except BufferError:
                    producer.poll(0.05)
            producer.poll(0)
        producer.flush(120)
        base_rate = total / (time.monotonic() - t0)

        # ---- latency at a steady rate -----------------------------------------------------------
        print(f"latency run: {args.rate} msg/s for {args.seconds} s ...", flush=True)
        sent: dict[bytes, float] = {}
        count = args.rate * args.seconds
        t0 = time.time()
        for i in range(count):
            device_id, c = clients[i % len(clients)]
            payload = json.dumps(reading(device_id, per_device + i // len(clients))).encode()
            ahead = t0 + i / args.rate - time.time()
            if ahead > 0:
                time.sleep(ahead)
            sent[payload] = time.time() * 1000
            c.publish(config.mqtt.device_topic(device_id), payload, qos=1)
        appended = append_times(config, tag, total + count)
        # the bridge forwards JSON re-encoded as Avro: match by (device, seq) through the value bytes
        by_value = _by_device_seq(appended, config)
        latencies = sorted(by_value[(json.loads(p)["device_id"], json.loads(p)["seq"])] - ts
                           for p, ts in sent.items())
        p50, p99 = statistics.quantiles(latencies, n=100)[49], statistics.quantiles(latencies, n=100)[98]

        print(f"bridge (MQTT -> Kafka, acked)  : {bridge_rate:>9,.0f} msg/s  ({total} queued readings drained)")
        print(f"plain producer (Avro, acks=all): {base_rate:>9,.0f} msg/s")
        print(f"ratio bridge / plain producer  : {bridge_rate / base_rate:.2f}  (goal >= 0.5)")
        print(f"publish -> Kafka append at {args.rate} msg/s: p50 {p50:.1f} ms, p99 {p99:.1f} ms "
              f"({len(latencies)} readings)")
    finally:
        bridge.stop()
        with contextlib.suppress(Exception):
            forget_session(config, tag)
        for _, c in clients:
            c.disconnect()
            c.loop_stop()
        with connect(config) as conn:
            for device_id in [f"{tag}-{i}" for i in range(args.devices)]:
                with contextlib.suppress(Exception):
                    device_admin.decommission(config, conn, device_id)
        for svc in reversed(started):
            svc.stop()
    return 0


def _by_device_seq(appended: dict[bytes, int], config: Config) -> dict[tuple[str, int], int]:
    import fastavro

    schema = fastavro.parse_schema(json.loads((default_root(config.root) / "telemetry/v2.avsc").read_text()))
    out: dict[tuple[str, int], int] = {}
    for value, ts in appended.items():
        record = fastavro.schemaless_reader(io.BytesIO(value[5:]), schema, schema)
        out[(record["device_id"], record["seq"])] = ts  # type: ignore[index, call-overload]
    return out


if __name__ == "__main__":
    sys.exit(main())
