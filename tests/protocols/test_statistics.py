"""Statistics of the protocol tables: SD, paired intervals, bootstrap, null."""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from torchgeo_quake.protocols import build_table, format_markdown, write_tables
from torchgeo_quake.protocols.statistics import (
    bootstrap_weights,
    null_reference,
    paired_bootstrap,
    paired_t_interval,
    sample_std,
    weighted_metrics,
)
from torchgeo_quake.trainers.metrics import (
    best_f1_threshold,
    ranking_metrics,
    threshold_metrics,
)


def test_sample_std_is_ddof_1() -> None:
    values = [0.3, 0.5, 0.9, 0.4]
    assert sample_std(values) == pytest.approx(np.std(values, ddof=1))
    assert sample_std([0.3, math.nan, 0.5]) == pytest.approx(np.std([0.3, 0.5], ddof=1))
    assert math.isnan(sample_std([0.3]))


def test_paired_t_interval() -> None:
    rng = np.random.default_rng(0)
    clear = 0.05 + rng.normal(0, 0.01, 10)
    interval = paired_t_interval(clear)
    assert interval.low > 0 and interval.significant
    assert interval.mean == pytest.approx(clear.mean())
    # The half-width is t(0.975, 9) · s / sqrt(10).
    half = 2.2621571628 * clear.std(ddof=1) / math.sqrt(10)
    assert interval.high - interval.mean == pytest.approx(half, rel=1e-6)
    noise = rng.normal(0, 0.05, 10)
    noisy = paired_t_interval(noise - noise.mean() + 0.001)
    assert noisy.low < 0 < noisy.high and not noisy.significant
    # Nadeau-Bengio: the variance grows by n_test/n_train, the interval widens.
    corrected = paired_t_interval(clear, test_train_ratio=0.25)
    ratio = (corrected.high - corrected.mean) / (interval.high - interval.mean)
    assert ratio == pytest.approx(math.sqrt((1 / 10 + 0.25) * 10))
    assert "Nadeau" in corrected.method
    single = paired_t_interval([0.1])
    assert single.mean == 0.1 and math.isnan(single.low) and not single.significant
    with pytest.raises(ValueError, match="confidence"):
        paired_t_interval(clear, confidence=1.5)


def _reference(scores: np.ndarray, labels: np.ndarray, val: float) -> dict[str, Any]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        best = best_f1_threshold(scores, labels)
        out = {**threshold_metrics(scores, labels, best)}
        out.update(ranking_metrics(scores, labels))
        at_val = threshold_metrics(scores, labels, val)
    out.update({f"{k}_valthr": v for k, v in at_val.items()})
    return out


def test_weighted_metrics_match_the_trainer_metrics() -> None:
    rng = np.random.default_rng(1)
    labels = (rng.random(200) < 0.15).astype(int)
    # Rounded: ties between buildings, as with saturated probabilities.
    scores = np.round(rng.random(200) * 0.7 + 0.3 * labels, 2)
    ones = weighted_metrics(scores, labels, threshold=0.5)
    weights = bootstrap_weights(200, 4, rng)
    assert (weights.sum(axis=1) == 200).all()
    resampled = weighted_metrics(scores, labels, weights, threshold=0.5)
    for k in range(4):
        index = np.repeat(np.arange(200), weights[k])
        expected = _reference(scores[index], labels[index], 0.5)
        for key, value in expected.items():
            assert resampled[key][k] == pytest.approx(value), key
    for key, value in _reference(scores, labels, 0.5).items():
        assert ones[key][0] == pytest.approx(value), key


