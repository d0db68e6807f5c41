"""Writing of a damage map, tile by tile (private helpers).

After the prediction, with the rasters and the data layer released, the
footprints go out a tile at a time (a few thousand buildings) to the
GeoPackage and the GeoJSON, which are appended to, and to the overview's and
the interactive map's outlines (:func:`write_map`); the summary, the overview
image and the interactive map follow, and ``summary.json`` last, with the
timings (:func:`write_summary`). One progress bar (:class:`WriteProgress`)
counts the steps: a tile of footprints, the overview, the interactive map, the
QGIS layers (and the audit). The writers themselves are
:mod:`~torchgeo_quake.mapping.writers`, :mod:`~torchgeo_quake.mapping.html`,
:mod:`~torchgeo_quake.mapping.overview` and
:mod:`~torchgeo_quake.mapping.summary`.
"""

from __future__ import annotations

import datetime
import gc
import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import pandas as pd
from pyproj import CRS
from rasterio.warp import transform_bounds

from .. import __version__
from ..utils import atomic_write_text
from ._area import Footprints, Units
from ._crs import to_crs_xy
from ._html_notes import notes_html, overview_lines
from ._qgis import (
    DAMAGE_LAYER,
    UNITS_LAYER,
    damage_style,
    unit_polygons,
    units_style,
    write_layer_styles,
    write_units_layer,
)
from ._underlay import Underlay, sar_underlay
from .audit import (
    AUDIT_COLUMNS,
    ReferenceLabels,
    agreement,
    audit_kinds,
    audit_table,
    building_columns,
    write_audit,
)
from .html import HTMLMapWriter
from .overview import OSM_CREDIT, overview_mode
from .rings import RingCollector, Rings
from .summary import EXPOSURE_COLUMNS, summarise
from .writers import (
    GeoJSONWriter,
    GeoPackageWriter,
    WriteProgress,
    layer_geometry_type,
)

#: CRS of the interactive map's outlines.
WEB_MERCATOR = CRS.from_epsg(3857)

#: Columns of the map's features besides the id (:func:`_tile_frame`): the id
#: column of the footprints must not have one of these names.
OUTPUT_COLUMNS: tuple[str, ...] = (
    "feature",
    "status",
    "reason",
    "damage_probability",
    "damaged",
    "unit",
    *EXPOSURE_COLUMNS,
    *AUDIT_COLUMNS,
    "geometry",
)


def footprints_credit(id_field: str) -> str | None:
    """The credit the footprints' licence requires on the maps.

    Args:
        id_field: building id column (``osm_id``: an OpenStreetMap export)

    Returns:
        :data:`~torchgeo_quake.mapping.overview.OSM_CREDIT` for OpenStreetMap
        footprints (their licence, the ODbL, requires it), else None.
    """
    return OSM_CREDIT if id_field == "osm_id" else None


@dataclass(frozen=True)
class Results:
    """What the map says of every input feature."""

    #: Skip reason (None for scored features).
    reasons: npt.NDArray[np.object_]
    #: Damage probability (NaN where skipped).
    probs: npt.NDArray[np.float64]
    #: Predicted damaged (at or above :attr:`threshold`; False where skipped).
    damaged: npt.NDArray[np.bool_]
    #: The model's decision threshold.
    threshold: float
    #: Unit of every feature.
    units: Units
    #: :data:`~torchgeo_quake.mapping.summary.EXPOSURE_COLUMNS`, or None.
    exposure: dict[str, npt.NDArray[np.float64]] | None
    #: Exposure figures the exposure file cannot give: column -> why.
    exposure_missing: dict[str, str] = field(default_factory=dict)
    #: The reference's label of every feature (``--reference``), or None.
    reference: ReferenceLabels | None = None
    #: Probabilities under bootstrap replicates of a few-label recalibration,
    #: (replicates, features), or None.
    replicates: npt.NDArray[np.float32] | None = None

    def audit(self) -> npt.NDArray[np.object_] | None:
        """Where the map and the reference disagree.

        Returns:
            :func:`~torchgeo_quake.mapping.audit.audit_kinds` of every
            feature, or None without a reference.
        """
        if self.reference is None:
            return None
        return audit_kinds(self.probs, self.damaged, self.reference.labels)


def _reproject(
    geoms: npt.NDArray[np.object_], source: CRS, target: CRS
) -> npt.NDArray[np.object_]:
    """Reproject geometries (None stays None).

    Args:
        geoms: geometries in *source*
        source: their CRS
        target: CRS wanted

    Returns:
        The geometries in *target*.
    """
    if source == target:
        return geoms
    return np.asarray(
        gpd.GeoSeries(geoms, crs=source).to_crs(target).values, dtype=object
    )


