"""Small geospatial helpers shared by the datasets."""

from __future__ import annotations

import geopandas as gpd
from pyproj import CRS

__all__ = ["utm_crs_of"]


def utm_crs_of(frame: gpd.GeoDataFrame | gpd.GeoSeries) -> CRS:
    """WGS 84 UTM zone of the centre of a frame's bounds.

    A cheaper stand-in for :meth:`geopandas.GeoDataFrame.estimate_utm_crs`, which
    queries the PROJ database (~0.1 s a call).

    Args:
        frame: geometries in any CRS

    Returns:
        The UTM CRS (EPSG 326xx north, 327xx south).

    .. versionadded:: 0.1
    """
    bounds = frame.to_crs(4326).total_bounds if frame.crs else frame.total_bounds
    lon = (bounds[0] + bounds[2]) / 2
    lat = (bounds[1] + bounds[3]) / 2
    zone = min(60, max(1, int((lon + 180) // 6) + 1))
    return CRS.from_epsg((32600 if lat >= 0 else 32700) + zone)
