"""The ``torchgeo-quake`` command line.

A thin dispatcher: each subcommand is a parser plus a handler that imports its
implementation lazily, so ``torchgeo-quake --help`` stays fast.

.. versionadded:: 0.1
"""

from __future__ import annotations

import argparse
import math
import shlex
import sys
import traceback
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from . import __version__
from .paper import CITY_SLUGS
from .utils import plain_warnings

if TYPE_CHECKING:
    from .mapping.settings import MapOption

__all__ = ["build_parser", "main"]

#: Slugs of the simulated cities (:data:`torchgeo_quake.paper.CITY_SLUGS`).
CITY_CHOICES: tuple[str, ...] = CITY_SLUGS


def _integer(minimum: int) -> Callable[[str], int]:
    """Make an argparse type for integers of at least *minimum*.

    Args:
        minimum: smallest accepted value

    Returns:
        A function that parses command-line text and raises
        :class:`argparse.ArgumentTypeError` on other input.
    """

    def parse(value: str) -> int:
        try:
            number = int(value)
        except ValueError as err:
            raise argparse.ArgumentTypeError(f"not an integer: {value!r}") from err
        if number < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        return number

    return parse


def _number(
    low: float, high: float = math.inf, low_open: bool = False
) -> Callable[[str], float]:
    """Make an argparse type for numbers in [low, high] (or (low, high]).

    Args:
        low: lower bound
        high: upper bound (inclusive)
        low_open: whether *low* itself is excluded

    Returns:
        A function that parses command-line text and raises
        :class:`argparse.ArgumentTypeError` on other input.
    """
    interval = f"{'(' if low_open else '['}{low:g}, {high:g}]"

    def parse(value: str) -> float:
        try:
            number = float(value)
        except ValueError as err:
            raise argparse.ArgumentTypeError(f"not a number: {value!r}") from err
        above = number > low if low_open else number >= low
        if not (above and number <= high):
            raise argparse.ArgumentTypeError(f"must be in {interval}, got {value}")
        return number

    return parse


#: A share of a scene in (0, 1].
_scale = _number(0.0, 1.0, low_open=True)


def _run_simulate(args: argparse.Namespace) -> int:
    """Handler of ``simulate`` (imports the simulator lazily).

    Args:
        args: parsed arguments

    Returns:
        Exit status.
    """
    from .simulation.command import simulate_cli

    return simulate_cli(args)


#: Examples shown at the end of each subcommand's ``--help``.
EXAMPLES: dict[str, str] = {
    "simulate": (
        "torchgeo-quake simulate data/kahramanmaras --scale 0.2\n"
        "torchgeo-quake simulate data/newcity --cities nurdagi --seed 7 --scale 0.2\n"
        "torchgeo-quake simulate data/low-contrast --scale 0.2 --sar-contrast 0.5\n"
        "torchgeo-quake simulate data/old-model --scale 0.2 --scenario v0.1"
    ),
    "protocol": (
        "torchgeo-quake protocol cv --quick --out runs/quick-cv\n"
        "torchgeo-quake protocol loco --out runs/loco\n"
        "torchgeo-quake protocol cv --out runs/cv-fp32 --precision 32-true\n"
        "torchgeo-quake protocol blocked --out runs/blocked --buffer 80\n"
        "torchgeo-quake protocol blocked-islahiye --block-size 250 \\\n"
        "    --out runs/blocked-islahiye\n"
        "torchgeo-quake protocol loco --selection inner-city --out runs/loco-inner"
    ),
    "map": (
        "torchgeo-quake map --sar data/newcity/nurdagi/sar.tif \\\n"
        "    --dsm data/newcity/nurdagi/dsm.tif \\\n"
        "    --exposure data/newcity/nurdagi/gem.csv \\\n"
        "    --footprints data/newcity/nurdagi/buildings.gpkg \\\n"
        "    --checkpoint runs/all_inputs/checkpoints/best.ckpt \\\n"
        "    --out maps/nurdagi"
    ),
}


