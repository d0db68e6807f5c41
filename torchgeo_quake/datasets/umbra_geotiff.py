"""Umbra GEC GeoTIFF products: recognise a file, read its sidecar metadata.

An Umbra GEC product (``<name>_GEC.tif``, see :func:`is_umbra`) holds detected
amplitude on the WGS84 ellipsoid, usually in EPSG:4326; its acquisition
metadata are read from the sidecar ``<name>_METADATA.json`` or
``<name>.stac*.json`` when present (:func:`umbra_metadata`).
:class:`~torchgeo_quake.datasets.CSKSAR` reads its pixels through GDAL.
"""

from __future__ import annotations

import glob
import json
import os
import re
from typing import Any

from .sar_metadata import _float, _iso_date, _text, empty_metadata

__all__ = ["is_umbra", "umbra_metadata"]


def _sidecars(path: str) -> list[str]:
    """JSON metadata files that may accompany an Umbra GEC GeoTIFF.

    Args:
        path: GEC GeoTIFF path

    Returns:
        Existing candidate paths, most specific first.
    """
    directory, filename = os.path.split(path)
    stem = re.sub(r"_GEC\.tiff?$", "", filename, flags=re.IGNORECASE)
    candidates = [os.path.join(directory, f"{stem}_METADATA.json")]
    candidates += sorted(
        glob.glob(
            os.path.join(glob.escape(directory), f"{glob.escape(stem)}.stac*.json")
        )
    )
    return [c for c in candidates if os.path.isfile(c)]


def _find_key(document: Any, names: tuple[str, ...]) -> Any:
    """Depth-first search for the first of *names* in nested dictionaries/lists.

    Keys are compared case-insensitively and without STAC prefixes
    (``sar:polarizations`` matches ``polarizations``).

    Args:
        document: parsed JSON
        names: key names to look for, in order of preference

    Returns:
        The value of the first key found, or None.
    """
    wanted = [n.lower() for n in names]
    stack = [document]
    found: dict[str, Any] = {}
    while stack:
        item = stack.pop(0)
        if isinstance(item, dict):
            for key, value in item.items():
                short = str(key).split(":")[-1].lower()
                if short in wanted and short not in found:
                    found[short] = value
                if isinstance(value, dict | list):
                    stack.append(value)
        elif isinstance(item, list):
            stack.extend(item)
    for name in wanted:
        if name in found:
            return found[name]
    return None


def is_umbra(path: str) -> bool:
    """Whether a GeoTIFF is an Umbra GEC product.

    The file name must end with ``_GEC.tif`` and either contain ``UMBRA`` (as in
    Umbra's open data, ``<date>_UMBRA-<nn>_GEC.tif``) or come with a JSON sidecar
    that mentions Umbra.

    Args:
        path: GeoTIFF path

    Returns:
        True for Umbra GEC products.
    """
    name = os.path.basename(path)
    if not re.search(r"_GEC\.tiff?$", name, re.IGNORECASE):
        return False
    if "umbra" in name.lower():
        return True
    for sidecar in _sidecars(path):
        try:
            with open(sidecar, encoding="utf-8") as file:
                if "umbra" in file.read().lower():
                    return True
        except OSError:
            continue
    return False


def umbra_metadata(path: str) -> dict[str, Any]:
    """Acquisition metadata of an Umbra GEC GeoTIFF from its JSON sidecar.

    Reads ``<name>_METADATA.json`` (Umbra extended metadata: ``collects[0]`` with
    ``imagingMode``, ``polarizations``, ``angleIncidenceDegrees``,
    ``observationDirection``, ``satelliteTrack``, ``startAtUTC``) or a STAC item
    ``<name>.stac*.json`` (``sar:instrument_mode``, ``sar:polarizations``,
    ``view:incidence_angle``, ``sar:observation_direction``,
    ``sat:orbit_state``, ``datetime``). Missing sidecars leave the values None.

    Args:
        path: GEC GeoTIFF path

    Returns:
        Metadata dictionary (see :func:`empty_metadata`).
    """
    metadata = empty_metadata("umbra", "GEC")
    metadata["mission"] = "Umbra"
    for sidecar in _sidecars(path):
        try:
            with open(sidecar, encoding="utf-8") as file:
                document = json.load(file)
        except (OSError, json.JSONDecodeError):
            continue
        polarisations = _find_key(document, ("polarizations", "polarization"))
        if isinstance(polarisations, list):
            polarisations = "+".join(str(p) for p in polarisations)
        satellite = _find_key(document, ("umbraSatelliteName", "platform", "satellite"))
        metadata.update(
            mission=_text(satellite) or "Umbra",
            mode=_text(_find_key(document, ("imagingMode", "instrument_mode"))),
            polarisation=_text(polarisations),
            incidence_angle=_float(
                _find_key(document, ("angleIncidenceDegrees", "incidence_angle"))
            ),
            look_side=_text(
                _find_key(document, ("observationDirection", "observation_direction"))
            ),
            orbit_direction=_text(
                _find_key(document, ("satelliteTrack", "orbit_state"))
            ),
            date=_iso_date(
                _find_key(document, ("startAtUTC", "datetime", "start_datetime"))
            ),
        )
        break
    metadata["quantity"] = "amplitude"
    return metadata
