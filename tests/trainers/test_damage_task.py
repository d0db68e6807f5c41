"""DamageDetectionTask with Lightning on tiny in-memory data (CPU)."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import lightning
import numpy as np
import pytest
import torch
from lightning import LightningDataModule, Trainer
from torch import Tensor
from torch.utils.data import DataLoader, Dataset
from torchgeo.datasets import stack_samples

from torchgeo_quake.trainers import (
    INPUT_SPEC_KEY,
    DamageDetectionTask,
    best_f1_threshold,
    ranking_metrics,
    threshold_metrics,
    validate_input_spec,
)
from torchgeo_quake.trainers.collection import all_gather_cat

GEM = 5
ALL = ["sar", "footprint", "dsm", "gem"]


class TinyDamage(Dataset[dict[str, Any]]):
    """Samples with the keys and shapes of the sample contract."""

    def __init__(self, n: int, seed: int, gem: int = GEM, drop: str | None = None):
        g = torch.Generator().manual_seed(seed)
        self.label = torch.arange(n) % 3 == 0  # both classes in every batch
        self.sar = torch.rand(n, 1, 32, 32, generator=g) * 5 + 10
        self.sar[self.label] += 3  # something to learn
        self.footprint = (torch.rand(n, 1, 32, 32, generator=g) > 0.6).float()
        self.dsm = torch.randn(n, 1, 32, 32, generator=g) * 4 + 100
        self.gem = torch.rand(n, gem, generator=g) * 50
        self.ids = torch.arange(n) + 1000 * seed
        self.drop = drop

    def __len__(self) -> int:
        return len(self.label)

    def __getitem__(self, i: int) -> dict[str, Any]:
        sample = {
            "sar": self.sar[i],
            "footprint": self.footprint[i],
            "dsm": self.dsm[i],
            "gem": self.gem[i],
            "label": self.label[i].long(),
            "building_id": self.ids[i],
            "centroid": torch.tensor([float(i), 2.0 * i], dtype=torch.float64),
            "city": "islahiye",
        }
        if self.drop:
            del sample[self.drop]
        return sample


class TinyDataModule(LightningDataModule):
    """In-memory data module with normalisation statistics of its train split."""

    def __init__(
        self, batch_size: int = 6, gem: int = GEM, drop: str | None = None, n: int = 12
    ) -> None:
        super().__init__()
        self.batch_size = batch_size
        self.train = TinyDamage(n, 0, gem, drop)
        self.val = TinyDamage(n, 1, gem, drop)
        self.test = TinyDamage(n, 2, gem, drop)

    def normalization_stats(self) -> dict[str, Tensor]:
        return {
            "sar_mean": self.train.sar.mean(),
            "sar_std": self.train.sar.std(),
            "dsm_mean": self.train.dsm.mean(),
            "dsm_std": self.train.dsm.std(),
            "gem_mean": self.train.gem.mean(0),
            "gem_std": self.train.gem.std(0),
        }

    def _loader(
        self, ds: Dataset[dict[str, Any]], shuffle: bool = False
    ) -> DataLoader[Any]:
        return DataLoader(
            ds, batch_size=self.batch_size, shuffle=shuffle, collate_fn=stack_samples
        )

    def train_dataloader(self) -> DataLoader[Any]:
        return self._loader(self.train, shuffle=True)

    def val_dataloader(self) -> DataLoader[Any]:
        return self._loader(self.val)

    def test_dataloader(self) -> DataLoader[Any]:
        return self._loader(self.test)

    def predict_dataloader(self) -> DataLoader[Any]:
        return self._loader(self.test)


def _trainer(tmp_path: Path, **kwargs: Any) -> Trainer:
    defaults: dict[str, Any] = {
        "accelerator": "cpu",
        "devices": 1,
        "default_root_dir": tmp_path,
        "logger": False,
        "enable_progress_bar": False,
        "enable_model_summary": False,
        "enable_checkpointing": False,
        "num_sanity_val_steps": 0,
    }
    defaults.update(kwargs)
    return Trainer(**defaults)


def _task(modalities: list[str] = ALL, **kwargs: Any) -> DamageDetectionTask:
    return DamageDetectionTask(modalities=modalities, gem_features=GEM, **kwargs)


@pytest.mark.parametrize(
    "modalities", [["sar", "footprint"], ["sar", "footprint", "dsm"], ALL]
)
def test_fast_dev_run_fit_validate_test_predict(
    tmp_path: Path, modalities: list[str]
) -> None:
    dm = TinyDataModule()
    task = _task(modalities)
    trainer = _trainer(tmp_path, fast_dev_run=True)
    trainer.fit(task, datamodule=dm)
    assert "train_loss" in trainer.callback_metrics
    val = trainer.validate(task, datamodule=dm)[0]
    assert set(val) == {
        "val_loss",
        "val_precision",
        "val_recall",
        "val_f1",
        "val_kappa",
        "val_auroc",
        "val_ap",
        "val_threshold",
    }
    assert 0 <= val["val_threshold"] <= 1
    assert float(task.threshold) == pytest.approx(val["val_threshold"])
    test = trainer.test(task, datamodule=dm)[0]
    at_threshold = ("precision", "recall", "f1", "kappa", "threshold")
    expected = {f"test_{k}" for k in ("loss", "auroc", "ap")}
    expected |= {f"test_{k}_valthr" for k in at_threshold}
    expected |= {f"test_{k}_oracle" for k in at_threshold}
    expected |= {f"test_{k}" for k in ("brier", "ece")}
    expected |= {f"test_count_{k}" for k in ("expected", "observed", "thresholded")}
    assert set(test) == expected
    batches = trainer.predict(task, datamodule=dm)
    assert batches is not None
    out = batches[0]
    assert isinstance(out, dict)
    assert set(out) == {"prob", "pred", "building_id", "centroid", "city", "label"}
    assert out["prob"].shape == (6,)
    assert torch.equal(out["pred"], (out["prob"] >= task.threshold).long())
    assert torch.equal(out["building_id"], dm.test.ids[:6])
    assert out["centroid"].shape == (6, 2)


def test_epoch_metrics_and_predictions(tmp_path: Path) -> None:
    dm = TinyDataModule()
    task = _task()
    trainer = _trainer(tmp_path, max_epochs=1, limit_train_batches=1)
    trainer.fit(task, datamodule=dm)
    metrics = trainer.callback_metrics
    # The two numbers to watch are on the training bar.
    assert set(trainer.progress_bar_metrics) == {"val_f1", "val_loss"}
    val = task.last_predictions["val"]
    assert val.probs.shape == (12,) and val.labels.shape == (12,)
    assert val.building_ids is not None
    np.testing.assert_array_equal(val.building_ids, dm.val.ids.numpy())
    np.testing.assert_array_equal(val.labels, dm.val.label.long().numpy())
    # Logged values are the metrics of the gathered epoch at the best-F1 threshold.
    thr = best_f1_threshold(val.probs, val.labels)
    # The stored threshold (float32) decides every validation building as the
    # best-F1 threshold does, with a margin, so re-scoring reproduces val_f1.
    stored = float(task.threshold)
    assert float(metrics["val_threshold"]) == pytest.approx(stored)
    np.testing.assert_array_equal(val.probs >= stored, val.probs >= thr)
    np.testing.assert_array_equal(
        val.probs.astype(np.float32) >= np.float32(stored), val.probs >= thr
    )
    for key, value in threshold_metrics(val.probs, val.labels, thr).items():
        assert float(metrics[f"val_{key}"]) == pytest.approx(value, abs=1e-6)
    for key, value in ranking_metrics(val.probs, val.labels).items():
        assert float(metrics[f"val_{key}"]) == pytest.approx(value, abs=1e-6)

    test = trainer.test(task, datamodule=dm)[0]
    preds = task.last_predictions["test"]
    best = best_f1_threshold(preds.probs, preds.labels)
    assert test["test_threshold_oracle"] == pytest.approx(best)
    at_best = threshold_metrics(preds.probs, preds.labels, best)
    at_val = threshold_metrics(preds.probs, preds.labels, float(task.threshold))
    for key in ("precision", "recall", "f1", "kappa"):
        assert test[f"test_{key}_oracle"] == pytest.approx(
            at_best[key], abs=1e-6, nan_ok=True
        )
        assert test[f"test_{key}_valthr"] == pytest.approx(
            at_val[key], abs=1e-6, nan_ok=True
        )
    assert test["test_threshold_valthr"] == pytest.approx(float(task.threshold))


def test_normalization_from_datamodule(tmp_path: Path) -> None:
    dm = TinyDataModule()
    task = _task()
    trainer = _trainer(tmp_path, fast_dev_run=True)
    trainer.fit(task, datamodule=dm)
    stats = dm.normalization_stats()
    for key, value in stats.items():
        torch.testing.assert_close(getattr(task, key), value.float())
    assert bool(task.normalization_set)
    # forward() takes raw inputs and normalises them.
    x = {k: getattr(dm.test, k)[:4] for k in ALL}
    task.eval()
    with torch.no_grad():
        raw = task(**x)
        manual = task.model(
            sar=(x["sar"] - stats["sar_mean"]) / stats["sar_std"],
            footprint=x["footprint"],
            dsm=(x["dsm"] - stats["dsm_mean"]) / stats["dsm_std"],
            gem=(x["gem"] - stats["gem_mean"]) / stats["gem_std"],
        )
    torch.testing.assert_close(raw, manual)


def test_threshold_and_normalization_saved_in_checkpoint(tmp_path: Path) -> None:
    dm = TinyDataModule()
    task = _task(["sar", "footprint", "dsm"], dropout=0.2)
    trainer = _trainer(tmp_path, max_epochs=1, limit_train_batches=1)
    trainer.fit(task, datamodule=dm)
    assert bool(task.threshold_set)
    path = tmp_path / "task.ckpt"
    trainer.save_checkpoint(path)
    loaded = DamageDetectionTask.load_from_checkpoint(path)
    assert list(loaded.hparams["modalities"]) == ["sar", "footprint", "dsm"]
    assert loaded.hparams["dropout"] == 0.2
    assert float(loaded.threshold) == float(task.threshold) != 0.5
    assert bool(loaded.threshold_set)
    for key in ("sar_mean", "sar_std", "dsm_mean", "dsm_std"):
        assert torch.equal(getattr(loaded, key), getattr(task, key))
    task.eval()
    loaded.eval()
    x = {k: getattr(dm.test, k)[:4] for k in ("sar", "footprint", "dsm")}
    with torch.no_grad():
        torch.testing.assert_close(loaded(**x), task(**x))
    # Testing the reloaded task uses the stored threshold for *_valthr.
    test = _trainer(tmp_path).test(loaded, datamodule=dm)[0]
    assert test["test_threshold_valthr"] == pytest.approx(float(task.threshold))


def _real_datamodule(root: Path, **kwargs: Any) -> Any:
    """The package's data module on the small simulated scene."""
    from torchgeo_quake.datamodules import KahramanmarasDamageDataModule

    args: dict[str, Any] = {
        "root": root,
        "scale": 0.05,
        "batch_size": 16,
        "modalities": ["sar", "footprint", "dsm"],
    }
    args.update(kwargs)
    return KahramanmarasDamageDataModule(**args)


