"""GEM exposure: reading, aggregation and the per-building exposure feature vector.

Russo et al. (2025, Sec. II-B/II-C) enrich every building with attributes of the
GEM exposure model at the *nearest GEM data point* to its centroid: structural
typology, construction period, replacement costs and average occupancy. GEM
data points aggregate several assets (one per taxonomy string), so each location
is summarised by a fixed-length vector, :data:`GEM_FEATURE_NAMES`, in which every
mix is weighted by the number of buildings of each asset:

============================================  ======================================
name                                          meaning
============================================  ======================================
``frac_rc_infill`` ... ``frac_other``         fraction of buildings per
                                              :data:`~.taxonomy.STRUCTURE_CLASSES`
                                              class (8 values, sum 1)
``frac_code_cdn`` ... ``frac_code_cdh``       fraction of buildings per seismic code
                                              level; assets without a code level
                                              count in none (sum <= 1)
``mean_construction_year``                    mean construction year, see below
``mean_storeys``                              mean storeys above ground
``log_replacement_cost_per_building``         ``log1p`` of total replacement cost
                                              (USD) per building
``log_structural_cost_per_building``          ``log1p`` of structural cost per
                                              building (USD)
``log_nonstructural_cost_per_building``       ``log1p`` of non-structural cost per
                                              building (USD)
``occupants_night_per_building``              night-time occupants per building
``occupants_day_per_building``                day-time occupants per building
``frac_res``, ``frac_com``, ``frac_ind``      occupancy mix (sum 1)
============================================  ======================================

Construction year of an asset: the midpoint of its ``period`` (``YYYY-YYYY``)
where that column exists and is filled, else the date attribute of its taxonomy
string, else a proxy from its code level, :data:`CODE_LEVEL_YEAR` (Turkish
seismic code eras: no code before 1975, low code 1975-1997, moderate 1998-2007,
high code from 2008), else unknown. Storeys come from the taxonomy height. A
location without any known year (storeys) takes the building-weighted mean of the
whole file set, or :data:`DEFAULT_YEAR` (:data:`DEFAULT_STOREYS`) if none is
known at all, so vectors are always finite.

Occupancy of an asset: the ``OCCUPANCY`` column (``Res``/``Com``/``Ind``) of GEM's
aggregated files where present, else the taxonomy occupancy (``RES*`` -> res,
``COM*``, ``GOV*``, ``EDU*``, ``ASS*``, ``REL*``, ``HEA*``, ``ENT*`` -> com,
``IND*``, ``AGR*`` -> ind; mixed ``MIX1``/``MIX4`` "mostly residential" -> res,
``MIX2``/``MIX3`` "mostly commercial" -> com, ``MIX5``/``MIX6`` "mostly
industrial" -> ind), else a third to each.

Costs and occupants are totals per asset (OpenQuake's aggregated cost type and
GEM's ``OCCUPANTS_PER_ASSET_*``); the replacement cost is the ``total`` /
``TOTAL_REPL_COST_USD`` column if present, else structural + non-structural +
contents.

.. versionadded:: 0.1
"""

from __future__ import annotations

import os
import re
import unicodedata
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal, overload

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import pandas as pd
import torch
from pyproj import CRS, Transformer
from scipy.spatial import cKDTree

from .taxonomy import CODE_LEVELS, STRUCTURE_CLASSES, GEMTaxonomy, parse_taxonomy
from .utils import utm_crs_of

__all__ = [
    "CODE_LEVEL_YEAR",
    "COLUMN_ALIASES",
    "DEFAULT_STOREYS",
    "DEFAULT_YEAR",
    "GEM_FEATURE_DESCRIPTIONS",
    "GEM_FEATURE_NAMES",
    "GEMExposure",
    "GEMNormalizer",
]

_OCCUPANCIES = ("res", "com", "ind")

#: Names of the exposure feature vector, in order (see the module docstring).
GEM_FEATURE_NAMES: tuple[str, ...] = (
    *(f"frac_{c}" for c in STRUCTURE_CLASSES),
    *(f"frac_code_{c.lower()}" for c in CODE_LEVELS),
    "mean_construction_year",
    "mean_storeys",
    "log_replacement_cost_per_building",
    "log_structural_cost_per_building",
    "log_nonstructural_cost_per_building",
    "occupants_night_per_building",
    "occupants_day_per_building",
    *(f"frac_{o}" for o in _OCCUPANCIES),
)

_CLASS_TEXT = {
    "rc_infill": "reinforced-concrete infilled frames",
    "rc_wall_dual": "reinforced-concrete wall or dual frame-wall systems",
    "rc_other": "other reinforced concrete (moment frames, precast, unknown LLRS)",
    "urm": "unreinforced masonry",
    "rm_confined": "confined or reinforced masonry",
    "steel": "steel and other metal",
    "wood": "wood",
    "other": "earth, unreinforced concrete, other or unknown material",
}
_CODE_TEXT = {"CDN": "no", "CDL": "low", "CDM": "moderate", "CDH": "high"}

