"""Pre-event digital surface model of a simulated city (CartoSat-1-like).

The paper's DSM is the CartoSat-1 Euro-Maps 3D product: 5 m posting, generated
from stereo imagery years before the earthquake, with vertical accuracy of a
few metres. The simulated DSM is the terrain plus the pre-event surface model
(every building intact at its full height, tree crowns) averaged to 5 m, smoothed
by stereo matching (Gaussian, sigma = 4 m) and perturbed by correlated (20 m,
2 m standard deviation) and white (0.7 m) height errors. It therefore carries
building heights and terrain - vulnerability information - but no damage. It
covers the SAR image plus 250 m on every side.

.. versionadded:: 0.1
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import ndimage

from .city import CitySimulation, city_rng
from .fields import gaussian_random_field
from .geotiff import write_geotiff
from .landcover import DSM_MARGIN_M, CityFields, PixelGrid, build_surface

__all__ = ["DSM_NODATA", "DSM_RES", "Dsm", "render_dsm", "write_dsm"]

F32Array = npt.NDArray[np.float32]

#: DSM pixel size (metres).
DSM_RES = 5.0
#: Nodata value declared in the DSM file (no pixel carries it).
DSM_NODATA = -9999.0


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
    surface = build_surface(sim, fields, fine, False, rng)
    rows, cols = surface.height.shape
    objects = surface.height.reshape(rows // 2, 2, cols // 2, 2).mean(axis=(1, 3))
    grid = PixelGrid.from_bounds(bounds, DSM_RES)
    ground = sim.terrain.elevation.sample_grid(
        grid.left, grid.top, grid.res, grid.shape
    )
    height = ndimage.gaussian_filter(ground + objects, sigma=4.0 / DSM_RES)
    height += 2.0 * gaussian_random_field(grid.shape, DSM_RES, 20.0, rng)
    height += rng.normal(0.0, 0.7, size=grid.shape)
    return Dsm(height=np.asarray(height, dtype=np.float32), grid=grid)


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
