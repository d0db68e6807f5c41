"""Throughput of LateFusionNet (fused encoders, float32 and bf16) against a reference.

The reference is the same late-fusion network built from three stock
torchvision ResNet-18s (``LateFusionNet(fused=False)``) in float32
(``plain_fp32``); the candidates are the default ``LateFusionNet`` with the
grouped encoder in float32 (``fused_fp32``) and under bfloat16 autocast
(``fused_bf16``, what ``trainer.precision="bf16-mixed"`` runs: weights,
optimiser and loss stay float32). All take all four modalities (GEM vector of
``len(GEM_FEATURE_NAMES)`` features) on 32×32 patches and start from the same
weights. On every device (the CPU, and CUDA when present), for each batch size
they are timed side by side (interleaved, after a warm-up; median of the
iterations), so that a load on the machine slows them alike and their ratios
(``train_speedup``, ``infer_speedup``: samples/s over ``plain_fp32``'s) hold:

* ``train``: forward, binary cross-entropy, backward and an AdamW step
  (PyTorch's fused AdamW, as ``DamageDetectionTask`` uses it; the default
  foreach AdamW with ``--foreach-adamw``);
* ``infer``: forward in eval mode under :func:`torch.inference_mode`.

Training is also timed for the stock reference, the plain network in float32
with PyTorch's default (foreach) AdamW (``plain_fp32_stock_adamw``): three
stock ResNet-18s with a stock optimiser. Whether the device computes bf16 at
full speed (``bf16_supported``, see
:func:`torchgeo_quake.trainers.precision.bf16_support`) is reported; bf16 is
timed either way (``--precisions fp32`` leaves it out).

The input pipeline is timed too, so
that one can see whether it keeps up with training: the real
``KahramanmarasDamageDataModule`` on a simulated scene (the full five-city
scene by default, simulated into a temporary folder; ``--data-root`` reuses
one), its ``train_dataloader()`` alone, and the loader plus the transfer to
the device and ``PairedFlipRotate`` there, as in training.

Prints one JSON object.

Usage::

    python benchmarks/train.py            # batch 64 and 256, CPU (+ CUDA)
    python benchmarks/train.py --no-data --iters 20   # the networks only
    python benchmarks/train.py --quick    # fewer iterations, small scene
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from torchgeo_quake.datamodules import KahramanmarasDamageDataModule, PairedFlipRotate
from torchgeo_quake.datasets import GEM_FEATURE_NAMES
from torchgeo_quake.models import MODALITIES, LateFusionNet
from torchgeo_quake.trainers.precision import bf16_support

GEM_FEATURES = len(GEM_FEATURE_NAMES)
PATCH = 32
#: Precisions that can be timed: autocast dtype (None: float32).
PRECISIONS: dict[str, torch.dtype | None] = {"fp32": None, "bf16": torch.bfloat16}
#: The reference every speed-up is relative to.
REFERENCE = "plain_fp32"


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


def synchronize(device: torch.device) -> None:
    """Wait for the device's queued work."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn: Callable[[], None], device: torch.device) -> float:
    """Run *fn* once and return its wall time in seconds."""
    synchronize(device)
    start = time.perf_counter()
    fn()
    synchronize(device)
    return time.perf_counter() - start


def autocast(
    device: torch.device, dtype: torch.dtype | None
) -> AbstractContextManager[Any]:
    """Autocast to *dtype* (bf16), or nothing for float32 (None)."""
    if dtype is not None:
        return torch.autocast(device.type, dtype=dtype)
    return nullcontext()


def make_train_step(
    model: nn.Module,
    opt: torch.optim.Optimizer,
    inputs: dict[str, Tensor],
    label: Tensor,
    amp: torch.dtype | None,
) -> Callable[[], None]:
    """One optimisation step on a fixed batch (autocast to *amp* unless None)."""
    device = label.device

    def step() -> None:
        model.train()
        opt.zero_grad(set_to_none=True)
        with autocast(device, amp):
            logits = model(**inputs)
        loss = nn.functional.binary_cross_entropy_with_logits(logits.float(), label)
        loss.backward()  # type: ignore[no-untyped-call,unused-ignore]
        opt.step()

    return step


def make_infer_step(
    model: nn.Module, inputs: dict[str, Tensor], amp: torch.dtype | None
) -> Callable[[], None]:
    """One inference forward pass on a fixed batch (autocast to *amp*)."""
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


