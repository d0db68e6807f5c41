"""Are the inputs of a new city like the model's training inputs?

A checkpoint of :class:`~torchgeo_quake.trainers.DamageDetectionTask` carries
statistics of its training inputs
(:func:`~torchgeo_quake.trainers.input_stats.input_statistics`). Before
predicting, ``torchgeo-quake map`` computes the same statistics on a sample of
the new city's building windows and measures, per input the model uses
(:func:`measure_shift`):

* **SAR** (model radiometry, dB by default): the shift of the median in
  training interquartile ranges, ``(median_new - median_train) / IQR_train``
  (``median_shift_iqr``), and the ratio of the interquartile ranges,
  ``IQR_new / IQR_train`` (``iqr_ratio``);
* **DSM** relief of the windows and **footprint** area in pixels: the shift of
  the median in training interquartile ranges, as for the SAR;
* **GEM** exposure features: the share of buildings with a feature more than
  5 training standard deviations from its training mean (``extreme_share``; a
  feature constant in training counts for every value that differs), and, for
  information, the share of values outside the training range ``[min, max]``
  of their feature (``outside_share``), with the features most often outside.

An input is out of bounds when a distance leaves :data:`BOUNDS`. The bounds
come from the simulated Kahramanmaraş scene, each city compared with the other
four (leave-one-city-out): the SAR medians of the held-out cities lie within
0.17 training IQRs and their spreads within 0.69-1.37 times the training's,
while a SAR image 6 dB brighter moves the median by 0.38-0.75 IQRs. Only the
city unlike the others, Kahramanmaraş (larger footprints, every GEM row
extreme), is out of bounds there (see "Map a new city" in the documentation).
Inputs out of bounds get a warning; the map is still made, and says so.

:func:`radiometric_adaptation` is the label-free adaptation of
``--adapt-radiometry``: the affine map of SAR values that gives the new
image's windows the median and interquartile range of the training windows.

.. versionadded:: 0.2
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..trainers.input_stats import QUANTILES

__all__ = [
    "BOUNDS",
    "NOT_CHECKED",
    "measure_shift",
    "radiometric_adaptation",
    "shift_warnings",
]

#: What an old checkpoint's map says of the shift.
NOT_CHECKED = "no training statistics; shift not checked"

#: Bounds of the distances of :func:`measure_shift`, per statistic: largest
#: absolute ``median_shift_iqr``, range of ``iqr_ratio``, largest
#: ``extreme_share`` of buildings with a GEM feature beyond ``z`` training
#: standard deviations.
BOUNDS: dict[str, dict[str, Any]] = {
    "sar": {"median_shift_iqr": 0.3, "iqr_ratio": (0.6, 1.67)},
    "dsm_relief": {"median_shift_iqr": 2.0},
    "footprint_pixels": {"median_shift_iqr": 1.0},
    "gem": {"extreme_share": 0.05, "z": 5.0},
}

#: Inputs described by each statistic, and the modality that needs it.
_MODALITY_OF = {
    "sar": "sar",
    "dsm_relief": "dsm",
    "footprint_pixels": "footprint",
    "gem": "gem",
}

#: Features of the GEM entry listed in a report.
_WORST = 3


def _median_iqr(
    entry: Mapping[str, Any], quantiles: Sequence[float]
) -> tuple[float, float]:
    """Median and interquartile range of a quantile record.

    Args:
        entry: a record with ``quantiles``
        quantiles: the probabilities of its quantiles

    Returns:
        The median and the interquartile range.
    """
    values = dict(
        zip((round(q, 6) for q in quantiles), entry["quantiles"], strict=True)
    )
    return float(values[0.5]), float(values[0.75] - values[0.25])


def _location(
    train: Mapping[str, Any], new: Mapping[str, Any], quantiles: Sequence[float]
) -> dict[str, Any]:
    """Shift of the median in training IQRs, and the IQR ratio.

    Args:
        train: training quantile record
        new: new quantile record
        quantiles: the probabilities of the quantiles

    Returns:
        ``train_median``, ``new_median``, ``median_shift_iqr`` and
        ``iqr_ratio`` (NaN where undefined).
    """
    m0, iqr0 = _median_iqr(train, quantiles)
    m1, iqr1 = _median_iqr(new, quantiles)
    scale = iqr0 if iqr0 > 0 else math.nan
    return {
        "train_median": m0,
        "new_median": m1,
        "median_shift_iqr": (m1 - m0) / scale if m1 != m0 else 0.0,
        "iqr_ratio": iqr1 / scale if iqr1 != iqr0 else 1.0,
    }


def _gem(
    train: Mapping[str, Any], values: np.ndarray, names: Sequence[str]
) -> dict[str, Any]:
    """Extreme GEM vectors and values outside the training range.

    Args:
        train: training ``gem`` record (``min``, ``max``, ``mean``, ``std``)
        values: new GEM vectors, (N, F)
        names: feature names (F)

    Returns:
        ``extreme_share`` (buildings with a feature beyond
        ``BOUNDS["gem"]["z"]`` training standard deviations),
        ``outside_share`` (values outside the training range) and
        ``features`` (the features most often outside, with their share).
    """
    low = np.asarray(train["min"], dtype=np.float64)
    high = np.asarray(train["max"], dtype=np.float64)
    mean = np.asarray(train["mean"], dtype=np.float64)
    std = np.asarray(train["std"], dtype=np.float64)
    values = np.asarray(values, dtype=np.float64).reshape(len(values), -1)
    outside = (values < low) | (values > high)
    gap = np.abs(values - mean)
    tolerance = 1e-6 * np.maximum(np.abs(mean), 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(std > 0, gap / std, np.where(gap > tolerance, np.inf, 0.0))
    extreme = (z > BOUNDS["gem"]["z"]).any(axis=1)
    per_feature = outside.mean(axis=0) if len(values) else np.zeros(len(low))
    worst = np.argsort(-per_feature, kind="stable")[:_WORST]
    return {
        "extreme_share": float(extreme.mean()) if len(values) else 0.0,
        "outside_share": float(outside.mean()) if outside.size else 0.0,
        "features": {
            str(names[i]): round(float(per_feature[i]), 4)
            for i in worst.tolist()
            if per_feature[i] > 0
        },
    }


def _rounded(entry: dict[str, Any]) -> dict[str, Any]:
    """Numbers rounded to 4 decimals, NaN as None (for JSON).

    Args:
        entry: a flat record

    Returns:
        The record.
    """
    out: dict[str, Any] = {}
    for key, value in entry.items():
        if isinstance(value, float):
            value = None if not math.isfinite(value) else round(value, 4)
        out[key] = value
    return out


def measure_shift(
    train: Mapping[str, Any] | None,
    new: Mapping[str, Any],
    modalities: Sequence[str],
    gem_values: np.ndarray | None = None,
    gem_names: Sequence[str] = (),
) -> dict[str, Any]:
    """Distances between the training inputs and the new inputs.

    Args:
        train: the checkpoint's input statistics, or None
        new: the same statistics of the new inputs
        modalities: the model's inputs (only these are compared)
        gem_values: the new GEM vectors of the sample, (N, F), for the share
            outside the training range
        gem_names: names of the GEM features

    Returns:
        ``checked`` (False without training statistics, with ``reason``),
        ``sampled_buildings``, ``inputs`` (per statistic: the distances, the
        bounds and ``outside``), ``out_of_range`` and ``warnings`` (one
        sentence per input out of bounds, with the distance).

    .. versionadded:: 0.2
    """
    if train is None:
        return {"checked": False, "reason": NOT_CHECKED, "warnings": []}
    quantiles = train.get("quantiles", QUANTILES)
    inputs: dict[str, Any] = {}
    entry: dict[str, Any]
    for key, modality in _MODALITY_OF.items():
        if modality not in modalities or key not in train or key not in new:
            continue
        if key == "gem":
            if gem_values is None:
                continue
            entry = _gem(train[key], gem_values, gem_names)
            bound = BOUNDS["gem"]["extreme_share"]
            entry["bounds"] = {"extreme_share": bound, "z": BOUNDS["gem"]["z"]}
            entry["outside"] = entry["extreme_share"] > bound
        else:
            entry = _location(train[key], new[key], quantiles)
            bounds = BOUNDS[key]
            shift = entry["median_shift_iqr"]
            limit = bounds["median_shift_iqr"]
            outside = not (math.isfinite(shift) and abs(shift) <= limit)
            if "iqr_ratio" in bounds:
                low, high = bounds["iqr_ratio"]
                ratio = entry["iqr_ratio"]
                outside |= not (math.isfinite(ratio) and low <= ratio <= high)
            entry["bounds"] = {k: _listed(v) for k, v in bounds.items()}
            entry["outside"] = outside
        inputs[key] = _rounded(entry)
    warnings = shift_warnings(inputs)
    return {
        "checked": True,
        "sampled_buildings": int(new.get("samples", 0)),
        "inputs": inputs,
        "out_of_range": bool(warnings),
        "warnings": warnings,
    }


def _listed(value: Any) -> Any:
    """A bound for JSON (tuples as lists).

    Args:
        value: a number or a (low, high) tuple

    Returns:
        The value, tuples as lists.
    """
    return list(value) if isinstance(value, tuple) else value


def shift_warnings(inputs: Mapping[str, Any]) -> list[str]:
    """One sentence per input out of bounds, with its measured distance.

    Args:
        inputs: the ``inputs`` of :func:`measure_shift`

    Returns:
        The sentences (empty when every input is within bounds).

    .. versionadded:: 0.2
    """
    out = []
    for key, entry in inputs.items():
        if not entry.get("outside"):
            continue
        bounds = entry["bounds"]
        if key == "gem":
            features = ", ".join(entry["features"]) or "none"
            out.append(
                f"GEM exposure: {entry['extreme_share']:.0%} of the buildings have "
                f"a feature more than {bounds['z']:g} training standard deviations "
                f"from the training mean (bound {bounds['extreme_share']:.0%}); "
                f"{entry['outside_share']:.0%} of the values lie outside the "
                f"training range (most often: {features})"
            )
            continue
        what = {
            "sar": "SAR values",
            "dsm_relief": "DSM relief",
            "footprint_pixels": "footprint sizes",
        }[key]
        text = (
            f"{what}: median {entry['new_median']:.4g} against "
            f"{entry['train_median']:.4g} in training, a shift of "
            f"{_number(entry['median_shift_iqr'])} training interquartile "
            f"ranges (bound {bounds['median_shift_iqr']:g})"
        )
        if "iqr_ratio" in bounds:
            low, high = bounds["iqr_ratio"]
            ratio = entry["iqr_ratio"]
            spread = "undefined" if ratio is None else f"{ratio:.2f}"
            text += f"; spread {spread} times the training's (bounds {low:g}-{high:g})"
        out.append(text)
    return out


def _number(value: float | None) -> str:
    """A distance in text.

    Args:
        value: the distance (None: undefined)

    Returns:
        The value with 2 decimals, or ``"undefined"``.
    """
    return "undefined" if value is None else f"{value:+.2f}"


def radiometric_adaptation(
    train: Mapping[str, Any], new: Mapping[str, Any]
) -> tuple[float, float]:
    """The affine map of SAR values giving the new image the training levels.

    ``x -> scale * x + offset`` moves the median of the new windows' SAR values
    to the training median and scales their interquartile range to the
    training one (in the model's radiometry: in dB, a calibration offset of
    the new image is removed exactly).

    Args:
        train: the checkpoint's input statistics (with ``sar``)
        new: the same statistics of the new inputs

    Returns:
        ``(scale, offset)``.

    Raises:
        ValueError: If either record lacks SAR statistics or has no spread.

    .. versionadded:: 0.2
    """
    if "sar" not in train or "sar" not in new:
        raise ValueError("radiometric adaptation needs SAR statistics of both sides")
    quantiles = train.get("quantiles", QUANTILES)
    m0, iqr0 = _median_iqr(train["sar"], quantiles)
    m1, iqr1 = _median_iqr(new["sar"], quantiles)
    if not (iqr0 > 0 and iqr1 > 0):
        raise ValueError(
            "radiometric adaptation: the SAR values have no spread (interquartile "
            f"range {iqr0:g} in training, {iqr1:g} in the new image)"
        )
    scale = iqr0 / iqr1
    return scale, m0 - scale * m1
