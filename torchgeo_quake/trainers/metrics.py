"""Binary damage-detection metrics on predicted probabilities.

Thin wrappers around :mod:`sklearn.metrics` with the paper's conventions
(Section IV-B): all threshold metrics refer to the positive (damaged) class, a
building is predicted damaged when ``prob >= threshold``, and the threshold of
choice maximises F1 on the precision–recall curve. Values equal scikit-learn's
on the same predictions; where a metric is undefined (e.g. recall without
damaged buildings, AUROC with one class) the result is NaN and a
:class:`UserWarning` says why, instead of scikit-learn's exception or
placeholder value.
"""

from __future__ import annotations

import warnings
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt
import torch
from sklearn.metrics import (
    average_precision_score,
    cohen_kappa_score,
    confusion_matrix,
    f1_score,
    precision_recall_curve,
    precision_score,
    recall_score,
    roc_auc_score,
)

__all__ = [
    "ECE_BINS",
    "ReliabilityCurve",
    "best_f1_threshold",
    "brier_score",
    "calibration_metrics",
    "confusion_counts",
    "decision_threshold",
    "expected_calibration_error",
    "ranking_metrics",
    "reliability_curve",
    "threshold_metrics",
]

ArrayLike = npt.ArrayLike | torch.Tensor

#: Equal-width probability bins of the expected calibration error and the
#: reliability curve. Ten is the usual choice (Guo et al., 2017); with the few
#: hundred damaged buildings of a test city, more bins would leave the upper
#: bins with a handful of buildings each, and their noise would dominate.
ECE_BINS = 10


def _as_numpy(x: ArrayLike) -> npt.NDArray[Any]:
    """Convert a tensor or array-like to a 1-D numpy array.

    Args:
        x: Tensor (any device) or array-like.

    Returns:
        The values as a flat numpy array.
    """
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu()
        if x.is_floating_point():
            x = x.double()
        return np.asarray(x.numpy()).reshape(-1)
    return np.asarray(x).reshape(-1)


def _prepare(
    probs: ArrayLike, labels: ArrayLike
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]]:
    """Validate and convert predictions and labels.

    Args:
        probs: Predicted probabilities (or scores) of the damaged class.
        labels: Reference labels, 1 = damaged, 0 = intact.

    Returns:
        Probabilities as float64 and labels as int64, both 1-D.

    Raises:
        ValueError: If the inputs are empty, differ in length, contain
            non-finite scores or labels other than 0 and 1.
    """
    p = _as_numpy(probs).astype(np.float64)
    y_raw = _as_numpy(labels)
    if p.size == 0:
        raise ValueError("no predictions given")
    if p.shape != y_raw.shape:
        raise ValueError(
            f"probs and labels differ in length: {p.shape[0]} vs {y_raw.shape[0]}"
        )
    if not np.isfinite(p).all():
        raise ValueError("probs contain NaN or infinite values")
    values = np.unique(y_raw)
    if not np.isin(values, (0, 1)).all():
        raise ValueError(f"labels must be 0 or 1, got values {values[:10].tolist()}")
    return p, y_raw.astype(np.int64)


def _one_class_warning(labels: npt.NDArray[np.int64], what: str) -> bool:
    """Warn if the labels hold a single class.

    Args:
        labels: 0/1 labels.
        what: What this means for the metrics, for the message.

    Returns:
        Whether only one class is present.
    """
    if np.unique(labels).size < 2:
        warnings.warn(
            f"only one class ({int(labels[0])}) among {labels.size} labels: {what}",
            UserWarning,
            stacklevel=3,
        )
        return True
    return False


