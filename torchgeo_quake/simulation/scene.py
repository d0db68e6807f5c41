"""Simulate the five-city post-earthquake scene and write it to disk.

:func:`simulate_scene` writes, for every selected city, ``ROOT/<slug>/`` with
``sar.tif``, ``dsm.tif``, ``buildings.gpkg``, ``destroyed.geojson``,
``gem.csv`` and ``truth.csv`` (layout in ``docs/dev/contracts.md``), plus
``ROOT/scene.json``, the summary that marks the root as simulated.

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

.. versionadded:: 0.1
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import rasterio
from rasterio.errors import RasterioIOError

from .. import __version__
from .cities import CITIES, CitySpec, resolve_cities
from .city import CitySimulation, city_rng, simulate_layout
from .dsm import DSM_RES, render_dsm, write_dsm
from .gem import DEFAULT_GEM_DIR, ExposureTable, gem_assets, load_exposure
from .landcover import make_fields
from .sar import SAR_RES, render_sar, write_sar
from .vectors import (
    destroyed_features,
    footprints_frame,
    write_buildings,
    write_destroyed,
    write_truth,
)

__all__ = [
    "CITY_FILES",
    "SCENE_FILE",
    "SIMULATOR_VERSION",
    "file_sha256",
    "read_scene",
    "resolve_gem_source",
    "simulate_city_files",
    "simulate_scene",
]

#: Version of the simulation model; bump when outputs change for a given seed.
SIMULATOR_VERSION = 1
#: Name of the scene summary / simulated marker in the root.
SCENE_FILE = "scene.json"
#: Files written per city.
CITY_FILES: tuple[str, ...] = (
    "sar.tif",
    "dsm.tif",
    "buildings.gpkg",
    "destroyed.geojson",
    "gem.csv",
    "truth.csv",
)
_CRS = "EPSG:32637"
_HINT = "pass overwrite=True (--overwrite) to replace it, or choose another root"


def file_sha256(path: str | os.PathLike[str]) -> str:
    """SHA-256 of a file, read in blocks.

    Args:
        path: the file

    Returns:
        Hex digest.

    .. versionadded:: 0.1
    """
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def resolve_gem_source(gem_dir: str | os.PathLike[str] | None) -> str:
    """Where the GEM exposure will come from, without reading it.

    Args:
        gem_dir: as for
            :func:`~torchgeo_quake.simulation.gem.load_exposure`

    Returns:
        ``"builtin"`` or the absolute folder path.

    Raises:
        FileNotFoundError: If an explicitly given folder does not exist.

    .. versionadded:: 0.1
    """
    if gem_dir is not None and str(gem_dir) == "builtin":
        return "builtin"
    if gem_dir is None:
        return str(DEFAULT_GEM_DIR) if DEFAULT_GEM_DIR.is_dir() else "builtin"
    folder = Path(gem_dir).expanduser().resolve()
    if not folder.is_dir():
        raise FileNotFoundError(
            f"GEM exposure folder {str(folder)!r} does not exist. Pass the folder "
            "holding Exposure_{Res,Com,Ind}_Turkey_Adm1.csv, or 'builtin' for the "
            "built-in summary table."
        )
    return str(folder)


def _bounds_utm(
    bounds: tuple[float, float, float, float], origin: tuple[float, float]
) -> list[float]:
    """Local bounds shifted to UTM 37N.

    Args:
        bounds: (left, bottom, right, top) in local metres
        origin: UTM coordinates of the local origin

    Returns:
        [left, bottom, right, top] in UTM metres.
    """
    left, bottom, right, top = bounds
    ox, oy = origin
    return [left + ox, bottom + oy, right + ox, top + oy]


def _city_summary(
    sim: CitySimulation,
    sar_shape: tuple[int, int],
    nodata_fraction: float,
    dsm_shape: tuple[int, int],
    dsm_bounds: tuple[float, float, float, float],
    gem_rows: int,
    gem_points: int,
) -> dict[str, Any]:
    """Summary of one simulated city for ``scene.json``.

    Args:
        sim: the city
        sar_shape: (rows, cols) of the SAR image
        nodata_fraction: share of nodata pixels in the SAR image
        dsm_shape: (rows, cols) of the DSM
        dsm_bounds: DSM bounds in local metres
        gem_rows: number of GEM asset rows
        gem_points: number of GEM locations

    Returns:
        JSON-serialisable summary.
    """
    city = sim.city
    dmg = sim.damage
    intact, damaged = sim.reference_counts()
    counted = sim.counted
    return {
        "name": city.name,
        "province": f"{city.province_id} {city.province_name}",
        "buildings": len(sim.buildings),
        "buildings_in_sar": int(counted.sum()),
        "buildings_outside_sar": int((~counted).sum()),
        "intact_reference": intact,
        "damaged_reference": damaged,
        "collapsed_true": int((dmg.grade[counted] == 2).sum()),
        "partial_true": int((dmg.grade[counted] == 1).sum()),
        "false_negatives": int(((dmg.grade == 2) & ~dmg.in_reference).sum()),
        "sar": {
            "width": sar_shape[1],
            "height": sar_shape[0],
            "res": SAR_RES,
            "crs": _CRS,
            "bounds": _bounds_utm(sim.selection.bounds, sim.origin),
            "nodata_fraction": round(nodata_fraction, 4),
            "incidence_angle": city.incidence_deg,
            "orbit_direction": city.orbit,
            "sensor_side": city.sensor_side,
            "acquisition_date": city.acquisition_date,
            "looks": city.looks,
        },
        "dsm": {
            "width": dsm_shape[1],
            "height": dsm_shape[0],
            "res": DSM_RES,
            "crs": _CRS,
            "bounds": _bounds_utm(dsm_bounds, sim.origin),
        },
        "gem": {"assets": gem_rows, "locations": gem_points},
        "files": list(CITY_FILES),
    }


def simulate_city_files(
    city: CitySpec,
    exposure: ExposureTable,
    folder: str | os.PathLike[str],
    scale: float = 1.0,
    seed: int = 0,
    buildings: int | None = None,
) -> dict[str, Any]:
    """Simulate one city and write its files into *folder* (which must exist).

    Args:
        city: the city
        exposure: GEM exposure
        folder: output folder
        scale: factor in (0, 1] applied to the Table II counts
        seed: scene seed
        buildings: if given, buildings inside the valid SAR area instead of the
            scaled Table II counts (see
            :func:`~torchgeo_quake.simulation.city.simulate_layout`)

    Returns:
        The city's summary (as stored in ``scene.json``), with the SHA-256 of
        every file written under ``sha256``.

    .. versionadded:: 0.1
    """
    out = Path(folder)
    sim = simulate_layout(city, exposure, scale, seed, n_buildings=buildings)
    scale = sim.scale  # the effective scale of a building count override
    fields = make_fields(sim, city_rng(seed, city, scale, "fields"))
    provenance = {
        "GENERATOR": f"torchgeo_quake {__version__} simulator v{SIMULATOR_VERSION}",
        "SEED": str(seed),
        "SCALE": f"{scale:g}",
    }
    image = render_sar(sim, fields)
    write_sar(out / "sar.tif", image, sim.origin, provenance)
    sar_shape = image.amplitude.shape
    nodata_fraction = float(1.0 - image.valid.mean())
    del image
    dsm = render_dsm(sim, fields)
    write_dsm(out / "dsm.tif", dsm, sim.origin, {"CITY": city.name, **provenance})
    dsm_shape, dsm_bounds = dsm.height.shape, dsm.grid.bounds
    del dsm
    frame = footprints_frame(sim)
    write_buildings(out / "buildings.gpkg", frame)
    write_destroyed(out / "destroyed.geojson", destroyed_features(sim, frame))
    assets = gem_assets(
        sim.neighbourhoods,
        city,
        sim.buildings.x,
        sim.buildings.y,
        sim.origin,
        city_rng(seed, city, scale, "gem"),
    )
    assets.to_csv(out / "gem.csv", index=False)
    write_truth(out / "truth.csv", sim)
    points = int(assets[["lon", "lat"]].drop_duplicates().shape[0])
    summary = _city_summary(
        sim,
        (int(sar_shape[0]), int(sar_shape[1])),
        nodata_fraction,
        (int(dsm_shape[0]), int(dsm_shape[1])),
        dsm_bounds,
        len(assets),
        points,
    )
    summary["sha256"] = {name: file_sha256(out / name) for name in CITY_FILES}
    return summary


def _parameters(
    cities: Iterable[CitySpec],
    scale: float,
    seed: int,
    gem_source: str,
    buildings: int | None = None,
) -> dict[str, Any]:
    """The parameters that identify a simulated scene.

    Args:
        cities: simulated cities
        scale: scene scale
        seed: scene seed
        gem_source: resolved GEM source
        buildings: building count override (recorded only when given)

    Returns:
        Parameter dictionary (stored in ``scene.json``).
    """
    parameters: dict[str, Any] = {
        "simulator_version": SIMULATOR_VERSION,
        "seed": int(seed),
        "scale": float(scale),
        "cities": [c.slug for c in cities],
        "gem_source": gem_source,
    }
    if buildings is not None:
        parameters["buildings"] = int(buildings)
    return parameters


def read_scene(root: str | os.PathLike[str]) -> dict[str, Any] | None:
    """Read ``ROOT/scene.json`` if present and valid.

    Args:
        root: scene root

    Returns:
        The summary (a simulated scene has ``"simulated": true``), or None when
        the file is absent or not a JSON object.

    .. versionadded:: 0.1
    """
    path = Path(root) / SCENE_FILE
    if not path.is_file():
        return None
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _complete(root: Path, city: CitySpec) -> bool:
    """Whether a city folder holds every simulator file.

    Args:
        root: scene root
        city: the city

    Returns:
        True if nothing is missing.
    """
    return all((root / city.slug / name).is_file() for name in CITY_FILES)


def _compatible(scene: dict[str, Any] | None, parameters: dict[str, Any]) -> bool:
    """Whether *scene* is a simulation with *parameters*, cities aside.

    Args:
        scene: the current ``scene.json`` (None if absent)
        parameters: parameters of this call

    Returns:
        True if cities of this call may be added to or completed in the scene.
    """
    if scene is None or scene.get("simulated") is not True:
        return False
    stored = scene.get("parameters")
    if not isinstance(stored, dict) or not isinstance(stored.get("cities"), list):
        return False
    others = {k: v for k, v in stored.items() if k != "cities"}
    wanted = {k: v for k, v in parameters.items() if k != "cities"}
    return others == wanted


def _simulated_sar(path: Path) -> bool:
    """Whether a GeoTIFF carries the simulator's ``SIMULATED=TRUE`` tag.

    Args:
        path: the ``sar.tif``

    Returns:
        True if the file opens and is tagged as simulated.
    """
    try:
        with rasterio.open(path) as src:
            return bool(src.tags().get("SIMULATED") == "TRUE")
    except (RasterioIOError, OSError):
        return False


def _check_regenerable(folder: Path, listed: dict[str, Any] | None) -> None:
    """Refuse to replace an incomplete city folder that may hold user data.

    Args:
        folder: the city folder
        listed: the city's summary in ``scene.json`` (None if not listed)

    Raises:
        FileExistsError: If the folder holds anything but simulator files, a
            ``sar.tif`` not tagged as simulated, or a file whose SHA-256 differs
            from the one recorded in ``scene.json``.
    """
    if not folder.is_dir():
        return
    entries = sorted(folder.iterdir())
    if listed is None and entries:
        raise FileExistsError(
            f"{str(folder)!r} holds files but scene.json does not list this city "
            f"(real data?); {_HINT}."
        )
    for entry in entries:
        if entry.name not in CITY_FILES or not entry.is_file():
            raise FileExistsError(
                f"{str(folder)!r} is incomplete and would be simulated again, but "
                f"holds {entry.name!r}, which the simulator does not write; move "
                f"it away, or {_HINT}."
            )
    recorded = (listed or {}).get("sha256") or {}
    for entry in entries:
        if entry.name == "sar.tif" and not _simulated_sar(entry):
            raise FileExistsError(
                f"{str(entry)!r} is not tagged SIMULATED=TRUE (replaced by real "
                f"data?), so the incomplete city is not simulated again; {_HINT}."
            )
        expected = recorded.get(entry.name)
        if expected is not None and file_sha256(entry) != expected:
            raise FileExistsError(
                f"{str(entry)!r} differs from the file the simulator wrote (its "
                "SHA-256 is not the one recorded in scene.json), so the incomplete "
                f"city is not simulated again; {_HINT}."
            )


def _check_existing(
    root: Path, cities: Iterable[CitySpec], scene: dict[str, Any] | None
) -> None:
    """Refuse to replace data that this call did not make.

    Args:
        root: scene root
        cities: cities about to be written
        scene: the current ``scene.json`` (None if absent)

    Raises:
        FileExistsError: If a city folder holds files (or ``scene.json`` marks a
            different simulation).
    """
    simulated = scene is not None and scene.get("simulated") is True
    for city in cities:
        folder = root / city.slug
        if folder.is_dir() and any(folder.iterdir()):
            if simulated:
                reason = "holds a simulation made with different parameters"
            else:
                reason = "holds files but is not marked as simulated (real data?)"
            raise FileExistsError(f"{str(folder)!r} {reason}; {_HINT}.")
    if scene is not None:
        path = root / SCENE_FILE
        raise FileExistsError(
            f"{str(path)!r} describes another scene ({scene.get('parameters')}); "
            f"{_HINT}."
        )


def _user_entries(folder: Path) -> list[str]:
    """Entries of a city folder that the simulator does not write.

    Args:
        folder: the city folder (may be missing)

    Returns:
        Sorted names of the entries not in :data:`CITY_FILES`.
    """
    if not folder.is_dir():
        return []
    return sorted(e.name for e in folder.iterdir() if e.name not in CITY_FILES)


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


def simulate_scene(
    root: str | os.PathLike[str],
    cities: Iterable[str | CitySpec] | None = None,
    scale: float = 1.0,
    seed: int = 0,
    overwrite: bool = False,
    gem_dir: str | os.PathLike[str] | None = None,
    buildings: int | None = None,
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
    """
    specs = resolve_cities(cities)
    if not 0.0 < float(scale) <= 1.0:
        raise ValueError(f"scale must be in (0, 1], got {scale}")
    if int(seed) != seed or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed}")
    if buildings is not None and (int(buildings) != buildings or buildings < 2):
        raise ValueError(f"buildings must be an integer >= 2, got {buildings}")
    root_path = Path(root).expanduser()
    gem_source = resolve_gem_source(gem_dir)
    parameters = _parameters(specs, scale, seed, gem_source, buildings)
    scene = read_scene(root_path)
    kept: dict[str, Any] = {}
    todo = specs
    if not overwrite and _compatible(scene, parameters):
        assert scene is not None
        listed: dict[str, Any] = scene.get("cities") or {}
        known = set(scene["parameters"]["cities"])
        todo = tuple(
            c for c in specs if not (c.slug in known and _complete(root_path, c))
        )
        if not todo:
            return scene
        for city in todo:
            info = listed.get(city.slug) if city.slug in known else None
            _check_regenerable(root_path / city.slug, info)
        redo = {c.slug for c in todo}
        kept = {
            c.slug: listed[c.slug]
            for c in CITIES
            if c.slug in known and c.slug not in redo and c.slug in listed
        }
    elif not overwrite:
        _check_existing(root_path, specs, scene)
    every = {c.slug for c in todo} | set(kept)
    parameters["cities"] = [c.slug for c in CITIES if c.slug in every]

    exposure = load_exposure(gem_source)
    root_path.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".simulate-", dir=root_path))
    try:
        made: dict[str, Any] = {}
        for city in todo:
            folder = staging / city.slug
            folder.mkdir()
            made[city.slug] = simulate_city_files(
                city, exposure, folder, scale, seed, buildings=buildings
            )
        summaries = {
            slug: made.get(slug, kept.get(slug)) for slug in parameters["cities"]
        }
        summary: dict[str, Any] = {
            "simulated": True,
            "generator": "torchgeo_quake.simulation",
            "version": __version__,
            "simulator_version": SIMULATOR_VERSION,
            "seed": int(seed),
            "scale": float(scale),
            "crs": _CRS,
            "parameters": parameters,
            "gem_source": gem_source,
            "cities": summaries,
        }
        with open(staging / SCENE_FILE, "w", encoding="utf-8") as f:
            json.dump(summary, f, ensure_ascii=False, indent=2)
            f.write("\n")
        kept_entries: dict[str, list[str]] = {}
        for city in todo:
            target = root_path / city.slug
            aside = staging / f"{city.slug}.replaced"
            kept_entries[city.slug] = _swap_city(target, staging / city.slug, aside)
        os.replace(staging / SCENE_FILE, root_path / SCENE_FILE)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    for slug, names in kept_entries.items():
        if names:
            warnings.warn(
                f"simulate_scene: kept {len(names)} entr"
                f"{'y' if len(names) == 1 else 'ies'} of "
                f"{str(root_path / slug)!r} that the simulator does not write: "
                f"{', '.join(names)} (only {', '.join(CITY_FILES)} were replaced).",
                UserWarning,
                stacklevel=2,
            )
    return summary
