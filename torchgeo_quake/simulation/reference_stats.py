"""Statistics that compare simulated building layers with the real HOTOSM layer.

The same numbers are computed from the real HOTOSM "Turkey Destroyed Buildings"
layer, clipped to a city box (:data:`CITY_BOXES`), and from a simulated city
folder (``destroyed.geojson``, with ``buildings.gpkg`` and ``truth.csv`` for the
whole stock). Every geometry is projected to UTM zone 37N (EPSG:32637) first.

Statistics of the destroyed buildings (:class:`FootprintStats`):

``median_area_m2``
    Median footprint area (m²).
``cell_area_km2``
    Area spanned, robust version: the area of the union of the 250 m x 250 m
    cells (aligned on multiples of 250 m in UTM) that hold at least one
    destroyed centroid. One far-away building adds at most 0.0625 km², so it
    measures where damage is, not how far the outliers lie.
``hull_area_km2``
    Area spanned, outlier-sensitive version: the convex hull of the centroids
    (0 with fewer than three non-collinear points). Kept beside the cell area
    because it says how far apart the damage clusters of a city lie.
``radius_m``
    Median distance of the centroids from their coordinate-wise median (a
    robust radius of the damage cloud).
``cluster_share``
    Share of destroyed buildings with another destroyed centroid inside the
    80 m x 80 m square (UTM axes) centred on their own centroid, i.e. inside
    the 32 x 32-pixel patch a model sees around the building.
``nn_quantiles_m``
    10, 25, 50, 75 and 90 % quantiles of the distance from each destroyed
    centroid to the nearest other destroyed centroid (metres).

A simulated folder adds the whole stock (:class:`StockStats`): number of
buildings, median footprint area of all, intact and destroyed buildings, and
the building density: count divided by the union of the 250 m cells holding a
building (buildings per km² of built-up land).

The real layer only lists destroyed buildings, so its building density cannot
be measured; :func:`real_density_estimate` estimates it as the paper's Table II
total ``n_intact + n_damaged`` spread over the destroyed buildings' cell area,
scaled by the ratio of destroyed buildings in the box to Table II's count.

``python -m torchgeo_quake.simulation.reference_stats OUT.json`` writes the
real statistics of the five cities (:func:`write_real_stats`); the repository
keeps that file as ``tests/data/simulation/hotosm_reference_stats.json``, and
a test checks that this function reproduces it whenever the shared data is
present.

.. versionadded:: 0.3
"""

from __future__ import annotations

import json
import math
import os
import sys
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import pandas as pd
import shapely
from scipy.spatial import cKDTree

from ..paper import TABLE_II

__all__ = [
    "CELL_M",
    "CITY_BOXES",
    "DEFAULT_HOTOSM",
    "PATCH_M",
    "FootprintStats",
    "StockStats",
    "footprint_stats",
    "real_density_estimate",
    "real_stats",
    "simulated_stats",
    "write_real_stats",
]

FloatArray = npt.NDArray[np.float64]

#: Side of the cells whose union measures the area spanned (metres).
CELL_M = 250.0
#: Side of the square patch around a building (80 m: 32 pixels of 2.5 m).
PATCH_M = 80.0
#: Quantiles of the nearest-neighbour distance that are reported.
NN_QUANTILES: tuple[float, ...] = (0.1, 0.25, 0.5, 0.75, 0.9)
#: UTM zone 37N, the projection of every statistic.
UTM_CRS = "EPSG:32637"

#: City boxes (lon min, lat min, lon max, lat max) of the real layer that recover
#: counts close to Table II's "#Damaged" (/work/shared/data/README.md).
CITY_BOXES: Mapping[str, tuple[float, float, float, float]] = {
    "islahiye": (36.60, 37.00, 36.66, 37.05),
    "kahramanmaras": (36.85, 37.53, 37.00, 37.62),
    "nurdagi": (36.70, 37.15, 36.77, 37.20),
    "osmaniye": (36.20, 37.04, 36.30, 37.11),
    "turkoglu": (36.82, 37.36, 36.88, 37.41),
}

