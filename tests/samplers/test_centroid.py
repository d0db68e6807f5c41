from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import shapely
import torch
from torch.utils.data import DataLoader
from torchgeo.datasets import stack_samples

from torchgeo_quake.datasets import CartoSatDSM, OSMBuildings
from torchgeo_quake.datasets.raster import CachedRasterDataset
from torchgeo_quake.samplers import BuildingCentroidSampler, find_datasets


class SAR(CachedRasterDataset):
    sample_key = "sar"
    filename_glob = "sar.tif"


@pytest.fixture
def dataset(scene_dir: Path):  # type: ignore[no-untyped-def]
    sar = SAR(scene_dir / "sar.tif")
    dsm = CartoSatDSM(scene_dir / "dsm_4326.tif")
    fp = OSMBuildings(
        scene_dir / "buildings.gpkg", damage=scene_dir / "destroyed.geojson", city="t"
    )
    return sar & dsm & fp


def test_one_query_per_building_and_skips(dataset) -> None:  # type: ignore[no-untyped-def]
    sampler = BuildingCentroidSampler(dataset, size=16, negatives_per_positive=None)
    reasons = dict(
        zip(sampler.skipped["building_id"], sampler.skipped["reason"], strict=False)
    )
    assert reasons[7] == "outside the SAR image"
    assert reasons[8] == "on SAR nodata"
    assert set(sampler.buildings["building_id"]) == {1, 2, 3, 4, 5, 6, 9}
    assert len(sampler) == 7
    for query in sampler:
        sample = dataset[query]
        assert sample["sar"].shape == (1, 16, 16)
        assert sample["dsm"].shape == (1, 16, 16)
        assert sample["footprint"].shape == (1, 16, 16)
        assert int(sample["building_id"]) in {1, 2, 3, 4, 5, 6, 9}
        # Window centred on the centroid: the footprint touches the centre.
        assert sample["footprint"][0, 6:10, 6:10].sum() > 0


def test_windows_snap_to_sar_grid(dataset) -> None:  # type: ignore[no-untyped-def]
    sampler = BuildingCentroidSampler(dataset, size=32, negatives_per_positive=None)
    for x, y, _ in sampler:
        assert ((x.start - 500_000.0) / 2.5) % 1 == pytest.approx(0.0, abs=1e-6)
        assert ((4_110_000.0 - y.stop) / 2.5) % 1 == pytest.approx(0.0, abs=1e-6)
        assert round((x.stop - x.start) / x.step) == 32


def test_negative_sampling_ratio_and_seed(dataset) -> None:  # type: ignore[no-untyped-def]
    one = BuildingCentroidSampler(dataset, size=16, negatives_per_positive=1, seed=1)
    counts = one.counts()
    assert counts.loc["t", "damaged"] == 2 and counts.loc["t", "intact"] == 2
    again = BuildingCentroidSampler(dataset, size=16, negatives_per_positive=1, seed=1)
    assert list(one.buildings["building_id"]) == list(again.buildings["building_id"])
    many = {
        tuple(
            BuildingCentroidSampler(
                dataset, size=16, negatives_per_positive=1, seed=s
            ).buildings["building_id"]
        )
        for s in range(8)
    }
    assert len(many) > 1
    capped = BuildingCentroidSampler(dataset, size=16, negatives_per_positive=20)
    assert capped.counts().loc["t", "intact"] == 5  # all available intact ones


def test_city_and_roi_filters(dataset) -> None:  # type: ignore[no-untyped-def]
    assert len(BuildingCentroidSampler(dataset, size=16, cities=["elsewhere"])) == 0
    fp = find_datasets(dataset, OSMBuildings)[0]
    cx, cy = fp.centroids[0]
    roi = shapely.box(cx - 5, cy - 5, cx + 5, cy + 5)
    sampler = BuildingCentroidSampler(
        dataset, size=16, negatives_per_positive=None, roi=roi
    )
    assert list(sampler.buildings["building_id"]) == [
        int(fp.buildings["building_id"][0])
    ]


def test_shuffle_and_dataloader(dataset) -> None:  # type: ignore[no-untyped-def]
    sampler = BuildingCentroidSampler(
        dataset,
        size=16,
        negatives_per_positive=None,
        shuffle=True,
        generator=torch.Generator().manual_seed(0),
    )
    loader = DataLoader(
        dataset, batch_size=4, sampler=sampler, collate_fn=stack_samples, num_workers=2
    )
    ids = []
    for batch in loader:
        assert batch["sar"].shape[1:] == (1, 16, 16)
        ids.extend(batch["building_id"].tolist())
    assert sorted(ids) == [1, 2, 3, 4, 5, 6, 9]


def test_requires_footprints(scene_dir: Path) -> None:
    with pytest.raises(ValueError, match="contains OSMBuildings"):
        BuildingCentroidSampler(SAR(scene_dir / "sar.tif"))
    with pytest.raises(ValueError, match="size"):
        BuildingCentroidSampler(OSMBuildings(scene_dir / "buildings.gpkg"), size=0)


