"""Whole-city steps of the surface model, computed once for strip-wise renders.

:func:`~torchgeo_quake.simulation.landcover.build_surface` can build the
surface of a city on row strips of a grid instead of the whole grid, to bound
memory (the SAR image and the DSM of a large city are rendered strip by
strip). What does not depend on the strip is computed once per grid in a
:class:`SurfacePlan` (:func:`plan_surface`): the urban blocks and the parks
kept next to buildings (selected with an STR tree), the street halo and
avenue polygons, the fallen halves of partial collapses and - drawn once on
the whole grid, in building order, from the generator the whole-grid surface
would get - the debris heaps and aprons. Every strip then holds exactly the
rows of the whole-grid surface.

Debris (post-event)
    a heap over each collapsed building's footprint spreading beyond it, with
    1:2 flanks up to the heap height and a rough top (roughness 0.35, 0.15 for
    pancake collapses); partial collapses heap their fallen half; partially
    damaged buildings shed a low apron (up to 1.2 m) along one side.

.. versionadded:: 0.3
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import shapely
import shapely.affinity
from scipy import ndimage

from .city import CitySimulation
from .collapse import CollapseMode, split_footprint
from .landcover import PixelGrid, rasterize

__all__ = ["SurfacePlan", "plan_surface"]

F32Array = npt.NDArray[np.float32]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


def _apron(
    polygon: shapely.Polygon, angle_deg: float, side: int, spread: float
) -> shapely.Geometry:
    """Debris apron along one side of a partially damaged building.

    Args:
        polygon: footprint
        angle_deg: orientation of the footprint axes
        side: 0-3, which side (along the building axes)
        spread: width of the apron (metres)

    Returns:
        The apron polygon (outside the footprint).
    """
    t = math.radians(angle_deg + 90.0 * side)
    shifted = shapely.affinity.translate(
        polygon, xoff=spread * math.cos(t), yoff=spread * math.sin(t)
    )
    return shapely.difference(shapely.union(polygon, shifted).convex_hull, polygon)


@dataclass(frozen=True)
class _HeapWindow:
    """Debris heap or apron of one building in a window of a grid.

    Attributes:
        index: the building
        r0: first row of the window in the grid
        c0: first column of the window in the grid
        mask: True where the debris lies
        height: debris height (0 outside *mask*)
    """

    index: int
    r0: int
    c0: int
    mask: BoolArray
    height: F32Array


def _heap_windows(
    sim: CitySimulation, grid: PixelGrid, rng: np.random.Generator
) -> Iterator[_HeapWindow]:
    """Debris heaps and aprons of the damaged buildings, in building order.

    Args:
        sim: the city
        grid: target grid
        rng: random generator (one roughness draw per window)

    Yields:
        The window of each building with debris on *grid*.
    """
    dmg = sim.damage
    b = sim.buildings
    res = grid.res
    mode = dmg.mode
    for i in np.flatnonzero(dmg.grade > 0):
        roughness = 0.35
        if mode is not None and mode[i] == CollapseMode.CLEARED:
            continue
        if mode is not None and mode[i] == CollapseMode.PARTIAL:
            _, fallen = split_footprint(
                b.polygons[i], b.angle_deg[i], int(dmg.apron_side[i])
            )
            shape = shapely.buffer(fallen, dmg.spread[i], quad_segs=4)
            top, flank = dmg.heap_height[i], 0.5
        elif dmg.grade[i] == 2:
            shape = shapely.buffer(b.polygons[i], dmg.spread[i], quad_segs=4)
            top, flank = dmg.heap_height[i], 0.5
            if mode is not None and mode[i] == CollapseMode.PANCAKE:
                roughness = 0.15
        else:
            shape = _apron(
                b.polygons[i], b.angle_deg[i], int(dmg.apron_side[i]), dmg.spread[i]
            )
            top, flank = 1.2, 0.5
        if shape.is_empty:
            continue
        x0, y0, x1, y1 = shape.bounds
        c0 = max(math.floor((x0 - grid.left) / res) - 1, 0)
        c1 = min(math.ceil((x1 - grid.left) / res) + 1, grid.cols)
        r0 = max(math.floor((grid.top - y1) / res) - 1, 0)
        r1 = min(math.ceil((grid.top - y0) / res) + 1, grid.rows)
        if c1 <= c0 or r1 <= r0:
            continue
        local = PixelGrid(
            grid.left + c0 * res, grid.top - r0 * res, res, r1 - r0, c1 - c0
        )
        mask = rasterize([shape], [1], local) > 0
        if not mask.any():
            continue
        inside = ndimage.distance_transform_edt(mask) * res
        rough = ndimage.gaussian_filter(rng.standard_normal(mask.shape), 1.0 / res)
        h = np.minimum(top, flank * inside) * (
            1.0 + roughness * rough / max(rough.std(), 1e-6)
        )
        h = np.where(mask, np.maximum(h, 0.2), 0.0).astype(np.float32)
        yield _HeapWindow(int(i), r0, c0, mask, h)


def _paste_heaps(
    windows: Iterable[_HeapWindow],
    row0: int,
    height: F32Array,
    debris: npt.NDArray[np.int32],
) -> None:
    """Paste heap windows into rasters (first building wins, in place).

    Args:
        windows: heap windows, in building order, on a grid whose row *row0*
            is the first row of the rasters (same columns)
        row0: row offset of the rasters in the windows' grid
        height: height raster, updated with debris heights
        debris: debris index raster, updated
    """
    rows = height.shape[0]
    for w in windows:
        a = max(w.r0, row0)
        b = min(w.r0 + w.mask.shape[0], row0 + rows)
        if b <= a:
            continue
        cols = np.s_[w.c0 : w.c0 + w.mask.shape[1]]
        mask = w.mask[a - w.r0 : b - w.r0]
        win_h = height[a - row0 : b - row0, cols]
        win_d = debris[a - row0 : b - row0, cols]
        free = mask & (win_d < 0)
        win_h[free] = w.height[a - w.r0 : b - w.r0][free]
        win_d[free] = w.index


def _heaps(
    sim: CitySimulation,
    grid: PixelGrid,
    height: F32Array,
    debris: npt.NDArray[np.int32],
    rng: np.random.Generator,
) -> None:
    """Render debris heaps and aprons in local windows (in place).

    Args:
        sim: the city
        grid: target grid
        height: height raster, updated with debris heights
        debris: debris index raster, updated
        rng: random generator
    """
    _paste_heaps(_heap_windows(sim, grid, rng), 0, height, debris)


@dataclass
class SurfacePlan:
    """What :func:`build_surface` computes once per grid, for row strips of it.

    Strips (:meth:`strip`) of the grid then give the same surface as the whole
    grid, row for row, without redoing whole-city steps per strip.

    Attributes:
        grid: the whole grid
        parks: indices of the parks kept (next to buildings)
        blocks: indices of the urban blocks and kept parks
        block_shapes: their polygons
        halo_shapes: their polygons buffered by the street halo
        avenue_shapes: the avenues buffered to their width
        fallen: fallen halves of the partial collapses (calibrated scenario)
        heaps: post-event debris windows on *grid*, drawn once (None: none
            drawn yet)

    .. versionadded:: 0.3
    """

    grid: PixelGrid
    parks: IntArray
    blocks: IntArray
    block_shapes: npt.NDArray[np.object_]
    halo_shapes: npt.NDArray[np.object_]
    avenue_shapes: npt.NDArray[np.object_]
    fallen: list[shapely.Geometry]
    heaps: list[_HeapWindow] | None = None
    _heap_rows: IntArray | None = None

    def strip(self, r0: int, r1: int) -> PixelGrid:
        """Grid of rows *r0* to *r1* (exclusive) of the whole grid.

        Args:
            r0: first row
            r1: end row

        Returns:
            The strip's grid.

        Raises:
            ValueError: If the rows are not inside the grid.
        """
        g = self.grid
        if not 0 <= r0 < r1 <= g.rows:
            raise ValueError(f"strip rows {r0}:{r1} outside the grid's {g.rows}")
        return PixelGrid(g.left, g.top - r0 * g.res, g.res, r1 - r0, g.cols)

    def row_of(self, grid: PixelGrid) -> int:
        """Row of the whole grid where a strip starts.

        Args:
            grid: a strip of the grid (:meth:`strip`)

        Returns:
            Its first row.

        Raises:
            ValueError: If *grid* is not a row strip of the plan's grid.
        """
        g = self.grid
        row = round((g.top - grid.top) / g.res)
        if (grid.left, grid.res, grid.cols) != (g.left, g.res, g.cols) or (
            g.top - row * g.res != grid.top or row < 0 or row + grid.rows > g.rows
        ):
            raise ValueError(f"grid {grid} is not a row strip of {g}")
        return row

    def draw_heaps(self, sim: CitySimulation, rng: np.random.Generator) -> None:
        """Draw the post-event debris windows on the whole grid (once).

        Args:
            sim: the city
            rng: random generator (the one :func:`build_surface` would get)
        """
        self.heaps = list(_heap_windows(sim, self.grid, rng))
        self._heap_rows = np.array(
            [(w.r0, w.r0 + w.mask.shape[0]) for w in self.heaps], dtype=np.int64
        ).reshape(-1, 2)

    def heaps_in(self, r0: int, r1: int) -> list[_HeapWindow]:
        """Debris windows touching rows *r0* to *r1*, in building order.

        Args:
            r0: first row
            r1: end row

        Returns:
            The windows.
        """
        if self.heaps is None or self._heap_rows is None:
            return []
        rows = self._heap_rows
        hit = np.flatnonzero((rows[:, 0] < r1) & (rows[:, 1] > r0))
        return [self.heaps[i] for i in hit]


def plan_surface(sim: CitySimulation, grid: PixelGrid) -> SurfacePlan:
    """Compute the whole-city steps of :func:`build_surface` once for a grid.

    Args:
        sim: the city
        grid: the whole grid

    Returns:
        The plan (without debris windows: see :meth:`SurfacePlan.draw_heaps`).

    .. versionadded:: 0.3
    """
    streets = sim.streets
    blocks, parks = _urban_blocks(sim)
    halo = 0.95 * sim.city.road_width_m[1] + 1.0
    mode = sim.damage.mode
    fallen: list[shapely.Geometry] = []
    if mode is not None:
        b = sim.buildings
        fallen = [
            split_footprint(
                b.polygons[i], b.angle_deg[i], int(sim.damage.apron_side[i])
            )[1]
            for i in np.flatnonzero(mode == CollapseMode.PARTIAL)
        ]
    return SurfacePlan(
        grid=grid,
        parks=parks,
        blocks=blocks,
        block_shapes=streets.blocks[blocks],
        halo_shapes=shapely.buffer(streets.blocks[blocks], halo, quad_segs=2),
        avenue_shapes=shapely.buffer(
            streets.arterials, 0.5 * streets.arterial_width, cap_style="flat"
        ),
        fallen=fallen,
    )


def _urban_blocks(sim: CitySimulation) -> tuple[IntArray, IntArray]:
    """Urban blocks: those holding buildings, and the parks next to buildings.

    Args:
        sim: the city

    Returns:
        (indices of the blocks and kept parks, indices of the kept parks).
    """
    streets = sim.streets
    b = sim.buildings
    used = np.unique(b.block)
    parks = np.flatnonzero(streets.kind == "park")
    if parks.size:
        centroids = shapely.centroid(streets.blocks[parks])
        tree = shapely.STRtree(shapely.points(b.x, b.y))
        near = np.zeros(parks.size, dtype=bool)
        hits = tree.query(centroids, predicate="dwithin", distance=150.0)
        near[np.unique(hits[0])] = True
        parks = parks[near]
    return np.concatenate([used, parks]), parks
