"""The bridge's run loop: MQTT (paho, MQTT v5, manual acks) in, Kafka (confluent-kafka) out.

Three threads, one job each:
- paho's network thread receives PUBLISH packets and only queues them (so the connection's
  keep-alive never waits on Kafka or the registry);
- the worker (`run`) takes them in arrival order, checks and converts each (`Codec`), and produces the
  telemetry record or the dead letter, keyed by the device id of the topic;
- the delivery thread polls the producer: each successful delivery report confirms a slot of the
  `AckTracker`, whose confirmed prefix is acknowledged to the broker in arrival order. A failed report
  re-produces the record after a pause; nothing is acknowledged before Kafka has it.
A status thread probes Kafka and rewrites the status file (`kappa.bridge.status`).

Why MQTT v5: shared subscriptions are part of the standard, the session expiry is explicit (a
persistent session survives the bridge being down for up to `mqtt.bridge_session_expiry_s`, 7 days by
default, and a retired bridge id does not collect messages for ever), and Receive Maximum lets the bridge bound how many
unacknowledged messages the broker sends it, which bounds the backlog it holds while Kafka is down.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass
from typing import Any, NamedTuple

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from kappa import kafka_clients, waiting
from kappa.bridge import status as status_mod
from kappa.bridge.acks import AckTracker
from kappa.bridge.codec import Codec, RegistryUnavailable
from kappa.bridge.devices import DeviceDirectory, DirectoryUnavailable, registry_loader
from kappa.bridge.payload import Reason, Rejected, device_from_topic
from kappa.config import Config

log = logging.getLogger("kappa.bridge")

RECEIVE_MAXIMUM = 1000  # unacknowledged messages the broker may have out to this bridge at once
RETRY_PAUSE_S = 1.0
KAFKA_PROBE_S = 2.0
BACKLOG_WARN_EVERY_S = 10.0


class Inbound(NamedTuple):  # a tuple: built once per message on paho's thread, so it must be cheap
    generation: int  # which MQTT connection it arrived on
    mid: int
    qos: int
    topic: str
    payload: bytes
    dup: bool
    received_at: float  # time.monotonic() on arrival: the device registry must be read after it


@dataclass(slots=True)
class Outbound:
    slot: int
    topic: str
    key: bytes
    value: bytes
    dead_letter: bool
    received_at: float  # time.monotonic() when the MQTT message arrived: its ack latency starts there
    retry_at: float = 0.0


class FatalKafkaError(RuntimeError):
    """The idempotent producer hit a fatal error: stop without acknowledging (the broker re-sends)."""


class Bridge:
    def __init__(self, config: Config, client_id: str | None = None, codec: Codec | None = None,
                 devices: DeviceDirectory | None = None, receive_maximum: int = RECEIVE_MAXIMUM,
                 producer: Any = None, client: Any = None) -> None:
        """`producer` and `client` are built from the config unless given (unit tests pass fakes)."""
        self.config = config
        self.client_id = client_id or config.mqtt.bridge_client_id
        self.codec = codec or Codec(config)
        self.devices = devices or DeviceDirectory(registry_loader(config))
        self.receive_maximum = receive_maximum
        self.status = status_mod.BridgeStatus(client_id=self.client_id)
        self.status_path = status_mod.status_file(config, self.client_id)
        self.tracker: AckTracker[tuple[int, int, int]] = AckTracker()
        self.inbound: queue.SimpleQueue[Inbound] = queue.SimpleQueue()  # C-implemented: no Condition per put
        self._generation = 0
        self._ack_lock = threading.Lock()  # generation check + PUBACK are one step vs a disconnect
        self._retries: list[Outbound] = []
        self._retry_lock = threading.Lock()
        self._fatal: str | None = None
        self._error_logged: dict[int, float] = {}
        self._stop = threading.Event()
        self.producer = producer if producer is not None else kafka_clients.reliable_producer(
            config, logging.getLogger("kappa.bridge.librdkafka"), role="bridge",
            **{"linger.ms": 5, "error_cb": self._kafka_error},
        )
        self.client = client if client is not None else self._mqtt_client()

    # ---- MQTT -------------------------------------------------------------------------------
    def _mqtt_client(self) -> mqtt.Client:
        from kappa.stack.mosquitto import ca_file  # the stack's CA (written by the mqtt service)

        mq = self.config.mqtt
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=self.client_id,
                             protocol=mqtt.MQTTv5, manual_ack=True)
        client.username_pw_set(mq.bridge_user, self.config.secret(mq.bridge_password_env))
        client.tls_set(ca_certs=str(ca_file(self.config)))
        client.enable_logger(logging.getLogger("kappa.bridge.paho"))
        client.reconnect_delay_set(min_delay=1, max_delay=5)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        return client

    @property
    def subscription(self) -> str:
        mq = self.config.mqtt
        return f"$share/{mq.bridge_share_group}/{mq.topic_prefix}/+/telemetry"

    def _on_connect(self, client: mqtt.Client, _userdata: Any, flags: Any, reason: Any, _props: Any) -> None:
        if reason.is_failure:
            log.error("MQTT broker refused the connection: %s", reason)
            return
        with self._ack_lock:
            self._generation += 1
        client.subscribe(self.subscription, options=SubscribeOptions(qos=1))
        self.status.mqtt_connected = True
        log.info("MQTT connected (session present: %s), subscribed to %s", flags.session_present, self.subscription)

    def _on_disconnect(self, _client: mqtt.Client, _userdata: Any, _flags: Any, reason: Any, _props: Any) -> None:
        with self._ack_lock:
            self._generation += 1
            dropped = self.tracker.reset()  # the broker re-sends these on the next connection
        self.status.mqtt_connected = False
        log.warning("MQTT disconnected (%s); %d unacknowledged message(s) will be re-sent by the broker",
                    reason, dropped)

    def _on_message(self, _client: mqtt.Client, _userdata: Any, msg: mqtt.MQTTMessage) -> None:
        self.inbound.put(Inbound(self._generation, msg.mid, msg.qos, msg.topic, bytes(msg.payload), bool(msg.dup),
                                 time.monotonic()))

    # ---- the worker: check, convert, produce ------------------------------------------------
    def _handle(self, item: Inbound) -> None:
        slot = self.tracker.arrived((item.generation, item.mid, item.qos))
        if item.dup:
            self.status.redeliveries += 1
        device = device_from_topic(item.topic, self.config.mqtt.topic_prefix)
        while not self._stop.is_set():
            try:
                out = self._convert(item, device, slot)
                break
            except (RegistryUnavailable, DirectoryUnavailable) as exc:
                self.status.note = f"waiting: {exc}"
                log.warning("%s; retrying in %.0fs (message stays unacknowledged)", exc, RETRY_PAUSE_S)
                time.sleep(RETRY_PAUSE_S)
        else:
            return
        self.status.note = ""
        self._produce(out)

    def _convert(self, item: Inbound, device: str | None, slot: int) -> Outbound:
        try:
            if device is None:
                raise Rejected(Reason.UNKNOWN_DEVICE, f"topic {item.topic!r} is not a device telemetry topic")
            if not self.config.mqtt.allow_unknown_devices and not self.devices.is_active(device, item.received_at):
                raise Rejected(Reason.UNKNOWN_DEVICE, f"device {device!r} is not an active registered device")
            value = self.codec.telemetry_value(item.payload, device)
            return Outbound(slot, self.codec.telemetry_topic, device.encode(), value, False, item.received_at)
        except Rejected as rejected:
            log.info("dead letter %s from %s: %s", rejected.reason, item.topic, rejected.error)
            value = self.codec.dead_letter_value(item.topic, device, item.payload, rejected)
            return Outbound(slot, self.codec.dlq_topic, (device or "").encode(), value, True, item.received_at)

    def _produce(self, out: Outbound) -> None:
        while True:
            try:
                self.producer.produce(out.topic, key=out.key, value=out.value, on_delivery=self._on_delivery(out))
                return
            except BufferError:  # librdkafka's queue is full (Kafka slow or down): wait for room
                time.sleep(0.05)

    def _on_delivery(self, out: Outbound) -> Any:
        def delivered(err: Any, _msg: Any) -> None:
            if err is None:
                self.tracker.done(out.slot)
                self.status.observe_ack_latency(time.monotonic() - out.received_at)
                if out.dead_letter:
                    self.status.dead_lettered += 1
                else:
                    self.status.forwarded += 1
                return
            self.status.failed_deliveries += 1
            if err.fatal():
                self._fatal = str(err)
                return
            log.error("Kafka delivery to %s failed (%s); producing it again, not acknowledging", out.topic, err)
            out.retry_at = time.monotonic() + RETRY_PAUSE_S
            with self._retry_lock:
                self._retries.append(out)

        return delivered

    # ---- the delivery thread: reports -> in-order PUBACKs --------------------------------------
    def _deliveries(self) -> None:
        while not self._stop.is_set():
            self.producer.poll(0.02)
            self._ack_released()
            self._retry_due()

    def _ack_released(self) -> None:
        with self._ack_lock:
            for generation, mid, qos in self.tracker.release():
                if generation == self._generation and qos > 0:
                    self.client.ack(mid, qos)

    def _retry_due(self) -> None:
        now = time.monotonic()
        with self._retry_lock:
            due = [out for out in self._retries if out.retry_at <= now]
            self._retries = [out for out in self._retries if out.retry_at > now]
        for out in due:
            self._produce(out)

    def _kafka_error(self, err: Any) -> None:
        now = time.monotonic()  # librdkafka repeats connection errors every few ms: once per 10 s each
        if now - self._error_logged.get(err.code(), float("-inf")) >= BACKLOG_WARN_EVERY_S:
            self._error_logged[err.code()] = now
            log.warning("Kafka client: %s", err)
        if err.fatal():
            self._fatal = str(err)

    # ---- status --------------------------------------------------------------------------------
    def _watch(self) -> None:
        last_probe = last_warning = float("-inf")
        while not self._stop.wait(1.0):
            now = time.monotonic()
            if now - last_probe >= KAFKA_PROBE_S:
                last_probe = now
                self.status.kafka_connected = self._kafka_reachable()
            if not self.config.mqtt.allow_unknown_devices:
                self.devices.refresh_if_due()  # here, not on the message path: a reload takes 10-300 ms
            self.status.backlog = self.tracker.pending
            self.status.oldest_unacked_s = round(self.tracker.oldest_age_s(), 1)
            if not self.status.kafka_connected and self.status.backlog and now - last_warning >= BACKLOG_WARN_EVERY_S:
                last_warning = now
                log.warning("Kafka unreachable: not acknowledging; %d MQTT message(s) held unacknowledged "
                            "(oldest %.0fs), the broker keeps them", self.status.backlog,
                            self.status.oldest_unacked_s)
            if not self.status.kafka_connected:
                self.status.note = f"Kafka unreachable, {self.status.backlog} message(s) unacknowledged"
            elif self.status.note.startswith("Kafka unreachable"):
                self.status.note = ""
            status_mod.write(self.status_path, self.status)

    def _kafka_reachable(self) -> bool:
        try:
            self.producer.list_topics(self.codec.telemetry_topic, timeout=KAFKA_PROBE_S)
            return True
        except Exception:  # noqa: BLE001 - any failure means "not reachable now"
            return False

    # ---- life cycle ----------------------------------------------------------------------------
    def stop(self) -> None:
        self._stop.set()

    def run(self) -> int:
        """Bridge until `stop()` (SIGTERM/SIGINT in `__main__`); 3 on a fatal Kafka producer error."""
        while True:
            try:
                self.codec.check_subjects()
                break
            except RegistryUnavailable as exc:
                log.warning("%s; retrying", exc)
                if self._stop.wait(RETRY_PAUSE_S):
                    return 0
        threads = [threading.Thread(target=target, name=name, daemon=True)
                   for name, target in (("deliveries", self._deliveries), ("status", self._watch))]
        for thread in threads:
            thread.start()
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = self.config.mqtt.bridge_session_expiry_s
        props.ReceiveMaximum = self.receive_maximum
        mq = self.config.mqtt
        self.client.connect_async(mq.host, mq.port, keepalive=30, clean_start=False, properties=props)
        self.client.loop_start()
        log.info("bridge %s: %s:%d %s -> Kafka %s (%s, dead letters %s)", self.client_id, mq.host, mq.port,
                 self.subscription, self.config.kafka.bootstrap, self.codec.telemetry_topic, self.codec.dlq_topic)
        try:
            while not self._stop.is_set() and self._fatal is None:
                try:
                    self._handle(self.inbound.get(timeout=0.2))
                except queue.Empty:
                    continue
        finally:
            self._shutdown(threads)
        if self._fatal is not None:
            log.error("fatal Kafka producer error: %s; stopping without acknowledging what is pending", self._fatal)
            return 3
        return 0

    def _shutdown(self, threads: list[threading.Thread]) -> None:
        """Give Kafka a moment to confirm what is in flight, ack that, then leave the session as it is."""
        deadline = waiting.Deadline(10)
        while len(self.producer) and not deadline.passed and self._fatal is None:
            self.producer.poll(0.1)
            self._ack_released()
        self._ack_released()
        self._stop.set()
        for thread in threads:
            thread.join(timeout=5)
        self.client.disconnect()
        self.client.loop_stop()
        self.status.mqtt_connected = self.status.kafka_connected = False
        self.status.note = "stopped"
        status_mod.write(self.status_path, self.status)
        log.info("bridge stopped: %d forwarded, %d dead letters, %d unacknowledged left to the broker",
                 self.status.forwarded, self.status.dead_lettered, self.tracker.pending)
