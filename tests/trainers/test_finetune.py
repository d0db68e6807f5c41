"""Fine-tuning DamageDetectionTask from a trained checkpoint (``init_from``)."""

from __future__ import annotations

import shutil
import sys
import warnings
from pathlib import Path
from typing import Any

import pytest
import torch
from lightning import Callback, LightningDataModule, LightningModule, Trainer
from lightning.pytorch.cli import LightningCLI
from torch import Tensor
from torch.utils.data import DataLoader, Dataset
from torchgeo.datasets import stack_samples
from torchgeo.trainers import BaseTask

from torchgeo_quake.trainers import INPUT_SPEC_KEY, DamageDetectionTask

GEM = 5
ALL = ["sar", "footprint", "dsm", "gem"]
SPEC = {"radiometry": "db", "sar_res": 2.5, "patch_size": 32}


class Tiny(Dataset[dict[str, Any]]):
    """Samples with the keys and shapes of the sample contract."""

    def __init__(self, n: int, seed: int) -> None:
        g = torch.Generator().manual_seed(seed)
        self.label = torch.arange(n) % 3 == 0  # both classes in every batch
        self.sar = torch.rand(n, 1, 32, 32, generator=g) * 5 + 10
        self.sar[self.label] += 3
        self.footprint = (torch.rand(n, 1, 32, 32, generator=g) > 0.6).float()
        self.dsm = torch.randn(n, 1, 32, 32, generator=g) * 4 + 100
        self.gem = torch.rand(n, GEM, generator=g) * 50

    def __len__(self) -> int:
        return len(self.label)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return {
            "sar": self.sar[i],
            "footprint": self.footprint[i],
            "dsm": self.dsm[i],
            "gem": self.gem[i],
            "label": self.label[i].long(),
        }


class TinyDM(LightningDataModule):
    """In-memory data with statistics and, optionally, an input spec."""

    def __init__(
        self,
        seed: int = 0,
        radiometry: str = "db",
        sar_res: float | None = 2.5,
        stats: bool = True,
    ) -> None:
        super().__init__()
        self.train = Tiny(12, seed)
        self.val = Tiny(12, seed + 1)
        self.radiometry = radiometry
        self.sar_res = sar_res
        if not stats:  # a data module without normalisation statistics
            self.normalization_stats = None  # type: ignore[method-assign,assignment]

    def input_spec(self) -> dict[str, Any]:
        return {
            "radiometry": self.radiometry,
            "sar_res": self.sar_res,
            "patch_size": 32,
        }

    def normalization_stats(self) -> dict[str, Tensor]:
        t = self.train
        return {
            "sar_mean": t.sar.mean(),
            "sar_std": t.sar.std(),
            "dsm_mean": t.dsm.mean(),
            "dsm_std": t.dsm.std(),
            "gem_mean": t.gem.mean(0),
            "gem_std": t.gem.std(0),
        }

    def train_dataloader(self) -> DataLoader[Any]:
        return DataLoader(self.train, batch_size=6, collate_fn=stack_samples)

    def val_dataloader(self) -> DataLoader[Any]:
        return DataLoader(self.val, batch_size=6, collate_fn=stack_samples)

    def test_dataloader(self) -> DataLoader[Any]:
        return self.val_dataloader()


def _trainer(root: Path, **kwargs: Any) -> Trainer:
    defaults: dict[str, Any] = {
        "accelerator": "cpu",
        "devices": 1,
        "default_root_dir": root,
        "logger": False,
        "enable_progress_bar": False,
        "enable_model_summary": False,
        "enable_checkpointing": False,
        "num_sanity_val_steps": 0,
    }
    defaults.update(kwargs)
    return Trainer(**defaults)


def _save(task: DamageDetectionTask, path: Path) -> Path:
    trainer = Trainer(accelerator="cpu", logger=False, enable_checkpointing=False)
    trainer.strategy.connect(task)
    trainer.save_checkpoint(path)
    return path


def _network(path: Path) -> dict[str, Tensor]:
    state = torch.load(path, map_location="cpu", weights_only=True)["state_dict"]
    return {
        k[len("model.") :]: v
        for k, v in state.items()
        if k.startswith("model.") and torch.is_tensor(v)
    }