#: One-line description of every name in :data:`GEM_FEATURE_NAMES`.
GEM_FEATURE_DESCRIPTIONS: dict[str, str] = {
    **{f"frac_{c}": f"fraction of buildings: {t}" for c, t in _CLASS_TEXT.items()},
    **{
        f"frac_code_{c.lower()}": f"fraction of buildings with {t} seismic code ({c})"
        for c, t in _CODE_TEXT.items()
    },
    "mean_construction_year": "mean construction year (period, taxonomy date or "
    "code-level proxy)",
    "mean_storeys": "mean number of storeys above ground",
    "log_replacement_cost_per_building": "log1p(total replacement cost USD per "
    "building)",
    "log_structural_cost_per_building": "log1p(structural cost USD per building)",
    "log_nonstructural_cost_per_building": "log1p(non-structural cost USD per "
    "building)",
    "occupants_night_per_building": "night-time occupants per building",
    "occupants_day_per_building": "day-time occupants per building",
    "frac_res": "fraction of buildings with residential occupancy",
    "frac_com": "fraction of buildings with commercial/public occupancy",
    "frac_ind": "fraction of buildings with industrial/agricultural occupancy",
}

#: Construction-year proxy of each code level (midpoints of the Turkish seismic
#: code eras: before 1975, 1975-1997, 1998-2007, 2008-2018).
CODE_LEVEL_YEAR: dict[str, float] = {
    "CDN": 1965.0,
    "CDL": 1986.0,
    "CDM": 2003.0,
    "CDH": 2013.0,
}

#: Construction year used when no asset of the whole file set has one.
DEFAULT_YEAR = 1986.0

#: Storeys used when no asset of the whole file set has a known height.
DEFAULT_STOREYS = 2.0

#: Accepted column names (case-insensitive) of each canonical column.
COLUMN_ALIASES: dict[str, tuple[str, ...]] = {
    "lon": ("lon", "longitude", "long", "x"),
    "lat": ("lat", "latitude", "y"),
    "taxonomy": ("taxonomy",),
    "number": ("number", "buildings", "number_of_buildings", "n_buildings"),
    "structural": ("structural", "cost_structural_usd"),
    "nonstructural": ("nonstructural", "cost_nonstructural_usd"),
    "contents": ("contents", "cost_contents_usd"),
    "total": ("total", "total_repl_cost_usd", "replacement"),
    "day": ("day", "occupants_per_asset_day"),
    "night": ("night", "occupants_per_asset_night"),
    "period": ("period", "construction_period"),
    "occupancy": ("occupancy",),
    "id_1": ("id_1",),
    "name_1": ("name_1",),
}

_REQUIRED = ("taxonomy", "number", "structural", "nonstructural", "day", "night")
_NUMERIC = frozenset(
    {"lon", "lat", "number", "structural", "nonstructural", "contents"}
    | {"total", "day", "night"}
)
_ZERO_FILLED = ("structural", "nonstructural", "contents", "day", "night")
_PERIOD_RE = re.compile(r"^(\d{4})\s*[-\u2013/]\s*(\d{4})$")


def _aliases(canonical: str) -> str:
    """Format the accepted names of a column for error messages.

    Args:
        canonical: canonical column name

    Returns:
        ``"name (alias, alias)"``.
    """
    return f"{canonical} ({', '.join(COLUMN_ALIASES[canonical])})"


def _normalise_name(name: str) -> str:
    """Normalise an admin-unit name or code for matching.

    Case, diacritics (including Turkish dotted/dotless i) and repeated whitespace
    are ignored: ``"KAHRAMANMARAŞ"`` and ``"kahramanmaras"`` match.

    Args:
        name: the name or code

    Returns:
        The normalised key.
    """
    name = name.replace("\u0131", "i").replace("\u0130", "I")
    decomposed = unicodedata.normalize("NFKD", name)
    stripped = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(stripped.casefold().split())


def _period_year(value: str) -> float:
    """Midpoint of a construction period.

    Args:
        value: ``"YYYY-YYYY"`` or ``"YYYY"``

    Returns:
        The midpoint year.

    Raises:
        ValueError: If the value is neither form or the range is reversed.
    """
    text = value.strip()
    if re.fullmatch(r"\d{4}", text):
        return float(text)
    match = _PERIOD_RE.match(text)
    if match is None or int(match.group(2)) < int(match.group(1)):
        raise ValueError(f"period {value!r} is not 'YYYY-YYYY' or 'YYYY'")
    return (int(match.group(1)) + int(match.group(2))) / 2


def _occupancy_of(taxonomy: GEMTaxonomy) -> str | None:
    """Coarse occupancy (res, com, ind) of a taxonomy string.

    Args:
        taxonomy: the parsed taxonomy

    Returns:
        ``"res"``, ``"com"``, ``"ind"`` or None if unknown.
    """
    code = (taxonomy.occupancy or "").upper()
    mixed = {"MIX1": "res", "MIX4": "res", "MIX2": "com", "MIX3": "com"}
    mixed |= {"MIX5": "ind", "MIX6": "ind"}
    if code[:4] in mixed:
        return mixed[code[:4]]
    if code.startswith("RES"):
        return "res"
    if code.startswith(("COM", "GOV", "EDU", "ASS", "REL", "HEA", "ENT")):
        return "com"
    if code.startswith(("IND", "AGR")):
        return "ind"
    return None


class _MissingColumnsError(ValueError):
    """A CSV lacks required columns."""

    def __init__(self, message: str, missing: list[str]) -> None:
        super().__init__(message)
        self.missing = missing


