"""Recognise SAR products and read their radiometric scaling and acquisition metadata.

:class:`~torchgeo_quake.datasets.CSKSAR` reads pixels through GDAL; this module
holds the product-specific knowledge it needs around that:

* **COSMO-SkyMed HDF5** (levels L1C/GEC and L1D/GTC). The root attribute
  ``Mission ID`` is ``"CSK"``, ``Product Type`` starts with the product code
  (``RAW``, ``SCS``, ``DGM``, ``GEC``, ``GTC`` for levels L0, L1A, L1B, L1C, L1D).
  The image of a detected product is the two-dimensional dataset ``S01/SBI``
  (``S01/MBI`` or ``MBI`` in some products) holding amplitude digital numbers
  (float32 or uint16); the L1A ``SBI`` is ``(rows, cols, 2)`` int16 I/Q. GDAL's
  HDF5 driver georeferences L1C/L1D subdatasets from the root attributes
  ``Projection ID``, ``Map Projection Centre``, ``Map Projection Scale Factor``,
  ``Map Projection False East-North`` and from the image attributes
  ``Top Left East-North``, ``Line Spacing`` and ``Column Spacing``. Following the
  COSMO-SkyMed SAR Products Handbook (and ESA SNAP's calibrator), the amplitude
  is ``DN / F`` with ``F`` the root attribute ``Rescaling Factor``, and
  ``sigma0 = (DN / F)**2 * Rref**(2 * exp) * sin(theta_ref) / K`` where ``Rref``,
  ``exp`` and ``theta_ref`` are the root attributes ``Reference Slant Range``,
  ``Reference Slant Range Exponent`` and ``Reference Incidence Angle`` (each
  factor only when the matching ``... Compensation Geometry`` attribute is not
  ``NONE``) and ``K`` is the ``S01`` attribute ``Calibration Constant`` (only when
  ``Calibration Constant Compensation Flag`` is 0).
* **Capella Space GEO/GEC GeoTIFF** (``CAPELLA_<sat>_<mode>_<GEO|GEC>_<pol>_...``):
  uint16 amplitude; the product metadata is a JSON document in the TIFF tag
  ``TIFFTAG_IMAGEDESCRIPTION`` and ``collect.image.scale_factor`` turns digital
  numbers into calibrated amplitude, ``beta0 = (DN * scale_factor)**2``
  (Capella SAR Products Format Specification).
* **Umbra GEC GeoTIFF** (``<name>_GEC.tif``, see :func:`is_umbra`): detected
  amplitude on the WGS84
  ellipsoid, usually in EPSG:4326; acquisition metadata are read from the sidecar
  ``<name>_METADATA.json`` or ``<name>.stac*.json`` when present.
* **Any other GeoTIFF**: amplitude or intensity as the user declares; metadata
  from GDAL tags such as ``MISSION``, ``MODE``, ``POLARISATION``,
  ``INCIDENCE_ANGLE``, ``LOOK_SIDE``, ``ORBIT_DIRECTION`` and ``DATE`` (the tags
  written by this project's scene simulator).
"""

from __future__ import annotations

import glob
import json
import math
import os
import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import h5py
import numpy as np
from affine import Affine
from rasterio.crs import CRS

__all__ = [
    "CSK_IMAGE_DATASETS",
    "CSK_LEVELS",
    "GENERIC_TAGS",
    "CSKProduct",
    "Product",
    "capella_info",
    "csk_image_dataset",
    "csk_subdataset",
    "empty_metadata",
    "generic_metadata",
    "is_hdf5_path",
    "is_umbra",
    "read_csk",
    "source_vrt",
    "umbra_metadata",
]

#: Kinds of products :class:`~torchgeo_quake.datasets.CSKSAR` recognises.
Product = Literal["csk", "capella", "umbra", "geotiff"]

#: Processing level of each COSMO-SkyMed product code.
CSK_LEVELS = {"RAW": "L0", "SCS": "L1A", "DGM": "L1B", "GEC": "L1C", "GTC": "L1D"}

#: HDF5 datasets holding the image of a detected COSMO-SkyMed product, in the
#: order they are looked for (``SBI``: single-beam image, ``MBI``: multi-beam).
CSK_IMAGE_DATASETS = ("S01/SBI", "S01/MBI", "MBI")

#: File name extensions of HDF5 files (lower case).
HDF5_EXTENSIONS = (".h5", ".hdf5", ".he5")


