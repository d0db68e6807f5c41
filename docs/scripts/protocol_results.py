"""Copy the tables and figures of the quick protocols into docs/results/.

The page "Reproducing the paper" includes the Markdown tables and shows the
figures that ``torchgeo-quake protocol ... --quick`` wrote; this script copies them
(never edits them) from the protocols' output folders::

    torchgeo-quake protocol cv --quick --out runs/quick-cv
    torchgeo-quake protocol loco --quick --out runs/quick-loco
    torchgeo-quake protocol islahiye --quick --out runs/quick-islahiye
    python docs/scripts/protocol_results.py

Usage::

    python docs/scripts/protocol_results.py [--runs runs]
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
        "--runs", default="runs", help="folder holding quick-<protocol>/ outputs"
    )
    args = parser.parse_args(argv)
    for protocol in PROTOCOLS:
        source = Path(args.runs) / f"quick-{protocol}"
        if not (source / "protocol.json").exists():
            print(f"missing {source}: run the protocol first", file=sys.stderr)
            return 1
        target = DEST / protocol
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True)
        for pattern in PATTERNS:
            for path in sorted(source.glob(pattern)):
                shutil.copy2(path, target / path.name)
        summary = json.loads((source / "protocol.json").read_text())
        keep = {
            "settings": summary["settings"],
            "seeds": summary["seeds"],
            "runs": summary["runs"],
            "configs": [c["path"] for c in summary["configs"]],
        }
        (target / "protocol.json").write_text(json.dumps(keep, indent=1) + "\n")
        print(f"{source} -> {target.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
