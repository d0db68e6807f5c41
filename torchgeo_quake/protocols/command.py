"""Handler of ``torchgeo-quake protocol``.

.. versionadded:: 0.1
"""

from __future__ import annotations

import argparse

from .config import PROTOCOLS
from .runner import run_protocol
from .settings import ProtocolSettings

__all__ = ["protocol_cli", "settings_from_args"]


def _devices(value: str | None) -> str | int | None:
    """Lightning ``devices``: an integer, a list such as ``0,1``, or ``auto``.

    Args:
        value: command-line text

    Returns:
        An int when the text is one, else the text.
    """
    if value is None:
        return None
    return int(value) if value.lstrip("-").isdigit() else value


def settings_from_args(args: argparse.Namespace) -> ProtocolSettings:
    """Protocol settings from parsed command-line arguments.

    Args:
        args: arguments of ``torchgeo-quake protocol``

    Returns:
        The settings (not yet resolved).

    .. versionadded:: 0.1
    .. versionchanged:: 0.3
       ``--block-size``, ``--buffer`` and ``--selection``.
    """
    return ProtocolSettings(
        protocol=args.protocol,
        configs=args.configs,
        out=args.out,
        seeds=args.seeds,
        max_epochs=args.max_epochs,
        quick=args.quick,
        scale=args.scale,
        root=args.root,
        accelerator=args.accelerator,
        devices=_devices(args.devices),
        precision=args.precision,
        strategy=args.strategy,
        num_nodes=args.num_nodes,
        limit_train_batches=args.limit_train_batches,
        limit_val_batches=args.limit_val_batches,
        max_time=args.max_time,
        block_size=args.block_size,
        buffer=args.buffer,
        selection=args.selection,
        keep_checkpoints=args.keep_checkpoints,
        progress=not args.no_progress,
    )


def protocol_cli(args: argparse.Namespace) -> int:
    """Run a protocol from parsed command-line arguments.

    Args:
        args: arguments of ``torchgeo-quake protocol``

    Returns:
        Exit status (0).

    .. versionadded:: 0.1
    """
    result = run_protocol(settings_from_args(args))
    if result.tables or result.figures:
        print(
            f"protocol {args.protocol} ({PROTOCOLS[args.protocol]}): "
            f"{len(result.trained)} run(s) trained, {len(result.skipped)} already "
            f"done, {result.wall_s:.0f} s"
        )
        for path in [*result.tables, *result.figures]:
            print(f"  {path}")
    if result.dropped:
        print(
            f"buffer {args.buffer:g} m: training / validation buildings dropped "
            "near the test split"
        )
        for name, dropped in result.dropped.items():
            print(f"  {name}: {dropped.get('train', 0)} / {dropped.get('val', 0)}")
    return 0
