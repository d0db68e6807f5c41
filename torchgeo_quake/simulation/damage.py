"""Earthquake damage model of the simulator: shaking field x vulnerability.

Shaking
    ``ln PGA = ln(pga_mean) + sigma * G`` where ``G`` is a unit Gaussian random
    field with the city's correlation length (0.5-0.9 km), so strong shaking
    covers whole neighbourhoods (the within-event spatial correlation of ground
    motion).

Collapse propensity
    Each building gets ``eta = 2.5 * ln(PGA / 0.5) + v_material + v_code
    + v_ductility + v_height + era_weight * v_era + slope_weight * slope``,
    with masonry (adobe > brick > stone > hollow block) far more vulnerable than
    RC and steel, low or no seismic code and low ductility adding vulnerability,
    mid- and high-rise RC (soft storeys) and multi-storey masonry more fragile,
    older construction periods weaker (strongly so in Osmaniye, whose pre-1980
    stock failed), and - in Islahiye - steep ground adding foundation failures
    and landslides. A latent variable ``z = eta + e`` with logistic noise ``e``
    (scale ``propensity_noise``) is the threshold model of a logistic collapse
    probability.

Exact counts
    Among the buildings inside the valid SAR area (see
    :mod:`~torchgeo_quake.simulation.layout`), the ``C`` with the
    highest ``z`` collapse (damage grade 2). The damage reference misses a share
    ``f`` of them (OSM false negatives), chosen with probability proportional to
    ``1 / sqrt(area)`` (small buildings are missed more often):
    ``n_fn = max(1, round(D * f / (1 - f)))`` (at most the number of
    reference-intact buildings) and ``C = D + n_fn`` so that
    exactly the Table II number ``D`` of damaged buildings remains in the
    reference, and ``N - D`` are intact by the reference. The threshold ``tau``
    is the midpoint between the ``C``-th and ``(C + 1)``-th latent value and the
    reported collapse probability is ``1 / (1 + exp(-(eta - tau) / s))``.
    Partial damage (grade 1, not in the reference) goes to the
    ``round(partial_factor * C)`` non-collapsed buildings with the highest
    ``eta + e'`` (independent noise). The extra buildings outside the image are
    intact.

Because shaking is spatially correlated and vulnerability follows the
neighbourhood building stock, damage clusters in space; GEM (neighbourhood
mixes) is informative about it but not decisive. Height, which the DSM carries,
raises the propensity within a material but tall buildings are mostly the less
vulnerable RC, so over all buildings height alone is nearly uninformative (a
known limitation; measured in docs/simulator.md, "How informative each input
is").

.. versionadded:: 0.1
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

from .cities import CitySpec
from .fields import GridField, gaussian_random_field

__all__ = [
    "CODE_VULNERABILITY",
    "ERA_VULNERABILITY",
    "MATERIAL_VULNERABILITY",
    "Damage",
    "debris_geometry",
    "exact_count_grades",
    "false_negative_count",
    "shaking_field",
    "simulate_damage",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

#: Vulnerability (logit increment) per material group.
MATERIAL_VULNERABILITY: dict[str, float] = {
    "RC": 0.0,
    "MUR_CBH": 0.9,
    "MUR_BRICK": 1.3,
    "MUR_STONE": 1.1,
    "MUR_ADOBE": 1.6,
    "W": -0.3,
    "S": -0.8,
}
#: Vulnerability per GEM code level.
CODE_VULNERABILITY: dict[str, float] = {
    "CDN": 0.4,
    "CDL": 0.3,
    "CDM": -0.5,
    "CDH": -1.0,
}
#: Vulnerability per construction period (1960s, 1970s, 1980s, 1990s).
ERA_VULNERABILITY: tuple[float, ...] = (0.5, 0.35, 0.1, -0.1)
#: Increase of the logit per unit of ln(PGA).
SHAKING_COEFFICIENT = 2.5


@dataclass
class Damage:
    """True damage state of a city's buildings.

    Attributes:
        grade: 0 intact, 1 partially damaged, 2 collapsed
        in_reference: listed in the damage reference (``destroyed.geojson``)
        pga_g: peak ground acceleration at the building (g)
        propensity: collapse propensity ``eta`` (logit scale)
        probability: collapse probability
        threshold: latent threshold ``tau`` of collapse
        residual: height factor of the remaining structure (1 intact, 0.6-1
            partial, 0 collapsed)
        heap_height: height of the debris heap (metres; 0 unless collapsed)
        spread: how far debris spreads beyond the footprint (metres)
        apron_side: side (0-3) of a partially damaged building with debris at
            its foot, -1 for none
        mode: collapse signature per building (see
            :mod:`~torchgeo_quake.simulation.collapse`; -1 not collapsed), None
            for the v0.1 model (every collapse a spreading debris heap)
        neighbourhood: the neighbourhood term included in *propensity* (logit
            scale; see
            :func:`~torchgeo_quake.simulation.damage_gem.neighbourhood_term`),
            None for the v0.1 model, which has none

    .. versionadded:: 0.1

    .. versionchanged:: 0.3
       Added *mode* and *neighbourhood*.
    """

    grade: IntArray
    in_reference: BoolArray
    pga_g: FloatArray
    propensity: FloatArray
    probability: FloatArray
    threshold: float
    residual: FloatArray
    heap_height: FloatArray
    spread: FloatArray
    apron_side: IntArray
    mode: IntArray | None = None
    neighbourhood: FloatArray | None = None


def false_negative_count(damaged: int, share: float) -> int:
    """Number of collapsed buildings the reference misses.

    Args:
        damaged: number of damaged buildings the reference must list
        share: target share of collapsed buildings missing from the reference

    Returns:
        ``max(1, round(damaged * share / (1 - share)))``.

    .. versionadded:: 0.1
    """
    return max(1, round(damaged * share / (1.0 - share)))


def shaking_field(city: CitySpec, radius: float, rng: np.random.Generator) -> GridField:
    """Peak ground acceleration over the working area of a city.

    Args:
        city: the city
        radius: half the side of the square to cover (metres)
        rng: random generator

    Returns:
        PGA in g on a 25 m grid (local metres).

    .. versionadded:: 0.1
    """
    res = 25.0
    n = math.ceil(2 * radius / res) + 1
    g = gaussian_random_field((n, n), res, city.shaking_corr_m, rng)
    pga = np.exp(math.log(city.pga_mean_g) + city.pga_sigma_ln * g)
    return GridField(np.asarray(pga, np.float64), -0.5 * n * res, 0.5 * n * res, res)


def _vulnerability(
    city: CitySpec,
    attributes: pd.DataFrame,
    storeys: IntArray,
    period: IntArray,
    slope_deg: FloatArray,
) -> FloatArray:
    """Vulnerability part of the collapse propensity.

    Args:
        city: the city
        attributes: per-building ``material_group``, ``code`` and ``ductile``
        storeys: number of storeys
        period: construction period index
        slope_deg: terrain slope at the building

    Returns:
        Logit increments.
    """
    material = attributes["material_group"].to_numpy(object)
    v = np.array([MATERIAL_VULNERABILITY[str(m)] for m in material])
    v += attributes["code"].map(CODE_VULNERABILITY).to_numpy(np.float64)
    v -= 0.2 * attributes["ductile"].to_numpy(bool)
    rc = material == "RC"
    s = storeys.astype(np.float64)
    v += np.where(rc, 0.18 * np.clip(s - 3.0, -2.0, 5.0), 0.3 * (s - 1.0))
    v += city.era_weight * np.asarray(ERA_VULNERABILITY)[period]
    v += city.slope_weight * slope_deg
    return np.asarray(v, dtype=np.float64)


def exact_count_grades(
    city: CitySpec,
    latent: FloatArray,
    latent2: FloatArray,
    area: FloatArray,
    counted: BoolArray,
    n_damaged: int,
    rng: np.random.Generator,
) -> tuple[IntArray, BoolArray, float]:
    """Damage grades with the exact Table II count (see the module docstring).

    The ``C`` counted buildings with the highest *latent* collapse, partial
    damage goes to the highest *latent2* among the rest, and the reference
    misses ``n_fn`` collapsed buildings drawn with probability proportional to
    ``1 / sqrt(area)`` (one ``rng.choice``).

    Args:
        city: the city (``false_negative_share``, ``partial_factor``)
        latent: latent collapse variable per building
        latent2: latent variable of partial damage
        area: footprint area (m²)
        counted: True for the buildings inside the valid SAR area
        n_damaged: damaged buildings the reference must list
        rng: random generator

    Returns:
        (grade 0/1/2, listed in the reference, latent threshold of collapse).

    Raises:
        ValueError: If *n_damaged* is not between 1 and the number of counted
            buildings minus one.

    .. versionadded:: 0.3
    """
    n = latent.size
    counted_idx = np.flatnonzero(counted)
    if not 1 <= n_damaged < counted_idx.size:
        raise ValueError(
            f"{city.name}: {n_damaged} damaged buildings requested among "
            f"{counted_idx.size} buildings in the image"
        )
    n_fn = min(
        false_negative_count(n_damaged, city.false_negative_share),
        counted_idx.size - n_damaged,
    )
    n_collapse = n_damaged + n_fn
    order = counted_idx[np.argsort(-latent[counted_idx], kind="stable")]
    collapsed = order[:n_collapse]
    below = latent[order[n_collapse]] if n_collapse < order.size else latent.min() - 1
    threshold = 0.5 * (latent[order[n_collapse - 1]] + below)
    grade = np.zeros(n, dtype=np.int64)
    grade[collapsed] = 2
    rest = counted_idx[grade[counted_idx] == 0]
    n_partial = min(round(city.partial_factor * n_collapse), rest.size)
    grade[rest[np.argsort(-latent2[rest], kind="stable")[:n_partial]]] = 1
    weights = 1.0 / np.sqrt(area[collapsed])
    missed = rng.choice(collapsed, size=n_fn, replace=False, p=weights / weights.sum())
    in_reference = grade == 2
    in_reference[missed] = False
    return grade, np.asarray(in_reference, dtype=bool), float(threshold)


def debris_geometry(
    grade: IntArray, heights: FloatArray, rng: np.random.Generator
) -> tuple[FloatArray, FloatArray, FloatArray, IntArray]:
    """Debris geometry of the damaged buildings.

    Pancake heaps of ~20-35 % of the height spreading beyond the footprint;
    partially damaged buildings lose up to 40 % of their height and shed
    debris along one side.

    Args:
        grade: damage grade per building (0, 1, 2)
        heights: intact building heights (metres)
        rng: random generator (four draws, in this order)

    Returns:
        (residual height factor, heap height, spread, apron side), see
        :class:`Damage`.

    .. versionadded:: 0.3
    """
    n = grade.size
    residual = np.ones(n)
    residual[grade == 2] = 0.0
    residual[grade == 1] = rng.uniform(0.6, 1.0, size=int((grade == 1).sum()))
    heap = np.where(
        grade == 2, np.clip(heights * rng.uniform(0.2, 0.35, size=n), 1.2, 8.0), 0.0
    )
    spread = np.where(
        grade == 2,
        np.clip(heights * rng.uniform(0.15, 0.35, size=n), 2.0, 9.0),
        np.where(grade == 1, rng.uniform(1.5, 3.5, size=n), 0.0),
    )
    apron = np.where(grade == 1, rng.integers(0, 4, size=n), -1).astype(np.int64)
    return (
        residual,
        np.asarray(heap, dtype=np.float64),
        np.asarray(spread, dtype=np.float64),
        apron,
    )


def simulate_damage(
    city: CitySpec,
    attributes: pd.DataFrame,
    storeys: IntArray,
    period: IntArray,
    area: FloatArray,
    heights: FloatArray,
    pga_g: FloatArray,
    slope_deg: FloatArray,
    counted: BoolArray,
    n_damaged: int,
    rng: np.random.Generator,
) -> Damage:
    """Draw the true damage and the reference labels of a city's buildings.

    Args:
        city: the city
        attributes: per-building ``material_group``, ``code``, ``ductile``
        storeys: number of storeys
        period: construction period index (into ``PERIODS``)
        area: footprint area (m²)
        heights: intact building heights (metres)
        pga_g: peak ground acceleration at each building (g)
        slope_deg: terrain slope at each building (degrees)
        counted: True for the buildings inside the valid SAR area
        n_damaged: number of damaged buildings the reference must list among the
            counted ones (Table II, scaled)
        rng: random generator

    Returns:
        The damage state.

    Raises:
        ValueError: If *n_damaged* is not between 1 and the number of counted
            buildings minus one.

    .. versionadded:: 0.1
    """
    n = storeys.size
    eta = SHAKING_COEFFICIENT * np.log(pga_g / 0.5) + _vulnerability(
        city, attributes, storeys, period, slope_deg
    )
    noise = city.propensity_noise
    latent = eta + rng.logistic(0.0, noise, size=n)
    latent2 = eta + rng.logistic(0.0, noise, size=n)
    grade, in_reference, threshold = exact_count_grades(
        city, latent, latent2, area, counted, n_damaged, rng
    )
    probability = 1.0 / (1.0 + np.exp(-(eta - threshold) / noise))
    residual, heap, spread, apron = debris_geometry(grade, heights, rng)
    return Damage(
        grade=grade,
        in_reference=np.asarray(in_reference, dtype=bool),
        pga_g=np.asarray(pga_g, dtype=np.float64),
        propensity=np.asarray(eta, dtype=np.float64),
        probability=np.asarray(probability, dtype=np.float64),
        threshold=float(threshold),
        residual=residual,
        heap_height=np.asarray(heap, dtype=np.float64),
        spread=np.asarray(spread, dtype=np.float64),
        apron_side=apron,
    )
