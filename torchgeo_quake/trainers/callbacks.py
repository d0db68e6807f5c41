"""Tell the user what a run did: a summary after ``fit``, a resume hint on Ctrl-C.

.. versionadded:: 0.2
"""

from __future__ import annotations

import contextlib
import os
import shlex
import sys
import time
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from lightning.pytorch.utilities import rank_zero_info
from lightning.pytorch.utilities.exceptions import SIGTERMException
from typing_extensions import override

from ..utils import SIGTERM_EXIT_STATUS
from ..utils import plain_warnings as _plain_warnings

__all__ = ["RunSummary", "last_checkpoint"]

#: Validation metrics in the order the summary names them (others follow).
_ORDER = (
    "val_f1",
    "val_precision",
    "val_recall",
    "val_kappa",
    "val_auroc",
    "val_ap",
    "val_loss",
)

#: Options of how long and how ``fit`` trains, left out of the ``test`` hint.
_FIT_ONLY = (
    "--ckpt_path",
    "--seed_everything",
    "--trainer.max_epochs",
    "--trainer.min_epochs",
    "--trainer.max_steps",
    "--trainer.min_steps",
    "--trainer.max_time",
    "--trainer.limit_train_batches",
    "--trainer.limit_val_batches",
    "--trainer.val_check_interval",
    "--trainer.check_val_every_n_epoch",
    "--trainer.log_every_n_steps",
)


def _duration(seconds: float) -> str:
    """A duration as people read it.

    Args:
        seconds: the duration

    Returns:
        E.g. ``"42 s"`` or ``"7 min 26 s"``.
    """
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes} min {secs} s" if minutes else f"{secs} s"


def _options(argv: Sequence[str]) -> list[list[str]]:
    """Group command-line words into options with their values.

    Args:
        argv: the words after the subcommand

    Returns:
        One list per option: ``["--a=1"]``, ``["--a", "1"]`` or a lone word.
    """
    groups: list[list[str]] = []
    for word in argv:
        takes_value = (
            groups
            and groups[-1][0].startswith("--")
            and "=" not in groups[-1][0]
            and len(groups[-1]) == 1
        )
        if takes_value and not word.startswith("--"):
            groups[-1].append(word)
        else:
            groups.append([word])
    return groups


def command_with(
    subcommand: str,
    ckpt_path: str | os.PathLike[str],
    argv: Sequence[str] | None = None,
    keep_fit_options: bool = True,
) -> str:
    """The ``torchgeo`` command of this run, for another subcommand or checkpoint.

    Args:
        subcommand: ``"fit"``, ``"test"``, ...
        ckpt_path: the checkpoint to pass with ``--ckpt_path``
        argv: the run's command line (default: ``sys.argv``)
        keep_fit_options: keep the options of how long and how ``fit``
            trains (``--trainer.max_epochs``, ``--trainer.limit_train_batches``,
            ...; ``--ckpt_path`` is always replaced)

    Returns:
        A command to copy, e.g. ``torchgeo fit --config c.yaml --ckpt_path
        runs/c/checkpoints/last.ckpt``; when the run was not started by
        ``torchgeo <subcommand> ...`` (e.g. from Python), one with
        ``--config CONFIG`` in place of the run's options.

    .. versionadded:: 0.2
    """
    words = list(sys.argv if argv is None else argv)
    options = words[2:] if len(words) > 1 and words[1] == "fit" else []
    kept: list[str] = []
    for group in _options(options):
        name = group[0].split("=", 1)[0]
        if name == "--ckpt_path":
            continue
        if not keep_fit_options and name in _FIT_ONLY:
            continue
        kept.extend(group)
    if not kept:
        kept = ["--config", "CONFIG"]
    return shlex.join(["torchgeo", subcommand, *kept, "--ckpt_path", str(ckpt_path)])


