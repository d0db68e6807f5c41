r"""Expected counts and totals of a damage map, with intervals.

If building *i* is damaged with probability :math:`p_i`, independently of the
others, the number of damaged buildings follows a Poisson-binomial
distribution: its expected value is :math:`\sum_i p_i` and its spread follows
from the :math:`p_i` alone. :func:`count_interval` gives the expected number
and a central interval (90 % by default) of that distribution: computed exactly
for up to :data:`EXACT_LIMIT` buildings, else with the refined normal
approximation (a normal distribution corrected for skewness, Cornish–Fisher,
with a continuity correction; off by at most about one building at these
sizes). :func:`sum_interval` does the same for a total of building values
(occupants, replacement cost), :math:`\sum_i p_i v_i`, always with the refined
normal approximation. After a few-label recalibration, :func:`widen` adds the
uncertainty of the fit (a bootstrap of the labels).

What the interval assumes: probabilities that are **calibrated** (of buildings
given probability 0.2, one in five is damaged) and **independent** given the
model's inputs. It describes the chance variation of which buildings are
damaged, not the model's own error: a model that is wrong for a whole city
(e.g. on an image unlike its training data, see
:mod:`~torchgeo_quake.mapping.shift`) is not covered, and neighbouring
buildings' damage is correlated in reality, so the true spread is wider.

.. versionadded:: 0.2
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = [
    "EXACT_LIMIT",
    "LEVEL",
    "Interval",
    "count_interval",
    "sum_interval",
    "widen",
]

#: Default probability of the central interval.
LEVEL = 0.9

#: Most buildings whose count distribution is computed exactly.
EXACT_LIMIT = 2000


@dataclass(frozen=True)
class Interval:
    """An expected value and a central interval around it.

    .. versionadded:: 0.2
    """

    #: The expected value.
    expected: float
    #: Lower end of the interval.
    low: float
    #: Upper end of the interval.
    high: float
    #: Probability of the interval.
    level: float
    #: ``"exact"`` or ``"refined normal"``.
    method: str

    def as_dict(self, digits: int = 2) -> dict[str, Any]:
        """The interval as JSON-ready numbers.

        Args:
            digits: decimals of the rounded values

        Returns:
            ``expected``, ``low``, ``high``, ``level`` and ``method``.
        """
        return {
            "expected": round(self.expected, digits),
            "low": round(self.low, digits),
            "high": round(self.high, digits),
            "level": self.level,
            "method": self.method,
        }


def _check(probs: npt.ArrayLike, level: float) -> npt.NDArray[np.float64]:
    """The finite probabilities, checked.

    Args:
        probs: probabilities (NaN: not scored, left out)
        level: probability of the interval

    Returns:
        The finite probabilities as float64.

    Raises:
        ValueError: If *level* is not in (0, 1) or a probability is outside
            [0, 1].
    """
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    p = np.asarray(probs, dtype=np.float64).ravel()
    p = p[np.isfinite(p)]
    if len(p) and (p.min() < 0 or p.max() > 1):
        raise ValueError("probabilities must lie in [0, 1]")
    return p


def _z(level: float) -> tuple[float, float]:
    """Standard normal quantiles of the ends of a central interval.

    Args:
        level: probability of the interval

    Returns:
        The lower and upper quantiles.
    """
    tail = (1 - level) / 2
    return NormalDist().inv_cdf(tail), NormalDist().inv_cdf(1 - tail)


def _cornish_fisher(mean: float, var: float, third: float, z: float) -> float:
    """Quantile of a distribution from its first three moments.

    Args:
        mean: expected value
        var: variance (positive)
        third: third central moment
        z: standard normal quantile

    Returns:
        ``mean + sd * (z + skew * (z**2 - 1) / 6)``.
    """
    sd = math.sqrt(var)
    skew = third / sd**3
    return mean + sd * (z + skew * (z * z - 1) / 6)


def _exact_pmf(p: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Poisson-binomial probabilities of 0, ..., n successes.

    Args:
        p: success probabilities

    Returns:
        The n + 1 probabilities.
    """
    pmf = np.zeros(len(p) + 1)
    pmf[0] = 1.0
    for k, pk in enumerate(p.tolist(), start=1):
        pmf[1 : k + 1] = pmf[1 : k + 1] * (1 - pk) + pmf[:k] * pk
        pmf[0] *= 1 - pk
    return pmf


