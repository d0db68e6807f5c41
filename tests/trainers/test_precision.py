"""Precision: Lightning's trainer.precision, float32 where bf16 would be slow."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import lightning
import pytest
import torch
from lightning import Trainer
from test_damage_task import GEM, TinyDataModule, _task, _trainer

from torchgeo_quake.trainers import DamageDetectionTask
from torchgeo_quake.trainers import precision as precision_module
from torchgeo_quake.trainers.precision import (
    bf16_support,
    cpu_bf16_flags,
    resolve_precision,
)

#: The GEM MLP alone: a network without ResNets, quick to build and run.
GEM_ONLY = ["gem"]

X86 = "processor\t: 0\nmodel name\t: Some CPU\nflags\t\t: fpu sse2 avx2 avx512f {}\n"


@pytest.mark.parametrize(
    ("cpuinfo", "expected"),
    [
        (X86.format("avx512bw avx512_bf16 avx512_vnni"), {"avx512_bf16"}),
        (X86.format("amx_bf16 amx_tile avx512_bf16"), {"amx_bf16", "avx512_bf16"}),
        # Plain AVX-512: oneDNN only emulates bf16 there (slower than fp32).
        (X86.format("avx512bw avx512vl avx512dq"), set()),
        ("processor\t: 0\nFeatures\t: fp asimd sve bf16 i8mm\n", {"bf16"}),
        ("processor\t: 0\nFeatures\t: fp asimd\n", set()),
        ("", set()),
    ],
)
def test_cpu_bf16_flags(cpuinfo: str, expected: set[str]) -> None:
    assert cpu_bf16_flags(cpuinfo) == expected


@pytest.fixture
def fake_cpu(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    """A CPU whose oneDNN runs bf16 and whose flags are read from a file."""
    path = tmp_path / "cpuinfo"
    monkeypatch.setattr(precision_module, "CPUINFO", path)
    monkeypatch.setattr(precision_module, "_onednn_bf16", lambda: True)
    precision_module._cpu_support.cache_clear()
    yield path
    precision_module._cpu_support.cache_clear()


def test_cpu_support_needs_native_instructions(fake_cpu: Path) -> None:
    cpu = torch.device("cpu")
    fake_cpu.write_text(X86.format("avx512bw avx512vl avx512dq"))
    supported, reason = bf16_support(cpu)
    assert not supported and "no native bfloat16" in reason
    precision_module._cpu_support.cache_clear()
    fake_cpu.write_text(X86.format("avx512_bf16"))
    assert bf16_support(cpu) == (True, "native bfloat16 instructions (avx512_bf16)")
    precision_module._cpu_support.cache_clear()
    fake_cpu.unlink()  # no /proc/cpuinfo (macOS, Windows): float32
    supported, reason = bf16_support(cpu)
    assert not supported and "cannot be checked" in reason


def test_cpu_support_needs_onednn(
    fake_cpu: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_cpu.write_text(X86.format("avx512_bf16"))
    monkeypatch.setattr(precision_module, "_onednn_bf16", lambda: False)
    supported, reason = bf16_support(torch.device("cpu"))
    assert not supported and "oneDNN" in reason


def _no_bf16(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the support check answer no, as on a CPU without bf16."""
    monkeypatch.setattr(
        precision_module, "bf16_support", lambda device: (False, "no bf16 here")
    )


def _cpu_trainer(precision: str) -> Trainer:
    kwargs: dict[str, Any] = {"precision": precision}
    return Trainer(accelerator="cpu", devices=1, logger=False, **kwargs)


@pytest.mark.parametrize("precision", ["bf16-mixed", "bf16-true"])
def test_bf16_without_support_falls_back_to_fp32(
    monkeypatch: pytest.MonkeyPatch, precision: str
) -> None:
    _no_bf16(monkeypatch)
    trainer = _cpu_trainer(precision)
    with pytest.warns(UserWarning, match=r"no bf16 here.*--trainer.precision 32-true"):
        assert resolve_precision(trainer) == "32-true"
    assert trainer.precision == "32-true"
    with warnings.catch_warnings():  # already float32: nothing more to say
        warnings.simplefilter("error")
        assert resolve_precision(trainer) == "32-true"


def test_bf16_with_support_is_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        precision_module, "bf16_support", lambda device: (True, "has bf16")
    )
    trainer = _cpu_trainer("bf16-mixed")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert resolve_precision(trainer) == "bf16-mixed"
    assert trainer.precision == "bf16-mixed"


def test_other_precisions_are_not_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(device: torch.device) -> tuple[bool, str]:
        raise AssertionError("checked")

    monkeypatch.setattr(precision_module, "bf16_support", fail)
    assert resolve_precision(_cpu_trainer("32-true")) == "32-true"


def test_fit_on_a_cpu_without_bf16_trains_in_fp32(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _no_bf16(monkeypatch)
    seen: list[torch.dtype] = []
    task = _task(GEM_ONLY)
    task.model.register_forward_hook(lambda m, i, out: seen.append(out.dtype))
    trainer = _trainer(tmp_path, precision="bf16-mixed", fast_dev_run=True)
    with pytest.warns(UserWarning, match="this run uses float32"):
        trainer.fit(task, datamodule=TinyDataModule())
    assert trainer.precision == "32-true"
    assert seen and set(seen) == {torch.float32}


def test_bf16_outputs_float32_logits() -> None:
    task = _task(GEM_ONLY).eval()
    batch = TinyDataModule().train[0]
    inputs = {k: v[None] for k, v in batch.items() if k in task.modalities}
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        assert task.model(**task.normalize(inputs)).dtype == torch.bfloat16
        logits = task(inputs)
    assert logits.dtype == torch.float32 and logits.shape == (1,)


def test_amp_is_deprecated(tmp_path: Path) -> None:
    with pytest.warns(FutureWarning, match=r"amp.*--trainer.precision 32-true"):
        task = DamageDetectionTask(GEM_ONLY, gem_features=GEM, amp=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        DamageDetectionTask(GEM_ONLY, gem_features=GEM)
        # Old checkpoints hold amp=True among their hyper-parameters: they
        # load without the warning (there is nothing for the user to change).
        path = tmp_path / "old.ckpt"
        checkpoint = {
            "state_dict": task.state_dict(),
            "hyper_parameters": {**task.hparams, "amp": True},
            "pytorch-lightning_version": lightning.__version__,
        }
        torch.save(checkpoint, path)
        DamageDetectionTask.load_from_checkpoint(path)
