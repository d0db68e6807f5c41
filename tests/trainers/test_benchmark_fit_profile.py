"""Smoke test of benchmarks/fit_profile.py: it profiles a short fit and prints JSON."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "benchmarks" / "fit_profile.py"


def test_profiles_a_short_fit(sim_root: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            "--config",
            "experiments/sar_ftp.yaml",
            "--root",
            str(sim_root),
            "--scale",
            "0.05",
            "--precisions",
            "32-true",
            "--train-batches",
            "2",
            "--val-batches",
            "1",
            "--threads",
            "1",
            "--min-share",
            "0",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    out = json.loads(done.stdout)
    assert out["benchmark"] == "fit_profile"
    assert out["threads"] == 1 and out["scale"] == 0.05
    (run,) = out["runs"]
    assert run["precision"] == "32-true" and run["trainer_precision"] == "32-true"
    assert run["train_batches"] == 2 and run["batch_size"] == 64
    # The epoch holds its batches and more (loading, validation, checkpoints).
    assert 0 < run["epoch_samples_per_s"] < run["train_samples_per_s"]
    actions = {a["action"]: a for a in run["actions"]}
    assert actions["run_training_batch"]["calls"] == 2
    assert actions["run_training_epoch"]["seconds"] < run["fit_s"]
    assert actions["save_checkpoint"]["calls"] >= 1  # the configuration's callbacks
    shares = [a["share_of_fit"] for a in run["actions"]]
    assert shares == sorted(shares, reverse=True) and all(0 <= s < 1 for s in shares)
