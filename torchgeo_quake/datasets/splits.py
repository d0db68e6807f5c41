"""Train / validation / test splits of building samples.

The paper's three protocols — stratified k-fold over all cities (Table III),
leave-one-city-out (Table IV) and k-fold on one city (Table V) — and a spatially
blocked k-fold, as index arrays over a dataset's labels, cities and centroids;
a spatial buffer between the test split and the others (:func:`buffer_splits`);
and the validation city of a leave-one-city-out split whose checkpoint and
threshold are chosen on an unseen city (:func:`inner_validation_city`).
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

__all__ = [
    "Strategy",
    "buffer_splits",
    "inner_validation_city",
    "make_splits",
    "patch_overlap",
    "spatial_blocks",
]

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
    val_city: str | None = None,
) -> dict[str, np.ndarray]:
    """Split sample indices for the paper's three protocols.

    * ``"cv"`` — stratified k-fold over all cities (Table III): fold *fold* of
      *num_folds* is the test split; strata are city × label, so every fold has
      each city's share of damaged buildings.
    * ``"loco"`` — leave-one-city-out (Table IV): all of *test_city* is the test
      split; the other cities train. With *val_city*, all of that (training)
      city is the validation split instead of a random share of the others,
      so checkpoint and threshold are chosen on a city the model never saw.
    * ``"city"`` — stratified k-fold restricted to *city* (Table V, Islahiye).
    * ``"blocked"`` — spatially blocked k-fold over all cities, or over *city*
      alone when it is given (not in the paper): the cities are cut into
      square blocks of *block_size* (see :func:`spatial_blocks`) and whole
      blocks are assigned to folds, stratified by label (scikit-learn's
      ``StratifiedGroupKFold``); the validation split is carved from the
      training part by blocks too. In the random ``"cv"`` almost every test
      building lies inside the patch of a training building
      (:func:`patch_overlap`); blocks keep that to the buildings along block
      edges (:func:`buffer_splits` removes those too).

    In every strategy the validation split is carved, stratified, from the
    training part only, so no sample is in two splits.

    Args:
        labels: 0/1 label per sample
        cities: city per sample
        strategy: ``"cv"``, ``"loco"``, ``"city"`` or ``"blocked"``
        fold: test fold index for ``"cv"``, ``"city"`` and ``"blocked"``
        num_folds: number of folds
        test_city: held-out city for ``"loco"``
        city: the only city used for ``"city"`` (and ``"blocked"``, optional)
        val_fraction: share of the training part used for validation
        seed: seed of the fold assignment and of the validation split
        centroids: x, y per sample (N×2, metres), needed by ``"blocked"``
        block_size: side of the blocks of ``"blocked"``, in metres
        val_city: validation city of ``"loco"`` (None: a random share)

    Returns:
        Sorted index arrays ``train``, ``val`` and ``test``.

    Raises:
        ValueError: If the strategy's arguments are missing or invalid, or a
            ``"blocked"`` fold leaves a split without damaged samples.

    .. versionadded:: 0.1
    .. versionchanged:: 0.3
       *val_city*; ``"blocked"`` honours *city*.
    """
    labels = np.asarray(labels)
    cities = np.asarray(cities).astype(str)
    everything = np.arange(len(labels))
    if val_city is not None and strategy != "loco":
        raise ValueError(
            f"val_city is for strategy 'loco' only, got strategy {strategy!r}"
        )
    if city is not None and strategy in ("city", "blocked"):
        if city not in set(cities):
            raise ValueError(
                f"strategy {strategy!r} needs city among {sorted(set(cities))}, "
                f"got {city!r}"
            )
        everything = everything[cities == city]
    if strategy == "loco":
        if test_city is None or test_city not in set(cities):
            raise ValueError(
                f"strategy 'loco' needs test_city among {sorted(set(cities))}, "
                f"got {test_city!r}"
            )
        test = everything[cities == test_city]
        pool = everything[cities != test_city]
        if val_city is not None:
            if val_city == test_city or val_city not in set(cities):
                raise ValueError(
                    f"val_city must be a training city, one of "
                    f"{sorted(set(cities) - {test_city})}, got {val_city!r}"
                )
            val = pool[cities[pool] == val_city]
            train = pool[cities[pool] != val_city]
            return {"train": np.sort(train), "val": np.sort(val), "test": np.sort(test)}
    elif strategy in ("cv", "city"):
        if strategy == "city" and city is None:
            raise ValueError(
                f"strategy 'city' needs city among {sorted(set(cities))}, got None"
            )
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
        pool, test = _group_split(
            labels, blocks, everything, num_folds, fold, seed, "folds"
        )
        n_val = max(2, round(1 / val_fraction))
        train, val = _group_split(
            labels, blocks, pool, n_val, 0, seed, f"validation split (1/{n_val})"
        )
        splits = {"train": np.sort(train), "val": np.sort(val), "test": np.sort(test)}
        for name, index in splits.items():
            if not labels[index].any():
                raise ValueError(
                    f"block_size {block_size:g} m leaves the {name} split of "
                    f"fold {fold} (of {num_folds}) without damaged buildings "
                    f"({len(index)} samples, {int(labels[everything].sum())} "
                    "damaged in all): use a smaller block_size (--block-size) "
                    "or fewer folds"
                )
        return splits
    else:
        raise ValueError(
            f"strategy must be 'cv', 'loco', 'city' or 'blocked', got {strategy!r}"
        )
    strata = _strata(cities[pool], labels[pool], 2)
    train, val = train_test_split(
        pool, test_size=val_fraction, random_state=seed, stratify=strata
    )
    return {"train": np.sort(train), "val": np.sort(val), "test": np.sort(test)}


def inner_validation_city(
    labels: np.ndarray, cities: np.ndarray, test_city: str
) -> str:
    """The validation city of a leave-one-city-out split with inner selection.

    The rule: the training city (any city but *test_city*) with the most
    damaged samples; ties go to the alphabetically first. It depends on the
    data alone (not on the seed), so every seed of a held-out city selects on
    the same city. On the paper's data that is Nurdağı for every held-out
    city but Nurdağı itself, whose validation city is Kahramanmaraş.

    Args:
        labels: 0/1 label per sample
        cities: city per sample
        test_city: the held-out (test) city

    Returns:
        The validation city.

    Raises:
        ValueError: If fewer than three cities are given (one to test, one to
            validate, at least one to train) or *test_city* is not among them.

    .. versionadded:: 0.3
    """
    labels = np.asarray(labels)
    cities = np.asarray(cities).astype(str)
    names = sorted(set(cities.tolist()))
    if test_city not in names:
        raise ValueError(f"test_city must be one of {names}, got {test_city!r}")
    if len(names) < 3:
        raise ValueError(
            f"a validation city needs at least three cities (test, validation, "
            f"training), got {names}: use the random validation split"
        )
    others = [n for n in names if n != test_city]
    damaged = {n: int(labels[cities == n].sum()) for n in others}
    return str(min(others, key=lambda n: (-damaged[n], n)))


def buffer_splits(
    splits: dict[str, np.ndarray],
    centroids: np.ndarray,
    cities: np.ndarray,
    buffer: float,
    labels: np.ndarray | None = None,
) -> tuple[dict[str, np.ndarray], dict[str, int]]:
    """Drop training and validation samples that lie near a test sample.

    The rule: a ``train`` or ``val`` sample is dropped when the centroid of a
    ``test`` sample **of the same city** (cities have their own coordinates)
    lies within the square of half-side *buffer* centred on its centroid, i.e.
    at a Chebyshev distance (the larger of the x and y offsets) of at most
    *buffer*. Squares, because patches are: with the paper's 32 × 32-pixel
    patches at 2.5 m (80 m wide), a buffer of 40 m leaves no test centroid
    inside a training patch (:func:`patch_overlap` becomes 0), and 80 m leaves
    no training patch overlapping a test patch. A buffer of 0 drops nothing.
    The test split is never changed.

    Args:
        splits: index arrays ``train``, ``val`` and ``test``
        centroids: x, y per sample (N×2, metres)
        cities: city per sample
        buffer: half-side of the square, in metres (0: nothing is dropped)
        labels: 0/1 label per sample; if given, a buffer that leaves the
            training or validation split without damaged samples is refused

    Returns:
        The splits without the dropped samples, and the number dropped from
        ``train`` and from ``val``.

    Raises:
        ValueError: If *buffer* is negative or not finite, *centroids* is not
            N×2, or (with *labels*) the training or validation split loses
            all of its damaged samples.

    .. versionadded:: 0.3
    """
    if not (np.isfinite(buffer) and buffer >= 0):
        raise ValueError(f"buffer must be a distance >= 0 in metres, got {buffer}")
    cities = np.asarray(cities).astype(str)
    xy = np.asarray(centroids, dtype=np.float64)
    if xy.ndim != 2 or xy.shape[1] != 2 or len(xy) != len(cities):
        raise ValueError(
            f"centroids must have shape ({len(cities)}, 2), got {xy.shape}"
        )
    test = np.asarray(splits["test"])
    kept = {"test": test}
    dropped: dict[str, int] = {}
    for name in ("train", "val"):
        index = np.asarray(splits[name])
        near = np.zeros(len(index), dtype=bool)
        if buffer > 0:
            for place in np.unique(cities[test]):
                mine = cities[index] == place
                if not mine.any():
                    continue
                tree = cKDTree(xy[test[cities[test] == place]])
                # Chebyshev distance (p=inf); the bound is exclusive.
                reach = float(np.nextafter(buffer, np.inf))
                distance, _ = tree.query(
                    xy[index[mine]], p=np.inf, distance_upper_bound=reach
                )
                near[np.flatnonzero(mine)[distance <= buffer]] = True
        kept[name] = index[~near]
        dropped[name] = int(near.sum())
        had = int(np.asarray(labels)[index].sum()) if labels is not None else 0
        left = int(np.asarray(labels)[kept[name]].sum()) if labels is not None else 1
        if (len(index) and not len(kept[name])) or (had and not left):
            raise ValueError(
                f"a buffer of {buffer:g} m leaves the {name} split without "
                f"{'damaged ' if len(kept[name]) else ''}samples ({dropped[name]} "
                f"of {len(index)} samples, {had} damaged, lie within {buffer:g} m "
                "of a test sample): use a smaller --buffer or larger blocks "
                "(--block-size)"
            )
    return {k: kept[k] for k in ("train", "val", "test")}, dropped


def _group_split(
    labels: np.ndarray,
    groups: np.ndarray,
    index: np.ndarray,
    n_splits: int,
    fold: int,
    seed: int,
    purpose: str = "folds",
) -> tuple[np.ndarray, np.ndarray]:
    """One fold of a stratified group k-fold over some samples.

    Args:
        labels: label per sample (all samples)
        groups: group per sample (all samples)
        index: the samples to split
        n_splits: number of folds
        fold: the fold held out
        seed: shuffling seed
        purpose: what the split makes, for the error message

    Returns:
        The kept and the held-out indices.

    Raises:
        ValueError: If there are fewer groups than folds.
    """
    n_groups = len(np.unique(groups[index]))
    if n_groups < n_splits:
        where = "" if purpose == "folds" else f" for the {purpose}"
        raise ValueError(
            f"only {n_groups} spatial blocks for {n_splits} folds{where}: use a "
            "smaller block_size (--block-size) or fewer folds"
        )
    folds = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    kept, held = list(folds.split(index, labels[index], groups[index]))[fold]
    return index[kept], index[held]
