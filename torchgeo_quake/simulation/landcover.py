"""Surface model of a simulated city: land cover and object heights on a grid.

Both renderers work from the same surface model so the DSM and the SAR image
agree: the DSM sees the pre-event surface, the SAR image the post-event one.

Land cover (:class:`LandCover`)
    * urban blocks are the street-grid blocks holding at least one building
      (plus parks next to them); their interiors are paved yards, bare soil or
      gardens in the city's proportions, chosen by a random field with ~10 m
      correlation;
    * streets fill the space between urban blocks (everything within one street
      width of a block), and the two avenues cross the whole area;
    * open land is a grid of agricultural parcels (60-180 m), each bare soil
      (with its own roughness / moisture offset) or an orchard;
    * trees stand in gardens, parks and orchards: crowns where a random field
      with 3.5 m correlation exceeds a threshold, 60-100 % of the city's tree
      height.

Heights (metres above the terrain)
    * buildings: their roof height (post-event: times the residual factor of
      partially damaged buildings; collapsed ones have no roof);
    * debris (post-event): a heap over each collapsed building's footprint,
      spreading beyond it, with 1:2 flanks up to the heap height and a rough
      top; partially damaged buildings shed a low apron of debris (up to 1.2 m)
      along one side;
    * tree crowns.

Collapse signatures (calibrated scenario, :mod:`~torchgeo_quake.simulation.collapse`)
    pancake collapses stand as a low flat slab stack (a roof at 10-25 % of the
    height) with a thin rubble fringe; partial collapses keep the half of the
    footprint away from their debris side standing and heap the other half;
    cleared sites are flat bare ground (trees and yards under the footprint
    removed), with no heap.

Random fields are drawn once per city over the DSM extent (:class:`CityFields`)
and sampled bilinearly on whichever grid is rendered.

.. versionadded:: 0.1
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import IntEnum
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
import rasterio.features
import shapely
from affine import Affine
from scipy import special

from .city import CitySimulation
from .collapse import CollapseMode
from .fields import GridField, gaussian_random_field

if TYPE_CHECKING:
    from .surface_plan import SurfacePlan

__all__ = [
    "CityFields",
    "LandCover",
    "PixelGrid",
    "Surface",
    "build_surface",
    "make_fields",
    "parcel_values",
    "rasterize",
]

FloatArray = npt.NDArray[np.float64]
F32Array = npt.NDArray[np.float32]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

#: Extra margin of the DSM (and of the random fields) around the SAR image.
DSM_MARGIN_M = 250.0


class LandCover(IntEnum):
    """Land-cover classes of the surface model.

    .. versionadded:: 0.1
    """

    GROUND = 0  #: bare soil, fields, unpaved yards
    ROAD = 1  #: asphalt streets
    PAVED = 2  #: paved yards, car parks
    VEGETATION = 3  #: tree crowns
    ROOF = 4  #: standing buildings
    DEBRIS = 5  #: rubble of damaged buildings


@dataclass(frozen=True)
class PixelGrid:
    """A north-up grid in local metres (origin at the city centre).

    Attributes:
        left: x of the left edge
        top: y of the top edge
        res: pixel size (metres)
        rows: number of rows
        cols: number of columns

    .. versionadded:: 0.1
    """

    left: float
    top: float
    res: float
    rows: int
    cols: int

    @classmethod
    def from_bounds(
        cls, bounds: tuple[float, float, float, float], res: float
    ) -> PixelGrid:
        """Grid covering *bounds* exactly.

        Args:
            bounds: (left, bottom, right, top), multiples of *res*
            res: pixel size

        Returns:
            The grid.
        """
        left, bottom, right, top = bounds
        return cls(
            left, top, res, round((top - bottom) / res), round((right - left) / res)
        )

    @property
    def shape(self) -> tuple[int, int]:
        """(rows, cols)."""
        return self.rows, self.cols

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(left, bottom, right, top) in local metres."""
        return (
            self.left,
            self.top - self.rows * self.res,
            self.left + self.cols * self.res,
            self.top,
        )

    def transform(self, origin: tuple[float, float] = (0.0, 0.0)) -> Affine:
        """Affine transform of the grid, optionally shifted to absolute coordinates.

        Args:
            origin: coordinates of the local origin (e.g. its UTM position)

        Returns:
            The transform.
        """
        return Affine(
            self.res, 0.0, self.left + origin[0], 0.0, -self.res, self.top + origin[1]
        )

    def centres(self) -> tuple[FloatArray, FloatArray]:
        """Pixel-centre coordinates along each axis.

        Returns:
            (x of each column, y of each row).
        """
        xs = self.left + (np.arange(self.cols, dtype=np.float64) + 0.5) * self.res
        ys = self.top - (np.arange(self.rows, dtype=np.float64) + 0.5) * self.res
        return np.asarray(xs, np.float64), np.asarray(ys, np.float64)


