"""In-order acknowledgement and 'never ack a failed delivery', with a fake producer and MQTT client."""

from __future__ import annotations

from typing import Any

import pytest

from kappa.bridge.acks import AckTracker
from kappa.bridge.runtime import Bridge, Inbound
from kappa.config import load_config

pytestmark = pytest.mark.unit


def test_out_of_order_confirmations_release_in_arrival_order() -> None:
    tracker: AckTracker[str] = AckTracker()
    slots = [tracker.arrived(name) for name in "abcde"]
    for slot in (slots[3], slots[1], slots[4]):
        tracker.done(slot)
    assert tracker.release() == []  # "a" is not confirmed: nothing may be acknowledged
    tracker.done(slots[0])
    assert tracker.release() == ["a", "b"]
    tracker.done(slots[2])
    assert tracker.release() == ["c", "d", "e"]
    assert tracker.pending == 0


def test_reset_forgets_pending_and_ignores_their_late_confirmations() -> None:
    tracker: AckTracker[str] = AckTracker()
    old = tracker.arrived("old")
    assert tracker.reset() == 1
    new = tracker.arrived("new")
    tracker.done(old)
    assert tracker.release() == []
    tracker.done(new)
    assert tracker.release() == ["new"]


class FakeError:
    def __init__(self, fatal: bool = False) -> None:
        self._fatal = fatal

    def fatal(self) -> bool:
        return self._fatal

    def __str__(self) -> str:
        return "broker down"


class FakeProducer:
    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes, bytes, Any]] = []

    def produce(self, topic: str, key: bytes, value: bytes, on_delivery: Any) -> None:
        self.sent.append((topic, key, value, on_delivery))

    def poll(self, _timeout: float) -> int:
        return 0

    def __len__(self) -> int:
        return 0


class FakeClient:
    def __init__(self) -> None:
        self.acks: list[int] = []

    def ack(self, mid: int, qos: int) -> None:
        self.acks.append(mid)


class FakeCodec:
    telemetry_topic = "telemetry"
    dlq_topic = "edge-dlq"

    def telemetry_value(self, raw: bytes, device_id: str) -> bytes:
        return raw


class EveryDevice:
    def is_active(self, _device: str, _received_at: float | None = None) -> bool:
        return True


@pytest.fixture()
def bridge() -> Bridge:
    config = load_config(profile="test")
    return Bridge(config, codec=FakeCodec(), devices=EveryDevice(), producer=FakeProducer(),  # type: ignore[arg-type]
                  client=FakeClient())


def message(bridge: Bridge, mid: int) -> Inbound:
    return Inbound(bridge._generation, mid, 1, f"devices/dev-{mid}/telemetry", b"%d" % mid, dup=False,
                   received_at=0.0)


def test_acks_follow_arrival_order_whatever_kafka_confirms_first(bridge: Bridge) -> None:
    for mid in (11, 12, 13):
        bridge._handle(message(bridge, mid))
    producer, client = bridge.producer, bridge.client
    assert [key for _, key, _, _ in producer.sent] == [b"dev-11", b"dev-12", b"dev-13"]  # key from the topic
    producer.sent[2][3](None, None)
    producer.sent[1][3](None, None)
    bridge._ack_released()
    assert client.acks == []
    producer.sent[0][3](None, None)
    bridge._ack_released()
    assert client.acks == [11, 12, 13]


def test_a_failed_delivery_is_produced_again_and_never_acked_before_success(bridge: Bridge) -> None:
    bridge._handle(message(bridge, 21))
    producer, client = bridge.producer, bridge.client
    producer.sent[0][3](FakeError(), None)
    bridge._ack_released()
    assert client.acks == [] and bridge.status.failed_deliveries == 1
    for out in bridge._retries:
        out.retry_at = 0.0
    bridge._retry_due()
    assert len(producer.sent) == 2 and producer.sent[1][2] == b"21"  # the same record again
    bridge._ack_released()
    assert client.acks == []
    producer.sent[1][3](None, None)
    bridge._ack_released()
    assert client.acks == [21]


def test_acks_of_a_lost_connection_are_never_sent(bridge: Bridge) -> None:
    """After a reconnect the broker re-sends unacked messages and may reuse their packet ids."""
    bridge._handle(message(bridge, 31))
    bridge._on_disconnect(bridge.client, None, None, "lost", None)
    bridge.producer.sent[0][3](None, None)
    bridge._ack_released()
    assert bridge.client.acks == []


def test_a_fatal_producer_error_acks_nothing(bridge: Bridge) -> None:
    bridge._handle(message(bridge, 41))
    bridge.producer.sent[0][3](FakeError(fatal=True), None)
    bridge._ack_released()
    assert bridge.client.acks == [] and bridge._fatal is not None


class NoDevice:
    def is_active(self, _device: str, _received_at: float | None = None) -> bool:
        return False


class DeadLetterCodec(FakeCodec):
    def dead_letter_value(self, topic: str, device: str | None, raw: bytes, rejected: Any) -> bytes:
        return f"{rejected.reason}".encode()


@pytest.mark.parametrize("allow_unknown, topic", [(False, "edge-dlq"), (True, "telemetry")])
def test_unknown_devices_are_dead_lettered_unless_discovery_allows_them(allow_unknown: bool, topic: str) -> None:
    config = load_config(profile="test", environ={"KAPPA_MQTT__ALLOW_UNKNOWN_DEVICES": str(allow_unknown).lower()})
    bridge = Bridge(config, codec=DeadLetterCodec(), devices=NoDevice(), producer=FakeProducer(),  # type: ignore[arg-type]
                    client=FakeClient())
    bridge._handle(message(bridge, 7))
    sent_topic, key, value, _ = bridge.producer.sent[0]  # type: ignore[attr-defined]
    assert (sent_topic, key) == (topic, b"dev-7")
    assert value == (b"7" if allow_unknown else b"UNKNOWN_DEVICE")
