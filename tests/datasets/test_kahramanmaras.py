from __future__ import annotations

import os
import shutil
from pathlib import Path

import matplotlib
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader
from torchgeo.datasets import stack_samples

from torchgeo_quake.datasets import GEM_FEATURE_NAMES, TABLE_II, KahramanmarasDamage
from torchgeo_quake.datasets.simulation import scaled_counts
from torchgeo_quake.datasets.simulation.cities import get_city

matplotlib.use("Agg")


def test_counts_follow_table_ii_at_scale(sim_root: Path) -> None:
    ds = KahramanmarasDamage(sim_root, scale=0.05)
    counts = ds.counts()
    for city in ds.all_cities:
        intact, damaged = scaled_counts(get_city(city), 0.05)
        assert counts.loc[city, "damaged"] == damaged
        # 20 negatives per positive, capped by the available intact buildings.
        assert counts.loc[city, "intact"] == min(intact, 20 * damaged)
    assert len(ds) == counts.loc["all", "total"]


def test_table_ii_constant_is_the_paper() -> None:
    assert TABLE_II == {
        "islahiye": (3825, 192),
        "kahramanmaras": (4641, 233),
        "nurdagi": (3289, 498),
        "osmaniye": (317, 16),
        "turkoglu": (453, 23),
    }
    assert sum(a + b for a, b in TABLE_II.values()) == 13_487


def test_sample_contents(sim_root: Path) -> None:
    ds = KahramanmarasDamage(sim_root, scale=0.05)
    sample = ds[0]
    assert sample["sar"].shape == (1, 32, 32)
    assert sample["footprint"].shape == (1, 32, 32)
    assert sample["dsm"].shape == (1, 32, 32)
    assert sample["gem"].shape == (len(GEM_FEATURE_NAMES),)
    assert sample["label"].dtype == torch.long
    assert sample["city"] in ds.all_cities
    assert torch.isfinite(sample["sar"]).all() and torch.isfinite(sample["gem"]).all()
    assert sample["footprint"][0, 12:20, 12:20].sum() > 0  # centred on the building
    ids = list(zip(ds.city_of, ds.building_ids, strict=True))
    assert len(set(ids)) == len(ids)


def test_damaged_and_intact_differ_in_sar(sim_root: Path) -> None:
    ds = KahramanmarasDamage(sim_root, scale=0.05)
    arrays = ds.arrays()
    # Intact buildings have bright double-bounce lines: higher maximum return.
    peak = arrays["sar"].reshape(len(ds), -1).max(axis=1)
    assert peak[ds.labels == 0].mean() > peak[ds.labels == 1].mean()


def test_modalities_subset_and_dataloader(sim_root: Path) -> None:
    ds = KahramanmarasDamage(sim_root, modalities=["sar", "footprint"], scale=0.05)
    assert "dsm" not in ds[0] and "gem" not in ds[0]
    batch = next(iter(DataLoader(ds, batch_size=8, collate_fn=stack_samples)))
    assert batch["sar"].shape == (8, 1, 32, 32)
    assert len(batch["city"]) == 8


def test_cache_is_reused_and_keyed(sim_root: Path) -> None:
    first = KahramanmarasDamage(sim_root, scale=0.05)
    again = KahramanmarasDamage(sim_root, scale=0.05)
    assert again.build_seconds < first.build_seconds + 1
    np.testing.assert_array_equal(first.arrays()["sar"], again.arrays()["sar"])
    other = KahramanmarasDamage(sim_root, scale=0.05, negatives_per_positive=2)
    assert len(other) < len(first)


def test_plot(sim_root: Path) -> None:
    ds = KahramanmarasDamage(sim_root, scale=0.05)
    damaged = int(np.flatnonzero(ds.labels == 1)[0])
    fig = ds.plot(ds[damaged])
    assert len(fig.axes) == 3
    assert "damaged" in fig._suptitle.get_text()  # type: ignore[union-attr]


def test_missing_city_lists_files(sim_root: Path, tmp_path: Path) -> None:
    root = tmp_path / "partial"
    shutil.copytree(sim_root / "nurdagi", root / "nurdagi")
    with pytest.raises(FileNotFoundError, match=r"islahiye[/\\]sar.tif"):
        KahramanmarasDamage(root, simulate=True)
    ds = KahramanmarasDamage(root, cities=["nurdagi"], cache=False)
    assert set(ds.city_of) == {"nurdagi"}
    os.remove(root / "nurdagi" / "dsm.tif")
    with pytest.raises(FileNotFoundError, match="drop the missing modalities"):
        KahramanmarasDamage(root, cities=["nurdagi"])
    ds = KahramanmarasDamage(
        root, cities=["nurdagi"], modalities=["sar", "footprint", "gem"], cache=False
    )
    assert "dsm" not in ds[0]


def test_bad_arguments(sim_root: Path) -> None:
    with pytest.raises(ValueError, match="unknown cities"):
        KahramanmarasDamage(sim_root, cities=["ankara"])
    with pytest.raises(ValueError, match="unknown modalities"):
        KahramanmarasDamage(sim_root, modalities=["sar", "footprint", "optical"])
    with pytest.raises(ValueError, match="must include"):
        KahramanmarasDamage(sim_root, modalities=["dsm"])