def is_hdf5_path(path: str) -> bool:
    """Whether *path* names an HDF5 file (by extension).

    Args:
        path: file path

    Returns:
        True for ``.h5``, ``.hdf5`` and ``.he5`` files.
    """
    return path.lower().endswith(HDF5_EXTENSIONS)


def csk_subdataset(path: str, dataset: str) -> str:
    """GDAL name of an HDF5 dataset, as GDAL's HDF5 driver lists subdatasets.

    Args:
        path: HDF5 file path
        dataset: dataset path inside the file, e.g. ``"S01/SBI"``

    Returns:
        ``HDF5:"<path>"://<dataset>``
    """
    return f'HDF5:"{path}"://{dataset}'


def _value(raw: Any) -> Any:
    """Convert an HDF5 attribute value into a plain Python value.

    Args:
        raw: value as returned by h5py

    Returns:
        ``str`` for strings, ``float``/``int`` for one-element numbers, ``list`` of
        floats for longer arrays.
    """
    if isinstance(raw, bytes | np.bytes_):
        return raw.decode("utf-8", "replace").strip("\x00 ").strip()
    if isinstance(raw, str):
        return raw.strip()
    array = np.asarray(raw)
    if array.dtype.kind in "SO":
        items = [_value(item) for item in array.ravel()]
        return items[0] if len(items) == 1 else items
    if array.size == 1:
        return array.ravel()[0].item()
    return [float(v) for v in array.ravel()]


def _attrs(obj: Any) -> dict[str, Any]:
    """All attributes of an HDF5 object as plain Python values.

    Args:
        obj: h5py group or dataset

    Returns:
        Mapping from attribute name to value.
    """
    return {str(name): _value(obj.attrs[name]) for name in obj.attrs}


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


@dataclass(frozen=True)
class CSKProduct:
    """What :func:`read_csk` learns from a COSMO-SkyMed HDF5 file.

    Args:
        path: file path
        dataset: image dataset inside the file (e.g. ``"S01/SBI"``)
        level: processing level (``"L1C"`` or ``"L1D"``)
        scale: factor that turns digital numbers into amplitude (``1 / F``, times
            the square root of the calibration factor when calibrating)
        crs: CRS derived from the attributes (UTM zone), or None if the
            attributes do not name one
        transform: geotransform derived from the attributes
        metadata: acquisition metadata (see :func:`empty_metadata`)
    """

    path: str
    dataset: str
    level: str
    scale: float
    crs: CRS | None
    transform: Affine
    metadata: dict[str, Any] = field(default_factory=dict)


def _csk_error(path: str, message: str) -> ValueError:
    """Build a ValueError about a COSMO-SkyMed file.

    Args:
        path: file path
        message: what is wrong and what to do

    Returns:
        The exception.
    """
    return ValueError(f"CSKSAR: {path!r}: {message}")


def _find_image(handle: Any) -> str | None:
    """Path of the image dataset of a COSMO-SkyMed product.

    Args:
        handle: open h5py file

    Returns:
        The first of :data:`CSK_IMAGE_DATASETS` present, or None.
    """
    for name in CSK_IMAGE_DATASETS:
        if name in handle and isinstance(handle[name], h5py.Dataset):
            return name
    return None


def csk_image_dataset(path: str) -> str | None:
    """Image dataset of a COSMO-SkyMed HDF5 file, without validating it.

    Args:
        path: HDF5 file path

    Returns:
        Dataset path (e.g. ``"S01/SBI"``), or None if the file cannot be read or
        holds none of :data:`CSK_IMAGE_DATASETS`.
    """
    try:
        with h5py.File(path, "r") as handle:
            return _find_image(handle)
    except OSError:
        return None


def _csk_calibration(
    path: str, root: Mapping[str, Any], swath: Mapping[str, Any]
) -> float:
    """Factor that turns ``(DN / F)**2`` into sigma nought.

    Args:
        path: file path (for error messages)
        root: root attributes
        swath: attributes of the ``S01`` group

    Returns:
        ``Rref**(2 exp) * sin(theta_ref) / K``, each factor only where the
        product flags say it applies.

    Raises:
        ValueError: If an attribute needed for the calibration is missing.
    """
    factor = 1.0
    spreading = _text(root.get("Range Spreading Loss Compensation Geometry"))
    if spreading is not None and spreading.upper() != "NONE":
        ref_range = _float(root.get("Reference Slant Range"))
        exponent = _float(root.get("Reference Slant Range Exponent"))
        if ref_range is None or exponent is None:
            raise _csk_error(
                path,
                "cannot calibrate: 'Reference Slant Range' or 'Reference Slant "
                "Range Exponent' is missing. Use calibrate=False.",
            )
        factor *= ref_range ** (2.0 * exponent)
    incidence = _text(root.get("Incidence Angle Compensation Geometry"))
    if incidence is not None and incidence.upper() != "NONE":
        ref_angle = _float(root.get("Reference Incidence Angle"))
        if ref_angle is None:
            raise _csk_error(
                path,
                "cannot calibrate: 'Reference Incidence Angle' is missing. Use "
                "calibrate=False.",
            )
        factor *= math.sin(math.radians(ref_angle))
    compensated = _float(root.get("Calibration Constant Compensation Flag"))
    if not compensated:
        constant = _float(swath.get("Calibration Constant"))
        if constant is None or constant <= 0:
            raise _csk_error(
                path,
                "cannot calibrate: the S01 attribute 'Calibration Constant' is "
                "missing or not positive. Use calibrate=False.",
            )
        factor /= constant
    return factor


