"""Safe reading of DamageDetectionTask checkpoints, and their compatibility.

Checkpoints are read with ``torch.load(..., weights_only=True)``, so no code
stored in a file runs, and checked to be checkpoints of
:class:`~torchgeo_quake.trainers.DamageDetectionTask` before anything is built
from them. Used for fine-tuning (``init_from``) and, through
:func:`~torchgeo_quake.mapping.load_damage_model`, for mapping.

When a task is restored from a checkpoint, :func:`restoring` records the file
(for messages, :func:`checkpoint_name`) and that the task's state comes from it
(:func:`is_restoring`), and :func:`check_compatible` refuses checkpoints
trained with other modalities or GEM width.

.. versionadded:: 0.2
"""

from __future__ import annotations

import contextvars
import os
import pickle
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from ..models import canonical_modalities
from ._hints import config_hint, gem_hint

__all__ = [
    "check_compatible",
    "checkpoint_name",
    "is_restoring",
    "not_a_task_checkpoint",
    "read_checkpoint",
    "read_task_checkpoint",
    "restoring",
]

#: File being read by :meth:`DamageDetectionTask.load_from_checkpoint`.
_LOADING: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "torchgeo_quake_loading_checkpoint", default=None
)

#: Whether :meth:`DamageDetectionTask.load_from_checkpoint` is building the task
#: (then its state comes from the checkpoint and ``init_from`` is not applied).
_RESTORING: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "torchgeo_quake_restoring_checkpoint", default=False
)


def not_a_task_checkpoint(path: str | os.PathLike[str], detail: str) -> ValueError:
    """The error for a file that is not a damage-model checkpoint.

    Args:
        path: The file.
        detail: What was found instead.

    Returns:
        The exception to raise; its message names the file, says what it holds
        and what to pass instead.

    .. versionadded:: 0.2
    """
    return ValueError(
        f"{os.fspath(path)!r} is not a torchgeo_quake damage-model checkpoint "
        f"({detail}). Pass a checkpoint written while training "
        "DamageDetectionTask, e.g. runs/all_inputs/checkpoints/last.ckpt from "
        "`torchgeo fit --config experiments/all_inputs.yaml`."
    )


def _load(path: Path) -> Any:
    """``torch.load`` a file safely, memory-mapped when its format allows.

    Memory-mapped tensors are only read when used, so checking a checkpoint
    costs no memory for its weights.

    Args:
        path: The file.

    Returns:
        What the file holds.
    """
    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except RuntimeError:  # not the zip format (mmap needs it): plain reading
        return torch.load(path, map_location="cpu", weights_only=True)


def read_checkpoint(
    path: str | os.PathLike[str], what: str = "checkpoint"
) -> dict[str, Any]:
    """Read a checkpoint file safely (tensors and plain containers only).

    Args:
        path: The file.
        what: What the file is for, named in the missing-file message (e.g.
            ``"init_from checkpoint"``).

    Returns:
        The checkpoint dictionary (tensors on the CPU, memory-mapped where the
        file format allows).

    Raises:
        FileNotFoundError: If the file does not exist.
        ValueError: If it is not a readable PyTorch file holding a dict.

    .. versionadded:: 0.2
    """
    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(
            f"{what} {str(file)!r} does not exist. Pass the .ckpt file of a trained "
            "DamageDetectionTask (e.g. runs/all_inputs/checkpoints/last.ckpt)."
        )
    try:
        loaded = _load(file)
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
        raise not_a_task_checkpoint(
            file, f"not a readable PyTorch file: {first[:200]}"
        ) from err
    if not isinstance(loaded, dict):
        raise not_a_task_checkpoint(
            file, f"it holds a {type(loaded).__name__}, not a dict"
        )
    return loaded


