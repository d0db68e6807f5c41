"""Shared helpers of the ``torchgeo-quake`` subcommand parsers.

Argparse types for bounded numbers, the help formatter that keeps examples as
written, and the examples themselves. Private to :mod:`torchgeo_quake.cli`.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable


def integer_type(minimum: int) -> Callable[[str], int]:
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


def number_type(
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
scale_type = number_type(0.0, 1.0, low_open=True)

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


class HelpFormatter(argparse.HelpFormatter):
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


def epilog_of(command: str, text: str = "") -> str:
    """The epilog of a subcommand: *text*, then its examples.

    Args:
        command: the subcommand
        text: prose shown before the examples

    Returns:
        The epilog.
    """
    return (text + "\n\n" if text else "") + "examples:\n" + EXAMPLES[command]
