"""Files written by simulate_scene: formats, counts, determinism, re-runs."""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
import rasterio.features
import rasterio.transform
from rasterio.windows import Window

from torchgeo_quake.simulation import (
    CITY_FILES,
    SCENE_FILE,
    get_city,
    scaled_counts,
    simulate_scene,
)
from torchgeo_quake.simulation.scene import file_sha256
from torchgeo_quake.simulation.scene_record import OPTIONAL_CITY_FILES
from torchgeo_quake.simulation.vectors import DESTROYED_PROPERTIES

SCALE = 0.1
#: Files of a city of the calibrated default: the six of every scenario and the
#: ground-motion layer.
WRITTEN = (*CITY_FILES, *OPTIONAL_CITY_FILES)
CITIES = ("nurdagi", "osmaniye")
HOTOSM = (
    Path(__file__).resolve().parents[2].parent
    / "shared"
    / "data"
    / "hotosm"
    / "hotosm_tur_destroyed_buildings_polygons.geojson"
)


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, object]]:
    root = tmp_path_factory.mktemp("scene")
    summary = simulate_scene(root, cities=CITIES, scale=SCALE, seed=0)
    return root, summary


def test_layout_of_the_root(scene: tuple[Path, dict[str, object]]) -> None:
    root, summary = scene
    assert sorted(p.name for p in root.iterdir()) == [*sorted(CITIES), SCENE_FILE]
    for city in CITIES:
        files = sorted(p.name for p in (root / city).iterdir())
        assert files == sorted(WRITTEN)
    stored = json.loads((root / SCENE_FILE).read_text(encoding="utf-8"))
    assert stored == summary
    assert stored["simulated"] is True
    assert stored["seed"] == 0 and stored["scale"] == SCALE
    assert list(stored["cities"]) == list(CITIES)


def test_sar_file(scene: tuple[Path, dict[str, object]]) -> None:
    root, _ = scene
    for slug in CITIES:
        city = get_city(slug)
        with rasterio.open(root / slug / "sar.tif") as src:
            assert src.crs.to_epsg() == 32637
            assert src.res == (2.5, 2.5)
            assert src.dtypes == ("float32",)
            assert src.nodata == 0
            assert src.profile["tiled"] and src.profile["compress"] == "deflate"
            tags = src.tags()
            amplitude = src.read(1)
        assert tags["SIMULATED"] == "TRUE"
        assert tags["POLARIZATION"] == "HH"
        assert tags["ACQUISITION_MODE"] == "HIMAGE"
        assert tags["LOOK_SIDE"] == "RIGHT"
        assert tags["ORBIT_DIRECTION"] == city.orbit
        assert tags["ACQUISITION_DATE"] == city.acquisition_date
        assert 25.0 <= float(tags["INCIDENCE_ANGLE"]) <= 45.0
        assert tags["MISSION"].startswith("CSK")
        assert np.isfinite(amplitude).all() and (amplitude >= 0).all()
        assert 0.0 < (amplitude == 0).mean() < 0.3  # a nodata wedge, not more


def test_dsm_file(scene: tuple[Path, dict[str, object]]) -> None:
    root, _ = scene
    with rasterio.open(root / "nurdagi" / "sar.tif") as src:
        sar_bounds = src.bounds
    with rasterio.open(root / "nurdagi" / "dsm.tif") as src:
        assert src.crs.to_epsg() == 32637
        assert src.res == (5.0, 5.0)
        assert src.dtypes == ("float32",)
        dsm = src.read(1)
        bounds = src.bounds
    assert bounds.left < sar_bounds.left and bounds.top > sar_bounds.top
    assert dsm.min() > 550.0 and dsm.max() < 750.0  # Nurdağı lies at ~640 m
    truth = pd.read_csv(root / "nurdagi" / "truth.csv")
    # Buildings stand out of the DSM by roughly their (pre-event) height.
    with rasterio.open(root / "nurdagi" / "dsm.tif") as src:
        rows, cols = rasterio.transform.rowcol(
            src.transform, truth["x_utm"].to_numpy(), truth["y_utm"].to_numpy()
        )
    rows, cols = np.asarray(rows), np.asarray(cols)
    on_roofs = dsm[rows, cols]
    around = np.array(
        [
            np.percentile(dsm[max(r - 8, 0) : r + 8, max(c - 8, 0) : c + 8], 10)
            for r, c in zip(rows, cols, strict=True)
        ]
    )
    relief = on_roofs - around
    assert np.corrcoef(relief, truth["height_m"])[0, 1] > 0.3
    # Collapsed buildings are still standing in the pre-event DSM.
    collapsed = truth["damage_grade"] == 2
    assert relief[collapsed].mean() > 1.0


