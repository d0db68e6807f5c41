"""Loading damage models for mapping and choosing one for the available inputs.

A checkpoint of :class:`~torchgeo_quake.trainers.DamageDetectionTask` carries
everything a map needs: the weights, the input modalities, the normalisation
statistics of the training split and the decision threshold chosen on the
validation split. :func:`load_damage_model` checks that a file is such a
checkpoint before building the model, so a wrong file gives a clear message
instead of a stack trace; :func:`select_model` picks the model that can run on
the inputs at hand.

.. versionadded:: 0.1
"""

from __future__ import annotations

import math
import os
import pickle
import warnings
import zipfile
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..models.resnet import GroupedConv2d, GroupedResNet18
from ..trainers import DamageDetectionTask

__all__ = [
    "INPUT_OF_MODALITY",
    "INPUT_SPEC_KEY",
    "LoadedModel",
    "fold_batch_norms",
    "load_damage_model",
    "select_model",
]

#: Checkpoint key of the model's input specification (SAR radiometry, pixel
#: size and patch size of the training data).
INPUT_SPEC_KEY = "torchgeo_quake_input_spec"

#: SAR radiometries a model can be trained on.
RADIOMETRIES = ("db", "amplitude", "intensity")

#: Command-line option that provides each optional modality.
INPUT_OF_MODALITY: dict[str, str] = {
    "dsm": "--dsm DSM (dsm=)",
    "gem": "--exposure GEM.csv (exposure=)",
}


@dataclass(frozen=True)
class LoadedModel:
    """A damage model ready for prediction, with what the map reports about it.

    .. versionadded:: 0.1
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


def _not_ours(path: Path, detail: str) -> ValueError:
    """The error for a file that is not a damage-model checkpoint.

    Args:
        path: the file
        detail: what was found instead

    Returns:
        The exception to raise.
    """
    return ValueError(
        f"{str(path)!r} is not a torchgeo_quake damage-model checkpoint ({detail}). "
        "Pass a checkpoint written while training DamageDetectionTask, e.g. "
        "runs/all_inputs/checkpoints/last.ckpt from `torchgeo fit --config "
        "experiments/all_inputs.yaml`."
    )


def _load(path: Path) -> Any:
    """``torch.load`` a file safely, memory-mapped when its format allows.

    Memory-mapped tensors are only read when used, so checking a checkpoint
    costs no memory for its weights.

    Args:
        path: the file

    Returns:
        What the file holds.
    """
    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except RuntimeError:  # not the zip format (mmap needs it): plain reading
        return torch.load(path, map_location="cpu", weights_only=True)


def _read_checkpoint(path: Path) -> dict[str, Any]:
    """Read a checkpoint file safely (tensors and plain containers only).

    Args:
        path: the file

    Returns:
        The checkpoint dictionary.

    Raises:
        FileNotFoundError: If the file does not exist.
        ValueError: If it is not a readable PyTorch checkpoint.
    """
    if not path.is_file():
        raise FileNotFoundError(
            f"checkpoint {str(path)!r} does not exist. Pass the .ckpt file of a "
            "trained DamageDetectionTask (e.g. runs/all_inputs/checkpoints/last.ckpt)."
        )
    try:
        loaded = _load(path)
    except (
        pickle.UnpicklingError,
        zipfile.BadZipFile,
        RuntimeError,
        EOFError,
        KeyError,
        ValueError,
        AttributeError,
        TypeError,
        UnicodeDecodeError,
    ) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else ""
        raise _not_ours(path, f"not a readable PyTorch file: {first[:200]}") from err
    if not isinstance(loaded, dict):
        raise _not_ours(path, f"it holds a {type(loaded).__name__}, not a dict")
    return loaded


def _input_spec(path: Path, spec: Any) -> dict[str, Any] | None:
    """Check the input specification stored in a checkpoint.

    Args:
        path: the checkpoint (for messages)
        spec: what the checkpoint (or the restored task) holds, or None

    Returns:
        ``radiometry``, ``sar_res`` (float or None) and ``patch_size`` (int), or
        None when the checkpoint records none.

    Raises:
        ValueError: If the specification is malformed.
    """
    if spec is None:
        return None
    problem = None
    if not isinstance(spec, dict):
        problem = f"a {type(spec).__name__}, not a dict"
    elif spec.get("radiometry") not in RADIOMETRIES:
        problem = f"radiometry {spec.get('radiometry')!r} is not one of {RADIOMETRIES}"
    elif spec.get("sar_res") is not None and not (
        isinstance(spec["sar_res"], int | float)
        and math.isfinite(spec["sar_res"])
        and spec["sar_res"] > 0
    ):
        problem = f"sar_res {spec['sar_res']!r} is not a positive number of metres"
    elif not (
        isinstance(spec.get("patch_size"), int)
        and not isinstance(spec.get("patch_size"), bool)
        and spec["patch_size"] > 0
    ):
        problem = f"patch_size {spec.get('patch_size')!r} is not a positive integer"
    if problem is not None:
        raise ValueError(
            f"checkpoint {str(path)!r} holds a malformed input specification "
            f"({INPUT_SPEC_KEY!r}: {problem}); it was not written by "
            "DamageDetectionTask. Retrain the model, or remove the key to map "
            "with the SAR image's own pixel size."
        )
    sar_res = spec.get("sar_res")
    return {
        "radiometry": str(spec["radiometry"]),
        "sar_res": None if sar_res is None else float(sar_res),
        "patch_size": int(spec["patch_size"]),
    }


def load_damage_model(path: str | os.PathLike[str]) -> LoadedModel:
    """Load a trained :class:`~torchgeo_quake.trainers.DamageDetectionTask`.

    The file is first read with ``weights_only=True`` (no arbitrary code runs)
    and checked: it must be a Lightning checkpoint whose hyper-parameters name
    the modalities and whose state holds the model, the normalisation buffers
    and the threshold. Its input specification (:data:`INPUT_SPEC_KEY`: SAR
    radiometry, pixel size and patch size of the training data) is checked too
    and returned as :attr:`LoadedModel.input_spec` (None for older checkpoints).

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
    """
    from ..datasets import GEM_FEATURE_NAMES

    file = Path(path)
    checkpoint = _read_checkpoint(file)
    state = checkpoint.get("state_dict")
    hparams = checkpoint.get("hyper_parameters")
    if not isinstance(state, dict) or not isinstance(hparams, dict):
        keys = ", ".join(sorted(map(str, checkpoint))[:8]) or "none"
        raise _not_ours(
            file, f"no Lightning 'state_dict' and 'hyper_parameters'; keys: {keys}"
        )
    needed = ("threshold", "normalization_set")
    if "modalities" not in hparams or any(key not in state for key in needed):
        raise _not_ours(
            file,
            "a Lightning checkpoint of another model: no 'modalities' "
            "hyper-parameter or no stored threshold",
        )
    if not any(str(key).startswith("model.") for key in state):
        raise _not_ours(file, "no late-fusion network weights in its state")
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
        raise _not_ours(file, f"its weights do not fit the model: {err}") from err
    task.eval()
    restored = getattr(task, "input_spec", None)
    if restored is not None:
        input_spec = _input_spec(file, restored)
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
