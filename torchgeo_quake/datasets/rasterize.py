"""Burning building footprints into rasters: masks and the in-memory id raster.

:class:`~torchgeo_quake.datasets.osm.OSMBuildings` answers a building-centred
query with a mask of footprints on the query grid (:class:`_FootprintMasks`).
:func:`_burn` rasterises footprints with :func:`rasterio.features.rasterize`;
:class:`_IdRaster` holds the footprints of a whole dataset burnt once as row
ids (row + 1) on the grid of the first query, so that later queries on that
grid are slices of it. Masks are 1 m (1e-5 degrees) by default
(:func:`_default_res`).

The underscored names are internal to :mod:`torchgeo_quake.datasets`.

.. versionadded:: 0.2
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import rasterio.features
import shapely
from affine import Affine
from pyproj import CRS

from .fastpath import paused_gc
from .grid import _padded_window

__all__: list[str] = []


def _default_res(crs: Any) -> tuple[float, float]:
    """Default mask resolution: 1 m in a projected CRS, 1e-5 degrees otherwise.

    Args:
        crs: a CRS

    Returns:
        (xres, yres) in CRS units.
    """
    if CRS.from_user_input(crs).is_geographic:
        return (1e-5, 1e-5)
    return (1.0, 1.0)


def _geojson(geoms: np.ndarray) -> list[Any]:
    """GeoJSON-like mappings of geometries, fast for simple polygons.

    :func:`rasterio.features.rasterize` reads ``__geo_interface__`` of each
    shapely geometry, which costs ~25 µs per polygon; building the mappings of
    hole-free polygons from one vectorised coordinate array is 3× faster.

    Args:
        geoms: array of shapely geometries

    Returns:
        GeoJSON-like geometry mappings (or geometries) in the same order.
    """
    out: list[Any] = list(geoms)
    simple = (shapely.get_type_id(geoms) == 3) & (
        shapely.get_num_interior_rings(geoms) == 0
    )
    idx = np.flatnonzero(simple)
    if len(idx) == 0:
        return out
    rings = shapely.get_exterior_ring(geoms[idx])
    ends = np.cumsum(shapely.get_num_coordinates(rings)).tolist()
    with paused_gc():
        coords = shapely.get_coordinates(rings).tolist()
        start = 0
        for i, end in zip(idx.tolist(), ends, strict=True):
            out[i] = {"type": "Polygon", "coordinates": [coords[start:end]]}
            start = end
    return out


def _burn(
    geometries: Any,
    rows: np.ndarray,
    values: np.ndarray,
    transform: Affine,
    shape: tuple[int, int],
) -> np.ndarray:
    """Burn footprints into an int32 raster.

    Args:
        geometries: all footprints (an array of shapely geometries)
        rows: positions in *geometries* of the footprints to burn
        values: value burnt for each row
        transform: affine transform of the output
        shape: (height, width) of the output

    Returns:
        int32 raster, 0 where no footprint is.
    """
    if len(rows) == 0:
        return np.zeros(shape, dtype=np.int32)
    geoms = _geojson(np.asarray(geometries[rows]))
    raster: np.ndarray = rasterio.features.rasterize(
        zip(geoms, values.tolist(), strict=True),
        out_shape=shape,
        transform=transform,
        fill=0,
        dtype="int32",
    )
    return raster


@dataclass(frozen=True)
class _IdRaster:
    """Footprints burnt as their row + 1 on a grid; 0 where no footprint is.

    Attributes:
        grid: int32 array (height, width)
        left: x of the left edge
        top: y of the top edge
        xres: pixel width
        yres: pixel height (positive)
    """

    grid: np.ndarray
    left: float
    top: float
    xres: float
    yres: float

    @classmethod
    def build(
        cls,
        geometries: Any,
        bounds: tuple[float, float, float, float],
        query: tuple[float, float, int, int],
        res: tuple[float, float],
        cache_bytes: int,
    ) -> _IdRaster | None:
        """Burn all footprints on the pixel lattice of a query.

        The raster covers *bounds* plus a margin of one query size on every side.

        Args:
            geometries: all footprints (an array of shapely geometries)
            bounds: (xmin, ymin, xmax, ymax) of the footprints
            query: left edge, top edge, width and height (pixels) of the query
            res: (xres, yres)
            cache_bytes: memory budget of the raster

        Returns:
            The raster, or None if it would exceed *cache_bytes*.
        """
        xmin, ymax, width, height = query
        xres, yres = res
        bxmin, bymin, bxmax, bymax = bounds
        margin_x, margin_y = width * xres, height * yres
        left = xmin + math.floor((bxmin - margin_x - xmin) / xres) * xres
        top = ymax + math.ceil((bymax + margin_y - ymax) / yres) * yres
        gw = math.ceil((bxmax + margin_x - left) / xres)
        gh = math.ceil((top - (bymin - margin_y)) / yres)
        if gw * gh * 4 > cache_bytes:
            return None
        rows = np.arange(len(geometries))
        transform = Affine(xres, 0, left, 0, -yres, top)
        grid = _burn(geometries, rows, rows + 1, transform, (gh, gw))
        return cls(grid, left, top, xres, yres)

    def window(
        self, xmin: float, ymax: float, width: int, height: int
    ) -> np.ndarray | None:
        """Window of the raster, if it is on the raster's pixel lattice.

        Args:
            xmin: left edge of the window
            ymax: top edge of the window
            width: width in pixels
            height: height in pixels

        Returns:
            int32 window (0 outside the raster), or None if not aligned.
        """
        col = (xmin - self.left) / self.xres
        row = (self.top - ymax) / self.yres
        c0, r0 = round(col), round(row)
        if abs(col - c0) > 1e-6 or abs(row - r0) > 1e-6:
            return None
        return _padded_window(self.grid, r0, c0, height, width, 0)


class _FootprintMasks:
    """Masks of the footprints of a dataset on the grids of queries.

    A mask is a slice of the id raster (:class:`_IdRaster`, built on the grid of
    the first query) where possible: the query is on that grid and, for the mask
    of one building, the building overlaps no other (the raster holds one id per
    pixel). Otherwise it is burnt for the query; masks of one building are
    cached per building and window.

    Attributes:
        geometries: the footprints (an array of shapely geometries)
        bounds: (xmin, ymin, xmax, ymax) of the footprints
        strtree: spatial index of the footprints
    """

    def __init__(
        self, geometries: Any, bounds: tuple[float, float, float, float]
    ) -> None:
        """Index footprints.

        Args:
            geometries: the footprints (an array of shapely geometries)
            bounds: (xmin, ymin, xmax, ymax) of the footprints
        """
        self.geometries = geometries
        self.bounds = bounds
        self.strtree = shapely.STRtree(geometries)
        self._overlaps: np.ndarray | None = None
        self._id_raster: _IdRaster | None = None
        self._cache: dict[tuple[Any, ...], np.ndarray] = {}

    def reset(self) -> None:
        """Forget the id raster and the cached masks (the resolution changed)."""
        self._id_raster = None
        self._cache = {}

    def overlapping(self) -> np.ndarray:
        """Which footprints overlap another one (computed on first use).

        Returns:
            Boolean array in the order of :attr:`geometries`.
        """
        if self._overlaps is None:
            left, right = self.strtree.query(self.geometries, predicate="overlaps")
            overlaps = np.zeros(len(self.geometries), dtype=bool)
            overlaps[left[left != right]] = True
            self._overlaps = overlaps
        return self._overlaps

    def mask(
        self,
        row: int | None,
        x: slice,
        y: slice,
        res: tuple[float, float],
        all_footprints: bool,
        cache_bytes: int,
    ) -> np.ndarray:
        """Mask of a query: of the footprint at *row*, or of all footprints.

        Args:
            row: the building of the query, or None (an empty mask unless
                *all_footprints*)
            x: xmin:xmax:xres slice
            y: ymin:ymax:yres slice
            res: resolution of the id raster
            all_footprints: mask all footprints instead of the one at *row*
            cache_bytes: memory budget of the id raster

        Returns:
            Boolean mask (height, width).
        """
        width = round((x.stop - x.start) / x.step)
        height = round((y.stop - y.start) / y.step)
        same_res = abs(x.step - res[0]) <= 1e-9 * res[0] and abs(
            y.step - res[1]
        ) <= 1e-9 * abs(res[1])
        window = None
        if same_res:
            window = self._id_window(x.start, y.stop, width, height, res, cache_bytes)
        if window is not None and (
            all_footprints or row is None or not self.overlapping()[row]
        ):
            if all_footprints:
                return window > 0
            own: np.ndarray = window == (-1 if row is None else row + 1)
            return own
        if all_footprints:
            rows = self.strtree.query(shapely.box(x.start, y.start, x.stop, y.stop))
            return self._burn_query(rows, x, y, width, height)
        key = (row, x.start, y.stop, x.step, y.step, width, height)
        cached = self._cache.get(key)
        if cached is None:
            rows = np.array([] if row is None else [row], dtype=np.int64)
            cached = self._burn_query(rows, x, y, width, height)
            if len(self._cache) < 100_000:
                self._cache[key] = cached
        return cached

    def _id_window(
        self,
        xmin: float,
        ymax: float,
        width: int,
        height: int,
        res: tuple[float, float],
        cache_bytes: int,
    ) -> np.ndarray | None:
        """Window of the id raster (ids are row + 1), if aligned.

        The id raster is built on the grid of the first query (its pixel phase),
        so all queries of a building-centroid sampler are slices of it.

        Args:
            xmin: left edge of the window
            ymax: top edge of the window
            width: width in pixels
            height: height in pixels
            res: resolution of the id raster
            cache_bytes: memory budget of the id raster

        Returns:
            int32 window, or None if the window is not on the raster's grid or
            the raster would exceed the memory budget.
        """
        if self._id_raster is None:
            self._id_raster = _IdRaster.build(
                self.geometries,
                self.bounds,
                (xmin, ymax, width, height),
                res,
                cache_bytes,
            )
            if self._id_raster is None:
                return None
        return self._id_raster.window(xmin, ymax, width, height)

    def _burn_query(
        self, rows: np.ndarray, x: slice, y: slice, width: int, height: int
    ) -> np.ndarray:
        """Mask of some footprints on the grid of a query.

        Args:
            rows: positions of the footprints to burn
            x: xmin:xmax:xres slice
            y: ymin:ymax:yres slice
            width: width in pixels
            height: height in pixels

        Returns:
            Boolean mask (height, width).
        """
        transform = Affine(x.step, 0, x.start, 0, -y.step, y.stop)
        ones = np.ones(len(rows), dtype=np.int64)
        return _burn(self.geometries, rows, ones, transform, (height, width)) > 0
