"""Layout and damage of one simulated city, without rendering any raster.

:func:`simulate_layout` runs every step that decides *what* is in a city - the
terrain, the GEM neighbourhoods, streets and buildings, the SAR image extent,
the hidden building attributes, the shaking field and the damage with its
reference labels - and returns a :class:`CitySimulation`. It is fast (no image
is rendered), so the Table II counts can be checked at full scale in tests; the
raster and file writers of :mod:`~torchgeo_quake.simulation.scene` take
its result.

Random numbers: every city and stage has its own generator seeded from
``(seed, city index, scale, stage)``, so a city is the same whichever other
cities are simulated with it.

.. versionadded:: 0.1
"""

from __future__ import annotations

import functools
import math
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, NamedTuple

import numpy as np
import numpy.typing as npt
import pandas as pd
import shapely
from pyproj import Transformer

from .cities import CITIES, CitySpec, scaled_counts
from .damage import Damage, shaking_field, simulate_damage
from .footprints import Candidates
from .gem_neighbourhoods import PERIODS, NeighbourhoodGrid, build_neighbourhoods
from .gem_tables import ExposureTable
from .layout import StreetGrid, generate_candidates
from .scenario import DEFAULT_SCENARIO, Scenario, resolve_scenario
from .selection import Selection, city_radius, select_buildings
from .stock import StockModel, calibrated_spec, stock_model
from .terrain import Terrain, build_terrain

if TYPE_CHECKING:
    from .shaking import GroundMotion
    from .vulnerability import VulnerabilityModel

