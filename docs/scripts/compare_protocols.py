r"""Compare two output folders of one protocol, split by split (issue 15).

``torchgeo-quake protocol`` compares input configurations within one output
folder. Two folders that differ in a setting the runner keeps per folder — for
example ``loco --selection inner-city`` (checkpoint and threshold chosen on a
held-out training city) against the default random validation split — are
compared here: for one configuration, per test split (the held-out city of
``loco``), the building-level paired bootstrap of folder A minus folder B
(:func:`torchgeo_quake.protocols.statistics.paired_bootstrap`, over the seeds
both folders hold) of AUROC, AP, F1 at each split's own best-F1 threshold, and
precision, recall and F1 at each run's validation threshold. The two folders
must have tested the same buildings. It writes ``<out>.md`` and ``<out>.csv``
and prints the Markdown::

    torchgeo-quake protocol loco --out runs/v3-loco
    torchgeo-quake protocol loco --selection inner-city --out runs/v3-loco-inner
    python docs/scripts/compare_protocols.py runs/v3-loco-inner runs/v3-loco \
        --config sar_ftp --out runs/selection

.. versionadded:: 0.3
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from torchgeo_quake.protocols.records import read_predictions
from torchgeo_quake.protocols.statistics import Interval, paired_bootstrap

#: Bootstrap key -> (label, policy, ``runs.csv`` column of the metric).
METRICS: dict[str, tuple[str, str, str]] = {
    "auroc": ("AUROC", "threshold-free", "test_auroc"),
    "ap": ("AP", "threshold-free", "test_ap"),
    "f1": ("F1 score", "oracle", "test_f1_oracle"),
    "precision_valthr": ("Precision", "valthr", "test_precision_valthr"),
    "recall_valthr": ("Recall", "valthr", "test_recall_valthr"),
    "f1_valthr": ("F1 score", "valthr", "test_f1_valthr"),
}


def _runs(folder: Path, config: str) -> pd.DataFrame:
    """The runs of one configuration in a protocol output folder.

    Raises:
        FileNotFoundError: If the folder has no ``runs.csv``.
        ValueError: If it has no run of *config*.
    """
    path = folder / "runs.csv"
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: no runs.csv; give the --out folder of a finished "
            "`torchgeo-quake protocol` call"
        )
    runs = pd.read_csv(path)
    runs = runs[runs["config"] == config]
    if runs.empty:
        raise ValueError(f"{path} holds no run of configuration {config!r}")
    return runs


def _predictions(
    folder: Path, config: str, split: str, seed: int
) -> tuple[npt.NDArray[Any], npt.NDArray[np.float64], npt.NDArray[np.int64]]:
    """Building ids, probabilities and labels of one run, sorted by id.

    Raises:
        FileNotFoundError: If the run's ``predictions.npz`` is missing.
    """
    return read_predictions(folder / "runs" / config / split / f"seed{seed}")


def compare_folders(
    a: Path, b: Path, config: str, replicates: int = 1000, seed: int = 0
) -> pd.DataFrame:
    """Per split and metric, A minus B with its paired-bootstrap interval.

    Args:
        a: output folder A
        b: output folder B (the reference)
        config: configuration name (e.g. ``sar_ftp``)
        replicates: bootstrap replicates
        seed: seed of the resampling

    Returns:
        One row per split and metric: the mean of each folder over the
        seeds, the difference, its interval and whether it excludes zero.

    Raises:
        ValueError: If the folders share no split and seed, or tested other
            buildings.
    """
    runs_a = _runs(a, config).set_index(["split", "seed"])
    runs_b = _runs(b, config).set_index(["split", "seed"])
    keys = sorted(set(runs_a.index) & set(runs_b.index))
    if not keys:
        raise ValueError(f"{a} and {b} share no split and seed of {config!r}")
    rows = []
    for split in dict.fromkeys(k[0] for k in keys):
        seeds = [s for sp, s in keys if sp == split]
        labels, scores, refs = [], [], []
        for s in seeds:
            ids_a, probs_a, labels_a = _predictions(a, config, split, s)
            ids_b, probs_b, labels_b = _predictions(b, config, split, s)
            if not (
                np.array_equal(ids_a, ids_b) and np.array_equal(labels_a, labels_b)
            ):
                raise ValueError(
                    f"{split}, seed {s}: {a} and {b} tested other buildings or "
                    "labels; compare folders of the same scene and protocol"
                )
            labels.append(labels_a)
            scores.append(probs_a)
            refs.append(probs_b)
        in_a = runs_a.loc[[(split, s) for s in seeds]]
        in_b = runs_b.loc[[(split, s) for s in seeds]]
        thr = in_a["val_threshold"].astype(float).tolist()
        ref_thr = in_b["val_threshold"].astype(float).tolist()
        intervals: dict[str, Interval] = paired_bootstrap(
            labels, scores, refs, thr, ref_thr, replicates=replicates, seed=seed
        )
        for key, (label, policy, column) in METRICS.items():
            interval = intervals[key]
            rows.append(
                {
                    "split": split,
                    "metric": label,
                    "policy": policy,
                    "seeds": len(seeds),
                    "a": float(in_a[column].mean()),
                    "b": float(in_b[column].mean()),
                    "difference": interval.mean,
                    "low": interval.low,
                    "high": interval.high,
                    "significant": interval.significant,
                }
            )
    return pd.DataFrame(rows)


def to_markdown(table: pd.DataFrame, a: Path, b: Path, config: str) -> str:
    """The comparison as a Markdown table with its caption."""
    lines = [
        f"*Configuration {config}: folder A ({a.name}) minus folder B ({b.name}) "
        "per test split, over the seeds both hold; 95 % interval of the "
        "building-level paired bootstrap (the same resample for both folders). "
        "oracle: at each split's own best-F1 threshold; valthr: at each run's "
        "validation threshold.*",
        "",
        "| Split | Metric | Policy | A | B | A − B | 95 % interval | Significant |",
        "|---|---|---|---:|---:|---:|---:|---|",
    ]
    for row in table.itertuples():
        lines.append(
            f"| {row.split} | {row.metric} | {row.policy} | {row.a:.3f} | "
            f"{row.b:.3f} | {row.difference:+.3f} | "
            f"[{row.low:+.3f}, {row.high:+.3f}] | "
            f"{'yes' if row.significant else 'no'} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Compare two protocol folders; write and print the table.

    Args:
        argv: command-line arguments (default: ``sys.argv[1:]``)

    Returns:
        The exit status.
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("a", type=Path, help="output folder A")
    parser.add_argument("b", type=Path, help="output folder B (the reference)")
    parser.add_argument("--config", default="sar_ftp", help="configuration name")
    parser.add_argument(
        "--out", type=Path, required=True, help="writes OUT.md and OUT.csv"
    )
    parser.add_argument("--replicates", type=int, default=1000)
    args = parser.parse_args(argv)
    try:
        table = compare_folders(args.a, args.b, args.config, args.replicates)
    except (FileNotFoundError, ValueError) as error:
        print(f"compare_protocols: {error}", file=sys.stderr)
        return 1
    markdown = to_markdown(table, args.a, args.b, args.config)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".md").write_text(markdown, encoding="utf-8")
    table.round(4).to_csv(args.out.with_suffix(".csv"), index=False)
    print(markdown, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
