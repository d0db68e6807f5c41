"""Throughput of LateFusionNet (fused encoders) against a plain reference.

The reference is the same late-fusion network built from three stock
torchvision ResNet-18s (``LateFusionNet(fused=False)``); the candidate is the
default ``LateFusionNet`` with the grouped encoder. Both take all four
modalities on 32×32 patches and start from the same weights. For each batch
size they are timed side by side (alternating, after a warm-up; median of the
iterations):

* ``train``: forward, binary cross-entropy, backward and an AdamW step
  (PyTorch's fused AdamW, as ``DamageDetectionTask`` uses it; the default
  foreach AdamW with ``--foreach-adamw``);
* ``infer``: forward in eval mode under :func:`torch.inference_mode`.

On CUDA both run under bf16 autocast. Prints one JSON line.

Usage::

    python benchmarks/train.py            # batch 64 and 256
    python benchmarks/train.py --quick    # fewer iterations
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import torch
from torch import Tensor, nn

from torchgeo_quake.models import MODALITIES, LateFusionNet

GEM_FEATURES = 20
PATCH = 32


def device_name(device: torch.device) -> str:
    """Describe the device."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def make_batch(batch_size: int, device: torch.device) -> dict[str, Tensor]:
    """Random inputs with the shapes of the sample contract."""
    g = torch.Generator().manual_seed(batch_size)
    batch = {
        "sar": torch.rand(batch_size, 1, PATCH, PATCH, generator=g),
        "footprint": (
            torch.rand(batch_size, 1, PATCH, PATCH, generator=g) > 0.5
        ).float(),
        "dsm": torch.randn(batch_size, 1, PATCH, PATCH, generator=g),
        "gem": torch.randn(batch_size, GEM_FEATURES, generator=g),
        "label": (torch.rand(batch_size, generator=g) > 0.8).float(),
    }
    return {k: v.to(device) for k, v in batch.items()}


def make_optimizer(model: nn.Module, fused: bool) -> torch.optim.Optimizer:
    """AdamW, fused where PyTorch supports it (as the training task uses it)."""
    if fused:
        try:
            return torch.optim.AdamW(model.parameters(), lr=1e-3, fused=True)
        except (RuntimeError, TypeError):
            pass
    return torch.optim.AdamW(model.parameters(), lr=1e-3)


def timed(fn: Callable[[], None], device: torch.device) -> float:
    """Run *fn* once and return its wall time in seconds."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - start


def autocast(device: torch.device, amp: bool) -> AbstractContextManager[Any]:
    """bf16 autocast when *amp*, else nothing."""
    if amp:
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return nullcontext()


def make_train_step(
    model: nn.Module,
    opt: torch.optim.Optimizer,
    inputs: dict[str, Tensor],
    label: Tensor,
    amp: bool,
) -> Callable[[], None]:
    """One optimisation step on a fixed batch."""
    device = label.device

    def step() -> None:
        model.train()
        opt.zero_grad(set_to_none=True)
        with autocast(device, amp):
            logits = model(**inputs)
        loss = nn.functional.binary_cross_entropy_with_logits(logits.float(), label)
        loss.backward()
        opt.step()

    return step


def make_infer_step(
    model: nn.Module, inputs: dict[str, Tensor], amp: bool
) -> Callable[[], None]:
    """One inference forward pass on a fixed batch."""
    device = next(iter(inputs.values())).device

    def step() -> None:
        model.eval()
        with torch.inference_mode(), autocast(device, amp):
            model(**inputs)

    return step


def side_by_side(
    steps: dict[str, Callable[[], None]],
    device: torch.device,
    warmup: int,
    iters: int,
) -> dict[str, float]:
    """Median seconds per call of each step, interleaving the steps."""
    for _ in range(warmup):
        for fn in steps.values():
            fn()
    times: dict[str, list[float]] = {name: [] for name in steps}
    names = list(steps)
    for i in range(iters):
        order = names if i % 2 == 0 else names[::-1]
        for name in order:
            times[name].append(timed(steps[name], device))
    return {name: statistics.median(t) for name, t in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer iterations")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[64, 256])
    parser.add_argument(
        "--device", default="cuda" if torch.cuda.is_available() else "cpu"
    )
    parser.add_argument("--threads", type=int, default=None, help="CPU threads")
    parser.add_argument("--warmup", type=int, default=None)
    parser.add_argument("--iters", type=int, default=None)
    parser.add_argument(
        "--foreach-adamw",
        action="store_true",
        help="PyTorch's default (foreach) AdamW instead of the fused one",
    )
    args = parser.parse_args()

    if args.threads:
        torch.set_num_threads(args.threads)
    warmup = args.warmup if args.warmup is not None else (1 if args.quick else 2)
    iters = args.iters if args.iters is not None else (3 if args.quick else 7)
    device = torch.device(args.device)
    amp = device.type == "cuda"

    torch.manual_seed(0)
    plain = LateFusionNet(MODALITIES, gem_features=GEM_FEATURES, fused=False)
    fused = LateFusionNet(MODALITIES, gem_features=GEM_FEATURES)
    fused.load_plain_state_dict(plain.state_dict())
    models = {"fused": fused.to(device), "plain": plain.to(device)}

    # Same function: compare outputs on one batch in eval and train mode (fp32).
    check = make_batch(16, device)
    inputs = {m: check[m] for m in MODALITIES}
    diffs = {}
    for mode in ("eval", "train"):
        outs = []
        for model in models.values():
            model.train(mode == "train")
            torch.manual_seed(1)  # same dropout mask
            with torch.no_grad():
                outs.append(model(**inputs).float())
        diffs[mode] = float((outs[0] - outs[1]).abs().max())
    # The check ran train-mode forwards: restore identical BN statistics.
    fused.load_plain_state_dict(plain.state_dict())

    probe = make_optimizer(plain, not args.foreach_adamw)
    opt_name = f"{type(probe).__name__}(fused={bool(probe.defaults.get('fused'))})"
    del probe

    results = []
    for batch_size in args.batch_sizes:
        batch = make_batch(batch_size, device)
        inputs = {m: batch[m] for m in MODALITIES}
        label = batch["label"]
        train_steps: dict[str, Callable[[], None]] = {}
        infer_steps: dict[str, Callable[[], None]] = {}
        for name, model in models.items():
            opt = make_optimizer(model, not args.foreach_adamw)
            train_steps[name] = make_train_step(model, opt, inputs, label, amp)
            infer_steps[name] = make_infer_step(model, inputs, amp)
        train = side_by_side(train_steps, device, warmup, iters)
        infer = side_by_side(infer_steps, device, warmup, iters)
        results.append(
            {
                "batch_size": batch_size,
                "train_samples_per_s": {
                    k: round(batch_size / v, 1) for k, v in train.items()
                },
                "infer_samples_per_s": {
                    k: round(batch_size / v, 1) for k, v in infer.items()
                },
                "train_speedup": round(train["plain"] / train["fused"], 2),
                "infer_speedup": round(infer["plain"] / infer["fused"], 2),
            }
        )

    print(
        json.dumps(
            {
                "benchmark": "LateFusionNet fused vs plain (3x torchvision ResNet-18)",
                "torch": torch.__version__,
                "device": device_name(device),
                "device_type": device.type,
                "threads": torch.get_num_threads(),
                "amp": "bf16" if amp else None,
                "optimizer": opt_name,
                "modalities": list(MODALITIES),
                "patch": PATCH,
                "warmup": warmup,
                "iters": iters,
                "max_abs_output_diff": diffs,
                "results": results,
            }
        )
    )


if __name__ == "__main__":
    main()
