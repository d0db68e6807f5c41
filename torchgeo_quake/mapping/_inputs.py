"""Reading and checking the inputs of a damage map (private helpers).

The input files are checked before anything is read (:func:`check_files`):
they exist and are files, none is a result the map would replace, and the id
column is not named like a column of the map. What the SAR input must look
like for the model is taken from its checkpoint (:func:`model_inputs`), and the
footprints are read, keeping only their id and geometry
(:func:`read_footprints`). The other inputs have their own private modules:
the SAR image and the DSM (``_rasters``), the footprints that cannot be used
(``_footprint_checks``) and the CRS in metres (``_crs``).
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import geopandas as gpd
from pyproj import CRS

if TYPE_CHECKING:
    from .model import LoadedModel
    from .settings import MapSettings

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
    "reference",
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
    #: Reference damage map to audit, or None.
    reference: Path | None = None

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
        ValueError: If one is a folder, or the reference damage map is of an
            unknown schema.
    """
    sar = require_file(settings.sar, "SAR image", "--sar")
    footprints = require_file(settings.footprints, "footprint file", "--footprints")
    dsm = require_file(settings.dsm, "DSM", "--dsm")
    exposure = require_file(settings.exposure, "exposure file", "--exposure")
    units = require_file(settings.units, "admin units file", "--units")
    reference = require_file(settings.reference, "reference file", "--reference")
    if reference is not None:
        from .audit import check_reference_schema

        check_reference_schema(reference, settings.reference_schema)
    assert sar is not None
    assert footprints is not None
    return InputFiles(sar, footprints, dsm, exposure, units, reference=reference)


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
