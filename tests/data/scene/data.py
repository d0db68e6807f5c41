#!/usr/bin/env python3
"""Generate the tiny scene used by the data-layer tests.

A 64 × 64 SAR image (2.5 m, EPSG:32637) whose right-most 8 columns are nodata,
a 5 m DSM in the same CRS and the same DSM in EPSG:4326, footprints in a
GeoPackage (EPSG:4326) with an invalid bow-tie, an L-shape, a building outside
the image and one on nodata, and damage references in three forms (polygons
with osm_id, polygons without osm_id, points without osm_id).

Run from this folder: ``python data.py``.
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import rasterio
import shapely
from rasterio.transform import from_origin
from rasterio.warp import Resampling, calculate_default_transform, reproject

HERE = Path(__file__).resolve().parent
LEFT, TOP, RES, SIZE = 500_000.0, 4_110_000.0, 2.5, 64


def main() -> None:
    rng = np.random.default_rng(0)
    profile = {"driver": "GTiff", "dtype": "float32", "count": 1, "crs": "EPSG:32637"}
    sar = np.sqrt(rng.gamma(3.0, 1 / 3, (SIZE, SIZE))).astype("float32") + 0.05
    sar[:, -8:] = 0  # nodata strip
    with rasterio.open(
        HERE / "sar.tif",
        "w",
        width=SIZE,
        height=SIZE,
        transform=from_origin(LEFT, TOP, RES, RES),
        nodata=0,
        **profile,
    ) as dst:
        dst.write(sar, 1)

    half = SIZE // 2
    yy, xx = np.mgrid[0:half, 0:half]
    dsm = (800 + 0.5 * xx + 0.25 * yy).astype("float32")
    dsm[10:14, 10:14] += 12.0  # a 20 m × 20 m, 12 m high building
    with rasterio.open(
        HERE / "dsm.tif",
        "w",
        width=half,
        height=half,
        transform=from_origin(LEFT, TOP, 5.0, 5.0),
        **profile,
    ) as dst:
        dst.write(dsm, 1)
        src_transform, src_crs = dst.transform, dst.crs
    transform, width, height = calculate_default_transform(
        src_crs,
        "EPSG:4326",
        half,
        half,
        *rasterio.transform.array_bounds(half, half, src_transform),
    )
    dsm4326 = np.full((height, width), np.nan, dtype="float32")
    reproject(
        dsm,
        dsm4326,
        src_transform=src_transform,
        src_crs=src_crs,
        dst_transform=transform,
        dst_crs="EPSG:4326",
        resampling=Resampling.bilinear,
    )
    with rasterio.open(
        HERE / "dsm_4326.tif",
        "w",
        width=width,
        height=height,
        transform=transform,
        driver="GTiff",
        dtype="float32",
        count=1,
        crs="EPSG:4326",
        nodata=np.nan,
    ) as dst:
        dst.write(dsm4326, 1)

    def box(cx: float, cy: float, w: float, h: float) -> shapely.Polygon:
        x, y = LEFT + cx, TOP - cy
        return shapely.box(x - w / 2, y - h / 2, x + w / 2, y + h / 2)

    geoms = {
        1: box(40, 40, 12, 10),
        2: box(80, 40, 10, 10),
        3: box(40, 80, 14, 8),
        4: box(80, 80, 9, 12),
        5: shapely.Polygon(  # L-shape
            [
                (LEFT + 50, TOP - 110),
                (LEFT + 66, TOP - 110),
                (LEFT + 66, TOP - 116),
                (LEFT + 56, TOP - 116),
                (LEFT + 56, TOP - 126),
                (LEFT + 50, TOP - 126),
            ]
        ),
        6: shapely.Polygon(  # invalid bow-tie, repairable
            [
                (LEFT + 100, TOP - 100),
                (LEFT + 110, TOP - 110),
                (LEFT + 110, TOP - 100),
                (LEFT + 100, TOP - 110),
            ]
        ),
        7: box(300, 60, 10, 10),  # outside the image (image is 160 m wide)
        8: box(140, 80, 8, 8),  # on the nodata strip
        9: box(120, 130, 10, 10),
    }
    frame = gpd.GeoDataFrame(
        {
            "osm_id": np.array(list(geoms), dtype=np.int64),
            "building": "yes",
            "building:levels": [2, 3, 1, 4, 2, 1, 2, 2, 3],
        },
        geometry=list(geoms.values()),
        crs=32637,
    ).to_crs(4326)
    frame.to_file(HERE / "buildings.gpkg", driver="GPKG")

    damaged = frame[frame["osm_id"].isin([2, 5])][["osm_id", "geometry"]].copy()
    damaged["destroyed_building"] = "yes"
    damaged.to_file(HERE / "destroyed.geojson", driver="GeoJSON")
    damaged[["destroyed_building", "geometry"]].to_file(
        HERE / "destroyed_noid.geojson", driver="GeoJSON"
    )
    points = damaged.to_crs(32637)
    points["geometry"] = points.geometry.representative_point()
    points.to_crs(4326)[["destroyed_building", "geometry"]].to_file(
        HERE / "destroyed_points.geojson", driver="GeoJSON"
    )


if __name__ == "__main__":
    main()
