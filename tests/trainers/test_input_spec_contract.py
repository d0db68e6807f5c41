"""The input-specification contract: one validation for training and mapping."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from lightning import Trainer

from torchgeo_quake.mapping import load_damage_model
from torchgeo_quake.trainers import (
    INPUT_SPEC_KEY,
    DamageDetectionTask,
    validate_input_spec,
)
from torchgeo_quake.trainers.input_spec import (
    RADIOMETRIES,
    SAR_RES_TOLERANCE,
    InputSpec,
    InputSpecError,
)

SPEC = {"radiometry": "db", "sar_res": 2.5, "patch_size": 32}


# ----------------------------------------------------------------- validation
def test_from_mapping_canonicalises() -> None:
    spec = InputSpec.from_mapping(
        {"radiometry": "amplitude", "sar_res": 3, "patch_size": np.int64(16)}
    )
    assert spec == InputSpec("amplitude", 3.0, 16)
    assert isinstance(spec.sar_res, float)
    assert type(spec.patch_size) is int
    assert spec.to_dict() == {
        "radiometry": "amplitude",
        "sar_res": 3.0,
        "patch_size": 16,
    }
    assert InputSpec.from_mapping(spec.to_dict()) == spec  # the stored form
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.patch_size = 8  # type: ignore[misc]


def test_unknown_keys_are_ignored() -> None:
    spec = InputSpec.from_mapping({**SPEC, "added_later": [1, 2]})
    assert spec.to_dict() == SPEC


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ([1, 2], "must be a mapping, got a list"),
        ({"sar_res": 2.5, "patch_size": 32}, r"lacks \['radiometry'\]"),
        ({"radiometry": "db", "sar_res": 2.5}, r"lacks \['patch_size'\]"),
        ({**SPEC, "radiometry": "sigma0"}, "radiometry must be one of"),
        ({**SPEC, "radiometry": None}, "radiometry must be one of"),
        ({**SPEC, "sar_res": -1.0}, "sar_res must be a positive number"),
        ({**SPEC, "sar_res": 0}, "sar_res must be a positive number"),
        ({**SPEC, "sar_res": math.nan}, "sar_res must be a positive number"),
        ({**SPEC, "sar_res": math.inf}, "sar_res must be a positive number"),
        ({**SPEC, "sar_res": "2.5"}, "sar_res must be a number"),
        ({**SPEC, "sar_res": True}, "sar_res must be a number"),
        ({**SPEC, "patch_size": 0}, "patch_size must be a positive int"),
        ({**SPEC, "patch_size": 32.0}, "patch_size must be a positive int"),
        ({**SPEC, "patch_size": True}, "patch_size must be a positive int"),
    ],
)
def test_bad_values(spec: Any, match: str) -> None:
    with pytest.raises(InputSpecError, match=match) as info:
        InputSpec.from_mapping(spec, "checkpoint 'x.ckpt' input spec")
    assert isinstance(info.value, ValueError)
    assert str(info.value).startswith("checkpoint 'x.ckpt' input spec: ")
    assert info.value.source == "checkpoint 'x.ckpt' input spec"
    assert info.value.problem in str(info.value)
    # The compatibility wrapper is the same check.
    with pytest.raises(ValueError, match=match):
        validate_input_spec(spec)


def test_constructor_checks_too() -> None:
    with pytest.raises(InputSpecError, match="radiometry"):
        InputSpec("sigma0", 2.5, 32)
    with pytest.raises(InputSpecError, match="patch_size"):
        InputSpec("db", None, -3)
    assert InputSpec("db", 1, 8).sar_res == 1.0


def test_constants() -> None:
    import torchgeo_quake.mapping._rasters as mapping_rasters
    import torchgeo_quake.mapping.model as mapping_model
    import torchgeo_quake.trainers.damage as damage

    assert SAR_RES_TOLERANCE == 0.01
    assert mapping_rasters.RES_TOLERANCE is SAR_RES_TOLERANCE
    assert damage.SAR_RES_TOLERANCE is SAR_RES_TOLERANCE
    assert mapping_model.RADIOMETRIES is RADIOMETRIES is damage.RADIOMETRIES
    assert mapping_model.INPUT_SPEC_KEY == INPUT_SPEC_KEY


# --------------------------------------------------------------- differences
def test_differences() -> None:
    model = InputSpec("db", 2.5, 32)
    assert model.differences(model) == []
    assert model.differences(InputSpec("amplitude", 2.5, 16)) == [
        "radiometry 'db' (model) != 'amplitude' (data)",
        "patch_size 32 (model) != 16 (data)",
    ]
    names = ("checkpoint", "data")
    assert model.differences(InputSpec("intensity", 2.5, 32), names) == [
        "radiometry 'db' (checkpoint) != 'intensity' (data)"
    ]


def test_sar_res_tolerance() -> None:
    model = InputSpec("db", 2.5, 32)
    inside = 2.5 * (1 + SAR_RES_TOLERANCE * 0.9)
    outside = 2.5 * (1 + SAR_RES_TOLERANCE * 1.1)
    assert model.differences(InputSpec("db", inside, 32)) == []
    assert model.differences(InputSpec("db", 2.5 * 0.991, 32)) == []
    assert model.differences(InputSpec("db", outside, 32)) == [
        f"sar_res 2.5 m (model) != {outside:g} m (data)"
    ]
    # An unknown pixel size agrees with any.
    assert model.differences(InputSpec("db", None, 32)) == []
    assert InputSpec("db", None, 32).differences(model) == []


# ------------------------------------------- the same rule in training and mapping
def _checkpoint(tmp_path: Path, spec: Any) -> Path:
    """A checkpoint of an untrained task holding *spec* (or no spec if None)."""
    task = DamageDetectionTask(modalities=["sar", "footprint"], gem_features=5)
    trainer = Trainer(accelerator="cpu", logger=False, enable_checkpointing=False)
    trainer.strategy.connect(task)
    path = tmp_path / "model.ckpt"
    trainer.save_checkpoint(path, weights_only=True)
    raw = torch.load(path, map_location="cpu", weights_only=True)
    raw.pop(INPUT_SPEC_KEY, None)
    if spec is not None:
        raw[INPUT_SPEC_KEY] = spec
    torch.save(raw, path)
    return path


def test_missing_sar_res_is_unknown_in_training_and_mapping(tmp_path: Path) -> None:
    old = {"radiometry": "db", "patch_size": 32}  # written before sar_res existed
    expected = {**old, "sar_res": None}
    assert validate_input_spec(old) == expected
    path = _checkpoint(tmp_path, old)
    with pytest.warns(UserWarning, match="no normalisation statistics"):
        mapped = load_damage_model(path)
    assert mapped.input_spec == expected
    assert DamageDetectionTask.load_from_checkpoint(path).input_spec == expected


@pytest.mark.parametrize(
    "spec",
    [
        {**SPEC, "radiometry": "sigma0"},
        {**SPEC, "sar_res": -1.0},
        {**SPEC, "patch_size": 32.0},
        {"radiometry": "db", "sar_res": 2.5},
        [1, 2],
    ],
)
def test_malformed_spec_refused_in_training_and_mapping(
    tmp_path: Path, spec: Any
) -> None:
    problem = None
    try:
        InputSpec.from_mapping(spec)
    except InputSpecError as err:
        problem = err.problem
    assert problem is not None
    path = _checkpoint(tmp_path, spec)
    with pytest.raises(ValueError, match="malformed input specification") as info:
        load_damage_model(path)
    assert problem in str(info.value) and "model.ckpt" in str(info.value)
    with pytest.raises(ValueError, match=r"model\.ckpt") as info:
        DamageDetectionTask.load_from_checkpoint(path)
    assert problem in str(info.value)
