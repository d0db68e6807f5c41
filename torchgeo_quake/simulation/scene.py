"""Simulate the five-city post-earthquake scene and write it to disk.

:func:`simulate_scene` writes, for every selected city, ``ROOT/<slug>/`` with
``sar.tif``, ``dsm.tif``, ``buildings.gpkg``, ``destroyed.geojson``,
``gem.csv`` and ``truth.csv`` (layout in ``docs/dev/contracts.md``), plus
``ROOT/scene.json``, the summary that marks the root as simulated. The
calibrated scenario (the default, :mod:`~torchgeo_quake.simulation.scenario`)
also writes ``pga.tif``, the simulated ground motion (a ShakeMap-like layer
that the paper's model does not read).

Re-running
    Without ``overwrite``, :func:`simulate_scene` only ever *adds* what is
    missing and never replaces files it cannot prove it made:

    * ``scene.json`` marks the root as simulated with the same parameters (seed,
      scale, GEM source, simulator version; the cities may differ) and every
      requested city folder holds all :data:`CITY_FILES`: nothing is done and
      the stored summary is returned;
    * a requested city is *incomplete* (its folder is missing or lacks a file):
      only that city is simulated again, and only if its folder holds nothing but
      simulator files (no other file or folder), its ``sar.tif``, if present, is
      tagged ``SIMULATED=TRUE``, and every file present has the SHA-256 recorded
      in ``scene.json``; otherwise a :class:`FileExistsError` names the file. A
      requested city that ``scene.json`` does not list is added when its folder
      is absent or empty. Complete cities are left untouched;
    * a city folder holds files but the root has no simulated marker for these
      parameters (it may hold real data, or another simulation), or
      ``scene.json`` describes another simulation: a :class:`FileExistsError`
      names the folder or file; pass ``overwrite=True`` (``--overwrite``) or
      choose another root;
    * ``scene.json`` was written by another simulator version (e.g. a scene
      of torchgeo_quake 0.1/0.2, simulator version 1): a
      :class:`FileExistsError` says the scene is outdated and how to replace
      it (``--overwrite``) or keep the old model (``--scenario v0.1``);
      nothing is changed;
    * ``overwrite=True`` always simulates the requested cities afresh and
      replaces their simulator files (:data:`CITY_FILES`) and ``scene.json``.
      Anything else in a city folder (your notes, real data under other names,
      sub-folders) is kept, moved into the new folder, and listed in a
      :class:`UserWarning`.

Atomic writes
    All files are first written into a temporary folder inside ``ROOT``; only
    when every city is complete are the city folders renamed into place (an
    existing folder, checked as above, is moved aside and deleted once the
    entries that are not simulator files have been moved into the new folder),
    and ``scene.json`` is replaced last. An error leaves ``ROOT`` as it was;
    entries that are not simulator files are never deleted.

The scene record (``scene.json``, its parameters and the checks above) lives in
:mod:`~torchgeo_quake.simulation.scene_record` and the simulation of one city
in :mod:`~torchgeo_quake.simulation.city_files`; their public names are
re-exported here, where they were defined before.

.. versionadded:: 0.1
"""

from __future__ import annotations

import os
import shutil
import tempfile
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .cities import CITIES, CitySpec, resolve_cities

# "X as X": names defined here before, re-exported (documented where defined).
from .city_files import simulate_city_files as simulate_city_files
from .gem_tables import ExposureTable, load_exposure
from .scenario import DEFAULT_SCENARIO, Scenario, resolve_scenario
from .scene_record import CITY_FILES as CITY_FILES
from .scene_record import (
    OPTIONAL_CITY_FILES,
    _check_existing,
    _check_regenerable,
    _compatible,
    _complete,
    _parameters,
    _scene_summary,
    _write_scene_file,
)
from .scene_record import SCENE_FILE as SCENE_FILE
from .scene_record import SIMULATOR_VERSION as SIMULATOR_VERSION
from .scene_record import file_sha256 as file_sha256
from .scene_record import read_scene as read_scene
from .scene_record import resolve_gem_source as resolve_gem_source

__all__ = ["simulate_scene"]


def _user_entries(folder: Path) -> list[str]:
    """Entries of a city folder that the simulator does not write.

    Args:
        folder: the city folder (may be missing)

    Returns:
        Sorted names of the entries not in :data:`CITY_FILES`.
    """
    if not folder.is_dir():
        return []
    ours = CITY_FILES + OPTIONAL_CITY_FILES
    return sorted(e.name for e in folder.iterdir() if e.name not in ours)


