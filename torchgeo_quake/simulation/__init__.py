"""Simulated five-city post-earthquake scene (the project's embedded default).

The paper's COSMO-SkyMed SAR, CartoSat DSM and detailed GEM exposure are
licensed, so this subpackage simulates the five cities of Russo et al. (2025) -
Islahiye, Kahramanmaraş, Nurdağı, Osmaniye and Türkoğlu, at their real locations
in UTM zone 37N - and writes them in the *real file formats* (GeoTIFF SAR
amplitude and DSM, HOTOSM footprints and destroyed-buildings layers, OpenQuake
GEM point assets), so simulated and real data share one code path.

Modules, one job each:

* :mod:`.cities` - city specifications (:data:`CITIES`), Table I/II numbers;
* :mod:`.fields` - Gaussian random fields;
* :mod:`.terrain` - terrain elevation and slope;
* :mod:`.gem_tables` - GEM's published province tables (:func:`load_exposure`),
  with the built-in summary of :mod:`.gem_fallback`;
* :mod:`.gem_neighbourhoods` - neighbourhood grid and building-stock mixes;
* :mod:`.gem` - GEM point assets, ``gem.csv``;
* :mod:`.layout` - street grid and blocks;
* :mod:`.footprints` - building footprints placed along the blocks;
* :mod:`.selection` - the city's buildings and the SAR image extent;
* :mod:`.damage` - shaking field, vulnerability, exact-count damage draw;
* :mod:`.city` - layout + damage of one city without rendering
  (:func:`simulate_layout`);
* :mod:`.landcover` - surface model (land cover, heights, debris);
* :mod:`.sar_radiometry` - backscatter of every surface, speckle;
* :mod:`.sar_raycast` - SAR ray casting (layover, shadow, double bounce);
* :mod:`.sar` - the SAR image of a city, ``sar.tif``, single buildings;
* :mod:`.dsm` - pre-event DSM, ``dsm.tif``;
* :mod:`.vectors` - ``buildings.gpkg``, ``destroyed.geojson``, ``truth.csv``;
* :mod:`.city_files` - one city simulated into its six files;
* :mod:`.scene_record` - ``scene.json``: parameters, hashes, re-run checks;
* :mod:`.scene` - :func:`simulate_scene`, re-run rules, atomic writes;
* :mod:`.command` - :func:`simulate_cli` for ``torchgeo-quake simulate``.

.. versionadded:: 0.1
"""

from .cities import CITIES, CITY_SLUGS, CitySpec, get_city, scaled_counts
from .city import CitySimulation, simulate_layout
from .command import simulate_cli
from .gem_tables import DEFAULT_GEM_DIR, ExposureTable, load_exposure
from .sar import SingleBuilding, render_single_building
from .scene import simulate_scene
from .scene_record import CITY_FILES, SCENE_FILE

__all__ = [
    "CITIES",
    "CITY_FILES",
    "CITY_SLUGS",
    "DEFAULT_GEM_DIR",
    "SCENE_FILE",
    "CitySimulation",
    "CitySpec",
    "ExposureTable",
    "SingleBuilding",
    "get_city",
    "load_exposure",
    "render_single_building",
    "scaled_counts",
    "simulate_cli",
    "simulate_layout",
    "simulate_scene",
]