def bench_models(
    device: torch.device,
    batch_sizes: list[int],
    warmup: int,
    iters: int,
    fused_adamw: bool,
    precisions: list[str],
) -> dict[str, Any]:
    """Time the fused network (in each precision) and the plain one on a device.

    Returns:
        Output differences, optimiser and samples/s per batch size.
    """
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
    # bf16 against float32, fused network, eval mode: the rounding of bf16.
    fused.eval()
    with torch.no_grad():
        reference = fused(**inputs).float()
        with autocast(device, torch.bfloat16):
            diffs["bf16_vs_fp32_eval"] = float(
                (fused(**inputs).float() - reference).abs().max()
            )
    # The check ran train-mode forwards: restore identical BN statistics.
    fused.load_plain_state_dict(plain.state_dict())

    probe = make_optimizer(plain, fused_adamw)
    opt_name = f"{type(probe).__name__}(fused={bool(probe.defaults.get('fused'))})"
    del probe

    results = []
    for batch_size in batch_sizes:
        batch = make_batch(batch_size, device)
        inputs = {m: batch[m] for m in MODALITIES}
        label = batch["label"]
        train_steps: dict[str, Callable[[], None]] = {}
        infer_steps: dict[str, Callable[[], None]] = {}
        # The reference first: plain network, float32.
        variants = [("plain", "fp32")] + [("fused", p) for p in precisions]
        for name, tag in variants:
            model, dtype = models[name], PRECISIONS[tag]
            opt = make_optimizer(model, fused_adamw)
            key = f"{name}_{tag}"
            train_steps[key] = make_train_step(model, opt, inputs, label, dtype)
            infer_steps[key] = make_infer_step(model, inputs, dtype)
        # The stock reference: the plain network with PyTorch's default AdamW.
        stock_opt = make_optimizer(plain, fused=False)
        train_steps[f"{REFERENCE}_stock_adamw"] = make_train_step(
            plain, stock_opt, inputs, label, None
        )
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
                # Samples/s over the plain float32 network's (same run).
                "train_speedup": {
                    k: round(train[REFERENCE] / v, 2)
                    for k, v in train.items()
                    if k != REFERENCE
                },
                "infer_speedup": {
                    k: round(infer[REFERENCE] / v, 2)
                    for k, v in infer.items()
                    if k != REFERENCE
                },
            }
        )
        del train_steps, infer_steps
    supported, reason = bf16_support(device)
    return {
        "device": device_name(device),
        "device_type": device.type,
        "precisions": precisions,
        "bf16_supported": supported,
        "bf16_support": reason,
        "optimizer": opt_name,
        "max_abs_output_diff": diffs,
        "results": results,
    }


def _to(batch: dict[str, Any], device: torch.device) -> dict[str, Any]:
    """Move the tensors of a batch to *device*."""
    return {
        k: v.to(device, non_blocking=True) if isinstance(v, Tensor) else v
        for k, v in batch.items()
    }


def _batches(loader: Any, limit: int | None) -> Iterator[dict[str, Any]]:
    """At most *limit* batches of one pass over *loader*."""
    for i, batch in enumerate(loader):
        if limit is not None and i >= limit:
            return
        yield batch


def bench_loader(
    root: Path,
    scale: float,
    batch_size: int,
    devices: list[torch.device],
    max_batches: int | None,
    num_workers: int,
) -> dict[str, Any]:
    """Samples/s of the data module's training loader, alone and with augmentation.

    One warm-up pass, then one timed pass of each kind (the whole training
    split, or *max_batches* batches).

    Returns:
        Scene size, set-up time (simulation and sample extraction included when
        *root* is empty) and samples/s.
    """
    simulated = not (root.exists() and any(root.iterdir()))
    start = time.perf_counter()
    dm = KahramanmarasDamageDataModule(
        root=root,
        scale=scale,
        modalities=MODALITIES,
        batch_size=batch_size,
        num_workers=num_workers,
    )
    dm.setup("fit")
    setup_s = time.perf_counter() - start
    loader = dm.train_dataloader()
    for _ in _batches(loader, min(2, max_batches or 2)):
        pass  # warm-up

    def one_pass(step: Callable[[dict[str, Any]], Any] | None, device: Any) -> float:
        n = 0
        start = time.perf_counter()
        for batch in _batches(loader, max_batches):
            if step is not None:
                step(batch)
            n += int(batch["label"].shape[0])
        if device is not None:
            synchronize(device)
        return n / (time.perf_counter() - start)

    out: dict[str, Any] = {
        "scene_scale": scale,
        "train_samples": len(dm.indices["train"]),
        "batch_size": batch_size,
        "num_workers": num_workers,
        "batches": len(loader)
        if max_batches is None
        else min(len(loader), max_batches),
        "simulated": simulated,
        "setup_s": round(setup_s, 2),
        "loader_samples_per_s": round(one_pass(None, None), 1),
    }
    for device in devices:
        aug = PairedFlipRotate().to(device)

        def step(batch: dict[str, Any], aug: nn.Module = aug, d: Any = device) -> Any:
            return aug(_to(batch, d))

        for batch in _batches(loader, 1):  # warm-up on the device
            step(batch)
        out[f"loader_augment_samples_per_s_{device.type}"] = round(
            one_pass(step, device), 1
        )
    return out


