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

Calibrated scenario (image formation closer to COSMO-SkyMed StripMap HIMAGE)
    :func:`scatter_rasters` with ``post_event`` draws its texture and point
    scatterers from full-grid draws that do not depend on the land cover, so the
    pre-event (intact) and post-event renders of the same generator state differ
    only where the buildings changed; collapse modes
    (:mod:`~torchgeo_quake.simulation.collapse`): the standing half of a partial
    collapse and the top slab of a pancake collapse get the damaged-roof offset
    (+2.5 dB) and half the double bounce of an intact wall, like partially
    damaged buildings; cleared sites are bare soil.
    :func:`form_image` replaces :func:`speckle`: complex circular Gaussian
    speckle is drawn on the 1.25 m render grid, multiplied by the square root of
    the noise-free intensity (plus NESZ), convolved with the impulse response
    :func:`impulse_response` in range and azimuth, detected, averaged over the
    city's looks (independent realisations, weights giving an equivalent number
    of looks ``L``) and averaged to the 2.5 m pixel, so bright scatterers bleed
    into their neighbours through the main lobe and sidelobes and the speckle of
    neighbouring pixels is correlated. The impulse response is the transform of
    a generalised Hamming spectral weighting ``0.75 + 0.25 cos(2 pi f / B)``
    (the weighting Sentinel-1 products annotate, ``windowCoefficient`` 0.75: no
    coefficient of the CSK processor was found in public sources) with the
    bandwidth ``B`` set so that the -3 dB width is
    :data:`HIMAGE_RESOLUTION_M` = 3 m, the StripMap HIMAGE single-look
    resolution (ASI, COSMO-SkyMed SAR Products Handbook, rev. 2, 2009; PCI
    Catalyst sensor table: 40 km swath, 3.0 m x 3.0 m): peak sidelobe ratio
    -21.2 dB. Simplification: every look keeps the full 3 m resolution (real
    multi-looking trades resolution for looks). For images rendered in row
    strips (:mod:`~torchgeo_quake.simulation.sar_strips`), the texture and
    point-scatterer draws come from row-addressable draws and the speckle
    from chunks of rows with their own seeds.

Its names were defined in :mod:`~torchgeo_quake.simulation.sar` before,
which still re-exports them.

.. versionadded:: 0.2
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
from scipy import ndimage, special

from .city import CitySimulation
from .collapse import CollapseMode
from .landcover import LandCover, Surface
from .sar_raycast import ScatterRasters

if TYPE_CHECKING:
    from .sar_strips import GridDraws

__all__ = [
    "HIMAGE_RESOLUTION_M",
    "IRF_HAMMING",
    "aspect_factor",
    "block_look_gain",
    "form_image",
    "impulse_response",
    "scatter_rasters",
    "speckle",
]

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
#: Single-look resolution of COSMO-SkyMed StripMap HIMAGE (metres, -3 dB).
HIMAGE_RESOLUTION_M = 3.0
#: Coefficient of the generalised Hamming spectral weighting.
IRF_HAMMING = 0.75
#: Half-length of the impulse response kernel (metres).
IRF_HALF_LENGTH_M = 20.0
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


def _damage_offsets(
    sim: CitySimulation, post_event: bool | None
) -> tuple[FloatArray, FloatArray]:
    """Roof brightness offset (dB) and double-bounce factor of each building.

    Args:
        sim: the city
        post_event: None for the v0.1 model, else whether the render is the
            post-event one (False: every building intact)

    Returns:
        (offset in dB, double-bounce factor) per building.
    """
    n = len(sim.buildings)
    if post_event is False:
        return np.zeros(n), np.ones(n)
    hit = sim.damage.grade == 1
    mode = sim.damage.mode
    if post_event is not None and mode is not None:
        hit = hit | (mode == CollapseMode.PARTIAL) | (mode == CollapseMode.PANCAKE)
    return np.where(hit, DAMAGED_ROOF_DB, 0.0), np.where(hit, 0.5, 1.0)


