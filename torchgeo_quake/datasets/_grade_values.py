"""Labels from the values of a damage reference: grades and label columns.

:mod:`~torchgeo_quake.datasets.references` reads a damage layer and joins it to
footprints; these functions turn the values it reads into labels (1 damaged,
0 intact, -1 excluded): the grade of each feature of a Copernicus EMS grading
product, and each value of a label column of the footprints (0/1, booleans or
grades), through a grade mapping keyed by normalised grade.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd


def _normalise(value: str) -> str:
    """Key a grade is looked up by: stripped and case-folded.

    Args:
        value: a grade as written in a file or a grade mapping

    Returns:
        The lookup key.
    """
    return value.strip().casefold()


def _grade_features(
    values: pd.Series, table: Mapping[str, tuple[str, int]], path: str, field: str
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.object_]]:
    """Labels and grades of the features of an EMS grading product.

    Args:
        values: the grade values
        table: normalised grade mapping (``_grade_table`` of
            :mod:`~torchgeo_quake.datasets.references`)
        path: the file, named in errors
        field: the grade column, named in errors

    Returns:
        Label and grade (as spelled in the mapping) of every feature.

    Raises:
        ValueError: If a grade is not in the mapping.
    """
    keys = [
        "" if v is None or (isinstance(v, float) and math.isnan(v)) else str(v)
        for v in values.astype(object).where(values.notna(), None).tolist()
    ]
    normalised = [_normalise(k) for k in keys]
    unknown = sorted(
        {k for k, n in zip(keys, normalised, strict=True) if n not in table}
    )
    if unknown:
        shown = ", ".join("<missing>" if not u.strip() else repr(u) for u in unknown)
        known = ", ".join(repr(g) for g, _ in table.values())
        raise ValueError(
            f"damage reference {path!r} has {field} values that the grade "
            f"mapping does not know: {shown} (known: {known}). Map them to 1 "
            "(damaged), 0 (intact) or -1 (excluded) with grade_map= (compared "
            "case-insensitively; the key '' maps missing values)."
        )
    labels = np.array([table[n][1] for n in normalised], dtype=np.int64)
    grades = np.array([table[n][0] for n in normalised], dtype=object)
    return labels, grades


def _label_of(
    value: Any, table: Mapping[str, tuple[str, int]]
) -> tuple[int, str] | None:
    """Label and grade of one label-column value.

    Args:
        value: a non-missing value
        table: normalised grade mapping

    Returns:
        (label, grade), or None if the value is not understood.
    """
    if isinstance(value, bool | np.bool_):
        return int(value), str(bool(value))
    if isinstance(value, int | float | np.integer | np.floating):
        return (int(value), str(value)) if value in (0, 1) else None
    text = str(value).strip()
    key = _normalise(text)
    if key in table:
        return table[key][1], table[key][0]
    if key in ("true", "false"):
        return int(key == "true"), text
    try:
        number = float(key)
    except ValueError:
        return None
    return (int(number), text) if number in (0.0, 1.0) else None
