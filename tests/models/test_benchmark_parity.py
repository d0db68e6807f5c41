"""The comparison of benchmarks/precision_parity.py on made-up runs."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "precision_parity.py"


@pytest.fixture(scope="module")
def parity(load_script: Callable[[Path], ModuleType]) -> ModuleType:
    return load_script(SCRIPT)


def runs(
    parity: ModuleType, values: dict[int, list[float]]
) -> dict[int, list[dict[str, Any]]]:
    """Per seed, one run per value; every metric of a run takes that value."""
    metrics = (*parity.VAL_METRICS, *parity.TEST_METRICS)
    return {
        seed: [
            {**dict.fromkeys(metrics, v), "precision": "p", "wall_s": 1.0} for v in vals
        ]
        for seed, vals in values.items()
    }


def test_summary_averages_splits_then_seeds(parity: ModuleType) -> None:
    summary = parity.summarize(
        runs(parity, {0: [0.2, 0.4], 1: [0.5, 0.7], 2: [0.8, 1.0]})
    )
    assert summary["per_seed"]["test_ap"] == pytest.approx({0: 0.3, 1: 0.6, 2: 0.9})
    assert summary["mean"]["test_ap"] == pytest.approx(0.6)
    assert summary["std"]["test_ap"] == pytest.approx(0.3)  # sample sd, ddof=1
    assert summary["runs"] == 6


def test_paired_interval_and_spread(parity: ModuleType) -> None:
    reference = parity.summarize(runs(parity, {0: [0.5], 1: [0.7], 2: [0.9]}))
    # The same seeds, each exactly 0.01 higher: a tiny shift, but a sure one.
    other = parity.summarize(runs(parity, {0: [0.51], 1: [0.71], 2: [0.91]}))
    result = parity.compare({"32": reference, "bf16": other}, "32", "bf16")
    auroc = result["test_auroc"]
    assert auroc["difference"] == pytest.approx(0.01)
    assert auroc["low"] == pytest.approx(0.01)
    assert auroc["high"] == pytest.approx(0.01)
    assert auroc["seeds"] == 3
    assert auroc["within_spread"]  # 0.01 is far below the spread of 0.2
    table = parity.markdown({"32": reference, "bf16": other}, "32", "bf16")
    assert "| test_auroc | 0.700 ± 0.200 [0.500, 0.900] |" in table
    assert "+0.010 [+0.010, +0.010] | yes |" in table


def test_spread_is_the_reference_one(parity: ModuleType) -> None:
    # The float32 runs agree; bf16 scatters: a shift of 0.05 is outside the
    # float32 spread even though it is inside bf16's.
    reference = parity.summarize(runs(parity, {0: [0.5], 1: [0.5], 2: [0.5]}))
    other = parity.summarize(runs(parity, {0: [0.35], 1: [0.55], 2: [0.75]}))
    result = parity.compare({"32": reference, "bf16": other}, "32", "bf16")
    assert result["val_f1"]["difference"] == pytest.approx(0.05)
    assert not result["val_f1"]["within_spread"]
    assert result["val_f1"]["low"] < 0 < result["val_f1"]["high"]


def test_one_common_seed_has_no_interval(parity: ModuleType) -> None:
    reference = parity.summarize(runs(parity, {0: [0.5], 1: [0.6]}))
    other = parity.summarize(runs(parity, {1: [0.6]}))
    result = parity.compare({"32": reference, "bf16": other}, "32", "bf16")
    assert result["test_f1_oracle"]["seeds"] == 1
    assert math.isnan(result["test_f1_oracle"]["low"])
    # Only the shared seed is compared: seed 1 agrees, so no difference,
    # although the means over all seeds differ (0.55 against 0.6).
    assert result["test_f1_oracle"]["difference"] == pytest.approx(0.0)
