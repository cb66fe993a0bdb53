"""Nothing is lost through the edge: 50 devices x 500 readings at QoS 1 through Mosquitto and the
bridge while the bridge is SIGKILLed twice and the Kafka broker is restarted once; every published
(device_id, seq) is in the telemetry topic afterwards (at least once), keyed by its device, and the
aggregation job over what the bridge forwarded equals Python's computation of what was published."""

from __future__ import annotations

import threading
import time
from collections import Counter

import pytest

from kappa import expected
from kappa.bridge import status
from kappa.config import Config
from kappa.stack import manager
from tests.integration.aggregate_support import assert_windows_equal_python
from tests.integration.bridge_support import Device, TopicReader, provision, reading, wait_until
from tests.integration.kafka_support import copy_new_records, end_offsets
from tests.integration.scratch import Names, run_bounded, versioned_outputs

pytestmark = [pytest.mark.integration, pytest.mark.slow]

DEVICES = 50
READINGS = 500
RATE_PER_S = 1000  # the whole fleet; the run lasts READINGS * DEVICES / RATE_PER_S seconds


@pytest.fixture(scope="module")
def bridge(migrated: Config) -> Config:
    """The stack's own bridge service, reading the device registry of the migrated database."""
    return migrated


class Fleet(threading.Thread):
    """Publishes round after round (every device's next seq), paced, counting what was handed to paho."""

    def __init__(self, devices: list[Device]) -> None:
        super().__init__(daemon=True)
        self.devices = devices
        self.published = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            started = time.monotonic()
            for seq in range(READINGS):
                for device in self.devices:
                    device.publish(reading(device.device_id, seq))
                    self.published += 1
                ahead = started + self.published / RATE_PER_S - time.monotonic()
                if ahead > 0:
                    time.sleep(ahead)
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            self.error = exc

    def reach(self, fraction: float) -> None:
        wait_until(lambda: self.published >= fraction * DEVICES * READINGS or not self.is_alive(),
                   f"{fraction:.0%} published", 120)


def test_every_reading_survives_bridge_kills_and_a_kafka_restart(bridge: Config) -> None:
    config = bridge
    credentials = provision(config, DEVICES)
    devices = [Device(config, device_id, password) for device_id, password in credentials.items()]
    bridge_service, kafka = manager.service(config, "bridge"), manager.service(config, "kafka")
    before = end_offsets(config, config.kafka.telemetry_topic)
    fleet = Fleet(devices)
    fleet.start()
    try:
        fleet.reach(0.2)
        assert bridge_service.process.kill9() is not None  # 1st crash, mid-stream
        time.sleep(1.0)  # readings keep coming: the broker queues them for the bridge's session
        bridge_service.start()

        fleet.reach(0.45)
        kafka.stop()
        def backlog_reported() -> bool:
            current = status.read(status.status_file(config))
            return current is not None and not current.kafka_connected and current.backlog > 0
        wait_until(backlog_reported, "the bridge's status to report Kafka down with a backlog", 30)
        kafka.start()

        fleet.reach(0.7)
        assert bridge_service.process.kill9() is not None  # 2nd crash, while it catches up
        time.sleep(1.0)
        bridge_service.start()
        fleet.join()
        assert fleet.error is None, fleet.error
        for device in devices:
            device.wait_acked()
    finally:
        for device in devices:
            device.close()
    assert "Kafka unreachable: not acknowledging" in bridge_service.process.tail(100_000)

    published = {(device_id, seq) for device_id in credentials for seq in range(READINGS)}
    reader = TopicReader(config)
    ours = {device_id.encode() for device_id in credentials}
    seen: Counter[tuple[str, int]] = Counter()

    def everything_arrived() -> bool:
        seen.clear()
        for key, record in reader.records(config.kafka.telemetry_topic, lambda k: k in ours):
            assert key == record["device_id"].encode()  # keyed by the device of the topic
            seen[(record["device_id"], record["seq"])] += 1
        return published <= set(seen)

    wait_until(everything_arrived, "every published reading in Kafka", 300)
    assert set(seen) == published
    duplicates = sum(seen.values()) - len(published)
    print(f"{len(published)} readings published, {sum(seen.values())} records in Kafka ({duplicates} re-sent copies)")
    assert reader.records(config.kafka.edge_dead_letter_topic, lambda k: k in ours) == []

    # the aggregation job over exactly what the bridge forwarded for this fleet (re-sent copies included)
    names = Names.new("noloss")
    topic, suffix = names.topic, versioned_outputs(config, names.suffix)
    assert copy_new_records(config, config.kafka.telemetry_topic, before, topic, lambda k: k in ours) == sum(
        seen.values())
    run_bounded(config, "aggregate", topic, suffix)
    readings = [expected.Reading(d, "site-a", "thermal", seq, doc["event_time"], doc)
                for d, seq in sorted(published) for doc in [reading(d, seq)]]
    books = assert_windows_equal_python(config, suffix, topic, readings, seen)
    assert books.dead_letters == 0 and books.duplicates + books.late >= duplicates, books
