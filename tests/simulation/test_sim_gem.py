"""GEM exposure of the simulator: real tables, built-in fallback, neighbourhoods."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from torchgeo_quake.simulation import get_city
from torchgeo_quake.simulation.gem import (
    DEFAULT_GEM_DIR,
    PERIODS,
    build_neighbourhoods,
    city_mix,
    gem_assets,
    load_exposure,
    parse_taxonomies,
    summarise_exposure,
)
from torchgeo_quake.simulation.gem_fallback import FALLBACK_ROWS

SHARED_GEM = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "gem"


@pytest.fixture(scope="module")
def real_gem() -> Path:
    if not (SHARED_GEM / "Exposure_Res_Turkey_Adm1.csv").is_file():
        pytest.skip(f"GEM exposure not found at {SHARED_GEM} (../shared/data/gem)")
    return SHARED_GEM


def test_default_folder_is_beside_the_repository() -> None:
    assert DEFAULT_GEM_DIR == SHARED_GEM


def test_parse_taxonomies() -> None:
    parsed = parse_taxonomies(
        pd.Series(
            [
                "CR/LFINF(MUR+CBH)+CDL+DUL/H:3/RES",
                "MUR+CB99/LWAL+CDN/H:2/RES",
                "MUR+CLBRS/LWAL+DNO/H:1/MIX2",
                "CR/LFINF(MUR+CL)+CDM+DUM/HBET:7-9/COM",
                "CR/LFINF(MUR+CL)+CDL+DUM/HBET:10+/IND",
                "UNK+CDL+DUL/H:UNK/RES",
            ]
        )
    )
    assert parsed["material_group"].tolist() == [
        "RC",
        "MUR_CBH",
        "MUR_BRICK",
        "RC",
        "RC",
        None,
    ]
    assert parsed["code"].tolist() == ["CDL", "CDN", "CDN", "CDM", "CDL", "CDL"]
    assert parsed["ductile"].tolist() == [False, False, False, True, True, False]
    assert parsed["storeys_min"].tolist() == [3, 2, 1, 7, 10, 0]
    assert parsed["storeys_max"].tolist() == [3, 2, 1, 9, 12, 0]
    assert parsed["occupancy"].tolist() == ["RES", "RES", "MIX", "COM", "IND", "RES"]


def test_real_tables_are_read_per_province(real_gem: Path) -> None:
    exposure = load_exposure(real_gem)
    assert exposure.source == str(real_gem.resolve())
    for province in ("TR-27", "TR-46", "TR-80"):
        stock = exposure.province(province)
        assert len(stock) > 100
        assert (stock["area"] > 0).all()
        assert stock["material_group"].notna().all()
        assert (stock["storeys_min"] >= 1).all()
    # Gaziantep's stock is dominated by hollow-block masonry and RC (GEM 2023).
    stock = exposure.province("TR-27")
    share = (
        stock.groupby("material_group")["buildings"].sum() / stock["buildings"].sum()
    )
    assert share["MUR_CBH"] > 0.4
    assert share["RC"] > 0.3


def test_fallback_table_is_the_documented_summary(real_gem: Path) -> None:
    assert tuple(summarise_exposure(real_gem, 0.9)) == FALLBACK_ROWS


def test_builtin_fallback_and_errors(tmp_path: Path) -> None:
    builtin = load_exposure("builtin")
    assert builtin.source == "builtin"
    assert set(builtin.frame["province_id"]) == {"TR-27", "TR-46", "TR-80"}
    with pytest.raises(FileNotFoundError, match="builtin"):
        load_exposure(tmp_path / "missing")
    (tmp_path / "Exposure_Res_Turkey_Adm1.csv").write_text("a,b\n1,2\n")
    with pytest.raises(FileNotFoundError, match=r"Exposure_Com_Turkey_Adm1\.csv"):
        load_exposure(tmp_path)


def test_city_character_shapes_the_mix() -> None:
    exposure = load_exposure("builtin")
    stock = exposure.province("TR-46")
    turkoglu = city_mix(stock, get_city("turkoglu"))
    kahramanmaras = city_mix(stock, get_city("kahramanmaras"))
    brick = (stock["material_group"] == "MUR_BRICK").to_numpy()
    rc = (stock["material_group"] == "RC").to_numpy()
    assert turkoglu[brick].sum() > 3 * kahramanmaras[brick].sum()
    assert kahramanmaras[rc].sum() > 0.8
    mid = 0.5 * (stock["storeys_min"] + stock["storeys_max"]).to_numpy()
    assert (kahramanmaras * mid).sum() > (turkoglu * mid).sum() + 1.0


def test_neighbourhood_assets_follow_the_contract() -> None:
    exposure = load_exposure("builtin")
    city = get_city("osmaniye")
    stock = exposure.province(city.province_id)
    rng = np.random.default_rng(0)
    grid = build_neighbourhoods(stock, city, 1000.0, 400.0, rng)
    assert np.allclose(grid.mix.sum(axis=1), 1.0)
    # Osmaniye's neighbourhoods are either old or new.
    assert np.mean(np.abs(grid.modernity) > 0.8) > 0.6
    x = rng.uniform(-500, 500, 200)
    y = rng.uniform(-500, 500, 200)
    assets = gem_assets(grid, city, x, y, (300000.0, 4100000.0), rng)
    assert list(assets.columns) == [
        "id",
        "lon",
        "lat",
        "taxonomy",
        "number",
        "area",
        "structural",
        "nonstructural",
        "contents",
        "day",
        "night",
        "transit",
        "period",
        "ID_1",
        "NAME_1",
    ]
    assert assets["id"].is_unique
    assert assets["period"].isin(PERIODS).all()
    assert (assets["ID_1"] == "TR-80").all()
    assert assets["number"].sum() == pytest.approx(200.0, rel=0.01)
    assert assets.groupby(["lon", "lat"]).ngroups > 1
    assert (assets["structural"] > 0).all()
