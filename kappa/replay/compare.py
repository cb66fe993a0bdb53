"""Comparing two versions of a job's outputs: the compared tables its OUTPUTS declare, row by row
by their keys, over the range both versions cover; as a text table or CSV."""

from __future__ import annotations

import csv
import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from kappa import outputs
from kappa.replay import ReplayError
from kappa.replay.versions import check_version, version_suffix

Row = dict[str, Any]


def values_equal(a: Any, b: Any, rel: float = 1e-9) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, float) or isinstance(b, float):
        try:
            return math.isclose(float(a), float(b), rel_tol=rel, abs_tol=0.0) or (
                math.isnan(float(a)) and math.isnan(float(b)))
        except (TypeError, ValueError):
            return bool(a == b)
    return bool(a == b)


@dataclass
class TableDiff:
    table: str
    rows_left: int  # all rows of the left table
    rows_right: int
    range_column: str | None = None  # the column whose overlapping range was compared (None: all rows)
    window_from: Any = None  # the overlapping range compared (None: no overlap, or no range column)
    window_to: Any = None
    only_left: int = 0
    only_right: int = 0
    differing: int = 0
    same: int = 0
    columns: Counter[str] = field(default_factory=Counter)
    # which keys: a test can check that a change altered exactly the rows it should
    only_left_keys: set[tuple] = field(default_factory=set)
    only_right_keys: set[tuple] = field(default_factory=set)
    differing_keys: set[tuple] = field(default_factory=set)
    range_text: str | None = None  # what was compared, when it is no range of one column (lake_compare)

    @property
    def differences(self) -> int:
        return self.only_left + self.only_right + self.differing

    @property
    def compared_range(self) -> str:
        if self.range_text is not None:
            return self.range_text
        if self.range_column is None:
            return "all rows"
        if self.window_from is None:
            return "(no overlap)"
        return f"{self.range_column} {self.window_from} .. {self.window_to}"

    def top_columns(self, n: int = 3) -> str:
        return ", ".join(f"{c}({k})" for c, k in self.columns.most_common(n))


def compare_rows(table: str, left: Mapping[tuple, Row], right: Mapping[tuple, Row],
                 range_column: str | None = "window_start",
                 ignore: frozenset[str] = outputs.IGNORED_COLUMNS) -> TableDiff:
    """Compare two keyed row sets; with a `range_column`, only rows inside the range of that column
    both sides cover (a replay from a later offset has no rows for earlier windows)."""
    diff = TableDiff(table, len(left), len(right), range_column)
    if range_column is None:
        keys_left, keys_right = set(left), set(right)
    else:
        if not left or not right:
            return diff
        lo = max(min(r[range_column] for r in left.values()), min(r[range_column] for r in right.values()))
        hi = min(max(r[range_column] for r in left.values()), max(r[range_column] for r in right.values()))
        if lo > hi:
            return diff
        diff.window_from, diff.window_to = lo, hi
        keys_left = {k for k, r in left.items() if lo <= r[range_column] <= hi}
        keys_right = {k for k, r in right.items() if lo <= r[range_column] <= hi}
    diff.only_left_keys, diff.only_right_keys = keys_left - keys_right, keys_right - keys_left
    diff.only_left, diff.only_right = len(diff.only_left_keys), len(diff.only_right_keys)
    for key in keys_left & keys_right:
        a, b = left[key], right[key]
        columns = [c for c in sorted(a.keys() | b.keys()) if c not in ignore and not values_equal(a.get(c), b.get(c))]
        if columns:
            diff.differing += 1
            diff.differing_keys.add(key)
            diff.columns.update(columns)
        else:
            diff.same += 1
    return diff


def format_diffs(name_left: str, name_right: str, diffs: list[TableDiff]) -> str:
    header = ("table", f"rows {name_left}", f"rows {name_right}", "compared range",
              f"only {name_left}", f"only {name_right}", "differing", "same", "top differing columns")
    lines = [header]
    for d in diffs:
        lines.append((d.table, str(d.rows_left), str(d.rows_right), d.compared_range, str(d.only_left),
                      str(d.only_right), str(d.differing), str(d.same), d.top_columns() or "-"))
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip()
                     for line in lines)


def write_csv(path: Path, name_left: str, name_right: str, diffs: list[TableDiff]) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["table", "left", "right", "rows_left", "rows_right", "range_column", "window_from",
                         "window_to", "only_left", "only_right", "differing", "same", "top_columns"])
        for d in diffs:
            writer.writerow([d.table, name_left, name_right, d.rows_left, d.rows_right, d.range_column or "",
                             d.window_from, d.window_to, d.only_left, d.only_right, d.differing, d.same,
                             ";".join(f"{c}={k}" for c, k in d.columns.most_common())])


def table_rows(conn: psycopg.Connection, table: str, keys: tuple[str, ...]) -> dict[tuple, Row]:
    cursor = conn.execute(sql.SQL("SELECT * FROM {}").format(sql.Identifier(table)))
    names = [c.name for c in cursor.description or []]
    rows = (dict(zip(names, values, strict=True)) for values in cursor.fetchall())
    return {tuple(row[k] for k in keys): row for row in rows}


def table_exists(conn: psycopg.Connection, table: str) -> bool:
    return conn.execute("SELECT to_regclass(%s)", (table,)).fetchone() != (None,)


def compare_versions(conn: psycopg.Connection, job: str, left: str, right: str) -> list[TableDiff]:
    """Compare the tables `job` declares as compared, in versions `left` and `right` ('live' = no suffix)."""
    suffixes = (version_suffix(check_version(left, True)), version_suffix(check_version(right, True)))
    diffs = []
    for table in outputs.job_outputs(job).compared:
        names = [table.name + s for s in suffixes]
        for name in names:
            if not table_exists(conn, name):
                raise ReplayError(f"table {name} does not exist (job {job})")
        diffs.append(compare_rows(table.name, table_rows(conn, names[0], table.key),
                                  table_rows(conn, names[1], table.key), table.range_column, table.ignored))
    return diffs