def test_footprints_only_dataset_uses_exact_centroids(scene_dir: Path) -> None:
    fp = OSMBuildings(scene_dir / "buildings.gpkg", crs="EPSG:32637", res=2.5)
    sampler = BuildingCentroidSampler(fp, size=8, negatives_per_positive=None)
    assert len(sampler) == 9 and sampler.skipped.empty
    x, y, _ = next(iter(sampler))
    row = sampler.buildings.iloc[0]
    assert (x.start + x.stop) / 2 == pytest.approx(row["cx"])
    np.testing.assert_allclose((y.start + y.stop) / 2, row["cy"])


# ---------------------------------------------------------------- branches
def _shifted_city(tmp_path: Path, scene_dir: Path, dx: float) -> tuple[Path, Path]:
    """The test scene moved *dx* metres east: a second, disjoint city."""
    import geopandas as gpd
    import rasterio
    from affine import Affine

    with rasterio.open(scene_dir / "sar.tif") as src:
        profile, data = src.profile, src.read()
        t = src.transform
    profile["transform"] = Affine(t.a, t.b, t.c + dx, t.d, t.e, t.f)
    folder = tmp_path / f"city_{int(dx)}"
    folder.mkdir()
    sar = folder / "sar.tif"
    with rasterio.open(sar, "w", **profile) as dst:
        dst.write(data)
    frame = gpd.read_file(scene_dir / "buildings.gpkg").to_crs(32637)
    frame["geometry"] = frame.translate(dx, 0)
    buildings = folder / "buildings.gpkg"
    frame.to_file(buildings)
    return sar, buildings


def test_union_of_cities_pairs_footprints_with_their_own_sar(
    tmp_path: Path, scene_dir: Path
) -> None:
    sar_b, fp_b = _shifted_city(tmp_path, scene_dir, 1000.0)
    a = SAR(scene_dir / "sar.tif") & OSMBuildings(
        scene_dir / "buildings.gpkg", damage=scene_dir / "destroyed.geojson", city="a"
    )
    b = SAR(sar_b) & OSMBuildings(fp_b, city="b")
    union = a | b
    with pytest.warns(UserWarning, match="skipped 4 of 18"):
        sampler = BuildingCentroidSampler(union, size=16, negatives_per_positive=None)
    counts = sampler.counts()
    assert counts.loc["a"].sum() == 7 and counts.loc["b"].sum() == 7
    assert set(sampler.skipped["reason"]) == {"outside the SAR image", "on SAR nodata"}
    assert (sampler.skipped["city"] == "b").sum() == 2
    rows = sampler.buildings[["city", "building_id"]].itertuples(index=False)
    for query, (city, bid) in zip(sampler, rows, strict=True):
        sample = union[query]
        assert sample["city"] == city and int(sample["building_id"]) == bid
        assert float(sample["sar"].abs().sum()) > 0
        assert float(sample["footprint"][0, 6:10, 6:10].sum()) > 0


def test_reference_is_the_sar_even_when_the_dsm_comes_first(
    tmp_path: Path, scene_dir: Path
) -> None:
    import rasterio
    from affine import Affine

    with rasterio.open(scene_dir / "dsm.tif") as src:
        profile, data = src.profile, src.read()
        t = src.transform
    profile["transform"] = Affine(t.a, t.b, t.c - 1.3, t.d, t.e, t.f + 1.3)
    with rasterio.open(tmp_path / "dsm.tif", "w", **profile) as dst:
        dst.write(data)
    dsm = CartoSatDSM(tmp_path / "dsm.tif")
    sar = SAR(scene_dir / "sar.tif")
    fp = OSMBuildings(scene_dir / "buildings.gpkg")
    dataset = dsm & sar & fp
    sampler = BuildingCentroidSampler(dataset, size=8, negatives_per_positive=None)
    assert sampler.reference is sar
    assert sampler.res == (5.0, 5.0)  # the first dataset's, as in TorchGeo
    for x, y, _ in sampler:
        assert ((x.start - 500_000.0) / 5.0) % 1 == pytest.approx(0.0, abs=1e-6)
        assert ((4_110_000.0 - y.stop) / 5.0) % 1 == pytest.approx(0.0, abs=1e-6)
    # The DSM was moved onto the SAR lattice, so its patches are slices.
    left, top = dsm.grid_origin()
    assert ((left - 500_000.0) / 5.0) % 1 == pytest.approx(0.0, abs=1e-6)
    assert ((4_110_000.0 - top) / 5.0) % 1 == pytest.approx(0.0, abs=1e-6)


# ---------------------------------------------------------- DSM coverage
def _partial_dsm(tmp_path: Path, scene_dir: Path, hole: bool) -> Path:
    import rasterio
    from rasterio.windows import Window

    with rasterio.open(scene_dir / "dsm.tif") as src:
        win = Window(0, 0, 16, 32) if not hole else Window(0, 0, 32, 32)
        profile = src.profile
        profile.update(
            width=win.width,
            height=win.height,
            transform=src.window_transform(win),
            nodata=np.nan,
        )
        data = src.read(window=win)
    if hole:
        data[:, 0:12, 0:12] = np.nan  # nodata over building 1 (x 40 m, y 40 m)
    path = tmp_path / ("dsm_hole.tif" if hole else "dsm_left.tif")
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
    return path


