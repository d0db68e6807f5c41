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

The in-memory grid itself is :mod:`~torchgeo_quake.datasets.grid`
(:class:`~torchgeo_quake.datasets.grid.MemoryGridMixin`), and the geometry of
warping and merging files onto that grid is in ``_warp``; this module checks,
opens and reads the files and answers queries. :class:`RasterGrid`,
:data:`DEFAULT_CACHE_BYTES`, :func:`complete_query` and :func:`paused_gc` are
re-exported from their modules.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import numpy as np
import rasterio
import torch
from pyproj import CRS
from rasterio.enums import Resampling
from rasterio.errors import RasterioIOError
from rasterio.io import DatasetReader
from torchgeo.datasets import RasterDataset
from torchgeo.datasets.utils import GeoSlice

from ._warp import _merge, _onto_grid
from .fastpath import complete_query, paused_gc
from .grid import DEFAULT_CACHE_BYTES, MemoryGridMixin, RasterGrid
from .intersection import IntersectionMixin

__all__ = [
    "DEFAULT_CACHE_BYTES",
    "CachedRasterDataset",
    "RasterGrid",
    "complete_query",
    "paused_gc",
]


class CachedRasterDataset(IntersectionMixin, MemoryGridMixin, RasterDataset):
    """Raster dataset that warps its files once and answers queries from memory.

    Subclasses set :attr:`sample_key` (the key of the returned tensor) and may
    override :meth:`_postprocess_grid` (applied once to the cached array, e.g.
    radiometric conversion) and :meth:`_postprocess_patch` (applied to every
    returned patch, e.g. per-patch height normalisation).

    When :meth:`_postprocess_patch` is pixel-wise (:attr:`pixelwise_patch`) and
    a second copy fits :attr:`cache_bytes`, it is applied once to the whole grid
    (nodata filled), so an aligned query is a copy of a slice. The grid starts
    at the top-left corner of the files, or on the pixel lattice of another
    raster after :meth:`align_to` (a DSM on the SAR grid). The in-memory grid
    and what is built on it (:meth:`grid`, :meth:`align_to`,
    :meth:`nodata_fractions`...) come from
    :class:`~torchgeo_quake.datasets.grid.MemoryGridMixin`.

    Unlike stock TorchGeo, files that cannot be read are an error naming the file
    rather than being silently skipped, and rasters without a CRS are rejected
    with instructions to assign one.

    Values are screened once per read, when files are warped into memory (or
    read window by window), before any post-processing (:meth:`_screen`):
    infinite pixels that are not nodata become nodata (NaN), counted and
    reported once per file in a :class:`UserWarning`, so buildings whose window
    touches them are skipped like any other nodata; subclasses add the checks
    of their quantity (SAR radiometry, DSM heights).

    .. versionadded:: 0.1
    """

    #: Key of the data tensor in returned samples.
    sample_key = "image"

    #: Value that replaces nodata (NaN) pixels in returned patches.
    fill_value = 0.0

    #: What a building on nodata of this raster becomes, in warnings.
    nodata_consequence = "they are treated as nodata"

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
        # (kind of problem, file) already reported by _screen.
        self._warned: set[tuple[str, str]] = set()
        self._check_files()
        super().__init__(paths, crs, res, bands, transforms, cache)
        self._crs: CRS = self.index.crs

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
        filepaths = [str(fp) for fp in self.index.filepath]
        if self.cache:
            handles = [self._cached_load_warp_file(fp) for fp in filepaths]
        else:
            handles = [self._load_warp_file(fp) for fp in filepaths]
        bands, resampling = self.band_indexes, self.resampling
        try:
            out = _merge(handles, bounds, res, bands, resampling)

            def parts() -> Iterator[tuple[str, np.ndarray]]:
                if len(handles) == 1:
                    yield filepaths[0], out
                    return
                for filepath, handle in zip(filepaths, handles, strict=True):
                    yield filepath, _merge([handle], bounds, res, bands, resampling)

            self._screen(out, parts)
        finally:
            if not self.cache:
                for handle in handles:
                    handle.close()
        return out

    def _screen(
        self,
        array: np.ndarray,
        parts: Callable[[], Iterator[tuple[str, np.ndarray]]],
    ) -> None:
        """Validate the values of a read, in place, before post-processing.

        Infinite pixels (which are never nodata: nodata is NaN here) become
        nodata, with a :class:`UserWarning` per file that counts them.
        Subclasses extend this with the checks of their quantity.

        Args:
            array: the merged float32 read (bands, height, width), NaN = nodata;
                changed in place
            parts: yields ``(file, values of that file over the same bounds)``
                (the merged array itself for a single file), to name the files
                a problem comes from

        Raises:
            ValueError: In subclasses, for values that cannot be right.
        """
        infinite = np.isinf(array)
        if infinite.any():
            counts = {fp: int(np.isinf(part).sum()) for fp, part in parts()}
            self._warn_once(
                "infinite",
                counts,
                "infinite pixel(s) that are not nodata",
                f"treated as nodata ({self.nodata_consequence})",
            )
            array[infinite] = np.nan

    def _warn_once(
        self, kind: str, counts: dict[str, int], what: str, consequence: str
    ) -> None:
        """Warn about a problem of the values of files, once per file and kind.

        Args:
            kind: short key of the problem
            counts: file -> number of affected pixels (files with 0 are ignored)
            what: what the pixels are, after the count
            consequence: what is done about them
        """
        where = "" if self.uses_memory_grid() else " (counted in the first window read)"
        for filepath, n in counts.items():
            if n == 0 or (kind, filepath) in self._warned:
                continue
            self._warned.add((kind, filepath))
            warnings.warn(
                f"{self.__class__.__name__}: {n} {what} in {filepath!r}{where}; "
                f"{consequence}.",
                UserWarning,
                stacklevel=4,
            )

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
        origin = self.grid_origin()
        return _onto_grid(src, self.crs, self.res, origin, self.resampling)

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
