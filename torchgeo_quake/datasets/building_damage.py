"""Building-centred damage samples of any event: a folder of areas.

:class:`BuildingDamage` is one class and this module stays whole around it,
though longer than most: its public methods, which the docs link here, and the
hooks that event subclasses override (the areas, the inputs they can make, how
an area is built, the cache versions) all act on the state its constructor sets
up. What stands alone lives beside it: the on-disk sample cache
(:mod:`~torchgeo_quake.datasets.sample_cache`), the folder layout of a data root
(``_area_layout``) and turning built areas into sample arrays and report rows
(``_sample_arrays``).

.. versionadded:: 0.2
"""

from __future__ import annotations

import json
import os
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure
from torchgeo.datasets import NonGeoDataset

from .. import __version__
from ..paper import MODALITIES
from ._area_layout import (
    _area_folders,
    _chosen_areas,
    _input_paths,
    _missing_inputs,
    _missing_message,
)
from ._sample_arrays import (
    _RASTER_KEYS,
    _area_arrays,
    _area_report,
    _area_skipped,
    _drop_messages,
    _join_areas,
    _quiet,
)
from .builder import Area, build_area
from .csk import CSKSAR
from .dsm import CartoSatDSM
from .gem import GEMExposure
from .osm import OSMBuildings
from .sample_cache import (
    CACHE_FORMAT,
    _cache_key,
    _defaults,
    _file_stats,
    _load_samples,
    _prune_samples,
    _save_samples,
    file_fingerprint,
)
from .sample_cache import HASH_BYTES as HASH_BYTES  # re-exported
from .windows import BuildingWindows

__all__ = ["REPORT_COLUMNS", "BuildingDamage", "file_fingerprint"]

#: Columns of :meth:`BuildingDamage.report`, in order.
REPORT_COLUMNS = (
    "footprints",
    "skipped_footprints",
    "reference_damaged",
    "reference_excluded",
    "unmatched_damage",
    "skipped_windows",
    "available_intact",
    "available_damaged",
    "intact",
    "damaged",
)


