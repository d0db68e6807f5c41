from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
import torch
from torchgeo.datasets import stack_samples

from torchgeo_quake.datasets import OSMBuildings, read_vector
from torchgeo_quake.datasets.raster import CachedRasterDataset


class SAR(CachedRasterDataset):
    sample_key = "sar"
    filename_glob = "sar.tif"


def centred(fp: OSMBuildings, building_id: int, size: int = 16) -> tuple[slice, ...]:
    row = fp.buildings.index[fp.buildings["building_id"] == building_id][0]
    cx, cy = fp.centroids[row]
    res = fp.res[0]
    return (
        slice(cx - size / 2 * res, cx + size / 2 * res, res),
        slice(cy - size / 2 * res, cy + size / 2 * res, res),
    )


@pytest.fixture
def footprints(scene_dir: Path) -> OSMBuildings:
    return OSMBuildings(
        scene_dir / "buildings.gpkg",
        crs="EPSG:32637",
        res=2.5,
        damage=scene_dir / "destroyed.geojson",
        city="test",
    )


def test_labels_joined_by_osm_id(footprints: OSMBuildings) -> None:
    labels = dict(
        zip(
            footprints.buildings["building_id"],
            footprints.buildings["label"],
            strict=False,
        )
    )
    assert labels[2] == 1 and labels[5] == 1
    assert sum(labels.values()) == 2
    assert footprints.counts().to_dict() == {"intact": 7, "damaged": 2}
    assert footprints.unmatched_damage == 0


@pytest.mark.parametrize(
    "reference", ["destroyed_noid.geojson", "destroyed_points.geojson"]
)
def test_labels_joined_spatially_without_osm_id(
    scene_dir: Path, reference: str
) -> None:
    fp = OSMBuildings(
        scene_dir / "buildings.gpkg",
        crs="EPSG:32637",
        res=2.5,
        damage=scene_dir / reference,
    )
    damaged = set(fp.buildings.loc[fp.buildings["label"] == 1, "building_id"])
    assert damaged == {2, 5}


def test_invalid_geometry_repaired_and_counted(footprints: OSMBuildings) -> None:
    assert footprints.repaired == 1
    assert 6 in set(footprints.buildings["building_id"])
    assert footprints.skipped.empty


def test_building_mask_is_only_the_building_of_interest(
    footprints: OSMBuildings,
) -> None:
    sample = footprints[centred(footprints, 1, size=32)]
    assert sample["footprint"].shape == (1, 32, 32)
    assert int(sample["building_id"]) == 1 and int(sample["label"]) == 0
    # 12 m × 10 m building at 2.5 m: about 4.8 × 4 pixels.
    assert 14 <= float(sample["footprint"].sum()) <= 25
    everything = OSMBuildings(
        footprints.files, crs="EPSG:32637", res=2.5, footprints="all"
    )[centred(footprints, 1, size=32)]
    assert float(everything["footprint"].sum()) > float(sample["footprint"].sum())


def test_mask_matches_direct_rasterisation(footprints: OSMBuildings) -> None:
    import rasterio.features
    from affine import Affine

    query = centred(footprints, 5, size=16)
    sample = footprints[query]
    geom = footprints.buildings.geometry[footprints.buildings["building_id"] == 5].iloc[
        0
    ]
    x, y = query
    expected = rasterio.features.rasterize(
        [geom], out_shape=(16, 16), transform=Affine(2.5, 0, x.start, 0, -2.5, y.stop)
    )
    np.testing.assert_array_equal(sample["footprint"][0].numpy(), expected)
    # Off-grid queries (not on the id raster) rasterise directly: same answer.
    shifted = (slice(x.start + 0.3, x.stop + 0.3, 2.5), y)
    expected_shifted = rasterio.features.rasterize(
        [geom],
        out_shape=(16, 16),
        transform=Affine(2.5, 0, x.start + 0.3, 0, -2.5, y.stop),
    )
    np.testing.assert_array_equal(
        footprints[shifted]["footprint"][0].numpy(), expected_shifted
    )


