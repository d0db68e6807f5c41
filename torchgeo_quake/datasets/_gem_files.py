"""A set of GEM / OpenQuake exposure files read as one table (private helpers).

Expands the paths given to :class:`~torchgeo_quake.datasets.gem.GEMExposure`
(files, or folders of ``*.csv``), reads each file
(:mod:`~torchgeo_quake.datasets.gem_csv`), checks that they are of one kind
(point assets or admin aggregates) and concatenates their canonical rows, with
the bookkeeping of their cleaning.

.. versionadded:: 0.2
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pandas as pd

from .gem_csv import _OPTIONAL, _CsvRows, _MissingColumnsError, check_required
from .gem_features import FEATURE_COLUMNS
from .taxonomy import GEMTaxonomy


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


def _read_all(
    files: list[tuple[str, bool]],
    stacklevel: int = 2,
    required: Sequence[str] = FEATURE_COLUMNS,
) -> list[_CsvRows]:
    """Read every file; directory members without a taxonomy column are skipped.

    Args:
        files: ``(file, found_in_directory)`` pairs from :func:`_expand`
        stacklevel: stack level of the warning about a skipped file, as seen
            from the caller (2: the line calling this function)
        required: canonical columns every file must have

    Returns:
        The cleaned tables.

    Raises:
        ValueError: If a file is invalid or none is left.
    """
    tables: list[_CsvRows] = []
    for path, from_dir in files:
        try:
            tables.append(_CsvRows(path, required))
        except _MissingColumnsError as err:
            if not (from_dir and "taxonomy" in err.missing):
                raise
            warnings.warn(
                f"skipping {path!r}: no taxonomy column",
                UserWarning,
                stacklevel=stacklevel,
            )
    if not tables:
        raise ValueError(
            f"no GEM exposure file with a taxonomy column in {[f for f, _ in files]}"
        )
    return tables


@dataclass
class _ExposureRows:
    """The canonical rows of a set of GEM exposure files, read and checked.

    Attributes:
        paths: the files read (directory members without taxonomy left out)
        kind: ``"points"`` or ``"admin"``, common to all files
        rows: canonical rows of all files (admin files: those with a unit)
        taxonomies: parsed taxonomy of every string in *rows*
        unit: admin-unit column present in every file (``id_1``, else
            ``name_1``), or None
        skipped: reason -> number of rows skipped
        nan_filled: column -> number of NaN cells filled
        absent: optional value columns that some file lacks (their cells in
            that file are NaN)
    """

    paths: list[str]
    kind: Literal["points", "admin"]
    rows: pd.DataFrame
    taxonomies: dict[str, GEMTaxonomy]
    unit: str | None
    skipped: dict[str, int]
    nan_filled: dict[str, int]
    absent: tuple[str, ...] = ()


def _admin_key(tables: list[_CsvRows]) -> str | None:
    """Admin-unit column present in every file: ``id_1``, else ``name_1``.

    Args:
        tables: the cleaned tables

    Returns:
        The column, or None if neither is in every file.
    """
    for name in ("id_1", "name_1"):
        if all(name in t.frame for t in tables):
            return name
    return None


def _common_kind(tables: list[_CsvRows]) -> Literal["points", "admin"]:
    """The kind of all files.

    Args:
        tables: the cleaned tables

    Returns:
        ``"points"`` or ``"admin"``.

    Raises:
        ValueError: If files of both kinds are mixed.
    """
    kinds = {t.kind for t in tables}
    if len(kinds) > 1:
        listing = ", ".join(f"{t.path} ({t.kind})" for t in tables)
        raise ValueError(
            "GEM exposure files mix point assets and admin aggregates: " + listing
        )
    return tables[0].kind


def _rows_with_unit(
    rows: pd.DataFrame, tables: list[_CsvRows], unit: str | None
) -> pd.DataFrame:
    """Rows of admin-level files that name their admin unit.

    The others are counted in the ``skipped`` table of their file as
    ``missing_admin_unit``.

    Args:
        rows: canonical rows of all *tables*
        tables: the cleaned admin-level tables
        unit: their common admin-unit column

    Returns:
        The rows with a unit, reindexed from 0.

    Raises:
        ValueError: If the files have no common unit column or no row has one.
    """
    if unit is None:
        listing = ", ".join(t.path for t in tables)
        raise ValueError(
            "GEM admin-level files must all have ID_1 or all have NAME_1: " + listing
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
    return rows


def _read_exposure(
    paths: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    stacklevel: int = 2,
    required: Sequence[str] = FEATURE_COLUMNS,
) -> _ExposureRows:
    """Read, clean and concatenate GEM exposure files.

    Per file, a :class:`UserWarning` summarises skipped rows and filled cells.

    Args:
        paths: CSV file(s) or directories of ``*.csv`` files
        stacklevel: stack level of the warnings, as seen from the caller
            (2: the line calling this function)
        required: canonical columns every file must have (default: those of
            the feature vector, :data:`~.gem_features.FEATURE_COLUMNS`)

    Returns:
        The rows and the bookkeeping of their cleaning.

    Raises:
        FileNotFoundError: If a file or directory does not exist.
        ValueError: If a file is invalid (see
            :class:`~torchgeo_quake.datasets.gem.GEMExposure`) or files of both
            kinds are mixed.
    """
    tables = _read_all(_expand(paths), stacklevel + 1, check_required(required))
    kind = _common_kind(tables)
    taxonomies: dict[str, GEMTaxonomy] = {}
    for table in tables:
        taxonomies |= table.parse_taxonomies()
    rows = pd.concat([t.frame for t in tables], ignore_index=True)
    unit = _admin_key(tables)
    if kind == "admin":
        rows = _rows_with_unit(rows, tables, unit)
    skipped: dict[str, int] = {}
    nan_filled: dict[str, int] = {}
    for table in tables:
        for key, n in table.skipped.items():
            skipped[key] = skipped.get(key, 0) + n
        for key, n in table.nan_filled.items():
            nan_filled[key] = nan_filled.get(key, 0) + n
        if table.skipped or table.nan_filled:
            warnings.warn(
                f"GEM exposure file {table.path!r}: skipped rows "
                f"{table.skipped}, NaN cells filled {table.nan_filled}",
                UserWarning,
                stacklevel=stacklevel,
            )
    absent = tuple(c for c in _OPTIONAL if any(c in t.absent for t in tables))
    return _ExposureRows(
        [t.path for t in tables],
        kind,
        rows,
        taxonomies,
        unit,
        skipped,
        nan_filled,
        absent,
    )
