"""Normalisation of a task's inputs with statistics held in its buffers.

:class:`NormalizationMixin` gives
:class:`~torchgeo_quake.trainers.DamageDetectionTask` its normalisation:
``sar``, ``dsm`` and ``gem`` become ``(x - mean) / std``, the footprint mask is
used as is. The statistics are buffers of the task itself (not of a
submodule), so that checkpoints keep their state-dict keys: ``sar_mean``,
``sar_std``, ``dsm_mean``, ``dsm_std``, ``gem_mean``, ``gem_std`` (for the
configured modalities) and ``normalization_set``.

.. versionadded:: 0.2
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn as nn
from torch import Tensor

from ._hints import gem_hint

__all__ = ["NORMALIZED", "NormalizationMixin"]

#: Modalities normalised with a mean and standard deviation stored in the task.
NORMALIZED = ("sar", "dsm", "gem")


class NormalizationMixin(nn.Module):
    """Normalisation statistics in buffers of the module, and their use.

    For a :class:`~lightning.pytorch.LightningModule` that defines
    :attr:`modalities` and a float ``threshold`` buffer (whose dtype, float32
    or that of a "true" precision, is the dtype of the normalised inputs), and
    calls :meth:`configure_normalization` when building its model.

    .. versionadded:: 0.2
    """

    #: Whether statistics were set (by :meth:`set_normalization` or copied).
    normalization_set: Tensor
    #: A float buffer of the module: its dtype is the dtype of the inputs.
    threshold: Tensor

    @property
    def modalities(self) -> tuple[str, ...]:
        """Configured modalities in canonical order."""
        raise NotImplementedError

    def configure_normalization(self, gem_features: int) -> None:
        """Register the statistics (mean 0, std 1) and ``normalization_set``.

        Args:
            gem_features: Width of the GEM vector.
        """
        for name in NORMALIZED:
            if name not in self.modalities:
                continue
            shape = (gem_features,) if name == "gem" else ()
            self.register_buffer(f"{name}_mean", torch.zeros(shape))
            self.register_buffer(f"{name}_std", torch.ones(shape))
        self.register_buffer("normalization_set", torch.tensor(False))

    def set_normalization(self, stats: Mapping[str, Any]) -> None:
        """Store the normalisation statistics of the inputs.

        Args:
            stats: ``sar_mean``, ``sar_std``, ``dsm_mean``, ``dsm_std``
                (scalars) and ``gem_mean``, ``gem_std`` (vectors of length
                ``gem_features``), as tensors, arrays or numbers; the keys of
                every configured modality among sar, dsm and gem are required,
                others are ignored. This is the format of
                ``KahramanmarasDamageDataModule.normalization_stats()``.
                A zero standard deviation (constant input) is replaced by 1.

        Raises:
            ValueError: If a required key is missing, a value has the wrong
                shape, is not finite, or a standard deviation is negative.
        """
        for name in NORMALIZED:
            if name not in self.modalities:
                continue
            missing = [k for k in (f"{name}_mean", f"{name}_std") if k not in stats]
            if missing:
                raise ValueError(
                    f"normalisation statistics lack {missing} needed for modality "
                    f"{name!r} (got keys {sorted(stats)})"
                )
            mean_buf: Tensor = getattr(self, f"{name}_mean")
            std_buf: Tensor = getattr(self, f"{name}_std")
            mean = torch.as_tensor(stats[f"{name}_mean"], dtype=torch.float32)
            std = torch.as_tensor(stats[f"{name}_std"], dtype=torch.float32)
            for key, value in ((f"{name}_mean", mean), (f"{name}_std", std)):
                if value.shape != mean_buf.shape:
                    raise ValueError(
                        f"{key} has shape {tuple(value.shape)}, expected "
                        f"{tuple(mean_buf.shape)}"
                        + (f"; {gem_hint()}" if name == "gem" else "")
                    )
                if not torch.isfinite(value).all():
                    raise ValueError(f"{key} is not finite: {value}")
            if (std < 0).any():
                raise ValueError(f"{name}_std is negative: {std}")
            if (std == 0).any():
                warnings.warn(
                    f"{name}_std is zero for {int((std == 0).sum())} value(s) "
                    "(constant input); using 1 there",
                    UserWarning,
                    stacklevel=2,
                )
                std = torch.where(std == 0, torch.ones_like(std), std)
            mean_buf.copy_(mean)
            std_buf.copy_(std)
        self.normalization_set.fill_(True)

    def copy_normalization(
        self, state: Mapping[str, Any], modalities: Sequence[str]
    ) -> bool:
        """Copy the statistics of some modalities from another task's state.

        Used to fine-tune from a checkpoint: its statistics serve until the
        data module's replace them. ``normalization_set`` becomes True when
        every normalised modality of this module was copied.

        Args:
            state: The state dict of a checkpoint of the same kind of task.
            modalities: Modalities whose statistics to copy (where present).

        Returns:
            Whether any statistics were copied (none when the checkpoint's
            were never set).

        .. versionadded:: 0.2
        """
        if not bool(state.get("normalization_set", False)):
            return False
        copied = []
        for name in NORMALIZED:
            keys = (f"{name}_mean", f"{name}_std")
            if name in modalities and all(k in state for k in keys):
                for key in keys:
                    getattr(self, key).copy_(state[key])
                copied.append(name)
        if all(m in copied for m in self.modalities if m in NORMALIZED):
            self.normalization_set.fill_(True)
        return bool(copied)

    def normalize(self, inputs: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """Normalise raw inputs with the stored statistics.

        Args:
            inputs: Raw tensors by modality name (others are ignored).

        Returns:
            Tensors of the configured modalities, normalised, in the dtype of
            the task's buffers.
        """
        dtype = self.threshold.dtype  # float32, or the dtype of a "true" precision
        out: dict[str, Tensor] = {}
        for name in self.modalities:
            x = inputs[name].to(dtype)
            if name in NORMALIZED:
                mean: Tensor = getattr(self, f"{name}_mean")
                std: Tensor = getattr(self, f"{name}_std")
                x = (x - mean) / std
            out[name] = x
        return out

    def _warn_if_unnormalized(self) -> None:
        """Warn, at the start of fitting, when no statistics were ever set."""
        if not bool(self.normalization_set) and any(
            m in NORMALIZED for m in self.modalities
        ):
            warnings.warn(
                "no normalisation statistics: the data module has no "
                "normalization_stats() and set_normalization() was not called; "
                "inputs are used as they are",
                UserWarning,
                stacklevel=3,
            )
