"""The `kappa` command line without a stack: every command's help, user mistakes, an offline success.

User mistakes must end in one line on stderr and exit code 2, never a traceback; commands that need
services are exercised on the real stack by the integration tests.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from kappa import cli

pytestmark = pytest.mark.unit


Command = tuple[tuple[str, ...], argparse.ArgumentParser]


def _commands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> list[Command]:
    """Every (sub)command under `parser`, depth first, with its argv prefix."""
    found: list[Command] = [(path, parser)]
    for action in parser._actions:  # argparse keeps subcommands here; no public accessor exists
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found.extend(_commands(sub, (*path, name)))
    return found


ALL_COMMANDS = _commands(cli.build_parser())


def test_the_tree_has_every_command_group() -> None:
    groups = {path[0] for path, _ in ALL_COMMANDS if len(path) == 1}
    assert {"stack", "run", "submit", "db", "archive", "query", "schema", "simulate", "replay", "devices",
            "rules", "bridge", "status", "doctor", "demo", "lake"} <= groups


@pytest.mark.parametrize("path", [path for path, _ in ALL_COMMANDS if path], ids=" ".join)
def test_every_command_has_help(path: tuple[str, ...], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main([*path, "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: kappa {' '.join(path)}")
    parent = dict(ALL_COMMANDS)[path[:-1]]
    helps = {choice.dest: choice.help for action in parent._actions
             if isinstance(action, argparse._SubParsersAction) for choice in action._choices_actions}
    assert helps.get(path[-1]), f"`kappa {' '.join(path)}` has no one-line help in its group's listing"


MISTAKES = [
    (["--profile", "no-such-profile", "stack", "status"], "unknown profile 'no-such-profile'"),
    (["stack", "logs", "no-such-service"], "unknown service 'no-such-service'"),
    (["simulate", "--devices", "many"], "invalid int value: 'many'"),
    (["replay", "run", "aggregate", "--as", "v2", "--set", "no-equals-sign"], "--set wants NAME=VALUE"),
    (["rules", "set"], "the following arguments are required: --file"),
    (["devices", "move"], "the following arguments are required"),
    (["no-such-command"], "invalid choice: 'no-such-command'"),
    (["lake", "compact", "no-such-table"], "no archive table no-such-table"),
    (["lake", "expire", "--retain-last", "0"], "retain at least one snapshot"),
]


@pytest.mark.parametrize(("argv", "message"), MISTAKES, ids=[" ".join(argv) for argv, _ in MISTAKES])
def test_a_user_mistake_is_one_line_and_exit_2(argv: list[str], message: str,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    try:
        code = cli.main(argv)
    except SystemExit as exc:  # argparse's own usage errors
        code = int(exc.code or 0)
    err = capsys.readouterr().err
    assert code == 2
    assert message in err
    assert "Traceback" not in err
    error_lines = [line for line in err.splitlines() if "error" in line]
    assert len(error_lines) == 1, err


def test_a_config_value_of_the_wrong_type_names_the_key(monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("KAPPA_KAFKA__PORT", "not-a-port")
    assert cli.main(["stack", "status"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: invalid configuration") and "kafka.port" in err
    assert len(err.strip().splitlines()) == 1


def test_a_missing_secret_is_one_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    from kappa.config import load_config
    from kappa.errors import KappaError, MissingSecret

    monkeypatch.delenv("KAPPA_NO_SUCH_SECRET", raising=False)
    config = load_config(environ={"KAPPA_PATHS__DATA_DIR": str(tmp_path)})
    with pytest.raises(MissingSecret) as info:
        config.secret("KAPPA_NO_SUCH_SECRET")
    assert isinstance(info.value, KappaError)
    assert str(info.value).startswith("secret KAPPA_NO_SUCH_SECRET is not set")


def test_simulate_dry_run_succeeds_offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("KAPPA_PATHS__DATA_DIR", str(tmp_path))
    manifest = tmp_path / "manifest.json"
    code = cli.main(["simulate", "--devices", "2", "--readings-per-device", "3", "--dry-run",
                     "--manifest", str(manifest)])
    assert code == 0
    assert "6 records (dry run): valid 6" in capsys.readouterr().out
    written = json.loads(manifest.read_text())
    assert written["dry_run"] is True
    assert written["counts"]["valid"] == 6 and len(written["per_device"]) == 2
