"""Validation and test epochs of the damage task: predictions, threshold, metrics.

:class:`EvaluationMixin` holds the evaluation half of
:class:`~torchgeo_quake.trainers.DamageDetectionTask`: its validation and test
steps keep the logits of every batch, and at the end of an epoch it gathers
them over all processes (:mod:`~torchgeo_quake.trainers.collection`), fits the
calibration and chooses the best-F1 threshold on validation, and logs the
metrics of the damaged class.

.. versionadded:: 0.3
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import torch.nn as nn
from lightning.pytorch import LightningModule
from torch import Tensor

from .calibration import CalibrationMixin
from .collection import (
    EpochOutputs,
    EpochPredictions,
    choose_threshold,
    epoch_predictions,
    fit_calibration,
    logged_test_values,
    logged_validation_values,
)

__all__ = ["EvaluationMixin"]


class EvaluationMixin(CalibrationMixin, LightningModule):
    """Validation and test steps and epoch ends of a binary damage task.

    For a :class:`~lightning.pytorch.LightningModule` whose forward pass
    returns float32 damage logits of shape ``(B,)``, and that defines
    ``criterion`` (the loss on logits), the float buffers ``threshold`` and
    ``threshold_set``, the dict :attr:`last_predictions`, and the batch check
    :meth:`_check_batch`; it calls :meth:`configure_metrics` when built (as
    :class:`torchgeo.trainers.BaseTask` does).

    Validation and test gather the predictions of the whole epoch (over all
    processes; samples that the distributed sampler repeats to even out the
    processes are counted once when batches carry ``building_id``). At the end
    of each validation epoch, Platt scaling
    (:mod:`~torchgeo_quake.trainers.calibration`) is fitted on the epoch's
    logits and stored in the calibration buffers, so that the checkpoint of the
    best epoch carries the calibration of that epoch. Logged, for the damaged
    class:

    * ``val_loss``, ``val_auroc``, ``val_ap`` and ``val_precision``,
      ``val_recall``, ``val_f1``, ``val_kappa`` at ``val_threshold``, the
      threshold maximising F1 on the validation precision–recall curve of the
      calibrated probabilities (the paper's choice). It is stored in the
      ``threshold`` buffer, so the checkpoint of the best epoch carries it.
      Without damaged buildings in the validation set the stored threshold is
      kept (and logged).
    * ``test_loss``, ``test_auroc``, ``test_ap``; ``test_precision_valthr``,
      ``test_recall_valthr``, ``test_f1_valthr``, ``test_kappa_valthr`` at the
      stored validation threshold (``test_threshold_valthr``), the figures a
      deployed model achieves; ``test_precision_oracle``,
      ``test_recall_oracle``, ``test_f1_oracle``, ``test_kappa_oracle`` at
      ``test_threshold_oracle``, the best-F1 threshold *of the test set* as in
      the paper (an oracle: chosen on the data it is scored on, so optimistic
      and not achievable in deployment; named ``test_f1`` etc. before 0.3);
      and the calibration: ``test_brier``, ``test_ece``,
      ``test_count_expected`` (sum of the probabilities),
      ``test_count_observed`` and ``test_count_thresholded`` (at the stored
      validation threshold).

    The predictions of the last validation and test epochs are kept in
    :attr:`last_predictions` (``"val"``, ``"test"``) for curves and confusion
    matrices.

    .. versionadded:: 0.3
       The evaluation hooks of
       :class:`~torchgeo_quake.trainers.DamageDetectionTask` (there since 0.1),
       in a module of their own.
    """

    #: The loss on logits and labels.
    criterion: nn.Module
    #: The decision threshold on calibrated probabilities.
    threshold: Tensor
    #: Whether :attr:`threshold` was chosen on a validation epoch.
    threshold_set: Tensor
    #: Predictions of the last validation and test epochs by stage.
    last_predictions: dict[str, EpochPredictions]

    def _check_batch(self, batch: Mapping[str, Any], need_label: bool) -> None:
        """Check that a batch holds what the task needs.

        Args:
            batch: The batch.
            need_label: Whether ``label`` is required.

        Raises:
            ValueError: If it does not.
        """
        raise NotImplementedError

    def configure_metrics(self) -> None:
        """Initialize the collection of validation and test predictions."""
        self._outputs = {"val": EpochOutputs(), "test": EpochOutputs()}

    def _collect(self, stage: str, batch: Any) -> None:
        """Predict a validation or test batch and keep the outputs.

        Args:
            stage: ``"val"`` or ``"test"``.
            batch: The batch.
        """
        self._check_batch(batch, need_label=True)
        logits = self(batch)
        self._outputs[stage].append(logits, batch["label"], batch.get("building_id"))

    def validation_step(
        self, batch: Any, batch_idx: int, dataloader_idx: int = 0
    ) -> None:
        """Predict a validation batch; metrics follow at the end of the epoch.

        Args:
            batch: The output of your DataLoader.
            batch_idx: Integer displaying index of this batch.
            dataloader_idx: Index of the current dataloader.
        """
        self._collect("val", batch)

    def test_step(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None:
        """Predict a test batch; metrics follow at the end of the epoch.

        Args:
            batch: The output of your DataLoader.
            batch_idx: Integer displaying index of this batch.
            dataloader_idx: Index of the current dataloader.
        """
        self._collect("test", batch)

    def _epoch_predictions(self, stage: str) -> tuple[EpochPredictions, float] | None:
        """Gather the predictions of an epoch over all processes.

        Args:
            stage: ``"val"`` or ``"test"``.

        Returns:
            Predictions (each building counted once when distributed) and loss;
            None for an empty epoch.
        """
        distributed = self.trainer.world_size > 1
        logits, labels, ids = self._outputs[stage].gather(
            self.device, self.all_gather if distributed else None
        )
        return epoch_predictions(
            logits, labels, ids, self.criterion, distributed, self.calibration
        )

    def _log_all(self, values: Mapping[str, float]) -> None:
        """Log epoch-level values (already equal on every process).

        Args:
            values: Metric values by name (``val_f1`` and ``val_loss`` are
                shown on the progress bar too).
        """
        for name, value in values.items():
            shown = name in ("val_f1", "val_loss")
            self.log(name, float(value), sync_dist=True, prog_bar=shown)

    def on_validation_epoch_end(self) -> None:
        """Fit the calibration, choose the best-F1 threshold, log the metrics.

        Without damaged buildings (or without intact ones) in the validation
        set, the stored calibration and threshold are kept.
        """
        result = self._epoch_predictions("val")
        if result is None:
            return
        preds, loss = result
        # Not on the sanity check's few batches (nothing is stored then).
        fitted = None if self.trainer.sanity_checking else fit_calibration(preds)
        if fitted is not None:
            preds = preds.calibrated(*fitted)
            self.set_calibration(*fitted)
        chosen = choose_threshold(preds)
        # Without damaged buildings, the stored threshold is kept.
        threshold = float(self.threshold) if chosen is None else chosen
        if not self.trainer.sanity_checking:
            if chosen is not None:
                self.threshold.fill_(chosen)
                self.threshold_set.fill_(True)
            self.last_predictions["val"] = preds
        self._log_all(logged_validation_values(preds, loss, threshold))

    def on_test_epoch_end(self) -> None:
        """Log the test metrics at the test-set and the validation threshold."""
        result = self._epoch_predictions("test")
        if result is None:
            return
        preds, loss = result
        self.last_predictions["test"] = preds
        if not bool(self.threshold_set):
            warnings.warn(
                "no validation threshold stored (no validation epoch was run); "
                f"*_valthr metrics use {float(self.threshold)}",
                UserWarning,
                stacklevel=2,
            )
        self._log_all(logged_test_values(preds, loss, float(self.threshold)))
