"""A :class:`~torchgeo.datasets.RasterDataset` that answers small queries from memory.

Stock TorchGeo opens a warped VRT and calls :func:`rasterio.merge.merge` for every
query. That is the right default for large mosaics, but building-centred 32×32
patches are tiny and numerous: the fixed cost of a merge per query dominates.
:class:`CachedRasterDataset` warps the whole dataset once into an in-memory
array on the dataset's grid (its CRS and resolution) and then answers each query
by slicing that array. Queries that are not aligned with the cached grid are
resampled from it (bilinear for float data, nearest otherwise), and datasets that
do not fit the configured memory budget fall back to windowed reads, so memory
stays bounded for scenes larger than RAM. :meth:`CachedRasterDataset.align_to`
puts a raster (a DSM) on the pixel lattice of another (the SAR image), so that
building-centred queries are slices of both.
"""

from __future__ import annotations

import contextlib
import gc
import math
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import rasterio
import rasterio.merge
import rasterio.warp
import torch
from affine import Affine
from pyproj import CRS
from rasterio.enums import Resampling
from rasterio.errors import RasterioIOError
from rasterio.io import DatasetReader
from rasterio.vrt import WarpedVRT
from scipy import ndimage
from torchgeo.datasets import RasterDataset
from torchgeo.datasets.utils import GeoSlice

from .intersection import IntersectionMixin

__all__ = [
    "DEFAULT_CACHE_BYTES",
    "CachedRasterDataset",
    "RasterGrid",
    "complete_query",
    "paused_gc",
]

#: Default memory budget of the in-memory cache of one dataset (bytes).
DEFAULT_CACHE_BYTES = 2 * 1024**3


