"""The five-city 2023 Kahramanmaraş earthquake building-damage dataset."""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import io
import json
import math
import os
import re
import time
import warnings
import zipfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure
from torchgeo.datasets import GeoDataset, NonGeoDataset

from .. import __version__
from .csk import CSKSAR
from .dsm import CartoSatDSM
from .gem import GEM_FEATURE_NAMES, GEMExposure
from .osm import OSMBuildings
from .simulation.cities import CITIES
from .simulation.scene import SIMULATOR_VERSION, read_scene

if TYPE_CHECKING:
    from ..samplers import BuildingCentroidSampler

__all__ = ["MODALITIES", "TABLE_II", "KahramanmarasDamage"]

#: Input modalities of the paper: SAR, footprint mask, DSM, GEM exposure vector.
MODALITIES = ("sar", "footprint", "dsm", "gem")

#: Table II of the paper: (intact, damaged) buildings per city.
TABLE_II: dict[str, tuple[int, int]] = {
    city.slug: (city.n_intact, city.n_damaged) for city in CITIES
}

_RASTER_KEYS = ("sar", "footprint", "dsm")

#: Version of the on-disk sample-cache format (bump when its layout changes).
CACHE_FORMAT = 2
_CACHE_NAME = re.compile(r"^samples-[0-9a-f]{16}\.npz$")
#: Columns of :meth:`KahramanmarasDamage.report`, in order.
REPORT_COLUMNS = (
    "footprints",
    "skipped_footprints",
    "reference_damaged",
    "unmatched_damage",
    "skipped_windows",
    "available_intact",
    "available_damaged",
    "intact",
    "damaged",
)


def _defaults(cls: Callable[..., Any]) -> dict[str, str]:
    """Constructor defaults of a data-layer class, as stable strings.

    Args:
        cls: the class

    Returns:
        Mapping of parameter name to the ``repr`` of its default (the type name
        for defaults whose ``repr`` is not stable across processes).
    """
    simple = (bool, int, float, str, tuple, list, type(None))
    out = {}
    for name, param in inspect.signature(cls).parameters.items():
        if param.default is inspect.Parameter.empty:
            continue
        default = param.default
        stable = isinstance(default, simple)
        out[name] = repr(default) if stable else type(default).__name__
    return out


@contextlib.contextmanager
def _quiet(enabled: bool) -> Iterator[None]:
    """Swallow TorchGeo's progress prints (``Converting ... res``) when enabled.

    Args:
        enabled: whether to silence standard output

    Yields:
        Nothing.
    """
    if not enabled:
        yield
        return
    with contextlib.redirect_stdout(io.StringIO()):
        yield


