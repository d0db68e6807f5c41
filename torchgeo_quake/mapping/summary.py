"""Totals of a damage map: per city, per admin unit or grid cell, and exposure.

.. versionadded:: 0.1
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import shapely
from pyproj import CRS

from .intervals import EXACT_LIMIT, LEVEL, count_interval, sum_interval, widen

__all__ = [
    "EXPOSURE_COLUMNS",
    "admin_units",
    "grid_cells",
    "grid_reference",
    "summarise",
]

#: Per-building exposure columns of the map (from the nearest GEM location).
EXPOSURE_COLUMNS: tuple[str, ...] = (
    "occupants_day",
    "occupants_night",
    "replacement_cost_usd",
)


def grid_reference(column: int, row: int) -> str:
    """A map grid reference: column letters and row number, e.g. ``"C4"``.

    Args:
        column: column from the west, from 0 (``A``, ..., ``Z``, ``AA``, ...)
        row: row from the north, from 0 (``1``, ``2``, ...)

    Returns:
        The reference.

    Raises:
        ValueError: If *column* or *row* is negative.

    .. versionadded:: 0.2
    """
    if column < 0 or row < 0:
        raise ValueError(f"grid column and row must be >= 0, got {column}, {row}")
    letters = ""
    rest = column + 1
    while rest:
        rest, digit = divmod(rest - 1, 26)
        letters = chr(ord("A") + digit) + letters
    return f"{letters}{row + 1}"


def grid_cells(
    x: npt.NDArray[np.float64], y: npt.NDArray[np.float64], cell_size: float
) -> tuple[npt.NDArray[np.object_], pd.DataFrame]:
    """Square grid cell of each point.

    Args:
        x: x coordinates in a projected CRS (NaN for buildings without geometry);
            :func:`~torchgeo_quake.mapping.map_damage` passes metres (a local
            UTM zone when the SAR image's CRS is not in metres)
        y: y coordinates
        cell_size: cell side in CRS units

    Returns:
        A label per point (its cell's :func:`grid_reference`: columns lettered
        west to east, rows numbered north to south, from the north-west cell
        holding a point, ``"A1"``; None for NaN points) and a table of the
        cells with ``unit``, ``xmin``, ``ymin``, ``xmax``, ``ymax``.

    Raises:
        ValueError: If *cell_size* is not positive.

    .. versionadded:: 0.1
    .. versionchanged:: 0.2
       Labels are grid references such as ``"C4"``, not the lower-left
       corner's coordinates.
    """
    if not cell_size > 0:
        raise ValueError(f"cell_size must be positive, got {cell_size}")
    labels = np.full(len(x), None, dtype=object)
    ok = np.isfinite(x) & np.isfinite(y)
    corners = np.column_stack(
        [np.floor(x[ok] / cell_size), np.floor(y[ok] / cell_size)]
    )
    # One label string per cell, shared by its buildings (not one per building).
    cells, inverse = np.unique(corners, axis=0, return_inverse=True)
    cells = cells.reshape(-1, 2)
    west = cells[:, 0].min() if len(cells) else 0.0
    north = cells[:, 1].max() if len(cells) else 0.0
    text = np.array(
        [grid_reference(int(a - west), int(north - b)) for a, b in cells.tolist()],
        dtype=object,
    ).reshape(-1)
    cells = cells * cell_size
    labels[ok] = text[np.asarray(inverse).reshape(-1)]
    table = pd.DataFrame({"unit": text, "xmin": cells[:, 0], "ymin": cells[:, 1]})
    table = table.drop_duplicates("unit").reset_index(drop=True)
    table["xmax"] = table["xmin"] + cell_size
    table["ymax"] = table["ymin"] + cell_size
    return labels, table


def admin_units(
    x: npt.NDArray[np.float64],
    y: npt.NDArray[np.float64],
    crs: CRS,
    path: str | os.PathLike[str],
    field: str,
) -> npt.NDArray[np.object_]:
    """Admin unit (polygon of a vector file) that contains each point.

    Args:
        x: x coordinates in *crs* (NaN for buildings without geometry)
        y: y coordinates
        crs: CRS of the points
        path: polygons of the units (any vector format with a CRS)
        field: attribute holding the unit's name

    Returns:
        The name of the unit of each point, None outside every unit.

    Raises:
        FileNotFoundError: If *path* does not exist.
        ValueError: If the file cannot be read, is not a vector file or lacks
            *field*.

    .. versionadded:: 0.1
    """
    from ._inputs import read_vector_file

    units = read_vector_file(Path(path), "admin units", "--units")
    if field not in units.columns:
        columns = ", ".join(str(c) for c in units.columns if c != units.geometry.name)
        raise ValueError(
            f"admin units file {str(path)!r} has no field {field!r} (fields: "
            f"{columns}); pass the field that names the units with --unit-field."
        )
    units = units[units.geometry.notna()].to_crs(crs)
    geoms = shapely.make_valid(np.asarray(units.geometry.values, dtype=object))
    names = units[field].astype(str).to_numpy(dtype=object)
    labels = np.full(len(x), None, dtype=object)
    ok = np.flatnonzero(np.isfinite(x) & np.isfinite(y))
    if len(ok) == 0 or len(geoms) == 0:
        return labels
    points = shapely.points(x[ok], y[ok])
    tree = shapely.STRtree(geoms)
    point_idx, unit_idx = tree.query(points, predicate="within")
    # The first unit in file order wins where units overlap.
    order = np.lexsort((unit_idx, point_idx))
    point_idx, unit_idx = point_idx[order], unit_idx[order]
    first = np.ones(len(point_idx), dtype=bool)
    first[1:] = point_idx[1:] != point_idx[:-1]
    labels[ok[point_idx[first]]] = names[unit_idx[first]]
    return labels


def _share(numerator: int, denominator: int) -> float | None:
    """A ratio rounded to 6 decimals, None for an empty denominator.

    Args:
        numerator: count
        denominator: count

    Returns:
        The share.
    """
    return None if denominator == 0 else round(numerator / denominator, 6)


def _money(value: float) -> float:
    """Round a total for JSON.

    Args:
        value: the total

    Returns:
        The total rounded to 2 decimals (0 for NaN).
    """
    return 0.0 if not math.isfinite(value) else round(float(value), 2)


def summarise(
    predicted: npt.NDArray[np.bool_],
    damaged: npt.NDArray[np.bool_],
    reasons: npt.NDArray[np.object_],
    units: npt.NDArray[np.object_],
    exposure: dict[str, npt.NDArray[np.float64]] | None = None,
    unit_table: pd.DataFrame | None = None,
    probs: npt.NDArray[np.float64] | None = None,
    missing: Mapping[str, str] | None = None,
    replicates: npt.NDArray[np.floating[Any]] | None = None,
) -> dict[str, Any]:
    """Counts of the map overall and per unit.

    With *probs*, the expected number of damaged buildings (the sum of the
    probabilities) and its 90 % interval are given beside the thresholded
    count, and the expected exposure in damaged buildings beside the exposure
    in buildings predicted damaged, overall and per unit (see
    :mod:`~torchgeo_quake.mapping.intervals` for what the interval assumes).

    Args:
        predicted: True for buildings the model scored
        damaged: True for scored buildings predicted damaged
        reasons: skip reason of every skipped building (ignored elsewhere)
        units: unit label of every building (None: outside every unit)
        exposure: per-building :data:`EXPOSURE_COLUMNS` (NaN where unknown)
        unit_table: extra per-unit columns (e.g. grid-cell bounds) keyed by
            ``unit``
        probs: damage probability of every building (NaN where not scored)
        missing: exposure columns the exposure file cannot give, with the
            reason: their figures are None (not 0), overall and per unit, and
            the reasons are listed in ``exposure["missing"]``
        replicates: *probs* under bootstrap replicates of their fit,
            (replicates, buildings): the intervals are widened by their spread
            (:func:`~torchgeo_quake.mapping.intervals.widen`)

    Returns:
        ``counts`` (``footprints``, ``predicted``, ``skipped``, ``damaged``,
        ``intact``, ``damaged_share``, ``skipped_by_reason``), ``exposure``
        (totals in buildings predicted damaged and in all scored buildings, or
        None) and ``units`` (one record per unit holding a building, sorted by
        damaged count, then name). With *probs*: ``counts`` gains
        ``expected_damaged`` with ``expected_damaged_low`` and
        ``expected_damaged_high``, ``exposure`` gains ``<column>_expected``
        with ``_low`` and ``_high``, the unit records likewise, and
        ``interval`` says how the intervals were computed.

    .. versionadded:: 0.1
    .. versionchanged:: 0.2
       *probs* and *replicates*: expected counts and exposure with
       intervals; *missing*.
    """
    n = len(predicted)
    n_pred = int(predicted.sum())
    n_dmg = int(damaged.sum())
    skipped = ~predicted
    by_reason = (
        pd.Series(reasons[skipped], dtype=object).value_counts().sort_index()
        if skipped.any()
        else pd.Series(dtype=int)
    )
    counts = {
        "footprints": n,
        "predicted": n_pred,
        "skipped": int(skipped.sum()),
        "damaged": n_dmg,
        "intact": n_pred - n_dmg,
        "damaged_share": _share(n_dmg, n_pred),
        "skipped_by_reason": {str(k): int(v) for k, v in by_reason.items()},
    }
    exposure_totals: dict[str, Any] | None = None
    if exposure is not None:
        exposure_totals = {}
        for column in EXPOSURE_COLUMNS:
            values = np.nan_to_num(exposure[column], nan=0.0)
            exposure_totals[f"{column}_in_damaged"] = _money(values[damaged].sum())
            exposure_totals[f"{column}_in_predicted"] = _money(values[predicted].sum())

    frame = pd.DataFrame(
        {
            "unit": pd.Series(units, dtype=object).fillna("(none)"),
            "buildings": 1,
            "predicted": predicted.astype(np.int64),
            "skipped": skipped.astype(np.int64),
            "damaged": damaged.astype(np.int64),
        }
    )
    if exposure is not None:
        for column in EXPOSURE_COLUMNS:
            frame[f"{column}_in_damaged"] = np.where(
                damaged, np.nan_to_num(exposure[column], nan=0.0), 0.0
            )
    table = frame.groupby("unit", sort=True).sum()
    table["damaged_share"] = [
        _share(int(d), int(p))
        for d, p in zip(table["damaged"], table["predicted"], strict=True)
    ]
    table = table.reset_index()
    if unit_table is not None and not unit_table.empty:
        table = table.merge(unit_table, on="unit", how="left")
    table = table.sort_values(["damaged", "unit"], ascending=[False, True])
    records = []
    for row in table.to_dict("records"):
        record: dict[str, Any] = {}
        for name, value in row.items():
            key = str(name)
            if isinstance(value, np.generic):
                value = value.item()
            if isinstance(value, float) and key.endswith("_in_damaged"):
                value = _money(value)
            if isinstance(value, float) and not math.isfinite(value):
                value = None
            record[key] = value
        records.append(record)
    result = {"counts": counts, "exposure": exposure_totals, "units": records}
    if probs is not None:
        _add_expected(result, probs, units, exposure, replicates)
    if missing and result["exposure"] is not None:
        _blank_missing(result, missing)
    return result


def _blank_missing(result: dict[str, Any], missing: Mapping[str, str]) -> None:
    """Make the figures of exposure columns that are missing None, not 0.

    Args:
        result: :func:`summarise`'s result (changed in place)
        missing: exposure column -> why the exposure file cannot give it
    """
    for record in [result["exposure"], *result["units"]]:
        for key in record:
            if key.startswith(tuple(f"{column}_" for column in missing)):
                record[key] = None
    result["exposure"]["missing"] = dict(missing)


def _expected(
    probs: npt.NDArray[np.float64],
    exposure: dict[str, npt.NDArray[np.float64]] | None,
    replicates: npt.NDArray[np.floating[Any]] | None = None,
) -> dict[str, Any]:
    """Expected damaged count and exposure, with intervals, of some buildings.

    Args:
        probs: their probabilities (NaN: not scored)
        exposure: their :data:`EXPOSURE_COLUMNS`, or None
        replicates: their probabilities under bootstrap replicates of the
            fit, (replicates, buildings), or None

    Returns:
        ``expected_damaged`` (``_low``, ``_high``) and, with exposure,
        ``<column>_expected`` (``_low``, ``_high``).
    """
    count = count_interval(probs)
    if replicates is not None:
        count = widen(count, np.nansum(replicates, axis=1), count=True)
    out: dict[str, Any] = {
        "expected_damaged": round(count.expected, 2),
        "expected_damaged_low": count.low,
        "expected_damaged_high": count.high,
    }
    for column in EXPOSURE_COLUMNS if exposure is not None else ():
        assert exposure is not None
        total = sum_interval(probs, exposure[column])
        if replicates is not None:
            values = np.nan_to_num(exposure[column], nan=0.0)
            total = widen(total, np.nansum(replicates * values, axis=1))
        out[f"{column}_expected"] = _money(total.expected)
        out[f"{column}_expected_low"] = _money(total.low)
        out[f"{column}_expected_high"] = _money(total.high)
    return out


def _add_expected(
    result: dict[str, Any],
    probs: npt.NDArray[np.float64],
    units: npt.NDArray[np.object_],
    exposure: dict[str, npt.NDArray[np.float64]] | None,
    replicates: npt.NDArray[np.floating[Any]] | None,
) -> None:
    """Add the expected counts and exposure to a summary, overall and per unit.

    Args:
        result: :func:`summarise`'s result (changed in place)
        probs: probability of every building (NaN: not scored)
        units: unit of every building
        exposure: per-building exposure, or None
        replicates: probabilities under bootstrap replicates, or None
    """
    overall = _expected(probs, exposure, replicates)
    for key, value in overall.items():
        if key.startswith("expected_damaged"):
            result["counts"][key] = value
        elif result["exposure"] is not None:
            result["exposure"][key] = value
    labels = pd.Series(units, dtype=object).fillna("(none)").to_numpy(dtype=object)
    rows_of = pd.Series(np.arange(len(labels))).groupby(labels).indices
    for record in result["units"]:
        rows = rows_of[record["unit"]]
        part = None if exposure is None else {k: v[rows] for k, v in exposure.items()}
        reps = None if replicates is None else replicates[:, rows]
        record.update(_expected(probs[rows], part, reps))
    result["interval"] = {
        "level": LEVEL,
        "count_method": (
            "exact" if np.isfinite(probs).sum() <= EXACT_LIMIT else "refined normal"
        ),
        "total_method": "refined normal",
        "assumes": "calibrated, independent probabilities; model error is not covered",
        "label_fit_bootstrap": None if replicates is None else len(replicates),
    }
