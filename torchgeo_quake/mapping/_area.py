"""The mapped area: footprints on the SAR grid, units, exposure, buildings to score.

The footprints are located on the SAR image's grid (and refused when they miss
it, :func:`read_inputs`); the units of the per-unit totals (admin units, or a
grid laid out in metres) and the GEM exposure are read before the prediction,
so that a wrong file stops the run early (:func:`read_units`,
``_exposure.read_exposure``). The data layer is the one of training
(:func:`torchgeo_quake.datasets.build_area`: one window per building), and
every input feature gets a status: scored, or skipped with the reason
(:func:`select_buildings`). Private helpers of
:func:`~torchgeo_quake.mapping.predict.map_damage`.
"""

from __future__ import annotations

import contextlib
import io
import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import pandas as pd
import shapely
from pyproj import CRS

from ._crs import metric_crs, to_crs_xy
from ._footprint_checks import maybe_usable, no_footprint_error
from ._inputs import InputFiles, read_footprints
from ._rasters import check_dsm_values, check_sar_values, open_sar
from .summary import EXPOSURE_COLUMNS, admin_units, grid_cells

if TYPE_CHECKING:
    from ..datasets import GEMExposure
    from .model import LoadedModel

#: Reason of buildings whose window leaves the DSM.
OUTSIDE_DSM = "outside the DSM"

#: Reason of buildings whose footprint mask on the SAR grid holds no pixel.
SUB_PIXEL = "footprint smaller than a SAR pixel"


# ------------------------------------------------------------ footprints
@dataclass
class Footprints:
    """The input footprints as read (id and geometry), and where they lie.

    Held throughout a map; :meth:`release` drops the geometries once written.
    """

    #: The features as read (:func:`read_footprints`).
    frame: gpd.GeoDataFrame
    #: Their CRS.
    crs: CRS
    #: Their geometries, as read.
    geoms: npt.NDArray[np.object_]
    #: Centroid x of each feature in :attr:`work_crs` (NaN without geometry).
    cx: npt.NDArray[np.float64]
    #: Centroid y.
    cy: npt.NDArray[np.float64]
    #: CRS of the SAR image, in which the model's windows are cut.
    work_crs: CRS
    #: A CRS in metres for outlines and grid cells (:func:`metric_crs`).
    metric: CRS

    def __len__(self) -> int:
        """Number of input features.

        Returns:
            The count.
        """
        return len(self.cx)

    def release(self) -> None:
        """Drop the features and geometries (their memory), keeping the centroids."""
        self.frame = self.frame.iloc[:0]
        self.geoms = self.geoms[:0]


def _repaired(geoms: npt.NDArray[np.object_]) -> npt.NDArray[np.object_]:
    """Footprints as the data layer scores them: invalid ones repaired.

    An invalid footprint (a self-intersecting "bow tie") is scored as the
    polygonal part of :func:`shapely.make_valid`; its own centroid can lie
    anywhere (its signed area is about zero), so centroids are taken from the
    repaired footprint.

    Args:
        geoms: footprints (None and empty ones stay as they are)

    Returns:
        The footprints, invalid ones repaired (None where no polygon is left).
    """
    invalid = np.flatnonzero(
        ~shapely.is_missing(geoms) & ~shapely.is_empty(geoms) & ~shapely.is_valid(geoms)
    )
    if not len(invalid):
        return geoms
    from ..datasets.footprints import _polygonal

    repaired = geoms.copy()
    for i, geom in zip(invalid, shapely.make_valid(geoms[invalid]), strict=True):
        repaired[i] = _polygonal(geom)
    return repaired


def _centroids(
    geoms: npt.NDArray[np.object_], source: CRS, target: CRS, chunk: int
) -> npt.NDArray[np.float64]:
    """Centroids of footprints in another CRS, reprojected a chunk at a time.

    Invalid footprints are repaired first (:func:`_repaired`), as for scoring.

    Args:
        geoms: footprints in *source* (None, empty and unrepairable ones give
            NaN)
        source: their CRS
        target: CRS of the centroids
        chunk: footprints reprojected at once

    Returns:
        (N, 2) coordinates in *target*.
    """
    n = len(geoms)
    centroids = np.full((n, 2), np.nan)
    for first in range(0, n, chunk):
        part = _repaired(geoms[first : first + chunk])
        present = ~shapely.is_missing(part) & ~shapely.is_empty(part)
        if not present.any():
            continue
        moved = gpd.GeoSeries(part[present], crs=source).to_crs(target)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            points = shapely.centroid(np.asarray(moved.values, dtype=object))
        rows = first + np.flatnonzero(present)
        centroids[rows] = shapely.get_coordinates(points)
    return centroids


