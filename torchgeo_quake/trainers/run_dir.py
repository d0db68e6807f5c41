"""Put every output of a run under the trainer's ``default_root_dir``.

Lightning's ``Trainer(default_root_dir=...)`` is the root of a run's logs and
checkpoints only when no logger and no checkpoint folder are given. The
experiment configurations (``experiments/*.yaml``) give both, so that a run
keeps the layout the documentation names::

    <default_root_dir>/checkpoints/best.ckpt, last.ckpt
    <default_root_dir>/csv/version_<n>/metrics.csv (and LightningCLI's config.yaml)
    <default_root_dir>/tensorboard/version_<n>/
    <default_root_dir>/predictions.csv
    <default_root_dir>/splits.json

and still follow ``--trainer.default_root_dir``. The rule is the same for every
output path of a run: a relative path is relative to the trainer's
``default_root_dir`` (the current folder when it is not set, as in Lightning),
an absolute path is kept. :class:`RunDirectory` applies it when the run starts
to the loggers of this module (:class:`RunCSVLogger`,
:class:`RunTensorBoardLogger`) and to every ``ModelCheckpoint`` without a
``dirpath`` (which then writes to ``<default_root_dir>/checkpoints``, as
Lightning's does without loggers);
:class:`~torchgeo_quake.trainers.DamagePredictionWriter` and the data modules'
``splits_file`` follow the same rule.

.. versionadded:: 0.2
"""

from __future__ import annotations

import os
from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger
from typing_extensions import override

from ..utils import under_root_dir

__all__ = ["RunCSVLogger", "RunDirectory", "RunTensorBoardLogger"]

#: The checkpoint folder of a run, below its ``default_root_dir``.
CHECKPOINT_DIR = "checkpoints"


class _Rooted:
    """Mixin of a logger whose ``save_dir`` is relative to the run's root.

    Until :class:`RunDirectory` gives it the root, the logger has no
    experiment: Lightning asks for it before any callback knows the trainer,
    and creating it then would make folders relative to the current folder.
    """

    _relative: str
    _rooted: bool
    _next_version: bool
    _version: int | str | None

    def _place(self, folder: str) -> None:
        """Give the logger its folder (its ``save_dir``).

        Args:
            folder: the folder, under the trainer's ``default_root_dir``
        """
        if self._rooted:  # placed by an earlier stage: keep its folder
            return
        # Lightning's loggers keep it in `_root_dir` (both) and `_save_dir`
        # (CSV); set both.
        self._root_dir = folder
        self._save_dir = folder
        if self._next_version:
            # Lightning may have asked for the version before the logger had
            # its folder: count the versions of the right one.
            self._version = None
        self._rooted = True

    def _open(self) -> None:
        """Create the experiment (and its folder) now.

        As Lightning does for its loggers before any callback writes into
        their folder (LightningCLI's ``config.yaml``).
        """
        _ = self.experiment  # type: ignore[attr-defined]

    def _check_rooted(self) -> None:
        """Refuse to write before the root is known.

        Raises:
            AttributeError: If :class:`RunDirectory` has not placed the logger
                yet (Lightning's ``hasattr(logger, "experiment")`` then skips
                it until it is).
        """
        if not self._rooted:
            raise AttributeError(
                f"{type(self).__name__} has no folder yet: it is placed under "
                "the trainer's default_root_dir by the "
                "torchgeo_quake.trainers.RunDirectory callback; add that callback "
                "to trainer.callbacks"
            )


