"""Predictions of validation and test epochs: collection, gathering, metrics.

:class:`EpochOutputs` keeps the logits, labels and building ids of an epoch's
batches in one process and gathers them over all processes at its end;
:func:`epoch_predictions` turns them into :class:`EpochPredictions` and the
loss, and :func:`logged_validation_values` and :func:`logged_test_values` into
the values that :class:`~torchgeo_quake.trainers.DamageDetectionTask` logs. The
metrics themselves are those of :mod:`torchgeo_quake.trainers.metrics`.

.. versionadded:: 0.2
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt
import torch
from torch import Tensor

from .calibration import apply_platt, fit_platt
from .metrics import (
    best_f1_threshold,
    calibration_metrics,
    decision_threshold,
    ranking_metrics,
    threshold_metrics,
)

__all__ = [
    "EpochOutputs",
    "EpochPredictions",
    "all_gather_cat",
    "choose_threshold",
    "epoch_predictions",
    "fit_calibration",
    "logged_test_values",
    "logged_validation_values",
    "upgrade_test_metrics",
]

#: Names before 0.3 of the metrics at the test split's own best-F1 threshold
#: (an oracle threshold, chosen on the data it is scored on) → their names
#: since 0.3.
LEGACY_ORACLE_NAMES: dict[str, str] = {
    f"test_{k}": f"test_{k}_oracle"
    for k in ("precision", "recall", "f1", "kappa", "threshold")
}

#: Gathers a tensor of the same shape from every process, stacked in rank
#: order (:meth:`lightning.pytorch.LightningModule.all_gather`).
AllGather = Callable[[Tensor], Any]


class EpochPredictions(NamedTuple):
    """Predictions of one validation or test epoch, gathered over all processes.

    .. versionadded:: 0.1
    .. versionchanged:: 0.2
       ``probs`` are calibrated when the task is; ``logits`` added.
    """

    #: Predicted probability of damage, shape (N,): calibrated
    #: (``sigmoid(scale * logit + bias)``) when the task holds a calibration.
    probs: npt.NDArray[np.float64]
    #: Reference labels (1 = damaged), shape (N,).
    labels: npt.NDArray[np.int64]
    #: OSM ids of the buildings, shape (N,), or None if batches had none.
    building_ids: npt.NDArray[np.int64] | None
    #: The network's logits, shape (N,) (None when not recorded).
    logits: npt.NDArray[np.float64] | None = None

    def calibrated(self, scale: float, bias: float) -> EpochPredictions:
        """The same predictions under another calibration.

        Args:
            scale: Platt scale (1 with bias 0: uncalibrated).
            bias: Platt bias.

        Returns:
            Predictions whose ``probs`` are ``sigmoid(scale * logits + bias)``.

        Raises:
            ValueError: If no logits were recorded.

        .. versionadded:: 0.2
        """
        if self.logits is None:
            raise ValueError("these predictions hold no logits to calibrate")
        return self._replace(probs=apply_platt(self.logits, scale, bias))


def all_gather_cat(tensor: Tensor, all_gather: AllGather) -> Tensor:
    """Concatenate a tensor of any length over all processes.

    The lengths are gathered first, then the tensors padded to the longest,
    whose padding is dropped again.

    Args:
        tensor: Local tensor, first dimension of any length.
        all_gather: Gathers a tensor from every process, stacked in rank order.

    Returns:
        The tensors of all ranks concatenated in rank order.

    .. versionadded:: 0.2
    """
    size = torch.tensor([tensor.shape[0]], device=tensor.device)
    all_sizes = all_gather(size)
    assert isinstance(all_sizes, Tensor)
    sizes = [int(n) for n in all_sizes.reshape(-1).tolist()]
    pad = tensor.new_zeros((max(sizes) - tensor.shape[0], *tensor.shape[1:]))
    gathered = all_gather(torch.cat([tensor, pad]))
    assert isinstance(gathered, Tensor)
    return torch.cat([gathered[r, :n] for r, n in enumerate(sizes)])


class EpochOutputs:
    """Logits, labels and building ids of the batches of an epoch in a process.

    .. versionadded:: 0.2
    """

    def __init__(self) -> None:
        """Initialize a new, empty EpochOutputs instance."""
        self._batches: list[tuple[Tensor, Tensor, Tensor | None]] = []

    def reset(self) -> None:
        """Forget the collected batches."""
        self._batches = []

    def append(
        self, logits: Tensor, labels: Tensor, building_ids: Tensor | None
    ) -> None:
        """Keep the outputs of one batch (detached).

        Args:
            logits: Damage logits, shape ``(B,)``.
            labels: Reference labels, shape ``(B,)``.
            building_ids: OSM ids, shape ``(B,)``, or None.
        """
        ids = None if building_ids is None else building_ids.detach()
        self._batches.append((logits.detach().float(), labels.detach(), ids))

    def gather(
        self, device: torch.device, all_gather: AllGather | None = None
    ) -> tuple[Tensor, Tensor, Tensor | None]:
        """Concatenate the batches, over all processes, and forget them.

        Args:
            device: Device of the empty tensors of a process without batches.
            all_gather: Gathers a tensor from every process (see
                :func:`all_gather_cat`); None in a single process.

        Returns:
            Logits (float32), labels (int64) and building ids (int64; None
            when a batch had none).
        """
        batches, self._batches = self._batches, []
        logits = torch.zeros(0, device=device)
        labels = torch.zeros(0, dtype=torch.long, device=device)
        ids: Tensor | None = None
        if batches:
            logits = torch.cat([b[0] for b in batches])
            labels = torch.cat([b[1] for b in batches]).long()
            id_parts = [b[2] for b in batches if b[2] is not None]
            if len(id_parts) == len(batches):
                ids = torch.cat(id_parts).long()
        if all_gather is not None:
            logits = all_gather_cat(logits, all_gather)
            labels = all_gather_cat(labels, all_gather)
            if ids is not None:
                ids = all_gather_cat(ids, all_gather)
        return logits, labels, ids


def epoch_predictions(
    logits: Tensor,
    labels: Tensor,
    building_ids: Tensor | None,
    criterion: Callable[[Tensor, Tensor], Tensor],
    deduplicate: bool = False,
    calibration: tuple[float, float] = (1.0, 0.0),
) -> tuple[EpochPredictions, float] | None:
    """Predictions and loss of a gathered epoch.

    Args:
        logits: Damage logits, shape ``(N,)``.
        labels: Reference labels, shape ``(N,)``.
        building_ids: OSM ids, shape ``(N,)``, or None.
        criterion: The loss on logits and float labels.
        deduplicate: Count each building id once (its first occurrence): a
            distributed sampler repeats samples to even out the processes.
        calibration: Platt ``(scale, bias)`` of the probabilities (the loss
            is the criterion's, on the logits).

    Returns:
        The predictions and the loss; None for an empty epoch.

    .. versionadded:: 0.2
    """
    if logits.numel() == 0:
        return None
    if building_ids is not None and deduplicate:
        _, first = np.unique(building_ids.cpu().numpy(), return_index=True)
        keep = torch.from_numpy(np.sort(first)).to(logits.device)
        logits, labels, building_ids = logits[keep], labels[keep], building_ids[keep]
    loss = float(criterion(logits, labels.float()))
    ids = None if building_ids is None else building_ids.cpu().numpy()
    raw = logits.double().cpu().numpy()
    preds = EpochPredictions(
        probs=apply_platt(raw, *calibration),
        labels=labels.cpu().numpy().astype(np.int64),
        building_ids=None if ids is None else ids.astype(np.int64),
        logits=raw,
    )
    return preds, loss


def fit_calibration(preds: EpochPredictions) -> tuple[float, float] | None:
    """Fit Platt scaling on the logits of an epoch's predictions.

    Args:
        preds: Validation predictions, with logits.

    Returns:
        ``(scale, bias)`` (see
        :func:`~torchgeo_quake.trainers.calibration.fit_platt`); None when the
        labels hold one class only (nothing to calibrate on) or no logits
        were recorded.

    .. versionadded:: 0.2
    """
    if preds.logits is None or np.unique(preds.labels).size < 2:
        return None
    return fit_platt(preds.logits, preds.labels)


def choose_threshold(preds: EpochPredictions) -> float | None:
    """The decision threshold of best F1 on validation predictions.

    Args:
        preds: Validation predictions.

    Returns:
        The threshold maximising F1 on the precision–recall curve, moved to
        give the same decisions robustly (see
        :func:`~torchgeo_quake.trainers.metrics.decision_threshold`); None
        without damaged buildings.

    .. versionadded:: 0.2
    """
    threshold = best_f1_threshold(preds.probs, preds.labels)
    if math.isnan(threshold):
        return None
    # Same decisions on this data, robust to float32 storage and to
    # float32 / bfloat16 probabilities at prediction time.
    return decision_threshold(preds.probs, threshold)


def logged_validation_values(
    preds: EpochPredictions, loss: float, threshold: float
) -> dict[str, float]:
    """The values logged at the end of a validation epoch.

    Args:
        preds: Validation predictions.
        loss: Their loss.
        threshold: The decision threshold.

    Returns:
        ``val_loss``, ``val_precision``, ``val_recall``, ``val_f1``,
        ``val_kappa`` (at *threshold*), ``val_auroc``, ``val_ap`` and
        ``val_threshold``.

    .. versionadded:: 0.2
    """
    ranking = ranking_metrics(preds.probs, preds.labels)
    metrics = threshold_metrics(preds.probs, preds.labels, threshold)
    return {
        "val_loss": loss,
        **{f"val_{k}": v for k, v in metrics.items()},
        "val_auroc": ranking["auroc"],
        "val_ap": ranking["ap"],
        "val_threshold": threshold,
    }


def logged_test_values(
    preds: EpochPredictions, loss: float, val_threshold: float
) -> dict[str, float]:
    """The values logged at the end of a test epoch.

    Args:
        preds: Test predictions.
        loss: Their loss.
        val_threshold: The stored validation threshold.

    Returns:
        ``test_loss``, ``test_auroc``, ``test_ap``;
        ``test_precision_valthr``, ``test_recall_valthr``, ``test_f1_valthr``,
        ``test_kappa_valthr`` at ``test_threshold_valthr`` (*val_threshold*:
        the deployable figures); ``test_precision_oracle``,
        ``test_recall_oracle``, ``test_f1_oracle``, ``test_kappa_oracle`` at
        ``test_threshold_oracle``, the best-F1 threshold of the test set itself
        (the paper's convention, an oracle: not achievable in deployment; NaN
        without damaged buildings);
        and the calibration of the probabilities: ``test_brier``,
        ``test_ece``, ``test_count_expected`` (sum of the probabilities),
        ``test_count_observed`` (damaged buildings) and
        ``test_count_thresholded`` (buildings at or above *val_threshold*);
        see :func:`~torchgeo_quake.trainers.metrics.calibration_metrics`.

    .. versionadded:: 0.2
    .. versionchanged:: 0.3
       The metrics at the test set's own threshold are named ``*_oracle``
       (``test_f1`` became ``test_f1_oracle``; see
       :func:`upgrade_test_metrics`).
    """
    ranking = ranking_metrics(preds.probs, preds.labels)
    best = best_f1_threshold(preds.probs, preds.labels)
    if math.isnan(best):
        at_best = dict.fromkeys(("precision", "recall", "f1", "kappa"), math.nan)
    else:
        at_best = threshold_metrics(preds.probs, preds.labels, best)
    at_val = threshold_metrics(preds.probs, preds.labels, val_threshold)
    calibration = calibration_metrics(preds.probs, preds.labels, val_threshold)
    return {
        "test_loss": loss,
        "test_auroc": ranking["auroc"],
        "test_ap": ranking["ap"],
        **{f"test_{k}_valthr": v for k, v in at_val.items()},
        "test_threshold_valthr": val_threshold,
        **{f"test_{k}_oracle": v for k, v in at_best.items()},
        "test_threshold_oracle": best,
        **{f"test_{k}": v for k, v in calibration.items()},
    }


def upgrade_test_metrics(metrics: Mapping[str, Any]) -> dict[str, Any]:
    """Test metrics under their current names, whatever version logged them.

    Runs of versions before 0.3 logged the metrics at the test set's own
    best-F1 threshold as ``test_precision``, ``test_recall``, ``test_f1``,
    ``test_kappa`` and ``test_threshold``; they are renamed ``*_oracle`` here
    (:data:`LEGACY_ORACLE_NAMES`), so that old protocol folders and records
    still build tables. A name present under both spellings keeps the
    current one.

    Args:
        metrics: Logged test metrics (e.g. a run record's ``"metrics"``).

    Returns:
        A new dict with the legacy names replaced.

    .. versionadded:: 0.3
    """
    upgraded: dict[str, Any] = {}
    for key, value in metrics.items():
        new = LEGACY_ORACLE_NAMES.get(key)
        if new is None:
            upgraded[key] = value
        elif new not in metrics:
            upgraded[new] = value
    return upgraded