def _csk_crs(root: Mapping[str, Any]) -> CRS | None:
    """UTM CRS named by the map projection attributes, if any.

    Args:
        root: root attributes

    Returns:
        WGS84 / UTM CRS of ``Map Projection Zone`` (southern hemisphere when the
        false northing is 10 000 km), or None for other projections or when the
        zone is not given.
    """
    projection = _text(root.get("Projection ID"))
    zone = _float(root.get("Map Projection Zone"))
    if projection is None or projection.upper() != "UTM" or zone is None:
        return None
    false_en = root.get("Map Projection False East-North")
    northing = false_en[1] if isinstance(false_en, list) and len(false_en) > 1 else 0
    south = (_float(northing) or 0.0) >= 5e6
    return CRS.from_epsg((32700 if south else 32600) + int(zone))


def read_csk(path: str, calibrate: bool = False) -> CSKProduct:
    """Validate a COSMO-SkyMed HDF5 product and read what the dataset needs.

    Args:
        path: HDF5 file path
        calibrate: if True, the returned scale yields sigma-nought amplitude
            (``sqrt(sigma0)``) instead of ``DN / F``

    Returns:
        The product description.

    Raises:
        ValueError: If the file is not a readable HDF5 file, is not a
            COSMO-SkyMed product, is not geocoded (levels L0, L1A, L1B), lacks
            its image or georeferencing attributes, or (with *calibrate*) lacks
            calibration attributes.
    """
    try:
        handle = h5py.File(path, "r")
    except OSError as err:
        raise _csk_error(
            path,
            f"cannot be opened as HDF5 ({err}). The file is corrupt or truncated; "
            "download it again.",
        ) from err
    with handle:
        root = _attrs(handle)
        mission = _text(root.get("Mission ID"))
        if mission is None or mission.upper() != "CSK":
            raise _csk_error(
                path,
                f"is an HDF5 file but not a COSMO-SkyMed product (root attribute "
                f"'Mission ID' is {mission!r}, expected 'CSK'). Only COSMO-SkyMed "
                "L1C (GEC) and L1D (GTC) HDF5 products are read; export other "
                "products to GeoTIFF.",
            )
        product_type = _text(root.get("Product Type")) or ""
        code = product_type[:3].upper()
        level = CSK_LEVELS.get(code)
        if level is None:
            raise _csk_error(
                path,
                f"unknown COSMO-SkyMed 'Product Type' {product_type!r}; expected "
                "GEC (L1C) or GTC (L1D).",
            )
        if level not in ("L1C", "L1D"):
            raise _csk_error(
                path,
                f"is a level {level} ({product_type}) product, which is not "
                "geocoded (slant or ground range geometry). Geocode it to GEC "
                "(L1C) or GTC (L1D) first, e.g. order the GEC/GTC product from "
                "ASI or run terrain correction in ESA SNAP and pass the GeoTIFF.",
            )
        dataset = _find_image(handle)
        if dataset is None:
            raise _csk_error(
                path,
                "holds none of the image datasets "
                f"{', '.join(CSK_IMAGE_DATASETS)}; the product is incomplete.",
            )
        image = handle[dataset]
        if image.ndim != 2:
            raise _csk_error(
                path,
                f"image dataset {dataset!r} has shape {image.shape}; a detected "
                "L1C/L1D product holds a (rows, columns) amplitude array.",
            )
        image_attrs = _attrs(image)
        swath_name = dataset.split("/")[0] if "/" in dataset else "S01"
        swath = _attrs(handle[swath_name]) if swath_name in handle else {}

        missing = [
            name
            for name in (
                "Projection ID",
                "Map Projection Centre",
                "Map Projection Scale Factor",
                "Map Projection False East-North",
            )
            if name not in root
        ] + [
            f"{dataset}/{name}"
            for name in ("Top Left East-North", "Line Spacing", "Column Spacing")
            if name not in image_attrs
        ]
        if missing:
            raise _csk_error(
                path,
                "lacks the georeferencing attributes "
                f"{', '.join(repr(m) for m in missing)} that a COSMO-SkyMed "
                "L1C/L1D product carries; the file is malformed.",
            )
        top_left = image_attrs["Top Left East-North"]
        line_spacing = _float(image_attrs["Line Spacing"])
        column_spacing = _float(image_attrs["Column Spacing"])
        if (
            not isinstance(top_left, list)
            or len(top_left) < 2
            or line_spacing is None
            or column_spacing is None
            or line_spacing <= 0
            or column_spacing <= 0
        ):
            raise _csk_error(
                path,
                "'Top Left East-North', 'Line Spacing' or 'Column Spacing' is "
                "not valid; the file is malformed.",
            )
        # Columns run east (x), lines run south (y).
        transform = Affine(
            column_spacing, 0.0, top_left[0], 0.0, -line_spacing, top_left[1]
        )

        rescaling = _float(root.get("Rescaling Factor"))
        if rescaling is not None and rescaling <= 0:
            raise _csk_error(path, f"'Rescaling Factor' is {rescaling}; expected > 0.")
        scale = 1.0 / rescaling if rescaling is not None else 1.0
        quantity = "amplitude DN / Rescaling Factor"
        if calibrate:
            scale *= math.sqrt(_csk_calibration(path, root, swath))
            quantity = "sigma0"

        metadata = empty_metadata("csk", level)
        satellite = _text(root.get("Satellite ID"))
        near = _float(image_attrs.get("Near Incidence Angle"))
        far = _float(image_attrs.get("Far Incidence Angle"))
        incidence = (
            (near + far) / 2
            if near is not None and far is not None
            else _float(root.get("Reference Incidence Angle"))
        )
        metadata.update(
            mission=f"{mission} ({satellite})" if satellite else mission,
            mode=_text(root.get("Acquisition Mode")),
            polarisation=_text(swath.get("Polarisation")),
            incidence_angle=incidence,
            look_side=_text(root.get("Look Side")),
            orbit_direction=_text(root.get("Orbit Direction")),
            date=_iso_date(root.get("Scene Sensing Start UTC")),
            quantity=quantity,
            product_type=product_type,
            rescaling_factor=rescaling,
        )
        return CSKProduct(
            path=path,
            dataset=dataset,
            level=level,
            scale=scale,
            crs=_csk_crs(root),
            transform=transform,
            metadata=metadata,
        )


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


