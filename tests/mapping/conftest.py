"""Fixtures of the mapping tests: a small simulated city and tiny checkpoints."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightning
import pytest
import torch
from lightning import LightningDataModule, Trainer
from torch import Tensor
from torch.utils.data import DataLoader
from torchgeo.datasets import stack_samples

from torchgeo_quake.datasets import KahramanmarasDamage
from torchgeo_quake.simulation import simulate_scene
from torchgeo_quake.trainers import DamageDetectionTask

CITY = "nurdagi"
ALL = ["sar", "footprint", "dsm", "gem"]
#: Checkpoint key of the input specification (DamageDetectionTask's contract).
INPUT_SPEC_KEY = "torchgeo_quake_input_spec"
#: What the simulated scene's models are trained on (2.5 m dB SAR, 32 px).
SPEC = {"radiometry": "db", "sar_res": 2.5, "patch_size": 32}


class _Samples(LightningDataModule):
    """The city's building samples, with training-split statistics."""

    def __init__(self, dataset: KahramanmarasDamage) -> None:
        super().__init__()
        self.dataset = dataset
        # The training split (all of it): the task records its statistics.
        self.train_dataset = dataset

    def normalization_stats(self) -> dict[str, Tensor]:
        arrays = self.dataset.arrays()
        stats = {}
        for key in ("sar", "dsm"):
            stats[f"{key}_mean"] = torch.tensor(float(arrays[key].mean()))
            stats[f"{key}_std"] = torch.tensor(float(arrays[key].std()))
        stats["gem_mean"] = torch.from_numpy(arrays["gem"].mean(0)).float()
        stats["gem_std"] = torch.from_numpy(arrays["gem"].std(0)).float()
        return stats

    def train_dataloader(self) -> DataLoader[Any]:
        return DataLoader(
            self.dataset, batch_size=16, shuffle=True, collate_fn=stack_samples
        )

    def val_dataloader(self) -> DataLoader[Any]:
        return DataLoader(self.dataset, batch_size=64, collate_fn=stack_samples)


def with_spec(source: Path, target: Path, spec: Any) -> Path:
    """Copy a checkpoint with another input specification (None: none at all)."""
    checkpoint = torch.load(source, map_location="cpu", weights_only=True)
    checkpoint.pop(INPUT_SPEC_KEY, None)
    if spec is not None:
        checkpoint[INPUT_SPEC_KEY] = spec.copy() if isinstance(spec, dict) else spec
    torch.save(checkpoint, target)
    return target


@pytest.fixture(scope="session")
def scene(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A one-city simulated scene (about 115 buildings)."""
    root = tmp_path_factory.mktemp("mapping") / "scene"
    simulate_scene(root, cities=[CITY], scale=0.03, seed=0)
    return root


@pytest.fixture(scope="session")
def city(scene: Path) -> Path:
    return scene / CITY


@pytest.fixture(scope="session")
def checkpoints(
    scene: Path, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Path]:
    """Tiny checkpoints trained for two steps on the city's samples.

    ``all`` and ``sar_ftp`` record the input specification :data:`SPEC`;
    ``legacy`` is ``sar_ftp`` without one (a checkpoint of an older version).
    """
    folder = tmp_path_factory.mktemp("checkpoints")
    dataset = KahramanmarasDamage(
        scene, cities=[CITY], simulate=False, negatives_per_positive=None, cache=False
    )
    paths = {}
    for name, modalities in (("all", ALL), ("sar_ftp", ["sar", "footprint"])):
        lightning.seed_everything(0)
        task = DamageDetectionTask(modalities=modalities, gem_features=22)
        trainer = Trainer(
            accelerator="cpu",
            max_epochs=1,
            limit_train_batches=2,
            limit_val_batches=1,
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            num_sanity_val_steps=0,
        )
        trainer.fit(task, datamodule=_Samples(dataset))
        assert bool(task.threshold_set)
        raw = folder / f"{name}-raw.ckpt"
        trainer.save_checkpoint(raw, weights_only=True)
        paths[name] = with_spec(raw, folder / f"{name}.ckpt", SPEC)
    paths["legacy"] = with_spec(paths["sar_ftp"], folder / "legacy.ckpt", None)
    return paths


@pytest.fixture
def spec() -> dict[str, Any]:
    """The input specification of the fixture checkpoints."""
    return dict(SPEC)


@pytest.fixture
def respec() -> Callable[[Path, Path, dict[str, Any] | None], Path]:
    """Function copying a checkpoint with another input specification."""
    return with_spec


def _leftovers(parent: Path) -> list[str]:
    """Temporary folders of map_damage left in *parent*."""
    return [p.name for p in parent.iterdir() if ".partial-" in p.name]


@pytest.fixture
def leftovers() -> Callable[[Path], list[str]]:
    """Function listing the temporary folders of map_damage left in a folder."""
    return _leftovers


@pytest.fixture
def nothing_written() -> Callable[[Path], None]:
    """Function checking that nothing was written for an output folder."""

    def check(out: Path) -> None:
        assert not out.exists()
        assert _leftovers(out.parent) == []

    return check
