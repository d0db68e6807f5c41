"""What the model sees: SAR pixel size, radiometry and patch size; odd inputs."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pyogrio
import pytest
import rasterio
import shapely
from lightning import Trainer
from rasterio.warp import Resampling, calculate_default_transform, reproject

import torchgeo_quake.mapping._prediction as prediction
from torchgeo_quake.cli import main
from torchgeo_quake.mapping import load_damage_model, map_damage
from torchgeo_quake.mapping.model import INPUT_SPEC_KEY

Patches = dict[tuple[float, float], np.ndarray]


def _record_patches(monkeypatch: pytest.MonkeyPatch) -> Patches:
    """Record the SAR patch of every building, by window centre."""
    store: Patches = {}
    original = prediction._Patches.__getitem__

    def recording(self: Any, index: int) -> dict[str, Any]:
        out = original(self, index)
        xmin, xmax, ymin, ymax = self.windows[index]
        centre = (round((xmin + xmax) / 2, 1), round((ymin + ymax) / 2, 1))
        store[centre] = out["sar"].numpy().copy()
        return out

    monkeypatch.setattr(prediction._Patches, "__getitem__", recording)
    return store


def _write_resampled(source: Path, target: Path, factor: int) -> None:
    """Write the SAR image with pixels *factor* times smaller (> 0) or larger."""
    with rasterio.open(source) as src:
        data = src.read(1)
        profile = src.profile
        transform = src.transform
    if factor > 0:  # finer: each pixel becomes factor x factor pixels
        data = np.repeat(np.repeat(data, factor, axis=0), factor, axis=1)
        scale = 1 / factor
    else:  # coarser: mean amplitude of blocks
        k = -factor
        h, w = (data.shape[0] // k) * k, (data.shape[1] // k) * k
        data = data[:h, :w].reshape(h // k, k, w // k, k).mean(axis=(1, 3))
        scale = k
    profile.update(
        height=data.shape[0],
        width=data.shape[1],
        transform=transform * transform.scale(scale, scale),
    )
    with rasterio.open(target, "w", **profile) as dst:
        dst.write(data.astype(profile["dtype"]), 1)


def _write_geographic(source: Path, target: Path) -> None:
    """Write the SAR image reprojected to WGS 84 longitudes and latitudes."""
    with rasterio.open(source) as src:
        transform, width, height = calculate_default_transform(
            src.crs, "EPSG:4326", src.width, src.height, *src.bounds
        )
        profile = src.profile
        profile.update(crs="EPSG:4326", transform=transform, width=width, height=height)
        with rasterio.open(target, "w", **profile) as dst:
            reproject(
                rasterio.band(src, 1),
                rasterio.band(dst, 1),
                resampling=Resampling.bilinear,
                dst_nodata=0,
            )


def _correlation(a: Patches, b: Patches) -> tuple[float, int]:
    """Correlation of the patches two runs cut for the same windows."""
    common = sorted(set(a) & set(b))
    if not common:
        return 0.0, 0
    x = np.concatenate([a[k].ravel() for k in common])
    y = np.concatenate([b[k].ravel() for k in common])
    return float(np.corrcoef(x, y)[0, 1]), len(common)


# ------------------------------------------------------------- pixel size
def test_sar_is_resampled_to_the_training_pixel_size(
    city: Path,
    checkpoints: dict[str, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    native = _record_patches(monkeypatch)
    base = map_damage(
        city / "sar.tif",
        city / "buildings.gpkg",
        checkpoints["sar_ftp"],
        tmp_path / "a",
    )
    assert base.summary["sar_grid"] == {
        "crs": "EPSG:32637",
        "pixel_size_m": 2.5,
        "resampled": False,
    }
    fine_sar = tmp_path / "sar_125cm.tif"
    _write_resampled(city / "sar.tif", fine_sar, 2)
    patches = native.copy()
    native.clear()
    result = map_damage(
        fine_sar, city / "buildings.gpkg", checkpoints["sar_ftp"], tmp_path / "b"
    )
    assert result.summary["inputs"]["sar_pixel_size_m"] == pytest.approx(1.25)
    assert result.summary["sar_grid"]["pixel_size_m"] == 2.5
    assert result.summary["sar_grid"]["resampled"] is True
    # Same windows, on the same ground: the patches of the two runs agree.
    correlation, common = _correlation(patches, native)
    assert common >= 0.9 * len(patches)
    assert correlation > 0.9
    assert all(p.shape == (1, 32, 32) for p in native.values())
    assert abs(result.counts["predicted"] - base.counts["predicted"]) <= 3


def test_coarser_sar_is_upsampled_with_a_warning(
    city: Path, checkpoints: dict[str, Path], tmp_path: Path
) -> None:
    coarse = tmp_path / "sar_5m.tif"
    _write_resampled(city / "sar.tif", coarse, -2)
    with pytest.warns(UserWarning, match=r"5 m pixels, coarser than the 2.5 m"):
        result = map_damage(
            coarse, city / "buildings.gpkg", checkpoints["sar_ftp"], tmp_path / "out"
        )
    assert result.summary["sar_grid"]["pixel_size_m"] == 2.5
    assert result.summary["inputs"]["sar_pixel_size_m"] == pytest.approx(5.0)


def test_legacy_checkpoint_keeps_the_native_pixels_with_a_warning(
    city: Path,
    checkpoints: dict[str, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fine_sar = tmp_path / "sar_125cm.tif"
    _write_resampled(city / "sar.tif", fine_sar, 2)
    patches = _record_patches(monkeypatch)
    with pytest.warns(UserWarning, match="records no input specification"):
        result = map_damage(
            fine_sar, city / "buildings.gpkg", checkpoints["legacy"], tmp_path / "out"
        )
    model = result.summary["model"]
    assert model["input_spec_recorded"] is False
    assert model["radiometry"] == "db"
    assert model["sar_pixel_size_m"] is None
    assert result.summary["sar_grid"]["resampled"] is False
    assert result.summary["sar_grid"]["pixel_size_m"] == pytest.approx(1.25)
    assert all(p.shape == (1, 32, 32) for p in patches.values())


def test_patch_size_comes_from_the_checkpoint(
    city: Path,
    checkpoints: dict[str, Path],
    spec: dict[str, Any],
    respec: Callable[..., Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    small = respec(
        checkpoints["sar_ftp"], tmp_path / "p16.ckpt", {**spec, "patch_size": 16}
    )
    patches = _record_patches(monkeypatch)
    result = map_damage(
        city / "sar.tif", city / "buildings.gpkg", small, tmp_path / "o"
    )
    assert result.summary["model"]["patch_size"] == 16
    assert patches and all(p.shape == (1, 16, 16) for p in patches.values())


def test_input_spec_round_trip_through_the_trainer(
    checkpoints: dict[str, Path], spec: dict[str, Any], tmp_path: Path
) -> None:
    """A spec saved by DamageDetectionTask is the one the map uses."""
    import torchgeo_quake.trainers as trainers

    assert INPUT_SPEC_KEY == "torchgeo_quake_input_spec"
    if not hasattr(trainers, "INPUT_SPEC_KEY"):
        pytest.skip("this DamageDetectionTask does not record input specifications")
    assert trainers.INPUT_SPEC_KEY == INPUT_SPEC_KEY
    task = trainers.DamageDetectionTask.load_from_checkpoint(checkpoints["legacy"])
    assert task.input_spec is None
    assert load_damage_model(checkpoints["legacy"]).input_spec is None
    task.input_spec = {**spec, "radiometry": "intensity", "sar_res": 1.0}
    trainer = Trainer(accelerator="cpu", logger=False, enable_checkpointing=False)
    trainer.strategy.connect(task)
    path = tmp_path / "saved.ckpt"
    trainer.save_checkpoint(path, weights_only=True)
    loaded = load_damage_model(path)
    assert loaded.input_spec == {**spec, "radiometry": "intensity", "sar_res": 1.0}


def test_malformed_input_spec(
    city: Path,
    checkpoints: dict[str, Path],
    spec: dict[str, Any],
    respec: Callable[..., Path],
    tmp_path: Path,
    nothing_written: Callable[[Path], None],
) -> None:
    for bad in ({**spec, "sar_res": -1.0}, {**spec, "radiometry": "sigma0"}, [1, 2]):
        path = respec(checkpoints["sar_ftp"], tmp_path / "bad.ckpt", bad)
        with pytest.raises(ValueError, match="malformed input specification"):
            map_damage(city / "sar.tif", city / "buildings.gpkg", path, tmp_path / "o")
        nothing_written(tmp_path / "o")


# -------------------------------------------------------------- radiometry
def test_radiometry_comes_from_the_checkpoint(
    city: Path,
    checkpoints: dict[str, Path],
    spec: dict[str, Any],
    respec: Callable[..., Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    nothing_written: Callable[[Path], None],
) -> None:
    amplitude = respec(
        checkpoints["sar_ftp"],
        tmp_path / "amp.ckpt",
        {**spec, "radiometry": "amplitude"},
    )
    patches = _record_patches(monkeypatch)
    result = map_damage(
        city / "sar.tif", city / "buildings.gpkg", amplitude, tmp_path / "a"
    )
    assert result.summary["model"]["radiometry"] == "amplitude"
    values = np.concatenate([p.ravel() for p in patches.values()])
    assert values.min() >= 0 and values.max() > 0  # amplitude, not dB
    out = tmp_path / "b"
    with pytest.raises(ValueError, match=r"--radiometry db .*contradicts.*amplitude"):
        map_damage(
            city / "sar.tif", city / "buildings.gpkg", amplitude, out, radiometry="db"
        )
    nothing_written(out)
    argv = [
        "map",
        "--sar",
        str(city / "sar.tif"),
        "--footprints",
        str(city / "buildings.gpkg"),
        "--checkpoint",
        str(amplitude),
        "--out",
        str(out),
        "--radiometry",
        "intensity",
    ]
    capsys.readouterr()
    assert main(argv) == 1
    assert "contradicts" in capsys.readouterr().err
    nothing_written(out)
    # The same value as the checkpoint's is accepted.
    argv[-1] = "amplitude"
    assert main([*argv, "--quiet"]) == 0


# ------------------------------------------------------- geographic CRS
def test_geographic_sar_gives_grid_cells_in_metres(
    city: Path, checkpoints: dict[str, Path], tmp_path: Path
) -> None:
    wgs84 = tmp_path / "sar_wgs84.tif"
    _write_geographic(city / "sar.tif", wgs84)
    base = map_damage(
        city / "sar.tif",
        city / "buildings.gpkg",
        checkpoints["sar_ftp"],
        tmp_path / "utm",
        cell_size=200,
    )
    with pytest.warns(UserWarning, match="records no input specification"):
        legacy = map_damage(
            wgs84,
            city / "buildings.gpkg",
            checkpoints["legacy"],
            tmp_path / "legacy",
            cell_size=200,
        )
    # The model works on the degree pixels (as recorded), the cells in metres.
    assert legacy.summary["sar_grid"]["crs"] == "EPSG:4326"
    units = legacy.summary["units"]
    assert units["crs"] == "EPSG:32637" and units["cell_size_unit"] == "metre"
    table = units["table"]
    assert len(table) == len(base.summary["units"]["table"]) > 1
    assert all(row["xmax"] - row["xmin"] == 200 for row in table)
    a = gpd.read_file(tmp_path / "utm" / "damage.gpkg", layer="damage").sort_values(
        "feature"
    )
    b = gpd.read_file(tmp_path / "legacy" / "damage.gpkg", layer="damage").sort_values(
        "feature"
    )
    assert (a["unit"].to_numpy() == b["unit"].to_numpy()).mean() > 0.95
    # A model that records its pixel size gets the image reprojected to UTM.
    result = map_damage(
        wgs84, city / "buildings.gpkg", checkpoints["sar_ftp"], tmp_path / "spec"
    )
    grid = result.summary["sar_grid"]
    assert grid == {"crs": "EPSG:32637", "pixel_size_m": 2.5, "resampled": True}
    assert abs(result.counts["predicted"] - base.counts["predicted"]) <= 5


# --------------------------------------------------------------- footprints
def _cli(city: Path, footprints: Path, checkpoint: Path, out: Path) -> list[str]:
    return [
        "map",
        "--sar",
        str(city / "sar.tif"),
        "--footprints",
        str(footprints),
        "--checkpoint",
        str(checkpoint),
        "--out",
        str(out),
        "--quiet",
    ]


def test_no_usable_footprint_is_explained(
    city: Path,
    checkpoints: dict[str, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    nothing_written: Callable[[Path], None],
) -> None:
    source = gpd.read_file(city / "buildings.gpkg")
    n = len(source)
    strings = source.assign(osm_id=[f"way/{i}" for i in source["osm_id"]])
    strings.to_file(tmp_path / "strings.geojson")
    points = source.assign(geometry=source.geometry.centroid)
    points.to_file(tmp_path / "points.gpkg")
    out = tmp_path / "out"
    capsys.readouterr()
    assert (
        main(_cli(city, tmp_path / "strings.geojson", checkpoints["sar_ftp"], out)) == 1
    )
    err = capsys.readouterr().err
    assert f"none of the {n} features" in err
    assert f"{n} missing or non-numeric osm_id" in err
    assert "'way/" in err and "--id-field" in err
    nothing_written(out)
    assert main(_cli(city, tmp_path / "points.gpkg", checkpoints["sar_ftp"], out)) == 1
    err = capsys.readouterr().err
    assert f"{n} not a polygon (Point)" in err
    assert "polygons" in err
    nothing_written(out)


def test_unrepairable_footprints_only(
    city: Path, checkpoints: dict[str, Path], tmp_path: Path
) -> None:
    """All polygonal but none repairable: the data layer's error is explained."""
    source = gpd.read_file(city / "buildings.gpkg").to_crs(32637)
    flat = [
        shapely.Polygon([(x, y), (x + 5, y + 5), (x + 10, y + 10), (x, y)])
        for x, y in zip(source.centroid.x, source.centroid.y, strict=True)
    ]
    source.assign(geometry=flat).to_file(tmp_path / "flat.gpkg")
    with pytest.raises(
        ValueError, match=r"invalid geometry that could not be repaired"
    ):
        map_damage(
            city / "sar.tif",
            tmp_path / "flat.gpkg",
            checkpoints["sar_ftp"],
            tmp_path / "o",
        )


