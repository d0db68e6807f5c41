"""Fine-tuning: start a task's network from a checkpoint of another run.

``init_from`` of :class:`~torchgeo_quake.trainers.DamageDetectionTask` starts
the network from a checkpoint of that task (e.g. to fine-tune on another
event): ``init_weights="all"`` loads every network weight (same modalities and
GEM width required), ``"encoders"`` only the encoders of the modalities both
share (the raster ResNet-18s, fused in one
:class:`~torchgeo_quake.models.GroupedResNet18`, and the GEM MLP), leaving the
fusion head (``model.head``) freshly initialised. The decision threshold and
the optimiser state are never loaded. The normalisation statistics of the
shared modalities are copied as a fallback, but replaced at the start of
fitting by the data module's ``normalization_stats()`` (a warning says when the
data module has none and the checkpoint's are kept). ``freeze_encoders=True``
trains the head only: the encoders (:func:`encoder_modules`) get
``requires_grad=False`` and stay in evaluation mode (their batch-norm
statistics do not move). The init is applied once, when the task is built; a
task restored from a checkpoint (``load_from_checkpoint``, or a trainer's
``ckpt_path``) takes its weights from that checkpoint and does not need the
``init_from`` file.

:func:`apply_init_from` reads the checkpoint safely
(:func:`~torchgeo_quake.trainers.checkpoint.read_task_checkpoint`), checks that
it fits the task and loads it; what it did is recorded in a
:class:`FineTuneInit`, which the start of fitting checks
(:func:`check_init_found`, :func:`check_init_spec`).

.. versionadded:: 0.2
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch.nn as nn
from torch import Tensor

from ..models import (
    RASTER_MODALITIES,
    LateFusionNet,
    canonical_modalities,
    split_resnet_state_dict,
)
from ._hints import config_hint, gem_hint
from .checkpoint import read_task_checkpoint
from .input_spec import INPUT_SPEC_KEY, InputSpec
from .normalization import NormalizationMixin

__all__ = [
    "INIT_WEIGHTS",
    "FineTuneInit",
    "apply_init_from",
    "check_init_found",
    "check_init_spec",
    "encoder_modules",
    "warn_init_stats_kept",
]

#: What ``init_weights`` selects from an ``init_from`` checkpoint.
INIT_WEIGHTS = ("all", "encoders")


@dataclass
class FineTuneInit:
    """What ``init_from`` did in this process.

    Cleared (all None / False) when a checkpoint of the task is restored: its
    state replaces the init.

    .. versionadded:: 0.2
    """

    #: The checkpoint the network was initialised from.
    source: str | None = None
    #: The ``init_from`` file, when it did not exist.
    missing: str | None = None
    #: The input spec of the checkpoint's training data, when recorded.
    spec: InputSpec | None = None
    #: Whether normalisation statistics were copied from the checkpoint.
    stats: bool = False


def encoder_modules(model: LateFusionNet) -> list[nn.Module]:
    """The encoders of a network: everything but the fusion head.

    Args:
        model: The network.

    Returns:
        The raster encoders (one
        :class:`~torchgeo_quake.models.GroupedResNet18` for all raster
        modalities, or one ResNet-18 each) and the GEM MLP, where present. The
        fusion head is ``model.head``.

    .. versionadded:: 0.2
    """
    candidates = (model.encoder, model.encoders, model.gem_mlp)
    return [m for m in candidates if m is not None]


def apply_init_from(
    task: NormalizationMixin,
    model: LateFusionNet,
    hparams: Mapping[str, Any],
    sar_weights: str | None,
) -> FineTuneInit:
    """Load weights from the ``init_from`` checkpoint of a task.

    A missing file only warns (and is recorded): a trainer that restores a
    checkpoint of the task does not need it.

    Args:
        task: The task; receives the normalisation statistics.
        model: Its network; receives the weights.
        hparams: Its hyper-parameters (``init_from``, ``init_weights``,
            ``modalities``, ``gem_features``, ...).
        sar_weights: Its ``sar_weights`` argument.

    Returns:
        What was done.

    Raises:
        ValueError: If the file is not a checkpoint of this task or does
            not fit it.

    .. versionadded:: 0.2
    """
    file = Path(hparams["init_from"])
    mode = hparams.get("init_weights", "all")
    name = f"init_from checkpoint {str(file)!r}"
    if not file.is_file():
        warnings.warn(
            f"{name} does not exist: fitting (or validating, testing, "
            "predicting) will fail unless the trainer restores a checkpoint "
            "of this task (ckpt_path), whose weights then replace the init",
            UserWarning,
            stacklevel=5,
        )
        return FineTuneInit(missing=str(file))
    checkpoint = read_task_checkpoint(file, "init_from checkpoint")
    state: dict[str, Any] = checkpoint["state_dict"]
    saved = dict(checkpoint["hyper_parameters"])
    extra = state.get("model._extra_state")
    if isinstance(extra, Mapping):  # the network's own record first
        saved.update(
            {k: extra[k] for k in ("modalities", "gem_features") if k in extra}
        )
    modalities = task.modalities
    source, shared = _check_source(name, saved, modalities, hparams, sar_weights)
    spec = checkpoint.get(INPUT_SPEC_KEY)
    init = FineTuneInit(
        spec=None
        if spec is None
        else InputSpec.from_mapping(spec, f"{name} input spec")
    )
    weights = {
        k[len("model.") :]: v for k, v in state.items() if k.startswith("model.")
    }
    try:
        if mode == "all":
            model.load_state_dict(weights)
        else:
            _load_encoders(model, weights, source, shared)
    except (KeyError, RuntimeError, ValueError) as err:
        first = str(err).strip().splitlines()
        raise ValueError(
            f"{name}: its network weights do not fit this task "
            f"({' '.join(line.strip() for line in first[:3])})"
        ) from err
    init.stats = task.copy_normalization(state, shared)
    lacking = [m for m in modalities if m not in source]
    if lacking:
        frozen = hparams.get("freeze_encoders", False)
        warnings.warn(
            f"{name} was trained with modalities {list(source)}: the encoders "
            f"of {lacking} keep their default initialisation"
            + (" (and, with freeze_encoders=True, stay frozen)" if frozen else ""),
            UserWarning,
            stacklevel=5,
        )
    init.source = str(file)
    return init


def _check_source(
    name: str,
    saved: Mapping[str, Any],
    modalities: tuple[str, ...],
    hparams: Mapping[str, Any],
    sar_weights: str | None,
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Check that an ``init_from`` checkpoint fits the task.

    Args:
        name: The checkpoint, for messages.
        saved: Its hyper-parameters (with the network's own record).
        modalities: The task's modalities, in canonical order.
        hparams: The task's hyper-parameters.
        sar_weights: The task's ``sar_weights`` argument.

    Returns:
        The checkpoint's modalities and those it shares with the task.

    Raises:
        ValueError: If it records invalid modalities, has other modalities
            with ``init_weights="all"``, shares none, has other widths, or
            *sar_weights* also initialises its SAR encoder.
    """
    mode = hparams.get("init_weights", "all")
    try:
        source = canonical_modalities(saved["modalities"])
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name} records invalid modalities: {err}") from err
    shared = tuple(m for m in modalities if m in source)
    if mode == "all" and source != modalities:
        raise ValueError(
            f"{name} was trained with modalities {list(source)}, but this task "
            f"is configured with modalities {list(modalities)}: "
            "init_weights='all' needs the same modalities; use "
            "init_weights='encoders' to load the encoders of the modalities "
            f"both share, or the configuration with {config_hint(source)}"
        )
    if not shared:
        raise ValueError(
            f"{name} was trained with modalities {list(source)} and shares no "
            f"modality with this task ({list(modalities)}): there is "
            "nothing to load"
        )
    _check_architecture(name, saved, hparams, shared, mode)
    if sar_weights is not None and "sar" in shared:
        raise ValueError(
            f"sar_weights and {name} both initialise the SAR encoder: give one"
        )
    return source, shared