def _reject_constant(name: str) -> None:
    raise AssertionError(f"{name} is not valid JSON")


def test_vector_files(scene: tuple[Path, dict[str, object]]) -> None:
    root, _ = scene
    ids = []
    for slug in CITIES:
        buildings = gpd.read_file(root / slug / "buildings.gpkg")
        assert buildings.crs.to_epsg() == 4326
        assert list(buildings.columns) == [
            "osm_id",
            "building",
            "building:levels",
            "name",
            "addr:city",
            "source",
            "geometry",
        ]
        assert buildings["osm_id"].dtype == np.int64
        assert (buildings.geom_type == "Polygon").all()
        assert buildings.is_valid.all()
        assert (buildings["building"] == "yes").mean() > 0.4
        ids.append(buildings["osm_id"].to_numpy())

        # Strict JSON (no NaN literals), as the real HOTOSM export: GDAL, QGIS
        # and browsers reject NaN.
        text = (root / slug / "destroyed.geojson").read_text(encoding="utf-8")
        json.loads(text, parse_constant=_reject_constant)
        destroyed = gpd.read_file(root / slug / "destroyed.geojson")
        assert destroyed.crs.to_epsg() == 4326
        assert tuple(destroyed.columns[:-1]) == DESTROYED_PROPERTIES
        assert (destroyed["destroyed_building"] == "yes").all()
        assert (destroyed["damage_type"] == "earthquake").all()
        assert destroyed["osm_id"].isin(buildings["osm_id"]).all()

        truth = pd.read_csv(root / slug / "truth.csv")
        assert set(truth["osm_id"]) == set(buildings["osm_id"])
        listed = truth.set_index("osm_id").loc[destroyed["osm_id"]]
        assert (listed["damage_grade"] == 2).all()
        missed = (truth["damage_grade"] == 2) & ~truth["in_reference"]
        assert missed.sum() >= 1  # reference false negatives

        gem = pd.read_csv(root / slug / "gem.csv")
        assert list(gem.columns) == [
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
        assert gem["taxonomy"].str.match(r"^[A-Z+]+(/[^/]+)*/H(BET)?:").all()
        assert gem["period"].str.match(r"^\d{4}-\d{4}$").all()
        # Each building's own taxonomy is one of its neighbourhood's mix.
        assert truth["taxonomy"].isin(gem["taxonomy"]).mean() > 0.9
    all_ids = np.concatenate(ids)
    assert np.unique(all_ids).size == all_ids.size


def test_destroyed_schema_matches_hotosm() -> None:
    if not HOTOSM.is_file():
        pytest.skip(f"HOTOSM destroyed layer not found at {HOTOSM}")
    real = gpd.read_file(HOTOSM, rows=5)
    assert tuple(real.columns[:-1]) == DESTROYED_PROPERTIES


def _sample_counts(folder: Path) -> tuple[int, int]:
    """Intact / damaged buildings whose 32 x 32 window lies in valid SAR.

    Mirrors the paper's extraction independently of the package: the window is
    centred on the footprint centroid (UTM) and snapped to the pixel grid.
    """
    buildings = gpd.read_file(folder / "buildings.gpkg").to_crs(32637)
    destroyed = set(gpd.read_file(folder / "destroyed.geojson")["osm_id"])
    intact = damaged = 0
    with rasterio.open(folder / "sar.tif") as src:
        left, top = src.transform.c, src.transform.f
        for osm_id, centroid in zip(
            buildings["osm_id"], buildings.geometry.centroid, strict=True
        ):
            col = round((centroid.x - left) / 2.5 - 16)
            row = round((top - centroid.y) / 2.5 - 16)
            if col < 0 or row < 0 or col + 32 > src.width or row + 32 > src.height:
                continue
            patch = src.read(1, window=Window(col, row, 32, 32))
            if (patch == 0).any():
                continue
            if osm_id in destroyed:
                damaged += 1
            else:
                intact += 1
    return intact, damaged


def test_scaled_table_ii_counts(scene: tuple[Path, dict[str, object]]) -> None:
    root, summary = scene
    for slug in CITIES:
        expected = scaled_counts(get_city(slug), SCALE)
        assert _sample_counts(root / slug) == expected
        city = summary["cities"][slug]  # type: ignore[index]
        assert (city["intact_reference"], city["damaged_reference"]) == expected
        buildings = gpd.read_file(root / slug / "buildings.gpkg")
        outside = len(buildings) - sum(expected)
        assert outside == max(1, round(0.02 * sum(expected)))


def test_intact_and_collapsed_signatures(tmp_path: Path) -> None:
    """Double-bounce line brighter and shadow darker for intact buildings.

    Measured on the v0.1 scenario, whose image is registered exactly with the
    footprints; the calibrated image's weaker, shifted signatures are measured
    in ``test_sim_sar_formation.py``.
    """
    simulate_scene(tmp_path, cities=["nurdagi"], scale=SCALE, scenario="v0.1")
    folder = tmp_path / "nurdagi"
    with rasterio.open(folder / "sar.tif") as src:
        intensity = src.read(1).astype(float) ** 2
        transform, tags = src.transform, src.tags()
    buildings = gpd.read_file(folder / "buildings.gpkg").to_crs(32637)
    truth = pd.read_csv(folder / "truth.csv").set_index("osm_id")
    truth = truth.loc[buildings["osm_id"]]
    ids = rasterio.features.rasterize(
        zip(buildings.geometry, np.arange(len(buildings)) + 1, strict=True),
        out_shape=intensity.shape,
        transform=transform,
        dtype="int32",
    )
    if tags["SENSOR_SIDE"] == "EAST":  # put the sensor on the left
        intensity, ids = intensity[:, ::-1], ids[:, ::-1]
    n = len(buildings)
    tan = math.tan(math.radians(float(tags["INCIDENCE_ANGLE"])))
    line = np.zeros(n)
    line_n = np.zeros(n)
    shadow = np.zeros(n)
    shadow_n = np.zeros(n)
    # Wall foot on the sensor side: first footprint pixel and the one before.
    r, c = np.nonzero((ids[:, 1:] > 0) & (ids[:, 1:] != ids[:, :-1]))
    c = c + 1
    for offset in (0, -1):
        np.add.at(line, ids[r, c] - 1, intensity[r, c + offset])
        np.add.at(line_n, ids[r, c] - 1, 1)
    # Shadow: h * tan(theta) of ground behind the far wall.
    r, c = np.nonzero((ids[:, :-1] > 0) & (ids[:, :-1] != ids[:, 1:]))
    b = ids[r, c] - 1
    reach = np.round(truth["height_m"].to_numpy()[b] * tan / 2.5).astype(int)
    for step in range(1, reach.max() + 1):
        on = (step <= reach) & (c + step < ids.shape[1])
        on[on] &= ids[r[on], c[on] + step] == 0
        np.add.at(shadow, b[on], intensity[r[on], c[on] + step])
        np.add.at(shadow_n, b[on], 1)
    grade = truth["damage_grade"].to_numpy()
    usable = truth["in_sar"].to_numpy() & (line_n > 0) & (shadow_n > 0)
    line_db = 10 * np.log10(line[usable] / line_n[usable])
    shadow_db = 10 * np.log10(shadow[usable] / shadow_n[usable])
    intact, collapsed = grade[usable] == 0, grade[usable] == 2
    assert intact.sum() > 100 and collapsed.sum() > 20
    assert np.median(line_db[intact]) > np.median(line_db[collapsed]) + 1.5
    assert np.median(shadow_db[intact]) < np.median(shadow_db[collapsed]) - 1.5


def test_rerun_is_a_noop(scene: tuple[Path, dict[str, object]]) -> None:
    root, summary = scene
    before = {p: p.stat().st_mtime_ns for p in root.rglob("*")}
    again = simulate_scene(root, cities=list(reversed(CITIES)), scale=SCALE, seed=0)
    assert again == summary
    assert {p: p.stat().st_mtime_ns for p in root.rglob("*")} == before


def test_different_parameters_are_refused(
    scene: tuple[Path, dict[str, object]],
) -> None:
    root, _ = scene
    with pytest.raises(FileExistsError, match="overwrite"):
        simulate_scene(root, cities=CITIES, scale=SCALE, seed=1)
    with pytest.raises(FileExistsError, match=r"scene\.json"):
        simulate_scene(root, cities=["turkoglu"], scale=0.05, seed=0)
    assert not (root / "turkoglu").exists()
    assert not [p for p in root.iterdir() if p.name.startswith(".")]


def _snapshot(root: Path) -> dict[Path, tuple[int, bytes]]:
    """Modification time and content of every file under *root*."""
    return {
        p: (p.stat().st_mtime_ns, p.read_bytes())
        for p in root.rglob("*")
        if p.is_file()
    }


@pytest.fixture
def small(tmp_path: Path) -> Path:
    """A fresh two-city scene (scale 0.05) that a test may damage."""
    root = tmp_path / "small"
    simulate_scene(root, cities=["osmaniye", "turkoglu"], scale=0.05, seed=0)
    return root


def test_rerun_completes_only_the_incomplete_city(small: Path) -> None:
    summary = json.loads((small / SCENE_FILE).read_text(encoding="utf-8"))
    hashes = summary["cities"]["turkoglu"]["sha256"]
    assert sorted(hashes) == sorted(WRITTEN)
    # A user file in a complete city and a replaced SAR image: never touched.
    (small / "osmaniye" / "notes.txt").write_text("mine")
    (small / "osmaniye" / "sar.tif").write_bytes(b"REAL SAR")
    truth = (small / "turkoglu" / "truth.csv").read_bytes()
    (small / "turkoglu" / "truth.csv").unlink()
    before = _snapshot(small / "osmaniye")
    again = simulate_scene(small, cities=["osmaniye", "turkoglu"], scale=0.05, seed=0)
    assert _snapshot(small / "osmaniye") == before
    assert (small / "turkoglu" / "truth.csv").read_bytes() == truth
    assert again["cities"]["osmaniye"] == summary["cities"]["osmaniye"]
    assert sorted(p.name for p in (small / "turkoglu").iterdir()) == sorted(WRITTEN)
    assert not [p for p in small.iterdir() if p.name.startswith(".")]


def _write_plain_geotiff(path: Path) -> None:
    """A valid GeoTIFF without the simulator's tags (as real data would be)."""
    profile = {"driver": "GTiff", "width": 4, "height": 4, "count": 1}
    transform = rasterio.transform.from_origin(500000.0, 4100000.0, 2.5, 2.5)
    with rasterio.open(
        path, "w", dtype="float32", crs="EPSG:32637", transform=transform, **profile
    ) as dst:
        dst.write(np.ones((1, 4, 4), dtype="float32"))


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        ("user_file", r"holds 'my_real_sar\.tif', which the simulator does not write"),
        ("folder", r"holds 'extra', which the simulator does not write"),
        ("real_sar", r"sar\.tif' is not tagged SIMULATED=TRUE"),
        ("junk_sar", r"sar\.tif' is not tagged SIMULATED=TRUE"),
        ("edited", r"gem\.csv' differs from the file the simulator wrote"),
    ],
)
def test_incomplete_city_with_user_data_is_refused(
    small: Path, damage: str, message: str
) -> None:
    folder = small / "osmaniye"
    (folder / "truth.csv").unlink()
    if damage == "user_file":
        (folder / "my_real_sar.tif").write_bytes(b"REAL")
    elif damage == "folder":
        (folder / "extra").mkdir()
    elif damage == "real_sar":
        (folder / "sar.tif").unlink()
        _write_plain_geotiff(folder / "sar.tif")
    elif damage == "junk_sar":
        (folder / "sar.tif").write_bytes(b"REAL SAR replaced by the user")
    else:
        with open(folder / "gem.csv", "a", encoding="utf-8") as f:
            f.write("\n")
    before = _snapshot(small)
    with pytest.raises(FileExistsError, match=message):
        simulate_scene(small, cities=["osmaniye"], scale=0.05, seed=0)
    assert _snapshot(small) == before
    assert not [p for p in small.iterdir() if p.name.startswith(".")]
    # The fix the message names works; what the simulator does not write stays.
    user = {"user_file": ["my_real_sar.tif"], "folder": ["extra"]}.get(damage, [])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        simulate_scene(small, cities=["osmaniye"], scale=0.05, seed=0, overwrite=True)
    assert sorted(p.name for p in folder.iterdir()) == sorted([*WRITTEN, *user])
    kept = [str(w.message) for w in caught if "kept" in str(w.message)]
    assert len(kept) == len(user[:1])
    if damage == "user_file":
        assert (folder / "my_real_sar.tif").read_bytes() == b"REAL"