def test_query_without_building_at_centre(footprints: OSMBuildings) -> None:
    x0, y1 = 500_090.0, 4_109_900.0  # between buildings
    sample = footprints[(slice(x0, x0 + 20, 2.5), slice(y1 - 20, y1, 2.5))]
    assert int(sample["building_id"]) == -1 and int(sample["label"]) == -1
    assert float(sample["footprint"].sum()) == 0


def test_intersection_and_stacking(scene_dir: Path, footprints: OSMBuildings) -> None:
    ds = SAR(scene_dir / "sar.tif") & footprints
    queries = [centred(footprints, i, size=32) for i in (1, 2, 3)]
    batch = stack_samples([ds[q] for q in queries])
    assert batch["sar"].shape == (3, 1, 32, 32)
    assert batch["footprint"].shape == (3, 1, 32, 32)
    assert batch["label"].tolist() == [0, 1, 0]
    assert batch["building_id"].dtype == torch.long
    assert batch["city"] == ["test"] * 3


def test_crs_change_reprojects_footprints(scene_dir: Path) -> None:
    fp = OSMBuildings(scene_dir / "buildings.gpkg", res=1e-5)
    assert fp.crs.to_epsg() == 4326
    fp.crs = "EPSG:32637"
    assert fp.crs.to_epsg() == 32637
    assert fp.centroids[:, 0].min() > 499_000


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        OSMBuildings(tmp_path / "nope.gpkg")
    with pytest.raises(FileNotFoundError, match="no footprint file"):
        OSMBuildings(tmp_path)


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.gpkg"
    gpd.GeoDataFrame({"osm_id": []}, geometry=[], crs=4326).to_file(path)
    with pytest.raises(ValueError, match="holds no features"):
        OSMBuildings(path)


def test_missing_id_column(tmp_path: Path) -> None:
    path = tmp_path / "b.geojson"
    gpd.GeoDataFrame(
        {"name": ["a"]}, geometry=[shapely.box(0, 0, 1, 1)], crs=4326
    ).to_file(path)
    with pytest.raises(ValueError, match=r"has no .osm_id. column.*id_field="):
        OSMBuildings(path)


def test_corrupt_file(tmp_path: Path) -> None:
    path = tmp_path / "b.geojson"
    path.write_text("{ this is not json")
    with pytest.raises(ValueError, match="cannot read vector file"):
        read_vector(path)


def test_unrepairable_and_duplicates_are_reported(tmp_path: Path) -> None:
    path = tmp_path / "b.geojson"
    geoms = [
        shapely.box(0, 0, 1e-4, 1e-4),
        shapely.box(1e-3, 0, 1.1e-3, 1e-4),
        shapely.LineString([(0, 0), (1e-4, 1e-4)]),
        None,
    ]
    gpd.GeoDataFrame({"osm_id": [1, 1, 2, 3]}, geometry=geoms, crs=4326).to_file(path)
    fp = OSMBuildings(path)
    reasons = dict(zip(fp.skipped["building_id"], fp.skipped["reason"], strict=False))
    assert reasons == {
        1: "duplicate osm_id",
        2: "not a polygon (LineString)",
        3: "missing geometry",
    }
    assert len(fp.buildings) == 1


def test_plot(footprints: OSMBuildings) -> None:
    import matplotlib

    matplotlib.use("Agg")
    fig = footprints.plot(footprints[centred(footprints, 2)], suptitle="x")
    assert "damaged" in fig.axes[0].get_title()


# ------------------------------------------------------------------ formats
@pytest.mark.parametrize(
    ("suffix", "driver"),
    [
        (".gpkg", "GPKG"),
        (".geojson", "GeoJSON"),
        (".shp", "ESRI Shapefile"),
        (".fgb", "FlatGeobuf"),
        (".parquet", None),
    ],
)
def test_footprint_formats(
    tmp_path: Path, scene_dir: Path, suffix: str, driver: str | None
) -> None:
    frame = gpd.read_file(scene_dir / "buildings.gpkg")
    path = tmp_path / f"buildings{suffix}"
    if driver is None:
        frame.to_parquet(path)
    else:
        frame.to_file(path, driver=driver)
    fp = OSMBuildings(
        path, crs="EPSG:32637", res=2.5, damage=scene_dir / "destroyed.geojson"
    )
    reference = OSMBuildings(
        scene_dir / "buildings.gpkg",
        crs="EPSG:32637",
        res=2.5,
        damage=scene_dir / "destroyed.geojson",
    )
    assert fp.counts().to_dict() == {"intact": 7, "damaged": 2}
    # (FlatGeobuf reorders features along its spatial index.)
    order = np.argsort(fp.buildings["building_id"].to_numpy())
    ref_order = np.argsort(reference.buildings["building_id"].to_numpy())
    np.testing.assert_allclose(fp.centroids[order], reference.centroids[ref_order])
    query = centred(fp, 1)
    torch.testing.assert_close(fp[query]["footprint"], reference[query]["footprint"])


