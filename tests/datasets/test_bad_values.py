"""Bad values are stopped where files are read, never passed on silently.

One parametrised test per kind of fault (docs/data.md, "Bad input"):

1. raster values (SAR, DSM) and GEM numbers that cannot be right;
2. GEM exposure far from the buildings (wrong file, swapped lon/lat);
3. a truncated or malformed GEM CSV;
4. footprint ids that are not integers in the int64 range;
5. an input edited in place with the same size and modification time (cache).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import warnings
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
from shapely.geometry import box

from torchgeo_quake.datasets import (
    CSKSAR,
    BuildingDamage,
    CartoSatDSM,
    GEMExposure,
    OSMBuildings,
    build_area,
)

DATA = Path(__file__).parents[1] / "data"
SCENE = DATA / "scene"
GEM = DATA / "gem" / "points.csv"
#: Pixel (row, col) of building 1's centroid in the scene's SAR image.
BUILDING_1 = (16, 20)


def _copy_scene(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("sar.tif", "dsm.tif", "buildings.gpkg", "destroyed.geojson"):
        shutil.copy2(SCENE / name, folder / name)
    return folder


def _edit_raster(path: Path, rows: slice, cols: slice, value: float) -> None:
    with rasterio.open(path, "r+") as dst:
        band = dst.read(1)
        band[rows, cols] = value
        dst.write(band, 1)


def _skips(folder: Path, dsm: bool = False) -> tuple[pd.DataFrame, list[str]]:
    """Skipped windows of the scene's buildings (8-pixel windows) and warnings."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        area = build_area(
            CSKSAR(folder / "sar.tif"),
            OSMBuildings(
                folder / "buildings.gpkg", damage=folder / "destroyed.geojson"
            ),
            CartoSatDSM(folder / "dsm.tif") if dsm else None,
            size=8,
        )
        list(area.samples())
    return area.windows.skipped, [str(w.message) for w in caught]


def _gem_csv(path: Path, replace: dict[str, str] | None = None) -> Path:
    text = GEM.read_text(encoding="utf-8")
    for old, new in (replace or {}).items():
        assert old in text
        text = text.replace(old, new)
    path.write_text(text, encoding="utf-8")
    return path