#: The HOTOSM destroyed-buildings layer beside the repository, if present.
DEFAULT_HOTOSM = (
    Path(__file__).resolve().parents[3]
    / "shared"
    / "data"
    / "hotosm"
    / "hotosm_tur_destroyed_buildings_polygons.geojson"
)


@dataclass(frozen=True)
class FootprintStats:
    """Statistics of a set of (destroyed) building footprints.

    Attributes:
        count: number of footprints
        median_area_m2: median footprint area (m²)
        cell_area_km2: area of the union of the 250 m cells holding a centroid
        hull_area_km2: area of the convex hull of the centroids (km²)
        radius_m: median distance of the centroids from their median point
        cluster_share: share with another centroid inside their 80 m square
        nn_quantiles_m: quantiles (:data:`NN_QUANTILES`) of the distance to
            the nearest other centroid (metres; NaN with fewer than two)

    .. versionadded:: 0.3
    """

    count: int
    median_area_m2: float
    cell_area_km2: float
    hull_area_km2: float
    radius_m: float
    cluster_share: float
    nn_quantiles_m: tuple[float, ...]

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form, rounded for a stable file.

        Returns:
            The fields as a dictionary.
        """
        out = asdict(self)
        for key, value in out.items():
            if isinstance(value, float):
                out[key] = round(value, 4)
        out["nn_quantiles_m"] = [round(v, 2) for v in self.nn_quantiles_m]
        return out


@dataclass(frozen=True)
class StockStats:
    """Statistics of a whole simulated building stock.

    Attributes:
        count: number of buildings
        median_area_m2: median footprint area of all buildings (m²)
        median_area_intact_m2: median area of the buildings not in the
            damage reference
        median_area_destroyed_m2: median area of those in the reference
        cell_area_km2: union of the 250 m cells holding a building (km²)
        density_per_km2: buildings per km² of those cells
        radius_m: median distance of the centroids from their median point

    .. versionadded:: 0.3
    """

    count: int
    median_area_m2: float
    median_area_intact_m2: float
    median_area_destroyed_m2: float
    cell_area_km2: float
    density_per_km2: float
    radius_m: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form, rounded.

        Returns:
            The fields as a dictionary.
        """
        return {
            k: round(v, 4) if isinstance(v, float) else v
            for k, v in asdict(self).items()
        }


def _radius(x: FloatArray, y: FloatArray) -> float:
    """Median distance of points from their coordinate-wise median.

    Args:
        x: easting (metres)
        y: northing (metres)

    Returns:
        The distance in metres.
    """
    cx, cy = float(np.median(x)), float(np.median(y))
    return float(np.median(np.hypot(x - cx, y - cy)))


def _cell_area_km2(x: FloatArray, y: FloatArray) -> float:
    """Area of the union of the :data:`CELL_M` cells holding the points.

    Args:
        x: easting (metres)
        y: northing (metres)

    Returns:
        The area in km².
    """
    if x.size == 0:
        return 0.0
    cells = np.unique(
        np.stack([np.floor(x / CELL_M), np.floor(y / CELL_M)], axis=1), axis=0
    )
    return float(len(cells) * CELL_M**2 / 1e6)


