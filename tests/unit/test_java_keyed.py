"""How the alerting job's Java keyed functions find their columns (udfs/java_keyed.py)."""

from __future__ import annotations

import pytest

from kappa.config import PROJECT_ROOT
from udfs.alert_cooldown import DECISION_COLUMNS, MATCH_FIELDS
from udfs.device_silence import INPUT_COLUMNS
from udfs.java_keyed import positions

pytestmark = pytest.mark.unit


def test_positions_follow_the_views_columns_not_a_fixed_order() -> None:
    assert positions(["x", "device_id", "y", "alert_type"], ("device_id", "alert_type")) == [1, 3]


def test_a_missing_column_is_named() -> None:
    with pytest.raises(ValueError, match="no column cooldown_s"):
        positions(["device_id", "alert_type"], ("device_id", "cooldown_s"))


def test_the_cool_down_reads_columns_of_the_matches() -> None:
    assert positions(list(MATCH_FIELDS), DECISION_COLUMNS) == [0, 2, 6, 5, 8]


def test_the_silence_detector_reads_columns_its_input_view_selects() -> None:
    text = (PROJECT_ROOT / "sql" / "alerts" / "device_silent_input.sql").read_text()
    select = text.split("AS\nSELECT", 1)[1].split("FROM", 1)[0]
    columns = [name.strip() for name in select.split(",")]
    assert set(INPUT_COLUMNS) <= set(columns), columns
