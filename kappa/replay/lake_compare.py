"""Comparing two refs of the Iceberg archive (main and a version's branch `replay_<v>`, or two branches)
in DuckDB, in the style of kappa.replay.compare: rows per table, the keys only one side has and the rows
whose values differ (floats to a relative 1e-9), over what the replay recomputed: its offsets for the
appended tables (one row per Kafka record), the window range both sides cover for the windows. DuckDB
reads each side at its ref's snapshot, equality deletes applied, and holds the compared rows as its own
temporary tables (memory, spilling to its temp directory); only counts and at most `key_limit` keys per
kind come back to Python."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any

import psycopg

from kappa import lake, lake_branch, lake_query
from kappa.config import Config
from kappa.replay import ReplayError
from kappa.replay.compare import TableDiff
from kappa.replay.offsets import OffsetRange
from kappa.replay.versions import LIVE, check_version, get_version, lake_ref

REL = 1e-9


def row_key(spec: lake.LakeTable) -> tuple[str, ...]:
    """What identifies a row: the upsert key, else its Kafka record."""
    return spec.key or ("kafka_partition", "kafka_offset")


def offsets_predicate(start: Mapping[int, int], end: Mapping[int, int]) -> str:
    """SQL: the rows of Kafka records in [start, end) per partition ('false' for an empty range)."""
    parts = [f"(kafka_partition = {int(p)} AND kafka_offset >= {int(start.get(p, 0))} AND kafka_offset < {int(e)})"
             for p, e in sorted(end.items()) if e > start.get(p, 0)]
    return " OR ".join(parts) or "false"


def column_differs(name: str, kind: str) -> str:
    """SQL: whether column `name` differs between rows `a` and `b` (doubles as math.isclose, NULL = NULL)."""
    a, b = f'a."{name}"', f'b."{name}"'
    if kind != "double":
        return f"({a} IS DISTINCT FROM {b})"
    return (f"(CASE WHEN {a} IS NULL OR {b} IS NULL THEN ({a} IS NULL) <> ({b} IS NULL) WHEN {a} = {b} THEN false "
            f"ELSE NOT (abs({a} - {b}) <= {REL} * greatest(abs({a}), abs({b}))) END)")


def _scan(table: Any, snapshot: int | None) -> str:
    scan = f"iceberg_scan('{table.metadata_location}'"
    if snapshot is None:
        return f"SELECT * FROM {scan}) LIMIT 0"
    return f"SELECT * FROM {scan}, snapshot_from_id = {snapshot})"


def _scalar(conn: Any, query: str) -> Any:
    row = conn.execute(query).fetchone()
    return row[0] if row else None


def diff_refs(conn: Any, spec: lake.LakeTable, table: Any, left: int | None, right: int | None,
              rng: OffsetRange | None, key_limit: int = 1000) -> TableDiff:
    """One table's two snapshots (None: that side has none) compared in DuckDB connection `conn`."""
    conn.execute(f"CREATE OR REPLACE TEMP VIEW l AS {_scan(table, left)}")
    conn.execute(f"CREATE OR REPLACE TEMP VIEW r AS {_scan(table, right)}")
    diff = TableDiff(spec.name, int(_scalar(conn, "SELECT count(*) FROM l")),
                     int(_scalar(conn, "SELECT count(*) FROM r")), None)
    if lake_branch.offset_keyed(spec):
        where = offsets_predicate(rng.start, rng.end) if rng is not None else "true"
        diff.range_text = "the replay's offsets" if rng is not None else "all rows"
    else:
        column = spec.time_column
        # one query per side: DuckDB 1.5.5 fails planning a cross product of two upserted tables' scans
        # ("INTERNAL Error: Information loss on integer cast" in its statistics propagation)
        bounds = [conn.execute(f'SELECT min("{column}"), max("{column}") FROM {side}').fetchone() for side in "lr"]
        diff.range_column = column
        if any(b is None or None in b for b in bounds):
            return diff
        lo, hi = max(bounds[0][0], bounds[1][0]), min(bounds[0][1], bounds[1][1])
        if lo > hi:
            return diff
        diff.window_from, diff.window_to = lo, hi
        where = f""""{column}" BETWEEN TIMESTAMP '{lo}' AND TIMESTAMP '{hi}'"""
    # the compared rows, materialized: the joins below then plan on DuckDB's own tables (see above)
    conn.execute(f"CREATE OR REPLACE TEMP TABLE lr AS SELECT * FROM l WHERE {where}")
    conn.execute(f"CREATE OR REPLACE TEMP TABLE rr AS SELECT * FROM r WHERE {where}")
    keys = row_key(spec)
    using = ", ".join(f'"{k}"' for k in keys)
    for side, (this, other) in (("left", ("lr", "rr")), ("right", ("rr", "lr"))):
        count = int(_scalar(conn, f"SELECT count(*) FROM {this} ANTI JOIN {other} USING ({using})"))
        found = {tuple(row) for row in conn.execute(
            f"SELECT {using} FROM {this} ANTI JOIN {other} USING ({using}) LIMIT {key_limit}").fetchall()}
        setattr(diff, f"only_{side}", count)
        setattr(diff, f"only_{side}_keys", found)
    have = {d[0] for d in conn.execute("SELECT * FROM l LIMIT 0").description}
    columns = [c for c in spec.columns if c.name in have and c.name not in keys]
    checks = [column_differs(c.name, c.kind) for c in columns]
    any_differs = " OR ".join(checks) or "false"
    sums = ", ".join(f"count(*) FILTER (WHERE {check})" for check in checks)
    joined = f"FROM lr AS a JOIN rr AS b USING ({using})"
    row = conn.execute(f"SELECT count(*), count(*) FILTER (WHERE {any_differs}){', ' + sums if sums else ''} "
                       f"{joined}").fetchone()
    both, differing = int(row[0]), int(row[1])
    diff.differing, diff.same = differing, both - differing
    diff.columns = Counter({c.name: int(n) for c, n in zip(columns, row[2:], strict=True) if n})
    key_columns = ", ".join(f'a."{k}"' for k in keys)
    diff.differing_keys = {tuple(r) for r in conn.execute(
        f"SELECT {key_columns} {joined} WHERE {any_differs} LIMIT {key_limit}").fetchall()}
    return diff


def compare_lake(config: Config, conn: psycopg.Connection, job: str, left: str, right: str,
                 specs: tuple[lake.LakeTable, ...]) -> list[TableDiff]:
    """The job's Iceberg tables at `left`'s and `right`'s refs ('live' = main, a version = its branch),
    over the offsets of the version compared (the right one, else the left one)."""
    versions = [v for v in (check_version(right, True), check_version(left, True)) if v != LIVE]
    rng = None
    if versions:
        chosen = get_version(conn, job, versions[0])
        rng = OffsetRange(chosen.topic, chosen.start, chosen.end, chosen.from_spec, chosen.to_spec)
    refs = (lake_ref(left), lake_ref(right))
    duck, catalog = lake_query.duckdb_session(config), lake.catalog(config)
    diffs = []
    for spec in specs:
        table = catalog.load_table(spec.identifier(config))
        snapshots = [lake_branch.head(table, ref) for ref in refs]
        for ref, snapshot in zip(refs, snapshots, strict=True):
            if snapshot is None and ref != lake_branch.MAIN and lake_branch.head(table, lake_branch.MAIN) is not None:
                raise ReplayError(f"{spec.name} has no branch {ref} (a version replayed before replays wrote "
                                  "branches, or with --follow, has versioned tables instead)")
        diffs.append(diff_refs(duck, spec, table, snapshots[0], snapshots[1], rng))
    return diffs
