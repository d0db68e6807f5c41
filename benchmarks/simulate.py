"""Benchmark of the five-city scene simulator.

Simulates the full default scene (or, with ``--quick``, a scale-0.1 scene) into a
temporary folder, then builds every building sample of ``KahramanmarasDamage``
from it through the data layer (no patch cache), and prints one JSON line: wall
times of both steps, peak resident memory (``resource.getrusage``, whole process,
imports included), per-city reference counts, sample counts (``table_ii``: whether
they equal the paper's Table II, at scale 1) and image sizes.

With ``--cities`` and/or ``--buildings`` it simulates those cities only (with
that many buildings each, like ``torchgeo-quake simulate --buildings``) and
skips the sample build (Table II does not apply); the JSON line then has no
sample counts.

Usage::

    python benchmarks/simulate.py            # full scene (scale 1)
    python benchmarks/simulate.py --quick    # scale 0.1
    python benchmarks/simulate.py --cities kahramanmaras --buildings 100000
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="simulate at scale 0.1")
    parser.add_argument("--seed", type=int, default=0, help="random seed")
    parser.add_argument(
        "--root", default=None, help="output folder (default: a temporary folder)"
    )
    parser.add_argument(
        "--cities", nargs="+", default=None, help="city slugs (default: all five)"
    )
    parser.add_argument(
        "--buildings",
        type=int,
        default=None,
        help="buildings per city inside the SAR area (default: Table II counts)",
    )
    args = parser.parse_args(argv)
    scale = 0.1 if args.quick else 1.0
    custom = args.cities is not None or args.buildings is not None

    start = time.perf_counter()
    from torchgeo_quake.simulation import simulate_scene

    import_s = time.perf_counter() - start
    with tempfile.TemporaryDirectory(prefix="simulate-bench-") as tmp:
        root = Path(args.root) if args.root else Path(tmp) / "scene"
        start = time.perf_counter()
        summary = simulate_scene(
            root,
            cities=args.cities,
            scale=scale,
            seed=args.seed,
            overwrite=True,
            buildings=args.buildings,
        )
        wall = time.perf_counter() - start
        size = sum(f.stat().st_size for f in root.rglob("*") if f.is_file())
        if custom:
            print(json.dumps(_custom_result(args, summary, wall, import_s, size)))
            return 0

        from torchgeo_quake.datasets import TABLE_II, KahramanmarasDamage

        start = time.perf_counter()
        dataset = KahramanmarasDamage(root, scale=scale, cache=False)
        build = time.perf_counter() - start
        counts = dataset.counts()
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    cities = {
        slug: {
            "intact": city["intact_reference"],
            "damaged": city["damaged_reference"],
            "buildings": city["buildings"],
            "outside_sar": city["buildings_outside_sar"],
            "sar_shape": [city["sar"]["height"], city["sar"]["width"]],
            "dsm_shape": [city["dsm"]["height"], city["dsm"]["width"]],
        }
        for slug, city in summary["cities"].items()
    }
    result = {
        "benchmark": "simulate_scene",
        "scale": scale,
        "seed": args.seed,
        "wall_s": round(wall, 2),
        "build_samples_s": round(build, 2),
        "samples": len(dataset),
        "table_ii": scale == 1.0
        and all(
            (int(row["intact"]), int(row["damaged"])) == TABLE_II[str(city)]
            for city, row in counts.iterrows()
            if city != "all"
        ),
        "samples_per_city": {
            city: [int(row["intact"]), int(row["damaged"])]
            for city, row in counts.iterrows()
            if city != "all"
        },
        "import_s": round(import_s, 2),
        "peak_rss_mib": round(peak_kib / 1024, 1),
        "output_mib": round(size / 2**20, 1),
        "python": platform.python_version(),
        "cities": cities,
    }
    print(json.dumps(result, ensure_ascii=False))
    return 0


def _custom_result(
    args: argparse.Namespace,
    summary: dict[str, Any],
    wall: float,
    import_s: float,
    size: int,
) -> dict[str, Any]:
    """Result of a run with chosen cities or building counts.

    Args:
        args: the command-line arguments
        summary: the scene summary
        wall: simulation wall time (seconds)
        import_s: import time (seconds)
        size: bytes written

    Returns:
        The JSON-serialisable result.
    """
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "benchmark": "simulate_scene",
        "cities": {
            slug: {
                "buildings": city["buildings"],
                "sar_shape": [city["sar"]["height"], city["sar"]["width"]],
                "dsm_shape": [city["dsm"]["height"], city["dsm"]["width"]],
            }
            for slug, city in summary["cities"].items()
        },
        "buildings": args.buildings,
        "seed": args.seed,
        "wall_s": round(wall, 2),
        "import_s": round(import_s, 2),
        "peak_rss_mib": round(peak_kib / 1024, 1),
        "output_mib": round(size / 2**20, 1),
        "python": platform.python_version(),
    }


if __name__ == "__main__":
    sys.exit(main())
