"""The ``torchgeo-quake`` command line.

A thin dispatcher: each subcommand is a parser plus a handler that imports its
implementation lazily, so ``torchgeo-quake --help`` stays fast. The
subcommands live in private modules (``_cli_simulate``, ``_cli_protocol``,
``_cli_map``, with their shared argparse helpers in ``_cli_common``); this
module builds the parser and runs it, catching every error once.

.. versionadded:: 0.1
"""

from __future__ import annotations

import argparse
import shlex
import sys
import traceback
from collections.abc import Sequence

from . import __version__

# The subcommands' constants stay importable from here (explicit re-exports).
from ._cli_common import EXAMPLES as EXAMPLES
from ._cli_map import add_map
from ._cli_protocol import PROTOCOL_CONFIGS as PROTOCOL_CONFIGS
from ._cli_protocol import add_protocol
from ._cli_simulate import CITY_CHOICES as CITY_CHOICES
from ._cli_simulate import add_simulate
from .utils import SIGTERM_EXIT_STATUS, plain_warnings

__all__ = ["build_parser", "main"]


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
    add_simulate(subparsers)
    add_protocol(subparsers)
    add_map(subparsers)
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


def _resume_hint(prog: str, args: argparse.Namespace, words: Sequence[str]) -> str:
    """What to do after a command was stopped before its end.

    Args:
        prog: the program's name
        args: the parsed arguments
        words: the command line's words after the program name

    Returns:
        The hint; for ``protocol``, with the command that resumes it.
    """
    hint = _INTERRUPTED.get(args.command, "run the command again")
    if args.command == "protocol":
        again = shlex.join([prog, *words])
        hint = f"{hint}: {again}"
    return hint


def _is_sigterm(err: SystemExit) -> bool:
    """Whether *err* is Lightning's exception for a SIGTERM.

    Lightning is imported only by the commands that train or predict, so its
    exception class is looked up only if it was loaded.

    Args:
        err: the exception

    Returns:
        True if *err* is a ``lightning.pytorch`` ``SIGTERMException``.
    """
    module = sys.modules.get("lightning.pytorch.utilities.exceptions")
    sigterm = getattr(module, "SIGTERMException", None)
    return isinstance(sigterm, type) and isinstance(err, sigterm)


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
        invalid usage, 130 when interrupted (Ctrl-C), 143 when stopped by
        SIGTERM during training or prediction (Lightning's ``SIGTERMException``,
        which would otherwise exit with status 0).

    .. versionadded:: 0.1
    .. versionchanged:: 0.2
       Warnings print as ``torchgeo-quake <command>: warning: <message>``
       (:func:`~torchgeo_quake.utils.plain_warnings`); an interrupted
       ``protocol`` prints the command that resumes it.
    .. versionchanged:: 0.3
       SIGTERM during training or prediction exits with status 143 and the
       same hint as Ctrl-C, instead of Lightning's silent status 0.
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
        hint = _resume_hint(parser.prog, args, words)
        print(f"{command}: interrupted: {hint}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except SystemExit as err:
        # Lightning turns SIGTERM into SystemExit() (exit status 0): say so and
        # fail, so that a job script does not take a stopped run for a
        # finished one.
        if not _is_sigterm(err):
            raise
        if args.debug:
            traceback.print_exc()
        hint = _resume_hint(parser.prog, args, words)
        print(f"{command}: terminated (SIGTERM): {hint}", file=sys.stderr)
        return SIGTERM_EXIT_STATUS
    except Exception as err:
        if args.debug:
            traceback.print_exc()
        print(f"{command}: error: {_error_message(err)}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
