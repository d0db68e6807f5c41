"""Calibrated probabilities in maps; checkpoints without calibration (CPU)."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import torch

from torchgeo_quake.mapping import load_damage_model, map_damage
from torchgeo_quake.trainers.calibration import CALIBRATION_BUFFERS


def _uncalibrated(source: Path, target: Path) -> Path:
    """Copy a checkpoint without the calibration buffers (as 0.1 wrote them)."""
    checkpoint = torch.load(source, map_location="cpu", weights_only=True)
    for key in CALIBRATION_BUFFERS:
        del checkpoint["state_dict"][key]
    torch.save(checkpoint, target)
    return target


def test_map_probabilities_are_calibrated(
    city: Path, checkpoints: dict[str, Path], tmp_path: Path
) -> None:
    model = load_damage_model(checkpoints["sar_ftp"])
    assert model.calibrated
    scale, bias = model.calibration_scale, model.calibration_bias
    assert (scale, bias) == model.task.calibration != (1.0, 0.0)

    old = _uncalibrated(checkpoints["sar_ftp"], tmp_path / "old.ckpt")
    with pytest.warns(UserWarning, match="stores no probability calibration"):
        legacy = load_damage_model(old)
    assert not legacy.calibrated
    assert (legacy.calibration_scale, legacy.calibration_bias) == (1.0, 0.0)

    calibrated = map_damage(
        city / "sar.tif",
        city / "buildings.gpkg",
        checkpoints["sar_ftp"],
        tmp_path / "a",
    )
    with pytest.warns(UserWarning, match="stores no probability calibration"):
        raw = map_damage(city / "sar.tif", city / "buildings.gpkg", old, tmp_path / "b")
    assert calibrated.summary["model"]["calibrated"] is True
    assert raw.summary["model"]["calibrated"] is False
    p_cal = gpd.read_file(tmp_path / "a" / "damage.gpkg", layer="damage")[
        "damage_probability"
    ]
    p_raw = gpd.read_file(tmp_path / "b" / "damage.gpkg", layer="damage")[
        "damage_probability"
    ]
    scored = np.isfinite(p_raw.to_numpy())
    assert scored.sum() > 10
    logits = np.log(p_raw[scored] / (1 - p_raw[scored])).to_numpy()
    expected = 1 / (1 + np.exp(-(scale * logits + bias)))
    np.testing.assert_allclose(p_cal[scored].to_numpy(), expected, atol=2e-5)
