"""Replays into Iceberg branches (write-audit-publish) on the real stack (PostgreSQL catalog, SeaweedFS,
Flink MiniCluster). The "live" run writes main of this test's own lake namespace; replays of it write the
branches `replay_<version>` and never main: a replay of an SQL change (temp_avg without WARN/FAULT readings)
differs from main exactly in the windows the PostgreSQL comparison finds, in temp_avg only; a second replay
of the unchanged job as another version commits too (apache/iceberg#18098 hit the v2 sink there) and equals
main; a failing replay leaves main as it was. Promotion fast-forwards main to a branch (main then reads the
branch's rows), refuses another branch forked before that (main moved on), and `replace` sets it anyway.
`drop` removes a branch, and `kappa lake expire` then deletes its snapshots and their data files."""

from __future__ import annotations

import dataclasses
import shutil
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from kappa import cli, jobrunner, lake, lake_branch, lake_maintenance, lake_query, s3_security
from kappa.config import Config
from kappa.flinkenv import JobOptions
from kappa.replay import ReplayError, compare, lake_compare, offsets, promote, runner, versions
from kappa.simulate import simulate
from kappa.stack.postgres import connect
from tests.integration.aggregate_support import faulty_spec
from tests.integration.scratch import Names, versioned_outputs

pytestmark = pytest.mark.integration

SPECS = (lake.TELEMETRY, lake.DEVICE_AGG_1M, lake.DEAD_LETTERS)
LIVE_AVG = "MAX(temperature_c) AS temp_max, AVG(temperature_c) AS temp_avg,"
FIXED_AVG = "MAX(temperature_c) AS temp_max, AVG(CASE WHEN status = 'OK' THEN temperature_c END) AS temp_avg,"
BROKEN_FIELD = "r.device_id AS device_id,"
FAILING_FIELD = "CAST(CAST(r.device_id AS INT) AS STRING) AS device_id,"  # 'dev-..' is no number


def _sql_copy(tmp_path: Path, name: str, relative: str, old: str, new: str) -> Path:
    """A copy of sql/ with one edit."""
    changed = tmp_path / name
    shutil.copytree(Path(__file__).resolve().parents[2] / "sql", changed)
    path = changed / relative
    text = path.read_text()
    assert text.count(old) == 1, f"{relative} changed: update the test's edit"
    path.write_text(text.replace(old, new))
    return changed


def _with(config: Config, sql_dir: Path | None = None, **job: Any) -> Config:
    update: dict[str, Any] = {"job": config.job.model_copy(update=job)} if job else {}
    if sql_dir is not None:
        update["paths"] = config.paths.model_copy(update={"sql_dir": sql_dir})
    return config.model_copy(update=update)


def _rows(config: Config, snapshots: dict[str, int | None]) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of each table at the given snapshot (DuckDB, equality deletes applied), sorted."""
    duck, catalog, found = lake_query.duckdb_session(config), lake.catalog(config), {}
    for spec in SPECS:
        table = catalog.load_table(spec.identifier(config))
        snapshot = snapshots[spec.name]
        assert snapshot is not None, spec.name
        found[spec.name] = sorted(duck.execute(f"SELECT * FROM iceberg_scan('{table.metadata_location}', "
                                               f"snapshot_from_id = {snapshot})").fetchall(), key=repr)
    return found


def _committers(config: Config, snapshots: dict[str, int | None]) -> dict[str, str]:
    """Who committed each table's snapshot: 'flink' (the sink: its summary names the job) or 'other'."""
    catalog, found = lake.catalog(config), {}
    for spec in SPECS:
        snapshot = catalog.load_table(spec.identifier(config)).snapshot_by_id(snapshots[spec.name] or 0)
        assert snapshot is not None and snapshot.summary is not None, spec.name
        found[spec.name] = "flink" if snapshot.summary.get("flink.job-id") else "other"
    return found


