"""Recognise SAR products and read their radiometric scaling and acquisition metadata.

:class:`~torchgeo_quake.datasets.CSKSAR` reads pixels through GDAL; the
product-specific knowledge it needs around that lives in one module per product,
gathered here:

* **COSMO-SkyMed HDF5** (levels L1C/GEC and L1D/GTC):
  :mod:`~torchgeo_quake.datasets.csk_hdf5` (:func:`read_csk`: image dataset,
  georeferencing, ``Rescaling Factor`` and sigma-nought calibration).
* **Capella Space GEO/GEC GeoTIFF**:
  :mod:`~torchgeo_quake.datasets.capella_geotiff` (:func:`capella_info`: the
  JSON of ``TIFFTAG_IMAGEDESCRIPTION`` and its ``scale_factor``).
* **Umbra GEC GeoTIFF**: :mod:`~torchgeo_quake.datasets.umbra_geotiff`
  (:func:`is_umbra`, :func:`umbra_metadata` from the JSON sidecar).
* **Any other GeoTIFF**: amplitude or intensity as the user declares, metadata
  from GDAL tags (:mod:`~torchgeo_quake.datasets.sar_metadata`, which also holds
  the metadata dictionary every product fills, :func:`empty_metadata`).

Whatever the product, the scale it declares is applied by :func:`source_vrt`,
defined here: a VRT that presents the file as scaled float32 with 0 nodata.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET

from affine import Affine
from rasterio.crs import CRS

from .capella_geotiff import capella_info
from .csk_hdf5 import (
    CSK_IMAGE_DATASETS,
    CSK_LEVELS,
    CSKProduct,
    csk_image_dataset,
    csk_subdataset,
    is_hdf5_path,
    read_csk,
)
from .csk_hdf5 import HDF5_EXTENSIONS as HDF5_EXTENSIONS
from .sar_metadata import GENERIC_TAGS, Product, empty_metadata, generic_metadata
from .umbra_geotiff import is_umbra, umbra_metadata

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
