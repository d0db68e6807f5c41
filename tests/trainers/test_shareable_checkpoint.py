"""The experiment configs' checkpoints: a weights-only best.ckpt, a full last.ckpt."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
import yaml
from lightning import Callback, LightningDataModule, LightningModule, Trainer
from lightning.pytorch.callbacks import ModelCheckpoint
from torch import Tensor
from torch.utils.data import DataLoader, Dataset
from torchgeo.datasets import stack_samples

from torchgeo_quake.mapping import load_damage_model
from torchgeo_quake.trainers import (
    INPUT_SPEC_KEY,
    DamageDetectionTask,
    RunDirectory,
    RunSummary,
)
from torchgeo_quake.trainers.calibration import CALIBRATION_BUFFERS
from torchgeo_quake.trainers.callbacks import last_checkpoint
from torchgeo_quake.trainers.checkpoint import read_task_checkpoint
from torchgeo_quake.trainers.input_stats import INPUT_STATS_KEY

EXPERIMENTS = Path(__file__).resolve().parents[2] / "experiments"
MODALITIES = ["sar"]  # one encoder: a quick fit
SPEC = {"radiometry": "db", "sar_res": 2.5, "patch_size": 32}
#: What only a resumable checkpoint needs.
TRAINING_STATE = ("optimizer_states", "lr_schedulers", "callbacks")


class _Tiny(Dataset[dict[str, Any]]):
    """Samples with the keys and shapes of the sample contract."""

    def __init__(self, n: int, seed: int) -> None:
        g = torch.Generator().manual_seed(seed)
        self.label = torch.arange(n) % 3 == 0  # both classes in every batch
        self.sar = torch.rand(n, 1, 32, 32, generator=g) * 5 + 10
        self.sar[self.label] += 3

    def __len__(self) -> int:
        return len(self.label)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return {"sar": self.sar[i], "label": self.label[i].long()}


class _TinyDM(LightningDataModule):
    """In-memory data with an input spec and normalisation statistics."""

    def __init__(self) -> None:
        super().__init__()
        self.train_dataset = _Tiny(12, 0)
        self.val_dataset = _Tiny(12, 1)

    def input_spec(self) -> dict[str, Any]:
        return dict(SPEC)

    def normalization_stats(self) -> dict[str, Tensor]:
        sar = self.train_dataset.sar
        return {"sar_mean": sar.mean(), "sar_std": sar.std()}

    def train_dataloader(self) -> DataLoader[Any]:
        return DataLoader(self.train_dataset, batch_size=6, collate_fn=stack_samples)

    def val_dataloader(self) -> DataLoader[Any]:
        return DataLoader(self.val_dataset, batch_size=6, collate_fn=stack_samples)

    def test_dataloader(self) -> DataLoader[Any]:
        return self.val_dataloader()


def _config_checkpoints(name: str = "all_inputs") -> list[ModelCheckpoint]:
    """The ModelCheckpoint callbacks of an experiment config, as it sets them."""
    config = yaml.safe_load((EXPERIMENTS / f"{name}.yaml").read_text())
    return [
        ModelCheckpoint(**(c.get("init_args") or {}))
        for c in config["trainer"]["callbacks"]
        if c["class_path"] == "lightning.pytorch.callbacks.ModelCheckpoint"
    ]


def _trainer(root: Path, *callbacks: Callback, **kwargs: Any) -> Trainer:
    """A quiet CPU trainer with the config's checkpoints under *root*."""
    settings: dict[str, Any] = {
        "accelerator": "cpu",
        "devices": 1,
        "default_root_dir": root,
        "logger": False,
        "enable_progress_bar": False,
        "enable_model_summary": False,
        "num_sanity_val_steps": 0,
        "max_epochs": 1,
        "limit_train_batches": 2,
        "callbacks": [RunDirectory(), *_config_checkpoints(), *callbacks],
    }
    settings.update(kwargs)
    return Trainer(**settings)


def _fit(root: Path) -> str:
    """Fit one epoch of two steps under *root*; return the end-of-fit summary."""
    torch.manual_seed(0)
    summary = RunSummary(plain_warnings=False)
    trainer = _trainer(root, summary)
    trainer.fit(
        DamageDetectionTask(modalities=MODALITIES, gem_features=5),
        datamodule=_TinyDM(),
    )
    return summary.summary(trainer)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A one-epoch fit with the configs' checkpoints; its folder and summary."""
    root = tmp_path_factory.mktemp("run")
    return root, _fit(root)