def _swap_city(target: Path, new: Path, aside: Path) -> list[str]:
    """Put a freshly simulated city folder in place, keeping the user's entries.

    The entries of *target* that the simulator does not write are moved into
    *new* first, then *target* is moved to *aside* and *new* renamed to
    *target*. If a step fails, what was moved is moved back.

    Args:
        target: the city folder in the scene root (may be missing)
        new: the simulated folder (in the staging folder)
        aside: where the old folder goes (in the staging folder, deleted later)

    Returns:
        The names of the entries kept.

    Raises:
        OSError: If an entry or a folder cannot be moved (after moving back).
    """
    kept = _user_entries(target)
    moved: list[str] = []
    try:
        for name in kept:
            os.rename(target / name, new / name)
            moved.append(name)
        if target.exists():
            target.rename(aside)
        new.rename(target)
    except OSError:
        if aside.exists() and not target.exists():
            aside.rename(target)
        for name in moved:
            os.rename(new / name, target / name)
        raise
    return kept


def _check_arguments(scale: float, seed: int, buildings: int | None) -> None:
    """Refuse invalid scene parameters.

    Args:
        scale: factor applied to the Table II counts
        seed: random seed
        buildings: building count override, or None

    Raises:
        ValueError: If *scale* is not in (0, 1], *seed* not a non-negative
            integer or *buildings* not an integer >= 2.
    """
    if not 0.0 < float(scale) <= 1.0:
        raise ValueError(f"scale must be in (0, 1], got {scale}")
    if int(seed) != seed or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed}")
    if buildings is not None and (int(buildings) != buildings or buildings < 2):
        raise ValueError(f"buildings must be an integer >= 2, got {buildings}")


def _plan(
    root: Path,
    specs: tuple[CitySpec, ...],
    parameters: dict[str, Any],
    scene: dict[str, Any] | None,
    overwrite: bool,
) -> tuple[tuple[CitySpec, ...], dict[str, Any]] | None:
    """Apply the re-run rules of the module docstring.

    Args:
        root: scene root
        specs: requested cities
        parameters: parameters of this call
        scene: the current ``scene.json`` (None if absent)
        overwrite: replace existing simulator files

    Returns:
        (cities to simulate, summaries of the scene's other cities to keep by
        slug), or None when every requested city is complete.

    Raises:
        FileExistsError: If *root* holds data this call would replace and
            *overwrite* is False.
    """
    if overwrite:
        return specs, {}
    if not _compatible(scene, parameters):
        _check_existing(root, specs, scene)
        return specs, {}
    assert scene is not None
    listed: dict[str, Any] = scene.get("cities") or {}
    known = set(scene["parameters"]["cities"])
    todo = tuple(c for c in specs if not (c.slug in known and _complete(root, c)))
    if not todo:
        return None
    for city in todo:
        info = listed.get(city.slug) if city.slug in known else None
        _check_regenerable(root / city.slug, info)
    redo = {c.slug for c in todo}
    kept = {
        c.slug: listed[c.slug]
        for c in CITIES
        if c.slug in known and c.slug not in redo and c.slug in listed
    }
    return todo, kept


def _write_scene(
    root: Path,
    todo: tuple[CitySpec, ...],
    kept: dict[str, Any],
    parameters: dict[str, Any],
    exposure: ExposureTable,
    scale: float,
    seed: int,
    buildings: int | None,
    progress: bool | None = None,
    scenario: Scenario = DEFAULT_SCENARIO,
) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """Simulate cities in a staging folder, then move them and the summary in.

    Args:
        root: scene root (must exist)
        todo: cities to simulate
        kept: summaries of the scene's other cities, by slug
        parameters: parameters of the scene, with every city of it
        exposure: GEM exposure
        scale: scene scale
        seed: scene seed
        buildings: building count override, or None
        progress: show a progress bar per city (None: when stderr is a
            terminal)
        scenario: the damage and image model

    Returns:
        (scene summary as written to ``scene.json``, names of the entries kept
        in each replaced city folder by slug).
    """
    from tqdm.auto import tqdm

    staging = Path(tempfile.mkdtemp(prefix=".simulate-", dir=root))
    try:
        made: dict[str, Any] = {}
        bar = tqdm(
            todo,
            desc="simulate",
            unit="city",
            disable=None if progress is None else not progress,
            dynamic_ncols=True,
        )
        for city in bar:
            bar.set_postfix_str(city.slug)
            folder = staging / city.slug
            folder.mkdir()
            made[city.slug] = simulate_city_files(
                city, exposure, folder, scale, seed, buildings, scenario
            )
        summaries = {
            slug: made.get(slug, kept.get(slug)) for slug in parameters["cities"]
        }
        summary = _scene_summary(
            parameters, parameters["gem_source"], scale, seed, summaries
        )
        _write_scene_file(staging / SCENE_FILE, summary)
        kept_entries: dict[str, list[str]] = {}
        for city in todo:
            target = root / city.slug
            aside = staging / f"{city.slug}.replaced"
            kept_entries[city.slug] = _swap_city(target, staging / city.slug, aside)
        os.replace(staging / SCENE_FILE, root / SCENE_FILE)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return summary, kept_entries


