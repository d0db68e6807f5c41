from __future__ import annotations

import copy
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
import pandas as pd
import pytest
import torch
from torch.utils.data import DataLoader
from torchgeo.datasets import stack_samples

from torchgeo_quake.datasets import GEM_FEATURE_NAMES, TABLE_II, KahramanmarasDamage
from torchgeo_quake.datasets.kahramanmaras import REPORT_COLUMNS
from torchgeo_quake.simulation import scaled_counts
from torchgeo_quake.simulation.cities import get_city

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


def _one_city(sim_root: Path, folder: Path, city: str = "osmaniye") -> Path:
    """Copy one city of the session scene (with its scene.json) into *folder*."""
    root = folder / "scene"
    shutil.copytree(sim_root / city, root / city)
    shutil.copy2(sim_root / "scene.json", root / "scene.json")
    return root


def _build(root: Path, **kwargs: object) -> KahramanmarasDamage:
    return KahramanmarasDamage(root, cities=["osmaniye"], scale=0.05, **kwargs)  # type: ignore[arg-type]


def _assert_same_samples(a: KahramanmarasDamage, b: KahramanmarasDamage) -> None:
    first, second = a.arrays(), b.arrays()
    assert first.keys() == second.keys()
    for key in first:
        np.testing.assert_array_equal(first[key], second[key])
    pd.testing.assert_frame_equal(a.report(), b.report())
    pd.testing.assert_frame_equal(a.skipped, b.skipped)


def _no_extraction(self: KahramanmarasDamage) -> None:
    raise AssertionError("the samples were extracted again")


def _cache_files(folder: Path) -> list[Path]:
    return sorted(folder.glob("samples-*.npz"))