def count_interval(probs: npt.ArrayLike, level: float = LEVEL) -> Interval:
    r"""Expected number of damaged buildings and its central interval.

    Args:
        probs: damage probability of each building (NaN: not scored, left out)
        level: probability of the interval

    Returns:
        :math:`\sum p_i` and the central interval of the Poisson-binomial
        distribution: ``low`` is the smallest count whose cumulative
        probability reaches ``(1 - level) / 2``, ``high`` the smallest reaching
        ``(1 + level) / 2``. Exact up to :data:`EXACT_LIMIT` buildings, else
        the refined normal approximation.

    Raises:
        ValueError: If *level* is not in (0, 1) or a probability is outside
            [0, 1].

    .. versionadded:: 0.2
    """
    p = _check(probs, level)
    mean = float(p.sum())
    tail = (1 - level) / 2
    if len(p) <= EXACT_LIMIT:
        cdf = np.cumsum(_exact_pmf(p))
        low = int(np.searchsorted(cdf, tail - 1e-12))
        high = int(np.searchsorted(cdf, 1 - tail - 1e-12))
        n = len(p)
        return Interval(mean, float(min(low, n)), float(min(high, n)), level, "exact")
    var = float((p * (1 - p)).sum())
    if var <= 0:
        return Interval(mean, mean, mean, level, "refined normal")
    third = float((p * (1 - p) * (1 - 2 * p)).sum())
    z_low, z_high = _z(level)
    ends = [
        float(
            min(max(math.ceil(_cornish_fisher(mean, var, third, z) - 0.5), 0), len(p))
        )
        for z in (z_low, z_high)
    ]
    return Interval(mean, ends[0], ends[1], level, "refined normal")


def sum_interval(
    probs: npt.ArrayLike, values: npt.ArrayLike, level: float = LEVEL
) -> Interval:
    r"""Expected total of building values in damaged buildings, and its interval.

    Args:
        probs: damage probability of each building (NaN: not scored, left out)
        values: value of each building (occupants, cost; NaN counts as 0)
        level: probability of the interval

    Returns:
        :math:`\sum p_i v_i` and the refined normal (Cornish–Fisher) central
        interval of :math:`\sum_i B_i v_i` with :math:`B_i` independent
        Bernoulli(:math:`p_i`), clipped to the possible totals.

    Raises:
        ValueError: If the arrays differ in length, *level* is not in (0, 1)
            or a probability is outside [0, 1].

    .. versionadded:: 0.2
    """
    p_all = np.asarray(probs, dtype=np.float64).ravel()
    v_all = np.asarray(values, dtype=np.float64).ravel()
    if len(p_all) != len(v_all):
        raise ValueError(f"{len(p_all)} probabilities but {len(v_all)} values")
    scored = np.isfinite(p_all)
    p = _check(p_all[scored], level)
    v = np.nan_to_num(v_all[scored], nan=0.0)
    mean = float((p * v).sum())
    var = float((p * (1 - p) * v * v).sum())
    if var <= 0:
        return Interval(mean, mean, mean, level, "refined normal")
    third = float((p * (1 - p) * (1 - 2 * p) * v**3).sum())
    z_low, z_high = _z(level)
    lowest, highest = float(v[v < 0].sum()), float(v[v > 0].sum())
    low, high = (
        min(max(_cornish_fisher(mean, var, third, z), lowest), highest)
        for z in (z_low, z_high)
    )
    return Interval(mean, low, high, level, "refined normal")


def widen(interval: Interval, totals: npt.ArrayLike, count: bool = False) -> Interval:
    """Widen an interval by the spread of replicate totals.

    When the probabilities are themselves uncertain (refitted on a few labels,
    :mod:`~torchgeo_quake.mapping.recalibration`), the total is computed again
    under each bootstrap replicate of the fit; the half-widths of the
    interval and of the replicates' central interval (same level, around
    their median) are added in quadrature on each side.

    Args:
        interval: the interval of the fitted probabilities
        totals: the expected total under each replicate (NaN: left out)
        count: round the ends outwards to whole numbers (counts)

    Returns:
        The wider interval (the same one without finite replicates).

    .. versionadded:: 0.2
    """
    t = np.asarray(totals, dtype=np.float64).ravel()
    t = t[np.isfinite(t)]
    if not len(t):
        return interval
    tail = (1 - interval.level) / 2
    low_r, mid, high_r = np.quantile(t, [tail, 0.5, 1 - tail])
    below = math.hypot(interval.expected - interval.low, max(mid - low_r, 0.0))
    above = math.hypot(interval.high - interval.expected, max(high_r - mid, 0.0))
    low, high = max(interval.expected - below, 0.0), interval.expected + above
    if count:
        low, high = float(math.floor(low)), float(math.ceil(high))
    return Interval(
        interval.expected,
        min(low, interval.low),
        max(high, interval.high),
        interval.level,
        interval.method + " + label-fit bootstrap",
    )