def test_geoparquet_without_pyarrow_is_clear(
    tmp_path: Path, scene_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    path = tmp_path / "buildings.parquet"
    gpd.read_file(scene_dir / "buildings.gpkg").to_parquet(path)
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # import fails
    with pytest.raises(ImportError, match=r"buildings\.parquet.*pip install pyarrow"):
        read_vector(path)


# ------------------------------------------------------------ warnings
def test_empty_damage_layer_warns(tmp_path: Path, scene_dir: Path) -> None:
    path = tmp_path / "destroyed.geojson"
    gpd.GeoDataFrame({"osm_id": []}, geometry=[], crs=4326).to_file(
        path, driver="GeoJSON"
    )
    with pytest.warns(UserWarning, match=r"destroyed\.geojson.*holds no features"):
        fp = OSMBuildings(scene_dir / "buildings.gpkg", damage=path)
    assert fp.counts().to_dict() == {"intact": 9, "damaged": 0}


def test_unmatched_damage_is_counted_and_warned(
    tmp_path: Path, scene_dir: Path
) -> None:
    damage = gpd.read_file(scene_dir / "destroyed.geojson")
    extra = damage.iloc[:1].copy()
    extra["osm_id"] = 999
    path = tmp_path / "destroyed.geojson"
    gpd.GeoDataFrame(pd.concat([damage, extra]), crs=damage.crs).to_file(
        path, driver="GeoJSON"
    )
    with pytest.warns(UserWarning, match="1 of 3 damage features"):
        fp = OSMBuildings(scene_dir / "buildings.gpkg", damage=path)
    assert fp.unmatched_damage == 1
    # Spatial join: a damage polygon far from every footprint.
    far = gpd.GeoDataFrame(
        {"destroyed_building": ["yes", "yes"]},
        geometry=[
            damage.to_crs(32637).geometry.iloc[0],
            shapely.box(600_000, 4_100_000, 600_010, 4_100_010),
        ],
        crs=32637,
    )
    far.to_file(tmp_path / "far.geojson", driver="GeoJSON")
    with pytest.warns(UserWarning, match="1 of 2 damage features"):
        fp = OSMBuildings(scene_dir / "buildings.gpkg", damage=tmp_path / "far.geojson")
    assert fp.unmatched_damage == 1 and fp.counts()["damaged"] == 1


def test_skipped_features_are_warned(tmp_path: Path) -> None:
    path = tmp_path / "b.geojson"
    geoms = [shapely.box(0, 0, 1e-4, 1e-4), shapely.Point(1e-3, 0)]
    gpd.GeoDataFrame({"osm_id": [1, 2]}, geometry=geoms, crs=4326).to_file(path)
    with pytest.warns(UserWarning, match=r"skipped 1 of 2.*not a polygon \(Point\): 1"):
        OSMBuildings(path)


def test_no_valid_footprint_error_counts_reasons_and_hints(tmp_path: Path) -> None:
    path = tmp_path / "b.geojson"
    geoms = [shapely.box(0, 0, 1e-4, 1e-4), shapely.box(1e-3, 0, 1.1e-3, 1e-4)]
    gpd.GeoDataFrame({"osm_id": ["way/1", "way/2"]}, geometry=geoms, crs=4326).to_file(
        path
    )
    with pytest.raises(
        ValueError,
        match=r"all 2 features were skipped \(missing or non-numeric osm_id: 2 -> "
        r"ids must be numeric: pass .* id_field=",
    ):
        OSMBuildings(path)
    points = tmp_path / "points.geojson"
    gpd.GeoDataFrame(
        {"osm_id": [1, 2]},
        geometry=[shapely.Point(0, 0), shapely.Point(1, 1)],
        crs=4326,
    ).to_file(points)
    with pytest.raises(ValueError, match=r"not a polygon \(Point\): 2 -> .*polygons"):
        OSMBuildings(points)


# ------------------------------------------------------------ resolution
def test_default_resolution_follows_the_crs(scene_dir: Path) -> None:
    geographic = OSMBuildings(scene_dir / "buildings.gpkg")
    assert geographic.res == (1e-5, 1e-5)
    projected = OSMBuildings(scene_dir / "buildings.gpkg", crs="EPSG:32637")
    assert projected.res == (1.0, 1.0)
    geographic.crs = "EPSG:32637"  # not set explicitly: follows the CRS
    assert geographic.res == (1.0, 1.0)
    explicit = OSMBuildings(scene_dir / "buildings.gpkg", res=2e-5)
    explicit.crs = "EPSG:32637"
    assert explicit.res == (2e-5, 2e-5)
    # Footprints first in an intersection: the SAR is read at 1 m, not 0.1 mm.
    ds = OSMBuildings(scene_dir / "buildings.gpkg", crs="EPSG:32637") & SAR(
        scene_dir / "sar.tif"
    )
    assert ds.res == (1.0, 1.0)


# ------------------------------------------------------------ discovery
def test_directory_discovery_skips_metadata_json(
    tmp_path: Path, scene_dir: Path
) -> None:
    import json
    import shutil

    shutil.copy(scene_dir / "buildings.gpkg", tmp_path / "buildings.gpkg")
    shutil.copy(scene_dir / "destroyed.geojson", tmp_path / "destroyed.geojson")
    (tmp_path / "2023_UMBRA-04_METADATA.json").write_text(
        json.dumps({"collect": {"type": "spotlight"}, "version": "1"})
    )
    (tmp_path / "item.json").write_text(
        json.dumps({"type": "Feature", "stac_version": "1.0.0", "geometry": None})
    )
    (tmp_path / "scene.json").write_text(json.dumps({"simulated": True}))
    extra = gpd.read_file(scene_dir / "buildings.gpkg").iloc[:1].copy()
    extra["osm_id"] = 100
    extra.to_file(tmp_path / "more.json", driver="GeoJSON")  # GeoJSON named .json
    fp = OSMBuildings(tmp_path, damage=tmp_path / "destroyed.geojson")
    assert [Path(f).name for f in fp.files] == ["buildings.gpkg", "more.json"]


# ------------------------------------------------------------ bad overlap
def test_footprints_outside_the_sar_image_are_a_clear_error(
    tmp_path: Path, scene_dir: Path
) -> None:
    path = tmp_path / "outside.gpkg"
    gpd.GeoDataFrame(
        {"osm_id": [1, 2]},
        geometry=[
            shapely.box(600_040.0, 4_109_940.0, 600_050.0, 4_109_950.0),
            shapely.box(600_140.0, 4_109_940.0, 600_150.0, 4_109_950.0),
        ],
        crs=32637,
    ).to_file(path)
    sar = SAR(scene_dir / "sar.tif")
    with pytest.raises(
        RuntimeError,
        match=r"SAR\('.*sar\.tif'\) and OSMBuildings\('.*outside\.gpkg'\) have no "
        r"spatial intersection: the first covers x 500000\.0 to 500160\.0, y "
        r"4109840\.0 to 4110000\.0, the second x 600040\.0 to 600150\.0.*"
        r"EPSG:32637.*CRS is right",
    ):
        sar & OSMBuildings(path)
    # Also when the footprints join an intersection (sar & dsm) & footprints.
    from torchgeo_quake.datasets import CartoSatDSM

    with pytest.raises(RuntimeError, match=r"\(SAR\(.*\) & CartoSatDSM\(.*outside"):
        (sar & CartoSatDSM(scene_dir / "dsm.tif")) & OSMBuildings(path)
