"""Tables III, IV and V from the records of finished protocol runs.

Every table is written in two versions, one per threshold policy, and in three
formats (Markdown, CSV, JSON):

* ``bestf1`` — precision, recall, F1 and kappa at the threshold maximising F1 on
  the precision–recall curve **of the test split itself**: the paper's
  convention, optimistic because the threshold is chosen on the data it is
  scored on;
* ``valthr`` — the same metrics at the threshold chosen (best F1) on the
  **validation** split, stored in the checkpoint: what a deployed model
  achieves.

AUROC is threshold-free and the same in both. Values are the mean ± standard
deviation (population, ``ddof=0``) over folds and seeds (Tables III and V), or
over seeds (Table IV, one run per city and seed; without repeated seeds only the
value is shown). The best configuration per metric (per city in Table IV) is in
bold; ties at the shown precision are all bold.

This module builds the tables (:func:`build_table`) and formats them as
Markdown (:func:`format_markdown`); their CSV and JSON files and ``runs.csv``
are written by the private module ``_table_files``.

.. versionadded:: 0.1
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
from ._table_files import write_runs_csv, write_table_files

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
    ("kappa", "Kappa"),
)

#: Threshold policies: name → (suffix of the logged metric, description).
POLICIES: dict[str, tuple[str, str]] = {
    "bestf1": (
        "",
        "precision, recall, F1 and kappa at the best-F1 threshold of each test "
        "split (the paper's convention; optimistic: chosen on the test data)",
    ),
    "valthr": (
        "_valthr",
        "precision, recall, F1 and kappa at the threshold chosen on the "
        "validation split (deployable; never chosen on the test data)",
    ),
}

#: Sun et al. (2024), QuickQuakeBuildings, Capella SAR, Islahiye, as quoted in
#: the paper's Table V (mean, std); kappa was not reported. Quoted, not re-run.
SUN_ET_AL: dict[str, tuple[float, float] | None] = {
    "precision": (0.237, 0.116),
    "recall": (0.427, 0.104),
    "f1": (0.282, 0.077),
    "auroc": (0.769, 0.032),
    "kappa": None,
}

#: Display names of the city slugs.
_CITY_NAMES = CITY_NAMES

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
}


def _upper_first(text: str) -> str:
    """Capitalise the first letter only.

    Args:
        text: a sentence

    Returns:
        The sentence with an upper-case first letter.
    """
    return text[:1].upper() + text[1:]


@dataclass
class Cell:
    """One aggregated value of a table.

    .. versionadded:: 0.1
    """

    #: Mean over the runs (NaN when no run defines the metric).
    mean: float
    #: Standard deviation (``ddof=0``) over the runs; NaN for a single run.
    std: float
    #: Runs where the metric is defined.
    n: int
    #: Runs aggregated.
    total: int
    #: Best of its comparison group.
    bold: bool = False
    #: Quoted from the literature, not computed.
    quoted: bool = False

    def text(self, digits: int = 3, show_std: bool = True) -> str:
        """Format as ``mean ± std`` (``–`` when undefined).

        Args:
            digits: decimals
            show_std: include the standard deviation

        Returns:
            The formatted cell, bold when best, ``†`` when some runs lacked it.
        """
        if math.isnan(self.mean):
            return "–"
        text = f"{self.mean:.{digits}f}"
        if show_std and not math.isnan(self.std):
            text += f" ± {self.std:.{digits}f}"
        if self.bold:
            text = f"**{text}**"
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
    std = float(defined.std()) if defined.size > 1 else math.nan
    return Cell(float(defined.mean()), std, int(defined.size), int(array.size))


def _value(record: Mapping[str, Any], metric: str, policy: str) -> float:
    """A metric of a run under a threshold policy.

    Args:
        record: the run's ``metrics.json``
        metric: metric key
        policy: ``"bestf1"`` or ``"valthr"``

    Returns:
        The value (NaN when missing or undefined).
    """
    suffix = "" if metric == "auroc" else POLICIES[policy][0]
    value = record["metrics"].get(f"test_{metric}{suffix}")
    return math.nan if value is None else float(value)


def _mark_best(
    cells: dict[tuple[tuple[str, ...], str], Cell],
    groups: list[list[tuple[tuple[str, ...], str]]],
    digits: int,
) -> None:
    """Set ``bold`` on the best (highest shown mean) cell(s) of each group.

    Args:
        cells: the cells
        groups: keys compared with each other
        digits: shown decimals (ties at this precision are all bold)
    """
    for keys in groups:
        shown = {
            k: round(cells[k].mean, digits)
            for k in keys
            if not cells[k].quoted and not math.isnan(cells[k].mean)
        }
        if not shown:
            continue
        best = max(shown.values())
        for key, value in shown.items():
            cells[key].bold = value == best


@dataclass
class _Body:
    """The rows, cells and caption of a table, before the common notes."""

    index_names: list[str]
    rows: list[tuple[str, ...]]
    columns: list[str]
    cells: dict[tuple[tuple[str, ...], str], Cell]
    #: Groups of cells compared for the bold mark.
    groups: list[list[tuple[tuple[str, ...], str]]]
    show_std: bool
    caption: str
    notes: list[str] = field(default_factory=list)


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


def _loco_body(
    records: Sequence[Mapping[str, Any]],
    protocol: str,
    policy: str,
    names: Sequence[str],
    label_of: Mapping[str, str],
) -> _Body:
    """Table IV: one row per held-out city and configuration.

    Args:
        records: the runs
        protocol: ``"loco"``
        policy: the threshold policy
        names: configurations, in order
        label_of: display label per configuration

    Returns:
        The table's body.
    """
    seeds = sorted({int(r["seed"]) for r in records})
    cities = list(dict.fromkeys(str(r["split"]) for r in records))
    cells: dict[tuple[tuple[str, ...], str], Cell] = {}
    groups: list[list[tuple[tuple[str, ...], str]]] = []
    rows: list[tuple[str, ...]] = []
    for city in cities:
        for name in names:
            runs = [r for r in records if r["config"] == name and r["split"] == city]
            if not runs:
                continue
            row: tuple[str, ...] = (_CITY_NAMES.get(city, city), label_of[name])
            rows.append(row)
            for key, label in METRICS:
                cells[row, label] = _cell([_value(r, key, policy) for r in runs])
        for _, label in METRICS:
            groups.append(
                [(r, label) for r in rows if r[0] == _CITY_NAMES.get(city, city)]
            )
    show_std = len(seeds) > 1
    spread = f"mean ± std over {len(seeds)} seeds" if show_std else f"seed {seeds[0]}"
    number, title = _title(protocol, records)
    caption = (
        f"Table {number} ({title}). {_upper_first(POLICIES[policy][1])}; AUROC "
        f"over all thresholds. One run per city and input configuration, "
        f"{spread}. Best per city and metric in bold."
    )
    columns = [label for _, label in METRICS]
    return _Body(["City", "Inputs"], rows, columns, cells, groups, show_std, caption)


def _folds_body(
    records: Sequence[Mapping[str, Any]],
    protocol: str,
    policy: str,
    names: Sequence[str],
    label_of: Mapping[str, str],
) -> _Body:
    """Tables III and V: one row per metric, one column per configuration.

    Args:
        records: the runs
        protocol: ``"cv"`` or ``"islahiye"``
        policy: the threshold policy
        names: configurations, in order
        label_of: display label per configuration

    Returns:
        The table's body; Table V's best-F1 version has Sun et al.'s column.
    """
    seeds = sorted({int(r["seed"]) for r in records})
    splits = sorted({str(r["split"]) for r in records})
    cells: dict[tuple[tuple[str, ...], str], Cell] = {}
    groups: list[list[tuple[tuple[str, ...], str]]] = []
    rows: list[tuple[str, ...]] = []
    for key, label in METRICS:
        row = (label,)
        rows.append(row)
        for name in names:
            runs = [r for r in records if r["config"] == name]
            cells[row, label_of[name]] = _cell([_value(r, key, policy) for r in runs])
        groups.append([(row, label_of[n]) for n in names])
    number, title = _title(protocol, records)
    caption = (
        f"Table {number} ({title}). {_upper_first(POLICIES[policy][1])}; AUROC "
        f"over all thresholds. Mean ± std over {len(splits)} folds × "
        f"{len(seeds)} seed(s). Best per metric in bold."
    )
    columns = [label_of[n] for n in names]
    body = _Body(["Metric"], rows, columns, cells, groups, True, caption)
    if protocol == "islahiye" and policy == "bestf1":
        body.columns = [SUN_LABEL, *columns]
        for key, label in METRICS:
            quoted = SUN_ET_AL[key]
            cells[(label,), SUN_LABEL] = (
                Cell(quoted[0], quoted[1], 1, 1, quoted=True)
                if quoted
                else Cell(math.nan, math.nan, 0, 1, quoted=True)
            )
        body.notes.append(
            f"{SUN_LABEL}: figures of Sun et al. (2024), QuickQuakeBuildings, "
            "real Capella SAR of Islahiye, at their best-F1 threshold, as "
            "quoted in the paper's Table V. They were not re-run here and are "
            "not comparable with the simulated columns; they take no part in "
            "the bold marking."
        )
    elif protocol == "islahiye":
        body.notes.append(
            "Sun et al. (2024) report no metrics at a validation-chosen "
            "threshold; see the best-F1 version of this table for their figures."
        )
    return body


def _run_notes(
    records: Sequence[Mapping[str, Any]],
    cells: Mapping[tuple[tuple[str, ...], str], Cell],
) -> list[str]:
    """Notes on runs cut by the time limit and on undefined metrics.

    Args:
        records: the runs
        cells: the table's cells

    Returns:
        The notes, possibly none.
    """
    notes = []
    cut = [r for r in records if r.get("stopped_by_max_time")]
    if cut:
        notes.append(
            f"{len(cut)} of {len(records)} runs were stopped by the time limit "
            "(--max-time) before their last epoch: "
            + ", ".join(f"{r['config']}/{r['split']} ({r['epochs']})" for r in cut)
            + "."
        )
    computed = [c for c in cells.values() if not c.quoted]
    if any(0 < c.n < c.total for c in computed):
        notes.append(
            "†: undefined in some runs (e.g. precision when nothing is predicted "
            "damaged); mean over the runs where it is defined."
        )
    if any(c.n == 0 for c in computed):
        notes.append(
            "–: undefined in every run (e.g. precision when nothing is predicted "
            "damaged)."
        )
    return notes


def build_table(
    records: Sequence[Mapping[str, Any]],
    protocol: str,
    policy: str,
    order: Sequence[str] | None = None,
    labels: Mapping[str, str] | None = None,
    digits: int = 3,
) -> Table:
    """Aggregate run records into the protocol's table.

    Args:
        records: ``metrics.json`` of the runs (see
            :func:`~torchgeo_quake.protocols.load_runs`)
        protocol: ``"cv"`` (Table III), ``"loco"`` (Table IV) or
            ``"islahiye"`` (Table V)
        policy: ``"bestf1"`` or ``"valthr"``
        order: configuration names in column order (default: as found)
        labels: display label per configuration name (default: the records')
        digits: decimals shown (and compared for bold)

    Returns:
        The table.

    Raises:
        ValueError: If the protocol or policy is unknown, or there are no records.

    .. versionadded:: 0.1
    """
    if protocol not in _TITLES:
        raise ValueError(f"unknown protocol {protocol!r}")
    if policy not in POLICIES:
        raise ValueError(f"policy must be one of {sorted(POLICIES)}, got {policy!r}")
    if not records:
        raise ValueError("no finished runs to tabulate")
    names = list(order) if order else []
    for record in records:
        if record["config"] not in names:
            names.append(record["config"])
    names = [n for n in names if any(r["config"] == n for r in records)]
    label_of = {r["config"]: r.get("label", r["config"]) for r in records}
    label_of.update(labels or {})
    body = (_loco_body if protocol == "loco" else _folds_body)(
        records, protocol, policy, names, label_of
    )
    _mark_best(body.cells, body.groups, digits)
    notes = body.notes + _run_notes(records, body.cells)
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
    head = [*table.index_names, *table.columns]
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|" + "---|" * len(table.index_names) + "---:|" * len(table.columns))
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
) -> list[Path]:
    """Write the protocol's table under both threshold policies, in 3 formats.

    Also writes ``runs.csv``: one row per run with every test metric, so any
    table can be re-derived.

    Args:
        records: finished runs
        out: output folder
        protocol: protocol name
        order: configuration names in column order
        labels: display labels of the configurations

    Returns:
        The files written (empty when there is no finished run).

    .. versionadded:: 0.1
    """
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    if not records:
        return []
    written: list[Path] = []
    for policy in POLICIES:
        table = build_table(records, protocol, policy, order, labels)
        markdown = format_markdown(table)
        written += write_table_files(table, folder, markdown, POLICIES[policy][1])
    written.append(write_runs_csv(records, folder))
    return written
