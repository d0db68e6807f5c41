"""Writing the map: all-or-nothing replacement and the interactive map's data."""

from __future__ import annotations

import errno
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

    # A failure while the new folder is swapped in (the previous folder was
    # renamed aside, the new one fails to take its place): it is put back.
    original = staging._replace
    calls: list[tuple[Path, Path]] = []

    def flaky(source: Path, target: Path) -> None:
        calls.append((source, target))
        if len(calls) == 2:
            raise OSError("disk full")
        original(source, target)

    monkeypatch.setattr(staging, "_replace", flaky)
    with pytest.raises(OSError, match="disk full"):
        map_damage(*args, name="second", overwrite=True)
    assert _contents(out) == before
    assert leftovers(tmp_path) == []
    assert [c[0] for c in calls] == [out.resolve(), calls[1][0]]
    assert calls[1][1] == out.resolve() and ".out.partial-" in calls[1][0].name

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

    # A folder that cannot be renamed (a mount point): files moved one by one.
    def busy(source: Path, target: Path) -> None:
        if source == out.resolve():
            raise OSError(errno.EBUSY, "Device or resource busy")
        original(source, target)

    monkeypatch.setattr(staging, "_replace", busy)
    map_damage(*args, name="third", overwrite=True)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["city"] == "third"
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


def _results(folder: Path, text: str) -> None:
    folder.mkdir(exist_ok=True)
    for name in OUTPUT_FILES:
        (folder / name).write_text(text)


def test_install_swaps_the_folder_unless_it_is_the_working_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    _results(out, "old")
    (out / "sub").mkdir()
    (out / "sub" / "notes.txt").write_text("mine")
    before = out.stat().st_ino
    new = tmp_path / ".out.partial-1-a"
    _results(new, "new")
    staging.install(new, out, OUTPUT_FILES)
    assert out.stat().st_ino != before  # a new folder, swapped in whole
    assert (out / "sub" / "notes.txt").read_text() == "mine"
    assert all((out / n).read_text() == "new" for n in OUTPUT_FILES)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    # From inside the folder: the files are moved, the folder stays.
    monkeypatch.chdir(out / "sub")
    before = out.stat().st_ino
    _results(new, "newer")
    staging.install(new, out, OUTPUT_FILES)
    assert out.stat().st_ino == before
    assert all((out / n).read_text() == "newer" for n in OUTPUT_FILES)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_stale_backup_of_files_moved_one_by_one(tmp_path: Path) -> None:
    """Killed while moving result files one by one: the old results come back."""
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    (out / OUTPUT_FILES[0]).write_text("new")  # one new file was moved in
    backup = tmp_path / ".out.partial-old-999999999-ab"
    _results(backup, "old")
    said: list[str] = []
    staging.clean_stale(out, OUTPUT_FILES, said.append)
    assert all((out / n).read_text() == "old" for n in OUTPUT_FILES)
    assert (out / "notes.txt").read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    assert any("put back the previous results" in s for s in said)
