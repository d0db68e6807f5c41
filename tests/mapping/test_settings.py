"""MapSettings: the one list of the map's options, for the CLI and map_damage."""

from __future__ import annotations

import dataclasses
import inspect
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from torchgeo_quake.cli import build_parser
from torchgeo_quake.mapping import MapSettings, map_damage
from torchgeo_quake.mapping.settings import RADIOMETRIES

PATHS: dict[str, Any] = {
    "sar": "s.tif",
    "footprints": "b.gpkg",
    "checkpoint": "m.ckpt",
    "out": "o",
}


def test_map_damage_signature_is_the_settings() -> None:
    """map_damage repeats the fields: same names, same defaults."""
    parameters = inspect.signature(map_damage).parameters
    fields = {f.name: f for f in dataclasses.fields(MapSettings)}
    assert set(parameters) == set(fields)
    for name, parameter in parameters.items():
        default = fields[name].default
        if default is dataclasses.MISSING:
            default = inspect.Parameter.empty
        assert parameter.default == default, name


def test_radiometries_are_the_trainers() -> None:
    from torchgeo_quake.trainers.input_spec import RADIOMETRIES as TRAINED

    assert RADIOMETRIES == TRAINED


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"radiometry": "linear"}, r"radiometry must be 'db', 'amplitude' or"),
        ({"batch_size": 0}, "batch_size and tile_size must be positive"),
        ({"tile_size": 0}, "batch_size and tile_size must be positive"),
        ({"num_threads": 0}, "num_threads must be positive, got 0"),
        ({"cell_size": 0.0}, "cell_size must be positive, got 0.0"),
        ({"cell_size": float("nan")}, "cell_size must be positive"),
        ({"basemap": "https://x.org/t.png"}, r"XYZ tile URL template with \{z\}"),
    ],
)
def test_invalid_settings(changes: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        MapSettings(**PATHS, **changes)


def test_settings_are_frozen() -> None:
    settings = MapSettings(**PATHS)
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.batch_size = 1  # type: ignore[misc]


def test_cli_options_round_trip() -> None:
    """Defaults of the CLI give the defaults of the settings, but for verbosity."""
    argv = ["map", *(f"--{k}={v}" for k, v in PATHS.items())]
    args = build_parser().parse_args(argv)
    settings = MapSettings.from_cli(vars(args))
    assert settings == MapSettings(**PATHS, verbose=True)
    options = MapSettings.cli_options()
    assert "tile_size" not in options
    assert options["num_threads"].flag == "--threads"
    args = build_parser().parse_args(
        [*argv, "--threads", "2", "--quiet", "--progress", "--devices", "auto"]
    )
    settings = MapSettings.from_cli(vars(args), progress=False)
    assert (settings.num_threads, settings.verbose) == (2, False)
    assert (settings.progress, settings.devices) == (False, "auto")
    args = build_parser().parse_args([*argv, "--basemap", "https://x.org/t.png"])
    with pytest.raises(ValueError, match="XYZ tile URL template"):
        MapSettings.from_cli(vars(args))


def test_parser_does_not_import_torch() -> None:
    """Building the parser reads the settings without the mapping's imports."""
    code = (
        "import sys; from torchgeo_quake.cli import build_parser; build_parser(); "
        "print(sorted(m for m in ('torch', 'lightning', 'geopandas') "
        "if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).parent,
    )
    assert done.stdout.strip() == "[]"


@pytest.mark.parametrize("command", ["simulate", "protocol", "map"])
def test_help_examples_parse(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    """Every example of ``--help`` is a command line the parser accepts."""
    import shlex

    from torchgeo_quake.cli import EXAMPLES, build_parser

    parser = build_parser()
    with pytest.raises(SystemExit):
        parser.parse_args([command, "--help"])
    assert "examples:" in capsys.readouterr().out
    for line in EXAMPLES[command].replace("\\\n", " ").splitlines():
        words = shlex.split(line)
        assert words[0] == "torchgeo-quake"
        args = parser.parse_args(words[1:])
        assert args.command == command