def _same(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    """Keys of *a* whose tensors differ in *b*."""
    return [k for k, v in a.items() if torch.is_tensor(v) and not torch.equal(v, b[k])]


def _encoders(task: DamageDetectionTask) -> dict[str, dict[str, Tensor]]:
    assert task.model.encoder is not None
    return dict(
        zip(task.model.rasters, task.model.encoder.plain_state_dicts(), strict=True)
    )


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A checkpoint of a task with all inputs trained one step (with a threshold)."""
    root = tmp_path_factory.mktemp("source")
    torch.manual_seed(1)
    task = DamageDetectionTask(modalities=ALL, gem_features=GEM)
    trainer = _trainer(root, fast_dev_run=True)
    trainer.fit(task, datamodule=TinyDM(seed=100))
    path = root / "source.ckpt"
    trainer.save_checkpoint(path)
    raw = torch.load(path, weights_only=True)
    assert bool(raw["state_dict"]["threshold_set"])
    assert bool(raw["state_dict"]["normalization_set"])
    assert raw[INPUT_SPEC_KEY] == SPEC
    return path


@pytest.fixture(scope="module")
def sar_ftp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An untrained checkpoint with SAR and footprint only."""
    torch.manual_seed(2)
    task = DamageDetectionTask(modalities=["sar", "footprint"], gem_features=GEM)
    task.input_spec = dict(SPEC)
    return _save(task, tmp_path_factory.mktemp("sar_ftp") / "sar_ftp.ckpt")


# -------------------------------------------------------------------- init
def test_all_reproduces_the_source(source: Path) -> None:
    task = DamageDetectionTask(modalities=ALL, gem_features=GEM, init_from=str(source))
    expected = _network(source)
    got = task.model.state_dict()
    assert expected.keys() <= got.keys()
    assert not _same(expected, got)
    raw = torch.load(source, weights_only=True)["state_dict"]
    # Normalisation statistics copied as a fallback; never the threshold.
    for key in ("sar_mean", "sar_std", "dsm_mean", "gem_mean", "gem_std"):
        assert torch.equal(getattr(task, key), raw[key])
    assert bool(task.normalization_set)
    assert float(task.threshold) == 0.5 and not bool(task.threshold_set)
    assert float(raw["threshold"]) != 0.5
    assert task.hparams["init_from"] == str(source)
    assert task.hparams["init_weights"] == "all"


def test_encoders_leave_the_head_fresh(source: Path) -> None:
    torch.manual_seed(7)
    fresh = DamageDetectionTask(modalities=ALL, gem_features=GEM)
    torch.manual_seed(7)
    task = DamageDetectionTask(
        modalities=ALL, gem_features=GEM, init_from=str(source), init_weights="encoders"
    )
    expected = _network(source)
    got = task.model.state_dict()
    encoders = [k for k in expected if not k.startswith("head.")]
    assert any(k.startswith("encoder.") for k in encoders)
    assert any(k.startswith("gem_mlp.") for k in encoders)
    assert not _same({k: expected[k] for k in encoders}, got)
    head = {
        k: v for k, v in got.items() if k.startswith("head.") and v.is_floating_point()
    }
    assert head and all(not torch.equal(v, expected[k]) for k, v in head.items())
    assert not _same(head, fresh.model.state_dict())  # its fresh initialisation


def test_encoders_of_some_modalities(source: Path, sar_ftp: Path) -> None:
    # The checkpoint has sar and footprint: dsm keeps its initialisation.
    torch.manual_seed(3)
    fresh = DamageDetectionTask(modalities=["sar", "footprint", "dsm"])
    torch.manual_seed(3)
    with pytest.warns(UserWarning, match=r"encoders of \['dsm'\] keep their default"):
        task = DamageDetectionTask(
            modalities=["sar", "footprint", "dsm"],
            init_from=str(sar_ftp),
            init_weights="encoders",
        )
    loaded = DamageDetectionTask.load_from_checkpoint(sar_ftp)
    ours, theirs, initial = _encoders(task), _encoders(loaded), _encoders(fresh)
    for m in ("sar", "footprint"):
        assert not _same(theirs[m], ours[m])
        assert _same(initial[m], ours[m])
    assert not _same(initial["dsm"], ours["dsm"])
    # Group slices are picked by modality: sar and dsm out of all three.
    task = DamageDetectionTask(
        modalities=["sar", "dsm"], init_from=str(source), init_weights="encoders"
    )
    source_task = DamageDetectionTask.load_from_checkpoint(source)
    ours, theirs = _encoders(task), _encoders(source_task)
    for m in ("sar", "dsm"):
        assert not _same(theirs[m], ours[m])
    assert _same(theirs["footprint"], ours["dsm"])


# ------------------------------------------------------------------ freezing
class _Modes(Callback):
    """Record the training mode of the encoder and head at each batch."""

    def __init__(self) -> None:
        self.modes: list[tuple[bool, bool]] = []

    def on_train_batch_start(
        self, trainer: Trainer, pl_module: LightningModule, batch: Any, batch_idx: int
    ) -> None:
        assert isinstance(pl_module, DamageDetectionTask)
        assert pl_module.model.encoder is not None
        self.modes.append(
            (pl_module.model.encoder.training, pl_module.model.head.training)
        )


def test_frozen_encoders_do_not_change(source: Path, tmp_path: Path) -> None:
    task = DamageDetectionTask(
        modalities=ALL, gem_features=GEM, init_from=str(source), freeze_encoders=True
    )
    encoder_params = [p for m in task.encoder_modules() for p in m.parameters()]
    assert encoder_params and not any(p.requires_grad for p in encoder_params)
    assert all(p.requires_grad for p in task.model.head.parameters())
    before = {
        k: v.clone() for k, v in task.model.state_dict().items() if torch.is_tensor(v)
    }
    modes = _Modes()
    trainer = _trainer(tmp_path, max_steps=2, limit_val_batches=1, callbacks=[modes])
    trainer.fit(task, datamodule=TinyDM())
    # Only the head is optimised; the encoders stayed in evaluation mode.
    optimised = {id(p) for g in trainer.optimizers[0].param_groups for p in g["params"]}
    assert optimised == {id(p) for p in task.parameters() if p.requires_grad}
    assert optimised == {id(p) for p in task.model.head.parameters()}
    assert modes.modes == [(False, True), (False, True)]
    after = task.model.state_dict()
    changed = _same(before, after)
    assert changed and all(k.startswith("head.") for k in changed)
    # Running statistics and counters of the batch norms included.
    assert not any(k.startswith(("encoder.", "gem_mlp.")) for k in changed)


# -------------------------------------------------------------------- errors
def test_bad_init_from(source: Path, sar_ftp: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="init_weights must be"):
        DamageDetectionTask(init_from=str(source), init_weights="head")  # type: ignore[arg-type]
    text = tmp_path / "notes.ckpt"
    text.write_text("not a checkpoint")
    other = tmp_path / "other.ckpt"
    torch.save({"state_dict": {"w": torch.zeros(1)}, "hyper_parameters": {}}, other)
    for path in (text, other):
        with pytest.raises(ValueError, match=r"notes\.ckpt|other\.ckpt") as info:
            DamageDetectionTask(modalities=ALL, gem_features=GEM, init_from=str(path))
        assert "not a torchgeo_quake damage-model checkpoint" in str(info.value)
    with pytest.raises(
        ValueError,
        match=r"sar_ftp\.ckpt' was trained with modalities.*init_weights='all'",
    ):
        DamageDetectionTask(modalities=ALL, gem_features=GEM, init_from=str(sar_ftp))
    with pytest.raises(
        ValueError, match=r"source\.ckpt' was trained with gem_features=5"
    ):
        DamageDetectionTask(
            modalities=ALL,
            gem_features=6,
            init_from=str(source),
            init_weights="encoders",
        )
    with pytest.raises(ValueError, match=r"hidden_dim=256.*hidden_dim=32"):
        DamageDetectionTask(
            modalities=ALL, gem_features=GEM, hidden_dim=32, init_from=str(source)
        )
    # Without 'all', another head width is fine.
    DamageDetectionTask(
        modalities=ALL,
        gem_features=GEM,
        hidden_dim=32,
        init_from=str(source),
        init_weights="encoders",
    )
    with pytest.raises(ValueError, match="shares no modality"):
        DamageDetectionTask(
            modalities=["dsm"], init_from=str(sar_ftp), init_weights="encoders"
        )


def test_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "gone.ckpt"
    with pytest.warns(UserWarning, match=r"init_from checkpoint '.*gone\.ckpt' does"):
        task = DamageDetectionTask(
            modalities=ALL, gem_features=GEM, init_from=str(missing)
        )
    with pytest.raises(FileNotFoundError, match=r"gone\.ckpt' does not exist"):
        _trainer(tmp_path, fast_dev_run=True).fit(task, datamodule=TinyDM())
    with pytest.raises(FileNotFoundError, match=r"gone\.ckpt"):
        _trainer(tmp_path, fast_dev_run=True).validate(task, datamodule=TinyDM())


def test_other_inputs_than_the_checkpoint(source: Path, tmp_path: Path) -> None:
    task = DamageDetectionTask(modalities=ALL, gem_features=GEM, init_from=str(source))
    with pytest.raises(
        ValueError,
        match=r"source\.ckpt' was trained on inputs made otherwise.*"
        r"radiometry 'db' \(checkpoint\) != 'amplitude' \(data\)",
    ):
        _trainer(tmp_path, fast_dev_run=True).fit(
            task, datamodule=TinyDM(radiometry="amplitude")
        )
    # Another pixel size only warns; the checkpoints record the new data's.
    task = DamageDetectionTask(modalities=ALL, gem_features=GEM, init_from=str(source))
    with pytest.warns(UserWarning, match=r"another pixel size \(sar_res 2\.5 m"):
        _trainer(tmp_path, fast_dev_run=True).fit(task, datamodule=TinyDM(sar_res=0.5))
    assert task.input_spec == {**SPEC, "sar_res": 0.5}


def test_statistics_at_fit_start(source: Path, tmp_path: Path) -> None:
    dm = TinyDM(seed=5)
    task = DamageDetectionTask(modalities=ALL, gem_features=GEM, init_from=str(source))
    _trainer(tmp_path, fast_dev_run=True).fit(task, datamodule=dm)
    assert torch.equal(task.sar_mean, dm.normalization_stats()["sar_mean"])
    task = DamageDetectionTask(modalities=ALL, gem_features=GEM, init_from=str(source))
    copied = task.sar_mean.clone()
    with pytest.warns(UserWarning, match="keeping the normalisation statistics of"):
        _trainer(tmp_path, fast_dev_run=True).fit(task, datamodule=TinyDM(stats=False))
    assert torch.equal(task.sar_mean, copied)


# ------------------------------------------------------------------ reloading
def test_finetuned_checkpoint_outlives_the_source(source: Path, tmp_path: Path) -> None:
    original = shutil.copy(source, tmp_path / "original.ckpt")
    task = DamageDetectionTask(
        modalities=ALL, gem_features=GEM, init_from=str(original), freeze_encoders=True
    )
    trainer = _trainer(tmp_path, fast_dev_run=True)
    trainer.fit(task, datamodule=TinyDM())
    tuned = tmp_path / "tuned.ckpt"
    trainer.save_checkpoint(tuned)
    Path(original).unlink()
    hparams = torch.load(tuned, weights_only=True)["hyper_parameters"]
    assert hparams["init_from"] == str(original)  # recorded
    assert hparams["init_weights"] == "all" and hparams["freeze_encoders"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loaded = DamageDetectionTask.load_from_checkpoint(tuned)
    assert not _same(task.state_dict(), loaded.state_dict())
    assert not any(
        p.requires_grad for m in loaded.encoder_modules() for p in m.parameters()
    )
    # A trainer restoring the fine-tuned checkpoint (as `torchgeo test
    # --ckpt_path` does, with a task rebuilt from its hyper-parameters) does
    # not need the source either; without ckpt_path it does.
    with pytest.warns(UserWarning, match="does not exist"):
        rebuilt = DamageDetectionTask(**hparams)
    _trainer(tmp_path, limit_test_batches=1).test(
        rebuilt, datamodule=TinyDM(), ckpt_path=tuned
    )
    assert not _same(loaded.state_dict(), rebuilt.state_dict())
    with pytest.warns(UserWarning, match="does not exist"):
        rebuilt = DamageDetectionTask(**hparams)
    resumed = _trainer(tmp_path, max_steps=2, limit_val_batches=1)
    resumed.fit(rebuilt, datamodule=TinyDM(), ckpt_path=tuned)  # resuming
    assert resumed.global_step == 2
    with pytest.warns(UserWarning, match="does not exist"):
        rebuilt = DamageDetectionTask(**hparams)
    with pytest.raises(FileNotFoundError, match=r"original\.ckpt"):
        _trainer(tmp_path, limit_test_batches=1).test(rebuilt, datamodule=TinyDM())


# ------------------------------------------------------------------------ CLI
def test_cli_init_from(
    source: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["torchgeo"])
    common = [
        "--model.class_path=torchgeo_quake.trainers.DamageDetectionTask",
        "--model.init_args.modalities=[sar, footprint, dsm, gem]",
        f"--model.init_args.gem_features={GEM}",
        "--trainer.accelerator=cpu",
        "--trainer.logger=false",
        "--trainer.enable_progress_bar=false",
    ]

    def cli(*args: str, run: bool = True) -> LightningCLI:
        return LightningCLI(
            BaseTask,
            TinyDM,
            subclass_mode_model=True,
            save_config_callback=None,
            run=run,
            args=list(args),
        )

    parsed = cli(*common, "--model.init_args.init_from", str(source), run=False)
    assert isinstance(parsed.model, DamageDetectionTask)
    assert parsed.model.hparams["init_from"] == str(source)
    assert not _same(_network(source), parsed.model.model.state_dict())
    original = shutil.copy(source, tmp_path / "original.ckpt")
    fitted = cli(
        "fit",
        *common,
        "--model.init_args.init_from",
        str(original),
        "--model.init_args.init_weights=encoders",
        "--trainer.fast_dev_run=1",
    )
    tuned = tmp_path / "tuned.ckpt"
    fitted.trainer.save_checkpoint(tuned)
    Path(original).unlink()
    # `test --ckpt_path` rebuilds the model from the checkpoint's
    # hyper-parameters (init_from included): the source is not needed.
    with pytest.warns(UserWarning, match="does not exist"):
        tested = cli(
            "test", *common, f"--ckpt_path={tuned}", "--trainer.limit_test_batches=1"
        )
    assert not _same(fitted.model.state_dict(), tested.model.state_dict())
