"""``torchgeo-quake map`` on bad input: one case per failure of the fault probe.

Every case runs the command line (:func:`torchgeo_quake.cli.main`) on tiny
inputs made from the conftest city and checks the exit status, the message,
and that nothing the user made was lost or changed. The cases that need a full
map use a dozen buildings.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import io
import json
import os
import re
import shutil
import signal
import subprocess
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pytest
import rasterio
import shapely

import torchgeo_quake.mapping._prediction as prediction
import torchgeo_quake.mapping._staging as staging
import torchgeo_quake.mapping.command as command
from torchgeo_quake.cli import main
from torchgeo_quake.mapping import OUTPUT_FILES

#: CRS of the conftest city's SAR image.
SAR_CRS = "EPSG:32637"


@dataclass
class Run:
    """What a command-line run gave."""

    status: int
    out: str
    err: str
    warnings: list[str] = field(default_factory=list)


@dataclass
class Probe:
    """A copy of the city's inputs in a fresh folder, and a way to map them."""

    root: Path
    checkpoints: dict[str, Path]
    monkeypatch: pytest.MonkeyPatch

    @property
    def city(self) -> Path:
        return self.root / "city"

    @property
    def out(self) -> Path:
        return self.root / "maps" / "out"

    def argv(self, *extra: str, checkpoint: str = "sar_ftp") -> list[str]:
        """Arguments of a map of the small footprint file, changed by *extra*."""
        options = {
            "--sar": str(self.city / "sar.tif"),
            "--footprints": str(self.city / "small.gpkg"),
            "--checkpoint": str(self.checkpoints[checkpoint]),
            "--out": str(self.out),
        }
        rest, i = [], 0
        while i < len(extra):
            if extra[i] in options:
                options[extra[i]] = extra[i + 1]
                i += 2
            else:
                rest.append(extra[i])
                i += 1
        given = [a for pair in options.items() for a in pair]
        return ["map", *given, "--no-progress", "--accelerator", "cpu", *rest]

    def map(self, *extra: str, checkpoint: str = "sar_ftp") -> Run:
        """Run ``torchgeo-quake map`` and capture what it says."""
        stdout, stderr = io.StringIO(), io.StringIO()
        with (
            contextlib.redirect_stdout(stdout),
            contextlib.redirect_stderr(stderr),
            warnings.catch_warnings(record=True) as caught,
        ):
            warnings.simplefilter("always")
            status = main(self.argv(*extra, checkpoint=checkpoint))
        messages = [str(w.message) for w in caught]
        return Run(status, stdout.getvalue(), stderr.getvalue(), messages)

    def snapshot(self) -> dict[str, Any]:
        """Content of every file of the user (and the checkpoints' stamps)."""
        files: dict[str, Any] = {}
        for path in sorted(self.root.rglob("*")):
            if path.is_file():
                files[str(path.relative_to(self.root))] = _digest(path)
        for path in self.checkpoints.values():
            info = path.stat()
            files[str(path)] = (info.st_size, info.st_mtime_ns)
        return files

    def kept(self, before: dict[str, Any]) -> None:
        """Check that every file there before is still there, unchanged."""
        after = self.snapshot()
        lost = {name for name in before if after.get(name) != before[name]}
        assert not lost, f"changed or lost: {sorted(lost)}"

    def nothing_written(self) -> None:
        """Check that no output and no temporary folder was left."""
        assert not self.out.exists()
        parent = self.out.parent
        if parent.exists():
            assert [p.name for p in parent.iterdir()] == []

    def leftovers(self) -> list[str]:
        """Hidden staging, backup and lock files beside the output folder."""
        return [p.name for p in self.out.parent.iterdir() if p.name.startswith(".")]


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _dead_pid() -> int:
    """The pid of a process that has ended."""
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


def _summary(out: Path) -> dict[str, Any]:
    summary: dict[str, Any] = json.loads((out / "summary.json").read_text())
    return summary


