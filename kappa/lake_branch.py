"""Write-audit-publish on the Iceberg archive: a replay writes a branch of the live tables, `compare`
reads it next to main, `promote` moves main to it in one catalog commit per table, `drop` removes it.

Everything here is pyiceberg on the shared JDBC catalog: no JVM. Each ref change is one catalog commit
with a requirement on the ref's snapshot as read (pyiceberg's `AssertRefSnapshotId`, checked against the
catalog's current metadata and swapped in by `UPDATE ... WHERE metadata_location = <read>`), so a commit
the live job makes in between fails the change instead of being lost.

The fork. A replay recomputes its input range, so the branch cannot keep main's rows of that range, or
the appended tables (telemetry, dead letters) would hold them twice. Flink's Iceberg sink has no DELETE
and INSERT OVERWRITE is batch-only, so the rows go before the job starts, as commits on the branch:
- a replay from the log's start (`--from earliest`): every data file, in one metadata-only delete
  (nothing is read or rewritten); the branch is then what a fresh run over the range writes;
- a replay from a later offset: the appended tables' rows from the range's start offsets on (pyiceberg
  copy-on-write, which reads the files holding some of them); the upserted windows stay, and the replay's
  windows replace them by key (see docs/design.md for what that leaves).
The branch keeps main's head as its ancestor, so `promote` can fast-forward main.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from kappa import lake
from kappa.config import Config
from kappa.errors import KappaError

if TYPE_CHECKING:
    from pyiceberg.expressions import BooleanExpression
    from pyiceberg.table import Table as IcebergTable

MAIN = "main"
Say = Callable[[str], None]


class LakeBranchError(KappaError):
    """A branch could not be forked, promoted or dropped (main is as it was)."""


def offset_keyed(spec: lake.LakeTable) -> bool:
    """An appended table whose rows are one per Kafka record (kafka_partition, kafka_offset)."""
    names = {c.name for c in spec.columns}
    return not spec.key and {"kafka_partition", "kafka_offset"} <= names


def recomputed_rows(spec: lake.LakeTable, start: Mapping[int, int], whole_log: bool) -> BooleanExpression | None:
    """The rows of `spec` a replay from `start` writes again, to delete from its branch first: all of them
    for a replay of the whole log; the appended tables' rows at or after `start` per partition otherwise;
    None for an upserted table (the replay's rows replace main's by key)."""
    from pyiceberg.expressions import AlwaysTrue, And, EqualTo, GreaterThanOrEqual, Or, Reference
    from pyiceberg.expressions.literals import literal

    if whole_log:
        return AlwaysTrue()
    if not offset_keyed(spec):
        return None
    parts: list[BooleanExpression] = [And(EqualTo(term=Reference("kafka_partition"), value=literal(p)),
                                          GreaterThanOrEqual(term=Reference("kafka_offset"), value=literal(o)))
                                      for p, o in sorted(start.items())]
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else Or(*parts)


def head(table: IcebergTable, ref: str) -> int | None:
    """The snapshot id a branch (or main) points at; None when it does not exist (or main is empty)."""
    found = table.metadata.refs.get(ref)
    return int(found.snapshot_id) if found is not None else None


def is_ancestor(table: IcebergTable, ancestor: int | None, of: int) -> bool:
    """Whether `ancestor` is `of` or one of its parents (None: an empty main, which precedes everything)."""
    from pyiceberg.table.snapshots import ancestors_of

    if ancestor is None:
        return True
    return any(s.snapshot_id == ancestor for s in ancestors_of(table.metadata.snapshot_by_id(of), table.metadata))


def commits_since(table: IcebergTable, tip: int | None, base: int | None) -> int:
    """How many snapshots `tip`'s history has after its last common ancestor with `base`."""
    from pyiceberg.table.snapshots import ancestors_of

    if tip is None:
        return 0
    base_line = set() if base is None else {s.snapshot_id for s in ancestors_of(
        table.metadata.snapshot_by_id(base), table.metadata)}
    count = 0
    for snap in ancestors_of(table.metadata.snapshot_by_id(tip), table.metadata):
        if snap.snapshot_id in base_line:
            break
        count += 1
    return count


def _load(config: Config, spec: lake.LakeTable, suffix: str) -> IcebergTable:
    """The table with the S3 writer's keys: forks, promotions and drops write metadata (kappa.s3_security)."""
    from kappa import s3_security

    return lake.catalog(config, s3_security.WRITER).load_table(spec.identifier(config, suffix))


