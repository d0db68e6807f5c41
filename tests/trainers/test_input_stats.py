"""Statistics of the training inputs, recorded in checkpoints for the shift check."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from torch.utils.data import Subset

from torchgeo_quake.trainers import DamageDetectionTask
from torchgeo_quake.trainers.input_stats import (
    INPUT_STATS_KEY,
    QUANTILES,
    datamodule_statistics,
    input_statistics,
    validate_input_statistics,
)


def _arrays(n: int = 6) -> dict[str, np.ndarray]:
    sar = np.arange(n * 4, dtype=np.float32).reshape(n, 1, 2, 2)
    dsm = np.zeros((n, 1, 2, 2), dtype=np.float32)
    dsm[:, 0, 0, 0] = np.arange(n)  # relief of window i: i metres
    footprint = np.zeros((n, 1, 2, 2), dtype=np.float32)
    footprint[:, 0, 0, :] = 1  # 2 pixels each
    gem = np.stack([np.arange(n), np.full(n, 3.0)], axis=1).astype(np.float32)
    label = np.zeros(n, dtype=np.int64)
    return {"sar": sar, "dsm": dsm, "footprint": footprint, "gem": gem, "label": label}


def test_statistics_of_sample_arrays() -> None:
    stats = input_statistics(_arrays())
    assert stats["samples"] == 6 and stats["quantiles"] == list(QUANTILES)
    assert stats["sar"]["quantiles"][3] == pytest.approx(11.5)  # median of 0..23
    assert stats["sar"]["mean"] == pytest.approx(11.5)
    assert stats["dsm_relief"]["quantiles"][3] == pytest.approx(2.5)
    assert stats["footprint_pixels"]["quantiles"] == [2.0] * len(QUANTILES)
    assert stats["gem"]["min"] == [0.0, 3.0] and stats["gem"]["max"] == [5.0, 3.0]
    assert stats["gem"]["std"][1] == 0.0
    assert "label" not in stats


def test_arrays_of_different_lengths_are_refused() -> None:
    arrays = _arrays()
    arrays["gem"] = arrays["gem"][:3]
    with pytest.raises(ValueError, match="different lengths"):
        input_statistics(arrays)


class _Dataset:
    """A data set with sample arrays, like BuildingDamage."""

    def __init__(self) -> None:
        self._arrays = _arrays()

    def arrays(self) -> dict[str, np.ndarray]:
        return self._arrays

    def __len__(self) -> int:
        return 6

    def __getitem__(self, i: int) -> dict[str, Any]:
        return {k: torch.as_tensor(v[i]) for k, v in self._arrays.items()}


class _Module:
    def __init__(self, train: Any) -> None:
        self.train_dataset = train


def test_datamodule_statistics_of_the_training_split_only() -> None:
    dataset = _Dataset()
    whole = datamodule_statistics(_Module(dataset))
    split = datamodule_statistics(_Module(Subset(dataset, [0, 1, 2])))  # type: ignore[arg-type]
    assert whole is not None and split is not None
    assert whole["samples"] == 6 and split["samples"] == 3
    assert split["gem"]["max"] == [2.0, 3.0]


def test_datamodule_statistics_read_samples_without_arrays() -> None:
    dataset = _Dataset()
    samples = [dataset[i] for i in range(6)]
    read = datamodule_statistics(_Module(samples))
    assert read == input_statistics(_arrays())


def test_datamodule_statistics_own_method_and_none() -> None:
    class Own:
        def input_statistics(self) -> dict[str, Any]:
            return {"quantiles": [0.5], "samples": 0}

    assert datamodule_statistics(Own()) == {"quantiles": [0.5], "samples": 0}
    assert datamodule_statistics(object()) is None
    assert datamodule_statistics(None) is None


def test_malformed_statistics_are_refused() -> None:
    with pytest.raises(ValueError, match="ckpt: input statistics must be a dict"):
        validate_input_statistics([1, 2], "ckpt")
    stats = input_statistics(_arrays())
    stats["sar"] = {"quantiles": [1.0]}
    with pytest.raises(ValueError, match="'sar' are malformed"):
        validate_input_statistics(stats, "ckpt")


def test_the_task_saves_and_restores_the_statistics() -> None:
    task = DamageDetectionTask(modalities=["sar", "footprint"])
    stats = input_statistics(_arrays())
    task.input_stats = stats
    checkpoint: dict[str, Any] = {}
    task.on_save_checkpoint(checkpoint)
    assert checkpoint[INPUT_STATS_KEY] == stats
    checkpoint |= {
        "state_dict": task.state_dict(),
        "hyper_parameters": dict(task.hparams),
    }
    other = DamageDetectionTask(modalities=["sar", "footprint"])
    other.on_load_checkpoint(checkpoint)
    assert other.input_stats == stats
    del checkpoint[INPUT_STATS_KEY]
    other.on_load_checkpoint(checkpoint)  # an older checkpoint
    assert other.input_stats is None
