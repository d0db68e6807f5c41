"""Command-line front end of the damage mapping (``torchgeo-quake map``).

.. versionadded:: 0.1
"""

from __future__ import annotations

import argparse
import sys

from .predict import map_damage

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
    result = map_damage(
        args.sar,
        args.footprints,
        args.checkpoint,
        args.out,
        dsm=args.dsm,
        exposure=args.exposure,
        fallback_checkpoint=args.fallback_checkpoint,
        units=args.units,
        unit_field=args.unit_field,
        cell_size=args.cell_size,
        radiometry=args.radiometry,
        name=args.name,
        id_field=args.id_field,
        max_nodata=args.max_nodata,
        batch_size=args.batch_size,
        num_workers=args.num_workers,
        num_threads=args.threads,
        accelerator=args.accelerator,
        devices=args.devices,
        basemap=args.basemap,
        basemap_attribution=args.basemap_attribution,
        overwrite=args.overwrite,
        progress=progress,
        verbose=not args.quiet,
    )
    if result.files:  # rank 0 (the only process unless several GPUs are used)
        print(result.report())
    return 0
