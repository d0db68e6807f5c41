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
    assert cpu["precisions"] == ["fp32", "bf16"]
    assert isinstance(cpu["bf16_supported"], bool) and cpu["bf16_support"]
    # The fused network computes the plain one's function; bf16 rounds it.
    diffs = cpu["max_abs_output_diff"]
    assert diffs["eval"] < 1e-4
    assert 0 < diffs["bf16_vs_fp32_eval"] < 1.0
    assert [r["batch_size"] for r in cpu["results"]] == [4, 8]
    for result in cpu["results"]:
        for kind in ("train", "infer"):
            expected = {"plain_fp32", "fused_fp32", "fused_bf16"}
            if kind == "train":
                expected.add("plain_fp32_stock_adamw")
            samples = result[f"{kind}_samples_per_s"]
            assert set(samples) == expected
            assert all(v > 0 for v in samples.values())
            # Speed-ups are relative to the plain float32 reference.
            speedup = result[f"{kind}_speedup"]
            assert set(speedup) == expected - {"plain_fp32"}
            assert all(v > 0 for v in speedup.values())
    data = out["data_loader"]
    assert data["batch_size"] == 4 and data["batches"] == 1
    assert not data["simulated"] and data["train_samples"] > 0
    assert data["loader_samples_per_s"] > 0
    assert data["loader_augment_samples_per_s_cpu"] > 0
