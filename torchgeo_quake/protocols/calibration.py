"""Calibration of a protocol's runs: before and after Platt scaling.

Every run's test predictions (``predictions.npz``: logits, calibrated
probabilities, labels, cities) are scored twice, per test city:

* **before** calibration: ``sigmoid(logit)`` (scale 1, bias 0, the same
  logits);
* **after**: the probabilities of the tested checkpoint, calibrated with the
  Platt scaling fitted on its validation epoch
  (:mod:`~torchgeo_quake.trainers.calibration`).

The values are the Brier score, the expected calibration error (10
equal-width bins, :data:`~torchgeo_quake.trainers.metrics.ECE_BINS`) and the
count ratios: expected damaged (sum of the probabilities) over observed, and
thresholded (probability at or above the validation threshold) over observed.
A count ratio of 1 is a correct count; the thresholded ratio does not depend on
the calibration (a monotone calibration moves the threshold with the
probabilities).

:func:`calibration_rows` gives one row per run and city;
:func:`write_calibration` writes them (``calibration_<protocol>_runs.csv``) and
the table of their means over seeds (``calibration_<protocol>.md`` and
``.csv``).

.. versionadded:: 0.2
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from ..paper import CITY_NAMES
from ..trainers.calibration import apply_platt
from ..trainers.metrics import ECE_BINS, calibration_metrics

__all__ = [
    "CALIBRATION_COLUMNS",
    "calibration_rows",
    "calibration_table",
    "run_probabilities",
    "write_calibration",
]

#: Columns of the calibration table: (key of :func:`calibration_rows`, label).
CALIBRATION_COLUMNS: tuple[tuple[str, str], ...] = (
    ("brier_before", "Brier before"),
    ("brier_after", "Brier after"),
    ("ece_before", "ECE before"),
    ("ece_after", "ECE after"),
    ("expected_ratio_before", "Expected/observed before"),
    ("expected_ratio_after", "Expected/observed after"),
    ("thresholded_ratio", "Thresholded/observed"),
)


def run_probabilities(
    record: Mapping[str, Any],
) -> tuple[
    npt.NDArray[np.float64],
    npt.NDArray[np.float64] | None,
    npt.NDArray[np.int64],
    npt.NDArray[np.str_],
]:
    """Test probabilities of a run before and after calibration.

    Args:
        record: the run's record (``metrics.json`` with ``directory``)

    Returns:
        The uncalibrated probabilities (``sigmoid(logit)``), the calibrated
        ones (None for runs of checkpoints without a calibration: their
        ``probs`` are uncalibrated, and are returned as the first array),
        the labels and the city of each prediction.
    """
    with np.load(Path(record["directory"]) / "predictions.npz") as data:
        probs = np.asarray(data["probs"], dtype=np.float64)
        labels = np.asarray(data["labels"], dtype=np.int64)
        cities = np.asarray(data["cities"]).astype(str)
        logits = data["logits"] if "logits" in data.files else None
    calibrated = bool(record.get("calibration", {}).get("calibrated", False))
    if len(cities) != len(labels):
        split = str(record.get("test_city") or record.get("split", ""))
        cities = np.full(len(labels), split)
    if logits is None or len(logits) != len(probs):
        return probs, None, labels, cities
    before = apply_platt(np.asarray(logits, dtype=np.float64), 1.0, 0.0)
    return before, probs if calibrated else None, labels, cities


def _ratio(count: float, observed: float) -> float:
    """A count over the observed count (NaN without damaged buildings).

    Args:
        count: predicted count
        observed: observed count

    Returns:
        The ratio.
    """
    return count / observed if observed > 0 else math.nan


def calibration_rows(records: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """Calibration before and after Platt scaling, per run and test city.

    Args:
        records: finished runs (see :func:`~torchgeo_quake.protocols.load_runs`)

    Returns:
        One row per run and city of its test predictions: ``config``,
        ``label``, ``split``, ``seed``, ``city``, ``calibrated``,
        ``buildings``, ``observed``, ``expected_before``, ``expected_after``,
        ``thresholded`` and the keys of :data:`CALIBRATION_COLUMNS` (NaN
        "after" values for runs without a calibration).

    .. versionadded:: 0.2
    """
    rows: list[dict[str, Any]] = []
    for record in records:
        before, after, labels, cities = run_probabilities(record)
        threshold = float(record.get("val_threshold", 0.5))
        for city in dict.fromkeys(cities.tolist()):
            mask = cities == city
            if not mask.any():
                continue
            # The decisions of the tested model: its calibrated probabilities
            # (or the uncalibrated ones it predicted) at its threshold.
            used = before[mask] if after is None else after[mask]
            raw = calibration_metrics(before[mask], labels[mask], 0.5, ECE_BINS)
            shown = calibration_metrics(used, labels[mask], threshold, ECE_BINS)
            observed = shown["count_observed"]
            row: dict[str, Any] = {
                "config": record["config"],
                "label": record.get("label", record["config"]),
                "split": record["split"],
                "seed": record["seed"],
                "city": city,
                "calibrated": after is not None,
                "buildings": int(mask.sum()),
                "observed": observed,
                "expected_before": raw["count_expected"],
                "expected_after": shown["count_expected"]
                if after is not None
                else math.nan,
                "thresholded": shown["count_thresholded"],
                "brier_before": raw["brier"],
                "brier_after": shown["brier"] if after is not None else math.nan,
                "ece_before": raw["ece"],
                "ece_after": shown["ece"] if after is not None else math.nan,
            }
            row["expected_ratio_before"] = _ratio(row["expected_before"], observed)
            row["expected_ratio_after"] = _ratio(row["expected_after"], observed)
            row["thresholded_ratio"] = _ratio(row["thresholded"], observed)
            rows.append(row)
    return pd.DataFrame(rows)


def _text(value: float, std: float, digits: int) -> str:
    """Format a mean (± std).

    Args:
        value: the mean
        std: the standard deviation (NaN: not shown)
        digits: decimals

    Returns:
        The text, ``–`` when undefined.
    """
    if math.isnan(value):
        return "–"
    text = f"{value:.{digits}f}"
    return text if math.isnan(std) else f"{text} ± {std:.{digits}f}"


def calibration_table(
    rows: pd.DataFrame,
    protocol: str,
    order: Sequence[str] | None = None,
    digits: int = 3,
) -> str:
    """The calibration table in Markdown: means over seeds per city and inputs.

    Args:
        rows: :func:`calibration_rows`
        protocol: the protocol (for the caption)
        order: configuration names in row order (default: as found)
        digits: decimals

    Returns:
        Caption, table and notes as Markdown.

    Raises:
        ValueError: If *rows* is empty.

    .. versionadded:: 0.2
    """
    if rows.empty:
        raise ValueError("no finished runs to tabulate")
    names = list(order or []) + [
        n for n in dict.fromkeys(rows["config"]) if n not in (order or [])
    ]
    seeds = sorted(set(rows["seed"]))
    group = "city" if protocol == "loco" else "split"
    head = ["City" if group == "city" else "Split", "Inputs"]
    head += [label for _, label in CALIBRATION_COLUMNS]
    spread = (
        f"mean ± std over {len(seeds)} seeds"
        if len(seeds) > 1
        else (f"seed {seeds[0]}")
    )
    lines = [
        f"*Calibration of the test probabilities ({protocol}), before "
        "(sigmoid of the logit) and after Platt scaling fitted on the "
        f"validation split; ECE over {ECE_BINS} equal-width bins; counts of "
        f"damaged buildings; {spread}.*",
        "",
        "| " + " | ".join(head) + " |",
        "|---|---|" + "---:|" * len(CALIBRATION_COLUMNS),
    ]
    for key in dict.fromkeys(rows[group]):
        for name in names:
            part = rows[(rows[group] == key) & (rows["config"] == name)]
            if part.empty:
                continue
            cells = []
            for column, _ in CALIBRATION_COLUMNS:
                values = part[column].to_numpy(dtype=np.float64)
                values = values[np.isfinite(values)]
                mean = float(values.mean()) if values.size else math.nan
                std = float(values.std()) if values.size > 1 else math.nan
                cells.append(_text(mean, std, digits))
            city = CITY_NAMES.get(str(key), str(key))
            label = str(part["label"].iloc[0])
            lines.append("| " + " | ".join([city, label, *cells]) + " |")
    lines += [
        "",
        "Expected/observed: sum of the probabilities over the number of damaged "
        "buildings (1 = the right count); thresholded/observed: buildings at or "
        "above the validation threshold over the damaged ones (unchanged by the "
        "calibration).  ",
        "–: undefined (no calibration stored, or no damaged building).",
    ]
    return "\n".join(lines) + "\n"


def write_calibration(
    records: Sequence[Mapping[str, Any]],
    out: str | os.PathLike[str],
    protocol: str,
    order: Sequence[str] | None = None,
) -> list[Path]:
    """Write the calibration of a protocol's runs.

    Args:
        records: finished runs
        out: output folder
        protocol: protocol name
        order: configuration names in row order

    Returns:
        ``calibration_<protocol>.md`` (:func:`calibration_table`) and
        ``calibration_<protocol>_runs.csv`` (:func:`calibration_rows`); empty
        when there is no finished run.

    .. versionadded:: 0.2
    """
    if not records:
        return []
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    rows = calibration_rows(records)
    if rows.empty:
        return []
    md = folder / f"calibration_{protocol}.md"
    md.write_text(calibration_table(rows, protocol, order), encoding="utf-8")
    csv_path = folder / f"calibration_{protocol}_runs.csv"
    rows.to_csv(csv_path, index=False, float_format="%.6g")
    return [md, csv_path]
