"""MQTT test clients for the stack's broker: a subscriber that collects, a publisher that waits for PUBACKs."""

from __future__ import annotations

import threading
import time
import uuid

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from kappa import waiting
from kappa.config import Config
from kappa.stack.mosquitto import client


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def bridge_password(config: Config) -> str:
    return config.secret(config.mqtt.bridge_password_env)


def share_filter(config: Config, group: str) -> str:
    """The bridge's subscription: shared, over every device's telemetry topic. Tests use their own group so
    that a running bridge (same user, configured group) does not take a share of their messages."""
    return f"$share/{group}/{config.mqtt.topic_prefix}/+/telemetry"


class Session:
    """One connected client (loop thread running); records messages, PUBACK reasons and disconnects."""

    def __init__(self, config: Config, username: str | None, password: str | None, *, client_id: str = "",
                 protocol: int = mqtt.MQTTv311, clean: bool = True, session_expiry_s: int = 0,
                 max_inflight: int = 20) -> None:
        self.client = client(config, username, password, client_id=client_id or unique("test"),
                             protocol=protocol, clean=clean)
        self.client.max_inflight_messages_set(max_inflight)
        self.messages: list[mqtt.MQTTMessage] = []
        self.pubacks: dict[int, str] = {}
        self.connack: list[str] = []
        self.suback: list[list[str]] = []
        self._lock = threading.Lock()
        self.client.on_connect = lambda _c, _u, _f, reason, _p: self.connack.append(str(reason))
        self.client.on_message = self._on_message
        self.client.on_publish = self._on_publish
        self.client.on_subscribe = lambda _c, _u, _mid, codes, _p: self.suback.append([str(c) for c in codes])
        connect_kwargs: dict[str, object] = {}
        if protocol == mqtt.MQTTv5:
            props = Properties(PacketTypes.CONNECT)
            props.SessionExpiryInterval = session_expiry_s
            connect_kwargs = {"clean_start": clean, "properties": props}
        self.client.connect(config.mqtt.host, config.mqtt.port, keepalive=30, **connect_kwargs)  # type: ignore[arg-type]
        self.client.loop_start()
        wait_for(lambda: bool(self.connack), "CONNACK")

    def _on_message(self, _c: mqtt.Client, _u: object, message: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.messages.append(message)

    def _on_publish(self, _c: mqtt.Client, _u: object, mid: int, reason: object, _p: object) -> None:
        with self._lock:
            self.pubacks[mid] = str(reason)

    @property
    def accepted(self) -> bool:
        return self.connack[0] == "Success"

    def subscribe(self, topic: str) -> None:
        count = len(self.suback)
        self.client.subscribe(topic, qos=1)
        wait_for(lambda: len(self.suback) > count, "SUBACK")

    def publish(self, topic: str, payloads: list[bytes]) -> list[str]:
        """Publish at QoS 1 and wait for every PUBACK; returns their reason strings, in order.
        PUBACKs are matched by message id, which wraps at 65535: keep a session's total below that."""
        mids = [self.client.publish(topic, payload, qos=1).mid for payload in payloads]
        wait_for(lambda: all(mid in self.pubacks for mid in mids), f"{len(mids)} PUBACKs")
        return [self.pubacks[mid] for mid in mids]

    def payloads(self) -> list[bytes]:
        with self._lock:
            return [m.payload for m in self.messages]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def wait_for(check: object, what: str, timeout_s: float = 20.0) -> None:
    waiting.wait_until(check, timeout_s=timeout_s, interval_s=0.05, what=what,  # type: ignore[arg-type]
                       on_timeout=lambda _: AssertionError(f"timed out waiting for {what}"))


def settle(session: Session, idle_s: float = 1.0, timeout_s: float = 30.0) -> list[bytes]:
    """Payloads a subscriber got once nothing new arrived for `idle_s` (for asserting what did NOT come)."""
    deadline = waiting.Deadline(timeout_s)
    seen, quiet_since = -1, time.monotonic()
    while not deadline.passed:
        count = len(session.messages)
        if count != seen:
            seen, quiet_since = count, time.monotonic()
        elif time.monotonic() - quiet_since >= idle_s:
            break
        time.sleep(0.05)
    return session.payloads()
