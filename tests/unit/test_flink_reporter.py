"""The cluster's metrics reporter and the flat options a local MiniCluster gets for it are one setting."""

from pathlib import Path
from typing import Any

import pytest
import yaml

from kappa.config import load_config
from kappa.stack.flink import prepare_layout, reporter_settings

pytestmark = pytest.mark.unit


def _flat(tree: dict[str, Any], prefix: str = "") -> dict[str, str]:
    flat: dict[str, str] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat.update(_flat(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = str(value).lower() if isinstance(value, bool) else str(value)
    return flat


def test_reporter_settings_equal_the_rendered_cluster_config(tmp_path: Path) -> None:
    config = load_config(profile="test", environ={"KAPPA_PROFILE": "test", "KAPPA_PATHS__DATA_DIR": str(tmp_path)})
    rendered = yaml.safe_load((prepare_layout(config) / "conf" / "config.yaml").read_text())
    cluster = {k: v for k, v in _flat(rendered).items()
               if k == "metrics.reporters" or k.startswith("metrics.reporter.")}
    assert cluster == reporter_settings(config)
    assert cluster["metrics.reporter.promgateway.hostUrl"] == config.metrics.pushgateway_url