# ------------------------------------------------------------ 1. bad values
@pytest.mark.parametrize(
    "case",
    [
        "sar_inf",
        "sar_nan",
        "sar_db",
        "sar_undeclared_nodata",
        "sar_huge",
        "dsm_undeclared_nodata",
        "gem_inf",
        "gem_1e300",
        "gem_negative_count",
    ],
)
def test_bad_values(case: str, tmp_path: Path) -> None:
    folder = _copy_scene(tmp_path / "scene")
    sar = folder / "sar.tif"
    r, c = BUILDING_1
    around = (slice(r - 1, r + 2), slice(c - 1, c + 2))
    if case in ("sar_inf", "sar_nan", "dsm_undeclared_nodata"):
        before, _ = _skips(folder, dsm=case.startswith("dsm"))
        if case == "dsm_undeclared_nodata":  # DSM pixels are 5 m: half the rows
            _edit_raster(folder / "dsm.tif", slice(7, 9), slice(9, 11), -9999.0)
        else:
            _edit_raster(sar, *around, np.inf if case == "sar_inf" else np.nan)
        after, messages = _skips(folder, dsm=case.startswith("dsm"))
        new = after[~after["building_id"].isin(before["building_id"])]
        # Building 1 is skipped with the nodata reason, nothing else changes.
        raster = "DSM" if case.startswith("dsm") else "SAR"
        assert new[["building_id", "reason"]].values.tolist() == [
            [1, f"on {raster} nodata"]
        ]
        if case == "sar_inf":
            assert [m for m in messages if "infinite" in m] == [
                f"CSKSAR: 9 infinite pixel(s) that are not nodata in {str(sar)!r}; "
                "treated as nodata (buildings whose window touches them are "
                "skipped as 'on SAR nodata')."
            ]
        elif case == "dsm_undeclared_nodata":
            (message,) = [m for m in messages if "height(s) outside" in m]
            pattern = r"CartoSatDSM: \d+ height\(s\) outside \[-500, 9000\] m"
            assert re.match(pattern, message)
            assert str(folder / "dsm.tif") in message and "-a_nodata" in message
        return
    if case.startswith("sar"):
        if case == "sar_db":
            with rasterio.open(sar) as src:
                amplitude = src.read(1)
            with np.errstate(divide="ignore"):
                db = np.where(amplitude > 0, 20 * np.log10(amplitude), 0.0)
            with rasterio.open(sar, "r+") as dst:
                dst.write(db.astype(np.float32), 1)
            match = r"declared amplitude but holds \d+ negative pixels.*looks like dB"
        elif case == "sar_undeclared_nodata":
            _edit_raster(sar, slice(0, 24), slice(None), -9999.0)
            match = r"equal to -9999, probably an undeclared nodata.*gdal_edit"
        else:
            _edit_raster(sar, *around, 1e12)
            match = r"values up to 1e\+12, above 1e\+10"
        with pytest.raises(ValueError, match=match) as info:
            CSKSAR(sar)
        assert str(sar) in str(info.value)
        return
    value = {"gem_inf": "inf", "gem_1e300": "1e300", "gem_negative_count": "-3"}[case]
    column = "number" if case == "gem_negative_count" else "structural"
    old = ",3,900,300000," if column == "number" else ",900,300000,"
    new = f",{value},900,300000," if column == "number" else f",900,{value},"
    path = _gem_csv(tmp_path / "gem.csv", {old: new})
    with pytest.raises(ValueError) as info:
        GEMExposure(path)
    message = str(info.value)
    assert str(path) in message
    assert f"of {column!r} (column {column!r}) on line(s) 2 (" in message


def test_small_share_of_negative_sar_pixels_is_masked_and_counted(
    tmp_path: Path,
) -> None:
    folder = _copy_scene(tmp_path / "scene")
    _edit_raster(folder / "sar.tif", slice(16, 17), slice(19, 22), -0.05)
    with pytest.warns(UserWarning, match=r"3 negative pixel\(s\).*masked as nodata"):
        grid = CSKSAR(folder / "sar.tif").grid().array
    assert np.isnan(grid[0, 16, 19:22]).all()


# ----------------------------------------------------- 2. distant exposure
#: Moves the fixture's three GEM locations beside the scene's buildings, all in
#: its western half (x < 500090 m): building 7, at x = 500300 m, is 210 m away.
NEAR = {",36.9,37.58,": ",39.0005,37.1355,", ",36.95,37.58,": ",39.001,37.1358,"}
NEAR[",36.9,37.6,"] = ",39.0,37.136,"