def _fit_real(tmp_path: Path, sim_root: Path) -> tuple[dict[str, Tensor], float]:
    lightning.seed_everything(7, workers=True, verbose=False)
    task = DamageDetectionTask(modalities=["sar", "footprint", "dsm"])
    trainer = _trainer(
        tmp_path,
        max_epochs=1,
        limit_train_batches=3,
        limit_val_batches=3,
        deterministic=True,
    )
    trainer.fit(task, datamodule=_real_datamodule(sim_root))
    state = task.state_dict()
    weights = {
        k: v.detach().clone() for k, v in state.items() if k != "model._extra_state"
    }
    return weights, float(trainer.callback_metrics["val_loss"])


def test_deterministic_on_cpu(tmp_path: Path, sim_root: Path) -> None:
    # The real data module: shuffled batches, kornia augmentation, validation.
    a, val_a = _fit_real(tmp_path / "a", sim_root)
    b, val_b = _fit_real(tmp_path / "b", sim_root)
    assert a.keys() == b.keys()
    lightning.seed_everything(7, workers=True, verbose=False)
    init = DamageDetectionTask(modalities=["sar", "footprint", "dsm"]).state_dict()
    changed = False
    for key in a:
        assert torch.equal(a[key], b[key]), key
        changed |= not torch.equal(a[key], init[key])
    assert changed  # training did update the weights
    assert val_a == val_b
    assert bool(a["threshold_set"])  # validation ran and chose a threshold


