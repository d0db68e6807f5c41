"""``torchgeo-quake map`` on two CPU processes (DDP) gives the one-process map."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest

from torchgeo_quake.cli import main
from torchgeo_quake.mapping import OUTPUT_FILES


def _argv(city: Path, checkpoint: Path, out: Path, *extra: str) -> list[str]:
    return [
        "map",
        "--sar",
        str(city / "sar.tif"),
        "--footprints",
        str(city / "buildings.gpkg"),
        "--checkpoint",
        str(checkpoint),
        "--out",
        str(out),
        "--accelerator",
        "cpu",
        "--batch-size",
        "16",
        "--threads",
        "1",
        "--no-progress",
        "--quiet",
        *extra,
    ]


def _map(
    city: Path, checkpoint: Path, out: Path, *extra: str
) -> subprocess.CompletedProcess[str]:
    command = [
        sys.executable,
        "-m",
        "torchgeo_quake.cli",
        *_argv(city, checkpoint, out, *extra),
    ]
    return subprocess.run(
        command, capture_output=True, text=True, timeout=600, cwd=out.parent
    )


@pytest.mark.slow
def test_two_processes_give_the_same_map(
    city: Path, checkpoints: dict[str, Path], tmp_path: Path
) -> None:
    one, two = tmp_path / "one" / "map", tmp_path / "two" / "map"
    one.parent.mkdir()
    two.parent.mkdir()
    # The one-process map, in this process (faster than a second subprocess).
    assert main(_argv(city, checkpoints["sar_ftp"], one)) == 0
    ddp = _map(city, checkpoints["sar_ftp"], two, "--devices", "2")
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    # Only rank 0 reports and writes: one report, the five files, nothing else.
    assert ddp.stdout.count("wrote to") == 1
    assert ddp.stdout.count("footprints:") == 1
    assert sorted(p.name for p in two.parent.iterdir()) == ["map"]
    assert sorted(p.name for p in two.iterdir()) == sorted(OUTPUT_FILES)
    a = gpd.read_file(one / "damage.gpkg", layer="damage").sort_values("feature")
    b = gpd.read_file(two / "damage.gpkg", layer="damage").sort_values("feature")
    assert list(a["feature"]) == list(b["feature"])
    for column in ("osm_id", "status", "reason", "damaged", "unit"):
        assert a[column].fillna(-1).tolist() == b[column].fillna(-1).tolist(), column
    np.testing.assert_allclose(
        a["damage_probability"].to_numpy(),
        b["damage_probability"].to_numpy(),
        atol=2e-6,
    )
    sa = json.loads((one / "summary.json").read_text())
    sb = json.loads((two / "summary.json").read_text())
    assert sa["prediction"] == {"accelerator": "CPUAccelerator", "processes": 1}
    assert sb["prediction"] == {"accelerator": "CPUAccelerator", "processes": 2}
    assert sa["counts"] == sb["counts"]
    assert sa["units"] == sb["units"]
    assert sa["counts"]["predicted"] > 0
