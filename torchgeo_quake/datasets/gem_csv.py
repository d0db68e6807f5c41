"""Reading and cleaning of GEM / OpenQuake exposure CSV files.

Turns each file given to :class:`~torchgeo_quake.datasets.gem.GEMExposure` into
a table of canonical rows (one row per asset; the files are put together by
the private ``_gem_files``): column names are matched
against :data:`COLUMN_ALIASES`, numbers are parsed, rows that cannot be used are
skipped and NaN cells filled (both counted and warned about per file), periods
and taxonomy strings are parsed. Two kinds of files are read: point assets
(``lon``/``lat``) and GEM's aggregated admin-unit files (``ID_1``/``NAME_1``).
Only the columns a reader needs are required (by default those of the GEM
feature vector, :data:`~torchgeo_quake.datasets.gem_features.FEATURE_COLUMNS`);
the other value columns may be absent, their cells then unknown (NaN). What the
rows then become is in :mod:`~torchgeo_quake.datasets.gem_features`.

The underscored names are internal to :mod:`torchgeo_quake.datasets`.

.. versionadded:: 0.2
"""

from __future__ import annotations

import csv
import math
import os
import re
from collections.abc import Sequence
from typing import Literal

import numpy as np
import numpy.typing as npt
import pandas as pd

from .gem_features import FEATURE_COLUMNS, features_without
from .taxonomy import GEMTaxonomy, parse_taxonomy

__all__ = ["COLUMN_ALIASES", "MAX_VALUES"]

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

#: Columns every file needs, whatever is computed from it.
_ALWAYS = ("taxonomy", "number")
#: Value columns that may be absent (unless required): their cells are NaN.
_OPTIONAL = ("structural", "nonstructural", "contents", "total", "day", "night")
_NUMERIC = frozenset(
    {"lon", "lat", "number", "structural", "nonstructural", "contents"}
    | {"total", "day", "night"}
)
_ZERO_FILLED = ("structural", "nonstructural", "contents", "day", "night")

#: Largest plausible value of each numeric column (per asset row): replacement
#: costs in USD (1e15 is ten times the world's yearly GDP), numbers of
#: buildings and occupants. Larger values, negative ones (coordinates aside)
#: and infinite ones are an error naming the file, the column and the lines.
MAX_VALUES: dict[str, float] = {
    "number": 1e9,
    "structural": 1e15,
    "nonstructural": 1e15,
    "contents": 1e15,
    "total": 1e15,
    "day": 1e10,
    "night": 1e10,
}
_PERIOD_RE = re.compile(r"^(\d{4})\s*[-\u2013/]\s*(\d{4})$")


def _aliases(canonical: str) -> str:
    """Format the accepted names of a column for error messages.

    Args:
        canonical: canonical column name

    Returns:
        ``"name (alias, alias)"``.
    """
    return f"{canonical} ({', '.join(COLUMN_ALIASES[canonical])})"


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


class _MissingColumnsError(ValueError):
    """A CSV lacks required columns."""

    def __init__(self, message: str, missing: list[str]) -> None:
        super().__init__(message)
        self.missing = missing


def check_required(required: Sequence[str]) -> tuple[str, ...]:
    """Check the names of required columns.

    Args:
        required: canonical column names (keys of :data:`COLUMN_ALIASES`)

    Returns:
        The names, as a tuple.

    Raises:
        ValueError: If a name is not a canonical column.
    """
    names = (required,) if isinstance(required, str) else tuple(required)
    unknown = [c for c in names if c not in COLUMN_ALIASES]
    if unknown:
        raise ValueError(
            f"required_columns {unknown} are not GEM exposure columns; use "
            f"names of {sorted(COLUMN_ALIASES)}"
        )
    return names


