"""Lightning data module of any building-damage event: a folder of areas.

.. versionadded:: 0.2
"""

from __future__ import annotations

import json
import logging
import os
import warnings
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import kornia.augmentation as K
import numpy as np
import torch
from pyproj import CRS
from torch import Tensor, nn
from torch.utils.data import DataLoader, Sampler, Subset
from torchgeo.datamodules import NonGeoDataModule
from torchgeo.datasets import stack_samples

from ..datasets.building_damage import BuildingDamage
from ..datasets.csk import CSKSAR
from ..datasets.splits import (
    Strategy,
    buffer_splits,
    inner_validation_city,
    make_splits,
)
from ..paper import MODALITIES
from ..trainers.input_spec import SAR_RES_TOLERANCE
from ..utils import under_root_dir

__all__ = [
    "BuildingDamageDataModule",
    "PairedFlipRotate",
    "Selection",
    "sar_pixel_size",
]

#: How the validation split of ``"loco"`` is chosen: a random share of the
#: training cities, or one whole training city
#: (:func:`~torchgeo_quake.datasets.splits.inner_validation_city`).
Selection = Literal["random", "inner-city"]

_RASTERS = ("sar", "footprint", "dsm")

_log = logging.getLogger(__name__)


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
        paths: SAR file by name (e.g. area)

    Returns:
        The mean of the pixel width and height in metres when every file has a
        projected CRS and all sizes agree within 1 % (``SAR_RES_TOLERANCE`` of
        :mod:`torchgeo_quake.trainers.input_spec`); None otherwise (a warning
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
    if high > low * (1 + SAR_RES_TOLERANCE):
        warnings.warn(
            f"the SAR images have different pixel sizes "
            f"({ {k: round(v, 3) for k, v in sizes.items()} } m): input_spec "
            "sar_res=None; resample them to one pixel size to record it",
            UserWarning,
            stacklevel=2,
        )
        return None
    return float(np.mean(list(sizes.values())))


def _sar_files(dataset: BuildingDamage) -> dict[str, Path]:
    """The SAR file of every area of a dataset (``sar.tif``, else ``sar.h5``).

    Args:
        dataset: the dataset

    Returns:
        Path by area name.
    """
    paths = {}
    for area in dataset.areas:
        path = dataset._area_files(area)["sar"]
        assert path is not None
        paths[area] = path
    return paths


def _identity(batch: dict[str, Any]) -> dict[str, Any]:
    """Return the batch unchanged (normalisation lives in the model).

    Args:
        batch: a batch

    Returns:
        The same batch.
    """
    return batch


class BuildingDamageDataModule(NonGeoDataModule):
    """Data module of :class:`~torchgeo_quake.datasets.BuildingDamage`: any event.

    Trains on a folder of areas laid out as ``root/<area>/{sar.tif,
    buildings.gpkg, destroyed.geojson, [dsm.tif], [gem.csv]}`` (see
    :class:`~torchgeo_quake.datasets.BuildingDamage` for the accepted file
    names and damage references). The splits are those of the paper through
    :func:`~torchgeo_quake.datasets.make_splits` — stratified k-fold over all
    areas (``"cv"``), leave-one-area-out (``"loco"``), k-fold on one area
    (``"city"``) or spatially blocked k-fold (``"blocked"``) — each with a
    validation split carved from the training part. The split parameters keep
    the paper's words: *test_city* and *city* name **areas** (the paper's areas
    are cities). Normalisation statistics of SAR, DSM and GEM are computed on
    the training split only and handed to the model
    (:meth:`normalization_stats`), which stores them in its checkpoint with
    :meth:`input_spec`. Training batches are augmented on the device with
    random flips and 90° rotations applied identically to all raster inputs of
    a sample, and shuffled by the seed and the epoch alone.

    A *buffer* drops the training and validation buildings near a test
    building (:func:`~torchgeo_quake.datasets.splits.buffer_splits`; their
    number per split is :attr:`dropped`, and is saved in the splits file), and
    ``selection="inner-city"`` validates a ``"loco"`` split on a whole
    training city (:attr:`val_city`) instead of a random share.

    Samples carry labels 0 (intact) and 1 (damaged): buildings a reference
    excludes from training (e.g. Copernicus EMS "Possibly damaged") never
    become samples; the dataset counts them (``report()``).

    .. versionadded:: 0.2
    .. versionchanged:: 0.3
       *buffer* and *selection*; ``"blocked"`` honours *city*.
    """

    def __init__(
        self,
        root: str | os.PathLike[str] = "data",
        areas: Sequence[str] | None = None,
        modalities: Sequence[str] = MODALITIES,
        strategy: Strategy = "cv",
        fold: int = 0,
        num_folds: int = 5,
        test_city: str | None = None,
        city: str | None = None,
        val_fraction: float = 0.15,
        seed: int = 0,
        negatives_per_positive: float | None = 20.0,
        radiometry: str = "db",
        augment: bool = True,
        batch_size: int = 64,
        num_workers: int = 0,
        splits_file: str | None = None,
        block_size: float = 1000.0,
        id_field: str = "osm_id",
        label_field: str | None = None,
        damage_schema: str = "auto",
        grade_map: Mapping[str, int] | None = None,
        damage_max_distance: float = 10.0,
        buffer: float = 0.0,
        selection: Selection = "random",
    ) -> None:
        """Initialize a new BuildingDamageDataModule instance.

        Args:
            root: folder holding one sub-folder per area
            areas: areas to load (default: every sub-folder of *root* holding a
                SAR image and footprints, see
                :meth:`~torchgeo_quake.datasets.BuildingDamage.find_areas`)
            modalities: inputs given to the model (``sar`` and ``footprint``
                required, ``dsm`` and ``gem`` optional)
            strategy: ``"cv"``, ``"loco"``, ``"city"`` or ``"blocked"`` (see
                :func:`~torchgeo_quake.datasets.make_splits`)
            fold: test fold for ``"cv"``, ``"city"`` and ``"blocked"``
            num_folds: number of folds
            test_city: held-out area for ``"loco"``
            city: the only area used for ``"city"`` (and, if given, ``"blocked"``)
            val_fraction: share of the training part used for validation
            seed: seed of splits and negative sampling
            negatives_per_positive: intact buildings per damaged one and area
                (paper: 20); None keeps every building
            radiometry: SAR values seen by the model (``"db"``, ``"amplitude"``,
                ``"intensity"``)
            augment: random flips / 90° rotations of training batches
            batch_size: mini-batch size
            num_workers: data-loader workers
            splits_file: if given, write the split (building ids and areas per
                split) to this JSON file at set-up, so results can be re-derived;
                a relative path is relative to the trainer's ``default_root_dir``
                (the current folder without a trainer or when it is not set)
            block_size: side of the spatial blocks of ``"blocked"``, in metres
            id_field: unique building id column of the footprints
            label_field: column of the footprint file holding the label (0/1 or
                a damage grade); None reads each area's damage reference file
            damage_schema: schema of the damage reference: ``"auto"`` (detect),
                ``"hotosm"`` (every feature is damaged) or ``"ems"`` (Copernicus
                EMS ``damage_gra`` grades)
            grade_map: damage grade → label (1 damaged, 0 intact, -1 excluded);
                None uses the default Copernicus EMS mapping ("Possibly
                damaged" excluded)
            damage_max_distance: largest distance in metres from a reference
                point to the footprint it is joined to, when it lies in none
            buffer: drop training and validation buildings with a test
                building's centroid of the same area within this many metres
                in x and in y (0: none; see
                :func:`~torchgeo_quake.datasets.splits.buffer_splits`)
            selection: validation split of ``"loco"``: ``"random"`` (a share
                of the training areas) or ``"inner-city"`` (all of the training
                area with the most damaged buildings, see
                :func:`~torchgeo_quake.datasets.splits.inner_validation_city`)

        Raises:
            ValueError: If *block_size* is not positive, *buffer* is negative,
                or *selection* is unknown or ``"inner-city"`` is asked of a
                strategy other than ``"loco"``.
        """
        if not block_size > 0:
            raise ValueError(
                f"block_size must be a positive distance in metres, got {block_size}"
            )
        if not buffer >= 0:
            raise ValueError(
                f"buffer must be a distance >= 0 in metres, got {buffer} (0: no buffer)"
            )
        if selection not in ("random", "inner-city"):
            raise ValueError(
                f"selection must be 'random' or 'inner-city', got {selection!r}"
            )
        if selection == "inner-city" and strategy != "loco":
            raise ValueError(
                "selection='inner-city' (validation on a held-out training "
                f"city) needs strategy 'loco', got {strategy!r}"
            )
        super().__init__(
            BuildingDamage,
            batch_size=batch_size,
            num_workers=num_workers,
            root=root,
            areas=None if areas is None else tuple(areas),
            modalities=tuple(modalities),
            negatives_per_positive=negatives_per_positive,
            seed=seed,
            radiometry=radiometry,
            id_field=id_field,
            label_field=label_field,
            damage_schema=damage_schema,
            grade_map=None if grade_map is None else dict(grade_map),
            damage_max_distance=damage_max_distance,
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
        self.buffer = buffer
        self.selection: Selection = selection
        #: The validation area of ``selection="inner-city"`` (set at set-up).
        self.val_city: str | None = None
        #: Training and validation samples dropped by the buffer, per split.
        self.dropped: dict[str, int] = {"train": 0, "val": 0}
        self.collate_fn = stack_samples
        self.aug = _identity
        self.train_aug = PairedFlipRotate() if augment else None
        self.indices: dict[str, np.ndarray] = {}
        self._stats: dict[str, Tensor] | None = None
        self._input_spec: dict[str, Any] | None = None

    def _dataset(self) -> BuildingDamage:
        """The dataset, built on first use.

        Returns:
            The :class:`~torchgeo_quake.datasets.BuildingDamage` (or subclass)
            of this data module.
        """
        if self.dataset is None:
            self.dataset = self.dataset_class(**self.kwargs)
        dataset = self.dataset
        assert isinstance(dataset, BuildingDamage)
        return dataset

    def prepare_data(self) -> None:
        """Build the sample cache once (single process).

        Subclasses may make missing inputs here too (the Kahramanmaraş module
        simulates an empty root).
        """
        self.dataset_class(**self.kwargs)

    def make_indices(self) -> dict[str, np.ndarray]:
        """Compute the train / val / test splits (without setting them up).

        Sets :attr:`val_city` and :attr:`dropped`. Calling this before training
        finds a split that cannot be used (e.g. a fold without damaged
        buildings) early.

        Returns:
            Sorted index arrays ``train``, ``val`` and ``test``.

        Raises:
            ValueError: If the split or the buffer leaves a split unusable
                (see :func:`~torchgeo_quake.datasets.make_splits` and
                :func:`~torchgeo_quake.datasets.splits.buffer_splits`).

        .. versionadded:: 0.3
        """
        dataset = self._dataset()
        labels, cities = dataset.labels, dataset.city_of
        self.val_city = None
        if self.selection == "inner-city":
            if self.test_city is None:
                raise ValueError("strategy 'loco' needs test_city, got None")
            self.val_city = inner_validation_city(labels, cities, self.test_city)
        indices = make_splits(
            labels,
            cities,
            strategy=self.strategy,
            fold=self.fold,
            num_folds=self.num_folds,
            test_city=self.test_city,
            city=self.city,
            val_fraction=self.val_fraction,
            seed=self.seed,
            centroids=dataset.centroids,
            block_size=self.block_size,
            val_city=self.val_city,
        )
        indices, self.dropped = buffer_splits(
            indices, dataset.centroids, cities, self.buffer, labels=labels
        )
        if self.buffer:
            _log.info(
                "buffer %g m dropped %s (fold %d)", self.buffer, self.dropped, self.fold
            )
        return indices

    def setup(self, stage: str) -> None:
        """Build the dataset and the train / val / test splits.

        Args:
            stage: ``"fit"``, ``"validate"``, ``"test"`` or ``"predict"``
        """
        dataset = self._dataset()
        if not self.indices:
            self.indices = self.make_indices()
            if self.splits_file is not None:
                self.save_splits(under_root_dir(self.splits_file, self.trainer))
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
        """Write the building ids and areas of every split to a JSON file.

        The areas are stored under ``city``, the paper's word.

        Args:
            path: output file
        """
        dataset = self._dataset()
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
        if self.buffer:
            payload["buffer"] = self.buffer
            payload["dropped"] = dict(self.dropped)
        if self.selection != "random":
            payload["selection"] = self.selection
            payload["val_city"] = self.val_city
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
            were extracted, see :func:`sar_pixel_size`; None when the areas'
            pixel sizes differ or their CRS is geographic) and ``patch_size``
            (int, patch side in SAR pixels).

        .. versionadded:: 0.1
        """
        if self._input_spec is None:
            dataset = self._dataset()
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
            arrays = self._dataset().arrays()
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
