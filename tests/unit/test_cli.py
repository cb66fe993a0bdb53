"""The `kappa` command line without a stack (click.testing.CliRunner): every command's help, user
mistakes, offline successes, and what `kappa --help` / `kappa stack status` import.

User mistakes must end in one line on stderr and exit code 2, never a traceback; commands that need
services are exercised on the real stack by the integration tests.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result

from kappa.cli import main
from kappa.cli.main import cli

pytestmark = pytest.mark.unit

HEAVY = ("pyarrow", "confluent_kafka", "pyflink")


def _tree(command: click.Command, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], click.Command]]:
    """Every (sub)command under `command`, depth first, with its argv prefix (this imports every module)."""
    found = [(path, command)]
    if isinstance(command, click.Group):
        ctx = click.Context(command)
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            assert sub is not None, name
            found.extend(_tree(sub, (*path, name)))
    return found


ALL_COMMANDS = _tree(cli)


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    """A runner whose data dir is empty: no stack runs there and no generated secret exists.

    Every other KAPPA_* variable goes too: in a full session, secrets exported by earlier tests'
    processes must not decide which mistake a command reports first."""
    for name in [name for name in os.environ if name.startswith("KAPPA_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("KAPPA_PATHS__DATA_DIR", str(tmp_path / "data"))
    return CliRunner()


def invoke(runner: CliRunner, *argv: str) -> Result:
    return runner.invoke(cli, list(argv), prog_name="kappa")


def test_the_tree_has_every_command_group() -> None:
    groups = {path[0] for path, _ in ALL_COMMANDS if len(path) == 1}
    assert {"stack", "run", "submit", "jobs", "stop", "cancel", "db", "query", "schema", "simulate",
            "replay", "devices", "rules", "bridge", "status", "doctor", "demo", "lake"} <= groups


@pytest.mark.parametrize("path", [path for path, _ in ALL_COMMANDS], ids=lambda p: " ".join(p) or "kappa")
def test_every_command_has_help(path: tuple[str, ...], runner: CliRunner) -> None:
    result = invoke(runner, *path, "--help")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"Usage: {' '.join(('kappa', *path))} ")
    if path:
        parent = dict(ALL_COMMANDS)[path[:-1]]
        command = dict(ALL_COMMANDS)[path]
        assert command.get_short_help_str(), f"`kappa {' '.join(path)}` has no one-line help in its group's listing"
        listing = invoke(runner, *path[:-1], "--help").stdout
        assert f"  {path[-1]} " in listing, (parent.name, listing)


# one user mistake per command group (and a few more): exit code 2 and a single line on stderr
MISTAKES = [
    (["--profile", "no-such-profile", "stack", "status"], "unknown profile 'no-such-profile'"),
    (["stack", "logs", "no-such-service"], "unknown service 'no-such-service'"),
    (["stack", "down", "--purge-everything"], "No such option '--purge-everything'"),
    (["no-such-command"], "No such command 'no-such-command'"),
    (["run", "aggregate", "--set", "no-equals-sign"], "wants NAME=VALUE, got 'no-equals-sign'"),
    (["submit"], "Missing argument 'JOB'"),
    (["submit", "aggregate", "--timeout", "soon"], "'soon' is not a valid float"),
    (["jobs", "extra"], "unexpected extra argument"),
    (["stop"], "Missing argument 'JOB'"),
    (["cancel"], "Missing argument 'JOB'"),
    (["doctor", "--fix"], "No such option '--fix'"),
    (["demo", "--via", "pigeon"], "'pigeon' is not one of 'mqtt', 'kafka'"),
    (["db", "retention"], "Missing option '--older-than'"),
    (["db", "retention", "--older-than", "9 days", "--table", "nope"], "'nope' is not one of"),
    (["db", "status"], "secret KAPPA_PG_PASSWORD is not set"),
    (["query", "--dataset", "aggregates", "SELECT 1"], "No such option '--dataset'"),
    (["schema", "show"], "Missing argument 'SUBJECT'"),
    (["schema", "list"], "secret KAPPA_REGISTRY_PASSWORD is not set"),
    (["simulate", "--devices", "many"], "'many' is not a valid integer"),
    (["simulate", "--duration", "soon", "--dry-run"], "'soon' is not a duration"),
    (["simulate", "--duration", "1h", "--readings-per-device", "3"], "exclude each other"),
    (["simulate", "--late", "1.5", "--dry-run"], "late"),
    (["replay", "run", "aggregate", "--as", "v2", "--set", "no-equals-sign"], "wants NAME=VALUE"),
    (["replay", "compare", "aggregate", "v1"], "Missing argument 'V2'"),
    (["replay", "versions"], "secret KAPPA_PG_PASSWORD is not set"),
    (["devices", "move"], "Missing argument 'DEVICE_ID'"),
    (["devices", "list", "--status", "asleep"], "'asleep' is not one of 'active', 'decommissioned'"),
    (["rules", "set"], "Missing option '--file'"),
    (["bridge", "run", "--client"], "No such option '--client'"),
    (["status", "--yaml"], "No such option '--yaml'"),
    (["lake", "compact", "no-such-table"], "no archive table no-such-table"),
    (["lake", "expire", "--retain-last", "0"], "retain at least one snapshot"),
]


@pytest.mark.parametrize(("argv", "message"), MISTAKES, ids=[" ".join(argv) for argv, _ in MISTAKES])
def test_a_user_mistake_is_one_line_and_exit_2(argv: list[str], message: str, runner: CliRunner) -> None:
    result = invoke(runner, *argv)
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("error: ") and message in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "Traceback" not in result.output


def test_main_returns_the_exit_code(runner: CliRunner, capsys: pytest.CaptureFixture[str]) -> None:
    """`main(argv)` (the console script; tests call it with argv lists) returns codes instead of exiting."""
    assert main(["stack", "logs", "no-such-service"]) == 2
    assert capsys.readouterr().err.startswith("error: unknown service 'no-such-service'")
    assert main(["--help"]) == 0
    assert "Commands:" in capsys.readouterr().out


def test_a_config_value_of_the_wrong_type_names_the_key(runner: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAPPA_KAFKA__PORT", "not-a-port")
    result = invoke(runner, "stack", "status")
    assert result.exit_code == 2
    assert result.stderr.startswith("error: invalid configuration") and "kafka.port" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_interrupted_is_exit_130(runner: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    from kappa.stack import manager

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(manager, "status", interrupted)
    result = invoke(runner, "stack", "status")
    assert result.exit_code == 130
    assert result.stderr.strip() == "interrupted"


def test_a_missing_secret_is_one_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from kappa.config import load_config
    from kappa.errors import KappaError, MissingSecret

    monkeypatch.delenv("KAPPA_NO_SUCH_SECRET", raising=False)
    config = load_config(environ={"KAPPA_PATHS__DATA_DIR": str(tmp_path)})
    with pytest.raises(MissingSecret) as info:
        config.secret("KAPPA_NO_SUCH_SECRET")
    assert isinstance(info.value, KappaError)
    assert str(info.value).startswith("secret KAPPA_NO_SUCH_SECRET is not set")


# ---- successes that need no service -------------------------------------------------------------------
def test_stack_status_against_nothing(runner: CliRunner) -> None:
    result = invoke(runner, "stack", "status")
    assert result.exit_code == 1  # not every service is up
    lines = result.stdout.splitlines()
    assert lines[0].split()[:2] == ["postgres", "stopped"]
    assert lines[-1].startswith("flink web UI: http://")
    assert result.stderr == ""


def test_simulate_dry_run_succeeds_offline(runner: CliRunner, tmp_path: Path) -> None:
    manifest = tmp_path / "manifest.json"
    result = invoke(runner, "simulate", "--devices", "2", "--readings-per-device", "3", "--dry-run",
                    "--manifest", str(manifest))
    assert result.exit_code == 0, result.output
    assert "6 records (dry run): valid 6" in result.stdout
    written = json.loads(manifest.read_text())
    assert written["dry_run"] is True
    assert written["counts"]["valid"] == 6 and len(written["per_device"]) == 2


def test_simulate_duration_sets_the_readings(runner: CliRunner, tmp_path: Path) -> None:
    manifest = tmp_path / "m.json"
    result = invoke(runner, "simulate", "--devices", "1", "--duration", "2m", "--interval-s", "10", "--dry-run",
                    "--manifest", str(manifest))
    assert result.exit_code == 0, result.output
    assert json.loads(manifest.read_text())["spec"]["readings_per_device"] == 12


def test_schema_check_offline(runner: CliRunner) -> None:
    result = invoke(runner, "schema", "check", "--offline")
    assert result.exit_code == 0, result.output
    assert "ok   telemetry-value" in result.stdout


def test_bridge_status_without_a_bridge(runner: CliRunner) -> None:
    result = invoke(runner, "bridge", "status")
    assert result.exit_code == 1
    assert result.stdout.startswith("bridge ") and "not running" in result.stdout


def _imported_by(argv: list[str], data_dir: Path) -> dict[str, object]:
    """Run `kappa ARGV` in a fresh interpreter; which heavy modules it imported, and its exit code."""
    code = ("import json, sys\nfrom kappa.cli import main\nrc = main(sys.argv[1:])\n"
            f"print(json.dumps({{'rc': rc, 'heavy': [m for m in {HEAVY!r} if m in sys.modules]}}))")
    env = {**os.environ, "KAPPA_PATHS__DATA_DIR": str(data_dir)}
    done = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, env=env, check=False)
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


@pytest.mark.parametrize("argv", [["--help"], ["stack", "status"], ["stack", "--help"]], ids=" ".join)
def test_light_commands_do_not_import_kafka_arrow_or_flink(argv: list[str], tmp_path: Path) -> None:
    found = _imported_by(argv, tmp_path)
    assert found["heavy"] == [], found
    assert found["rc"] in (0, 1)


def test_submit_wait_exits_1_with_the_jobs_exception(monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """`kappa submit JOB --bounded --wait`: each state change on stdout, then the job's exception and exit 1."""
    from kappa.cli import jobs
    from kappa.config import load_config
    from kappa.replay import watch
    from kappa.replay.watch import JobHealth

    answers = iter([JobHealth("RUNNING"), JobHealth("RESTARTING", 1, "java.lang.ArithmeticException: / by zero"),
                    JobHealth("FAILED", 1, "java.lang.ArithmeticException: / by zero")])
    monkeypatch.setattr(watch, "fetch_health", lambda url, job_id: next(answers))
    monkeypatch.setattr(jobs, "WAIT_POLL_S", 0.0)
    config = load_config(profile="local", environ={})
    assert jobs.follow(config, "smoke", "f" * 32, timeout_s=None) == 1
    out, err = capsys.readouterr()
    assert out.splitlines() == ["  job smoke: RUNNING",
                                "  job smoke: RESTARTING (restarts 1, last exception: java.lang.ArithmeticException: "
                                "/ by zero)",
                                "  job smoke: FAILED (restarts 1, last exception: java.lang.ArithmeticException: "
                                "/ by zero)"]
    assert err.strip() == (f"error: job smoke ({'f' * 32}) ended FAILED: java.lang.ArithmeticException: / by zero")