def _dihedral(x: Tensor) -> list[Tensor]:
    """The 8 flips / 90° rotations of a (1, H, W) patch."""
    rotations = [torch.rot90(x, k, dims=(-2, -1)) for k in range(4)]
    return rotations + [r.flip(-1) for r in rotations]


def test_augmentation_on_device_and_only_for_training(
    tmp_path: Path, sim_root: Path
) -> None:
    from torchgeo_quake.datamodules import KahramanmarasDamageDataModule

    class Marked(KahramanmarasDamageDataModule):
        # Marks every batch once it is on the device.
        def transfer_batch_to_device(
            self, batch: Any, device: torch.device, dataloader_idx: int
        ) -> Any:
            batch = super().transfer_batch_to_device(batch, device, dataloader_idx)
            batch["on_device"] = True
            return batch

    dm = Marked(root=sim_root, scale=0.05, batch_size=16, modalities=ALL)
    assert dm.train_aug is not None
    real_aug = dm.train_aug
    calls: list[tuple[bool, bool, bool]] = []
    seen: dict[str, list[dict[str, Any]]] = {}

    class Spy(torch.nn.Module):
        def forward(self, batch: dict[str, Any]) -> dict[str, Any]:
            trainer = dm.trainer
            assert trainer is not None
            calls.append(
                (
                    bool(batch.get("on_device")),
                    trainer.training and not trainer.sanity_checking,
                    batch["sar"].device == trainer.strategy.root_device,
                )
            )
            raw = {k: batch[k].clone() for k in ("sar", "footprint", "dsm")}
            out = real_aug(batch)
            seen.setdefault("raw_train", []).append(raw)
            return out

    dm.train_aug = Spy()

    class Record(lightning.Callback):
        def _keep(self, stage: str, batch: Any) -> None:
            seen.setdefault(stage, []).append(
                {k: v.clone() if torch.is_tensor(v) else v for k, v in batch.items()}
            )

        def on_train_batch_start(
            self, trainer: Trainer, pl_module: Any, batch: Any, *_: Any
        ) -> None:
            self._keep("train", batch)

        def on_validation_batch_start(
            self, trainer: Trainer, pl_module: Any, batch: Any, *_: Any
        ) -> None:
            self._keep("val", batch)

        def on_test_batch_start(
            self, trainer: Trainer, pl_module: Any, batch: Any, *_: Any
        ) -> None:
            self._keep("test", batch)

        def on_predict_batch_start(
            self, trainer: Trainer, pl_module: Any, batch: Any, *_: Any
        ) -> None:
            self._keep("predict", batch)

    task = DamageDetectionTask(modalities=ALL)
    trainer = _trainer(
        tmp_path,
        max_epochs=1,
        limit_train_batches=2,
        limit_val_batches=2,
        limit_test_batches=2,
        limit_predict_batches=2,
        num_sanity_val_steps=1,
        callbacks=[Record()],
    )
    trainer.fit(task, datamodule=dm)
    trainer.test(task, datamodule=dm)
    trainer.predict(task, datamodule=dm)

    # Called once per training batch, after the transfer, and never otherwise.
    assert calls == [(True, True, True)] * 2
    # Evaluation batches are the dataset's samples, unchanged.
    dataset = dm.dataset
    for stage, split in (("val", "val"), ("test", "test"), ("predict", "test")):
        assert len(seen[stage]) == (2 + 1 if stage == "val" else 2)  # + sanity
        batch = seen[stage][-1]
        first = dm.indices[split][16:32]  # the second batch, in split order
        for key in ("sar", "footprint", "dsm", "gem"):
            expected = torch.stack([dataset[int(i)][key] for i in first])
            assert torch.equal(batch[key], expected), (stage, key)
    # Training batches: one flip/rotation per sample, the same for all rasters,
    # and not the identity for every sample.
    moved = 0
    for raw, batch in zip(seen["raw_train"], seen["train"], strict=True):
        for i in range(batch["sar"].shape[0]):
            fits = None
            for key in ("sar", "footprint", "dsm"):
                ok = {
                    t
                    for t, y in enumerate(_dihedral(raw[key][i]))
                    if torch.equal(y, batch[key][i])
                }
                fits = ok if fits is None else fits & ok
            assert fits, f"sample {i}: rasters not transformed alike"
            moved += 0 not in fits
    assert moved > 0