@pytest.mark.parametrize("case", ["440km", "swapped", "some_far", "no_limit"])
def test_exposure_distance(case: str, tmp_path: Path) -> None:
    footprints = SCENE / "buildings.gpkg"
    if case == "440km":  # the fixture as it is: Kahramanmaraş, 190 km away
        path = _gem_csv(tmp_path / "gem.csv")
        with pytest.raises(ValueError) as info:
            OSMBuildings(footprints, exposure=GEMExposure(path))
        message = str(info.value)
        assert "within max_distance=2000 m" in message
        assert "swapped lon/lat columns or the exposure of another area" in message
        assert "lon 36.9000..36.9500, lat 37.5800..37.6000" in message  # exposure
        assert "lon 39.00" in message and str(path) in message  # the buildings
        return
    if case == "swapped":
        text = _gem_csv(tmp_path / "near.csv", NEAR).read_text(encoding="utf-8")
        frame = pd.read_csv(tmp_path / "near.csv", dtype=str)
        frame[["lon", "lat"]] = frame[["lat", "lon"]].to_numpy()
        frame.to_csv(tmp_path / "gem.csv", index=False)
        assert text != (tmp_path / "gem.csv").read_text(encoding="utf-8")
        with pytest.raises(ValueError, match="lon and lat columns look swapped"):
            OSMBuildings(footprints, exposure=GEMExposure(tmp_path / "gem.csv"))
        return
    path = _gem_csv(tmp_path / "gem.csv", NEAR)
    if case == "no_limit":
        exposure = GEMExposure(path, max_distance=None)
        assert exposure.max_distance is None
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            buildings = OSMBuildings(footprints, exposure=exposure)
        assert buildings.skipped.empty and len(buildings.buildings) == 9
        return
    exposure = GEMExposure(path, max_distance=150)
    with pytest.warns(UserWarning, match=r"skipped 1 of 9 footprints with no exposure"):
        buildings = OSMBuildings(footprints, exposure=exposure)
    assert buildings.skipped[["building_id", "reason"]].values.tolist() == [
        [7, "no exposure point within 150 m"]
    ]
    assert 7 not in set(buildings.buildings["building_id"])
    assert buildings.gem is not None and len(buildings.gem) == 8
    # The lookup itself warns about far points and still answers.
    x, y = buildings.centroids[:1, 0] + 0.06, buildings.centroids[:1, 1]  # 5 km
    near_x, near_y = buildings.centroids[:1, 0], buildings.centroids[:1, 1]
    with pytest.warns(UserWarning, match=r"1 of 2 query point\(s\) are more than"):
        exposure.features_at(np.r_[x, near_x], np.r_[y, near_y], buildings.crs)
    with pytest.raises(ValueError, match="none of the 1 query point"):
        exposure.nearest(x, y, buildings.crs)
    with pytest.raises(ValueError, match="max_distance must be a positive"):
        GEMExposure(path, max_distance=0)


# ------------------------------------------------------ 3. malformed CSV
@pytest.mark.parametrize("case", ["truncated", "short_line", "long_line"])
def test_malformed_gem_csv(case: str, tmp_path: Path) -> None:
    text = GEM.read_text(encoding="utf-8")
    lines = text.splitlines(keepends=True)
    if case == "truncated":  # cut in the middle of line 4
        text = "".join(lines[:3]) + lines[3][:30]
        match = r"line 4 has \d+ field\(s\), the header 15.*cut short"
    elif case == "short_line":
        lines[2] = lines[2].rsplit(",", 3)[0] + "\n"
        text = "".join(lines)
        match = r"line 3 has 12 field\(s\), the header 15\. Fix or remove"
    else:
        lines[2] = lines[2].rstrip("\n") + ",extra\n"
        text = "".join(lines)
        match = r"line 3 has 16 field\(s\), the header 15"
    path = tmp_path / "gem.csv"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ValueError, match=match) as info:
        GEMExposure(path)
    assert str(path) in str(info.value) and "malformed" in str(info.value)


# --------------------------------------------------------------- 4. ids
def _footprints(path: Path, ids: list[object]) -> Path:
    features = [
        {
            "type": "Feature",
            "properties": {"osm_id": value},
            "geometry": box(i * 20.0, 0.0, i * 20.0 + 10.0, 10.0).__geo_interface__,
        }
        for i, value in enumerate(ids)
    ]
    collection = {
        "type": "FeatureCollection",
        "crs": {"type": "name", "properties": {"name": "EPSG:32637"}},
        "features": features,
    }
    path.write_text(json.dumps(collection), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("ids", "bad"),
    [
        ([1, 2, 2.5, 3], [2]),  # 2.5 would be truncated into 2, a duplicate
        ([1, 2, 18446744073709551617, 3], [2]),  # beyond uint64 and int64
        ([1, 2, 1e30, -1e30, 3], [2, 3]),
        (["1", "2", "12345678901234567890", "3.5", "4"], [2, 3]),
        # int64 max: what GDAL clamps larger integers to (with a mere warning)
        ([1, 2, 9223372036854775807, 3], [2]),
    ],
)
def test_ids_out_of_int64_or_fractional(
    ids: list[object], bad: list[int], tmp_path: Path
) -> None:
    path = _footprints(tmp_path / "buildings.geojson", ids)
    with pytest.warns(UserWarning, match="not an integer in int64 range"):
        footprints = OSMBuildings(path)
    skipped = footprints.skipped
    assert skipped["row"].tolist() == bad
    assert set(skipped["reason"]) == {"osm_id not an integer in int64 range"}
    assert skipped["building_id"].isna().all()
    kept = [int(float(str(v))) for i, v in enumerate(ids) if i not in bad]
    assert footprints.buildings["building_id"].tolist() == kept
    assert footprints.buildings["row"].tolist() == [
        i for i in range(len(ids)) if i not in bad
    ]


