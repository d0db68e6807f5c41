"""The overview at city scale (cells of expected damage), and writing progress."""

from __future__ import annotations

from pathlib import Path

import matplotlib
import numpy as np
import pytest
import shapely
from matplotlib.collections import PolyCollection, QuadMesh
from matplotlib.image import AxesImage
from PIL import Image

from torchgeo_quake.mapping import RingCollector
from torchgeo_quake.mapping._underlay import Underlay
from torchgeo_quake.mapping.overview import (
    MIN_FOOTPRINT_PIXELS,
    OSM_CREDIT,
    density_cell_size,
    density_grid,
    map_extent,
    overview_mode,
    plot_overview,
    save_overview,
)
from torchgeo_quake.mapping.rings import Rings
from torchgeo_quake.mapping.writers import WriteProgress

# UTM-like coordinates: the sums must not lose precision far from the origin.
X0, Y0 = 300_000.0, 4_100_000.0


def _town(per_side: int, spacing: float, side: float) -> Rings:
    """A square grid of square buildings."""
    i, j = np.meshgrid(np.arange(per_side), np.arange(per_side))
    x = X0 + i.ravel() * spacing
    y = Y0 + j.ravel() * spacing
    boxes = shapely.box(x, y, x + side, y + side)
    collector = RingCollector()
    collector.add(np.asarray(boxes, dtype=object), np.arange(len(boxes)))
    return collector.rings()


def _probs(n: int, seed: int = 0) -> np.ndarray:
    probs = np.random.default_rng(seed).uniform(0, 1, n)
    probs[::7] = np.nan  # some not scored
    return probs


def _texts(fig: matplotlib.figure.Figure) -> list[str]:
    ax = fig.axes[0]
    legend = ax.get_legend()
    assert legend is not None
    texts = [t.get_text() for t in legend.get_texts()]
    texts.append(legend.get_title().get_text())
    texts.extend(other.get_ylabel() for other in fig.axes[1:])  # colour bar
    return texts


def test_the_rule_picks_footprints_for_a_district_cells_for_a_city() -> None:
    district = _town(7, 20.0, 10.0)  # 130 m across: 10 m is ~80 pixels
    assert overview_mode(district) == "footprints"
    city = _town(70, 150.0, 8.0)  # 10 km across: 8 m is under a pixel
    assert overview_mode(city) == "cells"
    # The rule is the footprint's size in pixels: at a high enough resolution
    # the same city is drawn building by building again.
    extent = map_extent(city)
    pixel = 8.0 / (MIN_FOOTPRINT_PIXELS * 1.01)
    # A square map: the figure's height (8 in, 80% of it the map) limits it.
    dpi = (extent[3] - extent[1]) / pixel / (8.0 * 0.8)
    assert overview_mode(city, dpi=dpi) == "footprints"
    assert overview_mode(city, dpi=dpi * 0.98) == "cells"
    # No footprint: nothing to aggregate.
    assert overview_mode(_town(0, 1.0, 1.0)) == "footprints"


@pytest.mark.parametrize(
    ("span", "cell"),
    [(3_000.0, 100.0), (9_000.0, 150.0), (15_000.0, 250.0), (100_000.0, 2000.0)],
)
def test_cell_size_follows_the_extent(span: float, cell: float) -> None:
    assert density_cell_size((0.0, 0.0, span, span / 2)) == cell


def test_cell_sums_are_the_expected_damaged_buildings() -> None:
    city = _town(40, 37.0, 9.0)
    probs = _probs(40 * 40)
    grid = density_grid(city, probs, cell=200.0)
    # All of it: the summary's expected count of damaged buildings.
    np.testing.assert_allclose(grid.expected.sum(), np.nansum(probs))
    assert grid.buildings.sum() == len(probs)
    assert grid.scored.sum() == np.isfinite(probs).sum()
    # Cell by cell: the buildings whose centroid falls in it.
    cx = X0 + np.tile(np.arange(40), 40) * 37.0 + 4.5
    cy = Y0 + np.repeat(np.arange(40), 40) * 37.0 + 4.5
    col = np.floor((cx - grid.x[0]) / 200.0).astype(int)
    row = np.floor((cy - grid.y[0]) / 200.0).astype(int)
    expected = np.zeros_like(grid.expected)
    np.add.at(expected, (row, col), np.nan_to_num(probs))
    np.testing.assert_allclose(grid.expected, expected, atol=1e-9)
    assert np.all(grid.x % 200.0 == 0) and np.all(grid.y % 200.0 == 0)
    assert grid.x[0] <= map_extent(city)[0] and grid.x[-1] >= map_extent(city)[2]