__all__ = [
    "CitySimulation",
    "city_rng",
    "count_override",
    "effective_scale",
    "simulate_layout",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

Stage = Literal[
    "layout",
    "attributes",
    "damage",
    "gem",
    "sar",
    "dsm",
    "fields",
    "vectors",
    "neighbourhood",
]
_STAGES: dict[str, int] = {
    "layout": 1,
    "attributes": 2,
    "damage": 3,
    "gem": 4,
    "sar": 5,
    "dsm": 6,
    "fields": 7,
    "vectors": 8,
    "neighbourhood": 9,
}


def city_rng(
    seed: int, city: CitySpec, scale: float, stage: Stage, attempt: int = 0
) -> np.random.Generator:
    """Random generator of one stage of one city.

    Args:
        seed: scene seed
        city: the city
        scale: scene scale
        stage: simulation stage
        attempt: retry counter of the layout stage

    Returns:
        A generator seeded from all arguments.

    .. versionadded:: 0.1
    """
    index = [c.slug for c in CITIES].index(city.slug)
    key = [int(seed), index, round(scale * 1_000_000), _STAGES[stage], attempt]
    return np.random.default_rng(np.random.SeedSequence(key))


@dataclass
class CitySimulation:
    """Everything decided about a city before rendering.

    Coordinates are local metres relative to :attr:`origin` (x east, y north);
    the UTM 37N coordinates are ``origin + local``.

    Attributes:
        city: the city
        scale: scene scale (with a building count override, the count divided
            by the Table II total, see :func:`effective_scale`)
        seed: scene seed
        origin: UTM 37N coordinates (easting, northing) of the local origin
        radius: radius of the working area (metres)
        n_intact: reference-intact buildings inside the valid SAR area
        n_damaged: reference-damaged buildings inside the valid SAR area
        terrain: ground elevation
        neighbourhoods: GEM neighbourhood grid
        streets: blocks and avenues
        buildings: the kept buildings (counted ones first, then the extras)
        counted: True for buildings inside the valid SAR area
        selection: image extent and valid area
        osm_id: OSM ids (unique across the scene)
        taxonomy: hidden GEM taxonomy strings
        attributes: per-building ``material_group``, ``code``, ``ductile`` and
            ``occupancy``
        period: construction period index (into ``PERIODS``)
        height: intact building height (metres)
        storey_height: height of one storey (metres)
        damage: true damage and reference labels
        exposure_source: where the GEM exposure came from
        scenario: the damage and image model (see
            :mod:`~torchgeo_quake.simulation.scenario`)
        ground_motion: the ground-motion field (calibrated scenario; None in
            ``v0.1``), written as ``pga.tif``

    .. versionadded:: 0.1
    .. versionchanged:: 0.3
       The *scenario*.
    """

    city: CitySpec
    scale: float
    seed: int
    origin: tuple[float, float]
    radius: float
    n_intact: int
    n_damaged: int
    terrain: Terrain
    neighbourhoods: NeighbourhoodGrid
    streets: StreetGrid
    buildings: Candidates
    counted: BoolArray
    selection: Selection
    osm_id: IntArray
    taxonomy: npt.NDArray[np.object_]
    attributes: pd.DataFrame
    period: IntArray
    height: FloatArray
    storey_height: FloatArray
    damage: Damage
    exposure_source: str
    scenario: Scenario = DEFAULT_SCENARIO
    ground_motion: GroundMotion | None = None

    @property
    def area(self) -> FloatArray:
        """Footprint areas (m²).

        Returns:
            One area per building.
        """
        return np.asarray(shapely.area(self.buildings.polygons), dtype=np.float64)

    def reference_counts(self) -> tuple[int, int]:
        """Intact and damaged counts by the reference among counted buildings.

        Returns:
            (intact, damaged).
        """
        damaged = int((self.damage.in_reference & self.counted).sum())
        return int(self.counted.sum()) - damaged, damaged

    def truth(self) -> pd.DataFrame:
        """Per-building true state (the content of ``truth.csv``).

        Returns:
            Frame with ``osm_id``, ``damage_grade``, ``in_reference``,
            ``in_sar`` (inside the valid SAR area), ``height_m``, ``storeys``,
            ``taxonomy``, ``material``, ``code_level``, ``period``,
            ``occupancy``, ``kind``, ``footprint_area_m2``, ``terrain_slope_deg``,
            ``pga_g``, ``collapse_probability`` and the centroid in UTM 37N
            (``x_utm``, ``y_utm``).
        """
        b = self.buildings
        return pd.DataFrame(
            {
                "osm_id": self.osm_id,
                "damage_grade": self.damage.grade,
                "in_reference": self.damage.in_reference,
                "in_sar": self.counted,
                "height_m": np.round(self.height, 2),
                "storeys": b.storeys,
                "taxonomy": self.taxonomy,
                "material": self.attributes["material_group"].to_numpy(object),
                "code_level": self.attributes["code"].to_numpy(object),
                "period": np.asarray(PERIODS, dtype=object)[self.period],
                "occupancy": self.attributes["occupancy"].to_numpy(object),
                "kind": b.kind,
                "footprint_area_m2": np.round(self.area, 1),
                "terrain_slope_deg": np.round(self.terrain.slope_deg(b.x, b.y), 2),
                "pga_g": np.round(self.damage.pga_g, 4),
                "collapse_probability": np.round(self.damage.probability, 5),
                "x_utm": np.round(b.x + self.origin[0], 3),
                "y_utm": np.round(b.y + self.origin[1], 3),
            }
        )


def count_override(city: CitySpec, buildings: int) -> tuple[int, int]:
    """Intact and damaged counts of a city simulated with a building count.

    The damaged share of the city's Table II counts is kept.

    Args:
        city: the city
        buildings: number of buildings inside the valid SAR area (>= 2)

    Returns:
        (intact, damaged), at least one of each, summing to *buildings*.

    Raises:
        ValueError: If *buildings* is smaller than 2.

    .. versionadded:: 0.1
    """
    if int(buildings) != buildings or buildings < 2:
        raise ValueError(f"buildings must be an integer >= 2, got {buildings}")
    share = city.n_damaged / (city.n_intact + city.n_damaged)
    damaged = min(max(1, round(int(buildings) * share)), int(buildings) - 1)
    return int(buildings) - damaged, damaged


def effective_scale(city: CitySpec, buildings: int) -> float:
    """Scale equivalent to a building count (may exceed 1).

    Stored as :attr:`CitySimulation.scale` and used to seed the random
    generators, so a count override gives its own reproducible city.

    Args:
        city: the city
        buildings: number of buildings inside the valid SAR area

    Returns:
        *buildings* divided by the city's Table II total.

    .. versionadded:: 0.1
    """
    return int(buildings) / (city.n_intact + city.n_damaged)


def _origin(city: CitySpec) -> tuple[float, float]:
    """UTM 37N coordinates of the city centre, rounded to 5 m.

    Args:
        city: the city

    Returns:
        (easting, northing).
    """
    to_utm = Transformer.from_crs("EPSG:4326", "EPSG:32637", always_xy=True)
    e, n = to_utm.transform(city.lon, city.lat)
    return round(e / 5.0) * 5.0, round(n / 5.0) * 5.0


def _heights(
    kind: npt.NDArray[np.object_],
    material: npt.NDArray[np.object_],
    storeys: IntArray,
    rng: np.random.Generator,
) -> tuple[FloatArray, FloatArray]:
    """Building heights from storeys, material and kind.

    Args:
        kind: building kinds
        material: material groups
        storeys: numbers of storeys
        rng: random generator

    Returns:
        (height, storey height) in metres.
    """
    n = storeys.size
    storey = np.where(material == "RC", 3.0, 2.8) + rng.normal(0.0, 0.12, size=n)
    storey = np.where(kind == "school", 3.4, storey)
    storey = np.where(kind == "industrial", rng.uniform(4.0, 6.0, size=n), storey)
    storey = np.where(kind == "mosque", rng.uniform(5.0, 7.0, size=n), storey)
    roof = rng.uniform(0.3, 1.5, size=n)
    return storeys * storey + roof, storey


class _Layout(NamedTuple):
    """The layout stage of a city (see :func:`_lay_out`)."""

    radius: float
    terrain: Terrain
    grid: NeighbourhoodGrid
    streets: StreetGrid
    candidates: Candidates
    selection: Selection


def _lay_out(
    city: CitySpec,
    stock: pd.DataFrame,
    count: int,
    scale: float,
    seed: int,
    model: StockModel | None = None,
) -> _Layout:
    """Terrain, neighbourhoods, streets, candidates and selection of a city.

    The working area starts just large enough for *count* buildings at the
    city's density and grows by 20 % per attempt until the selection fits.

    Args:
        city: the city
        stock: the province's GEM exposure rows
        count: buildings inside the valid SAR area
        scale: scene scale (seeds the generators)
        seed: scene seed
        model: footprint sizes and open blocks of the calibrated stock (None:
            the v0.1 stock)

    Returns:
        The layout.

    Raises:
        RuntimeError: If no attempt fits *count* buildings.
    """
    r_need = city_radius(city, count)
    stretch = math.sqrt(max(city.elongation, 1.0 / city.elongation))
    radius = 1.3 * r_need * stretch + 400.0
    for attempt in range(8):
        rng = city_rng(seed, city, scale, "layout", attempt)
        terrain = build_terrain(city, radius, rng)
        grid = build_neighbourhoods(stock, city, radius, r_need, rng)
        streets, candidates = generate_candidates(city, grid, radius, rng, model)
        selection = select_buildings(city, candidates, count, radius, rng)
        if selection is not None:
            return _Layout(radius, terrain, grid, streets, candidates, selection)
        radius *= 1.2
    raise RuntimeError(  # pragma: no cover - guarded by the city specifications
        f"could not lay out {count} buildings in {city.name}"
    )


@functools.lru_cache(maxsize=4)
def _vulnerability(
    vulnerability_dir: str | None, exposure_source: str
) -> VulnerabilityModel:
    """GEM's vulnerability functions, read once per folder.

    With the built-in exposure summary (no GEM files), the built-in table of
    the functions its taxonomies map to is used.

    Args:
        vulnerability_dir: folder of the functions, or None for the default
        exposure_source: where the exposure came from (``"builtin"`` or a
            folder)

    Returns:
        The vulnerability model.
    """
    from .vulnerability import load_vulnerability

    if vulnerability_dir is None and exposure_source == "builtin":
        vulnerability_dir = "builtin"
    return load_vulnerability(vulnerability_dir)


def _osm_ids(city: CitySpec, n: int, rng: np.random.Generator) -> IntArray:
    """OSM ids of a city's buildings, unique across the scene.

    Args:
        city: the city
        n: number of buildings
        rng: random generator

    Returns:
        Increasing ids with random steps, ending in the city's index, shuffled.
    """
    index = [c.slug for c in CITIES].index(city.slug)
    steps = rng.integers(3, 40_000, size=n)
    osm_id = (150_000_000 + np.cumsum(steps)) * len(CITIES) + index
    return rng.permutation(osm_id).astype(np.int64)


def simulate_layout(
    city: CitySpec,
    exposure: ExposureTable,
    scale: float = 1.0,
    seed: int = 0,
    n_buildings: int | None = None,
    scenario: Scenario | str | None = None,
    vulnerability_dir: str | os.PathLike[str] | None = None,
) -> CitySimulation:
    """Lay out a city and draw its damage, without rendering rasters.

    Args:
        city: the city
        exposure: GEM exposure (see
            :func:`~torchgeo_quake.simulation.gem_tables.load_exposure`)
        scale: factor in (0, 1] applied to the Table II counts
        seed: scene seed
        n_buildings: if given, the number of buildings the valid SAR area must
            hold instead of the scaled Table II counts (see
            :func:`count_override`); *scale* is then ignored. For benchmarks
            and demos of large cities (e.g. 100,000 buildings).
        scenario: the damage and image model (a
            :class:`~torchgeo_quake.simulation.scenario.Scenario` or its name;
            None: the calibrated default)
        vulnerability_dir: folder with GEM's vulnerability functions (see
            :func:`~torchgeo_quake.simulation.vulnerability.load_vulnerability`;
            calibrated scenario only)

    Returns:
        The city's simulation state.

    Raises:
        RuntimeError: If no layout with enough buildings is found (should not
            happen with the built-in city specifications).
        ValueError: If *n_buildings* is smaller than 2.

    .. versionadded:: 0.1
    .. versionchanged:: 0.3
       The *scenario*; the calibrated one is the default.
    """
    scenario = resolve_scenario(scenario)
    model = None if scenario.is_v01 else stock_model(city)
    if model is not None:
        city = calibrated_spec(city)
    if n_buildings is not None:
        n_intact, n_damaged = count_override(city, n_buildings)
        scale = effective_scale(city, n_buildings)
    else:
        n_intact, n_damaged = scaled_counts(city, scale)
    stock = exposure.province(city.province_id)
    layout = _lay_out(city, stock, n_intact + n_damaged, scale, seed, model)
    selection = layout.selection
    keep = np.concatenate([selection.valid, selection.extra])
    buildings = layout.candidates.subset(keep)
    counted = np.zeros(keep.size, dtype=bool)
    counted[: selection.valid.size] = True
    rows = stock.iloc[buildings.taxonomy]
    attributes = rows[["material_group", "code", "ductile", "occupancy"]].reset_index(
        drop=True
    )

    rng = city_rng(seed, city, scale, "attributes")
    period = layout.grid.draw_periods(
        attributes["code"].to_numpy(object), buildings.cell, rng.random(keep.size)
    )
    material = attributes["material_group"].to_numpy(object)
    height, storey_height = _heights(buildings.kind, material, buildings.storeys, rng)
    osm_id = _osm_ids(city, keep.size, rng)

    rng = city_rng(seed, city, scale, "damage")
    area = np.asarray(shapely.area(buildings.polygons), dtype=np.float64)
    motion: GroundMotion | None = None
    if scenario.is_v01:
        pga = shaking_field(city, layout.radius, rng).sample(buildings.x, buildings.y)
        damage = simulate_damage(
            city,
            attributes,
            buildings.storeys,
            period,
            area,
            height,
            pga,
            layout.terrain.slope_deg(buildings.x, buildings.y),
            counted,
            n_damaged,
            rng,
        )
    else:
        # The calibrated model's modules load GEM's vulnerability functions and
        # the rupture geometry: imported only when needed.
        from .collapse import collapse_signatures
        from .damage_gem import neighbourhood_term, simulate_damage_gem
        from .shaking import ground_motion

        motion = ground_motion(city, _origin(city), layout.radius, layout.terrain, rng)
        local = neighbourhood_term(
            buildings.x,
            buildings.y,
            layout.radius,
            city_rng(seed, city, scale, "neighbourhood"),
        )
        damage = simulate_damage_gem(
            city,
            rows["taxonomy"].to_numpy(object),
            area,
            height,
            motion.sample(buildings.x, buildings.y),
            counted,
            n_damaged,
            scenario.vulnerability_strength,
            rng,
            _vulnerability(
                None if vulnerability_dir is None else str(vulnerability_dir),
                exposure.source,
            ),
            neighbourhood=local,
        )
        damage = collapse_signatures(damage, height, city, scenario, rng)
    return CitySimulation(
        city=city,
        scale=scale,
        seed=seed,
        origin=_origin(city),
        radius=layout.radius,
        n_intact=n_intact,
        n_damaged=n_damaged,
        terrain=layout.terrain,
        neighbourhoods=layout.grid,
        streets=layout.streets,
        buildings=buildings,
        counted=counted,
        selection=selection,
        osm_id=osm_id,
        taxonomy=rows["taxonomy"].to_numpy(object),
        attributes=attributes,
        period=period,
        height=np.asarray(height, dtype=np.float64),
        storey_height=np.asarray(storey_height, dtype=np.float64),
        damage=damage,
        exposure_source=exposure.source,
        scenario=scenario,
        ground_motion=motion,
    )