@contextmanager
def scene(root: str | None, scale: float) -> Iterator[Path]:
    """The scene folder: *root*, or a simulated scene in a temporary folder."""
    if root is not None:
        yield Path(root)
        return
    with tempfile.TemporaryDirectory(prefix="bench-train-") as tmp:
        yield Path(tmp) / "kahramanmaras"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer iterations")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[64, 256])
    parser.add_argument(
        "--devices",
        nargs="+",
        default=["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"],
        help="devices to measure (default: the CPU, and CUDA when present)",
    )
    parser.add_argument(
        "--precisions",
        nargs="+",
        choices=sorted(PRECISIONS),
        default=["fp32", "bf16"],
        help="precisions of the fused network (the reference is plain fp32)",
    )
    parser.add_argument("--threads", type=int, default=None, help="CPU threads")
    parser.add_argument("--warmup", type=int, default=None)
    parser.add_argument("--iters", type=int, default=None)
    parser.add_argument(
        "--foreach-adamw",
        action="store_true",
        help="PyTorch's default (foreach) AdamW instead of the fused one",
    )
    parser.add_argument(
        "--data-root",
        default=None,
        help="simulated scene to time the data loader on (default: simulate one "
        "into a temporary folder)",
    )
    parser.add_argument(
        "--data-scale",
        type=float,
        default=None,
        help="scale of that scene (default 1, the paper's; 0.05 with --quick)",
    )
    parser.add_argument(
        "--data-batches",
        type=int,
        default=None,
        help="batches per timed loader pass (default: the whole training split)",
    )
    parser.add_argument("--num-workers", type=int, default=0)
    parser.add_argument(
        "--no-data", action="store_true", help="skip the data-loader measurement"
    )
    args = parser.parse_args()

    if args.threads:
        torch.set_num_threads(args.threads)
    warmup = args.warmup if args.warmup is not None else (1 if args.quick else 2)
    iters = args.iters if args.iters is not None else (3 if args.quick else 7)
    scale = (
        args.data_scale
        if args.data_scale is not None
        else (0.05 if args.quick else 1.0)
    )
    devices = [torch.device(d) for d in args.devices]
    load_start = os.getloadavg()

    per_device = [
        bench_models(
            d, args.batch_sizes, warmup, iters, not args.foreach_adamw, args.precisions
        )
        for d in devices
    ]
    loader = None
    if not args.no_data:
        with scene(args.data_root, scale) as root:
            loader = bench_loader(
                root,
                scale,
                args.batch_sizes[0],
                devices,
                args.data_batches,
                args.num_workers,
            )

    print(
        json.dumps(
            {
                "benchmark": "LateFusionNet fused (fp32, bf16) vs plain fp32 "
                "(3x torchvision ResNet-18)",
                "torch": torch.__version__,
                "threads": torch.get_num_threads(),
                "cpu": device_name(torch.device("cpu")),
                "load_average_start": [round(x, 2) for x in load_start],
                "load_average_end": [round(x, 2) for x in os.getloadavg()],
                "modalities": list(MODALITIES),
                "gem_features": GEM_FEATURES,
                "patch": PATCH,
                "warmup": warmup,
                "iters": iters,
                "devices": per_device,
                "data_loader": loader,
            }
        )
    )


if __name__ == "__main__":
    main()