def _bounds_text(bounds: tuple[float, ...]) -> str:
    """Format bounds for messages.

    Args:
        bounds: (xmin, ymin, xmax, ymax)

    Returns:
        The text.
    """
    return "(" + ", ".join(f"{v:.1f}" for v in bounds) + ")"


def read_inputs(
    files: InputFiles,
    spec: dict[str, Any],
    id_field: str,
    chunk: int,
    say: Callable[[str], None],
) -> tuple[Footprints, Any, dict[str, Any]]:
    """Read the footprints and open the SAR image, and check that they overlap.

    Args:
        files: the input files
        spec: what the model needs (:func:`model_inputs`)
        id_field: building id column
        chunk: footprints reprojected at once
        say: function printing progress messages

    Returns:
        The footprints, the :class:`~torchgeo_quake.datasets.CSKSAR` image and
        what was done to it (:func:`open_sar`).

    Raises:
        ValueError: If the footprints hold no usable footprint or miss the SAR
            image, the image holds dB values or cannot be brought to the
            model's pixel size.
    """
    frame = read_footprints(files.footprints, id_field)
    fp_crs = CRS.from_user_input(frame.crs)
    say(f"read {len(frame)} footprints from {files.footprints} ({fp_crs.to_string()})")
    if maybe_usable(frame, id_field) == 0:
        error = no_footprint_error(frame, files.footprints, id_field)
        assert error is not None
        raise error
    check_sar_values(files.sar)
    image, sar_info = open_sar(files.sar, spec["radiometry"], spec["sar_res"], say)
    work_crs = CRS.from_user_input(image.crs)
    geoms = np.asarray(frame.geometry.values, dtype=object)
    centroids = _centroids(geoms, fp_crs, work_crs, chunk)
    cx, cy = centroids[:, 0], centroids[:, 1]
    sar_bounds = tuple(float(v) for v in image.index.total_bounds)
    inside = (
        (cx >= sar_bounds[0])
        & (cx <= sar_bounds[2])
        & (cy >= sar_bounds[1])
        & (cy <= sar_bounds[3])
    )
    finite = np.isfinite(cx) & np.isfinite(cy)
    if not finite.any():  # no footprint left after the repairs
        error = no_footprint_error(frame, files.footprints, id_field)
        if error is not None:
            raise error
    if not inside.any():
        fp_bounds = (
            (cx[finite].min(), cy[finite].min(), cx[finite].max(), cy[finite].max())
            if finite.any()
            else (math.nan,) * 4
        )
        raise ValueError(
            f"the footprints do not overlap the SAR image: footprints "
            f"{_bounds_text(fp_bounds)}, SAR image {_bounds_text(sar_bounds)}, both "
            f"in {work_crs.to_string()}. Check that both cover the same city and "
            f"that the footprint file's CRS ({fp_crs.to_string()}) is right."
        )
    # Outlines and grid cells in metres, whatever the SAR CRS.
    area = (
        float(cx[finite].min()),
        float(cy[finite].min()),
        float(cx[finite].max()),
        float(cy[finite].max()),
    )
    metric = metric_crs(work_crs, area)
    footprints = Footprints(frame, fp_crs, geoms, cx, cy, work_crs, metric)
    return footprints, image, sar_info


# ------------------------------------------------------ units, exposure
@dataclass(frozen=True)
class Units:
    """The unit of every building for the per-unit totals."""

    #: Unit label of every input feature (None: outside every unit).
    labels: npt.NDArray[np.object_]
    #: Extra per-unit columns (grid-cell bounds), or None.
    table: pd.DataFrame | None
    #: What the units are, for the summary.
    info: dict[str, Any]


def _no_unit_error(
    path: Path,
    x: npt.NDArray[np.float64],
    y: npt.NDArray[np.float64],
    crs: CRS,
) -> ValueError:
    """The error for admin units that hold no footprint at all.

    Args:
        path: the admin-unit file
        x: footprint centroids x, in *crs*
        y: footprint centroids y
        crs: CRS of the centroids (the SAR image's)

    Returns:
        A ValueError with the bounds of both, in *crs*.
    """
    from ._inputs import read_vector_file

    units = read_vector_file(path, "admin units", "--units")
    units = units[units.geometry.notna()].to_crs(crs)
    unit_bounds = tuple(float(v) for v in units.total_bounds)
    fp_bounds = (float(x.min()), float(y.min()), float(x.max()), float(y.max()))
    return ValueError(
        f"no footprint lies in any unit of --units {str(path)!r}: units "
        f"{_bounds_text(unit_bounds)}, footprints {_bounds_text(fp_bounds)}, both "
        f"in {crs.to_string()}. Check that the units cover the mapped city and "
        "that the file's CRS is right, or leave --units out for a grid of "
        "--cell-size cells."
    )


