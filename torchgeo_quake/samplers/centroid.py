"""Building-centred sampling: one patch per building footprint."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import pandas as pd
import shapely
import torch
from shapely import Polygon
from torch import Generator
from torchgeo.datasets import GeoDataset, IntersectionDataset, UnionDataset
from torchgeo.samplers import GeoSampler

from ..datasets.osm import OSMBuildings
from ..datasets.raster import CachedRasterDataset

__all__ = ["BuildingCentroidSampler", "find_datasets"]


def find_datasets(dataset: GeoDataset, kind: type[Any]) -> list[Any]:
    """Find the datasets of a given class inside (nested) intersections/unions.

    Args:
        dataset: a dataset, possibly an intersection or union of datasets
        kind: the class to look for

    Returns:
        The matching datasets, left to right.

    .. versionadded:: 0.1
    """
    if isinstance(dataset, kind):
        return [dataset]
    if isinstance(dataset, IntersectionDataset | UnionDataset):
        found: list[Any] = []
        for ds in dataset.datasets:
            found.extend(find_datasets(ds, kind))
        return found
    return []


class BuildingCentroidSampler(GeoSampler):
    """Yields one query per building: a window centred on its footprint centroid.

    The paper extracts, for every selected building, a 32×32 patch of the
    post-event SAR image centred on the building centroid. This sampler finds the
    :class:`~torchgeo_quake.datasets.OSMBuildings` inside the dataset it is given
    (usually ``sar & dsm & footprints``) and yields, per building, a window of
    *size* pixels at the dataset resolution. Window corners are snapped to the
    pixel grid of the reference raster (the first
    :class:`~torchgeo_quake.datasets.raster.CachedRasterDataset`, i.e. the SAR
    image) so patches are read without resampling.

    Buildings whose window does not lie entirely inside the reference raster, or
    covers more than *max_nodata* nodata pixels, are skipped; they are counted
    and listed in :attr:`skipped` with the reason, never dropped silently.

    With *negatives_per_positive* (20 in the paper) all damaged buildings are
    kept and intact ones are drawn at random, per city, up to that ratio (or all
    of them when fewer are available), reproducibly for a given *seed*.

    .. versionadded:: 0.1
    """

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
                the reference raster
            shuffle: if True, yield buildings in a new random order every epoch
            generator: random generator for shuffling

        Raises:
            ValueError: If the dataset holds no OSMBuildings, or *size* or
                *negatives_per_positive* is invalid.
        """
        super().__init__(dataset, roi)
        if size <= 0:
            raise ValueError(f"size must be positive, got {size}")
        if negatives_per_positive is not None and negatives_per_positive < 0:
            raise ValueError(
                "negatives_per_positive must be >= 0 or None, got "
                f"{negatives_per_positive}"
            )
        footprint_sets: list[OSMBuildings] = find_datasets(dataset, OSMBuildings)
        if not footprint_sets:
            raise ValueError(
                "BuildingCentroidSampler needs a dataset that contains OSMBuildings, "
                "e.g. `sar & dsm & OSMBuildings(...)`."
            )
        rasters: list[CachedRasterDataset] = find_datasets(dataset, CachedRasterDataset)
        self.reference = rasters[0] if rasters else None
        self.size = int(size)
        self.negatives_per_positive = negatives_per_positive
        self.seed = seed
        self.max_nodata = max_nodata
        self.shuffle = shuffle
        self.generator = generator

        frames = []
        for buildings in footprint_sets:
            frames.append(
                pd.DataFrame(
                    {
                        "building_id": buildings.buildings["building_id"].to_numpy(),
                        "label": buildings.buildings["label"].to_numpy(),
                        "city": buildings.city,
                        "cx": buildings.centroids[:, 0],
                        "cy": buildings.centroids[:, 1],
                    }
                )
            )
        table = pd.concat(frames, ignore_index=True)
        if cities is not None:
            table = table[table["city"].isin(list(cities))]
        if roi is not None:
            inside = shapely.contains_xy(roi, table["cx"], table["cy"])
            table = table[inside]
        table = table.reset_index(drop=True)

        xmin, xmax, ymin, ymax = self._windows(table)
        reasons = self._skip_reasons(xmin, xmax, ymin, ymax)
        skipped = reasons != ""
        #: Buildings that could not be sampled: ``building_id``, ``city``,
        #: ``label`` and ``reason``.
        self.skipped = table.loc[skipped, ["building_id", "city", "label"]].assign(
            reason=reasons[skipped]
        )
        self.skipped = self.skipped.reset_index(drop=True)
        table = table.assign(xmin=xmin, xmax=xmax, ymin=ymin, ymax=ymax)[~skipped]

        table = self._select(table)
        #: Selected buildings in sampling order.
        self.buildings = table.reset_index(drop=True)
        t = slice(pd.Timestamp.min, pd.Timestamp.max)
        xres, yres = self.res
        self.queries = [
            (slice(a, b, xres), slice(c, d, yres), t)
            for a, b, c, d in zip(
                self.buildings["xmin"],
                self.buildings["xmax"],
                self.buildings["ymin"],
                self.buildings["ymax"],
                strict=True,
            )
        ]

    # ------------------------------------------------------------- helpers
    def _windows(
        self, table: pd.DataFrame
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Window bounds centred on each centroid, snapped to the reference grid.

        Args:
            table: buildings with ``cx`` and ``cy``

        Returns:
            (xmin, xmax, ymin, ymax) arrays.
        """
        xres, yres = self.res
        half = self.size / 2
        cx = table["cx"].to_numpy(dtype=np.float64)
        cy = table["cy"].to_numpy(dtype=np.float64)
        if self.reference is not None:
            _, _, _, left, top = self.reference._grid_shape()
            col = np.round((cx - left) / xres - half)
            row = np.round((top - cy) / yres - half)
            xmin = left + col * xres
            ymax = top - row * yres
        else:
            xmin = cx - half * xres
            ymax = cy + half * yres
        return xmin, xmin + self.size * xres, ymax - self.size * yres, ymax

    def _skip_reasons(
        self, xmin: np.ndarray, xmax: np.ndarray, ymin: np.ndarray, ymax: np.ndarray
    ) -> np.ndarray:
        """Reason why each window cannot be sampled ("" when it can).

        Args:
            xmin: left edges
            xmax: right edges
            ymin: bottom edges
            ymax: top edges

        Returns:
            Array of reasons.
        """
        reasons = np.full(len(xmin), "", dtype=object)
        if self.reference is None or len(xmin) == 0:
            return reasons
        coverage = shapely.union_all(self.reference.index.geometry.values)
        boxes = shapely.box(xmin, ymin, xmax, ymax)
        inside = shapely.contains(coverage.buffer(1e-6 * self.res[0]), boxes)
        reasons[~inside] = "outside the SAR image"
        rows = np.flatnonzero(inside)
        fractions = self.reference.nodata_fractions(
            xmin[rows], ymax[rows], self.size, self.size
        )
        reasons[rows[fractions > self.max_nodata]] = "on SAR nodata"
        return reasons

    def _select(self, table: pd.DataFrame) -> pd.DataFrame:
        """Keep all damaged buildings and sample intact ones per city.

        Args:
            table: sampleable buildings

        Returns:
            The selected buildings, in a stable order (city, then building id).
        """
        if self.negatives_per_positive is None:
            return table.sort_values(["city", "building_id"], kind="stable")
        rng = np.random.default_rng(self.seed)
        parts = []
        for city in sorted(table["city"].unique()):
            part = table[table["city"] == city]
            positives = part[part["label"] == 1]
            negatives = part[part["label"] == 0].sort_values("building_id")
            wanted = round(self.negatives_per_positive * len(positives))
            if wanted < len(negatives):
                chosen = rng.choice(len(negatives), size=wanted, replace=False)
                negatives = negatives.iloc[np.sort(chosen)]
            parts.append(
                pd.concat([positives, negatives]).sort_values(
                    "building_id", kind="stable"
                )
            )
        if not parts:
            return table
        selected = pd.DataFrame(pd.concat(parts))
        return selected

    # ------------------------------------------------------------ sampling
    def counts(self) -> pd.DataFrame:
        """Intact and damaged buildings selected per city.

        Returns:
            DataFrame indexed by city with columns ``intact`` and ``damaged``.
        """
        labels = self.buildings["label"].map({0: "intact", 1: "damaged"})
        table = pd.crosstab(self.buildings["city"], labels)
        for column in ("intact", "damaged"):
            if column not in table.columns:
                table[column] = 0
        result = pd.DataFrame(table[["intact", "damaged"]])
        return result

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
