"""Building-centred windows: which patch of which raster each building gets.

:class:`BuildingWindows` plans, for every footprint of a dataset such as
``sar & dsm & OSMBuildings(...)``, the window of a building-centred patch, the
reason a building cannot be sampled, and the paper's 20:1 selection of intact
buildings. It is the one place where this is decided: the
:class:`~torchgeo_quake.samplers.BuildingCentroidSampler` yields its windows as
TorchGeo queries, and :func:`~torchgeo_quake.datasets.build_area` (used by the
datasets and by ``torchgeo-quake map``) reads them.

.. versionadded:: 0.2
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import shapely
from shapely import Polygon
from torchgeo.datasets import GeoDataset, IntersectionDataset, UnionDataset

from .csk import CSKSAR
from .dsm import CartoSatDSM
from .osm import OSMBuildings
from .raster import CachedRasterDataset, paused_gc

__all__ = ["BuildingWindows", "find_datasets"]


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


_Leaves = tuple[list[OSMBuildings], list[CachedRasterDataset]]


def _branches(dataset: GeoDataset) -> list[_Leaves]:
    """Split a dataset into the intersections that answer a query together.

    A union answers a query from either side, an intersection from both, so
    ``(sar_a & fp_a) | (sar_b & fp_b)`` has two branches and ``sar & dsm & fp``
    one.

    Args:
        dataset: a dataset, possibly nested intersections and unions

    Returns:
        (footprint datasets, raster datasets) of every branch.
    """
    if isinstance(dataset, OSMBuildings):
        return [([dataset], [])]
    if isinstance(dataset, CachedRasterDataset):
        return [([], [dataset])]
    if isinstance(dataset, UnionDataset):
        return [leaves for ds in dataset.datasets for leaves in _branches(ds)]
    if isinstance(dataset, IntersectionDataset):
        combined: list[_Leaves] = [([], [])]
        for ds in dataset.datasets:
            combined = [
                (fp1 + fp2, r1 + r2)
                for fp1, r1 in combined
                for fp2, r2 in _branches(ds)
            ]
        return combined
    return [([], [])]


def _reference(rasters: Sequence[CachedRasterDataset]) -> CachedRasterDataset | None:
    """The raster whose pixel grid windows are snapped to: the SAR image.

    Args:
        rasters: rasters of one branch, left to right

    Returns:
        The first :class:`~torchgeo_quake.datasets.CSKSAR`, else the first raster
        returning ``sar``, else the first raster, else None.
    """
    for test in (
        lambda r: isinstance(r, CSKSAR),
        lambda r: r.sample_key == "sar",
        lambda r: True,
    ):
        for raster in rasters:
            if test(raster):
                return raster
    return None


def _names(raster: CachedRasterDataset) -> tuple[str, str]:
    """How skip reasons name a raster.

    Args:
        raster: a raster dataset

    Returns:
        ("outside ..." reason, "on ... nodata" reason).
    """
    if isinstance(raster, CSKSAR) or raster.sample_key == "sar":
        return "outside the SAR image", "on SAR nodata"
    if isinstance(raster, CartoSatDSM) or raster.sample_key == "dsm":
        return "outside the DSM", "on DSM nodata"
    name = raster.__class__.__name__
    return f"outside the {name} raster", f"on {name} nodata"


@dataclass
class _Branch:
    """One intersection of rasters that a footprint dataset is sampled with."""

    reference: CachedRasterDataset | None
    rasters: list[CachedRasterDataset] = field(default_factory=list)


class BuildingWindows:
    """The window of every building of a dataset, centred on its footprint centroid.

    The paper extracts, for every selected building, a 32×32 patch of the
    post-event SAR image centred on the building centroid. This plan finds the
    :class:`~torchgeo_quake.datasets.OSMBuildings` inside the dataset it is given
    (usually ``sar & dsm & footprints``) and plans, per building, a window of
    *size* pixels at the dataset resolution.

    Each footprint dataset is paired with the rasters it is intersected with (its
    *branch*: in ``(sar_a & fp_a) | (sar_b & fp_b)`` the buildings of ``fp_a``
    are checked against ``sar_a`` only). Window corners are snapped to the pixel
    grid of the branch's reference raster — the
    :class:`~torchgeo_quake.datasets.CSKSAR` image (else the first raster
    returning ``sar``, else the first raster) — so SAR patches are read without
    resampling, and the other rasters of the branch (the DSM) are put on the same
    pixel lattice with
    :meth:`~torchgeo_quake.datasets.CachedRasterDataset.align_to`, so their
    patches are slices too. The windows are registered with the footprint
    dataset (:meth:`~torchgeo_quake.datasets.OSMBuildings.building_windows`), so
    each query returns the building it was made for.

    Buildings are skipped, counted and listed in :attr:`skipped` with the reason
    (and summarised in a :class:`UserWarning`), never dropped silently, when
    their window

    * does not lie entirely inside a raster of their branch (``"outside the SAR
      image"``, ``"outside the DSM"``),
    * covers more than *max_nodata* nodata pixels of one (``"on SAR nodata"``,
      ``"on DSM nodata"``), or
    * is the window of another building, whose centroid falls in the same pixel
      (``"same window as building <id>"``): the query would return that
      building, so it is sampled once, or
    * is excluded from training by the damage reference (label -1, e.g. a
      Copernicus EMS "Possibly damaged" building: ``"excluded by the damage
      reference (<grade>)"``) — only with *negatives_per_positive*; without it
      (mapping) every building keeps its window.

    With *negatives_per_positive* (20 in the paper) all damaged buildings are
    kept and intact ones are drawn at random, per city, up to that ratio (or all
    of them when fewer are available), reproducibly for a given *seed*. A city
    without any damaged building then yields nothing, which is warned about.

    .. versionadded:: 0.2
       Planned here; :class:`~torchgeo_quake.samplers.BuildingCentroidSampler`
       (0.1) yields these windows.
    """

    #: Who warnings and errors name.
    name: ClassVar[str] = "BuildingWindows"

    def __init__(
        self,
        dataset: GeoDataset,
        size: int = 32,
        negatives_per_positive: float | None = 20.0,
        seed: int = 0,
        cities: Sequence[str] | None = None,
        roi: Polygon | None = None,
        max_nodata: float = 0.0,
    ) -> None:
        """Plan the windows of the buildings of *dataset*.

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

        Raises:
            ValueError: If the dataset holds no OSMBuildings, or *size* or
                *negatives_per_positive* is invalid.
        """
        #: Resolution of the windows (that of the dataset).
        self.res: tuple[float, float] = dataset.res
        if size <= 0:
            raise ValueError(f"size must be positive, got {size}")
        if negatives_per_positive is not None and negatives_per_positive < 0:
            raise ValueError(
                "negatives_per_positive must be >= 0 or None, got "
                f"{negatives_per_positive}"
            )
        footprint_sets: list[OSMBuildings] = []
        for fp in find_datasets(dataset, OSMBuildings):
            if not any(fp is seen for seen in footprint_sets):
                footprint_sets.append(fp)
        if not footprint_sets:
            raise ValueError(
                f"{self.name} needs a dataset that contains OSMBuildings, "
                "e.g. `sar & dsm & OSMBuildings(...)`."
            )
        self.size = int(size)
        self.negatives_per_positive = negatives_per_positive
        self.seed = seed
        self.max_nodata = max_nodata
        branches = _branches(dataset)
        self._footprint_branches = [
            self._branches_of(fp, branches) for fp in footprint_sets
        ]
        #: Reference raster (SAR) of the first footprint dataset, or None.
        self.reference = self._footprint_branches[0][0].reference

        frames = []
        for k, buildings in enumerate(footprint_sets):
            frames.append(
                pd.DataFrame(
                    {
                        "building_id": buildings.buildings["building_id"].to_numpy(),
                        "label": buildings.buildings["label"].to_numpy(),
                        "city": buildings.city,
                        "cx": buildings.centroids[:, 0],
                        "cy": buildings.centroids[:, 1],
                        "_set": k,
                        "_row": np.arange(len(buildings.buildings)),
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

        n = len(table)
        bounds = np.zeros((n, 4), dtype=np.float64)
        reasons = np.full(n, "", dtype=object)
        for k, buildings in enumerate(footprint_sets):
            at = np.flatnonzero(table["_set"].to_numpy() == k)
            if len(at) == 0:
                continue
            rows = table["_row"].to_numpy()[at]
            b, r = self._evaluate(buildings, self._footprint_branches[k], rows)
            bounds[at] = b
            reasons[at] = r
        skipped = reasons != ""
        #: Buildings that could not be sampled: ``building_id``, ``city``,
        #: ``label`` and ``reason``.
        self.skipped = table.loc[skipped, ["building_id", "city", "label"]].assign(
            reason=reasons[skipped]
        )
        self.skipped = self.skipped.reset_index(drop=True)
        table = table.assign(
            xmin=bounds[:, 0], xmax=bounds[:, 1], ymin=bounds[:, 2], ymax=bounds[:, 3]
        )[~skipped].drop(columns=["_set", "_row"])
        self._warn_skipped(n)

        table = self._select(table)
        #: Selected buildings in sampling order.
        self.buildings = table.reset_index(drop=True)

    def _branches_of(
        self, footprints: OSMBuildings, branches: list[_Leaves]
    ) -> list[_Branch]:
        """The branches of one footprint dataset, with rasters on one lattice.

        Args:
            footprints: a footprint dataset of the sampled dataset
            branches: all branches of the sampled dataset

        Returns:
            Its branches (at least one, possibly without rasters).
        """
        found: list[_Branch] = []
        for fps, rasters in branches:
            if not any(fp is footprints for fp in fps):
                continue
            unique: list[CachedRasterDataset] = []
            for raster in rasters:
                if not any(raster is seen for seen in unique):
                    unique.append(raster)
            reference = _reference(unique)
            if reference is not None:
                for raster in unique:
                    if raster is not reference:
                        raster.align_to(reference)
                unique.remove(reference)
                unique.insert(0, reference)
            found.append(_Branch(reference, unique))
        return found or [_Branch(None, [])]

    def _evaluate(
        self, footprints: OSMBuildings, branches: list[_Branch], rows: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Window and skip reason of buildings of one footprint dataset.

        Every branch is tried in order; a building takes the window of the first
        branch where it can be sampled, else the reason of the first branch
        whose reference raster contains its window (else of the first branch).

        Args:
            footprints: the footprint dataset
            branches: its branches
            rows: rows of :attr:`OSMBuildings.buildings` to evaluate

        Returns:
            Window bounds (N, 4: xmin, xmax, ymin, ymax) and reasons ("" when the
            building can be sampled).
        """
        n = len(rows)
        bounds = np.zeros((n, 4), dtype=np.float64)
        reasons = np.full(n, "", dtype=object)
        pending = np.ones(n, dtype=bool)
        fallback = np.full(n, -1, dtype=np.int64)
        per_branch = []
        for j, branch in enumerate(branches):
            reference = branch.reference
            origin = None if reference is None else reference.grid_origin()
            windows = footprints.building_windows(self.size, self.res, origin)
            b = windows[["xmin", "xmax", "ymin", "ymax"]].to_numpy()[rows]
            r = self._skip_reasons(b, branch)
            owner = windows["owner"].to_numpy()[rows]
            other = (owner != rows) & (r == "")
            ids = footprints.buildings["building_id"].to_numpy()
            r[other] = [f"same window as building {ids[o]}" for o in owner[other]]
            per_branch.append((b, r))
            ok = pending & (r == "")
            bounds[ok] = b[ok]
            pending &= ~ok
            outside = _names(branch.reference)[0] if branch.reference else None
            first = pending & (fallback < 0) & (r != outside)
            fallback[first] = j
        fallback[fallback < 0] = 0
        for i in np.flatnonzero(pending).tolist():
            reasons[i] = per_branch[fallback[i]][1][i]
        if self.negatives_per_positive is not None:
            # Training: buildings the reference excludes (label -1, e.g. EMS
            # "Possibly damaged") are skipped with their reason, never drawn.
            frame = footprints.buildings
            labels = frame["label"].to_numpy()[rows]
            grades = (
                frame["damage_grade"].to_numpy(dtype=object)[rows]
                if "damage_grade" in frame.columns
                else np.full(n, "", dtype=object)
            )
            for i in np.flatnonzero((reasons == "") & (labels == -1)).tolist():
                grade = f" ({grades[i]})" if grades[i] else ""
                reasons[i] = f"excluded by the damage reference{grade}"
        return bounds, reasons

    def _skip_reasons(self, bounds: np.ndarray, branch: _Branch) -> np.ndarray:
        """Reason why each window cannot be read from a branch ("" when it can).

        Args:
            bounds: windows (N, 4: xmin, xmax, ymin, ymax)
            branch: rasters to check, reference first

        Returns:
            Array of reasons.
        """
        n = len(bounds)
        reasons = np.full(n, "", dtype=object)
        if n == 0:
            return reasons
        xmin, xmax, ymin, ymax = bounds.T
        boxes = shapely.box(xmin, ymin, xmax, ymax)
        for raster in branch.rasters:
            outside, nodata = _names(raster)
            todo = np.flatnonzero(reasons == "")
            if len(todo) == 0:
                break
            coverage = shapely.union_all(raster.index.geometry.values)
            inside = shapely.contains(coverage.buffer(1e-6 * self.res[0]), boxes[todo])
            reasons[todo[~inside]] = outside
            rows = todo[inside]
            if len(rows) == 0:
                continue
            width = round(self.size * self.res[0] / raster.res[0])
            height = round(self.size * self.res[1] / raster.res[1])
            fractions = raster.nodata_fractions(xmin[rows], ymax[rows], width, height)
            reasons[rows[fractions > self.max_nodata]] = nodata
        return reasons

    def _warn_skipped(self, total: int) -> None:
        """Warn with the number of skipped buildings per reason.

        Args:
            total: number of buildings considered
        """
        if self.skipped.empty:
            return
        counts = self.skipped["reason"].value_counts()
        summary = ", ".join(f"{reason}: {n}" for reason, n in counts.items())
        warnings.warn(
            f"{self.name}: skipped {len(self.skipped)} of {total} "
            f"buildings ({summary}); their ids and reasons are in .skipped.",
            UserWarning,
            stacklevel=3,
        )

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
            if positives.empty and not negatives.empty:
                warnings.warn(
                    f"{self.name}: city {city!r} has no damaged building "
                    f"among its {len(negatives)} sampleable ones, so "
                    f"negatives_per_positive={self.negatives_per_positive} keeps "
                    "none of them. Pass negatives_per_positive=None to keep every "
                    "building (e.g. to map a new city), or check the damage layer "
                    "(OSMBuildings(damage=...)).",
                    UserWarning,
                    stacklevel=3,
                )
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

    def to_queries(self) -> list[tuple[slice, slice, slice]]:
        """The window of every selected building as a TorchGeo query.

        Returns:
            ``[xmin:xmax:xres, ymin:ymax:yres, tmin:tmax]`` slices, in the order
            of :attr:`buildings`.
        """
        t = slice(pd.Timestamp.min, pd.Timestamp.max)
        xres, yres = self.res
        with paused_gc():
            return [
                (slice(a, b, xres), slice(c, d, yres), t)
                for a, b, c, d in zip(
                    self.buildings["xmin"].tolist(),
                    self.buildings["xmax"].tolist(),
                    self.buildings["ymin"].tolist(),
                    self.buildings["ymax"].tolist(),
                    strict=True,
                )
            ]

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
