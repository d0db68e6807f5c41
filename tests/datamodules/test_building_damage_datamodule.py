"""BuildingDamageDataModule: the paper's splits on any folder of areas."""

from __future__ import annotations

import inspect
import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from torchgeo_quake.datamodules import (
    BuildingDamageDataModule,
    KahramanmarasDamageDataModule,
    PairedFlipRotate,
    sar_pixel_size,
)
from torchgeo_quake.datamodules import kahramanmaras as kahramanmaras_module
from torchgeo_quake.datasets import BuildingDamage, KahramanmarasDamage

#: Areas of the tiny event: copies of two cities of the session's scene.
AREAS = {"north": "nurdagi", "south": "islahiye"}


@pytest.fixture(scope="module")
def event(sim_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("event") / "my_event"
    for area, city in AREAS.items():
        shutil.copytree(sim_root / city, root / area)
    return root


def module(root: Path, **kwargs: object) -> BuildingDamageDataModule:
    return BuildingDamageDataModule(
        root=root,
        modalities=["sar", "footprint"],
        num_folds=2,
        **kwargs,  # type: ignore[arg-type]
    )


def setup(dm: BuildingDamageDataModule) -> BuildingDamage:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # windows outside the image
        dm.setup("fit")
    assert isinstance(dm.dataset, BuildingDamage)
    return dm.dataset


def test_sets_up_splits_and_statistics(event: Path, tmp_path: Path) -> None:
    dm = module(event, splits_file=str(tmp_path / "splits.json"))
    dataset = setup(dm)
    assert type(dataset) is BuildingDamage
    assert dataset.areas == ("north", "south")
    assert set(dataset.labels.tolist()) == {0, 1}
    parts = [set(dm.indices[s].tolist()) for s in ("train", "val", "test")]
    assert all(parts)
    assert not (parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2])
    assert set().union(*parts) == set(range(len(dataset)))
    for split in ("train", "test"):  # stratified by area x label
        assert set(dataset.city_of[dm.indices[split]]) == {"north", "south"}
    saved = json.loads((tmp_path / "splits.json").read_text())
    assert saved["strategy"] == "cv"
    assert (
        saved["test"]["building_id"]
        == dataset.building_ids[dm.indices["test"]].tolist()
    )
    assert set(saved["train"]["city"]) == {"north", "south"}

    assert dm.input_spec() == {"radiometry": "db", "sar_res": 2.5, "patch_size": 32}
    stats = dm.normalization_stats()
    assert set(stats) == {"sar_mean", "sar_std"}
    sar = dataset.arrays()["sar"][dm.indices["train"]].astype(np.float64)
    assert float(stats["sar_mean"]) == pytest.approx(sar.mean(), rel=1e-5)
    assert float(stats["sar_std"]) == pytest.approx(sar.std(), rel=1e-5)

    batch = next(iter(dm.train_dataloader()))
    assert batch["sar"].shape == (64, 1, 32, 32)
    assert set(batch["city"]) <= {"north", "south"}
    assert set(batch["label"].tolist()) <= {0, 1}
    assert isinstance(dm.train_aug, PairedFlipRotate)


def test_leave_one_area_out_and_one_area(event: Path) -> None:
    loco = module(event, strategy="loco", test_city="south")
    dataset = setup(loco)
    assert set(dataset.city_of[loco.indices["test"]]) == {"south"}
    assert set(dataset.city_of[loco.indices["train"]]) == {"north"}
    assert set(dataset.city_of[loco.indices["val"]]) == {"north"}
    single = module(event, strategy="city", city="north", areas=["north", "south"])
    dataset = setup(single)
    used = np.concatenate(list(single.indices.values()))
    assert set(dataset.city_of[used]) == {"north"}
    with pytest.raises(ValueError, match="test_city"):
        setup(module(event, strategy="loco", test_city="nurdagi"))


def test_reference_options_reach_the_dataset(event: Path) -> None:
    grades = {"No visible damage": 0, "Possibly damaged": 1, "Damaged": 1}
    dm = module(
        event,
        areas=["north"],
        id_field="osm_id",
        damage_schema="hotosm",
        grade_map=grades,
        damage_max_distance=5.0,
    )
    dataset = setup(dm)
    assert dataset.areas == ("north",)
    assert dataset.damage_schema == "hotosm"
    assert dataset.grade_map == grades
    assert dataset.damage_max_distance == 5.0
    assert dataset.label_field is None


def test_missing_root_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "my_event"
    with pytest.raises(FileNotFoundError, match="my_event"):
        module(missing).setup("fit")


def test_kahramanmaras_module_is_a_thin_subclass(sim_root: Path) -> None:
    dm = KahramanmarasDamageDataModule(root=sim_root, scale=0.05, cities=["nurdagi"])
    assert isinstance(dm, BuildingDamageDataModule)
    assert dm.dataset_class is KahramanmarasDamage
    assert dm.kwargs["scale"] == 0.05 and dm.kwargs["cities"] == ["nurdagi"]
    params = inspect.signature(KahramanmarasDamageDataModule).parameters
    assert {"cities", "scale", "simulate"} <= set(params)
    assert "areas" not in params
    assert params["root"].default == "data/kahramanmaras"
    # One copy of the shared helpers.
    assert kahramanmaras_module.PairedFlipRotate is PairedFlipRotate
    assert kahramanmaras_module.sar_pixel_size is sar_pixel_size
    spec = dm.input_spec()
    assert spec["sar_res"] == 2.5
    assert torch.is_tensor(dm.normalization_stats()["gem_mean"])
