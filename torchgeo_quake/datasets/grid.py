"""In-memory rasters: :class:`RasterGrid` and the grid of a raster dataset.

Building-centred 32×32 patches are tiny and numerous, so
:class:`~torchgeo_quake.datasets.raster.CachedRasterDataset` warps its files
once into a :class:`RasterGrid` on the dataset grid (its CRS, resolution and
pixel lattice) and answers each query by slicing it. :class:`MemoryGridMixin`
is that machinery: the size and lattice of the grid (:meth:`~MemoryGridMixin.align_to`
puts it on the lattice of another raster), building it within the memory
budget, the post-processed copy that aligned queries are plain copies of, and
nodata shares of many windows at once.

.. versionadded:: 0.2
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import rasterio
from affine import Affine
from scipy import ndimage

if TYPE_CHECKING:
    import geopandas as gpd
    from pyproj import CRS
    from torchgeo.datasets.utils import GeoSlice

__all__ = ["DEFAULT_CACHE_BYTES", "MemoryGridMixin", "RasterGrid"]

#: Default memory budget of the in-memory cache of one dataset (bytes).
DEFAULT_CACHE_BYTES = 2 * 1024**3


def _padded_window(
    array: np.ndarray,
    row: int,
    col: int,
    height: int,
    width: int,
    fill: Any,
    copy: bool = False,
    dtype: npt.DTypeLike | None = None,
) -> np.ndarray:
    """Window of the last two axes of an array, padded where it leaves the array.

    Args:
        array: array of shape (..., rows, cols)
        row: first row of the window (may be negative)
        col: first column of the window (may be negative)
        height: window height
        width: window width
        fill: value of the pixels outside *array* (broadcast to the window)
        copy: return a copy (not a view) when the window lies inside *array*
        dtype: type of a padded window (default: that of *array*)

    Returns:
        Array of shape (..., height, width): a view of *array* (unless *copy*)
        when the window lies inside it, else a new padded array.
    """
    rows, cols = array.shape[-2:]
    if row >= 0 and col >= 0 and row + height <= rows and col + width <= cols:
        window = array[..., row : row + height, col : col + width]
        return window.copy() if copy else window
    out = np.empty((*array.shape[:-2], height, width), dtype=dtype or array.dtype)
    out[...] = fill
    rs, cs = max(row, 0), max(col, 0)
    re, ce = min(row + height, rows), min(col + width, cols)
    if rs < re and cs < ce:
        out[..., rs - row : re - row, cs - col : ce - col] = array[..., rs:re, cs:ce]
    return out


@dataclass(frozen=True)
class RasterGrid:
    """An in-memory raster on a regular north-up grid.

    Args:
        array: float32 array of shape (bands, height, width); NaN marks nodata.
        left: x coordinate of the left edge of the grid.
        top: y coordinate of the top edge of the grid.
        xres: pixel width in CRS units.
        yres: pixel height in CRS units (positive).

    .. versionadded:: 0.1
    """

    array: np.ndarray
    left: float
    top: float
    xres: float
    yres: float
    _bands: dict[int, tuple[np.ndarray, np.ndarray | None]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def _band(self, b: int) -> tuple[np.ndarray, np.ndarray | None]:
        """Band *b* with nodata filled by 0 and its nodata mask, computed once.

        Args:
            b: band index

        Returns:
            (filled band, uint8 nodata mask or None if the band has no nodata).
        """
        cached = self._bands.get(b)
        if cached is None:
            band = self.array[b]
            valid = np.isfinite(band)
            if valid.all():
                cached = (band, None)
            else:
                filled = np.where(valid, band, np.float32(0.0)).astype(np.float32)
                cached = (filled, (~valid).view(np.uint8))
            self._bands[b] = cached
        return cached

    @property
    def transform(self) -> Affine:
        """Affine transform of the grid.

        Returns:
            The rasterio/affine transform.
        """
        return Affine(self.xres, 0.0, self.left, 0.0, -self.yres, self.top)

    @property
    def shape(self) -> tuple[int, int]:
        """Height and width in pixels.

        Returns:
            (height, width)
        """
        return int(self.array.shape[1]), int(self.array.shape[2])

    def read(
        self, xmin: float, ymax: float, width: int, height: int, order: int
    ) -> np.ndarray:
        """Read a window given its upper-left corner and size in grid pixels.

        Windows aligned with the grid are sliced; others are interpolated with
        :func:`scipy.ndimage.map_coordinates` (the nodata mask of each band is
        computed once per grid, so the cost of a query does not grow with the
        size of the grid). Pixels outside the grid are NaN.

        Args:
            xmin: x coordinate of the left edge of the window.
            ymax: y coordinate of the top edge of the window.
            width: window width in pixels.
            height: window height in pixels.
            order: spline order for unaligned windows (0 nearest, 1 bilinear).

        Returns:
            float32 array of shape (bands, height, width).
        """
        col = (xmin - self.left) / self.xres
        row = (self.top - ymax) / self.yres
        c0, r0 = round(col), round(row)
        bands = self.array.shape[0]
        if abs(col - c0) < 1e-6 and abs(row - r0) < 1e-6:
            return _padded_window(
                self.array, r0, c0, height, width, np.nan, dtype=np.float32
            )
        # Unaligned: pixel centres of the window in fractional grid coordinates.
        # (map_coordinates puts integer coordinates on pixel centres, so the centre
        # of window pixel (i, j) sits at grid coordinate (row + i, col + j)).
        rows = row + np.arange(height)
        cols = col + np.arange(width)
        rr, cc = np.meshgrid(rows, cols, indexing="ij")
        out = np.empty((bands, height, width), dtype=np.float32)
        for b in range(bands):
            filled, nodata = self._band(b)
            out[b] = ndimage.map_coordinates(
                filled, [rr, cc], order=order, mode="constant", cval=np.nan
            )
            if nodata is not None:
                hole = ndimage.map_coordinates(
                    nodata, [rr, cc], output=np.float32, order=order, cval=1.0
                )
                out[b][hole > 0] = np.nan
        return out


class MemoryGridMixin:
    """The in-memory grid of a raster dataset, and queries answered from it.

    Mixed into :class:`~torchgeo_quake.datasets.raster.CachedRasterDataset`,
    which reads the files (``_read_bounds``) and defines the post-processing
    hooks; the grid is rebuilt on the next query after ``_reset_grid`` (a
    change of CRS, resolution or lattice).

    .. versionadded:: 0.2
    """

    _grid: RasterGrid | None
    _sample_grid: tuple[np.ndarray, np.ndarray] | None
    _anchor: tuple[float, float] | None
    _shape_cache: tuple[int, int, int, float, float] | None
    _nodata_table: tuple[np.ndarray, np.ndarray, np.ndarray] | None
    cache_bytes: int
    fill_value: float

    if TYPE_CHECKING:  # provided by the dataset
        crs: CRS
        res: tuple[float, float]
        index: gpd.GeoDataFrame
        band_indexes: list[int] | None

        def _read_bounds(
            self, bounds: tuple[float, float, float, float], res: tuple[float, float]
        ) -> np.ndarray: ...

        def _postprocess_grid(self, array: np.ndarray) -> np.ndarray: ...

        def _postprocess_patch(self, patch: np.ndarray) -> np.ndarray: ...

        def _is_pixelwise(self) -> bool: ...

        def read_patch(self, query: GeoSlice) -> np.ndarray:
            """Read the raw patch of a query (see the dataset)."""
            ...

    def _reset_grid(self) -> None:
        """Forget the in-memory grid and what derives from it."""
        self._grid = None
        self._sample_grid = None
        self._nodata_table = None
        self._shape_cache = None

    def grid_origin(self) -> tuple[float, float]:
        """Top-left corner of the dataset grid (pixel lattice of all reads).

        Returns:
            (left, top) in the dataset CRS.
        """
        _, _, _, left, top = self._grid_shape()
        return left, top

    def align_to(self, other: MemoryGridMixin | tuple[float, float]) -> None:
        """Put the dataset grid on the pixel lattice of another raster.

        By default the grid starts at the top-left corner of the dataset's own
        files. A DSM whose corner does not fall on a SAR pixel corner (offset by
        a fraction of a pixel, or in another CRS) then answers every SAR-aligned
        query by interpolation. After ``dsm.align_to(sar)`` the DSM is warped once
        (with :attr:`resampling`) onto the SAR lattice, so those queries are
        slices. :class:`~torchgeo_quake.samplers.BuildingCentroidSampler` does
        this for every raster intersected with its reference. Both datasets must
        already share CRS and resolution (as in an intersection).

        Args:
            other: a raster dataset in the same CRS, or a point (x, y) of the
                lattice in the dataset CRS

        Raises:
            ValueError: If *other* has another CRS or resolution.

        .. versionadded:: 0.1
        """
        if isinstance(other, MemoryGridMixin):
            if other.crs != self.crs or not np.allclose(other.res, self.res):
                raise ValueError(
                    f"{self.__class__.__name__}.align_to: {other.__class__.__name__} "
                    f"has CRS {other.crs} and resolution {other.res}, this dataset "
                    f"{self.crs} and {self.res}; intersect them first (`a & b`)."
                )
            anchor = other.grid_origin()
        else:
            anchor = (float(other[0]), float(other[1]))
        left, top = self.grid_origin()
        xres, yres = self.res
        dx = (left - anchor[0]) / xres
        dy = (anchor[1] - top) / yres
        if abs(dx - round(dx)) < 1e-6 and abs(dy - round(dy)) < 1e-6:
            return  # already on that lattice
        self._anchor = anchor
        self._reset_grid()

    def _grid_shape(self) -> tuple[int, int, int, float, float]:
        """Size of the in-memory grid covering the dataset.

        Returns:
            (bands, height, width, left, top)
        """
        if self._shape_cache is not None:
            return self._shape_cache
        xmin, ymin, xmax, ymax = (float(v) for v in self.index.total_bounds)
        xres, yres = self.res
        if self._anchor is not None:
            ax, ay = self._anchor
            xmin = ax + math.floor((xmin - ax) / xres + 1e-6) * xres
            ymax = ay + math.ceil((ymax - ay) / yres - 1e-6) * yres
        width = max(1, math.ceil((xmax - xmin) / xres - 1e-6))
        height = max(1, math.ceil((ymax - ymin) / yres - 1e-6))
        if self.band_indexes is not None:
            bands = len(self.band_indexes)
        else:
            with rasterio.open(self.index.filepath.iloc[0]) as src:
                bands = src.count
        self._shape_cache = (bands, height, width, float(xmin), float(ymax))
        return self._shape_cache

    def grid_nbytes(self) -> int:
        """Bytes the in-memory grid of this dataset needs.

        Returns:
            Size of the float32 grid in bytes.
        """
        bands, height, width, _, _ = self._grid_shape()
        return bands * height * width * 4

    def uses_memory_grid(self) -> bool:
        """Whether queries are answered from the in-memory grid.

        Returns:
            True if the warped dataset fits :attr:`cache_bytes`.
        """
        return self.grid_nbytes() <= self.cache_bytes

    def _build_grid(self) -> RasterGrid:
        """Warp all files once into a float32 array on the dataset grid.

        Returns:
            The in-memory grid.
        """
        _, height, width, left, top = self._grid_shape()
        xres, yres = self.res
        bounds = (left, top - height * yres, left + width * xres, top)
        array = self._read_bounds(bounds, (xres, yres))
        array = self._postprocess_grid(array)
        return RasterGrid(np.ascontiguousarray(array), left, top, xres, yres)

    def grid(self) -> RasterGrid:
        """The in-memory grid, built on first use.

        Returns:
            The grid on the current CRS and resolution.

        Raises:
            MemoryError: If the grid does not fit :attr:`cache_bytes`.
        """
        if self._grid is None:
            if not self.uses_memory_grid():
                raise MemoryError(
                    f"{self.__class__.__name__}: warped raster needs "
                    f"{self.grid_nbytes() / 2**30:.1f} GiB, above cache_bytes="
                    f"{self.cache_bytes / 2**30:.1f} GiB"
                )
            self._grid = self._build_grid()
            self._nodata_table = None
            self._sample_grid = None
        return self._grid

    def _samples(self) -> tuple[np.ndarray, np.ndarray] | None:
        """The grid as returned in samples (post-processed, no NaN), if possible.

        Built once from the in-memory grid when :meth:`_postprocess_patch` is
        pixel-wise and a second float32 copy of the grid fits :attr:`cache_bytes`.

        Returns:
            (array of shape (bands, height, width), value of each band outside
            the grid), or None.
        """
        if self._sample_grid is None:
            if not self._is_pixelwise() or 2 * self.grid_nbytes() > self.cache_bytes:
                return None
            grid = self.grid()
            array = self._postprocess_patch(grid.array)
            # Fill in place unless the hook returned (a view of) the grid itself.
            shared = np.may_share_memory(array, grid.array)
            array = np.nan_to_num(array, copy=shared, nan=self.fill_value)
            array = array.astype(np.float32, copy=False)
            outside = np.full((grid.array.shape[0], 1, 1), np.nan, np.float32)
            edge = np.nan_to_num(
                self._postprocess_patch(outside), nan=self.fill_value
            ).astype(np.float32, copy=False)
            self._sample_grid = (np.ascontiguousarray(array), edge.reshape(-1))
        return self._sample_grid

    def nodata_fractions(
        self, xmin: np.ndarray, ymax: np.ndarray, width: int, height: int
    ) -> np.ndarray:
        """Share of nodata pixels in many windows at once.

        Uses the nodata mask of the in-memory grid (computed once): windows
        whose rows or columns hold no nodata pixel at all are answered from
        per-row and per-column counts, the others by counting the mask pixels
        in the window. Pixels outside the grid count as nodata. Windows not
        aligned with the grid are measured one by one.

        Args:
            xmin: left edges of the windows (dataset CRS)
            ymax: top edges of the windows
            width: window width in pixels (at the dataset resolution)
            height: window height in pixels

        Returns:
            float64 array of nodata shares in [0, 1].
        """
        xmin = np.asarray(xmin, dtype=np.float64)
        ymax = np.asarray(ymax, dtype=np.float64)
        xres, yres = self.res
        out = np.empty(len(xmin), dtype=np.float64)
        if not self.uses_memory_grid():
            t = slice(None)
            for i, (x0, y1) in enumerate(zip(xmin, ymax, strict=True)):
                query = (
                    slice(x0, x0 + width * xres, xres),
                    slice(y1 - height * yres, y1, yres),
                    t,
                )
                out[i] = self.nodata_fraction(query)
            return out
        grid = self.grid()
        if self._nodata_table is None:
            mask = np.isnan(grid.array).any(axis=0)
            rows_with = np.zeros(mask.shape[0] + 1, dtype=np.int64)
            cols_with = np.zeros(mask.shape[1] + 1, dtype=np.int64)
            np.cumsum(mask.any(axis=1), out=rows_with[1:])
            np.cumsum(mask.any(axis=0), out=cols_with[1:])
            self._nodata_table = (mask, rows_with, cols_with)
        mask, rows_with, cols_with = self._nodata_table
        gh, gw = grid.shape
        col = (xmin - grid.left) / grid.xres
        row = (grid.top - ymax) / grid.yres
        c0f, r0f = np.round(col), np.round(row)
        aligned = (np.abs(col - c0f) < 1e-6) & (np.abs(row - r0f) < 1e-6)
        c0 = c0f.astype(np.int64)
        r0 = r0f.astype(np.int64)
        ca, cb = np.clip(c0, 0, gw), np.clip(c0 + width, 0, gw)
        ra, rb = np.clip(r0, 0, gh), np.clip(r0 + height, 0, gh)
        inside = (cb - ca) * (rb - ra)
        count = np.zeros(len(xmin), dtype=np.int64)
        crossing = (rows_with[rb] > rows_with[ra]) & (cols_with[cb] > cols_with[ca])
        for j in np.flatnonzero(crossing & aligned).tolist():
            count[j] = np.count_nonzero(mask[ra[j] : rb[j], ca[j] : cb[j]])
        total = width * height
        out[:] = (count + (total - inside)) / float(total)
        t = slice(None)
        for j in np.flatnonzero(~aligned).tolist():
            query = (
                slice(xmin[j], xmin[j] + width * xres, xres),
                slice(ymax[j] - height * yres, ymax[j], yres),
                t,
            )
            out[j] = self.nodata_fraction(query)
        return out

    def nodata_fraction(self, query: GeoSlice) -> float:
        """Fraction of nodata pixels in a query window.

        Args:
            query: [xmin:xmax:xres, ymin:ymax:yres, tmin:tmax:tres] coordinates.

        Returns:
            Share of pixels (over all bands) that are nodata or outside the data.
        """
        patch = self.read_patch(query)
        return float(np.isnan(patch).mean())

    def _sample_window(
        self,
        samples: tuple[np.ndarray, np.ndarray],
        xmin: float,
        ymax: float,
        width: int,
        height: int,
    ) -> np.ndarray | None:
        """Copy of an aligned window of the post-processed grid.

        Args:
            samples: the result of :meth:`_samples`
            xmin: left edge of the window
            ymax: top edge of the window
            width: width in pixels
            height: height in pixels

        Returns:
            float32 array (bands, height, width), or None if the window is not on
            the grid's pixel lattice.
        """
        array, edge = samples
        grid = self._grid
        assert grid is not None
        col = (xmin - grid.left) / grid.xres
        row = (grid.top - ymax) / grid.yres
        c0, r0 = round(col), round(row)
        if abs(col - c0) >= 1e-6 or abs(row - r0) >= 1e-6:
            return None
        return _padded_window(
            array, r0, c0, height, width, edge[:, None, None], copy=True
        )
