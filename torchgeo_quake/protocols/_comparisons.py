"""Paired comparisons with the reference configuration (private helpers).

:func:`compare` computes, from the records (and, for leave-one-city-out, the
``predictions.npz``) of finished runs, the difference of every metric between
each configuration and the reference (SAR + FTP, ``sar_ftp``) with its 95 %
interval (:mod:`.statistics`), and the null reference of the test-set sizes.
:func:`write_comparisons` writes them as ``comparisons_<protocol>.md`` and
``.csv``; :func:`~torchgeo_quake.protocols.tables.build_table` bolds the cells
whose interval excludes zero.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from .records import read_predictions, with_current_names
from .statistics import (
    Interval,
    NullReference,
    null_reference,
    paired_bootstrap,
    paired_t_interval,
)

if TYPE_CHECKING:
    from .tables import Cell

#: The configuration every other one is compared with.
REFERENCE = "sar_ftp"

#: Cities with fewer damaged test buildings get a null reference in Table IV.
NULL_MAX_DAMAGED = 100

#: Monte Carlo draws of the null reference.
NULL_DRAWS = 2000

#: Metric keys compared: threshold metrics under both policies, then ranking.
_THRESHOLD = ("precision", "recall", "f1", "kappa")
KEYS = (
    *(f"{k}_oracle" for k in _THRESHOLD),
    *(f"{k}_valthr" for k in _THRESHOLD),
    "auroc",
    "ap",
)


@dataclass
class Comparisons:
    """Each configuration against the reference, per metric (and city)."""

    #: The reference configuration's name.
    reference: str
    #: How the intervals were computed (for captions).
    method: str
    #: Interval by (group, configuration, metric key); the group is the
    #: held-out city (``loco``) or ``""`` (fold protocols).
    intervals: dict[tuple[str, str, str], Interval] = field(default_factory=dict)
    #: Null reference by group (``loco``: small cities; folds: ``""``, a
    #: typical fold).
    null: dict[str, NullReference] = field(default_factory=dict)
    #: Typical test fold: median buildings and damaged buildings (folds).
    fold_size: tuple[int, int] | None = None
    #: Notes on what could not be compared.
    notes: list[str] = field(default_factory=list)
    #: The protocol (names the comparisons file).
    protocol: str = ""
    #: ``city/configuration`` pairs without predictions to bootstrap.
    missing: list[str] = field(default_factory=list)


def _metric(record: Mapping[str, Any], key: str) -> float:
    """A test metric of a run (NaN when missing).

    Args:
        record: the run's record
        key: metric key (e.g. ``f1_valthr``)

    Returns:
        The value.
    """
    value = record["metrics"].get(f"test_{key}")
    return math.nan if value is None else float(value)


def _counts(record: Mapping[str, Any]) -> tuple[int, int] | None:
    """Test buildings and damaged ones of a run, from its record or predictions.

    Args:
        record: the run's record

    Returns:
        ``(n_test, n_test_damaged)``, or None when unknown.
    """
    if record.get("n_test") is not None and record.get("n_test_damaged") is not None:
        return int(record["n_test"]), int(record["n_test_damaged"])
    path = Path(str(record.get("directory", ""))) / "predictions.npz"
    if not record.get("directory") or not path.exists():
        return None
    with np.load(path) as data:
        labels = np.asarray(data["labels"])
    return int(labels.size), int(labels.sum())


def _null(total: int, damaged: int) -> NullReference | None:
    """The null reference of a test set, when it has both classes.

    Args:
        total: buildings
        damaged: damaged buildings

    Returns:
        The null reference, or None.
    """
    if damaged < 1 or total - damaged < 1:
        return None
    return null_reference(damaged, total - damaged, NULL_DRAWS, seed=0)


def _compare_folds(
    records: Sequence[Mapping[str, Any]], reference: str, result: Comparisons
) -> None:
    """Paired *t* intervals over (fold, seed) pairs.

    Args:
        records: the runs
        reference: reference configuration
        result: filled in place
    """
    base = {(r["split"], r["seed"]): r for r in records if r["config"] == reference}
    names = dict.fromkeys(r["config"] for r in records if r["config"] != reference)
    ratios = [
        r["n_test"] / r["n_train"]
        for r in records
        if r.get("n_test") is not None and r.get("n_train")
    ]
    ratio = float(np.mean(ratios)) if len(ratios) == len(records) else None
    if ratio is None:
        result.method = (
            "t-interval over the paired (fold, seed) differences; the records "
            "lack n_test or n_train, so it is not corrected for the training "
            "data the folds share, and too narrow"
        )
    else:
        result.method = (
            "corrected resampled t-interval (Nadeau & Bengio 2003, "
            f"n_test/n_train = {ratio:.3f}) over the paired (fold, seed) "
            "differences; approximate, the folds share training data"
        )
    for name in names:
        pairs = [
            (r, base[r["split"], r["seed"]])
            for r in records
            if r["config"] == name and (r["split"], r["seed"]) in base
        ]
        for key in KEYS:
            diffs = [_metric(a, key) - _metric(b, key) for a, b in pairs]
            result.intervals["", name, key] = paired_t_interval(
                diffs, test_train_ratio=ratio
            )


def _load(
    record: Mapping[str, Any],
) -> tuple[npt.NDArray[Any], npt.NDArray[np.float64], npt.NDArray[np.int64]] | None:
    """Test building ids, probabilities and labels of a run, sorted by id.

    Args:
        record: the run's record

    Returns:
        The arrays, or None when the run has no ``predictions.npz``.
    """
    if not record.get("directory"):
        return None
    try:
        return read_predictions(str(record["directory"]))
    except FileNotFoundError:
        return None


def _compare_city(
    city: str,
    records: Sequence[Mapping[str, Any]],
    reference: str,
    replicates: int,
    seed: int,
    result: Comparisons,
) -> None:
    """Building-level paired bootstrap in one held-out city.

    Args:
        city: the held-out city (split name)
        records: the runs of that city
        reference: reference configuration
        replicates: bootstrap replicates
        seed: seed of the resampling
        result: filled in place
    """
    base = {r["seed"]: r for r in records if r["config"] == reference}
    names = dict.fromkeys(r["config"] for r in records if r["config"] != reference)
    for name in names:
        labels, scores, refs, thr, ref_thr = [], [], [], [], []
        first: npt.NDArray[Any] | None = None
        for run in (r for r in records if r["config"] == name):
            other = base.get(run["seed"])
            a = _load(run)
            b = _load(other) if other is not None else None
            if other is None or a is None or b is None:
                continue
            if not (np.array_equal(a[0], b[0]) and np.array_equal(a[2], b[2])):
                result.notes.append(
                    f"{city}, seed {run['seed']}: {name} and {reference} were "
                    f"tested on different buildings ({run['directory']}, "
                    f"{other['directory']}); left out of the comparison."
                )
                continue
            if first is not None and not np.array_equal(first, a[0]):
                result.notes.append(
                    f"{city}, seed {run['seed']}: other test buildings than the "
                    "first seed; left out of the comparison."
                )
                continue
            first = a[0]
            labels.append(a[2])
            scores.append(a[1])
            refs.append(b[1])
            thr.append(float(run["val_threshold"]))
            ref_thr.append(float(other["val_threshold"]))
        if not labels:
            result.missing.append(f"{city}/{name}")
            continue
        intervals = paired_bootstrap(
            labels, scores, refs, thr, ref_thr, replicates=replicates, seed=seed
        )
        for key in KEYS:
            # paired_bootstrap names the oracle-threshold metrics plainly.
            result.intervals[city, name, key] = intervals[key.removesuffix("_oracle")]


def mark_significant(
    cells: dict[tuple[tuple[str, ...], str], Cell],
    sources: Mapping[tuple[tuple[str, ...], str], tuple[str, str, str]],
    comparisons: Comparisons,
) -> None:
    """Attach the comparison to the reference and bold the significant cells.

    Args:
        cells: the cells
        sources: (group, configuration, metric key) of each computed cell
        comparisons: the paired comparisons
    """
    for key, source in sources.items():
        interval = comparisons.intervals.get(source)
        cells[key].comparison = interval
        cells[key].bold = interval is not None and interval.significant


def compare(
    records: Sequence[Mapping[str, Any]],
    protocol: str,
    reference: str = REFERENCE,
    replicates: int = 1000,
    seed: int = 0,
) -> Comparisons:
    """Every configuration against the reference, under both policies.

    Args:
        records: finished runs
        protocol: the protocol (``loco``: bootstrap; otherwise paired *t*)
        reference: reference configuration name
        replicates: bootstrap replicates (``loco``)
        seed: seed of the bootstrap

    Returns:
        The comparisons; without runs of the reference, none (and a note).
    """
    result = Comparisons(reference, "none", protocol=protocol)
    records = with_current_names(records)
    present = any(r["config"] == reference for r in records)
    if not present:
        result.notes.append(
            f"No runs of the reference configuration {reference!r}: no paired "
            "comparison, nothing bold."
        )
    sizes = {id(r): _counts(r) for r in records}
    if None in sizes.values():
        result.notes.append(
            "Null reference: some runs record no test-set size (n_test, "
            "n_test_damaged) and have no predictions.npz; it is left out where "
            "the size is unknown."
        )
    if protocol != "loco":
        if present:
            _compare_folds(records, reference, result)
        known = [c for c in sizes.values() if c is not None]
        if known:
            total = int(np.median([c[0] for c in known]))
            damaged = int(np.median([c[1] for c in known]))
            result.fold_size = (total, damaged)
            null = _null(total, damaged)
            if null is not None:
                result.null[""] = null
        return result
    result.method = (
        f"building-level paired bootstrap ({replicates} replicates, seed {seed}) "
        "of each held-out city's test buildings; the same resample for both "
        "configurations and every seed, the seeds' differences averaged per "
        "replicate; 95 % percentile interval"
    )
    for city in dict.fromkeys(str(r["split"]) for r in records):
        runs = [r for r in records if r["split"] == city]
        if present:
            _compare_city(city, runs, reference, replicates, seed, result)
        known = [c for c in (sizes[id(r)] for r in runs) if c is not None]
        if known and known[0][1] < NULL_MAX_DAMAGED:
            null = _null(*known[0])
            if null is not None:
                result.null[city] = null
    if result.missing:
        result.notes.append(
            f"No interval, nothing bold (no predictions.npz of both the "
            f"configuration and {reference} for a seed): "
            + ", ".join(result.missing)
            + "."
        )
    return result


def write_comparisons(
    comparisons: Comparisons,
    folder: Path,
    protocol: str,
    label_of: Mapping[str, str],
    metrics: Sequence[tuple[str, str]],
    group_name: Mapping[str, str],
) -> list[Path]:
    """Write ``comparisons_<protocol>.md`` and ``.csv``.

    Args:
        comparisons: from :func:`compare`
        folder: output folder (exists)
        protocol: the protocol
        label_of: display label per configuration, in the tables' order
        metrics: (key, label) of the table metrics
        group_name: display name per group (city slug)

    Returns:
        The Markdown and CSV files.
    """
    reference = label_of.get(comparisons.reference, comparisons.reference)
    rows: list[dict[str, Any]] = []
    shown: list[tuple[str, str, Interval]] = []
    groups = list(dict.fromkeys(g for g, _, _ in comparisons.intervals))
    names = list(label_of)
    ordered = sorted(
        comparisons.intervals.items(),
        key=lambda item: (
            groups.index(item[0][0]),
            names.index(item[0][1]) if item[0][1] in names else len(names),
        ),
    )
    for (group, name, key), interval in ordered:
        base = key.removesuffix("_valthr").removesuffix("_oracle")
        policy = "valthr" if key.endswith("_valthr") else "oracle"
        if base in ("auroc", "ap"):
            policy = "threshold-free"
        shown.append((group_name.get(group, group), label_of.get(name, name), interval))
        rows.append(
            {
                "group": group_name.get(group, group),
                "configuration": label_of.get(name, name),
                "reference": reference,
                "metric": dict(metrics).get(base, base),
                "policy": policy,
                "difference": _round(interval.mean),
                "low": _round(interval.low),
                "high": _round(interval.high),
                "n": interval.n,
                "significant": "yes" if interval.significant else "no",
                "method": interval.method,
            }
        )
    md = folder / f"comparisons_{protocol}.md"
    csv_path = folder / f"comparisons_{protocol}.csv"
    lines = [
        f"*Each configuration minus {reference} on the same splits and seeds: "
        f"mean difference and 95 % interval ({comparisons.method}). "
        "Significant: the interval excludes zero. oracle: at each test split's "
        "own best-F1 threshold (the paper's convention, not deployable); "
        "valthr: at the validation threshold (deployable).*",
        "",
    ]
    head = ["City"] if protocol == "loco" else []
    head += ["Inputs", "Metric", "Policy", "Difference", "95 % interval"]
    lines += ["| " + " | ".join([*head, "Significant"]) + " |"]
    lines.append("|" + "---|" * (len(head) - 2) + "---:|---:|---|")
    for row, (city, label, interval) in zip(rows, shown, strict=True):
        cells = [city] if protocol == "loco" else []
        cells += [
            label,
            row["metric"],
            row["policy"],
            _fmt(interval.mean),
            f"[{_fmt(interval.low)}, {_fmt(interval.high)}]",
            row["significant"],
        ]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    if comparisons.notes:
        lines += ["", *(f"{note}  " for note in comparisons.notes)]
    md.write_text("\n".join(lines).rstrip() + "\n", encoding="utf-8")
    with csv_path.open("w", newline="", encoding="utf-8") as f:
        fields = list(rows[0]) if rows else ["group", "configuration", "metric"]
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    return [md, csv_path]


def _round(value: float) -> float | None:
    """Round for the files (None for NaN).

    Args:
        value: the value

    Returns:
        The value to 6 decimals, or None.
    """
    return None if math.isnan(value) else round(value, 6)


def _fmt(value: float) -> str:
    """Format a difference with its sign (``–`` when undefined).

    Args:
        value: the value

    Returns:
        The text.
    """
    return "–" if math.isnan(value) else f"{value:+.3f}"