class KahramanmarasDamage(NonGeoDataset):
    """Building-centred samples of the 2023 Kahramanmaraş earthquake, five cities.

    Reproduces the dataset of Russo et al. (2025, section II-C): for every selected
    building of Islahiye, Kahramanmaraş, Nurdağı, Osmaniye and Türkoğlu, a 32×32
    patch of the post-event SAR image centred on the building centroid, the
    building-footprint mask, the matching DSM patch, and the GEM exposure vector
    of the nearest GEM point; label 1 if the building is in the HOTOSM destroyed
    layer. All damaged buildings are kept and intact ones drawn 20:1 per city.

    Samples are built through the package's data layer — :class:`CSKSAR` ``&``
    :class:`CartoSatDSM` ``&`` :class:`OSMBuildings` indexed by
    :class:`~torchgeo_quake.samplers.BuildingCentroidSampler` — so the code path
    is the one of real data. The paper's CSK, CartoSat and detailed GEM data are
    licensed; with ``simulate=True`` (default) a physically motivated simulated
    scene in the same file formats is written to *root* on first use
    (:func:`~torchgeo_quake.datasets.simulation.simulate_scene`).

    Layout of *root* (real data laid out the same way works unchanged)::

        root/<city>/sar.tif            post-event SAR (GeoTIFF or CSK .h5)
        root/<city>/dsm.tif            pre-event DSM, any CRS/resolution
        root/<city>/buildings.gpkg     footprints with osm_id (any OGR format)
        root/<city>/destroyed.geojson  HOTOSM destroyed-buildings layer
        root/<city>/gem.csv            GEM / OpenQuake exposure point assets

    With the default settings on the simulated scene the per-city counts equal the
    paper's Table II (13,487 samples): every simulated city holds exactly the
    Table II buildings inside its SAR image, and each city's intact:damaged ratio
    is below 20, so the 20:1 sampling keeps them all. :meth:`report` gives, per
    city, what was read, skipped, matched and sampled; a city that yields no
    samples, or damage features that match no footprint, are warned about.

    Extracted patches are cached on disk (``root/.cache`` or *cache_dir*) in
    ``samples-<key>.npz``, keyed by the size and modification time of every
    input file, the parameters, the package and simulator versions and the
    constructor defaults of the data-layer classes, so later runs load them in a
    fraction of a second; cache files of the same root whose inputs or versions
    are out of date are deleted.

    .. versionadded:: 0.1
    """

    #: City slugs, in the paper's order.
    all_cities: ClassVar[tuple[str, ...]] = tuple(city.slug for city in CITIES)

    #: Display names of the cities.
    city_names: ClassVar[dict[str, str]] = {city.slug: city.name for city in CITIES}

    #: File of each modality inside a city folder (``sar`` may also be ``sar.h5``).
    files: ClassVar[dict[str, str]] = {
        "sar": "sar.tif",
        "footprint": "buildings.gpkg",
        "damage": "destroyed.geojson",
        "dsm": "dsm.tif",
        "gem": "gem.csv",
    }

    def __init__(
        self,
        root: str | os.PathLike[str] = "data/kahramanmaras",
        cities: Sequence[str] | None = None,
        modalities: Sequence[str] = MODALITIES,
        transforms: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
        simulate: bool = True,
        negatives_per_positive: float | None = 20.0,
        seed: int = 0,
        size: int = 32,
        scale: float = 1.0,
        radiometry: str = "db",
        cache: bool = True,
        verbose: bool = False,
        cache_dir: str | os.PathLike[str] | None = None,
        scene_seed: int | None = None,
    ) -> None:
        """Initialize a new KahramanmarasDamage instance.

        Args:
            root: folder holding one sub-folder per city
            cities: cities to load (default: all five)
            modalities: inputs to return; ``"sar"`` and ``"footprint"`` are
                required, ``"dsm"`` and ``"gem"`` optional
            transforms: a function/transform that takes a sample and returns a
                transformed version
            simulate: if True, simulate the requested cities into *root* when it
                is empty (or holds a simulated scene of the same scale and seed
                that lacks them), and check that a simulated scene in *root* has
                the requested *scale*; if False, read *root* as it is
            negatives_per_positive: intact buildings drawn per damaged building in
                each city (the paper's 20); None keeps every building
            seed: seed of the negative sampling, and of the simulation of an
                empty root (unless *scene_seed* is given)
            size: patch size in SAR pixels
            scale: size of the simulated scene relative to the paper's (for tests
                and demos): used to simulate an empty root and, with
                *simulate*, checked against the scale of a simulated scene
                already in *root*; ignored for real data
            radiometry: SAR values the model sees: ``"amplitude"``,
                ``"intensity"`` or ``"db"``
            cache: if True, cache extracted patches on disk
            verbose: if True, print progress, skip counts and TorchGeo's messages
            cache_dir: folder of the sample cache (default: ``root/.cache``); if
                it cannot be written, a warning says so and the samples are
                extracted again next time
            scene_seed: seed of the simulated scene; when given, a simulated
                scene in *root* with another seed is refused. By default the
                scene's own seed is used and *seed* only drives the sampling, so
                several sampling seeds can share one scene.

        Raises:
            ValueError: If a city or modality is unknown, required modalities
                are missing, *root* holds a simulated scene of another scale
                (with *simulate*) or seed (with *scene_seed*), or no city yields
                a sample.
            FileNotFoundError: If *root* lacks cities or files and *simulate* is
                False or *root* holds other data (the message lists what is
                missing and how to fix it).
        """
        self.root = Path(root)
        self.cities = tuple(cities) if cities is not None else self.all_cities
        unknown = sorted(set(self.cities) - set(self.all_cities))
        if unknown:
            raise ValueError(
                f"unknown cities {unknown}; choose among {list(self.all_cities)}"
            )
        self.modalities = tuple(modalities)
        bad = sorted(set(self.modalities) - set(MODALITIES))
        if bad:
            raise ValueError(
                f"unknown modalities {bad}; choose among {list(MODALITIES)}"
            )
        if "sar" not in self.modalities or "footprint" not in self.modalities:
            raise ValueError(
                "modalities must include 'sar' and 'footprint' (the paper's baseline)"
            )
        self.transforms = transforms
        self.negatives_per_positive = negatives_per_positive
        self.seed = seed
        self.size = size
        self.scale = scale
        self.scene_seed = scene_seed
        self.radiometry = radiometry
        self.verbose = verbose
        self.cache_dir = (
            Path(cache_dir) if cache_dir is not None else self.root / ".cache"
        )

        #: Contents of ``root/scene.json`` (None for real data).
        self.scene: dict[str, Any] | None = None
        self._ensure_scene(simulate)
        state = self._cache_state()
        key = self._cache_key(state)
        cache_file = self.cache_dir / f"samples-{key}.npz"
        start = time.perf_counter()
        arrays = self._load_cache(cache_file) if cache else None
        if arrays is None:
            arrays = self._extract()
            if cache:
                self._save_cache(cache_file, arrays, state)
        if cache:
            self._prune_cache(keep=cache_file)
        #: Seconds spent building (or loading) the samples.
        self.build_seconds = time.perf_counter() - start
        report = json.loads(str(arrays["meta_report"]))
        self._report = pd.DataFrame.from_dict(report, orient="index").reindex(
            index=list(self.cities), columns=list(REPORT_COLUMNS)
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
        self._warn_drops()

    # ---------------------------------------------------------------- set-up
    def _city_files(self, city: str) -> dict[str, Path]:
        """Paths of the inputs of one city.

        Args:
            city: city slug

        Returns:
            Path per input (``sar``, ``footprint``, ``damage``, ``dsm``, ``gem``).
        """
        folder = self.root / city
        paths = {name: folder / filename for name, filename in self.files.items()}
        if not paths["sar"].exists() and (folder / "sar.h5").exists():
            paths["sar"] = folder / "sar.h5"
        return paths

    def _missing(self) -> dict[str, list[str]]:
        """Inputs the requested cities and modalities need but root lacks.

        Returns:
            Missing files per input name (``sar``, ``footprint``, ``damage``,
            ``dsm``, ``gem``); inputs with nothing missing are absent.
        """
        needed = {"sar", "footprint", "damage"} | set(self.modalities)
        missing: dict[str, list[str]] = {}
        for city in self.cities:
            paths = self._city_files(city)
            for name in sorted(needed):
                if not paths[name].exists():
                    missing.setdefault(name, []).append(str(paths[name]))
        return missing

    def _check_scene(self, simulate: bool) -> None:
        """Compare a simulated scene in *root* with the requested one.

        Args:
            simulate: whether *scale* is to be checked

        Raises:
            ValueError: If the scene's scale (with *simulate*) or seed (with
                *scene_seed*) differs from the requested one.
        """
        scene = self.scene
        if scene is None or scene.get("simulated") is not True:
            return
        stored_scale = float(scene.get("scale", 1.0))
        stored_seed = scene.get("seed")
        fix = (
            "give another root to simulate that scene there, or replace this one "
            "with torchgeo_quake.datasets.simulation.simulate_scene(root, "
            "scale=..., seed=..., overwrite=True) (`torchgeo-quake simulate ROOT "
            "--scale S --seed N --overwrite`)"
        )
        if simulate and not math.isclose(stored_scale, float(self.scale)):
            raise ValueError(
                f"KahramanmarasDamage: {self.root} holds a simulated scene of scale "
                f"{stored_scale:g} (seed {stored_seed}), but scale={self.scale:g} "
                f"was asked. Pass scale={stored_scale:g} to use it, or {fix}."
            )
        if self.scene_seed is not None and stored_seed != self.scene_seed:
            raise ValueError(
                f"KahramanmarasDamage: {self.root} holds a simulated scene of seed "
                f"{stored_seed} (scale {stored_scale:g}), but scene_seed="
                f"{self.scene_seed} was asked. Pass scene_seed={stored_seed} (or "
                f"leave it out) to use it, or {fix}."
            )

    def _ensure_scene(self, simulate: bool) -> None:
        """Check the inputs, simulating the requested cities when allowed.

        Args:
            simulate: whether a missing scene may be simulated

        Raises:
            ValueError: If a simulated scene in *root* does not match.
            FileNotFoundError: If inputs are missing and cannot be simulated.
        """
        self.scene = read_scene(self.root)
        self._check_scene(simulate)
        missing = self._missing()
        if not missing:
            return
        simulated = self.scene is not None and self.scene.get("simulated") is True
        has_anything = self.root.exists() and any(self.root.iterdir())
        if simulate and (simulated or not has_anything):
            from .simulation import simulate_scene

            if self.scene_seed is not None:
                seed = self.scene_seed
            elif simulated and self.scene is not None:
                seed = int(self.scene.get("seed", self.seed))
            else:
                seed = self.seed
            if self.verbose:
                print(
                    f"Simulating {', '.join(self.cities)} (scale {self.scale:g}, "
                    f"seed {seed}) in {self.root} ..."
                )
            simulate_scene(self.root, cities=self.cities, scale=self.scale, seed=seed)
            self.scene = read_scene(self.root)
            missing = self._missing()
            if not missing:
                return
        files = [path for paths in missing.values() for path in paths]
        optional = [m for m in ("dsm", "gem") if m in missing]
        hint = (
            f" or drop the missing modalities ({', '.join(optional)}) from `modalities`"
            if optional
            else ""
        )
        raise FileNotFoundError(
            f"KahramanmarasDamage: {len(files)} input file(s) missing under "
            f"{self.root}:\n  " + "\n  ".join(files) + "\nLay out real data as "
            "root/<city>/{sar.tif,buildings.gpkg,destroyed.geojson,dsm.tif,gem.csv}, "
            "choose the available cities with `cities=`" + hint + ", or pass an "
            "empty root with simulate=True to generate the simulated scene."
        )

    # ----------------------------------------------------------------- cache
    def _cache_state(self) -> dict[str, Any]:
        """Everything the samples depend on.

        Returns:
            JSON-serialisable state: parameters, versions, data-layer defaults
            and the size and modification time of every input file.
        """
        from ..samplers import BuildingCentroidSampler

        layer = (CSKSAR, CartoSatDSM, OSMBuildings, GEMExposure)
        state: dict[str, Any] = {
            **self._versions(),
            "cities": list(self.cities),
            "modalities": list(self.modalities),
            "negatives_per_positive": self.negatives_per_positive,
            "seed": self.seed,
            "size": self.size,
            "radiometry": self.radiometry,
            "data_layer": {
                cls.__name__: _defaults(cls)
                for cls in (*layer, BuildingCentroidSampler)
            },
            "files": self._file_stats(self.cities),
        }
        return state

    def _file_stats(self, cities: Sequence[str]) -> dict[str, list[int]]:
        """Size and modification time of the input files of *cities*.

        Args:
            cities: city slugs

        Returns:
            ``{"<city>/<input>": [size, mtime_ns]}`` for the files that exist.
        """
        stats: dict[str, list[int]] = {}
        for city in cities:
            for name, path in self._city_files(city).items():
                if path.exists():
                    stat = path.stat()
                    stats[f"{city}/{name}"] = [stat.st_size, stat.st_mtime_ns]
        return stats

    @staticmethod
    def _cache_key(state: dict[str, Any]) -> str:
        """Hash of a cache state.

        Args:
            state: from :meth:`_cache_state`

        Returns:
            Hex digest (16 characters).
        """
        digest = hashlib.sha256(json.dumps(state, sort_keys=True).encode())
        return digest.hexdigest()[:16]

    def _load_cache(self, path: Path) -> dict[str, np.ndarray] | None:
        """Load a cache file if it exists and is readable.

        Args:
            path: the cache file

        Returns:
            Its arrays, or None (missing, or unreadable: warned, then rebuilt).
        """
        if not path.exists():
            return None
        try:
            with np.load(path, allow_pickle=False) as npz:
                arrays = dict(npz)
            if "meta_report" not in arrays:
                raise KeyError("meta_report")
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as err:
            warnings.warn(
                f"KahramanmarasDamage: the sample cache {str(path)!r} is unreadable "
                f"({err}); extracting the samples again.",
                stacklevel=3,
            )
            return None
        return arrays

    def _save_cache(
        self, path: Path, arrays: dict[str, np.ndarray], state: dict[str, Any]
    ) -> None:
        """Write the samples to the cache, atomically.

        Args:
            path: the cache file
            arrays: the samples
            state: the cache state (stored with the root, for pruning)
        """
        meta = {"root": str(self.root.resolve()), "state": state}
        tmp = path.parent / f".{path.stem}-{os.getpid()}.tmp"
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(tmp, "wb") as f:
                meta_array = np.array(json.dumps(meta))
                np.savez(f, allow_pickle=False, meta_cache=meta_array, **arrays)
            os.replace(tmp, path)
        except OSError as err:
            with contextlib.suppress(OSError):
                tmp.unlink()
            warnings.warn(
                f"KahramanmarasDamage: cannot write the sample cache in "
                f"{str(path.parent)!r} ({err}); the samples will be extracted again "
                "next time. Pass cache_dir= a writable folder, or cache=False.",
                stacklevel=3,
            )

    def _prune_cache(self, keep: Path) -> None:
        """Delete cache files of this root whose inputs or versions are stale.

        A file is stale when it was written for the same root by another cache
        format, package or simulator version, or when one of the input files it
        was built from has changed size or modification time since. Cache files
        of other parameters (cities, modalities, ...) with current inputs are
        kept. Files written before the cache recorded its root (format 1) are
        stale when they sit in ``root/.cache``.

        Args:
            keep: the cache file in use
        """
        if not self.cache_dir.is_dir():
            return
        root = str(self.root.resolve())
        default = self.cache_dir.resolve() == (self.root / ".cache").resolve()
        for path in self.cache_dir.iterdir():
            if path == keep or not _CACHE_NAME.match(path.name):
                continue
            try:
                with np.load(path, allow_pickle=False) as npz:
                    found = "meta_cache" in npz.files
                    meta = json.loads(str(npz["meta_cache"])) if found else None
            except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
                meta = None
            if meta is None:
                stale = default
            elif meta.get("root") != root:
                continue
            else:
                old = meta.get("state", {})
                outdated = any(old.get(k) != v for k, v in self._versions().items())
                changed = old.get("files") != self._file_stats(old.get("cities", []))
                stale = outdated or changed
            if stale:
                with contextlib.suppress(OSError):
                    path.unlink()
                    if self.verbose:
                        print(f"Removed stale sample cache {path}")

    @staticmethod
    def _versions() -> dict[str, Any]:
        """Versions recorded in every cache state.

        Returns:
            Cache format, package and simulator versions.
        """
        return {
            "format": CACHE_FORMAT,
            "package": __version__,
            "simulator": SIMULATOR_VERSION,
        }

    def _extract(self) -> dict[str, np.ndarray]:
        """Build every sample through the data layer and the centroid sampler.

        Returns:
            Arrays of all samples and of the skipped buildings, and the per-city
            report as JSON (``meta_report``).
        """
        parts: dict[str, list[np.ndarray]] = {}
        skipped: list[pd.DataFrame] = []
        report: dict[str, dict[str, int]] = {}
        for city in self.cities:
            paths = self._city_files(city)
            with _quiet(not self.verbose):
                dataset, footprints, sampler = self._city_dataset(city, paths)
            if not footprints.skipped.empty:
                skipped.append(
                    footprints.skipped.assign(city=city)[
                        ["building_id", "city", "reason"]
                    ]
                )
            skipped.append(sampler.skipped[["building_id", "city", "reason"]])
            labels_all = footprints.buildings["label"].to_numpy()
            labels_skipped = sampler.skipped["label"].to_numpy()
            counts = sampler.counts()
            report[city] = {
                "footprints": len(footprints.buildings) + len(footprints.skipped),
                "skipped_footprints": len(footprints.skipped),
                "reference_damaged": int((labels_all == 1).sum()),
                "unmatched_damage": int(footprints.unmatched_damage),
                "skipped_windows": len(sampler.skipped),
                "available_intact": int((labels_all == 0).sum())
                - int((labels_skipped == 0).sum()),
                "available_damaged": int((labels_all == 1).sum())
                - int((labels_skipped == 1).sum()),
                "intact": int(counts["intact"].sum()),
                "damaged": int(counts["damaged"].sum()),
            }
            if self.verbose:
                print(
                    f"{city}: {len(sampler)} samples "
                    f"({counts.to_dict('records')}), {len(sampler.skipped)} skipped"
                )
            n = len(sampler)
            city_arrays: dict[str, np.ndarray] = {
                key: np.empty((n, 1, self.size, self.size), np.float32)
                for key in _RASTER_KEYS
                if key in self.modalities
            }
            if "gem" in self.modalities:
                city_arrays["gem"] = np.empty((n, len(GEM_FEATURE_NAMES)), np.float32)
            labels = np.empty(n, np.int64)
            ids = np.empty(n, np.int64)
            centroids = np.empty((n, 2), np.float64)
            for i, query in enumerate(sampler):
                sample = dataset[query]
                for key, array in city_arrays.items():
                    array[i] = sample[key].numpy()
                labels[i] = int(sample["label"])
                ids[i] = int(sample["building_id"])
                centroids[i] = sample["centroid"].numpy()
            city_arrays["label"] = labels
            city_arrays["building_id"] = ids
            city_arrays["centroid"] = centroids
            city_arrays["city"] = np.array([city] * n)
            for key, array in city_arrays.items():
                parts.setdefault(key, []).append(array)
        arrays = {key: np.concatenate(value) for key, value in parts.items()}
        arrays["city"] = arrays["city"].astype("U32")
        table = (
            pd.concat(skipped, ignore_index=True)
            if skipped
            else pd.DataFrame(columns=["building_id", "city", "reason"])
        )
        arrays["skipped_id"] = (
            pd.to_numeric(table["building_id"], errors="coerce")
            .fillna(-1)
            .to_numpy(np.int64)
        )
        arrays["skipped_city"] = table["city"].to_numpy().astype("U32")
        arrays["skipped_reason"] = table["reason"].to_numpy().astype("U64")
        arrays["meta_report"] = np.array(json.dumps(report))
        return arrays

    def _city_dataset(
        self, city: str, paths: dict[str, Path]
    ) -> tuple[GeoDataset, OSMBuildings, BuildingCentroidSampler]:
        """The data-layer dataset of one city and its centroid sampler.

        Args:
            city: city slug
            paths: the city's inputs (from :meth:`_city_files`)

        Returns:
            ``CSKSAR [& CartoSatDSM] & OSMBuildings``, the footprints and the
            sampler.
        """
        from ..samplers import BuildingCentroidSampler

        sar = CSKSAR(paths["sar"], radiometry=self.radiometry)  # type: ignore[arg-type]
        exposure = GEMExposure(paths["gem"]) if "gem" in self.modalities else None
        footprints = OSMBuildings(
            paths["footprint"],
            damage=paths["damage"],
            city=city,
            exposure=exposure,
        )
        dataset: GeoDataset = sar
        if "dsm" in self.modalities:
            dataset = dataset & CartoSatDSM(paths["dsm"])
        dataset = dataset & footprints
        sampler = BuildingCentroidSampler(
            dataset,
            size=self.size,
            negatives_per_positive=self.negatives_per_positive,
            seed=self.seed,
        )
        return dataset, footprints, sampler

    # ---------------------------------------------------------------- access
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
            1 = damaged), ``building_id`` (int64 osm_id), ``city`` (str) and
            ``centroid`` (float64 x, y in the city's SAR CRS).
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
        """Intact and damaged samples per city.

        Returns:
            DataFrame indexed by city slug with ``intact``, ``damaged`` and
            ``total`` columns, plus an ``all`` row.
        """
        frame = pd.DataFrame({"city": self.city_of, "label": self.labels})
        rows = []
        for city in self.cities:
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
        """What happened to the buildings of each city, from file to sample.

        Returns:
            DataFrame indexed by city slug (plus an ``all`` row) with columns
            ``footprints`` (features in the footprint file),
            ``skipped_footprints`` (unusable features, listed in
            :attr:`skipped`), ``reference_damaged`` (footprints the damage
            layer marks), ``unmatched_damage`` (damage features that match no
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
        """Warn about cities and damage features that yield no samples.

        Raises:
            ValueError: If no city yields a sample.
        """
        table = self._report
        for city, row in table.iterrows():
            if row["unmatched_damage"] > 0:
                path = self._city_files(str(city))["damage"]
                warnings.warn(
                    f"KahramanmarasDamage: {row['unmatched_damage']} damage "
                    f"feature(s) of {str(path)!r} match no footprint of {city} (by "
                    "id or overlap) and label no building; check that the damage "
                    "layer and the footprints cover the same buildings (see "
                    "report()).",
                    UserWarning,
                    stacklevel=3,
                )
            if row["intact"] + row["damaged"] > 0:
                continue
            if row["available_damaged"] == 0 and row["available_intact"] > 0:
                reason = (
                    f"it has no damaged building to sample, so "
                    f"negatives_per_positive={self.negatives_per_positive} keeps "
                    f"none of its {row['available_intact']} intact buildings; pass "
                    "negatives_per_positive=None to keep them, or leave the city out"
                )
            else:
                reason = (
                    f"none of its {row['footprints']} footprints could be sampled "
                    f"({row['skipped_footprints']} unusable, "
                    f"{row['skipped_windows']} outside the SAR image or on nodata; "
                    "see `skipped`)"
                )
            warnings.warn(
                f"KahramanmarasDamage: {city} yields no samples: {reason}.",
                UserWarning,
                stacklevel=3,
            )
        if len(self) == 0:
            raise ValueError(
                f"KahramanmarasDamage: no sample in {self.root} for cities "
                f"{list(self.cities)}; see the warnings above and report()."
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
            name = self.city_names.get(str(sample.get("city", "")), "")
            suptitle = f"{name} building {int(sample['building_id'])}: {state}"
        if suptitle is not None:
            fig.suptitle(suptitle)
        return fig
