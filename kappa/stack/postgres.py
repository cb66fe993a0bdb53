"""PostgreSQL 15 (Debian's) as the stack's own cluster: initdb in the data folder, scram passwords.

TimescaleDB has no native build here, so the storage schema falls back to native partitioning on
plain PostgreSQL (see `kappa db migrate`); a production profile points at a TimescaleDB server.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
from pathlib import Path

import psycopg
from psycopg import sql

from kappa.config import Config
from kappa.private_files import write_private
from kappa.stack.base import Service
from kappa.stack.process import ServiceError

ADMIN_USER = "postgres"
ADMIN_PASSWORD_ENV = "KAPPA_PG_ADMIN_PASSWORD"


def _pg_bin(tool: str) -> str:
    """Debian keeps the server binaries off PATH, under /usr/lib/postgresql/<major>/bin."""
    found = shutil.which(tool)
    if found:
        return found
    for candidate in sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{tool}"), reverse=True):
        return str(candidate)
    raise ServiceError(f"postgres: `{tool}` not found; install postgresql-15 (make setup does)")


def connect(config: Config, admin: bool = False, dbname: str | None = None) -> psycopg.Connection:
    """A connection to the project's database as the project role (or the admin role)."""
    pg = config.postgres
    user = ADMIN_USER if admin else pg.user
    password = config.secret(ADMIN_PASSWORD_ENV if admin else pg.password_env)
    return psycopg.connect(
        host=pg.host,
        port=pg.port,
        user=user,
        password=password,
        dbname=dbname or pg.database,
        connect_timeout=5,
        autocommit=True,
    )


class PostgresService(Service):
    name = "postgres"
    start_timeout_s = 60.0

    @property
    def host(self) -> str:
        return self.config.postgres.host

    @property
    def ports(self) -> list[int]:
        return [self.config.postgres.port]

    @property
    def enabled(self) -> bool:
        return self.config.postgres.start

    @property
    def _pgdata(self) -> Path:
        return self.data_dir / "pgdata"

    @property
    def _run_as(self) -> str | None:
        """PostgreSQL refuses to run as root: switch to the `postgres` account when we are root."""
        return "postgres" if os.geteuid() == 0 else None

    def _chown(self, path: Path) -> None:
        if self._run_as:
            entry = pwd.getpwnam(self._run_as)
            os.chown(path, entry.pw_uid, entry.pw_gid)

    def _initdb(self) -> None:
        if (self._pgdata / "PG_VERSION").exists():
            return
        self._pgdata.mkdir(parents=True, exist_ok=True)
        self._chown(self.data_dir)
        self._chown(self._pgdata)
        pwfile = self.data_dir / ".pwfile"
        write_private(pwfile, self.config.secret(ADMIN_PASSWORD_ENV) + "\n")  # mode 600 from the first byte
        self._chown(pwfile)
        try:
            result = subprocess.run(
                [_pg_bin("initdb"), "-D", str(self._pgdata), "-U", ADMIN_USER, "--auth=scram-sha-256",
                 f"--pwfile={pwfile}", "--encoding=UTF8", "--locale=C.UTF-8"],
                capture_output=True,
                text=True,
                user=self._run_as,
                group=self._run_as,
            )
        finally:
            pwfile.unlink(missing_ok=True)
        if result.returncode != 0:
            raise ServiceError(f"postgres: initdb failed:\n{result.stdout}{result.stderr}")

    def _launch(self) -> None:
        self._initdb()
        pg = self.config.postgres
        self.process.start(
            [_pg_bin("postgres"), "-D", str(self._pgdata), "-p", str(pg.port),
             "-c", f"listen_addresses={pg.host}", "-c", f"unix_socket_directories={self._pgdata}",
             "-c", "max_connections=200", "-c", "shared_buffers=256MB", "-c", "fsync=on"],
            user=self._run_as,
        )

    def ready(self) -> bool:
        with connect(self.config, admin=True, dbname="postgres") as conn:
            conn.execute("SELECT 1")
        return True

    def after_ready(self) -> None:
        """Create the project's role and database once (idempotent)."""
        pg = self.config.postgres
        password = self.config.secret(pg.password_env)
        with connect(self.config, admin=True, dbname="postgres") as conn:
            exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (pg.user,)).fetchone()
            verb = "ALTER" if exists else "CREATE"
            conn.execute(
                sql.SQL(verb + " ROLE {} LOGIN PASSWORD {}").format(
                    sql.Identifier(pg.user), sql.Literal(password)
                )
            )
            if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (pg.database,)).fetchone():
                conn.execute(
                    sql.SQL("CREATE DATABASE {} OWNER {}").format(
                        sql.Identifier(pg.database), sql.Identifier(pg.user)
                    )
                )

    def stop(self) -> bool:
        # SIGINT is PostgreSQL's "fast" shutdown: roll back open transactions, checkpoint, exit.
        return self.process.stop(sig=signal.SIGINT)
