"""COSMO-SkyMed HDF5 products: validate a file, read its scale and metadata.

:class:`~torchgeo_quake.datasets.CSKSAR` reads COSMO-SkyMed levels L1C (GEC) and
L1D (GTC) natively through GDAL's HDF5 driver; this module holds what it needs
to know about the product around that. The root attribute ``Mission ID`` is
``"CSK"``, ``Product Type`` starts with the product code (``RAW``, ``SCS``,
``DGM``, ``GEC``, ``GTC`` for levels L0, L1A, L1B, L1C, L1D). The image of a
detected product is the two-dimensional dataset ``S01/SBI`` (``S01/MBI`` or
``MBI`` in some products) holding amplitude digital numbers (float32 or
uint16); the L1A ``SBI`` is ``(rows, cols, 2)`` int16 I/Q. GDAL's HDF5 driver
georeferences L1C/L1D subdatasets from the root attributes ``Projection ID``,
``Map Projection Centre``, ``Map Projection Scale Factor``, ``Map Projection
False East-North`` and from the image attributes ``Top Left East-North``,
``Line Spacing`` and ``Column Spacing``. Following the COSMO-SkyMed SAR
Products Handbook (and ESA SNAP's calibrator), the amplitude is ``DN / F`` with
``F`` the root attribute ``Rescaling Factor``, and
``sigma0 = (DN / F)**2 * Rref**(2 * exp) * sin(theta_ref) / K`` where ``Rref``,
``exp`` and ``theta_ref`` are the root attributes ``Reference Slant Range``,
``Reference Slant Range Exponent`` and ``Reference Incidence Angle`` (each
factor only when the matching ``... Compensation Geometry`` attribute is not
``NONE``) and ``K`` is the ``S01`` attribute ``Calibration Constant`` (only when
``Calibration Constant Compensation Flag`` is 0).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import h5py
import numpy as np
from affine import Affine
from rasterio.crs import CRS

from .sar_metadata import _float, _iso_date, _text, empty_metadata

__all__ = [
    "CSK_IMAGE_DATASETS",
    "CSK_LEVELS",
    "HDF5_EXTENSIONS",
    "CSKProduct",
    "csk_image_dataset",
    "csk_subdataset",
    "is_hdf5_path",
    "read_csk",
]

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


#: Root attributes a geocoded product needs for its georeferencing.
_CSK_ROOT_GEOREFERENCING = (
    "Projection ID",
    "Map Projection Centre",
    "Map Projection Scale Factor",
    "Map Projection False East-North",
)

#: Image attributes a geocoded product needs for its georeferencing.
_CSK_IMAGE_GEOREFERENCING = ("Top Left East-North", "Line Spacing", "Column Spacing")


def _csk_level(path: str, root: Mapping[str, Any]) -> tuple[str, str, str]:
    """Check that a file is a geocoded COSMO-SkyMed product.

    Args:
        path: file path (for error messages)
        root: root attributes

    Returns:
        ``(mission, product_type, level)``, level ``"L1C"`` or ``"L1D"``.

    Raises:
        ValueError: If the file is not a COSMO-SkyMed product, or its product
            type is unknown or not geocoded (levels L0, L1A, L1B).
    """
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
    return mission, product_type, level


def _csk_image(path: str, handle: Any) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """Find the two-dimensional image dataset of a product.

    Args:
        path: file path (for error messages)
        handle: open h5py file

    Returns:
        ``(dataset, image attributes, swath attributes)``; the swath is the
        group above the dataset (``S01`` for a top-level ``MBI``), its
        attributes empty when the file has no such group.

    Raises:
        ValueError: If the file holds none of :data:`CSK_IMAGE_DATASETS`, or the
            image is not two-dimensional.
    """
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
    return dataset, image_attrs, swath


def _csk_transform(
    path: str,
    root: Mapping[str, Any],
    dataset: str,
    image_attrs: Mapping[str, Any],
) -> Affine:
    """Geotransform of a product from its georeferencing attributes.

    Args:
        path: file path (for error messages)
        root: root attributes
        dataset: image dataset inside the file (for error messages)
        image_attrs: attributes of the image dataset

    Returns:
        The geotransform: columns run east (x), lines run south (y).

    Raises:
        ValueError: If a georeferencing attribute is missing or not valid.
    """
    missing = [name for name in _CSK_ROOT_GEOREFERENCING if name not in root] + [
        f"{dataset}/{name}"
        for name in _CSK_IMAGE_GEOREFERENCING
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
    return Affine(column_spacing, 0.0, top_left[0], 0.0, -line_spacing, top_left[1])


def _csk_scale(
    path: str,
    root: Mapping[str, Any],
    swath: Mapping[str, Any],
    calibrate: bool,
) -> tuple[float, float | None, str]:
    """Factor that turns the digital numbers of a product into amplitude.

    Args:
        path: file path (for error messages)
        root: root attributes
        swath: attributes of the ``S01`` group
        calibrate: if True, the factor yields sigma-nought amplitude

    Returns:
        ``(scale, rescaling factor or None, quantity)``.

    Raises:
        ValueError: If ``Rescaling Factor`` is not positive, or (with
            *calibrate*) a calibration attribute is missing.
    """
    rescaling = _float(root.get("Rescaling Factor"))
    if rescaling is not None and rescaling <= 0:
        raise _csk_error(path, f"'Rescaling Factor' is {rescaling}; expected > 0.")
    scale = 1.0 / rescaling if rescaling is not None else 1.0
    quantity = "amplitude DN / Rescaling Factor"
    if calibrate:
        scale *= math.sqrt(_csk_calibration(path, root, swath))
        quantity = "sigma0"
    return scale, rescaling, quantity


def _csk_metadata(
    root: Mapping[str, Any],
    swath: Mapping[str, Any],
    image_attrs: Mapping[str, Any],
    mission: str,
    product_type: str,
    level: str,
) -> dict[str, Any]:
    """Acquisition metadata of a product.

    Args:
        root: root attributes
        swath: attributes of the ``S01`` group
        image_attrs: attributes of the image dataset
        mission: root attribute ``Mission ID``
        product_type: root attribute ``Product Type``
        level: processing level

    Returns:
        Metadata dictionary (see :func:`empty_metadata`) with ``quantity``
        still None, and the extra key ``product_type``.
    """
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
        product_type=product_type,
    )
    return metadata


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
        mission, product_type, level = _csk_level(path, root)
        dataset, image_attrs, swath = _csk_image(path, handle)
        transform = _csk_transform(path, root, dataset, image_attrs)
        scale, rescaling, quantity = _csk_scale(path, root, swath, calibrate)
        metadata = _csk_metadata(root, swath, image_attrs, mission, product_type, level)
        metadata.update(quantity=quantity, rescaling_factor=rescaling)
        return CSKProduct(
            path=path,
            dataset=dataset,
            level=level,
            scale=scale,
            crs=_csk_crs(root),
            transform=transform,
            metadata=metadata,
        )
