"""The ``torchgeo-quake map`` subcommand: its parser and handler.

Private to :mod:`torchgeo_quake.cli`. The options are read from
:class:`~torchgeo_quake.mapping.settings.MapSettings` (no PyTorch); Lightning
and the mapping code are imported only when the command runs.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from ._cli_common import HelpFormatter, epilog_of, integer_type, number_type

if TYPE_CHECKING:
    from .mapping.settings import MapOption


def _run_map(args: argparse.Namespace) -> int:
    """Handler of ``map`` (imports Lightning and the mapping code lazily).

    Args:
        args: parsed arguments

    Returns:
        Exit status.
    """
    from .mapping.command import map_cli

    return map_cli(args)


def _map_devices(value: str) -> int | str:
    """Parse Lightning's ``devices``: a count >= 1 or ``auto``.

    Args:
        value: command-line text

    Returns:
        The count, or ``"auto"``.

    Raises:
        argparse.ArgumentTypeError: If it is neither.
    """
    if value == "auto":
        return value
    try:
        count = int(value)
    except ValueError as err:
        raise argparse.ArgumentTypeError(
            f"devices must be a number or 'auto', got {value!r}"
        ) from err
    if count < 1:
        raise argparse.ArgumentTypeError(f"devices must be at least 1, got {value}")
    return count


def _map_argument(option: MapOption) -> dict[str, Any]:
    """The :meth:`argparse.ArgumentParser.add_argument` keywords of a map option.

    Args:
        option: the command-line form of a
            :class:`~torchgeo_quake.mapping.settings.MapSettings` field

    Returns:
        The keywords (the option's text is parsed by :func:`integer_type`,
        :func:`number_type` or :func:`_map_devices` as its kind says).
    """
    kwargs: dict[str, Any] = {"help": option.help}
    if option.metavar is not None:
        kwargs["metavar"] = option.metavar
    if option.kind in ("flag", "inverse-flag"):
        return {**kwargs, "action": "store_true"}
    if option.kind == "toggle":
        return {**kwargs, "action": argparse.BooleanOptionalAction, "default": None}
    if option.required:
        kwargs["required"] = True
    else:
        kwargs["default"] = option.default
    if option.kind == "integer":
        kwargs["type"] = integer_type(int(option.low))
    elif option.kind == "number":
        kwargs["type"] = number_type(option.low, option.high, option.low_open)
    elif option.kind == "devices":
        kwargs["type"] = _map_devices
    if option.choices is not None:
        kwargs["choices"] = option.choices
    return kwargs


def add_map(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
) -> None:
    """Register the ``map`` subcommand.

    Its options are the fields of
    :class:`~torchgeo_quake.mapping.settings.MapSettings` that have a
    command-line form (a cheap import: no PyTorch).

    Args:
        subparsers: the subparser collection of the main parser
    """
    from .mapping.settings import MapSettings

    parser = subparsers.add_parser(
        "map",
        formatter_class=HelpFormatter,
        epilog=epilog_of("map"),
        help="map the damage of every building of a city with a trained model",
        description=(
            "Run a trained damage model on every building footprint covered by a "
            "post-event SAR image and write DIR/damage.gpkg, damage.geojson, "
            "summary.json, overview.png and map.html (an interactive map that "
            "works offline). Every footprint appears once: predicted, or skipped "
            "with the reason."
        ),
    )
    required = parser.add_argument_group("required")
    for option in MapSettings.cli_options().values():
        group = required if option.required else parser
        group.add_argument(option.flag, **_map_argument(option))
    parser.set_defaults(func=_run_map)
