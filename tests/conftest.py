"""Shared fixtures. The real stack (profile `test`, its own ports and data folder) starts once per
test session, only if an integration test asks for it, and stops at the end of the session."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import pytest

from kappa.config import Config, load_config
from kappa.jars import MissingJarError, local_jvm_classpath

# Modules that restart the session's Flink cluster, and where they run to need no extra restart: the
# first wants JVMs that never ran a job (the stack's own, when it runs before every other cluster test),
# the last replaces the cluster by an HA one that no later test needs restored.
FIRST_MODULES = ("test_cluster_classloading.py",)
LAST_MODULES = ("test_jobmanager_ha.py",)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=lambda item: 0 if item.path.name in FIRST_MODULES else 2 if item.path.name in LAST_MODULES else 1)


def more_tests_follow(request: pytest.FixtureRequest) -> bool:
    """Whether the session runs any test after those of the requesting fixture's module."""
    items = request.session.items
    own = [i for i, item in enumerate(items) if item.path == request.path]
    return bool(own) and own[-1] < len(items) - 1


@pytest.fixture(scope="session")
def test_config() -> Config:
    os.environ["KAPPA_PROFILE"] = "test"
    config = load_config(profile="test")
    # PyFlink's gateway keeps the environment of its first start: give it the JVM class path of the
    # Iceberg archive (kappa.flinkenv sets the same) even if a test starts it without kappa.flinkenv
    with contextlib.suppress(MissingJarError):
        os.environ.setdefault("HADOOP_CLASSPATH", local_jvm_classpath(config))
    return config


@pytest.fixture(scope="session")
def stack(test_config: Config) -> Iterator[Config]:
    """Every service of the local stack, up and answering; a clean data folder per session. Killed at
    the end (the next session deletes its data first): a graceful `down` took 20 s, and test_stack
    tests `down` itself."""
    from kappa.stack import manager

    manager.down(test_config, purge=True, say=lambda _: None)
    manager.up(test_config, say=lambda m: print(m, flush=True))
    try:
        yield test_config
    finally:
        manager.kill(test_config, say=lambda m: print(m, flush=True))


@pytest.fixture(scope="session")
def migrated(stack: Config) -> Config:
    """The stack with the database migrated and the reference topics seeded (default thresholds)."""
    from kappa import reference
    from kappa.db import migrate
    from kappa.stack.postgres import connect

    with connect(stack) as conn:
        migrate(conn, config=stack)
        reference.seed(stack, conn)
    return stack
