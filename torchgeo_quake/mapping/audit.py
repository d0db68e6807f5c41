"""Audit of a reference damage map against the model's: ``map --reference``.

Russo et al. (2025, Sec. IV and Fig. 5) found the model flagging damaged
buildings in unseen cities that the crowdsourced reference had left intact, and
confirmed several on post-event imagery: the model can help refine manual
damage maps. This module makes that a tool for mappers. A reference damage
layer, either HOTOSM's destroyed buildings (polygons, every feature damaged) or
a Copernicus EMS grading product (points graded on the EMS scale), is joined to
the map's footprints by the join that labels training data
(:func:`~torchgeo_quake.datasets.join_damage`: by ``osm_id`` when both carry
one, else spatially, EMS points to the nearest footprint within a distance),
every building gets the reference's label, and the disagreements are listed:

* *likely omissions* of the reference: predicted damaged, intact in it, most
  probable first;
* *likely commissions*: damaged in the reference, predicted intact, least
  probable first.

A HOTOSM layer lists only damaged buildings, so every other building is intact
in it. A Copernicus EMS product grades the buildings of its area of interest:
footprints that no graded point reaches are left out of the audit (``"not
graded"``), as are those whose grade is excluded by the default grade mapping
(``"Possibly damaged"``, :data:`~torchgeo_quake.datasets.DEFAULT_GRADE_MAP`).

.. versionadded:: 0.2
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import pandas as pd
import shapely
from pyproj import CRS

__all__ = [
    "AUDIT_COLUMNS",
    "AUDIT_FILES",
    "COMMISSION",
    "NOT_GRADED",
    "OMISSION",
    "ReferenceLabels",
    "agreement",
    "audit_kinds",
    "audit_table",
    "building_columns",
    "check_reference_schema",
    "read_reference",
    "write_audit",
]

#: Files written by an audit (with ``--reference``).
AUDIT_FILES: tuple[str, ...] = ("audit.csv", "audit.gpkg")

#: Columns the audit adds to every building of the map.
AUDIT_COLUMNS: tuple[str, ...] = ("reference_grade", "reference_damaged", "audit")

#: A building predicted damaged that the reference has intact.
OMISSION = "likely omission"

#: A building damaged in the reference that is predicted intact.
COMMISSION = "likely commission"

#: Grade of footprints that no point of a graded (EMS) reference reaches.
NOT_GRADED = "not graded"

#: Grade of footprints without a usable id or geometry (not joined).
NOT_JOINED = "not joined (no usable id or geometry)"

#: Grade of footprints that a HOTOSM-like layer does not list (intact).
NOT_LISTED = "not listed"


@dataclass(frozen=True)
class ReferenceLabels:
    """The reference's label of every footprint of a map.

    .. versionadded:: 0.2
    """

    #: The reference file.
    path: Path
    #: Its schema, ``"hotosm"`` or ``"ems"``.
    schema: str
    #: Label of every footprint: 1 damaged, 0 intact, -1 left out.
    labels: npt.NDArray[np.int64]
    #: Grade that decided each label, or why it is left out.
    grades: npt.NDArray[np.object_]
    #: What the join reports: ``features``, ``unmatched_features``,
    #: ``excluded`` (grades the mapping excludes), ``not_graded`` and
    #: ``not_joined`` footprints.
    join: dict[str, int] = field(default_factory=dict)

    def describe(self) -> str:
        """What the join found, as printed by ``torchgeo-quake map``.

        Returns:
            One line.
        """
        labels, join = self.labels, self.join
        return (
            f"reference {self.path.name} ({self.schema}): "
            f"{int((labels == 1).sum())} footprints damaged, "
            f"{int((labels == 0).sum())} intact, {int((labels == -1).sum())} "
            f"left out; {join.get('unmatched_features', 0)} of "
            f"{join.get('features', 0)} features match no footprint"
        )


def _joinable(
    frame: gpd.GeoDataFrame, id_field: str
) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.float64], npt.NDArray[np.object_]]:
    """Footprints that can be joined: a unique numeric id and a geometry.

    Args:
        frame: the footprints as read
        id_field: their id column

    Returns:
        Which rows can be joined, the numeric id of every row (NaN where
        missing) and every row's geometry, repaired.
    """
    ids = pd.to_numeric(frame[id_field], errors="coerce").to_numpy(np.float64)
    geoms = np.asarray(frame.geometry.values, dtype=object).copy()
    present = ~shapely.is_missing(geoms)
    geoms[present] = shapely.make_valid(geoms[present])
    usable = ~shapely.is_missing(geoms) & ~shapely.is_empty(geoms)
    usable &= np.isfinite(ids)
    counts = pd.Series(ids[usable]).value_counts()
    repeated = np.isin(ids, counts.index[counts.to_numpy() > 1].to_numpy())
    return usable & ~repeated, ids, geoms


def check_reference_schema(path: str | os.PathLike[str], schema: str = "auto") -> None:
    """Refuse a reference of an unknown schema before anything is read.

    Only the layer's field names are read (a file that cannot be read is
    reported by :func:`read_reference`).

    Args:
        path: the reference
        schema: ``"auto"``, ``"hotosm"`` or ``"ems"``

    Raises:
        ValueError: If the layer is of neither schema (see
            :func:`~torchgeo_quake.datasets.references.detect_schema`).

    .. versionadded:: 0.2
    """
    import pyogrio

    from ..datasets.references import detect_schema

    try:
        fields = pyogrio.read_info(path)["fields"]
    except Exception:  # reported when the file is read
        return
    detect_schema(pd.DataFrame(columns=list(fields)), path, schema, strict=True)


def read_reference(
    path: str | os.PathLike[str],
    frame: gpd.GeoDataFrame,
    id_field: str,
    *,
    schema: str = "auto",
    max_distance: float = 10.0,
) -> ReferenceLabels:
    """Join a reference damage layer to the footprints of a map.

    The join is :func:`~torchgeo_quake.datasets.join_damage`, strict about
    the schema: a layer that is neither a Copernicus EMS grading product nor
    HOTOSM's destroyed buildings is refused unless *schema* forces one.
    Footprints without a numeric, unique id or a geometry (which the map
    skips) are not joined.

    Args:
        path: the reference (any vector format)
        frame: the map's footprints as read, with *id_field*
        id_field: their id column (the join is by id when the reference has
            this column too)
        schema: ``"auto"``, ``"hotosm"`` or ``"ems"``
        max_distance: metres within which an EMS point outside every footprint
            is joined to the nearest one

    Returns:
        The reference's label and grade of every footprint.

    Raises:
        FileNotFoundError: If *path* does not exist.
        ValueError: If the reference cannot be read, is of an unknown schema
            (the message names the file and the schemas accepted), holds an
            unknown EMS grade, or an option is invalid.

    .. versionadded:: 0.2
    """
    from ..datasets.references import join_damage

    n = len(frame)
    usable, ids, geoms = _joinable(frame, id_field)
    rows = np.flatnonzero(usable)
    joined = gpd.GeoDataFrame(geometry=geoms[rows], crs=frame.crs)
    with warnings.catch_warnings():
        # Counted in the summary instead (reference.unmatched_features).
        warnings.filterwarnings("ignore", message="--reference: ")
        result = join_damage(
            joined,
            str(path),
            footprint_ids=ids[rows],
            id_field=id_field,
            schema=schema,  # type: ignore[arg-type]
            max_distance=max_distance,
            context="--reference",
            strict=True,
        )
    kind = next(iter(result.schemas.values()), "hotosm")
    labels = np.full(n, -1, dtype=np.int64)
    grades = np.full(n, NOT_JOINED, dtype=object)
    labels[rows] = result.labels
    hit = result.grades != ""
    graded = np.where(hit, result.grades, NOT_GRADED if kind == "ems" else NOT_LISTED)
    grades[rows] = graded
    if kind == "ems":  # only the graded buildings are compared
        labels[rows[~hit]] = -1
    join = {
        "features": int(result.features),
        "unmatched_features": int(result.unmatched),
        "excluded": int(((result.labels == -1) & hit).sum()),
        "not_graded": int((~hit).sum()) if kind == "ems" else 0,
        "not_joined": int(n - len(rows)),
    }
    return ReferenceLabels(Path(path), kind, labels, grades, join)


def audit_kinds(
    probs: npt.NDArray[np.float64],
    damaged: npt.NDArray[np.bool_],
    labels: npt.NDArray[np.int64],
) -> npt.NDArray[np.object_]:
    """Where the map and the reference disagree.

    Args:
        probs: damage probability of every building (NaN: not scored)
        damaged: predicted damaged
        labels: the reference's labels (1, 0, -1: left out)

    Returns:
        :data:`OMISSION`, :data:`COMMISSION` or None for every building.

    .. versionadded:: 0.2
    """
    scored = np.isfinite(probs)
    kinds = np.full(len(probs), None, dtype=object)
    kinds[scored & damaged & (labels == 0)] = OMISSION
    kinds[scored & ~damaged & (labels == 1)] = COMMISSION
    return kinds


def building_columns(
    reference: ReferenceLabels,
    kinds: npt.NDArray[np.object_] | None,
    rows: npt.NDArray[np.int64],
) -> dict[str, Any]:
    """The :data:`AUDIT_COLUMNS` of some buildings of the map.

    Args:
        reference: the reference's labels
        kinds: :func:`audit_kinds` of every building
        rows: the buildings

    Returns:
        ``reference_grade`` (the grade, or why the building is left out),
        ``reference_damaged`` (1, 0, or empty when left out) and ``audit``
        (:data:`OMISSION`, :data:`COMMISSION` or empty).

    .. versionadded:: 0.2
    """
    labels = reference.labels[rows]
    damaged = pd.array(np.where(labels >= 0, labels, 0), dtype="Int64")
    damaged[labels < 0] = pd.NA
    audit = kinds[rows] if kinds is not None else np.full(len(rows), None)
    return {
        "reference_grade": pd.array(reference.grades[rows], dtype="string"),
        "reference_damaged": damaged,
        "audit": pd.array(audit, dtype="string"),
    }


def audit_table(
    kinds: npt.NDArray[np.object_],
    probs: npt.NDArray[np.float64],
    *,
    ids: Any,
    grades: npt.NDArray[np.object_],
    units: npt.NDArray[np.object_],
    lon: npt.NDArray[np.float64],
    lat: npt.NDArray[np.float64],
    id_field: str = "osm_id",
) -> pd.DataFrame:
    """The buildings to check, ranked.

    Likely omissions come first, most probable first; then likely
    commissions, least probable first (ties by input order).

    Args:
        kinds: :func:`audit_kinds`
        probs: damage probability of every building
        ids: building id of every building (nullable integers)
        grades: the reference's grade of every building
        units: admin unit or grid cell of every building
        lon: centroid longitude (WGS84) of every building
        lat: centroid latitude
        id_field: name of the id column

    Returns:
        One row per building to check: ``audit``, ``rank`` (1 = check first,
        within its kind), ``feature`` (input row), the id,
        ``damage_probability``, ``reference_grade``, ``unit``, ``lon``,
        ``lat``.

    .. versionadded:: 0.2
    """
    parts = []
    for kind, sign in ((OMISSION, -1.0), (COMMISSION, 1.0)):
        rows = np.flatnonzero(kinds == kind)
        rows = rows[np.argsort(sign * probs[rows], kind="stable")]
        parts.append((kind, rows))
    rows = np.concatenate([r for _, r in parts]).astype(np.int64)
    ranks = np.concatenate([np.arange(1, len(r) + 1) for _, r in parts])
    return pd.DataFrame(
        {
            "audit": np.concatenate([[k] * len(r) for k, r in parts]).astype(object),
            "rank": ranks.astype(np.int64),
            "feature": rows,
            id_field: pd.array(ids, dtype="Int64")[rows],
            "damage_probability": np.round(probs[rows], 6),
            "reference_grade": grades[rows],
            "unit": units[rows],
            "lon": np.round(lon[rows], 7),
            "lat": np.round(lat[rows], 7),
        }
    )


def _share(numerator: int, denominator: int) -> float | None:
    """A ratio rounded to 4 decimals, None for an empty denominator.

    Args:
        numerator: count
        denominator: count

    Returns:
        The ratio.
    """
    return None if denominator == 0 else round(numerator / denominator, 4)


def agreement(
    reference: ReferenceLabels,
    probs: npt.NDArray[np.float64],
    damaged: npt.NDArray[np.bool_],
) -> dict[str, Any]:
    """The ``reference`` section of ``summary.json``.

    Args:
        reference: the reference's labels
        probs: damage probability of every building (NaN: not scored)
        damaged: predicted damaged

    Returns:
        The file and schema, the counts the join reports, the buildings
        compared (scored and labelled by the reference), the confusion counts,
        and the precision, recall and F1 of the map against the reference.

    .. versionadded:: 0.2
    """
    labels = reference.labels
    compared = np.isfinite(probs) & (labels >= 0)
    positive = labels == 1
    both = int((compared & damaged & positive).sum())
    omissions = int((compared & damaged & ~positive).sum())
    commissions = int((compared & ~damaged & positive).sum())
    intact = int((compared & ~damaged & ~positive).sum())
    precision = _share(both, both + omissions)
    recall = _share(both, both + commissions)
    f1 = _share(2 * both, 2 * both + omissions + commissions)
    return {
        "file": str(reference.path),
        "schema": reference.schema,
        "join": dict(reference.join),
        "buildings": {
            "damaged": int(positive.sum()),
            "intact": int((labels == 0).sum()),
            "left_out": int((labels == -1).sum()),
        },
        "compared": int(compared.sum()),
        "damaged_in_both": both,
        "likely_omissions": omissions,
        "likely_commissions": commissions,
        "intact_in_both": intact,
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "note": (
            "precision and recall of the map against the reference, over the "
            "buildings both label; likely omissions are predicted damaged but "
            "intact in the reference, likely commissions the reverse (audit.csv)"
        ),
    }


def write_audit(
    folder: Path,
    table: pd.DataFrame,
    geoms: npt.NDArray[np.object_],
    crs: CRS,
) -> None:
    """Write ``audit.csv`` and the layer ``audit`` of ``audit.gpkg``.

    Args:
        folder: output folder
        table: :func:`audit_table`
        geoms: footprint of every building of the map, as read
        crs: their CRS

    .. versionadded:: 0.2
    """
    from .writers import GeoPackageWriter, layer_geometry_type

    table.to_csv(folder / "audit.csv", index=False)
    rows = table["feature"].to_numpy(np.int64)
    layer = gpd.GeoDataFrame(
        table.astype({"audit": "string", "reference_grade": "string"}),
        geometry=geoms[rows],
        crs=crs,
    )
    writer = GeoPackageWriter(
        folder / "audit.gpkg",
        crs,
        layer="audit",
        geometry_type=layer_geometry_type(geoms[rows]),
    )
    writer.write(layer)
    writer.close(empty_schema=layer)
