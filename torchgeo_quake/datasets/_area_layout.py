"""Where the inputs of an event are: one folder per area under a data root.

:class:`~torchgeo_quake.datasets.BuildingDamage` reads ``root/<area>/`` folders
holding a SAR image, footprints, a damage reference and optional DSM and GEM
exposure, each under one of several accepted file names. These functions check
the areas asked for, find the area folders of a root, the files of an area and
those missing, and word the error that lists missing inputs and how to fix them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

#: The layout of a data root, as error messages describe it.
_LAYOUT = "root/<area>/{sar.tif, buildings.gpkg, destroyed.geojson, dsm.tif, gem.csv}"


def _first(folder: Path, names: Sequence[str]) -> Path | None:
    """The first of *names* that exists in *folder*.

    Args:
        folder: a folder
        names: file names, in order of preference

    Returns:
        Its path, or None.
    """
    for name in names:
        path = folder / name
        if path.exists():
            return path
    return None


def _chosen_areas(
    areas: Sequence[str] | None, known: Sequence[str] | None, owner: str
) -> tuple[str, ...] | None:
    """The areas asked for, checked against the areas a dataset knows.

    Args:
        areas: the areas asked for, or None for all
        known: the areas the dataset knows, or None for any
        owner: name of the dataset class, in errors

    Returns:
        Area names, in order: *areas*, else *known*; None when neither is
        given (the areas are then the folders found under the root).

    Raises:
        ValueError: If an area is not one of *known*, or none is given.
    """
    if areas is not None:
        chosen = tuple(areas)
        if known is not None:
            unknown = sorted(set(chosen) - set(known))
            if unknown:
                raise ValueError(f"unknown areas {unknown}; choose among {list(known)}")
        if not chosen:
            raise ValueError(f"{owner}: no area given")
        return chosen
    if known is not None:
        return tuple(known)
    return None


def _area_folders(
    root: Path, sar_files: Sequence[str], footprint_files: Sequence[str], owner: str
) -> tuple[str, ...]:
    """The area folders of a data root.

    Args:
        root: the data root
        sar_files: accepted names of the SAR image
        footprint_files: accepted names of the footprint file
        owner: name of the dataset class, in errors

    Returns:
        Names of the sub-folders of *root* (hidden ones aside) that hold a SAR
        image and footprints, sorted.

    Raises:
        FileNotFoundError: If *root* does not exist or holds no area.
    """
    if not root.is_dir():
        raise FileNotFoundError(
            f"{owner}: the data root {str(root)!r} does not exist; "
            "lay out one folder per area as root/<area>/{sar.tif, "
            "buildings.gpkg, destroyed.geojson, [dsm.tif], [gem.csv]}."
        )
    found = tuple(
        sorted(
            path.name
            for path in root.iterdir()
            if path.is_dir()
            and not path.name.startswith(".")
            and _first(path, sar_files) is not None
            and _first(path, footprint_files) is not None
        )
    )
    if not found:
        sar = " or ".join(sar_files)
        raise FileNotFoundError(
            f"{owner}: no area folder under {str(root)!r}: an area is "
            f"a sub-folder holding a SAR image ({sar}) and footprints "
            f"({', '.join(footprint_files)})."
        )
    return found


def _input_paths(
    folder: Path,
    files: Mapping[str, str],
    options: Mapping[str, Sequence[str]],
    label_field: str | None,
) -> dict[str, Path | None]:
    """Paths of the inputs of one area.

    Args:
        folder: the area folder
        files: default file name of every input
        options: accepted file names of some inputs, in order of preference
        label_field: footprint column of the labels, or None to read a damage
            reference

    Returns:
        Path per input of *files*: the first accepted file found, else the
        default name (which does not exist); ``damage`` is None with
        *label_field*.
    """
    found: dict[str, Path | None] = {
        name: folder / filename for name, filename in files.items()
    }
    for name, names in options.items():
        path = _first(folder, names)
        if path is not None:
            found[name] = path
    if label_field is not None:
        found["damage"] = None
    return found


def _missing_inputs(
    areas: Sequence[str],
    paths_of: Callable[[str], Mapping[str, Path | None]],
    needed: set[str],
) -> dict[str, list[str]]:
    """Inputs the areas need but lack.

    Args:
        areas: area names
        paths_of: path of every input of an area (None for an input not used)
        needed: the inputs needed

    Returns:
        Missing files per input name; inputs with nothing missing are absent.
    """
    missing: dict[str, list[str]] = {}
    for area in areas:
        paths = paths_of(area)
        for name in sorted(needed):
            path = paths[name]
            if path is not None and not path.exists():
                missing.setdefault(name, []).append(str(path))
    return missing


def _missing_message(
    owner: str,
    root: Path,
    missing: Mapping[str, list[str]],
    reference_files: Sequence[str],
    hint: str,
) -> str:
    """The error listing missing inputs and the ways to fix it.

    Args:
        owner: name of the dataset class
        root: the data root
        missing: missing files per input name
        reference_files: accepted names of the damage reference
        hint: ways to fix it that the dataset adds (starting with ``", "``)

    Returns:
        The message.
    """
    files = [path for paths in missing.values() for path in paths]
    optional = [m for m in ("dsm", "gem") if m in missing]
    hints = []
    if optional:
        hints.append(
            f"drop the missing modalities ({', '.join(optional)}) from `modalities`"
        )
    if "damage" in missing:
        hints.append(
            "add a damage reference ("
            + ", ".join(reference_files)
            + ") or name the footprints' label column with `label_field`"
        )
    return (
        f"{owner}: {len(files)} input file(s) missing under "
        f"{root}:\n  "
        + "\n  ".join(files)
        + f"\nLay out each area as {_LAYOUT}"
        + hint
        + (", or " if hints else "")
        + ", or ".join(hints)
        + "."
    )
