"""Intersections of building datasets that keep per-building scalars intact."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import torch
from torch import Tensor
from torchgeo.datasets import GeoDataset, IntersectionDataset

__all__ = ["BuildingIntersectionDataset", "IntersectionMixin", "join_samples"]


def join_samples(samples: Iterable[Mapping[Any, Any]]) -> dict[Any, Any]:
    """Join the samples of intersected datasets.

    Like :func:`torchgeo.datasets.utils.concat_samples`, tensors present in several
    samples (e.g. two ``image`` rasters) are concatenated along the channel axis;
    unlike it, a key present in one sample only is kept as it is, so
    zero-dimensional tensors such as ``label`` and ``building_id`` survive.

    Args:
        samples: samples of the intersected datasets, left to right

    Returns:
        The joined sample.

    .. versionadded:: 0.1
    """
    joined: dict[Any, Any] = {}
    for sample in samples:
        for key, value in sample.items():
            if key not in joined:
                joined[key] = value
            elif (
                isinstance(value, Tensor)
                and isinstance(joined[key], Tensor)
                and value.dim() > 0
            ):
                joined[key] = torch.cat([joined[key], value])
    return joined


class IntersectionMixin:
    """Make ``a & b`` build a :class:`BuildingIntersectionDataset`.

    .. versionadded:: 0.1
    """

    def __and__(self, other: GeoDataset) -> BuildingIntersectionDataset:
        """Take the intersection of two datasets.

        Args:
            other: another dataset

        Returns:
            A single dataset whose samples are joined with :func:`join_samples`.
        """
        assert isinstance(self, GeoDataset)
        return BuildingIntersectionDataset(self, other)


class BuildingIntersectionDataset(IntersectionMixin, IntersectionDataset):
    """An :class:`~torchgeo.datasets.IntersectionDataset` for building samples.

    Identical to TorchGeo's, except that samples are joined with
    :func:`join_samples` by default and that intersecting it again (``a & b & c``)
    keeps that behaviour.

    .. versionadded:: 0.1
    """

    def __init__(
        self,
        dataset1: GeoDataset,
        dataset2: GeoDataset,
        spatial_only: bool = False,
        collate_fn: Any = join_samples,
        transforms: Any = None,
    ) -> None:
        """Initialize a new BuildingIntersectionDataset instance.

        Args:
            dataset1: the first dataset (its CRS and resolution are used)
            dataset2: the second dataset
            spatial_only: if True, ignore the temporal dimension
            collate_fn: function used to join the two samples
            transforms: a function/transform that takes a sample and returns a
                transformed version
        """
        super().__init__(dataset1, dataset2, spatial_only, collate_fn, transforms)
