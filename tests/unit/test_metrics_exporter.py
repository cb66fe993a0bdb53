"""The project's exporter: metric families from lag, bridge status files, failing sources; the
Prometheus config the stack renders. Kafka and PostgreSQL are exercised in tests/integration/test_metrics.py."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from kappa.bridge import status as bridge_status
from kappa.config import load_config
from kappa.metrics import names
from kappa.metrics.exporter import PipelineCollector, bridge_families, lag_families
from kappa.metrics.lag import PartitionLag
from kappa.stack.monitoring import render_prometheus_config, scrape_targets

pytestmark = pytest.mark.unit


def _samples(families: list) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value for f in families for s in f.samples}


def test_lag_in_records_never_negative_and_counts_from_zero_before_a_commit() -> None:
    lags = [PartitionLag("kappa-aggregate", "telemetry", 0, 40, 100, 12.5),
            PartitionLag("kappa-aggregate", "telemetry", 1, -1001, 7, 0.0),  # nothing committed yet
            PartitionLag("kappa-alerts", "telemetry", 0, 100, 100, 0.0)]
    samples = _samples(lag_families(lags))
    key = (("group", "kappa-aggregate"), ("partition", "0"), ("topic", "telemetry"))
    assert samples[(names.CONSUMER_LAG_RECORDS.name, key)] == 60
    assert samples[(names.CONSUMER_LAG_SECONDS.name, key)] == 12.5
    assert samples[(names.CONSUMER_LAG_RECORDS.name,
                    (("group", "kappa-aggregate"), ("partition", "1"), ("topic", "telemetry")))] == 7
    assert samples[(names.CONSUMER_LAG_RECORDS.name,
                    (("group", "kappa-alerts"), ("partition", "0"), ("topic", "telemetry")))] == 0


def test_bridge_status_files_become_metrics_and_a_stale_one_means_down(tmp_path: Path) -> None:
    live = bridge_status.BridgeStatus(client_id="b1", mqtt_connected=True, kafka_connected=True, backlog=3,
                                      oldest_unacked_s=0.5, forwarded=120, dead_lettered=2)
    for seconds in (0.004, 0.007, 0.007, 0.2, 45.0):
        live.observe_ack_latency(seconds)
    bridge_status.write(tmp_path / "b1.status.json", live)
    stale = bridge_status.BridgeStatus(client_id="b2", mqtt_connected=True, kafka_connected=True, forwarded=9)
    bridge_status.write(tmp_path / "b2.status.json", stale)
    data = json.loads((tmp_path / "b2.status.json").read_text())
    data["updated_at"] = time.time() - 3600
    (tmp_path / "b2.status.json").write_text(json.dumps(data))
    samples = _samples(bridge_families(tmp_path))
    assert samples[(names.BRIDGE_UP.name, (("client_id", "b1"),))] == 1
    assert samples[(names.BRIDGE_BACKLOG.name, (("client_id", "b1"),))] == 3
    assert samples[(names.BRIDGE_FORWARDED.name, (("client_id", "b1"),))] == 120
    assert samples[(names.BRIDGE_DEAD_LETTERED.name, (("client_id", "b1"),))] == 2
    buckets = {labels: value for (name, labels), value in samples.items()
               if name == names.BRIDGE_ACK_LATENCY.name + "_bucket" and ("client_id", "b1") in labels}
    assert buckets[(("client_id", "b1"), ("le", "0.005"))] == 1
    assert buckets[(("client_id", "b1"), ("le", "0.01"))] == 3
    assert buckets[(("client_id", "b1"), ("le", "0.25"))] == 4
    assert buckets[(("client_id", "b1"), ("le", "30.0"))] == 4
    assert buckets[(("client_id", "b1"), ("le", "+Inf"))] == 5
    assert samples[(names.BRIDGE_ACK_LATENCY.name + "_count", (("client_id", "b1"),))] == 5
    assert abs(samples[(names.BRIDGE_ACK_LATENCY.name + "_sum", (("client_id", "b1"),))] - 45.218) < 1e-9
    assert samples[(names.BRIDGE_UP.name, (("client_id", "b2"),))] == 0
    assert (names.BRIDGE_FORWARDED.name, (("client_id", "b2"),)) not in samples  # no stale numbers


def test_a_failing_source_is_reported_and_the_others_still_served() -> None:
    def broken() -> list:
        raise ConnectionError("postgres is down")

    registry = CollectorRegistry()
    registry.register(PipelineCollector({
        "kafka": lambda: lag_families([PartitionLag("kappa-aggregate", "telemetry", 0, 5, 8, 1.0)]),
        "postgres": broken}))
    text = generate_latest(registry).decode()
    assert 'kappa_exporter_errors{source="postgres"} 1.0' in text
    assert 'kappa_exporter_errors{source="kafka"} 0.0' in text
    assert 'kappa_consumer_lag_records{group="kappa-aggregate",partition="0",topic="telemetry"} 3.0' in text
    assert "kappa_pipeline_records" not in text  # missing, not a healthy-looking zero


def test_prometheus_config_scrapes_every_target_on_the_loopback() -> None:
    config = load_config(profile="test", environ={})
    rendered = render_prometheus_config(config)
    document = json.loads(rendered.split("\n", 1)[1])  # after the generated-by comment
    jobs = {job["job_name"]: job for job in document["scrape_configs"]}
    assert set(jobs) == {"prometheus", "flink", "postgres", "kappa"}
    assert jobs["flink"]["honor_labels"] is True
    for name, target in scrape_targets(config).items():
        assert jobs[name]["static_configs"] == [{"targets": [target]}]
        assert target.startswith("127.0.0.1:")
    assert document["rule_files"][0].endswith("deploy/prometheus/rules/*.yml")


class _FakeMessage:
    def __init__(self, topic: str, partition: int, value: bytes, timestamp_ms: int) -> None:
        self._t, self._p, self._v, self._ts = topic, partition, value, timestamp_ms

    def topic(self) -> str:
        return self._t

    def partition(self) -> int:
        return self._p

    def value(self) -> bytes:
        return self._v

    def timestamp(self) -> tuple[int, int]:
        return 1, self._ts

    def error(self) -> None:
        return None


class _FakeConsumer:
    """Partitions as {(topic, partition): {offset: event time s}}; a gap at the end is a commit marker."""

    def __init__(self, logs: dict[tuple[str, int], dict[int, int]], ends: dict[tuple[str, int], int]) -> None:
        self.logs, self.ends, self.assignments, self._queue = logs, ends, [], []

    def assign(self, tps: list) -> None:
        self.assignments.append(sorted((tp.topic, tp.partition, tp.offset) for tp in tps))
        self._queue = []
        for tp in tps:
            later = sorted(o for o in self.logs[(tp.topic, tp.partition)] if o >= tp.offset)
            if later:
                event_s = self.logs[(tp.topic, tp.partition)][later[0]]
                self._queue.append(_FakeMessage(tp.topic, tp.partition, str(event_s).encode(), 0))

    def unassign(self) -> None:
        self._queue = []

    def poll(self, timeout: float) -> _FakeMessage | None:
        return self._queue.pop(0) if self._queue else None

    def get_watermark_offsets(self, tp: Any, timeout: float) -> tuple[int, int]:
        return 0, self.ends[(tp.topic, tp.partition)]


def test_lag_reader_fetches_together_skips_commit_markers_and_caches(monkeypatch: pytest.MonkeyPatch) -> None:
    from kappa.metrics import lag as lag_module

    committed = {"kappa-aggregate": {("telemetry", 0): 2, ("telemetry", 1): 5},
                 "kappa-alerts": {("telemetry", 0): 4, ("out", 0): 3}}
    monkeypatch.setattr(lag_module, "job_groups", lambda _admin, prefix: sorted(committed))
    monkeypatch.setattr(lag_module, "all_committed_offsets", lambda _admin, groups: {g: committed[g] for g in groups})
    consumer = _FakeConsumer(
        logs={("telemetry", 0): {0: 100, 1: 101, 2: 102, 3: 103, 4: 104}, ("telemetry", 1): {4: 200},
              ("out", 0): {0: 1, 1: 2, 2: 3}},  # out: offset 3 is a transactional commit marker
        ends={("telemetry", 0): 5, ("telemetry", 1): 5, ("out", 0): 4})
    reader = lag_module.LagReader(None, consumer, "kappa", lambda value, _ts: float(value or b"0"),  # type: ignore[arg-type]
                                  clock=lambda: 1000.0)
    lags = {(lag.group, lag.topic, lag.partition): lag for lag in reader.measure()}
    assert lags[("kappa-aggregate", "telemetry", 0)].records == 3
    assert lags[("kappa-aggregate", "telemetry", 0)].event_lag_s == 1000 - 102
    assert lags[("kappa-alerts", "telemetry", 0)].records == 1
    assert lags[("kappa-alerts", "telemetry", 0)].event_lag_s == 1000 - 104
    assert lags[("kappa-aggregate", "telemetry", 1)].records == 0  # caught up
    assert lags[("kappa-alerts", "out", 0)].records == 0  # only the commit marker is left
    # telemetry/0 is wanted at two offsets: two rounds; everything else is fetched in the first.
    assert consumer.assignments == [[("out", 0, 3), ("telemetry", 0, 2)], [("telemetry", 0, 4)]]
    reader.measure()
    assert consumer.assignments[2:] == []  # event times are cached, and markers while the end stays
    consumer.ends[("out", 0)] = 5  # a record after the marker
    consumer.logs[("out", 0)][4] = 7
    lags = {(lag.group, lag.topic, lag.partition): lag for lag in reader.measure()}
    assert consumer.assignments[2:] == [[("out", 0, 3)]]
    assert lags[("kappa-alerts", "out", 0)].records == 2 and lags[("kappa-alerts", "out", 0)].event_lag_s == 993


def test_refreshed_serves_the_last_good_measurement_until_it_is_too_old() -> None:
    from kappa.metrics.exporter import Refreshed

    answers: list[Any] = [lag_families([PartitionLag("kappa-aggregate", "telemetry", 0, 1, 4, 0.0)]),
                          ConnectionError("broker timed out")]

    def measure() -> list:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    source = Refreshed(measure, interval_s=5, max_age_s=60)  # not started: refreshed by hand
    with pytest.raises(RuntimeError, match="not measured yet"):
        source.latest()
    source.refresh()
    source.refresh()  # fails: the last good measurement is still served
    assert _samples(source.latest())[(names.CONSUMER_LAG_RECORDS.name, (
        ("group", "kappa-aggregate"), ("partition", "0"), ("topic", "telemetry")))] == 3
    stale = Refreshed(measure, interval_s=5, max_age_s=0)
    answers.append(lag_families([]))
    stale.refresh()
    time.sleep(0.01)
    with pytest.raises(RuntimeError, match="no lag measurement"):
        stale.latest()


def test_a_running_job_owns_its_reference_groups_too() -> None:
    from kappa.config import load_config
    from kappa.metrics.exporter import running_job_groups

    config = load_config(environ={})
    overview = {"jobs": [{"name": "alerts", "state": "RUNNING"}, {"name": "aggregate_v2", "state": "FAILED"}]}
    groups = running_job_groups(config, lambda _url: overview)
    prefix = config.job.group_prefix
    assert groups == {f"{prefix}-alerts", f"{prefix}-alerts-rules", f"{prefix}-alerts-devices"}


def test_lake_commit_age_per_table_and_nothing_before_a_tables_first_commit() -> None:
    from kappa.metrics.exporter import lake_families

    (family,) = lake_families([("telemetry", 1_700_000_000_500), ("device_agg_1m_v2", None)])
    assert family.name == "kappa_lake_last_commit_timestamp_seconds"
    assert [(s.labels, s.value) for s in family.samples] == [({"table": "telemetry"}, 1_700_000_000.5)]


def test_a_table_dropped_between_listing_and_loading_is_skipped_not_a_source_failure(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """`kappa replay drop` removes versioned tables while the exporter reads the namespace: the lake source
    keeps serving the other tables' commit times instead of failing as a whole."""
    from types import SimpleNamespace

    from pyiceberg.exceptions import NoSuchTableError

    from kappa import lake
    from kappa.metrics.exporter import lake_commits

    class Catalog:
        def list_tables(self, namespace: str) -> list[tuple[str, str]]:
            return [(namespace, "telemetry"), (namespace, "telemetry_v2"), (namespace, "device_agg_1m")]

        def load_table(self, identifier: tuple[str, str]) -> Any:
            if identifier[-1] == "telemetry_v2":
                raise NoSuchTableError(f"Table does not exist: {identifier}")
            snapshot = SimpleNamespace(timestamp_ms=1_700_000_000_000) if identifier[-1] == "telemetry" else None
            return SimpleNamespace(current_snapshot=lambda: snapshot)

    monkeypatch.setattr(lake, "catalog", lambda config: Catalog())
    assert lake_commits(load_config()) == [("telemetry", 1_700_000_000_000), ("device_agg_1m", None)]