def test_overwrite_replaces_only_simulator_files(small: Path) -> None:
    folder = small / "osmaniye"
    summary = json.loads((small / SCENE_FILE).read_text(encoding="utf-8"))
    (folder / "notes.txt").write_text("mine")
    (folder / "labels").mkdir()
    (folder / "labels" / "extra.geojson").write_text("{}")
    (folder / ".hidden").write_text("also mine")
    (folder / "gem.csv").write_text("edited by the user")
    (folder / "dsm.tif").unlink()
    (small / "turkoglu" / "notes.txt").write_text("not asked for")
    turkoglu = _snapshot(small / "turkoglu")
    with pytest.warns(UserWarning, match="kept 3 entries") as record:
        again = simulate_scene(
            small, cities=["osmaniye"], scale=0.05, seed=0, overwrite=True
        )
    messages = [str(w.message) for w in record if "kept" in str(w.message)]
    assert messages == [
        f"simulate_scene: kept 3 entries of {str(folder)!r} that the simulator does "
        "not write: .hidden, labels, notes.txt (only "
        f"{', '.join(WRITTEN)} were replaced)."
    ]
    assert (folder / "notes.txt").read_text() == "mine"
    assert (folder / "labels" / "extra.geojson").read_text() == "{}"
    assert (folder / ".hidden").read_text() == "also mine"
    # The simulator's own files are written again, as before.
    hashes = again["cities"]["osmaniye"]["sha256"]
    for name in WRITTEN:
        assert file_sha256(folder / name) == hashes[name]
    for name in ("gem.csv", "dsm.tif"):  # deterministic (a GeoPackage is not)
        assert hashes[name] == summary["cities"]["osmaniye"]["sha256"][name]
    assert _snapshot(small / "turkoglu") == turkoglu  # not requested: untouched
    assert not [p for p in small.iterdir() if p.name.startswith(".")]


