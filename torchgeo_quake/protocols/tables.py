"""Tables III, IV and V from the records of finished protocol runs.

Every table is written in two versions, one per threshold policy, and in three
formats (Markdown, CSV, JSON):

* ``bestf1`` — precision, recall, F1 and kappa (``test_f1_oracle`` etc.) at the
  best-F1 threshold **of the test split itself**, an oracle: the paper's
  convention, optimistic as it is chosen on the data it is scored on;
* ``valthr`` — the same metrics at the threshold chosen (best F1) on the
  **validation** split, stored in the checkpoint: what a deployed model
  achieves.

AUROC and AP (average precision) are threshold-free and the same in both.
Values are the mean ± **sample** standard deviation (``ddof=1``) over folds and
seeds (Tables III and V), or over seeds (Table IV, one run per city and seed;
without repeated seeds only the value is shown).

Every configuration is compared with SAR + FTP (``sar_ftp``) on the same splits
and seeds (:mod:`.statistics`): a cell is **bold** when the 95 % interval of the
paired difference excludes zero, with ▲ (higher) or ▼ (lower); the intervals
are listed in ``comparisons_<protocol>.md``. Beside small test sets stands the
null reference: the best F1 and AUROC that random scores reach on a test set of
that size (median [95th percentile]).

This module builds the tables (:func:`build_table`) and formats them as
Markdown (:func:`format_markdown`); their CSV and JSON files and ``runs.csv``
are written by the private module ``_table_files``, the comparisons by
``_comparisons``.

.. versionadded:: 0.1

.. versionchanged:: 0.3
   Sample standard deviation, AP, bold by significance, null reference; the
   ``*_oracle`` metrics (:func:`.records.with_current_names`).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..paper import CITY_NAMES
from ._comparisons import (
    REFERENCE,
    Comparisons,
    compare,
    mark_significant,
    write_comparisons,
)
from ._table_files import write_runs_csv, write_table_files
from ._table_text import (
    bold_rule,
    null_cities_sentence,
    null_sentence,
    run_notes,
    sun_notes,
    upper_first,
)
from .records import with_current_names
from .statistics import Interval, sample_std

__all__ = [
    "METRICS",
    "POLICIES",
    "SUN_ET_AL",
    "Cell",
    "Table",
    "build_table",
    "format_markdown",
    "write_tables",
]

#: Reported metrics: (key, label).
METRICS: tuple[tuple[str, str], ...] = (
    ("precision", "Precision"),
    ("recall", "Recall"),
    ("f1", "F1 score"),
    ("auroc", "AUROC"),
    ("ap", "AP"),
    ("kappa", "Kappa"),
)

#: Threshold policies: name → (suffix of the logged metric, description).
POLICIES: dict[str, tuple[str, str]] = {
    "bestf1": (
        "_oracle",
        "precision, recall, F1 and kappa at an oracle threshold: the best-F1 "
        "threshold of each test split itself (the paper's convention; "
        "optimistic and not achievable in deployment: chosen on the test data)",
    ),
    "valthr": (
        "_valthr",
        "precision, recall, F1 and kappa at the threshold chosen on the "
        "validation split (deployable; never chosen on the test data)",
    ),
}

#: Sun et al. (2024), QuickQuakeBuildings, Capella SAR, Islahiye, as quoted in
#: the paper's Table V (mean, std); kappa was not reported (nor AP: absent
#: here). Quoted, not re-run.
SUN_ET_AL: dict[str, tuple[float, float] | None] = {
    "precision": (0.237, 0.116),
    "recall": (0.427, 0.104),
    "f1": (0.282, 0.077),
    "auroc": (0.769, 0.032),
    "kappa": None,
}

#: Threshold-free metrics (the same under both policies).
_RANKING = ("auroc", "ap")


SUN_LABEL = "Sun et al. 2024 (quoted, not re-run)"

_TITLES = {
    "cv": (
        "III",
        "{folds}-fold stratified cross-validation over all cities",
    ),
    "loco": (
        "IV",
        "leave-one-city-out: each city tested by a model trained on the others",
    ),
    "islahiye": ("V", "{folds}-fold stratified cross-validation on Islahiye only"),
    # Not in the paper: laid out as Tables III and V.
    "blocked": (
        "III",
        "{folds}-fold spatially blocked cross-validation over all cities; "
        "not in the paper",
    ),
    "blocked-islahiye": (
        "V",
        "{folds}-fold spatially blocked cross-validation on Islahiye only; "
        "not in the paper",
    ),
}


@dataclass
class Cell:
    """One aggregated value of a table.

    .. versionadded:: 0.1
    """

    #: Mean over the runs (NaN when no run defines the metric).
    mean: float
    #: Sample standard deviation (``ddof=1``) over the runs; NaN for a
    #: single run.
    std: float
    #: Runs where the metric is defined.
    n: int
    #: Runs aggregated.
    total: int
    #: Its difference to the reference differs significantly from zero.
    bold: bool = False
    #: Quoted from the literature, not computed.
    quoted: bool = False
    #: Paired difference to the reference configuration, with its interval.
    comparison: Interval | None = None

    def text(self, digits: int = 3, show_std: bool = True) -> str:
        """Format as ``mean ± std`` (``–`` when undefined).

        Args:
            digits: decimals
            show_std: include the standard deviation

        Returns:
            The formatted cell, bold with ▲ (higher) or ▼ (lower) when its
            difference to the reference is significant, ``†`` when some runs
            lacked it.
        """
        if math.isnan(self.mean):
            return "–"
        text = f"{self.mean:.{digits}f}"
        if show_std and not math.isnan(self.std):
            text += f" ± {self.std:.{digits}f}"
        if self.bold:
            higher = self.comparison is not None and self.comparison.mean > 0
            text = f"**{text}** {'▲' if higher else '▼'}"
        if 0 < self.n < self.total:
            text += " †"
        return text


@dataclass
class Table:
    """An aggregated table: rows × columns of :class:`Cell`.

    .. versionadded:: 0.1
    """

    #: ``"cv"``, ``"loco"`` or ``"islahiye"``.
    protocol: str
    #: ``"bestf1"`` or ``"valthr"``.
    policy: str
    #: Paper table number (``"III"``, ``"IV"``, ``"V"``).
    number: str
    #: Caption.
    caption: str
    #: Header of the first column(s).
    index_names: list[str]
    #: Row keys (tuples matching *index_names*).
    rows: list[tuple[str, ...]]
    #: Column labels.
    columns: list[str]
    #: Cells by (row, column).
    cells: dict[tuple[tuple[str, ...], str], Cell]
    #: Show ``± std``.
    show_std: bool = True
    #: Footnotes.
    notes: list[str] = field(default_factory=list)
    #: Header of an extra text column after the cells (Table IV: the null
    #: reference), or None.
    extra_column: str | None = None
    #: Text of the extra column by row.
    extras: dict[tuple[str, ...], str] = field(default_factory=dict)

    @property
    def stem(self) -> str:
        """File stem, e.g. ``table_III_cv_bestf1``."""
        return f"table_{self.number}_{self.protocol}_{self.policy}"


def _cell(values: Sequence[float]) -> Cell:
    """Aggregate run values into a cell.

    Args:
        values: one value per run (NaN where undefined)

    Returns:
        The cell.
    """
    array = np.asarray(values, dtype=np.float64)
    defined = array[np.isfinite(array)]
    if defined.size == 0:
        return Cell(math.nan, math.nan, 0, array.size)
    return Cell(
        float(defined.mean()), sample_std(defined), int(defined.size), array.size
    )


def _value(record: Mapping[str, Any], metric: str, policy: str) -> float:
    """A metric of a run under a threshold policy.

    Args:
        record: the run's ``metrics.json``
        metric: metric key
        policy: ``"bestf1"`` or ``"valthr"``

    Returns:
        The value (NaN when missing or undefined).
    """
    suffix = "" if metric in _RANKING else POLICIES[policy][0]
    value = record["metrics"].get(f"test_{metric}{suffix}")
    return math.nan if value is None else float(value)


@dataclass
class _Body:
    """The rows, cells and caption of a table, before the common notes."""

    index_names: list[str]
    rows: list[tuple[str, ...]]
    columns: list[str]
    cells: dict[tuple[tuple[str, ...], str], Cell]
    #: (group, configuration, metric key) of each computed cell.
    sources: dict[tuple[tuple[str, ...], str], tuple[str, str, str]]
    show_std: bool
    caption: str
    notes: list[str] = field(default_factory=list)
    #: Text of an extra last column by row (Table IV: the null reference).
    extras: dict[tuple[str, ...], str] = field(default_factory=dict)


def _title(protocol: str, records: Sequence[Mapping[str, Any]]) -> tuple[str, str]:
    """The table's number and title.

    Args:
        protocol: the protocol
        records: the runs

    Returns:
        The paper's table number and the title, with the number of folds.
    """
    number, title = _TITLES[protocol]
    splits = {str(r["split"]) for r in records}
    return number, title.format(folds=len(splits))


def _key(metric: str, policy: str) -> str:
    """The comparison key of a metric under a policy (``f1_valthr``).

    Args:
        metric: metric key
        policy: threshold policy

    Returns:
        The key.
    """
    return metric if metric in _RANKING else metric + POLICIES[policy][0]


def _loco_body(
    records: Sequence[Mapping[str, Any]],
    protocol: str,
    policy: str,
    names: Sequence[str],
    label_of: Mapping[str, str],
    comparisons: Comparisons,
) -> _Body:
    """Table IV: one row per held-out city and configuration.

    Args:
        records: the runs
        protocol: ``"loco"``
        policy: the threshold policy
        names: configurations, in order
        label_of: display label per configuration
        comparisons: the paired comparisons (and the null references)

    Returns:
        The table's body.
    """
    seeds = sorted({int(r["seed"]) for r in records})
    cities = list(dict.fromkeys(str(r["split"]) for r in records))
    cells: dict[tuple[tuple[str, ...], str], Cell] = {}
    sources: dict[tuple[tuple[str, ...], str], tuple[str, str, str]] = {}
    extras: dict[tuple[str, ...], str] = {}
    rows: list[tuple[str, ...]] = []
    for city in cities:
        first = True
        for name in names:
            runs = [r for r in records if r["config"] == name and r["split"] == city]
            if not runs:
                continue
            row: tuple[str, ...] = (CITY_NAMES.get(city, city), label_of[name])
            rows.append(row)
            if first and city in comparisons.null:
                extras[row] = comparisons.null[city].text()
            first = False
            for key, label in METRICS:
                cells[row, label] = _cell([_value(r, key, policy) for r in runs])
                sources[row, label] = (city, name, _key(key, policy))
    show_std = len(seeds) > 1
    spread = (
        f"mean ± sample SD (ddof=1) over {len(seeds)} seeds (n = {len(seeds)} per cell)"
        if show_std
        else f"seed {seeds[0]} (n = 1 per cell)"
    )
    number, title = _title(protocol, records)
    caption = (
        f"Table {number} ({title}). {upper_first(POLICIES[policy][1])}; AUROC "
        f"and AP over all thresholds. One run per city and input configuration, "
        f"{spread}. {bold_rule(comparisons, label_of)}"
    )
    if extras:
        caption += null_cities_sentence()
    columns = [label for _, label in METRICS]
    body = _Body(["City", "Inputs"], rows, columns, cells, sources, show_std, caption)
    body.extras = extras
    return body


def _folds_body(
    records: Sequence[Mapping[str, Any]],
    protocol: str,
    policy: str,
    names: Sequence[str],
    label_of: Mapping[str, str],
    comparisons: Comparisons,
) -> _Body:
    """Tables III and V: one row per metric, one column per configuration.

    Args:
        records: the runs
        protocol: a fold protocol (``"cv"``, ``"islahiye"``, ``"blocked"``,
            ``"blocked-islahiye"``)
        policy: the threshold policy
        names: configurations, in order
        label_of: display label per configuration
        comparisons: the paired comparisons (and the null reference)

    Returns:
        The table's body; Table V's best-F1 version has Sun et al.'s column.
    """
    seeds = sorted({int(r["seed"]) for r in records})
    splits = sorted({str(r["split"]) for r in records})
    cells: dict[tuple[tuple[str, ...], str], Cell] = {}
    sources: dict[tuple[tuple[str, ...], str], tuple[str, str, str]] = {}
    rows: list[tuple[str, ...]] = []
    for key, label in METRICS:
        row = (label,)
        rows.append(row)
        for name in names:
            runs = [r for r in records if r["config"] == name]
            cells[row, label_of[name]] = _cell([_value(r, key, policy) for r in runs])
            sources[row, label_of[name]] = ("", name, _key(key, policy))
    number, title = _title(protocol, records)
    caption = (
        f"Table {number} ({title}). {upper_first(POLICIES[policy][1])}; AUROC "
        f"and AP over all thresholds. Mean ± sample SD (ddof=1) over "
        f"{len(splits)} folds × {len(seeds)} seed(s) (n = "
        f"{len(splits) * len(seeds)} runs per cell). "
        f"{bold_rule(comparisons, label_of)}{null_sentence(comparisons)}"
    )
    columns = [label_of[n] for n in names]
    body = _Body(["Metric"], rows, columns, cells, sources, True, caption)
    if protocol == "islahiye":
        body.notes.append(sun_notes(policy, SUN_LABEL))
    if protocol == "islahiye" and policy == "bestf1":
        body.columns = [SUN_LABEL, *columns]
        for key, label in METRICS:
            quoted = SUN_ET_AL.get(key) or (math.nan, math.nan)
            n = 0 if math.isnan(quoted[0]) else 1
            cells[(label,), SUN_LABEL] = Cell(*quoted, n, 1, quoted=True)
    return body


def build_table(
    records: Sequence[Mapping[str, Any]],
    protocol: str,
    policy: str,
    order: Sequence[str] | None = None,
    labels: Mapping[str, str] | None = None,
    digits: int = 3,
    comparisons: Comparisons | None = None,
    reference: str = REFERENCE,
) -> Table:
    """Aggregate run records into the protocol's table.

    Args:
        records: ``metrics.json`` of the runs (see
            :func:`~torchgeo_quake.protocols.load_runs`)
        protocol: ``"cv"`` (Table III), ``"loco"`` (Table IV), ``"islahiye"``
            (Table V), ``"blocked"`` or ``"blocked-islahiye"`` (laid out as
            Tables III and V)
        policy: ``"bestf1"`` or ``"valthr"``
        order: configuration names in column order (default: as found)
        labels: display label per configuration name (default: the records')
        digits: unused (the bold mark is the significance of the paired
            difference since 0.3); kept for compatibility
        comparisons: the paired comparisons of the runs with the reference
            (default: computed; :func:`write_tables` computes them once for
            both policies)
        reference: the configuration every other one is compared with

    Returns:
        The table.

    Raises:
        ValueError: If the protocol or policy is unknown, or there are no records.

    .. versionadded:: 0.1

    .. versionchanged:: 0.3
       Bold by the paired comparison with *reference*; sample SD; AP; the
       null reference.
    """
    if protocol not in _TITLES:
        raise ValueError(f"unknown protocol {protocol!r}")
    if policy not in POLICIES:
        raise ValueError(f"policy must be one of {sorted(POLICIES)}, got {policy!r}")
    if not records:
        raise ValueError("no finished runs to tabulate")
    records = with_current_names(records)
    names = list(order) if order else []
    for record in records:
        if record["config"] not in names:
            names.append(record["config"])
    names = [n for n in names if any(r["config"] == n for r in records)]
    label_of = {r["config"]: r.get("label", r["config"]) for r in records}
    label_of.update(labels or {})
    if comparisons is None:
        comparisons = compare(records, protocol, reference)
    body = (_loco_body if protocol == "loco" else _folds_body)(
        records, protocol, policy, names, label_of, comparisons
    )
    mark_significant(body.cells, body.sources, comparisons)
    notes = body.notes + comparisons.notes + run_notes(records, body.cells)
    return Table(
        protocol=protocol,
        policy=policy,
        number=_TITLES[protocol][0],
        caption=body.caption,
        index_names=body.index_names,
        rows=body.rows,
        columns=body.columns,
        cells=body.cells,
        show_std=body.show_std,
        notes=notes,
        extra_column="Null reference" if body.extras else None,
        extras=body.extras,
    )


def format_markdown(table: Table, digits: int = 3) -> str:
    """Format a table as Markdown (caption, table, notes).

    Args:
        table: the table
        digits: decimals

    Returns:
        Markdown text.

    .. versionadded:: 0.1
    """
    lines = [f"*{table.caption}*", ""]
    extra = [table.extra_column] if table.extra_column else []
    head = [*table.index_names, *table.columns, *extra]
    lines.append("| " + " | ".join(head) + " |")
    lines.append(
        "|"
        + "---|" * len(table.index_names)
        + "---:|" * len(table.columns)
        + "---|" * len(extra)
    )
    previous: tuple[str, ...] | None = None
    for row in table.rows:
        shown = list(row)
        if previous is not None and len(row) > 1 and row[0] == previous[0]:
            shown[0] = ""
        previous = row
        values = [
            table.cells[row, c].text(digits, table.show_std)
            if (row, c) in table.cells
            else ""
            for c in table.columns
        ]
        if extra:
            values.append(table.extras.get(row, ""))
        lines.append("| " + " | ".join([*shown, *values]) + " |")
    if table.notes:
        lines.append("")
        lines += [f"{note}  " for note in table.notes[:-1]]
        lines.append(table.notes[-1])
    return "\n".join(lines) + "\n"


def write_tables(
    records: Sequence[Mapping[str, Any]],
    out: str | os.PathLike[str],
    protocol: str,
    order: Sequence[str] | None = None,
    labels: Mapping[str, str] | None = None,
    reference: str = REFERENCE,
    replicates: int = 1000,
) -> list[Path]:
    """Write the protocol's table under both threshold policies, in 3 formats.

    Also writes ``runs.csv``: one row per run with every test metric, so any
    table can be re-derived, and ``comparisons_<protocol>.md`` and ``.csv``:
    each configuration against *reference*, per metric, with the mean
    difference, its 95 % interval and whether it excludes zero.

    Args:
        records: finished runs
        out: output folder
        protocol: protocol name
        order: configuration names in column order
        labels: display labels of the configurations
        reference: the configuration every other one is compared with
        replicates: bootstrap replicates of the leave-one-city-out comparisons

    Returns:
        The files written (empty when there is no finished run).

    .. versionadded:: 0.1

    .. versionchanged:: 0.3
       Writes the comparisons with *reference*.
    """
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    if not records:
        return []
    written: list[Path] = []
    comparisons = compare(records, protocol, reference, replicates)
    for policy in POLICIES:
        table = build_table(
            records, protocol, policy, order, labels, comparisons=comparisons
        )
        markdown = format_markdown(table)
        written += write_table_files(table, folder, markdown, POLICIES[policy][1])
    found = {r["config"]: r.get("label", r["config"]) for r in records}
    label_of = {n: found[n] for n in order or () if n in found} | found
    label_of.update(labels or {})
    written += write_comparisons(
        comparisons, folder, protocol, label_of, METRICS, CITY_NAMES
    )
    written.append(write_runs_csv(records, folder))
    return written
