"""Pre-event digital surface model (CartoSat-1 Euro-Maps 3D, Copernicus DEM, ...)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Literal

import numpy as np
import rasterio
from matplotlib.figure import Figure
from pyproj import CRS

from .raster import DEFAULT_CACHE_BYTES, CachedRasterDataset

__all__ = ["DSM_HEIGHT_RANGE", "CartoSatDSM"]

#: Plausible heights (metres) of a DSM: the shore of the Dead Sea is at -430 m,
#: the top of Mount Everest at 8,849 m. Heights outside are nodata.
DSM_HEIGHT_RANGE = (-500.0, 9000.0)


class CartoSatDSM(CachedRasterDataset):
    """Single-band digital surface model, resampled on the fly to the SAR grid.

    The paper uses the CartoSat-1 Euro-Maps 3D DSM (5 m posting) acquired years
    before the earthquake: it describes building heights and terrain, not damage.
    Any single-band DSM or DEM GeoTIFF works (Copernicus DEM, lidar DSMs, ...).

    When intersected with a SAR dataset (``sar & dsm``) TorchGeo sets this dataset's
    CRS and resolution to those of the SAR image, so patches come out on the SAR
    grid (bilinear resampling). Heights are returned either as they are
    (``heights="absolute"``) or relative to the minimum of each patch
    (``heights="relative"``, the default), a building-height proxy that is
    insensitive to the terrain elevation of a city.

    Heights outside :data:`DSM_HEIGHT_RANGE` (-500 to 9,000 m: undeclared
    nodata values such as -9999 or -32768, or absurd values) and infinite
    pixels are nodata: they are counted in a :class:`UserWarning` naming the
    file, and buildings whose window touches them are skipped by the samplers
    (``"on DSM nodata"``).

    .. versionadded:: 0.1
    """

    sample_key = "dsm"
    filename_glob = "*.tif*"
    is_image = True
    nodata_consequence = (
        "buildings whose window touches them are skipped as 'on DSM nodata'"
    )

    def __init__(
        self,
        paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]] = "data",
        crs: CRS | None = None,
        res: float | tuple[float, float] | None = None,
        heights: Literal["relative", "absolute"] = "relative",
        transforms: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
        cache: bool = True,
        cache_bytes: int = DEFAULT_CACHE_BYTES,
    ) -> None:
        """Initialize a new CartoSatDSM instance.

        Args:
            paths: one or more DSM files or directories holding them
            crs: CRS to warp to (defaults to the CRS of the first file)
            res: resolution to resample to (defaults to the file's resolution)
            heights: ``"relative"`` to subtract the minimum height of each patch
                (building-height proxy), ``"absolute"`` for heights as stored
            transforms: a function/transform that takes an input sample
                and returns a transformed version
            cache: if True, cache file handles
            cache_bytes: memory budget of the in-memory grid

        Raises:
            ValueError: If *heights* is invalid, or a file is unreadable, has no
                CRS, or has more than one band.
            FileNotFoundError: If no file matches *paths*.
        """
        if heights not in ("relative", "absolute"):
            raise ValueError(
                f"heights must be 'relative' or 'absolute', got {heights!r}"
            )
        self.heights = heights
        # Absolute heights are returned as stored (pixel-wise); relative ones
        # depend on the whole patch.
        self.pixelwise_patch = heights == "absolute"
        super().__init__(paths, crs, res, None, transforms, cache, cache_bytes)

    def _check_source(self, filepath: str, src: rasterio.DatasetReader) -> None:
        """Reject multi-band rasters.

        Args:
            filepath: path of the file
            src: opened rasterio dataset

        Raises:
            ValueError: If the raster has more than one band.
        """
        if src.count != 1:
            raise ValueError(
                f"CartoSatDSM: {filepath!r} has {src.count} bands; a DSM must be a "
                "single-band height raster. Extract the height band, e.g. "
                f"`gdal_translate -b 1 {filepath} dsm.tif`."
            )

    def _screen(
        self,
        array: np.ndarray,
        parts: Callable[[], Iterator[tuple[str, np.ndarray]]],
    ) -> None:
        """Make infinite heights and heights outside :data:`DSM_HEIGHT_RANGE` nodata.

        Args:
            array: the merged read (1, height, width) in metres, NaN = nodata;
                changed in place
            parts: yields ``(file, values of that file)``
        """
        super()._screen(array, parts)
        low, high = DSM_HEIGHT_RANGE
        with np.errstate(invalid="ignore"):
            outside = (array < low) | (array > high)
        if not outside.any():
            return
        counts = {}
        for filepath, part in parts():
            with np.errstate(invalid="ignore"):
                counts[filepath] = int(((part < low) | (part > high)).sum())
        self._warn_once(
            "height",
            counts,
            f"height(s) outside [{low:g}, {high:g}] m (an undeclared nodata value "
            "such as -9999 or -32768?)",
            f"treated as nodata ({self.nodata_consequence}); declare the nodata "
            "value of the file, e.g. `gdal_edit.py -a_nodata -9999 <file>`",
        )
        array[outside] = np.nan

    def _postprocess_patch(self, patch: np.ndarray) -> np.ndarray:
        """Make heights relative to the patch minimum when requested.

        Args:
            patch: float32 array (1, height, width), NaN = nodata

        Returns:
            The patch in the configured height convention.
        """
        if self.heights == "relative":
            low = patch.min()
            if np.isnan(low):  # nodata inside the patch
                if not np.isfinite(patch).any():
                    return patch
                low = np.nanmin(patch)
            out: np.ndarray = patch - low
            return out
        return patch

    def plot(
        self,
        sample: dict[str, Any],
        show_titles: bool = True,
        suptitle: str | None = None,
    ) -> Figure:
        """Plot a DSM patch.

        Args:
            sample: a sample returned by :meth:`__getitem__`
            show_titles: flag indicating whether to show titles above each panel
            suptitle: optional string to use as a suptitle

        Returns:
            A matplotlib Figure with the rendered sample.
        """
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(4, 4))
        image = ax.imshow(sample[self.sample_key][0].numpy(), cmap="terrain")
        fig.colorbar(image, ax=ax, label="height (m)")
        ax.axis("off")
        if show_titles:
            ax.set_title(f"DSM ({self.heights} heights)")
        if suptitle is not None:
            fig.suptitle(suptitle)
        return fig
