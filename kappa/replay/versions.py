"""The replay_versions registry: one row per replayed version of a job, with the offsets it reads,
its state (running, finished, failed with the reason, following, promoted) and its --follow job."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

from kappa import outputs
from kappa.replay import ReplayError
from kappa.replay.offsets import OffsetRange

LIVE = "live"
_VERSION = re.compile(r"^[a-z][a-z0-9_]{0,30}$")


def check_version(version: str, allow_live: bool = False) -> str:
    if version == LIVE:
        if allow_live:
            return version
        raise ReplayError("'live' names the live outputs; pick another version name, e.g. v2")
    if not _VERSION.match(version):
        raise ReplayError(f"bad version {version!r}: lowercase letter, then letters/digits/_ (max 31), e.g. v2")
    return version


def version_suffix(version: str) -> str:
    """'v2' -> '_v2'; 'live' -> ''."""
    if version == LIVE:
        return ""
    return outputs.check_suffix("_" + check_version(version))


def lake_ref(version: str) -> str:
    """The Iceberg ref holding a version's archive: 'live' -> main, 'v2' -> the branch replay_v2."""
    return "main" if version == LIVE else f"replay_{check_version(version)}"


@dataclass(frozen=True)
class Version:
    job: str
    version: str
    topic: str
    start: dict[int, int]
    end: dict[int, int]
    from_spec: str
    to_spec: str | None
    state: str
    created_at: datetime
    finished_at: datetime | None
    error: str | None
    job_id: str | None = None  # the Flink job of a --follow version (it keeps the version current)

    @property
    def promoted(self) -> bool:
        return self.state == "promoted"

    @property
    def follows(self) -> bool:
        """Computed by its own unbounded job (`--follow`), not by a bounded replay."""
        return self.job_id is not None


def _offsets(value: Any) -> dict[int, int]:
    data = json.loads(value) if isinstance(value, str) else dict(value)
    return {int(k): int(v) for k, v in data.items()}


def versions(conn: psycopg.Connection, job: str | None = None) -> list[Version]:
    rows = conn.execute(
        "SELECT job, version, topic, start_offsets, end_offsets, from_spec, to_spec, state, created_at, "
        "finished_at, error, job_id FROM replay_versions WHERE %(job)s::text IS NULL OR job = %(job)s "
        "ORDER BY job, created_at", {"job": job}).fetchall()
    return [Version(r[0], r[1], r[2], _offsets(r[3]), _offsets(r[4]), *r[5:]) for r in rows]


def get_version(conn: psycopg.Connection, job: str, version: str) -> Version:
    for candidate in versions(conn, job):
        if candidate.version == version:
            return candidate
    raise ReplayError(f"no version {version!r} of job {job!r}; see `kappa replay versions {job}`")


def register(conn: psycopg.Connection, job: str, version: str, rng: OffsetRange) -> None:
    """Record a new running version (a failed one of the same name is replaced)."""
    existing = [v for v in versions(conn, job) if v.version == version]
    if existing and existing[0].state != "failed":
        raise ReplayError(f"version {version} of {job} exists ({existing[0].state}); "
                          f"`kappa replay drop {job} {version}` first, or pick another name")
    conn.execute(
        "INSERT INTO replay_versions (job, version, topic, start_offsets, end_offsets, from_spec, to_spec) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (job, version) DO UPDATE SET "
        "topic = EXCLUDED.topic, start_offsets = EXCLUDED.start_offsets, end_offsets = EXCLUDED.end_offsets, "
        "from_spec = EXCLUDED.from_spec, to_spec = EXCLUDED.to_spec, state = 'running', error = NULL, "
        "created_at = now(), finished_at = NULL, job_id = NULL",
        (job, version, rng.topic, json.dumps({str(p): o for p, o in rng.start.items()}),
         json.dumps({str(p): o for p, o in rng.end.items()}), rng.from_spec, rng.to_spec))


def set_state(conn: psycopg.Connection, job: str, version: str, state: str, error: str | None = None) -> None:
    conn.execute("UPDATE replay_versions SET state = %s, error = %s, finished_at = now() "
                 "WHERE job = %s AND version = %s", (state, error, job, version))


def record_job(conn: psycopg.Connection, job: str, version: str, job_id: str) -> None:
    """Store the Flink job of a --follow version as soon as it is submitted: `drop` checks it."""
    conn.execute("UPDATE replay_versions SET job_id = %s WHERE job = %s AND version = %s", (job_id, job, version))


def forget(conn: psycopg.Connection, job: str, version: str) -> None:
    conn.execute("DELETE FROM replay_versions WHERE job = %s AND version = %s", (job, version))
