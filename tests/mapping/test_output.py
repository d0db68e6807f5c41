"""Writing the map: all-or-nothing replacement and the interactive map's data."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import shapely

import torchgeo_quake.mapping._staging as staging
import torchgeo_quake.mapping.html as html
from torchgeo_quake.mapping import OUTPUT_FILES, map_damage
from torchgeo_quake.mapping.html import HTMLMapWriter
from torchgeo_quake.mapping.writers import layer_geometry_type


def _contents(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_failed_overwrite_keeps_the_previous_results(
    city: Path,
    checkpoints: dict[str, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    leftovers: Callable[[Path], list[str]],
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    args = (city / "sar.tif", city / "buildings.gpkg", checkpoints["sar_ftp"], out)
    map_damage(*args, name="first")
    before = _contents(out)
    assert set(before) == {*OUTPUT_FILES, "notes.txt"}

    # A failure while the new files are moved in (5 old files moved aside, then
    # the second new one fails): everything is rolled back.
    original = staging._replace
    calls: list[Path] = []

    def flaky(source: Path, target: Path) -> None:
        calls.append(target)
        if len(calls) == len(OUTPUT_FILES) + 2:
            raise OSError("disk full")
        original(source, target)

    monkeypatch.setattr(staging, "_replace", flaky)
    with pytest.raises(OSError, match="disk full"):
        map_damage(*args, name="second", overwrite=True)
    assert _contents(out) == before
    assert leftovers(tmp_path) == []
    assert len(calls) == len(OUTPUT_FILES) + 2

    # A failure while writing: the previous results are not touched.
    monkeypatch.setattr(staging, "_replace", original)

    def broken(*args: Any, **kwargs: Any) -> None:
        raise OSError("disk full")

    with monkeypatch.context() as patch:
        patch.setattr(html.HTMLMapWriter, "_write_page", broken)
        with pytest.raises(OSError, match="disk full"):
            map_damage(*args, name="second", overwrite=True)
    assert _contents(out) == before
    assert leftovers(tmp_path) == []

    # Without a failure the results are replaced, the other files are kept.
    map_damage(*args, name="second", overwrite=True)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["city"] == "second"
    assert (out / "notes.txt").read_text() == "mine"
    assert leftovers(tmp_path) == []


def _data(page: str) -> dict[str, Any]:
    text = page.split("var DATA = ", 1)[1].split(";</script>", 1)[0]
    data: dict[str, Any] = json.loads(text)
    return data


def test_html_data_streamed_tile_by_tile(tmp_path: Path) -> None:
    squares = [shapely.box(x, 0, x + 10, 10) for x in (1000.0, 1020.0, 1040.0)]
    two = shapely.MultiPolygon(
        [shapely.box(0, 500, 5, 505), shapely.box(9, 500, 14, 505)]
    )
    writer = HTMLMapWriter(tmp_path / "map.html")
    writer.add(np.array([squares[2], None], dtype=object), np.array([3, 4]))
    writer.add(np.array([squares[0], two], dtype=object), np.array([0, 1]))
    writer.add(np.array([shapely.Point(0, 0)], dtype=object), np.array([2]))
    parts = list(tmp_path.glob(".map.html.*.part"))
    assert len(parts) == 3  # streamed to temporary files
    probs = np.array([0.25, 0.9, np.nan, 0.5, np.nan])
    writer.close(
        probs,
        [7, None, 9, 10, 11],
        [None, None, "not a polygon (Point)", None, "missing geometry"],
        0.5,
        title="t</script>",
    )
    assert list(tmp_path.glob(".map.html.*.part")) == []
    page = (tmp_path / "map.html").read_text()
    assert "t</script>" not in page.split("<body>")[0].replace("<title>", "")
    data = _data(page)
    assert data["p"] == [250, 900, -1, 500, -1]
    assert data["id"] == [7, None, 9, 10, 11]
    assert data["reasons"] == ["missing geometry", "not a polygon (Point)"]
    assert data["rs"] == [-1, -1, 1, -1, 0]
    assert data["rb"] == [3, 0, 1, 1]  # one ring per polygon part, none for points
    ro = data["ro"]
    assert len(ro) == 5 and ro[0] == 0
    xy = np.array(data["xy"], dtype=np.float64).reshape(-1, 2) * data["q"]
    xy += np.array(data["origin"])
    expected = [squares[2], squares[0], *two.geoms]
    for r, polygon in enumerate(expected):
        ring = np.asarray(polygon.exterior.coords)
        np.testing.assert_allclose(xy[ro[r] : ro[r + 1]], ring, atol=0.051)
    assert ro[-1] == len(xy)


def test_html_without_any_outline(tmp_path: Path) -> None:
    writer = HTMLMapWriter(tmp_path / "map.html")
    writer.add(np.array([None], dtype=object), np.array([0]))
    writer.close(np.array([np.nan]), [None], ["missing geometry"], 0.5, title="t")
    data = _data((tmp_path / "map.html").read_text())
    assert data["xy"] == [] and data["ro"] == [0] and data["rb"] == []
    assert data["p"] == [-1] and data["id"] == [None] and data["rs"] == [0]


def test_html_writer_cleans_up_on_a_bad_basemap(tmp_path: Path) -> None:
    writer = HTMLMapWriter(tmp_path / "map.html")
    writer.add(np.array([shapely.box(0, 0, 1, 1)], dtype=object), np.array([0]))
    with pytest.raises(ValueError, match=r"\{z\}"):
        writer.close(np.array([0.5]), [1], [None], 0.5, title="t", basemap="x.png")
    assert list(tmp_path.iterdir()) == []


def test_layer_geometry_type() -> None:
    box = shapely.box(0, 0, 1, 1)
    multi = shapely.MultiPolygon([box])
    assert layer_geometry_type(np.array([box, None, box], dtype=object)) == "Polygon"
    assert layer_geometry_type(np.array([multi], dtype=object)) == "MultiPolygon"
    assert layer_geometry_type(np.array([box, multi], dtype=object)) == "Unknown"
    assert layer_geometry_type(np.array([box, shapely.Point(0, 0)])) == "Unknown"
    assert layer_geometry_type(np.array([None], dtype=object)) == "Unknown"