def test_best_holds_weights_and_extras_only(run: tuple[Path, str]) -> None:
    folder = run[0] / "checkpoints"
    assert sorted(p.name for p in folder.iterdir()) == ["best.ckpt", "last.ckpt"]
    best = torch.load(folder / "best.ckpt", map_location="cpu", weights_only=True)
    last = torch.load(folder / "last.ckpt", map_location="cpu", weights_only=True)
    assert not set(TRAINING_STATE) & set(best)
    assert set(TRAINING_STATE) <= set(last)
    assert best["hyper_parameters"]["modalities"] == MODALITIES
    assert best[INPUT_SPEC_KEY] == SPEC
    assert set(best[INPUT_STATS_KEY]) == set(last[INPUT_STATS_KEY])
    state = best["state_dict"]
    for key in (
        "threshold",
        "threshold_set",
        "normalization_set",
        *CALIBRATION_BUFFERS,
    ):
        assert key in state, key
    assert bool(state["threshold_set"]) and bool(state["normalization_set"])
    # One epoch: both files hold the same weights.
    assert state.keys() == last["state_dict"].keys()
    for key, value in last["state_dict"].items():
        if torch.is_tensor(value):
            assert torch.equal(value, state[key]), key
        else:  # the network's extra state (its modalities)
            assert value == state[key], key
    # AdamW keeps two moments per weight: last.ckpt is about three times bigger.
    size = (folder / "best.ckpt").stat().st_size
    assert size < 0.5 * (folder / "last.ckpt").stat().st_size


def test_summary_names_both_files(run: tuple[Path, str]) -> None:
    root, text = run
    assert f"best checkpoint: {root / 'checkpoints' / 'best.ckpt'}" in text
    assert f"last checkpoint: {root / 'checkpoints' / 'last.ckpt'}" in text
    assert f"--ckpt_path {root / 'checkpoints' / 'best.ckpt'}" in text


def test_consumers_accept_best(run: tuple[Path, str], tmp_path: Path) -> None:
    best = run[0] / "checkpoints" / "best.ckpt"
    stored = read_task_checkpoint(best)["state_dict"]
    # test (as `torchgeo test --ckpt_path best.ckpt` runs it)
    task = DamageDetectionTask(modalities=MODALITIES, gem_features=5)
    trainer = _trainer(tmp_path, limit_test_batches=1)
    (metrics,) = trainer.test(task, datamodule=_TinyDM(), ckpt_path=best)
    assert "test_f1_oracle" in metrics and "test_f1_valthr" in metrics
    assert torch.equal(task.threshold, stored["threshold"])
    assert task.input_spec == SPEC
    # the map's loader
    loaded = load_damage_model(best)
    assert loaded.threshold == pytest.approx(float(stored["threshold"]))
    assert loaded.threshold_from_validation and loaded.input_spec == SPEC
    # fine-tuning from it
    tuned = DamageDetectionTask(
        modalities=MODALITIES, gem_features=5, init_from=str(best)
    )
    for key, value in tuned.model.state_dict().items():
        if torch.is_tensor(value):
            assert torch.equal(value, stored[f"model.{key}"]), key


class _OptimizerSteps(Callback):
    """Record the optimizer's step count when training starts."""

    steps: float | None = None

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        state = trainer.optimizers[0].state
        self.steps = float(next(iter(state.values()))["step"]) if state else None


def test_resume_from_last(tmp_path: Path) -> None:
    _fit(tmp_path)  # a run of its own: resuming writes into its folder
    folder = tmp_path / "checkpoints"
    steps = _OptimizerSteps()
    trainer = _trainer(tmp_path, steps, max_epochs=2)
    task = DamageDetectionTask(modalities=MODALITIES, gem_features=5)
    trainer.fit(task, datamodule=_TinyDM(), ckpt_path=folder / "last.ckpt")
    assert steps.steps == 2  # AdamW's state of the first epoch's two steps
    assert trainer.current_epoch == 2 and trainer.global_step == 4
    # The resumed run keeps writing last.ckpt (and best.ckpt when it improves).
    assert last_checkpoint(trainer) == str(folder / "last.ckpt")
    assert sorted(p.name for p in folder.iterdir()) == ["best.ckpt", "last.ckpt"]
    last = torch.load(folder / "last.ckpt", map_location="cpu", weights_only=True)
    assert last["epoch"] == 1 and "optimizer_states" in last


def test_best_does_not_resume(run: tuple[Path, str], tmp_path: Path) -> None:
    trainer = _trainer(tmp_path, max_epochs=2)
    task = DamageDetectionTask(modalities=MODALITIES, gem_features=5)
    with pytest.raises(KeyError, match="contains only the model"):
        trainer.fit(
            task, datamodule=_TinyDM(), ckpt_path=run[0] / "checkpoints" / "best.ckpt"
        )