def test_incomplete_city_without_recorded_hashes(small: Path) -> None:
    """Scenes written before hashes were recorded: the SAR tag still protects."""
    path = small / SCENE_FILE
    summary = json.loads(path.read_text(encoding="utf-8"))
    for city in summary["cities"].values():
        del city["sha256"]
    path.write_text(json.dumps(summary), encoding="utf-8")
    (small / "osmaniye" / "dsm.tif").unlink()
    simulate_scene(small, cities=["osmaniye"], scale=0.05, seed=0)
    assert (small / "osmaniye" / "dsm.tif").is_file()
    (small / "turkoglu" / "dsm.tif").unlink()
    (small / "turkoglu" / "sar.tif").write_bytes(b"real")
    with pytest.raises(FileExistsError, match="not tagged SIMULATED=TRUE"):
        simulate_scene(small, cities=["turkoglu"], scale=0.05, seed=0)


def test_cities_are_added_to_a_compatible_scene(small: Path) -> None:
    before = _snapshot(small)
    summary = simulate_scene(small, cities=["nurdagi"], scale=0.05, seed=0)
    assert summary["parameters"]["cities"] == ["nurdagi", "osmaniye", "turkoglu"]
    assert list(summary["cities"]) == ["nurdagi", "osmaniye", "turkoglu"]
    stored = json.loads((small / SCENE_FILE).read_text(encoding="utf-8"))
    assert stored == summary
    after = _snapshot(small)
    assert {p: after[p] for p in before if p.name != SCENE_FILE} == {
        p: v for p, v in before.items() if p.name != SCENE_FILE
    }
    assert sorted(p.name for p in (small / "nurdagi").iterdir()) == sorted(WRITTEN)
    # Asking for a subset of the scene is a no-op.
    assert simulate_scene(small, cities=["osmaniye"], scale=0.05, seed=0) == summary


