"""The ``torchgeo-quake`` command line.

A thin dispatcher: each subcommand is a parser plus a handler that imports its
implementation lazily, so ``torchgeo-quake --help`` stays fast.

.. versionadded:: 0.1
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from . import __version__

__all__ = ["build_parser", "main"]

#: Slugs of the simulated cities (the order of
#: :data:`torchgeo_quake.datasets.simulation.CITIES`).
CITY_CHOICES: tuple[str, ...] = (
    "islahiye",
    "kahramanmaras",
    "nurdagi",
    "osmaniye",
    "turkoglu",
)


def _scale(value: str) -> float:
    """Parse a scale in (0, 1].

    Args:
        value: command-line text

    Returns:
        The scale.

    Raises:
        argparse.ArgumentTypeError: If it is not a number in (0, 1].
    """
    try:
        scale = float(value)
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"not a number: {value!r}") from err
    if not 0.0 < scale <= 1.0:
        raise argparse.ArgumentTypeError(f"scale must be in (0, 1], got {value}")
    return scale


def _run_simulate(args: argparse.Namespace) -> int:
    """Handler of ``simulate`` (imports the simulator lazily).

    Args:
        args: parsed arguments

    Returns:
        Exit status.
    """
    from .datasets.simulation.command import simulate_cli

    return simulate_cli(args)


def _add_simulate(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
) -> None:
    """Register the ``simulate`` subcommand.

    Args:
        subparsers: the subparser collection of the main parser
    """
    parser = subparsers.add_parser(
        "simulate",
        help="write the simulated five-city post-earthquake scene",
        description=(
            "Simulate post-event SAR, DSM, footprints, damage reference and GEM "
            "exposure of the paper's five cities (Russo et al. 2025) in the real "
            "file formats, under ROOT/<city>/."
        ),
    )
    parser.add_argument("root", help="output folder (created if needed)")
    parser.add_argument(
        "--cities",
        nargs="+",
        choices=CITY_CHOICES,
        default=None,
        metavar="CITY",
        help=f"cities to simulate (default: all of {', '.join(CITY_CHOICES)})",
    )
    parser.add_argument(
        "--scale",
        type=_scale,
        default=1.0,
        help="factor in (0, 1] applied to the Table II building counts (default 1)",
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace existing city folders and scene.json",
    )
    parser.add_argument(
        "--gem-dir",
        default=None,
        help=(
            "folder with GEM's Exposure_{Res,Com,Ind}_Turkey_Adm1.csv, or 'builtin' "
            "(default: ../shared/data/gem beside the repository if present, else "
            "the built-in table)"
        ),
    )
    parser.set_defaults(func=_run_simulate)


def build_parser() -> argparse.ArgumentParser:
    """Build the ``torchgeo-quake`` argument parser.

    Returns:
        The parser with all subcommands.

    .. versionadded:: 0.1
    """
    parser = argparse.ArgumentParser(
        prog="torchgeo-quake",
        description="Earthquake building-damage detection from post-event SAR.",
    )
    parser.add_argument("--version", action="version", version=__version__)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    _add_simulate(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line.

    Args:
        argv: arguments (default: ``sys.argv[1:]``)

    Returns:
        Exit status: 0 on success, 1 on a user error (message on stderr), 2 on
        invalid usage.

    .. versionadded:: 0.1
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(args.func(args))
    except (FileExistsError, FileNotFoundError, ValueError) as err:
        print(f"{parser.prog}: error: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
