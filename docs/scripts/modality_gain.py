"""Modality gain against the simulator's SAR damage contrast (issue 14).

For each SAR contrast (the calibrated scenario's ``sar_contrast`` knob), this
script simulates the quick scene (scale 0.1) with that contrast, runs a
protocol (``loco`` by default) in quick mode for the three input
configurations, and measures what the DSM and GEM add to SAR + FTP: per test
split (city or fold) and seed, the difference of AUROC and AP between a
configuration and SAR + FTP, with the mean and its 95 % t-interval over the
splits x seeds. It writes ``gain.csv``, ``gain.md`` and ``gain.png`` into
``--out`` and prints the rows as JSON::

    python docs/scripts/modality_gain.py --out runs/gain --contrasts 0.5 1 2

Runs are resumable (each contrast has its own scene and protocol folder under
``--out``). A knob value of 1 is the calibrated default; 0 removes every
damage cue from the SAR image.

.. versionadded:: 0.3
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from torchgeo_quake.protocols import ProtocolSettings, run_protocol
from torchgeo_quake.protocols.config import QUICK
from torchgeo_quake.protocols.statistics import paired_t_interval
from torchgeo_quake.simulation import simulate_scene

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ("sar_ftp", "sar_ftp_dsm", "all_inputs")
METRICS = ("test_auroc", "test_ap")


def run_contrast(
    out: Path, contrast: float, protocol: str, seeds: list[int], epochs: int | None
) -> pd.DataFrame:
    """Simulate the scene of one contrast and run the protocol on it.

    Args:
        out: output folder of the whole study
        contrast: the scenario's SAR contrast
        protocol: protocol name
        seeds: training seeds
        epochs: epochs per run (None: the quick mode's)

    Returns:
        The protocol's ``runs.csv``.
    """
    tag = f"contrast-{contrast:g}"
    scene = out / "scenes" / tag
    simulate_scene(scene, scale=QUICK["scale"], seed=0, sar_contrast=contrast)
    runs = out / "runs" / tag
    settings = ProtocolSettings(
        protocol=protocol,  # type: ignore[arg-type]
        configs=[str(ROOT / "experiments" / f"{c}.yaml") for c in CONFIGS],
        out=str(runs),
        seeds=seeds,
        quick=True,
        root=str(scene),
        max_epochs=epochs,
    )
    run_protocol(settings)
    return pd.read_csv(runs / "runs.csv")


def gains(runs: pd.DataFrame, contrast: float) -> list[dict[str, object]]:
    """Paired differences to SAR + FTP of one contrast's runs.

    Args:
        runs: the protocol's ``runs.csv``
        contrast: the contrast (recorded in each row)

    Returns:
        One row per configuration and metric, with the SAR + FTP value.
    """
    rows: list[dict[str, object]] = []
    wide = runs.pivot_table(index=["split", "seed"], columns="config", values=METRICS)
    for metric in METRICS:
        base = wide[(metric, "sar_ftp")]
        for config in CONFIGS[1:]:
            diff = (wide[(metric, config)] - base).to_numpy()
            interval = paired_t_interval(diff)
            rows.append(
                {
                    "contrast": contrast,
                    "config": config,
                    "metric": metric.removeprefix("test_"),
                    "sar_ftp": round(float(np.nanmean(base)), 4),
                    "gain": round(interval.mean, 4),
                    "low": round(interval.low, 4),
                    "high": round(interval.high, 4),
                    "n": interval.n,
                }
            )
    return rows


def markdown(table: pd.DataFrame) -> str:
    """The rows as a Markdown table.

    Args:
        table: the rows of :func:`gains`

    Returns:
        The table, one line per row.
    """
    head = ["SAR contrast", "Inputs", "Metric", "SAR + FTP", "Gain", "95 % interval"]
    lines = ["| " + " | ".join(head) + " |", "|---|---|---|---:|---:|---|"]
    for r in table.itertuples():
        lines.append(
            f"| {r.contrast:g} | {r.config} | {str(r.metric).upper()} | "
            f"{r.sar_ftp:.3f} | {r.gain:+.3f} | [{r.low:+.3f}, {r.high:+.3f}] |"
        )
    return "\n".join(lines) + "\n"


def plot(table: pd.DataFrame, path: Path) -> None:
    """Gain with its interval against the contrast, one panel per metric.

    Args:
        table: the rows of :func:`gains` for every contrast
        path: the PNG to write
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6), sharex=True)
    labels = {"sar_ftp_dsm": "+ DSM", "all_inputs": "+ DSM + GEM"}
    ticks = sorted(float(c) for c in table.contrast.unique())
    position = {c: i for i, c in enumerate(ticks)}  # 0 allowed: no log axis
    for ax, metric in zip(axes, ("auroc", "ap"), strict=True):
        for shift, config in zip((-0.06, 0.06), labels, strict=True):
            part = table[(table.metric == metric) & (table.config == config)]
            part = part.sort_values("contrast")
            x = np.array([position[float(c)] for c in part.contrast]) + shift
            y = part.gain.to_numpy(float)
            err = np.vstack(
                [y - part.low.to_numpy(float), part.high.to_numpy(float) - y]
            )
            ax.errorbar(x, y, yerr=err, marker="o", capsize=3, label=labels[config])
        ax.axhline(0.0, color="0.5", lw=0.8)
        ax.set_xticks(range(len(ticks)), [f"{t:g}" for t in ticks])
        ax.set_xlabel("SAR damage contrast (scenario knob)")
        ax.set_ylabel(f"{metric.upper()} gain over SAR + FTP")
        ax.legend(frameon=False, fontsize=8)
    fig.suptitle("What the DSM and GEM add, against the SAR cue (95 % intervals)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    """Run the study.

    Args:
        argv: command-line arguments (None: ``sys.argv``)

    Returns:
        Exit status.
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument(
        "--contrasts", nargs="+", type=float, default=[0.25, 0.5, 1.0, 2.0]
    )
    parser.add_argument("--protocol", default="loco")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--epochs", type=int, default=None)
    args = parser.parse_args(argv)
    if any(c < 0 for c in args.contrasts):
        parser.error("contrasts must be >= 0")
    args.out.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, object]] = []
    for contrast in args.contrasts:
        runs = run_contrast(args.out, contrast, args.protocol, args.seeds, args.epochs)
        rows += gains(runs, contrast)
    table = pd.DataFrame(rows)
    table.to_csv(args.out / "gain.csv", index=False)
    (args.out / "gain.md").write_text(markdown(table), encoding="utf-8")
    plot(table, args.out / "gain.png")
    json.dump(rows, sys.stdout, indent=1)
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
