"""Reading and cleaning of building footprint files (OSM / HOTOSM exports).

Finds the footprint files of a dataset (:func:`_find_files`), reads each one
(:func:`read_vector`, any format GDAL reads), checks its columns, repairs
invalid geometries with :func:`shapely.make_valid` and records every feature
that cannot be used with the reason (:func:`_read_file`), then drops repeated
ids (:func:`_drop_duplicates`). :func:`_read_files` does all of it for several
files and :func:`_check_skipped` reports what was skipped.
:class:`~torchgeo_quake.datasets.osm.OSMBuildings` composes these steps; the
damage labels are joined by :mod:`~torchgeo_quake.datasets.references`.

The underscored names are internal to :mod:`torchgeo_quake.datasets`.

.. versionadded:: 0.2
"""

from __future__ import annotations

import os
import pathlib
import re
import warnings
from collections.abc import Callable, Iterable
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS

__all__ = ["SKIP_HINTS", "VECTOR_SUFFIXES", "read_vector"]

#: File suffixes read as vector data.
VECTOR_SUFFIXES = (".gpkg", ".geojson", ".json", ".shp", ".parquet", ".fgb")


def read_vector(path: str | os.PathLike[str], layer: str | int | None = None) -> Any:
    """Read a vector file into a GeoDataFrame with a clear error on failure.

    GeoJSON without a CRS is taken as EPSG:4326 (RFC 7946); other formats without
    a CRS are rejected.

    Args:
        path: GeoPackage, GeoJSON, Shapefile, FlatGeobuf or GeoParquet file
        layer: layer of a multi-layer file (defaults to the first)

    Returns:
        The GeoDataFrame.

    Raises:
        FileNotFoundError: If *path* does not exist.
        ImportError: If *path* is GeoParquet and pyarrow is not installed.
        ValueError: If the file cannot be read, holds no geometries (a CSV) or
            has no CRS.

    .. versionadded:: 0.1
    """
    path = str(path)
    if not os.path.exists(path):
        raise FileNotFoundError(
            f"vector file {path!r} does not exist. Check the path (footprints and "
            "damage layers are GeoPackage, GeoJSON, Shapefile or GeoParquet files)."
        )
    if pathlib.Path(path).suffix.lower() == ".parquet":
        try:
            import pyarrow  # noqa: F401
        except ImportError as err:
            raise ImportError(
                f"reading the GeoParquet file {path!r} needs the pyarrow package, "
                "which is not installed: `python -m pip install pyarrow` (a "
                "dependency of torchgeo-quake), or convert the file, e.g. "
                f"`ogr2ogr buildings.gpkg {path}`."
            ) from err
    try:
        if pathlib.Path(path).suffix.lower() == ".parquet":
            frame = gpd.read_parquet(path)
        else:
            frame = gpd.read_file(path, layer=layer)
    except Exception as err:  # pyogrio, fiona and arrow raise many types
        raise ValueError(
            f"cannot read vector file {path!r} ({err}). The file is corrupt or not "
            "in a format GDAL can read; re-export it as GeoPackage or GeoJSON."
        ) from err
    if not isinstance(frame, gpd.GeoDataFrame) or "geometry" not in frame.columns:
        raise ValueError(
            f"{path!r} is not a vector file: it holds a table without geometries "
            "(a CSV?). Give the footprints or damage layer as GeoPackage, GeoJSON, "
            "Shapefile, FlatGeobuf or GeoParquet."
        )
    if frame.crs is None:
        if pathlib.Path(path).suffix.lower() in (".geojson", ".json"):
            frame = frame.set_crs(4326)
        else:
            raise ValueError(
                f"vector file {path!r} has no CRS. Assign one (e.g. "
                f"`ogr2ogr -a_srs EPSG:4326 fixed.gpkg {path}`) and try again."
            )
    return frame


_GEOJSON_TYPE = re.compile(rb'"type"\s*:\s*"(FeatureCollection|Feature)"')


