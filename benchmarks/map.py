"""Benchmark of ``torchgeo-quake map`` on a simulated city of 100,000 buildings.

Simulates one large city (Kahramanmaraş's character, ``--buildings`` buildings in
the SAR image; kept in ``--scene`` to be reused), writes an untrained
checkpoint of the full model (SAR, footprint, DSM and GEM inputs: the slowest;
its weights do not matter for speed), then maps the city with
:func:`torchgeo_quake.mapping.map_damage` in a fresh process and prints one
JSON line: buildings, wall time end to end (from reading the inputs to the last
written file, model loading included), buildings per second, the split into
reading / prediction / writing, peak resident memory of the mapping process
(``resource.getrusage``, imports included; and, sampled, after the imports and
the highest in each phase) and the machine, with its load average before and
after.

Usage::

    python benchmarks/map.py                      # 100,000 buildings
    python benchmarks/map.py --quick              # 5,000 buildings
    python benchmarks/map.py --scene /tmp/city100k --batch-size 512

Simulating 100,000 buildings takes about 3.5 minutes and 18 GB of memory on a
2-core machine (once, in a child process; the scene is reused when ``--scene``
already holds it).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

CITY = "kahramanmaras"


def simulate(scene: Path, buildings: int, seed: int) -> float:
    """Simulate the city in a child process (its memory is not ours).

    Args:
        scene: scene root
        buildings: buildings in the SAR image
        seed: random seed

    Returns:
        Seconds spent (0 when the scene already exists).
    """
    from torchgeo_quake.simulation import SCENE_FILE

    marker = scene / SCENE_FILE
    if marker.exists():
        params = json.loads(marker.read_text()).get("parameters", {})
        if params.get("buildings") == buildings and params.get("seed") == seed:
            return 0.0
    start = time.perf_counter()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "torchgeo_quake.cli",
            "simulate",
            str(scene),
            "--cities",
            CITY,
            "--buildings",
            str(buildings),
            "--seed",
            str(seed),
            "--overwrite",
        ],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return time.perf_counter() - start


def write_checkpoint(path: Path, modalities: list[str], sar: Path) -> None:
    """Write an untrained checkpoint of the damage model.

    It records the input specification of a model trained on *sar*'s pixels
    (dB, 32 x 32 windows), so the map runs on them without resampling.

    Args:
        path: output ``.ckpt``
        modalities: model inputs
        sar: the city's SAR image (its pixel size goes into the checkpoint)
    """
    import lightning
    import rasterio
    import torch

    from torchgeo_quake.datasets import GEM_FEATURE_NAMES
    from torchgeo_quake.trainers import DamageDetectionTask

    torch.manual_seed(0)
    task = DamageDetectionTask(
        modalities=modalities, gem_features=len(GEM_FEATURE_NAMES)
    )
    stats = {
        "sar_mean": torch.tensor(-5.0),
        "sar_std": torch.tensor(6.0),
        "dsm_mean": torch.tensor(600.0),
        "dsm_std": torch.tensor(20.0),
        "gem_mean": torch.zeros(len(GEM_FEATURE_NAMES)),
        "gem_std": torch.ones(len(GEM_FEATURE_NAMES)),
    }
    task.set_normalization(stats)
    task.threshold.fill_(0.5)
    checkpoint = {
        "state_dict": task.state_dict(),
        "hyper_parameters": dict(task.hparams),
        "pytorch-lightning_version": lightning.__version__,
        "epoch": 0,
        "global_step": 0,
    }
    with rasterio.open(sar) as src:
        sar_res = float(sum(abs(v) for v in src.res) / 2)
    checkpoint["torchgeo_quake_input_spec"] = {
        "radiometry": "db",
        "sar_res": sar_res,
        "patch_size": 32,
    }
    torch.save(checkpoint, path)


def machine() -> dict[str, Any]:
    """Describe the machine.

    Returns:
        CPU, threads, GPU and library versions.
    """
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "load_average_before": list(os.getloadavg()),
    }


def _rss_mib() -> float:
    """Resident memory of this process now.

    Returns:
        MiB (0 where ``/proc`` is not available).
    """
    try:
        with open("/proc/self/statm", encoding="utf-8") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError):
        return 0.0


class _Sampler(threading.Thread):
    """Sample the resident memory of this process every few milliseconds."""

    def __init__(self, interval: float = 0.02) -> None:
        super().__init__(daemon=True)
        self.interval = interval
        self.samples: list[tuple[float, float]] = []
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            self.samples.append((time.perf_counter(), _rss_mib()))
            self._stop_event.wait(self.interval)

    def stop(self) -> None:
        self._stop_event.set()
        self.join()

    def peak(self, start: float, end: float) -> float | None:
        """Highest sample in [start, end), in MiB."""
        values = [rss for t, rss in self.samples if start <= t < end]
        return round(max(values), 1) if values else None


def worker(args: argparse.Namespace) -> dict[str, Any]:
    """Map the city in this process and measure it.

    Args:
        args: parsed arguments (``scene``, ``checkpoint``, ``out`` ...)

    Returns:
        The measurements.
    """
    info = machine()
    from torchgeo_quake.mapping import map_damage

    city = Path(args.scene) / CITY
    imports_mib = _rss_mib()
    sampler = _Sampler()
    sampler.start()
    start = time.perf_counter()
    result = map_damage(
        city / "sar.tif",
        city / "buildings.gpkg",
        args.checkpoint,
        args.out,
        dsm=city / "dsm.tif",
        exposure=city / "gem.csv",
        batch_size=args.batch_size,
        num_workers=args.num_workers,
        num_threads=args.threads,
        accelerator=args.accelerator,
        overwrite=True,
    )
    end = time.perf_counter()
    wall = end - start
    sampler.stop()
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    counts = result.counts
    timing = result.summary["timing"]
    read_end = start + timing["read_seconds"]
    predict_end = read_end + timing["predict_seconds"]
    return {
        "benchmark": "map_damage",
        "buildings": counts["footprints"],
        "predicted": counts["predicted"],
        "skipped": counts["skipped"],
        "wall_s": round(wall, 2),
        "buildings_per_s": round(counts["footprints"] / wall, 1),
        "read_s": timing["read_seconds"],
        "predict_s": timing["predict_seconds"],
        "write_s": timing["write_seconds"],
        "peak_rss_mib": round(peak_mib, 1),
        # Sampled every 20 ms: after the imports, and the highest in each phase.
        "rss_mib": {
            "after_imports": round(imports_mib, 1),
            "read": sampler.peak(start, read_end),
            "predict": sampler.peak(read_end, predict_end),
            "write": sampler.peak(predict_end, end + 1),
        },
        "batch_size": args.batch_size,
        "num_workers": args.num_workers,
        "threads": args.threads,
        "accelerator": args.accelerator,
        "output_mib": round(
            sum(f.stat().st_size for f in result.files.values()) / 2**20, 1
        ),
        "machine": info,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--buildings", type=int, default=100_000)
    parser.add_argument("--quick", action="store_true", help="5,000 buildings")
    parser.add_argument("--scene", default=None, help="scene folder (reused)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--num-workers", type=int, default=0)
    parser.add_argument(
        "--threads", type=int, default=None, help="PyTorch threads (default: cores)"
    )
    parser.add_argument("--accelerator", default="auto")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--checkpoint", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--out", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args)))
        return 0
    buildings = 5_000 if args.quick else args.buildings
    with tempfile.TemporaryDirectory(prefix="map-bench-") as tmp:
        scene = Path(args.scene) if args.scene else Path(tmp) / "scene"
        simulate_s = simulate(scene, buildings, args.seed)
        checkpoint = Path(tmp) / "model.ckpt"
        write_checkpoint(
            checkpoint, ["sar", "footprint", "dsm", "gem"], scene / CITY / "sar.tif"
        )
        command = [
            sys.executable,
            __file__,
            "--worker",
            "--scene",
            str(scene),
            "--checkpoint",
            str(checkpoint),
            "--out",
            str(Path(tmp) / "map"),
            "--batch-size",
            str(args.batch_size),
            "--num-workers",
            str(args.num_workers),
            *(["--threads", str(args.threads)] if args.threads else []),
            "--accelerator",
            args.accelerator,
        ]
        done = subprocess.run(command, check=True, capture_output=True, text=True)
        result = json.loads(done.stdout.strip().splitlines()[-1])
    result["simulate_s"] = round(simulate_s, 1)
    result["machine"]["load_average_after"] = list(os.getloadavg())
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
