"""The experiment configs run through ``torchgeo fit/test/predict`` themselves."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch
import yaml
from torchgeo.main import main as torchgeo_main

from torchgeo_quake.datasets import GEM_FEATURE_NAMES

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
            "--data.init_args.batch_size=8",
            "--trainer.fast_dev_run=1",
            "--trainer.accelerator=cpu",
        ]
    )
    splits = json.loads((in_tmp / "runs" / name / "splits.json").read_text())
    ids = [set(splits[s]["building_id"]) for s in ("train", "val", "test")]
    assert ids[0] and ids[1] and ids[2]
    assert not (ids[0] & ids[1] or ids[0] & ids[2] or ids[1] & ids[2])


def test_fit_test_predict_with_one_file(sim_root: Path, in_tmp: Path) -> None:
    config = str(EXPERIMENTS / "sar_ftp.yaml")
    common = [
        "--config",
        config,
        f"--data.init_args.root={sim_root}",
        "--data.init_args.batch_size=8",
        "--trainer.accelerator=cpu",
    ]
    torchgeo_main(
        [
            "fit",
            *common,
            "--trainer.max_epochs=1",
            "--trainer.limit_train_batches=2",
            "--trainer.limit_val_batches=2",
        ]
    )
    last = in_tmp / "runs" / "sar_ftp" / "checkpoints" / "last.ckpt"
    assert last.exists()
    checkpoint = torch.load(last, map_location="cpu", weights_only=False)
    assert bool(checkpoint["state_dict"]["threshold_set"])
    metrics = (in_tmp / "runs" / "sar_ftp" / "csv").rglob("metrics.csv")
    header = next(iter(metrics)).read_text().splitlines()[0]
    assert "val_f1" in header and "val_auroc" in header
    for command in ("test", "predict"):
        torchgeo_main(
            [
                command,
                *common,
                f"--ckpt_path={last}",
                f"--trainer.limit_{command}_batches=2",
            ]
        )


def test_model_and_data_modalities_must_agree(sim_root: Path, in_tmp: Path) -> None:
    with pytest.raises(ValueError, match="does not provide"):
        torchgeo_main(
            [
                "fit",
                "--config",
                str(EXPERIMENTS / "all_inputs.yaml"),
                f"--data.init_args.root={sim_root}",
                "--data.init_args.modalities=[sar, footprint]",
                "--trainer.fast_dev_run=1",
                "--trainer.accelerator=cpu",
            ]
        )