class _CsvRows:
    """Canonical rows of one GEM CSV file plus the bookkeeping of its cleaning."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.skipped: dict[str, int] = {}
        self.nan_filled: dict[str, int] = {}
        raw = self._read()
        columns = self._resolve(raw)
        self.kind = self._kind(columns)
        self.frame = self._clean(raw, columns)

    def _read(self) -> pd.DataFrame:
        if not os.path.isfile(self.path):
            raise FileNotFoundError(f"GEM exposure file {self.path!r} does not exist")
        try:
            raw = pd.read_csv(self.path, dtype=str, skipinitialspace=True)
        except pd.errors.EmptyDataError as err:
            raise ValueError(f"GEM exposure file {self.path!r} is empty") from err
        except (pd.errors.ParserError, UnicodeDecodeError) as err:
            raise ValueError(
                f"GEM exposure file {self.path!r} is not a readable CSV: {err}"
            ) from err
        if raw.empty:
            raise ValueError(
                f"GEM exposure file {self.path!r} has a header but no rows"
            )
        return raw

    def _resolve(self, raw: pd.DataFrame) -> dict[str, str]:
        lower = {str(c).strip().lower(): str(c) for c in reversed(raw.columns)}
        columns: dict[str, str] = {}
        for canonical, aliases in COLUMN_ALIASES.items():
            for alias in aliases:
                if alias in lower:
                    columns[canonical] = lower[alias]
                    break
        missing = [c for c in _REQUIRED if c not in columns]
        has_points = "lon" in columns or "lat" in columns
        if has_points:
            missing += [c for c in ("lon", "lat") if c not in columns]
        elif "id_1" not in columns and "name_1" not in columns:
            missing += ["lon", "lat"]
        if missing:
            accepted = "; ".join(_aliases(c) for c in missing)
            extra = ""
            if "lon" in missing and not has_points:
                extra = (
                    " (or, for GEM's aggregated admin files, "
                    f"{_aliases('id_1')} or {_aliases('name_1')} instead of lon/lat)"
                )
            raise _MissingColumnsError(
                f"GEM exposure file {self.path!r} lacks required column(s) "
                f"{missing}. Accepted names, case-insensitive: {accepted}{extra}. "
                f"Found columns: {list(raw.columns)}",
                missing,
            )
        return columns

    @staticmethod
    def _kind(columns: dict[str, str]) -> Literal["points", "admin"]:
        return "points" if "lon" in columns else "admin"

    def _count(self, table: dict[str, int], key: str, n: int) -> None:
        if n:
            table[key] = table.get(key, 0) + n

    def _numeric(self, raw: pd.DataFrame, column: str, canonical: str) -> pd.Series:
        text = raw[column].str.strip()
        values = pd.to_numeric(text, errors="coerce")
        bad = values.isna() & text.notna() & (text != "")
        if bad.any():
            rows = np.flatnonzero(bad.to_numpy())
            lines = ", ".join(str(r + 2) for r in rows[:5])
            raise ValueError(
                f"GEM exposure file {self.path!r}: non-numeric {canonical!r} "
                f"(column {column!r}) value {text.iloc[rows[0]]!r} on line(s) {lines}"
            )
        return values.astype(np.float64)

    def _clean(self, raw: pd.DataFrame, columns: dict[str, str]) -> pd.DataFrame:
        frame = pd.DataFrame(index=raw.index)
        frame["line"] = raw.index.to_numpy() + 2
        for canonical, column in columns.items():
            if canonical in _NUMERIC:
                frame[canonical] = self._numeric(raw, column, canonical)
            else:
                frame[canonical] = raw[column].str.strip()
        keep = pd.Series(True, index=frame.index)
        if self.kind == "points":
            nan_xy = frame["lon"].isna() | frame["lat"].isna()
            self._count(self.skipped, "nan_coordinates", int(nan_xy.sum()))
            invalid = ~nan_xy & ((frame["lon"].abs() > 180) | (frame["lat"].abs() > 90))
            self._count(self.skipped, "invalid_coordinates", int(invalid.sum()))
            keep &= ~nan_xy & ~invalid
        nan_number = keep & frame["number"].isna()
        self._count(self.skipped, "nan_number", int(nan_number.sum()))
        nonpositive = keep & ~nan_number & (frame["number"] <= 0)
        self._count(self.skipped, "nonpositive_number", int(nonpositive.sum()))
        keep &= ~nan_number & ~nonpositive
        frame = frame[keep].copy()
        if frame.empty:
            raise ValueError(
                f"GEM exposure file {self.path!r} has no usable rows "
                f"(skipped: {self.skipped})"
            )
        for canonical in _ZERO_FILLED:
            if canonical not in frame:
                frame[canonical] = 0.0
                continue
            nan = frame[canonical].isna()
            self._count(self.nan_filled, canonical, int(nan.sum()))
            frame[canonical] = frame[canonical].fillna(0.0)
        components = frame["structural"] + frame["nonstructural"] + frame["contents"]
        if "total" in frame:
            nan = frame["total"].isna()
            self._count(self.nan_filled, "total", int(nan.sum()))
            frame["total"] = frame["total"].where(~nan, components)
        else:
            frame["total"] = components
        taxonomy = frame["taxonomy"]
        nan = taxonomy.isna() | (taxonomy == "")
        self._count(self.nan_filled, "taxonomy", int(nan.sum()))
        frame["taxonomy"] = taxonomy.where(~nan, "UNK")
        frame["period_year"] = self._period_years(frame)
        return frame

    def _period_years(self, frame: pd.DataFrame) -> npt.NDArray[np.float64]:
        years = np.full(len(frame), np.nan)
        if "period" not in frame:
            return years
        period = frame["period"]
        filled = period.notna() & (period != "")
        lookup: dict[str, float] = {}
        for value in period[filled].unique():
            try:
                lookup[str(value)] = _period_year(str(value))
            except ValueError as err:
                line = int(frame["line"][period == value].iloc[0])
                raise ValueError(
                    f"GEM exposure file {self.path!r}, line {line}: {err}"
                ) from err
        years[filled.to_numpy()] = period[filled].map(lookup).to_numpy(np.float64)
        return years

    def parse_taxonomies(self) -> dict[str, GEMTaxonomy]:
        """Parse the distinct taxonomy strings of the file.

        Returns:
            Taxonomy string -> parsed taxonomy.

        Raises:
            ValueError: naming the file and line of the first malformed string.
        """
        parsed: dict[str, GEMTaxonomy] = {}
        for value in self.frame["taxonomy"].unique():
            try:
                parsed[str(value)] = parse_taxonomy(str(value))
            except ValueError as err:
                line = int(self.frame["line"][self.frame["taxonomy"] == value].iloc[0])
                raise ValueError(
                    f"GEM exposure file {self.path!r}, line {line}: {err}"
                ) from err
        return parsed


def _expand(
    paths: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
) -> list[tuple[str, bool]]:
    """Turn the *paths* argument into a list of CSV files.

    Args:
        paths: a file, a directory or a sequence of them

    Returns:
        ``(file, found_in_directory)`` pairs; directories give their ``*.csv``
        files, sorted.

    Raises:
        FileNotFoundError: If a path does not exist or a directory has no CSV.
        ValueError: If no path is given.
    """
    items = [paths] if isinstance(paths, str | os.PathLike) else list(paths)
    if not items:
        raise ValueError("GEMExposure needs at least one path")
    files: list[tuple[str, bool]] = []
    for item in items:
        path = Path(item)
        if path.is_dir():
            found = sorted(str(p) for p in path.glob("*.csv"))
            if not found:
                raise FileNotFoundError(f"no *.csv GEM exposure file in {str(path)!r}")
            files.extend((f, True) for f in found)
        elif not path.exists():
            raise FileNotFoundError(f"GEM exposure file {str(path)!r} does not exist")
        else:
            files.append((str(path), False))
    return files


def _read_all(files: list[tuple[str, bool]]) -> list[_CsvRows]:
    """Read every file; directory members without a taxonomy column are skipped.

    Args:
        files: ``(file, found_in_directory)`` pairs from :func:`_expand`

    Returns:
        The cleaned tables.

    Raises:
        ValueError: If a file is invalid or none is left.
    """
    tables: list[_CsvRows] = []
    for path, from_dir in files:
        try:
            tables.append(_CsvRows(path))
        except _MissingColumnsError as err:
            if not (from_dir and "taxonomy" in err.missing):
                raise
            warnings.warn(
                f"skipping {path!r}: no taxonomy column", UserWarning, stacklevel=3
            )
    if not tables:
        raise ValueError(
            f"no GEM exposure file with a taxonomy column in {[f for f, _ in files]}"
        )
    return tables


def _row_weights(
    rows: pd.DataFrame, taxonomies: dict[str, GEMTaxonomy]
) -> pd.DataFrame:
    """Per-asset quantities that are summed per location.

    Args:
        rows: canonical rows (see :class:`_CsvRows`)
        taxonomies: parsed taxonomy of every string in *rows*

    Returns:
        One row per asset: ``w`` (buildings), building-weighted class, code-level
        and occupancy indicators, weighted sums and weights of storeys and year,
        and the cost and occupant totals.
    """
    tax = rows["taxonomy"].map(taxonomies)
    number = rows["number"].to_numpy(np.float64)
    out: dict[str, npt.NDArray[np.float64]] = {"w": number}
    cls = tax.map(lambda t: t.structure_class).to_numpy()
    for name in STRUCTURE_CLASSES:
        out[f"frac_{name}"] = number * (cls == name)
    code = tax.map(lambda t: t.code_level).to_numpy()
    for level in CODE_LEVELS:
        out[f"frac_code_{level.lower()}"] = number * (code == level)
    storeys = np.array([t.height_storeys for t in tax], dtype=np.float64)
    tax_year = np.array([t.year_built for t in tax], dtype=np.float64)
    code_year = np.array([CODE_LEVEL_YEAR.get(c, np.nan) for c in code])
    year = rows["period_year"].to_numpy(np.float64)
    year = np.where(np.isnan(year), tax_year, year)
    year = np.where(np.isnan(year), code_year, year)
    for name, values in (("storeys", storeys), ("year", year)):
        known = ~np.isnan(values)
        out[f"{name}_sum"] = np.where(known, number * values, 0.0)
        out[f"{name}_w"] = np.where(known, number, 0.0)
    occupancy = np.array([_occupancy_of(t) or "" for t in tax], dtype=object)
    if "occupancy" in rows:
        column = rows["occupancy"].fillna("").str.lower().str[:3].to_numpy(object)
        given = np.isin(column, _OCCUPANCIES)
        occupancy = np.where(given, column, occupancy)
    unknown = ~np.isin(occupancy, _OCCUPANCIES)
    for name in _OCCUPANCIES:
        out[f"frac_{name}"] = number * ((occupancy == name) + unknown / 3)
    for name in ("total", "structural", "nonstructural", "night", "day"):
        out[name] = rows[name].to_numpy(np.float64)
    return pd.DataFrame(out, index=rows.index)


class GEMExposure:
    """GEM exposure model joined to buildings by nearest location or admin unit.

    Reads either

    * point-asset CSVs in OpenQuake exposure form (``lon``, ``lat``,
      ``taxonomy``, ``number``, ``structural``, ``nonstructural``, ``contents``,
      ``day``, ``night``, optional ``period``, ``ID_1``, ``NAME_1``...), or
    * GEM's public aggregated Adm1 files (``Exposure_{Res,Com,Ind}_<Country>_
      Adm1.csv``: ``ID_1``, ``NAME_1``, ``TAXONOMY``, ``BUILDINGS``,
      ``COST_*_USD``, ``OCCUPANTS_PER_ASSET_*``), which have no coordinates.

    Column names are matched case-insensitively against :data:`COLUMN_ALIASES`.
    Assets at the same coordinates (to 1e-7 degrees), or of the same admin unit,
    are aggregated into one location whose feature vector
    (:data:`GEM_FEATURE_NAMES`) weights every asset by its number of buildings.

    Bad cells: rows with NaN or out-of-range coordinates, without an admin unit,
    or with a NaN or non-positive number of buildings are skipped and counted in
    :attr:`skipped`; NaN costs and occupants are taken as 0, an empty taxonomy as
    ``UNK`` and a NaN total cost as the sum of its components, each counted in
    :attr:`nan_filled`. A :class:`UserWarning` summarises both per file. Negative
    costs per building are clipped to 0 before ``log1p``.

    Attributes:
        paths: the CSV files read
        kind: ``"points"`` or ``"admin"``
        feature_names: :data:`GEM_FEATURE_NAMES`
        locations: one row per location (points: ``lon``, ``lat`` and a point
            geometry in EPSG:4326; admin: ``id_1``/``name_1`` and no geometry)
            with ``buildings``, ``assets`` and one column per feature
        admin_units: per-admin-unit table (the locations for admin files; for
            point files with ``ID_1``/``NAME_1`` their aggregation), else None
        metric_crs: projected CRS of the nearest-neighbour search (points only)
        skipped: reason -> number of rows skipped
        nan_filled: column -> number of NaN cells filled

    .. versionadded:: 0.1
    """

    def __init__(
        self,
        paths: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
        crs: CRS | str | int | None = None,
    ) -> None:
        """Read and aggregate GEM exposure files.

        Args:
            paths: CSV file(s) or directories of ``*.csv`` files; all must be of
                the same kind (point assets or admin aggregates). In directories,
                CSVs without a taxonomy column (e.g. GEM's
                ``Exposure_Summary_Adm1.csv``) are skipped with a warning.
            crs: projected CRS in which nearest-neighbour distances are measured;
                if None or geographic, the UTM zone of the data is used. Point
                coordinates in the files are always WGS84 lon/lat.

        Raises:
            FileNotFoundError: If a file or directory does not exist.
            ValueError: If a file is empty, lacks required columns (the message
                lists them, the file and the accepted names), has non-numeric
                numbers, a malformed taxonomy or period (the message names file
                and line), no usable rows, or if files of both kinds are mixed.
        """
        files = _expand(paths)
        tables = _read_all(files)
        self.paths = [t.path for t in tables]
        self.feature_names: tuple[str, ...] = GEM_FEATURE_NAMES
        self.skipped: dict[str, int] = {}
        self.nan_filled: dict[str, int] = {}
        kinds = {t.kind for t in tables}
        if len(kinds) > 1:
            listing = ", ".join(f"{t.path} ({t.kind})" for t in tables)
            raise ValueError(
                "GEM exposure files mix point assets and admin aggregates: " + listing
            )
        self.kind: Literal["points", "admin"] = tables[0].kind
        taxonomies: dict[str, GEMTaxonomy] = {}
        for table in tables:
            taxonomies |= table.parse_taxonomies()
        rows = pd.concat([t.frame for t in tables], ignore_index=True)
        unit = self._admin_key(tables)
        if self.kind == "admin":
            if unit is None:
                listing = ", ".join(t.path for t in tables)
                raise ValueError(
                    "GEM admin-level files must all have ID_1 or all have NAME_1: "
                    + listing
                )
            present = (rows[unit].notna() & (rows[unit] != "")).to_numpy()
            for table in tables:
                lines = table.frame[unit]
                n = int((lines.isna() | (lines == "")).sum())
                if n:
                    table.skipped["missing_admin_unit"] = n
            rows = rows[present].reset_index(drop=True)
            if rows.empty:
                raise ValueError(f"no GEM exposure row has an admin unit {unit}")
        for table in tables:
            for key, n in table.skipped.items():
                self.skipped[key] = self.skipped.get(key, 0) + n
            for key, n in table.nan_filled.items():
                self.nan_filled[key] = self.nan_filled.get(key, 0) + n
            if table.skipped or table.nan_filled:
                warnings.warn(
                    f"GEM exposure file {table.path!r}: skipped rows "
                    f"{table.skipped}, NaN cells filled {table.nan_filled}",
                    UserWarning,
                    stacklevel=2,
                )
        self._weights = _row_weights(rows, taxonomies)
        self.admin_units: pd.DataFrame | None = None
        if unit is not None:
            present = (rows[unit].notna() & (rows[unit] != "")).to_numpy()
            keyed = rows[present].copy()
            keyed["unit_key"] = keyed[unit].map(_normalise_name)
            self.admin_units = self._aggregate(keyed, ["unit_key"]).drop(
                columns="unit_key"
            )
        self.metric_crs: CRS | None = None
        self._transformers: dict[CRS, Transformer] = {}
        self._tree: cKDTree | None = None
        if self.kind == "points":
            rows["lon_key"] = rows["lon"].round(7)
            rows["lat_key"] = rows["lat"].round(7)
            table_ = self._aggregate(rows, ["lon_key", "lat_key"])
            table_ = table_.rename(columns={"lon_key": "lon", "lat_key": "lat"})
            self.locations = gpd.GeoDataFrame(
                table_,
                geometry=gpd.points_from_xy(table_["lon"], table_["lat"]),
                crs="EPSG:4326",
            )
            self.metric_crs = self._metric_crs(crs)
            projected = self.locations.to_crs(self.metric_crs)
            self._tree = cKDTree(
                np.column_stack([projected.geometry.x, projected.geometry.y])
            )
        else:
            assert self.admin_units is not None
            self.locations = gpd.GeoDataFrame(
                self.admin_units,
                geometry=gpd.GeoSeries([None] * len(self.admin_units)),
                crs="EPSG:4326",
            )
        self._features: npt.NDArray[np.float32] = self.locations[
            list(GEM_FEATURE_NAMES)
        ].to_numpy(np.float32)
        self._admin_features = (
            None
            if self.admin_units is None
            else self.admin_units[list(GEM_FEATURE_NAMES)].to_numpy(np.float32)
        )
        self._admin_index = self._index_admin()

    @staticmethod
    def _admin_key(tables: list[_CsvRows]) -> str | None:
        """Admin-unit column present in every file: ``id_1``, else ``name_1``."""
        for name in ("id_1", "name_1"):
            if all(name in t.frame for t in tables):
                return name
        return None

    def _aggregate(self, rows: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
        """Sum the row weights per location and turn them into features.

        Args:
            rows: canonical rows with the key columns
            keys: columns identifying a location

        Returns:
            One row per location: the keys, ``id_1``/``name_1`` where available,
            ``buildings``, ``assets`` and the features.
        """
        weights = self._weights.loc[rows.index]
        grouped = pd.concat([rows[keys], weights], axis=1).groupby(keys, sort=True)
        sums = grouped.sum()
        w = sums["w"].to_numpy()
        table = sums.index.to_frame(index=False)
        for name in ("id_1", "name_1"):
            if name in rows and name not in keys:
                table[name] = rows.groupby(keys, sort=True)[name].first().to_numpy()
        table["buildings"] = w
        table["assets"] = grouped.size().to_numpy()
        for name in GEM_FEATURE_NAMES:
            if name.startswith("frac_"):
                table[name] = sums[name].to_numpy() / w
        overall = self._weights.sum()
        for name, column, default in (
            ("year", "mean_construction_year", DEFAULT_YEAR),
            ("storeys", "mean_storeys", DEFAULT_STOREYS),
        ):
            known = sums[f"{name}_w"].to_numpy()
            fallback = default
            if overall[f"{name}_w"] > 0:
                fallback = overall[f"{name}_sum"] / overall[f"{name}_w"]
            with np.errstate(invalid="ignore", divide="ignore"):
                mean = sums[f"{name}_sum"].to_numpy() / known
            table[column] = np.where(known > 0, mean, fallback)
        for name, label in (
            ("total", "replacement"),
            ("structural", "structural"),
            ("nonstructural", "nonstructural"),
        ):
            per_building = np.maximum(sums[name].to_numpy() / w, 0.0)
            table[f"log_{label}_cost_per_building"] = np.log1p(per_building)
        table["occupants_night_per_building"] = sums["night"].to_numpy() / w
        table["occupants_day_per_building"] = sums["day"].to_numpy() / w
        return table

    def _index_admin(self) -> dict[str, int]:
        """Map normalised ``ID_1`` and ``NAME_1`` values to admin-table rows."""
        index: dict[str, int] = {}
        if self.admin_units is None:
            return index
        for name in ("name_1", "id_1"):
            if name in self.admin_units:
                for row, value in enumerate(self.admin_units[name]):
                    if isinstance(value, str) and value:
                        index[_normalise_name(value)] = row
        return index

    def _metric_crs(self, crs: CRS | str | int | None) -> CRS:
        """The given CRS if projected, else the UTM zone of the locations."""
        if crs is not None:
            user = CRS.from_user_input(crs)
            if user.is_projected:
                return user
        return utm_crs_of(self.locations)

    # ------------------------------------------------------------------ queries
    def __len__(self) -> int:
        """Number of aggregated locations (points or admin units).

        Returns:
            The number of locations.
        """
        return len(self.locations)

    def __getstate__(self) -> dict[str, Any]:
        """Pickle support (transformers are rebuilt on demand).

        Returns:
            The instance state.
        """
        state = self.__dict__.copy()
        state["_transformers"] = {}
        return state

    @property
    def features(self) -> npt.NDArray[np.float32]:
        """Feature vectors of all locations, in :attr:`locations` order.

        Returns:
            Array of shape (L, F), float32.
        """
        return self._features

    def nearest(
        self,
        x: npt.ArrayLike,
        y: npt.ArrayLike,
        crs: CRS | str | int,
    ) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.float64]]:
        """Nearest GEM location of each query point.

        Args:
            x: query x coordinates (N,)
            y: query y coordinates (N,)
            crs: CRS of *x*, *y* (anything :meth:`pyproj.CRS.from_user_input`
                accepts, e.g. a rasterio CRS)

        Returns:
            Row index into :attr:`locations` (N,) and distance in metres of
            :attr:`metric_crs` (N,).

        Raises:
            ValueError: If the exposure has no coordinates (admin files), the
                shapes differ or a point is not finite.
        """
        if self._tree is None or self.metric_crs is None:
            raise ValueError(
                "GEM exposure read from admin-level files has no coordinates; "
                "use features_for_admin() with ID_1 or NAME_1 instead"
            )
        xs = np.atleast_1d(np.asarray(x, dtype=np.float64))
        ys = np.atleast_1d(np.asarray(y, dtype=np.float64))
        if xs.shape != ys.shape or xs.ndim != 1:
            raise ValueError(
                f"x and y must be 1-D of equal length: {xs.shape}, {ys.shape}"
            )
        source = CRS.from_user_input(crs)
        if source not in self._transformers:
            self._transformers[source] = Transformer.from_crs(
                source, self.metric_crs, always_xy=True
            )
        mx, my = self._transformers[source].transform(xs, ys)
        points = np.column_stack([mx, my])
        if not np.isfinite(points).all():
            bad = int(np.flatnonzero(~np.isfinite(points).all(axis=1))[0])
            raise ValueError(
                f"query point {bad} ({xs[bad]}, {ys[bad]}) is not finite in "
                f"{self.metric_crs.name}"
            )
        distance, index = self._tree.query(points)
        return np.asarray(index, dtype=np.intp), np.asarray(distance, dtype=np.float64)

    @overload
    def features_at(
        self,
        x: npt.ArrayLike,
        y: npt.ArrayLike,
        crs: CRS | str | int,
        return_distance: Literal[False] = ...,
    ) -> npt.NDArray[np.float32]: ...

    @overload
    def features_at(
        self,
        x: npt.ArrayLike,
        y: npt.ArrayLike,
        crs: CRS | str | int,
        return_distance: Literal[True],
    ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float64]]: ...

    def features_at(
        self,
        x: npt.ArrayLike,
        y: npt.ArrayLike,
        crs: CRS | str | int,
        return_distance: bool = False,
    ) -> (
        npt.NDArray[np.float32]
        | tuple[npt.NDArray[np.float32], npt.NDArray[np.float64]]
    ):
        """Feature vector of the nearest GEM location of each query point.

        Args:
            x: query x coordinates (N,), e.g. building centroids
            y: query y coordinates (N,)
            crs: CRS of *x*, *y*
            return_distance: also return the distance (metres) to that location,
                so callers can warn about buildings far from any GEM point

        Returns:
            Features (N, F) float32, and with *return_distance* the distances (N,).

        Raises:
            ValueError: See :meth:`nearest`.
        """
        index, distance = self.nearest(x, y, crs)
        features: npt.NDArray[np.float32] = self._features[index]
        if return_distance:
            return features, distance
        return features

    def features_for_admin(self, units: Sequence[str]) -> npt.NDArray[np.float32]:
        """Feature vectors of admin units (provinces) by code or name.

        Args:
            units: ``ID_1`` codes such as ``"TR-46"`` or ``NAME_1`` names such as
                ``"KAHRAMANMARAŞ"``, matched ignoring case and diacritics; a single
                string is one unit

        Returns:
            Features (N, F) float32.

        Raises:
            ValueError: If the exposure has no admin units.
            KeyError: If a unit is unknown (the message lists the known ones).
        """
        if self.admin_units is None:
            raise ValueError(
                "this GEM exposure has no ID_1/NAME_1 columns; use features_at()"
            )
        assert self._admin_features is not None
        names = [units] if isinstance(units, str) else list(units)
        rows = []
        for unit in names:
            key = _normalise_name(str(unit))
            if key not in self._admin_index:
                known = sorted(
                    set(self.admin_units.get("id_1", pd.Series(dtype=str)).dropna())
                    | set(self.admin_units.get("name_1", pd.Series(dtype=str)).dropna())
                )
                raise KeyError(f"unknown admin unit {unit!r}; known units: {known}")
            rows.append(self._admin_index[key])
        features: npt.NDArray[np.float32] = self._admin_features[
            np.asarray(rows, dtype=np.intp)
        ]
        return features.reshape(len(rows), len(GEM_FEATURE_NAMES))


class GEMNormalizer:
    """Z-score normalisation of GEM feature vectors, fitted on the training split.

    ``transform(x) = (x - mean) / max(std, min_std)``; the floor keeps features
    that are constant in the training split finite. NaN and infinite inputs are
    ignored by :meth:`fit` and mapped to 0 (the training mean) by
    :meth:`transform`. A feature that is NaN in every training row gets mean 0 and
    std 1.

    .. versionadded:: 0.1
    """

    def __init__(
        self,
        feature_names: Sequence[str] = GEM_FEATURE_NAMES,
        min_std: float = 1e-2,
    ) -> None:
        """Create an unfitted normaliser.

        Args:
            feature_names: names of the F features, checked on load
            min_std: floor of the standard deviation

        Raises:
            ValueError: If *min_std* is not positive.
        """
        if not min_std > 0:
            raise ValueError(f"min_std must be positive, got {min_std}")
        self.feature_names = tuple(feature_names)
        self.min_std = float(min_std)
        self.mean: npt.NDArray[np.float64] | None = None
        self.std: npt.NDArray[np.float64] | None = None

    @property
    def fitted(self) -> bool:
        """Whether statistics are available.

        Returns:
            True after :meth:`fit` or :meth:`load_state_dict`.
        """
        return self.mean is not None

    def _check(self, x: npt.NDArray[Any] | torch.Tensor) -> None:
        if x.shape[-1] != len(self.feature_names):
            raise ValueError(
                f"expected {len(self.feature_names)} GEM features in the last "
                f"dimension, got shape {tuple(x.shape)}"
            )

    def fit(self, x: npt.NDArray[Any] | torch.Tensor) -> GEMNormalizer:
        """Compute per-feature mean and floored std.

        Args:
            x: training features (N, F)

        Returns:
            This normaliser.

        Raises:
            ValueError: If *x* is not (N, F) with N >= 1.
        """
        array = (
            x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
        ).astype(np.float64)
        if array.ndim != 2 or array.shape[0] == 0:
            raise ValueError(f"fit expects a non-empty (N, F) array, got {array.shape}")
        self._check(array)
        array = np.where(np.isfinite(array), array, np.nan)
        known = np.isfinite(array).any(axis=0)
        mean = np.zeros(array.shape[1])
        std = np.ones(array.shape[1])
        mean[known] = np.nanmean(array[:, known], axis=0)
        std[known] = np.nanstd(array[:, known], axis=0)
        self.mean = mean
        self.std = np.maximum(std, self.min_std)
        return self

    def _stats(self) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        if self.mean is None or self.std is None:
            raise RuntimeError("GEMNormalizer is not fitted; call fit() first")
        return self.mean, self.std

    @overload
    def transform(self, x: torch.Tensor) -> torch.Tensor: ...

    @overload
    def transform(self, x: npt.NDArray[Any]) -> npt.NDArray[np.float32]: ...

    def transform(
        self, x: npt.NDArray[Any] | torch.Tensor
    ) -> npt.NDArray[np.float32] | torch.Tensor:
        """Normalise features.

        Args:
            x: features (..., F), a NumPy array or a tensor

        Returns:
            Normalised float32 features of the same type and shape; non-finite
            inputs become 0.

        Raises:
            RuntimeError: If not fitted.
            ValueError: If the last dimension is not F.
        """
        mean, std = self._stats()
        self._check(x)
        if isinstance(x, torch.Tensor):
            m = torch.as_tensor(mean, dtype=torch.float32, device=x.device)
            s = torch.as_tensor(std, dtype=torch.float32, device=x.device)
            values = x.to(torch.float32)
            values = torch.where(torch.isfinite(values), values, m)
            return (values - m) / s
        values64 = np.asarray(x, dtype=np.float64)
        values64 = np.where(np.isfinite(values64), values64, mean)
        return ((values64 - mean) / std).astype(np.float32)

    @overload
    def inverse_transform(self, z: torch.Tensor) -> torch.Tensor: ...

    @overload
    def inverse_transform(self, z: npt.NDArray[Any]) -> npt.NDArray[np.float32]: ...

    def inverse_transform(
        self, z: npt.NDArray[Any] | torch.Tensor
    ) -> npt.NDArray[np.float32] | torch.Tensor:
        """Undo :meth:`transform` (for finite inputs).

        Args:
            z: normalised features (..., F)

        Returns:
            Features in original units, float32, same type as *z*.

        Raises:
            RuntimeError: If not fitted.
            ValueError: If the last dimension is not F.
        """
        mean, std = self._stats()
        self._check(z)
        if isinstance(z, torch.Tensor):
            m = torch.as_tensor(mean, dtype=torch.float32, device=z.device)
            s = torch.as_tensor(std, dtype=torch.float32, device=z.device)
            return z.to(torch.float32) * s + m
        return (np.asarray(z, dtype=np.float64) * std + mean).astype(np.float32)

    def state_dict(self) -> dict[str, Any]:
        """Statistics as a JSON-serialisable dict of plain lists.

        Returns:
            ``{"feature_names", "mean", "std", "min_std"}``.

        Raises:
            RuntimeError: If not fitted.
        """
        mean, std = self._stats()
        return {
            "feature_names": list(self.feature_names),
            "mean": [float(v) for v in mean],
            "std": [float(v) for v in std],
            "min_std": self.min_std,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore statistics saved by :meth:`state_dict`.

        Args:
            state: the dict

        Raises:
            ValueError: If keys are missing, the feature names differ from this
                normaliser's, or the statistics are malformed.
        """
        missing = {"feature_names", "mean", "std"} - set(state)
        if missing:
            raise ValueError(f"GEMNormalizer state lacks {sorted(missing)}")
        names = tuple(state["feature_names"])
        if names != self.feature_names:
            raise ValueError(
                "GEMNormalizer state is for other features: "
                f"{list(names)} != {list(self.feature_names)}"
            )
        mean = np.asarray(state["mean"], dtype=np.float64)
        std = np.asarray(state["std"], dtype=np.float64)
        n = len(names)
        if mean.shape != (n,) or std.shape != (n,):
            raise ValueError(f"GEMNormalizer state needs {n} means and stds")
        if not (np.isfinite(mean).all() and np.isfinite(std).all() and (std > 0).all()):
            raise ValueError("GEMNormalizer state has non-finite or non-positive stats")
        self.min_std = float(state.get("min_std", self.min_std))
        self.mean, self.std = mean, std
