"""QGIS-ready layers of ``damage.gpkg``: the units layer and the styles (private).

``damage.gpkg`` holds the buildings (layer ``damage``), a polygon layer of the
units of the totals (layer ``units``: admin units or grid cells, with the
per-unit counts, occupants and cost of ``summary.json``) and the standard
``layer_styles`` table that QGIS reads when it opens a layer of a GeoPackage:
the buildings open coloured by damage probability with the buildings
predicted damaged outlined, as in ``overview.png`` and ``map.html``; the units
open coloured by their share of buildings predicted damaged.
"""

from __future__ import annotations

import datetime
import itertools
import sqlite3
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import geopandas as gpd
import matplotlib
import numpy as np
import pandas as pd
import pyogrio
import shapely
from pyproj import CRS

from ._area import Units
from .overview import COLORMAP, DAMAGED_EDGE, SKIPPED_COLOR

#: Name of the buildings' layer.
DAMAGE_LAYER = "damage"
#: Name of the units' layer.
UNITS_LAYER = "units"
#: Name of the QGIS style table (QGIS's own name and columns).
STYLE_TABLE = "layer_styles"
#: Columns of the unit table that the unit polygons replace.
_BOUNDS = ("xmin", "ymin", "xmax", "ymax")
#: Classes of the units' style: share of buildings predicted damaged.
_SHARE_BREAKS = (0.0, 0.05, 0.15, 0.3, 0.5, 1.0)


def _rgba(color: Any, alpha: float = 1.0) -> str:
    """A colour as QGIS writes it.

    Args:
        color: any matplotlib colour
        alpha: opacity from 0 to 1

    Returns:
        ``"r,g,b,a"`` with 0-255 integers.
    """
    r, g, b, _ = matplotlib.colors.to_rgba(color)
    return ",".join(str(round(255 * v)) for v in (r, g, b, alpha))


def _fill_symbol(
    parent: ET.Element, name: str, fill: str, edge: str | None, width: float
) -> None:
    """Append a simple fill symbol.

    Args:
        parent: the ``symbols`` element
        name: the symbol's key
        fill: ``r,g,b,a`` of the fill
        edge: ``r,g,b,a`` of the outline, or None for no outline
        width: outline width in millimetres
    """
    symbol = ET.SubElement(
        parent,
        "symbol",
        {
            "name": name,
            "type": "fill",
            "alpha": "1",
            "clip_to_extent": "1",
            "force_rhr": "0",
        },
    )
    layer = ET.SubElement(
        symbol,
        "layer",
        {"class": "SimpleFill", "enabled": "1", "locked": "0", "pass": "0"},
    )
    props = {
        "color": fill,
        "outline_color": edge or "0,0,0,0",
        "outline_style": "solid" if edge else "no",
        "outline_width": f"{width:g}",
        "outline_width_unit": "MM",
        "style": "solid",
        "joinstyle": "miter",
    }
    # Both the map of options (QGIS 3.18 on) and the older properties.
    options = ET.SubElement(layer, "Option", {"type": "Map"})
    for key, value in props.items():
        ET.SubElement(
            options, "Option", {"name": key, "type": "QString", "value": value}
        )
    for key, value in props.items():
        ET.SubElement(layer, "prop", {"k": key, "v": value})


def _qml(renderer: ET.Element) -> str:
    """A QML document around a renderer.

    Args:
        renderer: the ``renderer-v2`` element

    Returns:
        The QML text.
    """
    root = ET.Element("qgis", {"version": "3.28.0", "styleCategories": "Symbology"})
    root.append(renderer)
    body = ET.tostring(root, encoding="unicode")
    return "<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>\n" + body


def damage_classes(threshold: float) -> list[tuple[str, str, float]]:
    """The classes of the buildings' style.

    Two classes below the threshold (predicted intact) and two at or above it
    (predicted damaged, which the ``damaged`` field says exactly), and the
    buildings not scored.

    Args:
        threshold: the model's decision threshold

    Returns:
        ``(label, QGIS filter expression, probability for the colour)`` per
        class; the colour of the class not scored is NaN.
    """
    low, high = threshold / 2, (1 + threshold) / 2
    p = '"damage_probability"'
    return [
        ("not scored", "\"status\" = 'skipped'", float("nan")),
        (f"intact, p < {low:.2f}", f'"damaged" = 0 AND {p} < {low!r}', low / 2),
        (
            f"intact, {low:.2f} \u2264 p < {threshold:.3f}",
            f'"damaged" = 0 AND {p} >= {low!r}',
            (low + threshold) / 2,
        ),
        (
            f"damaged (outlined), {threshold:.3f} \u2264 p < {high:.2f}",
            f'"damaged" = 1 AND {p} < {high!r}',
            (threshold + high) / 2,
        ),
        (
            f"damaged (outlined), p \u2265 {high:.2f}",
            f'"damaged" = 1 AND {p} >= {high!r}',
            (high + 1) / 2,
        ),
    ]


def damage_style(threshold: float) -> str:
    """QML of the buildings: fill by damage probability, damaged outlined.

    A rule-based renderer: each rule's fill is the colour of
    :data:`~torchgeo_quake.mapping.overview.COLORMAP` in the middle of its
    probability class, the classes at or above the threshold (``damaged`` 1)
    are outlined in :data:`~torchgeo_quake.mapping.overview.DAMAGED_EDGE`, and
    the buildings not scored are grey, as in ``overview.png``.

    Args:
        threshold: the model's decision threshold

    Returns:
        The QML text.
    """
    cmap = matplotlib.colormaps[COLORMAP]
    renderer = ET.Element(
        "renderer-v2",
        {
            "type": "RuleRenderer",
            "symbollevels": "0",
            "enableorderby": "0",
            "forceraster": "0",
        },
    )
    rules = ET.SubElement(renderer, "rules", {"key": "root"})
    symbols = ET.SubElement(renderer, "symbols")
    for i, (label, expression, middle) in enumerate(damage_classes(threshold)):
        ET.SubElement(
            rules,
            "rule",
            {
                "key": f"class{i}",
                "label": label,
                "filter": expression,
                "symbol": str(i),
            },
        )
        damaged = '"damaged" = 1' in expression
        fill = SKIPPED_COLOR if np.isnan(middle) else cmap(middle)
        edge = _rgba(DAMAGED_EDGE) if damaged else None
        _fill_symbol(symbols, str(i), _rgba(fill), edge, 0.4)
    return _qml(renderer)