class _CsvRows:
    """Canonical rows of one GEM CSV file plus the bookkeeping of its cleaning.

    Args:
        path: the CSV file
        required: canonical columns it must have (besides taxonomy, number and
            lon/lat or an admin unit); the other value columns may be absent
            (:attr:`absent`), their cells NaN
    """

    def __init__(self, path: str, required: Sequence[str] = FEATURE_COLUMNS) -> None:
        self.path = path
        self.required = tuple(required)
        self.skipped: dict[str, int] = {}
        self.nan_filled: dict[str, int] = {}
        raw = self._read()
        columns = self._resolve(raw)
        #: Optional value columns the file lacks.
        self.absent = tuple(c for c in _OPTIONAL if c not in columns)
        self.kind = self._kind(columns)
        self.frame = self._clean(raw, columns)

    def _read(self) -> pd.DataFrame:
        if not os.path.isfile(self.path):
            raise FileNotFoundError(f"GEM exposure file {self.path!r} does not exist")
        self._check_fields()
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

    def _check_fields(self) -> None:
        """Check that every record has as many fields as the header.

        pandas fills the missing fields of a short record with NaN, so a file
        cut short (a download or copy that stopped, a partial last line) or a
        hand-edited line would lose values silently.

        Raises:
            ValueError: naming the file and the first line whose number of
                fields differs from the header's.
        """
        try:
            with open(self.path, encoding="utf-8-sig", newline="") as f:
                reader = csv.reader(f, skipinitialspace=True)
                header = next(reader, None)
                if header is None:
                    return  # empty: reported by pandas
                expected = len(header)
                last: tuple[int, int] | None = None
                for record in reader:
                    if not record:
                        continue  # blank line, skipped by pandas too
                    if len(record) != expected:
                        last = (reader.line_num, len(record))
                        break
        except (csv.Error, UnicodeDecodeError) as err:
            raise ValueError(
                f"GEM exposure file {self.path!r} is not a readable CSV: {err}"
            ) from err
        if last is None:
            return
        line, found = last
        with open(self.path, "rb") as raw:
            raw.seek(max(0, os.path.getsize(self.path) - 1))
            unterminated = raw.read(1) not in (b"\n", b"\r")
        cut = (
            " The file does not end with a newline: it was probably cut short "
            "(an interrupted download or copy); get it again."
            if unterminated
            else " Fix or remove that line."
        )
        raise ValueError(
            f"GEM exposure file {self.path!r} is malformed: line {line} has "
            f"{found} field(s), the header {expected}.{cut}"
        )

    def _resolve(self, raw: pd.DataFrame) -> dict[str, str]:
        lower = {str(c).strip().lower(): str(c) for c in reversed(raw.columns)}
        columns: dict[str, str] = {}
        for canonical, aliases in COLUMN_ALIASES.items():
            for alias in aliases:
                if alias in lower:
                    columns[canonical] = lower[alias]
                    break
        wanted = dict.fromkeys([*_ALWAYS, *self.required])
        missing = [c for c in wanted if c not in columns]
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
            needed = features_without(missing)
            if needed:
                extra += (
                    ". The GEM feature vector (the exposure input of models and "
                    f"training) needs them for {', '.join(needed)}"
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
        values = values.astype(np.float64)
        self._check_range(values, column, canonical)
        return values

    def _check_range(self, values: pd.Series, column: str, canonical: str) -> None:
        """Reject infinite, negative or absurdly large numbers.

        Args:
            values: the parsed column (NaN = empty cell)
            column: its name in the file
            canonical: its canonical name

        Raises:
            ValueError: naming the file, the column and the first bad lines.
        """
        array = values.to_numpy(np.float64)
        high = MAX_VALUES.get(canonical, math.inf)
        with np.errstate(invalid="ignore"):
            if canonical in ("lon", "lat"):
                bad = np.isinf(array)
                what = "infinite"
            else:
                bad = np.isinf(array) | (array < 0) | (array > high)
                what = f"infinite, negative or above {high:.0e}"
        if not bad.any():
            return
        rows = np.flatnonzero(bad)
        shown = ", ".join(f"{int(r) + 2} ({array[r]:g})" for r in rows[:5].tolist())
        more = f" and {rows.size - 5} more" if rows.size > 5 else ""
        raise ValueError(
            f"GEM exposure file {self.path!r}: {rows.size} {what} value(s) of "
            f"{canonical!r} (column {column!r}) on line(s) {shown}{more}. These "
            "cannot be real exposure values; fix the file (a unit or export "
            "error?)."
        )

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
                # An absent value column is unknown (NaN), but for the contents
                # cost, which only adds to a replacement cost.
                frame[canonical] = 0.0 if canonical == "contents" else np.nan
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
