"""``docs/scripts/modality_gain.py``: paired gains, their table and figure."""

from __future__ import annotations

import types
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "docs" / "scripts" / "modality_gain.py"


@pytest.fixture(scope="module")
def gain(load_script: Callable[[Path], types.ModuleType]) -> types.ModuleType:
    return load_script(SCRIPT)


def _runs(dsm_gain: float) -> pd.DataFrame:
    """Five cities, one seed: the DSM adds *dsm_gain* AUROC, GEM adds noise."""
    rng = np.random.default_rng(0)
    rows = []
    for split in ("a", "b", "c", "d", "e"):
        base = rng.uniform(0.55, 0.75)
        for config, auroc in (
            ("sar_ftp", base),
            ("sar_ftp_dsm", base + dsm_gain + rng.normal(0, 0.005)),
            ("all_inputs", base + rng.normal(0, 0.05)),
        ):
            rows.append(
                {
                    "config": config,
                    "split": split,
                    "seed": 0,
                    "test_auroc": auroc,
                    "test_ap": auroc / 5,
                }
            )
    return pd.DataFrame(rows)


def test_gains_are_paired_differences(gain: types.ModuleType) -> None:
    rows = gain.gains(_runs(0.05), 2.0)
    assert len(rows) == 4  # 2 configurations x 2 metrics
    dsm = next(
        r for r in rows if r["config"] == "sar_ftp_dsm" and r["metric"] == "auroc"
    )
    assert dsm["contrast"] == 2.0 and dsm["n"] == 5
    assert dsm["gain"] == pytest.approx(0.05, abs=0.01)
    assert dsm["low"] > 0  # a clear, consistent gain excludes zero
    gem = next(
        r for r in rows if r["config"] == "all_inputs" and r["metric"] == "auroc"
    )
    assert gem["low"] < gem["gain"] < gem["high"]


def test_table_and_figure_with_contrast_zero(
    gain: types.ModuleType, tmp_path: Path
) -> None:
    table = pd.DataFrame(gain.gains(_runs(0.0), 0.0) + gain.gains(_runs(0.05), 1.0))
    text = gain.markdown(table)
    assert text.startswith("| SAR contrast | Inputs | Metric |")
    assert len(text.strip().splitlines()) == 2 + len(table)
    gain.plot(table, tmp_path / "gain.png")
    assert (tmp_path / "gain.png").stat().st_size > 10_000
