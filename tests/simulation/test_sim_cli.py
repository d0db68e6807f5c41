"""The ``torchgeo-quake simulate`` command."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from torchgeo_quake.cli import build_parser, main


def test_simulate_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "scene"
    argv = ["simulate", str(root), "--cities", "osmaniye", "--scale", "0.05"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "osmaniye" in out and "scene.json" in out
    summary = json.loads((root / "scene.json").read_text(encoding="utf-8"))
    assert summary["parameters"]["cities"] == ["osmaniye"]
    assert summary["cities"]["osmaniye"]["intact_reference"] == 16
    # Same parameters again: nothing to do.
    assert main(argv) == 0
    # Other parameters without --overwrite: refused with a message.
    assert main([*argv, "--seed", "3"]) == 1
    err = capsys.readouterr().err
    assert "--overwrite" in err
    assert main([*argv, "--seed", "3", "--overwrite"]) == 0
    summary = json.loads((root / "scene.json").read_text(encoding="utf-8"))
    assert summary["seed"] == 3


def test_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    with pytest.raises(SystemExit) as info:
        main(["simulate", "root", "--scale", "1.5"])
    assert info.value.code == 2
    with pytest.raises(SystemExit):
        main(["simulate", "root", "--cities", "antakya"])
    assert "--scale: must be in (0, 1]" in capsys.readouterr().err


def test_parser_defaults() -> None:
    args = build_parser().parse_args(["simulate", "out"])
    assert (args.root, args.cities, args.scale, args.seed) == ("out", None, 1.0, 0)
    assert args.overwrite is False and args.gem_dir is None


def test_missing_gem_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["simulate", str(tmp_path / "s"), "--cities", "osmaniye", "--scale", "0.05"]
    assert main([*argv, "--gem-dir", str(tmp_path / "nowhere")]) == 1
    assert "GEM exposure folder" in capsys.readouterr().err
    assert not (tmp_path / "s").exists()
