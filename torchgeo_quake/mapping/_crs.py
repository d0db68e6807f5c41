"""A CRS in metres for the map, whatever the CRS of its inputs (private helpers).

The SAR image is resampled in metres, the grid of per-cell totals is laid out
in metres and outlines are measured in metres: :func:`metres_per_unit` tells
whether a CRS has a unit of length, :func:`metric_crs` finds a CRS in metres
for an area (the local UTM zone when its own CRS is not one) and
:func:`to_crs_xy` transforms points between CRSs, keeping missing ones.
"""

from __future__ import annotations

import math

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import shapely
from pyproj import CRS, Transformer


def metres_per_unit(crs: CRS) -> float | None:
    """Metres per unit of a projected CRS.

    Args:
        crs: a CRS

    Returns:
        The factor, or None for geographic CRSs and CRSs without a known unit.
    """
    if not crs.is_projected or not crs.axis_info:
        return None
    factor = crs.axis_info[0].unit_conversion_factor
    if not factor or not math.isfinite(factor):
        return None
    return float(factor)


def utm_crs(bounds: tuple[float, float, float, float], crs: CRS) -> CRS:
    """The WGS 84 UTM zone of the centre of some bounds.

    Args:
        bounds: (xmin, ymin, xmax, ymax) in *crs*
        crs: their CRS

    Returns:
        The UTM CRS (EPSG 326xx north, 327xx south).
    """
    from ..datasets.utils import utm_crs_of

    return utm_crs_of(gpd.GeoSeries([shapely.box(*bounds)], crs=crs))


def metric_crs(crs: CRS, bounds: tuple[float, float, float, float]) -> CRS:
    """A CRS in metres for an area: *crs* itself if it is one, else UTM.

    Args:
        crs: CRS of the area
        bounds: (xmin, ymin, xmax, ymax) of the area in *crs*

    Returns:
        The CRS.
    """
    if metres_per_unit(crs) == 1.0:
        return crs
    return utm_crs(bounds, crs)


def to_crs_xy(
    x: npt.NDArray[np.float64], y: npt.NDArray[np.float64], source: CRS, target: CRS
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Transform points, keeping NaN for missing ones.

    Args:
        x: x coordinates in *source*
        y: y coordinates
        source: their CRS
        target: CRS wanted

    Returns:
        x and y in *target*.
    """
    if source == target:
        return x, y
    ok = np.isfinite(x) & np.isfinite(y)
    tx, ty = np.full(len(x), np.nan), np.full(len(y), np.nan)
    transformer = Transformer.from_crs(source, target, always_xy=True)
    tx[ok], ty[ok] = transformer.transform(x[ok], y[ok])
    return tx, ty
