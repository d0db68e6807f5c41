"""Calibration of protocol runs before and after Platt scaling (no training)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from torchgeo_quake.protocols.calibration import (
    calibration_rows,
    calibration_table,
    write_calibration,
)
from torchgeo_quake.protocols.figures import plot_reliability
from torchgeo_quake.trainers.calibration import apply_platt


def _run(
    folder: Path,
    city: str,
    logits: np.ndarray,
    labels: np.ndarray,
    calibration: tuple[float, float] | None,
    with_logits: bool = True,
) -> dict[str, Any]:
    folder.mkdir(parents=True)
    scale, bias = calibration or (1.0, 0.0)
    arrays = {
        "probs": apply_platt(logits, scale, bias),
        "labels": labels,
        "building_ids": np.arange(len(labels)),
        "cities": np.full(len(labels), city),
    }
    if with_logits:
        arrays["logits"] = logits
    np.savez_compressed(folder / "predictions.npz", **arrays)
    return {
        "config": "sar_ftp",
        "label": "SAR + FTP",
        "split": city,
        "seed": 0,
        "test_city": city,
        "val_threshold": 0.3,
        "calibration": {
            "calibrated": calibration is not None,
            "scale": scale,
            "bias": bias,
        },
        "directory": str(folder),
    }


def test_rows_before_and_after(tmp_path: Path) -> None:
    logits = np.array([-3.0, -2.0, -1.0, 0.0, 1.0, 2.0])
    labels = np.array([0, 0, 0, 1, 0, 1])
    records = [
        _run(tmp_path / "a", "nurdagi", logits, labels, (0.8, -1.5)),
        _run(tmp_path / "b", "islahiye", logits, labels, None, with_logits=False),
    ]
    rows = calibration_rows(records).set_index("city")
    before = apply_platt(logits, 1.0, 0.0)
    after = apply_platt(logits, 0.8, -1.5)
    calibrated = rows.loc["nurdagi"]
    assert calibrated["calibrated"] and calibrated["observed"] == 2
    assert calibrated["expected_ratio_before"] == pytest.approx(before.sum() / 2)
    assert calibrated["expected_ratio_after"] == pytest.approx(after.sum() / 2)
    assert calibrated["brier_before"] == pytest.approx(np.mean((before - labels) ** 2))
    assert calibrated["brier_after"] == pytest.approx(np.mean((after - labels) ** 2))
    assert calibrated["thresholded_ratio"] == pytest.approx((after >= 0.3).sum() / 2)
    # A run of a checkpoint without calibration (and an older predictions.npz).
    old = rows.loc["islahiye"]
    assert not old["calibrated"] and math.isnan(old["ece_after"])
    assert old["expected_ratio_before"] == pytest.approx(before.sum() / 2)

    table = calibration_table(calibration_rows(records), "loco")
    assert "| Nurdağı | SAR + FTP |" in table and "seed 0" in table
    assert "–" in table.split("| Islahiye |")[1].splitlines()[0]
    with pytest.raises(ValueError, match="no finished runs"):
        calibration_table(pd.DataFrame(), "loco")


def test_files_and_reliability_figure(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 2, 200)
    labels = (rng.random(200) < 0.2).astype(np.int64)
    records = [_run(tmp_path / "run", "turkoglu", logits, labels, (0.5, -1.0))]
    written = write_calibration(records, tmp_path / "out", "loco")
    assert [p.name for p in written] == [
        "calibration_loco.md",
        "calibration_loco_runs.csv",
    ]
    assert len(pd.read_csv(written[1])) == 1
    assert write_calibration([], tmp_path / "out", "loco") == []
    png = plot_reliability(
        records, tmp_path / "reliability.png", ["sar_ftp"], {"sar_ftp": "SAR + FTP"}
    )
    assert png is not None and png.stat().st_size > 1000
    assert plot_reliability(records, tmp_path / "none.png", ["other"], {}) is None