def fork(config: Config, specs: tuple[lake.LakeTable, ...], branch: str, start: Mapping[int, int],
         whole_log: bool, suffix: str = "", say: Say = lambda _: None) -> dict[str, int | None]:
    """Create `branch` of each table at main's head (again, if an earlier failed run left one) without the
    rows the replay recomputes. Returns main's head per table (None: main empty; the sink's first commit
    then creates the branch). Main is not changed."""
    if branch == MAIN:
        raise LakeBranchError("a replay never writes main")
    lake.ensure_tables(config, specs, suffix)
    forked: dict[str, int | None] = {}
    for spec in specs:
        table = _load(config, spec, suffix)
        if head(table, branch) is not None:
            table.manage_snapshots().remove_branch(branch).commit()
            table = table.refresh()
        main = head(table, MAIN)
        forked[spec.name] = main
        if main is None:
            say(f"{table.name()[-1]}: main is empty; the replay's first commit creates branch {branch}")
            continue
        table.manage_snapshots().create_branch(main, branch).commit()
        rows = recomputed_rows(spec, start, whole_log)
        if rows is not None:
            with warnings.catch_warnings():  # "did not match any records": nothing to delete is fine
                warnings.simplefilter("ignore")
                table.refresh().delete(rows, branch=branch)
        if rows is None:
            note = "keeping main's windows (the replay's replace them by key)"
        elif whole_log:
            note = "emptied (the replay recomputes the whole log)"
        else:
            note = "without main's rows from the replay's start offsets on"
        say(f"{table.name()[-1]}: branch {branch} forked from main's snapshot {main}, {note}")
    return forked


@dataclass(frozen=True)
class Promotion:
    table: str
    before: int | None  # main's head before
    after: int  # the branch's head, main's now
    how: str  # fast-forward | replaced | unchanged


def promote(config: Config, specs: tuple[lake.LakeTable, ...], branch: str, replace: bool = False,
            suffix: str = "") -> list[Promotion]:
    """Move each table's main to `branch`'s head. A fast-forward only: refused (nothing changed, on any
    table) when main has commits the branch lacks (the live job committed since the fork), unless
    `replace`, which sets main to the branch regardless and leaves those commits out of main's history.
    One catalog commit per table, each failing if main moves between the check and the commit."""
    plans: list[tuple[IcebergTable, int | None, int]] = []
    moved: list[str] = []
    for spec in specs:
        table = _load(config, spec, suffix)
        main, target = head(table, MAIN), head(table, branch)
        if target is None:
            if main is None:
                continue  # nothing written on either side
            raise LakeBranchError(f"{table.name()[-1]} has no branch {branch}: nothing to promote (dropped, "
                                  "or written before replays used branches)")
        if not is_ancestor(table, main, target):
            moved.append(f"{table.name()[-1]} ({commits_since(table, main, target)} commits on main since the fork)")
        plans.append((table, main, target))
    if moved and not replace:
        raise LakeBranchError(
            f"main moved on since {branch} was forked: {', '.join(moved)}; a fast-forward would lose them. "
            "Main is unchanged. Either replay again, or stop the live job and promote with --replace (main is "
            "set to the branch; its commits since the fork leave main's history, and the follow-on job from "
            "the replay's end offsets writes those offsets again)")
    done = []
    for table, main, target in plans:
        if main == target:
            done.append(Promotion(table.name()[-1], main, target, "unchanged"))
            continue
        how = "fast-forward" if is_ancestor(table, main, target) else "replaced"
        try:
            table.manage_snapshots().set_current_snapshot(snapshot_id=target).commit()
        except Exception as exc:  # CommitFailedException: main moved after the check
            raise LakeBranchError(f"{table.name()[-1]}: main moved during the promotion, not changed: {exc}") from exc
        done.append(Promotion(table.name()[-1], main, target, how))
    return done


def drop(config: Config, specs: tuple[lake.LakeTable, ...], branch: str, suffix: str = "") -> list[str]:
    """Remove `branch` from each table that has it; returns `table@branch` of those. Its snapshots are then
    unreferenced: `kappa lake expire` removes them (once older than its age limit) and the files only they
    referenced."""
    from pyiceberg.exceptions import NoSuchTableError

    if branch == MAIN:
        raise LakeBranchError("refusing to drop main")
    gone = []
    for spec in specs:
        try:
            table = _load(config, spec, suffix)
        except NoSuchTableError:
            continue
        if head(table, branch) is not None:
            table.manage_snapshots().remove_branch(branch).commit()
            gone.append(f"{table.name()[-1]}@{branch}")
    return gone


def heads(config: Config, specs: tuple[lake.LakeTable, ...], ref: str, suffix: str = "") -> dict[str, Any]:
    """`ref`'s snapshot id per table (None where it does not exist)."""
    return {spec.name: head(_load(config, spec, suffix), ref) for spec in specs}
