"""Statistics of the protocol tables: spread, paired intervals, null reference.

The tables (:mod:`.tables`) report, per configuration, the mean and the
**sample** standard deviation (:func:`sample_std`, ``ddof=1``) over the runs,
and compare every configuration with a reference one on the same splits and
seeds:

* fold protocols (``cv``, ``islahiye``, ``blocked``, ``blocked-islahiye``):
  the paired differences per (fold, seed) and a Student *t* interval over them
  (:func:`paired_t_interval`). The folds share their training data, so the
  differences are not independent and the plain interval is too narrow; with
  the test/train sizes of the runs the variance is inflated by Nadeau and
  Bengio's correction (*Inference for the generalization error*, Machine
  Learning 52, 2003): ``(1/J + n_test/n_train) · s²`` instead of ``s²/J``.
  Even corrected, the interval is approximate.
* leave-one-city-out: one test set per city, so the uncertainty that matters
  is that of the test buildings. :func:`paired_bootstrap` resamples the test
  buildings with replacement (the same resample for both configurations, and
  for every seed) and recomputes each metric's difference; the interval is the
  percentile interval of the per-replicate differences, averaged over seeds.

:func:`weighted_metrics` computes every table metric for many resamples at
once (a resample is a vector of counts per building), and
:func:`null_reference` the distribution of best-F1 and AUROC of random scores
for a test set of a given size: what a model with no skill scores there.

.. versionadded:: 0.3
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import stats

__all__ = [
    "Interval",
    "NullReference",
    "bootstrap_weights",
    "null_reference",
    "paired_bootstrap",
    "paired_t_interval",
    "sample_std",
    "weighted_metrics",
]

FloatArray = npt.NDArray[np.float64]

#: Metrics of :func:`weighted_metrics` at a threshold.
THRESHOLD_METRICS = ("precision", "recall", "f1", "kappa")

#: Cells (replicates × buildings) computed at once, to bound the memory.
_CHUNK = 2_000_000


@dataclass(frozen=True)
class Interval:
    """A mean difference and its confidence interval.

    .. versionadded:: 0.3
    """

    #: Mean difference (configuration minus reference); NaN when undefined.
    mean: float
    #: Lower bound of the interval (NaN when undefined).
    low: float
    #: Upper bound of the interval (NaN when undefined).
    high: float
    #: Paired observations (runs, or seeds of the bootstrap).
    n: int
    #: How the interval was computed.
    method: str

    @property
    def significant(self) -> bool:
        """Whether the interval excludes zero (False when undefined)."""
        return bool(self.low > 0 or self.high < 0)


@dataclass(frozen=True)
class NullReference:
    """Best-F1 and AUROC of random scores on a test set of a given size.

    .. versionadded:: 0.3
    """

    #: Damaged buildings of the test set.
    n_positive: int
    #: Intact buildings of the test set.
    n_negative: int
    #: Monte Carlo draws.
    draws: int
    #: Best F1 (threshold maximising F1) of each draw.
    f1: FloatArray
    #: AUROC of each draw.
    auroc: FloatArray

    def summary(self, metric: str) -> tuple[float, float, float]:
        """Mean, median and 95th percentile of a metric over the draws.

        Args:
            metric: ``"f1"`` or ``"auroc"``

        Returns:
            ``(mean, median, 95th percentile)``.
        """
        values = self.f1 if metric == "f1" else self.auroc
        return (
            float(values.mean()),
            float(np.median(values)),
            float(np.percentile(values, 95)),
        )

    def text(self) -> str:
        """Short text: ``null F1 0.13 [0.20], AUROC 0.50 [0.58]``.

        Returns:
            Median [95th percentile] of best-F1 and AUROC.
        """
        _, f1, f1_95 = self.summary("f1")
        _, auc, auc_95 = self.summary("auroc")
        return f"null F1 {f1:.2f} [{f1_95:.2f}], AUROC {auc:.2f} [{auc_95:.2f}]"


def sample_std(values: Sequence[float] | FloatArray) -> float:
    """Sample standard deviation (``ddof=1``) of the finite values.

    Args:
        values: the values (NaN ignored)

    Returns:
        The standard deviation; NaN with fewer than two finite values.

    .. versionadded:: 0.3
    """
    array = np.asarray(values, dtype=np.float64)
    array = array[np.isfinite(array)]
    return float(array.std(ddof=1)) if array.size > 1 else math.nan


def paired_t_interval(
    differences: Sequence[float] | FloatArray,
    confidence: float = 0.95,
    test_train_ratio: float | None = None,
) -> Interval:
    """Student *t* interval of the mean of paired differences.

    Args:
        differences: one difference per (split, seed); NaN ignored
        confidence: coverage of the interval
        test_train_ratio: ``n_test / n_train`` of the splits: applies Nadeau
            and Bengio's (2003) corrected resampled *t* (variance
            ``(1/J + n_test/n_train) · s²``); None for the plain interval

    Returns:
        The interval (NaN bounds with fewer than two differences).

    Raises:
        ValueError: If *confidence* is not in (0, 1) or the ratio is negative.

    .. versionadded:: 0.3
    """
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    if test_train_ratio is not None and not test_train_ratio >= 0:
        raise ValueError(f"test_train_ratio must be >= 0, got {test_train_ratio}")
    array = np.asarray(differences, dtype=np.float64)
    array = array[np.isfinite(array)]
    n = int(array.size)
    method = "t" if test_train_ratio is None else "corrected t (Nadeau-Bengio)"
    if n == 0:
        return Interval(math.nan, math.nan, math.nan, 0, method)
    mean = float(array.mean())
    if n < 2:
        return Interval(mean, math.nan, math.nan, n, method)
    factor = 1 / n + (test_train_ratio or 0.0)
    half = float(stats.t.ppf((1 + confidence) / 2, n - 1)) * math.sqrt(
        factor * float(array.var(ddof=1))
    )
    return Interval(mean, mean - half, mean + half, n, method)


def bootstrap_weights(
    n: int, replicates: int, rng: np.random.Generator
) -> npt.NDArray[np.int64]:
    """Resamples of *n* items with replacement, as counts per item.

    Args:
        n: items
        replicates: resamples
        rng: random generator

    Returns:
        Counts of shape ``(replicates, n)``; every row sums to *n*.

    .. versionadded:: 0.3
    """
    draws = rng.integers(0, n, size=(replicates, n))
    flat = draws + n * np.arange(replicates)[:, None]
    return np.bincount(flat.ravel(), minlength=replicates * n).reshape(replicates, n)


def _at(
    tp: FloatArray, fp: FloatArray, pos: FloatArray, neg: FloatArray
) -> dict[str, FloatArray]:
    """Precision, recall, F1 and kappa from (weighted) confusion counts.

    Args:
        tp: true positives per replicate
        fp: false positives per replicate
        pos: damaged buildings per replicate
        neg: intact buildings per replicate

    Returns:
        The metrics (NaN where undefined, as in
        :func:`~torchgeo_quake.trainers.metrics.threshold_metrics`).
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        predicted = tp + fp
        precision = np.where(predicted > 0, tp / predicted, np.nan)
        recall = np.where(pos > 0, tp / pos, np.nan)
        f1 = np.where(pos > 0, 2 * tp / (predicted + pos), np.nan)
        total = pos + neg
        agree = (tp + neg - fp) / total
        chance = (predicted * pos + (total - predicted) * neg) / total**2
        kappa = np.where(chance < 1, (agree - chance) / (1 - chance), np.nan)
    return {"precision": precision, "recall": recall, "f1": f1, "kappa": kappa}


