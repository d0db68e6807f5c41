"""Copy the tables and figures of the protocols into docs/results/.

The page "Reproducing the paper" includes the Markdown tables and shows the
figures that ``torchgeo-quake protocol`` wrote; this script copies them (never
edits them) from the protocols' output folders. Quick mode::

    torchgeo-quake protocol cv --quick --out runs/quick-cv
    torchgeo-quake protocol loco --quick --out runs/quick-loco
    torchgeo-quake protocol islahiye --quick --out runs/quick-islahiye
    python docs/scripts/protocol_results.py

into ``docs/results/<protocol>/``; full scale::

    torchgeo-quake protocol cv --out runs/full-cv
    torchgeo-quake protocol loco --out runs/full-loco
    torchgeo-quake protocol islahiye --out runs/full-islahiye
    python docs/scripts/protocol_results.py --kind full

into ``docs/results/full-<protocol>/``. Any other output folder goes by name::

    torchgeo-quake protocol loco --out runs/cal-full-loco
    python docs/scripts/protocol_results.py --source runs/cal-full-loco \
        --name calibrated-full-loco

into ``docs/results/calibrated-full-loco/``. Copied: the tables, ``runs.csv``,
the paired comparisons and calibration files, the figures and a shortened
``protocol.json``; never checkpoints or per-run folders.

Usage::

    python docs/scripts/protocol_results.py [--runs runs] [--kind quick|full]
        [PROTOCOL ...]
    python docs/scripts/protocol_results.py --source DIR --name NAME
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEST = ROOT / "docs" / "results"
PROTOCOLS = ("cv", "loco", "islahiye", "blocked", "blocked-islahiye")
PATTERNS = (
    "table_*.md",
    "table_*.csv",
    "table_*.json",
    "comparisons_*.md",
    "comparisons_*.csv",
    "calibration_*.md",
    "calibration_*.csv",
    "runs.csv",
    "*.png",
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--runs", default="runs", help="folder holding <kind>-<protocol>/ outputs"
    )
    parser.add_argument(
        "--kind",
        choices=("quick", "full"),
        default="quick",
        help="which outputs: runs/quick-<protocol> or runs/full-<protocol>",
    )
    parser.add_argument(
        "protocols",
        nargs="*",
        metavar="PROTOCOL",
        help=f"protocols to copy, of {', '.join(PROTOCOLS)} (default: cv loco "
        "islahiye)",
    )
    parser.add_argument(
        "--source", help="copy this output folder instead (with --name)"
    )
    parser.add_argument(
        "--name", help="with --source: the folder's name under docs/results/"
    )
    args = parser.parse_args(argv)
    if (args.source is None) != (args.name is None):
        parser.error("--source and --name go together")
    unknown = sorted(set(args.protocols) - set(PROTOCOLS))
    if unknown:
        parser.error(f"unknown protocol {', '.join(unknown)}: not one of {PROTOCOLS}")
    if args.source is not None:
        if "/" in args.name or args.name in ("", ".", ".."):
            parser.error(f"--name must be a plain folder name, not {args.name!r}")
        return _copy(Path(args.source), DEST / args.name)
    for protocol in args.protocols or ("cv", "loco", "islahiye"):
        source = Path(args.runs) / f"{args.kind}-{protocol}"
        target = DEST / (protocol if args.kind == "quick" else f"full-{protocol}")
        status = _copy(source, target)
        if status:
            return status
    return 0


def _copy(source: Path, target: Path) -> int:
    """Copy one protocol's outputs (see the module docstring).

    Args:
        source: the protocol's output folder
        target: the folder under docs/results/ (replaced)

    Returns:
        0, or 1 when *source* holds no finished protocol.
    """
    if not (source / "protocol.json").exists():
        print(
            f"missing {source}/protocol.json: run the protocol first", file=sys.stderr
        )
        return 1
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    for pattern in PATTERNS:
        for path in sorted(source.glob(pattern)):
            shutil.copy2(path, target / path.name)
    summary = json.loads((source / "protocol.json").read_text())
    keep = {
        "settings": summary["settings"],
        # The runner's record of its latest call only: for a protocol
        # resumed over several sittings its wall_s is the last sitting's,
        # so it is kept under that name, not as the protocol's wall time.
        "last_call": summary.get("last_call"),
        "seeds": summary["seeds"],
        "runs": summary["runs"],
        "configs": [c["path"] for c in summary["configs"]],
    }
    (target / "protocol.json").write_text(json.dumps(keep, indent=1) + "\n")
    print(f"{source} -> {target.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