def test_footprints_on_sar_nodata_are_skipped(
    city: Path, checkpoints: dict[str, Path], tmp_path: Path
) -> None:
    with rasterio.open(city / "sar.tif") as src:
        data = src.read(1)
        profile = src.profile
        transform = src.transform
    assert profile["nodata"] == 0
    h, w = data.shape
    r0, r1, c0, c1 = h // 3, 2 * h // 3, w // 3, 2 * w // 3
    data[r0:r1, c0:c1] = 0
    sar = tmp_path / "holes.tif"
    with rasterio.open(sar, "w", **profile) as dst:
        dst.write(data, 1)
    result = map_damage(
        sar, city / "buildings.gpkg", checkpoints["sar_ftp"], tmp_path / "o"
    )
    mapped = gpd.read_file(tmp_path / "o" / "damage.gpkg", layer="damage").to_crs(32637)
    on_hole = result.counts["skipped_by_reason"].get("on SAR nodata", 0)
    assert on_hole > 0
    assert on_hole == int((mapped["reason"] == "on SAR nodata").sum())
    xmin, ymax = transform * (c0, r0)
    xmax, ymin = transform * (c1, r1)
    c = mapped.geometry.centroid
    inside = (c.x > xmin) & (c.x < xmax) & (c.y > ymin) & (c.y < ymax)
    assert inside.any()
    assert (mapped.loc[inside, "reason"] == "on SAR nodata").all()
    margin = 16 * 2.5 + 2.5
    far = (
        (c.x < xmin - margin)
        | (c.x > xmax + margin)
        | (c.y < ymin - margin)
        | (c.y > ymax + margin)
    )
    assert (mapped.loc[far, "reason"] != "on SAR nodata").all()
    assert result.counts["predicted"] + result.counts["skipped"] == len(mapped)


