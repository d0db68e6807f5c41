"""GEM exposure joined to buildings: the per-building exposure feature vector.

Russo et al. (2025, Sec. II-B/II-C) enrich every building with attributes of the
GEM exposure model at the *nearest GEM data point* to its centroid: structural
typology, construction period, replacement costs and average occupancy.
:class:`GEMExposure` reads GEM / OpenQuake exposure files (see
:mod:`~torchgeo_quake.datasets.gem_csv`), aggregates the assets of every
location (a point, or an admin unit of GEM's aggregated files) into the
fixed-length vector :data:`GEM_FEATURE_NAMES`, described in
:mod:`~torchgeo_quake.datasets.gem_features`, and answers lookups: the vector
of the nearest location of each building, or of its admin unit.

The constants of those modules are re-exported here.

(About 615 lines, just over the package's 600: one class whose lookups, nearest
point and admin unit, share its point index, admin table and distance limit;
reading the files, the feature vector and the taxonomy parser are already
modules of their own.)

.. versionadded:: 0.1
"""

from __future__ import annotations

import math
import os
import unicodedata
import warnings
from collections.abc import Sequence
from typing import Any, Literal, overload

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import pandas as pd
from pyproj import CRS, Transformer
from scipy.spatial import cKDTree

from ._gem_files import _read_exposure
from .gem_csv import COLUMN_ALIASES
from .gem_features import (
    CODE_LEVEL_YEAR,
    DEFAULT_STOREYS,
    DEFAULT_YEAR,
    FEATURE_COLUMNS,
    GEM_FEATURE_DESCRIPTIONS,
    GEM_FEATURE_NAMES,
    _aggregate,
    _row_weights,
    features_without,
)
from .utils import utm_crs_of

__all__ = [
    "CODE_LEVEL_YEAR",
    "COLUMN_ALIASES",
    "DEFAULT_MAX_DISTANCE",
    "DEFAULT_STOREYS",
    "DEFAULT_YEAR",
    "FEATURE_COLUMNS",
    "GEM_FEATURE_DESCRIPTIONS",
    "GEM_FEATURE_NAMES",
    "GEMExposure",
]

