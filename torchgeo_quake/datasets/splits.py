"""Train / validation / test splits of building samples.

The paper's three protocols — stratified k-fold over all cities (Table III),
leave-one-city-out (Table IV) and k-fold on one city (Table V) — and a spatially
blocked k-fold, as index arrays over a dataset's labels, cities and centroids.
TorchGeo keeps its dataset splitters beside the datasets
(``torchgeo.datasets.splits``); these live here for the same reason.

.. versionadded:: 0.1
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from scipy.spatial import cKDTree
from sklearn.model_selection import (
    StratifiedGroupKFold,
    StratifiedKFold,
    train_test_split,
)

__all__ = ["Strategy", "make_splits", "patch_overlap", "spatial_blocks"]

#: Split strategies of :func:`make_splits`.
Strategy = Literal["cv", "loco", "city", "blocked"]


def _strata(
    cities: np.ndarray, labels: np.ndarray, min_count: int
) -> np.ndarray | None:
    """City × label strata, merged where a stratum is too small to split.

    A city × label stratum with fewer than *min_count* members (e.g. a city
    with only three damaged buildings in a small scene) is merged into the
    label-only stratum (if that is still too small, the whole label joins it),
    so stratification never fails on small data and still balances the damaged
    class.

    Args:
        cities: city per sample
        labels: label per sample
        min_count: least members a stratum needs

    Returns:
        A stratum name per sample, or None when even a whole label has fewer
        than *min_count* members (no stratification possible).
    """
    label_names = np.char.add("*:", labels.astype(str))
    strata = np.char.add(np.char.add(cities, ":"), labels.astype(str))
    _, inverse, counts = np.unique(strata, return_inverse=True, return_counts=True)
    strata = np.where(counts[inverse] < min_count, label_names, strata)
    for name in np.unique(label_names):
        merged = strata == name
        if 0 < merged.sum() < min_count:
            strata[label_names == name] = name
    _, counts = np.unique(strata, return_counts=True)
    if counts.min() < min_count:
        return None
    return strata


def spatial_blocks(
    centroids: np.ndarray, cities: np.ndarray, block_size: float
) -> np.ndarray:
    """Name the square grid block of each sample.

    Args:
        centroids: x, y per sample (N×2, in the city's CRS, metres)
        cities: city per sample
        block_size: side of the blocks, in the units of *centroids*

    Returns:
        A block name per sample (``"city:i,j"``).

    Raises:
        ValueError: If *block_size* is not positive or *centroids* is not N×2
            and finite.

    .. versionadded:: 0.1
    """
    if not block_size > 0:
        raise ValueError(f"block_size must be positive, got {block_size}")
    xy = np.asarray(centroids, dtype=np.float64)
    if xy.ndim != 2 or xy.shape[1] != 2 or len(xy) != len(cities):
        raise ValueError(
            f"centroids must have shape ({len(cities)}, 2), got {xy.shape}"
        )
    if not np.isfinite(xy).all():
        raise ValueError("centroids contain NaN or infinite values")
    cells = np.floor(xy / block_size).astype(np.int64)
    return np.array(
        [f"{c}:{i},{j}" for c, (i, j) in zip(np.asarray(cities), cells, strict=True)]
    )


def patch_overlap(
    centroids: np.ndarray,
    cities: np.ndarray,
    train: np.ndarray,
    test: np.ndarray,
    half_size: float,
) -> float:
    """Share of test samples whose centroid lies in a training sample's patch.

    A measure of spatial leakage: a test building inside the patch of a
    training building was seen, as context, during training.

    Args:
        centroids: x, y per sample (N×2)
        cities: city per sample
        train: indices of the training samples
        test: indices of the test samples
        half_size: half the patch side, in the units of *centroids* (16 pixels
            × 2.5 m = 40 m for the paper's 32 × 32 patches)

    Returns:
        The share in [0, 1] (NaN without test samples).

    .. versionadded:: 0.1
    """
    xy = np.asarray(centroids, dtype=np.float64)
    cities = np.asarray(cities).astype(str)
    test = np.asarray(test)
    if len(test) == 0:
        return float("nan")
    inside = 0
    for name in np.unique(cities[test]):
        own_train = train[cities[train] == name]
        own_test = test[cities[test] == name]
        if len(own_train) == 0:
            continue
        distance, _ = cKDTree(xy[own_train]).query(xy[own_test], p=np.inf)
        inside += int((distance <= half_size).sum())
    return inside / len(test)


def make_splits(
    labels: np.ndarray,
    cities: np.ndarray,
    strategy: Strategy = "cv",
    fold: int = 0,
    num_folds: int = 5,
    test_city: str | None = None,
    city: str | None = None,
    val_fraction: float = 0.15,
    seed: int = 0,
    centroids: np.ndarray | None = None,
    block_size: float = 1000.0,
) -> dict[str, np.ndarray]:
    """Split sample indices for the paper's three protocols.

    * ``"cv"`` — stratified k-fold over all cities (Table III): fold *fold* of
      *num_folds* is the test split; strata are city × label, so every fold has
      each city's share of damaged buildings.
    * ``"loco"`` — leave-one-city-out (Table IV): all of *test_city* is the test
      split; the other cities train.
    * ``"city"`` — stratified k-fold restricted to *city* (Table V, Islahiye).
    * ``"blocked"`` — spatially blocked k-fold over all cities (not in the
      paper): the cities are cut into square blocks of *block_size* (see
      :func:`spatial_blocks`) and whole blocks are assigned to folds,
      stratified by label (scikit-learn's ``StratifiedGroupKFold``); the
      validation split is carved from the training part by blocks too. In the
      random ``"cv"`` almost every test building lies inside the patch of a
      training building (:func:`patch_overlap`); blocks keep that to the
      buildings along block edges.

    In every strategy the validation split is carved, stratified, from the
    training part only, so no sample is in two splits.

    Args:
        labels: 0/1 label per sample
        cities: city per sample
        strategy: ``"cv"``, ``"loco"``, ``"city"`` or ``"blocked"``
        fold: test fold index for ``"cv"``, ``"city"`` and ``"blocked"``
        num_folds: number of folds
        test_city: held-out city for ``"loco"``
        city: the only city used for ``"city"``
        val_fraction: share of the training part used for validation
        seed: seed of the fold assignment and of the validation split
        centroids: x, y per sample (N×2, metres), needed by ``"blocked"``
        block_size: side of the blocks of ``"blocked"``, in metres

    Returns:
        Sorted index arrays ``train``, ``val`` and ``test``.

    Raises:
        ValueError: If the strategy's arguments are missing or invalid.

    .. versionadded:: 0.1
    """
    labels = np.asarray(labels)
    cities = np.asarray(cities).astype(str)
    everything = np.arange(len(labels))
    if strategy == "loco":
        if test_city is None or test_city not in set(cities):
            raise ValueError(
                f"strategy 'loco' needs test_city among {sorted(set(cities))}, "
                f"got {test_city!r}"
            )
        test = everything[cities == test_city]
        pool = everything[cities != test_city]
    elif strategy in ("cv", "city"):
        if strategy == "city":
            if city is None or city not in set(cities):
                raise ValueError(
                    f"strategy 'city' needs city among {sorted(set(cities))}, "
                    f"got {city!r}"
                )
            everything = everything[cities == city]
        if not 0 <= fold < num_folds:
            raise ValueError(f"fold must be in [0, {num_folds}), got {fold}")
        strata = _strata(cities[everything], labels[everything], num_folds)
        if strata is None:  # a class smaller than the number of folds
            strata = labels[everything]
        folds = StratifiedKFold(n_splits=num_folds, shuffle=True, random_state=seed)
        train_part, test_part = list(folds.split(everything, strata))[fold]
        pool, test = everything[train_part], everything[test_part]
    elif strategy == "blocked":
        if centroids is None:
            raise ValueError("strategy 'blocked' needs the sample centroids")
        if not 0 <= fold < num_folds:
            raise ValueError(f"fold must be in [0, {num_folds}), got {fold}")
        blocks = spatial_blocks(centroids, cities, block_size)
        pool, test = _group_split(labels, blocks, everything, num_folds, fold, seed)
        n_val = max(2, round(1 / val_fraction))
        train, val = _group_split(labels, blocks, pool, n_val, 0, seed)
        return {"train": np.sort(train), "val": np.sort(val), "test": np.sort(test)}
    else:
        raise ValueError(
            f"strategy must be 'cv', 'loco', 'city' or 'blocked', got {strategy!r}"
        )
    strata = _strata(cities[pool], labels[pool], 2)
    train, val = train_test_split(
        pool, test_size=val_fraction, random_state=seed, stratify=strata
    )
    return {"train": np.sort(train), "val": np.sort(val), "test": np.sort(test)}


def _group_split(
    labels: np.ndarray,
    groups: np.ndarray,
    index: np.ndarray,
    n_splits: int,
    fold: int,
    seed: int,
) -> tuple[np.ndarray, np.ndarray]:
    """One fold of a stratified group k-fold over some samples.

    Args:
        labels: label per sample (all samples)
        groups: group per sample (all samples)
        index: the samples to split
        n_splits: number of folds
        fold: the fold held out
        seed: shuffling seed

    Returns:
        The kept and the held-out indices.

    Raises:
        ValueError: If there are fewer groups than folds.
    """
    n_groups = len(np.unique(groups[index]))
    if n_groups < n_splits:
        raise ValueError(
            f"only {n_groups} spatial blocks for {n_splits} folds: use a smaller "
            "block_size"
        )
    folds = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    kept, held = list(folds.split(index, labels[index], groups[index]))[fold]
    return index[kept], index[held]