def test_batch_missing_modality(tmp_path: Path) -> None:
    task = _task()
    with pytest.raises(ValueError, match=r"batch lacks \['dsm'\].*modalities"):
        _trainer(tmp_path, fast_dev_run=True).fit(
            task, datamodule=TinyDataModule(drop="dsm")
        )


def test_gem_width_mismatch(tmp_path: Path) -> None:
    # Caught when the data module's statistics are stored (before training) ...
    with pytest.raises(
        ValueError, match=r"gem_mean has shape \(7,\).*GEM_FEATURE_NAMES"
    ):
        _trainer(tmp_path, fast_dev_run=True).fit(
            _task(), datamodule=TinyDataModule(gem=GEM + 2)
        )
    # ... and on the first batch otherwise.
    batch = stack_samples([TinyDamage(2, 0, gem=GEM + 2)[i] for i in range(2)])
    with pytest.raises(ValueError, match=r"\(B, 5\).*GEM_FEATURE_NAMES"):
        _task().training_step(batch, 0)


def test_checkpoint_with_other_modalities(tmp_path: Path) -> None:
    dm = TinyDataModule()
    task = _task(["sar", "footprint"])
    trainer = _trainer(tmp_path, fast_dev_run=True)
    trainer.fit(task, datamodule=dm)
    path = tmp_path / "small.ckpt"
    trainer.save_checkpoint(path)
    both = r"\['sar', 'footprint'\].*\['sar', 'footprint', 'dsm'\]"
    # The message names the file and the configuration that fits it.
    named = (
        rf"checkpoint '{re.escape(str(path))}' was trained with modalities "
        + both
        + r".*use the configuration with modalities: \[sar, footprint\] "
        r"\(experiments/sar_ftp\.yaml\)"
    )
    with pytest.raises(ValueError, match=named):
        DamageDetectionTask.load_from_checkpoint(
            path, modalities=["sar", "footprint", "dsm"]
        )
    with pytest.raises(ValueError, match=named):
        _trainer(tmp_path).test(
            _task(["sar", "footprint", "dsm"]), datamodule=dm, ckpt_path=path
        )
    with pytest.raises(ValueError, match=named):
        DamageDetectionTask.load_from_checkpoint(
            str(path), modalities=["sar", "footprint", "dsm"]
        )
    # Same error for a bare state dict.
    with pytest.raises(ValueError, match=both):
        _task(["sar", "footprint", "dsm"]).load_state_dict(
            task.state_dict(), strict=False
        )