def _check_architecture(
    name: str,
    saved: Mapping[str, Any],
    hparams: Mapping[str, Any],
    shared: Sequence[str],
    mode: str,
) -> None:
    """Check the GEM width and layer widths of an ``init_from`` checkpoint.

    Args:
        name: The checkpoint, for messages.
        saved: Its hyper-parameters (with the network's own record).
        hparams: The task's hyper-parameters.
        shared: Modalities it shares with the task.
        mode: ``"all"`` or ``"encoders"``.

    Raises:
        ValueError: If a width that the loaded weights fix differs.
    """
    if "gem" in shared and saved.get("gem_features") != hparams["gem_features"]:
        raise ValueError(
            f"{name} was trained with gem_features={saved.get('gem_features')}, "
            f"but this task is configured with "
            f"gem_features={hparams['gem_features']}: its GEM encoder "
            "cannot be loaded; fine-tune on GEM vectors of the checkpoint's "
            f"width, or leave 'gem' out of the modalities ({gem_hint()})"
        )
    keys = ["gem_hidden_dim"] if "gem" in shared else []
    if mode == "all":
        keys.append("hidden_dim")
    for key in keys:
        if key in saved and saved[key] != hparams[key]:
            raise ValueError(
                f"{name} was trained with {key}={saved[key]}, but this task is "
                f"configured with {key}={hparams[key]}: set "
                f"model.init_args.{key} to {saved[key]}"
            )


