"""Building-centred sampling: one patch per building footprint."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import ClassVar

import torch
from shapely import Polygon
from torch import Generator
from torchgeo.datasets import GeoDataset
from torchgeo.samplers import GeoSampler

from ..datasets.windows import BuildingWindows, find_datasets

__all__ = ["BuildingCentroidSampler", "find_datasets"]


class BuildingCentroidSampler(GeoSampler, BuildingWindows):
    """Yields one query per building: a window centred on its footprint centroid.

    The paper extracts, for every selected building, a 32×32 patch of the
    post-event SAR image centred on the building centroid. This sampler finds the
    :class:`~torchgeo_quake.datasets.OSMBuildings` inside the dataset it is given
    (usually ``sar & dsm & footprints``) and yields, per building, a window of
    *size* pixels at the dataset resolution, as a TorchGeo query.

    The windows, the buildings that cannot be sampled (with their reasons, in
    :attr:`skipped`) and the selection of intact buildings
    (*negatives_per_positive*) are those of
    :class:`~torchgeo_quake.datasets.BuildingWindows`, which documents the
    rules; this class adds the TorchGeo sampler interface (iteration, length,
    shuffling). With *negatives_per_positive* set (training), buildings that the
    damage reference excludes (label -1, e.g. a Copernicus EMS "Possibly
    damaged" grade) are skipped too, with the reason ``"excluded by the damage
    reference (<grade>)"``; with ``negatives_per_positive=None`` (mapping) they
    are kept.

    .. versionadded:: 0.1
    """

    name: ClassVar[str] = "BuildingCentroidSampler"

    def __init__(
        self,
        dataset: GeoDataset,
        size: int = 32,
        negatives_per_positive: float | None = 20.0,
        seed: int = 0,
        cities: Sequence[str] | None = None,
        roi: Polygon | None = None,
        max_nodata: float = 0.0,
        shuffle: bool = False,
        generator: Generator | None = None,
    ) -> None:
        """Initialize a new BuildingCentroidSampler instance.

        Args:
            dataset: dataset to sample from; must contain an
                :class:`~torchgeo_quake.datasets.OSMBuildings`
            size: window size in pixels (height and width)
            negatives_per_positive: intact buildings kept per damaged building, per
                city; None keeps every building
            seed: seed of the negative sampling
            cities: keep only buildings of these cities (default: all)
            roi: keep only buildings whose centroid lies in this polygon
                (dataset CRS)
            max_nodata: largest tolerated share of nodata pixels in a window of
                each raster of the building's branch
            shuffle: if True, yield buildings in a new random order every epoch
            generator: random generator for shuffling

        Raises:
            ValueError: If the dataset holds no OSMBuildings, or *size* or
                *negatives_per_positive* is invalid.
        """
        GeoSampler.__init__(self, dataset, roi)
        BuildingWindows.__init__(
            self,
            dataset,
            size=size,
            negatives_per_positive=negatives_per_positive,
            seed=seed,
            cities=cities,
            roi=roi,
            max_nodata=max_nodata,
        )
        self.shuffle = shuffle
        self.generator = generator
        self.queries = self.to_queries()

    def __iter__(self) -> Iterator[tuple[slice, slice, slice]]:
        """Yield the window of every selected building.

        Yields:
            [xmin:xmax:xres, ymin:ymax:yres, tmin:tmax] coordinates to index a dataset.
        """
        if self.shuffle:
            order = torch.randperm(len(self.queries), generator=self.generator)
            for i in order.tolist():
                yield self.queries[i]
        else:
            yield from self.queries

    def __len__(self) -> int:
        """Number of selected buildings.

        Returns:
            Number of queries per epoch.
        """
        return len(self.queries)
