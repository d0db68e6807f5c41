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
