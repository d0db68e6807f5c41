"""Specifications of the five simulated cities of Russo et al. (2025).

Each :class:`CitySpec` fixes where a city lies, how its SAR image was acquired
(Table I of the paper, plus a plausible incidence angle and orbit), how many
intact and damaged buildings its sampleable area must hold (Table II), and the
parameters that give it the character the paper describes (section II):

* **Islahiye** - on the slopes of the Nur (Amanos) mountains; foundation failures
  and landslides make steep ground a strong damage factor.
* **Kahramanmaraş** - the dense, mixed-use city core of mid-rise reinforced-
  concrete (RC) apartment blocks; heaviest damage.
* **Nurdağı** - agricultural district of low-rise masonry houses with gardens;
  near-complete destruction (the highest damage rate of Table II).
* **Osmaniye** - transport hub on the Çukurova plain with a sharp contrast between
  older (pre-1980) and newer RC neighbourhoods.
* **Türkoğlu** - fast-growing town with many unreinforced brick buildings.

Cities differ in acquisition geometry (incidence angle, orbit direction), street
orientation (which controls how strongly walls give double bounce), building
stock, terrain, shaking and damage rate, so leave-one-city-out generalisation is
harder than pooled cross-validation, as in the paper.

.. versionadded:: 0.1
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

from ..paper import TABLE_II

__all__ = [
    "CITIES",
    "CITY_SLUGS",
    "MATERIAL_GROUPS",
    "CitySpec",
    "get_city",
    "resolve_cities",
    "scaled_counts",
]

#: Material groups of the simulator (parsed from GEM taxonomy strings).
MATERIAL_GROUPS: tuple[str, ...] = (
    "RC",  # reinforced concrete frames / walls (CR, CR+PC)
    "MUR_CBH",  # hollow concrete-block masonry
    "MUR_BRICK",  # unreinforced clay brick masonry (MUR+CLBRS)
    "MUR_STONE",  # rubble / dressed stone masonry
    "MUR_ADOBE",  # adobe
    "W",  # timber
    "S",  # steel
)


def _frozen(mapping: Mapping[str, float]) -> Mapping[str, float]:
    """Read-only copy of a mapping (for frozen dataclass fields).

    Args:
        mapping: the mapping to copy

    Returns:
        An immutable view of a copy of *mapping*.
    """
    return MappingProxyType(dict(mapping))


@dataclass(frozen=True)
class CitySpec:
    """Everything that distinguishes one simulated city.

    Attributes:
        name: display name (with Turkish characters)
        slug: folder name under the scene root
        lon: longitude of the city centre (degrees east)
        lat: latitude of the city centre (degrees north)
        province_id: GEM ``ID_1`` of the province whose exposure is used
        province_name: GEM ``NAME_1`` of that province
        n_intact: Table II number of intact buildings (reference labels)
        n_damaged: Table II number of damaged buildings (reference labels)
        acquisition_date: post-event CSK acquisition date (Table I)
        orbit: ``"ASCENDING"`` (sensor to the west, looking east) or
            ``"DESCENDING"`` (sensor to the east, looking west); right-looking
        incidence_deg: incidence angle at the city (degrees)
        heading_deg: satellite track heading (degrees clockwise from north); it
            only tilts the swath edge, the image is rendered with range = east-west
        looks: equivalent number of looks of the speckle
        block_orientation_deg: rotation of the street grid (degrees
            counter-clockwise from east)
        block_length_m: range of block lengths along the longer side (metres)
        block_depth_m: range of block depths (metres)
        road_width_m: range of street widths (metres)
        row_depth_m: range of the maximum depth of a block's building rows
        gap_factor: multiplier of the gaps between neighbouring buildings
        lshape_share: share of L-shaped footprints (among those large enough)
        density_per_km2: rough building density, used to size the working area
        elongation: ratio of the city's north-south to east-west extent
        material_weights: multipliers of GEM building counts per material group
        storey_weights: multipliers per number of storeys (index 0 = 1 storey;
            the last value applies to taller buildings)
        occupancy_weights: multipliers per GEM occupancy (RES, COM, IND, MIX)
        modernity_tilt: how strongly neighbourhoods differ in building age/type
        modernity_trend: how much newer the periphery is than the centre
        modernity_bimodal: old and new neighbourhoods are sharply separated
            (Osmaniye's pre/post-1980 contrast)
        gem_cell_m: spacing of the GEM neighbourhood grid (metres)
        elevation_m: terrain elevation at the centre (metres above sea level)
        relief_m: standard deviation of the rolling terrain (metres)
        terrain_corr_m: correlation length of the rolling terrain (metres)
        gradient_m_per_km: regional terrain gradient (east, north)
        mountain: (rise in metres, direction in degrees counter-clockwise from
            east, distance of the foot from the centre, width) of a mountain
            front, or None
        pga_mean_g: median peak ground acceleration over the city (g)
        pga_sigma_ln: within-city standard deviation of ln(PGA)
        shaking_corr_m: correlation length of the shaking field (metres)
        slope_weight: collapse-propensity increase per degree of terrain slope
        era_weight: multiplier of the construction-era vulnerability term
        propensity_noise: scale of the building-level logistic noise
        false_negative_share: share of truly collapsed buildings that the damage
            reference misses
        partial_factor: partially damaged buildings per collapsed building
        yard_mix: shares of (paved, bare soil, garden) in block interiors
        orchard_share: share of open land under orchards
        tree_height_m: typical tree height (metres)
        description: one-line character of the city (from the paper)

    .. versionadded:: 0.1
    """

    name: str
    slug: str
    lon: float
    lat: float
    province_id: str
    province_name: str
    n_intact: int
    n_damaged: int
    acquisition_date: str
    orbit: Literal["ASCENDING", "DESCENDING"]
    incidence_deg: float
    heading_deg: float
    looks: float
    block_orientation_deg: float
    block_length_m: tuple[float, float]
    block_depth_m: tuple[float, float]
    road_width_m: tuple[float, float]
    row_depth_m: tuple[float, float]
    gap_factor: float
    lshape_share: float
    density_per_km2: float
    elongation: float
    material_weights: Mapping[str, float]
    storey_weights: tuple[float, ...]
    occupancy_weights: Mapping[str, float]
    modernity_tilt: float
    modernity_trend: float
    modernity_bimodal: bool
    gem_cell_m: float
    elevation_m: float
    relief_m: float
    terrain_corr_m: float
    gradient_m_per_km: tuple[float, float]
    mountain: tuple[float, float, float, float] | None
    pga_mean_g: float
    pga_sigma_ln: float
    shaking_corr_m: float
    slope_weight: float
    era_weight: float
    propensity_noise: float
    false_negative_share: float
    partial_factor: float
    yard_mix: tuple[float, float, float]
    orchard_share: float
    tree_height_m: float
    description: str

    @property
    def sensor_side(self) -> Literal["WEST", "EAST"]:
        """Side of the image the (right-looking) sensor illuminates from.

        Returns:
            ``"WEST"`` for ascending passes, ``"EAST"`` for descending ones.
        """
        return "WEST" if self.orbit == "ASCENDING" else "EAST"

    def storey_weight(self, storeys: int) -> float:
        """Multiplier of the GEM building count for a number of storeys.

        Args:
            storeys: number of storeys (>= 1)

        Returns:
            The multiplier.
        """
        index = min(max(storeys, 1), len(self.storey_weights)) - 1
        return self.storey_weights[index]


#: The five cities, in the order of the paper's tables.
CITIES: tuple[CitySpec, ...] = (
    CitySpec(
        name="Islahiye",
        slug="islahiye",
        lon=36.63,
        lat=37.025,
        province_id="TR-27",
        province_name="GAZİANTEP",
        n_intact=TABLE_II["islahiye"][0],
        n_damaged=TABLE_II["islahiye"][1],
        acquisition_date="2023-02-25",
        orbit="DESCENDING",
        incidence_deg=40.2,
        heading_deg=191.6,
        looks=3.0,
        block_orientation_deg=7.0,
        block_length_m=(60.0, 110.0),
        block_depth_m=(36.0, 62.0),
        road_width_m=(7.0, 12.0),
        row_depth_m=(13.0, 20.0),
        gap_factor=1.1,
        lshape_share=0.3,
        density_per_km2=1500.0,
        elongation=1.35,
        material_weights=_frozen(
            {
                "RC": 0.9,
                "MUR_CBH": 1.0,
                "MUR_BRICK": 1.0,
                "MUR_STONE": 1.6,
                "MUR_ADOBE": 1.0,
                "W": 0.5,
                "S": 1.0,
            }
        ),
        storey_weights=(1.0, 1.1, 1.0, 0.8, 0.45, 0.2, 0.06, 0.02, 0.01, 0.0),
        occupancy_weights=_frozen({"RES": 1.0, "COM": 1.0, "IND": 0.5, "MIX": 1.0}),
        modernity_tilt=0.6,
        modernity_trend=0.4,
        modernity_bimodal=False,
        gem_cell_m=400.0,
        elevation_m=520.0,
        relief_m=5.0,
        terrain_corr_m=450.0,
        gradient_m_per_km=(0.0, 6.0),
        mountain=(260.0, 180.0, 450.0, 380.0),
        pga_mean_g=0.55,
        pga_sigma_ln=0.45,
        shaking_corr_m=700.0,
        slope_weight=0.14,
        era_weight=1.0,
        propensity_noise=0.65,
        false_negative_share=0.12,
        partial_factor=1.2,
        yard_mix=(0.3, 0.3, 0.4),
        orchard_share=0.35,
        tree_height_m=6.0,
        description="slopes of the Nur mountains; foundation failures, landslides",
    ),
    CitySpec(
        name="Kahramanmaraş",
        slug="kahramanmaras",
        lon=36.93,
        lat=37.575,
        province_id="TR-46",
        province_name="KAHRAMANMARAŞ",
        n_intact=TABLE_II["kahramanmaras"][0],
        n_damaged=TABLE_II["kahramanmaras"][1],
        acquisition_date="2023-03-01",
        orbit="ASCENDING",
        incidence_deg=29.7,
        heading_deg=348.4,
        looks=3.5,
        block_orientation_deg=-19.0,
        block_length_m=(70.0, 130.0),
        block_depth_m=(46.0, 76.0),
        road_width_m=(10.0, 18.0),
        row_depth_m=(16.0, 24.0),
        gap_factor=0.9,
        lshape_share=0.25,
        density_per_km2=1150.0,
        elongation=0.85,
        material_weights=_frozen(
            {
                "RC": 2.5,
                "MUR_CBH": 0.5,
                "MUR_BRICK": 0.5,
                "MUR_STONE": 0.4,
                "MUR_ADOBE": 0.2,
                "W": 0.3,
                "S": 1.5,
            }
        ),
        storey_weights=(0.06, 0.2, 1.0, 4.0, 9.0, 12.0, 6.0, 4.0, 2.0, 0.4, 0.2, 0.1),
        occupancy_weights=_frozen({"RES": 1.0, "COM": 2.0, "IND": 0.4, "MIX": 2.5}),
        modernity_tilt=0.8,
        modernity_trend=0.8,
        modernity_bimodal=False,
        gem_cell_m=250.0,
        elevation_m=565.0,
        relief_m=7.0,
        terrain_corr_m=600.0,
        gradient_m_per_km=(0.0, 12.0),
        mountain=(220.0, 90.0, 1300.0, 500.0),
        pga_mean_g=0.50,
        pga_sigma_ln=0.45,
        shaking_corr_m=900.0,
        slope_weight=0.03,
        era_weight=1.0,
        propensity_noise=0.7,
        false_negative_share=0.15,
        partial_factor=1.5,
        yard_mix=(0.6, 0.2, 0.2),
        orchard_share=0.15,
        tree_height_m=7.0,
        description="dense mixed-use core of mid-rise RC apartment blocks",
    ),
    CitySpec(
        name="Nurdağı",
        slug="nurdagi",
        lon=36.735,
        lat=37.175,
        province_id="TR-27",
        province_name="GAZİANTEP",
        n_intact=TABLE_II["nurdagi"][0],
        n_damaged=TABLE_II["nurdagi"][1],
        acquisition_date="2023-02-25",
        orbit="DESCENDING",
        incidence_deg=38.1,
        heading_deg=191.6,
        looks=3.0,
        block_orientation_deg=-4.0,
        block_length_m=(50.0, 100.0),
        block_depth_m=(32.0, 56.0),
        road_width_m=(6.0, 10.0),
        row_depth_m=(11.0, 16.0),
        gap_factor=1.5,
        lshape_share=0.3,
        density_per_km2=1750.0,
        elongation=1.2,
        material_weights=_frozen(
            {
                "RC": 0.5,
                "MUR_CBH": 2.0,
                "MUR_BRICK": 1.5,
                "MUR_STONE": 2.5,
                "MUR_ADOBE": 2.0,
                "W": 0.5,
                "S": 0.5,
            }
        ),
        storey_weights=(1.5, 1.2, 0.5, 0.2, 0.08, 0.03, 0.0),
        occupancy_weights=_frozen({"RES": 1.0, "COM": 0.7, "IND": 0.3, "MIX": 0.7}),
        modernity_tilt=0.6,
        modernity_trend=0.4,
        modernity_bimodal=False,
        gem_cell_m=400.0,
        elevation_m=640.0,
        relief_m=9.0,
        terrain_corr_m=500.0,
        gradient_m_per_km=(-14.0, 4.0),
        mountain=None,
        pga_mean_g=0.70,
        pga_sigma_ln=0.55,
        shaking_corr_m=700.0,
        slope_weight=0.04,
        era_weight=1.0,
        propensity_noise=0.65,
        false_negative_share=0.13,
        partial_factor=0.8,
        yard_mix=(0.15, 0.35, 0.5),
        orchard_share=0.4,
        tree_height_m=5.5,
        description="agricultural district of low-rise masonry houses",
    ),
    CitySpec(
        name="Osmaniye",
        slug="osmaniye",
        lon=36.25,
        lat=37.075,
        province_id="TR-80",
        province_name="OSMANİYE",
        n_intact=TABLE_II["osmaniye"][0],
        n_damaged=TABLE_II["osmaniye"][1],
        acquisition_date="2023-02-15",
        orbit="ASCENDING",
        incidence_deg=43.6,
        heading_deg=348.4,
        looks=4.0,
        block_orientation_deg=22.0,
        block_length_m=(70.0, 120.0),
        block_depth_m=(44.0, 70.0),
        road_width_m=(9.0, 16.0),
        row_depth_m=(14.0, 22.0),
        gap_factor=1.0,
        lshape_share=0.3,
        density_per_km2=1400.0,
        elongation=1.0,
        material_weights=_frozen(
            {
                "RC": 1.6,
                "MUR_CBH": 0.8,
                "MUR_BRICK": 0.8,
                "MUR_STONE": 0.6,
                "MUR_ADOBE": 0.5,
                "W": 0.5,
                "S": 1.0,
            }
        ),
        storey_weights=(0.6, 1.0, 1.3, 1.5, 1.3, 0.9, 0.4, 0.2, 0.1, 0.0),
        occupancy_weights=_frozen({"RES": 1.0, "COM": 1.5, "IND": 1.0, "MIX": 1.2}),
        modernity_tilt=1.3,
        modernity_trend=0.3,
        modernity_bimodal=True,
        gem_cell_m=300.0,
        elevation_m=120.0,
        relief_m=1.5,
        terrain_corr_m=700.0,
        gradient_m_per_km=(0.0, 3.0),
        mountain=None,
        pga_mean_g=0.28,
        pga_sigma_ln=0.40,
        shaking_corr_m=800.0,
        slope_weight=0.02,
        era_weight=2.2,
        propensity_noise=0.65,
        false_negative_share=0.10,
        partial_factor=1.5,
        yard_mix=(0.5, 0.2, 0.3),
        orchard_share=0.2,
        tree_height_m=6.0,
        description="transport hub; pre-1980 versus newer RC neighbourhoods",
    ),
    CitySpec(
        name="Türkoğlu",
        slug="turkoglu",
        lon=36.85,
        lat=37.385,
        province_id="TR-46",
        province_name="KAHRAMANMARAŞ",
        n_intact=TABLE_II["turkoglu"][0],
        n_damaged=TABLE_II["turkoglu"][1],
        acquisition_date="2023-02-25",
        orbit="ASCENDING",
        incidence_deg=26.4,
        heading_deg=348.4,
        looks=3.5,
        block_orientation_deg=-12.0,
        block_length_m=(50.0, 95.0),
        block_depth_m=(34.0, 55.0),
        road_width_m=(7.0, 11.0),
        row_depth_m=(12.0, 17.0),
        gap_factor=1.2,
        lshape_share=0.3,
        density_per_km2=1700.0,
        elongation=1.1,
        material_weights=_frozen(
            {
                "RC": 0.6,
                "MUR_CBH": 1.0,
                "MUR_BRICK": 8.0,
                "MUR_STONE": 0.8,
                "MUR_ADOBE": 0.8,
                "W": 0.5,
                "S": 0.5,
            }
        ),
        storey_weights=(1.3, 1.3, 0.7, 0.3, 0.12, 0.04, 0.0),
        occupancy_weights=_frozen({"RES": 1.0, "COM": 0.8, "IND": 0.5, "MIX": 0.8}),
        modernity_tilt=0.6,
        modernity_trend=0.6,
        modernity_bimodal=False,
        gem_cell_m=350.0,
        elevation_m=495.0,
        relief_m=3.0,
        terrain_corr_m=600.0,
        gradient_m_per_km=(4.0, 2.0),
        mountain=None,
        pga_mean_g=0.60,
        pga_sigma_ln=0.45,
        shaking_corr_m=500.0,
        slope_weight=0.02,
        era_weight=1.0,
        propensity_noise=0.65,
        false_negative_share=0.12,
        partial_factor=1.2,
        yard_mix=(0.25, 0.35, 0.4),
        orchard_share=0.25,
        tree_height_m=5.0,
        description="fast-growing town with many unreinforced brick buildings",
    ),
)

#: City slugs in table order.
CITY_SLUGS: tuple[str, ...] = tuple(city.slug for city in CITIES)


def get_city(slug: str) -> CitySpec:
    """Look up a city by slug (or name, case-insensitively).

    Args:
        slug: city slug (e.g. ``"kahramanmaras"``) or name (``"Kahramanmaraş"``)

    Returns:
        The city specification.

    Raises:
        ValueError: If no city matches.

    .. versionadded:: 0.1
    """
    key = slug.strip().casefold()
    for city in CITIES:
        if key in (city.slug, city.name.casefold()):
            return city
    raise ValueError(f"unknown city {slug!r}; choose from {', '.join(CITY_SLUGS)}")


def resolve_cities(cities: Iterable[str | CitySpec] | None) -> tuple[CitySpec, ...]:
    """Turn a user selection of cities into specifications, in table order.

    Args:
        cities: slugs, names or specifications; None selects all five

    Returns:
        The selected cities without duplicates, in the order of :data:`CITIES`.

    Raises:
        ValueError: If a city is unknown or the selection is empty.

    .. versionadded:: 0.1
    """
    if cities is None:
        return CITIES
    if isinstance(cities, str):
        cities = [cities]
    wanted = {c.slug if isinstance(c, CitySpec) else get_city(c).slug for c in cities}
    if not wanted:
        raise ValueError("no city selected; choose from " + ", ".join(CITY_SLUGS))
    return tuple(city for city in CITIES if city.slug in wanted)


def scaled_counts(city: CitySpec, scale: float) -> tuple[int, int]:
    """Table II counts of a city multiplied by *scale*.

    Args:
        city: the city
        scale: factor in (0, 1]

    Returns:
        (intact, damaged) reference counts: rounded, at least 1 damaged and at
        least 1 intact building.

    Raises:
        ValueError: If *scale* is not in (0, 1].

    .. versionadded:: 0.1
    """
    if not 0.0 < scale <= 1.0:
        raise ValueError(f"scale must be in (0, 1], got {scale}")
    intact = max(1, round(city.n_intact * scale))
    damaged = max(1, round(city.n_damaged * scale))
    return intact, damaged