@contextlib.contextmanager
def paused_gc() -> Iterator[None]:
    """Pause Python's cyclic garbage collector while building many small objects.

    Building tens of thousands of lists, tuples or dicts (GeoJSON mappings,
    sampler queries) next to the large object graphs of GeoDataFrames triggers
    repeated full collections that cost ten times the work itself. The objects
    built here hold no reference cycles, so pausing the collector loses nothing;
    it is re-enabled (if it was enabled) on exit.

    Yields:
        None

    .. versionadded:: 0.1
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def complete_query(query: GeoSlice) -> tuple[slice, slice, slice] | None:
    """Return a query as three complete slices without touching any index.

    TorchGeo's ``_disambiguate_slice`` fills missing components from the dataset
    bounds, which costs a GeoDataFrame reduction per query; samplers of this
    package always send complete slices, so this fast path avoids that.

    Args:
        query: [xmin:xmax:xres, ymin:ymax:yres, tmin:tmax:tres] coordinates.

    Returns:
        (x, y, t) slices, or None if some spatial component is missing.

    .. versionadded:: 0.1
    """
    if isinstance(query, tuple) and len(query) >= 2:
        x, y = query[0], query[1]
        if (
            x.start is not None
            and x.stop is not None
            and x.step is not None
            and y.start is not None
            and y.stop is not None
            and y.step is not None
        ):
            t = query[2] if len(query) == 3 else slice(None)
            return x, y, t
    return None


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
            gh, gw = self.shape
            if r0 >= 0 and c0 >= 0 and r0 + height <= gh and c0 + width <= gw:
                return self.array[:, r0 : r0 + height, c0 : c0 + width]
            out = np.full((bands, height, width), np.nan, dtype=np.float32)
            rs, cs = max(r0, 0), max(c0, 0)
            re, ce = min(r0 + height, gh), min(c0 + width, gw)
            if rs < re and cs < ce:
                out[:, rs - r0 : re - r0, cs - c0 : ce - c0] = self.array[
                    :, rs:re, cs:ce
                ]
            return out
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


class CachedRasterDataset(IntersectionMixin, RasterDataset):
    """Raster dataset that warps its files once and answers queries from memory.

    Subclasses set :attr:`sample_key` (the key of the returned tensor) and may
    override :meth:`_postprocess_grid` (applied once to the cached array, e.g.
    radiometric conversion) and :meth:`_postprocess_patch` (applied to every
    returned patch, e.g. per-patch height normalisation).

    When :meth:`_postprocess_patch` is pixel-wise (:attr:`pixelwise_patch`) and
    a second copy fits :attr:`cache_bytes`, it is applied once to the whole grid
    (nodata filled), so an aligned query is a copy of a slice. The grid starts
    at the top-left corner of the files, or on the pixel lattice of another
    raster after :meth:`align_to` (a DSM on the SAR grid).

    Unlike stock TorchGeo, files that cannot be read are an error naming the file
    rather than being silently skipped, and rasters without a CRS are rejected
    with instructions to assign one.

    .. versionadded:: 0.1
    """

    #: Key of the data tensor in returned samples.
    sample_key = "image"

    #: Value that replaces nodata (NaN) pixels in returned patches.
    fill_value = 0.0

    #: Whether :meth:`_postprocess_patch` works pixel by pixel (each output pixel
    #: depends on the same input pixel only). Then it is applied once to the whole
    #: in-memory grid, when a second copy of the grid fits :attr:`cache_bytes`,
    #: and queries are plain slices of the result. None: True unless a subclass
    #: overrides :meth:`_postprocess_patch`.
    pixelwise_patch: bool | None = None

    def __init__(
        self,
        paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]] = "data",
        crs: CRS | None = None,
        res: float | tuple[float, float] | None = None,
        bands: Sequence[str] | None = None,
        transforms: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
        cache: bool = True,
        cache_bytes: int = DEFAULT_CACHE_BYTES,
    ) -> None:
        """Initialize a new CachedRasterDataset instance.

        Args:
            paths: one or more root directories to search or files to load
            crs: :term:`coordinate reference system (CRS)` to warp to
                (defaults to the CRS of the first file found)
            res: resolution of the dataset in units of CRS
                (defaults to the resolution of the first file found)
            bands: bands to return (defaults to all bands)
            transforms: a function/transform that takes an input sample
                and returns a transformed version
            cache: if True, cache file handles (for windowed reads)
            cache_bytes: memory budget of the in-memory grid; datasets whose warped
                array would exceed it are read window by window instead

        Raises:
            FileNotFoundError: If no file matches *paths*.
            ValueError: If a file cannot be read or has no CRS.
        """
        self.paths = paths
        self.cache_bytes = cache_bytes
        self._grid: RasterGrid | None = None
        self._sample_grid: tuple[np.ndarray, np.ndarray] | None = None
        self._anchor: tuple[float, float] | None = None
        self._grid_key: tuple[Any, ...] | None = None
        self._shape_cache: tuple[int, int, int, float, float] | None = None
        # Nodata mask of the grid, with cumulative counts of the rows and
        # columns that hold nodata (see nodata_fractions).
        self._nodata_table: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        self._handles: dict[tuple[Any, ...], DatasetReader] = {}
        self._check_files()
        super().__init__(paths, crs, res, bands, transforms, cache)
        self._crs: CRS = self.index.crs

    # ------------------------------------------------------------------ checks
    def _check_files(self) -> None:
        """Validate every file before TorchGeo indexes them.

        Raises:
            FileNotFoundError: If no file matches *paths*.
            ValueError: If a file cannot be read or lacks a CRS.
        """
        files = self.files
        if not files:
            raise FileNotFoundError(
                f"{self.__class__.__name__}: no raster file found in {self.paths!r} "
                f"(pattern {self.filename_glob!r}). Check the path, or pass the "
                "file itself."
            )
        for filepath in files:
            try:
                with rasterio.open(filepath) as src:
                    if src.crs is None:
                        raise ValueError(
                            f"{self.__class__.__name__}: raster {filepath!r} has no "
                            "coordinate reference system. Assign one, e.g. "
                            f"`gdal_edit.py -a_srs EPSG:32637 {filepath}`, or "
                            "re-export it georeferenced."
                        )
                    self._check_source(filepath, src)
            except RasterioIOError as err:
                raise ValueError(
                    f"{self.__class__.__name__}: cannot read raster {filepath!r} "
                    f"({err}). The file is missing, corrupt or not a raster GDAL "
                    "can open; re-export or re-download it."
                ) from err

    def _check_source(self, filepath: str, src: rasterio.DatasetReader) -> None:
        """Hook for subclasses to validate an opened source.

        Args:
            filepath: path of the file
            src: opened rasterio dataset
        """

    # ------------------------------------------------------- crs / res changes
    @property
    def crs(self) -> CRS:
        """:term:`coordinate reference system (CRS)` of the dataset.

        Returns:
            The CRS.
        """
        # Cached: reading it from the GeoDataFrame costs ~0.1 ms per query.
        return self._crs

    @crs.setter
    def crs(self, new_crs: CRS) -> None:
        """Change the CRS; the in-memory grid is rebuilt on the next query.

        Args:
            new_crs: new CRS
        """
        RasterDataset.crs.fset(self, new_crs)  # type: ignore[attr-defined]
        self._crs = self.index.crs
        self._anchor = None
        self._reset_grid()
        self._grid_key = None

    @property
    def res(self) -> tuple[float, float]:
        """Resolution of the dataset in units of CRS.

        Returns:
            (xres, yres)
        """
        return self._res

    @res.setter
    def res(self, new_res: float | tuple[float, float]) -> None:
        """Change the resolution; the in-memory grid is rebuilt on the next query.

        Args:
            new_res: new resolution
        """
        RasterDataset.res.fset(self, new_res)  # type: ignore[attr-defined]
        self._reset_grid()

    def _reset_grid(self) -> None:
        """Forget the in-memory grid and what derives from it."""
        self._grid = None
        self._sample_grid = None
        self._nodata_table = None
        self._shape_cache = None

    # --------------------------------------------------------------- alignment
    def grid_origin(self) -> tuple[float, float]:
        """Top-left corner of the dataset grid (pixel lattice of all reads).

        Returns:
            (left, top) in the dataset CRS.
        """
        _, _, _, left, top = self._grid_shape()
        return left, top

    def align_to(self, other: CachedRasterDataset | tuple[float, float]) -> None:
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
        if isinstance(other, CachedRasterDataset):
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

    # ------------------------------------------------------------ in-memory grid
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

    def _is_pixelwise(self) -> bool:
        """Whether :meth:`_postprocess_patch` may be applied to the whole grid.

        Returns:
            :attr:`pixelwise_patch`, or True if it is None and the method is not
            overridden.
        """
        if self.pixelwise_patch is not None:
            return self.pixelwise_patch
        method = type(self)._postprocess_patch
        return method is CachedRasterDataset._postprocess_patch

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

    def _read_bounds(
        self, bounds: tuple[float, float, float, float], res: tuple[float, float]
    ) -> np.ndarray:
        """Read and merge all files over *bounds* at *res* as float32 with NaN nodata.

        Args:
            bounds: (left, bottom, right, top) in the dataset CRS
            res: (xres, yres)

        Returns:
            float32 array (bands, height, width).
        """
        filepaths = list(self.index.filepath)
        if self.cache:
            handles = [self._cached_load_warp_file(fp) for fp in filepaths]
        else:
            handles = [self._load_warp_file(fp) for fp in filepaths]
        dest, _ = rasterio.merge.merge(
            handles,
            bounds,
            res,
            indexes=self.band_indexes,
            resampling=self.resampling,
            nodata=np.nan,
            dtype="float32",
        )
        if not self.cache:
            for handle in handles:
                handle.close()
        out: np.ndarray = dest.astype(np.float32, copy=False)
        return out

    def _grid_window(self, src: DatasetReader) -> tuple[Affine, int, int]:
        """Grid, aligned with the dataset grid, that covers a source.

        The dataset grid has the dataset's CRS and resolution and its origin at
        :meth:`grid_origin` (the top-left corner of the index, or the lattice set
        by :meth:`align_to`), as the in-memory grid.

        Args:
            src: opened source

        Returns:
            (transform, width, height) of the smallest aligned grid covering *src*.
        """
        xres, yres = self.res
        xmin, ymax = self.grid_origin()
        if src.crs == self.crs:
            left, bottom, right, top = src.bounds
        else:
            left, bottom, right, top = rasterio.warp.transform_bounds(
                src.crs, self.crs, *src.bounds, densify_pts=21
            )
        col0 = math.floor((left - xmin) / xres + 1e-6)
        col1 = math.ceil((right - xmin) / xres - 1e-6)
        row0 = math.floor((ymax - top) / yres + 1e-6)
        row1 = math.ceil((ymax - bottom) / yres - 1e-6)
        transform = Affine(
            xres, 0.0, xmin + col0 * xres, 0.0, -yres, ymax - row0 * yres
        )
        return transform, max(1, col1 - col0), max(1, row1 - row0)

    def _open_source(self, filepath: str) -> DatasetReader:
        """Open a file (hook for subclasses that scale or re-georeference).

        Args:
            filepath: path (or GDAL name) of the file

        Returns:
            Opened dataset.
        """
        return rasterio.open(filepath)

    def _load_warp_file(self, filepath: str | os.PathLike[str]) -> DatasetReader:
        """Open a file through :meth:`_open_source`, warped onto the dataset grid.

        Unlike TorchGeo, which warps to a grid of GDAL's choosing with nearest
        neighbour and lets :func:`rasterio.merge.merge` resample it (which
        stretches sources whose edges fall between grid lines by up to a pixel),
        the file is warped directly onto a window of the dataset grid with
        :attr:`resampling` (bilinear), so building the in-memory grid involves no
        further resampling.

        Args:
            filepath: path (or GDAL name) of the file

        Returns:
            The source itself if it already lies on the dataset grid, else a
            warped VRT.
        """
        src = self._open_source(os.fspath(filepath))
        transform, width, height = self._grid_window(src)
        if (
            src.crs == self.crs
            and src.transform.almost_equals(transform)
            and (src.width, src.height) == (width, height)
        ):
            return src
        vrt = WarpedVRT(
            src,
            crs=self.crs,
            transform=transform,
            width=width,
            height=height,
            resampling=self.resampling,
        )
        src.close()
        return vrt

    # TorchGeo declares this method through functools.lru_cache; a plain method
    # replaces it here (same call signature).
    def _cached_load_warp_file(  # type: ignore[override]
        self, filepath: str | os.PathLike[str]
    ) -> DatasetReader:
        """Cached :meth:`_load_warp_file`, per file, CRS, resolution and grid origin.

        TorchGeo caches warped files per file only, which returns stale handles
        after the CRS or resolution changes (e.g. in an intersection).

        Args:
            filepath: path (or GDAL name) of the file

        Returns:
            File handle on the current dataset grid.
        """
        xmin, ymax = self.grid_origin()
        key = (os.fspath(filepath), self.crs.to_wkt(), self.res, xmin, ymax)
        handle = self._handles.get(key)
        if handle is None or handle.closed:
            handle = self._load_warp_file(filepath)
            self._handles[key] = handle
        return handle

    def __getstate__(self) -> dict[str, Any]:
        """State for pickling (data loader workers), without open file handles.

        Returns:
            The instance dictionary minus the handle cache.
        """
        state = self.__dict__.copy()
        state["_handles"] = {}
        # Derived caches are rebuilt on demand; the grid is sent without them.
        state["_sample_grid"] = None
        state["_nodata_table"] = None
        grid = state["_grid"]
        if grid is not None:
            state["_grid"] = RasterGrid(
                grid.array, grid.left, grid.top, grid.xres, grid.yres
            )
        return state

    def _postprocess_grid(self, array: np.ndarray) -> np.ndarray:
        """Transform raw values into the values the model sees (once per read).

        Args:
            array: float32 array (bands, height, width), NaN = nodata

        Returns:
            The transformed array, NaN = nodata.
        """
        return array

    def _postprocess_patch(self, patch: np.ndarray) -> np.ndarray:
        """Transform one patch before it is returned.

        Args:
            patch: float32 array (bands, height, width), NaN = nodata

        Returns:
            The transformed patch.
        """
        return patch

    # ------------------------------------------------------------------ access
    def read_patch(self, query: GeoSlice) -> np.ndarray:
        """Read the raw patch (float32, NaN = nodata) for a query.

        Args:
            query: [xmin:xmax:xres, ymin:ymax:yres, tmin:tmax:tres] coordinates.

        Returns:
            float32 array (bands, height, width), after grid post-processing.
        """
        x, y, _ = complete_query(query) or self._disambiguate_slice(query)
        return self._read(x, y)

    def _read(self, x: slice, y: slice) -> np.ndarray:
        """Read the raw patch of complete x and y slices.

        Args:
            x: xmin:xmax:xres slice
            y: ymin:ymax:yres slice

        Returns:
            float32 array (bands, height, width), after grid post-processing.
        """
        width = round((x.stop - x.start) / x.step)
        height = round((y.stop - y.start) / y.step)
        xres, yres = self._res
        same_res = (
            abs(x.step - xres) <= 1e-9 * xres and abs(y.step - yres) <= 1e-9 * yres
        )
        if same_res:
            if self._grid is not None:
                return self._grid.read(x.start, y.stop, width, height, self._order)
            if self.uses_memory_grid():
                return self.grid().read(x.start, y.stop, width, height, self._order)
        array = self._read_bounds((x.start, y.start, x.stop, y.stop), (x.step, y.step))
        return self._postprocess_grid(array)

    @property
    def _order(self) -> int:
        """Interpolation order for queries off the cached grid.

        Returns:
            1 (bilinear) for float data, 0 (nearest) otherwise.
        """
        return 1 if self.resampling == Resampling.bilinear else 0

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

    def __getitem__(self, query: GeoSlice) -> dict[str, Any]:
        """Retrieve the patch of a spatiotemporal slice.

        Args:
            query: [xmin:xmax:xres, ymin:ymax:yres, tmin:tmax:tres] coordinates.

        Returns:
            Sample with the patch under :attr:`sample_key` (float32, bands×H×W;
            nodata replaced by :attr:`fill_value`), ``crs`` and ``bounds``.

        Raises:
            IndexError: If *query* does not intersect the dataset.
        """
        x, y, _ = complete_query(query) or self._disambiguate_slice(query)
        xmin, ymin, xmax, ymax = self._bounds_tuple()
        if x.stop <= xmin or x.start >= xmax or y.stop <= ymin or y.start >= ymax:
            raise IndexError(
                f"query: {query} not found in index with bounds: {self.bounds}"
            )
        tensor = self._patch_tensor(x, y)
        sample: dict[str, Any] = {
            "crs": self.crs,
            "bounds": query,
            self.sample_key: tensor,
        }
        if self.transforms is not None:
            sample = self.transforms(sample)
        return sample

    def _patch_tensor(self, x: slice, y: slice) -> torch.Tensor:
        """The returned patch of complete x and y slices, as a new tensor.

        Args:
            x: xmin:xmax:xres slice
            y: ymin:ymax:yres slice

        Returns:
            float32 tensor (bands, height, width), post-processed, without NaN.
        """
        width = round((x.stop - x.start) / x.step)
        height = round((y.stop - y.start) / y.step)
        xres, yres = self._res
        if (
            abs(x.step - xres) <= 1e-9 * xres
            and abs(y.step - yres) <= 1e-9 * yres
            and (self._sample_grid is not None or self._is_pixelwise())
            and self.uses_memory_grid()
        ):
            samples = self._samples()
            if samples is not None:
                window = self._sample_window(samples, x.start, y.stop, width, height)
                if window is not None:
                    return torch.from_numpy(window)
        patch = self._postprocess_patch(self._read(x, y))
        tensor = torch.from_numpy(patch)
        if self._grid is not None and np.may_share_memory(patch, self._grid.array):
            # Never alias the cached grid.
            return tensor.nan_to_num(nan=self.fill_value)
        return tensor.nan_to_num_(nan=self.fill_value)

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
        gh, gw = array.shape[1], array.shape[2]
        if r0 >= 0 and c0 >= 0 and r0 + height <= gh and c0 + width <= gw:
            out: np.ndarray = array[:, r0 : r0 + height, c0 : c0 + width].copy()
            return out
        out = np.empty((array.shape[0], height, width), dtype=np.float32)
        out[:] = edge[:, None, None]
        rs, cs = max(r0, 0), max(c0, 0)
        re, ce = min(r0 + height, gh), min(c0 + width, gw)
        if rs < re and cs < ce:
            out[:, rs - r0 : re - r0, cs - c0 : ce - c0] = array[:, rs:re, cs:ce]
        return out

    def _bounds_tuple(self) -> tuple[float, float, float, float]:
        """Spatial bounds of the dataset, cached per CRS.

        Returns:
            (xmin, ymin, xmax, ymax)
        """
        # The index is replaced, never edited, when the CRS changes (which also
        # resets this cache); len() of a GeoDataFrame would cost more than the
        # slicing of a patch.
        key = (id(self.index), self._res)
        if self._grid_key is None or self._grid_key[0] != key:
            xmin, ymin, xmax, ymax = (float(v) for v in self.index.total_bounds)
            self._grid_key = (key, (xmin, ymin, xmax, ymax))
        bounds: tuple[float, float, float, float] = self._grid_key[1]
        return bounds