def test_large_int64_ids_are_kept_exactly(tmp_path: Path) -> None:
    # GeoPackage stores int64 exactly (GeoJSON readers go through float64).
    ids = [2**62 + 1, -(2**62) - 1, 1]
    path = tmp_path / "b.gpkg"
    gpd.GeoDataFrame(
        {"osm_id": np.array(ids, dtype=np.int64)},
        geometry=[box(i * 20.0, 0.0, i * 20.0 + 10.0, 10.0) for i in range(3)],
        crs="EPSG:32637",
    ).to_file(path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        footprints = OSMBuildings(path)
    assert footprints.buildings["building_id"].tolist() == ids


def test_every_id_out_of_range_is_an_error(tmp_path: Path) -> None:
    path = _footprints(tmp_path / "buildings.geojson", [1.5, 2.5])
    with pytest.raises(ValueError, match="osm_id not an integer in int64 range: 2"):
        OSMBuildings(path)


# ------------------------------------------------------------ 5. cache key
@pytest.mark.parametrize("name", ["sar.tif", "destroyed.geojson"])
def test_cache_sees_an_edit_with_the_same_size_and_mtime(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "event"
    _copy_scene(root / "area")
    kwargs = {"modalities": ["sar", "footprint"], "size": 8}

    def build() -> BuildingDamage:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            return BuildingDamage(root, **kwargs)  # type: ignore[arg-type]

    first = build()
    path = root / "area" / name
    stat = path.stat()
    if name == "sar.tif":  # brighter by 3 dB, in place (same size)
        with rasterio.open(path, "r+") as dst:
            dst.write(dst.read(1) * np.float32(np.sqrt(2.0)), 1)
    else:  # building 5 is no longer damaged: the same number of bytes
        text = path.read_text(encoding="utf-8")
        assert '"osm_id": 5' in text
        path.write_text(text.replace('"osm_id": 5', '"osm_id": 9'), encoding="utf-8")
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert (path.stat().st_size, path.stat().st_mtime_ns) == (
        stat.st_size,
        stat.st_mtime_ns,
    )
    extracted: list[bool] = []
    original = BuildingDamage._extract

    def spy(self: BuildingDamage) -> dict[str, np.ndarray]:
        extracted.append(True)
        return original(self)

    monkeypatch.setattr(BuildingDamage, "_extract", spy)
    second = build()
    assert extracted == [True]  # not the stale cache
    assert len(list((root / ".cache").glob("samples-*.npz"))) == 1  # stale pruned
    if name == "sar.tif":
        np.testing.assert_allclose(
            second.arrays()["sar"], first.arrays()["sar"] + 3.0103, atol=1e-3
        )
    else:
        damaged = set(first.building_ids[first.labels == 1].tolist())
        assert 5 in damaged
        assert 5 not in set(second.building_ids[second.labels == 1].tolist())
    # Unchanged inputs: the cache is used.
    third = build()
    assert extracted == [True]
    np.testing.assert_array_equal(third.arrays()["sar"], second.arrays()["sar"])


def test_read_vector_refuses_a_table_without_geometries(tmp_path: Path) -> None:
    from torchgeo_quake.datasets import read_vector

    table = tmp_path / "buildings.csv"
    table.write_text("osm_id,name\n1,a\n2,b\n", encoding="utf-8")
    with pytest.raises(ValueError, match="not a vector file"):
        read_vector(table)
