"""Simulator scenarios: validation, records in scene.json, outdated scenes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from torchgeo_quake.cli import build_parser
from torchgeo_quake.datasets import KahramanmarasDamage
from torchgeo_quake.simulation import (
    DEFAULT_SCENARIO,
    SCENE_FILE,
    Scenario,
    resolve_scenario,
    simulate_scene,
)
from torchgeo_quake.simulation.scene_record import (
    SIMULATOR_VERSION,
    outdated_reason,
    scene_scenario,
)

CITY = "osmaniye"
SCALE = 0.05


def test_default_is_calibrated() -> None:
    assert DEFAULT_SCENARIO.name == "calibrated"
    assert not DEFAULT_SCENARIO.is_v01
    assert resolve_scenario(None) == DEFAULT_SCENARIO
    assert resolve_scenario("v0.1").is_v01


def test_knobs_override_and_label() -> None:
    s = resolve_scenario("calibrated", sar_contrast=0.5)
    assert s.sar_contrast == 0.5 and s.vulnerability_strength == 1.0
    assert s.label() == "calibrated (SAR contrast 0.5)"
    assert s.as_dict() == {
        "name": "calibrated",
        "sar_contrast": 0.5,
        "vulnerability_strength": 1.0,
    }
    assert Scenario(**s.as_dict()) == s


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"name": "v0.2"}, "unknown simulator scenario 'v0.2'"),
        ({"sar_contrast": -1.0}, "sar_contrast must be >= 0"),
        ({"vulnerability_strength": float("nan")}, "finite"),
        ({"name": "v0.1", "sar_contrast": 0.5}, "v0.1 scenario has no knobs"),
    ],
)
def test_invalid_scenarios(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        Scenario(**kwargs)  # type: ignore[arg-type]


def test_cli_parses_scenario_and_knobs() -> None:
    args = build_parser().parse_args(
        ["simulate", "out", "--sar-contrast", "0.25", "--vulnerability-strength", "2"]
    )
    assert args.scenario == "calibrated"
    assert args.sar_contrast == 0.25 and args.vulnerability_strength == 2.0
    args = build_parser().parse_args(["simulate", "out", "--scenario", "v0.1"])
    assert args.scenario == "v0.1" and args.sar_contrast is None


def _fake_version_1(root: Path) -> None:
    """Turn a v0.1 scene into what torchgeo_quake 0.2 wrote (simulator 1)."""
    path = root / SCENE_FILE
    scene = json.loads(path.read_text(encoding="utf-8"))
    scene["parameters"].pop("scenario")
    scene["parameters"]["simulator_version"] = 1
    scene["simulator_version"] = 1
    scene["version"] = "0.2.0"
    path.write_text(json.dumps(scene), encoding="utf-8")


@pytest.fixture(scope="module")
def old_scene(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("old")
    simulate_scene(root, cities=[CITY], scale=SCALE, scenario="v0.1", progress=False)
    _fake_version_1(root)
    return root


def test_v01_scene_records_its_scenario(tmp_path: Path) -> None:
    summary = simulate_scene(
        tmp_path, cities=[CITY], scale=SCALE, scenario="v0.1", progress=False
    )
    assert summary["parameters"]["scenario"]["name"] == "v0.1"
    assert summary["parameters"]["simulator_version"] == SIMULATOR_VERSION
    assert scene_scenario(summary) == Scenario(name="v0.1")
    assert outdated_reason(summary) is None
    # v0.1 writes no ground-motion layer.
    assert not (tmp_path / CITY / "pga.tif").exists()


def test_version_1_scene_is_outdated(old_scene: Path) -> None:
    scene = json.loads((old_scene / SCENE_FILE).read_text(encoding="utf-8"))
    assert scene_scenario(scene) == Scenario(name="v0.1")
    reason = outdated_reason(scene)
    assert reason is not None
    assert "simulator version 1" in reason and "--overwrite" in reason
    assert "--scenario v0.1" in reason
    assert "version 2 made" in reason and "version 3 added" in reason


def test_version_2_calibrated_scene_is_outdated(tmp_path: Path) -> None:
    # A calibrated scene of version 2 (before the neighbourhood term): the
    # message says what changed, and the dataset does not suggest v0.1.
    simulate_scene(tmp_path, cities=[CITY], scale=SCALE, progress=False)
    path = tmp_path / SCENE_FILE
    scene = json.loads(path.read_text(encoding="utf-8"))
    scene["parameters"]["simulator_version"] = 2
    scene["simulator_version"] = 2
    path.write_text(json.dumps(scene), encoding="utf-8")
    reason = outdated_reason(scene)
    assert reason is not None
    assert "simulator version 2 (scenario calibrated" in reason
    assert "neighbourhood term" in reason
    assert "made the calibrated scenario the default" not in reason
    with pytest.raises(ValueError, match="outdated scene") as info:
        KahramanmarasDamage(tmp_path, cities=[CITY], scale=SCALE, cache=False)
    assert "pass scenario='v0.1'" not in str(info.value)


def test_simulate_refuses_outdated_scene_and_keeps_it(old_scene: Path) -> None:
    before = {p: p.read_bytes() for p in sorted(old_scene.rglob("*")) if p.is_file()}
    with pytest.raises(FileExistsError, match="outdated scene"):
        simulate_scene(old_scene, cities=[CITY], scale=SCALE, progress=False)
    after = {p: p.read_bytes() for p in sorted(old_scene.rglob("*")) if p.is_file()}
    assert after == before


def test_dataset_reports_outdated_scene(old_scene: Path) -> None:
    with pytest.raises(ValueError, match=r"outdated scene.*scenario='v0\.1'"):
        KahramanmarasDamage(old_scene, cities=[CITY], scale=SCALE, cache=False)
    # The old model is still usable when asked for by name.
    ds = KahramanmarasDamage(
        old_scene, cities=[CITY], scale=SCALE, cache=False, scenario="v0.1"
    )
    assert len(ds) > 0
    labels = np.asarray([int(ds[i]["label"]) for i in range(len(ds))])
    assert labels.sum() >= 1


def test_dataset_refuses_another_scenario(tmp_path: Path) -> None:
    simulate_scene(tmp_path, cities=[CITY], scale=SCALE, scenario="v0.1")
    with pytest.raises(ValueError, match=r"scenario v0\.1, but scenario='calibrated'"):
        KahramanmarasDamage(
            tmp_path, cities=[CITY], scale=SCALE, cache=False, scenario="calibrated"
        )


def test_datamodule_passes_the_scenario(old_scene: Path) -> None:
    from torchgeo_quake.datamodules import KahramanmarasDamageDataModule

    kwargs = {"cities": [CITY], "scale": SCALE}
    with pytest.raises(ValueError, match="outdated scene"):
        KahramanmarasDamageDataModule(old_scene, **kwargs).prepare_data()
    KahramanmarasDamageDataModule(old_scene, scenario="v0.1", **kwargs).prepare_data()


def _set_version(root: Path, version: int) -> dict[str, Any]:
    """Record *version* as the simulator that wrote the scene in *root*."""
    path = root / SCENE_FILE
    scene: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    scene["parameters"]["simulator_version"] = version
    scene["simulator_version"] = version
    path.write_text(json.dumps(scene), encoding="utf-8")
    return scene


def test_version_2_v01_scene_is_current(tmp_path: Path) -> None:
    # Version 2 recorded the scenario, and v0.1 is drawn identically since,
    # so a v0.1 scene of version 2 is neither outdated nor another scene.
    simulate_scene(tmp_path, cities=[CITY], scale=SCALE, scenario="v0.1")
    scene = _set_version(tmp_path, 2)
    assert outdated_reason(scene) is None
    files = sorted(p for p in (tmp_path / CITY).iterdir() if p.is_file())
    before = {p: p.read_bytes() for p in files}
    again = simulate_scene(tmp_path, cities=[CITY], scale=SCALE, scenario="v0.1")
    assert again["cities"][CITY]["sha256"] == scene["cities"][CITY]["sha256"]
    assert {p: p.read_bytes() for p in files} == before
    ds = KahramanmarasDamage(tmp_path, cities=[CITY], scale=SCALE, cache=False)
    assert len(ds) > 0
    # A version the simulator does not know yet is still reported.
    assert outdated_reason(_set_version(tmp_path, SIMULATOR_VERSION + 1)) is not None
