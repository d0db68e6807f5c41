"""Plan and run the paper's evaluation protocols, resumably.

A protocol is a set of runs, one per input configuration × split × seed:

* ``"cv"`` — stratified k-fold cross-validation over all cities (Table III);
* ``"loco"`` — leave-one-city-out, one run per held-out city (Table IV);
* ``"islahiye"`` — stratified k-fold cross-validation on Islahiye alone
  (Table V);
* ``"blocked"`` and ``"blocked-islahiye"`` — the same k-fold over all cities,
  or on Islahiye alone, with spatially blocked folds (not in the paper): whole
  square blocks of ``block_size`` metres go to one fold, and a ``buffer`` drops
  the training and validation buildings near a test building
  (:func:`~torchgeo_quake.datasets.splits.buffer_splits`).

``"loco"`` chooses each run's checkpoint and threshold on a random validation
share of the training cities (``selection="random"``, the paper's) or on one
whole training city (``"inner-city"``, see
:func:`~torchgeo_quake.datasets.splits.inner_validation_city`).

Each run trains a :class:`~torchgeo_quake.trainers.DamageDetectionTask` on a
:class:`~torchgeo_quake.datamodules.KahramanmarasDamageDataModule` (or, for
``"cv"`` and ``"loco"`` on another event, a
:class:`~torchgeo_quake.datamodules.BuildingDamageDataModule`: ``"loco"`` then
holds out each area), both built from a LightningCLI configuration file
(``experiments/*.yaml``, read and checked by :mod:`.config`), tests the
checkpoint with the best validation F1 (:mod:`.training`) and writes its files
under ``OUT/runs/<config>/<split>/seed<k>/`` (:mod:`.records`).

Every configuration is checked against its classes before anything is written:
a wrong key or value ends the call with a
:class:`~torchgeo_quake.protocols.config.ConfigError` and leaves no
``protocol.json`` and no run folder behind.

The blocked protocols and the inner-city selection compute every run's split
before training anything: a block size or buffer that leaves a split without
damaged buildings stops the call with a :class:`ValueError` naming the run.

A run with ``metrics.json`` is never trained again; a run without it is
(re)started, from its ``checkpoints/last.ckpt`` when an interrupted attempt left
one. A ``last.ckpt`` that cannot be read stops the call before any training with
a :class:`~torchgeo_quake.protocols.records.DamagedRunError` naming the file:
delete it (or the run's folder) to retrain that run from its first epoch.
``OUT/protocol.json`` records the settings and the configurations; re-running
into the same folder with other settings, or after a configuration file was
edited, is refused, so results of different scales, epochs or hyper-parameters
never mix.

The configurations' ``trainer.max_time`` (which bounds a single ``torchgeo fit``
on a CPU) is not used: a wall-clock limit would stop the slower configurations
after fewer epochs and bias the comparison. ``--max-time`` sets one explicitly;
runs it stops are flagged in their record and in the tables' notes.

.. versionadded:: 0.1
.. versionchanged:: 0.3
   The blocked protocols and the inner-city selection of ``"loco"``.
"""

from __future__ import annotations

import gc
import json
import math
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..utils import is_global_zero, quiet_lightning
from .calibration import write_calibration
from .config import (
    BLOCKED_PROTOCOLS,
    ExperimentConfig,
    Protocol,
    check_section,
    data_root,
    instantiate,
    is_kahramanmaras,
    load_config,
)
from .figures import write_figures
from .records import (
    DONE_FILE,
    RunSpec,
    check_manifest,
    load_runs,
    note_last_call,
    resume_checkpoint,
    write_manifest,
)
from .settings import DEFAULT_BLOCK_SIZE, ProtocolSettings, trainer_kwargs
from .tables import write_tables
from .training import QUIET_PATTERNS, data_overrides, train_run

__all__ = ["ProtocolResult", "plan_runs", "run_protocol"]


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
    #: Blocked protocols with a buffer: training and validation buildings the
    #: buffer dropped, per finished run (``{"train": n, "val": m}``).
    #:
    #: .. versionadded:: 0.3
    dropped: dict[str, dict[str, int]] = field(default_factory=dict)


