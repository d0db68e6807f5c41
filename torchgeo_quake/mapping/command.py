"""Command-line front end of the damage mapping (``torchgeo-quake map``).

The options are built from :class:`~torchgeo_quake.mapping.settings.MapSettings`
(:func:`torchgeo_quake.cli.build_parser`) and turned back into settings here.

.. versionadded:: 0.1
"""

from __future__ import annotations

import argparse
import sys

from .predict import run_map
from .settings import MapSettings

__all__ = ["map_cli"]


def map_cli(args: argparse.Namespace) -> int:
    """Run ``torchgeo-quake map`` with parsed arguments.

    Args:
        args: namespace with the options of ``torchgeo-quake map`` (see
            ``torchgeo-quake map --help``)

    Returns:
        Exit status 0 (errors are raised: :class:`FileExistsError`,
        :class:`FileNotFoundError`, :class:`ValueError`).

    .. versionadded:: 0.1
    """
    progress = args.progress if args.progress is not None else sys.stderr.isatty()
    result = run_map(MapSettings.from_cli(vars(args), progress=progress))
    if result.files:  # rank 0 (the only process unless several GPUs are used)
        print(result.report())
    return 0