def test_sar_weights_with_foreign_keys(tmp_path: Path) -> None:
    path = tmp_path / "foreign.pth"
    torch.save({"features.0.weight": torch.zeros(64, 3, 3, 3)}, path)
    with pytest.raises(ValueError, match=r"foreign\.pth.*features\.0\.weight"):
        _task(sar_weights=str(path))
    assert "sar_weights" not in _task().hparams


def test_set_normalization_errors() -> None:
    task = _task()
    good = TinyDataModule().normalization_stats()
    with pytest.raises(ValueError, match=r"lack \['dsm_std'\]"):
        task.set_normalization({k: v for k, v in good.items() if k != "dsm_std"})
    with pytest.raises(ValueError, match=r"gem_mean has shape \(3,\), expected \(5,\)"):
        task.set_normalization({**good, "gem_mean": torch.zeros(3)})
    with pytest.raises(ValueError, match="not finite"):
        task.set_normalization({**good, "sar_mean": float("nan")})
    with pytest.raises(ValueError, match="negative"):
        task.set_normalization({**good, "sar_std": -1.0})
    with pytest.warns(UserWarning, match="gem_std is zero"):
        task.set_normalization({**good, "gem_std": torch.tensor([0.0, 1, 2, 3, 4])})
    assert float(task.gem_std[0]) == 1.0
    # Only the configured modalities are needed.
    small = _task(["sar", "footprint"])
    small.set_normalization({"sar_mean": 1.0, "sar_std": 2.0})
    assert float(small.sar_std) == 2.0