def footprint_stats(polygons: npt.ArrayLike) -> FootprintStats:
    """Statistics of footprints given in a metric projection (UTM 37N).

    Args:
        polygons: shapely polygons in metres

    Returns:
        The statistics (see the module docstring).

    Raises:
        ValueError: If there is no polygon.

    .. versionadded:: 0.3
    """
    geoms = np.asarray(polygons, dtype=object)
    if geoms.size == 0:
        raise ValueError("no footprints: cannot compute statistics of an empty set")
    centroids = shapely.centroid(geoms)
    x = np.asarray(shapely.get_x(centroids), np.float64)
    y = np.asarray(shapely.get_y(centroids), np.float64)
    area = np.asarray(shapely.area(geoms), np.float64)
    hull = shapely.convex_hull(shapely.multipoints(np.stack([x, y], axis=1)))
    radius = _radius(x, y)
    xy = np.stack([x, y], axis=1)
    tree = cKDTree(xy)
    if x.size >= 2:
        dist, _ = tree.query(xy, k=2)
        nn = np.quantile(dist[:, 1], NN_QUANTILES)
        # Neighbours in the 80 m square (Chebyshev radius 40 m), self included.
        counts = tree.query_ball_point(
            xy, r=PATCH_M / 2.0, p=math.inf, return_length=True
        )
        cluster = float(np.mean(np.asarray(counts) >= 2))
    else:
        nn = np.full(len(NN_QUANTILES), np.nan)
        cluster = 0.0
    return FootprintStats(
        count=int(x.size),
        median_area_m2=float(np.median(area)),
        cell_area_km2=_cell_area_km2(x, y),
        hull_area_km2=float(shapely.area(hull)) / 1e6,
        radius_m=radius,
        cluster_share=cluster,
        nn_quantiles_m=tuple(float(v) for v in nn),
    )


def _read_utm(path: str | os.PathLike[str]) -> gpd.GeoDataFrame:
    """Read a vector file and project it to UTM 37N.

    Args:
        path: the file

    Returns:
        The frame in EPSG:32637.

    Raises:
        FileNotFoundError: If the file is missing.
        ValueError: If it has no coordinate reference system.
    """
    if not Path(path).is_file():
        raise FileNotFoundError(f"vector file not found: {path}")
    frame = gpd.read_file(path)
    if frame.crs is None:
        raise ValueError(f"{path} has no CRS; write it with one (e.g. EPSG:4326)")
    return frame.to_crs(UTM_CRS)


def real_stats(
    path: str | os.PathLike[str] = DEFAULT_HOTOSM,
    boxes: Mapping[str, tuple[float, float, float, float]] = CITY_BOXES,
) -> dict[str, FootprintStats]:
    """Statistics of the real destroyed buildings in each city box.

    A footprint belongs to a box when its centroid (in lon/lat) lies inside.

    Args:
        path: the HOTOSM destroyed-buildings GeoJSON
        boxes: city slug -> (lon min, lat min, lon max, lat max)

    Returns:
        City slug -> statistics (boxes without any footprint are left out).

    .. versionadded:: 0.3
    """
    if not Path(path).is_file():
        raise FileNotFoundError(
            f"HOTOSM destroyed-buildings layer not found: {path}; download "
            "hotosm_tur_destroyed_buildings_polygons.geojson from HDX"
        )
    frame = gpd.read_file(path)
    if frame.crs is None:
        raise ValueError(f"{path} has no CRS; expected EPSG:4326")
    frame = frame.to_crs("EPSG:4326")
    centroid = shapely.centroid(frame.geometry.to_numpy())
    lon = np.asarray(shapely.get_x(centroid))
    lat = np.asarray(shapely.get_y(centroid))
    utm = frame.to_crs(UTM_CRS).geometry.to_numpy()
    out: dict[str, FootprintStats] = {}
    for slug, (w, s, e, n) in boxes.items():
        inside = (lon >= w) & (lon <= e) & (lat >= s) & (lat <= n)
        if inside.any():
            out[slug] = footprint_stats(utm[inside])
    return out


