"""Progress of long work: a bar on a terminal, today's one-line messages off it (pipes, logs, CI)."""

from __future__ import annotations

import io
from typing import Any

import pytest
from click.testing import CliRunner

from kappa.cli import progress as cli_progress
from kappa.cli.main import cli
from kappa.replay import offsets, runner, watch

pytestmark = pytest.mark.unit


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_off_a_terminal_there_is_no_bar_and_messages_are_plain_lines() -> None:
    out = io.StringIO()
    with cli_progress.reporting("simulate", out) as (say, advance):
        say("simulate: produced 10/20 records")
    assert advance is None
    assert out.getvalue() == "simulate: produced 10/20 records\n"


def test_on_a_terminal_a_bar_counts_to_the_total_and_a_message_ends_its_line() -> None:
    out = Terminal()
    with cli_progress.reporting("simulate", out) as (say, advance):
        assert advance is not None
        advance(0, 40)
        advance(40, 40)
        say("simulate: reconnect storm")
        advance(40, 80)  # the total grew (a followed topic): a new bar below the message
        advance(80, 80)
    text = out.getvalue()
    assert "simulate" in text and "40/40" in text and "100%" in text and "80/80" in text
    assert "\nsimulate: reconnect storm\n" in text.replace("\r", "\n")


def _simulate_seen(monkeypatch: pytest.MonkeyPatch, tmp_path: Any, terminal: bool) -> tuple[Any, dict[str, Any]]:
    import kappa.simulate
    from kappa.simulate.produce import simulate as real

    seen: dict[str, Any] = {}

    def fake(config: Any, spec: Any, produce: bool, log: Any, advance: Any) -> Any:
        seen["advance"] = advance
        if advance is None:
            log("simulate: produced 6/6 records")
        else:
            advance(6, 6)
        return real(config, spec, produce=False)

    monkeypatch.setattr(kappa.simulate, "simulate", fake)
    monkeypatch.setattr(cli_progress, "on_terminal", lambda stream: terminal)
    monkeypatch.setenv("KAPPA_PATHS__DATA_DIR", str(tmp_path / "data"))
    result = CliRunner().invoke(cli, ["simulate", "--devices", "2", "--readings-per-device", "3",
                                      "--manifest", str(tmp_path / "m.json")], prog_name="kappa")
    return result, seen


def test_simulate_off_a_terminal_keeps_its_progress_lines(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    result, seen = _simulate_seen(monkeypatch, tmp_path, terminal=False)
    assert result.exit_code == 0, result.output
    assert seen["advance"] is None
    assert result.stderr == "simulate: produced 6/6 records\n"
    assert result.stdout.startswith("simulate: 6 records")


def test_simulate_on_a_terminal_drives_a_bar(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    result, seen = _simulate_seen(monkeypatch, tmp_path, terminal=True)
    assert result.exit_code == 0, result.output
    assert callable(seen["advance"]) and "produced" not in result.stderr
    assert result.stdout.startswith("simulate: 6 records")


class _Run:
    """A replay's job as _watch sees it: RUNNING for a few polls, then FINISHED."""

    def __init__(self, states: list[watch.JobHealth]) -> None:
        self.states, self.job_id = states, "f" * 32

    def health(self) -> watch.JobHealth:
        return self.states.pop(0) if len(self.states) > 1 else self.states[0]


@pytest.mark.parametrize("bar", [False, True], ids=["lines", "bar"])
def test_a_replay_reports_lines_off_a_terminal_and_offsets_read_on_a_bar(bar: bool) -> None:
    rng = offsets.OffsetRange("t", {0: 0, 1: 0}, {0: 10, 1: 10})
    committed = iter([{0: 4, 1: 0}, {0: 10, 1: 6}, {0: 10, 1: 10}])
    said: list[str] = []
    moved: list[tuple[int, int]] = []
    restarted = watch.JobHealth("RUNNING", 1, "java.lang.RuntimeException: boom")
    run = _Run([watch.JobHealth("RUNNING"), restarted, watch.JobHealth("FINISHED")])
    runner._watch(run, rng, lambda: next(committed), watch.Progress(rng), follow=False,  # type: ignore[arg-type]
                  interval_s=0, timeout_s=60, max_restarts=None, say=said.append,
                  advance=(lambda done, total: moved.append((done, total))) if bar else None)
    if bar:
        assert moved == [(4, 20), (16, 20)]
        assert len(said) == 1 and "restarts 1" in said[0]  # a restart is news: a line even with a bar
    else:
        assert moved == [] and len(said) == 2 and "4/20" in said[0] and "16/20" in said[1]
