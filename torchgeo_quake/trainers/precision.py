"""Reduced precision where the hardware runs it fast, float32 elsewhere.

Precision is Lightning's own ``trainer.precision``. The experiment
configurations ask for ``bf16-mixed`` (bfloat16 autocast; weights, optimiser,
loss and metrics stay float32), which is fast only on processors with
bfloat16 arithmetic. :class:`~torchgeo_quake.trainers.DamageDetectionTask`
calls :func:`resolve_precision` when Lightning sets it up, so a bfloat16
precision on hardware without it trains in float32 with a warning that says
why, instead of running several times slower.

Hardware with bfloat16 (:func:`bf16_support`):

* **CPU**: PyTorch's oneDNN backend must run bfloat16
  (``torch.ops.mkldnn._is_mkldnn_bf16_supported()``) *and* the processor must
  have native bfloat16 instructions, read from the CPU flags of the operating
  system (``/proc/cpuinfo`` on Linux): ``avx512_bf16`` or ``amx_bf16`` on
  x86-64 (Intel Cooper Lake, Sapphire Rapids and later; AMD Zen 4 and later),
  ``bf16`` on AArch64 (e.g. AWS Graviton 3). oneDNN also emulates bfloat16 on
  plain AVX-512, but slower than float32, so that does not count. Where the
  flags cannot be read (macOS, Windows) the answer is no.
* **CUDA**: ``torch.cuda.is_bf16_supported(including_emulation=False)``
  (compute capability 8.0 and later: A100, H100, RTX 30xx, ...).

``--trainer.precision 32-true`` (``precision: 32-true`` in a configuration file)
always trains in float32.

.. versionadded:: 0.2
"""

from __future__ import annotations

import functools
import platform
import warnings
from pathlib import Path
from typing import Any

import torch

__all__ = [
    "BF16_CPU_FLAGS",
    "BF16_PRECISIONS",
    "bf16_support",
    "cpu_bf16_flags",
    "resolve_precision",
    "warn_amp_deprecated",
]

#: CPU flags (as the Linux kernel names them) of native bfloat16 arithmetic.
BF16_CPU_FLAGS = frozenset({"avx512_bf16", "amx_bf16", "bf16"})

#: Lightning precisions that compute in bfloat16.
BF16_PRECISIONS = frozenset({"bf16-mixed", "bf16-true"})

#: Float32, the fallback.
FP32 = "32-true"

CPUINFO = Path("/proc/cpuinfo")


def cpu_bf16_flags(cpuinfo: str) -> set[str]:
    """The bfloat16 flags of the first processor described in a cpuinfo text.

    Args:
        cpuinfo: text of ``/proc/cpuinfo`` (``flags`` lines on x86-64,
            ``Features`` lines on AArch64).

    Returns:
        The flags of :data:`BF16_CPU_FLAGS` present, e.g. ``{"avx512_bf16"}``;
        empty when none is.
    """
    for line in cpuinfo.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip().lower() in ("flags", "features"):
            return set(value.split()) & BF16_CPU_FLAGS
    return set()


def _onednn_bf16() -> bool:
    """Whether PyTorch's oneDNN backend runs bfloat16 on this CPU.

    Returns:
        The answer (False for builds without oneDNN).
    """
    if not torch.backends.mkldnn.is_available():  # type: ignore[no-untyped-call,unused-ignore]  # pragma: no cover
        return False
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # pragma: no cover - exotic builds
        return False


@functools.cache
def _cpu_support() -> tuple[bool, str]:
    """Whether this CPU runs bfloat16 natively, and why (cached).

    Returns:
        The answer and a description for messages.
    """
    if not _onednn_bf16():
        return False, "PyTorch's oneDNN backend runs no bfloat16 on this CPU"
    try:
        text = CPUINFO.read_text()
    except OSError:
        return False, (
            "the processor's bfloat16 instructions cannot be checked (no "
            f"{CPUINFO} on {platform.system()})"
        )
    flags = cpu_bf16_flags(text)
    if not flags:
        return False, (
            "the processor has no native bfloat16 instructions (none of "
            f"{', '.join(sorted(BF16_CPU_FLAGS))} among the flags of {CPUINFO})"
        )
    return True, f"native bfloat16 instructions ({', '.join(sorted(flags))})"


def bf16_support(device: torch.device) -> tuple[bool, str]:
    """Whether a device computes in bfloat16 at full speed.

    Args:
        device: the device, ``cpu`` or ``cuda`` (others: not checked, True).

    Returns:
        The answer and a description of the reason, for messages.
    """
    if device.type == "cpu":
        return _cpu_support()
    if device.type == "cuda":
        supported = torch.cuda.is_bf16_supported(including_emulation=False)
        name = torch.cuda.get_device_name(device)
        if supported:
            return True, f"{name} has bfloat16 arithmetic"
        return False, f"{name} has no bfloat16 arithmetic (compute capability < 8)"
    return True, f"{device.type} is not checked"


def resolve_precision(trainer: Any) -> str:
    """Fall back to float32 when the trainer's bfloat16 would be slow.

    Called by :class:`~torchgeo_quake.trainers.DamageDetectionTask` when
    Lightning sets it up. With ``trainer.precision`` ``bf16-mixed`` or
    ``bf16-true`` on a device without bfloat16 arithmetic (see
    :func:`bf16_support`), the trainer's precision plugin is replaced by
    float32 (``32-true``) and a warning says why; any other precision is left
    as it is.

    Args:
        trainer: the Lightning trainer, before its strategy is set up.

    Returns:
        The precision the trainer uses now.
    """
    from lightning.pytorch.plugins.precision import Precision

    precision = str(trainer.precision)
    if precision not in BF16_PRECISIONS:
        return precision
    device = trainer.strategy.root_device
    supported, reason = bf16_support(device)
    if supported:
        return precision
    trainer.strategy.precision_plugin = Precision()
    warnings.warn(
        f"trainer.precision is {precision!r}, but on this {device.type} "
        f"({_device_name(device)}) {reason}; bfloat16 may run several times "
        f"slower than float32 there, so this run uses float32 ({FP32!r}). Set "
        f"`--trainer.precision {FP32}` (`precision: {FP32}` in the configuration "
        "file) to choose float32 and silence this warning.",
        UserWarning,
        stacklevel=2,
    )
    return FP32


def warn_amp_deprecated(amp: bool) -> None:
    """Warn that ``DamageDetectionTask(amp=...)`` is deprecated and ignored.

    Args:
        amp: the value given.
    """
    warnings.warn(
        f"DamageDetectionTask(amp={amp}) is deprecated and ignored: precision "
        "is Lightning's trainer.precision. Remove `amp` from the model's "
        "init_args and set `precision: bf16-mixed` in the trainer section "
        "(bfloat16 where the hardware has it, float32 elsewhere) or "
        f"`precision: {FP32}` (float32); on the command line "
        f"`--trainer.precision bf16-mixed` or `--trainer.precision {FP32}`.",
        FutureWarning,
        stacklevel=3,
    )


def _device_name(device: torch.device) -> str:
    """A short description of a device.

    Args:
        device: the device

    Returns:
        The CPU's model name, the GPU's name, or the device type.
    """
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    if device.type == "cpu":
        try:
            for line in CPUINFO.read_text().splitlines():
                if line.lower().startswith("model name"):
                    return line.partition(":")[2].strip()
        except OSError:
            pass
        return platform.processor() or platform.machine()
    return device.type
