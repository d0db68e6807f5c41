"""Checks that the data fit a task: its batches, its data module, its inputs.

:func:`check_batch` checks every batch against the sample contract,
:func:`check_datamodule` checks a data module's ``modalities`` and
``input_spec()`` before any step, and :func:`warn_other_inputs` compares, at
the start of fitting, the input spec a model was trained on with the data's.
The input specification itself is :mod:`torchgeo_quake.trainers.input_spec`.

.. versionadded:: 0.2
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

from ..models import MODALITIES
from ._hints import config_hint, gem_hint
from .input_spec import InputSpec

__all__ = ["check_batch", "check_datamodule", "warn_other_inputs"]


def check_batch(
    batch: Mapping[str, Any],
    modalities: Sequence[str],
    gem_features: int,
    need_label: bool,
) -> None:
    """Check that a batch holds what a task needs.

    Args:
        batch: The batch.
        modalities: The task's modalities.
        gem_features: The task's GEM width (checked when it has ``gem``).
        need_label: Whether ``label`` is required.

    Raises:
        ValueError: If a modality or the label is missing, or the GEM
            vector has the wrong width.

    .. versionadded:: 0.2
    """
    missing = [m for m in modalities if m not in batch]
    if need_label and "label" not in batch:
        missing.append("label")
    if missing:
        raise ValueError(
            f"batch lacks {missing} required by the task (modalities "
            f"{list(modalities)}); batch keys: {sorted(batch)}"
        )
    if "gem" in modalities:
        gem = batch["gem"]
        width = gem.shape[-1] if gem.ndim else None
        if gem.ndim != 2 or width != gem_features:
            raise ValueError(
                f"batch 'gem' has shape {tuple(gem.shape)}, the task expects "
                f"(B, {gem_features}); {gem_hint()}"
            )


def check_datamodule(
    datamodule: Any,
    modalities: Sequence[str],
    ckpt_path: str | os.PathLike[str] | None,
    input_spec: Mapping[str, Any] | None = None,
) -> None:
    """Check, before any step, that a data module provides a task's inputs.

    Args:
        datamodule: The trainer's data module (or None).
        modalities: The task's modalities, in canonical order.
        ckpt_path: The checkpoint the trainer restores, or None.
        input_spec: The task's input spec, to compare with the data module's
            ``input_spec()`` (when it has one); None not to compare.

    Raises:
        ValueError: If the data module declares ``modalities`` that lack
            one of the task's (or, when a checkpoint is loaded, differ from
            the task's), or makes its inputs otherwise than *input_spec*.

    .. versionadded:: 0.2
    """
    provided = getattr(datamodule, "modalities", None)
    if provided is not None and ckpt_path is not None:
        # LightningCLI rebuilds the model from the checkpoint's
        # hyper-parameters: a checkpoint of another input configuration
        # shows as data with other modalities than the model's.
        data = tuple(m for m in MODALITIES if m in tuple(provided))
        if set(data) != set(modalities):
            raise ValueError(
                f"checkpoint {os.fspath(ckpt_path)!r} was trained with modalities "
                f"{list(modalities)}, but the data module "
                f"{type(datamodule).__name__} is configured with modalities "
                f"{list(data)}: use the configuration with "
                f"{config_hint(modalities)} for this checkpoint, or a "
                f"checkpoint trained with {config_hint(data)}"
            )
    if provided is not None:
        missing = [m for m in modalities if m not in tuple(provided)]
        if missing:
            raise ValueError(
                f"the model needs modalities {missing} that the data module "
                f"{type(datamodule).__name__} does not provide (it has "
                f"{list(provided)}); give model and data the same `modalities` "
                "in the config"
            )
    get_spec = getattr(datamodule, "input_spec", None)
    if input_spec is None or not callable(get_spec):
        return
    data_spec = InputSpec.from_mapping(get_spec(), "the data module's input_spec()")
    model_spec = InputSpec.from_mapping(input_spec, "the model's input_spec")
    diffs = model_spec.differences(data_spec)
    if diffs:
        source = ckpt_path or "the model"
        raise ValueError(
            f"{source} was trained on inputs made otherwise than the data "
            f"module {type(datamodule).__name__} makes them: {'; '.join(diffs)}; "
            "set the data module's radiometry (data.init_args.radiometry) to "
            "the model's, resample the SAR image to the model's pixel size, "
            "or use a model trained on such data"
        )


def warn_other_inputs(saved: Mapping[str, Any] | None, data: InputSpec) -> None:
    """Warn when fitting on inputs made otherwise than the model's.

    Args:
        saved: The input spec the model was trained on, or None (no warning).
        data: The data module's input spec.

    .. versionadded:: 0.2
    """
    if saved is None:
        return
    diffs = InputSpec.from_mapping(saved, "the model's input_spec").differences(data)
    if diffs:
        warnings.warn(
            "fitting on inputs made otherwise than those the model was "
            f"trained on ({'; '.join(diffs)}); the checkpoints will "
            "record the new data's input_spec",
            UserWarning,
            stacklevel=3,
        )
