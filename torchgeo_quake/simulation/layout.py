"""Street grids and blocks of a simulated city, and the city's layout as a whole.

Layout model (local metres, x east, y north, origin at the city centre):

* **Street grid** - a grid rotated by the city's block orientation (plus a few
  degrees per block) with irregular block lengths and depths and streets of
  varying width (one street in ten is a wider avenue); block edges are jittered
  inwards so streets are not perfectly uniform. The grid covers a disc (the
  *working area*) larger than the city. This module: :func:`generate_candidates`
  and :class:`StreetGrid`.
* **Blocks and buildings** - 5 % of the blocks become parks, 4 % hold one large
  building (school, mosque, industrial or commercial hall), the rest are lined
  with street-aligned footprints whose hidden GEM taxonomy fixes storeys and
  floor area; footprints never overlap. See
  :mod:`~torchgeo_quake.simulation.footprints` (:class:`Candidates`).
* **Selection** - the buildings with the highest "urbanisation" score form the
  city, with a ragged edge; the SAR image is their bounding box plus a margin,
  cut by the swath edge, and ~2 % more buildings outside the valid SAR area are
  kept as the ones the image misses. See
  :mod:`~torchgeo_quake.simulation.selection` (:func:`select_buildings`).

The names of the last two steps are re-exported here, where they were defined
before.

.. versionadded:: 0.1
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import numpy.typing as npt
import shapely

from .cities import CitySpec

# "X as X": names defined here before, re-exported (documented where defined).
from .footprints import BUILDING_KINDS as BUILDING_KINDS
from .footprints import Candidates as Candidates
from .footprints import _Placer
from .gem_neighbourhoods import NeighbourhoodGrid
from .selection import EXTRA_SHARE as EXTRA_SHARE
from .selection import IMAGE_MARGIN_M as IMAGE_MARGIN_M
from .selection import NODATA_MARGIN_M as NODATA_MARGIN_M
from .selection import Selection as Selection
from .selection import city_radius as city_radius
from .selection import select_buildings as select_buildings
from .stock import StockModel

__all__ = ["StreetGrid", "generate_candidates"]

FloatArray = npt.NDArray[np.float64]
ObjectArray = npt.NDArray[np.object_]


@dataclass
class StreetGrid:
    """Blocks and main roads of a city.

    Attributes:
        blocks: block polygons (local metres)
        kind: ``"regular"``, ``"park"``, ``"large"`` or (calibrated stock only)
            ``"open"`` per block
        angle_deg: orientation of each block (degrees counter-clockwise from east)
        arterials: centre lines of the two avenues crossing the city
        arterial_width: widths of the avenues (metres)
        road_width: typical street width of the city (metres)

    .. versionadded:: 0.1
    """

    blocks: ObjectArray
    kind: ObjectArray
    angle_deg: FloatArray
    arterials: ObjectArray
    arterial_width: FloatArray
    road_width: float


def _breaks(
    rng: np.random.Generator,
    extent: float,
    block: tuple[float, float],
    road: tuple[float, float],
) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
    """Alternating block and street intervals along one grid axis.

    Args:
        rng: random generator
        extent: the axis is covered from -extent to +extent
        block: range of block lengths
        road: range of street widths

    Returns:
        (blocks, streets): lists of (start, end) intervals.
    """
    blocks: list[tuple[float, float]] = []
    streets: list[tuple[float, float]] = []
    t = -extent - rng.uniform(0.0, block[1])
    while t < extent:
        length = rng.uniform(*block)
        blocks.append((t, t + length))
        width = rng.uniform(*road) * (1.8 if rng.random() < 0.1 else 1.0)
        streets.append((t + length, t + length + width))
        t += length + width
    return blocks, streets


class _Block(NamedTuple):
    """One block of the street grid in local metres.

    Attributes:
        corners: (4, 2) corners, counter-clockwise from the start of the long
            side that *eb* points away from
        centre: centre of the block
        ea: unit vector along the long side
        eb: unit vector along the short side
        length: long side (metres)
        depth: short side (metres)
        angle: orientation (degrees counter-clockwise from east)
    """

    corners: FloatArray
    centre: FloatArray
    ea: FloatArray
    eb: FloatArray
    length: float
    depth: float
    angle: float


def _block_frame(
    city: CitySpec,
    u: tuple[float, float],
    v: tuple[float, float],
    e_u: FloatArray,
    e_v: FloatArray,
    radius: float,
    rng: np.random.Generator,
) -> _Block | None:
    """The block between two pairs of streets, jittered inwards and tilted.

    Args:
        city: the city
        u: (start, end) of the block along the grid's first axis
        v: (start, end) of the block along its second axis
        e_u: unit vector of the first axis
        e_v: unit vector of the second axis
        radius: radius of the working area (metres)
        rng: random generator

    Returns:
        The block, or None if its centre lies outside the working area (no
        random number is drawn then).
    """
    u0, u1 = u
    v0, v1 = v
    uc, vc = 0.5 * (u0 + u1), 0.5 * (v0 + v1)
    centre = uc * e_u + vc * e_v
    if math.hypot(*centre) > radius:
        return None
    # Jitter the block edges inwards and its orientation a little.
    shrink = rng.uniform(0.0, 2.0, size=4)
    lu = (u1 - u0) - shrink[0] - shrink[1]
    lv = (v1 - v0) - shrink[2] - shrink[3]
    centre = centre + 0.5 * (shrink[0] - shrink[1]) * e_u
    centre = centre + 0.5 * (shrink[2] - shrink[3]) * e_v
    tilt = float(np.clip(rng.normal(0.0, 1.0), -2.0, 2.0))
    angle = city.block_orientation_deg + tilt
    t = math.radians(angle)
    eu = np.array([math.cos(t), math.sin(t)])
    ev = np.array([-math.sin(t), math.cos(t)])
    if lu >= lv:
        ea, eb, length, depth = eu, ev, lu, lv
    else:
        ea, eb, length, depth = ev, -eu, lv, lu
    corners = np.array(
        [
            centre - 0.5 * length * ea - 0.5 * depth * eb,
            centre + 0.5 * length * ea - 0.5 * depth * eb,
            centre + 0.5 * length * ea + 0.5 * depth * eb,
            centre - 0.5 * length * ea + 0.5 * depth * eb,
        ]
    )
    return _Block(corners, centre, ea, eb, length, depth, angle)


def _avenues(
    u_streets: list[tuple[float, float]],
    v_streets: list[tuple[float, float]],
    e_u: FloatArray,
    e_v: FloatArray,
    extent: float,
) -> tuple[ObjectArray, FloatArray]:
    """The two avenues: the streets closest to the centre along both grid axes.

    Args:
        u_streets: street intervals along the grid's first axis
        v_streets: street intervals along its second axis
        e_u: unit vector of the first axis
        e_v: unit vector of the second axis
        extent: half length of the avenues (metres)

    Returns:
        (centre lines, widths) of the two avenues.
    """
    u_mid = min(u_streets, key=lambda s: abs(s[0] + s[1]))
    v_mid = min(v_streets, key=lambda s: abs(s[0] + s[1]))
    uc = 0.5 * (u_mid[0] + u_mid[1])
    vc = 0.5 * (v_mid[0] + v_mid[1])
    arterials = np.empty(2, dtype=object)
    arterials[0] = shapely.LineString(
        [uc * e_u - extent * e_v, uc * e_u + extent * e_v]
    )
    arterials[1] = shapely.LineString(
        [vc * e_v - extent * e_u, vc * e_v + extent * e_u]
    )
    widths = np.array([max(u_mid[1] - u_mid[0], 12.0), max(v_mid[1] - v_mid[0], 12.0)])
    return arterials, widths


def generate_candidates(
    city: CitySpec,
    grid: NeighbourhoodGrid,
    radius: float,
    rng: np.random.Generator,
    stock: StockModel | None = None,
) -> tuple[StreetGrid, Candidates]:
    """Lay out streets, blocks and candidate buildings over a disc.

    Args:
        city: the city
        grid: neighbourhood grid with the taxonomy mixes
        radius: radius of the working area (metres)
        rng: random generator
        stock: footprint size and vacancy model of the ``calibrated`` scenario
            (:func:`~torchgeo_quake.simulation.stock.stock_model`); None keeps
            the v0.1 footprints

    Returns:
        The street grid and the candidate buildings.

    .. versionadded:: 0.1

    .. versionchanged:: 0.3
       The *stock* argument.
    """
    theta = math.radians(city.block_orientation_deg)
    e_u = np.array([math.cos(theta), math.sin(theta)])
    e_v = np.array([-math.sin(theta), math.cos(theta)])
    extent = radius * math.sqrt(2.0)
    u_blocks, u_streets = _breaks(rng, extent, city.block_length_m, city.road_width_m)
    v_blocks, v_streets = _breaks(rng, extent, city.block_depth_m, city.road_width_m)
    placer = _Placer(city, grid, rng, stock)
    polygons: list[shapely.Polygon] = []
    kinds: list[str] = []
    angles: list[float] = []
    for u in u_blocks:
        for v in v_blocks:
            block = _block_frame(city, u, v, e_u, e_v, radius, rng)
            if block is None:
                continue
            index = len(polygons)
            polygons.append(shapely.Polygon(block.corners))
            angles.append(block.angle)
            kind = placer.fill_block(
                block.corners,
                block.centre,
                block.ea,
                block.eb,
                block.length,
                block.depth,
                index,
                block.angle,
            )
            kinds.append(kind)
    candidates = placer.candidates(grid)
    arterials, widths = _avenues(u_streets, v_streets, e_u, e_v, extent)
    streets = StreetGrid(
        blocks=np.asarray(polygons, dtype=object),
        kind=np.asarray(kinds, dtype=object),
        angle_deg=np.asarray(angles, dtype=np.float64),
        arterials=arterials,
        arterial_width=widths,
        road_width=float(np.mean(city.road_width_m)),
    )
    return streets, candidates