@dataclass(frozen=True)
class CityFields:
    """Random fields of a city's surface, shared by every rendered grid.

    Attributes:
        yard: block-interior type (10 m correlation), standard normal
        canopy: tree-crown field (3.5 m correlation), standard normal
        moisture: slow soil-moisture / roughness variation (250 m), normal
        parcel_seed: seed of the parcel hash

    .. versionadded:: 0.1
    """

    yard: GridField
    canopy: GridField
    moisture: GridField
    parcel_seed: int


def make_fields(sim: CitySimulation, rng: np.random.Generator) -> CityFields:
    """Draw the surface random fields over the DSM extent of a city.

    Args:
        sim: the city
        rng: random generator

    Returns:
        The fields.

    .. versionadded:: 0.1
    """
    left, bottom, right, top = sim.selection.bounds
    left -= DSM_MARGIN_M + 50.0
    bottom -= DSM_MARGIN_M + 50.0
    right += DSM_MARGIN_M + 50.0
    top += DSM_MARGIN_M + 50.0

    def field(res: float, corr: float) -> GridField:
        shape = (math.ceil((top - bottom) / res), math.ceil((right - left) / res))
        values = gaussian_random_field(shape, res, corr, rng)
        return GridField(values, left, top, res)

    return CityFields(
        yard=field(5.0, 10.0),
        canopy=field(2.5, 3.5),
        moisture=field(25.0, 250.0),
        parcel_seed=int(rng.integers(1, 2**31 - 1)),
    )


def parcel_values(
    x: FloatArray, y: FloatArray, angle_deg: float, seed: int
) -> tuple[FloatArray, FloatArray]:
    """Two uniform values per agricultural parcel, by hashing parcel indices.

    Parcels are 120 x 60 m cells of a grid rotated by *angle_deg*, with every
    other column of parcels split in two, so they are 60-180 m long.

    Args:
        x: local x of the points
        y: local y of the points
        angle_deg: grid orientation (degrees counter-clockwise from east)
        seed: hash seed

    Returns:
        Two arrays of values in [0, 1) (same for all points of a parcel).

    .. versionadded:: 0.1
    """
    t = math.radians(angle_deg)
    u = x * math.cos(t) + y * math.sin(t)
    v = -x * math.sin(t) + y * math.cos(t)
    i = np.floor(u / 120.0).astype(np.int64)
    j = np.floor(v / 60.0).astype(np.int64)
    split = (i % 2 == 0) & (np.mod(u, 120.0) > 60.0)
    key = (i * 2 + split) * 1_000_003 + j
    h = (key.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)) ^ np.uint64(seed)
    h ^= h >> np.uint64(29)
    h *= np.uint64(0xBF58476D1CE4E5B9)
    h ^= h >> np.uint64(32)
    a = (h & np.uint64(0xFFFFFF)).astype(np.float64) / float(0x1000000)
    b = ((h >> np.uint64(24)) & np.uint64(0xFFFFFF)).astype(np.float64) / float(
        0x1000000
    )
    return a, b


@dataclass
class Surface:
    """Surface model on a grid.

    Attributes:
        grid: the grid
        cover: land-cover class per pixel (:class:`LandCover` values)
        height: height above the terrain (metres)
        building: index of the standing building per pixel, -1 elsewhere
        debris: index of the building whose debris covers the pixel, -1 elsewhere
        parcel_offset: backscatter offset of open-land parcels (dB)
        moisture: slow soil-moisture field (standard normal)

    .. versionadded:: 0.1
    """

    grid: PixelGrid
    cover: npt.NDArray[np.uint8]
    height: F32Array
    building: npt.NDArray[np.int32]
    debris: npt.NDArray[np.int32]
    parcel_offset: F32Array
    moisture: F32Array