def test_warns_without_normalization_stats(tmp_path: Path) -> None:
    dm = TinyDataModule()
    plain_dm = LightningDataModule.from_datasets(
        train_dataset=dm.train, batch_size=6, num_workers=0
    )
    plain_dm.train_dataloader = dm.train_dataloader  # type: ignore[method-assign]
    with pytest.warns(UserWarning, match="no normalisation statistics"):
        _trainer(tmp_path, fast_dev_run=True).fit(
            _task(scheduler="none"), datamodule=plain_dm
        )


def test_warns_without_normalization_stats_despite_an_input_spec(
    tmp_path: Path,
) -> None:
    dm = TinyDataModule()
    plain_dm = LightningDataModule.from_datasets(
        train_dataset=dm.train, batch_size=6, num_workers=0
    )
    plain_dm.train_dataloader = dm.train_dataloader  # type: ignore[method-assign]
    spec = {"radiometry": "db", "sar_res": 2.5, "patch_size": 32}
    plain_dm.input_spec = lambda: spec  # type: ignore[attr-defined]
    with pytest.warns(UserWarning, match="no normalisation statistics"):
        _trainer(tmp_path, fast_dev_run=True).fit(
            _task(scheduler="none"), datamodule=plain_dm
        )


@pytest.mark.parametrize(
    ("optimizer", "scheduler"),
    [("adamw", "plateau"), ("adam", "cosine"), ("adamw", "none")],
)
def test_optimizers_and_schedulers(
    tmp_path: Path, optimizer: str, scheduler: str
) -> None:
    task = _task(
        ["sar", "footprint"], optimizer=optimizer, scheduler=scheduler, pos_weight=4.0
    )
    trainer = _trainer(
        tmp_path, max_epochs=2, limit_train_batches=1, limit_val_batches=1
    )
    trainer.fit(task, datamodule=TinyDataModule())
    opt = trainer.optimizers[0]
    assert type(opt).__name__.lower() == optimizer
    assert opt.defaults["weight_decay"] == 1e-4
    assert task.criterion.pos_weight is not None
    assert float(task.criterion.pos_weight) == 4.0
    if scheduler == "none":
        assert not trainer.lr_scheduler_configs
    else:
        assert len(trainer.lr_scheduler_configs) == 1


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"optimizer": "sgd"}, "optimizer"),
        ({"scheduler": "step"}, "scheduler"),
        ({"pos_weight": 0.0}, "pos_weight"),
        ({"modalities": ["sar", "radar"]}, "unknown modalities"),
    ],
)
def test_invalid_hyperparameters(kwargs: dict[str, Any], match: str) -> None:
    args: dict[str, Any] = {"gem_features": GEM, **kwargs}
    with pytest.raises(ValueError, match=match):
        DamageDetectionTask(**args)


def test_gather_uneven_ranks() -> None:
    # Two ranks with 3 and 5 predictions: sizes are gathered first, then the
    # padded tensors; padding is removed again.
    local = torch.arange(3.0)
    other = torch.arange(10.0, 15.0)

    def fake_all_gather(t: Tensor) -> Tensor:
        if t.shape == (1,):
            return torch.tensor([[3], [5]])
        padded = torch.cat([other, other.new_zeros(t.shape[0] - 5)])
        return torch.stack([t, padded])

    out = all_gather_cat(local, fake_all_gather)
    assert torch.equal(out, torch.cat([local, other]))


def test_state_dict_keys_unchanged() -> None:
    # Checkpoints keep their format: the normalisation and threshold buffers
    # are top-level keys of the task, whatever module holds their logic.
    task = _task(ALL)
    top = [k for k in task.state_dict() if not k.startswith("model.")]
    assert top == [
        "sar_mean",
        "sar_std",
        "dsm_mean",
        "dsm_std",
        "gem_mean",
        "gem_std",
        "normalization_set",
        "threshold",
        "threshold_set",
        "calibration_scale",
        "calibration_bias",
        "calibration_set",
    ]
    # An old-format state dict (the same keys) loads strictly.
    old = {
        k: v.clone() if torch.is_tensor(v) else v for k, v in task.state_dict().items()
    }
    old["sar_mean"] = torch.tensor(3.0)
    old["threshold"] = torch.tensor(0.25)
    other = _task(ALL)
    other.load_state_dict(old, strict=True)
    assert float(other.sar_mean) == 3.0
    assert float(other.threshold) == 0.25


