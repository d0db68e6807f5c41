"""The one builder of an area's intersected dataset and its building windows.

Training samples (:class:`~torchgeo_quake.datasets.BuildingDamage` and its
subclasses) and the damage map of a new city (``torchgeo-quake map``) are made
by the same function, :func:`build_area`, so that a model sees at mapping time
exactly the kind of input it was trained on: the SAR image, the DSM put on the
SAR pixel lattice, the footprints rasterised at the SAR resolution, intersected
in that order, and one window per building planned by
:class:`~torchgeo_quake.datasets.BuildingWindows`.

.. versionadded:: 0.2
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from torchgeo.datasets import GeoDataset

from .csk import CSKSAR
from .dsm import CartoSatDSM
from .osm import OSMBuildings
from .windows import BuildingWindows

__all__ = ["Area", "build_area"]


@dataclass
class Area:
    """An area's data-layer dataset, its footprints and its building windows.

    .. versionadded:: 0.2
    """

    #: ``sar [& dsm] & footprints``.
    dataset: GeoDataset
    #: The SAR image.
    sar: CSKSAR
    #: The DSM, or None.
    dsm: CartoSatDSM | None
    #: The footprints (with labels and exposure).
    footprints: OSMBuildings
    #: The window of every selected building, and the skipped ones.
    windows: BuildingWindows

    def samples(self) -> Iterator[dict[str, Any]]:
        """Read the sample of every selected building, in window order.

        Yields:
            The data-layer sample of each building of :attr:`windows`.
        """
        for query in self.windows.to_queries():
            yield self.dataset[query]


def build_area(
    sar: CSKSAR,
    footprints: OSMBuildings,
    dsm: CartoSatDSM | None = None,
    *,
    size: int = 32,
    negatives_per_positive: float | None = None,
    seed: int = 0,
    max_nodata: float = 0.0,
) -> Area:
    """Intersect an area's inputs and plan one window per building.

    Args:
        sar: the post-event SAR image (its pixel grid is the windows' grid)
        footprints: the building footprints, with labels (and exposure)
        dsm: the DSM, or None to leave it out
        size: window side in SAR pixels
        negatives_per_positive: intact buildings kept per damaged one (the
            paper's 20 for training); None keeps every building (mapping)
        seed: seed of the selection of intact buildings
        max_nodata: largest tolerated share of nodata pixels in a window

    Returns:
        The intersected dataset, its parts and the planned windows.

    Raises:
        ValueError: If the DSM or the footprints do not overlap the SAR image
            (the message names the files).

    .. versionadded:: 0.2
    """
    dataset: GeoDataset = sar
    if dsm is not None:
        try:
            dataset = dataset & dsm
        except RuntimeError as err:
            raise ValueError(
                f"the DSM {dsm.files} does not overlap the SAR image {sar.files} "
                f"({err}); check that both cover the same area and that their "
                "CRSs are right"
            ) from err
    try:
        dataset = dataset & footprints
    except RuntimeError as err:
        raise ValueError(
            f"the footprints {footprints.files} do not overlap the SAR image "
            f"{sar.files} ({err}); check that both cover the same area and that "
            "the footprint file's CRS is right"
        ) from err
    windows = BuildingWindows(
        dataset,
        size=size,
        negatives_per_positive=negatives_per_positive,
        seed=seed,
        max_nodata=max_nodata,
    )
    return Area(dataset, sar, dsm, footprints, windows)
