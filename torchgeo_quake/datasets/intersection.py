"""Intersections of building datasets that keep per-building scalars intact."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import torch
from pyproj import CRS
from torch import Tensor
from torchgeo.datasets import GeoDataset, IntersectionDataset, UnionDataset

__all__ = [
    "BuildingIntersectionDataset",
    "IntersectionMixin",
    "join_samples",
    "no_intersection_message",
]


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


def _describe(dataset: GeoDataset) -> str:
    """Name a dataset by its class and files (nested datasets recursively).

    Args:
        dataset: any dataset

    Returns:
        E.g. ``CSKSAR('sar.tif')`` or ``(CSKSAR('sar.tif') & CartoSatDSM(...))``.
    """
    if isinstance(dataset, IntersectionDataset | UnionDataset):
        sep = " & " if isinstance(dataset, IntersectionDataset) else " | "
        return "(" + sep.join(_describe(d) for d in dataset.datasets) + ")"
    files = [str(f) for f in dataset.index.get("filepath", [])]
    names = ", ".join(repr(f) for f in files[:3])
    if len(files) > 3:
        names += f" and {len(files) - 3} more"
    return f"{dataset.__class__.__name__}({names})"


def no_intersection_message(dataset1: GeoDataset, dataset2: GeoDataset) -> str:
    """Explain why two datasets cannot be intersected.

    Args:
        dataset1: the first dataset
        dataset2: the second dataset, already in the CRS of the first

    Returns:
        A message with both datasets' files and bounds in one CRS, and advice.

    .. versionadded:: 0.1
    """
    crs_ = CRS.from_user_input(dataset1.crs)
    digits = 6 if crs_.is_geographic else 1

    def bounds(dataset: GeoDataset) -> str:
        xmin, ymin, xmax, ymax = (float(v) for v in dataset.index.total_bounds)
        return (
            f"x {xmin:.{digits}f} to {xmax:.{digits}f}, "
            f"y {ymin:.{digits}f} to {ymax:.{digits}f}"
        )

    crs = crs_.to_string()
    return (
        f"{_describe(dataset1)} and {_describe(dataset2)} have no spatial "
        f"intersection: the first covers {bounds(dataset1)}, the second "
        f"{bounds(dataset2)} (both in {crs}). Check that the files cover the same "
        "area (e.g. the footprints and the DSM of the city the SAR image shows) "
        "and that each file's CRS is right (a file with a wrong CRS lands "
        "elsewhere); clip or re-export the data of the common area."
    )


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

        Raises:
            RuntimeError: If the datasets do not overlap (the message names their
                files and bounds) or have no temporal intersection.
        """
        try:
            super().__init__(dataset1, dataset2, spatial_only, collate_fn, transforms)
        except RuntimeError as err:
            if "no spatial intersection" not in str(err):
                raise
            message = no_intersection_message(dataset1, dataset2)
            raise RuntimeError(message) from err