def _load_encoders(
    model: LateFusionNet,
    weights: Mapping[str, Tensor],
    source: Sequence[str],
    shared: Sequence[str],
) -> None:
    """Load the encoders of the shared modalities from network weights.

    Args:
        model: The network to load into.
        weights: State dict of a :class:`~torchgeo_quake.models.LateFusionNet`
            (fused or plain encoder layout).
        source: Its modalities.
        shared: Modalities whose encoders to load.
    """
    rasters = [m for m in source if m in RASTER_MODALITIES]
    grouped = {
        k[len("encoder.") :]: v for k, v in weights.items() if k.startswith("encoder.")
    }
    plain: dict[str, dict[str, Tensor]] = {}
    if grouped:
        parts = split_resnet_state_dict(grouped, len(rasters))
        plain = dict(zip(rasters, parts, strict=True))
    else:
        for m in rasters:
            prefix = f"encoders.{m}."
            plain[m] = {
                k[len(prefix) :]: v for k, v in weights.items() if k.startswith(prefix)
            }
    for m in shared:
        if m in RASTER_MODALITIES:
            model.load_encoder_state_dict(m, plain[m])
    if "gem" in shared:
        assert model.gem_mlp is not None
        model.gem_mlp.load_state_dict(
            {
                k[len("gem_mlp.") :]: v
                for k, v in weights.items()
                if k.startswith("gem_mlp.")
            }
        )


def check_init_found(init: FineTuneInit) -> None:
    """Fail when ``init_from`` named a missing file and nothing was restored.

    Args:
        init: What ``init_from`` did.

    Raises:
        FileNotFoundError: If the ``init_from`` file did not exist when the
            task was built and no checkpoint of the task was restored since.

    .. versionadded:: 0.2
    """
    if init.missing is not None:
        raise FileNotFoundError(
            f"init_from checkpoint {init.missing!r} does not exist. Pass "
            "the .ckpt file of a trained DamageDetectionTask to start from "
            "(e.g. runs/all_inputs/checkpoints/best.ckpt), or set "
            "model.init_args.init_from to null."
        )


def check_init_spec(init: FineTuneInit, data: InputSpec, datamodule: str) -> None:
    """Compare the ``init_from`` checkpoint's input spec with the data's.

    Another SAR pixel size only warns.

    Args:
        init: What ``init_from`` did, with the checkpoint's input spec.
        data: The data module's input spec.
        datamodule: Name of the data module's class, for messages.

    Raises:
        ValueError: If the radiometry or the patch size differ.

    .. versionadded:: 0.2
    """
    assert init.spec is not None
    name = f"init_from checkpoint {init.source!r}"
    names = ("checkpoint", "data")
    diffs = replace(init.spec, sar_res=None).differences(data, names)
    if diffs:
        raise ValueError(
            f"{name} was trained on inputs made otherwise than the data module "
            f"{datamodule} makes them: {'; '.join(diffs)}; fine-tuning needs "
            "the same SAR radiometry and patch size: configure the data module "
            "(e.g. data.init_args.radiometry) like the checkpoint's training "
            "data, or train from scratch"
        )
    diffs = init.spec.differences(data, names)
    if diffs:
        warnings.warn(
            f"fine-tuning {name} on SAR images of another pixel size "
            f"({'; '.join(diffs)}); the checkpoints will record the new data's "
            "input_spec",
            UserWarning,
            stacklevel=3,
        )


def warn_init_stats_kept(init: FineTuneInit) -> None:
    """Warn that the ``init_from`` checkpoint's statistics stay in use.

    Called at the start of fitting when the data module has no
    ``normalization_stats()``.

    Args:
        init: What ``init_from`` did.

    .. versionadded:: 0.2
    """
    warnings.warn(
        f"the data module has no normalization_stats(): keeping the "
        f"normalisation statistics of init_from checkpoint "
        f"{init.source!r} (those of its own training data); call "
        "set_normalization() with the new data's statistics to replace them",
        UserWarning,
        stacklevel=3,
    )
