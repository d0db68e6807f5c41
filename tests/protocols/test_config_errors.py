"""Mistakes a protocol catches before it trains or writes anything (seconds, CPU).

A typo in a configuration file, a value of the wrong type or a damaged
checkpoint ends ``torchgeo-quake protocol`` at once with one message naming the
file and the fix, and leaves no ``protocol.json``, run folder or data behind.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml

from torchgeo_quake.cli import main
from torchgeo_quake.protocols import (
    ConfigError,
    DamagedRunError,
    ProtocolSettings,
    RunSpec,
    load_config,
    run_protocol,
)
from torchgeo_quake.protocols.config import check_section

ROOT = Path(__file__).resolve().parents[2]
SOURCE = yaml.safe_load((ROOT / "experiments" / "sar_ftp.yaml").read_text())


def edited(folder: Path, edit: Callable[[dict[str, Any]], None]) -> Path:
    """``experiments/sar_ftp.yaml`` with one edit, as ``folder/sar_ftp.yaml``."""
    raw = copy.deepcopy(SOURCE)
    edit(raw)
    path = folder / "sar_ftp.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def run_cli(config: Path, out: Path, root: Path) -> int:
    """``torchgeo-quake protocol cv`` on one configuration, tiny settings."""
    argv = ["protocol", "cv", "--configs", str(config), "--out", str(out)]
    argv += ["--root", str(root), "--scale", "0.05", "--max-epochs", "1"]
    return main([*argv, "--limit-train-batches", "1", "--no-progress"])


def assert_nothing_written(tmp_path: Path) -> None:
    """No output folder and no (simulated) data root."""
    assert not (tmp_path / "out").exists()
    assert not (tmp_path / "root").exists()


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (
            lambda raw: raw["model"]["init_args"].update(lrr=0.01),
            r"unknown key 'lrr' \(did you mean 'lr'\?\) in model\.init_args: "
            r"torchgeo_quake\.trainers\.DamageDetectionTask has no such argument",
        ),
        (
            lambda raw: raw["data"]["init_args"].update(num_fold=3),
            r"unknown key 'num_fold' \(did you mean 'num_folds'.*\) in "
            r"data\.init_args: torchgeo_quake\.datamodules\.Kahramanmaras",
        ),
        (
            lambda raw: raw["trainer"].update(max_epoch=3),
            r"unknown key 'max_epoch' \(did you mean 'max_epochs'.*\) in trainer",
        ),
        (
            lambda raw: raw["model"]["init_args"].update(optimizer="sgd"),
            r"invalid value in model\.init_args .*'optimizer'.*sgd",
        ),
        (
            lambda raw: raw["model"].update(
                class_path="torchgeo_quake.trainers.DamageDetectonTask"
            ),
            r"model\.class_path .*no class 'DamageDetectonTask' "
            r"\(did you mean 'DamageDetectionTask'\?\)",
        ),
    ],
    ids=["model-key", "data-key", "trainer-key", "model-value", "class-path"],
)
def test_invalid_config_fails_before_writing(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    edit: Callable[[dict[str, Any]], None],
    expected: str,
) -> None:
    config = edited(tmp_path, edit)
    assert run_cli(config, tmp_path / "out", tmp_path / "root") == 1
    err = capsys.readouterr().err
    # "torchgeo-quake[ protocol]: error: FILE: ..." (the prefix is cli.main's)
    assert re.match(
        rf"torchgeo-quake( protocol)?: error: {re.escape(str(config))}: ", err
    )
    assert len(err.strip().splitlines()) == 1  # one message, no traceback
    assert re.search(expected, err), err
    assert_nothing_written(tmp_path)
    with pytest.raises(ConfigError, match=expected):
        load_config(config)


def test_several_unknown_keys_in_one_message(tmp_path: Path) -> None:
    def edit(raw: dict[str, Any]) -> None:
        raw["model"]["init_args"].update(droput=0.1, zzzqqq=1)

    with pytest.raises(ConfigError) as info:
        load_config(edited(tmp_path, edit))
    message = str(info.value)
    assert "unknown keys 'droput' (did you mean 'dropout'?), 'zzzqqq'" in message
    assert "it accepts modalities, gem_features" in message  # no close match


def test_failed_validation_does_not_block_the_corrected_run(tmp_path: Path) -> None:
    out = tmp_path / "out"
    config = edited(tmp_path, lambda raw: raw["model"]["init_args"].update(lrr=0.1))
    settings = ProtocolSettings(
        "cv", [str(config)], str(out), scale=0.05, root=str(tmp_path / "root")
    )
    with pytest.raises(ConfigError, match="lrr"):
        run_protocol(settings)
    assert_nothing_written(tmp_path)
    # The corrected file is accepted: nothing was recorded against it.
    corrected = edited(tmp_path, lambda raw: None)
    assert load_config(corrected).model == SOURCE["model"]


def test_values_are_read_as_lightning_cli_reads_them(tmp_path: Path) -> None:
    """PyYAML reads ``1e-3`` as a string; the class gets the float."""
    _, parsed = check_section(
        "x.yaml", "model", SOURCE["model"]["class_path"], {"lr": "1e-3"}
    )
    assert parsed.model.lr == pytest.approx(0.001)


def test_damaged_checkpoint_stops_before_training(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A truncated ``last.ckpt``: a clear error naming the file, nothing deleted."""
    config = edited(tmp_path, lambda raw: None)
    out = tmp_path / "out"
    run = RunSpec("cv", "sar_ftp", "fold0", 0, "cv", fold=0)
    last = run.directory(out) / "checkpoints" / "last.ckpt"
    last.parent.mkdir(parents=True)
    torch.save({"state_dict": {"w": torch.zeros(1000)}}, last)
    last.write_bytes(last.read_bytes()[:1000])  # killed while writing it
    assert run_cli(config, out, tmp_path / "root") == 1
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert f"cannot resume run sar_ftp/fold0/seed0: its checkpoint {last}" in err
    assert f"Delete that file, or the run's folder {run.directory(out)}" in err
    assert "restarts from its first epoch" in err
    assert last.is_file()  # the user decides
    assert not (out / "protocol.json").exists()
    assert not (tmp_path / "root").exists()
    with pytest.raises(DamagedRunError):
        run_protocol(
            ProtocolSettings(
                "cv", [str(config)], str(out), scale=0.05, root=str(tmp_path / "root")
            )
        )
