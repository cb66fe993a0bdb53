"""The demo (`kappa demo`): the whole path on the real local stack, shown end to end.

Starts the stack, simulates a device fleet that publishes through the edge (each device with its own
credentials over MQTT/TLS to Mosquitto, some going offline and sending a backlog, a reconnect storm;
the bridge forwards to Kafka as Avro) or, with --via kafka, straight into Kafka, runs the aggregation job
and then the alerting job on the standalone Flink cluster, reads the results back from PostgreSQL
(and prints the alerts next to the anomalies the simulator planted), accounts for every record,
compares the aggregates with the same windows computed in Python, and stops the stack again (data
is kept) unless --keep-running.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import psycopg

from kappa import expected, jobrunner, lake, lake_query, outputs, reference
from kappa.bridge import audit
from kappa.config import Config
from kappa.db import migrate
from kappa.flinkenv import JobOptions
from kappa.simulate import Category, Manifest, SimulationSpec, simulate
from kappa.stack import manager
from kappa.stack.kafka_setup import recreate_topic
from kappa.stack.postgres import connect


@dataclass(frozen=True)
class DemoOptions:
    """`kappa demo`'s choices."""

    devices: int = 20
    readings: int = 120
    seed: int = 7
    via: str = "mqtt"  # mqtt: through the broker and the bridge; kafka: the simulator produces directly
    keep_running: bool = False


def _step(message: str) -> None:
    print(f"\n==> {message}", flush=True)


def run(config: Config, options: DemoOptions) -> int:
    """The whole demo; 0 when every record is accounted for and the aggregates match."""
    _step(f"starting the local stack (data in {config.data_dir})")
    manager.up(config)
    try:
        return _run_pipeline(options, config)
    finally:
        if not options.keep_running:
            _step("stopping the local stack (data kept; `kappa stack up` brings it back)")
            manager.down(config)


def _run_pipeline(options: DemoOptions, config: Config) -> int:
    _step("applying database migrations")
    with connect(config) as conn:
        applied = migrate(conn, config=config)
        seeded = reference.seed(config, conn)  # default thresholds valid from the epoch, in the rules topic
        tables = [t for job in ("aggregate", "alerts") for t in outputs.job_outputs(job).table_names()]
        conn.execute("TRUNCATE " + ", ".join(tables))
    lake.empty_live_tables(config, outputs.job_outputs("aggregate").lake)
    print(f"{len(applied)} migration(s) applied; output tables and the Iceberg archive emptied for this run"
          f"{'; ' + seeded if seeded else ''}")

    topic = config.kafka.telemetry_topic
    spec = SimulationSpec(devices=options.devices, sites=3, readings_per_device=options.readings, seed=options.seed,
                          topic=topic, out_of_order=0.05, late=0.02, duplicates=0.03,
                          malformed=1 if options.via == "mqtt" else 2, v1_fraction=0.3, via=options.via,
                          offline_devices=2 if options.via == "mqtt" else 0, offline_s=240,
                          reconnect_storms=1 if options.via == "mqtt" else 0)
    _fresh_topics(config, [topic, f"{topic}-late", config.kafka.edge_dead_letter_topic])
    if options.via == "mqtt":
        _step(f"{options.devices} devices publish {options.readings} readings each over MQTT/TLS to the broker, with "
              "their own credentials (2 go offline for 4 minutes and send their backlog; one reconnect storm; "
              "out-of-order, duplicate and malformed payloads); the bridge forwards them to Kafka")
        manifest = simulate(config, spec, produce=True, log=_quiet)
        forwarded = _edge_accounting(config, manifest)
    else:
        _step(f"simulating {options.devices} devices x {options.readings} readings into Kafka topic {topic!r} "
              "(Avro via the schema registry, with out-of-order, late, duplicate and malformed records)")
        manifest = simulate(config, spec, produce=True, log=_quiet)
        forwarded = manifest.data["counts"]["total"]

    _run_on_cluster(config, "aggregate", "the standalone Flink cluster (bounded: reads to the current end)")

    with connect(config) as conn:
        _show(conn, "per-device 1-minute aggregates (device_agg_1m)",
              "SELECT device_id, window_start, reading_count, round(temp_avg::numeric, 2), "
              "round(temp_max::numeric, 2), round(vibration_max::numeric, 2), round(battery_last::numeric, 1) "
              "FROM device_agg_1m ORDER BY window_start, device_id LIMIT 10",
              ["device", "window start", "readings", "temp avg", "temp max", "vib max", "battery"])
        _show(conn, "per-site 5-minute aggregates (site_agg_5m)",
              "SELECT site_id, window_start, device_count, reading_count, round(temp_avg::numeric, 2), "
              "round(vibration_max::numeric, 2) FROM site_agg_5m ORDER BY window_start, site_id LIMIT 9",
              ["site", "window start", "devices", "readings", "temp avg", "vib max"])
        _show(conn, "dead letters by reason (dead_letters)",
              "SELECT reason, count(*) FROM dead_letters GROUP BY reason ORDER BY reason", ["reason", "records"])
        late = set(outputs.late_keys(config, f"{topic}-late"))
        books = outputs.accounting(conn, late=len(late))
        actual = outputs.device_windows(conn)
    archived = _show_archive(config)

    _run_on_cluster(config, "alerts",
                    "the cluster (MATCH_RECOGNIZE, thresholds as of each reading from the rules topic; bounded)")
    with connect(config) as conn:
        _show(conn, "alerts (alerts)",
              "SELECT alert_type, severity, device_id, to_char(first_event_time, 'YYYY-MM-DD HH24:MI:SS'), "
              "to_char(last_event_time, 'HH24:MI:SS'), trigger_values "
              "FROM alerts ORDER BY first_event_time, device_id",
              ["type", "severity", "device", "first event", "last event", "trigger values"])
    planted = sorted(f"{a['kind']} on {a['device_id']}" for a in manifest.data["anomalies"])
    print(f"planted by the simulator: {', '.join(planted) or 'none'}")
    offline = sorted({r.device_id for r in manifest.records if r.backlog})
    if offline:
        print(f"offline for {spec.offline_s:.0f} s, then sent their buffered backlog: {', '.join(offline)}")

    readings = [r for r in manifest.records if r.category != Category.MALFORMED]
    kept = [expected.Reading(r.device_id, r.row["site_id"], r.row["device_type"], r.seq, r.event_time, r.row)
            for r in readings if r.row is not None and (r.device_id, r.seq) not in late]
    want = expected.device_windows_1m(kept)
    same = sum(1 for key, row in want.items()
               if key in actual and all(expected.close(actual[key][c], v) for c, v in row.items()))
    total = forwarded
    _step("accounting")
    print(f"records read {total} = aggregated {books.aggregated} + dead letters {books.dead_letters} "
          f"+ late {books.late} + duplicates dropped {books.duplicates}  "
          f"({'balanced' if books.total == total else 'UNBALANCED: ' + str(books.total)})")
    print(f"device windows: {len(actual)} in PostgreSQL, {len(want)} computed independently in Python, "
          f"{same} identical in every column")
    decodable = books.total - books.dead_letters
    print(f"Iceberg archive: {archived['telemetry']} readings (every decodable record: {decodable}), "
          f"{archived['device_agg_1m']} device windows, {archived['dead_letters']} dead letters")
    ok = (books.total == total and same == len(want) == len(actual)
          and (archived["telemetry"], archived["device_agg_1m"], archived["dead_letters"])
          == (decodable, len(actual), books.dead_letters))
    print("RESULT: " + ("OK - every record accounted for; Flink's aggregates equal the Python computation"
                        if ok else "MISMATCH"))
    print(f"explore: psql on {config.postgres.host}:{config.postgres.port} (views v_device_1m, v_site_5m), "
          f"Flink web UI {config.flink.rest_url}")
    return 0 if ok else 1


