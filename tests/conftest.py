"""Shared fixtures. The real stack (profile `test`, its own ports and data folder) starts once per
test session, only if an integration test asks for it, and stops at the end of the session."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from kappa.config import Config, load_config


@pytest.fixture(scope="session")
def test_config() -> Config:
    os.environ["KAPPA_PROFILE"] = "test"
    return load_config(profile="test")


@pytest.fixture(scope="session")
def stack(test_config: Config) -> Iterator[Config]:
    """Every service of the local stack, up and answering; a clean data folder per session."""
    from kappa.stack import manager

    manager.down(test_config, purge=True, say=lambda _: None)
    manager.up(test_config, say=lambda m: print(m, flush=True))
    try:
        yield test_config
    finally:
        manager.down(test_config, say=lambda m: print(m, flush=True))


@pytest.fixture(scope="session")
def migrated(stack: Config) -> Config:
    """The stack with the database migrated and the reference topics seeded (default thresholds)."""
    from kappa import reference
    from kappa.db import migrate
    from kappa.stack.postgres import connect

    with connect(stack) as conn:
        migrate(conn)
        reference.seed(stack, conn)
    return stack
