"""Command-line front end of the simulator (``torchgeo-quake simulate``).

.. versionadded:: 0.1
"""

from __future__ import annotations

import argparse

from .cities import resolve_cities
from .scenario import resolve_scenario
from .scene import simulate_scene
from .scene_record import SCENE_FILE

__all__ = ["simulate_cli"]


def simulate_cli(args: argparse.Namespace) -> int:
    """Run ``torchgeo-quake simulate`` with parsed arguments.

    Args:
        args: namespace with ``root`` (output folder), ``cities`` (list of
            slugs or None for all), ``scale`` (float), ``seed`` (int),
            ``overwrite`` (bool) and optionally ``gem_dir`` (folder, ``builtin``
            or None) and ``buildings`` (building count per city, or None for
            the scaled Table II counts), ``scenario``, ``sar_contrast`` and
            ``vulnerability_strength`` (None for the defaults)

    Returns:
        Exit status 0 (errors are raised: :class:`FileExistsError`,
        :class:`FileNotFoundError`, :class:`ValueError`).

    .. versionadded:: 0.1
    """
    cities = resolve_cities(args.cities)
    summary = simulate_scene(
        args.root,
        cities=cities,
        scale=args.scale,
        seed=args.seed,
        overwrite=args.overwrite,
        gem_dir=getattr(args, "gem_dir", None),
        buildings=getattr(args, "buildings", None),
        scenario=getattr(args, "scenario", None),
        sar_contrast=getattr(args, "sar_contrast", None),
        vulnerability_strength=getattr(args, "vulnerability_strength", None),
    )
    size = (
        f"{args.buildings} buildings per city"
        if getattr(args, "buildings", None) is not None
        else f"scale {args.scale:g}"
    )
    scenario = summary["parameters"].get("scenario") or {}
    label = resolve_scenario(
        scenario.get("name"),
        scenario.get("sar_contrast"),
        scenario.get("vulnerability_strength"),
    ).label()
    print(
        f"simulated scene in {args.root} (seed {args.seed}, {size}, scenario {label})"
    )
    header = f"{'city':<15}{'intact':>8}{'damaged':>9}{'outside':>9}  sar (w x h)"
    print(header)
    for slug, city in summary["cities"].items():
        sar = city["sar"]
        print(
            f"{slug:<15}{city['intact_reference']:>8}{city['damaged_reference']:>9}"
            f"{city['buildings_outside_sar']:>9}  {sar['width']} x {sar['height']}"
        )
    print(f"summary: {args.root}/{SCENE_FILE}")
    return 0
