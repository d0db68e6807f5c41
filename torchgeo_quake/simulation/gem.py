"""GEM exposure for the simulator: from GEM's tables to point-asset CSVs.

The paper enriches every building with the attributes of the nearest point of
GEM's licensed high-resolution exposure model of Turkey (point assets on a
neighbourhood grid). The public GEM Global Exposure Model has the same taxonomy
strings, costs and occupants, aggregated per province (Adm1) without
coordinates. The simulator

1. reads each study province's rows (TR-46 Kahramanmaraş for Kahramanmaraş and
   Türkoğlu, TR-27 Gaziantep for Islahiye and Nurdağı, TR-80 Osmaniye) from
   ``Exposure_{Res,Com,Ind}_Turkey_Adm1.csv`` at simulation time, keeping the
   taxonomies whose material and height are known, with per-building floor
   area, replacement costs and occupants
   (:mod:`~torchgeo_quake.simulation.gem_tables`; without the files, the
   built-in summary of :mod:`~torchgeo_quake.simulation.gem_fallback`);
2. re-weights the province mix with the city's character (:class:`CitySpec`
   material / storey / occupancy multipliers: Nurdağı masonry, Kahramanmaraş
   mid-rise RC, Türkoğlu unreinforced brick, ...);
3. lays a neighbourhood grid (250-500 m cells) over the city and tilts each
   cell's mix with a spatially correlated "modernity" value (newer code levels,
   RC and taller buildings where it is high; Osmaniye's old and new districts
   are sharply separated), which also shifts the cell's construction periods;
4. draws each building's hidden taxonomy and period from its cell's mix
   (steps 2-4: :mod:`~torchgeo_quake.simulation.gem_neighbourhoods`), and
5. writes the cells as OpenQuake point assets (``gem.csv``; schema in
   ``docs/dev/contracts.md``): one row per taxonomy with its expected number of
   buildings, area, costs, occupants and modal construction period
   (:func:`gem_assets`, this module).

The names of steps 1-4 are re-exported here, where they were defined before.
GEM data: CC BY-NC-SA 4.0, © GEM Foundation.

.. versionadded:: 0.1
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pandas as pd
from pyproj import Transformer

from .cities import CitySpec

# "X as X": names defined here before, re-exported (documented where defined).
from .gem_neighbourhoods import MIN_CELL_SHARE as MIN_CELL_SHARE
from .gem_neighbourhoods import PERIODS as PERIODS
from .gem_neighbourhoods import NeighbourhoodGrid as NeighbourhoodGrid
from .gem_neighbourhoods import build_neighbourhoods as build_neighbourhoods
from .gem_neighbourhoods import city_mix as city_mix
from .gem_tables import DEFAULT_GEM_DIR as DEFAULT_GEM_DIR
from .gem_tables import GEM_FILES as GEM_FILES
from .gem_tables import PROVINCES as PROVINCES
from .gem_tables import ExposureTable as ExposureTable
from .gem_tables import load_exposure as load_exposure
from .gem_tables import parse_taxonomies as parse_taxonomies
from .gem_tables import summarise_exposure as summarise_exposure

__all__ = ["GEM_COLUMNS", "MIN_ASSET_SHARE", "gem_assets"]

FloatArray = npt.NDArray[np.float64]

#: Columns of the point-asset CSV (OpenQuake exposure form).
GEM_COLUMNS: tuple[str, ...] = (
    "id",
    "lon",
    "lat",
    "taxonomy",
    "number",
    "area",
    "structural",
    "nonstructural",
    "contents",
    "day",
    "night",
    "transit",
    "period",
    "ID_1",
    "NAME_1",
)

#: Smallest share a taxonomy needs to be written as a GEM asset row.
MIN_ASSET_SHARE = 0.01


def gem_assets(
    grid: NeighbourhoodGrid,
    city: CitySpec,
    building_x: FloatArray,
    building_y: FloatArray,
    origin: tuple[float, float],
    rng: np.random.Generator,
) -> pd.DataFrame:
    """GEM point assets of the cells that hold buildings.

    Every cell with at least one building gets one row per taxonomy whose share
    of the cell mix is at least :data:`MIN_ASSET_SHARE`, with ``number`` = share x
    number of buildings in the cell (GEM's expected counts, not the realised
    ones), area, costs and occupants from the province's per-building values
    times a cell-level cost factor (log-normal, 15 %), and the modal
    construction period of the taxonomy's code level in that cell.

    Args:
        grid: the neighbourhood grid
        city: the city
        building_x: local x of all building centroids (metres)
        building_y: local y of all building centroids (metres)
        origin: UTM 37N coordinates of the local origin (city centre)
        rng: random generator

    Returns:
        Frame with the columns :data:`GEM_COLUMNS`.

    .. versionadded:: 0.1
    """
    cells = grid.cell_of(building_x, building_y)
    occupied, counts = np.unique(cells, return_counts=True)
    cx, cy = grid.cell_centre(occupied)
    to_wgs84 = Transformer.from_crs("EPSG:32637", "EPSG:4326", always_xy=True)
    lon, lat = to_wgs84.transform(cx + origin[0], cy + origin[1])
    cost_factor = rng.lognormal(0.0, 0.15, size=occupied.size)
    stock = grid.stock
    records: list[dict[str, object]] = []
    for k, (c, count) in enumerate(zip(occupied, counts, strict=True)):
        shares = grid.mix[c]
        keep = np.flatnonzero(shares >= MIN_ASSET_SHARE)
        kept = shares[keep] / shares[keep].sum()
        for j, (t, share) in enumerate(zip(keep, kept, strict=True)):
            row = stock.iloc[int(t)]
            number = float(share * count)
            period = PERIODS[int(np.argmax(grid.period_probabilities(row["code"], c)))]
            records.append(
                {
                    "id": f"{city.slug}_{int(c):05d}_{j:03d}",
                    "lon": round(float(lon[k]), 6),
                    "lat": round(float(lat[k]), 6),
                    "taxonomy": row["taxonomy"],
                    "number": round(number, 4),
                    "area": round(number * float(row["area"]), 1),
                    "structural": round(
                        number * float(row["structural"]) * cost_factor[k]
                    ),
                    "nonstructural": round(
                        number * float(row["nonstructural"]) * cost_factor[k]
                    ),
                    "contents": round(number * float(row["contents"]) * cost_factor[k]),
                    "day": round(number * float(row["day"]), 3),
                    "night": round(number * float(row["night"]), 3),
                    "transit": round(number * float(row["transit"]), 3),
                    "period": period,
                    "ID_1": city.province_id,
                    "NAME_1": city.province_name,
                }
            )
    return pd.DataFrame.from_records(records, columns=list(GEM_COLUMNS))