class RunCSVLogger(_Rooted, CSVLogger):
    """Lightning's :class:`~lightning.pytorch.loggers.CSVLogger`, under the run's root.

    Logs to ``<default_root_dir>/<save_dir>/<name>/version_<n>/metrics.csv``
    (``save_dir`` ``"."``: the run's root itself). Needs the
    :class:`RunDirectory` callback, which places it when the run starts.

    .. versionadded:: 0.2
    """

    def __init__(
        self,
        save_dir: str | os.PathLike[str] = ".",
        name: str | None = "csv",
        version: int | str | None = None,
        prefix: str = "",
        flush_logs_every_n_steps: int = 100,
    ) -> None:
        """Initialize a new RunCSVLogger instance.

        Args:
            save_dir: folder of the logs, relative to the trainer's
                ``default_root_dir`` (an absolute path is kept)
            name: experiment name, a sub-folder of *save_dir*
            version: experiment version (default: the next free one)
            prefix: text put before every metric name
            flush_logs_every_n_steps: how often the file is written
        """
        super().__init__(
            os.fspath(save_dir),
            name=name,
            version=version,
            prefix=prefix,
            flush_logs_every_n_steps=flush_logs_every_n_steps,
        )
        self._relative = os.fspath(save_dir)
        self._rooted = False
        self._next_version = version is None

    @property
    @override
    def experiment(self) -> Any:
        """The CSV writer (created once the logger is placed).

        Returns:
            Lightning's experiment writer.
        """
        self._check_rooted()
        return super().experiment


class RunTensorBoardLogger(_Rooted, TensorBoardLogger):
    """Lightning's TensorBoard logger, under the run's root.

    Logs to ``<default_root_dir>/<save_dir>/<name>/version_<n>/``
    (``tensorboard --logdir <default_root_dir>/tensorboard``). Needs the
    :class:`RunDirectory` callback, which places it when the run starts.

    .. versionadded:: 0.2
    """

    def __init__(
        self,
        save_dir: str | os.PathLike[str] = ".",
        name: str | None = "tensorboard",
        version: int | str | None = None,
        log_graph: bool = False,
        default_hp_metric: bool = True,
        prefix: str = "",
    ) -> None:
        """Initialize a new RunTensorBoardLogger instance.

        Args:
            save_dir: folder of the logs, relative to the trainer's
                ``default_root_dir`` (an absolute path is kept)
            name: experiment name, a sub-folder of *save_dir*
            version: experiment version (default: the next free one)
            log_graph: add the model's graph
            default_hp_metric: log a placeholder ``hp_metric``
            prefix: text put before every metric name
        """
        super().__init__(
            os.fspath(save_dir),
            name=name,
            version=version,
            log_graph=log_graph,
            default_hp_metric=default_hp_metric,
            prefix=prefix,
        )
        self._relative = os.fspath(save_dir)
        self._rooted = False
        self._next_version = version is None

    @property
    @override
    def experiment(self) -> Any:
        """The TensorBoard writer (created once the logger is placed).

        Returns:
            The ``SummaryWriter``.
        """
        self._check_rooted()
        return super().experiment


class RunDirectory(Callback):
    """Place a run's loggers and checkpoints under ``trainer.default_root_dir``.

    When a run (fit, validate, test or predict) starts, before anything is
    written, it puts :class:`RunCSVLogger` and :class:`RunTensorBoardLogger`
    under the trainer's ``default_root_dir`` and gives every
    ``ModelCheckpoint`` without ``dirpath`` the folder
    ``<default_root_dir>/checkpoints``. Other loggers, and checkpoints with a
    ``dirpath``, are left as given.

    .. versionadded:: 0.2
    """

    @override
    def setup(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str
    ) -> None:
        """Place the loggers and checkpoint folders.

        Args:
            trainer: the trainer
            pl_module: the task
            stage: ``"fit"``, ``"validate"``, ``"test"`` or ``"predict"``
        """
        for logger in trainer.loggers:
            if isinstance(logger, _Rooted):
                logger._place(str(under_root_dir(logger._relative, trainer)))
                logger._open()
        for callback in trainer.checkpoint_callbacks:
            if isinstance(callback, ModelCheckpoint) and callback.dirpath is None:
                callback.dirpath = str(under_root_dir(CHECKPOINT_DIR, trainer))