def test_cache_is_used_keyed_and_rebuilt(
    sim_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = _one_city(sim_root, tmp_path)
    first = _build(root)
    (cache_file,) = _cache_files(root / ".cache")
    assert cache_file.name == f"samples-{first._cache_key(first._cache_state())}.npz"
    # The second build loads the cache: extraction is not called.
    monkeypatch.setattr(KahramanmarasDamage, "_extract", _no_extraction)
    _assert_same_samples(first, _build(root))
    # Touching an input file gives a new key: the samples are extracted again.
    path = root / "osmaniye" / "gem.csv"
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    with pytest.raises(AssertionError, match="extracted again"):
        _build(root)
    monkeypatch.undo()
    rebuilt = _build(root)
    _assert_same_samples(first, rebuilt)
    (new_file,) = _cache_files(root / ".cache")  # the stale file was deleted
    assert new_file != cache_file


def test_cache_key_covers_versions_and_data_layer(
    sim_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from torchgeo_quake.datasets import building_damage, kahramanmaras

    root = _one_city(sim_root, tmp_path)
    first = _build(root)
    state = first._cache_state()
    assert state["package"] == building_damage.__version__
    assert state["simulator"] == kahramanmaras.SIMULATOR_VERSION
    layer = state["data_layer"]
    assert layer["OSMBuildings"]["damage_overlap"] == "0.5"
    assert layer["BuildingWindows"]["max_nodata"] == "0.0"
    assert layer["CSKSAR"]["db_floor"] == "None"
    # Other parameters: a second cache file; both stay (their inputs are current).
    _build(root, modalities=["sar", "footprint"])
    assert len(_cache_files(root / ".cache")) == 2
    _build(root)
    assert len(_cache_files(root / ".cache")) == 2
    for module, name, value in (
        (building_damage, "__version__", "99.0"),
        (kahramanmaras, "SIMULATOR_VERSION", 99),
    ):
        with monkeypatch.context() as patch:
            patch.setattr(module, name, value)
            patch.setattr(KahramanmarasDamage, "_extract", _no_extraction)
            with pytest.raises(AssertionError, match="extracted again"):
                _build(root)
    changed = {**state, "data_layer": {**layer, "OSMBuildings": {}}}
    assert first._cache_key(changed) != first._cache_key(state)
    # A new version makes every older cache file of the root stale.
    monkeypatch.setattr(building_damage, "__version__", "99.0")
    _build(root)
    assert len(_cache_files(root / ".cache")) == 1


def test_cache_dir_and_unwritable_cache(sim_root: Path, tmp_path: Path) -> None:
    root = _one_city(sim_root, tmp_path)
    elsewhere = tmp_path / "cache"
    first = _build(root, cache_dir=elsewhere)
    assert len(_cache_files(elsewhere)) == 1
    assert not (root / ".cache").exists()
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.warns(UserWarning, match="cannot write the sample cache.*cache_dir="):
        ds = _build(root, cache_dir=blocker / "cache")
    _assert_same_samples(first, ds)
    # An unreadable cache file is reported and rebuilt.
    (cache_file,) = _cache_files(elsewhere)
    cache_file.write_bytes(b"truncated")
    with pytest.warns(UserWarning, match="unreadable"):
        _assert_same_samples(first, _build(root, cache_dir=elsewhere))
    assert np.load(cache_file)["label"].shape == first.labels.shape


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
    # Without scene.json the root is real data: the scale is not checked.
    ds = KahramanmarasDamage(root, cities=["nurdagi"], cache=False)
    assert set(ds.city_of) == {"nurdagi"}
    os.remove(root / "nurdagi" / "dsm.tif")
    with pytest.raises(FileNotFoundError, match=r"drop the missing modalities \(dsm\)"):
        KahramanmarasDamage(root, cities=["nurdagi"])
    ds = KahramanmarasDamage(
        root, cities=["nurdagi"], modalities=["sar", "footprint", "gem"], cache=False
    )
    assert "dsm" not in ds[0]
    os.remove(root / "nurdagi" / "gem.csv")
    with pytest.raises(FileNotFoundError, match=r"modalities \(dsm, gem\)"):
        KahramanmarasDamage(root, cities=["nurdagi"])
    ds = KahramanmarasDamage(
        root, cities=["nurdagi"], modalities=["sar", "footprint"], cache=False
    )
    os.remove(root / "nurdagi" / "destroyed.geojson")
    with pytest.raises(FileNotFoundError, match=r"destroyed\.geojson") as info:
        KahramanmarasDamage(root, cities=["nurdagi"], modalities=["sar", "footprint"])
    assert "drop the missing modalities" not in str(info.value)


def test_scene_of_another_scale_or_seed_is_refused(sim_root: Path) -> None:
    with pytest.raises(ValueError, match=r"scale 0\.05 \(seed 0\).*scale=1 was"):
        KahramanmarasDamage(sim_root)
    with pytest.raises(ValueError, match=r"Pass scale=0\.05 to use it"):
        KahramanmarasDamage(sim_root, scale=0.2)
    with pytest.raises(ValueError, match=r"seed 0 .*scene_seed=3 was asked"):
        KahramanmarasDamage(sim_root, scale=0.05, scene_seed=3)
    # Another sampling seed on the same scene is fine (protocol seeds do this).
    ds = KahramanmarasDamage(sim_root, scale=0.05, seed=3, scene_seed=0, cache=False)
    assert ds.scene is not None and ds.scene["seed"] == 0
    # simulate=False reads the root as it is.
    as_is = KahramanmarasDamage(sim_root, simulate=False, cache=False)
    pd.testing.assert_frame_equal(as_is.counts(), ds.counts())


def test_only_the_requested_cities_are_simulated(
    sim_root: Path, tmp_path: Path
) -> None:
    root = tmp_path / "fresh"
    ds = KahramanmarasDamage(root, cities=["turkoglu"], scale=0.05, cache=False)
    assert sorted(p.name for p in root.iterdir()) == ["scene.json", "turkoglu"]
    assert set(ds.city_of) == {"turkoglu"}
    # The same files as in the five-city scene of the same scale and seed.
    for name in ("sar.tif", "gem.csv", "destroyed.geojson"):
        assert (root / "turkoglu" / name).read_bytes() == (
            sim_root / "turkoglu" / name
        ).read_bytes()
    before = (root / "turkoglu" / "sar.tif").stat().st_mtime_ns
    both = KahramanmarasDamage(
        root, cities=["osmaniye", "turkoglu"], scale=0.05, cache=False
    )
    assert both.scene is not None
    assert both.scene["parameters"]["cities"] == ["osmaniye", "turkoglu"]
    assert (root / "turkoglu" / "sar.tif").stat().st_mtime_ns == before
    expected = KahramanmarasDamage(
        sim_root, cities=["osmaniye", "turkoglu"], scale=0.05, cache=False
    )
    pd.testing.assert_frame_equal(both.counts(), expected.counts())


def test_torchgeo_messages_only_when_verbose(
    sim_root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _build(sim_root, cache=False)
    assert capsys.readouterr().out == ""
    _build(sim_root, cache=False, verbose=True)
    out = capsys.readouterr().out
    assert "Converting CartoSatDSM res" in out and "osmaniye: " in out


def _edit_damage(path: Path, features: Callable[[list[Any]], list[Any]]) -> None:
    layer = json.loads(path.read_text(encoding="utf-8"))
    layer["features"] = features(layer["features"])
    path.write_text(json.dumps(layer), encoding="utf-8")


def _unmatched(features: list[Any]) -> list[Any]:
    ghost = copy.deepcopy(features[0])
    ghost["properties"]["osm_id"] = 1  # no footprint has this id
    return [*features, ghost]


def test_report_and_warnings_about_dropped_buildings(
    sim_root: Path, tmp_path: Path
) -> None:
    root = _one_city(sim_root, tmp_path)
    shutil.copytree(sim_root / "turkoglu", root / "turkoglu")
    cities = ["osmaniye", "turkoglu"]
    ds = KahramanmarasDamage(root, cities=cities, scale=0.05, cache=False)
    report = ds.report()
    assert list(report.columns) == list(REPORT_COLUMNS)
    assert list(report.index) == [*cities, "all"]
    pd.testing.assert_frame_equal(
        report[["intact", "damaged"]], ds.counts()[["intact", "damaged"]]
    )
    for city in cities:
        row = report.loc[city]
        summary = json.loads((root / "scene.json").read_text())["cities"][city]
        assert row["footprints"] == summary["buildings"]
        assert row["skipped_windows"] == (ds.skipped["city"] == city).sum()
        assert row["skipped_windows"] == summary["buildings_outside_sar"]
        assert row["available_intact"] == summary["intact_reference"]
        assert row["available_damaged"] == summary["damaged_reference"]
        assert row["unmatched_damage"] == 0

    # A city without damaged buildings and a damage feature without footprint.
    _edit_damage(root / "osmaniye" / "destroyed.geojson", lambda features: [])
    _edit_damage(root / "turkoglu" / "destroyed.geojson", _unmatched)
    with pytest.warns(UserWarning, match="KahramanmarasDamage") as record:
        ds = KahramanmarasDamage(root, cities=cities, scale=0.05)
    messages = [str(w.message) for w in record]
    assert any(
        "osmaniye yields no samples: it has no damaged building" in m
        and "negatives_per_positive=None" in m
        for m in messages
    )
    assert any(
        "1 damage feature(s)" in m and "match no footprint of turkoglu" in m
        for m in messages
    )
    report = ds.report()
    assert report.loc["osmaniye", ["intact", "damaged"]].tolist() == [0, 0]
    assert report.loc["osmaniye", "available_intact"] == 17
    assert report.loc["turkoglu", "unmatched_damage"] == 1
    # Loaded from the cache, the report and the warnings are the same.
    with pytest.warns(UserWarning, match="match no footprint of turkoglu"):
        again = KahramanmarasDamage(root, cities=cities, scale=0.05)
    pd.testing.assert_frame_equal(again.report(), report)
    # Keeping every building, the intact ones of Osmaniye are sampled.
    kept = KahramanmarasDamage(
        root, cities=cities, scale=0.05, negatives_per_positive=None, cache=False
    )
    assert kept.counts().loc["osmaniye", "intact"] == 17
    # No city yields a sample: an error, not an empty dataset.
    with pytest.raises(ValueError, match="no sample"):
        KahramanmarasDamage(root, cities=["osmaniye"], scale=0.05, cache=False)


def test_negatives_are_undersampled_per_city(sim_root: Path) -> None:
    every = KahramanmarasDamage(sim_root, scale=0.05, negatives_per_positive=None)
    few = KahramanmarasDamage(sim_root, scale=0.05, negatives_per_positive=5)
    other = KahramanmarasDamage(sim_root, scale=0.05, negatives_per_positive=5, seed=1)
    available, counts = every.counts(), few.counts()
    for city in few.all_cities:
        damaged = available.loc[city, "damaged"]
        assert 5 * damaged < available.loc[city, "intact"]  # really undersampled
        assert counts.loc[city, "damaged"] == damaged
        assert counts.loc[city, "intact"] == 5 * damaged
        assert (
            few.report().loc[city, "available_intact"] == available.loc[city, "intact"]
        )

    def pairs(ds: KahramanmarasDamage, label: int) -> set[tuple[str, int]]:
        keep = ds.labels == label
        return set(zip(ds.city_of[keep], ds.building_ids[keep].tolist(), strict=True))

    assert pairs(few, 1) == pairs(every, 1) == pairs(other, 1)
    assert pairs(few, 0) < pairs(every, 0) and pairs(other, 0) < pairs(every, 0)
    assert pairs(few, 0) != pairs(other, 0)


@pytest.mark.slow
def test_full_scene_counts_are_table_ii(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """The default scene, built through the dataset, has the paper's Table II."""
    root = tmp_path_factory.mktemp("full") / "kahramanmaras"
    ds = KahramanmarasDamage(root, modalities=["sar", "footprint"], cache=False)
    counts = ds.counts()
    got = {
        c: (int(counts.loc[c, "intact"]), int(counts.loc[c, "damaged"]))
        for c in TABLE_II
    }
    assert got == TABLE_II
    assert len(ds) == counts.loc["all", "total"] == 13_487
    # Counts come from construction: the 20:1 sampling drops no building.
    report = ds.report()
    assert (report["available_intact"] == report["intact"]).all()
    assert (report["available_damaged"] == report["damaged"]).all()


def test_bad_arguments(sim_root: Path) -> None:
    with pytest.raises(ValueError, match="unknown cities"):
        KahramanmarasDamage(sim_root, cities=["ankara"])
    with pytest.raises(ValueError, match="unknown modalities"):
        KahramanmarasDamage(sim_root, modalities=["sar", "footprint", "optical"])
    with pytest.raises(ValueError, match="must include"):
        KahramanmarasDamage(sim_root, modalities=["dsm"])