def _id_values(frame: gpd.GeoDataFrame, id_field: str) -> Any:
    """The building ids as read, as nullable integers.

    Args:
        frame: the footprints
        id_field: building id column

    Returns:
        An ``Int64`` array (missing where not numeric).
    """
    ids = pd.to_numeric(frame[id_field], errors="coerce")
    id_values = pd.array(
        np.where(ids.notna(), ids.fillna(0), 0).astype(np.int64), dtype="Int64"
    )
    id_values[ids.isna().to_numpy()] = pd.NA
    return id_values


def _tile_frame(
    *,
    rows: npt.NDArray[np.int64],
    geoms: npt.NDArray[np.object_],
    crs: CRS,
    id_field: str,
    id_values: Any,
    results: Results,
) -> gpd.GeoDataFrame:
    """The output features of one tile.

    Args:
        rows: input rows of the tile
        geoms: their footprints, as read
        crs: CRS of the footprints
        id_field: building id column
        id_values: nullable ids of all rows
        results: what the map says of every row

    Returns:
        The tile, in the footprints' CRS.
    """
    probs, reasons, damaged = results.probs, results.reasons, results.damaged
    scored = np.isfinite(probs[rows])
    columns: dict[str, Any] = {
        "feature": rows.astype(np.int64),
        id_field: id_values[rows],
        "status": np.where(scored, "predicted", "skipped").astype(object),
        "reason": pd.array(reasons[rows], dtype="string"),
        "damage_probability": np.where(scored, np.round(probs[rows], 6), np.nan),
        "damaged": pd.array(
            np.where(scored, damaged[rows].astype(np.int64), 0), dtype="Int64"
        ),
        "unit": pd.array(results.units.labels[rows], dtype="string"),
    }
    columns["damaged"][~scored] = pd.NA
    if results.exposure is not None:
        for column in EXPOSURE_COLUMNS:
            columns[column] = np.round(results.exposure[column][rows], 3)
    if results.reference is not None:
        columns |= building_columns(results.reference, results.audit(), rows)
    assert set(columns) - {id_field} <= set(OUTPUT_COLUMNS), "OUTPUT_COLUMNS"
    return gpd.GeoDataFrame(columns, geometry=geoms, crs=crs)


def _write_tiles(
    staging: Path,
    footprints: Footprints,
    results: Results,
    *,
    id_field: str,
    id_values: Any,
    order: npt.NDArray[np.int64],
    tile_size: int,
    html_map: HTMLMapWriter,
    steps: WriteProgress,
) -> RingCollector:
    """Write the features tile by tile, then release the footprints.

    Args:
        staging: folder receiving the outputs
        footprints: the footprints (released once written)
        results: what the map says of every feature
        id_field: building id column
        id_values: nullable ids of all features
        order: order of the features in the outputs
        tile_size: features per tile
        html_map: the interactive map (receives the outlines)
        steps: the progress (one step per tile)

    Returns:
        The overview's outlines, in metres.
    """
    fp_crs, geoms = footprints.crs, footprints.geoms
    gpkg = GeoPackageWriter(
        staging / "damage.gpkg", fp_crs, geometry_type=layer_geometry_type(geoms)
    )
    overview_rings = RingCollector()
    with GeoJSONWriter(staging / "damage.geojson") as geojson:
        for first in range(0, len(footprints), tile_size):
            rows = order[first : first + tile_size]
            done = f"{first + len(rows)}/{len(footprints)}"
            with steps.step(f"damage.gpkg, damage.geojson: {done} buildings"):
                tile = _tile_frame(
                    rows=rows,
                    geoms=geoms[rows],
                    crs=fp_crs,
                    id_field=id_field,
                    id_values=id_values,
                    results=results,
                )
                gpkg.write(tile)
                geojson.write(tile)
                metric = _reproject(geoms[rows], fp_crs, footprints.metric)
                overview_rings.add(metric, rows)
                html_map.add(_reproject(geoms[rows], fp_crs, WEB_MERCATOR), rows)
    gpkg.close()
    del geoms, tile
    footprints.release()
    gc.collect()
    return overview_rings


