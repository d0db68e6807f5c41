from __future__ import annotations

import numpy as np
import pytest
import torch

from torchgeo_quake.datamodules import (
    PairedFlipRotate,
    make_splits,
    patch_overlap,
    spatial_blocks,
)


@pytest.fixture
def table() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    cities = np.repeat(["a", "b", "c"], [300, 200, 100])
    labels = (rng.random(600) < 0.1).astype(np.int64)
    return labels, cities


def _disjoint_cover(splits: dict[str, np.ndarray], expected: np.ndarray) -> None:
    sets = {k: set(v.tolist()) for k, v in splits.items()}
    assert not sets["train"] & sets["val"]
    assert not sets["train"] & sets["test"]
    assert not sets["val"] & sets["test"]
    assert sets["train"] | sets["val"] | sets["test"] == set(expected.tolist())


def test_cv_folds_partition_everything(table) -> None:  # type: ignore[no-untyped-def]
    labels, cities = table
    tests = []
    for fold in range(5):
        splits = make_splits(labels, cities, "cv", fold=fold, seed=3)
        _disjoint_cover(splits, np.arange(600))
        tests.append(splits["test"])
        # Stratified: each test fold holds about a fifth of each city's positives.
        for city in "abc":
            pos = labels[(cities == city)].sum()
            got = labels[splits["test"]][cities[splits["test"]] == city].sum()
            assert abs(got - pos / 5) <= 1
    assert sorted(np.concatenate(tests).tolist()) == list(range(600))


def test_cv_is_seeded(table) -> None:  # type: ignore[no-untyped-def]
    labels, cities = table
    a = make_splits(labels, cities, "cv", fold=1, seed=0)
    b = make_splits(labels, cities, "cv", fold=1, seed=0)
    c = make_splits(labels, cities, "cv", fold=1, seed=1)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not np.array_equal(a["test"], c["test"])


def test_loco_holds_out_the_city(table) -> None:  # type: ignore[no-untyped-def]
    labels, cities = table
    splits = make_splits(labels, cities, "loco", test_city="b")
    _disjoint_cover(splits, np.arange(600))
    assert set(cities[splits["test"]]) == {"b"}
    assert "b" not in set(cities[splits["train"]]) | set(cities[splits["val"]])


def test_city_restriction(table) -> None:  # type: ignore[no-untyped-def]
    labels, cities = table
    splits = make_splits(labels, cities, "city", city="c", fold=2)
    _disjoint_cover(splits, np.flatnonzero(cities == "c"))


def test_bad_arguments(table) -> None:  # type: ignore[no-untyped-def]
    labels, cities = table
    with pytest.raises(ValueError, match="test_city"):
        make_splits(labels, cities, "loco")
    with pytest.raises(ValueError, match="city"):
        make_splits(labels, cities, "city", city="zzz")
    with pytest.raises(ValueError, match="fold"):
        make_splits(labels, cities, "cv", fold=5)
    with pytest.raises(ValueError, match="strategy"):
        make_splits(labels, cities, "random")  # type: ignore[arg-type]


def test_paired_augmentation_keeps_modalities_aligned() -> None:
    torch.manual_seed(0)
    base = torch.arange(16 * 16, dtype=torch.float32).reshape(1, 1, 16, 16)
    batch = {
        "sar": base.repeat(8, 1, 1, 1),
        "footprint": (base.repeat(8, 1, 1, 1) * 2),
        "dsm": (base.repeat(8, 1, 1, 1) - 5),
        "label": torch.zeros(8),
    }
    out = PairedFlipRotate()(dict(batch))
    torch.testing.assert_close(out["footprint"], out["sar"] * 2, rtol=0, atol=0)
    torch.testing.assert_close(out["dsm"], out["sar"] - 5, rtol=0, atol=0)
    # Something moved for at least one sample, and values are only permuted.
    assert not torch.equal(out["sar"], batch["sar"])
    for i in range(8):
        assert torch.equal(out["sar"][i].flatten().sort().values, base.flatten())