# ------------------------------------------------------------------ planning
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
    if is_kahramanmaras(config):
        cities = args.get("cities")
        return tuple(cities) if cities else tuple(TABLE_II)
    areas = args.get("areas") or args.get("cities")
    if areas:
        return tuple(areas)
    from ..datasets import BuildingDamage

    return BuildingDamage.find_areas(data_root(config, root))


def _runs_of(
    protocol: Protocol,
    config: ExperimentConfig,
    seed: int,
    root: str | os.PathLike[str] | None,
) -> list[RunSpec]:
    """The runs of one configuration and seed.

    Args:
        protocol: ``"cv"``, ``"loco"``, ``"islahiye"``, ``"blocked"`` or
            ``"blocked-islahiye"``
        config: the configuration
        seed: the seed
        root: data root (None: the configuration's)

    Returns:
        The runs, by split.

    Raises:
        ValueError: If the protocol is unknown, or ``islahiye`` (or
            ``blocked-islahiye``) is asked of another data module or of data
            without Islahiye.
    """
    folds = int(config.data["init_args"].get("num_folds", 5))
    if protocol in ("cv", "blocked"):
        strategy = "cv" if protocol == "cv" else "blocked"
        return [
            RunSpec(protocol, config.name, f"fold{k}", seed, strategy, fold=k)
            for k in range(folds)
        ]
    if protocol == "loco":
        return [
            RunSpec(protocol, config.name, city, seed, "loco", test_city=city)
            for city in _cities(config, root)
        ]
    if protocol not in ("islahiye", "blocked-islahiye"):
        raise ValueError(f"unknown protocol {protocol!r}")
    if not is_kahramanmaras(config):
        raise ValueError(
            f"{config.path}: the {protocol!r} protocol (the paper's "
            "Table V) needs the Kahramanmaraş data "
            "(torchgeo_quake.datamodules.KahramanmarasDamageDataModule),"
            f" not {config.data['class_path']}; for another event use "
            "'cv' or 'blocked', or 'loco' to hold out each area in turn"
        )
    if "islahiye" not in _cities(config, root):
        raise ValueError(f"{config.path}: 'islahiye' is not among cities")
    strategy = "city" if protocol == "islahiye" else "blocked"
    return [
        RunSpec(
            protocol, config.name, f"fold{k}", seed, strategy, fold=k, city="islahiye"
        )
        for k in range(folds)
    ]


def plan_runs(
    protocol: Protocol,
    configs: Sequence[ExperimentConfig],
    seeds: Sequence[int],
    root: str | os.PathLike[str] | None = None,
) -> list[RunSpec]:
    """All runs of a protocol, in execution order (seed, split, configuration).

    Args:
        protocol: ``"cv"``, ``"loco"``, ``"islahiye"``, ``"blocked"`` or
            ``"blocked-islahiye"``
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
    .. versionchanged:: 0.3
       ``"blocked"`` and ``"blocked-islahiye"``.
    """
    names = [c.name for c in configs]
    if len(set(names)) != len(names):
        raise ValueError(f"configuration names (file stems) must differ: {names}")
    runs = [
        run
        for seed in seeds
        for config in configs
        for run in _runs_of(protocol, config, seed, root)
    ]
    # Runs of one split and seed next to each other: configurations compare early.
    order = {name: i for i, name in enumerate(names)}
    splits: dict[str, int] = {}
    for run in runs:
        splits.setdefault(run.split, len(splits))
    runs.sort(key=lambda r: (r.seed, splits[r.split], order[r.config]))
    return runs


# ------------------------------------------------------------------- running
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
    root = data_root(configs[0], settings.root)
    if not is_kahramanmaras(configs[0]):
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
    if (not root.exists() or not any(root.iterdir())) and is_global_zero():
        from ..simulation import simulate_scene

        simulate_scene(
            root, scale=settings.scale or 1.0, seed=int(data_args.get("seed", 0))
        )
    return str(root)


