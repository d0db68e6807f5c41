"""Lightning data module of the Kahramanmaraş building-damage dataset."""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import kornia.augmentation as K
import numpy as np
import torch
from pyproj import CRS
from scipy.spatial import cKDTree
from sklearn.model_selection import (
    StratifiedGroupKFold,
    StratifiedKFold,
    train_test_split,
)
from torch import Tensor, nn
from torch.utils.data import DataLoader, Sampler, Subset
from torchgeo.datamodules import NonGeoDataModule
from torchgeo.datasets import stack_samples

from ..datasets.csk import CSKSAR
from ..datasets.kahramanmaras import MODALITIES, KahramanmarasDamage

__all__ = [
    "KahramanmarasDamageDataModule",
    "PairedFlipRotate",
    "make_splits",
    "patch_overlap",
    "sar_pixel_size",
    "spatial_blocks",
]

Strategy = Literal["cv", "loco", "city", "blocked"]
_RASTERS = ("sar", "footprint", "dsm")


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


class PairedFlipRotate(nn.Module):
    """Random flips and 90° rotations applied identically to all raster inputs.

    The SAR, footprint and DSM patches of one building must stay aligned, so the
    raster inputs of a batch are concatenated along the channel axis, transformed
    by one kornia pipeline (a random transform per sample) and split again.

    .. versionadded:: 0.1
    """

    def __init__(self, p: float = 0.5) -> None:
        """Initialize a new PairedFlipRotate instance.

        Args:
            p: probability of each flip
        """
        super().__init__()
        self.augment = K.AugmentationSequential(
            K.RandomHorizontalFlip(p=p),
            K.RandomVerticalFlip(p=p),
            # Nearest resampling keeps the 90° rotations exact (masks stay 0/1).
            K.RandomRotation90(times=(0, 3), resample="nearest", p=1.0),
            data_keys=["input"],
        )

    def forward(self, batch: dict[str, Any]) -> dict[str, Any]:
        """Augment the raster inputs of a batch.

        Args:
            batch: batch with ``sar``, ``footprint`` and optionally ``dsm``
                (B×1×H×W each)

        Returns:
            The batch with the same random flip/rotation per sample on every raster.
        """
        keys = [key for key in _RASTERS if key in batch]
        stacked = torch.cat([batch[key] for key in keys], dim=1)
        out = self.augment(stacked)
        assert isinstance(out, Tensor)
        for i, key in enumerate(keys):
            batch[key] = out[:, i : i + 1]
        return batch