def _is_geojson(path: pathlib.Path) -> bool:
    """Whether a ``.json`` file looks like GeoJSON (not a metadata sidecar).

    Directories of SAR products hold JSON metadata (Umbra ``*_METADATA.json``,
    STAC items, the simulator's ``scene.json``) that are not footprints.

    Args:
        path: a ``.json`` file

    Returns:
        True if its first 64 KiB declare a GeoJSON Feature or FeatureCollection
        and it is not a STAC item.
    """
    try:
        with open(path, "rb") as f:
            head = f.read(65536)
    except OSError:
        return False
    return bool(_GEOJSON_TYPE.search(head)) and b'"stac_version"' not in head


#: Advice for each reason a footprint feature is skipped.
SKIP_HINTS = {
    "id": (
        "ids must be numeric: pass the name of a numeric id column as id_field=, "
        "or extract the number from values such as 'way/123'"
    ),
    "geometry": "export the features with their geometries",
    "invalid": "repair the file, e.g. `ogr2ogr -makevalid fixed.gpkg in.gpkg`",
    "polygon": (
        "footprints must be polygons (points or lines cannot give a mask): export "
        "the building polygons"
    ),
    "duplicate": "make the ids unique (the first feature of an id is kept)",
    "admin": "fill the admin unit column, or pass one unit for all as admin_unit=",
    "range": (
        "ids must be whole numbers between -2**63 and 2**63 - 1: fix the id "
        "column, or pass another unique integer column as id_field="
    ),
    "exposure": (
        "check that the GEM exposure covers the footprints (its lon/lat columns "
        "and area), or pass GEMExposure(..., max_distance=) a larger distance"
    ),
}

_INT64_MIN = -(2**63)
_INT64_MAX = 2**63 - 1


