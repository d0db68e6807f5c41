"""Post-event SAR amplitude image of a simulated city (COSMO-SkyMed-like).

Geometry (documented approximation)
    The image is rendered directly on the 2.5 m UTM map grid, with range along
    the east-west axis and azimuth along north-south: the flat-earth
    ground-range approximation of a terrain-corrected (geocoded) product whose
    track is taken as exactly north-south (the real ~10° heading only tilts the
    swath edge, see :mod:`~torchgeo_quake.simulation.layout`). The
    sensor is right-looking, so an ascending pass illuminates from the west
    (looking east) and a descending pass from the east. Terrain is corrected
    (ground points stay where they are); only objects above the terrain -
    buildings, debris, trees - are displaced.

Ray casting (per range line, vectorised over lines)
    With incidence angle ``theta`` a point at height ``z`` above the terrain is
    imaged ``z / tan(theta)`` closer to the sensor (layover), and a point is in
    shadow when ``max over nearer points of (z' + x' cot(theta))`` exceeds
    ``z + x cot(theta)``, which makes the shadow of a wall of height ``h``
    ``h tan(theta)`` long on the ground. Every lit horizontal surface element is
    deposited at its displaced position; every sensor-facing wall (a height step
    towards the far range) is spread over its displaced image
    ``[x - h_top cot, x - h_bottom cot]`` with the facade backscatter, plus a
    bright line per storey (balconies, window corners). The dihedral formed by a
    sensor-facing building wall and smooth lit ground in front of it returns a
    strong double-bounce line at the wall foot; its strength grows with the
    wall height usable for the bounce, ``min(h, L / tan(theta))`` for ``L`` metres
    of free ground in front, with the ground smoothness (asphalt > paving > soil)
    and falls off with the wall's aspect angle ``phi`` to the azimuth direction
    as ``0.05 + 0.95 exp(-(phi / 15°)**2)`` (street-grid orientation matters).

Resulting signatures
    intact buildings: a bright layover band ``h / tan(theta)`` long towards the
    sensor, a very bright double-bounce line at the sensor-facing wall, the roof
    return, then a dark shadow ``h tan(theta)`` long away from the sensor;
    collapsed buildings: a low rough debris heap spreading beyond the footprint,
    bright and heavily textured, with no clean double-bounce line and a short or
    no shadow; partially damaged: lower, rougher roof, weakened double bounce and
    debris along one side.

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

.. versionadded:: 0.1
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from .cities import CitySpec
from .city import CitySimulation, city_rng
from .geotiff import write_geotiff
from .landcover import (
    CityFields,
    LandCover,
    PixelGrid,
    Surface,
    build_surface,
    rasterize,
)

__all__ = [
    "OVERSAMPLING",
    "SAR_RES",
    "SarImage",
    "ScatterRasters",
    "SingleBuilding",
    "acquisition_tags",
    "aspect_factor",
    "render_intensity",
    "render_sar",
    "render_single_building",
    "speckle",
    "write_sar",
]

F32Array = npt.NDArray[np.float32]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

#: Pixel size of the SAR image (metres).
SAR_RES = 2.5
#: Render pixels per image pixel along each axis.
OVERSAMPLING = 2
#: Range padding rendered on both sides so objects just outside cast into it.
RANGE_PAD_M = 100.0

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
#: Intensity of one storey line of a facade (render-pixel units).
STOREY_LINE = 0.4
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


@dataclass
class ScatterRasters:
    """Inputs of the ray caster on the render grid.

    Attributes:
        height: height above the terrain (metres)
        sigma: backscatter of the horizontal surface of each pixel (linear,
            including texture and point scatterers)
        wall: backscatter per image pixel of a wall rising into the pixel
        double_bounce: double-bounce intensity per metre of usable height of a
            wall rising into the pixel (0 where the pixel is no building)
        specular: smoothness of the pixel as the ground of a dihedral (0-1)
        storey: storey height of the building in the pixel (metres, 0 if none)
        res: pixel size (metres)

    .. versionadded:: 0.1
    """

    height: F32Array
    sigma: F32Array
    wall: F32Array
    double_bounce: F32Array
    specular: F32Array
    storey: F32Array
    res: float


def _splat(
    acc: FloatArray,
    base: npt.NDArray[np.int64],
    t: FloatArray,
    weight: FloatArray,
    w: int,
) -> None:
    """Add linearly interpolated deltas to a flattened difference array.

    After a cumulative sum along each line, a delta of weight ``w`` at position
    ``t`` contributes ``w * clip(k + 1 - t, 0, 1)`` to pixel ``k``.

    Args:
        acc: flattened (lines x (w + 2)) difference array, updated in place
        base: offset of each delta's line in *acc*
        t: positions in pixels
        weight: weights
        w: number of pixels per line
    """
    t = np.clip(t, 0.0, w + 0.5)
    k = np.floor(t).astype(np.int64)
    f = t - k
    idx = base + k
    acc += np.bincount(idx, weight * (1.0 - f), minlength=acc.size)
    acc += np.bincount(idx + 1, weight * f, minlength=acc.size)


def _segments(
    acc: FloatArray,
    base: npt.NDArray[np.int64],
    start: FloatArray,
    end: FloatArray,
    density: FloatArray,
    w: int,
) -> None:
    """Deposit segments ``[start, end]`` of constant density along lines.

    Args:
        acc: flattened difference array, updated in place
        base: offset of each segment's line in *acc*
        start: segment starts (pixels)
        end: segment ends (pixels)
        density: intensity per pixel of segment length
        w: number of pixels per line
    """
    _splat(acc, base, start, density, w)
    _splat(acc, base, end, -density, w)


def render_intensity(
    rasters: ScatterRasters,
    incidence_deg: float,
    sensor_side: Literal["WEST", "EAST"],
    strip_rows: int = 256,
) -> F32Array:
    """Ray-cast the noise-free backscattered intensity on the render grid.

    See the module docstring for the model. Lines are independent, so the
    image is processed in strips of *strip_rows* lines to bound memory.

    Args:
        rasters: scattering inputs
        incidence_deg: incidence angle (degrees)
        sensor_side: side the sensor illuminates from
        strip_rows: lines per strip

    Returns:
        Intensity (linear, sigma-nought units) on the render grid.

    .. versionadded:: 0.1
    """
    cot = 1.0 / math.tan(math.radians(incidence_deg))
    px = rasters.res
    rows, cols = rasters.height.shape
    out = np.empty((rows, cols), dtype=np.float32)
    flip = sensor_side == "EAST"
    low = 0.3 / px
    for r0 in range(0, rows, strip_rows):
        r1 = min(rows, r0 + strip_rows)
        arrays = [
            np.asarray(a[r0:r1], dtype=np.float64)
            for a in (
                rasters.height,
                rasters.sigma,
                rasters.wall,
                rasters.double_bounce,
                rasters.specular,
                rasters.storey,
            )
        ]
        if flip:
            arrays = [a[:, ::-1] for a in arrays]
        z, sigma, wall, dbl, spec, storey = arrays
        z = z / px
        storey = storey / px
        n, w = z.shape
        col = np.arange(w, dtype=np.float64) + 0.5
        u = z + col[None, :] * cot
        m_incl = np.maximum.accumulate(u, axis=1)
        lit = np.ones_like(z, dtype=bool)
        lit[:, 1:] = u[:, 1:] >= m_incl[:, :-1] - 1e-9
        acc = np.zeros(n * (w + 2), dtype=np.float64)
        line = (np.arange(n, dtype=np.int64) * (w + 2))[:, None]
        base = np.broadcast_to(line, z.shape).ravel()

        # Horizontal surfaces at their displaced positions.
        p = (col[None, :] - z * cot).ravel()
        _segments(acc, base, p - 0.5, p + 0.5, np.where(lit, sigma, 0.0).ravel(), w)

        # Sensor-facing walls between pixels c - 1 and c (boundary x = c).
        edge = np.arange(1, w, dtype=np.float64)[None, :]
        z_low = np.maximum(z[:, :-1], m_incl[:, :-1] - edge * cot)
        rr, cc = np.nonzero((z[:, 1:] - z[:, :-1] > 0.2 / px) & (z[:, 1:] > z_low))
        if rr.size:
            top = z[rr, cc + 1]
            bottom = z_low[rr, cc]
            x = cc + 1.0
            wbase = rr * (w + 2)
            _segments(acc, wbase, x - top * cot, x - bottom * cot, wall[rr, cc + 1], w)
            st = storey[rr, cc + 1]
            for k in range(1, 40):
                zk = k * st
                on = (st > 0) & (zk < top - low) & (zk >= bottom)
                if not on.any():
                    if not ((st > 0) & (zk < top)).any():
                        break
                    continue
                pos = x[on] - zk[on] * cot
                weight = np.full(pos.size, STOREY_LINE)
                _segments(acc, wbase[on], pos - 0.5, pos + 0.5, weight, w)
            # Double bounce: smooth, flat, lit ground in front of the wall.
            good = (spec > 0) & lit & (z < low)
            index = np.where(good, -1, np.arange(w)[None, :])
            last_bad = np.maximum.accumulate(index, axis=1)
            run = cc - last_bad[rr, cc]
            usable = np.minimum(top - z[rr, cc], run * cot) * px
            strength = dbl[rr, cc + 1] * spec[rr, cc] * usable
            on = strength > 0
            if on.any():
                _segments(acc, wbase[on], x[on] - 0.5, x[on] + 0.5, strength[on], w)
        image = np.cumsum(acc.reshape(n, w + 2), axis=1)[:, :w]
        if flip:
            image = image[:, ::-1]
        out[r0:r1] = np.maximum(image, 0.0)
    return out


def coarsen(array: F32Array, factor: int) -> F32Array:
    """Average non-overlapping *factor* x *factor* blocks.

    Args:
        array: 2-D array whose shape is a multiple of *factor*
        factor: block size

    Returns:
        The block means.

    .. versionadded:: 0.1
    """
    rows, cols = array.shape
    blocks = array.reshape(rows // factor, factor, cols // factor, factor)
    return np.asarray(blocks.mean(axis=(1, 3)), dtype=np.float32)


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


@dataclass
class SarImage:
    """A rendered SAR image and its by-products.

    Attributes:
        amplitude: speckled amplitude, float32, 0 = nodata
        intensity: noise-free mean intensity (before thermal noise and speckle)
        cover: land cover per image pixel where all render pixels agree, 255
            where they are mixed
        valid: True inside the swath
        grid: image grid (local metres)
        tags: GeoTIFF metadata tags

    .. versionadded:: 0.1
    """

    amplitude: F32Array
    intensity: F32Array
    cover: npt.NDArray[np.uint8]
    valid: BoolArray
    grid: PixelGrid
    tags: dict[str, str]


def acquisition_tags(city: CitySpec) -> dict[str, str]:
    """GeoTIFF tags describing a city's (simulated) acquisition.

    Args:
        city: the city

    Returns:
        Tag name to value.

    .. versionadded:: 0.1
    """
    return {
        "MISSION": "CSK (simulated)",
        "PLATFORM": "CSK4",
        "ACQUISITION_MODE": "HIMAGE",
        "POLARIZATION": "HH",
        "INCIDENCE_ANGLE": f"{city.incidence_deg:.2f}",
        "LOOK_SIDE": "RIGHT",
        "ORBIT_DIRECTION": city.orbit,
        "HEADING": f"{city.heading_deg:.1f}",
        "SENSOR_SIDE": city.sensor_side,
        "ACQUISITION_DATE": city.acquisition_date,
        "LOOKS": f"{city.looks:g}",
        "QUANTITY": "amplitude (linear, sigma-nought calibrated)",
        "PIXEL_SPACING": f"{SAR_RES:g}",
        "GEOMETRY": "map grid; range = east-west (flat-earth ground range)",
        "CITY": city.name,
        "SIMULATED": "TRUE",
    }


def render_sar(sim: CitySimulation, fields: CityFields) -> SarImage:
    """Render the post-event SAR image of a city.

    Args:
        sim: the city
        fields: the city's surface random fields

    Returns:
        The image.

    .. versionadded:: 0.1
    """
    city = sim.city
    rng = city_rng(sim.seed, city, sim.scale, "sar")
    left, bottom, right, top = sim.selection.bounds
    res = SAR_RES / OVERSAMPLING
    render = PixelGrid.from_bounds(
        (left - RANGE_PAD_M, bottom, right + RANGE_PAD_M, top), res
    )
    surface = build_surface(sim, fields, render, True, rng)
    rasters = scatter_rasters(sim, surface, rng)
    fine = render_intensity(rasters, city.incidence_deg, city.sensor_side)
    pad = round(RANGE_PAD_M / res)
    fine = fine[:, pad : fine.shape[1] - pad]
    cover_fine = surface.cover[:, pad : surface.cover.shape[1] - pad]
    del rasters, surface
    intensity = coarsen(fine, OVERSAMPLING)
    rows, cols = intensity.shape
    blocks = cover_fine.reshape(rows, OVERSAMPLING, cols, OVERSAMPLING)
    first = blocks[:, :1, :, :1]
    pure = (blocks == first).all(axis=(1, 3))
    cover = np.where(pure, first[:, 0, :, 0], 255).astype(np.uint8)
    grid = PixelGrid.from_bounds(sim.selection.bounds, SAR_RES)
    valid = rasterize([sim.selection.valid_area], [1], grid) > 0
    amplitude = speckle(intensity, city.looks, rng)
    amplitude[~valid] = 0.0
    return SarImage(
        amplitude=amplitude,
        intensity=intensity,
        cover=cover,
        valid=valid,
        grid=grid,
        tags=acquisition_tags(city),
    )


def write_sar(
    path: str | os.PathLike[str],
    image: SarImage,
    origin: tuple[float, float],
    extra_tags: dict[str, str] | None = None,
) -> None:
    """Write a SAR image as a tiled, deflate-compressed float32 GeoTIFF.

    Args:
        path: output file
        image: the image
        origin: UTM 37N coordinates of the local origin
        extra_tags: further tags to store

    .. versionadded:: 0.1
    """
    write_geotiff(
        path,
        image.amplitude,
        image.grid.transform(origin),
        nodata=0.0,
        description="HH amplitude",
        tags=image.tags,
        extra_tags=extra_tags,
    )


@dataclass
class SingleBuilding:
    """An isolated building rendered on flat ground (for checks and figures).

    Attributes:
        intensity: noise-free mean intensity on the 2.5 m image grid
        amplitude: speckled amplitude
        footprint: True on image pixels whose centre lies in the footprint
        ground: intensity of the open ground far from the building
        near_edge: x (metres, image coordinates) of the sensor-facing wall
        far_edge: x (metres) of the wall facing away from the sensor
        sensor_side: side the sensor illuminates from
        res: image pixel size (metres)
        left: x (metres) of the left edge of the image

    .. versionadded:: 0.1
    """

    intensity: F32Array
    amplitude: F32Array
    footprint: BoolArray
    ground: float
    near_edge: float
    far_edge: float
    sensor_side: Literal["WEST", "EAST"]
    res: float
    left: float


def render_single_building(
    height_m: float,
    incidence_deg: float,
    orbit: Literal["ASCENDING", "DESCENDING"] = "ASCENDING",
    width_m: float = 20.0,
    depth_m: float = 15.0,
    collapsed: bool = False,
    looks: float = 4.0,
    seed: int = 0,
) -> SingleBuilding:
    """Render one isolated, street-aligned building on flat bare ground.

    The building is axis-aligned (optimal double bounce), stands on a paved
    apron (asphalt-like smoothness) and is rendered with the same ray caster as
    the city scenes, without texture or point scatterers, so its layover
    (``height / tan(theta)``) and shadow (``height * tan(theta)``) can be
    measured on the noise-free intensity. With *collapsed* the building is
    replaced by a debris heap of 30 % of its height spreading 4 m.

    Args:
        height_m: building height (metres)
        incidence_deg: incidence angle (degrees)
        orbit: ``"ASCENDING"`` (sensor west) or ``"DESCENDING"`` (sensor east)
        width_m: extent along range (east-west), metres
        depth_m: extent along azimuth (north-south), metres
        collapsed: render the collapsed state instead
        looks: number of looks of the speckled amplitude
        seed: random seed of the speckle

    Returns:
        The rendering.

    .. versionadded:: 0.1
    """
    from scipy import ndimage

    res = SAR_RES / OVERSAMPLING
    tan = math.tan(math.radians(incidence_deg))
    reach = height_m / tan + height_m * tan + 40.0
    half_x = math.ceil((0.5 * width_m + reach) / SAR_RES) * SAR_RES
    half_y = math.ceil((0.5 * depth_m + 30.0) / SAR_RES) * SAR_RES
    grid = PixelGrid.from_bounds((-half_x, -half_y, half_x, half_y), res)
    xs, ys = grid.centres()
    xx, yy = np.meshgrid(xs, ys)
    inside = (np.abs(xx) < 0.5 * width_m) & (np.abs(yy) < 0.5 * depth_m)
    flat = float(_linear(GROUND_DB + GROUND_DB_PER_DEG * (incidence_deg - 35.0)))
    sigma = np.full(grid.shape, flat)
    height = np.zeros(grid.shape)
    wall = np.full(grid.shape, float(_linear(WALL_DB)) * tan)
    double = np.zeros(grid.shape)
    storey = np.zeros(grid.shape)
    specular = np.full(grid.shape, SPECULAR[int(LandCover.PAVED)])
    if collapsed:
        spread = 4.0
        heap = (np.abs(xx) < 0.5 * width_m + spread) & (
            np.abs(yy) < 0.5 * depth_m + spread
        )
        dist = ndimage.distance_transform_edt(heap) * res
        height = np.where(heap, np.minimum(0.3 * height_m, 0.5 * dist), 0.0)
        sigma[heap] = float(_linear(DEBRIS_DB))
        wall[heap] = float(_linear(DEBRIS_FACET_DB)) * tan
        specular[heap] = 0.0
    else:
        height[inside] = height_m
        sigma[inside] = float(_linear(ROOF_DB))
        double[inside] = DOUBLE_BOUNCE_PER_M
        storey[inside] = 3.0
        specular[inside] = 0.0
    rasters = ScatterRasters(
        height=height.astype(np.float32),
        sigma=sigma.astype(np.float32),
        wall=wall.astype(np.float32),
        double_bounce=double.astype(np.float32),
        specular=specular.astype(np.float32),
        storey=storey.astype(np.float32),
        res=res,
    )
    side: Literal["WEST", "EAST"] = "WEST" if orbit == "ASCENDING" else "EAST"
    fine = render_intensity(rasters, incidence_deg, side)
    intensity = coarsen(fine, OVERSAMPLING)
    image = PixelGrid.from_bounds(grid.bounds, SAR_RES)
    cx, cy = image.centres()
    footprint = (np.abs(cx)[None, :] < 0.5 * width_m) & (
        np.abs(cy)[:, None] < 0.5 * depth_m
    )
    near, far = (-0.5 * width_m, 0.5 * width_m)
    if side == "EAST":
        near, far = far, near
    amplitude = speckle(intensity, looks, np.random.default_rng(seed))
    return SingleBuilding(
        intensity=intensity,
        amplitude=amplitude,
        footprint=footprint,
        ground=flat,
        near_edge=near,
        far_edge=far,
        sensor_side=side,
        res=SAR_RES,
        left=image.left,
    )
