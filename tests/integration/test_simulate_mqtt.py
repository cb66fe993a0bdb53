"""The fleet through the edge (`kappa simulate --via mqtt`): each simulated device registered with its own
password, publishing over TLS at QoS 1, two of them offline for a while and then sending their backlog,
a reconnect storm, and one payload of each bad kind. Everything published is either forwarded to Kafka or
dead-lettered by the bridge with its reason, and the aggregation job over what was forwarded equals
Python's computation of what the devices published."""

from __future__ import annotations

from collections import Counter

import pytest

from kappa.bridge import audit
from kappa.config import Config
from kappa.simulate import Category, SimulationSpec, simulate
from kappa.simulate.model import EDGE_MALFORMED_KINDS
from kappa.stack import kafka_setup
from tests.integration.aggregate_support import assert_matches_python
from tests.integration.bridge_support import TopicReader
from tests.integration.kafka_support import copy_new_records, end_offsets
from tests.integration.scratch import Names, run_bounded, versioned_outputs

pytestmark = pytest.mark.integration


def test_fleet_through_the_edge_is_accounted_for_and_aggregates_match(migrated: Config) -> None:
    config = migrated
    telemetry, dlq = config.kafka.telemetry_topic, config.kafka.edge_dead_letter_topic
    kafka_setup.ensure_topics(config, [telemetry, dlq])  # the bridge may not have written anything yet
    before = end_offsets(config, telemetry)
    before_count, before_dlq = audit.record_count(config, telemetry), audit.record_count(config, dlq)

    spec = SimulationSpec(devices=12, sites=3, readings_per_device=60, seed=31, out_of_order=0.05, late=0.03,
                          duplicates=0.04, malformed=1, v1_fraction=0.3, via="mqtt", offline_devices=2,
                          offline_s=150, reconnect_storms=2)
    manifest = simulate(config, spec, produce=True, log=print)
    counts = manifest.data["counts"]
    assert manifest.data["edge"]["storms"] == 2 and manifest.data["edge"]["offline_disconnects"] >= 2
    assert counts["backlog"] > 0 and counts["rejected_at_edge"] == len(EDGE_MALFORMED_KINDS) - 1
    forwarded = counts["total"] - counts["rejected_at_edge"]
    wanted = {telemetry: before_count + forwarded, dlq: before_dlq + counts["rejected_at_edge"]}
    got = audit.wait_for_counts(config, wanted, timeout_s=180)
    assert got == wanted, got

    # the bridge's dead letters for this fleet: one per edge kind, with the reason the manifest expects
    ours = {d.encode() for d in manifest.data["per_device"]}
    reasons = Counter(record["reason"] for _, record in TopicReader(config).records(dlq, lambda k: k in ours))
    expected_reasons = {r.reason: 1 for r in manifest.records if r.rejected_at == "edge"}
    assert reasons == Counter(expected_reasons), reasons

    # the aggregation job over exactly what the bridge forwarded for this run equals Python's computation
    names = Names.new("edge")
    topic, suffix = names.topic, versioned_outputs(config, names.suffix)
    assert copy_new_records(config, telemetry, before, topic) == forwarded
    run_bounded(config, "aggregate", topic, suffix)
    books = assert_matches_python(config, suffix, manifest, topic)
    assert books.dead_letters == counts["rejected_by_jobs"] == 1  # the far-future reading: FUTURE_EVENT_TIME
    assert any(r.category is Category.LATE and r.backlog for r in manifest.records)
