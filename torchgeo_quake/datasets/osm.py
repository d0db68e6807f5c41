"""Building footprints (OSM / HOTOSM exports) with optional damage labels.

:class:`OSMBuildings` composes the pieces of its job: reading and cleaning the
footprint files (:mod:`~torchgeo_quake.datasets.footprints`), joining a damage
reference (:mod:`~torchgeo_quake.datasets.references`), the GEM exposure vector
of every building (:mod:`~torchgeo_quake.datasets.gem`) and burning footprints
into the masks that queries return (:mod:`~torchgeo_quake.datasets.rasterize`).
The steps that load its building table before any query (check the options,
read, label, find exposure vectors, index the files) are in ``_osm_loading``;
this module keeps what queries need: centroids, the windows handed out to
samplers and the building each query is about.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure
from pyproj import CRS
from torchgeo.datasets import VectorDataset
from torchgeo.datasets.utils import GeoSlice

from ._osm_loading import (
    _as_paths,
    _check_arguments,
    _exposure_vectors,
    _file_index,
    _label_footprints,
    _read_footprints,
    _resolution,
    _skip,
)
from .centroids import _CentroidIndex, _centroids_of
from .fastpath import complete_query
from .footprints import SKIP_HINTS as SKIP_HINTS  # re-exported
from .footprints import (
    VECTOR_SUFFIXES,
    _check_skipped,
    _find_files,
    read_vector,
)
from .gem import GEMExposure
from .grid import DEFAULT_CACHE_BYTES
from .intersection import IntersectionMixin
from .rasterize import _default_res, _FootprintMasks
from .references import DamageSchema, Ungraded, check_options

__all__ = ["VECTOR_SUFFIXES", "OSMBuildings", "read_vector"]


class OSMBuildings(IntersectionMixin, VectorDataset):
    """Building footprints keyed by ``osm_id``, with optional damage labels.

    Reads HOTOSM / OSM building exports (GeoPackage, GeoJSON, Shapefile,
    FlatGeobuf, GeoParquet) once into memory. An optional damage reference gives
    each footprint a label: 1 = damaged, 0 = intact, -1 = excluded from training
    (kept in :attr:`buildings`, so it is still mapped, counted in
    :attr:`excluded_damage` and :meth:`counts`, and skipped by
    :class:`~torchgeo_quake.samplers.BuildingCentroidSampler` when it draws
    negatives). The reference is one of (see
    :func:`~torchgeo_quake.datasets.references.join_damage`):

    * a HOTOSM-like layer (the "Turkey Destroyed Buildings" export, polygons or
      points): every feature marks a damaged building; buildings it does not
      list are intact;
    * a Copernicus EMS grading product (points or polygons with a
      ``damage_gra`` field, detected by that column): grades are mapped by
      *grade_map*, by default ``Damaged`` and ``Destroyed`` to 1, ``No visible
      damage`` to 0 and ``Possibly damaged`` to -1; when several features hit
      one footprint the most severe grade wins (Destroyed > Damaged > Possibly
      damaged > No visible damage); footprints without any graded feature are
      intact, or excluded with ``ungraded="exclude"``;
    * a label column of the footprint files (*label_field*): 0/1, booleans or
      grades; missing values are excluded (-1) and warned about.

    A reference is joined by ``osm_id`` when both layers carry it, else
    spatially: polygons that cover at least *damage_overlap* of a footprint's
    area, points that fall inside it, and EMS points outside every footprint to
    the nearest footprint within *damage_max_distance* metres. The grade that
    decided each label is in the ``damage_grade`` column of :attr:`buildings`
    ("" when no feature matched).

    Indexed with a building-centred query (see
    :class:`~torchgeo_quake.samplers.BuildingCentroidSampler`) it returns the
    rasterised footprint of the building of interest (``footprints="building"``,
    the paper's mask) or of all buildings in the patch (``footprints="all"``),
    plus the building's label, id, city, centroid and, with *exposure*, its GEM
    feature vector. The building of interest is the one the window was made for
    by :meth:`building_windows` (which the sampler uses), else the one whose
    centroid is nearest to the window centre (within a pixel). Footprints are
    rasterised once into an in-memory id raster on the query grid, so each query
    is a slice.

    Invalid geometries are repaired with :func:`shapely.make_valid`; features that
    cannot be repaired, are not polygons or repeat an id are not silently dropped:
    they are listed in :attr:`skipped` with the reason and summarised in a
    :class:`UserWarning`. Both :attr:`buildings` and :attr:`skipped` record each
    feature's ``file`` and ``row`` (its position in that file), so results can be
    joined back to the input features. Damage features that match no footprint
    (:attr:`unmatched_damage`) and empty damage layers are warned about too;
    unknown grades and a reference that is not in a forced *damage_schema* are
    errors.

    .. versionadded:: 0.1
    """

    sample_key = "footprint"
    filename_glob = "*"

    def __init__(
        self,
        paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]] = "data",
        crs: CRS | None = None,
        res: float | tuple[float, float] | None = None,
        damage: str | os.PathLike[str] | Sequence[str | os.PathLike[str]] | None = None,
        footprints: Literal["building", "all"] = "building",
        id_field: str = "osm_id",
        city: str | None = None,
        exposure: GEMExposure | None = None,
        damage_overlap: float = 0.5,
        layer: str | int | None = None,
        transforms: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
        cache_bytes: int = DEFAULT_CACHE_BYTES,
        admin_unit: str | None = None,
        admin_field: str | None = None,
        damage_schema: DamageSchema = "auto",
        grade_map: Mapping[str, int] | None = None,
        damage_max_distance: float = 10.0,
        label_field: str | None = None,
        ungraded: Ungraded = "intact",
    ) -> None:
        """Initialize a new OSMBuildings instance.

        Args:
            paths: footprint files or directories holding them
            crs: CRS to work in (defaults to the CRS of the first file)
            res: resolution of the rasterised masks in units of CRS; set to the
                SAR resolution when intersected with a SAR dataset
                (``sar & footprints``). Defaults to 1 m in a projected CRS and
                1e-5 degrees (about 1 m) in a geographic one, following CRS
                changes until set; pass the SAR resolution when this dataset
                comes first in an intersection (``footprints & sar``), whose
                resolution the SAR image is then resampled to
            damage: optional damage reference layer(s) (HOTOSM-like or Copernicus
                EMS grading); without it (and *label_field*) every label is 0
            footprints: ``"building"`` for the mask of the building of interest,
                ``"all"`` for the masks of all buildings in the patch
            id_field: name of the unique building id column in both layers
            city: name stored in every sample (e.g. ``"islahiye"``)
            exposure: optional GEM exposure; adds a ``gem`` vector to samples,
                of the nearest GEM point (point assets; buildings farther than
                the exposure's ``max_distance`` are skipped, see
                :class:`~torchgeo_quake.datasets.GEMExposure`), or of the admin
                unit given by *admin_unit* or *admin_field*
            damage_overlap: minimum share of a footprint's area a damage polygon
                must cover when the join is spatial
            layer: layer of multi-layer footprint files
            transforms: a function/transform that takes an input sample
                and returns a transformed version
            cache_bytes: memory budget of the in-memory id raster
            admin_unit: admin unit (``ID_1`` code such as ``"TR-46"`` or
                ``NAME_1`` name) of all these buildings: their GEM vector is that
                of the unit (:meth:`GEMExposure.features_for_admin`). Needed
                with GEM's public Adm1 files, which have no coordinates
            admin_field: footprint column holding each building's admin unit,
                instead of *admin_unit*; buildings without one are skipped
            damage_schema: schema of the *damage* layers: ``"auto"`` (a layer
                with a ``damage_gra`` column is a Copernicus EMS grading
                product, any other is HOTOSM-like), ``"hotosm"`` or ``"ems"``
            grade_map: grade -> label (1 damaged, 0 intact, -1 excluded) for EMS
                grades and *label_field* strings, compared case-insensitively;
                None for :data:`~torchgeo_quake.datasets.references.DEFAULT_GRADE_MAP`
            damage_max_distance: metres within which an EMS point that falls in
                no footprint is joined to the nearest footprint (measured in the
                CRS when projected, else in the UTM zone); 0 joins only points
                inside
            label_field: footprint column holding the labels (0/1, booleans or
                grades), instead of *damage*; missing values give -1
            ungraded: ``"intact"`` (default) or ``"exclude"`` (-1): label of
                footprints that no feature of a graded (EMS) reference matches

        Raises:
            FileNotFoundError: If no footprint file is found.
            ImportError: If a GeoParquet file is given and pyarrow is missing.
            ValueError: If a file is unreadable, empty, lacks *id_field* or
                *admin_field*, no valid footprint is left (the message counts
                the reasons and says how to fix them), an admin unit is not in
                the exposure, the exposure has no coordinates and no admin unit
                is given, a damage reference is not in the forced
                *damage_schema*, a grade or label value is unknown, or an option
                is invalid.
        """
        _check_arguments(footprints, exposure, admin_unit, admin_field)
        check_options(damage_schema, grade_map, damage_max_distance, ungraded)
        if label_field is not None and damage is not None:
            raise ValueError("pass damage= or label_field=, not both")
        self.paths = paths
        self.transforms = transforms
        self.label_name = None
        self.task = "semantic_segmentation"
        self.layer = layer
        self.footprints = footprints
        self.id_field = id_field
        self.city = city or ""
        self.exposure = exposure
        self.admin_unit = admin_unit
        self.admin_field = admin_field
        self.damage_overlap = damage_overlap
        self.damage_schema: DamageSchema = damage_schema
        self.grade_map = grade_map
        self.damage_max_distance = damage_max_distance
        self.label_field = label_field
        self.ungraded: Ungraded = ungraded
        self.cache_bytes = cache_bytes
        self.damage_paths = _as_paths(damage)
        files = self.files
        if not files:
            raise FileNotFoundError(
                f"OSMBuildings: no footprint file ({', '.join(VECTOR_SUFFIXES)}) "
                f"found in {paths!r} (directories: .json files count only if they "
                "are GeoJSON; damage layers are excluded). Check the path."
            )
        buildings, skipped, self.repaired = _read_footprints(self, files, crs)
        #: Features that were not used, with the reason (``building_id``, ``file``,
        #: ``row``: position of the feature in its file, ``reason``).
        self.skipped = skipped
        _check_skipped(files, len(buildings), skipped, stacklevel=3)
        #: Damage features that matched no footprint.
        self.unmatched_damage = _label_footprints(self, buildings)
        self.buildings = buildings
        #: Footprints excluded by the damage reference (label -1).
        self.excluded_damage = int((self.buildings["label"] == -1).sum())
        self._res_auto = res is None
        self._res = _resolution(res, self.buildings.crs)
        #: GEM exposure vector of every building (with *exposure*).
        self.gem: np.ndarray | None = None
        self._update_geometry()
        if self.exposure is not None:
            self.gem = self._exposure_features()
        self.index = _file_index(files, self.buildings)
        self._crs: CRS = self.index.crs

    def _exposure_features(self) -> np.ndarray:
        """GEM vector of every building: of its admin unit, or the nearest point.

        Buildings farther than the exposure's ``max_distance`` from every GEM
        point are removed from :attr:`buildings`, listed in :attr:`skipped`
        (``"no exposure point within <N> m"``) and counted in a
        :class:`UserWarning`.

        Returns:
            float32 array (buildings, features), for the buildings kept.

        Raises:
            ValueError: If an admin unit is unknown, the exposure has no
                coordinates and no admin unit is given, or no building is within
                the exposure's ``max_distance`` of a GEM point.
        """
        assert self.exposure is not None
        features, far = _exposure_vectors(
            self.exposure,
            self.buildings,
            self.centroids,
            self.admin_unit,
            self.admin_field,
        )
        if not far.any():
            return features
        limit = self.exposure.max_distance
        reason = f"no exposure point within {limit:g} m"
        self.skipped = _skip(self.skipped, self.buildings[far], reason)
        self.buildings = self.buildings[~far].reset_index(drop=True)
        self.excluded_damage = int((self.buildings["label"] == -1).sum())
        self._update_geometry()
        sources = ", ".join(repr(str(p)) for p in self.exposure.paths)
        warnings.warn(
            f"OSMBuildings: skipped {int(far.sum())} of {len(far)} footprints with "
            f"{reason} of their centroid (GEM exposure {sources}); they are listed "
            "in .skipped. Check that the exposure covers the footprints, or pass "
            "GEMExposure(..., max_distance=) a larger distance.",
            UserWarning,
            stacklevel=3,
        )
        return features[~far]

    @property
    def files(self) -> list[str]:
        """Footprint files found in :attr:`paths`.

        Files given explicitly are taken as they are. In directories, every file
        with a suffix of :data:`VECTOR_SUFFIXES` is found, except ``.json`` files
        that are not GeoJSON (SAR metadata sidecars, STAC items) and the damage
        layers given as *damage*.

        Returns:
            Sorted list of vector files.
        """
        return _find_files(self.paths, getattr(self, "damage_paths", []))

    def _update_geometry(self) -> None:
        """Recompute centroids, the k-d tree, lookups and the footprint masks."""
        self.centroids = _centroids_of(self.buildings)
        self._lookup = _CentroidIndex(self.centroids)
        self._ids = self.buildings["building_id"].to_numpy(dtype=np.int64).copy()
        self._labels = self.buildings["label"].to_numpy(dtype=np.int64).copy()
        xmin, ymin, xmax, ymax = (float(v) for v in self.buildings.total_bounds)
        self._bounds = (xmin, ymin, xmax, ymax)
        self._masks = _FootprintMasks(self.buildings.geometry.values, self._bounds)

    @property
    def crs(self) -> CRS:
        """:term:`coordinate reference system (CRS)` of the dataset.

        Returns:
            The CRS.
        """
        # Cached: reading it from the GeoDataFrame costs ~0.1 ms per query.
        return self._crs

    @crs.setter
    def crs(self, new_crs: CRS) -> None:
        """Reproject the footprints and the index.

        Args:
            new_crs: new CRS
        """
        if new_crs == self.crs:
            return
        self.index = self.index.to_crs(new_crs)
        self._crs = self.index.crs
        self.buildings = self.buildings.to_crs(new_crs)
        if self._res_auto:
            self._res = _default_res(new_crs)
        self._update_geometry()

    @property
    def res(self) -> tuple[float, float]:
        """Resolution of the rasterised masks in units of CRS.

        Returns:
            (xres, yres)
        """
        return self._res

    @res.setter
    def res(self, new_res: float | tuple[float, float]) -> None:
        """Change the resolution of the rasterised masks.

        Args:
            new_res: new resolution
        """
        if isinstance(new_res, int | float):
            new_res = (float(new_res), float(new_res))
        self._res = (float(new_res[0]), float(new_res[1]))
        self._res_auto = False
        self._masks.reset()

    def building_windows(
        self,
        size: int,
        res: tuple[float, float] | None = None,
        origin: tuple[float, float] | None = None,
    ) -> pd.DataFrame:
        """The window of every building, registered so queries find their building.

        A window is *size* × *size* pixels of *res* centred on the building's
        centroid; with *origin*, its corner is snapped to the pixel lattice
        through that point (e.g. the SAR grid). Indexing this dataset with one of
        these windows returns the building it was made for, rather than the one
        whose centroid is nearest to the window centre. Two buildings can get the
        same window (centroids in the same pixel); the window then belongs to the
        first of them (in :attr:`buildings` order), which is its ``owner``.

        Args:
            size: window size in pixels
            res: pixel size (defaults to :attr:`res`)
            origin: a corner of the pixel lattice in the dataset CRS, or None to
                centre windows exactly on the centroids

        Returns:
            DataFrame in :attr:`buildings` order with ``xmin``, ``xmax``,
            ``ymin``, ``ymax`` and ``owner`` (row of the building the window
            belongs to).

        .. versionadded:: 0.1
        """
        return self._lookup.windows(size, res or self._res, origin)

    def building_at(self, x: float, y: float, tolerance: float) -> int | None:
        """Row of the building whose centroid is nearest to (x, y).

        Uses a hash grid of centroids with cells of *tolerance* (rebuilt when the
        tolerance changes), which is an order of magnitude faster per call than a
        k-d tree query for single points.

        Args:
            x: x coordinate in the dataset CRS
            y: y coordinate in the dataset CRS
            tolerance: maximum distance in CRS units

        Returns:
            Row index into :attr:`buildings`, or None if no centroid is that close.
        """
        return self._lookup.nearest(x, y, tolerance)

    def __getitem__(self, query: GeoSlice) -> dict[str, Any]:
        """Retrieve the footprint mask and building attributes of a query.

        Args:
            query: [xmin:xmax:xres, ymin:ymax:yres, tmin:tmax:tres] coordinates.

        Returns:
            Sample with ``footprint`` (float32, 1×H×W), ``label`` and
            ``building_id`` (int64; -1 when the window is not one of
            :meth:`building_windows` and no building centroid lies within a pixel
            of its centre), ``city``, ``centroid`` (float64 x, y), ``gem`` (with
            exposure), ``crs`` and ``bounds``.

        Raises:
            IndexError: If *query* does not intersect the dataset.
        """
        x, y, _ = complete_query(query) or self._disambiguate_slice(query)
        bxmin, bymin, bxmax, bymax = self._bounds
        if x.stop <= bxmin or x.start >= bxmax or y.stop <= bymin or y.start >= bymax:
            raise IndexError(
                f"query: {query} not found in index with bounds: {self.bounds}"
            )
        cx, cy = (x.start + x.stop) / 2, (y.start + y.stop) / 2
        row = self._lookup.window_rows.get((x.start, x.stop, y.start, y.stop))
        if row is None:
            row = self._lookup.nearest(cx, cy, tolerance=max(x.step, y.step))
        mask = self._masks.mask(
            row, x, y, self._res, self.footprints == "all", self.cache_bytes
        )
        sample: dict[str, Any] = {
            "crs": self.crs,
            "bounds": query,
            self.sample_key: torch.from_numpy(mask[None].astype(np.float32)),
            "city": self.city,
        }
        self._add_attributes(sample, row, cx, cy)
        if self.transforms is not None:
            sample = self.transforms(sample)
        return sample

    def _add_attributes(
        self, sample: dict[str, Any], row: int | None, cx: float, cy: float
    ) -> None:
        """Add ``label``, ``building_id``, ``centroid`` and ``gem`` to a sample.

        Args:
            sample: the sample, changed in place
            row: row of the building of the query, or None (then label and id
                are -1, the centroid is the query centre and the GEM vector that
                of the query centre, or of the nearest building without GEM
                coordinates)
            cx: x of the query centre
            cy: y of the query centre
        """
        if row is not None:
            sample["label"] = torch.from_numpy(np.array(self._labels[row]))
            sample["building_id"] = torch.from_numpy(np.array(self._ids[row]))
            sample["centroid"] = torch.from_numpy(self.centroids[row].copy())
            if self.gem is not None:
                sample["gem"] = torch.from_numpy(self.gem[row].copy())
            return
        sample["label"] = torch.tensor(-1, dtype=torch.long)
        sample["building_id"] = torch.tensor(-1, dtype=torch.long)
        sample["centroid"] = torch.tensor([cx, cy], dtype=torch.float64)
        if self.exposure is not None and self.exposure.kind == "points":
            # No building: the query centre may lie anywhere (label -1).
            feats = self.exposure.features_at(
                np.array([cx]), np.array([cy]), self.crs, strict=False
            )
            sample["gem"] = torch.from_numpy(np.asarray(feats, np.float32)[0])
        elif self.gem is not None:
            # No building here and no GEM coordinates: the vector of the
            # nearest building (its admin unit).
            _, nearest = self._lookup.tree.query([cx, cy])
            sample["gem"] = torch.from_numpy(self.gem[int(nearest)].copy())

    def counts(self) -> pd.Series:
        """Number of intact, damaged and excluded footprints.

        Returns:
            Series indexed by ``intact`` and ``damaged``, and ``excluded``
            (label -1) when the damage reference excludes any footprint.
        """
        labels = self.buildings["label"]
        counts = {
            "intact": int((labels == 0).sum()),
            "damaged": int((labels == 1).sum()),
        }
        if (labels == -1).any():
            counts["excluded"] = int((labels == -1).sum())
        return pd.Series(counts)

    def plot(
        self,
        sample: dict[str, Any],
        show_titles: bool = True,
        suptitle: str | None = None,
    ) -> Figure:
        """Plot a footprint mask.

        Args:
            sample: a sample returned by :meth:`__getitem__`
            show_titles: flag indicating whether to show titles above each panel
            suptitle: optional string to use as a suptitle

        Returns:
            A matplotlib Figure with the rendered sample.
        """
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(4, 4))
        ax.imshow(sample[self.sample_key][0].numpy(), cmap="gray", vmin=0, vmax=1)
        ax.axis("off")
        if show_titles:
            label = int(sample["label"])
            state = {1: "damaged", 0: "intact"}.get(label, "no building")
            if label == -1 and int(sample["building_id"]) != -1:
                state = "excluded"
            ax.set_title(f"footprint {int(sample['building_id'])} ({state})")
        if suptitle is not None:
            fig.suptitle(suptitle)
        return fig