def _texture_and_points(
    sigma: FloatArray,
    cover: npt.NDArray[np.uint8],
    res: float,
    rng: np.random.Generator,
    full_grid: bool,
    draws: tuple[FloatArray, FloatArray, FloatArray] | None = None,
) -> None:
    """Multiply texture into *sigma* and add point scatterers (in place).

    Args:
        sigma: backscatter, updated in place
        cover: land cover
        res: pixel size (metres)
        rng: random generator
        full_grid: draw one value per pixel whatever its class (calibrated),
            so that two renders of the same generator state agree wherever the
            land cover agrees; otherwise the v0.1 draws per class mask
        draws: the three full-grid draws (texture, hits, values) given
            instead of drawn from *rng* (*full_grid* must be True)
    """
    shape = cover.shape
    u: FloatArray | None
    hit: FloatArray | None
    value: FloatArray | None
    if draws is not None:
        u, hit, value = draws
    else:
        u = rng.random(shape) if full_grid else None
    for cls, nu in TEXTURE.items():
        mask = cover == cls
        if mask.any():
            if u is None:
                sigma[mask] *= rng.gamma(nu, 1.0 / nu, size=int(mask.sum()))
            else:
                sigma[mask] *= special.gammaincinv(nu, u[mask]) / nu
    # Point scatterers: rooftop tanks and heaters, cars, rebar and slabs.
    cell = res**2
    if draws is None:
        hit = rng.random(shape) if full_grid else None
        value = rng.random(shape) if full_grid else None
    for cls, per_m2, lo, hi in (
        (LandCover.ROOF, 1 / 120.0, 1.0, 4.0),
        (LandCover.DEBRIS, 1 / 80.0, 0.3, 2.0),
        (LandCover.ROAD, 1 / 250.0, 0.5, 2.0),
    ):
        if hit is None or value is None:
            mask = (cover == cls) & (rng.random(shape) < per_m2 * cell)
            sigma[mask] += rng.uniform(lo, hi, size=int(mask.sum()))
        else:
            mask = (cover == cls) & (hit < per_m2 * cell)
            sigma[mask] += lo + (hi - lo) * value[mask]


def scatter_rasters(
    sim: CitySimulation,
    surface: Surface,
    rng: np.random.Generator,
    post_event: bool | None = None,
    draws: GridDraws | None = None,
) -> ScatterRasters:
    """Turn a surface model into ray-caster inputs.

    Args:
        sim: the city
        surface: surface on the render grid
        rng: random generator (texture, point scatterers, roof brightness;
            unused with *draws*)
        post_event: None (default) for the v0.1 model; True or False for the
            calibrated one, the surface being the post-event or the pre-event
            (intact) one (see the module docstring)
        draws: calibrated model only: the draws of the whole render grid, the
            surface's grid being a row strip of it (the strip then gets the
            rows of the whole-grid rasters)

    Returns:
        The scattering rasters.

    Raises:
        ValueError: If *draws* is given for the v0.1 model.

    .. versionadded:: 0.1

    .. versionchanged:: 0.3
       Added *post_event* and *draws*.
    """
    if draws is not None and post_event is None:
        raise ValueError("row-addressable draws exist for the calibrated model only")
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
    offset, bounce = _damage_offsets(sim, post_event)
    noise = rng.normal(0.0, 1.5, size=n) if draws is None else draws.roof
    roof_db = ROOF_DB + noise + offset
    sigma[roof] = _linear(roof_db[surface.building[roof]])
    full = None
    if draws is not None:
        full = (
            draws.uniform(0, grid),
            draws.uniform(1, grid),
            draws.uniform(2, grid),
        )
    _texture_and_points(sigma, cover, grid.res, rng, post_event is not None, full)
    del full
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
    aspect = aspect_factor(sim.buildings.angle_deg) * bounce
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


def impulse_response(
    res: float,
    resolution_m: float = HIMAGE_RESOLUTION_M,
    hamming: float = IRF_HAMMING,
    half_length_m: float = IRF_HALF_LENGTH_M,
) -> FloatArray:
    """One-dimensional complex-amplitude impulse response sampled on a grid.

    The transform of the spectral weighting ``a + (1 - a) cos(2 pi f / B)`` on
    ``|f| <= B / 2``: ``a sinc(B x) + (1 - a) / 2 (sinc(B x - 1) + sinc(B x + 1))``
    with ``B`` chosen so that the -3 dB width of ``|h|**2`` is *resolution_m*.

    Args:
        res: sample spacing (metres)
        resolution_m: -3 dB width of the intensity response (metres)
        hamming: weighting coefficient ``a`` (1: no weighting)
        half_length_m: the kernel covers ``[-half_length_m, half_length_m]``

    Returns:
        The kernel (odd length, symmetric), scaled to unit energy
        (``sum(h**2) == 1``) so that distributed targets keep their mean
        intensity.

    Raises:
        ValueError: If an argument is not positive or *hamming* is not in
            (0.5, 1].

    .. versionadded:: 0.3
    """
    from scipy.optimize import brentq

    if min(res, resolution_m, half_length_m) <= 0 or not 0.5 < hamming <= 1.0:
        raise ValueError(
            f"impulse response needs positive sizes and a Hamming coefficient in "
            f"(0.5, 1]: res={res}, resolution_m={resolution_m}, "
            f"half_length_m={half_length_m}, hamming={hamming}"
        )

    def shape(u: FloatArray | float) -> FloatArray:
        u = np.asarray(u, dtype=np.float64)
        return np.asarray(
            hamming * np.sinc(u)
            + 0.5 * (1.0 - hamming) * (np.sinc(u - 1.0) + np.sinc(u + 1.0))
        )

    half = brentq(lambda u: float(shape(u)) ** 2 - 0.5 * float(shape(0.0)) ** 2, 0, 1)
    bandwidth = 2.0 * half / resolution_m
    k = math.ceil(half_length_m / res)
    h = shape(bandwidth * res * np.arange(-k, k + 1, dtype=np.float64))
    return np.asarray(h / math.sqrt(float((h**2).sum())), dtype=np.float64)


