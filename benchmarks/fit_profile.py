"""Where the time of ``torchgeo fit`` goes, per precision (Lightning's SimpleProfiler).

``benchmarks/train.py`` times the network's training step alone; this script
times the whole command it ends up in: the configuration file's task, data
module, loggers and callbacks (checkpoints, prediction writer, summary), built
by LightningCLI exactly as ``torchgeo fit --config ...`` builds them, with
Lightning's :class:`~lightning.pytorch.profilers.SimpleProfiler` attached. For
each precision (``32-true`` and ``bf16-mixed`` by default, one after the other,
the same seed and batches) it trains one epoch of ``--train-batches`` batches
and validates on ``--val-batches`` batches, and reports:

* ``fit_s``: the wall time of ``trainer.fit``;
* ``train_samples_per_s``: training samples over the time of the training
  loop's batches (``run_training_batch``: forward, loss, backward, optimiser
  step), and ``epoch_samples_per_s``: over the whole training epoch (batches,
  loading, transfer, augmentation, logging, epoch-end hooks, validation and
  checkpoints);
* ``actions``: every profiled action that took at least ``--min-share`` of
  ``fit_s``, with its total seconds, calls and share of ``fit_s`` (the actions
  nest, so shares do not add up).

The first batches pay one-off costs (oneDNN primitive creation, the first
autocast), so use enough batches (``--train-batches 40`` or more) before
reading the shares. Prints one JSON object.

Usage::

    python benchmarks/fit_profile.py --root data/kahramanmaras
    python benchmarks/fit_profile.py --precisions bf16-mixed --train-batches 100
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.cli import LightningCLI
from lightning.pytorch.profilers import SimpleProfiler
from torchgeo.datamodules import BaseDataModule
from torchgeo.trainers import BaseTask

from torchgeo_quake.trainers.precision import bf16_support

#: Actions of Lightning's training loop that the summary figures use.
BATCH_ACTION = "run_training_batch"
EPOCH_ACTION = "run_training_epoch"


def profile_fit(
    config: str,
    root: str,
    scale: float | None,
    precision: str,
    train_batches: int,
    val_batches: int,
    workdir: Path,
    min_share: float,
) -> dict[str, Any]:
    """Train one short epoch as ``torchgeo fit --config`` does, under the profiler.

    Args:
        config: LightningCLI configuration file
        root: data root (``data.init_args.root``)
        scale: scene scale (``data.init_args.scale``; None: the configuration's)
        precision: Lightning precision, e.g. ``"bf16-mixed"``
        train_batches: training batches of the epoch
        val_batches: validation batches after it
        workdir: empty folder for the run's outputs
        min_share: smallest share of the fit time an action is listed with

    Returns:
        Fit time, samples/s and the profiled actions.
    """
    args = [
        "--config",
        config,
        "--data.init_args.root",
        root,
        "--trainer.precision",
        precision,
        "--trainer.max_epochs",
        "1",
        "--trainer.max_time",
        "null",
        "--trainer.limit_train_batches",
        str(train_batches),
        "--trainer.limit_val_batches",
        str(val_batches),
        "--trainer.num_sanity_val_steps",
        "0",
        "--trainer.enable_progress_bar",
        "false",
        "--trainer.default_root_dir",
        str(workdir),
    ]
    if scale is not None:
        args += ["--data.init_args.scale", str(scale)]
    cli = LightningCLI(
        model_class=BaseTask,
        datamodule_class=BaseDataModule,
        seed_everything_default=0,
        subclass_mode_model=True,
        subclass_mode_data=True,
        save_config_kwargs={"overwrite": True},
        args=args,
        run=False,
    )
    trainer = cli.trainer
    profiler = SimpleProfiler(dirpath=workdir, filename="profile")
    # The trainer is built; attach the profiler as Trainer(profiler=...) would
    # (Lightning's profiler connector sets this attribute; mypy cannot see it).
    trainer.profiler = profiler  # type: ignore[attr-defined]
    start = time.perf_counter()
    trainer.fit(cli.model, datamodule=cli.datamodule)
    fit_s = time.perf_counter() - start
    totals = {
        name: (sum(durations), len(durations))
        for name, durations in profiler.recorded_durations.items()
    }
    batch_size = getattr(cli.datamodule, "batch_size", None)
    batches = totals.get(BATCH_ACTION, (0.0, 0))[1]
    samples = batches * batch_size if batch_size else None

    def rate(action: str) -> float | None:
        seconds = totals.get(action, (0.0, 0))[0]
        return round(samples / seconds, 1) if samples and seconds > 0 else None

    actions = [
        {
            "action": name,
            "seconds": round(seconds, 3),
            "calls": calls,
            "share_of_fit": round(seconds / fit_s, 4),
        }
        for name, (seconds, calls) in sorted(
            totals.items(), key=lambda item: item[1][0], reverse=True
        )
        if seconds >= min_share * fit_s
    ]
    return {
        "precision": precision,
        "trainer_precision": str(trainer.precision),
        "fit_s": round(fit_s, 2),
        "train_batches": batches,
        "batch_size": batch_size,
        "train_samples_per_s": rate(BATCH_ACTION),
        "epoch_samples_per_s": rate(EPOCH_ACTION),
        "actions": actions,
    }


def main() -> None:
    """Profile ``torchgeo fit`` per precision and print one JSON object."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="experiments/all_inputs.yaml")
    parser.add_argument(
        "--root",
        default="data/kahramanmaras",
        help="data root (simulated on first use when empty, as by torchgeo fit)",
    )
    parser.add_argument(
        "--scale", type=float, default=None, help="scene scale (e.g. 0.1)"
    )
    parser.add_argument("--precisions", nargs="+", default=["32-true", "bf16-mixed"])
    parser.add_argument("--train-batches", type=int, default=60)
    parser.add_argument("--val-batches", type=int, default=20)
    parser.add_argument("--threads", type=int, default=None, help="CPU threads")
    parser.add_argument(
        "--min-share",
        type=float,
        default=0.01,
        help="list actions taking at least this share of the fit time",
    )
    args = parser.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    runs = []
    for precision in args.precisions:
        with tempfile.TemporaryDirectory(prefix="bench-fit-") as tmp:
            runs.append(
                profile_fit(
                    args.config,
                    args.root,
                    args.scale,
                    precision,
                    args.train_batches,
                    args.val_batches,
                    Path(tmp),
                    args.min_share,
                )
            )
    out = {
        "benchmark": "fit_profile",
        "config": args.config,
        "root": args.root,
        "scale": args.scale,
        "machine": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "bf16_support": bf16_support(torch.device("cpu")),
        "runs": runs,
    }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
