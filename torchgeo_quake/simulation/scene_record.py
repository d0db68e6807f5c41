"""The record of a simulated scene (``scene.json``) and the checks built on it.

``ROOT/scene.json`` marks a root as simulated: it holds the parameters that
identify the scene (simulator version, seed, scale, GEM source, cities, the
building count override), a summary of every city and the SHA-256 of every file
the simulator wrote. :func:`~torchgeo_quake.simulation.scene.simulate_scene`
reads it (:func:`read_scene`) to decide whether a root may be completed,
extended or must be refused: the rules are stated in
:mod:`~torchgeo_quake.simulation.scene`, the checks that apply them live here.

Its names were defined in :mod:`~torchgeo_quake.simulation.scene` before,
which still re-exports them.

.. versionadded:: 0.2
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import rasterio
from rasterio.errors import RasterioIOError

from .. import __version__
from .cities import CitySpec
from .gem_tables import DEFAULT_GEM_DIR
from .scenario import DEFAULT_SCENARIO, Scenario

__all__ = [
    "CITY_FILES",
    "OPTIONAL_CITY_FILES",
    "SCENE_FILE",
    "SIMULATOR_VERSION",
    "file_sha256",
    "outdated_reason",
    "read_scene",
    "resolve_gem_source",
    "scene_scenario",
]

#: Version of the simulation model; bump when outputs change for a given seed.
SIMULATOR_VERSION = 3
#: What each simulator version changed, for the outdated-scene message.
_VERSION_CHANGES: dict[int, str] = {
    2: "version 2 made the calibrated scenario the default",
    3: (
        "version 3 added the neighbourhood term to the calibrated damage model, "
        "so that damage clusters as in the real HOTOSM layer (the v0.1 scenario "
        "is unchanged)"
    ),
}
#: First simulator version that records the scenario in ``scene.json``; the
#: ``v0.1`` scenario has been drawn identically by every version since (the
#: v0.1 raster checksums in tests/simulation pin it), so such scenes stay
#: current.
_V01_RECORDED_SINCE = 2
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
#: Files the simulator writes for some scenarios only (``pga.tif``: the
#: ground-motion field of the calibrated scenario).
OPTIONAL_CITY_FILES: tuple[str, ...] = ("pga.tif",)
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
            :func:`~torchgeo_quake.simulation.gem_tables.load_exposure`

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


def _parameters(
    cities: Iterable[CitySpec],
    scale: float,
    seed: int,
    gem_source: str,
    buildings: int | None = None,
    scenario: Scenario = DEFAULT_SCENARIO,
) -> dict[str, Any]:
    """The parameters that identify a simulated scene.

    Args:
        cities: simulated cities
        scale: scene scale
        seed: scene seed
        gem_source: resolved GEM source
        buildings: building count override (recorded only when given)
        scenario: the damage and image model

    Returns:
        Parameter dictionary (stored in ``scene.json``).
    """
    parameters: dict[str, Any] = {
        "simulator_version": SIMULATOR_VERSION,
        "seed": int(seed),
        "scale": float(scale),
        "cities": [c.slug for c in cities],
        "gem_source": gem_source,
        "scenario": scenario.as_dict(),
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
    ignored = {"cities"}
    if _current_v01(scene):
        ignored.add("simulator_version")
    others = {k: v for k, v in stored.items() if k not in ignored}
    wanted = {k: v for k, v in parameters.items() if k not in ignored}
    return others == wanted


def _current_v01(scene: dict[str, Any]) -> bool:
    """Whether *scene* is a recorded ``v0.1`` scene of an older simulator.

    Such a scene is drawn identically by the current simulator (see
    :data:`_V01_RECORDED_SINCE`), so it is neither outdated nor another scene.

    Args:
        scene: the content of ``scene.json``

    Returns:
        True if the scene records scenario ``v0.1`` and a simulator version from
        :data:`_V01_RECORDED_SINCE` up to the current one.
    """
    parameters = scene.get("parameters")
    if not isinstance(parameters, dict):
        return False
    version = parameters.get("simulator_version")
    if not isinstance(version, int):
        return False
    stored = scene_scenario(scene)
    recorded = _V01_RECORDED_SINCE <= version <= SIMULATOR_VERSION
    return recorded and stored is not None and stored.is_v01


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
        simulator_file = entry.name in CITY_FILES + OPTIONAL_CITY_FILES
        if not simulator_file or not entry.is_file():
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


def scene_scenario(scene: dict[str, Any]) -> Scenario | None:
    """The scenario a simulated scene was drawn from.

    Scenes of simulator version 1 (torchgeo_quake 0.1 and 0.2) record no
    scenario: their model is the ``v0.1`` scenario.

    Args:
        scene: the content of ``scene.json``

    Returns:
        The scenario, or None if the record cannot be read (e.g. an unknown
        name written by a newer version).

    .. versionadded:: 0.3
    """
    parameters = scene.get("parameters")
    if not isinstance(parameters, dict):
        return None
    stored = parameters.get("scenario")
    if stored is None:
        if parameters.get("simulator_version") == 1:
            return Scenario(name="v0.1")
        return None
    try:
        return Scenario(**stored)
    except (TypeError, ValueError):
        return None


def outdated_reason(scene: dict[str, Any] | None) -> str | None:
    """Why a simulated scene is outdated, if it is.

    A scene is outdated when it was written by another simulator version (see
    :data:`SIMULATOR_VERSION`). Version-1 scenes (torchgeo_quake 0.1 and 0.2)
    and the ``v0.1`` scenes of version 2 are the ``v0.1`` scenario of the
    current simulator, drawn identically; a version-1 scene records no
    scenario, so it is reported (the default is now the calibrated scenario)
    and read when ``v0.1`` is asked for by name. A ``v0.1`` scene of version 2
    records its scenario and is current. Calibrated scenes of version 2 lack
    the neighbourhood term of the damage model.

    Args:
        scene: the content of ``scene.json`` (None if absent)

    Returns:
        A sentence naming the stored and current versions and scenarios and
        the way out, or None if *scene* is current (or not simulated).

    .. versionadded:: 0.3
    """
    if scene is None or scene.get("simulated") is not True:
        return None
    parameters = scene.get("parameters")
    version = (
        parameters.get("simulator_version") if isinstance(parameters, dict) else None
    )
    if version == SIMULATOR_VERSION or _current_v01(scene):
        return None
    stored = scene_scenario(scene)
    what = f"scenario {stored.name}" if stored is not None else "an unknown scenario"
    changes = [
        text
        for number, text in _VERSION_CHANGES.items()
        if isinstance(version, int) and version < number <= SIMULATOR_VERSION
    ]
    since = f" ({'; '.join(changes)})" if changes else ""
    return (
        f"it was simulated by simulator version {version} ({what}, torchgeo_quake "
        f"{scene.get('version', '?')}); the current simulator is version "
        f"{SIMULATOR_VERSION}{since}, whose default is the calibrated scenario. "
        "Nothing was changed. Simulate the current scene into a new root, or "
        "replace this one with `torchgeo-quake simulate ROOT --overwrite` (only "
        "the simulator's own files are replaced); to keep the model of 0.1/0.2, "
        "simulate with `--scenario v0.1`"
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
    outdated = outdated_reason(scene)
    if outdated is not None:
        raise FileExistsError(f"{str(root)!r} holds an outdated scene: {outdated}.")
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


def _scene_summary(
    parameters: dict[str, Any],
    gem_source: str,
    scale: float,
    seed: int,
    cities: dict[str, Any],
) -> dict[str, Any]:
    """The content of ``scene.json``.

    Args:
        parameters: the parameters of the scene (see :func:`_parameters`)
        gem_source: resolved GEM source
        scale: scene scale
        seed: scene seed
        cities: summary of every city of the scene, by slug

    Returns:
        The JSON-serialisable summary.
    """
    return {
        "simulated": True,
        "generator": "torchgeo_quake.simulation",
        "version": __version__,
        "simulator_version": SIMULATOR_VERSION,
        "seed": int(seed),
        "scale": float(scale),
        "crs": _CRS,
        "parameters": parameters,
        "gem_source": gem_source,
        "cities": cities,
    }


def _write_scene_file(path: Path, summary: dict[str, Any]) -> None:
    """Write a scene summary as indented UTF-8 JSON.

    Args:
        path: the file
        summary: the summary
    """
    with open(path, "w", encoding="utf-8") as f:
        json.dump(summary, f, ensure_ascii=False, indent=2)
        f.write("\n")
