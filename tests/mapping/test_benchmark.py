"""``benchmarks/map.py`` runs and prints its JSON (on a tiny simulated city)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_map_benchmark_prints_its_measurements(tmp_path: Path) -> None:
    scene = tmp_path / "scene"
    command = [
        sys.executable,
        str(ROOT / "benchmarks" / "map.py"),
        "--buildings",
        "300",
        "--scene",
        str(scene),
        "--threads",
        "1",
        "--batch-size",
        "64",
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["benchmark"] == "map_damage"
    assert result["buildings"] >= 300
    assert result["predicted"] + result["skipped"] == result["buildings"]
    assert result["predicted"] > 0
    assert result["wall_s"] > 0 and result["buildings_per_s"] > 0
    assert result["read_s"] + result["predict_s"] + result["write_s"] > 0
    assert 100 < result["peak_rss_mib"] < 8192
    assert result["threads"] == 1 and result["batch_size"] == 64
    assert len(result["machine"]["load_average_before"]) == 3
    assert result["output_mib"] > 0
    # The simulated scene stays in --scene, for later runs to reuse.
    assert (scene / "scene.json").exists()
