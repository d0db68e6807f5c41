"""Radiometry of the simulated SAR image: backscatter of every surface, speckle.

Radiometry (X band, HH, sigma-nought)
    bare soil -11 dB at 35° falling 0.22 dB per degree of local incidence (so
    slopes facing the sensor are brighter; the pixel-area factor
    ``sin(theta) / sin(theta_local)`` adds terrain brightening), parcel-to-parcel
    offsets of ±2.5 dB and slow moisture variation; asphalt -19 dB; paving
    -15 dB; tree crowns -8 dB; roofs -10 dB ± 1.5 dB per building (+2.5 dB when
    damaged); debris -9 dB (its facets -5 dB); facades -7 dB; point scatterers
    on roofs (water tanks, solar heaters), cars and in debris; surfaces other
    than bare soil have
    Gamma texture. Intensities are averaged over 2 x 2 render pixels (1.25 m) per
    image pixel, thermal noise (NESZ -22 dB) is added, and fully developed
    multiplicative speckle is applied: intensity x Gamma(L, 1/L) with ``L`` the
    city's number of looks; the stored value is the amplitude ``sqrt(intensity)``
    (float32, 0 = nodata outside the swath).

:func:`scatter_rasters` turns a city's post-event surface model into the inputs
of the ray caster (:mod:`~torchgeo_quake.simulation.sar_raycast`), with the
double-bounce fall-off of :func:`aspect_factor`; :func:`speckle` adds thermal
noise and speckle to the coarsened intensity.

Its names were defined in :mod:`~torchgeo_quake.simulation.sar` before,
which still re-exports them.

.. versionadded:: 0.2
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from .city import CitySimulation
from .landcover import LandCover, Surface
from .sar_raycast import ScatterRasters

__all__ = ["aspect_factor", "scatter_rasters", "speckle"]

F32Array = npt.NDArray[np.float32]
FloatArray = npt.NDArray[np.float64]

GROUND_DB = -11.0
GROUND_DB_PER_DEG = -0.22
ROAD_DB = -19.0
PAVED_DB = -15.0
VEGETATION_DB = -8.0
ROOF_DB = -10.0
DAMAGED_ROOF_DB = 2.5
DEBRIS_DB = -9.0
WALL_DB = -7.0
DEBRIS_FACET_DB = -5.0
VEGETATION_FACET_DB = -9.0
NESZ_DB = -22.0
#: Double-bounce intensity per metre of usable wall height (render-pixel units).
DOUBLE_BOUNCE_PER_M = 1.0
#: Aspect angle scale of the double-bounce fall-off (degrees).
DOUBLE_BOUNCE_ASPECT_DEG = 15.0
#: Smoothness factor of the ground in front of a wall for the double bounce.
SPECULAR: dict[int, float] = {
    int(LandCover.ROAD): 1.0,
    int(LandCover.PAVED): 0.8,
    int(LandCover.GROUND): 0.45,
}
#: Gamma texture shape per land-cover class (None: no texture).
TEXTURE: dict[int, float] = {
    int(LandCover.ROAD): 8.0,
    int(LandCover.PAVED): 6.0,
    int(LandCover.VEGETATION): 3.0,
    int(LandCover.ROOF): 5.0,
    int(LandCover.DEBRIS): 1.5,
}


def _linear(db: float | FloatArray) -> FloatArray:
    """Convert decibels to linear power.

    Args:
        db: value(s) in dB

    Returns:
        Linear value(s).
    """
    return np.asarray(10.0 ** (np.asarray(db, dtype=np.float64) / 10.0))


def aspect_factor(angle_deg: npt.ArrayLike) -> FloatArray:
    """Double-bounce fall-off with the orientation of a building's walls.

    Args:
        angle_deg: orientation of the building axes (degrees counter-clockwise
            from east); the range direction is east-west

    Returns:
        ``0.05 + 0.95 exp(-(phi / 15°)**2)`` with ``phi`` the angle between the
        closest wall normal and the range direction (0-45°).

    .. versionadded:: 0.1
    """
    phi = np.abs(np.mod(np.asarray(angle_deg, dtype=np.float64) + 45.0, 90.0) - 45.0)
    return np.asarray(
        0.05 + 0.95 * np.exp(-((phi / DOUBLE_BOUNCE_ASPECT_DEG) ** 2)), np.float64
    )


def speckle(intensity: F32Array, looks: float, rng: np.random.Generator) -> F32Array:
    """Apply thermal noise and multiplicative speckle, return amplitude.

    Args:
        intensity: noise-free mean intensity
        looks: equivalent number of looks ``L``
        rng: random generator

    Returns:
        ``sqrt((intensity + NESZ) * Gamma(L, 1/L))`` as float32, never 0.

    .. versionadded:: 0.1
    """
    mean = intensity.astype(np.float64) + float(_linear(NESZ_DB))
    draw = rng.gamma(looks, 1.0 / looks, size=intensity.shape)
    amplitude = np.sqrt(mean * draw)
    return np.maximum(amplitude, 1e-6).astype(np.float32)


def scatter_rasters(
    sim: CitySimulation,
    surface: Surface,
    rng: np.random.Generator,
) -> ScatterRasters:
    """Turn a post-event surface model into ray-caster inputs.

    Args:
        sim: the city
        surface: post-event surface on the render grid
        rng: random generator (texture, point scatterers, roof brightness)

    Returns:
        The scattering rasters.

    .. versionadded:: 0.1
    """
    city = sim.city
    grid = surface.grid
    shape = grid.shape
    cover = surface.cover
    theta = city.incidence_deg
    gx = sim.terrain.gradient_x.sample_grid(grid.left, grid.top, grid.res, shape)
    away = gx if city.sensor_side == "WEST" else -gx
    local = theta - np.degrees(np.arctan(away))
    area = np.clip(
        math.sin(math.radians(theta)) / np.sin(np.radians(np.clip(local, 5.0, 85.0))),
        0.3,
        3.0,
    )
    ground_db = (
        GROUND_DB
        + GROUND_DB_PER_DEG * (local - 35.0)
        + surface.parcel_offset
        + 0.8 * surface.moisture
    )
    db = np.select(
        [
            cover == LandCover.ROAD,
            cover == LandCover.PAVED,
            cover == LandCover.VEGETATION,
            cover == LandCover.DEBRIS,
        ],
        [ROAD_DB, PAVED_DB, VEGETATION_DB, DEBRIS_DB],
        default=ground_db,
    )
    sigma = _linear(db) * area
    roof = cover == LandCover.ROOF
    n = len(sim.buildings)
    roof_db = ROOF_DB + rng.normal(0.0, 1.5, size=n)
    roof_db += np.where(sim.damage.grade == 1, DAMAGED_ROOF_DB, 0.0)
    sigma[roof] = _linear(roof_db[surface.building[roof]])
    for cls, nu in TEXTURE.items():
        mask = cover == cls
        if mask.any():
            sigma[mask] *= rng.gamma(nu, 1.0 / nu, size=int(mask.sum()))
    # Point scatterers: rooftop tanks and heaters, cars, rebar and slabs.
    cell = grid.res**2
    for cls, per_m2, lo, hi in (
        (LandCover.ROOF, 1 / 120.0, 1.0, 4.0),
        (LandCover.DEBRIS, 1 / 80.0, 0.3, 2.0),
        (LandCover.ROAD, 1 / 250.0, 0.5, 2.0),
    ):
        mask = (cover == cls) & (rng.random(shape) < per_m2 * cell)
        sigma[mask] += rng.uniform(lo, hi, size=int(mask.sum()))
    tan = math.tan(math.radians(theta))
    wall = np.where(
        cover == LandCover.DEBRIS,
        _linear(DEBRIS_FACET_DB) * tan,
        np.where(
            cover == LandCover.VEGETATION,
            _linear(VEGETATION_FACET_DB) * tan,
            _linear(WALL_DB) * tan,
        ),
    )
    aspect = aspect_factor(sim.buildings.angle_deg)
    aspect = aspect * np.where(sim.damage.grade == 1, 0.5, 1.0)
    double = np.zeros(shape, dtype=np.float64)
    double[roof] = DOUBLE_BOUNCE_PER_M * aspect[surface.building[roof]]
    specular = np.zeros(shape, dtype=np.float64)
    for cls, value in SPECULAR.items():
        specular[cover == cls] = value
    storey = np.zeros(shape, dtype=np.float64)
    storey[roof] = sim.storey_height[surface.building[roof]]
    return ScatterRasters(
        height=surface.height,
        sigma=sigma.astype(np.float32),
        wall=wall.astype(np.float32),
        double_bounce=double.astype(np.float32),
        specular=specular.astype(np.float32),
        storey=storey.astype(np.float32),
        res=grid.res,
    )
