"""The simulator's calibration table as Markdown (for docs/simulator.md).

:func:`format_markdown` turns what
:func:`~torchgeo_quake.realism.table.calibration_table` returns
into four tables: destroyed buildings (simulated / real), collapse rates by
material and storeys (simulated / GEM), SAR-only difficulty (within-city AUROC
of single features, bold above their bound) and transfer (leave-one-city-out
AUROC of single inputs).

.. versionadded:: 0.3
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..paper import CITY_NAMES
from .table import COLLAPSE_BAND

__all__ = ["format_markdown"]


#: Display names of the within-city features and transfer inputs.
_FEATURE_LABELS: Mapping[str, str] = {
    "mean_db": "Mean dB in the footprint",
    "area_m2": "Footprint area",
    "dsm_residual_m": "DSM height residual",
    "gem_vector": "GEM vector identity (out-of-fold rate)",
    "sar_blocks_gb": "Gradient boosting, SAR 8×8 block means",
}
_INPUT_LABELS: Mapping[str, str] = {
    "dsm_height": "DSM height residual",
    "true_height": "True height (truth.csv)",
    "gem_taxonomy": "GEM taxonomy (one-hot material + storeys)",
    "gem_vector": "GEM feature vector (network input)",
}


def _number(value: Any, digits: int = 3) -> str:
    """A table cell: the number, or an en dash when missing.

    Args:
        value: number or None
        digits: decimals

    Returns:
        The text.
    """
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:.{digits}f}"


def _pair(row: Mapping[str, Any], key: str, digits: int) -> str:
    """``simulated / real`` cell of a footprint row.

    Args:
        row: a :func:`footprint_rows` entry
        key: the statistic
        digits: decimals

    Returns:
        The text.
    """
    real = row["real"] or {}
    return (
        f"{_number(row['simulated'][key], digits)} / {_number(real.get(key), digits)}"
    )


def _auroc_row(
    label: str, bound: float | None, values: Mapping[str, Any], cities: Sequence[str]
) -> str:
    """One row of AUROCs per city, bold where ``max(a, 1 - a)`` passes *bound*.

    Args:
        label: first cell
        bound: bound of the row (None: no bound)
        values: city -> AUROC
        cities: column order

    Returns:
        The Markdown row.
    """
    cells = []
    for city in cities:
        value = values.get(city)
        text = _number(value)
        if bound is not None and value is not None and max(value, 1 - value) > bound:
            text = f"**{text}**"
        cells.append(text)
    finite = [v for v in values.values() if v is not None]
    mean = _number(float(np.mean(finite))) if finite else "–"
    limit = "–" if bound is None else f"≤ {bound:.2f}"
    return f"| {label} | {limit} | " + " | ".join(cells) + f" | {mean} |"


def format_markdown(result: Mapping[str, Any]) -> str:
    """The calibration table as Markdown (for docs/simulator.md).

    Args:
        result: what :func:`calibration_table` returns

    Returns:
        Four tables: footprints, collapse rates, SAR-only difficulty, transfer.

    .. versionadded:: 0.3
    """
    scene = result["scene"]
    scenario = scene["scenario"]
    name = str(scenario)
    if isinstance(scenario, Mapping):
        knobs = [
            f"{key.replace('_', ' ')} {value:g}"
            for key, value in scenario.items()
            if key != "name" and isinstance(value, int | float) and value != 1
        ]
        name = str(scenario.get("name")) + (f" ({', '.join(knobs)})" if knobs else "")
    cities = [row["city"] for row in result["footprints"]]
    names = [CITY_NAMES.get(c, c) for c in cities]
    lines = [
        f"Scene: scenario `{name}`, scale {scene['scale']}, seed {scene['seed']}; "
        f"{scene['samples']} samples ({scene['damaged_samples']} damaged, 1:20 "
        "sampling).",
        "",
        "**Destroyed buildings** (simulated / real HOTOSM layer in the city box; "
        "the real layer lists destroyed buildings only, so its destroyed/all "
        "ratio is unknown and its density an estimate)",
        "",
        "| City | Destroyed | Median area (m²) | Destroyed/all median area "
        "| Cluster share (80 m patch) | Span, 250 m cells (km²) "
        "| Convex hull (km²) | Buildings per km² |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row, city in zip(result["footprints"], names, strict=True):
        lines.append(
            f"| {city} | {_pair(row, 'count', 0)} "
            f"| {_pair(row, 'median_area_destroyed_m2', 0)} "
            f"| {_pair(row, 'area_ratio', 2)} | {_pair(row, 'cluster_share', 2)} "
            f"| {_pair(row, 'cell_area_km2', 2)} | {_pair(row, 'hull_area_km2', 2)} "
            f"| {_pair(row, 'density_per_km2', 0)} |"
        )
    sources = sorted(set(result["collapse"]["intensity_source"].values()))
    lines += [
        "",
        "**Collapse rate by material and storeys** (buildings in the SAR image; "
        "GEM: mean collapse probability of GEM's vulnerability functions at the "
        f"simulated shaking, intensities from {', '.join(sources)})",
        "",
        "| Material | Storeys | Buildings | Collapsed | Simulated rate | GEM rate |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for r in result["collapse"]["rows"]:
        lines.append(
            f"| {r['material_class']} | {r['storeys_class']} | {r['buildings']} "
            f"| {r['collapsed']} | {_number(r['simulated_rate'])} "
            f"| {_number(r['gem_rate'])} |"
        )
    level = result["collapse"].get("level")
    if level:
        band = ", ".join(
            f"{CITY_NAMES.get(k, k)} {_number(v['simulated'])} vs "
            f"{_number(v['gem'])} [{_number(v['gem_low'])}, {_number(v['gem_high'])}]"
            for k, v in level.items()
        )
        lines += [
            "",
            "Collapsed share, simulated vs GEM (in brackets: GEM with the collapse "
            f"loss ratio from {COLLAPSE_BAND[1]} to {COLLAPSE_BAND[0]}): {band}.",
        ]
    head = "| " + " | ".join(names) + " | Mean |"
    rule = "|---|---:|" + "---:|" * (len(names) + 1)
    bounds = result["bounds"]
    lines += [
        "",
        "**SAR-only difficulty**: within-city AUROC (5-fold where fitted); bold: "
        "`max(a, 1 - a)` above the bound",
        "",
        f"| Feature | Bound {head}",
        rule,
    ]
    for key, values in result["within_city"].items():
        lines.append(_auroc_row(_FEATURE_LABELS[key], bounds.get(key), values, cities))
    if result.get("cnn_loco"):
        lines.append(
            _auroc_row(
                "CNN SAR + FTP, leave-one-city-out", None, result["cnn_loco"], cities
            )
        )
    lines.append(
        _auroc_row(
            "Paper SAR + FTP, leave-one-city-out (Table IV)",
            None,
            result["paper_loco"],
            cities,
        )
    )
    if result.get("pooled_gb_auroc") is not None:
        lines += [
            "",
            "Gradient boosting on the SAR block means, 5-fold over all cities "
            f"pooled: AUROC {_number(result['pooled_gb_auroc'])}.",
        ]
    lines += [
        "",
        "**Transfer**: leave-one-city-out AUROC of a logistic regression on one input",
        "",
        f"| Input | Bound {head}",
        rule,
    ]
    for key, values in result["transfer"].items():
        lines.append(_auroc_row(_INPUT_LABELS[key], None, values, cities))
    return "\n".join(lines) + "\n"
