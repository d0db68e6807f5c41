"""Protocol settings: everything a protocol run depends on besides its configs.

:class:`ProtocolSettings` (scale, epochs, seeds, devices, precision, ...) and
the Lightning ``Trainer`` arguments of a run (:func:`trainer_kwargs`).

.. versionadded:: 0.2
   Moved here from :mod:`torchgeo_quake.protocols.config`.
"""

from __future__ import annotations

import math
import typing
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from .config import (
    BLOCKED_PROTOCOLS,
    PROTOCOLS,
    QUICK,
    QUICK_ROOT,
    RUNNER_OWNED,
    ExperimentConfig,
    Protocol,
)

__all__ = ["DEFAULT_BLOCK_SIZE", "SELECTIONS", "ProtocolSettings", "trainer_kwargs"]

#: Side of the spatial blocks of the blocked protocols, in metres, by default,
#: on data of scale 1. Islahiye alone is about 1.3 × 2 km: 1000 m blocks would
#: give it fewer blocks than its test folds and validation split need.
DEFAULT_BLOCK_SIZE: dict[str, float] = {"blocked": 1000.0, "blocked-islahiye": 500.0}

#: How ``loco`` chooses checkpoint and threshold: on a random validation share
#: of the training cities, or on one whole training city.
SELECTIONS = ("random", "inner-city")


@dataclass
class ProtocolSettings:
    """Everything a protocol run depends on.

    .. versionadded:: 0.1
    """

    #: ``"cv"``, ``"loco"``, ``"islahiye"``, ``"blocked"`` or
    #: ``"blocked-islahiye"``.
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
    #: Side of the spatial blocks of the blocked protocols, in metres (None:
    #: the protocol's :data:`DEFAULT_BLOCK_SIZE` × √*scale*: a simulated
    #: scene's cities shrink with its scale, the number of blocks stays;
    #: refused for the other protocols).
    #:
    #: .. versionadded:: 0.3
    block_size: float | None = None
    #: Blocked protocols: drop training and validation buildings with a test
    #: building of their city within this many metres in x and in y (a square
    #: around the centroid, as patches are; 0: none).
    #:
    #: .. versionadded:: 0.3
    buffer: float = 0.0
    #: ``loco``: choose checkpoint and threshold on a random validation share
    #: (``"random"``) or on one whole training city (``"inner-city"``).
    #:
    #: .. versionadded:: 0.3
    selection: str = "random"

    def resolved(self) -> ProtocolSettings:
        """Settings with the quick-mode defaults and the data root filled in.

        Returns:
            A copy with *scale*, *max_epochs* (under *quick*) and *root* set.

        Raises:
            ValueError: If the protocol, seeds, scale, epochs, block size,
                buffer or selection are invalid, or do not fit the protocol.

        .. versionchanged:: 0.3
           Checks *block_size*, *buffer* and *selection*.
        """
        if self.protocol not in PROTOCOLS:
            raise ValueError(
                f"protocol must be one of {sorted(PROTOCOLS)}, got {self.protocol!r}"
            )
        if not self.configs:
            raise ValueError("give at least one configuration file")
        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            repeated = sorted({s for s in self.seeds if list(self.seeds).count(s) > 1})
            raise ValueError(
                f"seeds must be distinct and not empty, got {list(self.seeds)}"
                + (f" ({repeated} repeated)" if repeated else "")
                + ": give each seed once, e.g. --seeds 0 1 2"
            )
        scale = self.scale
        if scale is None:
            scale = QUICK["scale"] if self.quick else 1.0
        if not 0.0 < scale <= 1.0:
            raise ValueError(f"scale must be in (0, 1], got {scale}")
        block_size = self._checked_split_options(scale)
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
            block_size=block_size,
            buffer=float(self.buffer),
        )

    def _checked_split_options(self, scale: float) -> float | None:
        """Check the block size, buffer and selection against the protocol.

        Args:
            scale: the resolved scale

        Returns:
            The block size (when not given, :data:`DEFAULT_BLOCK_SIZE` ×
            √*scale*) for the blocked protocols, None for the others.

        Raises:
            ValueError: If a value is invalid or does not fit the protocol.
        """
        blocked = self.protocol in BLOCKED_PROTOCOLS
        if self.block_size is not None and not blocked:
            raise ValueError(
                f"--block-size is for the blocked protocols "
                f"({', '.join(BLOCKED_PROTOCOLS)}), not {self.protocol!r}"
            )
        block_size = self.block_size if blocked else None
        if blocked and block_size is None:
            block_size = round(DEFAULT_BLOCK_SIZE[self.protocol] * math.sqrt(scale))
        if block_size is not None and not (
            math.isfinite(block_size) and block_size > 0
        ):
            raise ValueError(
                f"--block-size must be a positive distance in metres, got "
                f"{block_size:g}"
            )
        if not (math.isfinite(self.buffer) and self.buffer >= 0):
            raise ValueError(
                f"--buffer must be a distance >= 0 in metres, got {self.buffer:g} "
                "(0: no buffer)"
            )
        if self.buffer and not blocked:
            raise ValueError(
                f"--buffer is for the blocked protocols "
                f"({', '.join(BLOCKED_PROTOCOLS)}), not {self.protocol!r}"
            )
        if self.selection not in SELECTIONS:
            raise ValueError(
                f"--selection must be one of {', '.join(SELECTIONS)}, "
                f"got {self.selection!r}"
            )
        if self.selection != "random" and self.protocol != "loco":
            raise ValueError(
                f"--selection {self.selection} (checkpoint and threshold chosen "
                "on a held-out training city) is for the 'loco' protocol only, "
                f"not {self.protocol!r}"
            )
        return None if block_size is None else float(block_size)

    def fingerprint(self) -> dict[str, Any]:
        """Settings that determine the results (stored in ``protocol.json``).

        Returns:
            JSON-serialisable settings; hardware settings (devices, strategy,
            progress, checkpoints) are left out. The blocked protocols add
            ``block_size`` and ``buffer``, ``loco`` adds ``selection``.

        .. versionchanged:: 0.3
           ``block_size``, ``buffer`` and ``selection``.
        """
        extra: dict[str, Any] = {}
        if self.protocol in BLOCKED_PROTOCOLS:
            extra = {"block_size": self.block_size, "buffer": self.buffer}
        if self.protocol == "loco":
            extra = {"selection": self.selection}
        return {
            **extra,
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