def test_single_class_validation_keeps_threshold(tmp_path: Path) -> None:
    dm = TinyDataModule()
    dm.val.label[:] = False
    task = _task(["sar", "footprint"])
    with pytest.warns(UserWarning, match="no damaged building"):
        _trainer(tmp_path, max_epochs=1, limit_train_batches=1).fit(task, datamodule=dm)
    assert float(task.threshold) == 0.5
    assert not bool(task.threshold_set)
    # Nothing to calibrate on either: the task stays uncalibrated.
    assert not task.calibrated and task.calibration == (1.0, 0.0)
    assert math.isnan(
        float(_trainer(tmp_path).validate(task, datamodule=dm)[0]["val_auroc"])
    )


def test_sanity_check_does_not_set_threshold(tmp_path: Path) -> None:
    seen: list[bool] = []

    class Probe(lightning.Callback):
        def on_sanity_check_end(self, trainer: Trainer, pl_module: Any) -> None:
            seen.append(bool(pl_module.threshold_set))
            seen.append("val" in pl_module.last_predictions)
            seen.append(bool(pl_module.calibration_set))

    task = _task(["sar", "footprint"])
    trainer = _trainer(
        tmp_path,
        max_epochs=1,
        limit_train_batches=1,
        num_sanity_val_steps=1,
        callbacks=[Probe()],
    )
    trainer.fit(task, datamodule=TinyDataModule())
    assert seen == [False, False, False]
    assert bool(task.threshold_set) and task.calibrated


def test_validate_before_fit(tmp_path: Path) -> None:
    # Evaluating an untrained task (under inference mode) must not break training.
    dm = TinyDataModule()
    task = _task(["sar", "footprint"])
    _trainer(tmp_path, fast_dev_run=True).validate(task, datamodule=dm)
    _trainer(tmp_path, fast_dev_run=True).fit(task, datamodule=dm)


@pytest.mark.slow
def test_ddp_validation_equals_single_process(tmp_path: Path) -> None:
    # 13 samples over 2 processes: the distributed sampler repeats one sample,
    # which is counted once; the metrics equal those of a single process.
    torch.manual_seed(0)
    task = _task(["sar", "footprint"])
    dm = TinyDataModule(batch_size=4, n=13)
    single = _trainer(tmp_path).validate(task, datamodule=dm)[0]
    ddp = _trainer(tmp_path, devices=2, strategy="ddp_spawn").validate(
        task, datamodule=dm
    )[0]
    assert single.keys() == ddp.keys()
    # The calibration is fitted on the gathered logits, whose order differs:
    # equal up to float rounding.
    for key, value in single.items():
        assert ddp[key] == pytest.approx(value, rel=1e-5, abs=1e-6), key


def test_resumed_run_equals_uninterrupted(tmp_path: Path, sim_root: Path) -> None:
    """1 epoch, a checkpoint and a resume give the weights of 2 epochs straight.

    Uses the real data module (shuffling, kornia augmentation) and dropout, the
    random parts that a resume would otherwise replay differently.
    """
    import lightning

    from torchgeo_quake.datamodules import KahramanmarasDamageDataModule

    def datamodule() -> KahramanmarasDamageDataModule:
        return KahramanmarasDamageDataModule(
            root=sim_root, scale=0.05, batch_size=16, modalities=["sar", "footprint"]
        )

    limits: dict[str, Any] = {"limit_train_batches": 3, "limit_val_batches": 2}

    lightning.seed_everything(0, verbose=False)
    straight = DamageDetectionTask(modalities=["sar", "footprint"])
    _trainer(tmp_path, max_epochs=2, **limits).fit(straight, datamodule=datamodule())

    lightning.seed_everything(0, verbose=False)
    first = DamageDetectionTask(modalities=["sar", "footprint"])
    trainer = _trainer(tmp_path, max_epochs=1, **limits)
    trainer.fit(first, datamodule=datamodule())
    path = tmp_path / "epoch1.ckpt"
    trainer.save_checkpoint(path)
    # A new process would seed again and draw other numbers before resuming.
    lightning.seed_everything(0, verbose=False)
    torch.rand(1000)
    resumed = DamageDetectionTask(modalities=["sar", "footprint"])
    trainer = _trainer(tmp_path, max_epochs=2, **limits)
    trainer.fit(resumed, datamodule=datamodule(), ckpt_path=path)
    assert trainer.current_epoch == 2

    expected = straight.state_dict()
    got = resumed.state_dict()
    assert expected.keys() == got.keys()
    differ = [
        k
        for k, v in expected.items()
        if (not torch.equal(v, got[k]) if torch.is_tensor(v) else v != got[k])
    ]
    assert not differ


