"""Smoke test of benchmarks/sampling.py on a tiny scene (not a timed test)."""

from __future__ import annotations

import json
import types
from collections.abc import Callable
from pathlib import Path

import pytest

SCRIPT = Path(__file__).parents[2] / "benchmarks" / "sampling.py"


def test_benchmark_times_the_real_classes(
    capsys: pytest.CaptureFixture[str],
    load_script: Callable[[Path], types.ModuleType],
) -> None:
    module = load_script(SCRIPT)
    # The benchmark builds the classes users build, not stand-ins.
    source = SCRIPT.read_text()
    assert "CSKSAR(" in source and "class _SAR" not in source
    result = module.main(
        ["--size", "240", "--buildings", "60", "--ours", "300", "--stock", "3"]
    )
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert printed == result
    assert result["sampled_buildings"] == 60
    assert result["sar_patch_equal_to_stock"] is True
    assert result["fast_path_equal_to_windowed"] is True
    assert set(result["per_dataset_us"]) == {"sar", "dsm", "footprints", "intersection"}
    assert all(v > 0 for v in result["per_dataset_us"].values())
    for key in (
        "ours_samples_per_s",
        "offset_dsm_samples_per_s",
        "stock_samples_per_s",
    ):
        assert result[key] > 0
    assert len(result["load_average"]) == 4
