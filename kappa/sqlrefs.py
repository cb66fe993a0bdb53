"""The names SQL statements create, read and write, from sqlfluff's parse tree (Flink dialect), to check
the headers of kappa.sqlheaders against the statements, and to find what a fixture's query reads.

Why sqlfluff: the project lints its SQL with it anyway (.sqlfluff), its Flink dialect parses the
temporal joins (FOR SYSTEM_TIME AS OF), group windows (TUMBLE), window TVFs, OVER windows, computed
columns and watermarks, and its placeholder templater fills `${name}` as kappa.sqlfiles does. Where it
cannot parse a construct (listed in sql/README.md: a reluctant quantifier in MATCH_RECOGNIZE,
TIMESTAMPADD, MAP<... NOT NULL, ...> columns, CREATE CATALOG with a quoted name), its tree has an
`unparsable` segment, which may run on over the statements after it; the names in such a segment are
taken from its text, statement by statement, by the `_FALLBACK_*` patterns (a CREATE's name, an
INSERT's table, the table after FROM/JOIN; comments left out). The header test compares both ways,
so a name the fallback misses (or invents) fails it instead of passing silently.

sqlfluff is a dev dependency: this module serves the tests and the fixture runner, never a job.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from kappa.config import PROJECT_ROOT

_CREATES = {"create_table_statement", "create_view_statement", "create_function_statement"}
_FALLBACK_CREATE = re.compile(
    r"^\s*CREATE\s+(?:TEMPORARY\s+)?(?:SYSTEM\s+)?(?:TABLE|VIEW|CATALOG|FUNCTION)\s+(?:IF\s+NOT\s+EXISTS\s+)?"
    r"([`\w.]+)", re.IGNORECASE)
_FALLBACK_INSERT = re.compile(r"^\s*INSERT\s+INTO\s+([`\w.]+)", re.IGNORECASE)
_COMMENT = re.compile(r"--[^\n]*")
_FALLBACK_READ = re.compile(r"\b(?:FROM|JOIN)\s+([A-Za-z_`][`\w.]*)", re.IGNORECASE)


@dataclass(frozen=True)
class References:
    defines: tuple[str, ...]
    reads: tuple[str, ...]  # read and not defined by the same text
    writes: tuple[str, ...]


@cache
def _linter(config_dir: str) -> Any:
    from sqlfluff.core import FluffConfig, Linter

    return Linter(config=FluffConfig.from_path(config_dir))


def placeholder_values(config_dir: Path = PROJECT_ROOT) -> dict[str, str]:
    """The `${name}` values the lint config fills in (a name it does not list renders as itself)."""
    section = _linter(str(config_dir)).config.get_section(("templater", "placeholder")) or {}
    return {key: "" if value is None else str(value) for key, value in section.items() if key != "param_style"}


def _name(segment: Any) -> str:
    return segment.raw.replace("`", "")


def _add(names: list[str], name: str) -> None:
    if name not in names:
        names.append(name)


def references(sql: str, config_dir: Path = PROJECT_ROOT) -> References:
    """Names created, read and written by the statements of `sql` (a file's text with placeholders)."""
    parsed = _linter(str(config_dir)).parse_string(sql)
    if parsed.tree is None:
        raise ValueError(f"sqlfluff could not parse: {parsed.violations[:1]}")
    defines: list[str] = []
    reads: list[str] = []
    writes: list[str] = []
    tree = parsed.tree
    targets = set()  # the table a CREATE or INSERT names is not read by it
    for create in tree.recursive_crawl(*_CREATES):
        target = next(iter(create.recursive_crawl("table_reference", "function_name")), None)
        if target is not None:
            _add(defines, _name(target))
            targets.add(id(target))
    for insert in tree.recursive_crawl("insert_statement"):
        target = next(iter(insert.recursive_crawl("table_reference")))
        _add(writes, _name(target))
        targets.add(id(target))
    for reference in tree.recursive_crawl("table_reference"):
        if id(reference) not in targets:
            _add(reads, _name(reference))
    for unparsable in tree.recursive_crawl("unparsable"):  # may run on over the statements after it
        for piece in _COMMENT.sub("", unparsable.raw).split(";"):
            created, inserted = _FALLBACK_CREATE.match(piece), _FALLBACK_INSERT.match(piece)
            if created:
                _add(defines, created.group(1).replace("`", ""))
            if inserted:
                _add(writes, inserted.group(1).replace("`", ""))
            for match in _FALLBACK_READ.finditer(piece):
                _add(reads, match.group(1).replace("`", ""))
    return References(tuple(defines), tuple(name for name in reads if name not in defines), tuple(writes))


def file_references(path: Path, config_dir: Path = PROJECT_ROOT) -> References:
    return references(Path(path).read_text(), config_dir)
