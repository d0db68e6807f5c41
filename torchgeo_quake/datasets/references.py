"""Damage references: read a damage layer and join it to building footprints.

Three kinds of reference give each footprint a label (1 = damaged, 0 = intact,
-1 = excluded from training):

* a HOTOSM-like layer (e.g. *Turkey Destroyed Buildings*): every feature marks a
  damaged building;
* a Copernicus EMS grading product: points or polygons with a ``damage_gra``
  field graded on the EMS scale (:data:`EMS_GRADES`), mapped to labels by a grade
  mapping (:data:`DEFAULT_GRADE_MAP` by default);
* a label column of the footprint file itself (:func:`labels_from_field`).

Turning grades and label values into labels is in ``_grade_values``; pairing
the features of a reference with footprints, by id or spatially, in
``_footprint_pairs``.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import pandas as pd

from ._footprint_pairs import _id_pairs, _spatial_pairs
from ._grade_values import _grade_features, _label_of, _normalise

__all__ = [
    "DEFAULT_GRADE_MAP",
    "EMS_FIELD",
    "EMS_GRADES",
    "HOTOSM_FIELDS",
    "DamageJoin",
    "detect_schema",
    "join_damage",
    "labels_from_field",
    "read_damage_reference",
]

#: Schema of a damage reference: ``"auto"`` detects it from the columns.
DamageSchema = Literal["auto", "hotosm", "ems"]

#: What footprints matched by no feature of a graded reference become.
Ungraded = Literal["intact", "exclude"]

#: Column of the Copernicus EMS grading product holding the damage grade.
EMS_FIELD = "damage_gra"

#: The Copernicus EMS damage grades, from least to most severe.
EMS_GRADES: tuple[str, ...] = (
    "No visible damage",
    "Possibly damaged",
    "Damaged",
    "Destroyed",
)

#: Default mapping of EMS grades to labels: 1 damaged, 0 intact, -1 excluded.
DEFAULT_GRADE_MAP: Mapping[str, int] = MappingProxyType(
    {
        "No visible damage": 0,
        "Possibly damaged": -1,
        "Damaged": 1,
        "Destroyed": 1,
    }
)

#: Columns that mark a layer as HOTOSM's "destroyed buildings" export (with
#: ``strict`` schema detection, see :func:`detect_schema`).
HOTOSM_FIELDS: tuple[str, ...] = ("destroyed_building", "destroyed:building")

#: Grade recorded for a feature of a HOTOSM-like layer (every feature is damaged).
LISTED = "listed as damaged"

#: Grade recorded for footprints excluded because no graded feature matched them.
NOT_GRADED = "not graded"

_SCHEMAS = ("auto", "hotosm", "ems")
_UNGRADED = ("intact", "exclude")
#: Rank of a label in the severity order: intact < excluded < damaged.
_LABEL_RANK = {0: 0, -1: 1, 1: 2}
_EMS_RANK = {grade.casefold(): i for i, grade in enumerate(EMS_GRADES)}


def _grade_table(grade_map: Mapping[str, int] | None) -> dict[str, tuple[str, int]]:
    """Validate a grade mapping and key it by normalised grade.

    Args:
        grade_map: grade -> label (1, 0 or -1); None for :data:`DEFAULT_GRADE_MAP`

    Returns:
        Normalised grade -> (grade as spelled in the mapping, label).

    Raises:
        ValueError: If a key is not a string, a label is not 1, 0 or -1, or two
            keys differ only in case or surrounding spaces and map to
            different labels.
    """
    table: dict[str, tuple[str, int]] = {}
    for grade, label in (DEFAULT_GRADE_MAP if grade_map is None else grade_map).items():
        if not isinstance(grade, str):
            raise ValueError(f"grade_map keys must be strings, got {grade!r}")
        if isinstance(label, bool) or label not in (-1, 0, 1):
            raise ValueError(
                f"grade_map[{grade!r}] must be 1 (damaged), 0 (intact) or -1 "
                f"(excluded), got {label!r}"
            )
        key = _normalise(grade)
        if key in table and table[key][1] != label:
            raise ValueError(
                f"grade_map maps {table[key][0]!r} and {grade!r} (the same grade, "
                "compared case-insensitively) to different labels"
            )
        table.setdefault(key, (grade.strip(), int(label)))
    return table


def _severity(grade: str, label: int) -> int:
    """Severity of a graded feature, to pick the most severe of several.

    Args:
        grade: the grade
        label: the label it maps to

    Returns:
        Higher is more severe: first by label (damaged 1 > excluded -1 >
        intact 0), then by the EMS scale (:data:`EMS_GRADES`).
    """
    return 10 * _LABEL_RANK[label] + _EMS_RANK.get(_normalise(grade), -1) + 1


def check_options(
    schema: str = "auto",
    grade_map: Mapping[str, int] | None = None,
    max_distance: float = 10.0,
    ungraded: str = "intact",
) -> None:
    """Validate the options of :func:`join_damage`.

    Args:
        schema: schema of the references
        grade_map: grade mapping
        max_distance: distance of the nearest-footprint join in metres
        ungraded: rule for footprints matched by no graded feature

    Raises:
        ValueError: If an option is invalid.

    .. versionadded:: 0.2
    """
    if schema not in _SCHEMAS:
        raise ValueError(
            f"damage_schema must be one of {', '.join(map(repr, _SCHEMAS))}, got "
            f"{schema!r}"
        )
    if ungraded not in _UNGRADED:
        raise ValueError(f"ungraded must be 'intact' or 'exclude', got {ungraded!r}")
    if not (isinstance(max_distance, int | float) and max_distance >= 0):
        raise ValueError(
            f"damage_max_distance must be a distance >= 0 in metres, got "
            f"{max_distance!r}"
        )
    _grade_table(grade_map)


def detect_schema(
    frame: pd.DataFrame,
    path: str | os.PathLike[str],
    schema: str = "auto",
    strict: bool = False,
) -> Literal["hotosm", "ems"]:
    """Schema of a damage reference.

    Args:
        frame: the reference's features
        path: its file, named in errors
        schema: ``"auto"`` (a layer with a ``damage_gra`` column is a Copernicus
            EMS grading product, any other layer is HOTOSM-like: every feature
            is damaged), or ``"hotosm"`` / ``"ems"`` to force one
        strict: with ``"auto"``, take a layer for HOTOSM-like only if it has
            one of :data:`HOTOSM_FIELDS` (HOTOSM's ``destroyed:building``
            tag), and refuse a layer of neither schema

    Returns:
        ``"hotosm"`` or ``"ems"``.

    Raises:
        ValueError: If *schema* is unknown, ``"ems"`` and the layer has no
            ``damage_gra`` column, or *strict* and the layer is of neither
            schema (the message names the file, its columns and the schemas
            accepted).

    .. versionadded:: 0.2
    """
    check_options(schema=schema)
    if schema == "hotosm":
        return "hotosm"
    has_grades = EMS_FIELD in frame.columns
    listed = any(name in frame.columns for name in HOTOSM_FIELDS)
    if strict and schema == "auto" and not (has_grades or listed):
        columns = ", ".join(str(c) for c in frame.columns if str(c) != "geometry")
        raise ValueError(
            f"damage reference {str(path)!r} is in an unknown schema (columns: "
            f"{columns or 'none'}). Accepted: a Copernicus EMS grading product "
            f"(points or polygons with a {EMS_FIELD!r} column graded "
            f"{', '.join(map(repr, EMS_GRADES))}) or HOTOSM's destroyed "
            f"buildings export (a {HOTOSM_FIELDS[0]!r} or {HOTOSM_FIELDS[1]!r} "
            "column; every feature a damaged building). Force the schema "
            "('hotosm': every feature marks a damaged building) if the layer "
            "is one of these under other column names."
        )
    if schema == "ems" and not has_grades:
        columns = ", ".join(map(str, frame.columns)) or "none"
        raise ValueError(
            f"damage reference {str(path)!r} is not a Copernicus EMS grading "
            f"product: it has no {EMS_FIELD!r} column (columns: {columns}). Pass "
            "damage_schema='auto' or 'hotosm' if every feature marks a damaged "
            "building, or label_field= for a label column of the footprints."
        )
    return "ems" if has_grades else "hotosm"


def read_damage_reference(
    path: str | os.PathLike[str],
    schema: DamageSchema = "auto",
    grade_map: Mapping[str, int] | None = None,
    strict: bool = False,
) -> tuple[gpd.GeoDataFrame, Literal["hotosm", "ems"]]:
    """Read a damage reference and give each feature its grade and label.

    Args:
        path: the reference layer (any format of
            :func:`~torchgeo_quake.datasets.read_vector`)
        schema: ``"auto"``, ``"hotosm"`` or ``"ems"`` (see :func:`detect_schema`)
        grade_map: EMS grade -> label (1 damaged, 0 intact, -1 excluded);
            None for :data:`DEFAULT_GRADE_MAP`
        strict: refuse a layer of neither schema (see :func:`detect_schema`)

    Returns:
        The features with two added columns, ``damage_grade`` (the EMS grade,
        or ``"listed as damaged"`` for a HOTOSM-like layer) and
        ``damage_label``, and the schema.

    Raises:
        FileNotFoundError: If *path* does not exist.
        ValueError: If the file cannot be read, the schema is forced and does
            not match (or, *strict*, the layer is of neither schema), or an EMS
            grade is not in the mapping.

    .. versionadded:: 0.2
    """
    from .footprints import read_vector

    table = _grade_table(grade_map)
    frame = read_vector(path)
    kind = detect_schema(frame, path, schema, strict)
    frame = frame.copy()
    if kind == "ems":
        labels, grades = _grade_features(frame[EMS_FIELD], table, str(path), EMS_FIELD)
    else:
        labels = np.ones(len(frame), dtype=np.int64)
        grades = np.full(len(frame), LISTED, dtype=object)
    frame["damage_grade"] = grades
    frame["damage_label"] = labels
    return frame, kind


def labels_from_field(
    values: pd.Series | Sequence[Any],
    grade_map: Mapping[str, int] | None = None,
    source: str = "",
    field_name: str = "label_field",
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.object_]]:
    """Labels from a label column of the footprints.

    Values may be 0/1 (numbers, or strings such as ``"1"``), booleans
    (``True``/``"true"`` is damaged) or grade strings mapped through
    *grade_map* (case-insensitively). Missing values (None, NaN, empty strings)
    are excluded: label -1, grade ``"missing <field_name>"``.

    Args:
        values: the column
        grade_map: grade -> label (1, 0 or -1); None for :data:`DEFAULT_GRADE_MAP`
        source: the file, named in errors
        field_name: the column's name, named in errors and grades

    Returns:
        Label and grade (the value as written, or the mapped grade) of every row.

    Raises:
        ValueError: If a value is none of the above.

    .. versionadded:: 0.2
    """
    table = _grade_table(grade_map)
    series = (
        pd.Series(values, dtype=object) if not isinstance(values, pd.Series) else values
    )
    raw = series.astype(object).tolist()
    missing = pd.isna(series).to_numpy()
    decided: dict[Any, tuple[int, str]] = {}
    unknown: list[str] = []
    labels = np.empty(len(raw), dtype=np.int64)
    grades = np.empty(len(raw), dtype=object)
    for i, value in enumerate(raw):
        if missing[i] or (isinstance(value, str) and not value.strip()):
            labels[i], grades[i] = -1, f"missing {field_name}"
            continue
        key = (type(value), value)
        result = decided.get(key)
        if result is None:
            result = _label_of(value, table)
            if result is None:
                unknown.append(repr(value))
                continue
            decided[key] = result
        labels[i], grades[i] = result
    if unknown:
        shown = ", ".join(sorted(set(unknown))[:20])
        known = ", ".join(repr(g) for g, _ in table.values())
        raise ValueError(
            f"label column {field_name!r} of {source!r} holds values that are "
            f"neither 0/1, booleans nor known grades: {shown}. Use 0/1 or map the "
            f"grades with grade_map= (known: {known}), or pass the right "
            "label_field=."
        )
    return labels, grades


@dataclass
class DamageJoin:
    """Result of :func:`join_damage`.

    .. versionadded:: 0.2
    """

    #: Label of every footprint: 1 damaged, 0 intact, -1 excluded.
    labels: npt.NDArray[np.int64]
    #: Grade that decided each label ("" when no feature matched the footprint).
    grades: npt.NDArray[np.object_]
    #: Number of features read from all references.
    features: int = 0
    #: Features that matched no footprint (without geometry included).
    unmatched: int = 0
    #: Schema of every reference file.
    schemas: dict[str, str] = field(default_factory=dict)
    #: Reference files without any feature.
    empty: list[str] = field(default_factory=list)

    @property
    def excluded(self) -> int:
        """Number of footprints excluded (label -1).

        Returns:
            The count.
        """
        return int((self.labels == -1).sum())


def join_damage(
    footprints: gpd.GeoDataFrame,
    references: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    *,
    footprint_ids: npt.ArrayLike | None = None,
    id_field: str = "osm_id",
    schema: DamageSchema = "auto",
    grade_map: Mapping[str, int] | None = None,
    overlap: float = 0.5,
    max_distance: float = 10.0,
    ungraded: Ungraded = "intact",
    context: str = "join_damage",
    stacklevel: int = 2,
    strict: bool = False,
) -> DamageJoin:
    """Label footprints from damage reference layers.

    Each reference is read with :func:`read_damage_reference` and joined:

    * by id when it has an *id_field* column and *footprint_ids* are given;
    * else spatially: polygons match the footprints they cover at least
      *overlap* of (by area); points match the footprints they fall inside;
      points of an EMS grading product that fall inside none are joined to the
      nearest footprint within *max_distance* metres (measured in the
      footprints' CRS when projected, else in their UTM zone). Points of a
      HOTOSM-like layer are joined only to the footprints they fall inside.

    Features that match nothing are counted (:attr:`DamageJoin.unmatched`,
    features without geometry included) and warned about, as are references
    without any feature. When several features hit one footprint, across all
    references, the most severe grade wins: first by label (damaged 1 >
    excluded -1 > intact 0), then by the EMS scale (Destroyed > Damaged >
    Possibly damaged > No visible damage). A HOTOSM-like feature is damaged.

    Footprints that no feature matches are intact (0), as in a HOTOSM layer
    that lists only damaged buildings. With a graded (EMS) reference, whose
    every graded building has a point, ``ungraded="exclude"`` excludes them
    instead (-1, grade ``"not graded"``).

    Args:
        footprints: footprint polygons
        references: reference layer file(s)
        footprint_ids: numeric id of every footprint, for the id join
        id_field: id column of the references
        schema: ``"auto"``, ``"hotosm"`` or ``"ems"`` (see :func:`detect_schema`)
        grade_map: EMS grade -> label (1 damaged, 0 intact, -1 excluded);
            None for :data:`DEFAULT_GRADE_MAP`
        overlap: minimum share of a footprint's area a polygon must cover
        max_distance: metres within which an EMS point outside every footprint
            is joined to the nearest footprint (0 joins only points inside)
        ungraded: ``"intact"`` or ``"exclude"``: label of footprints that no
            feature matches when a reference is graded
        context: prefix of warnings (e.g. the calling class)
        stacklevel: stack level of warnings, as in :func:`warnings.warn`
        strict: refuse a reference of neither schema instead of taking it
            for HOTOSM-like (see :func:`detect_schema`)

    Returns:
        Labels, grades and counts.

    Raises:
        FileNotFoundError: If a reference does not exist.
        ValueError: If a reference cannot be read, its schema is forced and does
            not match (or, *strict*, is of neither schema), a grade is not in
            the mapping, an option is invalid, or ``ungraded="exclude"`` is
            used without a graded reference.

    .. versionadded:: 0.2
    """
    check_options(schema, grade_map, max_distance, ungraded)
    paths = (
        [str(references)]
        if isinstance(references, str | os.PathLike)
        else [str(r) for r in references]
    )
    n = len(footprints)
    ids = None if footprint_ids is None else pd.Index(np.asarray(footprint_ids))
    # Severity, label and grade of every (footprint, feature) pair.
    hits: list[pd.DataFrame] = []
    result = DamageJoin(
        labels=np.zeros(n, dtype=np.int64), grades=np.full(n, "", dtype=object)
    )
    for path in paths:
        ref, kind = read_damage_reference(path, schema, grade_map, strict)
        result.schemas[path] = kind
        if ref.empty:
            result.empty.append(path)
            warnings.warn(
                f"{context}: damage layer {path!r} holds no features, so it "
                "marks no building as damaged. Check the file (an export of "
                "the wrong area or layer?), or leave it out of damage=.",
                UserWarning,
                stacklevel=stacklevel,
            )
            continue
        result.features += len(ref)
        pairs, unmatched = _match(
            footprints, ref, kind, ids, id_field, overlap, max_distance
        )
        hits.append(pairs)
        result.unmatched += unmatched
    graded = "ems" in result.schemas.values()
    if ungraded == "exclude":
        if not graded:
            raise ValueError(
                f"ungraded='exclude' needs a graded (Copernicus EMS) damage "
                f"reference, but {paths} are HOTOSM-like layers that list only "
                "damaged buildings: every other building would be excluded. "
                "Use ungraded='intact'."
            )
        result.labels[:] = -1
        result.grades[:] = NOT_GRADED
    if hits:
        _keep_most_severe(result, hits)
    if result.unmatched:
        warnings.warn(
            _unmatched_message(result, paths, context, id_field, max_distance),
            UserWarning,
            stacklevel=stacklevel,
        )
    return result


def _match(
    footprints: gpd.GeoDataFrame,
    ref: gpd.GeoDataFrame,
    kind: Literal["hotosm", "ems"],
    ids: pd.Index | None,
    id_field: str,
    overlap: float,
    max_distance: float,
) -> tuple[pd.DataFrame, int]:
    """Match the features of one reference to footprints.

    By id when the reference has an *id_field* column and footprint ids are
    given, else spatially (see :func:`join_damage`).

    Args:
        footprints: footprint polygons
        ref: the reference's features (:func:`read_damage_reference`)
        kind: its schema
        ids: numeric id of every footprint, or None
        id_field: id column of the reference
        overlap: minimum share of a footprint's area a polygon must cover
        max_distance: metres of the nearest-footprint join of EMS points

    Returns:
        The ``building`` (footprint position), ``severity``, ``label`` and
        ``grade`` of every (footprint, feature) pair, and the number of
        features that match nothing (features without geometry included).

    Raises:
        ValueError: If the footprint ids are not unique.
    """
    has_geom = ref.geometry.notna() & ~ref.geometry.is_empty
    unmatched = int((~has_geom).sum())
    ref = ref[has_geom].to_crs(footprints.crs)
    if ids is not None and id_field in ref.columns:
        ref_ids = pd.to_numeric(ref[id_field], errors="coerce").to_numpy()
        ref_idx, bld_idx = _id_pairs(ids, ref_ids)
        unmatched += len(ref) - len(ref_idx)
    else:
        distance = max_distance if kind == "ems" else None
        ref_idx, bld_idx = _spatial_pairs(footprints, ref, overlap, distance)
        hit = np.zeros(len(ref), dtype=bool)
        hit[ref_idx] = True
        unmatched += int((~hit).sum())
    labels = ref["damage_label"].to_numpy(dtype=np.int64)[ref_idx]
    grades = ref["damage_grade"].to_numpy(dtype=object)[ref_idx]
    pairs = pd.DataFrame(
        {
            "building": bld_idx,
            "severity": [
                _severity(g, int(v))
                for g, v in zip(grades.tolist(), labels.tolist(), strict=True)
            ],
            "label": labels,
            "grade": grades,
        }
    )
    return pairs, unmatched


def _keep_most_severe(result: DamageJoin, hits: list[pd.DataFrame]) -> None:
    """Label every footprint that features hit by the most severe of them.

    Args:
        result: the join, whose labels and grades are changed in place
        hits: the pairs of every reference (:func:`_match`)
    """
    table = pd.concat(hits, ignore_index=True).sort_values("severity", kind="stable")
    best = table.drop_duplicates("building", keep="last")
    rows = best["building"].to_numpy(dtype=np.intp)
    result.labels[rows] = best["label"].to_numpy(dtype=np.int64)
    result.grades[rows] = best["grade"].to_numpy(dtype=object)


def _unmatched_message(
    result: DamageJoin,
    paths: list[str],
    context: str,
    id_field: str,
    max_distance: float,
) -> str:
    """The warning about damage features that match no footprint.

    Args:
        result: the join
        paths: the reference files
        context: prefix of the warning
        id_field: id column of the references
        max_distance: metres of the nearest-footprint join of EMS points

    Returns:
        The message.
    """
    graded = "ems" in result.schemas.values()
    nearest = (
        f", EMS points outside every footprint to the nearest one within "
        f"{max_distance:g} m"
        if graded
        else ""
    )
    return (
        f"{context}: {result.unmatched} of {result.features} damage features "
        f"in {paths} match no footprint (joined by {id_field}, else spatially: "
        f"polygons by overlap, points inside{nearest}; features without "
        "geometry match nothing); they are counted (unmatched_damage). "
        "Check that the damage layer and the footprints cover the same area"
        + (
            " (or raise damage_max_distance)."
            if graded
            else " and come from the same OSM export."
        )
    )