def best_f1_threshold(probs: ArrayLike, labels: ArrayLike) -> float:
    """Threshold that maximises F1 of the damaged class on the PR curve.

    The candidates are the thresholds of
    :func:`sklearn.metrics.precision_recall_curve` (the distinct predicted
    probabilities); a building is predicted damaged when ``prob >= threshold``.
    F1 is computed from the curve's precision and recall (0 where both are 0).
    Ties are broken towards the **lowest** threshold reaching the maximum,
    i.e. the one with the highest recall among equally good thresholds.

    Args:
        probs: Predicted probabilities of the damaged class.
        labels: Reference labels, 1 = damaged, 0 = intact.

    Returns:
        The threshold, or NaN (with a warning) if there is no damaged building,
        where F1 is 0 or undefined at every threshold.

    Raises:
        ValueError: On invalid inputs (see :func:`threshold_metrics`).

    .. versionadded:: 0.1
    """
    p, y = _prepare(probs, labels)
    if not y.any():
        warnings.warn(
            f"no damaged building among {y.size} labels: the best-F1 threshold is "
            "undefined; returning NaN",
            UserWarning,
            stacklevel=2,
        )
        return float("nan")
    precision, recall, thresholds = precision_recall_curve(y, p)
    precision = precision[:-1]
    recall = recall[:-1]
    denom = precision + recall
    f1 = np.divide(
        2 * precision * recall, denom, out=np.zeros_like(denom), where=denom > 0
    )
    return float(thresholds[int(np.argmax(f1))])


def decision_threshold(probs: ArrayLike, threshold: float) -> float:
    """A threshold to store that classifies *probs* exactly as *threshold* does.

    A threshold chosen on the PR curve equals one of the predicted
    probabilities, so rounding it (to a float32 buffer, or the probabilities
    of float32 or bfloat16 inference) can move that very building to the other
    side. This returns the midpoint between *threshold* and the next lower
    distinct probability (0 below the lowest), rounded to float32, which gives
    the same ``prob >= t`` decisions on *probs* and keeps half the gap as a
    margin. If float32 cannot separate the two values, *threshold* is returned.

    Args:
        probs: The probabilities the threshold was chosen on.
        threshold: The chosen threshold (e.g. :func:`best_f1_threshold`).

    Returns:
        A float32-representable threshold with the same decisions on *probs*.

    Raises:
        ValueError: If *threshold* is NaN or *probs* are invalid.

    .. versionadded:: 0.1
    """
    if np.isnan(threshold):
        raise ValueError("threshold is NaN")
    p = _as_numpy(probs).astype(np.float64)
    below = p[p < threshold]
    lower = float(below.max()) if below.size else 0.0
    middle = float(np.float32((lower + threshold) / 2))
    if lower < middle <= threshold:
        return middle
    return float(threshold)


def threshold_metrics(
    probs: ArrayLike, labels: ArrayLike, threshold: float
) -> dict[str, float]:
    """Precision, recall, F1 and Cohen's kappa at a threshold.

    Computed with scikit-learn on ``pred = prob >= threshold`` for the damaged
    class (``pos_label=1``), with ``zero_division=nan``: precision is NaN when
    nothing is predicted damaged, recall when nothing is damaged, F1 when
    neither; kappa is NaN when both raters use a single, identical class.

    Args:
        probs: Predicted probabilities of the damaged class.
        labels: Reference labels, 1 = damaged, 0 = intact.
        threshold: Decision threshold.

    Returns:
        Dict with keys ``precision``, ``recall``, ``f1`` and ``kappa``.

    Raises:
        ValueError: If the inputs are empty, differ in length, contain
            non-finite probabilities, labels other than 0/1, or the threshold
            is NaN.

    .. versionadded:: 0.1
    """
    p, y = _prepare(probs, labels)
    if np.isnan(threshold):
        raise ValueError("threshold is NaN")
    pred = (p >= threshold).astype(np.int64)
    _one_class_warning(y, "precision, recall, F1 or kappa may be undefined (NaN)")
    with warnings.catch_warnings():
        # Undefined values are NaN (warned about above for a single class).
        warnings.simplefilter("ignore")
        precision = precision_score(y, pred, zero_division=np.nan)
        recall = recall_score(y, pred, zero_division=np.nan)
        f1 = f1_score(y, pred, zero_division=np.nan)
        kappa = cohen_kappa_score(y, pred)
    return {
        "precision": float(precision),
        "recall": float(recall),
        "f1": float(f1),
        "kappa": float(kappa),
    }