def source_vrt(
    path: str,
    width: int,
    height: int,
    crs: CRS,
    transform: Affine,
    scale: float,
    nodata: float | None,
) -> str:
    """VRT (XML) that presents a single-band source as scaled float32 with 0 nodata.

    Source pixels equal to the source *nodata* are left at the VRT nodata value
    0, all others are multiplied by *scale*; zero pixels therefore stay nodata
    too. The georeferencing of the VRT is *crs* and *transform*, which lets the
    caller correct the georeferencing GDAL derives for a source.

    Args:
        path: GDAL name of the source (file path or subdataset)
        width: width of the source in pixels
        height: height of the source in pixels
        crs: CRS to declare
        transform: geotransform to declare
        scale: factor applied to valid source pixels
        nodata: nodata value of the source, if any

    Returns:
        The VRT document, to be passed to :func:`rasterio.open`.
    """
    root = ET.Element("VRTDataset", rasterXSize=str(width), rasterYSize=str(height))
    ET.SubElement(root, "SRS").text = crs.to_wkt()
    ET.SubElement(root, "GeoTransform").text = ", ".join(
        repr(float(v)) for v in transform.to_gdal()
    )
    band = ET.SubElement(root, "VRTRasterBand", dataType="Float32", band="1")
    ET.SubElement(band, "NoDataValue").text = "0"
    source = ET.SubElement(band, "ComplexSource")
    ET.SubElement(source, "SourceFilename", relativeToVRT="0").text = path
    ET.SubElement(source, "SourceBand").text = "1"
    if nodata is not None:
        ET.SubElement(source, "NODATA").text = (
            "nan" if math.isnan(nodata) else repr(float(nodata))
        )
    ET.SubElement(source, "ScaleRatio").text = repr(float(scale))
    return ET.tostring(root, encoding="unicode")