def _check_runs(
    runs: Sequence[RunSpec],
    by_name: dict[str, ExperimentConfig],
    settings: ProtocolSettings,
    root: str,
) -> None:
    """Check, before anything is written, what each run will be given.

    The data module of every configuration must accept the split arguments the
    runner sets (as for its first run); every unfinished run's ``last.ckpt``
    must be readable.

    Args:
        runs: the planned runs
        by_name: the configurations, by name
        settings: resolved settings
        root: data root

    Raises:
        ConfigError: If a data module does not accept the runner's arguments.
        DamagedRunError: If an unfinished run's ``last.ckpt`` cannot be read.
    """
    checked: set[str] = set()
    for run in runs:
        config = by_name[run.config]
        if run.config not in checked:
            checked.add(run.config)
            overrides = data_overrides(run, config, settings, root)
            check_section(
                config.path,
                "data",
                config.data["class_path"],
                {**config.data["init_args"], **overrides},
                set_by_runner=tuple(overrides),
            )
        if not (run.directory(settings.out) / DONE_FILE).exists():
            resume_checkpoint(run, settings.out)


def _check_splits(
    runs: Sequence[RunSpec],
    by_name: dict[str, ExperimentConfig],
    settings: ProtocolSettings,
    root: str,
) -> None:
    """Compute every unfinished run's split before training anything.

    Done for the blocked protocols and the inner-city selection, whose splits
    depend on the data in ways the settings cannot be checked against alone
    (a block size or buffer can leave a fold without damaged buildings). One
    dataset is built per distinct dataset (configuration data and seed) and
    shared by the runs that use it.

    Args:
        runs: the planned runs
        by_name: the configurations, by name
        settings: resolved settings (with the data root)
        root: data root (already prepared)

    Raises:
        ValueError: If a run's split cannot be used; the message names the run.
    """
    if settings.protocol not in BLOCKED_PROTOCOLS and settings.selection == "random":
        return
    datasets: dict[str, Any] = {}
    for run in runs:
        if (run.directory(settings.out) / DONE_FILE).exists():
            continue
        config = by_name[run.config]
        datamodule = instantiate(
            config, "data", **data_overrides(run, config, settings, root)
        )
        key = json.dumps(
            [datamodule.dataset_class.__name__, datamodule.kwargs],
            sort_keys=True,
            default=str,
        )
        if key in datasets:
            datamodule.dataset = datasets[key]
        try:
            datamodule.make_indices()
        except ValueError as err:
            raise ValueError(f"run {run.name}: {err}") from err
        datasets[key] = datamodule.dataset


def _setup(
    settings: ProtocolSettings,
) -> tuple[ProtocolSettings, list[ExperimentConfig], list[RunSpec], str]:
    """Read and check everything a protocol needs, before writing anything.

    Args:
        settings: the settings as given

    Returns:
        Resolved settings, the configurations, the planned runs and the data
        root (simulated when empty; the only thing written).

    Raises:
        FileNotFoundError: If a configuration file is missing.
        FileExistsError: If *out* holds runs of other settings.
        ValueError: If the settings or configurations are invalid, a run's
            checkpoint is damaged, or (blocked protocols, inner-city
            selection) a run's split cannot be used.
    """
    given_root, given_block = settings.root, settings.block_size
    settings = settings.resolved()
    configs = [load_config(path) for path in settings.configs]
    if given_root is None and not is_kahramanmaras(configs[0]):
        # Real data has no scale: the quick mode's root is the simulated scene's.
        settings = replace(settings, root=None)
    if given_block is None and settings.block_size and not is_kahramanmaras(configs[0]):
        # Nor do its blocks shrink with the scale.
        settings = replace(settings, block_size=DEFAULT_BLOCK_SIZE[settings.protocol])
    runs = plan_runs(
        settings.protocol,
        configs,
        settings.seeds,
        root=data_root(configs[0], settings.root),
    )
    check_manifest(Path(settings.out), settings, configs)
    root = str(data_root(configs[0], settings.root))
    by_name = {c.name: c for c in configs}
    _check_runs(runs, by_name, settings, root)
    root = _prepare_scene(settings, configs)
    with quiet_lightning(QUIET_PATTERNS):
        _check_splits(runs, by_name, settings, root)
    return settings, configs, runs, root


