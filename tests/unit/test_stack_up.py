"""`stack up`'s order: a service that needs no other (Service.launch_early) is launched first and waited
for in its turn, and a failure stops everything the call launched (fakes: no process is started)."""

from __future__ import annotations

from pathlib import Path

import pytest

from kappa.config import Config, load_config
from kappa.stack import manager
from kappa.stack.base import Service
from kappa.stack.process import ServiceError

pytestmark = pytest.mark.unit


class Fake(Service):
    host = "127.0.0.1"
    ports = [1]

    def __init__(self, config: Config, name: str, events: list[str], early: bool = False,
                 fails: bool = False) -> None:
        super().__init__(config)
        self.name, self.events, self.early, self.fails, self.up = name, events, early, fails, False

    @property
    def launch_early(self) -> bool:
        return self.early

    def running(self) -> bool:
        return self.up

    def taken_ports(self) -> list[int]:
        return []

    def _launch(self) -> None:
        self.events.append(f"launch {self.name}")
        self.up = True

    def ready(self) -> bool:
        return True

    def wait_ready(self) -> None:
        self.events.append(f"ready {self.name}")
        if self.fails:
            raise ServiceError(f"{self.name} failed")

    def stop(self) -> bool:
        self.events.append(f"stop {self.name}")
        self.up = False
        return True


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return load_config(profile="test", environ={"KAPPA_PATHS__DATA_DIR": str(tmp_path)})


def _up(config: Config, monkeypatch: pytest.MonkeyPatch, fakes: list[Fake]) -> list[Service]:
    monkeypatch.setattr(manager, "services", lambda _: fakes)
    monkeypatch.setattr(manager, "ensure_local_secrets", lambda _: None)
    return manager.up(config, say=lambda _: None)


def test_an_early_service_is_launched_first_and_waited_for_in_its_turn(config: Config,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    events: list[str] = []
    fakes = [Fake(config, "a", events), Fake(config, "slow", events, early=True), Fake(config, "b", events)]
    started = _up(config, monkeypatch, fakes)
    assert events == ["launch slow", "launch a", "ready a", "ready slow", "launch b", "ready b"]
    assert [s.name for s in started] == ["a", "slow", "b"]


def test_a_running_early_service_is_left_alone(config: Config, monkeypatch: pytest.MonkeyPatch) -> None:
    events: list[str] = []
    slow = Fake(config, "slow", events, early=True)
    slow.up = True
    started = _up(config, monkeypatch, [Fake(config, "a", events), slow])
    assert events == ["launch a", "ready a", "ready slow"] and [s.name for s in started] == ["a"]


def test_a_failure_stops_what_the_call_launched_the_early_one_included(config: Config,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    events: list[str] = []
    fakes = [Fake(config, "a", events), Fake(config, "slow", events, early=True),
             Fake(config, "bad", events, fails=True), Fake(config, "never", events)]
    with pytest.raises(ServiceError, match="bad failed"):
        _up(config, monkeypatch, fakes)
    assert events[-3:] == ["stop bad", "stop a", "stop slow"]
    assert "launch never" not in events and not any(f.up for f in fakes)