def ranking_metrics(probs: ArrayLike, labels: ArrayLike) -> dict[str, float]:
    """Threshold-free metrics: AUROC and average precision.

    Args:
        probs: Predicted probabilities (or any scores) of the damaged class.
        labels: Reference labels, 1 = damaged, 0 = intact.

    Returns:
        Dict with keys ``auroc`` (:func:`sklearn.metrics.roc_auc_score`) and
        ``ap`` (:func:`sklearn.metrics.average_precision_score`). With one
        class only, AUROC is NaN, and so is AP when no building is damaged
        (scikit-learn would raise, respectively return 0); both with a warning.

    Raises:
        ValueError: On invalid inputs (see :func:`threshold_metrics`).

    .. versionadded:: 0.1
    """
    p, y = _prepare(probs, labels)
    if _one_class_warning(
        y, "AUROC is undefined (NaN), and so is AP without damaged buildings"
    ):
        ap = float(average_precision_score(y, p)) if y.all() else float("nan")
        return {"auroc": float("nan"), "ap": ap}
    return {
        "auroc": float(roc_auc_score(y, p)),
        "ap": float(average_precision_score(y, p)),
    }


def confusion_counts(
    probs: ArrayLike, labels: ArrayLike, threshold: float
) -> npt.NDArray[np.int64]:
    """Confusion matrix at a threshold.

    Args:
        probs: Predicted probabilities of the damaged class.
        labels: Reference labels, 1 = damaged, 0 = intact.
        threshold: Decision threshold (``prob >= threshold`` is damaged).

    Returns:
        ``[[TN, FP], [FN, TP]]`` (:func:`sklearn.metrics.confusion_matrix`
        with ``labels=[0, 1]``), rows the reference, columns the prediction.

    Raises:
        ValueError: On invalid inputs (see :func:`threshold_metrics`).

    .. versionadded:: 0.1
    """
    p, y = _prepare(probs, labels)
    if np.isnan(threshold):
        raise ValueError("threshold is NaN")
    pred = (p >= threshold).astype(np.int64)
    return np.asarray(confusion_matrix(y, pred, labels=[0, 1]), dtype=np.int64)


class ReliabilityCurve(NamedTuple):
    """Reliability-diagram data: observed frequency per probability bin.

    .. versionadded:: 0.2
    """

    #: Bin edges, shape ``(n_bins + 1,)``, from 0 to 1 (equal width).
    edges: npt.NDArray[np.float64]
    #: Buildings per bin, shape ``(n_bins,)``.
    counts: npt.NDArray[np.int64]
    #: Mean predicted probability per bin (NaN for an empty bin).
    mean_prob: npt.NDArray[np.float64]
    #: Share of damaged buildings per bin (NaN for an empty bin).
    frac_damaged: npt.NDArray[np.float64]


