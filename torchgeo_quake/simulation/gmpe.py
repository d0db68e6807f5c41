"""Ground-motion model of the simulator: Akkar, Sandıkkaya & Bommer (2014), Rjb.

The median and the between-/within-event standard deviations of PGA and 5 %
damped SA(0.3 s), SA(0.6 s), SA(1.0 s) - the intensity measures of GEM's
Turkish vulnerability functions - follow

    Akkar, S., Sandıkkaya, M. A., Bommer, J. J. (2014) Empirical ground-motion
    models for point- and extended-source crustal earthquake scenarios in
    Europe and the Middle East. Bulletin of Earthquake Engineering 12(1),
    359-387, https://doi.org/10.1007/s10518-013-9461-4

(equations 2a/2b with the Joyner-Boore distance and the nonlinear site term
3a-3c). The model was derived from the RESORCE pan-European and Middle East
database, which holds many Turkish records. The coefficients are the rows of
Table 4a for the four IMTs, copied from OpenQuake hazardlib's
``AkkarEtAlRjb2014`` (``openquake/hazardlib/gsim/akkar_2014.py``, GEM
Foundation, AGPL-3.0 - the reference implementation); the test suite checks
this module against three rows of OpenQuake's verification table
``AKKAR_2014_RJB_MEAN.csv``.

Site condition: Vs30 from topographic slope, Wald & Allen (2007), Table 1
("active tectonic" regions): Vs30 is interpolated linearly in
``log10(slope)`` between the class boundaries (slope in m/m) 1e-4 -> 180,
2.2e-3 -> 240, 6.3e-3 -> 300, 0.018 -> 360, 0.05 -> 490, 0.10 -> 620,
0.138 -> 760 m/s and held constant outside that range. Wald, D. J., Allen,
T. I. (2007) Topographic slope as a proxy for seismic site conditions and
amplification. BSSA 97(5), 1379-1395, https://doi.org/10.1785/0120060267.

Cross-period correlation of the residuals: Baker, J. W., Jayaram, N. (2008)
Correlation of spectral acceleration values from NGA ground motion models.
Earthquake Spectra 24(1), 299-317, https://doi.org/10.1193/1.2857544
(PGA is taken as T = 0.01 s).

.. versionadded:: 0.3
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = [
    "GMPE_NAME",
    "IMTS",
    "IMT_PERIODS",
    "AkkarCoefficients",
    "akkar_2014_rjb",
    "baker_jayaram_correlation",
    "vs30_from_slope",
]

FloatArray = npt.NDArray[np.float64]

#: Name written into outputs.
GMPE_NAME = "AkkarEtAlRjb2014"

#: Intensity measures, in the order of the output bands.
IMTS: tuple[str, ...] = ("PGA", "SA(0.3)", "SA(0.6)", "SA(1.0)")

#: Period of each IMT in seconds (PGA as 0.01 s for the correlation models;
#: the Jayaram-Baker range uses 0 for PGA, see :mod:`.shaking`).
IMT_PERIODS: dict[str, float] = {
    "PGA": 0.0,
    "SA(0.3)": 0.3,
    "SA(0.6)": 0.6,
    "SA(1.0)": 1.0,
}


@dataclass(frozen=True)
class AkkarCoefficients:
    """One row of Table 4a of Akkar et al. (2014), Rjb model.

    Attributes:
        a1: constant
        a2: linear magnitude scaling below ``c1``
        a3: quadratic magnitude scaling
        a4: geometric spreading
        a5: magnitude dependence of the geometric spreading
        a6: near-source saturation term (km)
        a7: linear magnitude scaling above ``c1``
        a8: normal-faulting term
        a9: reverse-faulting term
        b1: linear site coefficient
        b2: nonlinear site coefficient
        sigma: within-event standard deviation (natural log)
        tau: between-event standard deviation (natural log)

    .. versionadded:: 0.3
    """

    a1: float
    a2: float
    a3: float
    a4: float
    a5: float
    a6: float
    a7: float
    a8: float
    a9: float
    b1: float
    b2: float
    sigma: float
    tau: float


#: Table 4a rows (via OpenQuake ``AkkarEtAlRjb2014.COEFFS``).
COEFFICIENTS: dict[str, AkkarCoefficients] = {
    "PGA": AkkarCoefficients(
        1.85329, 0.0029, -0.02807, -1.23452, 0.2529, 7.5, -0.5096, -0.1091,
        0.0937, -0.41997, -0.28846, 0.6201, 0.3501,
    ),
    "SA(0.3)": AkkarCoefficients(
        2.30150, 0.0029, -0.05672, -1.17072, 0.2529, 7.5, -0.5096, 0.0,
        0.0469, -0.82609, -0.45730, 0.6599, 0.3816,
    ),
    "SA(0.6)": AkkarCoefficients(
        1.37505, 0.0029, -0.10747, -0.96429, 0.2529, 7.5, -0.5096, 0.0,
        0.0219, -0.98499, -0.34053, 0.6630, 0.4060,
    ),
    "SA(1.0)": AkkarCoefficients(
        0.52349, 0.0029, -0.14345, -0.81838, 0.2529, 7.5, -0.5096, 0.0,
        0.0, -1.01331, -0.28702, 0.6787, 0.3943,
    ),
}  # fmt: skip

#: Reference magnitude, reference and limiting Vs30, nonlinear-site constants.
_C1 = 6.75
_VREF = 750.0
_VCON = 1000.0
_C = 2.5
_N = 3.2

#: Wald & Allen (2007) Table 1, active tectonic: (slope m/m, Vs30 m/s).
_SLOPE_VS30 = (
    (1.0e-4, 180.0),
    (2.2e-3, 240.0),
    (6.3e-3, 300.0),
    (1.8e-2, 360.0),
    (5.0e-2, 490.0),
    (1.0e-1, 620.0),
    (1.38e-1, 760.0),
)


def _rock_ln_median(
    c: AkkarCoefficients, magnitude: float, rjb_km: FloatArray, rake: float
) -> FloatArray:
    """Equation (2a)/(2b): ln of the median on the reference rock (Vs30 750).

    Args:
        c: coefficients of the IMT
        magnitude: moment magnitude
        rjb_km: Joyner-Boore distance (km)
        rake: rake angle (degrees)

    Returns:
        ln of the median in g.
    """
    slope = c.a2 if magnitude <= _C1 else c.a7
    normal = -135.0 < rake < -45.0
    reverse = 45.0 < rake < 135.0
    spreading = (c.a4 + c.a5 * (magnitude - _C1)) * np.log(np.hypot(rjb_km, c.a6))
    return np.asarray(
        c.a1
        + slope * (magnitude - _C1)
        + c.a3 * (8.5 - magnitude) ** 2
        + spreading
        + c.a8 * normal
        + c.a9 * reverse,
        dtype=np.float64,
    )


def _site_term(
    c: AkkarCoefficients, vs30: FloatArray, pga_rock: FloatArray
) -> FloatArray:
    """Equations (3a)-(3c): ln site amplification.

    Args:
        c: coefficients of the IMT
        vs30: Vs30 (m/s)
        pga_rock: median PGA on the reference rock (g)

    Returns:
        ln of the amplification.
    """
    ratio = np.minimum(vs30, _VCON) / _VREF
    linear = c.b1 * np.log(ratio)
    ratio_n = ratio**_N
    nonlinear = c.b2 * np.log((pga_rock + _C * ratio_n) / ((pga_rock + _C) * ratio_n))
    return np.asarray(
        np.where(vs30 < _VREF, linear + nonlinear, linear), dtype=np.float64
    )


def akkar_2014_rjb(
    imt: str,
    magnitude: float,
    rjb_km: npt.ArrayLike,
    vs30: npt.ArrayLike,
    rake: float = 0.0,
) -> tuple[FloatArray, float, float]:
    """Median and standard deviations of one IMT, Akkar et al. (2014), Rjb.

    Args:
        imt: one of :data:`IMTS`
        magnitude: moment magnitude (the model is derived for 4-8)
        rjb_km: Joyner-Boore distance in km (any shape; derived up to 200)
        vs30: Vs30 in m/s (broadcast against *rjb_km*; derived for 150-1200)
        rake: rake in degrees (normal -135..-45, reverse 45..135, otherwise
            strike-slip)

    Returns:
        (ln of the median in g, between-event ``tau``, within-event ``phi``).

    Raises:
        ValueError: If *imt* is unknown or a distance or Vs30 is not positive.

    .. versionadded:: 0.3
    """
    if imt not in COEFFICIENTS:
        raise ValueError(f"unknown IMT {imt!r}; use one of {', '.join(IMTS)}")
    rjb = np.asarray(rjb_km, dtype=np.float64)
    v = np.asarray(vs30, dtype=np.float64)
    if np.any(rjb < 0) or np.any(v <= 0):
        raise ValueError("Joyner-Boore distances must be >= 0 and Vs30 > 0")
    rjb, v = np.broadcast_arrays(rjb, v)
    c = COEFFICIENTS[imt]
    pga_rock = np.exp(_rock_ln_median(COEFFICIENTS["PGA"], magnitude, rjb, rake))
    ln_median = _rock_ln_median(c, magnitude, rjb, rake) + _site_term(c, v, pga_rock)
    return np.asarray(ln_median, dtype=np.float64), c.tau, c.sigma


def vs30_from_slope(slope: npt.ArrayLike) -> FloatArray:
    """Vs30 from topographic slope, Wald & Allen (2007), active tectonic.

    Args:
        slope: topographic slope in m/m (gradient magnitude, 30 arc-second
            scale), any shape

    Returns:
        Vs30 in m/s (180-760), shape of *slope*.

    Raises:
        ValueError: If a slope is negative.

    .. versionadded:: 0.3
    """
    s = np.asarray(slope, dtype=np.float64)
    if np.any(s < 0):
        raise ValueError("slopes must be non-negative (m/m)")
    knots = np.log10([k for k, _ in _SLOPE_VS30])
    values = [v for _, v in _SLOPE_VS30]
    logs = np.log10(np.maximum(s, 1e-12))
    return np.asarray(np.interp(logs, knots, values), dtype=np.float64)


def baker_jayaram_correlation(t1: float, t2: float) -> float:
    """Correlation of ln spectral accelerations at two periods (BJ 2008).

    Args:
        t1: first period in seconds (PGA: 0.01)
        t2: second period in seconds

    Returns:
        The correlation coefficient.

    Raises:
        ValueError: If a period is outside 0.01-10 s.

    .. versionadded:: 0.3
    """
    if not (0.01 <= t1 <= 10.0 and 0.01 <= t2 <= 10.0):
        raise ValueError(f"periods must be within 0.01-10 s, got {t1} and {t2}")
    t_min, t_max = min(t1, t2), max(t1, t2)
    c1 = 1.0 - math.cos(math.pi / 2 - 0.366 * math.log(t_max / max(t_min, 0.109)))
    if t_max < 0.2:
        c2 = 1.0 - 0.105 * (1.0 - 1.0 / (1.0 + math.exp(100.0 * t_max - 5.0))) * (
            t_max - t_min
        ) / (t_max - 0.0099)
    else:
        c2 = 0.0
    c3 = c2 if t_max < 0.109 else c1
    c4 = c1 + 0.5 * (math.sqrt(c3) - c3) * (1.0 + math.cos(math.pi * t_min / 0.109))
    if t_max < 0.109:
        return c2
    if t_min > 0.109:
        return c1
    if t_max < 0.2:
        return min(c2, c4)
    return c4