def test_mixed_polygons_and_multipolygons_are_kept_as_given(
    city: Path, checkpoints: dict[str, Path], tmp_path: Path
) -> None:
    source = gpd.read_file(city / "buildings.gpkg")
    geoms = list(source.geometry)
    for i in range(0, len(geoms), 3):
        geoms[i] = shapely.MultiPolygon([geoms[i]])
    first = geoms[1]
    geoms[1] = shapely.MultiPolygon(
        [first, shapely.affinity.translate(first, xoff=0.0002)]
    )
    mixed = source.assign(geometry=geoms)
    path = tmp_path / "mixed.geojson"
    mixed.to_file(path)
    kinds = list(gpd.read_file(path).geom_type)
    assert {"Polygon", "MultiPolygon"} <= set(kinds)
    result = map_damage(city / "sar.tif", path, checkpoints["sar_ftp"], tmp_path / "o")
    out = tmp_path / "o"
    assert pyogrio.read_info(out / "damage.gpkg")["geometry_type"] == "Unknown"
    for name in ("damage.gpkg", "damage.geojson"):
        mapped = gpd.read_file(out / name).sort_values("feature")
        assert list(mapped.geom_type) == kinds, name
    assert result.counts["footprints"] == len(kinds)
    mapped = gpd.read_file(out / "damage.gpkg", layer="damage").sort_values("feature")
    given = gpd.read_file(path).geometry
    assert (
        mapped.geometry.reset_index(drop=True)
        .geom_equals_exact(given, tolerance=1e-9)
        .all()
    )