def real_density_estimate(slug: str, stats: FootprintStats) -> float:
    """Building density of a real city estimated from its destroyed layer.

    ``(n_intact + n_damaged) * (count / n_damaged) / cell_area``: the Table II
    total, scaled to the destroyed buildings found in the box, spread over the
    destroyed buildings' 250 m cell area. It assumes intact buildings fill the
    same cells as the destroyed ones, so it is an upper bound where damage is
    concentrated in a part of the town.

    Args:
        slug: city slug (a key of :data:`~torchgeo_quake.paper.TABLE_II`)
        stats: the city's real statistics

    Returns:
        Buildings per km².

    Raises:
        ValueError: If the city is unknown or the cell area is zero.

    .. versionadded:: 0.3
    """
    if slug not in TABLE_II:
        raise ValueError(f"unknown city {slug!r}; choose from {', '.join(TABLE_II)}")
    if stats.cell_area_km2 <= 0:
        raise ValueError(f"{slug}: empty cell area, cannot estimate a density")
    intact, damaged = TABLE_II[slug]
    total = (intact + damaged) * stats.count / damaged
    return float(total / stats.cell_area_km2)


def simulated_stats(
    folder: str | os.PathLike[str],
) -> tuple[FootprintStats, StockStats]:
    """Statistics of a simulated city folder.

    Args:
        folder: a city folder with ``destroyed.geojson``, ``buildings.gpkg``
            and ``truth.csv``

    Returns:
        (statistics of the destroyed buildings, of the whole stock).

    Raises:
        FileNotFoundError: If a file is missing.
        ValueError: If ``truth.csv`` lacks ``osm_id`` or ``in_reference``.

    .. versionadded:: 0.3
    """
    root = Path(folder)
    destroyed = _read_utm(root / "destroyed.geojson")
    buildings = _read_utm(root / "buildings.gpkg")
    truth_path = root / "truth.csv"
    if not truth_path.is_file():
        raise FileNotFoundError(f"truth table not found: {truth_path}")
    truth = pd.read_csv(truth_path, usecols=lambda c: c in ("osm_id", "in_reference"))
    if set(truth.columns) != {"osm_id", "in_reference"}:
        raise ValueError(f"{truth_path} needs the columns osm_id and in_reference")
    geoms = buildings.geometry.to_numpy()
    area = np.asarray(shapely.area(geoms), np.float64)
    reference = set(truth.loc[truth["in_reference"].astype(bool), "osm_id"])
    in_ref = buildings["osm_id"].isin(reference).to_numpy()
    centroid = shapely.centroid(geoms)
    x = np.asarray(shapely.get_x(centroid), np.float64)
    y = np.asarray(shapely.get_y(centroid), np.float64)
    cells = _cell_area_km2(x, y)
    stock = StockStats(
        count=int(area.size),
        median_area_m2=float(np.median(area)),
        median_area_intact_m2=float(np.median(area[~in_ref])),
        median_area_destroyed_m2=float(np.median(area[in_ref])),
        cell_area_km2=cells,
        density_per_km2=float(area.size / cells),
        radius_m=_radius(x, y),
    )
    return footprint_stats(destroyed.geometry.to_numpy()), stock


def write_real_stats(
    out: str | os.PathLike[str], path: str | os.PathLike[str] = DEFAULT_HOTOSM
) -> dict[str, Any]:
    """Write the real statistics of the five cities as JSON.

    Args:
        out: output JSON path
        path: the HOTOSM destroyed-buildings GeoJSON

    Returns:
        What was written: per city the statistics and the density estimate.

    .. versionadded:: 0.3
    """
    stats = real_stats(path)
    data: dict[str, Any] = {
        "source": "HOTOSM Turkey Destroyed Buildings (HDX), "
        "hotosm_tur_destroyed_buildings_polygons.geojson",
        "crs": UTM_CRS,
        "cell_m": CELL_M,
        "patch_m": PATCH_M,
        "nn_quantiles": list(NN_QUANTILES),
        "cities": {
            slug: {
                "box": list(CITY_BOXES[slug]),
                **s.to_dict(),
                "density_estimate_per_km2": round(real_density_estimate(slug, s), 1),
            }
            for slug, s in stats.items()
        },
    }
    Path(out).write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    return data


if __name__ == "__main__":  # pragma: no cover - exercised by hand
    if len(sys.argv) != 2:
        sys.exit("usage: python -m torchgeo_quake.simulation.reference_stats OUT.json")
    write_real_stats(sys.argv[1])
