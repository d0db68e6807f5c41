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
* :mod:`.gem` - GEM exposure: province tables, neighbourhood mixes, ``gem.csv``;
* :mod:`.layout` - street grid, blocks, footprints, image extent;
* :mod:`.damage` - shaking field, vulnerability, exact-count damage draw;
* :mod:`.city` - layout + damage of one city without rendering
  (:func:`simulate_layout`);
* :mod:`.landcover` - surface model (land cover, heights, debris);
* :mod:`.sar` - SAR ray casting, speckle, ``sar.tif``;
* :mod:`.dsm` - pre-event DSM, ``dsm.tif``;
* :mod:`.vectors` - ``buildings.gpkg``, ``destroyed.geojson``, ``truth.csv``;
* :mod:`.scene` - :func:`simulate_scene`, re-run rules, atomic writes;
* :mod:`.command` - :func:`simulate_cli` for ``torchgeo-quake simulate``.

.. versionadded:: 0.1
"""

from .cities import CITIES, CITY_SLUGS, CitySpec, get_city, scaled_counts
from .city import CitySimulation, simulate_layout
from .command import simulate_cli
from .gem import DEFAULT_GEM_DIR, ExposureTable, load_exposure
from .sar import SingleBuilding, render_single_building
from .scene import CITY_FILES, SCENE_FILE, simulate_scene

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
