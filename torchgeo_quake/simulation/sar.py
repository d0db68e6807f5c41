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

Resulting signatures
    intact buildings: a bright layover band ``h / tan(theta)`` long towards the
    sensor, a very bright double-bounce line at the sensor-facing wall, the roof
    return, then a dark shadow ``h tan(theta)`` long away from the sensor;
    collapsed buildings: a low rough debris heap spreading beyond the footprint,
    bright and heavily textured, with no clean double-bounce line and a short or
    no shadow; partially damaged: lower, rougher roof, weakened double bounce and
    debris along one side.

How the image is made
    :func:`render_sar` builds the city's post-event surface model on a render
    grid of ``SAR_RES / OVERSAMPLING`` pixels, turns it into backscatter
    (:mod:`~torchgeo_quake.simulation.sar_radiometry`: X band, HH,
    sigma-nought values of every surface, texture and point scatterers),
    ray-casts the noise-free intensity
    (:mod:`~torchgeo_quake.simulation.sar_raycast`: layover, shadow, walls,
    storey lines, double bounce), averages it onto the image grid and applies
    thermal noise and speckle; :func:`write_sar` stores the amplitude as
    ``sar.tif``. :func:`render_single_building` renders one isolated building
    with the same ray caster, for checks and figures.

Calibrated scenario (``sim.scenario.name == "calibrated"``)
    The surface is rendered twice from the same random state, post-event and
    pre-event (every building intact), and the two noise-free intensities are
    blended in decibels above the noise floor (NESZ),
    ``dB = dB_intact + k (dB_post - dB_intact)``, with the
    damage contrast ``k = c_city * sar_contrast``: ``k = 1`` is the post-event
    image, ``k = 0`` the image of the intact city (no damage cue at all: debris,
    cleared and pancaked sites, layover, shadow and double bounce all look as the
    intact buildings would), ``k = 2`` doubles every damage-related difference in
    dB. ``c_city`` is drawn once per city in :data:`CITY_CONTRAST_RANGE`
    (documented assumption, no public measurement found: site effects the model
    does not resolve - debris material, soil moisture on the acquisition day,
    vegetation - change the collapse contrast from city to city). The image
    content is then shifted against the footprints by a per-city
    misregistration of :data:`MISREGISTRATION_RANGE_M` metres in a uniform
    direction: OpenStreetMap building footprints are offset by about 3-4 m from
    authoritative maps (Brovelli & Zamboni 2018, ISPRS IJGI 7(8):289: mean
    deviation below 3 m in Lombardy; Fan et al. 2014, IJGIS: about 4 m in
    Munich) and the absolute geolocation of COSMO-SkyMed products is of the
    order of metres (Schubert et al. 2012, IGARSS,
    doi:10.1109/IGARSS.2012.6350598; Nitti et al. 2015, Proc. SPIE,
    doi:10.1117/12.2196870), so the two combine to a few metres (range taken:
    2-6 m). Speckle, impulse response and multi-looking follow
    :func:`~torchgeo_quake.simulation.sar_radiometry.form_image` on the render
    grid before averaging to the 2.5 m pixel. ``intensity`` of
    :class:`SarImage` is the blended noise-free intensity (before the impulse
    response).

Memory (calibrated scenario)
    The render grid is processed in strips of
    :data:`~torchgeo_quake.simulation.sar_strips.STRIP_ROWS` rows, each
    with a halo of rows for the misregistration shift and the impulse
    response; only the 2.5 m outputs are held for the whole city. Whole-city
    steps (urban blocks, debris heaps) are computed once
    (:mod:`~torchgeo_quake.simulation.surface_plan`) and every random draw is
    addressed by its row of the whole grid
    (:mod:`~torchgeo_quake.simulation.sar_strips`), so the image
    does not depend on the strip size. The v0.1 image, whose draws come in
    whole-image order, is rendered on the whole grid as before.

The names of those two modules that were defined here before are re-exported.

.. versionadded:: 0.1
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
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
    build_surface,
    rasterize,
)
from .sar_radiometry import (
    DEBRIS_DB,
    DEBRIS_FACET_DB,
    DOUBLE_BOUNCE_PER_M,
    GROUND_DB,
    GROUND_DB_PER_DEG,
    NESZ_DB,
    ROOF_DB,
    SPECULAR,
    WALL_DB,
    _linear,
)

# "X as X": names defined here before, re-exported (documented where defined).
from .sar_radiometry import aspect_factor as aspect_factor
from .sar_radiometry import scatter_rasters as scatter_rasters
from .sar_radiometry import speckle as speckle
from .sar_raycast import ScatterRasters as ScatterRasters
from .sar_raycast import coarsen as coarsen
from .sar_raycast import render_intensity as render_intensity

