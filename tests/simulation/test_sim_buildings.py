"""Cities of a chosen size: ``--buildings N`` / ``simulate_scene(buildings=N)``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from torchgeo_quake.cli import build_parser, main
from torchgeo_quake.simulation import get_city, load_exposure, simulate_layout
from torchgeo_quake.simulation.city import count_override, effective_scale


def test_count_override_keeps_the_damaged_share() -> None:
    nurdagi = get_city("nurdagi")  # 3289 intact, 498 damaged
    assert count_override(nurdagi, 3787) == (3289, 498)
    intact, damaged = count_override(nurdagi, 100_000)
    assert intact + damaged == 100_000
    assert damaged == round(100_000 * 498 / 3787)
    assert count_override(nurdagi, 2) == (1, 1)
    with pytest.raises(ValueError, match="buildings"):
        count_override(nurdagi, 1)
    assert effective_scale(nurdagi, 3787) == 1.0


def test_layout_with_a_building_count() -> None:
    city = get_city("osmaniye")  # 333 buildings in Table II
    sim = simulate_layout(city, load_exposure(), n_buildings=500)
    assert sum(sim.reference_counts()) == 500
    assert sim.reference_counts() == count_override(city, 500)
    assert sim.scale == pytest.approx(500 / 333)


def test_simulate_command_with_buildings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "scene"
    argv = ["simulate", str(root), "--cities", "turkoglu", "--buildings", "60"]
    assert main(argv) == 0
    assert "60 buildings per city" in capsys.readouterr().out
    summary = json.loads((root / "scene.json").read_text(encoding="utf-8"))
    assert summary["parameters"]["buildings"] == 60
    city = summary["cities"]["turkoglu"]
    assert city["intact_reference"] + city["damaged_reference"] == 60
    assert main(argv) == 0  # same parameters: reused
    # Without --buildings, the parameters differ: refused.
    assert main(argv[:-2]) == 1


def test_buildings_option_is_validated(capsys: pytest.CaptureFixture[str]) -> None:
    assert build_parser().parse_args(["simulate", "out"]).buildings is None
    with pytest.raises(SystemExit):
        main(["simulate", "out", "--buildings", "1"])
    assert "at least 2" in capsys.readouterr().err