def last_checkpoint(trainer: pl.Trainer) -> str:
    """The path of the run's resumable checkpoint (``last.ckpt``).

    That is the ``last_model_path`` of a ``ModelCheckpoint`` with
    ``save_last``, else the file of one without a monitored metric (which
    keeps the latest epoch: ``filename: last``, ``monitor: null``, as in the
    experiment configurations, whose ``best.ckpt`` holds the weights only).

    Args:
        trainer: the trainer

    Returns:
        The path, or ``""`` when no checkpoint callback has written one.

    .. versionadded:: 0.3
    """
    callbacks = [getattr(trainer, "checkpoint_callback", None)]
    callbacks += list(getattr(trainer, "checkpoint_callbacks", []))
    checkpoints = [c for c in callbacks if isinstance(c, ModelCheckpoint)]
    for callback in checkpoints:
        if callback.last_model_path:
            return callback.last_model_path
    for callback in checkpoints:
        if callback.monitor is None and callback.best_model_path:
            return callback.best_model_path
    return ""


class RunSummary(Callback):
    """Print a short summary after ``fit`` and a resume hint on Ctrl-C.

    After training, on rank 0: the epochs trained and the time taken, the best
    epoch by the checkpoint's monitored metric (``val_f1`` in the experiment
    configurations) with its validation metrics at the stored validation
    threshold, the paths of the best and the last checkpoint, and the command
    that tests the best one. When the run is interrupted (Ctrl-C), it names
    the last checkpoint and the command that resumes from it, or says that no
    epoch finished.

    The messages go through Lightning's ``lightning.pytorch`` logger at level
    INFO, like Lightning's own. Run by the ``torchgeo`` command, it also shows
    warnings as one-line messages, without the source line Python adds.

    .. versionadded:: 0.2
    .. versionchanged:: 0.3
       The last checkpoint may come from a second ``ModelCheckpoint``
       (:func:`last_checkpoint`), beside a weights-only ``best.ckpt``.
    """

    def __init__(self, plain_warnings: bool | None = None) -> None:
        """Initialize a new RunSummary instance.

        Args:
            plain_warnings: show warnings as one-line messages
                (:func:`~torchgeo_quake.utils.plain_warnings`) from now to the
                end of the run, so that those of setting up the data (which
                come before any callback hook) read well too; None: only when
                the process is the ``torchgeo`` command and warnings have
                Python's display (not in a library call or a test)
        """
        super().__init__()
        #: Validation metrics of every epoch of this fit, by epoch.
        self.epochs: dict[int, dict[str, float]] = {}
        self._start = time.perf_counter()
        self._warnings = contextlib.ExitStack()
        if plain_warnings is None:
            # The `torchgeo` command, with Python's display of warnings (not
            # one that records them, such as pytest's).
            default = getattr(warnings, "_showwarning_orig", None)
            plain_warnings = (
                Path(sys.argv[0]).name == "torchgeo" and warnings.showwarning is default
            )
        if plain_warnings:
            self._warnings.enter_context(_plain_warnings("warning"))

    @override
    def teardown(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str
    ) -> None:
        """Restore Python's display of warnings.

        Args:
            trainer: the trainer
            pl_module: the task
            stage: the stage that ends
        """
        self._warnings.close()

    @override
    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Start the clock.

        Args:
            trainer: the trainer
            pl_module: the task
        """
        self.epochs = {}
        self._start = time.perf_counter()

    @override
    def on_validation_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule
    ) -> None:
        """Keep the validation metrics of the epoch.

        Args:
            trainer: the trainer
            pl_module: the task
        """
        if trainer.sanity_checking or trainer.state.fn != "fit":
            return
        metrics = {
            k: float(v)
            for k, v in trainer.callback_metrics.items()
            if k.startswith("val_") and getattr(v, "numel", lambda: 1)() == 1
        }
        if metrics:
            self.epochs[int(trainer.current_epoch)] = metrics

    @override
    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Print the summary.

        Args:
            trainer: the trainer
            pl_module: the task
        """
        if trainer.is_global_zero and not getattr(trainer, "fast_dev_run", False):
            rank_zero_info(self.summary(trainer))

    def summary(self, trainer: pl.Trainer) -> str:
        """The end-of-fit summary.

        Args:
            trainer: the trainer, after fitting

        Returns:
            A few lines of text.
        """
        epochs = int(trainer.current_epoch)
        lines = [
            f"fit done: {epochs} epoch(s) in "
            f"{_duration(time.perf_counter() - self._start)}"
            + (
                f" (stopped before max_epochs {trainer.max_epochs})"
                if trainer.max_epochs and epochs < trainer.max_epochs
                else ""
            )
        ]
        checkpoint = trainer.checkpoint_callback
        best = self._best_epoch(checkpoint)
        monitor = getattr(checkpoint, "monitor", None) or "val_f1"
        score = getattr(checkpoint, "best_model_score", None)
        if best is not None and (
            score is None or abs(float(score) - best[1][monitor]) < 1e-6
        ):
            epoch, metrics = best
            lines.append(f"best epoch {epoch} (by {monitor}): {_metrics_text(metrics)}")
        elif score is not None:  # resumed: the best epoch came before
            lines.append(f"best {monitor} {float(score):.3f}, before the resume")
        if isinstance(checkpoint, ModelCheckpoint) and checkpoint.best_model_path:
            lines.append(f"  best checkpoint: {checkpoint.best_model_path}")
        last = last_checkpoint(trainer)
        if last:
            lines.append(f"  last checkpoint: {last}")
        if trainer.log_dir and trainer.loggers:
            lines.append(f"  logs: {trainer.log_dir}")
        if isinstance(checkpoint, ModelCheckpoint) and checkpoint.best_model_path:
            test = command_with(
                "test", checkpoint.best_model_path, keep_fit_options=False
            )
            lines.append(f"test it: {test}")
        return "\n".join(lines)

    def _best_epoch(self, checkpoint: Any) -> tuple[int, dict[str, float]] | None:
        """The best epoch of this fit by the checkpoint's monitored metric.

        Args:
            checkpoint: the trainer's first checkpoint callback (or None)

        Returns:
            The epoch and its validation metrics, or None when no epoch was
            validated.
        """
        if not self.epochs:
            return None
        monitor = getattr(checkpoint, "monitor", None) or "val_f1"
        scored = {e: m for e, m in self.epochs.items() if monitor in m}
        if not scored:
            return None
        sign = -1.0 if getattr(checkpoint, "mode", "max") == "min" else 1.0
        epoch = max(sorted(scored), key=lambda e: sign * scored[e][monitor])
        return epoch, scored[epoch]

    @override
    def on_exception(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        exception: BaseException,
    ) -> None:
        """Say how to resume after Ctrl-C or SIGTERM.

        Lightning stops a run that receives SIGTERM (a job scheduler's time
        limit) with ``SIGTERMException``, a ``SystemExit`` of status 0; its
        status is set to 143 (128 + 15, as a shell reports a SIGTERM), so that
        ``torchgeo fit`` does not look finished to a job script.

        Args:
            trainer: the trainer
            pl_module: the task
            exception: what stopped the run

        .. versionchanged:: 0.3
           SIGTERM: the hint, and exit status 143.
        """
        if isinstance(exception, SIGTERMException):
            exception.code = SIGTERM_EXIT_STATUS
            if trainer.is_global_zero:
                rank_zero_info(f"SIGTERM: {self.resume_hint(trainer)}")
        elif isinstance(exception, KeyboardInterrupt) and trainer.is_global_zero:
            rank_zero_info(self.resume_hint(trainer))

    def resume_hint(self, trainer: pl.Trainer) -> str:
        """What to do after an interruption.

        Args:
            trainer: the interrupted trainer

        Returns:
            The command that resumes from the last checkpoint, or a note that
            there is none.
        """
        last = last_checkpoint(trainer)
        if not (last and Path(last).is_file()):
            return (
                "interrupted before a checkpoint was written (the first "
                "epoch had not ended): run the same command again to start over"
            )
        return (
            f"interrupted; the last checkpoint is {last}. Resume with:\n"
            f"  {command_with('fit', last)}"
        )


def _metrics_text(metrics: Mapping[str, float]) -> str:
    """Validation metrics as one line.

    Args:
        metrics: ``val_*`` metrics

    Returns:
        E.g. ``val_f1 0.661, val_precision 0.702, ... at val_threshold 0.42``.
    """
    names = [n for n in _ORDER if n in metrics]
    names += sorted(n for n in metrics if n not in _ORDER and n != "val_threshold")
    text = ", ".join(f"{n} {metrics[n]:.3f}" for n in names)
    if "val_threshold" in metrics:
        text += f" at val_threshold {metrics['val_threshold']:.3f}"
    return text