def _int64_ids(values: pd.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Parse an id column into int64 without rounding, truncating or wrapping.

    Integers (of any dtype, or as text) strictly inside the int64 range are
    kept exactly; floats only when they are whole and in range. ``1.5``,
    ``1e30``, ``2**64`` or ``inf`` would otherwise be truncated or wrap around
    and collide with, or pose as, other ids. The two ends of the range,
    ``-2**63`` and ``2**63 - 1``, are rejected too: GDAL clamps larger integers
    to them (with a mere warning), so they stand for ids that were lost.

    Args:
        values: the id column

    Returns:
        ``(ids, missing, out_of_range)``: int64 ids (0 where not valid), and
        masks of the values that are missing or not numeric, and of the numeric
        ones that are not an integer in the int64 range.
    """
    n = len(values)
    ids = np.zeros(n, dtype=np.int64)
    missing = np.zeros(n, dtype=bool)
    bad = np.zeros(n, dtype=bool)
    array = values.to_numpy()
    if values.dtype.kind in "iu":
        if values.dtype.kind == "u":
            bad = array >= _INT64_MAX
        else:
            bad = (array <= _INT64_MIN) | (array >= _INT64_MAX)
        ids[~bad] = array[~bad].astype(np.int64)
        return ids, missing, bad
    if values.dtype.kind == "f":
        floats = array.astype(np.float64)
        missing = np.isnan(floats)
        with np.errstate(invalid="ignore"):
            bad = ~missing & (
                ~np.isfinite(floats)
                | (floats != np.floor(floats))
                | (floats < -(2.0**63))
                | (floats >= 2.0**63)
            )
        ok = ~missing & ~bad
        ids[ok] = floats[ok].astype(np.int64)
        return ids, missing, bad
    for i, value in enumerate(array.tolist()):
        number: int | None = None
        if value is None or (isinstance(value, float) and np.isnan(value)):
            missing[i] = True
            continue
        if isinstance(value, bool):
            missing[i] = True
            continue
        if isinstance(value, int):
            number = value
        elif isinstance(value, float):
            if not value.is_integer():
                bad[i] = True
                continue
            number = int(value)
        else:
            text = str(value).strip()
            try:
                number = int(text)
            except ValueError:
                try:
                    as_float = float(text)
                except ValueError:
                    missing[i] = True
                    continue
                if np.isnan(as_float):
                    missing[i] = True
                    continue
                if not as_float.is_integer():
                    bad[i] = True
                    continue
                number = int(as_float)
        if not _INT64_MIN < number < _INT64_MAX:
            bad[i] = True
            continue
        ids[i] = number
    return ids, missing, bad


def _hint(reason: str) -> str:
    """Advice for a skip reason.

    Args:
        reason: a reason of :attr:`OSMBuildings.skipped`

    Returns:
        The matching entry of :data:`SKIP_HINTS`, or "".
    """
    for key, words in (
        ("id", "non-numeric"),
        ("geometry", "missing geometry"),
        ("invalid", "could not be repaired"),
        ("polygon", "not a polygon"),
        ("duplicate", "duplicate"),
        ("admin", "admin unit"),
        ("range", "int64 range"),
        ("exposure", "no exposure point"),
    ):
        if words in reason:
            return SKIP_HINTS[key]
    return ""


def _polygonal(geom: shapely.Geometry | None) -> shapely.Geometry | None:
    """Keep the polygonal part of a geometry.

    Args:
        geom: any geometry or None

    Returns:
        A Polygon/MultiPolygon, or None if there is no polygonal part.
    """
    if geom is None or geom.is_empty:
        return None
    if geom.geom_type in ("Polygon", "MultiPolygon"):
        return geom
    if geom.geom_type == "GeometryCollection":
        parts = [g for g in geom.geoms if g.geom_type in ("Polygon", "MultiPolygon")]
        if parts:
            return shapely.union_all(parts)
    return None


def _find_files(
    paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
    damage_paths: Iterable[str] = (),
) -> list[str]:
    """Footprint files found in *paths*.

    Files given explicitly are taken as they are. In directories, every file
    with a suffix of :data:`VECTOR_SUFFIXES` is found, except ``.json`` files
    that are not GeoJSON (SAR metadata sidecars, STAC items) and the damage
    layers.

    Args:
        paths: footprint files or directories holding them
        damage_paths: damage layers, left out of directory listings

    Returns:
        Sorted list of vector files.

    Raises:
        FileNotFoundError: If a path does not exist.
    """
    if isinstance(paths, str | os.PathLike):
        paths = [paths]
    found: set[str] = set()
    damage = {os.path.realpath(d) for d in damage_paths}
    for path in paths:
        p = pathlib.Path(path)
        if p.is_dir():
            found |= {
                str(f)
                for f in p.rglob("*")
                if f.suffix.lower() in VECTOR_SUFFIXES
                and f.is_file()
                and (f.suffix.lower() != ".json" or _is_geojson(f))
                and os.path.realpath(f) not in damage
            }
        elif p.suffix.lower() in VECTOR_SUFFIXES and p.exists():
            found.add(str(p))
        elif not p.exists():
            raise FileNotFoundError(
                f"OSMBuildings: footprint path {str(p)!r} does not exist."
            )
    return sorted(found)


def _read_files(
    files: list[str],
    crs: CRS | None,
    layer: str | int | None,
    id_field: str,
    admin_field: str | None = None,
    label_field: str | None = None,
    labels: Callable[..., tuple[np.ndarray, np.ndarray]] | None = None,
) -> tuple[gpd.GeoDataFrame, pd.DataFrame, int]:
    """Read and clean the footprints of several files.

    Args:
        files: the footprint files
        crs: CRS to work in (None: that of the first file)
        layer: layer of multi-layer files
        id_field: unique building id column
        admin_field: admin unit column, if any
        label_field: label column, if any
        labels: with *label_field*, the function that turns its values into
            labels and grades, called as ``labels(values, source=filepath)``
            (:func:`~torchgeo_quake.datasets.references.labels_from_field`);
            they become the ``label`` and ``damage_grade`` columns

    Returns:
        The footprints with unique ``building_id`` in *crs*, the skipped
        features (``building_id``, ``file``, ``row``, ``reason``) and the
        number of repaired geometries.

    Raises:
        ImportError: If a file is GeoParquet and pyarrow is missing.
        ValueError: If a file is unreadable, empty or lacks a column, or a
            label value is unknown.
    """
    frames = []
    skipped: list[dict[str, Any]] = []
    repaired = 0
    for filepath in files:
        frame, file_skipped, file_repaired = _read_file(
            filepath, crs, layer, id_field, admin_field, label_field
        )
        crs = crs or frame.crs
        repaired += file_repaired
        if labels is not None:
            frame["label"], frame["damage_grade"] = labels(
                frame.pop("_label_value"), source=filepath
            )
        skipped.extend(file_skipped)
        frames.append(frame)
    buildings = gpd.GeoDataFrame(pd.concat(frames, ignore_index=True), crs=crs)
    buildings = _drop_duplicates(buildings, skipped, id_field)
    table = pd.DataFrame(skipped, columns=["building_id", "file", "row", "reason"])
    return buildings, table, repaired


def _read_file(
    filepath: str,
    crs: CRS | None,
    layer: str | int | None,
    id_field: str,
    admin_field: str | None = None,
    label_field: str | None = None,
) -> tuple[gpd.GeoDataFrame, list[dict[str, Any]], int]:
    """Read, check, reproject and clean the footprints of one file.

    Args:
        filepath: the file
        crs: CRS to reproject to (None: keep the file's)
        layer: layer of a multi-layer file
        id_field: unique building id column
        admin_field: admin unit column, if any
        label_field: label column, if any

    Returns:
        The result of :func:`_clean`.

    Raises:
        ImportError: If the file is GeoParquet and pyarrow is missing.
        ValueError: If the file is unreadable, empty or lacks a column.
    """
    frame = read_vector(filepath, layer=layer)
    if frame.empty:
        raise ValueError(
            f"OSMBuildings: footprint file {filepath!r} holds no features. "
            "Export the buildings of the area of interest again."
        )
    columns = ", ".join(map(str, frame.columns))
    if id_field not in frame.columns:
        raise ValueError(
            f"OSMBuildings: footprint file {filepath!r} has no {id_field!r} "
            f"column (columns: {columns}). Pass the name of its unique building "
            "id column as id_field=."
        )
    if admin_field is not None and admin_field not in frame.columns:
        raise ValueError(
            f"OSMBuildings: footprint file {filepath!r} has no admin unit "
            f"column {admin_field!r} (columns: {columns}). Pass the right "
            "admin_field=, or one unit for all buildings as admin_unit=."
        )
    if label_field is not None and label_field not in frame.columns:
        raise ValueError(
            f"OSMBuildings: footprint file {filepath!r} has no label column "
            f"{label_field!r} (columns: {columns}). Pass the right label_field=."
        )
    frame = frame.to_crs(crs or frame.crs)
    return _clean(frame, filepath, id_field, admin_field, label_field)


def _clean(
    frame: gpd.GeoDataFrame,
    filepath: str,
    id_field: str,
    admin_field: str | None = None,
    label_field: str | None = None,
) -> tuple[gpd.GeoDataFrame, list[dict[str, Any]], int]:
    """Repair invalid geometries and record features that cannot be used.

    Args:
        frame: footprints of one file, already in the target CRS
        filepath: the file they came from
        id_field: unique building id column
        admin_field: admin unit column, if any
        label_field: label column, if any

    Returns:
        Cleaned frame with ``building_id``, ``file``, ``row`` (position of
        the feature in the file), ``admin_unit`` (with *admin_field*),
        ``_label_value`` (with *label_field*) and geometry columns, the list of
        skipped features and the number of repaired geometries.
    """
    ids, no_id, out_of_range = _int64_ids(frame[id_field])
    geoms = np.array(frame.geometry.values, dtype=object)
    units: pd.Series | None = None
    no_unit = np.zeros(len(frame), dtype=bool)
    if admin_field is not None:
        units = frame[admin_field]
        text = units.astype(str).str.strip()
        no_unit = (units.isna() | (text == "") | (text.str.lower() == "nan")).to_numpy()
    # The first reason that applies to a feature, in this order.
    reasons = np.full(len(frame), None, dtype=object)
    reasons[no_id] = f"missing or non-numeric {id_field}"
    reasons[out_of_range] = f"{id_field} not an integer in int64 range"
    no_id |= out_of_range
    reasons[~no_id & no_unit] = f"missing admin unit ({admin_field})"
    left = ~no_id & ~no_unit
    no_geometry = shapely.is_missing(geoms) | shapely.is_empty(geoms)
    reasons[left & no_geometry] = "missing geometry"
    left &= ~no_geometry
    invalid = np.flatnonzero(left & ~shapely.is_valid(geoms))
    for i, geom in zip(
        invalid.tolist(), shapely.make_valid(geoms[invalid]), strict=True
    ):
        geoms[i] = _polygonal(geom)
        if geoms[i] is None:
            reasons[i] = "invalid geometry that could not be repaired"
    repaired = int(sum(geoms[i] is not None for i in invalid.tolist()))
    left[invalid] = False
    # Polygons are kept as they are; other valid types need a polygonal part.
    other = left & ~np.isin(shapely.get_type_id(geoms), (3, 6))
    for i in np.flatnonzero(other).tolist():
        if _polygonal(geoms[i]) is None:
            reasons[i] = f"not a polygon ({geoms[i].geom_type})"
    keep = pd.isna(reasons)
    skipped = [
        {
            "building_id": None if no_id[i] else int(ids[i]),
            "file": filepath,
            "row": i,
            "reason": reasons[i],
        }
        for i in np.flatnonzero(~keep).tolist()
    ]
    columns: dict[str, Any] = {
        "building_id": ids[keep],
        "file": filepath,
        "row": np.flatnonzero(keep),
    }
    if units is not None:
        columns["admin_unit"] = units[keep].astype(str).str.strip().to_numpy()
    if label_field is not None:
        columns["_label_value"] = frame[label_field][keep].to_numpy()
    cleaned = gpd.GeoDataFrame(columns, geometry=list(geoms[keep]), crs=frame.crs)
    return cleaned, skipped, repaired


def _drop_duplicates(
    buildings: gpd.GeoDataFrame, skipped: list[dict[str, Any]], id_field: str
) -> gpd.GeoDataFrame:
    """Keep the first feature of every id; record the others in *skipped*.

    Args:
        buildings: cleaned footprints of all files
        skipped: skipped features, extended in place
        id_field: name of the id column in the files, for the reason

    Returns:
        The footprints with unique ``building_id``, reindexed from 0.
    """
    duplicated = buildings["building_id"].duplicated(keep="first")
    for row in buildings[duplicated].itertuples():
        skipped.append(
            {
                "building_id": int(row.building_id),
                "file": row.file,
                "row": int(row.row),
                "reason": f"duplicate {id_field}",
            }
        )
    return buildings[~duplicated].reset_index(drop=True)


def _skip_summary(skipped: pd.DataFrame, hints: bool) -> str:
    """Counts of skipped features per reason, for messages.

    Args:
        skipped: table with a ``reason`` column
        hints: add what to do about each reason

    Returns:
        E.g. ``"not a polygon (Point): 3, duplicate osm_id: 1"``.
    """
    parts = []
    for reason, n in skipped["reason"].value_counts().items():
        hint = _hint(str(reason)) if hints else ""
        parts.append(f"{reason}: {n}" + (f" -> {hint}" if hint else ""))
    return "; ".join(parts)


def _check_skipped(
    files: list[str], kept: int, skipped: pd.DataFrame, stacklevel: int = 2
) -> None:
    """Warn about skipped features; fail if no footprint is left.

    Args:
        files: the footprint files
        kept: number of footprints left
        skipped: the skipped features (with a ``reason`` column)
        stacklevel: stack level of the warning (2: the line calling this)

    Raises:
        ValueError: If no footprint is left (the message counts the reasons
            and says how to fix them).
    """
    total = kept + len(skipped)
    if kept == 0:
        raise ValueError(
            f"OSMBuildings: no valid footprint left in {files}: all {total} "
            f"features were skipped ({_skip_summary(skipped, hints=True)})."
        )
    if not skipped.empty:
        warnings.warn(
            f"OSMBuildings: skipped {len(skipped)} of {total} footprint "
            f"features of {files} ({_skip_summary(skipped, hints=False)}); "
            "their ids, files, rows and reasons are in .skipped.",
            UserWarning,
            stacklevel=stacklevel,
        )
