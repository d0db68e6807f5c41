"""Protocol settings: everything a protocol run depends on besides its configs.

:class:`ProtocolSettings` (scale, epochs, seeds, devices, precision, ...) and
the Lightning ``Trainer`` arguments of a run (:func:`trainer_kwargs`).

.. versionadded:: 0.2
   Moved here from :mod:`torchgeo_quake.protocols.config`.
"""

from __future__ import annotations

import typing
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from .config import (
    PROTOCOLS,
    QUICK,
    QUICK_ROOT,
    RUNNER_OWNED,
    ExperimentConfig,
    Protocol,
)

__all__ = ["ProtocolSettings", "trainer_kwargs"]


@dataclass
class ProtocolSettings:
    """Everything a protocol run depends on.

    .. versionadded:: 0.1
    """

    #: ``"cv"``, ``"loco"`` or ``"islahiye"``.
    protocol: Protocol
    #: Experiment configuration files, one per input configuration.
    configs: Sequence[str]
    #: Output folder.
    out: str
    #: Seeds; each repeats the whole protocol (split, sampling and training).
    seeds: Sequence[int] = (0,)
    #: Epochs per run (None: the configuration's ``trainer.max_epochs``).
    max_epochs: int | None = None
    #: Shrink data and epochs (:data:`QUICK`) for smoke tests and docs.
    quick: bool = False
    #: Size of the simulated scene (None: 1, or :data:`QUICK`'s with *quick*).
    scale: float | None = None
    #: Data root (None: the configuration's, or :data:`QUICK_ROOT` when the
    #: scale is not 1).
    root: str | None = None
    #: Lightning ``accelerator`` (None: the configuration's).
    accelerator: str | None = None
    #: Lightning ``devices`` (None: the configuration's).
    devices: str | int | None = None
    #: Lightning ``precision``, e.g. ``"32-true"`` (None: the configuration's).
    #:
    #: .. versionadded:: 0.2
    precision: str | None = None
    #: Lightning ``strategy`` (None: the configuration's, else Lightning's).
    strategy: str | None = None
    #: Lightning ``num_nodes`` (None: the configuration's, else 1).
    num_nodes: int | None = None
    #: Lightning ``limit_train_batches`` (tests).
    limit_train_batches: int | float | None = None
    #: Lightning ``limit_val_batches`` (tests).
    limit_val_batches: int | float | None = None
    #: Lightning ``max_time`` per run, ``DD:HH:MM:SS`` (None: no limit; the
    #: configurations' own ``max_time`` is not used, see :data:`RUNNER_OWNED`).
    max_time: str | None = None
    #: Keep each run's checkpoints after it finished (they are large).
    keep_checkpoints: bool = False
    #: Show the progress bar.
    progress: bool = True

    def resolved(self) -> ProtocolSettings:
        """Settings with the quick-mode defaults and the data root filled in.

        Returns:
            A copy with *scale*, *max_epochs* (under *quick*) and *root* set.

        Raises:
            ValueError: If the protocol, seeds, scale or epochs are invalid.
        """
        if self.protocol not in PROTOCOLS:
            raise ValueError(
                f"protocol must be one of {sorted(PROTOCOLS)}, got {self.protocol!r}"
            )
        if not self.configs:
            raise ValueError("give at least one configuration file")
        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"seeds must be distinct and not empty: {self.seeds}")
        scale = self.scale
        if scale is None:
            scale = QUICK["scale"] if self.quick else 1.0
        if not 0.0 < scale <= 1.0:
            raise ValueError(f"scale must be in (0, 1], got {scale}")
        max_epochs = self.max_epochs
        if max_epochs is None and self.quick:
            max_epochs = QUICK["max_epochs"]
        if max_epochs is not None and max_epochs < 1:
            raise ValueError(f"max_epochs must be at least 1, got {max_epochs}")
        if self.precision is not None:
            _check_precision(self.precision)

        root = self.root
        if root is None and scale != 1.0:
            root = (
                QUICK_ROOT
                if scale == QUICK["scale"]
                else (f"data/kahramanmaras-scale{scale:g}")
            )
        return replace(
            self,
            scale=scale,
            max_epochs=max_epochs,
            root=root,
            configs=tuple(str(c) for c in self.configs),
            seeds=tuple(int(s) for s in self.seeds),
        )

    def fingerprint(self) -> dict[str, Any]:
        """Settings that determine the results (stored in ``protocol.json``).

        Returns:
            JSON-serialisable settings; hardware settings (devices, strategy,
            progress, checkpoints) are left out.
        """
        return {
            "protocol": self.protocol,
            "scale": self.scale,
            "max_epochs": self.max_epochs,
            "root": self.root,
            "limit_train_batches": self.limit_train_batches,
            "limit_val_batches": self.limit_val_batches,
            "max_time": self.max_time,
            "precision": self.precision,
        }


def _check_precision(precision: str) -> None:
    """Check a ``--precision`` value against Lightning's precision names.

    Args:
        precision: the value

    Raises:
        ValueError: If Lightning has no such precision.
    """
    from lightning.fabric.plugins.precision.precision import _PRECISION_INPUT_STR

    names = typing.get_args(_PRECISION_INPUT_STR)
    if precision not in names:
        raise ValueError(
            f"precision must be one of {', '.join(names)}, got {precision!r} "
            "(32-true: float32; bf16-mixed: bfloat16 where the hardware has it)"
        )


def trainer_kwargs(
    settings: ProtocolSettings, config: ExperimentConfig
) -> dict[str, Any]:
    """Lightning ``Trainer`` arguments of a run.

    Args:
        settings: resolved settings
        config: the run's configuration

    Returns:
        Keyword arguments without logger and callbacks.
    """
    kwargs = {k: v for k, v in config.trainer.items() if k not in RUNNER_OWNED}
    overrides = {
        "max_epochs": settings.max_epochs,
        "accelerator": settings.accelerator,
        "devices": settings.devices,
        "strategy": settings.strategy,
        "num_nodes": settings.num_nodes,
        "limit_train_batches": settings.limit_train_batches,
        "limit_val_batches": settings.limit_val_batches,
        "max_time": settings.max_time,
        "precision": settings.precision,
    }
    kwargs.update({k: v for k, v in overrides.items() if v is not None})
    kwargs.setdefault("max_epochs", 10)
    # Every step in the CSV log: training curves even for short epochs.
    kwargs["log_every_n_steps"] = 1
    return kwargs
