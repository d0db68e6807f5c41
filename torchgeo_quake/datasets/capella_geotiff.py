"""Capella Space GEO/GEC GeoTIFF products: recognise a file, read its scale.

A Capella product (``CAPELLA_<sat>_<mode>_<GEO|GEC>_<pol>_...``) holds uint16
amplitude; the product metadata is a JSON document in the TIFF tag
``TIFFTAG_IMAGEDESCRIPTION`` and ``collect.image.scale_factor`` turns digital
numbers into calibrated amplitude, ``beta0 = (DN * scale_factor)**2`` (Capella
SAR Products Format Specification). :func:`capella_info` recognises such a file
for :class:`~torchgeo_quake.datasets.CSKSAR`, which reads its pixels through
GDAL.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from .sar_metadata import _float, _iso_date, _text, empty_metadata

__all__ = ["capella_info"]


def _dig(document: Any, *keys: str) -> Any:
    """Follow nested dictionary keys.

    Args:
        document: nested dictionaries
        keys: keys to follow

    Returns:
        The value, or None if a key is missing.
    """
    for key in keys:
        if not isinstance(document, dict) or key not in document:
            return None
        document = document[key]
    return document


def _capella_document(tags: Mapping[str, str]) -> dict[str, Any] | None:
    """Capella product metadata embedded in ``TIFFTAG_IMAGEDESCRIPTION``.

    Args:
        tags: GDAL metadata of the GeoTIFF (default domain)

    Returns:
        The JSON document if it is Capella metadata (has a ``collect`` object),
        else None.
    """
    description = tags.get("TIFFTAG_IMAGEDESCRIPTION")
    if not description or not description.lstrip().startswith("{"):
        return None
    try:
        document = json.loads(description)
    except json.JSONDecodeError:
        return None
    if isinstance(document, dict) and isinstance(document.get("collect"), dict):
        return document
    return None


_CAPELLA_NAME = re.compile(
    r"^CAPELLA_(?P<sat>[^_]+)_(?P<mode>[^_]+)_(?P<type>[^_]+)_(?P<pol>[^_]+)_",
    re.IGNORECASE,
)


def capella_info(
    filename: str, tags: Mapping[str, str]
) -> tuple[float, dict[str, Any]] | None:
    """Recognise a Capella Space GeoTIFF and read its scale factor and metadata.

    Args:
        filename: base name of the file
        tags: GDAL metadata of the GeoTIFF (default domain)

    Returns:
        ``(scale_factor, metadata)``, or None if the file is not a Capella product.

    Raises:
        ValueError: If the product is not geocoded (SLC, SICD, CPHD).
    """
    document = _capella_document(tags)
    name = _CAPELLA_NAME.match(filename)
    if document is None and name is None:
        return None
    document = document or {}
    collect = document.get("collect", {})
    product_type = _text(document.get("product_type")) or (
        name.group("type") if name else None
    )
    if product_type is not None and product_type.upper() not in ("GEO", "GEC"):
        raise ValueError(
            f"CSKSAR: {filename!r} is a Capella {product_type} product, which is not "
            "geocoded. Use the GEO (terrain corrected) or GEC (ellipsoid corrected) "
            "product."
        )
    scale = _float(_dig(collect, "image", "scale_factor"))
    transmit = _text(_dig(collect, "radar", "transmit_polarization"))
    receive = _text(_dig(collect, "radar", "receive_polarization"))
    polarisation = (
        f"{transmit}{receive}".upper()
        if transmit and receive
        else (name.group("pol").upper() if name else None)
    )
    metadata = empty_metadata("capella", product_type.upper() if product_type else None)
    metadata.update(
        mission=_text(collect.get("platform")),
        mode=_text(collect.get("mode")) or (name.group("mode") if name else None),
        polarisation=polarisation,
        incidence_angle=_float(
            _dig(collect, "image", "center_pixel", "incidence_angle")
        ),
        look_side=_text(_dig(collect, "radar", "pointing")),
        orbit_direction=_text(_dig(collect, "state", "direction")),
        date=_iso_date(collect.get("start_timestamp")),
        quantity=_text(_dig(collect, "image", "radiometry")) or "amplitude",
        scale_factor=scale,
    )
    return (scale if scale is not None and scale > 0 else 1.0), metadata
