"""`kappa demo`: the whole path on the real local stack, shown end to end.

Starts the stack, produces readings to Kafka, runs the job on the standalone Flink cluster, reads
the results back from PostgreSQL, compares them with the same windows computed in Python, and stops
the stack again (data is kept) unless --keep-running.
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC

from confluent_kafka.admin import AdminClient, NewTopic

from kappa import jobrunner, smoke
from kappa.config import Config
from kappa.db import migrate
from kappa.flinkenv import JobOptions
from kappa.stack import manager
from kappa.stack.postgres import connect


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    demo = subparsers.add_parser("demo", help="run the pipeline on the local stack and show its results")
    demo.add_argument("--records", type=int, default=6000, help="readings to produce (default 6000)")
    demo.add_argument("--keep-running", action="store_true", help="leave the stack up afterwards")
    demo.set_defaults(func=_demo)


def _step(message: str) -> None:
    print(f"\n==> {message}", flush=True)


def recreate_topic(config: Config, topic: str) -> None:
    """Start the demo from an empty topic, so its expected output is exactly what it produces."""
    admin = AdminClient({"bootstrap.servers": config.kafka.bootstrap})
    if topic in admin.list_topics(timeout=10).topics:
        admin.delete_topics([topic])[topic].result(30)
        while topic in admin.list_topics(timeout=10).topics:
            time.sleep(0.5)
    for _ in range(20):
        try:
            admin.create_topics([NewTopic(topic, config.kafka.partitions, 1)])[topic].result(30)
            return
        except Exception:  # noqa: BLE001 - deletion may still be in progress
            time.sleep(0.5)


def _demo(args: argparse.Namespace, config: Config) -> int:
    _step(f"starting the local stack (data in {config.data_dir})")
    manager.up(config)
    try:
        return _run_pipeline(args, config)
    finally:
        if not args.keep_running:
            _step("stopping the local stack (data kept; `kappa stack up` brings it back)")
            manager.down(config)


def _run_pipeline(args: argparse.Namespace, config: Config) -> int:
    _step("applying database migrations")
    with connect(config) as conn:
        applied = migrate(conn)
        conn.execute("TRUNCATE smoke_counts")
    print(f"{len(applied)} migration(s) applied")

    topic = config.kafka.smoke_topic
    _step(f"producing {args.records} JSON readings to Kafka topic {topic!r}")
    recreate_topic(config, topic)
    rows = smoke.readings(args.records)
    smoke.produce(config, rows, topic)
    expected = smoke.expected_windows(rows)

    _step("submitting job 'smoke' to the standalone Flink cluster (bounded: reads to the current end)")
    job_id = jobrunner.submit(config, "smoke", JobOptions(bounded=True))
    print(f"job id {job_id}; web UI {config.flink.rest_url}/#/job/completed/{job_id}/overview")
    jobrunner.wait_for_state(config, job_id, {"FINISHED"}, timeout_s=300,
                             progress=lambda state: print(f"  job state: {state}", flush=True))

    _step("reading the per-device 1-minute windows back from PostgreSQL")
    with connect(config) as conn:
        result = conn.execute(
            "SELECT device_id, window_start, readings, avg_temperature FROM smoke_counts "
            "ORDER BY window_start, device_id"
        ).fetchall()
    print(f"{'device':<10} {'window start (UTC)':<20} {'readings':>8} {'avg temp':>9}")
    for device, start, count, avg in result[:12]:
        print(f"{device:<10} {start:%Y-%m-%d %H:%M:%S}  {count:>8} {avg:>9.3f}")
    if len(result) > 12:
        print(f"... {len(result) - 12} more rows")

    actual = {(d, int(s.replace(tzinfo=UTC).timestamp() * 1000)): (c, a) for d, s, c, a in result}
    matches = sum(1 for key, (count, avg) in expected.items()
                  if key in actual and actual[key][0] == count and abs(actual[key][1] - avg) <= 1e-9 * abs(avg))
    total_read = sum(count for count, _ in actual.values())
    _step("accounting")
    print(f"records produced: {len(rows)}; records aggregated by Flink: {total_read}")
    print(f"windows: {len(result)} in PostgreSQL, {len(expected)} computed in Python, {matches} identical")
    ok = matches == len(expected) == len(result) and total_read == len(rows)
    print("RESULT: " + ("OK - Flink's output equals the independent computation" if ok else "MISMATCH"))
    return 0 if ok else 1
