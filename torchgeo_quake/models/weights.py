"""Loading ResNet-18 encoder weights from a state-dict file.

Encoders can start from weights pretrained elsewhere, e.g. SAR-HUB's ResNet-18
trained on TerraSAR-X scenes for the SAR branch. Such files come in many
wrappings: a bare state dict, a training checkpoint holding one under
``state_dict`` or ``model``, keys prefixed by ``module.`` (DataParallel),
``backbone.``, ``encoder.`` or ``model.``, a classifier (``fc.*``) and a
3-channel first convolution. :func:`load_resnet18_state_dict` unwraps all of
these into the state dict of :func:`~torchgeo_quake.models.resnet18_encoder`
and refuses, naming the file and the keys, anything else. Nothing is downloaded.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor

from .resnet import resnet18_encoder

__all__ = ["WEIGHT_PREFIXES", "load_resnet18_state_dict"]

#: Key prefixes removed (repeatedly, in any order) from loaded state dicts.
WEIGHT_PREFIXES = ("module.", "backbone.", "encoder.", "model.", "_orig_mod.")

#: Keys under which training checkpoints commonly keep the state dict.
_CONTAINER_KEYS = ("state_dict", "model_state_dict", "model", "net", "network")


def _strip_prefixes(key: str) -> str:
    """Remove known wrapper prefixes from the start of a key.

    Args:
        key: State-dict key.

    Returns:
        The key without leading wrapper prefixes.
    """
    stripped = True
    while stripped:
        stripped = False
        for prefix in WEIGHT_PREFIXES:
            if key.startswith(prefix):
                key = key[len(prefix) :]
                stripped = True
    return key


def _unwrap(obj: Any, path: str) -> Mapping[str, Tensor]:
    """Find the state dict inside a loaded object.

    Args:
        obj: Object returned by :func:`torch.load`.
        path: File it came from, for error messages.

    Returns:
        The tensors of the state dict (non-tensor entries such as extra state
        are left out).

    Raises:
        ValueError: If no mapping of tensors is found.
    """
    while isinstance(obj, Mapping):
        inner = next(
            (obj[k] for k in _CONTAINER_KEYS if isinstance(obj.get(k), Mapping)),
            None,
        )
        if inner is not None:
            obj = inner
            continue
        tensors = {str(k): v for k, v in obj.items() if isinstance(v, Tensor)}
        if tensors:
            return tensors
        break
    raise ValueError(
        f"{path}: no state dict of tensors found (looked at the top level and "
        f"under {list(_CONTAINER_KEYS)})"
    )


def load_resnet18_state_dict(
    path: str | os.PathLike[str], in_channels: int = 1
) -> dict[str, Tensor]:
    """Load ResNet-18 weights from a file as a :func:`resnet18_encoder` state dict.

    The file is read with ``torch.load(..., weights_only=True)``. The state
    dict may sit under one of the keys ``state_dict``, ``model_state_dict``,
    ``model``, ``net`` or ``network``; prefixes in :data:`WEIGHT_PREFIXES` are
    removed from its keys; classifier keys (``fc.*``) are dropped. A first
    convolution with another number of input channels is adapted to
    *in_channels* by summing its kernels over the input channels and, for
    ``in_channels > 1``, repeating the sum divided by *in_channels*; this keeps
    the response to an image whose bands all equal the single band, the way a
    single-band SAR amplitude is fed to an RGB network. Missing
    ``num_batches_tracked`` counters (old checkpoints) are set to zero.

    Args:
        path: State-dict or checkpoint file.
        in_channels: Input channels of the target encoder.

    Returns:
        A state dict with exactly the keys and shapes of
        ``resnet18_encoder(in_channels).state_dict()``.

    Raises:
        FileNotFoundError: If *path* does not exist.
        ValueError: If the file holds no state dict, or its keys or shapes do
            not fit a torchvision ResNet-18 (the message names the file and the
            offending keys).

    .. versionadded:: 0.1
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"ResNet-18 weights file not found: {path}")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise ValueError(
            f"{path}: cannot be read as a PyTorch state dict ({err})"
        ) from err
    raw = _unwrap(obj, path)

    state: dict[str, Tensor] = {}
    for key, value in raw.items():
        name = _strip_prefixes(key)
        if name.startswith("fc."):
            continue
        if name in state:
            raise ValueError(f"{path}: duplicate key {name!r} after removing prefixes")
        state[name] = value

    expected = resnet18_encoder(in_channels).state_dict()
    for key in expected:
        if key.endswith("num_batches_tracked") and key not in state:
            state[key] = torch.zeros((), dtype=torch.long)
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        raise ValueError(
            f"{path}: not a torchvision ResNet-18 state dict "
            f"(after removing prefixes {list(WEIGHT_PREFIXES)} and fc.*): "
            f"missing keys {missing[:10]}{' ...' if len(missing) > 10 else ''}, "
            f"unexpected keys {unexpected[:10]}"
            f"{' ...' if len(unexpected) > 10 else ''}"
        )

    conv1 = state["conv1.weight"]
    want = expected["conv1.weight"].shape
    if (
        conv1.ndim == 4
        and conv1.shape[0] == want[0]
        and conv1.shape[2:] == want[2:]
        and conv1.shape[1] != in_channels
    ):
        summed = conv1.sum(dim=1, keepdim=True)
        state["conv1.weight"] = summed.repeat(1, in_channels, 1, 1) / in_channels
    bad = [
        f"{key}: expected {tuple(ref.shape)}, got {tuple(state[key].shape)}"
        for key, ref in expected.items()
        if state[key].shape != ref.shape
    ]
    if bad:
        raise ValueError(f"{path}: tensor shapes do not fit ResNet-18: {bad[:10]}")
    return {
        key: state[key].to(dtype=ref.dtype).clone() for key, ref in expected.items()
    }
