"""Plan and run the paper's evaluation protocols, resumably.

A protocol is a set of runs, one per input configuration × split × seed:

* ``"cv"`` — stratified k-fold cross-validation over all cities (Table III);
* ``"loco"`` — leave-one-city-out, one run per held-out city (Table IV);
* ``"islahiye"`` — stratified k-fold cross-validation on Islahiye alone
  (Table V).

Each run trains a :class:`~torchgeo_quake.trainers.DamageDetectionTask` on a
:class:`~torchgeo_quake.datamodules.KahramanmarasDamageDataModule` (or, for
``"cv"`` and ``"loco"`` on another event, a
:class:`~torchgeo_quake.datamodules.BuildingDamageDataModule`: ``"loco"`` then
holds out each area), both built
from a LightningCLI configuration file (``experiments/*.yaml``), tests the
checkpoint with the best validation F1 and writes, under
``OUT/runs/<config>/<split>/seed<k>/``:

* ``splits.json`` — building ids and cities of the train, val and test splits;
* ``metrics.csv`` — Lightning's CSV log (training curves), with
  ``metrics.part<k>.csv`` holding the epochs of interrupted attempts
  (:func:`read_run_log` joins them);
* ``predictions.npz`` — test probabilities, labels, building ids and cities;
* ``metrics.json`` — test metrics and run details, written **last** by an atomic
  rename: it marks the run as finished.

A run with ``metrics.json`` is never trained again; a run without it is
(re)started, from its ``checkpoints/last.ckpt`` when an interrupted attempt left
one. ``OUT/protocol.json`` records the settings and the configurations;
re-running into the same folder with other settings, or after a configuration
file was edited, is refused, so results of different scales, epochs or
hyper-parameters never mix.

The configurations' ``trainer.max_time`` (which bounds a single ``torchgeo fit``
on a CPU) is not used: a wall-clock limit would stop the slower configurations
after fewer epochs and bias the comparison. ``--max-time`` sets one explicitly;
runs it stops are flagged in their record and in the tables' notes.

.. versionadded:: 0.1
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import inspect
import json
import logging
import math
import os
import re
import shutil
import time
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import yaml

__all__ = [
    "PROTOCOLS",
    "QUICK",
    "ExperimentConfig",
    "ProtocolResult",
    "ProtocolSettings",
    "RunSpec",
    "load_config",
    "load_runs",
    "plan_runs",
    "read_run_log",
    "run_protocol",
]

Protocol = Literal["cv", "loco", "islahiye"]

#: The protocols, with the paper's table each one reproduces.
PROTOCOLS: dict[str, str] = {
    "cv": "Table III",
    "loco": "Table IV",
    "islahiye": "Table V",
}

#: Settings of ``--quick``: a small simulated scene, two epochs (see
#: ``benchmarks/RESULTS.md`` for the measured wall time).
QUICK: dict[str, Any] = {"scale": 0.1, "max_epochs": 2}

#: Default data root of the quick mode (a different scale is another scene).
QUICK_ROOT = "data/kahramanmaras-quick"

#: File whose presence marks a run as finished.
DONE_FILE = "metrics.json"

#: Paper labels of the input configurations, by canonical modalities.
_LABELS: dict[tuple[str, ...], str] = {
    ("sar", "footprint"): "SAR + FTP",
    ("sar", "footprint", "dsm"): "SAR + FTP + DSM",
    ("sar", "footprint", "dsm", "gem"): "SAR + FTP + DSM + GEM",
    ("sar", "footprint", "gem"): "SAR + FTP + GEM",
}

_ORDER = ("sar", "footprint", "dsm", "gem")

#: Trainer settings of the configuration file the runner replaces by its own.
_RUNNER_OWNED = (
    "logger",
    "callbacks",
    "default_root_dir",
    "enable_progress_bar",
    "enable_model_summary",
    "enable_checkpointing",
    # The configurations' wall-clock limit bounds a single `torchgeo fit` on a
    # CPU; in a protocol it would stop slower configurations after fewer epochs
    # and bias the comparison, so only --max-time sets one.
    "max_time",
)


# ---------------------------------------------------------------- settings
@dataclass(frozen=True)
class ExperimentConfig:
    """One input configuration, read from a LightningCLI configuration file.

    .. versionadded:: 0.1
    """

    #: Short name (the file's stem), used in output paths.
    name: str
    #: The configuration file.
    path: str
    #: Paper-style label of the inputs, e.g. ``"SAR + FTP + DSM"``.
    label: str
    #: Model modalities in canonical order.
    modalities: tuple[str, ...]
    #: ``model`` section (``class_path`` and ``init_args``).
    model: dict[str, Any]
    #: ``data`` section (``class_path`` and ``init_args``).
    data: dict[str, Any]
    #: ``trainer`` section.
    trainer: dict[str, Any]


def load_config(path: str | os.PathLike[str]) -> ExperimentConfig:
    """Read an experiment configuration file (``experiments/*.yaml``).

    Args:
        path: LightningCLI YAML file with ``model``, ``data`` and ``trainer``.

    Returns:
        The parsed configuration.

    Raises:
        FileNotFoundError: If the file does not exist.
        ValueError: If it lacks a ``model`` or ``data`` section with
            ``class_path``, or its modalities are not a known configuration.

    .. versionadded:: 0.1
    """
    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(
            f"configuration file not found: {file} (relative paths are read from "
            f"{Path.cwd()}); run from the repository root, where experiments/ "
            "lies, or give the files with --configs"
        )
    raw = yaml.safe_load(file.read_text(encoding="utf-8")) or {}
    if not isinstance(raw, dict):
        raise ValueError(f"{file}: expected a mapping at the top level")
    sections: dict[str, dict[str, Any]] = {}
    for key in ("model", "data"):
        section = raw.get(key)
        if not isinstance(section, dict) or "class_path" not in section:
            raise ValueError(f"{file}: needs a '{key}' section with a class_path")
        sections[key] = {
            "class_path": section["class_path"],
            "init_args": dict(section.get("init_args") or {}),
        }
    trainer = dict(raw.get("trainer") or {})
    mods = sections["model"]["init_args"].get("modalities", _ORDER)
    unknown = sorted(set(mods) - set(_ORDER))
    if unknown:
        raise ValueError(
            f"{file}: unknown modalities {unknown} in model.init_args.modalities; "
            f"choose among {list(_ORDER)}"
        )
    modalities = tuple(m for m in _ORDER if m in set(mods))
    data_mods = sections["data"]["init_args"].get("modalities")
    if data_mods is not None and not set(modalities) <= set(data_mods):
        raise ValueError(
            f"{file}: the model's modalities {list(modalities)} are not all among "
            f"the data's {list(data_mods)}; give model and data the same "
            "`modalities`"
        )
    label = _LABELS.get(modalities, " + ".join(m.upper() for m in modalities))
    return ExperimentConfig(
        name=file.stem,
        path=str(file),
        label=label,
        modalities=modalities,
        model=sections["model"],
        data=sections["data"],
        trainer=trainer,
    )


@dataclass
class ProtocolSettings:
    """Everything a protocol run depends on.

    .. versionadded:: 0.1
    """

    #: ``"cv"``, ``"loco"`` or ``"islahiye"``.
    protocol: Protocol
    #: Experiment configuration files, one per input configuration.
    configs: Sequence[str]
    #: Output folder.
    out: str
    #: Seeds; each repeats the whole protocol (split, sampling and training).
    seeds: Sequence[int] = (0,)
    #: Epochs per run (None: the configuration's ``trainer.max_epochs``).
    max_epochs: int | None = None
    #: Shrink data and epochs (:data:`QUICK`) for smoke tests and docs.
    quick: bool = False
    #: Size of the simulated scene (None: 1, or :data:`QUICK`'s with *quick*).
    scale: float | None = None
    #: Data root (None: the configuration's, or :data:`QUICK_ROOT` when the
    #: scale is not 1).
    root: str | None = None
    #: Lightning ``accelerator`` (None: the configuration's).
    accelerator: str | None = None
    #: Lightning ``devices`` (None: the configuration's).
    devices: str | int | None = None
    #: Lightning ``strategy`` (None: the configuration's, else Lightning's).
    strategy: str | None = None
    #: Lightning ``num_nodes`` (None: the configuration's, else 1).
    num_nodes: int | None = None
    #: Lightning ``limit_train_batches`` (tests).
    limit_train_batches: int | float | None = None
    #: Lightning ``limit_val_batches`` (tests).
    limit_val_batches: int | float | None = None
    #: Lightning ``max_time`` per run, ``DD:HH:MM:SS`` (None: no limit; the
    #: configurations' own ``max_time`` is not used, see :data:`_RUNNER_OWNED`).
    max_time: str | None = None
    #: Keep each run's checkpoints after it finished (they are large).
    keep_checkpoints: bool = False
    #: Show the progress bar.
    progress: bool = True

    def resolved(self) -> ProtocolSettings:
        """Settings with the quick-mode defaults and the data root filled in.

        Returns:
            A copy with *scale*, *max_epochs* (under *quick*) and *root* set.

        Raises:
            ValueError: If the protocol, seeds, scale or epochs are invalid.
        """
        if self.protocol not in PROTOCOLS:
            raise ValueError(
                f"protocol must be one of {sorted(PROTOCOLS)}, got {self.protocol!r}"
            )
        if not self.configs:
            raise ValueError("give at least one configuration file")
        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"seeds must be distinct and not empty: {self.seeds}")
        scale = self.scale
        if scale is None:
            scale = QUICK["scale"] if self.quick else 1.0
        if not 0.0 < scale <= 1.0:
            raise ValueError(f"scale must be in (0, 1], got {scale}")
        max_epochs = self.max_epochs
        if max_epochs is None and self.quick:
            max_epochs = QUICK["max_epochs"]
        if max_epochs is not None and max_epochs < 1:
            raise ValueError(f"max_epochs must be at least 1, got {max_epochs}")
        root = self.root
        if root is None and scale != 1.0:
            root = (
                QUICK_ROOT
                if scale == QUICK["scale"]
                else (f"data/kahramanmaras-scale{scale:g}")
            )
        return replace(
            self,
            scale=scale,
            max_epochs=max_epochs,
            root=root,
            configs=tuple(str(c) for c in self.configs),
            seeds=tuple(int(s) for s in self.seeds),
        )

    def fingerprint(self) -> dict[str, Any]:
        """Settings that determine the results (stored in ``protocol.json``).

        Returns:
            JSON-serialisable settings; hardware settings (devices, strategy,
            progress, checkpoints) are left out.
        """
        return {
            "protocol": self.protocol,
            "scale": self.scale,
            "max_epochs": self.max_epochs,
            "root": self.root,
            "limit_train_batches": self.limit_train_batches,
            "limit_val_batches": self.limit_val_batches,
            "max_time": self.max_time,
        }


@dataclass(frozen=True)
class RunSpec:
    """One training run of a protocol: configuration × split × seed.

    .. versionadded:: 0.1
    """

    #: Protocol name.
    protocol: str
    #: Configuration name (file stem).
    config: str
    #: Split name: ``fold<k>`` (``cv``, ``islahiye``) or the held-out city.
    split: str
    #: Seed of the split, the negative sampling and the training.
    seed: int
    #: Data-module strategy: ``"cv"``, ``"loco"`` or ``"city"``.
    strategy: str
    #: Test fold (``cv``, ``islahiye``).
    fold: int | None = None
    #: Held-out city (``loco``).
    test_city: str | None = None
    #: The only city used (``islahiye``).
    city: str | None = None

    def directory(self, out: str | os.PathLike[str]) -> Path:
        """Output folder of the run.

        Args:
            out: the protocol's output folder

        Returns:
            ``out/runs/<config>/<split>/seed<k>``.
        """
        return Path(out) / "runs" / self.config / self.split / f"seed{self.seed}"

    @property
    def name(self) -> str:
        """Short human-readable name, ``config/split/seed<k>``."""
        return f"{self.config}/{self.split}/seed{self.seed}"


@dataclass
class ProtocolResult:
    """What :func:`run_protocol` did and wrote.

    .. versionadded:: 0.1
    """

    #: Output folder.
    out: Path
    #: Runs trained in this call.
    trained: list[str] = field(default_factory=list)
    #: Runs found finished and skipped.
    skipped: list[str] = field(default_factory=list)
    #: Table files written (Markdown, CSV, JSON).
    tables: list[Path] = field(default_factory=list)
    #: Figure files written (PNG).
    figures: list[Path] = field(default_factory=list)
    #: Wall time of this call in seconds.
    wall_s: float = 0.0


def _is_kahramanmaras(config: ExperimentConfig) -> bool:
    """Whether a configuration's data module is the paper's five-city one.

    Args:
        config: the configuration

    Returns:
        True for :class:`~torchgeo_quake.datamodules.KahramanmarasDamageDataModule`
        and its subclasses, False for other data modules (e.g. the generic
        :class:`~torchgeo_quake.datamodules.BuildingDamageDataModule`).

    Raises:
        ValueError: If the data class cannot be imported.
    """
    from ..datamodules import KahramanmarasDamageDataModule

    cls = _import(config.data["class_path"])
    return isinstance(cls, type) and issubclass(cls, KahramanmarasDamageDataModule)


def _data_root(config: ExperimentConfig, root: str | os.PathLike[str] | None) -> Path:
    """The data root of a configuration.

    Args:
        config: the configuration
        root: the root given to the runner (None: the configuration's)

    Returns:
        *root*, else the configuration's data ``root``, else the data module's
        default root.
    """
    if root is not None:
        return Path(root)
    given = config.data["init_args"].get("root")
    if given is not None:
        return Path(given)
    cls = _import(config.data["class_path"])
    default = inspect.signature(cls).parameters.get("root")
    if default is None or default.default is inspect.Parameter.empty:
        return Path("data/kahramanmaras")
    return Path(default.default)


def _cities(
    config: ExperimentConfig, root: str | os.PathLike[str] | None = None
) -> tuple[str, ...]:
    """Cities (areas) of a configuration.

    Args:
        config: the configuration
        root: the data root given to the runner (None: the configuration's)

    Returns:
        For the Kahramanmaraş data module, its data ``cities``, else all five;
        for other data modules, their data ``areas``, else ``cities``, else the
        area folders of the data root
        (:meth:`~torchgeo_quake.datasets.BuildingDamage.find_areas`).

    Raises:
        FileNotFoundError: If the areas are read from a data root that does not
            exist or holds no area.
    """
    from ..paper import TABLE_II

    args = config.data["init_args"]
    if _is_kahramanmaras(config):
        cities = args.get("cities")
        return tuple(cities) if cities else tuple(TABLE_II)
    areas = args.get("areas") or args.get("cities")
    if areas:
        return tuple(areas)
    from ..datasets import BuildingDamage

    return BuildingDamage.find_areas(_data_root(config, root))


def plan_runs(
    protocol: Protocol,
    configs: Sequence[ExperimentConfig],
    seeds: Sequence[int],
    root: str | os.PathLike[str] | None = None,
) -> list[RunSpec]:
    """All runs of a protocol, in execution order (seed, split, configuration).

    Args:
        protocol: ``"cv"``, ``"loco"`` or ``"islahiye"``
        configs: input configurations
        seeds: seeds
        root: data root (None: each configuration's); ``"loco"`` of a generic
            data module without ``areas`` holds out each area folder found there

    Returns:
        The runs.

    Raises:
        ValueError: If the protocol is unknown, configuration names repeat,
            Islahiye is not among the cities of ``islahiye``, or ``islahiye``
            is asked of a data module other than the Kahramanmaraş one.
        FileNotFoundError: If the areas of ``"loco"`` are read from a data root
            that does not exist or holds no area.

    .. versionadded:: 0.1
    .. versionchanged:: 0.2
       *root*, and configurations of any
       :class:`~torchgeo_quake.datamodules.BuildingDamageDataModule`.
    """
    names = [c.name for c in configs]
    if len(set(names)) != len(names):
        raise ValueError(f"configuration names (file stems) must differ: {names}")
    runs: list[RunSpec] = []
    for seed in seeds:
        for config in configs:
            folds = int(config.data["init_args"].get("num_folds", 5))
            if protocol == "cv":
                runs += [
                    RunSpec(protocol, config.name, f"fold{k}", seed, "cv", fold=k)
                    for k in range(folds)
                ]
            elif protocol == "loco":
                runs += [
                    RunSpec(protocol, config.name, city, seed, "loco", test_city=city)
                    for city in _cities(config, root)
                ]
            elif protocol == "islahiye":
                if not _is_kahramanmaras(config):
                    raise ValueError(
                        f"{config.path}: the 'islahiye' protocol (the paper's "
                        "Table V) needs the Kahramanmaraş data "
                        "(torchgeo_quake.datamodules.KahramanmarasDamageDataModule),"
                        f" not {config.data['class_path']}; for another event use "
                        "'cv', or 'loco' to hold out each area in turn"
                    )
                if "islahiye" not in _cities(config, root):
                    raise ValueError(f"{config.path}: 'islahiye' is not among cities")
                runs += [
                    RunSpec(
                        protocol,
                        config.name,
                        f"fold{k}",
                        seed,
                        "city",
                        fold=k,
                        city="islahiye",
                    )
                    for k in range(folds)
                ]
            else:
                raise ValueError(f"unknown protocol {protocol!r}")
    # Runs of one split and seed next to each other: configurations compare early.
    order = {name: i for i, name in enumerate(names)}
    splits: dict[str, int] = {}
    for run in runs:
        splits.setdefault(run.split, len(splits))
    runs.sort(key=lambda r: (r.seed, splits[r.split], order[r.config]))
    return runs


# ------------------------------------------------------------------ running
def _import(class_path: str) -> Any:
    """Import a class from its dotted path.

    Args:
        class_path: e.g. ``torchgeo_quake.trainers.DamageDetectionTask``

    Returns:
        The class.

    Raises:
        ValueError: If it cannot be imported.
    """
    module, _, name = class_path.rpartition(".")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as err:
        raise ValueError(f"cannot import {class_path!r}: {err}") from err


def _atomic_write(path: Path, text: str) -> None:
    """Write a text file atomically (temporary file, then rename).

    Args:
        path: destination
        text: content
    """
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _is_global_zero() -> bool:
    """Whether this process is rank 0 (Lightning's launchers set the rank).

    Returns:
        True on rank 0 or without distributed training.
    """
    from lightning.pytorch.utilities import rank_zero_only

    return int(getattr(rank_zero_only, "rank", 0)) == 0


def _prepare_scene(settings: ProtocolSettings, configs: list[ExperimentConfig]) -> str:
    """Make sure the data root exists, simulating it when it is empty.

    The scene is simulated once, with the configuration's data seed, before any
    run, so it does not depend on the protocol seeds.

    Args:
        settings: resolved settings
        configs: configurations (the first gives the default root and seed)

    Returns:
        The data root.

    Raises:
        ValueError: If the root holds a simulated scene of another scale.
        FileNotFoundError: If the root of a data module other than the
            Kahramanmaraş one (which is simulated) is missing or empty.
    """
    data_args = configs[0].data["init_args"]
    root = _data_root(configs[0], settings.root)
    if not _is_kahramanmaras(configs[0]):
        if not root.is_dir() or not any(root.iterdir()):
            raise FileNotFoundError(
                f"the data root {str(root)!r} of {configs[0].path} is missing or "
                f"empty ({configs[0].data['class_path']} does not simulate data); "
                "lay out one folder per area as root/<area>/{sar.tif, "
                "buildings.gpkg, destroyed.geojson, [dsm.tif], [gem.csv]} or give "
                "the root with --root"
            )
        return str(root)
    marker = root / "scene.json"
    if marker.exists():
        scene = json.loads(marker.read_text(encoding="utf-8"))
        if scene.get("simulated") and not math.isclose(
            float(scene.get("scale", 1.0)), float(settings.scale or 1.0)
        ):
            raise ValueError(
                f"{root} holds a simulated scene of scale {scene.get('scale')}, "
                f"but this protocol runs at scale {settings.scale}; give another "
                "--root (or remove that folder)"
            )
    if (not root.exists() or not any(root.iterdir())) and _is_global_zero():
        from ..simulation import simulate_scene

        simulate_scene(
            root, scale=settings.scale or 1.0, seed=int(data_args.get("seed", 0))
        )
    return str(root)


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence Lightning's informational logging and known harmless warnings.

    Yields:
        Nothing.
    """
    loggers = [logging.getLogger(n) for n in ("lightning.pytorch", "lightning.fabric")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.WARNING)
    with warnings.catch_warnings():
        for pattern in (
            ".*does not have many workers.*",
            ".*The number of training batches.*",
            ".*Checkpoint directory .* exists and is not empty.*",
            ".*LeafSpec.*",
            ".*GPU available but not used.*",
            ".*Converting CartoSatDSM res.*",
        ):
            warnings.filterwarnings("ignore", message=pattern)
        try:
            yield
        finally:
            for lg, level in zip(loggers, levels, strict=True):
                lg.setLevel(level)


def _jsonable(value: Any) -> Any:
    """Convert tensors, arrays and NaN to JSON-friendly values.

    Args:
        value: a number, tensor, array or container of them

    Returns:
        Plain Python values (NaN becomes None).
    """
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist()) if value.ndim else _jsonable(value.item())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _trainer_kwargs(
    settings: ProtocolSettings, config: ExperimentConfig
) -> dict[str, Any]:
    """Lightning ``Trainer`` arguments of a run.

    Args:
        settings: resolved settings
        config: the run's configuration

    Returns:
        Keyword arguments without logger and callbacks.
    """
    kwargs = {k: v for k, v in config.trainer.items() if k not in _RUNNER_OWNED}
    overrides = {
        "max_epochs": settings.max_epochs,
        "accelerator": settings.accelerator,
        "devices": settings.devices,
        "strategy": settings.strategy,
        "num_nodes": settings.num_nodes,
        "limit_train_batches": settings.limit_train_batches,
        "limit_val_batches": settings.limit_val_batches,
        "max_time": settings.max_time,
    }
    kwargs.update({k: v for k, v in overrides.items() if v is not None})
    kwargs.setdefault("max_epochs", 10)
    # Every step in the CSV log: training curves even for short epochs.
    kwargs["log_every_n_steps"] = 1
    return kwargs


class _EpochProgress:
    """A Lightning callback advancing the protocol's bar once per epoch."""

    def __new__(cls, bar: Any) -> Any:
        """Build the callback (a subclass of Lightning's ``Callback``).

        Args:
            bar: the tqdm bar (or None)

        Returns:
            The callback instance.
        """
        from lightning.pytorch.callbacks import Callback

        class EpochProgress(Callback):
            def __init__(self) -> None:
                self.epochs = 0

            def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
                self.epochs += 1
                if bar is not None and trainer.is_global_zero:
                    bar.update(1)

        return EpochProgress()


def _log_parts(directory: Path) -> list[str]:
    """CSV logs of earlier, interrupted attempts of a run, in order.

    Args:
        directory: the run's folder

    Returns:
        File names ``metrics.part<k>.csv``, by *k*.
    """
    parts = [p.name for p in directory.glob("metrics.part*.csv")]
    return sorted(parts, key=lambda n: int(re.sub(r"\D", "", n) or 0))


def read_run_log(directory: str | os.PathLike[str]) -> pd.DataFrame | None:
    """The whole CSV training log of a run, over resumed attempts.

    Args:
        directory: the run's folder (``runs/<config>/<split>/seed<k>``)

    Returns:
        The rows of ``metrics.part*.csv`` (interrupted attempts) and
        ``metrics.csv``, in order; None when there is no log.

    .. versionadded:: 0.1
    """
    folder = Path(directory)
    files = [folder / n for n in _log_parts(folder)] + [folder / "metrics.csv"]
    frames = [pd.read_csv(f) for f in files if f.exists() and f.stat().st_size]
    if not frames:
        return None
    return pd.concat(frames, ignore_index=True)


def _test_cities(
    ids: np.ndarray | None, test_ids: np.ndarray, test_cities: np.ndarray
) -> np.ndarray:
    """The city of every test prediction.

    Args:
        ids: building ids of the predictions, in their order (None: none)
        test_ids: building ids of the test split, in data-loader order
        test_cities: cities of the test split, same order

    Returns:
        One city per prediction.

    Raises:
        ValueError: If predictions come in another order (several processes)
            and a building id repeats across the test split's cities, so that
            the city of a prediction is ambiguous.
    """
    if ids is None:
        return np.array([], dtype=str)
    if len(ids) == len(test_ids) and np.array_equal(ids, test_ids):
        return np.asarray(test_cities).astype(str)  # one process: same order
    city_of: dict[int, str] = {}
    for building, city in zip(test_ids.tolist(), test_cities.tolist(), strict=True):
        if city_of.setdefault(int(building), str(city)) != str(city):
            raise ValueError(
                f"building id {building} is in the test split of both "
                f"{city_of[int(building)]!r} and {city!r}; give every city's "
                "footprints distinct ids (e.g. OSM ids with their type)"
            )
    return np.array([city_of.get(int(i), "") for i in ids])


def _checked_resume(last: Path) -> Path | None:
    """The checkpoint to resume from, if it can be read.

    Args:
        last: ``checkpoints/last.ckpt`` of a run

    Returns:
        *last*, or None when it does not exist.

    Raises:
        RuntimeError: If it exists but cannot be read (e.g. the process was
            killed while writing it).
    """
    if not last.exists():
        return None
    import torch

    try:
        torch.load(last, map_location="cpu", weights_only=False, mmap=True)
    except Exception as err:
        raise RuntimeError(
            f"cannot resume from {last}: {err}. The file is damaged (was the run "
            "killed while saving it?); delete it to restart this run from its "
            "first epoch"
        ) from err
    return last


def _train_one(
    run: RunSpec,
    config: ExperimentConfig,
    settings: ProtocolSettings,
    root: str,
    out: Path,
    bar: Any,
) -> None:
    """Train and test one run and write its outputs (metrics.json last).

    Args:
        run: the run
        config: its configuration
        settings: resolved settings
        root: data root
        out: protocol output folder
        bar: the progress bar (or None)
    """
    import lightning
    from lightning.pytorch import Trainer
    from lightning.pytorch.callbacks import ModelCheckpoint
    from lightning.pytorch.loggers import CSVLogger

    directory = run.directory(out)
    directory.mkdir(parents=True, exist_ok=True)
    ckpt_dir = directory / "checkpoints"
    last = ckpt_dir / "last.ckpt"
    resume = _checked_resume(last)
    if resume is None:
        # A fresh start: forget the logs of an attempt that left no checkpoint.
        for stale in ("metrics.csv", "hparams.yaml", *_log_parts(directory)):
            (directory / stale).unlink(missing_ok=True)
    elif (directory / "metrics.csv").exists() and _is_global_zero():
        # Lightning's CSV logger deletes an existing metrics.csv: keep the
        # epochs of the interrupted attempt as a numbered part of the log.
        part = directory / f"metrics.part{len(_log_parts(directory))}.csv"
        os.replace(directory / "metrics.csv", part)
    start = time.perf_counter()

    lightning.seed_everything(run.seed, workers=True, verbose=False)
    data_args = dict(config.data["init_args"])
    data_args.update(
        root=root,
        strategy=run.strategy,
        fold=run.fold if run.fold is not None else 0,
        test_city=run.test_city,
        city=run.city,
        seed=run.seed,
        splits_file=str(directory / "splits.json"),
    )
    data_class = _import(config.data["class_path"])
    if "scale" in inspect.signature(data_class).parameters:
        data_args["scale"] = settings.scale
    datamodule = data_class(**data_args)
    model = _import(config.model["class_path"])(**config.model["init_args"])
    # The best epoch (weights and buffers only: the test needs no optimiser) and
    # the full state of the last epoch (to resume an interrupted run).
    checkpoint = ModelCheckpoint(
        dirpath=ckpt_dir,
        filename="best-{epoch}",
        monitor="val_f1",
        mode="max",
        save_weights_only=True,
    )
    # Full state after every epoch, overwritten (save_last with save_top_k=0
    # would only be written when a top-k checkpoint is, i.e. never).
    resumable = ModelCheckpoint(
        dirpath=ckpt_dir,
        filename=last.stem,
        monitor=None,
        save_top_k=1,
        every_n_epochs=1,
        enable_version_counter=False,
    )
    progress = _EpochProgress(bar)
    trainer = Trainer(
        **_trainer_kwargs(settings, config),
        default_root_dir=str(directory),
        logger=CSVLogger(str(directory), name="", version=""),
        callbacks=[checkpoint, resumable, progress],
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(model, datamodule=datamodule, ckpt_path=resume)
    best = checkpoint.best_model_path
    results = trainer.test(
        model, datamodule=datamodule, ckpt_path=best or None, verbose=False
    )
    if not trainer.is_global_zero:
        return
    metrics = {k: float(v) for k, v in (results[0] if results else {}).items()}
    preds = model.last_predictions["test"]
    dataset = datamodule.dataset
    test_index = datamodule.indices["test"]
    ids = preds.building_ids
    cities = _test_cities(
        ids, dataset.building_ids[test_index], dataset.city_of[test_index]
    )
    np.savez_compressed(
        directory / "predictions.npz",
        probs=preds.probs,
        labels=preds.labels,
        building_ids=ids if ids is not None else np.array([], dtype=np.int64),
        cities=cities.astype(str),
    )
    match = re.search(r"epoch=(\d+)", Path(best).name) if best else None
    stats = {
        name: getattr(model, name)
        for name in (
            "sar_mean",
            "sar_std",
            "dsm_mean",
            "dsm_std",
            "gem_mean",
            "gem_std",
        )
        if hasattr(model, name)
    }
    record = {
        "protocol": run.protocol,
        "config": run.config,
        "config_file": config.path,
        "label": config.label,
        "modalities": list(config.modalities),
        "split": run.split,
        "seed": run.seed,
        "strategy": run.strategy,
        "fold": run.fold,
        "test_city": run.test_city,
        "city": run.city,
        "metrics": metrics,
        "val_threshold": float(model.threshold),
        "best_epoch": int(match.group(1)) if match else None,
        "epochs": int(trainer.current_epoch),
        "max_epochs": trainer.max_epochs,
        # Fewer epochs than max_epochs with --max-time: the time limit stopped it.
        "stopped_by_max_time": bool(settings.max_time)
        and int(trainer.current_epoch) < int(trainer.max_epochs or 0),
        "resumed": resume is not None,
        "n_train": len(datamodule.indices["train"]),
        "n_val": len(datamodule.indices["val"]),
        "n_test": len(test_index),
        "n_test_damaged": int(np.asarray(preds.labels).sum()),
        "normalization": stats,
        "scale": settings.scale,
        "root": root,
        "wall_s": time.perf_counter() - start,
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    if not settings.keep_checkpoints:
        shutil.rmtree(ckpt_dir, ignore_errors=True)
    _atomic_write(directory / DONE_FILE, json.dumps(_jsonable(record), indent=1))


def load_runs(out: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Records (``metrics.json``) of all finished runs under a protocol folder.

    Args:
        out: the protocol's output folder

    Returns:
        One dict per finished run, sorted by configuration, split and seed.

    .. versionadded:: 0.1
    """
    records = []
    for path in sorted(Path(out).glob(f"runs/*/*/seed*/{DONE_FILE}")):
        record = json.loads(path.read_text(encoding="utf-8"))
        record["directory"] = str(path.parent)
        records.append(record)
    return records


def _effective(section: str, values: Any) -> Any:
    """The part of a configuration section that can change a protocol's results.

    Args:
        section: ``"model"``, ``"data"`` or ``"trainer"``
        values: the section

    Returns:
        JSON-normalised values; for the trainer, without the settings the
        runner replaces (loggers, callbacks, output folders, ``max_time``).
    """
    if section == "trainer" and isinstance(values, dict):
        values = {k: v for k, v in values.items() if k not in _RUNNER_OWNED}
    return json.loads(json.dumps(_jsonable(values)))


def _check_settings(
    out: Path, settings: ProtocolSettings, configs: Sequence[ExperimentConfig]
) -> None:
    """Refuse to mix runs of different settings in one output folder.

    Args:
        out: output folder
        settings: resolved settings
        configs: the configurations of this call

    Raises:
        FileExistsError: If ``out/protocol.json`` records other settings, or
            other contents of a configuration file of the same name.
    """
    marker = out / "protocol.json"
    current = settings.fingerprint()
    if marker.exists():
        payload = json.loads(marker.read_text(encoding="utf-8"))
        saved = payload.get("settings", {})
        differ = {k: (saved.get(k), v) for k, v in current.items() if saved.get(k) != v}
        before = {c.get("name"): c for c in payload.get("configs", [])}
        for config in configs:
            old = before.get(config.name)
            if old is None:
                continue
            changed = [
                key
                for key in ("model", "data", "trainer")
                if _effective(key, old.get(key))
                != _effective(key, getattr(config, key))
            ]
            if changed:
                differ[f"{config.name} ({config.path}) sections {changed}"] = (
                    "as recorded",
                    "edited",
                )
        if differ:
            details = ", ".join(
                f"{k}: {a!r} there, {b!r} now" for k, (a, b) in differ.items()
            )
            raise FileExistsError(
                f"{out} holds a protocol run with other settings ({details}); "
                "choose another --out or delete that folder"
            )


def run_protocol(settings: ProtocolSettings) -> ProtocolResult:
    """Run (or resume) a protocol, then write its tables and figures.

    Finished runs (with ``metrics.json``) are skipped; the others are trained in
    order, resuming from ``checkpoints/last.ckpt`` where an interrupted attempt
    left one. One progress bar, in epochs, covers all runs and shows the ETA.
    Tables (:mod:`~torchgeo_quake.protocols.tables`) and figures
    (:mod:`~torchgeo_quake.protocols.figures`) are written from all finished
    runs at the end.

    Args:
        settings: the protocol's settings

    Returns:
        What was trained, skipped and written.

    Raises:
        FileNotFoundError: If a configuration file is missing.
        FileExistsError: If *out* holds runs of other settings.
        ValueError: If the settings or configurations are invalid.

    .. versionadded:: 0.1
    """
    from tqdm.auto import tqdm

    from .figures import write_figures
    from .tables import write_tables

    wall = time.perf_counter()
    given_root = settings.root
    settings = settings.resolved()
    configs = [load_config(path) for path in settings.configs]
    if given_root is None and not _is_kahramanmaras(configs[0]):
        # Real data has no scale: the quick mode's root is the simulated scene's.
        settings = replace(settings, root=None)
    by_name = {c.name: c for c in configs}
    runs = plan_runs(
        settings.protocol,
        configs,
        settings.seeds,
        root=_data_root(configs[0], settings.root),
    )
    out = Path(settings.out)
    _check_settings(out, settings, configs)
    root = _prepare_scene(settings, configs)
    rank0 = _is_global_zero()
    if rank0:
        out.mkdir(parents=True, exist_ok=True)
        payload = {
            "settings": settings.fingerprint(),
            "configs": [asdict(c) for c in configs],
            "seeds": list(settings.seeds),
            "runs": [r.name for r in runs],
        }
        _atomic_write(out / "protocol.json", json.dumps(payload, indent=1))
    result = ProtocolResult(out=out)
    pending = [r for r in runs if not (r.directory(out) / DONE_FILE).exists()]
    result.skipped = [r.name for r in runs if r not in pending]

    def epochs(run: RunSpec) -> int:
        return int(_trainer_kwargs(settings, by_name[run.config])["max_epochs"])

    total = sum(epochs(r) for r in runs)
    bar = None
    if rank0 and settings.progress:
        bar = tqdm(
            total=total,
            initial=total - sum(epochs(r) for r in pending),
            unit="epoch",
            desc=f"protocol {settings.protocol}",
            dynamic_ncols=True,
        )
    try:
        with _quiet():
            for run in pending:
                if bar is not None:
                    bar.set_postfix_str(run.name)
                before = bar.n if bar is not None else 0
                _train_one(run, by_name[run.config], settings, root, out, bar)
                if bar is not None:  # early stop / max_time: count the whole run
                    bar.update(epochs(run) - (bar.n - before))
                result.trained.append(run.name)
                gc.collect()  # Lightning's reference cycles hold the last model
    finally:
        if bar is not None:
            bar.close()
    if rank0:
        records = [r for r in load_runs(out) if r.get("protocol") == settings.protocol]
        planned = {r.name for r in runs}
        records = [
            r
            for r in records
            if f"{r['config']}/{r['split']}/seed{r['seed']}" in planned
        ]
        labels = {c.name: c.label for c in configs}
        order = [c.name for c in configs]
        result.tables = write_tables(records, out, settings.protocol, order, labels)
        result.figures = write_figures(records, out, settings.protocol, order, labels)
        result.wall_s = time.perf_counter() - wall
        summary = json.loads((out / "protocol.json").read_text(encoding="utf-8"))
        summary["last_call"] = {
            "trained": result.trained,
            "skipped": result.skipped,
            "wall_s": result.wall_s,
            "finished": time.strftime("%Y-%m-%dT%H:%M:%S"),
        }
        _atomic_write(out / "protocol.json", json.dumps(summary, indent=1))
    return result
