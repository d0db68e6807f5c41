"""Post-event SAR image: COSMO-SkyMed HDF5, Capella, Umbra or any GeoTIFF.

:class:`CSKSAR` is the dataset. What it knows about each product lives in
:mod:`~torchgeo_quake.datasets.sar_products`, the plausibility checks and
conversions of its values in :mod:`~torchgeo_quake.datasets.sar_radiometry`.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Literal

import numpy as np
import rasterio
import shapely
from geopandas import GeoDataFrame
from matplotlib.figure import Figure
from pyproj import CRS
from rasterio.io import DatasetReader
from rasterio.vrt import WarpedVRT

from ._sar_sources import Source, describe, find_files
from .raster import DEFAULT_CACHE_BYTES, CachedRasterDataset
from .sar_products import (
    CSKProduct,
    csk_image_dataset,
    csk_subdataset,
    is_hdf5_path,
    read_csk,
    source_vrt,
)
from .sar_radiometry import DB_FLOOR_PERCENTILE as DB_FLOOR_PERCENTILE
from .sar_radiometry import (
    DEFAULT_DB_FLOOR,
    MAX_LINEAR_VALUE,
    MAX_NEGATIVE_SHARE,
    Radiometry,
    _centre_window,
    _convert,
    _db_floor_of,
    _has_valid_pixel,
    _linear_problem,
    _to_db,
)

__all__ = [
    "CSKSAR",
    "DEFAULT_DB_FLOOR",
    "MAX_LINEAR_VALUE",
    "MAX_NEGATIVE_SHARE",
    "Radiometry",
]


class CSKSAR(CachedRasterDataset):
    r"""Post-event very-high-resolution SAR image (COSMO-SkyMed and others).

    Russo et al. (2025) detect earthquake-damaged buildings from a single
    post-event `COSMO-SkyMed <https://www.asi.it/en/earth-science/cosmo-skymed/>`_
    Stripmap HIMAGE image (HH, 2.5 m) per city. This dataset reads such an image
    and returns patches under the key ``"sar"``.

    Inputs (files with the extensions ``.tif``, ``.tiff``, ``.h5`` are found in
    directories; explicit files are taken as given):

    * **COSMO-SkyMed HDF5**, levels L1C (GEC, ellipsoid geocoded) and L1D (GTC,
      terrain geocoded), read natively through GDAL's HDF5 driver: the plain
      ``.h5`` path is mapped to the image subdataset
      ``HDF5:"<file>.h5"://S01/SBI`` (or ``S01/MBI``/``MBI``), which GDAL
      georeferences from the product attributes. Amplitude = DN / ``Rescaling
      Factor``; with ``calibrate=True`` the amplitude of sigma nought (see
      :mod:`~torchgeo_quake.datasets.sar_products`). Levels L0, L1A (SCS) and
      L1B (DGM) are not geocoded and are rejected: geocode them to GEC/GTC
      first.
    * **Capella Space** GEO/GEC GeoTIFF (``CAPELLA_*_GEO_*.tif``): uint16 DN times
      the ``scale_factor`` of the JSON in ``TIFFTAG_IMAGEDESCRIPTION``
      (calibrated beta-nought amplitude).
    * **Umbra** GEC GeoTIFF (``*_GEC.tif``): amplitude; metadata from the
      ``*_METADATA.json`` or STAC sidecar.
    * **Any GeoTIFF** from a SAR processor (or this project's simulator):
      amplitude or intensity as declared by *input_radiometry*.

    Complex (SLC) and multi-band rasters are rejected.

    Radiometry: zero, NaN and nodata pixels are masked (NaN in the in-memory
    grid, so samplers can skip nodata windows). Values that cannot be right are
    not passed on silently (checked on the centre of every file when the
    dataset is made, then on every read): infinite pixels are masked too and
    counted in a :class:`UserWarning` naming the file; a few negative pixels
    (up to :data:`MAX_NEGATIVE_SHARE` of the valid ones) are masked and counted
    likewise; more negative pixels (a dB image, or an undeclared negative nodata
    value) or values above :data:`MAX_LINEAR_VALUE` are a :class:`ValueError`
    naming the file. Buildings whose window touches masked pixels are skipped by
    the samplers (``"on SAR nodata"``). Returned patches are
    ``radiometry="amplitude"`` (default), ``"intensity"`` (amplitude²) or
    ``"db"`` (10 log10 of the intensity). In amplitude and intensity,
    masked pixels are returned as 0. In dB, values are floored at
    :attr:`db_floor` (default: the 0.1th percentile of the valid dB values of the
    whole dataset, computed once) and masked pixels take the floor value.

    Files of different products may be mixed in one dataset (they are merged,
    first file first) as long as they hold the same radiometry.

    .. versionadded:: 0.1
    """

    sample_key = "sar"
    is_image = True

    #: Filling and flooring (:meth:`_postprocess_patch`) are pixel-wise, so they
    #: are applied once to the in-memory grid.
    pixelwise_patch = True

    nodata_consequence = (
        "buildings whose window touches them are skipped as 'on SAR nodata'"
    )

    #: Patterns (case-insensitive) of the files searched for in directories.
    filename_globs: tuple[str, ...] = ("*.tif", "*.tiff", "*.h5")

    #: Kept for TorchGeo compatibility; discovery uses :attr:`filename_globs`.
    filename_glob = "*"

    #: Side (pixels) of the tiles sampled to estimate the dB floor of datasets
    #: larger than the memory budget, and their number per axis.
    floor_tile_size = 256
    floor_tiles = 8

    def __init__(
        self,
        paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]] = "data",
        crs: CRS | None = None,
        res: float | tuple[float, float] | None = None,
        radiometry: Radiometry = "amplitude",
        input_radiometry: Literal["amplitude", "intensity"] = "amplitude",
        calibrate: bool = False,
        db_floor: float | None = None,
        transforms: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
        cache: bool = True,
        cache_bytes: int = DEFAULT_CACHE_BYTES,
    ) -> None:
        """Initialize a new CSKSAR instance.

        Args:
            paths: one or more SAR files or directories holding them
            crs: :term:`coordinate reference system (CRS)` to warp to
                (defaults to the CRS of the first file found)
            res: resolution of the dataset in units of CRS
                (defaults to the resolution of the first file found)
            radiometry: form of the returned values: ``"amplitude"``,
                ``"intensity"`` (amplitude²) or ``"db"`` (10·log10 intensity)
            input_radiometry: what plain GeoTIFFs hold, ``"amplitude"`` or
                ``"intensity"``; COSMO-SkyMed, Capella and Umbra products are
                amplitude by specification
            calibrate: if True, COSMO-SkyMed HDF5 products are calibrated to sigma
                nought with their calibration constant and reference geometry
                (other products are unaffected)
            db_floor: floor of dB values and value of masked pixels in dB
                (defaults to the 0.1th percentile of the valid dB values)
            transforms: a function/transform that takes an input sample
                and returns a transformed version
            cache: if True, cache file handles (for windowed reads)
            cache_bytes: memory budget of the in-memory grid

        Raises:
            FileNotFoundError: If no file matches *paths*.
            ValueError: If an option is invalid, or a file is unreadable or corrupt,
                has no CRS, is not a geocoded detected SAR product, holds no
                valid pixel or implausible values (negative as in dB, or above
                :data:`MAX_LINEAR_VALUE`), or the files mix amplitude and
                intensity.
        """
        if radiometry not in ("amplitude", "intensity", "db"):
            raise ValueError(
                f"radiometry must be 'amplitude', 'intensity' or 'db', got "
                f"{radiometry!r}"
            )
        if input_radiometry not in ("amplitude", "intensity"):
            raise ValueError(
                "input_radiometry must be 'amplitude' or 'intensity', got "
                f"{input_radiometry!r}"
            )
        if db_floor is not None and not math.isfinite(db_floor):
            raise ValueError(f"db_floor must be a finite number, got {db_floor!r}")
        self.radiometry: Radiometry = radiometry
        self.input_radiometry: Literal["amplitude", "intensity"] = input_radiometry
        self.calibrate = calibrate
        self._db_floor = db_floor
        self._sources: dict[str, Source] = {}
        self._csk: dict[str, CSKProduct] = {}
        super().__init__(paths, crs, res, None, transforms, cache, cache_bytes)
        if any(source.corrected for source in self._sources.values()):
            self._reindex(crs, res)
        elif crs is None:
            # GDAL's CRS for COSMO-SkyMed is an unnamed Transverse Mercator;
            # label the index with the equivalent EPSG code.
            first = self._sources[str(self.index.filepath.iloc[0])]
            labelled = CRS.from_user_input(first.crs.to_wkt())
            if labelled == self.index.crs:
                self.index = self.index.set_crs(labelled, allow_override=True)
                self.crs = labelled  # refresh what the base class derived

    # --------------------------------------------------------------- discovery
    def _discover(self) -> list[str]:
        """File system paths of the dataset's files.

        Returns:
            Sorted paths: explicit files as given, plus files matching
            :attr:`filename_globs` below directories.
        """
        return find_files(self.paths, self.filename_globs)

    def _gdal_path(self, file: str) -> str:
        """GDAL name of a file: the image subdataset for COSMO-SkyMed HDF5.

        Args:
            file: file system path

        Returns:
            ``HDF5:"<file>"://<dataset>`` for HDF5 products, else *file*.
        """
        if not is_hdf5_path(file):
            return file
        product = self._csk.get(file)
        dataset = product.dataset if product else csk_image_dataset(file)
        return csk_subdataset(file, dataset) if dataset else file

    @property
    def files(self) -> list[str]:
        """GDAL names of all files in the dataset.

        Returns:
            Sorted list; COSMO-SkyMed HDF5 files appear as their image subdataset.
        """
        return [self._gdal_path(file) for file in self._discover()]

    # ------------------------------------------------------------------ checks
    def _check_files(self) -> None:
        """Validate HDF5 products, then every file, then their consistency.

        Raises:
            FileNotFoundError: If no file matches *paths*.
            ValueError: If a file is invalid (see :meth:`__init__`) or the files
                mix amplitude and intensity.
        """
        files = self._discover()
        if not files:
            raise FileNotFoundError(
                f"CSKSAR: no SAR file found in {self.paths!r} (looked for "
                f"{', '.join(self.filename_globs)} below directories). Check the "
                "path, or pass the file itself."
            )
        for file in files:
            if is_hdf5_path(file):
                self._csk[file] = read_csk(file, self.calibrate)
        super()._check_files()
        radiometries = {s.radiometry for s in self._sources.values()}
        if len(radiometries) > 1:
            listing = ", ".join(
                f"{os.path.basename(s.file)} ({s.radiometry})"
                for s in self._sources.values()
            )
            raise ValueError(
                f"CSKSAR: the files mix amplitude and intensity ({listing}); "
                "COSMO-SkyMed, Capella and Umbra products are amplitude. Make one "
                "dataset per radiometry."
            )

    def _check_source(self, filepath: str, src: DatasetReader) -> None:
        """Reject unsuitable rasters and record how to read the file.

        Args:
            filepath: GDAL name of the file
            src: opened rasterio dataset

        Raises:
            ValueError: If the raster is complex, has several bands, is a
                non-geocoded product, or holds no valid pixel.
        """
        if src.count != 1:
            raise ValueError(
                f"CSKSAR: {filepath!r} has {src.count} bands; a SAR image must be a "
                "single-band amplitude or intensity raster. Extract one band, e.g. "
                f"`gdal_translate -b 1 {filepath} sar.tif`."
            )
        if "complex" in src.dtypes[0]:
            raise ValueError(
                f"CSKSAR: {filepath!r} holds complex ({src.dtypes[0]}) single-look "
                "data. Detect (|z|) and geocode it first, e.g. with ESA SNAP, or use "
                "the provider's geocoded product (COSMO-SkyMed GEC/GTC, Capella "
                "GEO/GEC, Umbra GEC)."
            )
        self._sources[filepath] = describe(
            filepath, src, self._csk, self.input_radiometry
        )
        if not _has_valid_pixel(src):
            raise ValueError(
                f"CSKSAR: {filepath!r} holds no valid pixel: every pixel is 0, "
                "negative, infinite, NaN or nodata. The export or download "
                "probably failed; produce the image again."
            )
        # The centre of the file, scaled: a dB image or absurd values fail here,
        # before anything is warped (every read is checked again, see _screen).
        source = self._sources[filepath]
        centre = _centre_window(src)
        with self._open_source(filepath) as scaled:
            values = scaled.read(1, window=centre)
        problem = _linear_problem(values, source.radiometry)
        if problem is not None:
            raise ValueError(
                f"CSKSAR: {filepath!r} is declared {source.radiometry} but {problem}."
            )

    def _reindex(
        self, crs: CRS | None, res: float | tuple[float, float] | None
    ) -> None:
        """Rebuild the index from the corrected georeferencing of the files.

        Args:
            crs: CRS requested by the user, if any
            res: resolution requested by the user, if any
        """
        filepaths = [str(fp) for fp in self.index.filepath]
        target = crs if crs is not None else self._sources[filepaths[0]].crs
        geometries = []
        first_res: tuple[float, float] | None = None
        for filepath in filepaths:
            with self._open_source(filepath) as src, WarpedVRT(src, crs=target) as vrt:
                geometries.append(shapely.box(*vrt.bounds))
                if first_res is None:
                    first_res = (float(vrt.res[0]), float(vrt.res[1]))
        target_crs = CRS.from_user_input(target.to_wkt())
        self.index = GeoDataFrame(
            {"filepath": filepaths},
            index=self.index.index,
            geometry=geometries,
            crs=target_crs,
        )
        self.crs = target_crs  # refresh what the base class derived
        if res is None and first_res is not None:
            self.res = first_res

    # ------------------------------------------------------------------ access
    def metadata(self, filepath: str | os.PathLike[str]) -> dict[str, Any]:
        """Acquisition metadata of one file of the dataset.

        Args:
            filepath: file path (as given or found) or its GDAL name

        Returns:
            Dictionary with the keys ``product`` (``"csk"``, ``"capella"``,
            ``"umbra"``, ``"geotiff"``), ``level``, ``mission``, ``mode``,
            ``polarisation``, ``incidence_angle`` (degrees), ``look_side``,
            ``orbit_direction``, ``date`` (ISO 8601), ``quantity`` and
            ``radiometry``, plus product-specific extras; values not present in
            the product are None.

        Raises:
            KeyError: If *filepath* is not a file of this dataset.
        """
        key = os.fspath(filepath)
        for source in self._sources.values():
            if key in (source.path, source.file):
                return dict(source.metadata)
        raise KeyError(
            f"CSKSAR: {key!r} is not a file of this dataset; its files are "
            f"{sorted(s.file for s in self._sources.values())}"
        )

    def _open_source(self, filepath: str) -> DatasetReader:
        """Open a file as scaled float32 with 0 nodata and corrected georeferencing.

        Args:
            filepath: GDAL name of the file

        Returns:
            Opened VRT dataset.
        """
        source = self._sources[filepath]
        document = source_vrt(
            source.path,
            source.width,
            source.height,
            source.crs,
            source.transform,
            source.scale,
            source.nodata,
        )
        return rasterio.open(document)

    # ------------------------------------------------------------- radiometry
    def _screen(
        self,
        array: np.ndarray,
        parts: Callable[[], Iterator[tuple[str, np.ndarray]]],
    ) -> None:
        """Mask infinite and a few negative pixels; reject implausible values.

        Args:
            array: the merged read (1, height, width) in the files' radiometry,
                NaN = nodata; changed in place
            parts: yields ``(file, values of that file)``

        Raises:
            ValueError: If the values of a file are negative as in dB (more
                than :data:`MAX_NEGATIVE_SHARE` of them) or above
                :data:`MAX_LINEAR_VALUE`; the message names the file.
        """
        super()._screen(array, parts)
        held = self._held_radiometry()
        with np.errstate(invalid="ignore"):
            suspicious = bool((array < 0).any() or (array > MAX_LINEAR_VALUE).any())
        if not suspicious:
            return
        negatives: dict[str, int] = {}
        for filepath, part in parts():
            problem = _linear_problem(part, held)
            if problem is not None:
                raise ValueError(
                    f"CSKSAR: {filepath!r} is declared {held} but {problem}."
                )
            with np.errstate(invalid="ignore"):
                negatives[filepath] = int((part < 0).sum())
        self._warn_once(
            "negative",
            negatives,
            f"negative pixel(s), impossible for a SAR {held}",
            f"masked as nodata ({self.nodata_consequence})",
        )

    def _postprocess_grid(self, array: np.ndarray) -> np.ndarray:
        """Mask invalid pixels and convert to :attr:`radiometry`.

        Args:
            array: float32 array (1, height, width) in the files' radiometry,
                NaN = nodata

        Returns:
            float32 array in :attr:`radiometry`, NaN where the input is not
            positive or is nodata.
        """
        return _convert(array, self._held_radiometry(), self.radiometry)

    def _held_radiometry(self) -> Literal["amplitude", "intensity"]:
        """Radiometry of the files (all files share it).

        Returns:
            ``"amplitude"`` or ``"intensity"``.
        """
        for source in self._sources.values():
            return source.radiometry
        return self.input_radiometry

    @property
    def db_floor(self) -> float:
        """Floor of dB values and value of masked pixels in dB patches.

        The value given at construction, else the 0.1th percentile of the valid
        dB values of the whole dataset (estimated once, from the in-memory grid,
        or from full-resolution tiles spread over datasets larger than the
        memory budget), else :data:`DEFAULT_DB_FLOOR` if the dataset has no
        valid pixel on its grid.

        Returns:
            The floor in dB.
        """
        if self._db_floor is None:
            self._db_floor = self._estimate_db_floor()
        return self._db_floor

    def _estimate_db_floor(self) -> float:
        """Estimate the automatic dB floor.

        Returns:
            The 0.1th percentile of valid dB values (see :attr:`db_floor`).
        """
        if self.uses_memory_grid():
            values = _to_db(self.grid().array, self.radiometry).ravel()
        else:
            values = np.concatenate(
                [
                    _to_db(self._postprocess_grid(tile), self.radiometry).ravel()
                    for tile in self._sample_tiles()
                ]
            )
        return _db_floor_of(values)

    def _sample_tiles(self) -> list[np.ndarray]:
        """Full-resolution tiles spread over a dataset too large for memory.

        Up to :attr:`floor_tiles` × :attr:`floor_tiles` tiles of
        :attr:`floor_tile_size` pixels on a regular lattice, read at the dataset
        resolution so that speckle statistics are preserved.

        Returns:
            Raw tiles (float32, NaN = nodata), in the files' radiometry.
        """
        _, height, width, left, top = self._grid_shape()
        xres, yres = self.res
        size = self.floor_tile_size
        tile_h, tile_w = min(size, height), min(size, width)
        rows = np.unique(
            np.linspace(0, height - tile_h, min(self.floor_tiles, -(-height // size)))
        )
        cols = np.unique(
            np.linspace(0, width - tile_w, min(self.floor_tiles, -(-width // size)))
        )
        tiles = []
        for row in rows.round().astype(int).tolist():
            for col in cols.round().astype(int).tolist():
                bounds = (
                    left + col * xres,
                    top - (row + tile_h) * yres,
                    left + (col + tile_w) * xres,
                    top - row * yres,
                )
                tiles.append(self._read_bounds(bounds, (xres, yres)))
        return tiles

    def _postprocess_patch(self, patch: np.ndarray) -> np.ndarray:
        """Fill masked pixels: :attr:`fill_value` (0), or the dB floor in dB.

        Args:
            patch: float32 array (1, height, width), NaN = nodata

        Returns:
            A new array without NaN; in dB, ``max(patch, db_floor)``.
        """
        if self.radiometry == "db":
            floored: np.ndarray = np.fmax(patch, np.float32(self.db_floor))
            return floored
        filled: np.ndarray = np.nan_to_num(patch, nan=self.fill_value)
        return filled

    # -------------------------------------------------------------------- plot
    def plot(
        self,
        sample: dict[str, Any],
        show_titles: bool = True,
        suptitle: str | None = None,
    ) -> Figure:
        """Plot a SAR patch in dB with a 2-98 percentile stretch.

        Args:
            sample: a sample returned by :meth:`__getitem__`
            show_titles: flag indicating whether to show titles above each panel
            suptitle: optional string to use as a suptitle

        Returns:
            A matplotlib Figure with the rendered sample.
        """
        import matplotlib.pyplot as plt

        image = np.asarray(sample[self.sample_key][0], dtype=np.float64)
        db = _to_db(image, self.radiometry)
        valid = db[np.isfinite(db)]
        low, high = (
            (float(np.percentile(valid, 2)), float(np.percentile(valid, 98)))
            if valid.size
            else (0.0, 1.0)
        )
        if high <= low:
            high = low + 1.0
        fig, ax = plt.subplots(figsize=(4, 4))
        shown = ax.imshow(np.ma.masked_invalid(db), cmap="gray", vmin=low, vmax=high)
        fig.colorbar(shown, ax=ax, label="backscatter (dB)")
        ax.axis("off")
        if show_titles:
            ax.set_title("SAR (dB, 2-98 % stretch)")
        if suptitle is not None:
            fig.suptitle(suptitle)
        return fig