def _train_all(
    settings: ProtocolSettings,
    by_name: dict[str, ExperimentConfig],
    runs: Sequence[RunSpec],
    pending: Sequence[RunSpec],
    root: str,
) -> list[str]:
    """Train the unfinished runs in order, under one progress bar in epochs.

    Args:
        settings: resolved settings
        by_name: the configurations, by name
        runs: all runs of the protocol (for the bar's total)
        pending: the unfinished runs
        root: data root

    Returns:
        Names of the runs trained.
    """
    from tqdm.auto import tqdm

    def epochs(run: RunSpec) -> int:
        return int(trainer_kwargs(settings, by_name[run.config])["max_epochs"])

    total = sum(epochs(r) for r in runs)
    bar = None
    if is_global_zero() and settings.progress:
        bar = tqdm(
            total=total,
            initial=total - sum(epochs(r) for r in pending),
            unit="epoch",
            desc=f"protocol {settings.protocol}",
            dynamic_ncols=True,
            # The bar moves per batch (a share of an epoch): one decimal.
            bar_format="{desc}: {percentage:3.0f}%|{bar}| {n:.1f}/{total_fmt} "
            "epochs [{elapsed}<{remaining}{postfix}]",
        )
    trained = []
    try:
        with quiet_lightning(QUIET_PATTERNS):
            for run in pending:
                if bar is not None:
                    bar.set_postfix_str(run.name)
                before = bar.n if bar is not None else 0
                train_run(run, by_name[run.config], settings, root, bar)
                if bar is not None:  # early stop / max_time: count the whole run
                    bar.update(epochs(run) - (bar.n - before))
                trained.append(run.name)
                gc.collect()  # Lightning's reference cycles hold the last model
    finally:
        if bar is not None:
            bar.close()
    return trained


def run_protocol(settings: ProtocolSettings) -> ProtocolResult:
    """Run (or resume) a protocol, then write its tables and figures.

    Every configuration is checked first (see :mod:`.config`): an invalid one
    stops the call before anything is written. Finished runs (with
    ``metrics.json``) are skipped; the others are trained in order, resuming
    from ``checkpoints/last.ckpt`` where an interrupted attempt left one. One
    progress bar, in epochs, covers all runs and shows the ETA. Tables
    (:mod:`~torchgeo_quake.protocols.tables`), the calibration table
    (:mod:`~torchgeo_quake.protocols.calibration`) and figures
    (:mod:`~torchgeo_quake.protocols.figures`) are written from all finished
    runs at the end.

    Args:
        settings: the protocol's settings

    Returns:
        What was trained, skipped and written.

    Raises:
        FileNotFoundError: If a configuration file is missing.
        FileExistsError: If *out* holds runs of other settings.
        ValueError: If the settings or configurations are invalid
            (:class:`~torchgeo_quake.protocols.config.ConfigError`), or an
            unfinished run's checkpoint cannot be read
            (:class:`~torchgeo_quake.protocols.records.DamagedRunError`).

    .. versionadded:: 0.1
    .. versionchanged:: 0.2
       Checks the configurations and checkpoints before writing anything.
    """
    wall = time.perf_counter()
    settings, configs, runs, root = _setup(settings)
    out = Path(settings.out)
    if is_global_zero():
        write_manifest(out, settings, configs, runs)
    result = ProtocolResult(out=out)
    pending = [r for r in runs if not (r.directory(out) / DONE_FILE).exists()]
    result.skipped = [r.name for r in runs if r not in pending]
    by_name = {c.name: c for c in configs}
    result.trained = _train_all(settings, by_name, runs, pending, root)
    if not is_global_zero():
        return result
    planned = {r.name for r in runs}
    records = [
        r
        for r in load_runs(out)
        if r.get("protocol") == settings.protocol
        and f"{r['config']}/{r['split']}/seed{r['seed']}" in planned
    ]
    if settings.buffer:
        result.dropped = {
            f"{r['config']}/{r['split']}/seed{r['seed']}": dict(r.get("dropped", {}))
            for r in records
        }
    labels = {c.name: c.label for c in configs}
    order = [c.name for c in configs]
    result.tables = write_tables(records, out, settings.protocol, order, labels)
    result.tables += write_calibration(records, out, settings.protocol, order)
    result.figures = write_figures(records, out, settings.protocol, order, labels)
    result.wall_s = time.perf_counter() - wall
    last_call: dict[str, Any] = {
        "trained": result.trained,
        "skipped": result.skipped,
        "wall_s": result.wall_s,
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    note_last_call(out, last_call)
    return result
