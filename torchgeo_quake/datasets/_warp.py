"""Putting raster files onto a dataset grid: aligned windows, warping, merging.

:class:`~torchgeo_quake.datasets.raster.CachedRasterDataset` reads its files on
its own grid (CRS, resolution and pixel lattice). These functions find the
smallest window of that grid covering a file, warp a file directly onto it (so
that no later step resamples again) and merge opened files over some bounds
into a float32 array with NaN nodata.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import rasterio.merge
import rasterio.warp
from affine import Affine
from pyproj import CRS
from rasterio.enums import Resampling
from rasterio.io import DatasetReader
from rasterio.vrt import WarpedVRT


def _grid_window(
    src: DatasetReader,
    crs: CRS,
    res: tuple[float, float],
    origin: tuple[float, float],
) -> tuple[Affine, int, int]:
    """Window of a grid, aligned with it, that covers a source.

    Args:
        src: opened source
        crs: CRS of the grid
        res: (xres, yres) of the grid
        origin: (xmin, ymax), a corner of the grid's pixel lattice

    Returns:
        (transform, width, height) of the smallest aligned grid covering *src*.
    """
    xres, yres = res
    xmin, ymax = origin
    if src.crs == crs:
        left, bottom, right, top = src.bounds
    else:
        left, bottom, right, top = rasterio.warp.transform_bounds(
            src.crs, crs, *src.bounds, densify_pts=21
        )
    col0 = math.floor((left - xmin) / xres + 1e-6)
    col1 = math.ceil((right - xmin) / xres - 1e-6)
    row0 = math.floor((ymax - top) / yres + 1e-6)
    row1 = math.ceil((ymax - bottom) / yres - 1e-6)
    transform = Affine(xres, 0.0, xmin + col0 * xres, 0.0, -yres, ymax - row0 * yres)
    return transform, max(1, col1 - col0), max(1, row1 - row0)


def _onto_grid(
    src: DatasetReader,
    crs: CRS,
    res: tuple[float, float],
    origin: tuple[float, float],
    resampling: Resampling,
) -> DatasetReader:
    """A source on a grid: itself if it lies on it, else a warped VRT.

    Args:
        src: opened source (closed when a VRT replaces it)
        crs: CRS of the grid
        res: (xres, yres) of the grid
        origin: (xmin, ymax), a corner of the grid's pixel lattice
        resampling: resampling of the warp

    Returns:
        *src*, or a :class:`~rasterio.vrt.WarpedVRT` of it on the smallest
        window of the grid that covers it.
    """
    transform, width, height = _grid_window(src, crs, res, origin)
    if (
        src.crs == crs
        and src.transform.almost_equals(transform)
        and (src.width, src.height) == (width, height)
    ):
        return src
    vrt = WarpedVRT(
        src,
        crs=crs,
        transform=transform,
        width=width,
        height=height,
        resampling=resampling,
    )
    src.close()
    return vrt


def _merge(
    handles: list[DatasetReader],
    bounds: tuple[float, float, float, float],
    res: tuple[float, float],
    indexes: Sequence[int] | None,
    resampling: Resampling,
) -> np.ndarray:
    """Merge opened files over *bounds* at *res* as float32 with NaN nodata.

    Args:
        handles: opened (warped) files
        bounds: (left, bottom, right, top) in the files' CRS
        res: (xres, yres)
        indexes: bands to read (None: all)
        resampling: resampling of the merge

    Returns:
        float32 array (bands, height, width).
    """
    dest, _ = rasterio.merge.merge(
        handles,
        bounds,
        res,
        indexes=indexes,
        resampling=resampling,
        nodata=np.nan,
        dtype="float32",
    )
    out: np.ndarray = dest.astype(np.float32, copy=False)
    return out
