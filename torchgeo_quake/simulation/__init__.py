"""Simulated five-city post-earthquake scene (the project's embedded default).

The paper's COSMO-SkyMed SAR, CartoSat DSM and detailed GEM exposure are
licensed, so this subpackage simulates the five cities of Russo et al. (2025) -
Islahiye, Kahramanmaraş, Nurdağı, Osmaniye and Türkoğlu, at their real locations
in UTM zone 37N - and writes them in the *real file formats* (GeoTIFF SAR
amplitude and DSM, HOTOSM footprints and destroyed-buildings layers, OpenQuake
GEM point assets), so simulated and real data share one code path.

Two models (scenarios, :mod:`.scenario`): ``"calibrated"`` (the default since
0.3: GEM's vulnerability functions at a ground-motion field of the real 2023
ruptures, building stock and SAR image formation calibrated to public evidence)
and ``"v0.1"`` (the model of versions 0.1 and 0.2, drawn identically).

Modules, one job each:

* :mod:`.scenario` - the scenarios and their two knobs (SAR damage contrast,
  vulnerability strength);
* :mod:`.cities` - city specifications (:data:`CITIES`), Table I/II numbers;
* :mod:`.stock` - the calibrated building stock (footprint sizes, density);
* :mod:`.fields` - Gaussian random fields;
* :mod:`.terrain` - terrain elevation and slope;
* :mod:`.gem_tables` - GEM's published province tables (:func:`load_exposure`),
  with the built-in summary of :mod:`.gem_fallback`;
* :mod:`.gem_neighbourhoods` - neighbourhood grid and building-stock mixes;
* :mod:`.gem` - GEM point assets, ``gem.csv``;
* :mod:`.layout` - street grid and blocks;
* :mod:`.footprints` - building footprints placed along the blocks;
* :mod:`.selection` - the city's buildings and the SAR image extent;
* :mod:`.ruptures` - surface traces of the two 2023 ruptures, distances;
* :mod:`.gmpe` - ground-motion model (Akkar et al. 2014), Vs30 from slope;
* :mod:`.stations` - AFAD strong-motion records, conditioning by kriging;
* :mod:`.shaking` - correlated ground-motion fields, ``pga.tif``;
* :mod:`.vulnerability` - GEM's vulnerability functions (NRML) and mapping;
* :mod:`.damage` - the v0.1 shaking field and damage draw, :class:`Damage`;
* :mod:`.damage_gem` - the calibrated damage draw from GEM's functions;
* :mod:`.collapse` - collapse signatures (debris, pancake, partial, cleared);
* :mod:`.city` - layout + damage of one city without rendering
  (:func:`simulate_layout`);
* :mod:`.landcover` - surface model (land cover, heights, debris);
* :mod:`.surface_plan` - whole-city steps of the surface model, computed once
  for strip-wise renders;
* :mod:`.sar_radiometry` - backscatter of every surface, speckle;
* :mod:`.sar_raycast` - SAR ray casting (layover, shadow, double bounce);
* :mod:`.sar_strips` - strip-wise image formation of the calibrated scenario;
* :mod:`.sar` - the SAR image of a city, ``sar.tif``, single buildings;
* :mod:`.dsm` - pre-event DSM, ``dsm.tif``;
* :mod:`.vectors` - ``buildings.gpkg``, ``destroyed.geojson``, ``truth.csv``;
* :mod:`.city_files` - one city simulated into its six files;
* :mod:`.scene_record` - ``scene.json``: parameters, hashes, re-run checks;
* :mod:`.scene` - :func:`simulate_scene`, re-run rules, atomic writes;
* :mod:`.reference_stats` - footprint statistics of real and simulated
  destroyed-building layers;
* :mod:`.diagnostics` - how strongly single SAR features rank damage;
* :mod:`.command` - :func:`simulate_cli` for ``torchgeo-quake simulate``.

The calibration table that measures a scene against public evidence needs the
data layer, so it lives above both, in :mod:`torchgeo_quake.realism`.

.. versionadded:: 0.1
"""

from .cities import CITIES, CITY_SLUGS, CitySpec, get_city, scaled_counts
from .city import CitySimulation, simulate_layout
from .command import simulate_cli
from .gem_tables import DEFAULT_GEM_DIR, ExposureTable, load_exposure
from .sar import SingleBuilding, render_single_building
from .scenario import DEFAULT_SCENARIO, SCENARIO_NAMES, Scenario, resolve_scenario
from .scene import simulate_scene
from .scene_record import CITY_FILES, SCENE_FILE

__all__ = [
    "CITIES",
    "CITY_FILES",
    "CITY_SLUGS",
    "DEFAULT_GEM_DIR",
    "DEFAULT_SCENARIO",
    "SCENARIO_NAMES",
    "SCENE_FILE",
    "CitySimulation",
    "CitySpec",
    "ExposureTable",
    "Scenario",
    "SingleBuilding",
    "get_city",
    "load_exposure",
    "render_single_building",
    "resolve_scenario",
    "scaled_counts",
    "simulate_cli",
    "simulate_layout",
    "simulate_scene",
]
