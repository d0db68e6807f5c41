"""Damage metrics equal scikit-learn's on the same predictions."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
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

from torchgeo_quake.trainers import (
    best_f1_threshold,
    confusion_counts,
    decision_threshold,
    ranking_metrics,
    threshold_metrics,
)


def _data(seed: int, n: int = 300) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = (rng.random(n) < 0.15).astype(np.int64)
    probs = np.clip(0.3 * labels + rng.random(n) * 0.7, 0, 1)
    probs = np.round(probs, 2)  # ties
    return probs, labels


def _sklearn_threshold_metrics(
    p: np.ndarray, y: np.ndarray, t: float
) -> dict[str, float]:
    pred = (p >= t).astype(int)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {
            "precision": precision_score(y, pred, zero_division=np.nan),
            "recall": recall_score(y, pred, zero_division=np.nan),
            "f1": f1_score(y, pred, zero_division=np.nan),
            "kappa": cohen_kappa_score(y, pred),
        }


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("threshold", [0.0, 0.25, 0.5, 0.71, 0.99, 1.5])
def test_threshold_metrics_equal_sklearn(seed: int, threshold: float) -> None:
    p, y = _data(seed)
    got = threshold_metrics(p, y, threshold)
    want = _sklearn_threshold_metrics(p, y, threshold)
    assert set(got) == {"precision", "recall", "f1", "kappa"}
    for key, value in want.items():
        np.testing.assert_equal(got[key], value, err_msg=key)  # NaN == NaN here


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ranking_metrics_equal_sklearn(seed: int) -> None:
    p, y = _data(seed)
    got = ranking_metrics(p, y)
    assert got == {
        "auroc": roc_auc_score(y, p),
        "ap": average_precision_score(y, p),
    }


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_best_f1_threshold_maximises_f1(seed: int) -> None:
    p, y = _data(seed)
    t = best_f1_threshold(p, y)
    assert t in set(p.tolist())
    f1_at = {c: f1_score(y, (p >= c).astype(int)) for c in np.unique(p)}
    best = max(f1_at.values())
    assert f1_at[t] == pytest.approx(best, abs=1e-12)
    # Ties go to the lowest threshold reaching the maximum.
    assert t == min(c for c, f in f1_at.items() if f == pytest.approx(best, abs=1e-12))
    # The curve's F1 and the metric at that threshold agree.
    precision, recall, thresholds = precision_recall_curve(y, p)
    i = int(np.flatnonzero(thresholds == t)[0])
    curve_f1 = 2 * precision[i] * recall[i] / (precision[i] + recall[i])
    assert threshold_metrics(p, y, t)["f1"] == pytest.approx(curve_f1, abs=1e-12)


def test_tie_breaking_prefers_lowest_threshold() -> None:
    # Thresholds 0.2 and 0.8 both give F1 = 2/3; 0.2 is returned.
    p = np.array([0.2, 0.2, 0.8, 0.9])
    y = np.array([1, 0, 0, 1])
    f1s = {t: f1_score(y, (p >= t).astype(int)) for t in (0.2, 0.8, 0.9)}
    assert f1s[0.2] == pytest.approx(f1s[0.9])
    assert best_f1_threshold(p, y) == 0.2


def test_torch_inputs_equal_numpy() -> None:
    p, y = _data(5)
    pt = torch.tensor(p, dtype=torch.float64)
    yt = torch.tensor(y)
    assert best_f1_threshold(pt, yt) == best_f1_threshold(p, y)
    assert threshold_metrics(pt, yt, 0.5) == threshold_metrics(p, y, 0.5)
    assert ranking_metrics(pt, yt) == ranking_metrics(p, y)
    # float32 tensors and float labels work as well.
    got = ranking_metrics(pt.float(), yt.float())
    assert got["auroc"] == pytest.approx(roc_auc_score(y, p.astype(np.float32)))


def test_confusion_counts_equal_sklearn() -> None:
    p, y = _data(7)
    np.testing.assert_array_equal(
        confusion_counts(p, y, 0.6),
        confusion_matrix(y, (p >= 0.6).astype(int), labels=[0, 1]),
    )
    assert confusion_counts(p, y, 0.6).sum() == p.size


def test_only_negatives_gives_nan_with_warning() -> None:
    p = np.array([0.1, 0.4, 0.7])
    y = np.zeros(3, dtype=int)
    with pytest.warns(UserWarning, match="no damaged building"):
        assert np.isnan(best_f1_threshold(p, y))
    with pytest.warns(UserWarning, match="only one class"):
        got = ranking_metrics(p, y)
    assert np.isnan(got["auroc"]) and np.isnan(got["ap"])
    with pytest.warns(UserWarning, match="only one class"):
        got = threshold_metrics(p, y, 0.5)
    want = _sklearn_threshold_metrics(p, y, 0.5)
    assert np.isnan(got["recall"]) and np.isnan(want["recall"])
    for key in ("precision", "f1", "kappa"):
        np.testing.assert_equal(got[key], want[key], err_msg=key)
    with pytest.warns(UserWarning, match="only one class"):
        got = threshold_metrics(p, y, 0.9)  # nothing predicted either
    assert all(np.isnan(v) for v in got.values())


def test_only_positives() -> None:
    p = np.array([0.1, 0.4, 0.7])
    y = np.ones(3, dtype=int)
    assert best_f1_threshold(p, y) == 0.1  # recall 1 at precision 1
    with pytest.warns(UserWarning, match="only one class"):
        got = ranking_metrics(p, y)
    assert np.isnan(got["auroc"])
    assert got["ap"] == average_precision_score(y, p) == 1.0
    with pytest.warns(UserWarning, match="only one class"):
        got = threshold_metrics(p, y, 0.5)
    want = _sklearn_threshold_metrics(p, y, 0.5)
    for key in want:
        np.testing.assert_equal(got[key], want[key], err_msg=key)


def test_no_predicted_positive_gives_nan_precision() -> None:
    p = np.array([0.1, 0.2, 0.3, 0.4])
    y = np.array([0, 1, 0, 1])
    got = threshold_metrics(p, y, 0.9)
    assert np.isnan(got["precision"])
    assert got["recall"] == 0.0 and got["f1"] == 0.0 and got["kappa"] == 0.0


@pytest.mark.parametrize(
    ("probs", "labels", "match"),
    [
        ([], [], "no predictions"),
        ([0.1, 0.2], [0], "differ in length"),
        ([0.1, float("nan")], [0, 1], "NaN"),
        ([0.1, 0.2], [0, 2], "0 or 1"),
    ],
)
def test_invalid_inputs(probs: list[float], labels: list[int], match: str) -> None:
    for fn in (
        best_f1_threshold,
        ranking_metrics,
        lambda p, y: threshold_metrics(p, y, 0.5),
    ):
        with pytest.raises(ValueError, match=match):
            fn(probs, labels)


def test_nan_threshold_rejected() -> None:
    with pytest.raises(ValueError, match="threshold is NaN"):
        threshold_metrics([0.1, 0.9], [0, 1], float("nan"))
    with pytest.raises(ValueError, match="threshold is NaN"):
        confusion_counts([0.1, 0.9], [0, 1], float("nan"))


@pytest.mark.parametrize("seed", range(50))
def test_decision_threshold_survives_float32(seed: int) -> None:
    """Stored in float32 and applied to float32 probabilities, the decisions
    (and so F1) are those of the chosen float64 threshold."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(20, 400))
    labels = (rng.random(n) < 0.1).astype(np.int64)
    labels[0] = 1
    # Float64 sigmoids of float32 logits, as in validation.
    logits = rng.normal(labels * 2.0, 1.5).astype(np.float32)
    probs = 1 / (1 + np.exp(-logits.astype(np.float64)))
    best = best_f1_threshold(probs, labels)
    stored = decision_threshold(probs, best)
    assert float(np.float32(stored)) == stored
    np.testing.assert_array_equal(probs >= stored, probs >= best)
    # float32 sigmoids, as at prediction time.
    probs32 = torch.sigmoid(torch.from_numpy(logits)).numpy()
    np.testing.assert_array_equal(probs32 >= np.float32(stored), probs >= best)
    assert threshold_metrics(probs, labels, stored) == threshold_metrics(
        probs, labels, best
    )


def test_decision_threshold_edges() -> None:
    probs = np.array([0.2, 0.4, 0.4, 0.9])
    assert decision_threshold(probs, 0.4) == pytest.approx(0.3)
    assert decision_threshold(probs, 0.2) == pytest.approx(0.1)  # lowest: to 0
    # Values float32 cannot separate: the threshold itself.
    close = np.array([0.5, 0.5 + 1e-12])
    assert decision_threshold(close, 0.5 + 1e-12) == 0.5 + 1e-12
    with pytest.raises(ValueError, match="NaN"):
        decision_threshold(probs, float("nan"))
