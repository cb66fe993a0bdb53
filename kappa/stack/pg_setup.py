"""What `stack up`, `kappa db migrate` and each job run set up in PostgreSQL: roles, schemas, grants.

The rights are declared in kappa/pg_security.py; this module only applies them, idempotently:
- `create_roles` (the stack's own server, as its superuser, at `stack up`): every role with its
  generated password, the database closed to PUBLIC, the registry's and the catalog's own schemas;
- `grant` (as the owner, after the migrations, and at `stack up` for what is already migrated): the
  analyst's views, the readers' and writers' tables, the jobs' live tables;
- `grant_run` (as the owner, before a job runs): the job's role on its tables with this run's suffix
  (a replay's `_v2`, a test's own), which the owner created just before (kappa/outputs.py).
Passwords and names enter SQL only through psycopg's `sql.Literal` / `sql.Identifier`.
"""

from __future__ import annotations

import psycopg
from psycopg import sql

from kappa import pg_security
from kappa.config import Config
from kappa.pg_security import OWNER, ROLES

_DML = sql.SQL("SELECT, INSERT, UPDATE, DELETE")


def _exists(conn: psycopg.Connection, table: str, schema: str = "public") -> bool:
    row = conn.execute("SELECT to_regclass(%s)", (f"{schema}.{table}",)).fetchone()
    return row is not None and row[0] is not None


def create_roles(config: Config, admin: psycopg.Connection) -> None:
    """Every role of pg_security.ROLES (password from its secret), CONNECT only for the project's
    roles, and the registry's and the catalog's schemas owned by their roles (objects a previous
    version created there or in `public` as the owner are handed over)."""
    pg = config.postgres
    database = sql.Identifier(pg.database)
    admin.execute(sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(database))
    for role, spec in ROLES.items():
        name = sql.Identifier(pg_security.user(config, role))
        exists = admin.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (pg_security.user(config, role),))
        verb = sql.SQL("ALTER" if exists.fetchone() else "CREATE")
        password = sql.Literal(config.secret(pg_security.password_env(config, role)))
        admin.execute(sql.SQL("{} ROLE {} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS PASSWORD {}")
                      .format(verb, name, password))
        admin.execute(sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(database, name))
        for member_of in spec.member_of:
            admin.execute(sql.SQL("GRANT {} TO {}").format(sql.Identifier(member_of), name))
        if spec.own_schema:
            schema = sql.Identifier(spec.own_schema)
            admin.execute(sql.SQL("ALTER ROLE {} IN DATABASE {} SET search_path = {}").format(name, database, schema))
    admin.execute(sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(database, sql.Identifier(pg.user)))


def own_schemas(config: Config, conn: psycopg.Connection) -> None:
    """Run in the project database as its superuser: each schema-owning role owns its schema and every
    table in it; the catalog's tables an earlier version made in `public` move into its schema."""
    for role, spec in ROLES.items():
        if not spec.own_schema:
            continue
        name = sql.Identifier(pg_security.user(config, role))
        schema = sql.Identifier(spec.own_schema)
        conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {} AUTHORIZATION {}").format(schema, name))
        conn.execute(sql.SQL("ALTER SCHEMA {} OWNER TO {}").format(schema, name))
        if spec.own_schema == pg_security.LAKE_SCHEMA:
            for table in ("iceberg_tables", "iceberg_namespace_properties"):
                if _exists(conn, table) and not _exists(conn, table, spec.own_schema):
                    conn.execute(sql.SQL("ALTER TABLE public.{} SET SCHEMA {}").format(sql.Identifier(table), schema))
        tables = conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = %s", (spec.own_schema,))
        for (table,) in tables.fetchall():
            conn.execute(sql.SQL("ALTER TABLE {}.{} OWNER TO {}").format(schema, sql.Identifier(table), name))
    conn.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")


def grant(config: Config, conn: psycopg.Connection) -> None:
    """As the owner after the migrations: views to the analyst, tables to their readers, the jobs'
    live output tables to their writers (tables not migrated yet are skipped)."""
    views = [row[0] for row in conn.execute("SELECT viewname FROM pg_views WHERE schemaname = 'public'")]
    for role, spec in ROLES.items():
        name = sql.Identifier(pg_security.user(config, role))
        readable = [*spec.reads, *(views if spec.reads_views else [])]
        for entry in readable:
            table, _, columns = entry.partition(" (")
            if not _exists(conn, table):
                continue
            names = [sql.Identifier(c.strip()) for c in columns.rstrip(")").split(",") if c.strip()]
            what = sql.SQL("SELECT ({})").format(sql.SQL(", ").join(names)) if names else sql.SQL("SELECT")
            conn.execute(sql.SQL("GRANT {} ON {} TO {}").format(what, sql.Identifier(table), name))
        for table in spec.writes:
            if _exists(conn, table):
                conn.execute(sql.SQL("GRANT {} ON {} TO {}").format(_DML, sql.Identifier(table), name))
        if spec.job:
            grant_run(config, conn, role, "")


def grant_run(config: Config, conn: psycopg.Connection, role: str, suffix: str) -> list[str]:
    """Before a run of `role`'s job with output suffix `suffix`: DML on its existing output tables."""
    from kappa.outputs import check_suffix, job_outputs

    spec = ROLES.get(role)
    if role == OWNER or spec is None or spec.job is None:
        return []
    name = sql.Identifier(pg_security.user(config, role))
    granted = [t for t in job_outputs(spec.job).table_names(check_suffix(suffix)) if _exists(conn, t)]
    for table in granted:
        conn.execute(sql.SQL("GRANT {} ON {} TO {}").format(_DML, sql.Identifier(table), name))
    return granted


def prepare_run(config: Config, role: str, suffix: str) -> None:
    """Connect as the owner and grant `role` its tables for this run (see grant_run)."""
    from kappa.stack.postgres import connect

    if role == OWNER:
        return
    with connect(config) as conn:
        grant_run(config, conn, role, suffix)