def reliability_curve(
    probs: ArrayLike, labels: ArrayLike, n_bins: int = ECE_BINS
) -> ReliabilityCurve:
    """Mean probability and share of damaged buildings per probability bin.

    Bins are equal-width on ``[0, 1]``; bin *k* holds ``k / n_bins <= p <
    (k + 1) / n_bins``, the last one includes 1. For the non-empty bins, the
    values equal :func:`sklearn.calibration.calibration_curve` with
    ``strategy="uniform"``.

    Args:
        probs: Predicted probabilities of the damaged class, in ``[0, 1]``.
        labels: Reference labels, 1 = damaged, 0 = intact.
        n_bins: Number of bins.

    Returns:
        The curve.

    Raises:
        ValueError: On invalid inputs (see :func:`threshold_metrics`), a
            probability outside ``[0, 1]`` or ``n_bins < 1``.

    .. versionadded:: 0.2
    """
    p, y = _prepare(probs, labels)
    if n_bins < 1:
        raise ValueError(f"n_bins must be at least 1, got {n_bins}")
    if p.min() < 0 or p.max() > 1:
        raise ValueError(
            f"probabilities must lie in [0, 1], got {p.min():g} to {p.max():g}"
        )
    index = np.minimum((p * n_bins).astype(np.int64), n_bins - 1)
    counts = np.bincount(index, minlength=n_bins).astype(np.int64)
    sums = np.bincount(index, weights=p, minlength=n_bins)
    hits = np.bincount(index, weights=y.astype(np.float64), minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_prob = np.where(counts > 0, sums / counts, np.nan)
        frac = np.where(counts > 0, hits / counts, np.nan)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    return ReliabilityCurve(edges, counts, mean_prob, frac)


def expected_calibration_error(
    probs: ArrayLike, labels: ArrayLike, n_bins: int = ECE_BINS
) -> float:
    """Expected calibration error over equal-width probability bins.

    ``ECE = sum_k (n_k / N) * |share damaged_k - mean probability_k|`` over
    the bins of :func:`reliability_curve` (empty bins weigh 0).

    Args:
        probs: Predicted probabilities of the damaged class, in ``[0, 1]``.
        labels: Reference labels, 1 = damaged, 0 = intact.
        n_bins: Number of bins (default :data:`ECE_BINS`).

    Returns:
        The ECE, in ``[0, 1]``.

    Raises:
        ValueError: On invalid inputs (see :func:`reliability_curve`).

    .. versionadded:: 0.2
    """
    curve = reliability_curve(probs, labels, n_bins)
    filled = curve.counts > 0
    gaps = np.abs(curve.frac_damaged[filled] - curve.mean_prob[filled])
    return float((curve.counts[filled] * gaps).sum() / curve.counts.sum())


def brier_score(probs: ArrayLike, labels: ArrayLike) -> float:
    """Brier score: mean squared difference of probability and label.

    Equals :func:`sklearn.metrics.brier_score_loss` (lower is better; 0 for
    certain, correct predictions).

    Args:
        probs: Predicted probabilities of the damaged class.
        labels: Reference labels, 1 = damaged, 0 = intact.

    Returns:
        The score.

    Raises:
        ValueError: On invalid inputs (see :func:`threshold_metrics`).

    .. versionadded:: 0.2
    """
    p, y = _prepare(probs, labels)
    return float(np.mean((p - y) ** 2))


def calibration_metrics(
    probs: ArrayLike, labels: ArrayLike, threshold: float, n_bins: int = ECE_BINS
) -> dict[str, float]:
    """Calibration of probabilities, and damaged counts predicted vs observed.

    Args:
        probs: Predicted probabilities of the damaged class, in ``[0, 1]``.
        labels: Reference labels, 1 = damaged, 0 = intact.
        threshold: Decision threshold of the thresholded count.
        n_bins: Bins of the ECE (default :data:`ECE_BINS`).

    Returns:
        ``brier`` (:func:`brier_score`), ``ece``
        (:func:`expected_calibration_error`), ``count_expected`` (sum of the
        probabilities: the expected number of damaged buildings if they are
        calibrated), ``count_observed`` (damaged buildings in *labels*) and
        ``count_thresholded`` (buildings with ``prob >= threshold``).

    Raises:
        ValueError: On invalid inputs (see :func:`reliability_curve`) or a
            NaN threshold.

    .. versionadded:: 0.2
    """
    p, y = _prepare(probs, labels)
    if np.isnan(threshold):
        raise ValueError("threshold is NaN")
    return {
        "brier": brier_score(p, y),
        "ece": expected_calibration_error(p, y, n_bins),
        "count_expected": float(p.sum()),
        "count_observed": float(y.sum()),
        "count_thresholded": float((p >= threshold).sum()),
    }
