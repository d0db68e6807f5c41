"""Damage mapping of a small simulated city, end to end, and its bad inputs."""

from __future__ import annotations

import contextlib
import copy
import io
import json
import re
import shutil
import sqlite3
import subprocess
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pytest
import shapely
import torch
from torchgeo.datasets import stack_samples

from torchgeo_quake.cli import main
from torchgeo_quake.datasets import KahramanmarasDamage
from torchgeo_quake.mapping import (
    OUTPUT_FILES,
    fold_batch_norms,
    load_damage_model,
    map_damage,
    spatial_order,
)
from torchgeo_quake.trainers import DamageDetectionTask

CITY = "nurdagi"  # the city of the conftest scene
ALL = ["sar", "footprint", "dsm", "gem"]


@pytest.fixture(scope="module")
def full_map(
    city: Path, checkpoints: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, int, str]:
    """The CLI run with every input, shared by the checks below."""
    out = tmp_path_factory.mktemp("full") / "map"
    argv = [
        "map",
        "--sar",
        str(city / "sar.tif"),
        "--dsm",
        str(city / "dsm.tif"),
        "--exposure",
        str(city / "gem.csv"),
        "--footprints",
        str(city / "buildings.gpkg"),
        "--checkpoint",
        str(checkpoints["all"]),
        "--out",
        str(out),
        "--batch-size",
        "32",
        "--cell-size",
        "200",
        "--no-progress",
    ]
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        status = main(argv)
    return out, status, buffer.getvalue()


