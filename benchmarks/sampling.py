"""Benchmark building-centred sampling: torchgeo_quake's data layer vs stock TorchGeo.

Builds a 10 × 10 km scene (SAR 4000 × 4000 at 2.5 m, DSM 2000 × 2000 at 5 m,
20,000 footprints in a GeoPackage), then, in one run, times stock TorchGeo
(``RasterDataset & RasterDataset & VectorDataset``) and this package
(``CSKSAR & CartoSatDSM & OSMBuildings``, the classes users build) on the queries
of the same ``BuildingCentroidSampler``, and prints one JSON line with:

* ``ours_samples_per_s`` / ``stock_samples_per_s`` / ``ratio`` (wall clock, one
  thread) and ``ours_cpu_samples_per_s`` (process CPU time, less sensitive to
  other jobs on the machine; ``load_average`` says how busy it was);
* ``per_dataset_us``: the cost of one query of each dataset alone (SAR, DSM,
  footprints) and of the intersection;
* ``offset_dsm_samples_per_s``: the same with a DSM whose grid is shifted by
  1.3 m, i.e. not on the SAR pixel lattice;
* ``setup_s`` (``setup_cpu_s`` in CPU time): building the datasets, the sampler
  and the in-memory grids; ``peak_rss_mib``: peak memory after timing ours
  (``peak_rss_total_mib`` at the end, with the other pipelines built too);
* equality checks: SAR patches equal to stock TorchGeo's, and every key of the
  fast in-memory path equal to this package's windowed-read path
  (``cache_bytes=0``) on a sample of queries.

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
import warnings
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import rasterio
import shapely
import torch
from rasterio.transform import from_origin
from torchgeo.datasets import RasterDataset, VectorDataset

from torchgeo_quake.datasets import CSKSAR, CartoSatDSM, OSMBuildings
from torchgeo_quake.samplers import BuildingCentroidSampler

LEFT, TOP = 500_000.0, 4_110_000.0


def make_scene(root: Path, size: int, buildings: int, seed: int = 0) -> None:
    """Write the benchmark scene (and ``dsm_offset.tif``, shifted by 1.3 m).

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
    with rasterio.open(
        root / "dsm_offset.tif",
        "w",
        width=half,
        height=half,
        transform=from_origin(LEFT + 1.3, TOP - 1.3, 5.0, 5.0),
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


def build(root: Path, dsm_name: str = "dsm.tif", cache_bytes: int | None = None) -> Any:
    """Build ``CSKSAR & CartoSatDSM & OSMBuildings`` over the scene.

    Args:
        root: scene folder
        dsm_name: DSM file
        cache_bytes: memory budget of each dataset (default: the package's)

    Returns:
        (dataset, sar, dsm, footprints)
    """
    kwargs: dict[str, Any] = {} if cache_bytes is None else {"cache_bytes": cache_bytes}
    sar = CSKSAR(root / "sar.tif", **kwargs)
    dsm = CartoSatDSM(root / dsm_name, **kwargs)
    footprints = OSMBuildings(
        root / "buildings.gpkg",
        damage=root / "destroyed.geojson",
        city="bench",
        **kwargs,
    )
    return sar & dsm & footprints, sar, dsm, footprints


def rate(fn: Any, queries: list[Any]) -> tuple[float, float]:
    """Queries per second of *fn*, wall clock and process CPU time.

    Args:
        fn: called with each query
        queries: the queries

    Returns:
        (wall rate, CPU rate)
    """
    t0, c0 = time.perf_counter(), time.process_time()
    for query in queries:
        fn(query)
    wall = time.perf_counter() - t0
    cpu = time.process_time() - c0
    return len(queries) / wall, len(queries) / max(cpu, 1e-9)


def same_samples(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Whether two samples hold equal data under every data key.

    Args:
        a: a sample
        b: another sample

    Returns:
        True if keys and values agree (float rasters to 1e-5).
    """
    keys = set(a) - {"crs", "bounds"}
    if keys != set(b) - {"crs", "bounds"}:
        return False
    for key in keys:
        x, y = a[key], b[key]
        if isinstance(x, torch.Tensor):
            if x.shape != y.shape or x.dtype != y.dtype:
                return False
            if x.is_floating_point():
                if not torch.allclose(x, y, atol=1e-5, rtol=1e-5):
                    return False
            elif not torch.equal(x, y):
                return False
        elif x != y:
            return False
    return True


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the benchmark and print one JSON line.

    Args:
        argv: command-line arguments (default: ``sys.argv[1:]``)

    Returns:
        The measurements.
    """
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="finish within 60 s")
    parser.add_argument("--size", type=int, default=4000, help="SAR pixels per side")
    parser.add_argument("--buildings", type=int, default=20_000)
    parser.add_argument("--ours", type=int, default=None, help="queries timed (ours)")
    parser.add_argument("--stock", type=int, default=None, help="queries timed (stock)")
    args = parser.parse_args(argv)
    n_ours = args.ours or (5_000 if args.quick else 20_000)
    n_stock = args.stock or (30 if args.quick else 200)
    n_check = 20 if args.quick else 100
    torch.set_num_threads(1)
    load_before = os.getloadavg()

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        make_scene(root, args.size, args.buildings)
        scene_s = time.perf_counter() - t0

        # ---- ours: index, caches (the first query builds the in-memory grids).
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the skipped-building summary
            t0, c0 = time.perf_counter(), time.process_time()
            dataset, sar, dsm, footprints = build(root)
            sampler = BuildingCentroidSampler(
                dataset, size=32, negatives_per_positive=None
            )
            queries = list(sampler)
            dataset[queries[0]]
            setup_s = time.perf_counter() - t0
            setup_cpu_s = time.process_time() - c0

        timed = (queries * (n_ours // len(queries) + 1))[:n_ours]
        ours, ours_cpu = rate(dataset.__getitem__, timed)
        ours_rss = peak_rss_mib()

        # ---- each dataset alone, on the same queries.
        per_dataset = {}
        for name, part in (("sar", sar), ("dsm", dsm), ("footprints", footprints)):
            per_dataset[name] = round(1e6 / rate(part.__getitem__, timed)[1], 1)
        per_dataset["intersection"] = round(1e6 / ours_cpu, 1)

        # ---- a DSM off the SAR pixel lattice (shifted by 1.3 m).
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            t0 = time.perf_counter()
            offset, _, _, _ = build(root, "dsm_offset.tif")
            offset_queries = list(
                BuildingCentroidSampler(offset, size=32, negatives_per_positive=None)
            )
            offset[offset_queries[0]]
            offset_setup_s = time.perf_counter() - t0
        offset_timed = (offset_queries * (n_ours // len(offset_queries) + 1))[:n_ours]
        offset_rate, _ = rate(offset.__getitem__, offset_timed)

        # ---- same samples as the windowed-read path (no in-memory grids).
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            windowed, _, _, _ = build(root, cache_bytes=0)
            BuildingCentroidSampler(windowed, size=32, negatives_per_positive=None)
        step = max(1, len(queries) // n_check)
        check = queries[::step][:n_check]
        fast_equal = all(same_samples(dataset[q], windowed[q]) for q in check)

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
        stock_rate, _ = rate(stock.__getitem__, stock_queries)

        # Same patches? SAR of the building of interest.
        sar_equal = all(
            bool(torch.allclose(dataset[q]["sar"], stock[q]["image"][:1]))
            for q in stock_queries[:10]
        )

    result = {
        "benchmark": "sampling",
        "quick": args.quick,
        "sar_pixels": args.size,
        "buildings": args.buildings,
        "sampled_buildings": len(queries),
        "skipped_buildings": len(sampler.skipped),
        "ours_samples_per_s": round(ours, 1),
        "ours_cpu_samples_per_s": round(ours_cpu, 1),
        "stock_samples_per_s": round(stock_rate, 2),
        "ratio": round(ours / stock_rate, 1),
        "per_dataset_us": per_dataset,
        "offset_dsm_samples_per_s": round(offset_rate, 1),
        "offset_dsm_setup_s": round(offset_setup_s, 3),
        "setup_s": round(setup_s, 3),
        "setup_cpu_s": round(setup_cpu_s, 3),
        "stock_setup_s": round(stock_setup_s, 3),
        "scene_write_s": round(scene_s, 2),
        "sar_patch_equal_to_stock": sar_equal,
        "fast_path_equal_to_windowed": fast_equal,
        "peak_rss_mib": round(ours_rss, 1),
        "peak_rss_total_mib": round(peak_rss_mib(), 1),
        "ours_queries": n_ours,
        "stock_queries": len(stock_queries),
        "load_average": [round(v, 2) for v in (*load_before, *os.getloadavg()[:1])],
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "machine": f"{platform.machine()} {os.cpu_count()} cores",
    }
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