class _EpochShuffle(Sampler[int]):
    """Shuffle with a permutation that depends only on a seed and the epoch.

    Lightning calls :meth:`set_epoch` before every training epoch (as for a
    ``DistributedSampler``), so the order of an epoch does not depend on the
    global random state, and a run resumed from a checkpoint sees the batches
    an uninterrupted run would. :attr:`loader_generator`, given to the
    ``DataLoader``, is re-seeded by epoch too: the loader draws its workers'
    base seed from it instead of from the global generator, whose state then
    stays the task's (augmentation, dropout).
    """

    def __init__(self, size: int, seed: int) -> None:
        """Initialize a new _EpochShuffle instance.

        Args:
            size: number of samples
            seed: base seed
        """
        self.size = size
        self.seed = seed
        self.loader_generator = torch.Generator()
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch whose permutation is drawn next.

        Args:
            epoch: the epoch
        """
        self.epoch = epoch
        self.loader_generator.manual_seed(self._seed(1))

    def _seed(self, stream: int) -> int:
        """A seed of this epoch.

        Args:
            stream: 0 for the permutation, 1 for the data loader

        Returns:
            The seed.
        """
        sequence = np.random.SeedSequence([self.seed, self.epoch, stream])
        return int(sequence.generate_state(1)[0])

    def __iter__(self) -> Iterator[int]:
        """Yield the permutation of the current epoch.

        Yields:
            Sample indices.
        """
        generator = torch.Generator().manual_seed(self._seed(0))
        yield from torch.randperm(self.size, generator=generator).tolist()

    def __len__(self) -> int:
        """Number of samples.

        Returns:
            The size.
        """
        return self.size


def sar_pixel_size(paths: Mapping[str, str | os.PathLike[str]]) -> float | None:
    """The common SAR pixel size, in metres, of some SAR files.

    Patches are extracted on each file's own grid (the SAR image is the first
    dataset of the intersection), so this is the ground size of a patch pixel.

    Args:
        paths: SAR file by name (e.g. city)

    Returns:
        The mean of the pixel width and height in metres when every file has a
        projected CRS and all sizes agree within 1 %; None otherwise (a warning
        says why), or when *paths* is empty.

    .. versionadded:: 0.1
    """
    sizes: dict[str, float] = {}
    for name, path in paths.items():
        sar = CSKSAR(path)
        crs = CRS.from_user_input(sar.crs.to_wkt())
        if not crs.is_projected:
            warnings.warn(
                f"SAR file {os.fspath(path)!r} has the geographic CRS {crs.name!r}: "
                "its pixel size in metres is not recorded (input_spec sar_res=None); "
                "reproject the image to a metric CRS (e.g. UTM) to record it",
                UserWarning,
                stacklevel=2,
            )
            return None
        factor = crs.axis_info[0].unit_conversion_factor
        xres, yres = sar.res
        sizes[name] = (abs(xres) + abs(yres)) / 2 * factor
    if not sizes:
        return None
    low, high = min(sizes.values()), max(sizes.values())
    if high > low * 1.01:
        warnings.warn(
            f"the SAR images have different pixel sizes "
            f"({ {k: round(v, 3) for k, v in sizes.items()} } m): input_spec "
            "sar_res=None; resample them to one pixel size to record it",
            UserWarning,
            stacklevel=2,
        )
        return None
    return float(np.mean(list(sizes.values())))


def _sar_files(dataset: KahramanmarasDamage) -> dict[str, Path]:
    """The SAR file of every city of a dataset (``sar.tif``, else ``sar.h5``).

    Args:
        dataset: the dataset

    Returns:
        Path by city slug.
    """
    paths = {}
    for city in dataset.cities:
        path = Path(dataset.root) / city / dataset.files["sar"]
        if not path.exists() and path.with_suffix(".h5").exists():
            path = path.with_suffix(".h5")
        paths[city] = path
    return paths


def _identity(batch: dict[str, Any]) -> dict[str, Any]:
    """Return the batch unchanged (normalisation lives in the model).

    Args:
        batch: a batch

    Returns:
        The same batch.
    """
    return batch


class KahramanmarasDamageDataModule(NonGeoDataModule):
    """Data module of :class:`~torchgeo_quake.datasets.KahramanmarasDamage`.

    Implements the paper's three protocols through :func:`make_splits`
    (stratified k-fold over all cities, leave-one-city-out, k-fold on one city),
    each with a validation split carved from the training part. Normalisation
    statistics of SAR, DSM and GEM are computed on the training split only and
    handed to the model (:meth:`normalization_stats`), which stores them in its
    checkpoint. Training batches are augmented on the device with random flips
    and 90° rotations applied identically to all raster inputs of a sample.

    .. versionadded:: 0.1
    """

    def __init__(
        self,
        root: str | os.PathLike[str] = "data/kahramanmaras",
        cities: Sequence[str] | None = None,
        modalities: Sequence[str] = MODALITIES,
        strategy: Strategy = "cv",
        fold: int = 0,
        num_folds: int = 5,
        test_city: str | None = None,
        city: str | None = None,
        val_fraction: float = 0.15,
        seed: int = 0,
        negatives_per_positive: float | None = 20.0,
        scale: float = 1.0,
        radiometry: str = "db",
        simulate: bool = True,
        augment: bool = True,
        batch_size: int = 64,
        num_workers: int = 0,
        splits_file: str | None = None,
        block_size: float = 1000.0,
    ) -> None:
        """Initialize a new KahramanmarasDamageDataModule instance.

        Args:
            root: dataset root (simulated on first use when empty)
            cities: cities to load (default: all five)
            modalities: inputs given to the model
            strategy: ``"cv"``, ``"loco"``, ``"city"`` or ``"blocked"`` (see
                :func:`make_splits`)
            fold: test fold for ``"cv"`` and ``"city"``
            num_folds: number of folds
            test_city: held-out city for ``"loco"``
            city: the city used for ``"city"``
            val_fraction: share of the training part used for validation
            seed: seed of splits, negative sampling and simulation
            negatives_per_positive: intact buildings per damaged one (paper: 20)
            scale: size of the simulated scene (1 = the paper's Table II)
            radiometry: SAR values seen by the model (``"db"``, ``"amplitude"``,
                ``"intensity"``)
            simulate: simulate the scene when *root* is empty
            augment: random flips / 90° rotations of training batches
            batch_size: mini-batch size
            num_workers: data-loader workers
            splits_file: if given, write the split (building ids and cities per
                split) to this JSON file at set-up, so results can be re-derived
            block_size: side of the spatial blocks of ``"blocked"``, in metres
        """
        super().__init__(
            KahramanmarasDamage,
            batch_size=batch_size,
            num_workers=num_workers,
            root=root,
            cities=cities,
            modalities=tuple(modalities),
            negatives_per_positive=negatives_per_positive,
            seed=seed,
            scale=scale,
            radiometry=radiometry,
            simulate=simulate,
        )
        self.strategy: Strategy = strategy
        self.fold = fold
        self.num_folds = num_folds
        self.test_city = test_city
        self.city = city
        self.val_fraction = val_fraction
        self.seed = seed
        self.modalities = tuple(modalities)
        self.splits_file = splits_file
        self.block_size = block_size
        self.collate_fn = stack_samples
        self.aug = _identity
        self.train_aug = PairedFlipRotate() if augment else None
        self.indices: dict[str, np.ndarray] = {}
        self._stats: dict[str, Tensor] | None = None
        self._input_spec: dict[str, Any] | None = None

    def prepare_data(self) -> None:
        """Simulate the scene and build the sample cache once (single process)."""
        KahramanmarasDamage(**self.kwargs)

    def setup(self, stage: str) -> None:
        """Build the dataset and the train / val / test splits.

        Args:
            stage: ``"fit"``, ``"validate"``, ``"test"`` or ``"predict"``
        """
        if self.dataset is None:
            self.dataset = KahramanmarasDamage(**self.kwargs)
        dataset = self.dataset
        assert isinstance(dataset, KahramanmarasDamage)
        if not self.indices:
            self.indices = make_splits(
                dataset.labels,
                dataset.city_of,
                strategy=self.strategy,
                fold=self.fold,
                num_folds=self.num_folds,
                test_city=self.test_city,
                city=self.city,
                val_fraction=self.val_fraction,
                seed=self.seed,
                centroids=dataset.centroids,
                block_size=self.block_size,
            )
            if self.splits_file is not None:
                self.save_splits(self.splits_file)
        self.train_dataset = Subset(dataset, self.indices["train"].tolist())
        self.val_dataset = Subset(dataset, self.indices["val"].tolist())
        self.test_dataset = Subset(dataset, self.indices["test"].tolist())
        self.predict_dataset = self.test_dataset

    def train_dataloader(self) -> DataLoader[dict[str, Tensor]]:
        """Training batches, shuffled by the seed and the epoch alone.

        Under distributed training Lightning's ``DistributedSampler`` (seeded,
        by epoch) shuffles instead.

        Returns:
            The training data loader (incomplete last batch dropped).
        """
        trainer = self.trainer
        if trainer is not None and trainer.world_size > 1:
            return super().train_dataloader()
        dataset = self._valid_attribute("train_dataset", "dataset")
        sampler = _EpochShuffle(len(dataset), self.seed)
        return DataLoader(
            dataset=dataset,
            batch_size=self.batch_size,
            sampler=sampler,
            generator=sampler.loader_generator,
            num_workers=self.num_workers,
            collate_fn=self.collate_fn,
            drop_last=True,
            persistent_workers=self.num_workers > 0,
        )

    def save_splits(self, path: str | os.PathLike[str]) -> None:
        """Write the building ids and cities of every split to a JSON file.

        Args:
            path: output file
        """
        dataset = self.dataset
        assert isinstance(dataset, KahramanmarasDamage)
        payload: dict[str, Any] = {
            "strategy": self.strategy,
            "fold": self.fold,
            "num_folds": self.num_folds,
            "test_city": self.test_city,
            "city": self.city,
            "seed": self.seed,
        }
        if self.strategy == "blocked":
            payload["block_size"] = self.block_size
        for split, index in self.indices.items():
            payload[split] = {
                "building_id": dataset.building_ids[index].tolist(),
                "city": dataset.city_of[index].tolist(),
            }
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(json.dumps(payload))

    def input_spec(self) -> dict[str, Any]:
        """How the model's inputs are made, for the checkpoint.

        :class:`~torchgeo_quake.trainers.DamageDetectionTask` stores this at
        the start of fitting in its checkpoints (see its ``input_spec``), so
        that a trained model can refuse, or resample, SAR images of another
        kind than it was trained on.

        Returns:
            ``radiometry`` (str: ``"db"``, ``"amplitude"`` or ``"intensity"``),
            ``sar_res`` (float, SAR pixel size in metres at which the patches
            were extracted, see :func:`sar_pixel_size`; None when the cities'
            pixel sizes differ or their CRS is geographic) and ``patch_size``
            (int, patch side in SAR pixels).

        .. versionadded:: 0.1
        """
        if self._input_spec is None:
            if self.dataset is None:
                self.dataset = KahramanmarasDamage(**self.kwargs)
            dataset = self.dataset
            assert isinstance(dataset, KahramanmarasDamage)
            sar_res = sar_pixel_size(_sar_files(dataset))
            self._input_spec = {
                "radiometry": str(dataset.radiometry),
                "sar_res": None if sar_res is None else float(sar_res),
                "patch_size": int(dataset.size),
            }
        return dict(self._input_spec)

    def normalization_stats(self) -> dict[str, Tensor]:
        """Mean and standard deviation of the inputs over the training split.

        Returns:
            ``sar_mean``, ``sar_std``, ``dsm_mean``, ``dsm_std`` (scalars) and
            ``gem_mean``, ``gem_std`` (vectors) for the modalities in use.
        """
        if self._stats is None:
            if not self.indices:
                self.setup("fit")
            dataset = self.dataset
            assert isinstance(dataset, KahramanmarasDamage)
            arrays = dataset.arrays()
            train = self.indices["train"]
            stats: dict[str, Tensor] = {}
            for key in ("sar", "dsm"):
                if key in arrays:
                    values = arrays[key][train].astype(np.float64)
                    stats[f"{key}_mean"] = torch.tensor(float(values.mean()))
                    stats[f"{key}_std"] = torch.tensor(float(values.std()))
            if "gem" in arrays:
                values = arrays["gem"][train].astype(np.float64)
                stats["gem_mean"] = torch.from_numpy(values.mean(axis=0)).float()
                stats["gem_std"] = torch.from_numpy(values.std(axis=0)).float()
            self._stats = stats
        return self._stats