__all__ = [
    "CITY_CONTRAST_RANGE",
    "MISREGISTRATION_RANGE_M",
    "OVERSAMPLING",
    "SAR_RES",
    "SarImage",
    "SingleBuilding",
    "acquisition_tags",
    "blend_db",
    "misregistration",
    "render_sar",
    "render_single_building",
    "write_sar",
]

F32Array = npt.NDArray[np.float32]
BoolArray = npt.NDArray[np.bool_]

#: Pixel size of the SAR image (metres).
SAR_RES = 2.5
#: Render pixels per image pixel along each axis.
OVERSAMPLING = 2
#: Range padding rendered on both sides so objects just outside cast into it.
RANGE_PAD_M = 100.0
#: Range of the per-city damage contrast factor (calibrated scenario).
CITY_CONTRAST_RANGE = (0.5, 1.0)
#: Range of the per-city footprint-to-image misregistration (metres).
MISREGISTRATION_RANGE_M = (2.0, 6.0)


@dataclass
class SarImage:
    """A rendered SAR image and its by-products.

    Attributes:
        amplitude: speckled amplitude, float32, 0 = nodata
        intensity: noise-free mean intensity (before thermal noise and speckle)
        cover: land cover per image pixel where all render pixels agree, 255
            where they are mixed (of the post-event surface, not shifted by
            *shift_m*)
        valid: True inside the swath
        grid: image grid (local metres)
        tags: GeoTIFF metadata tags
        shift_m: (east, north) shift of the image content against the
            footprints (calibrated scenario; (0, 0) for v0.1)
        contrast: damage contrast ``k`` of the image (1 for v0.1)

    .. versionadded:: 0.1

    .. versionchanged:: 0.3
       Added *shift_m* and *contrast*.
    """

    amplitude: F32Array
    intensity: F32Array
    cover: npt.NDArray[np.uint8]
    valid: BoolArray
    grid: PixelGrid
    tags: dict[str, str]
    shift_m: tuple[float, float] = field(default=(0.0, 0.0))
    contrast: float = 1.0


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

    .. versionchanged:: 0.3
       The calibrated scenario's image formation (see the module docstring).
    """
    if not sim.scenario.is_v01:
        from .sar_strips import render_calibrated

        return render_calibrated(sim, fields)
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


def misregistration(rng: np.random.Generator) -> tuple[float, float]:
    """Draw a city's footprint-to-image shift.

    Args:
        rng: random generator

    Returns:
        (east, north) shift in metres, of length in
        :data:`MISREGISTRATION_RANGE_M` and uniform direction.

    .. versionadded:: 0.3
    """
    length = rng.uniform(*MISREGISTRATION_RANGE_M)
    angle = rng.uniform(0.0, 2.0 * math.pi)
    return float(length * math.cos(angle)), float(length * math.sin(angle))


def blend_db(intact: F32Array, post: F32Array, contrast: float) -> F32Array:
    """Blend two noise-free intensities in decibels.

    Args:
        intact: intensity of the intact city
        post: post-event intensity
        contrast: damage contrast ``k`` (0: *intact*, 1: *post*)

    Returns:
        ``(intact + N) * ((post + N) / (intact + N)) ** k - N`` (at least 0),
        with ``N`` the noise-equivalent sigma nought: differences below the
        noise floor (e.g. between a shadow and a darker shadow) do not count.

    .. versionadded:: 0.3
    """
    noise = float(_linear(NESZ_DB))
    a = np.maximum(intact.astype(np.float64), 0.0) + noise
    b = np.maximum(post.astype(np.float64), 0.0) + noise
    out = a * np.exp(contrast * np.log(b / a)) - noise
    return np.asarray(np.maximum(out, 0.0), dtype=np.float32)


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


def _single_rasters(
    grid: PixelGrid,
    height_m: float,
    incidence_deg: float,
    width_m: float,
    depth_m: float,
    collapsed: bool,
) -> tuple[ScatterRasters, float]:
    """Scattering inputs of one building on flat bare ground.

    Args:
        grid: render grid centred on the building
        height_m: building height (metres)
        incidence_deg: incidence angle (degrees)
        width_m: extent along range (east-west), metres
        depth_m: extent along azimuth (north-south), metres
        collapsed: a debris heap instead of the building

    Returns:
        (rasters, intensity of the open ground).
    """
    from scipy import ndimage

    res = grid.res
    tan = math.tan(math.radians(incidence_deg))
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
    return rasters, flat


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
    res = SAR_RES / OVERSAMPLING
    tan = math.tan(math.radians(incidence_deg))
    reach = height_m / tan + height_m * tan + 40.0
    half_x = math.ceil((0.5 * width_m + reach) / SAR_RES) * SAR_RES
    half_y = math.ceil((0.5 * depth_m + 30.0) / SAR_RES) * SAR_RES
    grid = PixelGrid.from_bounds((-half_x, -half_y, half_x, half_y), res)
    rasters, flat = _single_rasters(
        grid, height_m, incidence_deg, width_m, depth_m, collapsed
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
