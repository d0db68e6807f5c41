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

into ``docs/results/full-<protocol>/``.

Usage::

    python docs/scripts/protocol_results.py [--runs runs] [--kind quick|full]
        [PROTOCOL ...]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEST = ROOT / "docs" / "results"
PROTOCOLS = ("cv", "loco", "islahiye")
PATTERNS = ("table_*.md", "table_*.csv", "table_*.json", "runs.csv", "*.png")


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
        choices=PROTOCOLS,
        default=list(PROTOCOLS),
        help="protocols to copy (default: all three)",
    )
    args = parser.parse_args(argv)
    for protocol in args.protocols:
        source = Path(args.runs) / f"{args.kind}-{protocol}"
        if not (source / "protocol.json").exists():
            print(f"missing {source}: run the protocol first", file=sys.stderr)
            return 1
        target = DEST / (protocol if args.kind == "quick" else f"full-{protocol}")
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