def simulate_scene(
    root: str | os.PathLike[str],
    cities: Iterable[str | CitySpec] | None = None,
    scale: float = 1.0,
    seed: int = 0,
    overwrite: bool = False,
    gem_dir: str | os.PathLike[str] | None = None,
    buildings: int | None = None,
    progress: bool | None = None,
    scenario: Scenario | str | None = None,
    sar_contrast: float | None = None,
    vulnerability_strength: float | None = None,
) -> dict[str, Any]:
    """Simulate the post-earthquake scene of the paper's cities into *root*.

    Args:
        root: output folder (created if needed)
        cities: slugs, names or specifications of the cities (default: all five)
        scale: factor in (0, 1] applied to every Table II count (areas shrink
            accordingly); at least one damaged building per city
        seed: random seed; the same parameters give identical files
        overwrite: replace the simulator files (:data:`CITY_FILES`) of
            existing city folders and ``scene.json`` (and simulate afresh even
            when the root already holds this scene); other entries of the city
            folders are kept and listed in a :class:`UserWarning`. Without it,
            only missing cities and files are added (see the module docstring)
        gem_dir: folder with GEM's ``Exposure_{Res,Com,Ind}_Turkey_Adm1.csv``;
            None uses ``../shared/data/gem`` beside the repository if present and
            the built-in summary table otherwise; ``"builtin"`` forces the table
        buildings: if given, every city's valid SAR area holds this many
            buildings (the Table II damaged share is kept) instead of the scaled
            Table II counts, and *scale* is ignored; e.g. one city of 100,000
            buildings for the mapping benchmark. The area grows accordingly.
        progress: show a progress bar, one step per city (None: only when
            standard error is a terminal)
        scenario: the damage and image model, a
            :class:`~torchgeo_quake.simulation.scenario.Scenario` or its name
            (None: ``"calibrated"``; ``"v0.1"``: the model of versions 0.1
            and 0.2)
        sar_contrast: overrides the scenario's SAR damage contrast
        vulnerability_strength: overrides the scenario's vulnerability
            strength

    Returns:
        The scene summary, also written to ``ROOT/scene.json``: ``simulated``,
        ``version``, ``seed``, ``scale``, ``parameters`` and per city (every city
        of the scene, including those of earlier calls that this one completed)
        the counts, image sizes, acquisition geometry and file hashes.

    Raises:
        ValueError: If *scale*, *buildings* or a city is invalid.
        FileExistsError: If *root* holds data this call would replace and
            *overwrite* is False.
        FileNotFoundError: If *gem_dir* is given but missing.

    .. versionadded:: 0.1
    .. versionchanged:: 0.2
       The *progress* bar.
    .. versionchanged:: 0.3
       The *scenario* and its knobs; the calibrated scenario is the default.
       A scene of an older simulator version is reported as outdated.
    """
    specs = resolve_cities(cities)
    _check_arguments(scale, seed, buildings)
    chosen = resolve_scenario(scenario, sar_contrast, vulnerability_strength)
    root_path = Path(root).expanduser()
    gem_source = resolve_gem_source(gem_dir)
    parameters = _parameters(specs, scale, seed, gem_source, buildings, chosen)
    scene = read_scene(root_path)
    plan = _plan(root_path, specs, parameters, scene, overwrite)
    if plan is None:
        assert scene is not None
        return scene
    todo, kept = plan
    every = {c.slug for c in todo} | set(kept)
    parameters["cities"] = [c.slug for c in CITIES if c.slug in every]

    exposure = load_exposure(gem_source)
    root_path.mkdir(parents=True, exist_ok=True)
    summary, kept_entries = _write_scene(
        root_path,
        todo,
        kept,
        parameters,
        exposure,
        scale,
        seed,
        buildings,
        progress,
        chosen,
    )
    for slug, names in kept_entries.items():
        if names:
            warnings.warn(
                f"simulate_scene: kept {len(names)} entr"
                f"{'y' if len(names) == 1 else 'ies'} of "
                f"{str(root_path / slug)!r} that the simulator does not write: "
                f"{', '.join(names)} (only "
                f"{', '.join(CITY_FILES + OPTIONAL_CITY_FILES)} were replaced).",
                UserWarning,
                stacklevel=2,
            )
    return summary
