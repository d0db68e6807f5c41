"""Quality parity of bf16 and float32 training: same splits, several seeds.

Runs one protocol (``cv`` by default, in the runner's quick mode unless
``--full``; ``--folds`` trains some folds only) once per precision
(``32-true`` and ``bf16-mixed`` by default) with the same configuration,
seeds and data, each into its own output folder
(``OUT/<precision>``; finished runs are reused), then compares the runs'
validation metrics (the best epoch's ``val_f1``, ``val_auroc``, ``val_ap``,
from each run's CSV log) and test metrics (``test_f1_oracle`` at the best-F1
threshold of the test split, the paper's figure, ``test_f1_valthr`` at the validation
threshold, ``test_auroc``, ``test_ap``, from ``metrics.json``).

For each precision and seed the metrics are averaged over the protocol's
splits (the five folds of ``cv``); the table gives, per precision, the mean
over seeds and the seed-to-seed spread (sample standard deviation and range),
and the difference bf16 − float32 of the means with its 95 % Student *t*
interval over the seeds' paired differences (each seed trains both precisions
on the same splits; the seeds' splits differ, so their differences are
independent). Parity is judged per metric as the issue that asked for it puts
it: the difference lies within the float32 runs' seed-to-seed standard
deviation.

Prints one JSON object (and, with ``--markdown``, the table).

Usage::

    python benchmarks/precision_parity.py --out runs/parity --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from torchgeo_quake.protocols import (
    ProtocolSettings,
    load_config,
    plan_runs,
    run_protocol,
)
from torchgeo_quake.protocols.statistics import paired_t_interval
from torchgeo_quake.protocols.training import train_run
from torchgeo_quake.trainers.collection import upgrade_test_metrics

VAL_METRICS = ("val_f1", "val_auroc", "val_ap")
TEST_METRICS = ("test_f1_oracle", "test_f1_valthr", "test_auroc", "test_ap")


def best_epoch_validation(run_dir: Path, best_epoch: int | None) -> dict[str, float]:
    """Validation metrics of a run's best epoch, from its CSV log.

    Args:
        run_dir: the run's folder (with ``metrics.csv``)
        best_epoch: the epoch of the best checkpoint (None: the best ``val_f1``)

    Returns:
        :data:`VAL_METRICS` of that epoch.
    """
    log = pd.read_csv(run_dir / "metrics.csv").dropna(subset=["val_f1"])
    if best_epoch is not None and (log["epoch"] == best_epoch).any():
        row = log[log["epoch"] == best_epoch].iloc[-1]
    else:
        row = log.iloc[int(log["val_f1"].to_numpy().argmax())]
    return {k: float(row[k]) for k in VAL_METRICS}


def collect(
    out: Path, folds: list[int] | None = None
) -> dict[int, list[dict[str, Any]]]:
    """Metrics of the finished runs of a protocol folder, by seed.

    Args:
        out: the protocol's output folder
        folds: only the runs of these test folds (None: all)

    Returns:
        Per seed, one dict per run: its metrics, ``precision`` and ``wall_s``.
    """
    by_seed: dict[int, list[dict[str, Any]]] = {}
    for path in sorted(out.glob("runs/*/*/seed*/metrics.json")):
        record = json.loads(path.read_text())
        # Records before 0.3 name the oracle-threshold F1 test_f1.
        record["metrics"] = upgrade_test_metrics(record["metrics"])
        if folds is not None and record.get("fold") not in folds:
            continue
        row = best_epoch_validation(path.parent, record.get("best_epoch"))
        row.update({k: float(record["metrics"][k]) for k in TEST_METRICS})
        row["precision"] = record.get("precision")
        row["wall_s"] = float(record["wall_s"])
        by_seed.setdefault(int(record["seed"]), []).append(row)
    return by_seed


def summarize(by_seed: dict[int, list[dict[str, Any]]]) -> dict[str, Any]:
    """Per-seed means over splits, then mean and spread over seeds.

    Args:
        by_seed: what :func:`collect` returned

    Returns:
        ``per_seed`` (metric -> seed -> mean over splits), ``mean``, ``std``
        (sample standard deviation over seeds; 0 with one seed), ``min``,
        ``max``, ``runs`` and the effective precisions of the runs.
    """
    metrics = (*VAL_METRICS, *TEST_METRICS)
    per_seed = {
        m: {s: statistics.fmean(r[m] for r in rows) for s, rows in by_seed.items()}
        for m in metrics
    }
    values = {m: list(per_seed[m].values()) for m in metrics}
    return {
        "per_seed": per_seed,
        "mean": {m: statistics.fmean(v) for m, v in values.items()},
        "std": {
            m: statistics.stdev(v) if len(v) > 1 else 0.0 for m, v in values.items()
        },
        "min": {m: min(v) for m, v in values.items()},
        "max": {m: max(v) for m, v in values.items()},
        "runs": sum(len(rows) for rows in by_seed.values()),
        "train_test_s": sum(r["wall_s"] for rows in by_seed.values() for r in rows),
        "effective_precisions": sorted(
            {str(r["precision"]) for rows in by_seed.values() for r in rows}
        ),
    }


def compare(
    summary: dict[str, dict[str, Any]], reference: str, other: str
) -> dict[str, dict[str, Any]]:
    """Paired comparison of two precisions, metric by metric.

    Args:
        summary: :func:`summarize` per precision
        reference: the reference precision (float32)
        other: the compared precision (bf16)

    Returns:
        Per metric: ``difference`` (mean of the per-seed paired differences
        over the seeds both precisions trained: the difference of the means
        when they trained the same seeds), ``low`` and ``high`` (its 95 %
        t-interval; NaN with one seed), ``seeds`` (their number) and
        ``within_spread`` (``|difference|`` at most the reference's
        seed-to-seed standard deviation).
    """
    ref, cand = summary[reference], summary[other]
    result: dict[str, dict[str, Any]] = {}
    for m in (*VAL_METRICS, *TEST_METRICS):
        seeds = sorted(set(ref["per_seed"][m]) & set(cand["per_seed"][m]))
        interval = paired_t_interval(
            [cand["per_seed"][m][s] - ref["per_seed"][m][s] for s in seeds]
        )
        result[m] = {
            "difference": interval.mean,
            "low": interval.low,
            "high": interval.high,
            "seeds": interval.n,
            "within_spread": bool(abs(interval.mean) <= ref["std"][m]),
        }
    return result


def markdown(summary: dict[str, dict[str, Any]], reference: str, other: str) -> str:
    """The comparison as a Markdown table.

    Args:
        summary: :func:`summarize` per precision
        reference: the reference precision (float32)
        other: the compared precision (bf16)

    Returns:
        The table.
    """
    comparison = compare(summary, reference, other)
    lines = [
        f"| metric | {reference}: mean ± sd [min, max] | {other}: mean ± sd "
        f"[min, max] | {other} − {reference} [95 % interval, paired by seed] "
        f"| within {reference} spread |",
        "|---|---|---|---|---|",
    ]
    for m in (*VAL_METRICS, *TEST_METRICS):
        cells = [
            f"{s['mean'][m]:.3f} ± {s['std'][m]:.3f} [{s['min'][m]:.3f}, "
            f"{s['max'][m]:.3f}]"
            for s in (summary[reference], summary[other])
        ]
        c = comparison[m]
        ok = "yes" if c["within_spread"] else "no"
        lines.append(
            f"| {m} | {cells[0]} | {cells[1]} | {c['difference']:+.3f} "
            f"[{c['low']:+.3f}, {c['high']:+.3f}] | {ok} |"
        )
    return "\n".join(lines)


def run_folds(settings: ProtocolSettings, folds: list[int]) -> None:
    """Train only the runs of some folds (no tables), skipping finished ones.

    Args:
        settings: the protocol's settings, with an existing data root
        folds: the test folds to train

    Raises:
        FileNotFoundError: If the data root does not exist (simulate it first
            with a call without ``--folds``).
    """
    settings = settings.resolved()
    root = Path(str(settings.root))
    if not root.is_dir():
        raise FileNotFoundError(
            f"data root {root} does not exist: run once without --folds first"
        )
    config = load_config(settings.configs[0])
    for run in plan_runs(settings.protocol, [config], settings.seeds, root=root):
        done = (run.directory(settings.out) / "metrics.json").exists()
        if run.fold in folds and not done:
            train_run(run, config, settings, str(root), None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--protocol", default="cv", choices=["cv", "loco", "islahiye"])
    parser.add_argument("--config", default="experiments/all_inputs.yaml")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument(
        "--precisions",
        nargs="+",
        default=["32-true", "bf16-mixed"],
        metavar="P",
        help="reference, then compared precision (one: train it only)",
    )
    parser.add_argument(
        "--full", action="store_true", help="full scale (default: quick mode)"
    )
    parser.add_argument("--max-epochs", type=int, default=None)
    parser.add_argument("--root", default=None, help="data root")
    parser.add_argument(
        "--folds",
        type=int,
        nargs="+",
        default=None,
        help="train only these test folds (default: the whole protocol, with "
        "its tables); needs an existing --root",
    )
    parser.add_argument("--threads", type=int, default=None, help="CPU threads")
    parser.add_argument("--markdown", action="store_true", help="print the table")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    load_start = os.getloadavg()
    summary: dict[str, dict[str, Any]] = {}
    walls: dict[str, float] = {}
    for precision in args.precisions:
        out = Path(args.out) / precision
        start = time.perf_counter()
        settings = ProtocolSettings(
            protocol=args.protocol,
            configs=[args.config],
            out=str(out),
            seeds=args.seeds,
            quick=not args.full,
            max_epochs=args.max_epochs,
            root=args.root,
            precision=precision,
            progress=False,
        )
        if args.folds is None:
            run_protocol(settings)
        else:
            run_folds(settings, args.folds)
        walls[precision] = round(time.perf_counter() - start, 1)
        summary[precision] = summarize(collect(out, args.folds))
    result = {
        "benchmark": "quality parity of training precisions",
        "protocol": args.protocol,
        "quick": not args.full,
        "config": args.config,
        "seeds": args.seeds,
        "folds": args.folds or "all",
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "load_average_start": [round(x, 2) for x in load_start],
        "load_average_end": [round(x, 2) for x in os.getloadavg()],
        "wall_s_this_call": walls,
        "summary": summary,
    }
    if len(args.precisions) == 2:
        result["comparison"] = compare(summary, *args.precisions)
    print(json.dumps(result))
    if args.markdown and len(args.precisions) == 2:
        print(markdown(summary, *args.precisions))


if __name__ == "__main__":
    main()
