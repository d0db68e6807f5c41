"""The ``torchgeo-quake simulate`` subcommand: its parser and handler.

Private to :mod:`torchgeo_quake.cli`; the simulator is imported only when the
command runs.
"""

from __future__ import annotations

import argparse

from ._cli_common import HelpFormatter, epilog_of, integer_type, scale_type
from .paper import CITY_SLUGS

#: Slugs of the simulated cities (:data:`torchgeo_quake.paper.CITY_SLUGS`).
CITY_CHOICES: tuple[str, ...] = CITY_SLUGS


def _run_simulate(args: argparse.Namespace) -> int:
    """Handler of ``simulate`` (imports the simulator lazily).

    Args:
        args: parsed arguments

    Returns:
        Exit status.
    """
    from .simulation.command import simulate_cli

    return simulate_cli(args)


def add_simulate(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
) -> None:
    """Register the ``simulate`` subcommand.

    Args:
        subparsers: the subparser collection of the main parser
    """
    parser = subparsers.add_parser(
        "simulate",
        formatter_class=HelpFormatter,
        epilog=epilog_of("simulate"),
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
        type=scale_type,
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
    parser.add_argument(
        "--buildings",
        type=integer_type(2),
        default=None,
        metavar="N",
        help=(
            "simulate N buildings inside each city's SAR image instead of the "
            "scaled Table II counts (keeps the damaged share; --scale is ignored), "
            "e.g. one large city for the mapping benchmark"
        ),
    )
    parser.add_argument(
        "--scenario",
        choices=("calibrated", "v0.1"),
        default="calibrated",
        help=(
            "damage and image model: 'calibrated' (default; GEM vulnerability, "
            "ground motion of the 2023 ruptures, calibrated SAR) or 'v0.1' (the "
            "model of versions 0.1 and 0.2)"
        ),
    )
    parser.add_argument(
        "--sar-contrast",
        type=float,
        default=None,
        metavar="C",
        help=(
            "multiplier of the SAR damage signature (calibrated scenario; "
            "default 1, 0 = no damage cue in the SAR image)"
        ),
    )
    parser.add_argument(
        "--vulnerability-strength",
        type=float,
        default=None,
        metavar="S",
        help=(
            "weight of the building's GEM vulnerability in the damage draw "
            "(calibrated scenario; default 1, 0 = damage independent of the "
            "building type)"
        ),
    )
    parser.set_defaults(func=_run_simulate)
