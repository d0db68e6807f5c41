"""Which footprint each feature of a damage reference matches.

:func:`~torchgeo_quake.datasets.references.join_damage` pairs the features of a
reference with footprints by id when both carry one, else spatially: polygons
by the share of a footprint they cover, points by the footprint they fall in or,
for graded points, the nearest footprint within a distance in metres. These
functions compute those (feature, footprint) pairs; what a pair means for the
label is the join's business.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import pandas as pd
import shapely
from pyproj import CRS

from .utils import utm_crs_of


def _id_pairs(
    ids: pd.Index, ref_ids: npt.NDArray[np.float64]
) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
    """(feature, footprint) pairs of a join by id.

    Args:
        ids: numeric id of every footprint
        ref_ids: numeric id of every feature (NaN when it has none)

    Returns:
        Positions of features and of footprints, pair by pair.

    Raises:
        ValueError: If the footprint ids are not unique.
    """
    if not ids.is_unique:
        raise ValueError("footprint_ids must be unique")
    rows = ids.get_indexer(pd.Index(ref_ids))
    found = rows >= 0
    return np.flatnonzero(found), rows[found]


def _metric(frame: gpd.GeoDataFrame) -> tuple[CRS, float]:
    """A metric CRS to measure distances between features of a frame.

    Args:
        frame: footprints

    Returns:
        The frame's CRS when projected, else its UTM zone, and the size of one
        metre in that CRS's units.
    """
    crs = CRS.from_user_input(frame.crs)
    if crs.is_geographic:
        return utm_crs_of(frame), 1.0
    factor = crs.axis_info[0].unit_conversion_factor if crs.axis_info else 1.0
    return crs, 1.0 / float(factor or 1.0)


def _spatial_pairs(
    footprints: gpd.GeoDataFrame,
    ref: gpd.GeoDataFrame,
    overlap: float,
    max_distance: float | None,
) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
    """(feature, footprint) pairs of a spatial join.

    Polygons match the footprints they cover at least *overlap* of; points
    match the footprints they fall inside, else (with *max_distance*) the
    nearest footprint within that many metres.

    Args:
        footprints: footprints
        ref: reference features with geometries, in the footprints' CRS
        overlap: minimum share of a footprint's area a polygon must cover
        max_distance: metres, or None for no nearest-footprint join

    Returns:
        Positions of features and of footprints, pair by pair.
    """
    geoms = shapely.make_valid(np.asarray(ref.geometry.values, dtype=object))
    polygons = np.asarray(footprints.geometry.values, dtype=object)
    tree = shapely.STRtree(polygons)
    ref_idx, bld_idx = tree.query(geoms, predicate="intersects")
    point = np.isin(shapely.get_type_id(geoms), (0, 4))  # Point, MultiPoint
    areas = shapely.area(polygons[bld_idx])
    shared = shapely.area(shapely.intersection(geoms[ref_idx], polygons[bld_idx]))
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.where(areas > 0, shared / np.where(areas > 0, areas, 1.0), 0.0)
    ok = point[ref_idx] | ((areas > 0) & (share >= overlap))
    ref_idx, bld_idx = ref_idx[ok], bld_idx[ok]
    if max_distance is None:
        return ref_idx, bld_idx
    loose = np.flatnonzero(point & ~np.isin(np.arange(len(geoms)), ref_idx))
    if len(loose) == 0:
        return ref_idx, bld_idx
    crs, metre = _metric(footprints)
    metric = gpd.GeoSeries(polygons, crs=footprints.crs).to_crs(crs).values
    points = gpd.GeoSeries(geoms[loose], crs=footprints.crs).to_crs(crs).values
    (near_ref, near_bld), _ = shapely.STRtree(np.asarray(metric)).query_nearest(
        np.asarray(points),
        max_distance=max_distance * metre,
        return_distance=True,
        all_matches=True,
    )
    # Ties: the first footprint of the tied ones.
    first = pd.DataFrame({"r": near_ref, "b": near_bld}).groupby("r")["b"].min()
    return (
        np.concatenate([ref_idx, loose[first.index.to_numpy()]]),
        np.concatenate([bld_idx, first.to_numpy()]),
    )
