"""The spatial buffer, the blocked folds of one city, the inner validation city."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.distance import cdist

from torchgeo_quake.datamodules import KahramanmarasDamageDataModule
from torchgeo_quake.datasets.splits import (
    buffer_splits,
    inner_validation_city,
    make_splits,
    patch_overlap,
)


def _grid_town(side: int = 40, step: float = 25.0) -> tuple[np.ndarray, ...]:
    """Two cities of side × side buildings on a grid, 10 % damaged."""
    rng = np.random.default_rng(1)
    grid = np.stack(np.meshgrid(np.arange(side), np.arange(side)), -1).reshape(-1, 2)
    xy = np.concatenate([grid, grid]) * step
    cities = np.repeat(["a", "b"], side * side)
    labels = (rng.random(len(xy)) < 0.1).astype(np.int64)
    return labels, cities, xy.astype(np.float64)


def _nearest_test(
    xy: np.ndarray, cities: np.ndarray, index: np.ndarray, test: np.ndarray
) -> np.ndarray:
    """Chebyshev distance of each sample to the nearest test sample of its city."""
    out = np.full(len(index), np.inf)
    for i, sample in enumerate(index):
        own = test[cities[test] == cities[sample]]
        if len(own):
            out[i] = cdist(xy[[sample]], xy[own], "chebyshev").min()
    return out


@pytest.mark.parametrize("buffer", [0.0, 25.0, 40.0, 80.0])
def test_buffer_drops_exactly_the_near_samples(buffer: float) -> None:
    labels, cities, xy = _grid_town()
    splits = make_splits(
        labels, cities, "blocked", fold=1, centroids=xy, block_size=250.0
    )
    kept, dropped = buffer_splits(splits, xy, cities, buffer, labels=labels)
    assert np.array_equal(kept["test"], splits["test"])
    for name in ("train", "val"):
        distance = _nearest_test(xy, cities, splits[name], splits["test"])
        near = (distance <= buffer) if buffer else np.zeros(len(distance), bool)
        assert np.array_equal(kept[name], splits[name][~near])
        assert dropped[name] == int(near.sum())
    if buffer == 0:
        assert dropped == {"train": 0, "val": 0}
    else:
        assert dropped["train"] > 0
        # Nothing kept lies within the buffer of a test building.
        assert _nearest_test(xy, cities, kept["train"], kept["test"]).min() > buffer
        if buffer >= 40:  # no test centroid inside a training patch
            overlap = patch_overlap(xy, cities, kept["train"], kept["test"], 40.0)
            assert overlap == 0.0


def test_buffer_only_looks_within_a_city() -> None:
    # Two cities with the same coordinates: a test building of "a" never
    # drops a training building of "b".
    xy = np.array([[0.0, 0.0], [0.0, 0.0], [500.0, 0.0]])
    cities = np.array(["a", "b", "b"])
    splits = {
        "train": np.array([1, 2]),
        "val": np.array([], int),
        "test": np.array([0]),
    }
    kept, dropped = buffer_splits(splits, xy, cities, 100.0)
    assert kept["train"].tolist() == [1, 2] and dropped["train"] == 0


def test_bad_buffers_are_refused() -> None:
    labels, cities, xy = _grid_town(20)
    splits = make_splits(
        labels, cities, "blocked", fold=0, centroids=xy, block_size=100.0
    )
    with pytest.raises(ValueError, match="buffer must be a distance >= 0"):
        buffer_splits(splits, xy, cities, -1.0)
    # A buffer larger than the city drops every training building.
    with pytest.raises(ValueError, match="leaves the train split without samples"):
        buffer_splits(splits, xy, cities, 1e6, labels=labels)
    with pytest.raises(ValueError, match="shape"):
        buffer_splits(splits, xy[:, :1], cities, 10.0)


def test_buffer_that_drops_all_damaged_training_buildings() -> None:
    xy = np.array([[0.0, 0.0], [10.0, 0.0], [500.0, 0.0], [20.0, 0.0]])
    cities = np.array(["a"] * 4)
    labels = np.array([1, 1, 0, 1])
    splits = {"train": np.array([1, 2]), "val": np.array([3]), "test": np.array([0])}
    with pytest.raises(ValueError, match="train split without damaged samples"):
        buffer_splits(splits, xy, cities, 15.0, labels=labels)


def test_block_size_leaving_a_fold_without_damaged_buildings() -> None:
    labels, cities, xy = _grid_town(40)
    labels[:] = 0
    labels[:3] = 1  # all damaged buildings in one corner block
    errors = []
    for fold in range(5):
        try:
            make_splits(
                labels, cities, "blocked", fold=fold, centroids=xy, block_size=250.0
            )
        except ValueError as err:
            errors.append(str(err))
    # The folds whose test (or training) blocks hold no damaged building.
    assert errors
    for error in errors:
        assert re.match(r"block_size 250 m leaves the \w+ split of fold \d", error)
        assert "use a smaller block_size" in error


def test_blocked_folds_of_one_city() -> None:
    labels, cities, xy = _grid_town()
    tests = []
    for fold in range(5):
        splits = make_splits(
            labels,
            cities,
            "blocked",
            fold=fold,
            city="b",
            centroids=xy,
            block_size=200.0,
        )
        for index in splits.values():
            assert set(cities[index]) == {"b"}
        tests.append(splits["test"])
    assert (
        sorted(np.concatenate(tests).tolist()) == np.flatnonzero(cities == "b").tolist()
    )
    with pytest.raises(ValueError, match="city among"):
        make_splits(labels, cities, "blocked", city="z", centroids=xy)


def test_inner_validation_city() -> None:
    cities = np.repeat(["a", "b", "c", "d"], 10)
    labels = np.zeros(40, dtype=int)
    labels[[0, 1, 2, 10, 11, 12, 20]] = 1  # a: 3, b: 3 (tie: a), c: 1, d: 0
    assert inner_validation_city(labels, cities, "d") == "a"
    assert inner_validation_city(labels, cities, "a") == "b"
    splits = make_splits(labels, cities, "loco", test_city="d", val_city="a")
    assert set(cities[splits["val"]]) == {"a"}
    assert set(cities[splits["train"]]) == {"b", "c"}
    assert set(cities[splits["test"]]) == {"d"}
    with pytest.raises(ValueError, match="training city"):
        make_splits(labels, cities, "loco", test_city="d", val_city="d")
    with pytest.raises(ValueError, match="'loco' only"):
        make_splits(labels, cities, "cv", val_city="a")
    with pytest.raises(ValueError, match="at least three cities"):
        inner_validation_city(labels[:20], cities[:20], "a")


def test_data_module_buffer_and_selection(sim_root: Path, tmp_path: Path) -> None:
    import json

    common = dict(root=sim_root, scale=0.05, modalities=["sar", "footprint"])
    dm = KahramanmarasDamageDataModule(
        **common,  # type: ignore[arg-type]
        strategy="blocked",
        block_size=250.0,
        buffer=80.0,
        splits_file=str(tmp_path / "splits.json"),
    )
    dm.setup("fit")
    saved = json.loads((tmp_path / "splits.json").read_text())
    assert saved["buffer"] == 80.0 and saved["dropped"] == dm.dropped
    assert dm.dropped["train"] > 0
    inner = KahramanmarasDamageDataModule(
        **common,  # type: ignore[arg-type]
        strategy="loco",
        test_city="islahiye",
        selection="inner-city",
    )
    indices = inner.make_indices()
    dataset = inner.dataset
    assert dataset is not None
    city_of = dataset.city_of  # type: ignore[attr-defined]
    assert inner.val_city not in (None, "islahiye")
    assert set(city_of[indices["val"]]) == {inner.val_city}
    assert inner.val_city not in set(city_of[indices["train"]])
    with pytest.raises(ValueError, match="needs strategy 'loco'"):
        KahramanmarasDamageDataModule(strategy="cv", selection="inner-city")
    with pytest.raises(ValueError, match="buffer must be"):
        KahramanmarasDamageDataModule(buffer=-5.0)
    with pytest.raises(ValueError, match="block_size must be"):
        KahramanmarasDamageDataModule(block_size=0.0)