def test_submit_wait_exits_0_when_the_job_finished(monkeypatch: pytest.MonkeyPatch) -> None:
    from kappa.cli import jobs
    from kappa.config import load_config
    from kappa.replay import watch
    from kappa.replay.watch import JobHealth

    answers = iter([JobHealth("RUNNING"), JobHealth("FINISHED")])
    monkeypatch.setattr(watch, "fetch_health", lambda url, job_id: next(answers))
    monkeypatch.setattr(jobs, "WAIT_POLL_S", 0.0)
    assert jobs.follow(load_config(profile="local", environ={}), "smoke", "f" * 32, timeout_s=None) == 0


# invocations the README, Makefile, scripts and messages tell people to type (parsed, not run)
DOCUMENTED = [
    "stack up", "stack up kafka postgres", "stack down --purge", "stack logs kafka -n 5", "stack status",
    "run smoke --bounded", "run alerts --bounded --no-lake --parallelism 2 --set smoke_topic=t --output-suffix _v2",
    "submit smoke --bounded --wait --timeout 300 --output-suffix _cluster --set smoke_topic=t",
    "submit aggregate --from-savepoint /tmp/sp", "jobs", "stop aggregate --savepoint", "cancel 0123abcd",
    "doctor", "demo --keep-running --via kafka --devices 3 --readings 10 --seed 1",
    "db roles", "db migrate", "db refresh", "db status", "db retention --older-than 90_days --table device_agg_1m",
    "query SELECT_1", "query --lake SELECT_1", "query --as-of 4392697543497746305 SELECT_1", "query --snapshots",
    "query --suffix _v2 SELECT_1", "query --lake --suffix _v2 SELECT_1", "query --branch replay_v2 SELECT_1",
    "schema list", "schema show telemetry-value --version 1", "schema register", "schema check --offline",
    "schema diff", "schema --root /tmp/r check",
    "simulate --devices 50 --readings-per-device 600 --late 0.01 --duplicates 0.02 --malformed 3",
    "simulate --via mqtt --devices 50 --readings-per-device 600 --offline-devices 3 --offline-s 60 "
    "--reconnect-storms 1 --rate 100 --transactional-id sim-1 --v1-fraction 0.3 --out-of-order 0.05",
    "replay run aggregate --as v2 --cluster --from 2026-03-02T08:00:00Z --to 2026-03-02T09:00:00Z",
    "replay run alerts --as v2 --follow --max-restarts 2 --parallelism 2 --set watermark_delay_s=30",
    "replay compare aggregate live v2 --csv v2.csv", "replay promote aggregate v2", "replay versions",
    "replay versions aggregate", "replay drop aggregate v2 --cancel-job",
    "devices add dev-001 --site site-a --type thermal --secrets-file s.env --model M --firmware F --location L "
    "--installed-at 2024-05-01T08:00:00Z",
    "devices import fleet.csv --secrets-file s.env", "devices list --status active", "devices show dev-001",
    "devices move dev-001 --site site-b --model M --effective 2026-03-02T08:00:00Z",
    "devices decommission dev-001", "devices rotate-credentials dev-001 --secrets-file s.env",
    "rules set --file rules/thresholds.toml --effective 2026-03-02T08:00:00Z", "rules list --at 2026-03-02",
    "rules history", "bridge run --client-id b2 --log-file /tmp/b.log --quiet", "bridge status --client-id b2",
    "status --no-colour", "status --json",
    "lake compact telemetry --target-mb 64", "lake expire telemetry --retain-last 5 --max-age-hours 1",
    "lake orphans telemetry dead_letters --suffix _v2 --min-age-hours 0", "lake status telemetry --suffix _v2",
]