def read_units(
    footprints: Footprints, path: Path | None, field: str, cell_size: float
) -> Units:
    """The admin unit or grid cell of every footprint.

    Args:
        footprints: the footprints
        path: admin-unit polygons, or None for a square grid
        field: attribute naming the admin units
        cell_size: grid cell side in metres

    Returns:
        The units.

    Raises:
        ValueError: If the admin-unit file is unusable, or no footprint lies in
            any of its units.
    """
    cx, cy, work_crs = footprints.cx, footprints.cy, footprints.work_crs
    if path is not None:
        labels = admin_units(cx, cy, work_crs, path, field)
        located = np.isfinite(cx) & np.isfinite(cy)
        outside = located & pd.isna(pd.Series(labels, dtype=object)).to_numpy()
        n_located, n_outside = int(located.sum()), int(outside.sum())
        if n_located and n_outside == n_located:
            raise _no_unit_error(path, cx[located], cy[located], work_crs)
        info: dict[str, Any] = {
            "kind": "admin",
            "file": str(path),
            "field": field,
            "outside_units": n_outside,
        }
        if n_outside:
            warnings.warn(
                f"{n_outside} of the {n_located} footprints lie outside every unit "
                f"of {str(path)!r}: their totals are under '(none)' in "
                "summary.json (units.outside_units counts them)",
                UserWarning,
                stacklevel=2,
            )
        return Units(labels, None, info)
    metric = footprints.metric
    mx, my = to_crs_xy(cx, cy, work_crs, metric)
    labels, table = grid_cells(mx, my, cell_size)
    info = {
        "kind": "grid",
        "cell_size": cell_size,
        "cell_size_unit": "metre",
        "crs": metric.to_string(),
        "label": (
            "grid reference: column letter west to east, row number north to "
            "south, from the north-west cell holding a building (A1); the "
            "bounds are xmin, ymin, xmax, ymax"
        ),
    }
    return Units(labels, table, info)


# ------------------------------------------------------ buildings to score
@dataclass
class Area:
    """The data layer of the mapped area and the status of every input feature."""

    #: ``sar [& dsm] & footprints``, queried by window.
    dataset: Any
    #: Skip reason of every input feature (None: scored).
    reasons: npt.NDArray[np.object_]
    #: Input rows of the buildings to score, in prediction order.
    rows: npt.NDArray[np.int64]
    #: ``(xmin, xmax, ymin, ymax)`` of their windows, shape (N, 4).
    windows: npt.NDArray[np.float64]
    #: (xres, yres) of the window queries.
    res: tuple[float, float]
    #: :data:`~torchgeo_quake.mapping.summary.EXPOSURE_COLUMNS` of every input
    #: feature (NaN where unknown), or None without exposure.
    exposure: dict[str, npt.NDArray[np.float64]] | None

    def order_by(self, order: npt.NDArray[np.int64]) -> None:
        """Put the buildings to score in another order.

        Args:
            order: a permutation of the buildings to score
        """
        self.rows, self.windows = self.rows[order], self.windows[order]


def _exposure_values(
    gem: npt.NDArray[np.float32],
) -> dict[str, npt.NDArray[np.float64]]:
    """Occupants and replacement cost per building from GEM feature vectors.

    Args:
        gem: vectors of :data:`~torchgeo_quake.datasets.GEM_FEATURE_NAMES`

    Returns:
        :data:`~torchgeo_quake.mapping.summary.EXPOSURE_COLUMNS` arrays.
    """
    from ..datasets import GEM_FEATURE_NAMES

    names = list(GEM_FEATURE_NAMES)
    g = gem.astype(np.float64)
    return {
        "occupants_day": g[:, names.index("occupants_day_per_building")],
        "occupants_night": g[:, names.index("occupants_night_per_building")],
        "replacement_cost_usd": np.expm1(
            g[:, names.index("log_replacement_cost_per_building")]
        ),
    }