def _look_weights(looks: float) -> FloatArray:
    """Weights of independent looks whose average has *looks* equivalent looks.

    Args:
        looks: equivalent number of looks (>= 1)

    Returns:
        ``ceil(looks)`` weights, all 1 but the last, ``a`` with
        ``(m - 1 + a)**2 / (m - 1 + a**2) == looks``.
    """
    m = math.ceil(looks - 1e-9)
    if m <= 1:
        return np.ones(1)
    if abs(m - looks) < 1e-9:
        return np.ones(m)
    # (m - 1 + a)^2 = L (m - 1 + a^2)  ->  (1 - L) a^2 + 2 (m - 1) a
    #                                       + (m - 1)^2 - L (m - 1) = 0
    c2, c1, c0 = 1.0 - looks, 2.0 * (m - 1), (m - 1) ** 2 - looks * (m - 1)
    a = (-c1 - math.sqrt(c1 * c1 - 4 * c2 * c0)) / (2 * c2)
    weights = np.ones(m)
    weights[-1] = a
    return weights


def block_look_gain(kernel: FloatArray, factor: int) -> float:
    """Gain in equivalent looks of averaging *factor* x *factor* speckled pixels.

    Intensities of speckle convolved with the real kernel ``h`` correlate as
    ``|rho|**2`` with ``rho(m) = sum_k h_k h_(k+m)`` per axis.

    Args:
        kernel: 1-D unit-energy impulse response
        factor: block size

    Returns:
        ``factor**4 / S**2`` with ``S = factor + 2 sum_m (factor - m) rho(m)**2``.

    .. versionadded:: 0.3
    """
    total = float(factor)
    for m in range(1, factor):
        rho = float((kernel[:-m] * kernel[m:]).sum())
        total += 2.0 * (factor - m) * rho**2
    return float(factor**4 / total**2)


def form_image(
    intensity: F32Array,
    looks: float,
    res: float,
    rng: np.random.Generator,
    kernel: FloatArray | None = None,
    block: int = 1,
    noise: Callable[[int], FloatArray] | None = None,
) -> F32Array:
    """Speckle, impulse response and multi-looking of a noise-free intensity.

    Args:
        intensity: noise-free mean intensity on the render grid
        looks: equivalent number of looks ``L`` (>= 1) of the image after
            averaging *block* x *block* render pixels
        res: render pixel size (metres)
        rng: random generator
        kernel: 1-D impulse response (default :func:`impulse_response`)
        block: render pixels per image pixel along each axis; the render grid
            gets ``max(1, L / block_look_gain)`` looks so that the image has
            ``L`` (or more, if even one look per render pixel gives more)
        noise: ``noise(j)`` gives the *j*-th standard normal array of the
            intensity's shape (real part of look ``j // 2`` for even *j*,
            imaginary part for odd), instead of drawing it from *rng* (e.g.
            :class:`~torchgeo_quake.simulation.sar_strips.RowNoise`, for images
            formed in strips)

    Returns:
        The detected, multi-looked intensity on the render grid (float32);
        average it to the image pixel with
        :func:`~torchgeo_quake.simulation.sar_raycast.coarsen`.

    Raises:
        ValueError: If *looks* < 1.

    .. versionadded:: 0.3
    """
    if not looks >= 1.0:
        raise ValueError(f"number of looks must be >= 1, got {looks}")
    h = impulse_response(res) if kernel is None else kernel
    amplitude = np.sqrt(intensity.astype(np.float64) + float(_linear(NESZ_DB)))
    weights = _look_weights(max(1.0, looks / block_look_gain(h, block)))
    out = np.zeros(intensity.shape, dtype=np.float64)
    for look, weight in enumerate(weights):
        detected = np.zeros(intensity.shape, dtype=np.float64)
        for j in range(2):  # real and imaginary parts
            if noise is None:
                draw = rng.standard_normal(intensity.shape)
            else:
                draw = noise(2 * look + j)
            part = amplitude * draw * math.sqrt(0.5)
            part = ndimage.convolve1d(part, h, axis=0, mode="reflect")
            part = ndimage.convolve1d(part, h, axis=1, mode="reflect")
            detected += part**2
        out += weight * detected
    out /= weights.sum()
    return np.maximum(out, 1e-12).astype(np.float32)
