"""Shift of a new city's inputs against the training inputs, and the adaptation."""

from __future__ import annotations

import numpy as np
import pytest

from torchgeo_quake.mapping.shift import (
    NOT_CHECKED,
    measure_shift,
    radiometric_adaptation,
)
from torchgeo_quake.trainers.input_stats import input_statistics

ALL = ("sar", "footprint", "dsm", "gem")
NAMES = [f"f{i}" for i in range(4)]


def _arrays(seed: int, n: int = 300) -> dict[str, np.ndarray]:
    """Inputs of *n* buildings: dB SAR, DSM, footprint masks and GEM vectors."""
    rng = np.random.default_rng(seed)
    mask = np.zeros((n, 1, 16, 16), dtype=np.float32)
    for i, side in enumerate(rng.integers(3, 7, n)):
        mask[i, 0, :side, :side] = 1
    return {
        "sar": rng.normal(-12.0, 5.0, (n, 1, 16, 16)).astype(np.float32),
        "dsm": rng.normal(500.0, 4.0, (n, 1, 16, 16)).astype(np.float32),
        "footprint": mask,
        "gem": rng.normal([1.0, 5.0, 10.0, 0.3], 0.5, (n, 4)).astype(np.float32),
    }


def _shift(arrays: dict[str, np.ndarray]) -> dict[str, object]:
    train = input_statistics(_arrays(0))
    return measure_shift(train, input_statistics(arrays), ALL, arrays["gem"], NAMES)


def test_inputs_like_the_training_inputs_pass() -> None:
    result = _shift(_arrays(1))
    assert result["checked"] and not result["out_of_range"]
    assert result["warnings"] == []
    assert set(result["inputs"]) == {"sar", "dsm_relief", "footprint_pixels", "gem"}


def test_sar_6db_brighter_is_out_of_bounds_with_the_distance() -> None:
    arrays = _arrays(1)
    arrays["sar"] = arrays["sar"] + 6.0
    result = _shift(arrays)
    sar = result["inputs"]["sar"]
    assert sar["outside"] and not result["inputs"]["gem"]["outside"]
    # 6 dB in training IQRs (the IQR of N(-12, 5) is 6.74 dB).
    assert sar["median_shift_iqr"] == pytest.approx(6.0 / 6.74, abs=0.05)
    (warning,) = result["warnings"]
    assert warning.startswith("SAR values") and "+0.8" in warning


def test_gem_values_ten_times_larger_are_out_of_bounds() -> None:
    arrays = _arrays(1)
    arrays["gem"] = arrays["gem"] * 10
    gem = _shift(arrays)["inputs"]["gem"]
    assert gem["outside"]
    assert gem["extreme_share"] == 1.0 and gem["outside_share"] > 0.9


def test_only_the_model_inputs_are_compared() -> None:
    arrays = _arrays(1)
    arrays["gem"] = arrays["gem"] * 10
    train = input_statistics(_arrays(0))
    result = measure_shift(train, input_statistics(arrays), ("sar", "footprint"))
    assert set(result["inputs"]) == {"sar", "footprint_pixels"}
    assert not result["out_of_range"]


def test_a_checkpoint_without_statistics_is_not_checked() -> None:
    result = measure_shift(None, {}, ALL)
    assert result == {"checked": False, "reason": NOT_CHECKED, "warnings": []}
    assert NOT_CHECKED == "no training statistics; shift not checked"


def test_radiometric_adaptation_removes_an_offset_and_a_gain() -> None:
    train, new = _arrays(0), _arrays(1)
    new["sar"] = new["sar"] * 1.5 + 6.0
    scale, offset = radiometric_adaptation(
        input_statistics(train), input_statistics(new)
    )
    assert scale == pytest.approx(1 / 1.5, rel=0.05)
    adapted = dict(new, sar=new["sar"] * scale + offset)
    result = _shift(adapted)
    assert abs(result["inputs"]["sar"]["median_shift_iqr"]) < 0.05
    assert not result["inputs"]["sar"]["outside"]


def test_radiometric_adaptation_needs_spread() -> None:
    flat = _arrays(1)
    flat["sar"] = np.zeros_like(flat["sar"])
    with pytest.raises(ValueError, match="no spread"):
        radiometric_adaptation(input_statistics(_arrays(0)), input_statistics(flat))
