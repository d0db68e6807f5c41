"""The five-city 2023 Kahramanmaraş earthquake building-damage dataset."""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

from ..paper import CITY_NAMES, CITY_SLUGS, MODALITIES, TABLE_II
from ..simulation.scenario import resolve_scenario
from ..simulation.scene import SIMULATOR_VERSION, read_scene
from ..simulation.scene_record import outdated_reason, scene_scenario
from .building_damage import REPORT_COLUMNS, BuildingDamage

__all__ = ["MODALITIES", "REPORT_COLUMNS", "TABLE_II", "KahramanmarasDamage"]


class KahramanmarasDamage(BuildingDamage):
    """Building-centred samples of the 2023 Kahramanmaraş earthquake, five cities.

    Reproduces the dataset of Russo et al. (2025, section II-C): for every selected
    building of Islahiye, Kahramanmaraş, Nurdağı, Osmaniye and Türkoğlu, a 32×32
    patch of the post-event SAR image centred on the building centroid, the
    building-footprint mask, the matching DSM patch, and the GEM exposure vector
    of the nearest GEM point; label 1 if the building is in the HOTOSM destroyed
    layer. All damaged buildings are kept and intact ones drawn 20:1 per city.

    This class states the paper's facts — the five city names
    (:data:`~torchgeo_quake.paper.CITY_SLUGS`), Table II
    (:data:`~torchgeo_quake.paper.TABLE_II`) and the simulated default — and
    leaves the work to :class:`BuildingDamage`, which reads any folder of areas
    the same way. The paper's CSK, CartoSat and detailed GEM data are licensed;
    with ``simulate=True`` (default) a physically motivated simulated scene in
    the same file formats is written to *root* on first use
    (:func:`~torchgeo_quake.simulation.simulate_scene`).

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
    city, what was read, skipped, matched and sampled.

    The sample cache (see :class:`BuildingDamage`) is also keyed by the
    simulator version, so a scene cached by another version is rebuilt.

    .. versionadded:: 0.1
    .. versionchanged:: 0.2
       A subclass of :class:`BuildingDamage`.
    .. versionchanged:: 0.3
       The *scenario*; the calibrated simulator is the default and scenes of
       an older simulator version are reported as outdated.
    """

    all_areas: ClassVar[tuple[str, ...] | None] = CITY_SLUGS

    #: City slugs, in the paper's order.
    all_cities: ClassVar[tuple[str, ...]] = CITY_SLUGS

    area_names: ClassVar[Mapping[str, str]] = CITY_NAMES

    #: Display names of the cities.
    city_names: ClassVar[Mapping[str, str]] = CITY_NAMES

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
        scenario: str | None = None,
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
            scenario: simulator scenario (``"calibrated"`` or ``"v0.1"``, see
                :mod:`~torchgeo_quake.simulation.scenario`) used to simulate an
                empty root and, with *simulate*, required of a simulated scene
                already in *root*. None (default) simulates the calibrated
                scenario and accepts a current scene of any scenario; a scene
                of an older simulator version is refused as outdated unless
                ``"v0.1"`` is asked (version-1 scenes are that scenario)

        Raises:
            ValueError: If a city or modality is unknown, required modalities
                are missing, *root* holds a simulated scene of another scale
                (with *simulate*), seed (with *scene_seed*) or scenario, is
                outdated (see *scenario*), or no city yields a sample.
            FileNotFoundError: If *root* lacks cities or files and *simulate* is
                False or *root* holds other data (the message lists what is
                missing and how to fix it).
        """
        self.simulate = simulate
        self.scale = scale
        self.scene_seed = scene_seed
        self.scenario = None if scenario is None else resolve_scenario(scenario).name
        #: Contents of ``root/scene.json`` (None for real data).
        self.scene: dict[str, Any] | None = None
        super().__init__(
            root=root,
            areas=cities,
            modalities=modalities,
            transforms=transforms,
            negatives_per_positive=negatives_per_positive,
            seed=seed,
            size=size,
            radiometry=radiometry,
            cache=cache,
            verbose=verbose,
            cache_dir=cache_dir,
        )

    def _select_areas(self, areas: Sequence[str] | None) -> tuple[str, ...]:
        """The cities to load (all five by default).

        Args:
            areas: the cities asked for, or None for all

        Returns:
            City slugs, in order.

        Raises:
            ValueError: If a city is unknown.
        """
        if areas is not None:
            unknown = sorted(set(areas) - set(CITY_SLUGS))
            if unknown:
                raise ValueError(
                    f"unknown cities {unknown}; choose among {list(CITY_SLUGS)}"
                )
        return super()._select_areas(areas)

    def _check_scene(self) -> None:
        """Compare a simulated scene in *root* with the requested one.

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
            "with torchgeo_quake.simulation.simulate_scene(root, "
            "scale=..., seed=..., overwrite=True) (`torchgeo-quake simulate ROOT "
            "--scale S --seed N --overwrite`)"
        )
        stored = scene_scenario(scene)
        outdated = outdated_reason(scene)
        if self.simulate and outdated is not None and self.scenario != "v0.1":
            # Only a v0.1 scene is still drawn identically by this simulator.
            same = stored is not None and stored.name == "v0.1"
            hint = " (or pass scenario='v0.1')" if same else ""
            raise ValueError(
                f"KahramanmarasDamage: {self.root} holds an outdated scene: "
                f"{outdated}{hint}."
            )
        if (
            self.simulate
            and self.scenario is not None
            and (stored is None or stored.name != self.scenario)
        ):
            name = "unknown" if stored is None else stored.name
            raise ValueError(
                f"KahramanmarasDamage: {self.root} holds a simulated scene of "
                f"scenario {name}, but scenario={self.scenario!r} was asked. Pass "
                f"scenario={name!r} (or leave it out) to use it, or {fix}."
            )
        if self.simulate and not math.isclose(stored_scale, float(self.scale)):
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

    def _prepare(self) -> None:
        """Simulate the requested cities when *root* lacks them and it may.

        Raises:
            ValueError: If a simulated scene in *root* does not match.
        """
        self.scene = read_scene(self.root)
        self._check_scene()
        if not self._missing():
            return
        simulated = self.scene is not None and self.scene.get("simulated") is True
        has_anything = self.root.exists() and any(self.root.iterdir())
        if not (self.simulate and (simulated or not has_anything)):
            return
        from ..simulation import simulate_scene

        if self.scene_seed is not None:
            seed = self.scene_seed
        elif simulated and self.scene is not None:
            seed = int(self.scene.get("seed", self.seed))
        else:
            seed = self.seed
        if self.verbose:
            print(
                f"Simulating {', '.join(self.areas)} (scale {self.scale:g}, "
                f"seed {seed}) in {self.root} ..."
            )
        scenario = self.scenario
        if scenario is None and simulated and self.scene is not None:
            stored = scene_scenario(self.scene)
            scenario = None if stored is None else stored.name
        simulate_scene(
            self.root,
            cities=self.areas,
            scale=self.scale,
            seed=seed,
            scenario=scenario,
        )
        self.scene = read_scene(self.root)

    def _missing_hint(self) -> str:
        """More ways to fix missing inputs, for the error message.

        Returns:
            Text appended to the message.
        """
        return (
            ", choose the available cities with `cities=`, pass an empty root "
            "with simulate=True to generate the simulated scene"
        )

    def _versions(self) -> dict[str, Any]:
        """Versions recorded in every cache state.

        Returns:
            Cache format, package and simulator versions.
        """
        return {**super()._versions(), "simulator": SIMULATOR_VERSION}