class _HelpFormatter(argparse.HelpFormatter):
    """Wraps descriptions as usual; keeps the lines of the examples as written."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        head, marker, examples = text.partition("examples:\n")
        filled = super()._fill_text(head, width, indent) if head.strip() else ""
        if not marker:
            return filled
        lines = [indent + "  " + line for line in examples.splitlines()]
        return (filled + "\n\n" if filled else "") + "\n".join(
            [indent + "examples:", *lines]
        )


def _epilog(command: str, text: str = "") -> str:
    """The epilog of a subcommand: *text*, then its examples.

    Args:
        command: the subcommand
        text: prose shown before the examples

    Returns:
        The epilog.
    """
    return (text + "\n\n" if text else "") + "examples:\n" + EXAMPLES[command]


def _add_simulate(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
) -> None:
    """Register the ``simulate`` subcommand.

    Args:
        subparsers: the subparser collection of the main parser
    """
    parser = subparsers.add_parser(
        "simulate",
        formatter_class=_HelpFormatter,
        epilog=_epilog("simulate"),
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
    parser.add_argument(
        "--buildings",
        type=_integer(2),
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


def _run_protocol(args: argparse.Namespace) -> int:
    """Handler of ``protocol`` (imports Lightning and the runner lazily).

    Args:
        args: parsed arguments

    Returns:
        Exit status.
    """
    from .protocols.command import protocol_cli

    return protocol_cli(args)


#: The configuration files of the paper's three input configurations.
PROTOCOL_CONFIGS: tuple[str, ...] = (
    "experiments/sar_ftp.yaml",
    "experiments/sar_ftp_dsm.yaml",
    "experiments/all_inputs.yaml",
)


def _add_protocol(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
) -> None:
    """Register the ``protocol`` subcommand.

    Args:
        subparsers: the subparser collection of the main parser
    """
    parser = subparsers.add_parser(
        "protocol",
        help="run one of the paper's evaluation protocols and write its table",
        description=(
            "Train and test every run of a protocol (configuration x split x "
            "seed) and write the paper's table (Markdown, CSV, JSON; at the "
            "best-F1 threshold of the test split and at the validation threshold) "
            "and figures (PNG) into OUT. cv: 5-fold cross-validation over all "
            "cities (Table III); loco: leave-one-city-out (Table IV); islahiye: "
            "5-fold cross-validation on Islahiye (Table V); blocked and "
            "blocked-islahiye: the same with spatially blocked folds (whole "
            "--block-size squares per fold, optionally a --buffer; not in the "
            "paper). Resumable: finished runs in OUT are not trained again."
        ),
        formatter_class=_HelpFormatter,
        epilog=_epilog(
            "protocol",
            "Every configuration is checked against its classes first: an unknown "
            "key or a wrong value stops the command before anything is written. "
            "After an interruption, run the same command again; an unfinished run "
            "resumes from its checkpoints/last.ckpt. If that file is damaged, the "
            "command stops and names it: delete it (or that run's folder) to "
            "retrain that run from its first epoch.",
        ),
    )
    parser.add_argument(
        "protocol",
        choices=("cv", "loco", "islahiye", "blocked", "blocked-islahiye"),
        help="the protocol",
    )
    parser.add_argument(
        "--configs",
        nargs="+",
        default=list(PROTOCOL_CONFIGS),
        metavar="YAML",
        help="experiment configuration files, one per input configuration "
        f"(default: {' '.join(PROTOCOL_CONFIGS)}; a path experiments/NAME.yaml "
        "that is not in the current folder is read from the copy installed with "
        "the package, so the defaults work from any folder)",
    )
    parser.add_argument("--out", required=True, help="output folder, e.g. runs/cv")
    parser.add_argument(
        "--seeds",
        nargs="+",
        type=int,
        default=[0],
        metavar="SEED",
        help="repeat the protocol per seed (split, sampling, training; default 0)",
    )
    parser.add_argument(
        "--max-epochs",
        type=_integer(1),
        default=None,
        help="epochs per run (default: the configuration's; 2 with --quick)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="small simulated scene (scale 0.1, in data/kahramanmaras-quick) and "
        "2 epochs: smoke tests and docs, minutes on a CPU",
    )
    parser.add_argument(
        "--scale",
        type=_scale,
        default=None,
        help="size of the simulated scene in (0, 1] (default 1, or 0.1 with "
        "--quick); a scale other than 1 uses its own data root",
    )
    parser.add_argument(
        "--root",
        default=None,
        help="data root (default: the configuration's, or a per-scale root)",
    )
    splits = parser.add_argument_group("splits", "spatial blocks and selection")
    splits.add_argument(
        "--block-size",
        type=float,
        default=None,
        metavar="METRES",
        help="blocked protocols: side of the square blocks assigned whole to a "
        "fold (default 1000 for blocked, 500 for blocked-islahiye, times "
        "sqrt(scale) on a smaller simulated scene: 316 and 158 with --quick)",
    )
    splits.add_argument(
        "--buffer",
        type=float,
        default=0.0,
        metavar="METRES",
        help="blocked protocols: drop training and validation buildings with "
        "a test building of their city within this distance in x and in y "
        "(a square; default 0: none; 40 keeps test centroids out of training "
        "patches, 80 keeps the patches apart)",
    )
    splits.add_argument(
        "--selection",
        choices=("random", "inner-city"),
        default="random",
        help="loco: choose checkpoint and threshold on a random validation "
        "share of the training cities (default, the paper's) or on the "
        "training city with the most damaged buildings (inner-city); run each "
        "into its own --out",
    )
    lightning = parser.add_argument_group(
        "Lightning", "passed to lightning.pytorch.Trainer (default: configuration's)"
    )
    lightning.add_argument("--accelerator", default=None, help="cpu, gpu, auto, ...")
    lightning.add_argument(
        "--devices", default=None, help="number of devices, a list (0,1) or auto"
    )
    lightning.add_argument("--strategy", default=None, help="e.g. ddp, auto")
    lightning.add_argument(
        "--precision",
        default=None,
        help="e.g. 32-true (float32) or bf16-mixed (the configurations'; "
        "float32 where the hardware has no bfloat16)",
    )
    lightning.add_argument(
        "--num-nodes", type=_integer(1), default=None, help="number of nodes"
    )
    lightning.add_argument(
        "--max-time",
        default=None,
        help="time limit per run, DD:HH:MM:SS (default: none; the configurations' "
        "max_time, meant for a single `torchgeo fit`, is not used); runs it stops "
        "are flagged in the tables",
    )
    parser.add_argument(
        "--keep-checkpoints",
        action="store_true",
        help="keep each run's checkpoints (deleted once the run is done by default)",
    )
    parser.add_argument(
        "--no-progress", action="store_true", help="hide the progress bar"
    )
    # Internal knobs for tests: cap the batches of each epoch.
    parser.add_argument(
        "--limit-train-batches", type=_integer(1), help=argparse.SUPPRESS
    )
    parser.add_argument("--limit-val-batches", type=_integer(1), help=argparse.SUPPRESS)
    parser.set_defaults(func=_run_protocol)


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
        The keywords (the option's text is parsed by :func:`_integer`,
        :func:`_number` or :func:`_map_devices` as its kind says).
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
        kwargs["type"] = _integer(int(option.low))
    elif option.kind == "number":
        kwargs["type"] = _number(option.low, option.high, option.low_open)
    elif option.kind == "devices":
        kwargs["type"] = _map_devices
    if option.choices is not None:
        kwargs["choices"] = option.choices
    return kwargs


def _add_map(
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
        formatter_class=_HelpFormatter,
        epilog=_epilog("map"),
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
    parser.add_argument(
        "--debug",
        action="store_true",
        help="show the full traceback of an error (also accepted after COMMAND)",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    _add_simulate(subparsers)
    _add_protocol(subparsers)
    _add_map(subparsers)
    return parser


#: Exit status of a run interrupted with Ctrl-C (128 + SIGINT).
EXIT_INTERRUPTED = 130

#: What to do after an interruption, per command.
_INTERRUPTED = {
    "map": "nothing was written (a map is put in place only once complete); "
    "run the command again to start over",
    "protocol": "the finished runs are kept, and an unfinished one resumes from "
    "its last epoch; to resume, run",
    "simulate": "run the command again with --overwrite to start over",
}


def _debug_first(argv: list[str]) -> list[str]:
    """Accept ``--debug`` anywhere: move it before the subcommand.

    Args:
        argv: the arguments

    Returns:
        The arguments with ``--debug`` first, if given.
    """
    if "--debug" not in argv:
        return argv
    return ["--debug", *[a for a in argv if a != "--debug"]]


def _error_message(err: BaseException) -> str:
    """The one line (or few) that explains an error to the user.

    Args:
        err: the error

    Returns:
        The message: the error's own for the errors of bad input or
        environment (:class:`OSError`, :class:`ValueError`,
        :class:`ImportError`, memory, Lightning's configuration errors), a bug
        report for any other.
    """
    name = type(err).__name__
    if name == "OutOfMemoryError" or isinstance(err, MemoryError):
        return (
            f"out of memory ({name}: {err}). Pass a smaller --batch-size (and "
            "--num-workers 0), or run on a machine with more memory."
        )
    if isinstance(err, OSError):
        if err.strerror and err.filename is not None:
            # A bare OS error: say which file and what to check.
            hint = (
                "; check the permissions of that path"
                if isinstance(err, PermissionError)
                else ""
            )
            return f"{err.strerror}: {str(err.filename)!r}{hint}"
        return err.strerror or str(err)  # without the "[Errno N]" prefix
    if isinstance(err, (ValueError, ImportError)):
        return str(err)
    if name == "MisconfigurationException":  # Lightning's, for bad options
        return f"{err} (check --accelerator and --devices)"
    return (
        f"unexpected {name}: {err}. This is a bug in torchgeo-quake: rerun with "
        "--debug for the full traceback and report it."
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line.

    Every error of every command is caught here, once: bad input and its
    environment (missing or unreadable files, permissions, unusable values)
    print one actionable line, ``torchgeo-quake <command>: error: ...``;
    anything else prints a line saying it is a bug, with the exception's type
    and message. ``--debug`` (anywhere on the command line) prints the full
    traceback as well.

    Args:
        argv: arguments (default: ``sys.argv[1:]``)

    Returns:
        Exit status: 0 on success, 1 on an error (message on stderr), 2 on
        invalid usage, 130 when interrupted (Ctrl-C).

    .. versionadded:: 0.1
    .. versionchanged:: 0.2
       Warnings print as ``torchgeo-quake <command>: warning: <message>``
       (:func:`~torchgeo_quake.utils.plain_warnings`); an interrupted
       ``protocol`` prints the command that resumes it.
    """
    parser = build_parser()
    words = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(_debug_first(words))
    if getattr(args, "func", None) is None:
        parser.print_help(sys.stderr)
        return 2
    command = f"{parser.prog} {args.command}"
    try:
        with plain_warnings(f"{command}: warning"):
            return int(args.func(args))
    except KeyboardInterrupt:
        if args.debug:
            traceback.print_exc()
        hint = _INTERRUPTED.get(args.command, "run the command again")
        if args.command == "protocol":
            again = shlex.join([parser.prog, *words])
            hint = f"{hint}: {again}"
        print(f"{command}: interrupted: {hint}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as err:
        if args.debug:
            traceback.print_exc()
        print(f"{command}: error: {_error_message(err)}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
