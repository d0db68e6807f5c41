"""Expected counts and totals with intervals (Poisson-binomial)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from torchgeo_quake.mapping import intervals
from torchgeo_quake.mapping.intervals import count_interval, sum_interval


def _brute_force_cdf(p: np.ndarray) -> np.ndarray:
    """CDF of the number of successes by enumerating every outcome."""
    pmf = np.zeros(len(p) + 1)
    for outcome in itertools.product((0, 1), repeat=len(p)):
        x = np.array(outcome)
        pmf[x.sum()] += np.prod(np.where(x == 1, p, 1 - p))
    return np.cumsum(pmf)


def test_exact_interval_is_the_poisson_binomial_quantiles() -> None:
    p = np.array([0.9, 0.05, 0.3, 0.6, 0.5, 0.15, 0.8, 0.02, 0.4, 0.7])
    cdf = _brute_force_cdf(p)
    got = count_interval(p, level=0.8)
    assert got.method == "exact"
    assert got.expected == pytest.approx(p.sum())
    assert got.low == int(np.searchsorted(cdf, 0.1 - 1e-12))
    assert got.high == int(np.searchsorted(cdf, 0.9 - 1e-12))
    assert got.low < got.expected < got.high


def test_not_scored_buildings_are_left_out_and_certain_ones_give_a_point() -> None:
    got = count_interval(np.array([1.0, 1.0, 0.0, np.nan]))
    assert (got.expected, got.low, got.high) == (2.0, 2.0, 2.0)


def test_refined_normal_agrees_with_the_exact_distribution(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rng = np.random.default_rng(0)
    p = rng.beta(0.2, 3.0, 1500)  # skewed: few likely-damaged buildings
    exact = count_interval(p)
    monkeypatch.setattr(intervals, "EXACT_LIMIT", 10)
    approx = count_interval(p)
    assert approx.method == "refined normal"
    assert abs(approx.low - exact.low) <= 1
    assert abs(approx.high - exact.high) <= 1


def test_sum_interval_matches_simulation() -> None:
    rng = np.random.default_rng(1)
    p = rng.beta(0.3, 2.0, 400)
    v = rng.gamma(1.0, 5.0, 400)
    got = sum_interval(p, v)
    draws = ((rng.random((20000, len(p))) < p) * v).sum(axis=1)
    low, high = np.quantile(draws, [0.05, 0.95])
    assert got.expected == pytest.approx(float((p * v).sum()))
    assert got.low == pytest.approx(low, rel=0.03)
    assert got.high == pytest.approx(high, rel=0.03)


def test_bad_level_and_probabilities_are_refused() -> None:
    with pytest.raises(ValueError, match="level"):
        count_interval([0.5], level=1.0)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        count_interval([1.5])
    with pytest.raises(ValueError, match="values"):
        sum_interval([0.5, 0.5], [1.0])


def test_widen_adds_the_spread_of_the_replicates() -> None:
    base = count_interval(np.full(100, 0.2))
    same = intervals.widen(base, np.full(50, base.expected), count=True)
    assert (same.low, same.high) == (base.low, base.high)
    totals = base.expected + np.linspace(-10.0, 10.0, 101)
    wide = intervals.widen(base, totals, count=True)
    assert wide.expected == base.expected and "bootstrap" in wide.method
    # Half-widths added in quadrature: 6 and 9 below, 7 and 9 above.
    assert (base.low, base.high) == (14.0, 27.0)
    assert wide.low == np.floor(base.expected - np.hypot(6, 9))
    assert wide.high == np.ceil(base.expected + np.hypot(7, 9))
    assert intervals.widen(base, [np.nan]) == base
