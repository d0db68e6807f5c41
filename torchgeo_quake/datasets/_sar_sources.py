"""The files of a SAR dataset: find them, and recognise the product of each.

Private helpers of :class:`~torchgeo_quake.datasets.CSKSAR`: :func:`find_files`
lists the files below the dataset's paths, :func:`file_of` maps a GDAL name back
to its file, and :func:`describe` tells, for an opened file, which product it
is (with the readers of :mod:`~torchgeo_quake.datasets.sar_products`) and how
to read it (:class:`Source`): scale, nodata, radiometry and georeferencing,
corrected from the attributes of COSMO-SkyMed HDF5 products where GDAL differs.
"""

from __future__ import annotations

import fnmatch
import os
import re
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import rasterio
from affine import Affine
from rasterio.crs import CRS as RioCRS
from rasterio.io import DatasetReader

from .capella_geotiff import capella_info
from .csk_hdf5 import CSKProduct
from .sar_metadata import Product, generic_metadata
from .umbra_geotiff import is_umbra, umbra_metadata

_SUBDATASET = re.compile(r'^HDF5:"(?P<file>.*)"://')


@dataclass(frozen=True)
class Source:
    """One file of the dataset, as read (see :func:`describe`).

    Args:
        path: GDAL name (file path or HDF5 subdataset)
        file: file system path
        product: kind of product
        radiometry: what the file holds after scaling
        scale: factor applied to valid digital numbers
        nodata: nodata value declared by the file
        width: width in pixels
        height: height in pixels
        crs: CRS used for the file
        transform: geotransform used for the file
        corrected: True if *crs*/*transform* differ from what GDAL reports
        metadata: acquisition metadata
    """

    path: str
    file: str
    product: Product
    radiometry: Literal["amplitude", "intensity"]
    scale: float
    nodata: float | None
    width: int
    height: int
    crs: RioCRS
    transform: Affine
    corrected: bool
    metadata: dict[str, Any] = field(default_factory=dict)


def find_files(
    paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
    globs: Iterable[str],
) -> list[str]:
    """File system paths of a dataset's files.

    Args:
        paths: one or more files or directories
        globs: patterns (case-insensitive) of the files searched for in
            directories

    Returns:
        Sorted paths: explicit files (and ``/vsi`` names) as given, plus files
        matching *globs* below directories.
    """
    if isinstance(paths, str | os.PathLike):
        entries: list[str | os.PathLike[str]] = [paths]
    else:
        entries = list(paths)
    found: set[str] = set()
    patterns = [p.lower() for p in globs]
    for entry in entries:
        path = os.fspath(entry)
        if os.path.isdir(path):
            for directory, _, names in os.walk(path):
                for name in names:
                    if any(fnmatch.fnmatch(name.lower(), p) for p in patterns):
                        found.add(os.path.join(directory, name))
        elif os.path.isfile(path) or path.startswith("/vsi"):
            found.add(path)
    return sorted(found)


def file_of(path: str) -> str:
    """File system path behind a GDAL name.

    Args:
        path: GDAL name (file path or ``HDF5:"<file>"://...`` subdataset)

    Returns:
        The file path.
    """
    match = _SUBDATASET.match(path)
    return match.group("file") if match else path


def _csk_georeferencing(
    filepath: str, crs: RioCRS, transform: Affine, product: CSKProduct
) -> tuple[RioCRS, Affine, bool]:
    """Georeferencing of a COSMO-SkyMed product: its attributes over GDAL's.

    Args:
        filepath: GDAL name of the file
        crs: CRS GDAL gives the file
        transform: geotransform GDAL gives the file
        product: what the attributes of the file say

    Returns:
        ``(crs, transform, corrected)``; *corrected* is True if either differs
        from what GDAL gives (each difference is a :class:`UserWarning`).
    """
    corrected = False
    if not transform.almost_equals(product.transform):
        warnings.warn(
            f"CSKSAR: GDAL {rasterio.__gdal_version__} georeferences "
            f"{filepath!r} with {tuple(transform)[:6]} but its attributes "
            f"give {tuple(product.transform)[:6]}; using the attributes "
            "('Column Spacing' is the pixel width, 'Line Spacing' its "
            "height; GDAL's HDF5 driver swaps them).",
            UserWarning,
            stacklevel=3,
        )
        transform, corrected = product.transform, True
    if product.crs is not None and crs == product.crs:
        crs = product.crs  # same CRS, labelled with its EPSG code
    elif product.crs is not None:
        warnings.warn(
            f"CSKSAR: GDAL gives {filepath!r} the CRS {crs} but its "
            f"attributes name {product.crs}; using the attributes.",
            UserWarning,
            stacklevel=3,
        )
        crs, corrected = product.crs, True
    return crs, transform, corrected


def _geotiff_product(
    file: str,
    tags: Mapping[str, str],
    input_radiometry: Literal["amplitude", "intensity"],
) -> tuple[Product, float, dict[str, Any], Literal["amplitude", "intensity"]]:
    """Recognise a GeoTIFF: Capella, Umbra, or any other.

    Args:
        file: file system path
        tags: GDAL metadata of the file (default domain)
        input_radiometry: what plain GeoTIFFs hold

    Returns:
        ``(product, scale, metadata, radiometry)``; Capella and Umbra products
        are amplitude, other GeoTIFFs *input_radiometry*.

    Raises:
        ValueError: If the file is a Capella product that is not geocoded.
    """
    capella = capella_info(os.path.basename(file), tags)
    if capella is not None:
        scale, metadata = capella
        return "capella", scale, metadata, "amplitude"
    if is_umbra(file):
        return "umbra", 1.0, umbra_metadata(file), "amplitude"
    metadata = generic_metadata(tags)
    metadata["quantity"] = input_radiometry
    return "geotiff", 1.0, metadata, input_radiometry


def describe(
    filepath: str,
    src: DatasetReader,
    csk: Mapping[str, CSKProduct],
    input_radiometry: Literal["amplitude", "intensity"],
) -> Source:
    """Recognise the product of an opened file and how to read it.

    Args:
        filepath: GDAL name of the file
        src: opened rasterio dataset
        csk: COSMO-SkyMed HDF5 products already read, by file system path
        input_radiometry: what plain GeoTIFFs hold

    Returns:
        The description of the file.

    Raises:
        ValueError: If the file is a Capella product that is not geocoded.
    """
    file = file_of(filepath)
    crs: RioCRS = src.crs
    transform: Affine = src.transform
    corrected = False
    radiometry: Literal["amplitude", "intensity"] = "amplitude"
    product: Product
    hdf5 = csk.get(file)
    if hdf5 is not None:
        product, scale, metadata = "csk", hdf5.scale, dict(hdf5.metadata)
        crs, transform, corrected = _csk_georeferencing(filepath, crs, transform, hdf5)
    else:
        product, scale, metadata, radiometry = _geotiff_product(
            file, src.tags(), input_radiometry
        )
    metadata["radiometry"] = radiometry
    return Source(
        path=filepath,
        file=file,
        product=product,
        radiometry=radiometry,
        scale=scale,
        nodata=None if src.nodata is None else float(src.nodata),
        width=src.width,
        height=src.height,
        crs=crs,
        transform=transform,
        corrected=corrected,
        metadata=metadata,
    )
