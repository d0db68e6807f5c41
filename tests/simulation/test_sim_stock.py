"""Reference statistics of building layers and the calibrated building stock."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from torchgeo_quake.simulation import CITIES, get_city, load_exposure
from torchgeo_quake.simulation.footprints import Candidates
from torchgeo_quake.simulation.gem_neighbourhoods import build_neighbourhoods
from torchgeo_quake.simulation.layout import StreetGrid, generate_candidates
from torchgeo_quake.simulation.reference_stats import (
    CITY_BOXES,
    footprint_stats,
    real_density_estimate,
    real_stats,
    simulated_stats,
    write_real_stats,
)
from torchgeo_quake.simulation.stock import StockModel, calibrated_spec, stock_model

JSON = Path(__file__).resolve().parents[1] / "data" / "simulation"
JSON = JSON / "hotosm_reference_stats.json"
UTM = "EPSG:32637"


def _squares(centres: list[tuple[float, float]], sides: list[float]) -> np.ndarray:
    """Square footprints (UTM metres) around the given centres."""
    return np.array(
        [
            shapely.box(x - s / 2, y - s / 2, x + s / 2, y + s / 2)
            for (x, y), s in zip(centres, sides, strict=True)
        ],
        dtype=object,
    )


# A row of three buildings 30 and 35 m apart (the first and the third, 65 m
# apart, do not see each other in their 80 m squares) and one far away.
_X0, _Y0 = 500_000.0, 4_100_000.0
_CENTRES = [
    (_X0 + 10, _Y0 + 10),
    (_X0 + 40, _Y0 + 10),
    (_X0 + 75, _Y0 + 10),
    (_X0 + 1010, _Y0 + 1010),
]
_SIDES = [10.0, 20.0, 30.0, 40.0]


def test_footprint_stats_of_a_tiny_layer() -> None:
    stats = footprint_stats(_squares(_CENTRES, _SIDES))
    assert stats.count == 4
    assert stats.median_area_m2 == pytest.approx(0.5 * (400 + 900))
    # The row's buildings have a neighbour in their 80 m square; the far one
    # does not.
    assert stats.cluster_share == pytest.approx(0.75)
    nearest = np.array([30.0, 30.0, 35.0, math.hypot(935, 1000)])
    assert stats.nn_quantiles_m[2] == pytest.approx(np.median(nearest))
    assert stats.nn_quantiles_m[0] == pytest.approx(np.quantile(nearest, 0.1))
    # Two 250 m cells: the cluster's and the far building's.
    assert stats.cell_area_km2 == pytest.approx(2 * 0.0625)
    hull = shapely.convex_hull(shapely.multipoints(np.array(_CENTRES)))
    assert stats.hull_area_km2 == pytest.approx(hull.area / 1e6)
    assert stats.radius_m > 0


def test_footprint_stats_rejects_empty_input() -> None:
    with pytest.raises(ValueError, match="no footprints"):
        footprint_stats([])


def test_single_footprint_has_no_neighbour() -> None:
    stats = footprint_stats(_squares(_CENTRES[:1], _SIDES[:1]))
    assert stats.cluster_share == 0.0
    assert all(math.isnan(v) for v in stats.nn_quantiles_m)


def _to_wgs84(polygons: np.ndarray) -> gpd.GeoSeries:
    return gpd.GeoSeries(polygons, crs=UTM).to_crs("EPSG:4326")


def test_real_stats_clip_to_boxes(tmp_path: Path) -> None:
    geo = _to_wgs84(_squares(_CENTRES, _SIDES))
    path = tmp_path / "destroyed.geojson"
    gpd.GeoDataFrame({"osm_id": [1, 2, 3, 4]}, geometry=geo).to_file(path)
    centroid = shapely.centroid(geo.to_numpy())
    lon, lat = shapely.get_x(centroid), shapely.get_y(centroid)
    box = (lon[0] - 1e-4, lat[0] - 1e-4, lon[2] + 1e-4, lat[2] + 1e-4)
    stats = real_stats(path, {"cluster": box, "nothing": (0.0, 0.0, 0.1, 0.1)})
    assert set(stats) == {"cluster"}
    assert stats["cluster"].count == 3
    assert stats["cluster"].cluster_share == pytest.approx(1.0)
    assert stats["cluster"].median_area_m2 == pytest.approx(400.0, rel=1e-3)
    with pytest.raises(FileNotFoundError, match="HDX"):
        real_stats(tmp_path / "missing.geojson")


def test_simulated_stats_of_a_tiny_folder(tmp_path: Path) -> None:
    polygons = _squares(_CENTRES, _SIDES)
    geo = _to_wgs84(polygons)
    ids = [11, 12, 13, 14]
    gpd.GeoDataFrame({"osm_id": ids}, geometry=geo).to_file(
        tmp_path / "buildings.gpkg", driver="GPKG"
    )
    gpd.GeoDataFrame({"osm_id": ids[:2]}, geometry=geo[:2]).to_file(
        tmp_path / "destroyed.geojson", driver="GeoJSON"
    )
    pd.DataFrame({"osm_id": ids, "in_reference": [True, True, False, False]}).to_csv(
        tmp_path / "truth.csv", index=False
    )
    destroyed, stock = simulated_stats(tmp_path)
    assert destroyed.count == 2
    assert destroyed.cluster_share == pytest.approx(1.0)
    assert stock.count == 4
    assert stock.median_area_destroyed_m2 == pytest.approx(250.0, rel=1e-3)
    assert stock.median_area_intact_m2 == pytest.approx(1250.0, rel=1e-3)
    assert stock.density_per_km2 == pytest.approx(4 / 0.125)
    (tmp_path / "truth.csv").write_text("osm_id,grade\n11,0\n")
    with pytest.raises(ValueError, match="in_reference"):
        simulated_stats(tmp_path)


def test_density_estimate_uses_table_ii() -> None:
    stats = footprint_stats(_squares(_CENTRES, _SIDES))
    density = real_density_estimate("osmaniye", stats)
    assert density == pytest.approx((317 + 16) * 4 / 16 / stats.cell_area_km2)
    with pytest.raises(ValueError, match="unknown city"):
        real_density_estimate("ankara", stats)


def test_committed_json_is_reproduced(shared_data: Path, tmp_path: Path) -> None:
    path = shared_data / "hotosm" / "hotosm_tur_destroyed_buildings_polygons.geojson"
    if not path.is_file():
        pytest.skip(f"{path} not present")
    written = write_real_stats(tmp_path / "stats.json", path)
    assert json.loads(JSON.read_text()) == json.loads(json.dumps(written))
    assert set(written["cities"]) == set(CITY_BOXES)


def test_calibrated_radii_match_committed_json() -> None:
    from torchgeo_quake.simulation.stock import _FITS

    cities = json.loads(JSON.read_text())["cities"]
    for slug, fit in _FITS.items():
        assert fit.real_radius == pytest.approx(cities[slug]["radius_m"], abs=0.1)


def test_calibrated_spec_is_valid_and_different() -> None:
    for city in CITIES:
        spec = calibrated_spec(city)
        assert spec != city
        assert spec.slug == city.slug and spec.n_intact == city.n_intact
        assert spec.row_depth_m[0] > city.row_depth_m[0]
        assert spec.block_depth_m[0] > 2 * spec.row_depth_m[0] * 0.5
        assert 0 < spec.density_per_km2 < city.density_per_km2
        changed = {
            f.name
            for f in dataclasses.fields(city)
            if getattr(spec, f.name) != getattr(city, f.name)
        }
        assert changed == {
            "block_length_m",
            "block_depth_m",
            "row_depth_m",
            "density_per_km2",
        }
        model = stock_model(city)
        assert 0.0 <= model.block_vacancy < 1.0
    # The small towns are far more spread out than the v0.1 layout.
    assert stock_model(get_city("turkoglu")).block_vacancy > 0.5
    assert stock_model(get_city("kahramanmaras")).block_vacancy == 0.0
    unknown = dataclasses.replace(CITIES[0], slug="ankara")
    with pytest.raises(ValueError, match="no calibrated stock"):
        calibrated_spec(unknown)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"footprint_scale": 0.0},
        {"footprint_sigma": -1.0},
        {"max_side_m": 5.0},
        {"block_vacancy": 1.0},
    ],
)
def test_stock_model_rejects_bad_values(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        StockModel(**kwargs)


def _layout(
    city_slug: str, stock: StockModel | None, default: bool = False
) -> tuple[StreetGrid, Candidates]:
    city = get_city(city_slug)
    if stock is not None:
        city = calibrated_spec(city)
    exposure = load_exposure("builtin")
    rng = np.random.default_rng(3)
    radius = 500.0
    grid = build_neighbourhoods(
        exposure.province(city.province_id), city, radius, 300.0, rng
    )
    if default:
        return generate_candidates(city, grid, radius, rng)
    return generate_candidates(city, grid, radius, rng, stock=stock)


def test_v01_layout_unchanged_and_calibrated_larger() -> None:
    default_streets, default = _layout("nurdagi", None, default=True)
    _, explicit = _layout("nurdagi", None)
    assert len(default) == len(explicit)
    assert np.array_equal(default.x, explicit.x)
    assert np.array_equal(default.kind, explicit.kind)
    assert "open" not in set(default_streets.kind)
    assert max(default.frontage.max(), default.depth.max()) <= 40.0
    streets, calibrated = _layout("nurdagi", stock_model(get_city("nurdagi")))
    area_v01 = np.median(shapely.area(default.polygons))
    area_cal = np.median(shapely.area(calibrated.polygons))
    assert area_cal > 1.5 * area_v01
    assert "open" in set(streets.kind)
    assert len(calibrated) < 0.6 * len(default)
    # Footprints still never overlap.
    tree = shapely.STRtree(calibrated.polygons)
    left, right = tree.query(calibrated.polygons, predicate="intersects")
    assert (left == right).all()
