r"""Compute the simulator's calibration table: each row simulated vs its reference.

The page "The simulated scene" (docs/simulator.md) includes the Markdown this
script writes. It reads a simulated scene, the real HOTOSM destroyed layer and
GEM's vulnerability functions beside the repository (``../shared/data``) and,
optionally, the output folder of the leave-one-city-out protocol run on the
same scene (for the CNN's SAR + FTP row)::

    torchgeo-quake simulate --root /tmp/scene
    torchgeo-quake protocol loco --out runs/full-loco  # optional
    python docs/scripts/simulator_calibration.py --root /tmp/scene \
        --out docs/results/calibration --loco-results runs/full-loco

It prints the table as JSON and writes ``calibration.md`` and
``calibration.json`` into ``--out``. The computations are in
:mod:`torchgeo_quake.realism.table`.

Usage::

    python docs/scripts/simulator_calibration.py --root SCENE --out DIR
        [--loco-results DIR] [--no-boosting]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from torchgeo_quake.realism.markdown import format_markdown
from torchgeo_quake.realism.table import calibration_table


def main(argv: list[str] | None = None) -> int:
    """Run the script.

    Args:
        argv: command-line arguments (default: ``sys.argv[1:]``)

    Returns:
        The exit status.
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", required=True, help="simulated scene folder")
    parser.add_argument("--out", required=True, help="output folder (created)")
    parser.add_argument(
        "--loco-results",
        default=None,
        help="output folder of `torchgeo-quake protocol loco` on this scene",
    )
    parser.add_argument(
        "--no-boosting",
        action="store_true",
        help="skip the gradient-boosting models (faster)",
    )
    args = parser.parse_args(argv)
    root = Path(args.root)
    if not (root / "scene.json").is_file():
        parser.error(
            f"{root} is not a simulated scene (no scene.json); simulate one with "
            f"`torchgeo-quake simulate --root {root}`"
        )
    if args.loco_results is not None and not Path(args.loco_results).is_dir():
        parser.error(f"--loco-results {args.loco_results}: no such folder")
    result = calibration_table(
        root, loco_results=args.loco_results, boosting=not args.no_boosting
    )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    text = json.dumps(result, indent=1, ensure_ascii=False)
    (out / "calibration.json").write_text(text + "\n", encoding="utf-8")
    (out / "calibration.md").write_text(format_markdown(result), encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