def _pair(
    rng: np.random.Generator, n: int = 400, gain: float = 2.0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    labels = (rng.random(n) < 0.1).astype(int)
    weak = 1 / (1 + np.exp(-(rng.normal(0, 1, n) + 0.5 * labels)))
    strong = 1 / (1 + np.exp(-(rng.normal(0, 1, n) + gain * labels)))
    return labels, strong, weak


def test_paired_bootstrap_is_seeded_and_detects_a_clear_difference() -> None:
    labels, strong, weak = _pair(np.random.default_rng(2))
    args = ([labels], [strong], [weak], [0.5], [0.5])
    first = paired_bootstrap(*args, replicates=300, seed=7)
    again = paired_bootstrap(*args, replicates=300, seed=7)
    other = paired_bootstrap(*args, replicates=300, seed=8)
    assert first == again
    assert first["auroc"].low != other["auroc"].low
    assert first["auroc"].significant and first["auroc"].low > 0
    assert first["ap"].significant and first["f1"].significant
    assert "f1_valthr" in first
    # A configuration against itself: every difference is zero.
    same = paired_bootstrap([labels], [weak], [weak], replicates=50, seed=0)
    assert same["auroc"].mean == 0 and not same["auroc"].significant
    # Two equally weak models: the interval holds zero.
    rng = np.random.default_rng(3)
    twin = 1 / (1 + np.exp(-(rng.normal(0, 1, labels.size) + 0.5 * labels)))
    noise = paired_bootstrap([labels], [twin], [weak], replicates=300, seed=0)
    assert noise["auroc"].low < 0 < noise["auroc"].high


@pytest.mark.parametrize(
    ("intact", "damaged", "mean", "p95"),
    [(317, 16, 0.129, 0.196), (453, 23, 0.121, 0.175)],
)
def test_null_reference_matches_the_issue(
    intact: int, damaged: int, mean: float, p95: float
) -> None:
    # Osmaniye and Türkoğlu: random scores reach these best-F1 values.
    null = null_reference(damaged, intact, draws=1000, seed=0)
    f1_mean, f1_median, f1_p95 = null.summary("f1")
    assert f1_mean == pytest.approx(mean, abs=0.006)
    assert f1_p95 == pytest.approx(p95, abs=0.012)
    assert f1_median <= f1_p95
    auroc_mean, _, _ = null.summary("auroc")
    assert auroc_mean == pytest.approx(0.5, abs=0.01)
    assert null.text().startswith("null F1 0.1")
    again = null_reference(damaged, intact, draws=1000, seed=0)
    assert np.array_equal(null.f1, again.f1)
    with pytest.raises(ValueError, match="damaged and intact"):
        null_reference(0, intact)


def _run(
    folder: Path, config: str, city: str, labels: np.ndarray, probs: np.ndarray
) -> dict[str, Any]:
    directory = folder / "runs" / config / city / "seed0"
    directory.mkdir(parents=True)
    ids = np.arange(labels.size)[::-1]  # an order other than sorted
    np.savez(
        directory / "predictions.npz",
        probs=probs[::-1],
        labels=labels[::-1],
        building_ids=ids,
        cities=np.full(labels.size, city),
        logits=np.log(probs / (1 - probs))[::-1],
    )
    metrics = _reference(probs, labels, 0.5)
    return {
        "config": config,
        "label": config.upper(),
        "split": city,
        "seed": 0,
        "metrics": {f"test_{k}": v for k, v in metrics.items()},
        "val_threshold": 0.5,
        "n_test": int(labels.size),
        "n_test_damaged": int(labels.sum()),
        "directory": str(directory),
    }


def test_loco_bold_follows_the_bootstrap(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    records = []
    for city, gain in (("osmaniye", 3.0), ("nurdagi", 0.5)):
        labels, strong, weak = _pair(rng, n=333, gain=gain)
        records.append(_run(tmp_path, "sar_ftp", city, labels, weak))
        records.append(_run(tmp_path, "better", city, labels, strong))
    table = build_table(records, "loco", "bestf1", order=["sar_ftp", "better"])
    auroc = table.cells[("Osmaniye", "BETTER"), "AUROC"]
    assert auroc.bold and auroc.comparison is not None
    assert auroc.comparison.low > 0
    assert not table.cells[("Osmaniye", "SAR_FTP"), "AUROC"].bold
    # The same model in Nurdağı: no clear difference, not bold.
    assert not table.cells[("Nurdağı", "BETTER"), "AUROC"].bold
    # Small test sets carry the null reference beside their first row.
    assert table.extra_column == "Null reference"
    assert table.extras[("Osmaniye", "SAR_FTP")].startswith("null F1 ")
    markdown = format_markdown(table)
    assert "| Null reference |" in markdown
    assert "▲" in markdown and "paired bootstrap" in table.caption
    files = write_tables(records, tmp_path / "tables", "loco", replicates=200)
    comparisons = (tmp_path / "tables" / "comparisons_loco.md").read_text()
    assert any(p.name == "comparisons_loco.csv" for p in files)
    assert "| Osmaniye | BETTER | AUROC | threshold-free |" in comparisons


def test_fold_intervals_use_the_split_sizes() -> None:
    records = [
        {
            "config": config,
            "split": f"fold{k}",
            "seed": 0,
            "metrics": {"test_f1_oracle": 0.5 + shift + 0.01 * k, "test_auroc": 0.8},
            "n_test": 100,
            "n_train": 400,
            "n_test_damaged": 12,
        }
        for k in range(5)
        for config, shift in (("sar_ftp", 0.0), ("other", 0.1))
    ]
    table = build_table(records, "cv", "bestf1", order=["sar_ftp", "other"])
    f1 = table.cells[("F1 score",), "other"]
    assert f1.bold and f1.comparison is not None
    assert "Nadeau" in f1.comparison.method and "0.250" in table.caption
    assert not table.cells[("AUROC",), "other"].bold  # no difference
    # The typical fold's null reference is in the caption.
    assert "typical test fold (100 buildings, 12 damaged)" in table.caption
