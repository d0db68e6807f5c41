"""The buildings a simulated city keeps, and the extent of its SAR image.

The city is the set of candidate buildings
(:class:`~torchgeo_quake.simulation.footprints.Candidates`) with the highest
"urbanisation" score ``-r / R + 0.2 * G`` (``r`` an anisotropic distance from
the centre, ``R`` the radius that holds the target count at the layout's
density, ``G`` a Gaussian random field with 300 m correlation; candidates
beyond ``1.3 R`` are never chosen), so its edge is ragged. Exactly the target
number of buildings is kept; the SAR image is their bounding box grown by
60-100 m on each side, and its near-range swath edge (parallel to the satellite
track) is placed 70 m from the closest building, usually cutting a nodata wedge
from one corner. Every kept building's 32 x 32-pixel (80 m) window therefore
lies inside valid SAR data, with at least 60 m between its centroid and any
image edge or nodata. A further ~2 % of candidates whose centroid lies outside
the valid SAR area (beyond the image edge or in the nodata wedge) are kept as
the buildings the SAR image misses; all other candidates are dropped.

Its names were defined in :mod:`~torchgeo_quake.simulation.layout` before,
which still re-exports them.

.. versionadded:: 0.2
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import shapely

from .cities import CitySpec
from .fields import gaussian_random_field
from .footprints import Candidates

__all__ = [
    "EXTRA_SHARE",
    "IMAGE_MARGIN_M",
    "NODATA_MARGIN_M",
    "Selection",
    "city_radius",
    "select_buildings",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

#: Smallest distance between a kept building's centroid and an image edge.
IMAGE_MARGIN_M = 60.0
#: Distance between the closest kept building's centroid and the swath edge.
NODATA_MARGIN_M = 70.0
#: Share of extra buildings outside the valid SAR area (relative to the count).
EXTRA_SHARE = 0.02


@dataclass
class Selection:
    """The buildings a city keeps and the extent of its SAR image.

    Attributes:
        valid: positions (in the candidates) of the buildings inside the valid
            SAR area, which form the Table II counts
        extra: positions of the extra buildings outside the valid SAR area
        bounds: SAR image bounds (left, bottom, right, top), local metres,
            multiples of 5 m
        valid_area: polygon of valid (non-nodata) SAR data, local metres
        swath_normal: unit normal of the swath edge, pointing into the image
        swath_offset: the swath edge is ``normal . p = offset``

    .. versionadded:: 0.1
    """

    valid: IntArray
    extra: IntArray
    bounds: tuple[float, float, float, float]
    valid_area: shapely.Polygon
    swath_normal: FloatArray
    swath_offset: float


def city_radius(city: CitySpec, count: int) -> float:
    """Radius of a disc holding *count* buildings at the city's density.

    Args:
        city: the city
        count: number of buildings

    Returns:
        The radius in metres.

    .. versionadded:: 0.1
    """
    return math.sqrt(count / (math.pi * city.density_per_km2 / 1e6))


def select_buildings(
    city: CitySpec,
    candidates: Candidates,
    count: int,
    radius: float,
    rng: np.random.Generator,
) -> Selection | None:
    """Choose the city's buildings and the SAR image extent.

    Args:
        city: the city
        candidates: candidate buildings over the working area
        count: number of buildings the valid SAR area must hold
        radius: radius of the working area (metres)
        rng: random generator

    Returns:
        The selection, or None if the working area is too small for *count*
        buildings with the margins around them (the caller then enlarges it).

    .. versionadded:: 0.1
    """
    n_extra = max(1, round(EXTRA_SHARE * count))
    if len(candidates) < count + n_extra:
        return None
    stretch = math.sqrt(city.elongation)
    r = np.hypot(candidates.x * stretch, candidates.y / stretch)
    inner = 0.8 * radius
    density = np.count_nonzero(r < inner) / (math.pi * inner**2)
    r_need = math.sqrt(count / (math.pi * max(density, 1e-9)))
    while np.count_nonzero(r <= 1.3 * r_need) < count:
        r_need *= 1.05
        if 1.3 * r_need > radius:
            return None
    cell = 50.0
    n = math.ceil(2 * radius / cell) + 1
    noise = gaussian_random_field((n, n), cell, 300.0, rng)
    col = np.clip(((candidates.x + radius) / cell).astype(int), 0, n - 1)
    row = np.clip(((radius - candidates.y) / cell).astype(int), 0, n - 1)
    score = -r / r_need + 0.2 * noise[row, col]
    score[r > 1.3 * r_need] = -np.inf
    order = np.argsort(-score, kind="stable")
    valid = np.sort(order[:count])
    vx, vy = candidates.x[valid], candidates.y[valid]
    pads = IMAGE_MARGIN_M + rng.uniform(0.0, 40.0, size=4)
    left = math.floor((vx.min() - pads[0]) / 5.0) * 5.0
    bottom = math.floor((vy.min() - pads[1]) / 5.0) * 5.0
    right = math.ceil((vx.max() + pads[2]) / 5.0) * 5.0
    top = math.ceil((vy.max() + pads[3]) / 5.0) * 5.0
    if max(-left, -bottom, right, top) + 250.0 > radius:
        return None
    heading = math.radians(city.heading_deg)
    normal = np.array([math.cos(heading), -math.sin(heading)])
    if (normal[0] > 0) != (city.sensor_side == "WEST"):
        normal = -normal
    offset = float(np.min(normal[0] * vx + normal[1] * vy)) - NODATA_MARGIN_M
    rect = shapely.box(left, bottom, right, top)
    big = 10.0 * radius
    along = np.array([-normal[1], normal[0]])
    foot = offset * normal
    half_plane = shapely.Polygon(
        [
            foot - big * along,
            foot + big * along,
            foot + big * along + big * normal,
            foot - big * along + big * normal,
        ]
    )
    valid_area = shapely.intersection(rect, half_plane)
    rest = np.setdiff1d(np.arange(len(candidates)), valid)
    points = shapely.points(candidates.x[rest], candidates.y[rest])
    distance = shapely.distance(valid_area, points)
    eligible = rest[(distance >= 3.0) & (distance <= 120.0)]
    if eligible.size == 0:
        return None
    extra = np.sort(
        rng.choice(eligible, size=min(n_extra, eligible.size), replace=False)
    )
    return Selection(
        valid=valid.astype(np.int64),
        extra=extra.astype(np.int64),
        bounds=(left, bottom, right, top),
        valid_area=valid_area,
        swath_normal=normal,
        swath_offset=offset,
    )
