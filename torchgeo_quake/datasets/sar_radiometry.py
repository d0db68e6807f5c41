"""Radiometry of SAR images: plausibility checks, conversions and the dB floor.

:class:`~torchgeo_quake.datasets.CSKSAR` holds amplitude or intensity (as the
files declare) and returns amplitude, intensity or dB (:data:`Radiometry`).
Values a SAR amplitude or intensity cannot take are not passed on silently:
more than :data:`MAX_NEGATIVE_SHARE` negative pixels (a dB image, or an
undeclared negative nodata value) or values above :data:`MAX_LINEAR_VALUE` are
an error; fewer negative pixels are masked. In dB, values are floored at the
:data:`DB_FLOOR_PERCENTILE` percentile of the valid dB values, or at
:data:`DEFAULT_DB_FLOOR` when there is none. The private helpers of this module
do the checks and conversions for the dataset.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
from rasterio.enums import Resampling
from rasterio.io import DatasetReader
from rasterio.windows import Window

__all__ = [
    "DB_FLOOR_PERCENTILE",
    "DEFAULT_DB_FLOOR",
    "MAX_LINEAR_VALUE",
    "MAX_NEGATIVE_SHARE",
    "Radiometry",
]

#: Radiometric forms the dataset can return.
Radiometry = Literal["amplitude", "intensity", "db"]

#: dB floor used when no valid pixel is available to estimate one.
DEFAULT_DB_FLOOR = -30.0

#: Percentile of the valid dB values used as the automatic dB floor.
DB_FLOOR_PERCENTILE = 0.1

#: Largest plausible amplitude or intensity value; larger values are an error.
MAX_LINEAR_VALUE = 1e10

#: Share of negative pixels (among the valid, non-zero ones) above which an image
#: declared amplitude or intensity is an error (it looks like dB already). Fewer
#: negative pixels (interpolation artefacts of some geocoders) are masked and
#: counted in a warning.
MAX_NEGATIVE_SHARE = 0.1


def _linear_problem(values: np.ndarray, radiometry: str) -> str | None:
    """Why the values of a file cannot be the linear radiometry it declares.

    Args:
        values: pixel values after scaling (NaN or 0 = nodata)
        radiometry: ``"amplitude"`` or ``"intensity"``

    Returns:
        The problem, for an error message, or None if the values are plausible.
    """
    valid = values[np.isfinite(values) & (values != 0)]
    if valid.size == 0:
        return None
    high = float(valid.max())
    if high > MAX_LINEAR_VALUE:
        return (
            f"holds values up to {high:.3g}, above {MAX_LINEAR_VALUE:.0e}, which is "
            f"not a plausible SAR {radiometry}: check the scale factor of the "
            "product, or re-export the image"
        )
    negative = valid[valid < 0]
    if negative.size <= MAX_NEGATIVE_SHARE * valid.size:
        return None
    share = negative.size / valid.size
    common, count = np.unique(negative, return_counts=True)
    mode = float(common[np.argmax(count)])
    if count.max() >= 0.9 * negative.size:
        return (
            f"has {negative.size} pixels ({share:.0%} of the valid ones) equal to "
            f"{mode:g}, probably an undeclared nodata value: declare it (e.g. "
            f"`gdal_edit.py -a_nodata {mode:g} <file>`)"
        )
    return (
        f"holds {negative.size} negative pixels ({share:.0%} of the valid ones, "
        f"down to {float(negative.min()):.3g}), impossible for a SAR {radiometry}: "
        "the image looks like dB already. Pass the linear image (amplitude "
        "10**(dB/20), intensity 10**(dB/10)), not a dB one"
    )


def _centre_window(src: DatasetReader) -> Window:
    """Window of (at most) 512 × 512 pixels at the centre of a raster.

    Args:
        src: opened dataset

    Returns:
        The window, clipped to the raster.
    """
    return Window(
        max(0, src.width // 2 - 256),
        max(0, src.height // 2 - 256),
        min(512, src.width),
        min(512, src.height),
    )


def _has_valid_pixel(src: DatasetReader) -> bool:
    """Whether band 1 of *src* holds at least one positive, finite, non-nodata pixel.

    A 512-pixel window at the centre answers quickly for ordinary images, then a
    decimated read of the whole band; only when both find nothing is the band
    scanned block by block.

    Args:
        src: opened dataset

    Returns:
        True if some pixel is valid.
    """
    nodata = src.nodata

    def valid(array: np.ndarray) -> bool:
        with np.errstate(invalid="ignore"):
            mask = (array > 0) & np.isfinite(array)
        if nodata is not None and not math.isnan(nodata):
            mask &= array != nodata
        return bool(mask.any())

    if valid(src.read(1, window=_centre_window(src))):
        return True
    step = max(1, math.ceil(max(src.height, src.width) / 512))
    shape = (math.ceil(src.height / step), math.ceil(src.width / step))
    if valid(src.read(1, out_shape=shape, resampling=Resampling.nearest)):
        return True
    return any(valid(src.read(1, window=window)) for _, window in src.block_windows(1))


def _convert(
    array: np.ndarray,
    held: Literal["amplitude", "intensity"],
    radiometry: Radiometry,
) -> np.ndarray:
    """Mask non-positive pixels and convert from *held* to *radiometry*.

    Args:
        array: float32 array in the *held* radiometry, NaN = nodata
        held: radiometry of *array*
        radiometry: radiometry to return

    Returns:
        A new float32 array in *radiometry*, NaN where the input is not
        positive or is nodata.
    """
    out = np.array(array, dtype=np.float32, copy=True)
    with np.errstate(invalid="ignore"):
        out[~(out > 0)] = np.nan
    if held == "amplitude":
        if radiometry == "intensity":
            np.square(out, out=out)
        elif radiometry == "db":
            np.log10(out, out=out)
            out *= 20.0
    else:
        if radiometry == "amplitude":
            np.sqrt(out, out=out)
        elif radiometry == "db":
            np.log10(out, out=out)
            out *= 10.0
    return out


def _to_db(values: np.ndarray, radiometry: Radiometry) -> np.ndarray:
    """Convert amplitude or intensity values to dB (non-positive → NaN).

    Args:
        values: array in *radiometry*
        radiometry: radiometry of *values*

    Returns:
        float array in dB.
    """
    if radiometry == "db":
        return values
    factor = 20.0 if radiometry == "amplitude" else 10.0
    with np.errstate(divide="ignore", invalid="ignore"):
        positive = np.where(values > 0, values, np.nan)
        return factor * np.log10(positive)


def _db_floor_of(values: np.ndarray) -> float:
    """Automatic dB floor of a set of dB values.

    Args:
        values: one-dimensional dB values, NaN = nodata

    Returns:
        The :data:`DB_FLOOR_PERCENTILE` percentile of the finite values
        (of at most about 2 million of them, evenly strided), or
        :data:`DEFAULT_DB_FLOOR` if none is finite.
    """
    valid = values[np.isfinite(values)]
    if valid.size == 0:
        return DEFAULT_DB_FLOOR
    step = max(1, valid.size // 2_000_000)
    return float(np.percentile(valid[::step], DB_FLOOR_PERCENTILE))