class BuildingDamage(NonGeoDataset):
    """Building-centred damage samples of any event, read from a folder of areas.

    For every selected building of every area (a city, a district, a town), a
    patch of the post-event SAR image centred on the building centroid, the
    building-footprint mask, optionally the matching DSM patch and the exposure
    vector of the nearest GEM point, and the damage label from a reference layer:
    the inputs of Russo et al. (2025, section II-C), for an event of the user's
    choosing. All damaged buildings are kept and intact ones drawn at
    *negatives_per_positive* (the paper's 20) per damaged one, per area.

    Layout of *root*, one sub-folder per area (names are free)::

        root/<area>/sar.tif            post-event SAR (GeoTIFF, or CSK sar.h5)
        root/<area>/buildings.gpkg     footprints with a unique id (any OGR format:
                                       buildings.geojson, .shp, .fgb, .parquet)
        root/<area>/destroyed.geojson  damage reference (see below)
        root/<area>/dsm.tif            pre-event DSM, any CRS/resolution (optional)
        root/<area>/gem.csv            GEM / OpenQuake exposure points (optional)

    The damage reference is the first of :attr:`reference_files` found in the
    folder: the HOTOSM destroyed-buildings layer (every feature marks a damaged
    building), a Copernicus EMS grading product (points or polygons with
    ``damage_gra``; grades mapped to labels by *grade_map*, "Possibly damaged"
    excluded and counted by default), or any layer of those schemas. With
    *label_field* the labels come from that column of the footprint file
    instead, and no reference file is needed. Joining rules and counts are
    those of :class:`OSMBuildings`; buildings the reference excludes from
    training are listed in :attr:`skipped`, counted in :meth:`report`, never
    dropped silently.

    Samples are built through the package's data layer by
    :func:`~torchgeo_quake.datasets.build_area` — :class:`CSKSAR` ``&``
    :class:`CartoSatDSM` ``&`` :class:`OSMBuildings`, one window per building
    planned by :class:`BuildingWindows` — the same function that
    ``torchgeo-quake map`` uses, so a trained model sees the same inputs when it
    maps a new area. :meth:`report` gives, per area, what was read, skipped,
    matched and sampled; an area that yields no samples, or damage features that
    match no footprint, are warned about.

    Extracted patches are cached on disk (``root/.cache`` or *cache_dir*) in
    ``samples-<key>.npz``, keyed by the size, modification time and a content
    hash (:func:`file_fingerprint`: the first and last MiB) of every input file,
    the parameters, the package version and the constructor defaults of the
    data-layer classes, so later runs load them in a fraction of a second, and
    a file edited in place (even keeping its size and modification time) is
    extracted again; cache files of the same root whose inputs or versions are
    out of date are deleted (see :mod:`~torchgeo_quake.datasets.sample_cache`).

    Subclasses state the facts of one event (see :class:`KahramanmarasDamage`):
    their area names (:attr:`all_areas`), display names, file names and how
    missing inputs can be made (:meth:`_prepare`).

    .. versionadded:: 0.2
    """

    #: Area names this dataset knows (None: any sub-folder of *root* that holds
    #: a SAR image and footprints).
    all_areas: ClassVar[tuple[str, ...] | None] = None

    #: Display names of the areas (others are shown as they are).
    area_names: ClassVar[Mapping[str, str]] = {}

    #: File of each input inside an area folder (``sar`` may also be
    #: ``sar.h5``, ``footprint`` any of :attr:`footprint_files`, ``damage`` any
    #: of :attr:`reference_files`).
    files: ClassVar[dict[str, str]] = {
        "sar": "sar.tif",
        "footprint": "buildings.gpkg",
        "damage": "destroyed.geojson",
        "dsm": "dsm.tif",
        "gem": "gem.csv",
    }

    #: Accepted names of the SAR image, in order of preference.
    sar_files: ClassVar[tuple[str, ...]] = ("sar.tif", "sar.h5")

    #: Accepted names of the footprint file, in order of preference.
    footprint_files: ClassVar[tuple[str, ...]] = (
        "buildings.gpkg",
        "buildings.geojson",
        "buildings.shp",
        "buildings.fgb",
        "buildings.parquet",
    )

    #: Accepted names of the damage reference, in order of preference.
    reference_files: ClassVar[tuple[str, ...]] = (
        "destroyed.geojson",
        "damage.gpkg",
        "damage.geojson",
        "damage.shp",
        "reference.gpkg",
        "reference.geojson",
        "reference.shp",
    )

    def __init__(
        self,
        root: str | os.PathLike[str] = "data",
        areas: Sequence[str] | None = None,
        modalities: Sequence[str] = MODALITIES,
        transforms: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
        negatives_per_positive: float | None = 20.0,
        seed: int = 0,
        size: int = 32,
        radiometry: str = "db",
        cache: bool = True,
        verbose: bool = False,
        cache_dir: str | os.PathLike[str] | None = None,
        id_field: str = "osm_id",
        label_field: str | None = None,
        damage_schema: str = "auto",
        grade_map: Mapping[str, int] | None = None,
        damage_max_distance: float = 10.0,
    ) -> None:
        """Initialize a new BuildingDamage instance.

        Args:
            root: folder holding one sub-folder per area
            areas: areas to load (default: :attr:`all_areas`, else every
                sub-folder of *root* holding a SAR image and footprints)
            modalities: inputs to return; ``"sar"`` and ``"footprint"`` are
                required, ``"dsm"`` and ``"gem"`` optional
            transforms: a function/transform that takes a sample and returns a
                transformed version
            negatives_per_positive: intact buildings drawn per damaged building in
                each area (the paper's 20); None keeps every building
            seed: seed of the negative sampling
            size: patch size in SAR pixels
            radiometry: SAR values the model sees: ``"amplitude"``,
                ``"intensity"`` or ``"db"``
            cache: if True, cache extracted patches on disk
            verbose: if True, print progress, skip counts and TorchGeo's messages
            cache_dir: folder of the sample cache (default: ``root/.cache``); if
                it cannot be written, a warning says so and the samples are
                extracted again next time
            id_field: unique building id column of the footprints (and of a
                reference joined by id)
            label_field: column of the footprint file holding the label (0/1 or
                a damage grade); None reads the area's reference file
            damage_schema: schema of the reference (see :class:`OSMBuildings`):
                ``"auto"`` detects it
            grade_map: damage grade → label (1 damaged, 0 intact, -1 excluded);
                None uses the default Copernicus EMS mapping
            damage_max_distance: largest distance in metres from a reference
                point to the footprint it is joined to, when it lies in none

        Raises:
            ValueError: If an area or modality is unknown, required modalities
                are missing, or no area yields a sample.
            FileNotFoundError: If *root*, an area or an input file is missing
                (the message lists what is missing and how to fix it).
        """
        self.root = Path(root)
        self.modalities = self._checked_modalities(modalities)
        self.transforms = transforms
        self.negatives_per_positive = negatives_per_positive
        self.seed = seed
        self.size = size
        self.radiometry = radiometry
        self.verbose = verbose
        self.id_field = id_field
        self.label_field = label_field
        self.damage_schema = damage_schema
        self.grade_map = None if grade_map is None else dict(grade_map)
        self.damage_max_distance = damage_max_distance
        self.cache_dir = (
            Path(cache_dir) if cache_dir is not None else self.root / ".cache"
        )
        self.areas = self._select_areas(areas)
        self._prepare()
        self._check_inputs()
        state = self._cache_state()
        cache_file = self.cache_dir / f"samples-{self._cache_key(state)}.npz"
        start = time.perf_counter()
        arrays = self._cached_samples(cache_file, state, cache)
        #: Seconds spent building (or loading) the samples.
        self.build_seconds = time.perf_counter() - start
        self._hold(arrays)
        self._warn_drops()

    @staticmethod
    def _checked_modalities(modalities: Sequence[str]) -> tuple[str, ...]:
        """Validate the requested modalities.

        Args:
            modalities: inputs to return

        Returns:
            The modalities, as a tuple.

        Raises:
            ValueError: If a modality is unknown, or ``"sar"`` or
                ``"footprint"`` is missing.
        """
        chosen = tuple(modalities)
        bad = sorted(set(chosen) - set(MODALITIES))
        if bad:
            raise ValueError(
                f"unknown modalities {bad}; choose among {list(MODALITIES)}"
            )
        if "sar" not in chosen or "footprint" not in chosen:
            raise ValueError(
                "modalities must include 'sar' and 'footprint' (the paper's baseline)"
            )
        return chosen

    def _hold(self, arrays: dict[str, np.ndarray]) -> None:
        """Keep the samples, skipped buildings and report of the arrays.

        Args:
            arrays: from :meth:`_extract` or the cache
        """
        report = json.loads(str(arrays["meta_report"]))
        self._report = pd.DataFrame.from_dict(report, orient="index").reindex(
            index=list(self.areas), columns=list(REPORT_COLUMNS)
        )
        self._report.index.name = "city"
        arrays = {k: v for k, v in arrays.items() if not k.startswith("meta_")}
        self._arrays = arrays
        self.labels = arrays["label"]
        self.building_ids = arrays["building_id"]
        self.city_of = arrays["city"].astype(str)
        self.centroids = arrays["centroid"]
        self.skipped = pd.DataFrame(
            {
                "building_id": arrays["skipped_id"],
                "city": arrays["skipped_city"].astype(str),
                "reason": arrays["skipped_reason"].astype(str),
            }
        )
        self._tensors = {
            key: torch.from_numpy(arrays[key])
            for key in (*_RASTER_KEYS, "gem")
            if key in arrays
        }

    @property
    def cities(self) -> tuple[str, ...]:
        """The areas of this dataset (the paper calls them cities).

        Returns:
            Area names, in order.
        """
        return self.areas

    def _select_areas(self, areas: Sequence[str] | None) -> tuple[str, ...]:
        """The areas to load.

        Args:
            areas: the areas asked for, or None for all

        Returns:
            Area names, in order.

        Raises:
            ValueError: If an area is not one of :attr:`all_areas`, or none is
                given or found.
            FileNotFoundError: If *root* is missing and the areas are not known.
        """
        chosen = _chosen_areas(areas, self.all_areas, type(self).__name__)
        return self.find_areas(self.root) if chosen is None else chosen

    @classmethod
    def find_areas(cls, root: str | os.PathLike[str]) -> tuple[str, ...]:
        """The area folders of a data root.

        Args:
            root: the data root

        Returns:
            Names of the sub-folders of *root* (hidden ones aside) that hold a
            SAR image (:attr:`sar_files`) and footprints
            (:attr:`footprint_files`), sorted.

        Raises:
            FileNotFoundError: If *root* does not exist or holds no area.

        .. versionadded:: 0.2
        """
        return _area_folders(
            Path(root), cls.sar_files, cls.footprint_files, cls.__name__
        )

    def _area_files(self, area: str) -> dict[str, Path | None]:
        """Paths of the inputs of one area.

        Args:
            area: area name

        Returns:
            Path per input (``sar``, ``footprint``, ``damage``, ``dsm``,
            ``gem``): the file found, else the default name (which does not
            exist); ``damage`` is None when labels come from *label_field*.
        """
        options = {
            "sar": self.sar_files,
            "footprint": self.footprint_files,
            "damage": self.reference_files,
        }
        return _input_paths(self.root / area, self.files, options, self.label_field)

    def _missing(self) -> dict[str, list[str]]:
        """Inputs the requested areas and modalities need but root lacks.

        Returns:
            Missing files per input name (``sar``, ``footprint``, ``damage``,
            ``dsm``, ``gem``); inputs with nothing missing are absent.
        """
        needed = {"sar", "footprint", "damage"} | set(self.modalities)
        return _missing_inputs(self.areas, self._area_files, needed)

    def _prepare(self) -> None:
        """Make missing inputs where the dataset knows how (nothing here).

        Subclasses override this, e.g. to simulate a scene on first use.
        """

    def _check_inputs(self) -> None:
        """Check that every input of the requested areas and modalities exists.

        Raises:
            FileNotFoundError: If inputs are missing (the message lists them).
        """
        missing = self._missing()
        if not missing:
            return
        raise FileNotFoundError(
            _missing_message(
                type(self).__name__,
                self.root,
                missing,
                self.reference_files,
                self._missing_hint(),
            )
        )

    def _missing_hint(self) -> str:
        """More ways to fix missing inputs, for the error message.

        Returns:
            Text appended to the message (empty here).
        """
        return ", choose the available areas with `areas=`"

    def _build_area(self, area: str) -> Area:
        """The data-layer dataset of one area and its building windows.

        Args:
            area: area name

        Returns:
            The :class:`~torchgeo_quake.datasets.Area` of
            :func:`~torchgeo_quake.datasets.build_area`.
        """
        paths = self._area_files(area)
        sar = CSKSAR(paths["sar"], radiometry=self.radiometry)  # type: ignore[arg-type]
        exposure = None
        if "gem" in self.modalities:
            assert paths["gem"] is not None
            exposure = GEMExposure(paths["gem"])
        footprints = OSMBuildings(
            paths["footprint"],  # type: ignore[arg-type]
            damage=paths["damage"],
            city=area,
            exposure=exposure,
            id_field=self.id_field,
            label_field=self.label_field,
            damage_schema=self.damage_schema,  # type: ignore[arg-type]
            grade_map=self.grade_map,
            damage_max_distance=self.damage_max_distance,
        )
        dsm = None
        if "dsm" in self.modalities:
            assert paths["dsm"] is not None
            dsm = CartoSatDSM(paths["dsm"])
        return build_area(
            sar,
            footprints,
            dsm,
            size=self.size,
            negatives_per_positive=self.negatives_per_positive,
            seed=self.seed,
        )

    def _cache_state(self) -> dict[str, Any]:
        """Everything the samples depend on.

        Returns:
            JSON-serialisable state: parameters, versions, data-layer defaults
            and the size, modification time and content hash of every input
            file.
        """
        layer = (CSKSAR, CartoSatDSM, OSMBuildings, GEMExposure)
        state: dict[str, Any] = {
            **self._versions(),
            "areas": list(self.areas),
            "modalities": list(self.modalities),
            "negatives_per_positive": self.negatives_per_positive,
            "seed": self.seed,
            "size": self.size,
            "radiometry": self.radiometry,
            "data_layer": {
                cls.__name__: _defaults(cls) for cls in (*layer, BuildingWindows)
            },
            "reference": {
                "id_field": self.id_field,
                "label_field": self.label_field,
                "damage_schema": self.damage_schema,
                "grade_map": None if self.grade_map is None else dict(self.grade_map),
                "damage_max_distance": self.damage_max_distance,
            },
            "files": _file_stats(self._area_files, self.areas),
        }
        return state

    @staticmethod
    def _cache_key(state: dict[str, Any]) -> str:
        """Hash of a cache state.

        Args:
            state: from :meth:`_cache_state`

        Returns:
            Hex digest (16 characters).
        """
        return _cache_key(state)

    def _versions(self) -> dict[str, Any]:
        """Versions recorded in every cache state.

        Returns:
            Cache format and package version (subclasses add theirs, e.g. the
            simulator's).
        """
        return {"format": CACHE_FORMAT, "package": __version__}

    def _cached_samples(
        self, cache_file: Path, state: dict[str, Any], cache: bool
    ) -> dict[str, np.ndarray]:
        """The samples: loaded from the cache, else extracted (and cached).

        With *cache*, the cache files of this root whose inputs or versions are
        out of date are deleted afterwards (see
        :mod:`~torchgeo_quake.datasets.sample_cache`).

        Args:
            cache_file: the cache file of *state*
            state: from :meth:`_cache_state`
            cache: whether to use the cache

        Returns:
            Arrays of all samples, as :meth:`_extract` returns them.
        """
        owner = type(self).__name__
        # Warnings point at the caller of __init__.
        arrays = _load_samples(cache_file, owner, stacklevel=4) if cache else None
        if arrays is None:
            arrays = self._extract()
            if cache:
                meta = {"root": str(self.root.resolve()), "state": state}
                _save_samples(cache_file, arrays, meta, owner, stacklevel=4)
        if cache:
            _prune_samples(
                self.cache_dir,
                self.root,
                keep=cache_file,
                versions=self._versions(),
                file_stats=partial(_file_stats, self._area_files),
                verbose=self.verbose,
            )
        return arrays

    def _extract(self) -> dict[str, np.ndarray]:
        """Build every sample through the data layer and the centroid sampler.

        Returns:
            Arrays of all samples and of the skipped buildings, and the per-area
            report as JSON (``meta_report``).
        """
        parts: dict[str, list[np.ndarray]] = {}
        skipped: list[pd.DataFrame] = []
        report: dict[str, dict[str, int]] = {}
        for city in self.areas:
            with _quiet(not self.verbose):
                area = self._build_area(city)
            skipped += _area_skipped(area, city)
            counts = area.windows.counts()
            report[city] = _area_report(area, counts)
            if self.verbose:
                sampler = area.windows
                print(
                    f"{city}: {len(sampler.buildings)} samples "
                    f"({counts.to_dict('records')}), {len(sampler.skipped)} skipped"
                )
            city_arrays = _area_arrays(area, city, self.modalities, self.size)
            for key, array in city_arrays.items():
                parts.setdefault(key, []).append(array)
        return _join_areas(parts, skipped, report)

    def __len__(self) -> int:
        """Number of building samples.

        Returns:
            Length of the dataset.
        """
        return len(self.labels)

    def __getitem__(self, index: int) -> dict[str, Any]:
        """Return one building sample.

        Args:
            index: index of the sample

        Returns:
            Sample with the requested modalities (``sar``, ``footprint``, ``dsm``
            as float32 1×size×size, ``gem`` as float32 vector), ``label`` (int64,
            1 = damaged), ``building_id`` (int64 building id), ``city`` (str) and
            ``centroid`` (float64 x, y in the area's SAR CRS); ``city`` holds
            the area name.
        """
        sample: dict[str, Any] = {
            key: tensor[index].clone() for key, tensor in self._tensors.items()
        }
        sample["label"] = torch.tensor(self.labels[index])
        sample["building_id"] = torch.tensor(self.building_ids[index])
        sample["city"] = str(self.city_of[index])
        sample["centroid"] = torch.from_numpy(self.centroids[index].copy())
        if self.transforms is not None:
            sample = self.transforms(sample)
        return sample

    def arrays(self) -> dict[str, np.ndarray]:
        """All samples as arrays (for statistics and fast splitting).

        Returns:
            Mapping of sample keys to arrays with the sample axis first.
        """
        return dict(self._arrays)

    def counts(self) -> pd.DataFrame:
        """Intact and damaged samples per area.

        Returns:
            DataFrame indexed by area name with ``intact``, ``damaged`` and
            ``total`` columns, plus an ``all`` row.
        """
        frame = pd.DataFrame({"city": self.city_of, "label": self.labels})
        rows = []
        for city in self.areas:
            labels = frame.loc[frame["city"] == city, "label"]
            rows.append(
                {
                    "city": city,
                    "intact": int((labels == 0).sum()),
                    "damaged": int((labels == 1).sum()),
                }
            )
        table = pd.DataFrame(rows).set_index("city")
        table.loc["all"] = table.sum()
        table["total"] = table["intact"] + table["damaged"]
        return table

    def report(self) -> pd.DataFrame:
        """What happened to the buildings of each area, from file to sample.

        Returns:
            DataFrame indexed by area name (plus an ``all`` row) with columns
            ``footprints`` (features in the footprint file),
            ``skipped_footprints`` (unusable features, listed in
            :attr:`skipped`), ``reference_damaged`` (footprints the damage
            layer marks), ``reference_excluded`` (footprints the reference
            excludes from training, e.g. EMS "Possibly damaged", listed in
            :attr:`skipped`), ``unmatched_damage`` (damage features that match no
            footprint), ``skipped_windows`` (buildings whose patch leaves the
            SAR image or covers nodata, listed in :attr:`skipped`),
            ``available_intact`` / ``available_damaged`` (sampleable buildings)
            and ``intact`` / ``damaged`` (samples drawn).

        .. versionadded:: 0.1
        """
        table = self._report.copy()
        table.loc["all"] = table.sum()
        return table.astype(np.int64)

    def _warn_drops(self) -> None:
        """Warn about areas and damage features that yield no samples.

        Raises:
            ValueError: If no area yields a sample.
        """
        messages = _drop_messages(
            self._report,
            type(self).__name__,
            lambda city: self._area_files(city)["damage"],
            self.negatives_per_positive,
        )
        for message in messages:
            warnings.warn(message, UserWarning, stacklevel=3)
        if len(self) == 0:
            raise ValueError(
                f"{type(self).__name__}: no sample in {self.root} for areas "
                f"{list(self.areas)}; see the warnings above and report()."
            )

    def plot(
        self,
        sample: dict[str, Any],
        show_titles: bool = True,
        suptitle: str | None = None,
    ) -> Figure:
        """Plot a sample as in the paper's Fig. 3.

        SAR patch (dB, percentile stretch) with the footprint outlined, the
        footprint mask, and the DSM patch when present.

        Args:
            sample: a sample returned by :meth:`__getitem__`
            show_titles: flag indicating whether to show titles above each panel
            suptitle: optional string to use as a suptitle

        Returns:
            A matplotlib Figure with the rendered sample.
        """
        import matplotlib.pyplot as plt

        panels = [key for key in _RASTER_KEYS if key in sample]
        fig, axes = plt.subplots(
            1, len(panels), figsize=(3.2 * len(panels), 3.6), layout="constrained"
        )
        axes = np.atleast_1d(axes)
        footprint = sample["footprint"][0].numpy()
        for ax, key in zip(axes, panels, strict=True):
            image = sample[key][0].numpy()
            if key == "sar":
                low, high = np.percentile(image, [2, 98])
                ax.imshow(image, cmap="gray", vmin=low, vmax=high)
                ax.contour(footprint, levels=[0.5], colors="red", linewidths=1.2)
                title = "SAR with footprint"
            elif key == "footprint":
                ax.imshow(image, cmap="gray", vmin=0, vmax=1)
                title = "Footprint"
            else:
                ax.imshow(image, cmap="terrain")
                title = "DSM"
            ax.set_axis_off()
            if show_titles:
                ax.set_title(title)
        if suptitle is None and show_titles:
            state = "damaged" if int(sample["label"]) == 1 else "intact"
            city = str(sample.get("city", ""))
            name = self.area_names.get(city, city)
            suptitle = f"{name} building {int(sample['building_id'])}: {state}"
        if suptitle is not None:
            fig.suptitle(suptitle)
        return fig
