"""The experiment configs run through ``torchgeo fit/test/predict`` themselves."""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import torch
import yaml
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from torchgeo.main import main as torchgeo_main

from torchgeo_quake.datasets import GEM_FEATURE_NAMES
from torchgeo_quake.trainers import (
    INPUT_SPEC_KEY,
    PREDICTION_COLUMNS,
    DamageDetectionTask,
)

EXPERIMENTS = Path(__file__).resolve().parents[2] / "experiments"
CONFIGS = ("sar_ftp", "sar_ftp_dsm", "all_inputs")


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    # The configs write under runs/<name>; keep that out of the checkout.
    monkeypatch.chdir(tmp_path)
    # LightningCLI warns when it sees pytest's own arguments in sys.argv.
    monkeypatch.setattr(sys, "argv", ["torchgeo"])
    return tmp_path


@pytest.mark.parametrize("name", CONFIGS)
def test_configs_share_hyperparameters(name: str) -> None:
    config = yaml.safe_load((EXPERIMENTS / f"{name}.yaml").read_text())
    reference = yaml.safe_load((EXPERIMENTS / "all_inputs.yaml").read_text())
    model = dict(config["model"]["init_args"])
    data = dict(config["data"]["init_args"])
    assert model["modalities"] == data["modalities"]
    assert config["trainer"]["accelerator"] == "auto"
    # bfloat16 where the hardware has it (the task falls back to float32).
    assert config["trainer"]["precision"] == "bf16-mixed"
    for section, values in (("model", model), ("data", data)):
        ref = dict(reference[section]["init_args"])
        for key in ("modalities", "splits_file"):
            values.pop(key, None)
            ref.pop(key, None)
        assert values == ref, f"{name}: {section} differs from all_inputs"
    assert reference["model"]["init_args"]["gem_features"] == len(GEM_FEATURE_NAMES)


@pytest.mark.parametrize("name", CONFIGS)
def test_fast_dev_run(name: str, sim_root: Path, in_tmp: Path) -> None:
    torchgeo_main(
        [
            "fit",
            "--config",
            str(EXPERIMENTS / f"{name}.yaml"),
            f"--data.init_args.root={sim_root}",
            "--data.init_args.scale=0.05",
            "--data.init_args.batch_size=8",
            "--trainer.fast_dev_run=1",
            "--trainer.accelerator=cpu",
        ]
    )
    splits = json.loads((in_tmp / "runs" / name / "splits.json").read_text())
    ids = [set(splits[s]["building_id"]) for s in ("train", "val", "test")]
    assert ids[0] and ids[1] and ids[2]
    assert not (ids[0] & ids[1] or ids[0] & ids[2] or ids[1] & ids[2])