def _summary(
    results: Results,
    *,
    name: str,
    about: dict[str, Any],
    prediction: dict[str, Any],
    files: Sequence[str],
) -> dict[str, Any]:
    """The content of ``summary.json``, but for the timings.

    Args:
        results: what the map says of every feature
        name: city name
        about: ``model``, ``inputs``, ``sar_grid`` and ``output_crs`` sections
        prediction: how the prediction ran
        files: names of the output files

    Returns:
        The summary.
    """
    units = results.units
    totals = summarise(
        np.isfinite(results.probs),
        results.damaged,
        results.reasons,
        units.labels,
        results.exposure,
        units.table,
        missing=results.exposure_missing,
        probs=results.probs,
        replicates=results.replicates,
    )
    reference = (
        {}
        if results.reference is None
        else {"reference": agreement(results.reference, results.probs, results.damaged)}
    )
    return {
        "generator": f"torchgeo_quake {__version__}",
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "city": name,
        "counts": totals["counts"],
        "exposure": totals["exposure"],
        "interval": totals.get("interval"),
        **reference,
        **about,
        "units": {**units.info, "table": totals["units"]},
        "prediction": prediction,
        "files": list(files),
    }


def write_map(
    staging: Path,
    footprints: Footprints,
    results: Results,
    *,
    name: str,
    id_field: str,
    order: npt.NDArray[np.int64],
    tile_size: int,
    basemap: str | None,
    basemap_attribution: str | None,
    about: dict[str, Any],
    prediction: dict[str, Any],
    files: Sequence[str],
    sar: Path | None = None,
    progress: bool = False,
    say: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Write the GeoPackage, the GeoJSON, the overview and the interactive map.

    A progress bar (*progress*) counts the tiles and the other outputs; *say*
    tells what is written, how the overview draws the buildings and how long
    it took.

    Args:
        staging: folder receiving the outputs
        footprints: the footprints (their geometries are released once written)
        results: what the map says of every feature
        name: city name in titles
        id_field: building id column
        order: order of the features in the outputs
        tile_size: features per tile
        basemap: XYZ tile URL template or None
        basemap_attribution: attribution of the basemap
        about: ``model``, ``inputs``, ``sar_grid`` and ``output_crs`` sections
            of the summary
        prediction: how the prediction ran (``prediction`` section)
        files: names of the output files
        sar: the SAR image, drawn downsampled under both maps, or None
        progress: show a progress bar
        say: function printing progress messages (None: silent)

    Returns:
        The summary (without ``timing``; not written yet).
    """
    from .overview import plot_overview, save_overview

    start = time.perf_counter()
    kinds = results.audit()
    tiles = math.ceil(len(footprints) / max(tile_size, 1))
    total = tiles + 4 + (kinds is not None)
    with WriteProgress(total, progress, say or (lambda _: None)) as steps:
        written = ", ".join(f for f in files if f != "summary.json")
        steps.say(f"writing {len(footprints)} buildings to {written}")
        id_values = _id_values(footprints.frame, id_field)
        if kinds is not None:
            with steps.step("audit.csv, audit.gpkg"):
                _write_audit(staging, footprints, results, kinds, id_values, id_field)
        html_map = HTMLMapWriter(staging / "map.html")
        try:
            overview_rings = _write_tiles(
                staging,
                footprints,
                results,
                id_field=id_field,
                id_values=id_values,
                order=order,
                tile_size=tile_size,
                html_map=html_map,
                steps=steps,
            )
            with steps.step("summary"):
                summary = _summary(
                    results, name=name, about=about, prediction=prediction, files=files
                )
            title, subtitle = _titles(name, summary["counts"])
            with steps.step("overview.png"):
                rings = overview_rings.rings()
                underlays = _underlays(sar, rings, footprints.metric)
                mode = overview_mode(rings)
                if mode == "cells":
                    steps.say(
                        "overview.png: buildings too small to draw one by one, "
                        "drawn as cells of expected damaged buildings"
                    )
                fig = plot_overview(
                    rings,
                    results.probs,
                    results.threshold,
                    title="\n".join([title, subtitle, *overview_lines(summary)]),
                    units="m",
                    credit=footprints_credit(id_field),
                    underlay=underlays[0],
                    mode=mode,
                )
                del overview_rings, rings
                save_overview(fig, staging / "overview.png")
                del fig
            with steps.step("map.html"):
                html_map.close(
                    results.probs,
                    id_values,
                    results.reasons,
                    results.threshold,
                    title=title,
                    subtitle=subtitle,
                    id_field=id_field,
                    basemap=basemap,
                    attribution=basemap_attribution,
                    audit=kinds,
                    notes=notes_html(summary),
                    credit=footprints_credit(id_field),
                    units=results.units.labels,
                    underlay=underlays[1],
                )
        finally:
            html_map.abort()
        with steps.step("damage.gpkg: units layer, QGIS styles"):
            _write_qgis_layers(staging / "damage.gpkg", summary, results, footprints)
    steps.say(f"wrote them in {time.perf_counter() - start:.1f} s")
    return summary


def _titles(name: str, counts: dict[str, Any]) -> tuple[str, str]:
    """Title and subtitle of both maps.

    Args:
        name: city name
        counts: ``counts`` section of the summary

    Returns:
        (title, subtitle with the counts).
    """
    share = counts["damaged_share"]
    subtitle = (
        f"{counts['predicted']} buildings scored, {counts['damaged']} predicted "
        "damaged"
        + (f" ({share:.1%})" if share is not None else "")
        + f"; {counts['skipped']} not scored"
    )
    return f"{name}: predicted building damage", subtitle


def _underlays(
    sar: Path | None, rings: Rings, metric: CRS
) -> tuple[Underlay | None, Underlay | None]:
    """The SAR image under the overview and under the interactive map.

    Args:
        sar: the SAR image, or None for none
        rings: the overview's outlines, in *metric*
        metric: CRS of the overview

    Returns:
        The underlay in *metric* and in Web Mercator (None without *sar*,
        outlines or overlap).
    """
    if sar is None or len(rings) == 0:
        return None, None
    xmin, ymin = rings.coords.min(axis=0)
    xmax, ymax = rings.coords.max(axis=0)
    pad = 0.02 * max(xmax - xmin, ymax - ymin, 1.0)
    bounds = (xmin - pad, ymin - pad, xmax + pad, ymax + pad)
    web = transform_bounds(metric, WEB_MERCATOR, *bounds)
    return sar_underlay(sar, metric, bounds), sar_underlay(sar, WEB_MERCATOR, web)


def _write_qgis_layers(
    path: Path, summary: dict[str, Any], results: Results, footprints: Footprints
) -> None:
    """Add the units layer and the QGIS styles to ``damage.gpkg``.

    Args:
        path: the GeoPackage, with its ``damage`` layer
        summary: the summary (its per-unit records)
        results: what the map says of every feature
        footprints: the footprints (their metric CRS: the grid cells')
    """
    if not path.exists():  # no feature, no layer
        return
    styles = {DAMAGE_LAYER: ("damage probability", damage_style(results.threshold))}
    polygons = unit_polygons(results.units, footprints.metric)
    if write_units_layer(path, summary["units"]["table"], polygons):
        styles[UNITS_LAYER] = ("share predicted damaged", units_style())
    write_layer_styles(path, styles)


def _write_audit(
    staging: Path,
    footprints: Footprints,
    results: Results,
    kinds: npt.NDArray[np.object_],
    id_values: Any,
    id_field: str,
) -> None:
    """Write ``audit.csv`` and ``audit.gpkg`` (before the geometries go).

    Args:
        staging: folder receiving the outputs
        footprints: the footprints, with their geometries
        results: what the map says of every feature, with a reference
        kinds: :func:`~torchgeo_quake.mapping.audit.audit_kinds`
        id_values: nullable ids of all features
        id_field: building id column
    """
    assert results.reference is not None
    lon, lat = to_crs_xy(
        footprints.cx, footprints.cy, footprints.work_crs, CRS.from_epsg(4326)
    )
    table = audit_table(
        kinds,
        results.probs,
        ids=id_values,
        grades=results.reference.grades,
        units=results.units.labels,
        lon=lon,
        lat=lat,
        id_field=id_field,
    )
    write_audit(staging, table, footprints.geoms, footprints.crs)


def write_summary(
    staging: Path, summary: dict[str, Any], *, n: int, times: Sequence[float]
) -> None:
    """Add the timings to the summary and write ``summary.json``.

    Args:
        staging: folder receiving the outputs
        summary: the summary (``timing`` is added)
        n: number of input features
        times: ``time.perf_counter`` at the start, the end of reading, the end
            of the prediction and the end of writing
    """
    start, read_end, predict_end, end = times
    seconds = end - start
    summary["timing"] = {
        "seconds": round(seconds, 2),
        "buildings_per_second": round(n / seconds, 1) if seconds > 0 else None,
        "read_seconds": round(read_end - start, 2),
        "predict_seconds": round(predict_end - read_end, 2),
        "write_seconds": round(end - predict_end, 2),
    }
    text = json.dumps(summary, ensure_ascii=False, indent=2)
    atomic_write_text(staging / "summary.json", text + "\n")
