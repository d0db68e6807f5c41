"""Optimiser and learning-rate schedule of the damage-detection task.

.. versionadded:: 0.2
"""

from __future__ import annotations

from typing import Any

import lightning.pytorch as pl
import lightning.pytorch.utilities.types
from torch.optim import Adam, AdamW, Optimizer
from torch.optim.lr_scheduler import CosineAnnealingLR, ReduceLROnPlateau

__all__ = ["configure_optimization"]


def configure_optimization(
    task: pl.LightningModule, monitor: str
) -> lightning.pytorch.utilities.types.OptimizerLRScheduler:
    """Build the optimiser and learning-rate scheduler of a task.

    The optimiser (``hparams["optimizer"]``: ``"adamw"`` or ``"adam"``, with
    ``lr`` and ``weight_decay``) sees the parameters that require gradients.
    Adam(W) uses PyTorch's fused implementation where available (CPU and
    CUDA), which is much faster than the default for this 34M-parameter model
    and computes the same update. The scheduler (``hparams["scheduler"]``)
    reduces the learning rate on a plateau of *monitor* (``"plateau"``, with
    ``patience``), anneals it over ``trainer.max_epochs`` (``"cosine"``) or is
    absent (``"none"``).

    Args:
        task: The task, with its hyper-parameters (and trainer, for
            ``"cosine"``).
        monitor: The metric a plateau is detected on (maximised).

    Returns:
        Optimizer and, unless ``scheduler="none"``, learning-rate scheduler.

    Raises:
        ValueError: If ``scheduler="cosine"`` without ``trainer.max_epochs``.

    .. versionadded:: 0.2
    """
    hparams = task.hparams
    params = [p for p in task.parameters() if p.requires_grad]
    cls = AdamW if hparams["optimizer"] == "adamw" else Adam
    kwargs: dict[str, Any] = {
        "lr": hparams["lr"],
        "weight_decay": hparams["weight_decay"],
    }
    if all(p.device.type in ("cpu", "cuda") for p in params):
        kwargs["fused"] = True
    optimizer: Optimizer = cls(params, **kwargs)
    match hparams["scheduler"]:
        case "none":
            return optimizer
        case "cosine":
            max_epochs = task.trainer.max_epochs
            if max_epochs is None or max_epochs < 1:
                raise ValueError("scheduler='cosine' needs trainer.max_epochs")
            return {
                "optimizer": optimizer,
                "lr_scheduler": CosineAnnealingLR(optimizer, T_max=max_epochs),
            }
        case _:
            scheduler = ReduceLROnPlateau(
                optimizer, mode="max", patience=hparams["patience"]
            )
            return {
                "optimizer": optimizer,
                "lr_scheduler": {"scheduler": scheduler, "monitor": monitor},
            }
