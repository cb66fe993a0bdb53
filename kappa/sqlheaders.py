"""What each SQL file reads and defines, from its header, and the files a set of names needs, in order.

Every file under `sql/` starts with a header of whole-line comments (Flink never sees them:
`sqlfiles.strip_comments` drops them before rendering):

    -- reads: readings, device_metadata_versions
    -- defines: readings_with_metadata
    -- writes: device_agg_1m_sink            (only in files with INSERT statements)

- `defines`: the names its CREATE statements create (tables, views, functions, catalogs).
- `reads`: the tables and views its statements read that it does not define itself, in the order
  the files defining them should run (the order jobs and fixtures get, see `resolve`).
- `writes`: the tables its INSERT statements write.
- `-` is an empty list; names may hold placeholders (`${lake_catalog}.${lake_namespace}.telemetry`);
  a key given on several lines (a long list) adds to its list.

tests/unit/test_sql_headers.py checks every header against the statements (kappa.sqlrefs, on
sqlfluff's parse tree). This module only reads the comments: jobs use it at plan time, on the
cluster's client too, with no linter installed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from kappa.errors import KappaError

KEYS = ("reads", "defines", "writes")
_LINE = re.compile(r"^--\s*(reads|defines|writes):(.*)$")


class SqlHeaderError(KappaError):
    """A SQL file has no valid header, or a name cannot be resolved to a file."""


class Provider(Protocol):
    """Something that defines names for the statements after it: a SQL file, or a job's Python step."""

    @property
    def name(self) -> str: ...
    @property
    def reads(self) -> tuple[str, ...]: ...
    @property
    def defines(self) -> tuple[str, ...]: ...


@dataclass(frozen=True)
class Header:
    """The header of one SQL file; `name` is its path relative to the SQL folder (how jobs name it)."""

    name: str
    reads: tuple[str, ...]
    defines: tuple[str, ...]
    writes: tuple[str, ...] = ()


def _names(text: str) -> tuple[str, ...]:
    names = tuple(name.strip() for name in text.split(",") if name.strip())
    return () if names == ("-",) else names


def parse_header(name: str, text: str) -> Header:
    """The header in the leading comment lines of `text`; `reads` and `defines` are required."""
    found: dict[str, tuple[str, ...]] = {}
    for line in text.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("--"):
            break  # the header is in the comments before the first statement
        match = _LINE.match(stripped)
        if match:
            found[match.group(1)] = found.get(match.group(1), ()) + _names(match.group(2))
    missing = [key for key in ("reads", "defines") if key not in found]
    if missing:
        raise SqlHeaderError(f"{name}: no '-- {missing[0]}:' line in its header (write '-' for none)")
    return Header(name, found["reads"], found["defines"], found.get("writes", ()))


def read_header(sql_dir: Path, relative: str | Path) -> Header:
    path = Path(sql_dir) / relative
    name = str(relative) if not Path(relative).is_absolute() else str(path)
    return parse_header(name, path.read_text())


def load_headers(sql_dir: Path) -> dict[str, Header]:
    """Every SQL file's header under `sql_dir`, by relative path."""
    return {str(path.relative_to(sql_dir)): read_header(sql_dir, path.relative_to(sql_dir))
            for path in sorted(Path(sql_dir).rglob("*.sql"))}


def resolve(wanted: Iterable[str], given: Iterable[str], providers: Sequence[Provider],
            prefer: Iterable[str] = ()) -> list[Provider]:
    """The providers that define `wanted`, each after the providers of what it reads, stopping at the
    `given` names (a source, or a fixture's input tables): a depth-first walk of `reads` in header
    order, so the result is the same for the same headers. A name more than one provider defines goes
    to the one already chosen, else to the one named in `prefer`, else to a job's own step (over the
    files); otherwise it is an error."""
    preferred = set(prefer)
    available = set(given)
    chosen: list[Provider] = []
    visiting: list[str] = []

    def provider_of(name: str) -> Provider:
        candidates = [p for p in providers if name in p.defines]
        if not candidates:
            needed_by = " <- ".join(reversed(visiting)) or "the job"
            raise SqlHeaderError(f"no SQL file or step defines {name!r} (needed by {needed_by})")
        picked = [p for p in candidates if p.name in preferred] or candidates
        steps = [p for p in picked if not isinstance(p, Header)]  # a job's own step overrides the files
        picked = steps[:1] or picked
        if len(picked) > 1:
            names = ", ".join(p.name for p in picked)
            raise SqlHeaderError(f"{name!r} is defined by {names}: name the one to use (prefer=...)")
        return picked[0]

    def need(name: str) -> None:
        if name in available:
            return
        provider = provider_of(name)
        if provider.name in visiting:
            raise SqlHeaderError(f"reads form a cycle: {' -> '.join([*visiting, provider.name])}")
        visiting.append(provider.name)
        for read in provider.reads:
            if read not in provider.defines:
                need(read)
        visiting.pop()
        chosen.append(provider)
        available.update(provider.defines)

    for name in wanted:
        need(name)
    return chosen


def needs(headers: Iterable[Provider]) -> list[str]:
    """What a group of files (e.g. a job's sinks) reads that none of them defines, in order."""
    group = list(headers)
    defined = {name for header in group for name in header.defines}
    out: list[str] = []
    for header in group:
        out += [name for name in header.reads if name not in defined and name not in out]
    return out


def defined_by(providers: Iterable[Provider]) -> set[str]:
    return {name for provider in providers for name in provider.defines}
