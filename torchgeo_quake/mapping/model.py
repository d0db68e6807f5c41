"""Loading damage models for mapping and choosing one for the available inputs.

A checkpoint of :class:`~torchgeo_quake.trainers.DamageDetectionTask` carries
everything a map needs: the weights, the input modalities, the normalisation
statistics of the training split, the calibration of its probabilities (Platt
scaling, :mod:`~torchgeo_quake.trainers.calibration`) and the decision
threshold, both chosen on the validation split. :func:`load_damage_model`
checks that a file is such a checkpoint before building the model, so a wrong
file gives a clear message instead of a stack trace; :func:`select_model`
picks the model that can run on the inputs at hand.

.. versionadded:: 0.1
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..models.resnet import GroupedConv2d, GroupedResNet18
from ..trainers import DamageDetectionTask
from ..trainers.checkpoint import not_a_task_checkpoint, read_task_checkpoint
from ..trainers.input_spec import INPUT_SPEC_KEY, InputSpec, InputSpecError
from ..trainers.input_spec import RADIOMETRIES as RADIOMETRIES

__all__ = [
    "INPUT_OF_MODALITY",
    "INPUT_SPEC_KEY",
    "LoadedModel",
    "fold_batch_norms",
    "load_damage_model",
    "select_model",
]

# INPUT_SPEC_KEY (checkpoint key of the model's input specification) and
# RADIOMETRIES (SAR radiometries a model can be trained on) come from
# torchgeo_quake.trainers.input_spec, re-exported here.

#: Command-line option that provides each optional modality.
INPUT_OF_MODALITY: dict[str, str] = {
    "dsm": "--dsm DSM (dsm=)",
    "gem": "--exposure GEM.csv (exposure=)",
}


@dataclass(frozen=True)
class LoadedModel:
    """A damage model ready for prediction, with what the map reports about it.

    .. versionadded:: 0.1
    .. versionchanged:: 0.2
       :attr:`calibrated`, :attr:`calibration_scale`, :attr:`calibration_bias`.
    """

    #: The task, in evaluation mode, on the CPU.
    task: DamageDetectionTask
    #: The checkpoint file it was loaded from.
    path: Path
    #: Input modalities, in canonical order.
    modalities: tuple[str, ...]
    #: Decision threshold on the damage probability.
    threshold: float
    #: Whether the threshold was chosen on validation data (else the default 0.5).
    threshold_from_validation: bool
    #: What the model was trained on: ``radiometry`` of the SAR values,
    #: ``sar_res`` (SAR pixel size in metres, None if unknown) and
    #: ``patch_size`` (pixels); None for checkpoints written before it was
    #: recorded.
    input_spec: dict[str, Any] | None = None
    #: Whether the checkpoint holds a probability calibration fitted on
    #: validation data; the task's probabilities (and the map's) are then
    #: ``sigmoid(calibration_scale * logit + calibration_bias)``, else plain
    #: sigmoids of the logits (checkpoints written before 0.2).
    calibrated: bool = False
    #: Platt scale of the probabilities (1 when uncalibrated).
    calibration_scale: float = 1.0
    #: Platt bias of the probabilities (0 when uncalibrated).
    calibration_bias: float = 0.0


def _input_spec(path: Path, spec: Any) -> dict[str, Any] | None:
    """Check the input specification stored in a checkpoint.

    The check is :meth:`~torchgeo_quake.trainers.input_spec.InputSpec.from_mapping`
    (the one used in training too: a missing ``sar_res`` means unknown); only
    the message is phrased for mapping.

    Args:
        path: the checkpoint (for messages)
        spec: what the checkpoint holds under :data:`INPUT_SPEC_KEY`, or None

    Returns:
        ``radiometry``, ``sar_res`` (float or None) and ``patch_size`` (int), or
        None when the checkpoint records none.

    Raises:
        ValueError: If the specification is malformed.
    """
    if spec is None:
        return None
    try:
        return InputSpec.from_mapping(spec, INPUT_SPEC_KEY).to_dict()
    except InputSpecError as err:
        raise ValueError(
            f"checkpoint {str(path)!r} holds a malformed input specification "
            f"({INPUT_SPEC_KEY!r}: {err.problem}); it was not written by "
            "DamageDetectionTask. Retrain the model, or remove the key to map "
            "with the SAR image's own pixel size."
        ) from err


def load_damage_model(path: str | os.PathLike[str]) -> LoadedModel:
    """Load a trained :class:`~torchgeo_quake.trainers.DamageDetectionTask`.

    The file is first read with ``weights_only=True`` (no arbitrary code runs)
    and checked: it must be a Lightning checkpoint whose hyper-parameters name
    the modalities and whose state holds the model, the normalisation buffers
    and the threshold. Its input specification (:data:`INPUT_SPEC_KEY`: SAR
    radiometry, pixel size and patch size of the training data) is checked too
    and returned as :attr:`LoadedModel.input_spec` (None for older checkpoints).
    The model's probabilities are calibrated when the checkpoint holds a
    calibration (:attr:`LoadedModel.calibrated`); checkpoints written before
    0.2 load uncalibrated, with a warning.

    Args:
        path: ``.ckpt`` file

    Returns:
        The model in evaluation mode on the CPU, with its modalities and threshold.

    Raises:
        FileNotFoundError: If the file does not exist.
        ValueError: If the file is not a checkpoint of this package's damage
            model, its GEM width differs from the package's exposure vector, or
            its input specification is malformed.

    .. versionadded:: 0.1
    .. versionchanged:: 0.2
       Returns the checkpoint's calibration.
    """
    from ..datasets import GEM_FEATURE_NAMES

    file = Path(path)
    checkpoint = read_task_checkpoint(file)
    state = checkpoint["state_dict"]
    hparams = checkpoint["hyper_parameters"]
    modalities = tuple(hparams["modalities"])
    if "gem" in modalities and hparams.get("gem_features") != len(GEM_FEATURE_NAMES):
        raise ValueError(
            f"checkpoint {str(file)!r} expects GEM vectors of "
            f"{hparams.get('gem_features')} features, but this version of "
            f"torchgeo_quake computes {len(GEM_FEATURE_NAMES)}; retrain the model "
            "or use a checkpoint trained without GEM."
        )
    # Checked before the task is built, which checks it too, less explicitly.
    input_spec = _input_spec(file, checkpoint.get(INPUT_SPEC_KEY))
    del checkpoint, state, hparams  # the task reads the file itself
    try:
        task = DamageDetectionTask.load_from_checkpoint(file, map_location="cpu")
    except (KeyError, RuntimeError, TypeError, ValueError) as err:
        raise not_a_task_checkpoint(
            file, f"its weights do not fit the model: {err}"
        ) from err
    task.eval()
    restored = getattr(task, "input_spec", None)
    if restored is not None:  # checked by the task with the same rules
        input_spec = dict(restored)
    if not bool(task.normalization_set):
        warnings.warn(
            f"checkpoint {str(file)!r} stores no normalisation statistics (it was "
            "not trained through a data module that provides them); predictions "
            "use raw inputs",
            UserWarning,
            stacklevel=2,
        )
    return LoadedModel(
        task=task,
        path=file,
        modalities=task.modalities,
        threshold=float(task.threshold),
        threshold_from_validation=bool(task.threshold_set),
        input_spec=input_spec,
        calibrated=task.calibrated,
        calibration_scale=task.calibration[0],
        calibration_bias=task.calibration[1],
    )


def select_model(
    checkpoint: str | os.PathLike[str],
    available: Collection[str],
    fallback: str | os.PathLike[str] | None = None,
) -> tuple[LoadedModel, bool]:
    """Load the model that can run on the available inputs.

    A model trained with DSM or GEM inputs needs them: without them it is not
    run, unless *fallback* names a model trained without them, which is then
    used instead (an explicit choice, reported in the map's summary).

    Args:
        checkpoint: the model to use
        available: modalities the user provided (``sar`` and ``footprint``
            always, ``dsm`` and ``gem`` when given)
        fallback: optional model to use when *checkpoint* needs a missing input

    Returns:
        The model and whether it is the fallback.

    Raises:
        FileNotFoundError: If a checkpoint does not exist.
        ValueError: If a file is not a damage-model checkpoint, or no model can
            run on the available inputs (the message says what to pass).

    .. versionadded:: 0.1
    """
    primary = load_damage_model(checkpoint)
    missing = [m for m in primary.modalities if m not in available]
    if not missing:
        return primary, False
    needs = ", ".join(INPUT_OF_MODALITY.get(m, m) for m in missing)
    if fallback is None:
        raise ValueError(
            f"the model {str(primary.path)!r} was trained with inputs "
            f"{list(primary.modalities)} and cannot run without {missing}: pass "
            f"{needs}, or name a model trained without them with "
            "--fallback-checkpoint CKPT (fallback_checkpoint=) to use it instead."
        )
    second = load_damage_model(fallback)
    still = [m for m in second.modalities if m not in available]
    if still:
        raise ValueError(
            f"neither model can run on the given inputs: {str(primary.path)!r} "
            f"needs {missing} and the fallback {str(second.path)!r} needs {still}; "
            f"pass {needs}."
        )
    return second, True


class _FoldedGroupedConv2d(nn.Module):
    """A :class:`~torchgeo_quake.models.GroupedConv2d` with its batch norm folded in.

    In evaluation mode a batch normalisation after a convolution is an affine
    map per channel, so it can be merged into the convolution's weight and a
    bias: one pass over the activations instead of two.
    """

    bias: Tensor

    def __init__(self, conv: GroupedConv2d, norm: nn.BatchNorm2d) -> None:
        """Initialize a new _FoldedGroupedConv2d instance.

        Args:
            conv: the convolution (its weight is scaled in place)
            norm: the batch normalisation that follows it (in eval mode)
        """
        super().__init__()
        assert norm.running_var is not None
        assert norm.running_mean is not None
        with torch.no_grad():
            scale = norm.weight / torch.sqrt(norm.running_var + norm.eps)
            conv.weight.mul_(scale.reshape(-1, 1, 1, 1))
            bias = norm.bias - norm.running_mean * scale
        self.conv = conv
        self.register_buffer("bias", bias.detach().clone())

    def forward(self, x: Tensor) -> Tensor:
        """Apply the convolution and the folded normalisation.

        Args:
            x: Input of shape ``(B, groups * in_channels, H, W)``.

        Returns:
            Output of shape ``(B, groups * out_channels, H', W')``.
        """
        conv = self.conv
        k, s, p = conv.kernel_size[0], conv.stride[0], conv._pad
        h, w = x.shape[-2:]
        ho, wo = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
        if not (k == 1 and p == 0) and h * w * ho * wo > conv.dense_max:
            return F.conv2d(
                x, conv.weight, self.bias, conv.stride, conv.padding, 1, conv.groups
            )
        out: Tensor = conv(x)
        return out.add_(self.bias.reshape(1, -1, 1, 1))


def _fold(parent: nn.Module, conv_name: str, norm_name: str) -> None:
    """Fold ``parent.<norm_name>`` into ``parent.<conv_name>``.

    Args:
        parent: the module holding both
        conv_name: attribute of the convolution
        norm_name: attribute of the batch normalisation
    """
    conv = getattr(parent, conv_name)
    norm = getattr(parent, norm_name)
    if isinstance(conv, GroupedConv2d) and isinstance(norm, nn.BatchNorm2d):
        setattr(parent, conv_name, _FoldedGroupedConv2d(conv, norm))
        setattr(parent, norm_name, nn.Identity())


def fold_batch_norms(task: DamageDetectionTask) -> DamageDetectionTask:
    """Fold the batch normalisations of the fused encoder into its convolutions.

    For inference only (the task must stay in evaluation mode): the function
    computed is the same up to floating-point rounding (probabilities agree to
    about 1e-6), and prediction on the CPU is about a fifth faster. Models
    with separate encoders (``fused=False``) are returned unchanged.

    Args:
        task: a task in evaluation mode (changed in place)

    Returns:
        The same task.

    Raises:
        ValueError: If the task is in training mode.

    .. versionadded:: 0.1
    """
    if task.training:
        raise ValueError("fold_batch_norms is for inference: call task.eval() first")
    encoder = getattr(task.model, "encoder", None)
    if not isinstance(encoder, GroupedResNet18):
        return task
    _fold(encoder, "conv1", "bn1")
    for layer in (encoder.layer1, encoder.layer2, encoder.layer3, encoder.layer4):
        for block in layer:
            _fold(block, "conv1", "bn1")
            _fold(block, "conv2", "bn2")
            if isinstance(block.downsample, nn.Sequential):
                _fold(block.downsample, "0", "1")
    return task