def test_plain_polygons_stay_a_polygon_layer(
    city: Path, checkpoints: dict[str, Path], tmp_path: Path
) -> None:
    map_damage(
        city / "sar.tif",
        city / "buildings.gpkg",
        checkpoints["sar_ftp"],
        tmp_path / "o",
    )
    info = pyogrio.read_info(tmp_path / "o" / "damage.gpkg")
    assert info["geometry_type"] == "Polygon"


# ---------------------------------------------------------- model selection
def test_model_with_gem_needs_the_exposure(
    city: Path,
    checkpoints: dict[str, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    nothing_written: Callable[[Path], None],
) -> None:
    out = tmp_path / "out"
    with pytest.raises(
        ValueError, match=r"cannot run without \['gem'\]: pass --exposure GEM\.csv"
    ):
        map_damage(
            city / "sar.tif",
            city / "buildings.gpkg",
            checkpoints["all"],
            out,
            dsm=city / "dsm.tif",
        )
    nothing_written(out)
    argv = [
        *_cli(city, city / "buildings.gpkg", checkpoints["all"], out),
        "--dsm",
        str(city / "dsm.tif"),
    ]
    capsys.readouterr()
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "--exposure GEM.csv" in err and "--fallback-checkpoint" in err
    nothing_written(out)
    summary_path = out / "summary.json"
    assert not summary_path.exists()
    assert main([*argv, "--exposure", str(city / "gem.csv")]) == 0
    assert json.loads(summary_path.read_text())["model"]["modalities"] == [
        "sar",
        "footprint",
        "dsm",
        "gem",
    ]
