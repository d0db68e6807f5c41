"""Which building a query is about: centroids, windows and nearest centroids.

:class:`~torchgeo_quake.datasets.osm.OSMBuildings` answers a building-centred
query with the mask and attributes of one building. That building is the one
the window was handed out for (:meth:`_CentroidIndex.windows`, which the
sampler uses), else the one whose centroid is nearest to the window centre
(:meth:`_CentroidIndex.nearest`).

The underscored names are internal to :mod:`torchgeo_quake.datasets`.

.. versionadded:: 0.2
"""

from __future__ import annotations

import math
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
from pyproj import CRS
from scipy.spatial import cKDTree

from .fastpath import paused_gc
from .utils import utm_crs_of

__all__: list[str] = []


def _centroids_of(buildings: gpd.GeoDataFrame) -> np.ndarray:
    """Centroids of footprints, computed in metres for geographic CRSs.

    Args:
        buildings: footprints

    Returns:
        float64 array (N, 2) of x, y in the CRS of *buildings*.
    """
    geoms = buildings.geometry
    crs = CRS.from_user_input(buildings.crs)
    if crs.is_geographic:
        utm = utm_crs_of(buildings)
        centroids = geoms.to_crs(utm).centroid.to_crs(crs)
    else:
        centroids = geoms.centroid
    return np.column_stack([centroids.x.to_numpy(), centroids.y.to_numpy()]).astype(
        np.float64
    )


class _CentroidIndex:
    """Lookups of buildings by their centroids.

    Attributes:
        centroids: float64 array (N, 2) of building centroids
        tree: k-d tree of the centroids
        window_rows: windows handed out by :meth:`windows`: exact bounds
            ``(xmin, xmax, ymin, ymax)`` -> row of the building they belong to
    """

    def __init__(self, centroids: np.ndarray) -> None:
        """Index centroids.

        Args:
            centroids: float64 array (N, 2)
        """
        self.centroids = centroids
        self.tree = cKDTree(centroids)
        self.window_rows: dict[tuple[float, float, float, float], int] = {}
        self._window_sets: dict[tuple[Any, ...], pd.DataFrame] = {}
        self._cells: dict[tuple[int, int], list[int]] = {}
        self._cell_size = 0.0

    def windows(
        self,
        size: int,
        res: tuple[float, float],
        origin: tuple[float, float] | None = None,
    ) -> pd.DataFrame:
        """The window of every building, registered in :attr:`window_rows`.

        Args:
            size: window size in pixels
            res: pixel size
            origin: a corner of the pixel lattice, or None to centre windows
                exactly on the centroids

        Returns:
            See :meth:`~torchgeo_quake.datasets.osm.OSMBuildings.building_windows`.
        """
        xres, yres = (float(v) for v in res)
        key = (int(size), xres, yres, origin)
        cached = self._window_sets.get(key)
        if cached is not None:
            return cached
        half = size / 2
        cx, cy = self.centroids[:, 0], self.centroids[:, 1]
        if origin is not None:
            left, top = origin
            xmin = left + np.round((cx - left) / xres - half) * xres
            ymax = top - np.round((top - cy) / yres - half) * yres
        else:
            xmin = cx - half * xres
            ymax = cy + half * yres
        xmax = xmin + size * xres
        ymin = ymax - size * yres
        owner = np.empty(len(cx), dtype=np.int64)
        rows = self.window_rows
        with paused_gc():
            windows = zip(
                xmin.tolist(), xmax.tolist(), ymin.tolist(), ymax.tolist(), strict=True
            )
            owner[:] = [rows.setdefault(window, i) for i, window in enumerate(windows)]
        table = pd.DataFrame(
            {"xmin": xmin, "xmax": xmax, "ymin": ymin, "ymax": ymax, "owner": owner}
        )
        self._window_sets[key] = table
        return table

    def nearest(self, x: float, y: float, tolerance: float) -> int | None:
        """Row of the centroid nearest to (x, y), within *tolerance*.

        Uses a hash grid of centroids with cells of *tolerance* (rebuilt when the
        tolerance changes), which is an order of magnitude faster per call than a
        k-d tree query for single points.

        Args:
            x: x coordinate
            y: y coordinate
            tolerance: maximum distance

        Returns:
            Row index, or None if no centroid is that close.
        """
        if tolerance != self._cell_size or not self._cells:
            cells: dict[tuple[int, int], list[int]] = {}
            keys = np.floor(self.centroids / tolerance).astype(np.int64)
            for row, (kx, ky) in enumerate(keys.tolist()):
                cells.setdefault((kx, ky), []).append(row)
            self._cells = cells
            self._cell_size = tolerance
        kx, ky = math.floor(x / tolerance), math.floor(y / tolerance)
        best, best_d2 = None, tolerance * tolerance
        for dx in (-1, 0, 1):
            for dy in (-1, 0, 1):
                for row in self._cells.get((kx + dx, ky + dy), ()):
                    px, py = self.centroids[row]
                    d2 = (px - x) ** 2 + (py - y) ** 2
                    if d2 <= best_d2:
                        best, best_d2 = row, d2
        return best
