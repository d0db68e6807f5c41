"""Reading and checking the inputs of a damage map (private helpers).

The input files are checked before anything is read (:func:`check_files`), the
SAR image is brought to the pixel size the model was trained on
(:func:`model_inputs`, :func:`open_sar`), footprint files that hold no usable
footprint are explained feature by feature, and a CRS in metres is found for
the grid of per-cell totals whatever the SAR image's CRS.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import pandas as pd
import shapely
from pyproj import CRS, Transformer

from ..trainers.input_spec import SAR_RES_TOLERANCE

if TYPE_CHECKING:
    from .model import LoadedModel
    from .settings import MapSettings

#: Relative difference of pixel sizes below which no resampling is done
#: (:data:`torchgeo_quake.trainers.input_spec.SAR_RES_TOLERANCE`).
RES_TOLERANCE = SAR_RES_TOLERANCE

#: Window side (pixels) for checkpoints that record no input specification.
DEFAULT_PATCH_SIZE = 32

#: The settings that name input files (their options are ``--`` and the name
#: with dashes).
INPUT_FIELDS: tuple[str, ...] = (
    "sar",
    "footprints",
    "checkpoint",
    "dsm",
    "exposure",
    "fallback_checkpoint",
    "units",
)


def require_file(
    path: str | os.PathLike[str] | None, what: str, flag: str = ""
) -> Path | None:
    """Check that an input file exists and is a file.

    Args:
        path: the path, or None
        what: which input (for the message)
        flag: its command-line option (for the message), e.g. ``--sar``

    Returns:
        The path, or None.

    Raises:
        FileNotFoundError: If the path does not exist.
        ValueError: If it is a folder (whose files would all be read as one
            input: a DSM beside the SAR image would be read as SAR).
    """
    if path is None:
        return None
    file = Path(path)
    if not file.exists():
        raise FileNotFoundError(f"{what} {str(file)!r} does not exist")
    if file.is_dir():
        names = sorted(
            p.name for p in file.iterdir() if p.is_file() and not p.name.startswith(".")
        )
        held = (
            f" (it holds {', '.join(names[:6])}{', ...' if len(names) > 6 else ''})"
            if names
            else ""
        )
        option = f"{flag} " if flag else ""
        raise ValueError(
            f"{option}{str(file)!r} is a folder{held}: every file in it would be "
            f"read as the {what}. Give the file itself, {option}{file / '<file>'}."
        )
    return file


def _has_geometry(path: Path) -> bool:
    """Whether a file opens as a layer with geometries (not a plain table).

    Args:
        path: a vector file

    Returns:
        False for tables without geometry (a CSV of attributes, a spreadsheet);
        True otherwise, also when the file cannot be read (the reader explains).
    """
    if path.suffix.lower() == ".parquet":
        return True
    try:
        import pyogrio

        info = pyogrio.read_info(path)
    except Exception:  # the reader reports unreadable files itself
        return True
    return info.get("geometry_type") is not None


def read_vector_file(path: Path, what: str, flag: str) -> gpd.GeoDataFrame:
    """Read a vector file of the map's inputs, refusing plain tables.

    Args:
        path: the file
        what: which input (for the message)
        flag: its command-line option (for the message)

    Returns:
        The features.

    Raises:
        ValueError: If the file is a table without geometries (e.g. a CSV),
            cannot be read or has no CRS.
    """
    from ..datasets.osm import read_vector

    if not _has_geometry(path):
        raise ValueError(
            f"{flag} {str(path)!r} is not a vector file: it is read as a table "
            f"without geometries. The {what} must be polygons in a vector format "
            "(GeoPackage, GeoJSON, Shapefile, FlatGeobuf or GeoParquet); convert "
            "a CSV with coordinates or WKT with ogr2ogr first."
        )
    frame = read_vector(path)
    if not isinstance(frame, gpd.GeoDataFrame):  # pragma: no cover - caught above
        raise ValueError(f"{flag} {str(path)!r} is not a vector file")
    return frame


def check_id_field(id_field: str, reserved: tuple[str, ...]) -> None:
    """Refuse an id column named like a column of the map.

    Args:
        id_field: building id column of the footprints
        reserved: the columns the map writes besides the id

    Raises:
        ValueError: If *id_field* is one of them (GeoPackage column names are
            compared without case).
    """
    clash = next((c for c in reserved if c.lower() == id_field.lower()), None)
    if clash is None:
        return
    raise ValueError(
        f"--id-field {id_field!r} (id_field=) clashes with the output column "
        f"{clash!r} of the map (its columns: {', '.join(reserved)}): the ids "
        f"would be overwritten. Rename the id column of the footprint file, e.g. "
        f'`ogr2ogr -sql "SELECT *, {id_field} AS building_id FROM <layer>" '
        "renamed.gpkg <footprints>`, and pass --id-field building_id."
    )


def check_not_outputs(settings: MapSettings, out: Path, files: tuple[str, ...]) -> None:
    """Refuse an input that is one of the result files the map replaces.

    Args:
        settings: the map's settings
        out: the output folder (absolute)
        files: names of the result files

    Raises:
        ValueError: If an input file is a result file in *out* and
            :attr:`~torchgeo_quake.mapping.settings.MapSettings.overwrite` would
            replace it.
    """
    if not settings.overwrite:
        return  # results in out are refused anyway (check_output)
    replaced = {(out / name).resolve() for name in files}
    for name in INPUT_FIELDS:
        value = getattr(settings, name)
        if value is None:
            continue
        path, flag = Path(value), "--" + name.replace("_", "-")
        if path.exists() and path.resolve() in replaced:
            raise ValueError(
                f"{flag} {str(path)!r} is in the output folder "
                f"{str(settings.out)!r}, and --overwrite (overwrite=True) would "
                "replace it with the new map: copy it elsewhere and pass the "
                "copy, or choose another --out."
            )


@dataclass(frozen=True)
class InputFiles:
    """The input files of a map, checked to exist."""

    #: Post-event SAR image.
    sar: Path
    #: Building footprints.
    footprints: Path
    #: Pre-event DSM, or None.
    dsm: Path | None
    #: GEM exposure CSV, or None.
    exposure: Path | None
    #: Admin units, or None (a grid).
    units: Path | None

    @property
    def available(self) -> set[str]:
        """The modalities these files provide.

        Returns:
            ``sar`` and ``footprint``, and ``dsm`` and ``gem`` when given.
        """
        available = {"sar", "footprint"}
        if self.dsm is not None:
            available.add("dsm")
        if self.exposure is not None:
            available.add("gem")
        return available


def check_files(settings: MapSettings) -> InputFiles:
    """Check that the input files of a map exist.

    Args:
        settings: the map's settings

    Returns:
        The files.

    Raises:
        FileNotFoundError: If one does not exist.
        ValueError: If one is a folder.
    """
    sar = require_file(settings.sar, "SAR image", "--sar")
    footprints = require_file(settings.footprints, "footprint file", "--footprints")
    dsm = require_file(settings.dsm, "DSM", "--dsm")
    exposure = require_file(settings.exposure, "exposure file", "--exposure")
    units = require_file(settings.units, "admin units file", "--units")
    assert sar is not None
    assert footprints is not None
    return InputFiles(sar, footprints, dsm, exposure, units)


def model_inputs(model: LoadedModel, radiometry: str | None) -> dict[str, Any]:
    """What the SAR input must look like for a model.

    Args:
        model: the model
        radiometry: radiometry asked for by the user, or None

    Returns:
        ``radiometry``, ``sar_res`` (metres or None: the image's own) and
        ``patch_size``, and ``recorded`` (whether the checkpoint records them).

    Raises:
        ValueError: If *radiometry* contradicts the checkpoint.
    """
    spec = model.input_spec
    if spec is None:
        used = radiometry or "db"
        warnings.warn(
            f"checkpoint {str(model.path)!r} records no input specification (it "
            "was written before torchgeo_quake stored one): the SAR image is used "
            f"at its own pixel size, in {used} radiometry, with "
            f"{DEFAULT_PATCH_SIZE} x {DEFAULT_PATCH_SIZE}-pixel windows. If the "
            "model was trained on another pixel size or radiometry, the map is "
            "wrong: resample the image to the training pixel size and pass "
            "--radiometry, or retrain the model to record them.",
            UserWarning,
            stacklevel=4,  # the caller of map_damage or run_map
        )
        return {
            "radiometry": used,
            "sar_res": None,
            "patch_size": DEFAULT_PATCH_SIZE,
            "recorded": False,
        }
    if radiometry is not None and radiometry != spec["radiometry"]:
        raise ValueError(
            f"--radiometry {radiometry} (radiometry=) contradicts the model "
            f"{str(model.path)!r}, which was trained on SAR values in "
            f"{spec['radiometry']}: drop --radiometry (the checkpoint's radiometry "
            "is used by default) or pass a model trained on that radiometry."
        )
    return {**spec, "recorded": True}


def read_footprints(path: Path, id_field: str) -> gpd.GeoDataFrame:
    """Read the input footprints and check their CRS is plausible.

    Only the id column and the geometries are kept (other attributes of large
    OSM exports would only take memory).

    Args:
        path: footprint file
        id_field: building id column

    Returns:
        The features (*id_field* and geometry), in file order, in their own CRS.

    Raises:
        ValueError: If the file is unreadable or not a vector file, is empty,
            lacks *id_field*, or its coordinates do not fit its CRS.
    """
    if path.is_dir():
        raise ValueError(
            f"--footprints {str(path)!r} is a folder; pass one vector file "
            "(GeoPackage, GeoJSON, Shapefile, FlatGeobuf or GeoParquet)."
        )
    frame = read_vector_file(path, "building footprints", "--footprints")
    if frame.empty:
        raise ValueError(f"footprint file {str(path)!r} holds no features")
    if id_field not in frame.columns:
        raise ValueError(
            f"footprint file {str(path)!r} has no {id_field!r} column (columns: "
            f"{', '.join(map(str, frame.columns))}); pass its id column with "
            "--id-field."
        )
    frame = gpd.GeoDataFrame(
        {id_field: frame[id_field].array}, geometry=frame.geometry.values, crs=frame.crs
    )
    crs = CRS.from_user_input(frame.crs)
    present = frame.geometry.notna() & ~frame.geometry.is_empty
    if crs.is_geographic and present.any():
        xmin, ymin, xmax, ymax = frame.geometry[present].total_bounds
        if xmin < -180.5 or xmax > 360.5 or ymin < -90.5 or ymax > 90.5:
            raise ValueError(
                f"footprint file {str(path)!r} declares the geographic CRS "
                f"{crs.to_string()} but its coordinates ({xmin:.1f}, {ymin:.1f}, "
                f"{xmax:.1f}, {ymax:.1f}) are not longitudes and latitudes: the "
                "file's CRS is wrong. Assign the right one (e.g. `ogr2ogr -a_srs "
                f"EPSG:32637 fixed.gpkg {path}`) and try again."
            )
    return frame


# ------------------------------------------------------------ footprints
def footprint_reasons(frame: gpd.GeoDataFrame, id_field: str) -> pd.Series:
    """Why each feature is not a usable building footprint.

    The same rules as :class:`~torchgeo_quake.datasets.OSMBuildings`: an
    integer id, a geometry, polygonal after :func:`shapely.make_valid`, and an
    id not used by an earlier feature.

    Args:
        frame: the footprints
        id_field: building id column

    Returns:
        The reason of every feature (None for usable ones), in file order.
    """
    from ..datasets.footprints import _polygonal

    ids = pd.to_numeric(frame[id_field], errors="coerce")
    geoms = np.asarray(frame.geometry.values, dtype=object)
    reasons = np.full(len(frame), None, dtype=object)
    for i, (bid, geom) in enumerate(zip(ids.tolist(), geoms, strict=True)):
        if pd.isna(bid):
            reasons[i] = f"missing or non-numeric {id_field}"
        elif geom is None or geom.is_empty:
            reasons[i] = "missing geometry"
        elif not geom.is_valid:
            if _polygonal(shapely.make_valid(geom)) is None:
                reasons[i] = "invalid geometry that could not be repaired"
        elif _polygonal(geom) is None:
            reasons[i] = f"not a polygon ({geom.geom_type})"
    usable = pd.isna(pd.Series(reasons, dtype=object)).to_numpy()
    duplicate = ids.where(usable).duplicated(keep="first").to_numpy() & usable
    reasons[duplicate] = f"duplicate {id_field}"
    return pd.Series(reasons, index=frame.index, dtype=object)


def maybe_usable(frame: gpd.GeoDataFrame, id_field: str) -> int:
    """Count the features that may be usable footprints (a quick upper bound).

    Args:
        frame: the footprints
        id_field: building id column

    Returns:
        Features with a numeric id and a polygonal or collection geometry.
    """
    ids = pd.to_numeric(frame[id_field], errors="coerce").notna().to_numpy()
    geoms = np.asarray(frame.geometry.values, dtype=object)
    kinds = shapely.get_type_id(geoms)
    polygonal = np.isin(kinds, (3, 6, 7)) & ~shapely.is_empty(geoms)
    return int((ids & polygonal).sum())


def no_footprint_error(
    frame: gpd.GeoDataFrame, path: Path, id_field: str
) -> ValueError | None:
    """The error for a footprint file without a single usable footprint.

    Args:
        frame: the footprints
        path: their file (for the message)
        id_field: building id column

    Returns:
        A ValueError with the count of each reason and how to fix it, or None
        when some footprint is usable.
    """
    reasons = footprint_reasons(frame, id_field)
    if reasons.isna().any():
        return None
    counts = reasons.value_counts()
    lines = [
        f"none of the {len(frame)} features of the footprint file {str(path)!r} "
        "is a usable building footprint:"
    ]
    lines += [f"  {count} {reason}" for reason, count in counts.items()]
    hints = []
    bad_id = f"missing or non-numeric {id_field}"
    if bad_id in counts.index:
        values = frame[id_field][reasons == bad_id].dropna().astype(str)
        examples = ", ".join(repr(v) for v in values.unique()[:3])
        hints.append(
            "ids must be integers (OSM ids such as 123456789)"
            + (f"; {id_field!r} holds values like {examples}" if examples else "")
            + ". Pass a column of integer ids with --id-field (id_field=), or "
            "convert the ids to integers (e.g. 'way/123' -> 123)."
        )
    if any(str(r).startswith("not a polygon") for r in counts.index):
        hints.append(
            "building footprints must be polygons (outlines): points and lines "
            "have no footprint to rasterise. Export the buildings as polygons "
            "(e.g. the HOTOSM 'buildings' polygons, not points)."
        )
    if "missing geometry" in counts.index:
        hints.append("features without a geometry cannot be mapped.")
    if "invalid geometry that could not be repaired" in counts.index:
        hints.append(
            "invalid geometries that shapely.make_valid cannot turn into "
            "polygons (zero area) cannot be mapped."
        )
    if f"duplicate {id_field}" in counts.index:
        hints.append(f"each building needs its own {id_field}.")
    lines += [f"Hint: {hint}" for hint in hints]
    return ValueError("\n".join(lines))


# ------------------------------------------------------------------- CRS
def metres_per_unit(crs: CRS) -> float | None:
    """Metres per unit of a projected CRS.

    Args:
        crs: a CRS

    Returns:
        The factor, or None for geographic CRSs and CRSs without a known unit.
    """
    if not crs.is_projected or not crs.axis_info:
        return None
    factor = crs.axis_info[0].unit_conversion_factor
    if not factor or not math.isfinite(factor):
        return None
    return float(factor)


def utm_crs(bounds: tuple[float, float, float, float], crs: CRS) -> CRS:
    """The WGS 84 UTM zone of the centre of some bounds.

    Args:
        bounds: (xmin, ymin, xmax, ymax) in *crs*
        crs: their CRS

    Returns:
        The UTM CRS (EPSG 326xx north, 327xx south).
    """
    from ..datasets.utils import utm_crs_of

    return utm_crs_of(gpd.GeoSeries([shapely.box(*bounds)], crs=crs))


def metric_crs(crs: CRS, bounds: tuple[float, float, float, float]) -> CRS:
    """A CRS in metres for an area: *crs* itself if it is one, else UTM.

    Args:
        crs: CRS of the area
        bounds: (xmin, ymin, xmax, ymax) of the area in *crs*

    Returns:
        The CRS.
    """
    if metres_per_unit(crs) == 1.0:
        return crs
    return utm_crs(bounds, crs)


def to_crs_xy(
    x: npt.NDArray[np.float64], y: npt.NDArray[np.float64], source: CRS, target: CRS
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Transform points, keeping NaN for missing ones.

    Args:
        x: x coordinates in *source*
        y: y coordinates
        source: their CRS
        target: CRS wanted

    Returns:
        x and y in *target*.
    """
    if source == target:
        return x, y
    ok = np.isfinite(x) & np.isfinite(y)
    tx, ty = np.full(len(x), np.nan), np.full(len(y), np.nan)
    transformer = Transformer.from_crs(source, target, always_xy=True)
    tx[ok], ty[ok] = transformer.transform(x[ok], y[ok])
    return tx, ty


# -------------------------------------------------------------------- SAR
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


# ---------------------------------------------------------- raster values
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