@pytest.mark.parametrize("line", DOCUMENTED)
def test_documented_invocations_parse(line: str) -> None:
    argv = [word.replace("_", " ") if word in ("SELECT_1", "90_days") else word for word in line.split()]
    ctx = cli.make_context("kappa", ["--profile", "test", *argv])
    while isinstance(ctx.command, click.Group):  # what Group.invoke does, without running anything
        name, command, rest = ctx.command.resolve_command(ctx, [*ctx._protected_args, *ctx.args])
        assert command is not None and name is not None
        ctx = command.make_context(name, rest, parent=ctx)
    assert not ctx.args, ctx.args


def test_run_and_submit_take_the_job_scripts_options() -> None:
    """`kappa run/submit` (Click) and the job scripts `flink run` starts (argparse) read the same options."""
    from kappa import jobrunner
    from kappa.cli import jobs
    from kappa.cli.common import make_job_options
    from kappa.flinkenv import JobOptions

    options = JobOptions(bounded=True, output_suffix="_v2", parallelism=2, extra={"a": "1", "b": "x=y"}, lake=False)
    for command in (jobs.run, jobs.submit):
        params = command.make_context(command.name or "", ["smoke", *jobrunner.job_arguments(options)]).params
        assert make_job_options(params["bounded"], params["output_suffix"], params["parallelism"],
                                params["no_lake"], params["extra"]) == options