def test_fit_test_predict_with_one_file(
    sim_root: Path, in_tmp: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = str(EXPERIMENTS / "sar_ftp.yaml")
    # One setting moves every output: logs, checkpoints, predictions, splits.
    run = in_tmp / "elsewhere" / "run"
    cwd = in_tmp / "cwd"
    cwd.mkdir()
    os.chdir(cwd)
    common = [
        "--config",
        config,
        f"--data.init_args.root={sim_root}",
        "--data.init_args.scale=0.05",
        "--data.init_args.batch_size=8",
        "--trainer.accelerator=cpu",
        f"--trainer.default_root_dir={run}",
    ]
    with caplog.at_level(logging.INFO, logger="lightning.pytorch"):
        torchgeo_main(
            [
                "fit",
                *common,
                "--trainer.max_epochs=1",
                "--trainer.limit_train_batches=2",
                "--trainer.limit_val_batches=2",
                "--trainer.log_every_n_steps=1",
            ]
        )
    # The best epoch under a fixed name (what the docs point at), and the last.
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == [
        "best.ckpt",
        "last.ckpt",
    ]
    best = run / "checkpoints" / "best.ckpt"
    # The end-of-fit summary: best epoch, its metrics, the files.
    summary = caplog.text[caplog.text.index("fit done") :]
    assert "best epoch 0 (by val_f1): val_f1 " in summary
    assert "at val_threshold" in summary
    assert f"best checkpoint: {best}" in summary
    assert f"last checkpoint: {run / 'checkpoints' / 'last.ckpt'}" in summary
    checkpoint = torch.load(best, map_location="cpu", weights_only=True)
    assert bool(checkpoint["state_dict"]["threshold_set"])
    assert checkpoint[INPUT_SPEC_KEY] == {
        "radiometry": "db",
        "sar_res": 2.5,
        "patch_size": 32,
    }
    metrics = run.joinpath("csv").rglob("metrics.csv")
    header = next(iter(metrics)).read_text().splitlines()[0]
    assert "val_f1" in header and "val_auroc" in header
    # TensorBoard event files with the validation scalars.
    events = list(run.joinpath("tensorboard").rglob("events.out.tfevents.*"))
    assert events
    accumulator = EventAccumulator(str(events[0].parent))
    accumulator.Reload()
    assert {"val_f1", "val_auroc", "train_loss"} <= set(accumulator.Tags()["scalars"])

    for command in ("test", "predict"):
        torchgeo_main(
            [
                command,
                *common,
                f"--ckpt_path={best}",
                f"--trainer.limit_{command}_batches=2",
            ]
        )
    files = {p.relative_to(run).as_posix() for p in run.rglob("*") if p.is_file()}
    assert {
        "csv/version_0/metrics.csv",
        "csv/version_0/config.yaml",
        "predictions.csv",
        "splits.json",
    } <= files
    assert list(cwd.iterdir()) == []  # nothing in the current folder
    table = pd.read_csv(run / "predictions.csv")
    assert tuple(table.columns) == PREDICTION_COLUMNS
    assert len(table) == 16  # 2 batches of 8
    splits = json.loads((run / "splits.json").read_text())
    assert table["building_id"].tolist() == splits["test"]["building_id"][:16]
    stored = float(checkpoint["state_dict"]["threshold"])
    assert (table["threshold"] == stored).all()
    assert (table["pred"] == (table["prob"] >= stored)).all()
    assert set(table["label"]) <= {0, 1}

    # A checkpoint of another input configuration: the error names the file
    # and the configuration to use, before any batch.
    with pytest.raises(
        ValueError,
        match=rf"{re.escape(str(best))}.*use the configuration with modalities: "
        r"\[sar, footprint\] \(experiments/sar_ftp\.yaml\)",
    ):
        torchgeo_main(
            [
                "test",
                "--config",
                str(EXPERIMENTS / "all_inputs.yaml"),
                f"--data.init_args.root={sim_root}",
                "--data.init_args.scale=0.05",
                "--trainer.accelerator=cpu",
                f"--ckpt_path={best}",
            ]
        )


@pytest.mark.parametrize("path", sorted(EXPERIMENTS.glob("*.yaml")), ids=str)
def test_configs_never_replace_a_checkpoint(path: Path) -> None:
    config = yaml.safe_load(path.read_text())
    checkpoints = [
        c["init_args"]
        for c in config["trainer"]["callbacks"]
        if c["class_path"].endswith("ModelCheckpoint")
    ]
    # best.ckpt (weights only) first, then last.ckpt (the full state).
    assert [c["filename"] for c in checkpoints] == ["best", "last"]
    assert all(c["enable_version_counter"] is True for c in checkpoints)
    assert "best-v1.ckpt" in path.read_text()  # the header says what a re-run does


def test_refit_writes_new_checkpoints_beside_the_old(
    sim_root: Path, in_tmp: Path
) -> None:
    args = [
        "fit",
        "--config",
        str(EXPERIMENTS / "sar_ftp.yaml"),
        f"--data.init_args.root={sim_root}",
        "--data.init_args.scale=0.05",
        "--data.init_args.batch_size=8",
        "--trainer.accelerator=cpu",
        "--trainer.max_epochs=1",
        "--trainer.limit_train_batches=2",  # 1 would be read as 1.0: 100 %
        "--trainer.limit_val_batches=2",
        "--trainer.logger=false",
    ]
    folder = in_tmp / "runs" / "sar_ftp" / "checkpoints"
    torchgeo_main(args)
    first = {p.name: p.read_bytes() for p in folder.iterdir()}
    assert sorted(first) == ["best.ckpt", "last.ckpt"]
    torchgeo_main(args)
    names = sorted(p.name for p in folder.iterdir())
    assert names == ["best-v1.ckpt", "best.ckpt", "last-v1.ckpt", "last.ckpt"]
    for name, content in first.items():  # the first run's files, untouched
        assert (folder / name).read_bytes() == content


def _fit(config: str, *args: str) -> None:
    torchgeo_main(
        [
            "fit",
            "--config",
            str(EXPERIMENTS / f"{config}.yaml"),
            "--trainer.fast_dev_run=1",
            "--trainer.accelerator=cpu",
            *args,
        ]
    )


class _NoTraining(Exception):
    """Raised by the patched training step: training must not start."""


@pytest.fixture
def no_training(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise _NoTraining

    monkeypatch.setattr(DamageDetectionTask, "training_step", refuse)


def test_model_and_data_modalities_must_agree(
    sim_root: Path, in_tmp: Path, no_training: None
) -> None:
    with pytest.raises(ValueError, match="does not provide"):
        _fit(
            "all_inputs",
            f"--data.init_args.root={sim_root}",
            "--data.init_args.scale=0.05",
            "--data.init_args.modalities=[sar, footprint]",
        )


def test_data_lacking_a_modality(
    sim_root: Path, in_tmp: Path, no_training: None
) -> None:
    # A scene without the DSM of one city, with a configuration that needs it.
    root = in_tmp / "scene"
    for city in sim_root.iterdir():
        if not city.is_dir() or city.name.startswith("."):
            continue
        (root / city.name).mkdir(parents=True)
        for file in city.iterdir():
            if not (city.name == "nurdagi" and file.name == "dsm.tif"):
                (root / city.name / file.name).symlink_to(file)
    missing = root / "nurdagi" / "dsm.tif"
    with pytest.raises(FileNotFoundError, match=re.escape(str(missing))):
        _fit(
            "sar_ftp_dsm",
            f"--data.init_args.root={root}",
            "--data.init_args.scale=0.05",
        )
    assert not (in_tmp / "runs" / "sar_ftp_dsm" / "checkpoints").exists()


def test_unknown_modality_in_config(in_tmp: Path, no_training: None) -> None:
    with pytest.raises(ValueError, match=r"unknown modalities \['radar'\]"):
        _fit("sar_ftp", "--model.init_args.modalities=[sar, radar]")


def test_gem_width_differs_from_data(
    sim_root: Path, in_tmp: Path, no_training: None
) -> None:
    with pytest.raises(
        ValueError,
        match=rf"gem_mean has shape \({len(GEM_FEATURE_NAMES)},\), expected "
        r"\(20,\).*GEM_FEATURE_NAMES",
    ):
        _fit(
            "all_inputs",
            f"--data.init_args.root={sim_root}",
            "--data.init_args.scale=0.05",
            "--model.init_args.gem_features=20",
        )


def test_sar_weights_with_foreign_keys(in_tmp: Path, no_training: None) -> None:
    path = in_tmp / "sarhub_vgg.pth"
    torch.save({"features.0.weight": torch.zeros(64, 3, 3, 3)}, path)
    with pytest.raises(ValueError, match=r"sarhub_vgg\.pth.*features\.0\.weight"):
        _fit("sar_ftp", f"--model.init_args.sar_weights={path}")


# ------------------------------------------------------------ own event
# experiments/own_event.yaml reads a user's folder of areas and simulates
# nothing, so it is not among CONFIGS (whose tests give a simulated root).
OWN_EVENT = EXPERIMENTS / "own_event.yaml"


@pytest.fixture(scope="module")
def own_event_root(sim_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny event of two areas: copies of two simulated cities, renamed."""
    root = tmp_path_factory.mktemp("own_event") / "my_event"
    for area, city in (("east_town", "nurdagi"), ("west_town", "islahiye")):
        shutil.copytree(sim_root / city, root / area)
    return root


def test_own_event_config_is_the_baseline_on_any_event() -> None:
    config = yaml.safe_load(OWN_EVENT.read_text())
    baseline = yaml.safe_load((EXPERIMENTS / "sar_ftp.yaml").read_text())
    assert config["model"] == baseline["model"]
    assert config["seed_everything"] == baseline["seed_everything"]
    data = dict(config["data"]["init_args"])
    assert config["data"]["class_path"] == (
        "torchgeo_quake.datamodules.BuildingDamageDataModule"
    )
    assert data["modalities"] == config["model"]["init_args"]["modalities"]
    assert data["root"] == "data/my_event"
    reference = dict(baseline["data"]["init_args"])
    for key in ("root", "splits_file"):
        data.pop(key)
        reference.pop(key)
    assert data == reference
    trainer = json.dumps(config["trainer"]).replace("own_event", "sar_ftp")
    assert json.loads(trainer) == baseline["trainer"]
    # The fine-tuning line is there, commented.
    assert "# init_from: runs/all_inputs/checkpoints/best.ckpt" in (
        OWN_EVENT.read_text()
    )


def test_own_event_fast_dev_run(own_event_root: Path, in_tmp: Path) -> None:
    torchgeo_main(
        [
            "fit",
            "--config",
            str(OWN_EVENT),
            f"--data.init_args.root={own_event_root}",
            "--data.init_args.batch_size=8",
            "--trainer.fast_dev_run=1",
            "--trainer.accelerator=cpu",
        ]
    )
    splits = json.loads((in_tmp / "runs" / "own_event" / "splits.json").read_text())
    ids = [set(splits[s]["building_id"]) for s in ("train", "val", "test")]
    assert ids[0] and ids[1] and ids[2]
    assert not (ids[0] & ids[1] or ids[0] & ids[2] or ids[1] & ids[2])
    assert set(splits["test"]["city"]) == {"east_town", "west_town"}


def test_own_event_root_is_never_simulated(in_tmp: Path, no_training: None) -> None:
    with pytest.raises(FileNotFoundError, match="nowhere"):
        _fit("own_event", f"--data.init_args.root={in_tmp / 'nowhere'}")
    assert not (in_tmp / "nowhere").exists()


def test_own_event_in_the_protocol_runner(own_event_root: Path, in_tmp: Path) -> None:
    from torchgeo_quake.protocols import (
        ProtocolSettings,
        load_config,
        plan_runs,
        run_protocol,
    )

    config = load_config(OWN_EVENT)
    runs = plan_runs("loco", [config], [0], root=own_event_root)
    assert [r.test_city for r in runs] == ["east_town", "west_town"]
    with pytest.raises(ValueError, match="Kahramanmaraş"):
        plan_runs("islahiye", [config], [0], root=own_event_root)
    empty = in_tmp / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match=re.escape(str(empty))):
        run_protocol(ProtocolSettings("cv", [str(OWN_EVENT)], "out", root=str(empty)))
    assert not any(empty.iterdir())  # nothing simulated there
    settings = ProtocolSettings(
        "loco",
        [str(OWN_EVENT)],
        str(in_tmp / "loco"),
        root=str(own_event_root),
        max_epochs=1,
        limit_train_batches=1,
        limit_val_batches=1,
        progress=False,
    )
    result = run_protocol(settings)
    assert sorted(result.trained) == [
        "own_event/east_town/seed0",
        "own_event/west_town/seed0",
    ]
    record = json.loads(
        (in_tmp / "loco" / "runs" / "own_event" / "east_town" / "seed0")
        .joinpath("metrics.json")
        .read_text()
    )
    assert record["test_city"] == "east_town" and record["n_test"] > 0


# ------------------------------------------------------------ package data
def test_installed_configs_equal_experiments() -> None:
    # torchgeo_quake/experiments is the copy installed with the package; it
    # must stay equal to the top-level experiments/ (copy the files over after
    # editing them: cp experiments/*.yaml torchgeo_quake/experiments/).
    from torchgeo_quake.utils import EXPERIMENTS_DIR

    top = {p.name: p.read_bytes() for p in EXPERIMENTS.glob("*.yaml")}
    installed = {p.name: p.read_bytes() for p in EXPERIMENTS_DIR.glob("*.yaml")}
    assert sorted(installed) == sorted(top)
    for name, content in top.items():
        assert installed[name] == content, f"torchgeo_quake/experiments/{name}"
    # ... and setuptools installs them (package data of a wheel).
    pyproject = (EXPERIMENTS.parent / "pyproject.toml").read_text()
    assert '"experiments/*.yaml"' in pyproject


def test_protocol_finds_configs_from_any_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from torchgeo_quake.cli import PROTOCOL_CONFIGS
    from torchgeo_quake.protocols import load_config
    from torchgeo_quake.utils import EXPERIMENTS_DIR, experiment_config

    monkeypatch.chdir(tmp_path)
    for path in PROTOCOL_CONFIGS:
        config = load_config(path)
        assert Path(config.path) == EXPERIMENTS_DIR / Path(path).name
    assert experiment_config("sar_ftp") == EXPERIMENTS_DIR / "sar_ftp.yaml"
    # A file in the current folder comes first.
    (tmp_path / "experiments").mkdir()
    mine = tmp_path / "experiments" / "sar_ftp.yaml"
    mine.write_bytes((EXPERIMENTS / "sar_ftp.yaml").read_bytes())
    assert load_config("experiments/sar_ftp.yaml").path == "experiments/sar_ftp.yaml"
    with pytest.raises(FileNotFoundError, match=r"mine\.yaml.*installed: all_inputs"):
        load_config("experiments/mine.yaml")
    with pytest.raises(FileNotFoundError, match="no experiment configuration"):
        experiment_config("elsewhere/sar_ftp.yaml")
