"""The repository's declared Avro subjects (`schemas/avro/subjects.toml`) and their schema files.

One loader shared by the `kappa schema` CLI, producers and tests, so the declaration has a single
reading. Format:

    [subjects."telemetry-value"]
    compatibility = "BACKWARD"
    versions = ["telemetry/v1.avsc", "telemetry/v2.avsc"]   # relative to schemas/avro/, oldest first
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

from kappa.registry.compat import LEVELS, canonical

SUBJECTS_FILE = "subjects.toml"


@dataclass(frozen=True)
class SubjectSpec:
    subject: str
    compatibility: str
    versions: list[Path]  # absolute paths, oldest first


def default_root(project_root: Path) -> Path:
    return project_root / "schemas" / "avro"


def load_subjects(root: Path) -> list[SubjectSpec]:
    """Read `root/subjects.toml`; raises ValueError naming the problem (bad level, missing file...)."""
    path = root / SUBJECTS_FILE
    try:
        raw = tomllib.loads(path.read_text())
    except FileNotFoundError as exc:
        raise ValueError(f"{path} does not exist") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{path}: {exc}") from exc
    specs: list[SubjectSpec] = []
    for subject, table in raw.get("subjects", {}).items():
        level = str(table.get("compatibility", "BACKWARD")).upper()
        if level not in LEVELS:
            known = ", ".join(LEVELS)
            raise ValueError(f"{path}: subject {subject!r}: unknown compatibility {level!r} ({known})")
        versions = table.get("versions")
        if not isinstance(versions, list) or not versions or not all(isinstance(v, str) for v in versions):
            raise ValueError(f"{path}: subject {subject!r}: 'versions' must be a non-empty list of paths")
        files = [(root / v).resolve() for v in versions]
        missing = [str(f) for f in files if not f.is_file()]
        if missing:
            raise ValueError(f"{path}: subject {subject!r}: missing schema file(s): {', '.join(missing)}")
        specs.append(SubjectSpec(subject, level, files))
    return specs


def read_schema(path: Path) -> str:
    """The schema file in the registry's canonical JSON (validated by the Apache Avro parser)."""
    try:
        return canonical(path.read_text())
    except Exception as exc:
        raise ValueError(f"{path}: {getattr(exc, 'message', exc)}") from exc
