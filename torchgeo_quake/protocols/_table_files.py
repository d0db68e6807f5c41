"""The files of a protocol's tables: CSV, JSON and ``runs.csv`` (private helpers).

:func:`~torchgeo_quake.protocols.tables.write_tables` writes every table in
three formats: the Markdown of
:func:`~torchgeo_quake.protocols.tables.format_markdown`, and the long format
(one row per cell, :func:`rows_long`) as CSV and as JSON with the caption and
notes (:func:`write_table_files`). ``runs.csv`` holds one row per run with
every test metric, so any table can be re-derived (:func:`write_runs_csv`).
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .records import with_current_names

if TYPE_CHECKING:
    from .tables import Table


def _round(value: float) -> float | None:
    """Round for the files (None for NaN).

    Args:
        value: the value

    Returns:
        The value to 6 decimals, or None.
    """
    return None if math.isnan(value) else round(value, 6)


def rows_long(table: Table) -> list[dict[str, Any]]:
    """One row per cell: the long format of the CSV and JSON files.

    Args:
        table: the table

    Returns:
        Dicts with the index, column, mean, std (sample, ``ddof=1``), n,
        total, bold, quoted, and the paired difference to the reference
        configuration: ``difference``, ``low``, ``high`` (its 95 % interval)
        and ``significant`` (the interval excludes zero; None without one).
    """
    out = []
    for row in table.rows:
        for column in table.columns:
            cell = table.cells.get((row, column))
            if cell is None:
                continue
            entry: dict[str, Any] = dict(zip(table.index_names, row, strict=True))
            comparison = cell.comparison
            entry.update(
                column=column,
                mean=_round(cell.mean),
                std=_round(cell.std),
                n=cell.n,
                total=cell.total,
                bold=cell.bold,
                quoted=cell.quoted,
                difference=_round(comparison.mean) if comparison else None,
                low=_round(comparison.low) if comparison else None,
                high=_round(comparison.high) if comparison else None,
                significant=comparison.significant if comparison else None,
            )
            out.append(entry)
    return out


def write_table_files(
    table: Table, folder: Path, markdown: str, description: str
) -> list[Path]:
    """Write a table as Markdown, CSV and JSON.

    Args:
        table: the table
        folder: output folder (exists)
        markdown: the table as Markdown
        description: what its threshold policy means

    Returns:
        The Markdown, CSV and JSON files.
    """
    md = folder / f"{table.stem}.md"
    md.write_text(markdown, encoding="utf-8")
    long = rows_long(table)
    csv_path = folder / f"{table.stem}.csv"
    with csv_path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(long[0]))
        writer.writeheader()
        writer.writerows(long)
    json_path = folder / f"{table.stem}.json"
    json_path.write_text(
        json.dumps(
            {
                "table": table.number,
                "protocol": table.protocol,
                "threshold_policy": table.policy,
                "threshold_description": description,
                "caption": table.caption,
                "index": table.index_names,
                "columns": table.columns,
                "cells": long,
                "notes": table.notes,
                "std": "sample standard deviation (ddof=1) over runs",
                "bold": "the 95 % interval of the paired difference to the "
                "reference configuration excludes zero",
                "extra_column": table.extra_column,
                "extras": [
                    {"row": list(row), "text": text}
                    for row, text in table.extras.items()
                ],
            },
            indent=1,
        ),
        encoding="utf-8",
    )
    return [md, csv_path, json_path]


def write_runs_csv(records: Sequence[Mapping[str, Any]], folder: Path) -> Path:
    """Write ``runs.csv``: one row per run with every test metric.

    The metrics are written under their current names (records of earlier
    versions are upgraded: ``test_f1`` becomes ``test_f1_oracle``).

    Args:
        records: finished runs
        folder: output folder (exists)

    Returns:
        The file.
    """
    records = with_current_names(records)
    keys = sorted({k for r in records for k in r["metrics"]})
    runs_csv = folder / "runs.csv"
    with runs_csv.open("w", newline="", encoding="utf-8") as f:
        fields = ["config", "label", "split", "seed", "val_threshold", "best_epoch"]
        writer = csv.DictWriter(f, fieldnames=[*fields, *keys, "wall_s"])
        writer.writeheader()
        for record in records:
            writer.writerow(
                {
                    **{k: record.get(k) for k in fields},
                    **{k: record["metrics"].get(k) for k in keys},
                    "wall_s": record.get("wall_s"),
                }
            )
    return runs_csv
