"""The post-event SAR image under the maps, downsampled (private).

The map's own image gives the reader geographic context with no network: the
streets, open spaces and large structures show in it. :func:`sar_underlay`
reads the image decimated (GDAL reads only the lines and blocks it needs),
stretches it for display (logarithm of a linear image, 2nd to 98th percentile)
and resamples it onto a grid of at most *size* pixels in the CRS of a map:
Web Mercator for ``map.html`` (where :func:`png_data_uri` embeds it in the
page) and the metric CRS of ``overview.png``.
"""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import rasterio
from pyproj import CRS
from rasterio.transform import from_bounds
from rasterio.warp import Resampling, reproject, transform_bounds
from rasterio.windows import Window
from rasterio.windows import from_bounds as window_from_bounds

#: Largest side of an underlay, in pixels.
UNDERLAY_SIZE = 1024


@dataclass(frozen=True)
class Underlay:
    """A display image of the SAR image over a map's extent."""

    #: Brightness from 0 to 1, NaN outside the image or on nodata, (rows, cols).
    image: npt.NDArray[np.float32]
    #: ``(xmin, ymin, xmax, ymax)`` of :attr:`image` in the map's CRS.
    bounds: tuple[float, float, float, float]


def _stretch(values: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Brightness of SAR values for display.

    Args:
        values: the image (NaN: no data), linear or in dB

    Returns:
        Values from 0 to 1 (NaN kept): the logarithm of a linear image (no
        negative value) or the dB values, stretched from their 2nd to 98th
        percentile.
    """
    valid = np.isfinite(values)
    if not valid.any():
        return values
    if values[valid].min() >= 0:  # linear amplitude or intensity
        values = np.where(valid & (values > 0), values, np.nan)
        values = np.log10(values)
        valid = np.isfinite(values)
        if not valid.any():
            return values
    low, high = np.percentile(values[valid], [2.0, 98.0])
    scale = high - low if high > low else 1.0
    stretched: npt.NDArray[np.float64] = np.clip((values - low) / scale, 0.0, 1.0)
    return stretched


def sar_underlay(
    path: Path,
    crs: CRS,
    bounds: tuple[float, float, float, float],
    size: int = UNDERLAY_SIZE,
) -> Underlay | None:
    """The SAR image over an extent, downsampled and stretched for display.

    Args:
        path: the SAR image (first band)
        crs: CRS of the map
        bounds: ``(xmin, ymin, xmax, ymax)`` of the map in *crs*
        size: largest side of the result, in pixels

    Returns:
        The underlay, or None where the image does not cover the extent.
    """
    xmin, ymin, xmax, ymax = bounds
    if not (xmax > xmin and ymax > ymin):
        return None
    with rasterio.open(path) as src:
        if src.crs is None:
            return None
        src_crs = CRS.from_user_input(src.crs)
        left, bottom, right, top = transform_bounds(crs, src_crs, *bounds)
        window = window_from_bounds(left, bottom, right, top, src.transform)
        full = Window(0, 0, src.width, src.height)
        try:
            window = window.intersection(full).round_offsets().round_lengths()
        except rasterio.errors.WindowError:
            return None
        if window.width < 1 or window.height < 1:
            return None
        factor = max(1.0, max(window.width, window.height) / (2 * size))
        shape = (
            max(1, round(window.height / factor)),
            max(1, round(window.width / factor)),
        )
        band = src.read(1, window=window, out_shape=shape, masked=True)
        src_transform = src.window_transform(window) @ rasterio.Affine.scale(
            window.width / shape[1], window.height / shape[0]
        )
    values = np.ma.filled(band.astype(np.float64), np.nan)
    source = _stretch(values).astype(np.float32)
    ratio = (xmax - xmin) / (ymax - ymin)
    width = size if ratio >= 1 else max(1, round(size * ratio))
    height = max(1, round(size / ratio)) if ratio >= 1 else size
    image = np.full((height, width), np.nan, dtype=np.float32)
    reproject(
        source,
        image,
        src_transform=src_transform,
        src_crs=src_crs,
        src_nodata=np.nan,
        dst_transform=from_bounds(xmin, ymin, xmax, ymax, width, height),
        dst_crs=crs,
        dst_nodata=np.nan,
        resampling=Resampling.bilinear,
    )
    if not np.isfinite(image).any():
        return None
    return Underlay(image, (float(xmin), float(ymin), float(xmax), float(ymax)))


def png_data_uri(underlay: Underlay) -> str:
    """The underlay as a PNG data URI (grey, transparent where NaN).

    Args:
        underlay: the underlay

    Returns:
        ``data:image/png;base64,...``.
    """
    from PIL import Image

    valid = np.isfinite(underlay.image)
    grey = np.round(np.nan_to_num(underlay.image) * 255).astype(np.uint8)
    alpha = np.where(valid, 255, 0).astype(np.uint8)
    buffer = io.BytesIO()
    # An (rows, cols, 2) uint8 array is a grey image with alpha ("LA").
    Image.fromarray(np.dstack([grey, alpha])).save(buffer, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()
