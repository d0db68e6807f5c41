"""What the map outputs tell a reader: credits, legends, grid references."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
import pandas as pd
import pytest
import rasterio
import shapely
from matplotlib.collections import PolyCollection
from PIL import Image
from pyproj import CRS
from rasterio.warp import transform_bounds

from torchgeo_quake.mapping import RingCollector, grid_cells, plot_overview
from torchgeo_quake.mapping._qgis import damage_classes
from torchgeo_quake.mapping._underlay import png_data_uri, sar_underlay
from torchgeo_quake.mapping._writing import footprints_credit
from torchgeo_quake.mapping.html import HTMLMapWriter, write_html_map
from torchgeo_quake.mapping.overview import DAMAGED_EDGE, OSM_CREDIT
from torchgeo_quake.mapping.summary import grid_reference


def _rings() -> Any:
    squares = [shapely.box(x, 0, x + 10, 10) for x in (0.0, 20.0, 40.0)]
    collector = RingCollector()
    collector.add(np.array(squares, dtype=object), np.arange(3))
    return collector.rings()


def _data(page: str) -> dict[str, Any]:
    text = page.split("var DATA = ", 1)[1].split(";</script>", 1)[0]
    data: dict[str, Any] = json.loads(text)
    return data


def test_osm_footprints_are_credited() -> None:
    assert footprints_credit("osm_id") == OSM_CREDIT
    assert "© OpenStreetMap contributors" in OSM_CREDIT and "ODbL" in OSM_CREDIT
    assert footprints_credit("building_id") is None


def test_overview_legend_and_credit_match_the_drawing() -> None:
    probs = np.array([0.1, 0.7, np.nan])
    fig = plot_overview(_rings(), probs, threshold=0.5, credit=OSM_CREDIT)
    assert OSM_CREDIT in [t.get_text() for t in fig.texts]
    (collection,) = [
        c for c in fig.axes[0].collections if isinstance(c, PolyCollection)
    ]
    edges = collection.get_edgecolors()
    edge = matplotlib.colors.to_rgba(DAMAGED_EDGE)
    np.testing.assert_allclose(edges[1], edge)  # the one predicted damaged
    assert edges[0][3] == 0 and edges[2][3] == 0
    # Its legend entry is that outline, not a solid swatch.
    legend = fig.axes[0].get_legend()
    (damaged,) = [
        h
        for h, t in zip(legend.legend_handles, legend.get_texts(), strict=True)
        if "predicted damaged" in t.get_text()
    ]
    assert damaged.get_facecolor()[3] == 0
    np.testing.assert_allclose(damaged.get_edgecolor(), edge)
    # Without a credit, none is printed.
    bare = plot_overview(_rings(), probs, threshold=0.5)
    assert not any("OpenStreetMap" in t.get_text() for t in bare.texts)


def test_html_legend_and_credit_match_the_drawing(tmp_path: Path) -> None:
    args = (np.array([0.1, 0.7, np.nan]), [1, 2, 3], [None, None, "x"], 0.5)
    writer = HTMLMapWriter(tmp_path / "a.html")
    writer.add_rings(_rings())
    writer.close(*args, title="t", credit=OSM_CREDIT, units=["B2", "A1", None])
    page = (tmp_path / "a.html").read_text(encoding="utf-8")
    corner = page.split('<div id="attr" class="box">', 1)[1].split("</div>", 1)[0]
    assert "© OpenStreetMap contributors (ODbL)" in corner
    # The script outlines in the colour the legend shows.
    assert _data(page)["damaged_edge"] == DAMAGED_EDGE
    assert "strokeStyle = D.damaged_edge" in page
    assert f'class="sw" style="border:2px solid {DAMAGED_EDGE}"' in page
    # The tooltips name each building's unit, as summary.json does.
    assert _data(page)["units"] == ["A1", "B2"]
    assert _data(page)["un"] == [1, 0, -1]
    write_html_map(tmp_path / "b.html", _rings(), *args, title="t")
    page = (tmp_path / "b.html").read_text(encoding="utf-8")
    assert "OpenStreetMap" not in page


def test_grid_references() -> None:
    assert grid_reference(0, 0) == "A1"
    assert grid_reference(2, 3) == "C4"
    assert grid_reference(25, 9) == "Z10"
    assert grid_reference(26, 0) == "AA1"
    assert grid_reference(27, 0) == "AB1"
    with pytest.raises(ValueError, match="must be >= 0"):
        grid_reference(-1, 0)
    # Columns west to east, rows north to south, from the north-west cell.
    x = np.array([150.0, 1250.0, 160.0, np.nan, 700.0])
    y = np.array([2900.0, 2950.0, 2100.0, 0.0, 1600.0])
    labels, table = grid_cells(x, y, 500.0)
    assert labels.tolist() == ["A1", "C1", "A2", None, "B3"]
    bounds = table.set_index("unit").loc["B3"]
    assert (bounds["xmin"], bounds["ymin"], bounds["xmax"]) == (500, 1500, 1000)


def test_style_classes_partition_the_buildings() -> None:
    """Every building falls in exactly one class of the QGIS style."""
    threshold = 0.4
    probs = np.array([0.0, 0.1, 0.2, 0.39, 0.4, 0.5, 0.7, 0.71, 1.0, np.nan])
    scored = np.isfinite(probs)
    frame = pd.DataFrame(
        {
            "status": np.where(scored, "predicted", "skipped"),
            "damage_probability": probs,
            "damaged": np.where(scored, (probs >= threshold).astype(float), np.nan),
        }
    )
    hits = np.zeros(len(frame), dtype=int)
    for _, expression, _ in damage_classes(threshold):
        query = (
            expression.replace('"', "").replace(" = ", " == ").replace(" AND ", " and ")
        )
        hits[frame.eval(query).to_numpy(dtype=bool)] += 1
    assert hits.tolist() == [1] * len(frame)


def _sar(path: Path) -> Path:
    """A 200 x 100-pixel linear image growing west to east, 2 m pixels."""
    values = np.tile(np.linspace(1.0, 100.0, 200, dtype=np.float32), (100, 1))
    values[:10, :10] = 0  # nodata
    profile = {
        "driver": "GTiff",
        "width": 200,
        "height": 100,
        "count": 1,
        "dtype": "float32",
        "crs": "EPSG:32637",
        "transform": rasterio.transform.from_origin(300000, 4100200, 2, 2),
        "nodata": 0,
    }
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(values, 1)
    return path


def test_sar_underlay(tmp_path: Path) -> None:
    sar = _sar(tmp_path / "sar.tif")
    utm = CRS.from_epsg(32637)
    # An extent wider than the image: NaN outside it and on nodata.
    bounds = (299800.0, 4100000.0, 300600.0, 4100200.0)
    underlay = sar_underlay(sar, utm, bounds, size=80)
    assert underlay is not None and underlay.bounds == bounds
    image = underlay.image
    assert image.shape == (20, 80)
    assert np.isnan(image[:, :15]).all() and np.isnan(image[:, -15:]).all()
    inside = image[5:, 25:55]
    assert np.isfinite(inside).all()
    assert np.nanmin(image) >= 0 and np.nanmax(image) <= 1
    assert (np.diff(inside, axis=1) >= -1e-6).all()  # brighter eastwards
    assert inside[:, -1].mean() > inside[:, 0].mean() + 0.3
    assert np.isnan(image[0, 20])  # the nodata corner
    # In Web Mercator, and as an embedded PNG.
    web = transform_bounds(utm, CRS.from_epsg(3857), *bounds)
    mercator = sar_underlay(sar, CRS.from_epsg(3857), web, size=80)
    assert mercator is not None and np.isfinite(mercator.image).mean() > 0.3
    uri = png_data_uri(mercator)
    assert uri.startswith("data:image/png;base64,")
    with Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))) as png:
        assert png.mode == "LA" and png.size == mercator.image.shape[::-1]
    # An extent away from the image has no underlay.
    far = (400000.0, 4100000.0, 400800.0, 4100200.0)
    assert sar_underlay(sar, utm, far) is None


def test_html_and_overview_with_the_sar_underlay(tmp_path: Path) -> None:
    sar = _sar(tmp_path / "sar.tif")
    underlay = sar_underlay(
        sar, CRS.from_epsg(32637), (300000, 4100000, 300400, 4100200)
    )
    assert underlay is not None
    writer = HTMLMapWriter(tmp_path / "map.html")
    writer.add_rings(_rings())
    writer.close(
        np.array([0.1, 0.7, np.nan]),
        [1, 2, 3],
        [None, None, "x"],
        0.5,
        title="t",
        underlay=underlay,
    )
    page = (tmp_path / "map.html").read_text(encoding="utf-8")
    data = _data(page)
    assert data["sar"]["png"].startswith("data:image/png;base64,")
    assert data["sar"]["bounds"] == list(underlay.bounds)
    assert 'id="sarbox" checked' in page
    assert "drawSar();" in page
    fig = plot_overview(_rings(), np.array([0.1, 0.7, np.nan]), 0.5, underlay=underlay)
    (shown,) = fig.axes[0].get_images()
    assert shown.get_extent() == [300000, 300400, 4100000, 4100200]
