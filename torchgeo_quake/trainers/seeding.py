"""Reseeding of the random generators at the start of every training epoch.

.. versionadded:: 0.2
"""

from __future__ import annotations

import os
import random

import numpy as np
import torch

__all__ = ["seed_epoch"]


def seed_epoch(epoch: int, rank: int) -> None:
    """Seed the random generators from the run's seed, the epoch and the rank.

    Python's, NumPy's legacy global and PyTorch's generators (every device,
    CUDA included) are seeded from ``PL_GLOBAL_SEED`` (set by Lightning's
    ``seed_everything``; 0 without), *epoch* and *rank*. The shuffling,
    augmentation and dropout of an epoch then depend on nothing that ran
    before in the process, so a run resumed from a checkpoint continues
    exactly as an uninterrupted run would (on the CPU, bit for bit).

    Args:
        epoch: The epoch about to start.
        rank: The global rank of the process.

    .. versionadded:: 0.2
    """
    base = int(os.environ.get("PL_GLOBAL_SEED", "0"))
    seed = np.random.SeedSequence([base, epoch, rank]).generate_state(1)[0]
    random.seed(int(seed))
    np.random.seed(int(seed))  # noqa: NPY002 (the legacy global state)
    torch.manual_seed(int(seed))  # every device, CUDA included
