"""Simulate one city and write its files: the per-city step of a scene.

:func:`simulate_city_files` runs the whole chain for one city - layout and
damage (:mod:`~torchgeo_quake.simulation.city`), surface fields, ``sar.tif``
(:mod:`~torchgeo_quake.simulation.sar`), ``dsm.tif``
(:mod:`~torchgeo_quake.simulation.dsm`), ``buildings.gpkg``,
``destroyed.geojson`` and ``truth.csv``
(:mod:`~torchgeo_quake.simulation.vectors`) and ``gem.csv``
(:mod:`~torchgeo_quake.simulation.gem`) - into a folder, and returns the
city's summary for ``scene.json`` with the SHA-256 of every file.

:func:`simulate_city_files` was defined in
:mod:`~torchgeo_quake.simulation.scene` before, which still re-exports it.

.. versionadded:: 0.2
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from .. import __version__
from .cities import CitySpec
from .city import CitySimulation, city_rng, simulate_layout
from .dsm import DSM_RES, render_dsm, write_dsm
from .gem import gem_assets
from .gem_tables import ExposureTable
from .landcover import make_fields
from .sar import SAR_RES, render_sar, write_sar
from .scenario import Scenario
from .scene_record import _CRS, CITY_FILES, SIMULATOR_VERSION, file_sha256
from .vectors import (
    destroyed_features,
    footprints_frame,
    write_buildings,
    write_destroyed,
    write_truth,
)

__all__ = ["simulate_city_files"]


def _bounds_utm(
    bounds: tuple[float, float, float, float], origin: tuple[float, float]
) -> list[float]:
    """Local bounds shifted to UTM 37N.

    Args:
        bounds: (left, bottom, right, top) in local metres
        origin: UTM coordinates of the local origin

    Returns:
        [left, bottom, right, top] in UTM metres.
    """
    left, bottom, right, top = bounds
    ox, oy = origin
    return [left + ox, bottom + oy, right + ox, top + oy]


def _city_summary(
    sim: CitySimulation,
    sar_shape: tuple[int, int],
    nodata_fraction: float,
    dsm_shape: tuple[int, int],
    dsm_bounds: tuple[float, float, float, float],
    gem_rows: int,
    gem_points: int,
) -> dict[str, Any]:
    """Summary of one simulated city for ``scene.json``.

    Args:
        sim: the city
        sar_shape: (rows, cols) of the SAR image
        nodata_fraction: share of nodata pixels in the SAR image
        dsm_shape: (rows, cols) of the DSM
        dsm_bounds: DSM bounds in local metres
        gem_rows: number of GEM asset rows
        gem_points: number of GEM locations

    Returns:
        JSON-serialisable summary.
    """
    city = sim.city
    dmg = sim.damage
    intact, damaged = sim.reference_counts()
    counted = sim.counted
    return {
        "name": city.name,
        "province": f"{city.province_id} {city.province_name}",
        "buildings": len(sim.buildings),
        "buildings_in_sar": int(counted.sum()),
        "buildings_outside_sar": int((~counted).sum()),
        "intact_reference": intact,
        "damaged_reference": damaged,
        "collapsed_true": int((dmg.grade[counted] == 2).sum()),
        "partial_true": int((dmg.grade[counted] == 1).sum()),
        "false_negatives": int(((dmg.grade == 2) & ~dmg.in_reference).sum()),
        "sar": {
            "width": sar_shape[1],
            "height": sar_shape[0],
            "res": SAR_RES,
            "crs": _CRS,
            "bounds": _bounds_utm(sim.selection.bounds, sim.origin),
            "nodata_fraction": round(nodata_fraction, 4),
            "incidence_angle": city.incidence_deg,
            "orbit_direction": city.orbit,
            "sensor_side": city.sensor_side,
            "acquisition_date": city.acquisition_date,
            "looks": city.looks,
        },
        "dsm": {
            "width": dsm_shape[1],
            "height": dsm_shape[0],
            "res": DSM_RES,
            "crs": _CRS,
            "bounds": _bounds_utm(dsm_bounds, sim.origin),
        },
        "gem": {"assets": gem_rows, "locations": gem_points},
        "files": list(CITY_FILES),
    }


def simulate_city_files(
    city: CitySpec,
    exposure: ExposureTable,
    folder: str | os.PathLike[str],
    scale: float = 1.0,
    seed: int = 0,
    buildings: int | None = None,
    scenario: Scenario | str | None = None,
) -> dict[str, Any]:
    """Simulate one city and write its files into *folder* (which must exist).

    Args:
        city: the city
        exposure: GEM exposure
        folder: output folder
        scale: factor in (0, 1] applied to the Table II counts
        seed: scene seed
        buildings: if given, buildings inside the valid SAR area instead of the
            scaled Table II counts (see
            :func:`~torchgeo_quake.simulation.city.simulate_layout`)
        scenario: the damage and image model (None: the calibrated default)

    Returns:
        The city's summary (as stored in ``scene.json``), with the SHA-256 of
        every file written under ``sha256``.

    .. versionadded:: 0.1
    """
    out = Path(folder)
    sim = simulate_layout(
        city, exposure, scale, seed, n_buildings=buildings, scenario=scenario
    )
    scale = sim.scale  # the effective scale of a building count override
    fields = make_fields(sim, city_rng(seed, city, scale, "fields"))
    provenance = {
        "GENERATOR": f"torchgeo_quake {__version__} simulator v{SIMULATOR_VERSION}",
        "SEED": str(seed),
        "SCALE": f"{scale:g}",
        "SCENARIO": sim.scenario.label(),
    }
    image = render_sar(sim, fields)
    write_sar(out / "sar.tif", image, sim.origin, provenance)
    sar_shape = image.amplitude.shape
    nodata_fraction = float(1.0 - image.valid.mean())
    del image
    dsm = render_dsm(sim, fields)
    write_dsm(out / "dsm.tif", dsm, sim.origin, {"CITY": city.name, **provenance})
    dsm_shape, dsm_bounds = dsm.height.shape, dsm.grid.bounds
    del dsm
    frame = footprints_frame(sim)
    write_buildings(out / "buildings.gpkg", frame)
    write_destroyed(out / "destroyed.geojson", destroyed_features(sim, frame))
    assets = gem_assets(
        sim.neighbourhoods,
        city,
        sim.buildings.x,
        sim.buildings.y,
        sim.origin,
        city_rng(seed, city, scale, "gem"),
    )
    assets.to_csv(out / "gem.csv", index=False)
    write_truth(out / "truth.csv", sim)
    written = list(CITY_FILES)
    if sim.ground_motion is not None:
        sim.ground_motion.write_geotiff(out / "pga.tif", sim.origin, _CRS)
        written.append("pga.tif")
    points = int(assets[["lon", "lat"]].drop_duplicates().shape[0])
    summary = _city_summary(
        sim,
        (int(sar_shape[0]), int(sar_shape[1])),
        nodata_fraction,
        (int(dsm_shape[0]), int(dsm_shape[1])),
        dsm_bounds,
        len(assets),
        points,
    )
    summary["files"] = written
    if sim.ground_motion is not None:
        pga = sim.damage.pga_g[sim.counted]
        summary["shaking"] = {
            "gmpe": sim.ground_motion.gmpe,
            "events": list(sim.ground_motion.events),
            "pga_g_median": round(float(np.median(pga)), 4),
            "pga_g_p10_p90": [round(float(v), 4) for v in np.quantile(pga, [0.1, 0.9])],
        }
    summary["sha256"] = {name: file_sha256(out / name) for name in written}
    return summary