def rasterize(
    geoms: npt.NDArray[np.object_] | list[shapely.Geometry],
    values: npt.ArrayLike,
    grid: PixelGrid,
) -> npt.NDArray[np.int32]:
    """Burn polygons into an int32 raster (pixel centres inside), 0 elsewhere.

    Args:
        geoms: polygons in local metres
        values: value of each polygon
        grid: target grid

    Returns:
        The raster.

    .. versionadded:: 0.1
    """
    geoms = np.asarray(geoms, dtype=object)
    vals = np.asarray(values)
    if geoms.size > 1:
        # Shapes outside the grid hold no pixel centre: skip them (same raster).
        left, bottom, right, top = grid.bounds
        x0, y0, x1, y1 = shapely.bounds(geoms).T
        keep = ~((x1 < left) | (x0 > right) | (y1 < bottom) | (y0 > top))
        geoms, vals = geoms[keep], vals[keep]
    pairs = zip(list(geoms), vals.tolist(), strict=True)
    shapes = [(g, v) for g, v in pairs if g is not None]
    if not shapes:
        return np.zeros(grid.shape, dtype=np.int32)
    out = rasterio.features.rasterize(
        shapes, out_shape=grid.shape, transform=grid.transform(), fill=0, dtype="int32"
    )
    return np.asarray(out, dtype=np.int32)


def _blocks_and_roads(
    plan: SurfacePlan, grid: PixelGrid
) -> tuple[npt.NDArray[np.int32], IntArray, BoolArray, BoolArray]:
    """Urban blocks (with the parks next to buildings) and streets on a grid.

    Args:
        plan: the city's surface plan
        grid: target grid

    Returns:
        (block raster holding 1 + block index, 0 outside urban blocks; indices
        of the parks kept; True inside urban blocks; True on streets).
    """
    blocks = plan.blocks
    block = rasterize(plan.block_shapes, blocks + 1, grid)
    in_block = block > 0
    near_block = rasterize(plan.halo_shapes, np.ones(blocks.size), grid) > 0
    avenues = rasterize(plan.avenue_shapes, np.ones(len(plan.avenue_shapes)), grid)
    road = (near_block & ~in_block) | ((avenues > 0) & ~in_block)
    return block, plan.parks, in_block, road


def _collapse_sites(
    sim: CitySimulation,
    grid: PixelGrid,
    mode: IntArray,
    building: npt.NDArray[np.int32],
    cover: npt.NDArray[np.uint8],
    height: F32Array,
    fallen: list[shapely.Geometry],
) -> None:
    """Remove the fallen halves of partial collapses, clear the cleared sites.

    Args:
        sim: the city
        grid: target grid
        mode: collapse mode per building
        fallen: fallen half of each partial collapse (:class:`SurfacePlan`)
        building: standing-building index raster, updated in place
        cover: land-cover raster, updated in place
        height: height raster, updated in place
    """
    b = sim.buildings
    part = np.flatnonzero(mode == CollapseMode.PARTIAL)
    if part.size:
        hole = rasterize(fallen, part + 1, grid) - 1
        building[(hole >= 0) & (hole == building)] = -1
    cleared = np.flatnonzero(mode == CollapseMode.CLEARED)
    if cleared.size:
        site = (rasterize(b.polygons[cleared], np.ones(cleared.size), grid) > 0) & (
            building < 0
        )
        cover[site] = LandCover.GROUND
        height[site] = 0.0


