"""Smoke test of benchmarks/train.py: it runs and prints the promised JSON."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from torchgeo_quake.datasets import GEM_FEATURE_NAMES

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "train.py"


def test_quick_run_prints_json(sim_root: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            "--quick",
            "--batch-sizes",
            "4",
            "8",
            "--warmup",
            "0",
            "--iters",
            "1",
            "--devices",
            "cpu",
            "--threads",
            "1",
            "--data-root",
            str(sim_root),
            "--data-scale",
            "0.05",
            "--data-batches",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["gem_features"] == len(GEM_FEATURE_NAMES) == 22
    assert out["threads"] == 1
    assert len(out["load_average_start"]) == 3
    (cpu,) = out["devices"]
    assert cpu["device_type"] == "cpu"
    assert cpu["amp"] is None
    # The fused network computes the plain one's function.
    assert cpu["max_abs_output_diff"]["eval"] < 1e-4
    assert [r["batch_size"] for r in cpu["results"]] == [4, 8]
    for result in cpu["results"]:
        for kind in ("train_samples_per_s", "infer_samples_per_s"):
            expected = {"fused", "plain"}
            if kind.startswith("train"):
                expected.add("plain_stock_adamw")
            assert set(result[kind]) == expected
            assert all(v > 0 for v in result[kind].values())
        assert result["train_speedup"] > 0 and result["infer_speedup"] > 0
        assert result["train_speedup_vs_stock_adamw"] > 0
    data = out["data_loader"]
    assert data["batch_size"] == 4 and data["batches"] == 1
    assert not data["simulated"] and data["train_samples"] > 0
    assert data["loader_samples_per_s"] > 0
    assert data["loader_augment_samples_per_s_cpu"] > 0