def test_buildings_outside_the_dsm_are_skipped(tmp_path: Path, scene_dir: Path) -> None:
    dsm = CartoSatDSM(_partial_dsm(tmp_path, scene_dir, hole=False), heights="absolute")
    dataset = (
        SAR(scene_dir / "sar.tif") & dsm & OSMBuildings(scene_dir / "buildings.gpkg")
    )
    with pytest.warns(UserWarning, match="outside the DSM"):
        sampler = BuildingCentroidSampler(dataset, size=16, negatives_per_positive=None)
    reasons = dict(
        zip(sampler.skipped["building_id"], sampler.skipped["reason"], strict=True)
    )
    assert reasons[7] == "outside the SAR image" and reasons[8] == "on SAR nodata"
    assert {b for b, r in reasons.items() if r == "outside the DSM"} == {2, 4, 6, 9}
    assert set(sampler.buildings["building_id"]) == {1, 3, 5}
    for query in sampler:  # no IndexError, no zero-filled DSM pixels
        assert float(dataset[query]["dsm"].min()) > 700


def test_buildings_on_dsm_nodata_are_skipped(tmp_path: Path, scene_dir: Path) -> None:
    dsm = CartoSatDSM(_partial_dsm(tmp_path, scene_dir, hole=True), heights="absolute")
    dataset = (
        SAR(scene_dir / "sar.tif") & dsm & OSMBuildings(scene_dir / "buildings.gpkg")
    )
    with pytest.warns(UserWarning, match="on DSM nodata"):
        sampler = BuildingCentroidSampler(dataset, size=16, negatives_per_positive=None)
    on_nodata = sampler.skipped.loc[
        sampler.skipped["reason"] == "on DSM nodata", "building_id"
    ]
    assert 1 in set(on_nodata) and 1 not in set(sampler.buildings["building_id"])
    for query in sampler:
        assert float(dataset[query]["dsm"].min()) > 700
    loose = BuildingCentroidSampler(
        dataset, size=16, negatives_per_positive=None, max_nodata=1.0
    )
    assert 1 in set(loose.buildings["building_id"])


# ------------------------------------------------------ identical windows
def test_buildings_with_the_same_window_are_sampled_once(
    tmp_path: Path, scene_dir: Path
) -> None:
    import geopandas as gpd

    # Centroids 0.5 m apart (same SAR pixel), and a third 3 m away (next pixel).
    x0, y0 = 500_040.0, 4_109_940.0
    frame = gpd.GeoDataFrame(
        {"osm_id": [1, 2, 3]},
        geometry=[
            shapely.box(x0, y0, x0 + 10, y0 + 10),
            shapely.box(x0 + 0.5, y0, x0 + 10.5, y0 + 10),
            shapely.box(x0 + 3.0, y0 + 1, x0 + 12.0, y0 + 10),
        ],
        crs=32637,
    )
    frame.to_file(tmp_path / "close.gpkg")
    fp = OSMBuildings(tmp_path / "close.gpkg")
    dataset = SAR(scene_dir / "sar.tif") & fp
    with pytest.warns(UserWarning, match="same window as building 1: 1"):
        sampler = BuildingCentroidSampler(dataset, size=16, negatives_per_positive=None)
    assert sampler.skipped[["building_id", "reason"]].values.tolist() == [
        [2, "same window as building 1"]
    ]
    assert list(sampler.buildings["building_id"]) == [1, 3]
    # Each query returns the building it was made for, although the centroid of
    # building 2 is nearer to the centre of building 3's window than building 3's.
    for query, bid in zip(sampler, sampler.buildings["building_id"], strict=True):
        sample = dataset[query]
        assert int(sample["building_id"]) == bid
        geom = frame.geometry[frame["osm_id"] == bid].iloc[0]
        np.testing.assert_allclose(
            sample["centroid"].numpy(), [geom.centroid.x, geom.centroid.y]
        )


# ---------------------------------------------------------------- warnings
def test_city_without_damage_warns(scene_dir: Path) -> None:
    dataset = SAR(scene_dir / "sar.tif") & OSMBuildings(
        scene_dir / "buildings.gpkg", city="quiet"
    )
    with pytest.warns(UserWarning, match=r"'quiet' has no damaged building.*=None"):
        sampler = BuildingCentroidSampler(dataset, size=16)
    assert len(sampler) == 0
    assert len(BuildingCentroidSampler(dataset, size=16, negatives_per_positive=None))


def test_skips_are_warned_with_counts(dataset) -> None:  # type: ignore[no-untyped-def]
    with pytest.warns(
        UserWarning,
        match=r"skipped 2 of 9 buildings \((outside the SAR image: 1, on SAR "
        r"nodata: 1|on SAR nodata: 1, outside the SAR image: 1)\)",
    ):
        BuildingCentroidSampler(dataset, size=16, negatives_per_positive=None)