def test_a_multipart_building_counts_once_at_its_centroid() -> None:
    parts = shapely.MultiPolygon(
        [
            shapely.box(X0, Y0, X0 + 30, Y0 + 30),
            shapely.box(X0 + 290, Y0, X0 + 300, Y0 + 10),
        ]
    )
    other = shapely.box(X0 + 500, Y0 + 500, X0 + 510, Y0 + 510)
    collector = RingCollector()
    collector.add(np.array([parts, other], dtype=object), np.array([0, 1]))
    grid = density_grid(collector.rings(), np.array([0.6, 0.3]), cell=100.0)
    assert grid.buildings.sum() == 2
    # Area-weighted: (900 * 15 + 100 * 295) / 1000 = 43 m east of X0.
    (_, col) = np.argwhere(np.isclose(grid.expected, 0.6))[0]
    assert grid.x[col] <= X0 + 43.0 < grid.x[col + 1]


def test_legend_matches_the_mode_and_the_image_is_written(tmp_path: Path) -> None:
    city = _town(70, 150.0, 8.0)
    probs = _probs(70 * 70)
    extent = map_extent(city)
    underlay = Underlay(np.full((64, 64), 0.5, dtype=np.float32), extent)
    fig = plot_overview(city, probs, 0.5, credit=OSM_CREDIT, underlay=underlay)
    texts = _texts(fig)
    cell = density_cell_size(extent)
    assert any(f"per {cell:g} m cell" in t for t in texts), texts
    assert any(f"{cell:g} m cells" in t for t in texts), texts
    assert not any("outlined" in t for t in texts)
    ax = fig.axes[0]
    (cells, *_) = [c for c in ax.collections if isinstance(c, QuadMesh)]
    drawn = cells.get_array()
    assert drawn is not None
    np.testing.assert_allclose(drawn.sum(), np.nansum(probs))
    assert not any(isinstance(c, PolyCollection) for c in ax.collections)
    assert any(isinstance(i, AxesImage) for i in ax.images)  # SAR underlay
    assert OSM_CREDIT in [t.get_text() for t in fig.texts]
    save_overview(fig, tmp_path / "overview.png")
    with Image.open(tmp_path / "overview.png") as image:
        assert image.format == "PNG"
        assert image.size == (9 * 150, 8 * 150)
    # Forced footprints: the legend of the footprints.
    fig = plot_overview(city, probs, 0.5, mode="footprints")
    texts = _texts(fig)
    assert any("outlined: predicted damaged" in t for t in texts)
    assert not any("cell" in t for t in texts)
    # A district: footprints by the rule.
    fig = plot_overview(_town(7, 20.0, 10.0), _probs(49), 0.5)
    assert any("outlined: predicted damaged" in t for t in _texts(fig))


def test_cells_with_no_building_scored_are_grey() -> None:
    city = _town(20, 300.0, 8.0)
    probs = np.full(400, np.nan)
    probs[:200] = 0.5
    fig = plot_overview(city, probs, 0.5, mode="cells")
    meshes = [c for c in fig.axes[0].collections if isinstance(c, QuadMesh)]
    assert len(meshes) == 2
    grey = meshes[1].get_array()
    assert grey is not None
    # The cells of the last 200 buildings (not scored), and only those.
    assert int(np.ma.count(grey)) > 0
    drawn = meshes[0].get_array()
    assert drawn is not None
    np.testing.assert_allclose(drawn.sum(), 100.0)


def test_bad_mode_and_cell_are_refused() -> None:
    city = _town(3, 20.0, 10.0)
    with pytest.raises(ValueError, match="overview mode 'dots'"):
        plot_overview(city, np.zeros(9), 0.5, mode="dots")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="cell size 0"):
        density_grid(city, np.zeros(9), cell=0.0)
    with pytest.raises(ValueError, match="no footprint"):
        density_grid(_town(0, 1.0, 1.0), np.zeros(0))


@pytest.mark.parametrize("progress", [False, True])
def test_writing_progress_steps_and_messages(
    progress: bool, capsys: pytest.CaptureFixture[str]
) -> None:
    said: list[str] = []
    with WriteProgress(3, progress, said.append) as steps:
        steps.say("writing 3 buildings")
        for name in ("damage.gpkg", "overview.png", "map.html"):
            with steps.step(name):
                pass
        assert steps.done == 3
    assert said == ["writing 3 buildings"]
    bar = capsys.readouterr().err
    if progress:
        assert "write:" in bar and "overview.png" in bar and "map.html" in bar
    else:
        assert bar == ""