def _standing_and_debris(
    sim: CitySimulation,
    grid: PixelGrid,
    post_event: bool,
    cover: npt.NDArray[np.uint8],
    height: F32Array,
    rng: np.random.Generator,
    plan: SurfacePlan,
) -> tuple[npt.NDArray[np.int32], npt.NDArray[np.int32]]:
    """Burn the standing buildings and (post-event) their debris into a surface.

    Args:
        sim: the city
        grid: target grid
        post_event: reduce the heights of damaged buildings, drop collapsed ones
            and add debris
        cover: land-cover raster, updated in place
        height: height raster, updated in place
        rng: random generator (debris roughness, unless *plan* holds the
            debris windows)
        plan: the surface plan of *grid* or of the grid it is a strip of

    Returns:
        (index of the standing building per pixel, index of the building whose
        debris covers the pixel), -1 elsewhere.
    """
    from .surface_plan import _heaps, _paste_heaps

    b = sim.buildings
    residual = sim.damage.residual if post_event else np.ones(len(b))
    standing = residual > 0
    ids = np.flatnonzero(standing)
    building = rasterize(b.polygons[ids], ids + 1, grid) - 1
    mode = sim.damage.mode if post_event else None
    if mode is not None:
        _collapse_sites(sim, grid, mode, building, cover, height, plan.fallen)
    roof = building >= 0
    heights = (sim.height * residual).astype(np.float32)
    height[roof] = heights[building[roof]]
    cover[roof] = LandCover.ROOF
    debris = np.full(grid.shape, -1, dtype=np.int32)
    if post_event:
        debris_height = np.zeros(grid.shape, dtype=np.float32)
        if plan.heaps is None:
            _heaps(sim, grid, debris_height, debris, rng)
        else:
            row0 = plan.row_of(grid)
            windows = plan.heaps_in(row0, row0 + grid.rows)
            _paste_heaps(windows, row0, debris_height, debris)
        rubble = (debris >= 0) & ~roof
        debris[~rubble] = -1
        height[rubble] = debris_height[rubble]
        cover[rubble] = LandCover.DEBRIS
    return building, debris


def build_surface(
    sim: CitySimulation,
    fields: CityFields,
    grid: PixelGrid,
    post_event: bool,
    rng: np.random.Generator,
    plan: SurfacePlan | None = None,
) -> Surface:
    """Build the surface model of a city on a grid.

    Args:
        sim: the city
        fields: the city's random fields
        grid: target grid (local metres)
        post_event: render the post-event surface (debris, reduced heights) or
            the pre-event one (all buildings intact)
        rng: random generator (debris roughness; unused when *plan* holds the
            debris windows)
        plan: whole-city steps computed once
            (:func:`~torchgeo_quake.simulation.surface_plan.plan_surface`),
            *grid* being a row strip of the plan's grid; with debris windows
            drawn (``SurfacePlan.draw_heaps``) every strip gets the rows of
            the whole grid's surface

    Returns:
        The surface.

    .. versionadded:: 0.1

    .. versionchanged:: 0.3
       Collapse modes of the calibrated scenario; added *plan*.
    """
    from .surface_plan import plan_surface

    city = sim.city
    if plan is None:
        plan = plan_surface(sim, grid)
    xs, ys = grid.centres()
    xx, yy = np.meshgrid(xs, ys)
    block, parks, in_block, road = _blocks_and_roads(plan, grid)

    cover = np.full(grid.shape, LandCover.GROUND, dtype=np.uint8)
    cover[road] = LandCover.ROAD
    yard = fields.yard.sample_grid(grid.left, grid.top, grid.res, grid.shape)
    paved_q, soil_q, _ = city.yard_mix
    # Standard-normal quantiles of the yard mix (the field is standardised).
    t_paved = float(special.ndtri(min(max(paved_q, 1e-6), 1 - 1e-6)))
    t_soil = float(special.ndtri(min(max(paved_q + soil_q, 1e-6), 1 - 1e-6)))
    is_park = np.isin(block, parks + 1)
    paved = in_block & ~is_park & (yard <= t_paved)
    garden = in_block & (is_park | (yard > t_soil))
    cover[paved] = LandCover.PAVED

    open_land = ~in_block & ~road
    a, offset_draw = parcel_values(
        xx, yy, city.block_orientation_deg + 8.0, fields.parcel_seed
    )
    orchard = open_land & (a < city.orchard_share)
    parcel_offset = np.where(open_land & ~orchard, 5.0 * (offset_draw - 0.5), 0.0)

    canopy = fields.canopy.sample_grid(grid.left, grid.top, grid.res, grid.shape)
    tree = (orchard & (canopy > 0.0)) | (garden & (canopy > 0.45))
    tree_height = city.tree_height_m * (0.6 + 0.4 * np.tanh(canopy.clip(0.0)))
    height = np.where(tree, tree_height, 0.0).astype(np.float32)
    cover[tree] = LandCover.VEGETATION

    building, debris = _standing_and_debris(
        sim, grid, post_event, cover, height, rng, plan
    )
    moisture = fields.moisture.sample_grid(grid.left, grid.top, grid.res, grid.shape)
    return Surface(
        grid=grid,
        cover=cover,
        height=height,
        building=building.astype(np.int32),
        debris=debris,
        parcel_offset=parcel_offset.astype(np.float32),
        moisture=moisture.astype(np.float32),
    )
