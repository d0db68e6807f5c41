"""Figures of a protocol run: confusion matrix, PR and ROC curves, training curves.

All figures are drawn from the files the runs saved (``predictions.npz``,
``metrics.csv``, ``metrics.json``), so they can be redrawn at any time:

* ``confusion_matrix.png`` — the run with the highest test F1 (the paper's
  Fig. 6: "the cross-validation fold achieving the highest F1 score"), at the
  test split's best-F1 threshold (the paper's) and at the validation threshold;
* ``pr_roc_curves.png`` — precision–recall and ROC curves per configuration:
  one thin line per split and seed, and a thick line for the pooled predictions;
* ``training_curves.png`` — training and validation loss and validation F1 per
  epoch, per configuration, one line per split and seed;
* ``reliability.png`` — reliability diagram per configuration: the share of
  damaged buildings per probability bin against the mean probability, for the
  pooled test predictions before (``sigmoid(logit)``) and after Platt scaling.

.. versionadded:: 0.1
.. versionchanged:: 0.2
   ``reliability.png``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..trainers.metrics import ECE_BINS, reliability_curve
from .calibration import run_probabilities
from .records import read_run_log, with_current_names

__all__ = [
    "plot_confusion_matrix",
    "plot_curves",
    "plot_reliability",
    "plot_training_curves",
    "write_figures",
]


def _pyplot() -> Any:
    """Matplotlib's pyplot on the non-interactive Agg backend.

    Returns:
        The pyplot module.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: Path) -> Path:
    """Save and close a figure.

    Args:
        fig: matplotlib figure
        path: output PNG

    Returns:
        The path.
    """
    fig.savefig(path, dpi=90, bbox_inches="tight", facecolor="white")
    _pyplot().close(fig)
    return path


#: Least damaged test buildings of a run shown as the confusion-matrix figure
#: (while any run has that many).
MIN_DAMAGED = 10