def test_replays_write_branches_that_compare_and_fast_forward_main(
        migrated: Config, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    names = Names.new("wap")
    config = migrated.model_copy(update={"lake": migrated.lake.model_copy(update={"namespace": f"wap_{names.tag}"})})
    topic, live_suffix = names.topic, versioned_outputs(config, names.suffix)
    spec = dataclasses.replace(faulty_spec(topic, seed=31, devices=4, readings=20), late=0.0,
                               out_of_order_max_s=config.job.watermark_delay_s - 1.0)
    manifest = simulate(config, spec, produce=True, log=lambda _: None)
    counts = manifest.data["counts"]
    # the live job: its PostgreSQL outputs suffixed (a shared database), its Iceberg tables main of the namespace
    jobrunner.run_local(config, "aggregate", JobOptions(bounded=True, output_suffix=live_suffix, lake_suffix="",
                                                        extra={"telemetry_topic": topic}), wait=True)
    main0 = lake_branch.heads(config, SPECS, lake_branch.MAIN)
    before = _rows(config, main0)
    assert len(before["telemetry"]) == counts["total"] - counts["malformed"]
    assert len(before["dead_letters"]) == counts["malformed"] > 0

    rng = offsets.capture_range(config, topic)
    tag = uuid.uuid4().hex[:5]
    v2, v3, v4 = f"w{tag}a", f"w{tag}b", f"w{tag}c"
    live = live_suffix.lstrip("_")
    try:
        # v2: the SQL change, replayed into branch replay_<v2>; main is not touched
        changed = _with(config, _sql_copy(tmp_path, "fixed", "aggregates/windows.sql", LIVE_AVG, FIXED_AVG))
        lines: list[str] = []
        runner.run_replay(changed, "aggregate", v2, rng, interval_s=1, log=lines.append)
        assert any(f"branch replay_{v2} forked from main's snapshot" in line and "emptied" in line for line in lines)
        assert lake_branch.heads(config, SPECS, lake_branch.MAIN) == main0
        with connect(config) as conn:
            pg = {d.table: d for d in compare.compare_versions(conn, "aggregate", live, v2)}
            diffs = {d.table: d for d in lake_compare.compare_lake(config, conn, "aggregate", "live", v2, SPECS)}
        report = compare.format_diffs("main", v2, list(diffs.values()))
        for name in ("telemetry", "dead_letters"):  # the same records, once each (the fork left none of main's)
            assert diffs[name].rows_left == diffs[name].rows_right == len(before[name]), report
            assert diffs[name].differences == 0 and diffs[name].same == len(before[name]), report
        windows = diffs["device_agg_1m"]
        assert windows.rows_left == windows.rows_right == len(before["device_agg_1m"]), report
        assert (windows.only_left, windows.only_right) == (0, 0), report
        assert dict(windows.columns) == {"temp_avg": windows.differing} and windows.differing > 0, report
        # exactly the windows whose PostgreSQL rows differ (key (device, type, window start) vs (device, start))
        assert {(k[0], k[2]) for k in windows.differing_keys} == pg["device_agg_1m"].differing_keys, report
        # the command prints the same after the PostgreSQL tables (its config: this test's namespace)
        monkeypatch.setenv("KAPPA_LAKE__NAMESPACE", config.lake.namespace)
        capsys.readouterr()
        assert cli.main(["replay", "compare", "aggregate", "live", v2]) == 0
        printed = capsys.readouterr().out.split(f"Iceberg archive ({config.lake.namespace}): main vs replay_{v2}\n")
        assert len(printed) == 2, printed
        device_line = next(line for line in printed[1].splitlines() if line.startswith("device_agg_1m"))
        assert f"temp_avg({windows.differing})" in device_line, printed[1]

        # v3: the unchanged job again, as another version: its sink commits on its own branch, equal to main
        runner.run_replay(config, "aggregate", v3, rng, interval_s=1, log=lambda _: None)
        v3_heads = lake_branch.heads(config, SPECS, f"replay_{v3}")
        assert set(_committers(config, v3_heads).values()) == {"flink"}, v3_heads  # the sink's commit, not the fork's
        with connect(config) as conn:
            same = lake_compare.compare_lake(config, conn, "aggregate", "live", v3, SPECS)
        assert all(d.differences == 0 and d.same == d.rows_left == d.rows_right for d in same), \
            compare.format_diffs("main", v3, same)

        # v4 fails on every reading: the version is failed, main is as it was, and it cannot be promoted
        failing = _with(config, _sql_copy(tmp_path, "failing", "telemetry/decode.sql", BROKEN_FIELD, FAILING_FIELD),
                        restart_max_failures=2, restart_delay_s=1)
        with pytest.raises(ReplayError, match="NumberFormatException"):
            runner.run_replay(failing, "aggregate", v4, rng, interval_s=1, log=lambda _: None)
        assert lake_branch.heads(config, SPECS, lake_branch.MAIN) == main0
        with connect(config) as conn:
            assert versions.get_version(conn, "aggregate", v4).state == "failed"
            with pytest.raises(ReplayError, match="failed"):
                promote.promote_lake(config, conn, "aggregate", v4)

            # publish v3: main fast-forwards to its branch and reads its rows
            moved = promote.promote_lake(config, conn, "aggregate", v3)
            assert len(moved) == 3 and all("(fast-forward)" in line for line in moved), moved
            assert lake_branch.heads(config, SPECS, lake_branch.MAIN) == v3_heads
            published = lake_compare.compare_lake(config, conn, "aggregate", "live", v3, SPECS)
            assert all(d.differences == 0 and d.rows_left == len(before[d.table]) for d in published)

            # v2 was forked from main before v3's promotion: no fast-forward, main unchanged
            with pytest.raises(ReplayError, match=f"main moved on since replay_{v2} was forked"):
                promote.promote_lake(config, conn, "aggregate", v2)
            assert lake_branch.heads(config, SPECS, lake_branch.MAIN) == v3_heads
            # ... unless replaced: main is then v2's branch
            replaced = promote.promote_lake(config, conn, "aggregate", v2, replace=True)
            assert all("(replaced)" in line for line in replaced), replaced
            assert lake_branch.heads(config, SPECS, lake_branch.MAIN) == lake_branch.heads(
                config, SPECS, f"replay_{v2}")
            after = lake_compare.compare_lake(config, conn, "aggregate", "live", v2, SPECS)
            assert all(d.differences == 0 for d in after), compare.format_diffs("main", v2, after)

            # drop: the branch goes, main stays; `kappa lake expire` then deletes its snapshots and the data
            # files only they referenced
            telemetry = lake.catalog(config).load_table(lake.TELEMETRY.identifier(config))
            v3_files = {r["file_path"] for r in telemetry.inspect.data_files(v3_heads["telemetry"]).to_pylist()}
            gone = promote.drop(config, conn, "aggregate", v3)
            assert {f"iceberg branch {s.name}@replay_{v3}" for s in SPECS} <= set(gone), gone
            assert set(lake_branch.heads(config, SPECS, f"replay_{v3}").values()) == {None}
            lake_maintenance.expire(config, (lake.TELEMETRY,), retain_last=1, max_age_hours=0,
                                    progress=lambda _: None, now=datetime.now(UTC) + timedelta(minutes=1))
            telemetry = telemetry.refresh()
            assert telemetry.snapshot_by_id(v3_heads["telemetry"]) is None
            assert v3_files and not any(telemetry.io.new_input(f).exists() for f in v3_files)
            assert lake_branch.heads(config, SPECS, lake_branch.MAIN) == lake_branch.heads(
                config, SPECS, f"replay_{v2}")
    finally:
        with connect(config) as conn:
            for version in {v.version for v in versions.versions(conn, "aggregate")} & {v2, v3, v4}:
                promote.drop(config, conn, "aggregate", version)
        catalog = lake.catalog(config, s3_security.WRITER)
        for table in SPECS:
            catalog.purge_table(table.identifier(config))
        catalog.drop_namespace(config.lake.namespace)