# ----------------------------------------------------------------- end to end
def test_cli_writes_every_output(
    full_map: tuple[Path, int, str],
    city: Path,
    leftovers: Callable[[Path], list[str]],
) -> None:
    out, status, printed = full_map
    assert status == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(OUTPUT_FILES)
    n = len(gpd.read_file(city / "buildings.gpkg"))
    assert f"{n} footprints:" in printed
    assert re.search(r"\d+ predicted \(\d+ damaged", printed)
    assert "skipped, outside the SAR image" in printed
    # The input-shift check is reported once, in the final report.
    summary = json.loads((out / "summary.json").read_text())
    assert summary["shift"]["checked"] and not summary["shift"]["warnings"]
    assert printed.count("inputs within the") == 1, printed
    assert (out / "overview.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert leftovers(out.parent) == []


def test_every_footprint_once_with_the_right_crs(
    full_map: tuple[Path, int, str], city: Path
) -> None:
    out = full_map[0]
    source = gpd.read_file(city / "buildings.gpkg")
    mapped = gpd.read_file(out / "damage.gpkg", layer="damage")
    assert mapped.crs == source.crs
    assert len(mapped) == len(source)
    assert sorted(mapped["feature"]) == list(range(len(source)))
    assert sorted(mapped["osm_id"]) == sorted(source["osm_id"])
    # The geometries are the input ones.
    back = mapped.sort_values("feature").reset_index(drop=True)
    assert back.geometry.geom_equals_exact(source.geometry, tolerance=1e-9).all()
    predicted = back["status"] == "predicted"
    assert set(back["status"]) <= {"predicted", "skipped"}
    assert back.loc[predicted, "reason"].isna().all()
    assert back.loc[~predicted, "reason"].notna().all()
    probs = back.loc[predicted, "damage_probability"]
    assert probs.between(0, 1).all()
    assert back.loc[~predicted, "damage_probability"].isna().all()
    assert back.loc[~predicted, "damaged"].isna().all()
    summary = json.loads((out / "summary.json").read_text())
    threshold = summary["model"]["threshold"]
    expected = (probs.to_numpy(np.float32) >= np.float32(threshold)).astype(int)
    # Probabilities are rounded to 6 decimals in the file.
    close = np.abs(probs.to_numpy() - threshold) < 1e-6
    assert (back.loc[predicted, "damaged"].to_numpy()[~close] == expected[~close]).all()
    for column in ("occupants_day", "occupants_night", "replacement_cost_usd"):
        assert (back[column] >= 0).all()
    geojson = gpd.read_file(out / "damage.geojson")
    assert geojson.crs.to_epsg() == 4326
    assert len(geojson) == len(source)
    assert sorted(geojson["feature"]) == list(range(len(source)))


def test_counts_match_the_data_layer(
    full_map: tuple[Path, int, str], scene: Path, checkpoints: dict[str, Path]
) -> None:
    """Same buildings, skips and probabilities as the training data path."""
    out = full_map[0]
    mapped = gpd.read_file(out / "damage.gpkg", layer="damage")
    summary = json.loads((out / "summary.json").read_text())
    dataset = KahramanmarasDamage(
        scene, cities=[CITY], simulate=False, negatives_per_positive=None, cache=False
    )
    counts = summary["counts"]
    assert counts["footprints"] == len(mapped)
    assert counts["predicted"] == len(dataset)
    assert counts["skipped"] == len(dataset.skipped)
    assert (
        counts["skipped_by_reason"]
        == dataset.skipped["reason"].value_counts().to_dict()
    )
    assert counts["predicted"] + counts["skipped"] == counts["footprints"]
    assert counts["damaged"] + counts["intact"] == counts["predicted"]
    assert counts["damaged"] == int((mapped["damaged"] == 1).sum())
    predicted = mapped[mapped["status"] == "predicted"].set_index("osm_id")
    assert set(predicted.index) == set(dataset.building_ids.tolist())
    # The model's probabilities on the training pipeline's samples.
    task = DamageDetectionTask.load_from_checkpoint(checkpoints["all"]).eval()
    batch = stack_samples([dataset[i] for i in range(len(dataset))])
    with torch.inference_mode():
        probs = task.predict_step(batch, 0)["prob"].numpy()
    mine = predicted.loc[dataset.building_ids, "damage_probability"].to_numpy()
    np.testing.assert_allclose(mine, probs, atol=2e-6)
    # Per-unit totals add up, exposure totals are present.
    table = pd.DataFrame(summary["units"]["table"])
    assert summary["units"]["kind"] == "grid"
    assert table["buildings"].sum() == counts["footprints"]
    assert table["damaged"].sum() == counts["damaged"]
    exposure = summary["exposure"]
    assert (
        exposure["occupants_night_in_damaged"]
        <= exposure["occupants_night_in_predicted"]
    )
    assert exposure["replacement_cost_usd_in_predicted"] > 0


def test_html_map_is_self_contained(full_map: tuple[Path, int, str]) -> None:
    page = (full_map[0] / "map.html").read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>")
    assert not re.search(r"https?://", page)
    assert not re.search(r"""(src|href)\s*=\s*["']?(//|[a-z]+:)""", page)
    assert "<link" not in page and "@import" not in page
    assert "var DATA = {" in page
    if shutil.which("node"):  # the script at least parses
        script = page.split("<script>")[2].split("</script>")[0]
        check = subprocess.run(
            ["node", "--check", "-"], input=script, capture_output=True, text=True
        )
        assert check.returncode == 0, check.stderr


#: Columns of QGIS's own ``layer_styles`` table, in its order.
LAYER_STYLES = [
    "id",
    "f_table_catalog",
    "f_table_schema",
    "f_table_name",
    "f_geometry_column",
    "styleName",
    "styleQML",
    "styleSLD",
    "useAsDefault",
    "description",
    "owner",
    "ui",
    "update_time",
]


def test_geopackage_opens_styled_in_qgis(full_map: tuple[Path, int, str]) -> None:
    out = full_map[0]
    path = out / "damage.gpkg"
    assert {name for name, _ in pyogrio.list_layers(path)} == {
        "damage",
        "units",
        "layer_styles",
    }
    with contextlib.closing(sqlite3.connect(path)) as db:
        columns = [row[1] for row in db.execute("PRAGMA table_info(layer_styles)")]
        styles = db.execute(
            "SELECT f_table_name, f_geometry_column, useAsDefault, styleQML "
            "FROM layer_styles ORDER BY f_table_name"
        ).fetchall()
        geometry = dict(
            db.execute("SELECT table_name, column_name FROM gpkg_geometry_columns")
        )
        registered = dict(db.execute("SELECT table_name, data_type FROM gpkg_contents"))
    assert columns == LAYER_STYLES
    assert registered["layer_styles"] == "attributes"
    assert [row[0] for row in styles] == ["damage", "units"]
    renderers = {}
    for table, column, default, qml in styles:
        assert column == geometry[table] and default == 1
        root = ET.fromstring(qml.split("\n", 1)[1])
        renderers[table] = root.find("renderer-v2")
    damage = renderers["damage"]
    assert damage is not None and damage.get("type") == "RuleRenderer"
    filters = [rule.get("filter", "") for rule in damage.iter("rule")]
    assert any("skipped" in f for f in filters)
    assert sum('"damaged" = 1' in f for f in filters) == 2
    units = renderers["units"]
    assert units is not None and units.get("type") == "graduatedSymbol"
    assert units.get("attr") == "damaged_share"
    # The units: per-unit totals of summary.json, on polygons holding them.
    summary = json.loads((out / "summary.json").read_text())
    cells = gpd.read_file(path, layer="units")
    records = pd.DataFrame(summary["units"]["table"])
    assert sorted(cells["unit"]) == sorted(records["unit"])
    assert all(re.fullmatch(r"[A-Z]+[1-9][0-9]*", unit) for unit in cells["unit"])
    assert cells["buildings"].sum() == summary["counts"]["footprints"]
    assert cells["damaged"].sum() == summary["counts"]["damaged"]
    exposure = summary["exposure"]
    for column in ("occupants_night", "replacement_cost_usd"):
        total = cells[f"{column}_in_damaged"].sum()
        expected = exposure[f"{column}_in_damaged"]
        assert total == pytest.approx(expected, abs=0.01 * len(cells))
    page = (out / "map.html").read_text(encoding="utf-8")
    data = json.loads(page.split("var DATA = ", 1)[1].split(";</script>", 1)[0])
    assert data["units"] == sorted(cells["unit"])
    assert data["sar"]["png"].startswith("data:image/png;base64,")
    buildings = gpd.read_file(path, layer="damage").to_crs(cells.crs)
    located = buildings[buildings.geometry.notna()]
    polygon = dict(zip(cells["unit"], cells.geometry, strict=True))
    inside = [
        polygon[unit].contains(footprint.centroid)
        for unit, footprint in zip(located["unit"], located.geometry, strict=True)
    ]
    assert np.mean(inside) > 0.9


def test_basemap_is_opt_in(
    city: Path,
    checkpoints: dict[str, Path],
    tmp_path: Path,
    nothing_written: Callable[[Path], None],
) -> None:
    out = tmp_path / "basemap"
    url = "https://tile.example.org/{z}/{x}/{y}.png"
    map_damage(
        city / "sar.tif",
        city / "buildings.gpkg",
        checkpoints["sar_ftp"],
        out,
        basemap=url,
        basemap_attribution="© example",
    )
    page = (out / "map.html").read_text(encoding="utf-8")
    assert re.findall(r"https?://[^\"' ]+", page) == [url]
    with pytest.raises(ValueError, match=r"\{z\}"):
        map_damage(
            city / "sar.tif",
            city / "buildings.gpkg",
            checkpoints["sar_ftp"],
            tmp_path / "bad",
            basemap="https://tile.example.org/tiles.png",
        )
    nothing_written(tmp_path / "bad")


# ------------------------------------------------------------ odd footprints
def test_invalid_and_reprojected_footprints(
    city: Path, checkpoints: dict[str, Path], tmp_path: Path
) -> None:
    """A model without DSM/GEM runs without them; odd features are all listed."""
    source = gpd.read_file(city / "buildings.gpkg").to_crs(3857)
    inside = source.geometry.centroid.iloc[len(source) // 2]
    x, y = inside.x, inside.y
    extra = gpd.GeoDataFrame(
        {
            "osm_id": [1, 2, 3, source["osm_id"].iloc[0], None],
            "building": "yes",
        },
        geometry=[
            # invalid, repairable (a bow tie becomes two triangles)
            shapely.Polygon([(x, y), (x + 8, y + 8), (x + 8, y), (x, y + 8)]),
            # invalid, not repairable into a polygon (zero area)
            shapely.Polygon([(x, y), (x + 5, y + 5), (x + 10, y + 10), (x, y)]),
            None,
            source.geometry.iloc[0],  # duplicate id
            source.geometry.iloc[1],  # no id
        ],
        crs=3857,
    )
    frame = gpd.GeoDataFrame(pd.concat([source, extra], ignore_index=True), crs=3857)
    frame["osm_id"] = frame["osm_id"].astype("Int64")
    path = tmp_path / "odd.gpkg"
    frame.to_file(path)
    out = tmp_path / "out"
    result = map_damage(
        city / "sar.tif", path, checkpoints["sar_ftp"], out, cell_size=300
    )
    mapped = gpd.read_file(out / "damage.gpkg", layer="damage")
    assert mapped.crs.to_epsg() == 3857
    assert sorted(mapped["feature"]) == list(range(len(frame)))
    reason = mapped.set_index("feature")["reason"]
    status = mapped.set_index("feature")["status"]
    n = len(source)
    assert status[n] == "predicted"  # repaired bow tie
    assert reason[n + 1] == "invalid geometry that could not be repaired"
    assert reason[n + 2] == "missing geometry"
    assert reason[n + 3] == "duplicate osm_id"
    assert reason[n + 4] == "missing or non-numeric osm_id"
    assert mapped.set_index("feature")["osm_id"].isna()[n + 4]
    counts = result.counts
    assert counts["footprints"] == len(frame)
    assert sum(counts["skipped_by_reason"].values()) == counts["skipped"]
    assert result.summary["model"]["modalities"] == ["sar", "footprint"]
    assert result.summary["exposure"] is None
    assert "occupants_day" not in mapped.columns


# ---------------------------------------------------------- model selection
def test_model_with_dsm_needs_it_unless_fallback(
    city: Path,
    checkpoints: dict[str, Path],
    tmp_path: Path,
    nothing_written: Callable[[Path], None],
) -> None:
    out = tmp_path / "out"
    with pytest.raises(
        ValueError, match=r"cannot run without \['dsm'\].*--dsm.*--fallback-checkpoint"
    ):
        map_damage(
            city / "sar.tif",
            city / "buildings.gpkg",
            checkpoints["all"],
            out,
            exposure=city / "gem.csv",
        )
    nothing_written(out)
    result = map_damage(
        city / "sar.tif",
        city / "buildings.gpkg",
        checkpoints["all"],
        out,
        exposure=city / "gem.csv",
        fallback_checkpoint=checkpoints["sar_ftp"],
    )
    model = result.summary["model"]
    assert model["fallback"] is True
    assert model["modalities"] == ["sar", "footprint"]
    assert Path(model["checkpoint"]) == checkpoints["sar_ftp"]
    # GEM still gives the exposure totals.
    assert result.summary["exposure"]["occupants_night_in_predicted"] > 0
    assert "fallback" in result.report()


# ------------------------------------------------------------------ bad input
def test_footprints_not_overlapping(
    city: Path,
    checkpoints: dict[str, Path],
    tmp_path: Path,
    nothing_written: Callable[[Path], None],
) -> None:
    moved = gpd.read_file(city / "buildings.gpkg")
    moved["geometry"] = moved.geometry.translate(xoff=1.0)  # ~90 km east
    path = tmp_path / "elsewhere.gpkg"
    moved.to_file(path)
    out = tmp_path / "out"
    with pytest.raises(ValueError, match=r"do not overlap the SAR image.*CRS"):
        map_damage(city / "sar.tif", path, checkpoints["sar_ftp"], out)
    nothing_written(out)


def test_footprints_with_a_wrong_crs(
    city: Path,
    checkpoints: dict[str, Path],
    tmp_path: Path,
    nothing_written: Callable[[Path], None],
) -> None:
    utm = gpd.read_file(city / "buildings.gpkg").to_crs(32637)
    mislabelled = utm.set_crs(4326, allow_override=True)
    path = tmp_path / "mislabelled.gpkg"
    mislabelled.to_file(path)
    out = tmp_path / "out"
    with pytest.raises(ValueError, match=r"not longitudes and latitudes.*CRS is wrong"):
        map_damage(city / "sar.tif", path, checkpoints["sar_ftp"], out)
    nothing_written(out)


def test_checkpoint_that_is_not_ours(
    city: Path,
    checkpoints: dict[str, Path],
    tmp_path: Path,
    nothing_written: Callable[[Path], None],
) -> None:
    text = tmp_path / "notes.ckpt"
    text.write_text("not a checkpoint")
    hello = tmp_path / "hello.ckpt"
    hello.write_text("hello")  # a pickle opcode that torch.load trips on
    other = tmp_path / "other.ckpt"
    torch.save(
        {"state_dict": {"w": torch.zeros(2)}, "hyper_parameters": {"lr": 1}}, other
    )
    bare = tmp_path / "bare.pt"
    torch.save(torch.nn.Linear(2, 2).state_dict(), bare)
    out = tmp_path / "out"
    for path in (text, hello, other, bare):
        with pytest.raises(
            ValueError, match="not a torchgeo_quake damage-model checkpoint"
        ):
            map_damage(city / "sar.tif", city / "buildings.gpkg", path, out)
        nothing_written(out)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_damage_model(tmp_path / "missing.ckpt")


def test_exposure_with_another_schema(
    city: Path,
    checkpoints: dict[str, Path],
    tmp_path: Path,
    nothing_written: Callable[[Path], None],
) -> None:
    csv = tmp_path / "people.csv"
    csv.write_text("name,age,city\nada,36,london\n")
    out = tmp_path / "out"
    with pytest.raises(ValueError, match=r"exposure file .*people\.csv"):
        map_damage(
            city / "sar.tif",
            city / "buildings.gpkg",
            checkpoints["sar_ftp"],
            out,
            exposure=csv,
        )
    nothing_written(out)


def test_no_overwrite_without_asking(
    city: Path,
    checkpoints: dict[str, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    leftovers: Callable[[Path], list[str]],
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    argv = [
        "map",
        "--sar",
        str(city / "sar.tif"),
        "--footprints",
        str(city / "buildings.gpkg"),
        "--checkpoint",
        str(checkpoints["sar_ftp"]),
        "--out",
        str(out),
        "--quiet",
    ]
    assert main(argv) == 0  # an existing folder without results is fine
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    capsys.readouterr()
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "already holds results" in err and "--overwrite" in err
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == before
    assert main([*argv, "--overwrite"]) == 0
    assert (out / "notes.txt").read_text() == "mine"
    assert leftovers(tmp_path) == []


def test_error_while_writing_leaves_nothing(
    city: Path,
    checkpoints: dict[str, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    leftovers: Callable[[Path], list[str]],
) -> None:
    import torchgeo_quake.mapping.html as html

    def broken(*args: Any, **kwargs: Any) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(html.HTMLMapWriter, "_write_page", broken)
    out = tmp_path / "deep" / "out"
    with pytest.raises(OSError, match="disk full"):
        map_damage(
            city / "sar.tif", city / "buildings.gpkg", checkpoints["sar_ftp"], out
        )
    assert not (tmp_path / "deep").exists()
    assert leftovers(tmp_path) == []


def test_missing_inputs(
    city: Path,
    checkpoints: dict[str, Path],
    tmp_path: Path,
    nothing_written: Callable[[Path], None],
) -> None:
    out = tmp_path / "out"
    with pytest.raises(FileNotFoundError, match="SAR image"):
        map_damage(
            tmp_path / "no.tif", city / "buildings.gpkg", checkpoints["all"], out
        )
    with pytest.raises(FileNotFoundError, match="DSM"):
        map_damage(
            city / "sar.tif",
            city / "buildings.gpkg",
            checkpoints["all"],
            out,
            dsm=tmp_path / "no.tif",
        )
    nothing_written(out)


# -------------------------------------------------------------------- pieces
def test_spatial_order_is_a_tiled_permutation() -> None:
    rng = np.random.default_rng(0)
    x, y = rng.uniform(0, 1000, 1000), rng.uniform(0, 1000, 1000)
    x[3] = np.nan
    order = spatial_order(x, y, tile_size=100)
    assert sorted(order) == list(range(1000))
    assert order[-1] == 3
    # Tiles are compact: much smaller than the whole area.
    spans = [
        np.ptp(x[order[i : i + 100]]) * np.ptp(y[order[i : i + 100]])
        for i in range(0, 900, 100)
    ]
    assert max(spans) < 0.3 * 1000 * 1000


def test_folded_batch_norms_give_the_same_probabilities() -> None:
    torch.manual_seed(0)
    task = DamageDetectionTask(modalities=ALL, gem_features=22).eval()
    for module in task.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            assert module.running_mean is not None and module.running_var is not None
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.uniform_(-0.3, 0.3)
    batch = {
        "sar": torch.randn(8, 1, 32, 32),
        "footprint": (torch.rand(8, 1, 32, 32) > 0.5).float(),
        "dsm": torch.randn(8, 1, 32, 32),
        "gem": torch.randn(8, 22),
    }
    folded = fold_batch_norms(copy.deepcopy(task))
    with torch.inference_mode():
        torch.testing.assert_close(
            torch.sigmoid(folded(batch)), torch.sigmoid(task(batch)), atol=1e-5, rtol=0
        )
    with pytest.raises(ValueError, match="eval"):
        fold_batch_norms(DamageDetectionTask(modalities=ALL, gem_features=22))


def test_admin_unit_totals(
    city: Path,
    checkpoints: dict[str, Path],
    tmp_path: Path,
    nothing_written: Callable[[Path], None],
) -> None:
    source = gpd.read_file(city / "buildings.gpkg")
    xmin, ymin, xmax, ymax = source.total_bounds
    middle = (xmin + xmax) / 2
    units = gpd.GeoDataFrame(
        {"mahalle": ["west", "east"]},
        geometry=[
            shapely.box(xmin - 1, ymin - 1, middle, ymax + 1),
            shapely.box(middle, ymin - 1, xmax + 1, ymax + 1),
        ],
        crs=source.crs,
    ).to_crs(32637)
    path = tmp_path / "units.gpkg"
    units.to_file(path)
    out = tmp_path / "out"
    with pytest.raises(ValueError, match=r"no field 'name'.*mahalle"):
        map_damage(
            city / "sar.tif",
            city / "buildings.gpkg",
            checkpoints["sar_ftp"],
            out,
            units=path,
        )
    nothing_written(out)
    result = map_damage(
        city / "sar.tif",
        city / "buildings.gpkg",
        checkpoints["sar_ftp"],
        out,
        units=path,
        unit_field="mahalle",
    )
    units_summary = result.summary["units"]
    assert units_summary["kind"] == "admin"
    table = pd.DataFrame(units_summary["table"]).set_index("unit")
    assert set(table.index) == {"west", "east"}
    assert table["buildings"].sum() == len(source)
    assert table["damaged"].sum() == result.counts["damaged"]
    mapped = gpd.read_file(out / "damage.gpkg", layer="damage")
    assert set(mapped["unit"]) == {"west", "east"}
    # The units layer: the admin polygons, with their totals.
    layer = gpd.read_file(out / "damage.gpkg", layer="units").set_index("unit")
    assert set(layer.index) == {"west", "east"}
    assert (layer["buildings"] == table["buildings"].loc[layer.index]).all()
    back = units.set_index("mahalle").geometry.loc[layer.index]
    assert layer.crs == units.crs
    assert (layer.geometry.symmetric_difference(back).area < 1e-3 * back.area).all()
