"""Write the predictions of ``torchgeo predict`` to a CSV table."""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import BasePredictionWriter
from lightning.pytorch.utilities import rank_zero_info
from torch import Tensor

from ..utils import under_root_dir

__all__ = ["PREDICTION_COLUMNS", "DamagePredictionWriter"]

#: Columns of the prediction table, in order.
PREDICTION_COLUMNS = (
    "building_id",
    "city",
    "x",
    "y",
    "prob",
    "pred",
    "label",
    "threshold",
)


def _values(value: Any, n: int) -> list[Any]:
    """Turn a batch entry into *n* plain Python values.

    Args:
        value: Tensor, sequence or None.
        n: Batch size.

    Returns:
        A list of *n* values ("" where *value* is None).
    """
    if value is None:
        return [""] * n
    if isinstance(value, Tensor):
        return list(value.detach().cpu().tolist())
    return list(value)


class DamagePredictionWriter(BasePredictionWriter):
    """Write building-level damage predictions to a CSV file.

    Added to the trainer's callbacks (as in ``experiments/*.yaml``), it makes
    ``torchgeo predict --config ... --ckpt_path ...`` save one row per
    predicted building, with the columns of :data:`PREDICTION_COLUMNS`:

    * ``building_id`` (OSM id) and ``city``;
    * ``x``, ``y``: the building centroid in the CRS of its city's SAR image;
    * ``prob``: predicted probability of damage;
    * ``pred``: 1 (damaged) where ``prob >= threshold``, else 0, as computed by
      :meth:`~torchgeo_quake.trainers.DamageDetectionTask.predict_step`;
    * ``label``: the reference label (1 = damaged) when the batches have one,
      else empty;
    * ``threshold``: the decision threshold used, the validation threshold
      stored in the checkpoint (0.5 with a warning when none was stored).

    Values missing from the batches are left empty. The file is rewritten by
    every prediction epoch; under distributed prediction every process writes
    its own file, ``<stem>.rank<N><suffix>``.

    .. versionadded:: 0.1
    .. versionchanged:: 0.2
       A relative ``output_file`` is relative to the trainer's
       ``default_root_dir`` (the current folder when it is not set, as before).
    """

    def __init__(self, output_file: str | os.PathLike[str] = "predictions.csv") -> None:
        """Initialize a new DamagePredictionWriter instance.

        Args:
            output_file: CSV file to write (parent folders are created); a
                relative path is relative to the trainer's ``default_root_dir``.
        """
        super().__init__(write_interval="batch")
        self.output_file = Path(output_file)
        #: Rows written in the current (or last) prediction epoch.
        self.rows = 0
        self._file: IO[str] | None = None
        self._writer: Any = None

    def path(self, trainer: pl.Trainer) -> Path:
        """The file this process writes.

        Args:
            trainer: The trainer.

        Returns:
            :attr:`output_file` (below the trainer's ``default_root_dir`` when
            relative), with the rank inserted when distributed.
        """
        out = under_root_dir(self.output_file, trainer)
        if trainer.world_size > 1:
            return out.with_name(f"{out.stem}.rank{trainer.global_rank}{out.suffix}")
        return out

    def on_predict_epoch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule
    ) -> None:
        """Create the file and write the header.

        Args:
            trainer: The trainer.
            pl_module: The task.
        """
        self._close()
        path = self.path(trainer)
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file = path.open("w", newline="", encoding="utf-8")
        self._writer = csv.writer(self._file)
        self._writer.writerow(PREDICTION_COLUMNS)
        self.rows = 0

    def write_on_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        prediction: Any,
        batch_indices: Sequence[int] | None,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int,
    ) -> None:
        """Append the rows of one batch.

        Args:
            trainer: The trainer.
            pl_module: The task.
            prediction: The output of ``predict_step``: a dict with ``prob``,
                ``pred`` and optionally ``building_id``, ``city``,
                ``centroid`` (``(B, 2)``) and ``label``.
            batch_indices: Indices of the batch's samples in the dataset.
            batch: The batch.
            batch_idx: Index of the batch.
            dataloader_idx: Index of the data loader.

        Raises:
            TypeError: If *prediction* is not a dict with ``prob`` and ``pred``.
        """
        if not isinstance(prediction, dict) or not {"prob", "pred"} <= set(prediction):
            raise TypeError(
                "DamagePredictionWriter needs predict_step to return a dict with "
                "'prob' and 'pred' (as DamageDetectionTask does), got "
                f"{type(prediction).__name__}"
            )
        if self._writer is None:  # predict loop started without the hook
            self.on_predict_epoch_start(trainer, pl_module)
        probs = prediction["prob"]
        n = int(probs.shape[0])
        centroid = prediction.get("centroid")
        xs = ys = None
        if isinstance(centroid, Tensor):
            xs, ys = centroid[:, 0], centroid[:, 1]
        threshold = getattr(pl_module, "threshold", None)
        thr = float(threshold) if isinstance(threshold, Tensor) else ""
        columns = [
            _values(prediction.get("building_id"), n),
            _values(prediction.get("city"), n),
            _values(xs, n),
            _values(ys, n),
            _values(probs.float(), n),
            _values(prediction["pred"].to(torch.int64), n),
            _values(prediction.get("label"), n),
            [thr] * n,
        ]
        self._writer.writerows(zip(*columns, strict=True))
        self.rows += n

    def on_predict_epoch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule
    ) -> None:
        """Close the file and report it.

        Args:
            trainer: The trainer.
            pl_module: The task.
        """
        self._close()
        rank_zero_info(f"wrote {self.rows} predictions to {self.path(trainer)}")

    def on_exception(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        exception: BaseException,
    ) -> None:
        """Close the file when prediction fails.

        Args:
            trainer: The trainer.
            pl_module: The task.
            exception: The exception.
        """
        self._close()

    def _close(self) -> None:
        """Close the open file, if any."""
        if self._file is not None:
            self._file.close()
        self._file = None
        self._writer = None
