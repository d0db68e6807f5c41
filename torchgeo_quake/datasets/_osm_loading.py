"""Loading the building table of :class:`~torchgeo_quake.datasets.OSMBuildings`.

Before any query, :class:`~torchgeo_quake.datasets.OSMBuildings` checks its
options, reads and cleans its footprint files, labels them (from a damage
reference or a label column), finds the GEM exposure vector of every building
(dropping those without one) and indexes its files. These functions are those
steps; the dataset keeps the table's geometry and answers queries.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping, Sequence
from functools import partial
from typing import Protocol

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import pandas as pd
import shapely
from pyproj import CRS

from .footprints import _read_files
from .gem import GEMExposure, _building_features
from .rasterize import _default_res
from .references import (
    DamageSchema,
    Ungraded,
    join_damage,
    labels_from_field,
)


def _check_arguments(
    footprints: str,
    exposure: GEMExposure | None,
    admin_unit: str | None,
    admin_field: str | None,
) -> None:
    """Validate the mask and admin-unit options of the dataset.

    Args:
        footprints: ``"building"`` or ``"all"``
        exposure: the GEM exposure, or None
        admin_unit: admin unit of all buildings, or None
        admin_field: footprint column of the admin units, or None

    Raises:
        ValueError: If an option is invalid or two contradict each other.
    """
    if footprints not in ("building", "all"):
        raise ValueError(f"footprints must be 'building' or 'all', got {footprints!r}")
    if admin_unit is not None and admin_field is not None:
        raise ValueError("pass admin_unit= or admin_field=, not both")
    if (admin_unit is not None or admin_field is not None) and exposure is None:
        raise ValueError("admin_unit= and admin_field= need exposure=")


def _as_paths(
    damage: str | os.PathLike[str] | Sequence[str | os.PathLike[str]] | None,
) -> list[str]:
    """The damage reference files as a list.

    Args:
        damage: one file, several, or None

    Returns:
        Their paths (empty for None).
    """
    if damage is None:
        return []
    if isinstance(damage, str | os.PathLike):
        return [str(damage)]
    return [str(d) for d in damage]


def _resolution(
    res: float | tuple[float, float] | None, crs: CRS
) -> tuple[float, float]:
    """Resolution of the footprint masks as a pair of floats.

    Args:
        res: the resolution asked for, or None for the default of *crs*
        crs: CRS of the footprints

    Returns:
        (xres, yres)
    """
    if res is None:
        res = _default_res(crs)
    if isinstance(res, int | float):
        res = (float(res), float(res))
    return (float(res[0]), float(res[1]))


class _Options(Protocol):
    """The options of the dataset that reading and labelling use."""

    layer: str | int | None
    id_field: str
    city: str
    admin_field: str | None
    label_field: str | None
    damage_paths: list[str]
    damage_schema: DamageSchema
    grade_map: Mapping[str, int] | None
    damage_overlap: float
    damage_max_distance: float
    ungraded: Ungraded


def _read_footprints(
    options: _Options, files: list[str], crs: CRS | None
) -> tuple[gpd.GeoDataFrame, pd.DataFrame, int]:
    """Read and clean the footprint files, with labels from a label column.

    Args:
        options: the dataset's options (layer, id, admin and label columns,
            grade mapping)
        files: the footprint files
        crs: CRS to work in, or None for that of the first file

    Returns:
        The footprints, the features skipped (with the reason) and the number
        of geometries repaired.

    Raises:
        ImportError: If a GeoParquet file is given and pyarrow is missing.
        ValueError: If a file is unreadable, empty or lacks a needed column,
            or a label value is unknown.
    """
    label_field = options.label_field
    labels = None
    if label_field is not None:
        labels = partial(
            labels_from_field, grade_map=options.grade_map, field_name=label_field
        )
    return _read_files(
        files,
        crs,
        options.layer,
        options.id_field,
        options.admin_field,
        label_field,
        labels,
    )


def _label_footprints(options: _Options, buildings: gpd.GeoDataFrame) -> int:
    """Label the footprints (``label``, ``damage_grade``) and add ``city``.

    Labels come from the label column (already read), the damage reference
    layers, or are 0. Called by the dataset's constructor: warnings point at
    its caller.

    Args:
        options: the dataset's options (city, label column, damage
            references and how to join them)
        buildings: the cleaned footprints, changed in place

    Returns:
        The number of damage features that match no footprint.

    Raises:
        ValueError: If a damage layer is not in the forced schema or holds
            an unknown grade.
    """
    unmatched = 0
    field = options.label_field
    if field is None:
        buildings["label"] = np.zeros(len(buildings), dtype=np.int64)
        buildings["damage_grade"] = ""
    buildings["city"] = options.city
    if options.damage_paths:
        result = join_damage(
            buildings,
            options.damage_paths,
            footprint_ids=buildings["building_id"].to_numpy(),
            id_field=options.id_field,
            schema=options.damage_schema,
            grade_map=options.grade_map,
            overlap=options.damage_overlap,
            max_distance=options.damage_max_distance,
            ungraded=options.ungraded,
            context="OSMBuildings",
            stacklevel=4,
        )
        buildings["label"] = result.labels
        buildings["damage_grade"] = result.grades
        unmatched = result.unmatched
    grades = buildings["damage_grade"]
    missing = int((grades == f"missing {field}").sum()) if field else 0
    if missing:
        warnings.warn(
            f"OSMBuildings: {missing} of {len(buildings)} footprints have no "
            f"value in the label column {field!r}; they are excluded "
            "(label -1, counted in .excluded_damage), not taken as intact.",
            UserWarning,
            stacklevel=3,
        )
    return unmatched


def _file_index(files: list[str], buildings: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """The dataset index: one row per file with the bounds of its footprints.

    Args:
        files: the footprint files
        buildings: the footprints, with their ``file``

    Returns:
        Index over all time, with ``filepath`` and box geometries.
    """
    mint, maxt = pd.Timestamp.min, pd.Timestamp.max
    index = pd.IntervalIndex.from_tuples(
        [(mint, maxt)] * len(files), closed="both", name="datetime"
    )
    boxes = []
    for filepath in files:
        part = buildings[buildings["file"] == filepath]
        source = part if not part.empty else buildings
        boxes.append(shapely.box(*source.total_bounds))
    return gpd.GeoDataFrame(
        {"filepath": files}, index=index, geometry=boxes, crs=buildings.crs
    )


def _exposure_vectors(
    exposure: GEMExposure,
    buildings: gpd.GeoDataFrame,
    centroids: npt.NDArray[np.float64],
    admin_unit: str | None,
    admin_field: str | None,
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.bool_]]:
    """GEM vector of every building: of its admin unit, or the nearest point.

    Args:
        exposure: the GEM exposure
        buildings: the footprints
        centroids: their centroids
        admin_unit: admin unit of all buildings, or None
        admin_field: whether the footprints carry an ``admin_unit`` column
            (its name), or None

    Returns:
        float32 array (buildings, features), and whether each building is
        farther than the exposure's ``max_distance`` from every GEM point.

    Raises:
        ValueError: If an admin unit is unknown, the exposure has no
            coordinates and no admin unit is given, or no building is within
            the exposure's ``max_distance`` of a GEM point.
    """
    units: list[str] | None = None
    if admin_unit is not None:
        units = [admin_unit] * len(buildings)
    elif admin_field is not None:
        units = buildings["admin_unit"].astype(str).tolist()
    crs = CRS.from_user_input(buildings.crs)
    return _building_features(exposure, centroids, crs, units)


def _skip(
    skipped: pd.DataFrame, dropped: gpd.GeoDataFrame, reason: str
) -> pd.DataFrame:
    """Add dropped buildings to the skipped features.

    Args:
        skipped: the features skipped so far
        dropped: the buildings dropped
        reason: why

    Returns:
        The skipped features, with *dropped* appended.
    """
    rows = pd.DataFrame(
        {
            "building_id": dropped["building_id"].astype(object).to_numpy(),
            "file": dropped["file"].to_numpy(),
            "row": dropped["row"].to_numpy(),
            "reason": reason,
        }
    )
    return pd.concat([skipped, rows] if len(skipped) else [rows], ignore_index=True)
