"""City specifications of the simulator."""

from __future__ import annotations

import pytest

from torchgeo_quake.cli import CITY_CHOICES
from torchgeo_quake.simulation import CITIES, CITY_SLUGS, get_city
from torchgeo_quake.simulation.cities import resolve_cities, scaled_counts

TABLE_II = {
    "islahiye": (3825, 192),
    "kahramanmaras": (4641, 233),
    "nurdagi": (3289, 498),
    "osmaniye": (317, 16),
    "turkoglu": (453, 23),
}
TABLE_I_DATES = {
    "islahiye": "2023-02-25",
    "kahramanmaras": "2023-03-01",
    "nurdagi": "2023-02-25",
    "osmaniye": "2023-02-15",
    "turkoglu": "2023-02-25",
}


def test_cities_follow_the_paper() -> None:
    assert tuple(TABLE_II) == CITY_SLUGS
    for city in CITIES:
        assert (city.n_intact, city.n_damaged) == TABLE_II[city.slug]
        assert city.acquisition_date == TABLE_I_DATES[city.slug]
        assert 25.0 <= city.incidence_deg <= 45.0
        assert city.orbit in ("ASCENDING", "DESCENDING")
        assert city.sensor_side == ("WEST" if city.orbit == "ASCENDING" else "EAST")
        assert 2.5 <= city.looks <= 4.5
        assert 0.10 <= city.false_negative_share <= 0.15
        assert 250.0 <= city.gem_cell_m <= 500.0


def test_cities_differ() -> None:
    for attribute in ("incidence_deg", "block_orientation_deg", "pga_mean_g"):
        values = [getattr(city, attribute) for city in CITIES]
        assert len(set(values)) == len(values), attribute
    assert {city.orbit for city in CITIES} == {"ASCENDING", "DESCENDING"}


def test_cli_choices_match_slugs() -> None:
    assert CITY_CHOICES == CITY_SLUGS


def test_lookup_and_resolution() -> None:
    assert get_city("Kahramanmaraş").slug == "kahramanmaras"
    assert get_city(" NURDAGI ").slug == "nurdagi"
    with pytest.raises(ValueError, match="unknown city"):
        get_city("antakya")
    assert [c.slug for c in resolve_cities(["turkoglu", "islahiye"])] == [
        "islahiye",
        "turkoglu",
    ]
    assert resolve_cities(None) == CITIES
    with pytest.raises(ValueError, match="no city"):
        resolve_cities([])


def test_scaled_counts() -> None:
    nurdagi = get_city("nurdagi")
    assert scaled_counts(nurdagi, 1.0) == (3289, 498)
    assert scaled_counts(nurdagi, 0.1) == (329, 50)
    assert scaled_counts(get_city("osmaniye"), 0.01) == (3, 1)
    with pytest.raises(ValueError, match="scale"):
        scaled_counts(nurdagi, 0.0)
    with pytest.raises(ValueError, match="scale"):
        scaled_counts(nurdagi, 1.5)
