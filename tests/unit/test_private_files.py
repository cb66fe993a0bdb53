"""Secret files are mode 600 from the start and replaced whole."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from kappa.private_files import write_private

pytestmark = pytest.mark.unit


def test_written_with_mode_600_and_replaced_whole(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "secrets.env"
    write_private(path, "A=1\n")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and path.read_text() == "A=1\n"
    path.chmod(0o644)  # an old, too-open file is replaced by a private one
    write_private(path, "A=2\n")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and path.read_text() == "A=2\n"
    assert [p.name for p in path.parent.iterdir()] == ["secrets.env"]  # no temporary file left