@pytest.fixture(scope="module")
def small(city: Path, tmp_path_factory: pytest.TempPathFactory) -> gpd.GeoDataFrame:
    """A dozen footprints well inside the SAR image, in the SAR CRS."""
    frame = gpd.read_file(city / "buildings.gpkg").to_crs(SAR_CRS)
    with rasterio.open(city / "sar.tif") as src:
        left, bottom, right, top = src.bounds
    c = frame.geometry.centroid
    margin = 60.0
    inside = (
        (c.x > left + margin)
        & (c.x < right - margin)
        & (c.y > bottom + margin)
        & (c.y < top - margin)
    )
    return frame[inside].iloc[:12][["osm_id", "geometry"]].reset_index(drop=True)


@pytest.fixture
def probe(
    city: Path,
    checkpoints: dict[str, Path],
    small: gpd.GeoDataFrame,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Probe:
    folder = tmp_path / "city"
    folder.mkdir()
    for name in ("sar.tif", "dsm.tif", "gem.csv", "buildings.gpkg"):
        shutil.copy(city / name, folder / name)
    small.to_file(folder / "small.gpkg")
    (tmp_path / "maps").mkdir()
    return Probe(tmp_path, checkpoints, monkeypatch)


def _bow_tie(polygon: shapely.Geometry) -> shapely.Geometry:
    """A self-intersecting polygon over the bounds of *polygon*."""
    xmin, ymin, xmax, ymax = polygon.bounds
    return shapely.Polygon([(xmin, ymin), (xmax, ymax), (xmax, ymin), (xmin, ymax)])


# ------------------------------------------------------------------- cases
def case_input_folders(p: Probe) -> None:
    """1. A folder as --sar, --dsm, --footprints or --exposure."""
    before = p.snapshot()
    for flag in ("--sar", "--dsm", "--footprints", "--exposure"):
        run = p.map(flag, str(p.city), checkpoint="all")
        assert run.status == 1, flag
        assert f"{flag} {str(p.city)!r} is a folder" in run.err
        assert "Give the file itself" in run.err
        assert "Traceback" not in run.err
        p.nothing_written()
    p.kept(before)


def case_self_intersecting_footprints(p: Probe, small: gpd.GeoDataFrame) -> None:
    """2. Footprints that are all bow ties: repaired, located and scored."""
    bow_ties = small.copy()
    bow_ties["geometry"] = [_bow_tie(g) for g in small.geometry]
    assert not bow_ties.geometry.is_valid.any()
    bow_ties.to_file(p.city / "bow_ties.gpkg")
    before = p.snapshot()
    run = p.map("--footprints", str(p.city / "bow_ties.gpkg"), "--quiet")
    assert run.status == 0, run.err
    summary = _summary(p.out)
    assert summary["counts"]["predicted"] == len(small)
    with rasterio.open(p.city / "sar.tif") as src:
        left, bottom, right, top = src.bounds
    for unit in summary["units"]["table"]:
        assert re.fullmatch(r"[A-Z]+[1-9][0-9]*", unit["unit"]), unit
        x, y = unit["xmin"], unit["ymin"]
        assert left - 500 <= x <= right and bottom - 500 <= y <= top, unit
    p.kept(before)


def case_sar_in_db_and_empty_dsm(p: Probe) -> None:
    """3. A SAR image already in dB, a DSM without a valid height."""
    with rasterio.open(p.city / "sar.tif") as src:
        profile, sar = src.profile, src.read(1)
    with rasterio.open(p.city / "sar_db.tif", "w", **profile) as dst:
        dst.write(np.where(sar > 0, 20 * np.log10(np.maximum(sar, 1e-6)), 0), 1)
    with rasterio.open(p.city / "dsm.tif") as src:
        profile, dsm = src.profile, src.read(1)
    with rasterio.open(p.city / "dsm_empty.tif", "w", **profile) as dst:
        dst.write(np.full_like(dsm, profile["nodata"]), 1)
    before = p.snapshot()
    run = p.map("--sar", str(p.city / "sar_db.tif"))
    assert run.status == 1
    assert "looks like dB already" in run.err
    assert "linear amplitude/intensity image" in run.err
    p.nothing_written()
    extra = ("--dsm", str(p.city / "dsm_empty.tif"))
    run = p.map(*extra, "--exposure", str(p.city / "gem.csv"), checkpoint="all")
    assert run.status == 1
    assert f"the DSM {str(p.city / 'dsm_empty.tif')!r} holds no valid height" in (
        run.err
    )
    p.nothing_written()
    p.kept(before)


def case_sub_pixel_footprint(p: Probe, small: gpd.GeoDataFrame) -> None:
    """4. A footprint smaller than a SAR pixel, between the pixel centres."""
    with rasterio.open(p.city / "sar.tif") as src:
        left, top = src.bounds.left, src.bounds.top
        res = src.res[0]
    corner = (left + 80 * res, top - 90 * res)  # a pixel corner, mid-image
    tiny = shapely.box(
        corner[0] - 0.3, corner[1] - 0.3, corner[0] + 0.3, corner[1] + 0.3
    )
    frame = small.copy()
    frame.loc[len(frame)] = [999_999_001, tiny]
    frame.to_file(p.city / "tiny.gpkg")
    before = p.snapshot()
    run = p.map("--footprints", str(p.city / "tiny.gpkg"))
    assert run.status == 0, run.err
    assert "1 footprints smaller than a SAR pixel were not scored" in run.out
    counts = _summary(p.out)["counts"]
    assert counts["skipped_by_reason"] == {"footprint smaller than a SAR pixel": 1}
    assert counts["predicted"] == len(small)
    damage = gpd.read_file(p.out / "damage.gpkg", layer="damage")
    row = damage[damage["osm_id"] == 999_999_001].iloc[0]
    assert row["status"] == "skipped" and np.isnan(row["damage_probability"])
    p.kept(before)


def case_id_column_named_like_an_output(p: Probe, small: gpd.GeoDataFrame) -> None:
    """5. An id column named ``status`` (an output column)."""
    frame = small.rename(columns={"osm_id": "status"})
    frame.to_file(p.city / "status.gpkg")
    before = p.snapshot()
    footprints = str(p.city / "status.gpkg")
    run = p.map("--footprints", footprints, "--id-field", "status")
    assert run.status == 1
    assert "--id-field 'status'" in run.err
    assert "clashes with the output column 'status'" in run.err
    p.nothing_written()
    p.kept(before)


def case_units_off_the_city(p: Probe, small: gpd.GeoDataFrame) -> None:
    """6. Admin units that hold no building, or only some."""
    xmin, ymin, xmax, ymax = small.total_bounds
    far = gpd.GeoDataFrame(
        {"name": ["elsewhere"]},
        geometry=[shapely.box(xmin + 1e5, ymin, xmax + 1e5, ymax)],
        crs=SAR_CRS,
    )
    far.to_file(p.city / "far.gpkg")
    middle = (xmin + xmax) / 2
    half = gpd.GeoDataFrame(
        {"name": ["west"]},
        geometry=[shapely.box(xmin - 10, ymin - 10, middle, ymax + 10)],
        crs=SAR_CRS,
    )
    half.to_file(p.city / "half.gpkg")
    before = p.snapshot()
    run = p.map("--units", str(p.city / "far.gpkg"))
    assert run.status == 1
    assert f"no footprint lies in any unit of --units {str(p.city / 'far.gpkg')!r}" in (
        run.err
    )
    assert "units (" in run.err and "footprints (" in run.err
    p.nothing_written()
    run = p.map("--units", str(p.city / "half.gpkg"), "--quiet")
    assert run.status == 0, run.err
    outside = int((small.geometry.centroid.x > middle).sum())
    assert 0 < outside < len(small)
    assert any(
        f"{outside} of the {len(small)} footprints lie" in w for w in run.warnings
    )
    units = _summary(p.out)["units"]
    assert units["outside_units"] == outside
    assert {u["unit"]: u["buildings"] for u in units["table"]}["(none)"] == outside
    p.kept(before)


def case_overwrite_of_an_input(p: Probe) -> None:
    """7. ``--overwrite`` whose --out holds the footprint file given."""
    p.out.mkdir()
    for name in OUTPUT_FILES:
        (p.out / name).write_text("previous")
    shutil.copy(p.city / "small.gpkg", p.out / "damage.gpkg")
    before = p.snapshot()
    footprints = str(p.out / "damage.gpkg")
    run = p.map("--footprints", footprints, "--overwrite")
    assert run.status == 1
    assert f"--footprints {footprints!r} is in the output folder" in run.err
    assert "--overwrite" in run.err
    assert p.leftovers() == []
    p.kept(before)


def case_concurrent_and_killed_runs(p: Probe) -> None:
    """8. A second run on a busy --out; what killed runs left behind."""
    lock = p.out.parent / f".{p.out.name}.lock"
    before = p.snapshot()
    # Another run holds the lock.
    with open(lock, "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        held.write("12345\n")
        held.flush()
        run = p.map("--quiet")
    assert run.status == 1
    assert "another `torchgeo-quake map` run (pid 12345) is writing" in run.err
    assert not p.out.exists()
    lock.unlink()
    # A run killed during the swap: the previous results are in a backup.
    dead = _dead_pid()
    backup = p.out.parent / f".{p.out.name}.partial-old-{dead}-0a1b2c3d"
    backup.mkdir()
    for name in OUTPUT_FILES:
        (backup / name).write_text("previous")
    (backup / "notes.txt").write_text("mine")
    run = p.map()
    assert run.status == 1  # the results are back: not replaced unasked
    assert "put back the previous results" in run.out
    assert "already holds results" in run.err
    assert (p.out / "notes.txt").read_text() == "mine"
    assert all((p.out / n).read_text() == "previous" for n in OUTPUT_FILES)
    assert p.leftovers() == []
    shutil.rmtree(p.out)
    # A killed run's stale lock and staging folders.
    lock.write_text(f"{dead}\n")
    (p.out.parent / f".{p.out.name}.partial-{dead}-0a1b2c3d").mkdir()
    (p.out.parent / f".{p.out.name}.partial-x1y2z3w4").mkdir()  # older version
    run = p.map()
    assert run.status == 0, run.err
    assert f"took over the lock {lock} of an earlier run (pid {dead})" in run.out
    assert run.out.count("by a run that was killed") == 2
    assert p.leftovers() == []
    assert sorted(f.name for f in p.out.iterdir()) == sorted(OUTPUT_FILES)
    p.kept(before)


def case_no_raw_traceback(p: Probe, respec: Callable[..., Path]) -> None:
    """9. Errors that gave raw tracebacks: one line each, tracebacks on --debug."""
    before = p.snapshot()
    # A CSV as footprints.
    shutil.copy(p.city / "gem.csv", p.city / "table.csv")
    run = p.map("--footprints", str(p.city / "table.csv"))
    assert run.status == 1
    assert "torchgeo-quake map: error: --footprints" in run.err
    assert "is not a vector file" in run.err and "Traceback" not in run.err
    p.nothing_written()
    # --out in a folder that cannot be written (as root, os.access is faked).
    p.monkeypatch.setattr(staging, "_writable", lambda folder: False)
    for exists in (False, True):
        if exists:
            p.out.mkdir()
        run = p.map()
        assert run.status == 1
        assert f"cannot write in {str(p.out.parent)!r}" in run.err
        assert "Choose an --out inside a folder you can write to" in run.err
    p.out.rmdir()
    p.monkeypatch.undo()
    # A checkpoint recording a radiometry that does not exist.
    spec = {"radiometry": "decibel", "sar_res": 2.5, "patch_size": 32}
    bad = respec(p.checkpoints["sar_ftp"], p.root / "decibel.ckpt", spec)
    run = p.map("--checkpoint", str(bad))
    assert run.status == 1
    assert "malformed input specification" in run.err and "'decibel'" in run.err
    bad.unlink()
    p.nothing_written()

    # A bug: one line saying so; the traceback with --debug.
    def broken(settings: Any) -> Any:
        raise AttributeError("'NoneType' object has no attribute 'crs'")

    p.monkeypatch.setattr(command, "run_map", broken)
    run = p.map()
    assert run.status == 1 and "Traceback" not in run.err
    assert run.err.startswith("torchgeo-quake map: error: unexpected AttributeError")
    assert "This is a bug" in run.err and "--debug" in run.err
    run = p.map("--debug")
    assert run.status == 1 and "Traceback" in run.err

    def interrupted(settings: Any) -> Any:
        raise KeyboardInterrupt

    p.monkeypatch.setattr(command, "run_map", interrupted)
    run = p.map()
    assert run.status == 130
    assert "torchgeo-quake map: interrupted: nothing was written" in run.err
    p.nothing_written()
    p.kept(before)


def case_huge_batch(p: Probe, small: gpd.GeoDataFrame) -> None:
    """10. A batch size whose batches would take much memory: a warning."""
    per_building = prediction.batch_memory(("sar", "footprint"), 32, 1)
    # The conftest city is small: the warning threshold is lowered to ten
    # buildings' worth, as a big city would reach it.
    p.monkeypatch.setattr(prediction, "BATCH_MEMORY_WARNING", 10 * per_building)
    before = p.snapshot()
    run = p.map("--batch-size", "1000000", "--quiet")
    assert run.status == 0, run.err
    message = next(w for w in run.warnings if "--batch-size 1000000" in w)
    assert f"a batch of {len(small)} buildings takes about" in message
    assert "pass a smaller --batch-size" in message
    assert _summary(p.out)["counts"]["predicted"] == len(small)
    p.kept(before)


def case_sigterm(p: Probe) -> None:
    """11. SIGTERM (a scheduler's time limit) while predicting: status 143."""
    from torchgeo_quake.trainers import DamageDetectionTask

    before = p.snapshot()
    step = DamageDetectionTask.predict_step
    sent: list[int] = []

    def terminated(self: Any, *args: Any, **kwargs: Any) -> Any:
        if not sent:
            sent.append(1)
            os.kill(os.getpid(), signal.SIGTERM)
        return step(self, *args, **kwargs)

    p.monkeypatch.setattr(DamageDetectionTask, "predict_step", terminated)
    # Lightning calls the handler it finds beside its own: make it harmless, so
    # that a signal outside Lightning's handler cannot stop the test process.
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: None)
    try:
        run = p.map()
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert sent
    assert run.status == 143, run.err
    assert "torchgeo-quake map: terminated (SIGTERM): nothing was written" in run.err
    p.nothing_written()
    p.kept(before)


CASES: list[Callable[..., None]] = [
    case_input_folders,
    case_self_intersecting_footprints,
    case_sar_in_db_and_empty_dsm,
    case_sub_pixel_footprint,
    case_id_column_named_like_an_output,
    case_units_off_the_city,
    case_overwrite_of_an_input,
    case_concurrent_and_killed_runs,
    case_no_raw_traceback,
    case_huge_batch,
    case_sigterm,
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.__name__[5:])
def test_fault_probe(
    case: Callable[..., None],
    probe: Probe,
    small: gpd.GeoDataFrame,
    respec: Callable[..., Path],
) -> None:
    arguments: dict[str, Any] = {"small": small, "respec": respec}
    names = case.__code__.co_varnames[1 : case.__code__.co_argcount]
    case(probe, **{name: arguments[name] for name in names})
