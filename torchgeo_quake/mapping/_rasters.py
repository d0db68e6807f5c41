"""The SAR image and the DSM of a map: pixel size and values (private helpers).

The SAR image is opened on the pixel size the model was trained on, resampled
or reprojected to a local UTM zone when its own differs (:func:`open_sar`).
Before, the rasters' values are checked on a cheap sample of pixels: a SAR
image already in dB (:func:`check_sar_values`) and a DSM without a single
valid height (:func:`check_dsm_values`) are refused with how to fix them.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from pyproj import CRS

from ..trainers.input_spec import SAR_RES_TOLERANCE
from ._crs import metres_per_unit, utm_crs

#: Relative difference of pixel sizes below which no resampling is done
#: (:data:`torchgeo_quake.trainers.input_spec.SAR_RES_TOLERANCE`).
RES_TOLERANCE = SAR_RES_TOLERANCE


def open_sar(
    path: Path,
    radiometry: str,
    sar_res: float | None,
    say: Callable[[str], None],
) -> tuple[Any, dict[str, Any]]:
    """Open the SAR image on the pixel size the model was trained on.

    Args:
        path: SAR image
        radiometry: SAR values the model sees
        sar_res: training pixel size in metres (None: use the image's own)
        say: function printing progress messages

    Returns:
        The :class:`~torchgeo_quake.datasets.CSKSAR` dataset and what was done
        (``native_crs``, ``native_pixel_size_m``, ``pixel_size_m``, ``crs``,
        ``resampled``).

    Raises:
        ValueError: If the image must be resampled but its CRS has no unit of
            length to do it in.
    """
    from ..datasets import CSKSAR

    image = CSKSAR(path, radiometry=radiometry)  # type: ignore[arg-type]
    crs = CRS.from_user_input(image.crs)
    factor = metres_per_unit(crs)
    xres, yres = (abs(float(v)) for v in image.res)
    native = None if factor is None else (xres + yres) / 2 * factor
    info: dict[str, Any] = {
        "native_crs": crs.to_string(),
        "native_pixel_size_m": None if native is None else round(native, 6),
        "pixel_size_m": None if native is None else round(native, 6),
        "crs": crs.to_string(),
        "resampled": False,
    }
    if sar_res is None:
        return image, info
    if native is not None and abs(native / sar_res - 1) <= RES_TOLERANCE:
        return image, info
    target_crs: CRS | None
    if factor is not None:
        assert native is not None
        target_crs, res = None, sar_res / factor
        say(
            f"resampling the SAR image from {native:g} m to {sar_res:g} m pixels, "
            "the pixel size the model was trained on"
        )
        if native > sar_res * (1 + RES_TOLERANCE):
            warnings.warn(
                f"the SAR image {str(path)!r} has {native:g} m pixels, coarser "
                f"than the {sar_res:g} m the model was trained on: it is "
                "upsampled, but detail finer than its pixels is missing and the "
                "predictions are less reliable than on an image of the training "
                "resolution",
                UserWarning,
                stacklevel=3,
            )
    elif crs.is_geographic:
        bounds = tuple(float(v) for v in image.index.total_bounds)
        target_crs = utm_crs(bounds, crs)  # type: ignore[arg-type]
        res = sar_res
        say(
            f"reprojecting the SAR image from {crs.to_string()} (degrees) to "
            f"{target_crs.to_string()} with {sar_res:g} m pixels, the pixel size "
            "the model was trained on"
        )
    else:
        raise ValueError(
            f"the model was trained on SAR pixels of {sar_res:g} m, but the CRS "
            f"of the SAR image {str(path)!r} ({crs.name}) has no unit of length, "
            "so the image cannot be resampled to that size. Reproject it to a "
            f"metric CRS with {sar_res:g} m pixels (e.g. `gdalwarp -t_srs "
            f"EPSG:32637 -tr {sar_res:g} {sar_res:g} -r bilinear {path} "
            "resampled.tif`) and pass the result."
        )
    image = CSKSAR(
        path,
        crs=target_crs,
        res=res,
        radiometry=radiometry,  # type: ignore[arg-type]
    )
    info.update(
        pixel_size_m=sar_res,
        crs=CRS.from_user_input(image.crs).to_string(),
        resampled=True,
    )
    return image, info


#: Share of negative SAR pixels above which the image is taken for dB.
DB_NEGATIVE_SHARE = 0.5


def _sample_band(src: Any, size: int = 1024) -> Iterator[Any]:
    """Pixels of band 1 read cheaply: a window at the centre, then the band decimated.

    Args:
        src: an open rasterio dataset
        size: side of the centre window and of the decimated read

    Yields:
        The centre window, then the decimated band, as masked arrays (nodata
        masked); the second is read only if asked for.
    """
    from rasterio.enums import Resampling
    from rasterio.windows import Window

    yield src.read(
        1,
        window=Window(
            max(0, src.width // 2 - size // 2),
            max(0, src.height // 2 - size // 2),
            min(size, src.width),
            min(size, src.height),
        ),
        masked=True,
    )
    step = max(1, math.ceil(max(src.height, src.width) / size))
    shape = (math.ceil(src.height / step), math.ceil(src.width / step))
    yield src.read(1, out_shape=shape, resampling=Resampling.nearest, masked=True)


def _valid(array: Any) -> npt.NDArray[np.float64]:
    """The values of a masked array that are not nodata and finite.

    Args:
        array: a masked array

    Returns:
        The values, as float64.
    """
    values = np.ma.asarray(array).compressed().astype(np.float64)
    return values[np.isfinite(values)]


def check_sar_values(path: Path) -> None:
    """Refuse a SAR image that holds dB values instead of amplitude or intensity.

    The image must hold linear amplitude or intensity (the model's radiometry,
    dB included, is computed from it). A dB image is mostly negative, and its
    negative pixels would all be read as nodata: every building would then be
    skipped for SAR nodata. Files that rasterio cannot open directly (product
    containers) are left to :class:`~torchgeo_quake.datasets.CSKSAR`.

    Args:
        path: the SAR image

    Raises:
        ValueError: If most of its valid, non-zero pixels are negative.
    """
    import rasterio

    try:
        src = rasterio.open(path)
    except Exception:  # CSKSAR reports what it cannot read
        return
    with src:
        if src.count < 1 or "complex" in src.dtypes[0]:
            return
        for array in _sample_band(src):
            values = _valid(array)
            values = values[values != 0]
            if values.size >= 1000:
                break
    if values.size == 0:
        return  # no valid pixel: CSKSAR says so
    share = float((values < 0).mean())
    if share <= DB_NEGATIVE_SHARE:
        return
    raise ValueError(
        f"the SAR image {str(path)!r} looks like dB already: {share:.0%} of its "
        "pixels are negative, which amplitude and intensity never are (they "
        "would all be read as nodata). Give the linear amplitude/intensity "
        "image: the model's radiometry is computed from it. To undo the dB: "
        f'`gdal_calc.py -A {path} --calc "10**(A/20)" --outfile amplitude.tif` '
        "(10**(A/10) for intensity in dB)."
    )


def check_dsm_values(path: Path) -> None:
    """Refuse a DSM without a single valid height.

    Args:
        path: the DSM

    Raises:
        ValueError: If every pixel is nodata or not finite.
    """
    import rasterio

    try:
        src = rasterio.open(path)
    except Exception:  # CartoSatDSM reports what it cannot read
        return
    with src:
        if src.count < 1:
            return
        if any(_valid(a).size for a in _sample_band(src)):
            return
        for _, window in src.block_windows(1):
            if _valid(src.read(1, window=window, masked=True)).size:
                return
        nodata = src.nodata
    declared = "" if nodata is None else f" (its nodata value is {nodata:g})"
    raise ValueError(
        f"the DSM {str(path)!r} holds no valid height: every pixel is nodata or "
        f"NaN{declared}, so no building could be scored. The export or download "
        "probably failed: produce the DSM again, or map without it with a model "
        "trained without DSM (--fallback-checkpoint)."
    )