def _data_layer(
    footprints: Footprints,
    image: Any,
    files: InputFiles,
    gem: GEMExposure | None,
    model: LoadedModel,
    *,
    name: str,
    id_field: str,
    patch_size: int,
    max_nodata: float,
    say: Callable[[str], None],
) -> tuple[Any, Any, Any]:
    """Build the data layer of training on the mapped area.

    Args:
        footprints: the footprints
        image: the SAR image
        files: the input files
        gem: GEM exposure or None
        model: the model (its modalities)
        name: city name
        id_field: building id column
        patch_size: window side in pixels
        max_nodata: tolerated share of SAR nodata in a window
        say: function printing progress messages

    Returns:
        The :class:`~torchgeo_quake.datasets.OSMBuildings`, the DSM (or None)
        and :func:`~torchgeo_quake.datasets.build_area`'s result.

    Raises:
        ValueError: If the footprint file holds no usable footprint, or the
            DSM no valid height.
    """
    from ..datasets import CartoSatDSM, OSMBuildings, build_area

    # TorchGeo prints what it converts ("Converting CartoSatDSM res from ...");
    # it is passed on as a progress message (not on other ranks, not --quiet).
    converted = io.StringIO()
    with warnings.catch_warnings(), contextlib.redirect_stdout(converted):
        warnings.filterwarnings("ignore", message=".*Converting.*res.*")
        try:
            buildings = OSMBuildings(
                files.footprints, city=name, exposure=gem, id_field=id_field
            )
        except ValueError as err:
            error = no_footprint_error(footprints.frame, files.footprints, id_field)
            if error is not None:
                raise error from err
            raise
        dsm = None
        if "dsm" in model.modalities:
            assert files.dsm is not None
            check_dsm_values(files.dsm)
            dsm = CartoSatDSM(files.dsm)
        built = build_area(
            image,
            buildings,
            dsm,
            size=patch_size,
            negatives_per_positive=None,
            max_nodata=max_nodata,
        )
    for line in converted.getvalue().splitlines():
        say(line)
    return buildings, dsm, built


def select_buildings(
    footprints: Footprints,
    image: Any,
    files: InputFiles,
    gem: GEMExposure | None,
    model: LoadedModel,
    *,
    name: str,
    id_field: str,
    patch_size: int,
    max_nodata: float,
    say: Callable[[str], None],
) -> Area:
    """The data layer, the buildings to score and why the others are skipped.

    Args:
        footprints: the footprints
        image: the SAR image
        files: the input files
        gem: GEM exposure or None
        model: the model (its modalities)
        name: city name
        id_field: building id column
        patch_size: window side in pixels
        max_nodata: tolerated share of SAR nodata in a window
        say: function printing progress messages

    Returns:
        The area; its buildings to score are in the order of the data layer.

    Raises:
        ValueError: If the footprint file holds no usable footprint.
    """
    n = len(footprints)
    buildings, dsm, built = _data_layer(
        footprints,
        image,
        files,
        gem,
        model,
        name=name,
        id_field=id_field,
        patch_size=patch_size,
        max_nodata=max_nodata,
        say=say,
    )
    sampler = built.windows
    reasons = np.full(n, None, dtype=object)
    skipped_fp = buildings.skipped
    reasons[skipped_fp["row"].to_numpy(dtype=np.int64)] = skipped_fp["reason"].to_numpy(
        dtype=object
    )
    row_of_id = pd.Series(
        buildings.buildings["row"].to_numpy(dtype=np.int64),
        index=buildings.buildings["building_id"].to_numpy(dtype=np.int64),
    )
    if not sampler.skipped.empty:
        rows = row_of_id.loc[sampler.skipped["building_id"].to_numpy(np.int64)]
        reasons[rows.to_numpy()] = sampler.skipped["reason"].to_numpy(dtype=object)
    chosen = sampler.buildings
    query_rows = row_of_id.loc[chosen["building_id"].to_numpy(np.int64)].to_numpy()
    windows = chosen[["xmin", "xmax", "ymin", "ymax"]].to_numpy(dtype=np.float64)
    res = (float(sampler.res[0]), float(sampler.res[1]))
    if dsm is not None:
        coverage = shapely.union_all(dsm.index.geometry.values)
        boxes = shapely.box(windows[:, 0], windows[:, 2], windows[:, 1], windows[:, 3])
        keep = shapely.contains(coverage.buffer(1e-6 * res[0]), boxes)
        reasons[query_rows[~keep]] = OUTSIDE_DSM
        query_rows, windows = query_rows[keep], windows[keep]
    unaccounted = np.ones(n, dtype=bool)
    unaccounted[query_rows] = False
    unaccounted[~pd.isna(pd.Series(reasons, dtype=object)).to_numpy()] = False
    if unaccounted.any():  # pragma: no cover - a bug, never silently dropped
        raise RuntimeError(
            f"{int(unaccounted.sum())} footprints were neither scored nor skipped"
        )
    exposure = None
    if gem is not None and buildings.gem is not None:
        per_building = _exposure_values(buildings.gem)
        rows = buildings.buildings["row"].to_numpy(dtype=np.int64)
        exposure = {}
        for column in EXPOSURE_COLUMNS:
            values = np.full(n, np.nan)
            values[rows] = per_building[column]
            exposure[column] = values
    return Area(built.dataset, reasons, query_rows, windows, res, exposure)
