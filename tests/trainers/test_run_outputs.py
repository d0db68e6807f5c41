"""Where a run's outputs go, and what it says when it ends or is interrupted."""

from __future__ import annotations

import warnings
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.utilities.exceptions import SIGTERMException

from torchgeo_quake.cli import main
from torchgeo_quake.trainers import (
    DamagePredictionWriter,
    RunCSVLogger,
    RunDirectory,
    RunSummary,
    RunTensorBoardLogger,
)
from torchgeo_quake.trainers.callbacks import command_with
from torchgeo_quake.utils import plain_warnings, under_root_dir


def _trainer(root: Path, **kwargs: object) -> SimpleNamespace:
    values = {
        "default_root_dir": str(root),
        "loggers": [],
        "checkpoint_callbacks": [],
        "world_size": 1,
    }
    values.update(kwargs)
    return SimpleNamespace(**values)


def test_under_root_dir(tmp_path: Path) -> None:
    trainer = _trainer(tmp_path / "run")
    assert under_root_dir("splits.json", trainer) == tmp_path / "run" / "splits.json"
    assert under_root_dir(tmp_path / "a.json", trainer) == tmp_path / "a.json"
    assert under_root_dir("splits.json", None) == Path("splits.json")


def test_run_directory_places_loggers_and_checkpoints(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    csv, board = RunCSVLogger(), RunTensorBoardLogger(save_dir="logs")
    fixed = tmp_path / "fixed"
    free, given = ModelCheckpoint(), ModelCheckpoint(dirpath=fixed)
    # Before the run starts the loggers have no experiment (Lightning skips
    # them), so nothing is made in the current folder.
    assert not hasattr(csv, "experiment")
    with pytest.raises(AttributeError, match="RunDirectory"):
        board.experiment  # noqa: B018
    _ = csv.version  # asked early: recounted once placed
    root = tmp_path / "run"
    (root / "csv" / "version_0").mkdir(parents=True)  # an earlier run
    trainer = _trainer(root, loggers=[csv, board], checkpoint_callbacks=[free, given])
    RunDirectory().setup(trainer, None, "fit")  # type: ignore[arg-type]
    assert csv.log_dir == str(root / "csv" / "version_1")
    assert board.log_dir == str(root / "logs" / "tensorboard" / "version_0")
    assert free.dirpath == str(root / "checkpoints")
    assert given.dirpath == str(fixed)
    csv.experiment.save()
    assert (root / "csv" / "version_1").is_dir()
    assert list(cwd.iterdir()) == []


def test_prediction_writer_under_root(tmp_path: Path) -> None:
    trainer = _trainer(tmp_path / "run")
    writer = DamagePredictionWriter()
    assert writer.path(trainer) == tmp_path / "run" / "predictions.csv"  # type: ignore[arg-type]


def test_command_with() -> None:
    argv = [
        "/usr/bin/torchgeo",
        "fit",
        "--config",
        "my config.yaml",
        "--trainer.max_epochs=3",
        "--trainer.default_root_dir",
        "out",
        "--ckpt_path",
        "old.ckpt",
        "--data.init_args.root",
        "data/x",
    ]
    assert command_with("fit", "last.ckpt", argv) == (
        "torchgeo fit --config 'my config.yaml' --trainer.max_epochs=3 "
        "--trainer.default_root_dir out --data.init_args.root data/x "
        "--ckpt_path last.ckpt"
    )
    assert command_with("test", "best.ckpt", argv, keep_fit_options=False) == (
        "torchgeo test --config 'my config.yaml' --trainer.default_root_dir out "
        "--data.init_args.root data/x --ckpt_path best.ckpt"
    )
    # Not started by `torchgeo fit` (e.g. from Python): a template.
    assert command_with("fit", "l.ckpt", ["python"]) == (
        "torchgeo fit --config CONFIG --ckpt_path l.ckpt"
    )


def test_resume_hint(tmp_path: Path) -> None:
    summary = RunSummary()
    none = _trainer(tmp_path, checkpoint_callbacks=[ModelCheckpoint()])
    hint = summary.resume_hint(none)  # type: ignore[arg-type]
    assert hint.startswith("interrupted before a checkpoint was written")
    last = tmp_path / "last.ckpt"
    last.write_bytes(b"")
    checkpoint = ModelCheckpoint()
    checkpoint.last_model_path = str(last)
    trainer = _trainer(tmp_path, checkpoint_callbacks=[checkpoint])
    hint = summary.resume_hint(trainer)  # type: ignore[arg-type]
    assert f"--ckpt_path {last}" in hint and hint.startswith("interrupted")


def test_sigterm_exits_143_with_the_hint(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Lightning's SIGTERMException is SystemExit() (status 0): `torchgeo fit`
    # stopped by a scheduler would look finished.
    summary = RunSummary()
    trainer = _trainer(tmp_path, checkpoint_callbacks=[ModelCheckpoint()])
    trainer.is_global_zero = True
    exception = SIGTERMException()
    assert exception.code is None
    with caplog.at_level("INFO"):
        summary.on_exception(trainer, None, exception)  # type: ignore[arg-type]
    assert exception.code == 143
    assert "SIGTERM: interrupted before a checkpoint was written" in caplog.text
    # Ctrl-C keeps its own exception.
    interrupt = KeyboardInterrupt()
    summary.on_exception(trainer, None, interrupt)  # type: ignore[arg-type]
    assert not hasattr(interrupt, "code")


def test_summary_names_best_epoch_and_files(tmp_path: Path) -> None:
    summary = RunSummary()
    summary.epochs = {
        0: {"val_f1": 0.5, "val_threshold": 0.3, "val_loss": 0.7},
        1: {"val_f1": 0.66, "val_precision": 0.7, "val_threshold": 0.42},
        2: {"val_f1": 0.6, "val_threshold": 0.5},
    }
    checkpoint = ModelCheckpoint(monitor="val_f1", mode="max")
    checkpoint.best_model_path = str(tmp_path / "best.ckpt")
    checkpoint.last_model_path = str(tmp_path / "last.ckpt")
    trainer = _trainer(
        tmp_path,
        current_epoch=3,
        max_epochs=10,
        checkpoint_callback=checkpoint,
        log_dir=str(tmp_path / "csv" / "version_0"),
        loggers=[object()],
    )
    text = summary.summary(trainer)  # type: ignore[arg-type]
    assert "fit done: 3 epoch(s)" in text and "(stopped before max_epochs 10)" in text
    assert (
        "best epoch 1 (by val_f1): val_f1 0.660, val_precision 0.700 at "
        "val_threshold 0.420" in text
    )
    assert f"best checkpoint: {tmp_path / 'best.ckpt'}" in text
    assert f"last checkpoint: {tmp_path / 'last.ckpt'}" in text
    assert "test it: torchgeo test" in text
    # Resumed, with a better epoch before the resume: no epoch to name.
    checkpoint.best_model_score = torch.tensor(0.7)
    text = summary.summary(trainer)  # type: ignore[arg-type]
    assert "best val_f1 0.700, before the resume" in text and "best epoch" not in text


def test_plain_warnings() -> None:
    before = warnings.formatwarning
    with warnings.catch_warnings(), plain_warnings("tool: warning"):
        warnings.simplefilter("always")
        # What Python's display prints: no file, line or source line.
        text = warnings.formatwarning("3 skipped", UserWarning, "f.py", 3, "src()")
        assert text == "tool: warning: 3 skipped\n"
        other = warnings.formatwarning("old", DeprecationWarning, "f.py", 3, "x")
        assert other == "f.py:3: DeprecationWarning: old\n"
        # Recording (pytest.warns) still sees the warning itself.
        with pytest.warns(UserWarning, match="recorded"):
            warnings.warn("recorded", UserWarning, stacklevel=1)
    assert warnings.formatwarning is before


@pytest.mark.parametrize(
    ("stop", "status", "said"),
    [
        (KeyboardInterrupt, 130, "interrupted"),
        # Lightning raises SIGTERMException, a SystemExit with status 0, when
        # the process gets SIGTERM (a scheduler's time limit): it must fail.
        (SIGTERMException, 143, "terminated (SIGTERM)"),
    ],
)
def test_protocol_stop_names_the_command(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    stop: type[BaseException],
    status: int,
    said: str,
) -> None:
    import torchgeo_quake.protocols.command as command

    def stopped(args: object) -> int:
        raise stop

    monkeypatch.setattr(command, "protocol_cli", stopped)
    assert main(["protocol", "cv", "--out", "runs/my cv"]) == status
    err = capsys.readouterr().err
    assert f"torchgeo-quake protocol: {said}: " in err
    assert "to resume, run: torchgeo-quake protocol cv --out 'runs/my cv'" in err


def test_other_system_exit_is_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    import torchgeo_quake.protocols.command as command

    def exits(args: object) -> int:
        raise SystemExit(3)

    monkeypatch.setattr(command, "protocol_cli", exits)
    with pytest.raises(SystemExit) as info:
        main(["protocol", "loco", "--out", "runs/loco"])
    assert info.value.code == 3


def test_summary_shows_warnings_as_messages_while_it_runs(tmp_path: Path) -> None:
    before = warnings.formatwarning
    RunSummary()  # not the torchgeo command: warnings as they were
    assert warnings.formatwarning is before
    summary = RunSummary(plain_warnings=True)
    text = warnings.formatwarning("a data warning", UserWarning, "f.py", 1, "x")
    assert text == "warning: a data warning\n"
    summary.teardown(_trainer(tmp_path), None, "fit")  # type: ignore[arg-type]
    assert warnings.formatwarning is before
