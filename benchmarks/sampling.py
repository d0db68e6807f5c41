"""Benchmark building-centred sampling: torchgeo_quake's data layer vs stock TorchGeo.

Builds a 10 × 10 km scene (SAR 4000 × 4000 at 2.5 m, DSM 2000 × 2000 at 5 m,
20,000 footprints in a GeoPackage), then, in one run, times stock TorchGeo
(``RasterDataset & RasterDataset & VectorDataset``) and this package
(``CSKSAR & CartoSatDSM & OSMBuildings``) on the queries of the same
``BuildingCentroidSampler``, and prints one JSON line.

Usage::

    python benchmarks/sampling.py            # full run
    python benchmarks/sampling.py --quick    # under a minute
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import rasterio
import shapely
import torch
from rasterio.transform import from_origin
from torchgeo.datasets import RasterDataset, VectorDataset

from torchgeo_quake.datasets import CartoSatDSM, OSMBuildings
from torchgeo_quake.datasets.raster import CachedRasterDataset
from torchgeo_quake.samplers import BuildingCentroidSampler

LEFT, TOP = 500_000.0, 4_110_000.0


def make_scene(root: Path, size: int, buildings: int, seed: int = 0) -> None:
    """Write the benchmark scene.

    Args:
        root: output folder
        size: SAR width/height in pixels (2.5 m)
        buildings: number of footprints
        seed: random seed
    """
    rng = np.random.default_rng(seed)
    profile: dict[str, Any] = {
        "driver": "GTiff",
        "dtype": "float32",
        "count": 1,
        "crs": "EPSG:32637",
        "tiled": True,
        "blockxsize": 256,
        "blockysize": 256,
        "compress": "deflate",
    }
    sar = np.sqrt(rng.gamma(3.0, 1 / 3, (size, size))).astype("float32")
    with rasterio.open(
        root / "sar.tif",
        "w",
        width=size,
        height=size,
        transform=from_origin(LEFT, TOP, 2.5, 2.5),
        nodata=0,
        **profile,
    ) as dst:
        dst.write(sar, 1)
    half = size // 2
    dsm = (500 + rng.normal(0, 2, (half, half))).astype("float32")
    with rasterio.open(
        root / "dsm.tif",
        "w",
        width=half,
        height=half,
        transform=from_origin(LEFT, TOP, 5.0, 5.0),
        **profile,
    ) as dst:
        dst.write(dsm, 1)
    # Non-overlapping footprints on a jittered lattice, as in a city.
    extent = size * 2.5
    side = int(np.ceil(np.sqrt(buildings)))
    step = (extent - 200) / side
    ii, jj = np.divmod(np.arange(buildings), side)
    cx = LEFT + 100 + (jj + 0.5) * step + rng.uniform(-0.1, 0.1, buildings) * step
    cy = TOP - 100 - (ii + 0.5) * step + rng.uniform(-0.1, 0.1, buildings) * step
    w = rng.uniform(8, 0.6 * step, buildings)
    h = rng.uniform(8, 0.6 * step, buildings)
    geoms = shapely.box(cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)
    frame = gpd.GeoDataFrame(
        {"osm_id": np.arange(1, buildings + 1, dtype=np.int64), "building": "yes"},
        geometry=geoms,
        crs=32637,
    ).to_crs(4326)
    frame.to_file(root / "buildings.gpkg")
    damaged = frame.sample(frac=0.05, random_state=seed)[["osm_id", "geometry"]]
    damaged.to_file(root / "destroyed.geojson", driver="GeoJSON")


class _SAR(CachedRasterDataset):
    sample_key = "sar"
    filename_glob = "sar.tif"


class _StockSAR(RasterDataset):
    filename_glob = "sar.tif"


class _StockDSM(RasterDataset):
    filename_glob = "dsm.tif"


class _StockBuildings(VectorDataset):
    filename_glob = "buildings.gpkg"


def peak_rss_mib() -> float:
    """Peak resident set size of this process.

    Returns:
        Peak RSS in MiB.
    """
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="finish within 60 s")
    parser.add_argument("--size", type=int, default=4000, help="SAR pixels per side")
    parser.add_argument("--buildings", type=int, default=20_000)
    parser.add_argument("--ours", type=int, default=None, help="queries timed (ours)")
    parser.add_argument("--stock", type=int, default=None, help="queries timed (stock)")
    args = parser.parse_args(argv)
    n_ours = args.ours or (5_000 if args.quick else 20_000)
    n_stock = args.stock or (30 if args.quick else 200)
    torch.set_num_threads(1)

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        make_scene(root, args.size, args.buildings)
        scene_s = time.perf_counter() - t0

        # ---- ours: index, caches (the first query builds the in-memory grids).
        t0 = time.perf_counter()
        sar = _SAR(root / "sar.tif")
        dsm = CartoSatDSM(root / "dsm.tif")
        footprints = OSMBuildings(
            root / "buildings.gpkg", damage=root / "destroyed.geojson", city="bench"
        )
        dataset = sar & dsm & footprints
        sampler = BuildingCentroidSampler(dataset, size=32, negatives_per_positive=None)
        queries = list(sampler)
        dataset[queries[0]]
        setup_s = time.perf_counter() - t0

        timed = (queries * (n_ours // len(queries) + 1))[:n_ours]
        t0 = time.perf_counter()
        for query in timed:
            dataset[query]
        ours = n_ours / (time.perf_counter() - t0)

        # ---- stock TorchGeo on the same queries.
        t0 = time.perf_counter()
        stock = (
            _StockSAR(root / "sar.tif")
            & _StockDSM(root / "dsm.tif")
            & _StockBuildings(root / "buildings.gpkg")
        )
        stock_setup_s = time.perf_counter() - t0
        step = max(1, len(queries) // n_stock)
        stock_queries = queries[::step][:n_stock]
        stock[stock_queries[0]]
        t0 = time.perf_counter()
        for query in stock_queries:
            stock[query]
        stock_rate = len(stock_queries) / (time.perf_counter() - t0)

        # Same patches? SAR and footprint of the building of interest.
        ours_sample = dataset[stock_queries[1]]
        stock_sample = stock[stock_queries[1]]
        sar_equal = bool(torch.allclose(ours_sample["sar"], stock_sample["image"][:1]))

    result = {
        "benchmark": "sampling",
        "quick": args.quick,
        "sar_pixels": args.size,
        "buildings": args.buildings,
        "sampled_buildings": len(queries),
        "skipped_buildings": len(sampler.skipped),
        "ours_samples_per_s": round(ours, 1),
        "stock_samples_per_s": round(stock_rate, 2),
        "ratio": round(ours / stock_rate, 1),
        "setup_s": round(setup_s, 3),
        "stock_setup_s": round(stock_setup_s, 3),
        "scene_write_s": round(scene_s, 2),
        "sar_patch_equal_to_stock": sar_equal,
        "peak_rss_mib": round(peak_rss_mib(), 1),
        "ours_queries": n_ours,
        "stock_queries": len(stock_queries),
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "machine": f"{platform.machine()} {os.cpu_count()} cores",
    }
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