def test_input_spec_saved_and_restored(tmp_path: Path, sim_root: Path) -> None:
    dm = _real_datamodule(sim_root, modalities=["sar", "footprint"])
    spec = dm.input_spec()
    assert spec == {"radiometry": "db", "sar_res": 2.5, "patch_size": 32}
    task = DamageDetectionTask(modalities=["sar", "footprint"])
    assert task.input_spec is None  # until fitted
    trainer = _trainer(
        tmp_path, max_epochs=1, limit_train_batches=1, limit_val_batches=1
    )
    trainer.fit(task, datamodule=dm)
    assert task.input_spec == spec
    path = tmp_path / "spec.ckpt"
    trainer.save_checkpoint(path)
    # Stored under its own key, readable without unpickling code.
    raw = torch.load(path, map_location="cpu", weights_only=True)
    assert raw[INPUT_SPEC_KEY] == spec
    loaded = DamageDetectionTask.load_from_checkpoint(path)
    assert loaded.input_spec == spec
    assert isinstance(loaded.input_spec["sar_res"], float)
    assert isinstance(loaded.input_spec["patch_size"], int)
    # Testing with data made the same way works; other radiometry is refused.
    _trainer(tmp_path, limit_test_batches=1).test(loaded, datamodule=dm)
    amplitude = _real_datamodule(
        sim_root, modalities=["sar", "footprint"], radiometry="amplitude"
    )
    with pytest.raises(ValueError, match=r"radiometry 'db' \(model\) != 'amplitude'"):
        _trainer(tmp_path, limit_predict_batches=1).predict(
            loaded, datamodule=amplitude
        )
    # A checkpoint without the key (older, or a data module without input_spec).
    del raw[INPUT_SPEC_KEY]
    old = tmp_path / "old.ckpt"
    torch.save(raw, old)
    assert DamageDetectionTask.load_from_checkpoint(old).input_spec is None
    # A malformed one is refused, naming the file.
    raw[INPUT_SPEC_KEY] = {**spec, "radiometry": "sigma0"}
    torch.save(raw, old)
    with pytest.raises(ValueError, match=r"old\.ckpt.*radiometry must be one of"):
        DamageDetectionTask.load_from_checkpoint(old)


def test_input_spec_without_datamodule_support(tmp_path: Path) -> None:
    task = _task(["sar", "footprint"])
    trainer = _trainer(tmp_path, fast_dev_run=True)
    trainer.fit(task, datamodule=TinyDataModule())
    assert task.input_spec is None
    path = tmp_path / "tiny.ckpt"
    trainer.save_checkpoint(path)
    assert INPUT_SPEC_KEY not in torch.load(path, weights_only=True)
    assert DamageDetectionTask.load_from_checkpoint(path).input_spec is None


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ({"radiometry": "db", "sar_res": 2.5}, "lacks"),
        ({"radiometry": "sigma0", "sar_res": 2.5, "patch_size": 32}, "radiometry"),
        ({"radiometry": "db", "sar_res": -1.0, "patch_size": 32}, "positive"),
        ({"radiometry": "db", "sar_res": "2.5", "patch_size": 32}, "number"),
        ({"radiometry": "db", "sar_res": None, "patch_size": 0}, "patch_size"),
        ({"radiometry": "db", "sar_res": None, "patch_size": 32.0}, "patch_size"),
    ],
)
def test_validate_input_spec_errors(spec: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        validate_input_spec(spec)


def test_validate_input_spec_canonical() -> None:
    out = validate_input_spec(
        {"radiometry": "amplitude", "sar_res": 3, "patch_size": 32}
    )
    assert out == {"radiometry": "amplitude", "sar_res": 3.0, "patch_size": 32}
    assert isinstance(out["sar_res"], float)


def test_predict_warns_without_validation_threshold(tmp_path: Path) -> None:
    task = _task(["sar", "footprint"])
    with pytest.warns(UserWarning, match="no validation threshold stored.*0.5"):
        _trainer(tmp_path, limit_predict_batches=1).predict(
            task, datamodule=TinyDataModule()
        )