def _show_archive(config: Config) -> dict[str, int]:
    """The cold tier as an analyst sees it: DuckDB over the Iceberg tables the job committed."""
    conn = lake_query.duckdb_connection(config)
    counts = {name: int(conn.execute(f"SELECT count(*) FROM {name}").fetchone()[0])
              for name in ("telemetry", "device_agg_1m", "dead_letters")}
    _step("the Iceberg archive (DuckDB over the tables the job committed at its checkpoints)")
    for row in conn.execute("SELECT device_type, count(*), min(event_time), max(event_time) FROM telemetry "
                            "GROUP BY device_type ORDER BY device_type").fetchall():
        print("  " + "  ".join(str(cell) for cell in row))
    print("  analysts: kappa query \"SELECT ... FROM telemetry\" (README: an analyst's DuckDB session)")
    return counts


def _quiet(message: str) -> None:
    """The simulator's progress lines, without the per-10k counters a demo-sized run never reaches."""
    print(f"  {message}", flush=True)


def _fresh_topics(config: Config, topics: list[str]) -> None:
    """Empty topics for this run. The bridge is stopped meanwhile: its idempotent producer must not see
    a topic vanish under it; the broker keeps anything published meanwhile in its session."""
    bridge = manager.service(config, "bridge")
    was_running = bridge.enabled and bridge.running()
    if was_running:
        bridge.stop()
    for name in topics:
        recreate_topic(config, name)
    if was_running:
        bridge.start()


def _edge_accounting(config: Config, manifest: Manifest) -> int:
    """Wait until the bridge has forwarded or dead-lettered every published payload; print the books."""
    counts = manifest.data["counts"]
    published, rejected = counts["total"], counts["rejected_at_edge"]
    topic, dlq = config.kafka.telemetry_topic, config.kafka.edge_dead_letter_topic
    got = audit.wait_for_counts(config, {topic: published - rejected, dlq: rejected}, timeout_s=180)
    reasons = audit.edge_dead_letter_reasons(config)
    _step("the edge")
    print(f"devices published {published} = forwarded to Kafka {got[topic]} + rejected by the bridge "
          f"{got[dlq]} ({', '.join(f'{r} {n}' for r, n in sorted(reasons.items())) or 'none'})  "
          f"({'balanced' if got[topic] + got[dlq] == published else 'UNBALANCED'})")
    edge = manifest.data.get("edge", {})
    print(f"device connections: {edge.get('connects', 0)} (offline disconnects {edge.get('offline_disconnects', 0)}, "
          f"reconnect storms {edge.get('storms', 0)}); backlog readings sent late: {counts['backlog']}")
    return got[topic]


def _run_on_cluster(config: Config, job: str, where: str) -> None:
    """Submit a job bounded to the standalone cluster and wait, showing its state changes."""
    _step(f"submitting job {job!r} to {where}")
    job_id = jobrunner.submit(config, job, JobOptions(bounded=True))
    print(f"job id {job_id}; web UI {config.flink.rest_url}/#/job/completed/{job_id}/overview")
    jobrunner.wait_for_state(config, job_id, {"FINISHED"}, timeout_s=600,
                             progress=lambda state: print(f"  job state: {state}", flush=True))


def _show(conn: psycopg.Connection, title: str, query: str, headers: list[str]) -> None:
    _step(title)
    rows = conn.execute(query).fetchall()
    table = [headers] + [[f"{v:%Y-%m-%d %H:%M}" if isinstance(v, datetime) else str(v) for v in row]
                         for row in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(headers))]
    for row in table:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))