def _predictions(record: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """Test probabilities and labels of a run.

    Args:
        record: the run's record (with ``directory``)

    Returns:
        Probabilities and labels.
    """
    with np.load(Path(record["directory"]) / "predictions.npz") as data:
        return data["probs"], data["labels"]


def _title(record: Mapping[str, Any]) -> str:
    """Short description of a run.

    Args:
        record: the run's record

    Returns:
        ``label, split, seed``.
    """
    label = record.get("label", record["config"])
    return f"{label}, {record['split']}, seed {record['seed']}"


def _figure_run(records: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The run shown in the confusion-matrix figure.

    Args:
        records: finished runs

    Returns:
        The run with the highest test F1, among those with at least
        :data:`MIN_DAMAGED` damaged test buildings when there are any; None
        when no run has a defined F1.
    """
    records = with_current_names(records)
    scored = [r for r in records if r["metrics"].get("test_f1_oracle") is not None]
    large = [r for r in scored if int(r.get("n_test_damaged") or 0) >= MIN_DAMAGED]
    candidates = large or scored
    if not candidates:
        return None
    return max(candidates, key=lambda r: float(r["metrics"]["test_f1_oracle"]))


def plot_confusion_matrix(
    records: Sequence[Mapping[str, Any]], path: str | os.PathLike[str]
) -> Path | None:
    """Confusion matrices of the run with the highest test F1.

    Two panels: at the test split's best-F1 threshold (the paper's Fig. 6) and
    at the validation threshold. Runs whose test split holds fewer than
    :data:`MIN_DAMAGED` damaged buildings (a small held-out city) are passed
    over while any other run is there, so that the figure is not a
    degenerate matrix of two or three positives.

    Args:
        records: finished runs
        path: output PNG

    Returns:
        The path, or None when no run has a defined F1.

    .. versionadded:: 0.1
    """
    from ..trainers.metrics import confusion_counts

    best = _figure_run(records)
    if best is None:
        return None
    probs, labels = _predictions(best)
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(8.4, 3.8))
    thresholds = (
        (
            "oracle: best-F1 threshold of the test split (paper)",
            best["metrics"]["test_threshold_oracle"],
        ),
        ("validation threshold (deployable)", best["val_threshold"]),
    )
    for ax, (name, threshold) in zip(axes, thresholds, strict=True):
        counts = confusion_counts(probs, labels, float(threshold))
        ax.imshow(counts, cmap="Blues")
        for i in range(2):
            for j in range(2):
                dark = counts[i, j] > counts.max() / 2
                ax.text(
                    j,
                    i,
                    f"{counts[i, j]:,}",
                    ha="center",
                    va="center",
                    color="white" if dark else "black",
                    fontsize=13,
                )
        ax.set_xticks([0, 1], ["Undamaged", "Damaged"])
        ax.set_yticks([0, 1], ["Undamaged", "Damaged"])
        ax.set_xlabel("Predicted")
        ax.set_ylabel("Reference")
        ax.set_title(f"{name}\nthreshold {float(threshold):.3f}", fontsize=9)
    fig.suptitle(
        f"Highest oracle-threshold test F1: {_title(best)} "
        f"(F1 {best['metrics']['test_f1_oracle']:.3f})",
        fontsize=10,
    )
    fig.tight_layout()
    return _save(fig, Path(path))


def plot_curves(
    records: Sequence[Mapping[str, Any]],
    path: str | os.PathLike[str],
    order: Sequence[str],
    labels: Mapping[str, str],
) -> Path | None:
    """Precision–recall and ROC curves per configuration.

    Args:
        records: finished runs
        path: output PNG
        order: configuration names (columns)
        labels: display labels

    Returns:
        The path, or None without runs.

    .. versionadded:: 0.1
    """
    from sklearn.metrics import precision_recall_curve, roc_curve

    names = [n for n in order if any(r["config"] == n for r in records)]
    if not names:
        return None
    plt = _pyplot()
    fig, axes = plt.subplots(
        2, len(names), figsize=(3.4 * len(names), 6.4), squeeze=False
    )
    for column, name in enumerate(names):
        runs = [r for r in records if r["config"] == name]
        pooled_p: list[np.ndarray] = []
        pooled_y: list[np.ndarray] = []
        pr_ax, roc_ax = axes[0, column], axes[1, column]
        for run in runs:
            probs, y = _predictions(run)
            pooled_p.append(probs)
            pooled_y.append(y)
            if 0 < y.sum() < y.size:
                precision, recall, _ = precision_recall_curve(y, probs)
                pr_ax.plot(recall, precision, color="0.6", lw=0.7, alpha=0.8)
                fpr, tpr, _ = roc_curve(y, probs)
                roc_ax.plot(fpr, tpr, color="0.6", lw=0.7, alpha=0.8)
        p, y = np.concatenate(pooled_p), np.concatenate(pooled_y)
        if 0 < y.sum() < y.size:
            precision, recall, _ = precision_recall_curve(y, p)
            pr_ax.plot(recall, precision, color=f"C{column}", lw=2, label="pooled")
            fpr, tpr, _ = roc_curve(y, p)
            roc_ax.plot(fpr, tpr, color=f"C{column}", lw=2, label="pooled")
            pr_ax.axhline(y.mean(), color="k", ls=":", lw=0.8, label="chance")
        roc_ax.plot([0, 1], [0, 1], color="k", ls=":", lw=0.8, label="chance")
        pr_ax.set_title(labels.get(name, name), fontsize=10)
        pr_ax.set(xlabel="Recall", ylabel="Precision", xlim=(0, 1), ylim=(0, 1.02))
        roc_ax.set(
            xlabel="False positive rate",
            ylabel="True positive rate",
            xlim=(0, 1),
            ylim=(0, 1.02),
        )
        pr_ax.legend(fontsize=7, loc="upper right")
        roc_ax.legend(fontsize=7, loc="lower right")
    fig.suptitle(
        "Test precision–recall (top) and ROC (bottom): thin grey = one split and "
        "seed, thick = pooled",
        fontsize=9,
    )
    fig.tight_layout()
    return _save(fig, Path(path))


def _epoch_log(record: Mapping[str, Any]) -> pd.DataFrame | None:
    """Per-epoch training loss, validation loss and F1 from a run's CSV log.

    Args:
        record: the run's record

    Returns:
        Frame indexed by epoch, or None without a log.
    """
    log = read_run_log(record["directory"])
    if log is None or "epoch" not in log:
        return None
    columns = [c for c in ("train_loss", "val_loss", "val_f1") if c in log]
    if not columns:
        return None
    return log.groupby("epoch")[columns].mean()


def plot_training_curves(
    records: Sequence[Mapping[str, Any]],
    path: str | os.PathLike[str],
    order: Sequence[str],
    labels: Mapping[str, str],
) -> Path | None:
    """Loss and validation F1 per epoch, per configuration.

    Args:
        records: finished runs
        path: output PNG
        order: configuration names (columns)
        labels: display labels

    Returns:
        The path, or None without logs.

    .. versionadded:: 0.1
    """
    names = [n for n in order if any(r["config"] == n for r in records)]
    logs = {id(r): _epoch_log(r) for r in records}
    if not names or all(v is None for v in logs.values()):
        return None
    plt = _pyplot()
    from matplotlib.ticker import MaxNLocator

    fig, axes = plt.subplots(
        2, len(names), figsize=(3.4 * len(names), 5.6), squeeze=False, sharey="row"
    )
    for column, name in enumerate(names):
        loss_ax, f1_ax = axes[0, column], axes[1, column]
        for k, run in enumerate(r for r in records if r["config"] == name):
            log = logs[id(run)]
            if log is None:
                continue
            epochs = log.index.to_numpy() + 1
            first = k == 0
            if "train_loss" in log:
                loss_ax.plot(
                    epochs,
                    log["train_loss"],
                    color="C0",
                    lw=0.9,
                    marker=".",
                    label="train" if first else None,
                )
            if "val_loss" in log:
                loss_ax.plot(
                    epochs,
                    log["val_loss"],
                    color="C1",
                    lw=0.9,
                    marker=".",
                    label="validation" if first else None,
                )
            if "val_f1" in log:
                f1_ax.plot(epochs, log["val_f1"], color="C2", lw=0.9, marker=".")
        loss_ax.set_title(labels.get(name, name), fontsize=10)
        loss_ax.set(xlabel="Epoch", ylabel="Binary cross-entropy")
        f1_ax.set(xlabel="Epoch", ylabel="Validation F1 (best-F1 threshold)")
        loss_ax.legend(fontsize=7)
        for ax in (loss_ax, f1_ax):
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    fig.suptitle("Training curves: one line per split and seed", fontsize=9)
    fig.tight_layout()
    return _save(fig, Path(path))


def plot_reliability(
    records: Sequence[Mapping[str, Any]],
    path: str | os.PathLike[str],
    names: Sequence[str],
    label_of: Mapping[str, str],
) -> Path | None:
    """Reliability diagram per configuration, before and after calibration.

    The test predictions of every run of a configuration are pooled and
    binned in :data:`~torchgeo_quake.trainers.metrics.ECE_BINS` equal-width
    probability bins; each panel shows the share of damaged buildings per bin
    against the bin's mean probability (the diagonal is perfect calibration),
    before (``sigmoid(logit)``) and after Platt scaling, with the bins' sizes
    on a log scale below.

    Args:
        records: finished runs
        path: output PNG
        names: configuration names, one panel each
        label_of: display label per configuration

    Returns:
        The path, or None when no run has predictions.

    .. versionadded:: 0.2
    """
    plt = _pyplot()
    shown = [n for n in names if any(r["config"] == n for r in records)]
    if not shown:
        return None
    fig, axes = plt.subplots(
        2,
        len(shown),
        figsize=(4 * len(shown), 5.5),
        squeeze=False,
        gridspec_kw={"height_ratios": [3, 1]},
        sharex=True,
    )
    for column, name in enumerate(shown):
        pooled: dict[str, list[np.ndarray]] = {"before": [], "after": [], "y": []}
        for record in (r for r in records if r["config"] == name):
            before, after, labels, _ = run_probabilities(record)
            pooled["before"].append(before)
            pooled["after"].append(before if after is None else after)
            pooled["y"].append(labels)
        labels = np.concatenate(pooled["y"])
        top, bottom = axes[0, column], axes[1, column]
        top.plot([0, 1], [0, 1], color="0.6", lw=1, ls=":")
        for key, style in (("before", "--"), ("after", "-")):
            probs = np.concatenate(pooled[key])
            if probs.size == 0:
                continue
            curve = reliability_curve(probs, labels, ECE_BINS)
            filled = curve.counts > 0
            top.plot(
                curve.mean_prob[filled],
                curve.frac_damaged[filled],
                ls=style,
                marker="o",
                label=f"{key} calibration",
            )
            centres = (curve.edges[:-1] + curve.edges[1:]) / 2
            counts = np.where(curve.counts > 0, curve.counts, np.nan)
            bottom.step(centres, counts, ls=style, where="mid")
        top.set_title(label_of.get(name, name))
        top.set_ylabel("share damaged")
        top.set_xlim(0, 1)
        top.set_ylim(0, 1)
        top.legend(loc="upper left", fontsize=8)
        bottom.set_yscale("log")
        bottom.set_xlabel("predicted probability")
        bottom.set_ylabel("buildings")
    fig.tight_layout()
    return _save(fig, Path(path))


def write_figures(
    records: Sequence[Mapping[str, Any]],
    out: str | os.PathLike[str],
    protocol: str,
    order: Sequence[str] | None = None,
    labels: Mapping[str, str] | None = None,
) -> list[Path]:
    """Write the four figures of a protocol into *out*.

    Args:
        records: finished runs
        out: output folder
        protocol: protocol name (unused; for symmetry with the tables)
        order: configuration names in column order
        labels: display labels of the configurations

    Returns:
        The PNG files written.

    .. versionadded:: 0.1
    .. versionchanged:: 0.2
       Also ``reliability.png`` (:func:`plot_reliability`).
    """
    if not records:
        return []
    folder = Path(out)
    names = list(order) if order else list(dict.fromkeys(r["config"] for r in records))
    label_of = {r["config"]: r.get("label", r["config"]) for r in records}
    label_of.update(labels or {})
    written = [
        plot_confusion_matrix(records, folder / "confusion_matrix.png"),
        plot_curves(records, folder / "pr_roc_curves.png", names, label_of),
        plot_training_curves(records, folder / "training_curves.png", names, label_of),
        plot_reliability(records, folder / "reliability.png", names, label_of),
    ]
    return [p for p in written if p is not None]