def read_task_checkpoint(
    path: str | os.PathLike[str], what: str = "checkpoint"
) -> dict[str, Any]:
    """Read a checkpoint and check that DamageDetectionTask wrote it.

    The checkpoint must be a Lightning checkpoint (``state_dict`` and
    ``hyper_parameters``) whose hyper-parameters name the ``modalities`` and
    whose state holds the decision threshold, the normalisation flag and the
    late-fusion network (``model.*``). Nothing is built from it.

    Args:
        path: The file.
        what: What the file is for, named in the missing-file message.

    Returns:
        The checkpoint dictionary.

    Raises:
        FileNotFoundError: If the file does not exist.
        ValueError: If it is not a checkpoint of DamageDetectionTask (the
            message names the file and what it holds instead).

    .. versionadded:: 0.2
    """
    checkpoint = read_checkpoint(path, what)
    state = checkpoint.get("state_dict")
    hparams = checkpoint.get("hyper_parameters")
    if not isinstance(state, dict) or not isinstance(hparams, dict):
        keys = ", ".join(sorted(map(str, checkpoint))[:8]) or "none"
        raise not_a_task_checkpoint(
            path, f"no Lightning 'state_dict' and 'hyper_parameters'; keys: {keys}"
        )
    needed = ("threshold", "normalization_set")
    if "modalities" not in hparams or any(key not in state for key in needed):
        raise not_a_task_checkpoint(
            path,
            "a Lightning checkpoint of another model: no 'modalities' "
            "hyper-parameter or no stored threshold",
        )
    if not any(str(key).startswith("model.") for key in state):
        raise not_a_task_checkpoint(path, "no late-fusion network weights in its state")
    return checkpoint


@contextmanager
def restoring(source: str | None) -> Iterator[None]:
    """Mark, for the duration, that a task is being restored from a checkpoint.

    Args:
        source: The checkpoint file, or None when it is a file object.

    Yields:
        Nothing; inside, :func:`is_restoring` is True and
        :func:`checkpoint_name` names *source*.

    .. versionadded:: 0.2
    """
    token = _LOADING.set(source)
    restoring = _RESTORING.set(True)
    try:
        yield
    finally:
        _RESTORING.reset(restoring)
        _LOADING.reset(token)


def is_restoring() -> bool:
    """Whether a task is being restored from a checkpoint (see :func:`restoring`).

    Returns:
        True inside :func:`restoring`.

    .. versionadded:: 0.2
    """
    return _RESTORING.get()


def checkpoint_name(ckpt_path: str | os.PathLike[str] | None = None) -> str:
    """Name the checkpoint being loaded, for error messages.

    Args:
        ckpt_path: The trainer's ``ckpt_path``, used when no file is being read
            by :func:`restoring`.

    Returns:
        ``checkpoint '<path>'`` when known, else ``checkpoint``.

    .. versionadded:: 0.2
    """
    path = _LOADING.get()
    if path is None and ckpt_path is not None:
        path = os.fspath(ckpt_path)
    return "checkpoint" if path is None else f"checkpoint {path!r}"


def check_compatible(
    checkpoint: Mapping[str, Any],
    name: str,
    modalities: Sequence[str],
    gem_features: int,
) -> None:
    """Refuse a checkpoint trained with other modalities or GEM width.

    The network's own record (its extra state, ``model._extra_state``) counts
    first: keyword arguments of ``load_from_checkpoint`` overwrite the saved
    hyper-parameters.

    Args:
        checkpoint: The loaded checkpoint.
        name: The checkpoint, for messages (see :func:`checkpoint_name`).
        modalities: The task's modalities, in canonical order.
        gem_features: The task's GEM width (checked when it has ``gem``).

    Raises:
        ValueError: If the checkpoint's modalities or GEM width differ from
            the task's; the message names the configuration that fits it.

    .. versionadded:: 0.2
    """
    hparams = dict(checkpoint.get("hyper_parameters", {}))
    extra = checkpoint.get("state_dict", {}).get("model._extra_state")
    if isinstance(extra, Mapping):
        for key in ("modalities", "gem_features"):
            if key in extra:
                hparams[key] = extra[key]
    if "modalities" in hparams:
        saved = canonical_modalities(hparams["modalities"])
        if saved != tuple(modalities):
            raise ValueError(
                f"{name} was trained with modalities {list(saved)}, but "
                f"this task is configured with modalities {list(modalities)}"
                f": use the configuration with {config_hint(saved)} for this "
                "checkpoint, or a checkpoint trained with "
                f"{config_hint(modalities)}"
            )
    saved_gem = hparams.get("gem_features")
    if "gem" in modalities and saved_gem is not None and saved_gem != gem_features:
        raise ValueError(
            f"{name} was trained with gem_features={saved_gem}, but this "
            f"task is configured with gem_features={gem_features}"
            f": set model.init_args.gem_features to {saved_gem} for this "
            "checkpoint, or retrain the model on the current GEM vector "
            f"({gem_hint()})"
        )
