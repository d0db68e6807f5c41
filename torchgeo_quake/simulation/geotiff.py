"""GeoTIFF output of the simulated rasters (SAR image and DSM).

Both are written the same way: one float32 band, UTM 37N, 256 × 256 tiles,
deflate compression with the floating-point predictor, a band description and
metadata tags.

.. versionadded:: 0.2
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import numpy as np
import numpy.typing as npt
import rasterio
from affine import Affine
from rasterio.crs import CRS

__all__ = ["write_geotiff"]


def write_geotiff(
    path: str | os.PathLike[str],
    band: npt.NDArray[np.float32],
    transform: Affine,
    *,
    nodata: float,
    description: str,
    tags: Mapping[str, str],
    extra_tags: Mapping[str, str] | None = None,
) -> None:
    """Write one band as a tiled, deflate-compressed float32 GeoTIFF (UTM 37N).

    Args:
        path: output file
        band: the values, shape (rows, cols)
        transform: affine transform of the grid in UTM 37N
        nodata: nodata value declared in the file
        description: description of the band
        tags: metadata tags
        extra_tags: further tags (a name also in *tags* is an error)

    Raises:
        TypeError: If *extra_tags* repeats a name of *tags*.

    .. versionadded:: 0.2
    """
    rows, cols = band.shape
    profile = {
        "driver": "GTiff",
        "width": cols,
        "height": rows,
        "count": 1,
        "dtype": "float32",
        "crs": CRS.from_epsg(32637),  # WGS 84 / UTM zone 37N
        "transform": transform,
        "nodata": nodata,
        "tiled": True,
        "blockxsize": 256,
        "blockysize": 256,
        "compress": "deflate",
        "predictor": 3,
    }
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(band, 1)
        dst.update_tags(**tags, **(extra_tags or {}))
        dst.set_band_description(1, description)
