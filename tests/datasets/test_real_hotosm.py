"""The real HOTOSM "Turkey Destroyed Buildings" layer (../shared/data/hotosm)."""

from __future__ import annotations

from pathlib import Path

import pytest
import shapely

from torchgeo_quake.datasets import OSMBuildings, read_vector

# City boxes (lon/lat) and polygon counts from ../shared/data/README.md.
CITY_BOXES = {
    "kahramanmaras": ((36.85, 37.53, 37.00, 37.62), 236),
    "islahiye": ((36.60, 37.00, 36.66, 37.05), 183),
    "nurdagi": ((36.70, 37.15, 36.77, 37.20), 537),
    "osmaniye": ((36.20, 37.04, 36.30, 37.11), 25),
    "turkoglu": ((36.82, 37.36, 36.88, 37.41), 23),
}


@pytest.fixture(scope="module")
def destroyed(shared_data: Path) -> Path:
    path = shared_data / "hotosm" / "hotosm_tur_destroyed_buildings_polygons.geojson"
    if not path.exists():
        pytest.skip(f"HOTOSM layer not found at {path}")
    return path


def test_layer_schema_and_size(destroyed: Path) -> None:
    frame = read_vector(destroyed)
    assert len(frame) == 3259
    assert frame.crs.to_epsg() == 4326
    assert {"osm_id", "destroyed_building", "damage_date"} <= set(frame.columns)
    assert (frame["destroyed_building"] == "yes").all()


@pytest.mark.parametrize("city", sorted(CITY_BOXES))
def test_polygons_per_city_box(destroyed: Path, city: str) -> None:
    box, expected = CITY_BOXES[city]
    buildings = OSMBuildings(destroyed, city=city)
    inside = shapely.contains_xy(shapely.box(*box), *buildings.centroids.T)
    assert int(inside.sum()) == expected


def test_layer_as_its_own_damage_reference(destroyed: Path) -> None:
    # Joined by osm_id: every footprint of the layer is labelled damaged.
    buildings = OSMBuildings(destroyed, damage=destroyed)
    assert buildings.counts().to_dict() == {
        "intact": 0,
        "damaged": len(buildings.buildings),
    }
    assert buildings.unmatched_damage == 0
    assert buildings.skipped.empty or set(buildings.skipped["reason"]) <= {
        "duplicate osm_id"
    }
