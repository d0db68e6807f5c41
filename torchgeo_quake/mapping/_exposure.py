"""The GEM exposure of a map: reading it, and the figures it cannot give.

A map needs of the exposure file only what it uses: every column of the GEM
feature vector for a model that takes it as an input, else only what locates
and counts the assets (the summary's occupants and costs then come from the
columns that are there, and the figures whose column is absent are reported
missing, :func:`missing_figures`). Private helpers of
:func:`~torchgeo_quake.mapping.predict.map_damage`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..datasets import GEMExposure


def read_exposure(path: Path | None, features: bool = True) -> GEMExposure | None:
    """Read GEM point assets.

    Args:
        path: GEM exposure CSV, or None
        features: whether the model uses the GEM feature vector, which needs
            every column of it; else only ``taxonomy``, ``number`` and the
            coordinates are required (the summary says which exposure figures
            the other columns' absence leaves out, :func:`missing_figures`)

    Returns:
        The exposure, or None without a file.

    Raises:
        ValueError: If the file is not GEM point assets or lacks a column it
            needs.
    """
    from ..datasets import GEMExposure
    from ..datasets.gem_features import FEATURE_COLUMNS

    if path is None:
        return None
    required = FEATURE_COLUMNS if features else ("taxonomy", "number")
    try:
        gem = GEMExposure(path, required_columns=required)
    except ValueError as err:
        use = (
            " (the model takes the GEM exposure as an input, so the file needs "
            "every column of its feature vector; map with a model trained "
            "without GEM to use this file for the exposure totals only)"
            if features and "lacks required column" in str(err)
            else ""
        )
        raise ValueError(f"exposure file {str(path)!r}: {err}{use}") from err
    if gem.kind != "points":
        raise ValueError(
            f"exposure file {str(path)!r} holds admin-level aggregates "
            "without coordinates; mapping needs GEM point assets (OpenQuake "
            "exposure CSV with lon and lat)."
        )
    return gem


#: GEM feature each exposure figure of the map is computed from.
_FIGURE_FEATURES = {
    "occupants_day": "occupants_day_per_building",
    "occupants_night": "occupants_night_per_building",
    "replacement_cost_usd": "log_replacement_cost_per_building",
}


def missing_figures(gem: GEMExposure | None) -> dict[str, str]:
    """Exposure figures that the exposure file cannot give, and why.

    Args:
        gem: the exposure, or None

    Returns:
        :data:`~torchgeo_quake.mapping.summary.EXPOSURE_COLUMNS` name -> the
        reason (the missing column and its accepted names).
    """
    from ..datasets.gem import COLUMN_ALIASES

    if gem is None:
        return {}
    files = ", ".join(repr(str(p)) for p in gem.paths)
    notes = {}
    for figure, feature in _FIGURE_FEATURES.items():
        columns = gem.missing_features.get(feature)
        if columns is None:
            continue
        accepted = "; ".join(
            f"{c}: {', '.join(COLUMN_ALIASES[c])}" for c in columns.split(" and ")
        )
        notes[figure] = (
            f"not computed: {files} has no {columns} column (accepted names, "
            f"case-insensitive: {accepted})"
        )
    return notes


def exposure_line(exposure: dict[str, Any]) -> str:
    """The exposure in buildings predicted damaged, as printed.

    Args:
        exposure: the ``exposure`` section of the summary

    Returns:
        The text; figures the exposure file cannot give are said unknown.
    """

    def figure(key: str, text: str, unknown: str) -> str:
        value = exposure.get(f"{key}_in_damaged")
        return unknown if value is None else f"{value:,.0f} {text}"

    return (
        "in buildings predicted damaged: "
        + figure("occupants_night", "occupants at night", "occupants at night unknown")
        + ", "
        + figure("occupants_day", "by day", "occupants by day unknown")
        + ",\n  "
        + figure(
            "replacement_cost_usd",
            "USD of replacement cost (GEM)",
            "replacement cost unknown",
        )
        + (" (see summary.json exposure.missing)" if exposure.get("missing") else "")
    )
