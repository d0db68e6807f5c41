"""Platt calibration: the fit, the metrics, and the task's buffers (CPU)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.calibration import calibration_curve
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import brier_score_loss
from test_damage_task import TinyDataModule, _task, _trainer

from torchgeo_quake.trainers import DamageDetectionTask
from torchgeo_quake.trainers.calibration import (
    CALIBRATION_BUFFERS,
    apply_platt,
    fit_platt,
    restore_calibration,
)
from torchgeo_quake.trainers.collection import EpochPredictions
from torchgeo_quake.trainers.metrics import (
    brier_score,
    calibration_metrics,
    expected_calibration_error,
    reliability_curve,
)


def _synthetic(
    n: int, scale: float, bias: float, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    logits = rng.normal(0.0, 2.0, n)
    labels = (rng.random(n) < 1 / (1 + np.exp(-(scale * logits + bias)))).astype(int)
    return logits, labels


def test_fit_platt_recovers_scale_and_bias() -> None:
    logits, labels = _synthetic(40_000, 0.5, -2.0)
    scale, bias = fit_platt(logits, labels)
    assert scale == pytest.approx(0.5, abs=0.03)
    assert bias == pytest.approx(-2.0, abs=0.06)
    # The maximum-likelihood logistic fit, up to Platt's smoothed targets.
    reference = LogisticRegression(C=1e10, tol=1e-10).fit(logits[:, None], labels)
    assert scale == pytest.approx(float(reference.coef_[0, 0]), abs=1e-3)
    assert bias == pytest.approx(float(reference.intercept_[0]), abs=1e-3)


def test_fit_platt_is_finite_on_separable_labels() -> None:
    scale, bias = fit_platt([-3.0, -1.0, 2.0, 4.0], [0, 0, 1, 1])
    assert 0 < scale < 10 and np.isfinite(bias)


def test_fit_platt_keeps_the_ranking() -> None:
    logits = np.array([3.0, 2.0, 1.0, -1.0, -2.0, -3.0, -4.0])
    labels = np.array([0, 0, 0, 1, 1, 0, 0])
    with pytest.warns(UserWarning, match="do not rank the 7 labels"):
        scale, bias = fit_platt(logits, labels)
    # Bias only: the ranking is kept and the mean probability matches the
    # (smoothed) share of damaged buildings, (2 + 1) / (2 + 2) and 1 / (5 + 2).
    assert scale == 1.0
    share = (2 * 3 / 4 + 5 * 1 / 7) / 7
    assert apply_platt(logits, scale, bias).mean() == pytest.approx(share)


@pytest.mark.parametrize(
    ("logits", "labels", "match"),
    [
        ([0.1, 0.2, 0.3], [1, 1, 1], "one class: all 3 labels are 1"),
        ([0.1, 0.2], [0, 0], "one class: all 2 labels are 0"),
        ([], [], "no predictions"),
        ([0.1, 0.2], [0, 1, 1], "differ in length"),
        ([0.1, np.nan], [0, 1], "NaN or infinite"),
        ([0.1, 0.2], [0, 2], "must be 0 or 1"),
    ],
)
def test_fit_platt_errors(logits: list[float], labels: list[int], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        fit_platt(np.asarray(logits), np.asarray(labels))


def test_apply_platt_keeps_the_kind() -> None:
    logits = np.array([-2.0, 0.0, 3.0])
    expected = 1 / (1 + np.exp(-(0.5 * logits - 1.0)))
    array = apply_platt(logits, 0.5, -1.0)
    assert isinstance(array, np.ndarray) and array.dtype == np.float64
    np.testing.assert_allclose(array, expected)
    tensor = apply_platt(torch.tensor(logits, dtype=torch.float32), 0.5, -1.0)
    assert isinstance(tensor, torch.Tensor) and tensor.dtype == torch.float32
    np.testing.assert_allclose(tensor.numpy(), expected, rtol=1e-6)
    np.testing.assert_allclose(
        apply_platt(logits, 1.0, 0.0), torch.sigmoid(torch.tensor(logits)).numpy()
    )


def test_metrics_against_sklearn_and_by_hand() -> None:
    probs = np.array([0.05, 0.15, 0.12, 0.55, 0.95, 0.85, 1.0])
    labels = np.array([0, 0, 1, 1, 1, 0, 1])
    assert brier_score(probs, labels) == pytest.approx(brier_score_loss(labels, probs))
    # Bins [0, .1): {.05: 0}; [.1, .2): {.15: 0, .12: 1}; [.5, .6): {.55: 1};
    # [.8, .9): {.85: 0}; [.9, 1]: {.95: 1, 1.0: 1}.
    by_hand = (
        abs(0 - 0.05)
        + 2 * abs(0.5 - 0.135)
        + abs(1 - 0.55)
        + abs(0 - 0.85)
        + 2 * abs(1 - 0.975)
    ) / 7
    assert expected_calibration_error(probs, labels) == pytest.approx(by_hand)
    curve = reliability_curve(probs, labels)
    filled = curve.counts > 0
    frac, mean = calibration_curve(labels, probs, n_bins=10, strategy="uniform")
    np.testing.assert_allclose(curve.frac_damaged[filled], frac)
    np.testing.assert_allclose(curve.mean_prob[filled], mean)
    assert curve.counts.sum() == 7 and np.isnan(curve.mean_prob[~filled]).all()
    values = calibration_metrics(probs, labels, threshold=0.5)
    assert values["count_expected"] == pytest.approx(probs.sum())
    assert values["count_observed"] == 4
    assert values["count_thresholded"] == 4
    with pytest.raises(ValueError, match=r"lie in \[0, 1\]"):
        reliability_curve([0.5, 1.5], [0, 1])


def test_restore_calibration_of_an_old_checkpoint() -> None:
    state: dict[str, torch.Tensor] = {"threshold": torch.tensor(0.4)}
    with pytest.warns(UserWarning, match="'old.ckpt' stores no probability"):
        assert not restore_calibration(state, "checkpoint 'old.ckpt'")
    for key, value in CALIBRATION_BUFFERS.items():
        assert state[key].item() == value


def test_task_fits_stores_and_applies_the_calibration(tmp_path: Path) -> None:
    dm = TinyDataModule()
    task = _task(["sar", "footprint"])
    trainer = _trainer(tmp_path, max_epochs=1, limit_train_batches=1)
    trainer.fit(task, datamodule=dm)
    val = task.last_predictions["val"]
    assert val.logits is not None
    assert task.calibrated
    scale, bias = task.calibration
    assert (scale, bias) != (1.0, 0.0)
    fitted = fit_platt(val.logits, val.labels)
    assert scale == pytest.approx(fitted[0], rel=1e-5)
    assert bias == pytest.approx(fitted[1], rel=1e-5, abs=1e-6)
    # The validation probabilities (and so the threshold) are calibrated.
    # (float32 logits: equal up to float rounding, whatever the thread count).
    np.testing.assert_allclose(
        val.probs, apply_platt(val.logits, scale, bias), rtol=1e-5, atol=1e-7
    )
    test = trainer.test(task, datamodule=dm)[0]
    preds = task.last_predictions["test"]
    assert preds.logits is not None
    np.testing.assert_allclose(
        preds.probs, apply_platt(preds.logits, scale, bias), rtol=1e-6
    )
    assert test["test_count_expected"] == pytest.approx(preds.probs.sum(), rel=1e-5)
    assert test["test_count_observed"] == preds.labels.sum()
    assert test["test_brier"] == pytest.approx(brier_score(preds.probs, preds.labels))
    # predict_step returns calibrated probabilities.
    batches = trainer.predict(task, datamodule=dm)
    assert batches is not None
    prob = torch.cat([b["prob"] for b in batches if isinstance(b, dict)])
    prob_np = prob.double().numpy()
    np.testing.assert_allclose(prob_np, preds.probs, rtol=1e-5)
    # The checkpoint carries the calibration.
    path = tmp_path / "task.ckpt"
    trainer.save_checkpoint(path)
    loaded = DamageDetectionTask.load_from_checkpoint(path)
    assert loaded.calibrated and loaded.calibration == (
        float(task.calibration_scale),
        float(task.calibration_bias),
    )
    # A checkpoint of 0.1 (without the calibration buffers) loads uncalibrated.
    checkpoint = torch.load(path, weights_only=True)
    for key in CALIBRATION_BUFFERS:
        del checkpoint["state_dict"][key]
    torch.save(checkpoint, path)
    with pytest.warns(UserWarning, match="stores no probability calibration"):
        old = DamageDetectionTask.load_from_checkpoint(path)
    assert not old.calibrated and old.calibration == (1.0, 0.0)
    old.eval()
    x = {k: getattr(dm.test, k)[:4] for k in ("sar", "footprint")}
    with torch.no_grad():
        out = old.predict_step(x, 0)
        torch.testing.assert_close(out["prob"], torch.sigmoid(old(**x)))


def test_epoch_predictions_recalibrate_from_logits() -> None:
    logits = np.array([-1.0, 1.0])
    preds = EpochPredictions(
        probs=np.array([0.5, 0.5]),
        labels=np.array([0, 1]),
        building_ids=None,
        logits=logits,
    )
    recalibrated: np.ndarray = preds.calibrated(2.0, 0.5).probs
    np.testing.assert_allclose(recalibrated, apply_platt(logits, 2.0, 0.5))
    with pytest.raises(ValueError, match="no logits"):
        preds._replace(logits=None).calibrated(1.0, 0.0)
