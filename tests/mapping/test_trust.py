"""A map a responder can trust: counts with intervals, shift warnings, recalibration.

The issue's test: a shifted scene made from the small simulated city (SAR 6 dB
brighter, GEM costs and occupants ten times larger) must raise the shift
warning, and a few graded buildings must bring the expected number of damaged
buildings closer to the truth than the map without them.
"""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
import torch

from torchgeo_quake.cli import main
from torchgeo_quake.mapping import DamageMap, map_damage
from torchgeo_quake.mapping._html_notes import overview_lines, report_lines
from torchgeo_quake.mapping.shift import NOT_CHECKED
from torchgeo_quake.trainers.input_stats import INPUT_STATS_KEY

#: GEM columns of money and people (not counts of buildings).
GEM_VALUES = ("structural", "nonstructural", "contents", "day", "night", "transit")


@pytest.fixture(scope="module")
def shifted(city: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The city with SAR 6 dB brighter and GEM costs and occupants x 10."""
    root = tmp_path_factory.mktemp("shifted") / city.name
    root.mkdir()
    for name in ("buildings.gpkg", "dsm.tif", "destroyed.geojson"):
        shutil.copy(city / name, root / name)
    with rasterio.open(city / "sar.tif") as src:
        profile, amplitude = src.profile, src.read()
    with rasterio.open(root / "sar.tif", "w", **profile) as dst:
        dst.write(amplitude * np.float32(10 ** (6 / 20)))  # intensity x 4: +6 dB
    gem = pd.read_csv(city / "gem.csv")
    for column in GEM_VALUES:
        gem[column] = gem[column] * 10
    gem.to_csv(root / "gem.csv", index=False)
    return root


def _truth(root: Path) -> pd.DataFrame:
    """Every footprint's id and reference label (1: in destroyed.geojson)."""
    ids = gpd.read_file(root / "buildings.gpkg")["osm_id"].astype(np.int64)
    damaged = set(gpd.read_file(root / "destroyed.geojson")["osm_id"].astype(int))
    return pd.DataFrame({"osm_id": ids, "damaged": ids.isin(damaged).astype(int)})


def _map(root: Path, checkpoint: Path, out: Path, **kwargs: Any) -> DamageMap:
    return map_damage(
        root / "sar.tif",
        root / "buildings.gpkg",
        checkpoint,
        out,
        dsm=root / "dsm.tif",
        exposure=root / "gem.csv",
        batch_size=64,
        cell_size=200,
        **kwargs,
    )


@pytest.fixture(scope="module")
def shifted_map(
    shifted: Path,
    checkpoints: dict[str, Path],
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[DamageMap, list[str]]:
    """The shifted city mapped as is, with the warnings it raised."""
    out = tmp_path_factory.mktemp("shifted-map") / "map"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = _map(shifted, checkpoints["all"], out)
    return result, [str(w.message) for w in caught]


@pytest.fixture(scope="module")
def recalibrated_map(
    shifted: Path,
    checkpoints: dict[str, Path],
    tmp_path_factory: pytest.TempPathFactory,
) -> DamageMap:
    """The shifted city mapped with a third of its buildings graded."""
    folder = tmp_path_factory.mktemp("recalibrated")
    labels = folder / "graded.csv"
    _truth(shifted).iloc[::3].to_csv(labels, index=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _map(
            shifted,
            checkpoints["all"],
            folder / "map",
            calibration_labels=labels,
            adapt_radiometry=True,
        )


def test_the_shift_warning_fires_with_the_distance(
    shifted_map: tuple[DamageMap, list[str]],
) -> None:
    result, caught = shifted_map
    shift = result.summary["shift"]
    assert shift["checked"] and shift["out_of_range"]
    sar, gem = shift["inputs"]["sar"], shift["inputs"]["gem"]
    assert (
        sar["outside"] and sar["median_shift_iqr"] > sar["bounds"]["median_shift_iqr"]
    )
    assert sar["new_median"] - sar["train_median"] == pytest.approx(6.0, abs=0.05)
    assert gem["outside"] and gem["extreme_share"] == 1.0
    assert not shift["inputs"]["dsm_relief"]["outside"]
    printed = [m for m in caught if m.startswith("input shift:")]
    assert any("SAR values: median" in m and "interquartile" in m for m in printed)
    assert any("GEM exposure" in m for m in printed)
    assert "WARNING: The inputs differ from the model's training data" in (
        result.report()
    )
    page = (result.out / "map.html").read_text(encoding="utf-8")
    assert 'id="shift"' in page and "SAR values: median" in page
    on_disk = json.loads((result.out / "summary.json").read_text())
    assert on_disk["shift"] == shift


def test_counts_come_with_intervals_overall_and_per_unit(
    shifted_map: tuple[DamageMap, list[str]],
) -> None:
    summary = shifted_map[0].summary
    counts, exposure = summary["counts"], summary["exposure"]
    assert {"damaged", "damaged_share"} <= set(counts)  # the existing fields stay
    assert counts["expected_damaged_low"] <= counts["expected_damaged"]
    assert counts["expected_damaged"] <= counts["expected_damaged_high"]
    assert summary["interval"]["level"] == 0.9
    assert "not covered" in summary["interval"]["assumes"]
    units = summary["units"]["table"]
    assert sum(u["expected_damaged"] for u in units) == pytest.approx(
        counts["expected_damaged"], abs=0.05 * len(units)
    )
    for column in ("occupants_night", "replacement_cost_usd"):
        low, mid = exposure[f"{column}_expected_low"], exposure[f"{column}_expected"]
        assert low <= mid <= exposure[f"{column}_expected_high"]
        assert f"{column}_expected" in units[0]
    page = (shifted_map[0].out / "map.html").read_text(encoding="utf-8")
    assert "expected damaged:" in page and "90% interval" in page


def test_recalibration_recovers_the_count(
    shifted: Path,
    shifted_map: tuple[DamageMap, list[str]],
    recalibrated_map: DamageMap,
) -> None:
    truth = _truth(shifted)
    before = shifted_map[0].summary
    after = recalibrated_map.summary
    scored = set(
        gpd.read_file(recalibrated_map.out / "damage.gpkg", layer="damage")
        .query("status == 'predicted'")["osm_id"]
        .astype(int)
    )
    observed = int(truth.loc[truth["osm_id"].isin(scored), "damaged"].sum())
    error_before = abs(before["counts"]["expected_damaged"] - observed)
    error_after = abs(after["counts"]["expected_damaged"] - observed)
    assert error_after < error_before
    calibration = after["calibration"]
    assert calibration["probabilities"] == "recalibrated"
    recal = calibration["recalibration"]
    assert recal["labels_used"] + recal["labels_not_scored"] == len(truth.iloc[::3])
    adapt = after["shift"]["adapt_radiometry"]
    assert adapt["offset"] == pytest.approx(-6.0, abs=0.05)
    assert adapt["scale"] == pytest.approx(1.0, abs=0.01)
    assert "recalibrated on" in recalibrated_map.report()


def test_an_old_checkpoint_is_mapped_without_the_shift_check(
    city: Path, checkpoints: dict[str, Path], tmp_path: Path
) -> None:
    state = torch.load(checkpoints["sar_ftp"], map_location="cpu", weights_only=True)
    state.pop(INPUT_STATS_KEY, None)
    old = tmp_path / "old.ckpt"
    torch.save(state, old)
    result = map_damage(
        city / "sar.tif", city / "buildings.gpkg", old, tmp_path / "map"
    )
    assert result.summary["shift"] == {
        "checked": False,
        "reason": NOT_CHECKED,
        "warnings": [],
    }
    assert NOT_CHECKED in (tmp_path / "map" / "map.html").read_text(encoding="utf-8")
    assert NOT_CHECKED in result.report()
    with pytest.raises(ValueError, match="--adapt-radiometry needs the statistics"):
        map_damage(
            city / "sar.tif",
            city / "buildings.gpkg",
            old,
            tmp_path / "again",
            adapt_radiometry=True,
        )


def test_labels_matching_no_footprint_stop_the_command(
    city: Path,
    checkpoints: dict[str, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    labels = tmp_path / "graded.csv"
    pd.DataFrame({"osm_id": [1, 2], "damaged": [1, 0]}).to_csv(labels, index=False)
    status = main(
        [
            "map",
            "--sar",
            str(city / "sar.tif"),
            "--footprints",
            str(city / "buildings.gpkg"),
            "--checkpoint",
            str(checkpoints["sar_ftp"]),
            "--out",
            str(tmp_path / "map"),
            "--calibration-labels",
            str(labels),
            "--quiet",
        ]
    )
    assert status == 1
    error = capsys.readouterr().err
    assert "--calibration-labels" in error and str(labels) in error
    assert "none of its 2 labels matches a footprint" in error
    assert not (tmp_path / "map").exists()


def test_report_lines_say_what_is_missing_and_uncalibrated() -> None:
    summary = {
        "counts": {
            "expected_damaged": 12.34,
            "expected_damaged_low": 7.0,
            "expected_damaged_high": 18.0,
        },
        "interval": {"level": 0.9},
        "exposure": {
            "occupants_night_expected": 40.0,
            "occupants_night_expected_low": 20.0,
            "occupants_night_expected_high": 61.0,
            "occupants_day_expected": None,  # no day column in the file
            "occupants_day_expected_low": None,
            "occupants_day_expected_high": None,
        },
        "calibration": {"probabilities": "uncalibrated"},
        "shift": {"checked": False, "reason": NOT_CHECKED},
    }
    assert report_lines(summary) == [
        "expected damaged: 12.3 (90% interval 7-18)",
        "expected in damaged buildings (90% intervals):\n"
        "  40 occupants at night (20-61)",
        "probabilities uncalibrated: the expected count and its interval are "
        "not reliable",
        NOT_CHECKED,
    ]
    assert overview_lines(summary) == [
        "expected damaged: 12.3 (90% interval 7-18) - uncalibrated"
    ]
