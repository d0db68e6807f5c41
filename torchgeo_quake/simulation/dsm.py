"""Pre-event digital surface model of a simulated city (CartoSat-1-like).

The paper's DSM is the CartoSat-1 Euro-Maps 3D product: 5 m posting, generated
from stereo imagery years before the earthquake, with vertical accuracy of a
few metres. The simulated DSM is the terrain plus the pre-event surface model
(every building intact at its full height, tree crowns) averaged to 5 m, smoothed
by stereo matching (Gaussian, sigma = 4 m) and perturbed by correlated (20 m,
2 m standard deviation) and white (0.7 m) height errors. It therefore carries
building heights and terrain - vulnerability information - but no damage. It
covers the SAR image plus 250 m on every side.

Calibrated scenario: CartoSat-1 vertical error (:func:`dsm_error`)
    The Euro-Maps 3D DSM (GAF AG / DLR, CartoSat-1 stereo, 5 m posting,
    semi-global matching) specifies an absolute vertical accuracy LE90 of
    5-10 m and a relative vertical accuracy LE90 of 2.5 m; its per-pixel
    accuracy layer gives LE90 5 m for slopes below 20 %, 7 m for 20-40 % and
    10 m above 40 % (euromap.de, "Euro-Maps 3D"; GAF brochure). Independent
    validations agree: RMSE below 7.1 m in hilly terrain (Gianinetto 2009,
    Sensors 9(5):3269), 4.4 and 3.7 m (Dehradun, Shimla), 4.7 m flat / 7 m hilly
    for CartoDEM (Muralikrishnan et al. 2013, J Indian Soc Remote Sens 41:1).
    With Gaussian errors ``RMSE = LE90 / 1.645``: 3.0-6.1 m in total, 1.5 m
    relative. The error is the sum of
    a long-wavelength part (RPC / block-adjustment residuals; correlation
    length :data:`ABSOLUTE_CORR_M`, an assumption) whose standard deviation
    makes the total follow the slope-dependent LE90, a relative part with the
    20 m correlation of the matching window (1.35 m) and white noise (0.7 m),
    together the 1.52 m relative RMSE. Buildings are smoothed by the matching
    as in v0.1 (Gaussian, sigma 4 m, at the 5 m posting) before the errors are
    added.

.. versionadded:: 0.1
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import ndimage

from .city import CitySimulation, city_rng
from .fields import GridField, gaussian_random_field
from .geotiff import write_geotiff
from .landcover import (
    DSM_MARGIN_M,
    CityFields,
    PixelGrid,
    build_surface,
)
from .surface_plan import plan_surface

__all__ = [
    "ABSOLUTE_CORR_M",
    "DSM_NODATA",
    "DSM_RES",
    "LE90_TO_SIGMA",
    "STRIP_ROWS",
    "Dsm",
    "dsm_error",
    "le90_for_slope",
    "render_dsm",
    "write_dsm",
]

F32Array = npt.NDArray[np.float32]
FloatArray = npt.NDArray[np.float64]

#: DSM pixel size (metres).
DSM_RES = 5.0
#: Rows of the 2.5 m surface built at a time (even; bounds memory only).
STRIP_ROWS = 512
#: Nodata value declared in the DSM file (no pixel carries it).
DSM_NODATA = -9999.0
#: Ratio of the 90 % linear error to the standard deviation of a Gaussian.
LE90_TO_SIGMA = 1.6449
#: Correlation length of the absolute (long-wavelength) height error (metres).
ABSOLUTE_CORR_M = 500.0
#: Relative vertical accuracy LE90 of Euro-Maps 3D (metres).
RELATIVE_LE90_M = 2.5
#: White part of the relative error (metres, standard deviation).
WHITE_SIGMA_M = 0.7


@dataclass
class Dsm:
    """A rendered DSM.

    Attributes:
        height: surface elevation (metres above sea level), float32
        grid: grid in local metres

    .. versionadded:: 0.1
    """

    height: F32Array
    grid: PixelGrid


def render_dsm(sim: CitySimulation, fields: CityFields) -> Dsm:
    """Render the pre-event DSM of a city.

    Args:
        sim: the city
        fields: the city's surface random fields

    Returns:
        The DSM.

    .. versionadded:: 0.1

    .. versionchanged:: 0.3
       CartoSat-1 height errors (:func:`dsm_error`) in the calibrated scenario;
       the surface is built in strips of :data:`STRIP_ROWS` rows (same values).
    """
    rng = city_rng(sim.seed, sim.city, sim.scale, "dsm")
    left, bottom, right, top = sim.selection.bounds
    bounds = (
        left - DSM_MARGIN_M,
        bottom - DSM_MARGIN_M,
        right + DSM_MARGIN_M,
        top + DSM_MARGIN_M,
    )
    fine = PixelGrid.from_bounds(bounds, DSM_RES / 2)
    grid = PixelGrid.from_bounds(bounds, DSM_RES)
    # The pre-event surface draws no random number: strips are exact.
    plan = plan_surface(sim, fine)
    objects = np.empty(grid.shape, dtype=np.float32)
    for r0 in range(0, fine.rows, STRIP_ROWS):
        r1 = min(fine.rows, r0 + STRIP_ROWS)
        surface = build_surface(sim, fields, plan.strip(r0, r1), False, rng, plan)
        rows, cols = surface.height.shape
        objects[r0 // 2 : r1 // 2] = surface.height.reshape(
            rows // 2, 2, cols // 2, 2
        ).mean(axis=(1, 3))
        del surface
    ground = sim.terrain.elevation.sample_grid(
        grid.left, grid.top, grid.res, grid.shape
    )
    height = ndimage.gaussian_filter(ground + objects, sigma=4.0 / DSM_RES)
    if not sim.scenario.is_v01:
        x, y = grid.centres()
        xx, yy = np.meshgrid(x, y)
        slope = sim.terrain.slope_deg(xx, yy)
        height += dsm_error(grid.shape, le90_for_slope(slope), rng)
        return Dsm(height=np.asarray(height, dtype=np.float32), grid=grid)
    height += 2.0 * gaussian_random_field(grid.shape, DSM_RES, 20.0, rng)
    height += rng.normal(0.0, 0.7, size=grid.shape)
    return Dsm(height=np.asarray(height, dtype=np.float32), grid=grid)


def le90_for_slope(slope_deg: npt.ArrayLike) -> FloatArray:
    """Absolute vertical LE90 of Euro-Maps 3D as a function of terrain slope.

    Args:
        slope_deg: terrain slope (degrees)

    Returns:
        5 m below 20 % slope, 7 m for 20-40 %, 10 m above 40 %.

    .. versionadded:: 0.3
    """
    grade = np.tan(np.radians(np.asarray(slope_deg, dtype=np.float64)))
    return np.asarray(np.select([grade < 0.2, grade <= 0.4], [5.0, 7.0], 10.0))


def dsm_error(
    shape: tuple[int, int], le90: npt.ArrayLike, rng: np.random.Generator
) -> FloatArray:
    """Draw a CartoSat-1 (Euro-Maps 3D) height error field at the 5 m posting.

    Args:
        shape: (rows, columns) of the DSM grid
        le90: absolute vertical LE90 (metres), scalar or one value per pixel
        rng: random generator

    Returns:
        The error (metres): long-wavelength, 20 m correlated and white parts
        whose total standard deviation is ``le90 / 1.645`` (see the module
        docstring).

    Raises:
        ValueError: If an LE90 is below the relative LE90 (2.5 m).

    .. versionadded:: 0.3
    """
    sigma = np.broadcast_to(np.asarray(le90, dtype=np.float64), shape) / LE90_TO_SIGMA
    relative = RELATIVE_LE90_M / LE90_TO_SIGMA
    if (sigma < relative).any():
        raise ValueError(
            f"absolute LE90 must be at least the relative LE90 {RELATIVE_LE90_M} m"
        )
    correlated = math.sqrt(relative**2 - WHITE_SIGMA_M**2)
    absolute = np.sqrt(sigma**2 - relative**2)
    coarse = 50.0
    small = (
        math.ceil(shape[0] * DSM_RES / coarse) + 1,
        math.ceil(shape[1] * DSM_RES / coarse) + 1,
    )
    low = GridField(
        gaussian_random_field(small, coarse, ABSOLUTE_CORR_M, rng), 0.0, 0.0, coarse
    ).sample_grid(0.0, 0.0, DSM_RES, shape)
    error = absolute * low
    error += correlated * gaussian_random_field(shape, DSM_RES, 20.0, rng)
    error += rng.normal(0.0, WHITE_SIGMA_M, size=shape)
    return np.asarray(error, dtype=np.float64)


def write_dsm(
    path: str | os.PathLike[str],
    dsm: Dsm,
    origin: tuple[float, float],
    extra_tags: dict[str, str] | None = None,
) -> None:
    """Write a DSM as a tiled, deflate-compressed float32 GeoTIFF (UTM 37N).

    Args:
        path: output file
        dsm: the DSM
        origin: UTM 37N coordinates of the local origin
        extra_tags: further tags to store

    .. versionadded:: 0.1
    """
    tags = {
        "PRODUCT": "CartoSat-1 Euro-Maps 3D DSM (simulated)",
        "EPOCH": "pre-event",
        "UNITS": "metre",
        "VERTICAL_DATUM": "EGM96 geoid",
        "SIMULATED": "TRUE",
    }
    write_geotiff(
        path,
        dsm.height,
        dsm.grid.transform(origin),
        nodata=DSM_NODATA,
        description="surface height (m)",
        tags=tags,
        extra_tags=extra_tags,
    )