def test_tiny_strata_are_merged() -> None:
    # City "b" has only two damaged buildings: fewer than five folds.
    cities = np.repeat(["a", "b"], [200, 40])
    labels = np.zeros(240, dtype=np.int64)
    labels[:30] = 1
    labels[200:202] = 1
    for fold in range(5):
        splits = make_splits(labels, cities, "cv", fold=fold)
        _disjoint_cover(splits, np.arange(240))
        # The damaged class is still balanced over the test folds.
        assert 5 <= labels[splits["test"]].sum() <= 8
    splits = make_splits(labels, cities, "loco", test_city="a")
    _disjoint_cover(splits, np.arange(240))
    assert labels[splits["val"]].sum() + labels[splits["train"]].sum() == 2


def _dense_town(n: int = 2000, seed: int = 0) -> tuple[np.ndarray, ...]:
    """Buildings every ~20 m over 1 km × 1 km in two cities, 10 % damaged."""
    rng = np.random.default_rng(seed)
    xy = rng.uniform(0, 1000, size=(n, 2))
    cities = np.where(np.arange(n) < n // 2, "a", "b")
    labels = (rng.random(n) < 0.1).astype(np.int64)
    return labels, cities, xy


def test_patch_overlap_by_hand() -> None:
    xy = np.array([[0.0, 0.0], [30.0, 39.0], [41.0, 0.0], [0.0, 0.0]])
    cities = np.array(["a", "a", "a", "b"])
    train = np.array([0])
    # Sample 1 is within 40 m on both axes; 2 is 41 m away; 3 is in another city.
    assert patch_overlap(xy, cities, train, np.array([1]), 40.0) == 1.0
    assert patch_overlap(xy, cities, train, np.array([2]), 40.0) == 0.0
    assert patch_overlap(xy, cities, train, np.array([3]), 40.0) == 0.0
    assert patch_overlap(xy, cities, train, np.array([1, 2, 3]), 40.0) == 1 / 3
    assert np.isnan(patch_overlap(xy, cities, train, np.array([], int), 40.0))


def test_blocked_cv_keeps_blocks_together() -> None:
    labels, cities, xy = _dense_town()
    blocks = spatial_blocks(xy, cities, 250.0)
    assert len(set(blocks)) == 32  # 4 × 4 blocks per city
    tests = []
    for fold in range(5):
        splits = make_splits(
            labels, cities, "blocked", fold=fold, centroids=xy, block_size=250.0
        )
        _disjoint_cover(splits, np.arange(len(labels)))
        tests.append(splits["test"])
        in_block = {k: set(blocks[v]) for k, v in splits.items()}
        assert not in_block["train"] & in_block["test"]
        assert not in_block["train"] & in_block["val"]
        assert not in_block["val"] & in_block["test"]
        assert labels[splits["test"]].sum() > 0
        # Far less leakage than random folds of the same data.
        random = make_splits(labels, cities, "cv", fold=fold)
        cv_overlap = patch_overlap(xy, cities, random["train"], random["test"], 40.0)
        blocked = patch_overlap(xy, cities, splits["train"], splits["test"], 40.0)
        assert cv_overlap > 0.95
        assert blocked < 0.5 * cv_overlap
    assert sorted(np.concatenate(tests).tolist()) == list(range(len(labels)))


def test_blocked_cv_errors() -> None:
    labels, cities, xy = _dense_town(200)
    with pytest.raises(ValueError, match="centroids"):
        make_splits(labels, cities, "blocked")
    with pytest.raises(ValueError, match=r"only 2 spatial blocks for 5 folds"):
        make_splits(labels, cities, "blocked", centroids=xy, block_size=5000.0)
    with pytest.raises(ValueError, match="block_size must be positive"):
        spatial_blocks(xy, cities, 0.0)
    with pytest.raises(ValueError, match="shape"):
        spatial_blocks(xy[:, :1], cities, 10.0)
    bad = xy.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        spatial_blocks(bad, cities, 10.0)
