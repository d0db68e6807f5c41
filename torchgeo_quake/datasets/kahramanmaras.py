"""The five-city 2023 Kahramanmaraş earthquake building-damage dataset."""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure
from torchgeo.datasets import GeoDataset, NonGeoDataset

from .csk import CSKSAR
from .dsm import CartoSatDSM
from .gem import GEM_FEATURE_NAMES, GEMExposure
from .osm import OSMBuildings
from .simulation.cities import CITIES

__all__ = ["MODALITIES", "TABLE_II", "KahramanmarasDamage"]

#: Input modalities of the paper: SAR, footprint mask, DSM, GEM exposure vector.
MODALITIES = ("sar", "footprint", "dsm", "gem")

#: Table II of the paper: (intact, damaged) buildings per city.
TABLE_II: dict[str, tuple[int, int]] = {
    city.slug: (city.n_intact, city.n_damaged) for city in CITIES
}

_RASTER_KEYS = ("sar", "footprint", "dsm")


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
    paper's Table II (13,487 samples). Extracted patches are cached on disk in
    ``root/.cache`` keyed by the input files and all parameters, so later runs
    load them in a fraction of a second.

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
    ) -> None:
        """Initialize a new KahramanmarasDamage instance.

        Args:
            root: folder holding one sub-folder per city
            cities: cities to load (default: all five)
            modalities: inputs to return; ``"sar"`` and ``"footprint"`` are
                required, ``"dsm"`` and ``"gem"`` optional
            transforms: a function/transform that takes a sample and returns a
                transformed version
            simulate: if True and *root* holds no scene, simulate one there
            negatives_per_positive: intact buildings drawn per damaged building in
                each city (the paper's 20); None keeps every building
            seed: seed of the negative sampling (and of the simulation)
            size: patch size in SAR pixels
            scale: size of the simulated scene relative to the paper's (for tests
                and demos); ignored for real data
            radiometry: SAR values the model sees: ``"amplitude"``,
                ``"intensity"`` or ``"db"``
            cache: if True, cache extracted patches in ``root/.cache``
            verbose: if True, print progress and skip counts

        Raises:
            ValueError: If a city or modality is unknown, or required modalities
                are missing.
            FileNotFoundError: If *root* lacks cities or files and *simulate* is
                False (the message lists what is missing and how to fix it).
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
        self.radiometry = radiometry
        self.verbose = verbose

        self._ensure_scene(simulate)
        key = self._cache_key()
        cache_file = self.root / ".cache" / f"samples-{key}.npz"
        start = time.perf_counter()
        if cache and cache_file.exists():
            arrays = dict(np.load(cache_file, allow_pickle=False))
        else:
            arrays = self._extract()
            if cache:
                cache_file.parent.mkdir(parents=True, exist_ok=True)
                tmp = cache_file.with_suffix(".tmp.npz")
                np.savez(tmp, allow_pickle=False, **arrays)
                os.replace(tmp, cache_file)
        #: Seconds spent building (or loading) the samples.
        self.build_seconds = time.perf_counter() - start
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

    def _missing(self) -> list[str]:
        """Inputs the requested cities and modalities need but root lacks.

        Returns:
            Human-readable list of missing files.
        """
        needed = {"sar", "footprint", "damage"} | set(self.modalities)
        missing = []
        for city in self.cities:
            paths = self._city_files(city)
            for name in sorted(needed):
                if not paths[name].exists():
                    missing.append(str(paths[name]))
        return missing

    def _ensure_scene(self, simulate: bool) -> None:
        """Check the inputs, simulating the default scene when allowed.

        Args:
            simulate: whether a missing scene may be simulated

        Raises:
            FileNotFoundError: If inputs are missing and cannot be simulated.
        """
        missing = self._missing()
        if not missing:
            return
        has_anything = self.root.exists() and any(self.root.iterdir())
        if simulate and not has_anything:
            from .simulation import simulate_scene

            if self.verbose:
                print(f"Simulating the Kahramanmaraş scene in {self.root} ...")
            simulate_scene(self.root, scale=self.scale, seed=self.seed)
            missing = self._missing()
            if not missing:
                return
        optional = [m for m in ("dsm", "gem") if m in self.modalities]
        hint = (
            f" or drop the missing modalities ({', '.join(optional)}) from `modalities`"
            if optional
            else ""
        )
        raise FileNotFoundError(
            f"KahramanmarasDamage: {len(missing)} input file(s) missing under "
            f"{self.root}:\n  " + "\n  ".join(missing) + "\nLay out real data as "
            "root/<city>/{sar.tif,buildings.gpkg,destroyed.geojson,dsm.tif,gem.csv}, "
            "choose the available cities with `cities=`" + hint + ", or pass an "
            "empty root with simulate=True to generate the simulated scene."
        )

    def _cache_key(self) -> str:
        """Hash of everything the samples depend on.

        Returns:
            Hex digest (16 characters).
        """
        state: dict[str, Any] = {
            "version": 1,
            "cities": self.cities,
            "modalities": self.modalities,
            "negatives_per_positive": self.negatives_per_positive,
            "seed": self.seed,
            "size": self.size,
            "radiometry": self.radiometry,
            "files": {},
        }
        for city in self.cities:
            for name, path in self._city_files(city).items():
                if path.exists():
                    stat = path.stat()
                    state["files"][f"{city}/{name}"] = [stat.st_size, stat.st_mtime_ns]
        digest = hashlib.sha256(json.dumps(state, sort_keys=True).encode())
        return digest.hexdigest()[:16]

    def _extract(self) -> dict[str, np.ndarray]:
        """Build every sample through the data layer and the centroid sampler.

        Returns:
            Arrays of all samples and of the skipped buildings.
        """
        from ..samplers import BuildingCentroidSampler

        parts: dict[str, list[np.ndarray]] = {}
        skipped: list[pd.DataFrame] = []
        for city in self.cities:
            paths = self._city_files(city)
            sar = CSKSAR(paths["sar"], radiometry=self.radiometry)  # type: ignore[arg-type]
            exposure = GEMExposure(paths["gem"]) if "gem" in self.modalities else None
            footprints = OSMBuildings(
                paths["footprint"],
                damage=paths["damage"],
                city=city,
                exposure=exposure,
            )
            if not footprints.skipped.empty:
                skipped.append(
                    footprints.skipped.assign(city=city)[
                        ["building_id", "city", "reason"]
                    ]
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
            skipped.append(sampler.skipped[["building_id", "city", "reason"]])
            if self.verbose:
                counts = sampler.counts()
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
        return arrays

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