def test_unlisted_city_folder_is_refused(small: Path) -> None:
    (small / "nurdagi").mkdir()
    (small / "nurdagi" / "sar.tif").write_bytes(b"real data")
    with pytest.raises(FileExistsError, match=r"nurdagi.*does not list this city"):
        simulate_scene(small, cities=["nurdagi"], scale=0.05, seed=0)
    assert (small / "nurdagi" / "sar.tif").read_bytes() == b"real data"


def test_real_data_is_protected(tmp_path: Path) -> None:
    folder = tmp_path / "osmaniye"
    folder.mkdir()
    (folder / "sar.tif").write_bytes(b"real data")
    with pytest.raises(FileExistsError, match=r"osmaniye.*not marked as simulated"):
        simulate_scene(tmp_path, cities=["osmaniye"], scale=0.05)
    assert (folder / "sar.tif").read_bytes() == b"real data"
    summary = simulate_scene(tmp_path, cities=["osmaniye"], scale=0.05, overwrite=True)
    assert summary["cities"]["osmaniye"]["damaged_reference"] == 1
    assert sorted(p.name for p in folder.iterdir()) == sorted(WRITTEN)


def test_determinism_and_seed(
    scene: tuple[Path, dict[str, object]], tmp_path: Path
) -> None:
    root, _ = scene
    simulate_scene(tmp_path / "same", cities=["osmaniye"], scale=SCALE, seed=0)
    simulate_scene(tmp_path / "other", cities=["osmaniye"], scale=SCALE, seed=5)
    for name in ("sar.tif", "dsm.tif"):
        with rasterio.open(root / "osmaniye" / name) as a:
            first = a.read(1)
        with rasterio.open(tmp_path / "same" / "osmaniye" / name) as b:
            assert np.array_equal(first, b.read(1))
    for name in ("destroyed.geojson", "gem.csv", "truth.csv"):
        reference = (root / "osmaniye" / name).read_bytes()
        assert reference == (tmp_path / "same" / "osmaniye" / name).read_bytes()
        assert reference != (tmp_path / "other" / "osmaniye" / name).read_bytes()
    a = gpd.read_file(root / "osmaniye" / "buildings.gpkg")
    b = gpd.read_file(tmp_path / "same" / "osmaniye" / "buildings.gpkg")
    pd.testing.assert_frame_equal(a, b)


def test_failed_run_leaves_root_untouched(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from torchgeo_quake.simulation import city_files as scene_module

    def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(scene_module, "write_truth", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        simulate_scene(tmp_path, cities=["osmaniye"], scale=0.05)
    assert list(tmp_path.iterdir()) == []


def test_progress_bar_per_city(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    simulate_scene(tmp_path, cities=["nurdagi"], scale=0.02, seed=0, progress=True)
    err = capsys.readouterr().err
    assert "simulate" in err and "1/1" in err and "nurdagi" in err
    simulate_scene(tmp_path / "quiet", cities=["nurdagi"], scale=0.02, seed=0)
    assert capsys.readouterr().err == ""  # not a terminal: no bar
