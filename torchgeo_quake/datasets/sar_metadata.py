"""Acquisition metadata of SAR products: the common dictionary and its values.

Every product :class:`~torchgeo_quake.datasets.CSKSAR` reads describes its
acquisition with the same keys (:func:`empty_metadata`); the product readers
(:mod:`~torchgeo_quake.datasets.csk_hdf5`,
:mod:`~torchgeo_quake.datasets.capella_geotiff`,
:mod:`~torchgeo_quake.datasets.umbra_geotiff`) fill them from their own
attributes with the parsers of this module. **Any other GeoTIFF** holds
amplitude or intensity as the user declares; its metadata are read from GDAL
tags such as ``MISSION``, ``MODE``, ``POLARISATION``, ``INCIDENCE_ANGLE``,
``LOOK_SIDE``, ``ORBIT_DIRECTION`` and ``DATE`` (the tags written by this
project's scene simulator) by :func:`generic_metadata`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any, Literal

__all__ = ["GENERIC_TAGS", "Product", "empty_metadata", "generic_metadata"]

#: Kinds of products :class:`~torchgeo_quake.datasets.CSKSAR` recognises.
Product = Literal["csk", "capella", "umbra", "geotiff"]

#: GDAL tag names (upper case) read by :func:`generic_metadata`, per key.
GENERIC_TAGS: dict[str, tuple[str, ...]] = {
    "mission": ("MISSION", "SATELLITE", "PLATFORM", "SENSOR"),
    "mode": ("MODE", "ACQUISITION_MODE", "BEAM_MODE"),
    "polarisation": ("POLARISATION", "POLARIZATION", "POL"),
    "incidence_angle": ("INCIDENCE_ANGLE", "INCIDENCE"),
    "look_side": ("LOOK_SIDE", "ANTENNA_POINTING"),
    "orbit_direction": ("ORBIT_DIRECTION", "PASS", "ORBIT_STATE"),
    "date": ("DATE", "ACQUISITION_DATE", "DATETIME", "TIFFTAG_DATETIME"),
}


def _float(value: Any) -> float | None:
    """Parse a number, tolerating strings and missing values.

    Args:
        value: number, numeric string, or None

    Returns:
        The float, or None if *value* is not a finite number.
    """
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _text(value: Any) -> str | None:
    """Normalise a metadata string.

    Args:
        value: string-like value or None

    Returns:
        The stripped string, or None if empty or missing.
    """
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _iso_date(value: Any) -> str | None:
    """Normalise an acquisition time stamp to ISO 8601 (``YYYY-MM-DDTHH:MM:SS``).

    Accepts ``2023-02-25 15:30:00.123456789``, ``2023-02-25T15:30:00Z``,
    ``2023:02:25 15:30:00`` (TIFF) and plain dates.

    Args:
        value: time stamp string or None

    Returns:
        ISO 8601 string (seconds precision), or the text as given if it is not
        recognised, or None if missing.
    """
    text = _text(value)
    if text is None:
        return None
    match = re.match(
        r"^(\d{4})[-:](\d{2})[-:](\d{2})(?:[T ](\d{2}):(\d{2}):(\d{2}))?", text
    )
    if match is None:
        return text
    year, month, day, hour, minute, second = match.groups()
    if hour is None:
        return f"{year}-{month}-{day}"
    return f"{year}-{month}-{day}T{hour}:{minute}:{second}"


def empty_metadata(product: Product, level: str | None) -> dict[str, Any]:
    """Metadata dictionary with every documented key set to None.

    Args:
        product: product kind
        level: processing level / product type, if known

    Returns:
        Dictionary with keys ``product``, ``level``, ``mission``, ``mode``,
        ``polarisation``, ``incidence_angle``, ``look_side``, ``orbit_direction``,
        ``date``, ``quantity``.
    """
    return {
        "product": product,
        "level": level,
        "mission": None,
        "mode": None,
        "polarisation": None,
        "incidence_angle": None,
        "look_side": None,
        "orbit_direction": None,
        "date": None,
        "quantity": None,
    }


def generic_metadata(tags: Mapping[str, str]) -> dict[str, Any]:
    """Acquisition metadata of a plain GeoTIFF from its GDAL tags.

    Args:
        tags: GDAL metadata of the file (default domain)

    Returns:
        Metadata dictionary (see :func:`empty_metadata`); keys whose tags
        (:data:`GENERIC_TAGS`) are absent stay None.
    """
    upper = {key.upper(): value for key, value in tags.items()}
    metadata = empty_metadata("geotiff", None)
    for key, names in GENERIC_TAGS.items():
        value = next((upper[n] for n in names if n in upper), None)
        if key == "incidence_angle":
            metadata[key] = _float(value)
        elif key == "date":
            metadata[key] = _iso_date(value)
        else:
            metadata[key] = _text(value)
    return metadata