def weighted_metrics(
    scores: npt.ArrayLike,
    labels: npt.ArrayLike,
    weights: npt.ArrayLike | None = None,
    threshold: float | None = None,
) -> dict[str, FloatArray]:
    """The table metrics of predictions, for many resamples at once.

    A resample is a vector of counts per building (:func:`bootstrap_weights`);
    with counts of one, the values equal
    :func:`~torchgeo_quake.trainers.metrics.threshold_metrics` at the best-F1
    threshold (ties towards the lowest threshold) and
    :func:`~torchgeo_quake.trainers.metrics.ranking_metrics`.

    Args:
        scores: probabilities (or scores) of the damaged class, shape ``(n,)``
        labels: 0/1 labels, shape ``(n,)``
        weights: counts per building, shape ``(n,)`` or ``(replicates, n)``
            (default: one each)
        threshold: a fixed threshold (the validation one): adds ``*_valthr``
            metrics at ``score >= threshold``

    Returns:
        ``precision``, ``recall``, ``f1``, ``kappa`` (at the best-F1 threshold),
        ``auroc``, ``ap`` and, with *threshold*, ``precision_valthr`` …
        ``kappa_valthr``; arrays of shape ``(replicates,)``.

    Raises:
        ValueError: If the shapes disagree or labels are not 0/1.

    .. versionadded:: 0.3
    """
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    y = np.asarray(labels).reshape(-1)
    if s.shape != y.shape:
        raise ValueError(f"scores and labels differ in length: {s.size} vs {y.size}")
    if not np.isin(y, (0, 1)).all():
        raise ValueError("labels must be 0 or 1")
    w = np.ones((1, s.size)) if weights is None else np.asarray(weights, np.float64)
    w = np.atleast_2d(w)
    if w.shape[1] != s.size:
        raise ValueError(f"weights have {w.shape[1]} columns for {s.size} scores")
    order = np.argsort(-s, kind="stable")
    s, y, w = s[order], y[order].astype(np.float64), w[:, order]
    ends = np.flatnonzero(np.r_[s[1:] != s[:-1], True])
    tp = np.cumsum(w * y, axis=1)[:, ends]
    fp = np.cumsum(w * (1 - y), axis=1)[:, ends]
    pos, neg = tp[:, -1], fp[:, -1]
    rows = np.arange(w.shape[0])
    with np.errstate(divide="ignore", invalid="ignore"):
        curve_f1 = 2 * tp / (tp + fp + pos[:, None])
    curve_f1 = np.nan_to_num(curve_f1, nan=0.0)
    # The lowest threshold among equally good ones: the last maximum.
    best = ends.size - 1 - np.argmax(curve_f1[:, ::-1], axis=1)
    out = _at(tp[rows, best], fp[rows, best], pos, neg)
    step_pos = np.diff(tp, axis=1, prepend=0.0)
    step_neg = np.diff(fp, axis=1, prepend=0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        below = (step_pos * (neg[:, None] - fp + 0.5 * step_neg)).sum(axis=1)
        out["auroc"] = np.where(pos * neg > 0, below / (pos * neg), np.nan)
        precision = np.where(tp + fp > 0, tp / (tp + fp), 0.0)
        ap = (step_pos * precision).sum(axis=1) / pos
        out["ap"] = np.where(pos > 0, ap, np.nan)
    if threshold is not None:
        predicted = s >= threshold
        at_val = _at(w @ (y * predicted), w @ ((1 - y) * predicted), pos, neg)
        out.update({f"{k}_valthr": v for k, v in at_val.items()})
    return out


def paired_bootstrap(
    labels: Sequence[npt.ArrayLike],
    scores: Sequence[npt.ArrayLike],
    reference: Sequence[npt.ArrayLike],
    thresholds: Sequence[float] | None = None,
    reference_thresholds: Sequence[float] | None = None,
    replicates: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
) -> dict[str, Interval]:
    """Building-level paired bootstrap of metric differences over seeds.

    Each replicate resamples the test buildings with replacement; the same
    resample is applied to both configurations and to every seed (the
    buildings are matched by position: align them first), and the replicate's
    difference is the mean over seeds of the metric differences.

    Args:
        labels: per seed, the 0/1 labels of the test buildings
        scores: per seed, the configuration's probabilities
        reference: per seed, the reference configuration's probabilities
        thresholds: per seed, the configuration's validation threshold (adds
            the ``*_valthr`` metrics)
        reference_thresholds: per seed, the reference's validation threshold
        replicates: bootstrap replicates
        seed: seed of the resampling
        confidence: coverage of the percentile interval

    Returns:
        Per metric of :func:`weighted_metrics`, the mean difference on the
        test set itself and the percentile interval (replicates where a metric
        is undefined are left out).

    Raises:
        ValueError: If the seeds' arrays differ in number or length, or
            *replicates* is below 1.

    .. versionadded:: 0.3
    """
    if not len(labels) == len(scores) == len(reference) > 0:
        raise ValueError("labels, scores and reference need one array per seed")
    if replicates < 1:
        raise ValueError(f"replicates must be >= 1, got {replicates}")
    ys = [np.asarray(y).reshape(-1) for y in labels]
    n = ys[0].size
    if any(y.size != n for y in ys):
        raise ValueError("every seed needs the same test buildings, in one order")
    none: list[float | None] = [None] * len(ys)
    with_val = thresholds is not None and reference_thresholds is not None
    thr = list(thresholds) if thresholds is not None and with_val else none
    ref_thr = (
        list(reference_thresholds)
        if reference_thresholds is not None and with_val
        else none
    )

    def differences(weights: FloatArray | None) -> dict[str, FloatArray]:
        total: dict[str, FloatArray] = {}
        for k, y in enumerate(ys):
            a = weighted_metrics(scores[k], y, weights, thr[k])
            b = weighted_metrics(reference[k], y, weights, ref_thr[k])
            for key in a:
                total[key] = total.get(key, 0.0) + (a[key] - b[key]) / len(ys)
        return total

    point = differences(None)
    chunk = max(1, _CHUNK // max(n, 1))
    parts: dict[str, list[FloatArray]] = {key: [] for key in point}
    for index, start in enumerate(range(0, replicates, chunk)):
        rng = np.random.default_rng([seed, index])
        size = min(chunk, replicates - start)
        weights = bootstrap_weights(n, size, rng).astype(np.float64)
        for key, chunk_values in differences(weights).items():
            parts[key].append(chunk_values)
    tail = 100 * (1 - confidence) / 2
    out = {}
    for key, values in parts.items():
        draws = np.concatenate(values)
        draws = draws[np.isfinite(draws)]
        low, high = (
            np.percentile(draws, [tail, 100 - tail]) if draws.size else (np.nan,) * 2
        )
        out[key] = Interval(
            float(point[key][0]),
            float(low),
            float(high),
            len(ys),
            f"paired bootstrap ({replicates} replicates)",
        )
    return out


def null_reference(
    n_positive: int, n_negative: int, draws: int = 2000, seed: int = 0
) -> NullReference:
    """Best-F1 and AUROC of random scores (Monte Carlo).

    Random scores order the buildings at random: each draw is a random
    permutation of the labels, ranked from the highest score down.

    Args:
        n_positive: damaged buildings
        n_negative: intact buildings
        draws: Monte Carlo draws
        seed: seed of the draws

    Returns:
        The draws' best F1 (as the ``bestf1`` policy: the threshold maximising
        F1) and AUROC.

    Raises:
        ValueError: If a count is below 1.

    .. versionadded:: 0.3
    """
    if n_positive < 1 or n_negative < 1 or draws < 1:
        raise ValueError(
            "null reference needs damaged and intact buildings and draws >= 1, "
            f"got {n_positive}, {n_negative}, {draws}"
        )
    n = n_positive + n_negative
    labels = np.r_[np.ones(n_positive), np.zeros(n_negative)]
    rng = np.random.default_rng(seed)
    chunk = max(1, _CHUNK // n)
    f1: list[FloatArray] = []
    auroc: list[FloatArray] = []
    ranks = np.arange(1, n + 1)
    for start in range(0, draws, chunk):
        size = min(chunk, draws - start)
        ranked = rng.permuted(np.tile(labels, (size, 1)), axis=1)
        tp = np.cumsum(ranked, axis=1)
        f1.append((2 * tp / (ranks + n_positive)).max(axis=1))
        fp = ranks - tp
        auroc.append(
            (ranked * (n_negative - fp)).sum(axis=1) / (n_positive * n_negative)
        )
    return NullReference(
        n_positive, n_negative, draws, np.concatenate(f1), np.concatenate(auroc)
    )