#: Default largest distance (metres) between a building and the GEM point it is
#: joined to. GEM's high-resolution exposure is on a 30-arc-second grid (about
#: 930 m north-south, 740 m east-west at 37° N), so a building lies within about
#: 600 m of the centre of its cell; 2 km allows for a missing neighbour cell
#: and stays far below the distance to a wrong city or a swapped lon/lat.
DEFAULT_MAX_DISTANCE = 2000.0


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

    Bad files: a record with another number of fields than the header (a file
    cut short), and infinite, negative or absurdly large numbers (see
    :data:`~torchgeo_quake.datasets.gem_csv.MAX_VALUES`) are a
    :class:`ValueError` naming the file, the column and the lines.

    Columns: by default a file needs every column of the feature vector
    (:data:`~torchgeo_quake.datasets.gem_features.FEATURE_COLUMNS`), as a model
    trained with GEM does. A reader that needs less (a map whose model does
    not use GEM needs only ``taxonomy`` and ``number`` for its exposure
    totals) passes *required_columns*: the value columns left out of it may
    then be absent (:attr:`absent_columns`), and the features computed from
    them are NaN (:attr:`missing_features`).

    Distance: the nearest location is looked for within *max_distance* metres
    (:data:`DEFAULT_MAX_DISTANCE`). When no query point has a location that
    close, :meth:`nearest` and :meth:`features_at` raise a :class:`ValueError`
    giving the bounds of both (swapped lon/lat or the wrong file);
    :meth:`features_at` warns about the points beyond it, and
    :class:`~torchgeo_quake.datasets.OSMBuildings` skips those buildings
    (``"no exposure point within <N> m"``).

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
        max_distance: largest distance (metres) of a join to the nearest
            location, or None for no limit
        skipped: reason -> number of rows skipped
        nan_filled: column -> number of NaN cells filled
        absent_columns: optional value columns (``structural``,
            ``nonstructural``, ``contents``, ``total``, ``day``, ``night``)
            that a file lacks
        missing_features: features that are NaN for want of a column:
            feature name -> the column(s) it needs

    .. versionadded:: 0.1

    .. versionchanged:: 0.2
       *required_columns*, :attr:`absent_columns` and :attr:`missing_features`.
    """

    def __init__(
        self,
        paths: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
        crs: CRS | str | int | None = None,
        max_distance: float | None = DEFAULT_MAX_DISTANCE,
        required_columns: Sequence[str] = FEATURE_COLUMNS,
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
            max_distance: largest distance in metres (of *crs*) between a query
                point and the location it is joined to (see :meth:`nearest`);
                None for no limit
            required_columns: canonical columns (:data:`COLUMN_ALIASES`) every
                file must have besides ``taxonomy``, ``number`` and its
                coordinates or admin unit; by default those of the feature
                vector

        Raises:
            FileNotFoundError: If a file or directory does not exist.
            ValueError: If *max_distance* is not positive, *required_columns*
                names an unknown column, or a file is empty,
                malformed (a record with another number of fields than the
                header), lacks required columns (the message lists them, the
                file and the accepted names), has non-numeric, infinite,
                negative or absurdly large numbers, a malformed taxonomy or
                period (the message names file and line), no usable rows, or if
                files of both kinds are mixed.
        """
        if max_distance is not None and not (
            isinstance(max_distance, int | float) and max_distance > 0
        ):
            raise ValueError(
                "max_distance must be a positive number of metres or None, got "
                f"{max_distance!r}"
            )
        #: Largest distance (metres) of a join to the nearest location.
        self.max_distance: float | None = (
            None
            if max_distance is None or math.isinf(max_distance)
            else float(max_distance)
        )
        exposure = _read_exposure(paths, stacklevel=3, required=required_columns)
        self.paths = exposure.paths
        self.absent_columns: tuple[str, ...] = exposure.absent
        self.missing_features: dict[str, str] = features_without(exposure.absent)
        self.feature_names: tuple[str, ...] = GEM_FEATURE_NAMES
        self.skipped = exposure.skipped
        self.nan_filled = exposure.nan_filled
        self.kind: Literal["points", "admin"] = exposure.kind
        rows = exposure.rows
        self._weights = _row_weights(rows, exposure.taxonomies)
        self.admin_units = self._admin_units(rows, exposure.unit)
        self.metric_crs: CRS | None = None
        self._transformers: dict[CRS, Transformer] = {}
        self._tree: cKDTree | None = None
        if self.kind == "points":
            self.locations = self._points(rows)
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
        # Features of an absent column are unknown, not the 0 of an empty sum.
        for table in (self.locations, self.admin_units):
            if table is not None and self.missing_features:
                table[list(self.missing_features)] = np.nan
        self._features: npt.NDArray[np.float32] = self.locations[
            list(GEM_FEATURE_NAMES)
        ].to_numpy(np.float32)
        self._admin_features = (
            None
            if self.admin_units is None
            else self.admin_units[list(GEM_FEATURE_NAMES)].to_numpy(np.float32)
        )
        self._admin_index = self._index_admin()

    def _admin_units(self, rows: pd.DataFrame, unit: str | None) -> pd.DataFrame | None:
        """Aggregate the rows that name an admin unit per unit.

        Args:
            rows: canonical rows
            unit: their admin-unit column, or None

        Returns:
            One row per unit (matched ignoring case and diacritics), or None
            without a unit column.
        """
        if unit is None:
            return None
        present = (rows[unit].notna() & (rows[unit] != "")).to_numpy()
        keyed = rows[present].copy()
        keyed["unit_key"] = keyed[unit].map(_normalise_name)
        table = _aggregate(keyed, self._weights, ["unit_key"])
        return table.drop(columns="unit_key")

    def _points(self, rows: pd.DataFrame) -> gpd.GeoDataFrame:
        """Aggregate point assets per location (coordinates to 1e-7 degrees).

        Args:
            rows: canonical rows with ``lon`` and ``lat``

        Returns:
            One row per location, with point geometries in EPSG:4326.
        """
        rows["lon_key"] = rows["lon"].round(7)
        rows["lat_key"] = rows["lat"].round(7)
        table = _aggregate(rows, self._weights, ["lon_key", "lat_key"])
        table = table.rename(columns={"lon_key": "lon", "lat_key": "lat"})
        return gpd.GeoDataFrame(
            table,
            geometry=gpd.points_from_xy(table["lon"], table["lat"]),
            crs="EPSG:4326",
        )

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
        strict: bool = True,
    ) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.float64]]:
        """Nearest GEM location of each query point.

        Points farther than :attr:`max_distance` from every location still get
        the nearest one; compare the returned distances with
        :attr:`max_distance` to leave them out. When *no* point is within it,
        the exposure and the points do not describe the same place (lon and lat
        swapped, or the file of another area) and, with *strict*, that is an
        error.

        Args:
            x: query x coordinates (N,)
            y: query y coordinates (N,)
            crs: CRS of *x*, *y* (anything :meth:`pyproj.CRS.from_user_input`
                accepts, e.g. a rasterio CRS)
            strict: raise if no point is within :attr:`max_distance`

        Returns:
            Row index into :attr:`locations` (N,) and distance in metres of
            :attr:`metric_crs` (N,).

        Raises:
            ValueError: If the exposure has no coordinates (admin files), the
                shapes differ, a point is not finite, or (*strict*) no point is
                within :attr:`max_distance` of a location (the message gives
                the WGS84 bounds of both).
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
        index = np.asarray(index, dtype=np.intp)
        distance = np.asarray(distance, dtype=np.float64)
        limit = self.max_distance
        if strict and limit is not None and distance.size and distance.min() > limit:
            raise ValueError(self._too_far_message(xs, ys, source, distance))
        return index, distance

    def _too_far_message(
        self,
        xs: npt.NDArray[np.float64],
        ys: npt.NDArray[np.float64],
        crs: CRS,
        distance: npt.NDArray[np.float64],
    ) -> str:
        """Error message for query points that are all far from the exposure.

        Args:
            xs: query x coordinates
            ys: query y coordinates
            crs: their CRS
            distance: distance of each to its nearest location (metres)

        Returns:
            The message, with the WGS84 bounds of the exposure and the points.
        """
        lon, lat = Transformer.from_crs(crs, 4326, always_xy=True).transform(xs, ys)
        q = (np.nanmin(lon), np.nanmin(lat), np.nanmax(lon), np.nanmax(lat))
        e = tuple(float(v) for v in self.locations.total_bounds)
        sources = ", ".join(repr(str(p)) for p in self.paths)

        def box(b: tuple[float, ...]) -> str:
            return f"lon {b[0]:.4f}..{b[2]:.4f}, lat {b[1]:.4f}..{b[3]:.4f}"

        margin = 0.05  # degrees
        swapped = (
            e[1] - margin <= q[2]
            and q[0] <= e[3] + margin
            and e[0] - margin <= q[3]
            and q[1] <= e[2] + margin
        )
        hint = (
            "the exposure's lon and lat columns look swapped"
            if swapped
            else "likely swapped lon/lat columns or the exposure of another area"
        )
        return (
            f"GEM exposure {sources}: none of the {len(xs)} query point(s) is "
            f"within max_distance={self.max_distance:g} m of an exposure point "
            f"(the nearest is {float(distance.min()):.0f} m away): {hint}. "
            f"Exposure points: {box(e)}; query points: {box(q)} (WGS84). Check "
            "the file and its lon/lat columns, or pass a larger max_distance= "
            "(GEMExposure(path, max_distance=...)) if the exposure is that sparse."
        )

    @overload
    def features_at(
        self,
        x: npt.ArrayLike,
        y: npt.ArrayLike,
        crs: CRS | str | int,
        return_distance: Literal[False] = ...,
        strict: bool = ...,
    ) -> npt.NDArray[np.float32]: ...

    @overload
    def features_at(
        self,
        x: npt.ArrayLike,
        y: npt.ArrayLike,
        crs: CRS | str | int,
        return_distance: Literal[True],
        strict: bool = ...,
    ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float64]]: ...

    def features_at(
        self,
        x: npt.ArrayLike,
        y: npt.ArrayLike,
        crs: CRS | str | int,
        return_distance: bool = False,
        strict: bool = True,
    ) -> (
        npt.NDArray[np.float32]
        | tuple[npt.NDArray[np.float32], npt.NDArray[np.float64]]
    ):
        """Feature vector of the nearest GEM location of each query point.

        Points farther than :attr:`max_distance` from every location get the
        features of the nearest one all the same; with *strict* and without
        *return_distance* (with which the caller sees the distances) a
        :class:`UserWarning` counts them.

        Args:
            x: query x coordinates (N,), e.g. building centroids
            y: query y coordinates (N,)
            crs: CRS of *x*, *y*
            return_distance: also return the distance (metres) to that location,
                so callers can leave out buildings far from any GEM point
            strict: raise if no point is within :attr:`max_distance`, and warn
                about the points beyond it (see above)

        Returns:
            Features (N, F) float32, and with *return_distance* the distances (N,).

        Raises:
            ValueError: See :meth:`nearest`.
        """
        index, distance = self.nearest(x, y, crs, strict=strict)
        features: npt.NDArray[np.float32] = self._features[index]
        if return_distance:
            return features, distance
        limit = self.max_distance
        if strict and limit is not None:
            far = int((distance > limit).sum())
            if far:
                sources = ", ".join(repr(str(p)) for p in self.paths)
                warnings.warn(
                    f"GEM exposure {sources}: {far} of {distance.size} query "
                    f"point(s) are more than max_distance={limit:g} m from any "
                    "exposure point; they get the features of the nearest one "
                    "(pass return_distance=True to leave them out).",
                    UserWarning,
                    stacklevel=2,
                )
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


def _building_features(
    exposure: GEMExposure,
    centroids: npt.NDArray[np.float64],
    crs: CRS,
    units: Sequence[str] | None = None,
    context: str = "OSMBuildings",
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.bool_]]:
    """GEM vector of every building: of its admin unit, or of the nearest point.

    Args:
        exposure: the exposure
        centroids: building centroids (N, 2) in *crs*
        crs: CRS of *centroids*
        units: admin unit (``ID_1`` code or ``NAME_1`` name) of every building
            (N), or None to join by nearest GEM point
        context: name of the caller, in error messages

    Returns:
        float32 array (N, F), and which buildings are farther than
        :attr:`GEMExposure.max_distance` from every GEM point (N,; all False
        for a join by admin unit).

    Raises:
        ValueError: If an admin unit is unknown, the exposure has no
            coordinates and no admin unit is given, or no building is within
            :attr:`GEMExposure.max_distance` of a GEM point.
    """
    sources = ", ".join(repr(str(p)) for p in exposure.paths)
    if units is not None:
        unique = list(dict.fromkeys(units))
        try:
            table = exposure.features_for_admin(unique)
        except (KeyError, ValueError) as err:
            message = err.args[0] if err.args else str(err)
            raise ValueError(
                f"{context}: cannot join the GEM exposure {sources} by admin "
                f"unit: {message}. Give units as the exposure's ID_1 codes "
                "(e.g. 'TR-46') or NAME_1 names."
            ) from err
        row_of = {unit: i for i, unit in enumerate(unique)}
        rows = np.fromiter((row_of[u] for u in units), np.intp, count=len(units))
        far = np.zeros(len(units), dtype=bool)
        return np.asarray(table[rows], dtype=np.float32), far
    if exposure.kind != "points":
        raise ValueError(
            f"{context}: the GEM exposure {sources} holds admin-level "
            "aggregates without coordinates (such as GEM's public "
            "Exposure_*_Adm1.csv files), so buildings cannot be joined to the "
            "nearest GEM point. Pass the buildings' admin unit as "
            "admin_unit='TR-46' (ID_1 code or NAME_1 name), or its column as "
            "admin_field=, or use point-asset exposure (lon, lat columns)."
        )
    try:
        features, distance = exposure.features_at(
            centroids[:, 0], centroids[:, 1], crs, return_distance=True
        )
    except ValueError as err:
        raise ValueError(f"{context}: {err}") from err
    limit = exposure.max_distance
    far = np.zeros(len(distance), dtype=bool) if limit is None else distance > limit
    return np.asarray(features, dtype=np.float32), far
