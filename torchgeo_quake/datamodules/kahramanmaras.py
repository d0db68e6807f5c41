"""Lightning data module of the Kahramanmaraş building-damage dataset."""

from __future__ import annotations

import os
from collections.abc import Sequence

from ..datasets.kahramanmaras import MODALITIES, KahramanmarasDamage
from ..datasets.splits import Strategy, make_splits, patch_overlap, spatial_blocks
from .building_damage import (
    BuildingDamageDataModule,
    PairedFlipRotate,
    Selection,
    sar_pixel_size,
)

__all__ = [
    "KahramanmarasDamageDataModule",
    "PairedFlipRotate",
    "make_splits",
    "patch_overlap",
    "sar_pixel_size",
    "spatial_blocks",
]


class KahramanmarasDamageDataModule(BuildingDamageDataModule):
    """Data module of :class:`~torchgeo_quake.datasets.KahramanmarasDamage`.

    Implements the paper's three protocols through :func:`make_splits`
    (stratified k-fold over all cities, leave-one-city-out, k-fold on one city),
    each with a validation split carved from the training part. Normalisation
    statistics of SAR, DSM and GEM are computed on the training split only and
    handed to the model (:meth:`normalization_stats`), which stores them in its
    checkpoint. Training batches are augmented on the device with random flips
    and 90° rotations applied identically to all raster inputs of a sample.

    Everything but the dataset is :class:`BuildingDamageDataModule`'s: this
    class reads the paper's five cities and simulates them into an empty root.

    .. versionadded:: 0.1
    .. versionchanged:: 0.2
       A subclass of :class:`BuildingDamageDataModule`; a relative
       ``splits_file`` is relative to the trainer's ``default_root_dir``.
    .. versionchanged:: 0.3
       *buffer* and *selection* (see :class:`BuildingDamageDataModule`), and
       *scenario*, passed to :class:`~torchgeo_quake.datasets.KahramanmarasDamage`.
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
        buffer: float = 0.0,
        selection: Selection = "random",
        scenario: str | None = None,
    ) -> None:
        """Initialize a new KahramanmarasDamageDataModule instance.

        Args:
            root: dataset root (simulated on first use when empty)
            cities: cities to load (default: all five)
            modalities: inputs given to the model
            strategy: ``"cv"``, ``"loco"``, ``"city"`` or ``"blocked"`` (see
                :func:`make_splits`)
            fold: test fold for ``"cv"``, ``"city"`` and ``"blocked"``
            num_folds: number of folds
            test_city: held-out city for ``"loco"``
            city: the city used for ``"city"`` (and, if given, ``"blocked"``)
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
                split) to this JSON file at set-up, so results can be re-derived;
                a relative path is relative to the trainer's ``default_root_dir``
            block_size: side of the spatial blocks of ``"blocked"``, in metres
            buffer: drop training and validation buildings with a test
                building's centroid of the same city within this many metres
                in x and in y (0: none)
            selection: validation split of ``"loco"``: ``"random"`` (a share
                of the training cities) or ``"inner-city"`` (all of the
                training city with the most damaged buildings)
            scenario: simulator scenario of the scene (``"calibrated"`` or
                ``"v0.1"``; None: simulate the calibrated default and accept
                any current scene; see
                :class:`~torchgeo_quake.datasets.KahramanmarasDamage`)

        Raises:
            ValueError: If *block_size* is not positive, *buffer* is negative,
                or *selection* does not fit the strategy.
        """
        super().__init__(
            root=root,
            areas=cities,
            modalities=modalities,
            strategy=strategy,
            fold=fold,
            num_folds=num_folds,
            test_city=test_city,
            city=city,
            val_fraction=val_fraction,
            seed=seed,
            negatives_per_positive=negatives_per_positive,
            radiometry=radiometry,
            augment=augment,
            batch_size=batch_size,
            num_workers=num_workers,
            splits_file=splits_file,
            block_size=block_size,
            buffer=buffer,
            selection=selection,
        )
        self.dataset_class = KahramanmarasDamage
        self.kwargs = {
            "root": root,
            "cities": cities,
            "modalities": tuple(modalities),
            "negatives_per_positive": negatives_per_positive,
            "seed": seed,
            "scale": scale,
            "radiometry": radiometry,
            "simulate": simulate,
            "scenario": scenario,
        }