def units_style() -> str:
    """QML of the units: graduated by their share of buildings predicted damaged.

    Returns:
        The QML text (a graduated renderer on ``damaged_share``, half
        transparent so the buildings show through).
    """
    cmap = matplotlib.colormaps[COLORMAP]
    renderer = ET.Element(
        "renderer-v2",
        {
            "type": "graduatedSymbol",
            "attr": "damaged_share",
            "graduatedMethod": "GraduatedColor",
            "symbollevels": "0",
            "enableorderby": "0",
            "forceraster": "0",
        },
    )
    ranges = ET.SubElement(renderer, "ranges")
    symbols = ET.SubElement(renderer, "symbols")
    for i, (low, high) in enumerate(itertools.pairwise(_SHARE_BREAKS)):
        ET.SubElement(
            ranges,
            "range",
            {
                "lower": f"{low:.6f}",
                "upper": f"{high:.6f}",
                "symbol": str(i),
                "label": f"{low:.0%} - {high:.0%} predicted damaged",
                "render": "true",
            },
        )
        fill = _rgba(cmap((low + high) / 2), alpha=0.5)
        _fill_symbol(symbols, str(i), fill, _rgba("#333333"), 0.3)
    return _qml(renderer)


def unit_polygons(units: Units, crs: CRS) -> gpd.GeoSeries:
    """The polygon of every unit, keyed by its label.

    Args:
        units: the units of the map (grid cells with their bounds, or admin
            units with their file and field)
        crs: CRS of the grid cells' bounds (the map's metric CRS)

    Returns:
        One polygon per unit label: the grid cell, or the admin unit
        (dissolved by name, in the admin file's CRS).
    """
    if units.table is not None and set(_BOUNDS) <= set(units.table.columns):
        table = units.table
        boxes = shapely.box(*(table[c].to_numpy(np.float64) for c in _BOUNDS))
        return gpd.GeoSeries(boxes, index=table["unit"].to_numpy(), crs=crs)
    from ._inputs import read_vector_file

    field = str(units.info["field"])
    frame = read_vector_file(Path(units.info["file"]), "admin units", "--units")
    frame = frame[frame.geometry.notna()]
    named = gpd.GeoDataFrame(
        {"_unit": frame[field].astype(str).to_numpy()},
        geometry=shapely.make_valid(np.asarray(frame.geometry.values, dtype=object)),
        crs=frame.crs,
    )
    dissolved = named.dissolve(by="_unit")
    return gpd.GeoSeries(
        dissolved.geometry.values, index=dissolved.index.to_numpy(), crs=frame.crs
    )


def write_units_layer(
    path: Path, records: Sequence[Mapping[str, Any]], polygons: gpd.GeoSeries
) -> bool:
    """Add the units with their totals to a GeoPackage.

    Args:
        path: the GeoPackage
        records: ``summary.json``'s per-unit records (``units.table``)
        polygons: :func:`unit_polygons`; units without one (``"(none)"``:
            buildings outside every admin unit) get no geometry

    Returns:
        Whether a layer was written (not without any unit).
    """
    if not records:
        return False
    table = pd.DataFrame.from_records(list(records))
    table = table.drop(columns=[c for c in _BOUNDS if c in table.columns])
    geoms = polygons.reindex(table["unit"].to_numpy())
    layer = gpd.GeoDataFrame(table, geometry=geoms.to_numpy(), crs=polygons.crs)
    pyogrio.write_dataframe(
        layer,
        path,
        layer=UNITS_LAYER,
        driver="GPKG",
        geometry_type="Unknown",
        promote_to_multi=False,
    )
    return True


def _geometry_column(path: Path, table: str) -> str:
    """The geometry column of a layer of a GeoPackage.

    Args:
        path: the GeoPackage
        table: the layer

    Returns:
        The column's name.
    """
    with sqlite3.connect(path) as connection:
        row = connection.execute(
            "SELECT column_name FROM gpkg_geometry_columns WHERE table_name = ?",
            (table,),
        ).fetchone()
    connection.close()
    return "geom" if row is None else str(row[0])


def write_layer_styles(path: Path, styles: Mapping[str, tuple[str, str]]) -> None:
    """Write QGIS's ``layer_styles`` table, one default style per layer.

    Args:
        path: the GeoPackage
        styles: layer -> (style name, QML)
    """
    now = pd.Timestamp(datetime.datetime.now(datetime.UTC)).tz_localize(None)
    rows = [
        {
            "f_table_catalog": "",
            "f_table_schema": "",
            "f_table_name": layer,
            "f_geometry_column": _geometry_column(path, layer),
            "styleName": name,
            "styleQML": qml,
            "styleSLD": "",
            "useAsDefault": True,
            "description": f"{name} (torchgeo_quake)",
            "owner": "",
            "ui": "",
            "update_time": now,
        }
        for layer, (name, qml) in styles.items()
    ]
    pyogrio.write_dataframe(
        pd.DataFrame(rows),
        path,
        layer=STYLE_TABLE,
        driver="GPKG",
        layer_options={"FID": "id"},
    )
