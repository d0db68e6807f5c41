"""The on-disk cache of extracted building samples.

:class:`~torchgeo_quake.datasets.BuildingDamage` extracts its patches once and
keeps them in ``samples-<key>.npz``, the key a hash of everything the samples
depend on: parameters, versions, the constructor defaults of the data-layer
classes and the size, modification time and content hash
(:func:`file_fingerprint`) of every input file. This module is that cache:
fingerprinting the inputs, keying, reading and atomically writing a cache file,
and deleting the files of a data root that are out of date. What the samples
depend on, and how they are made, is the dataset's business.

.. versionadded:: 0.2
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import json
import os
import re
import warnings
import zipfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..utils import atomic_write

__all__ = ["CACHE_FORMAT", "HASH_BYTES", "file_fingerprint"]

#: Version of the on-disk sample-cache format (bump when its layout changes).
CACHE_FORMAT = 4
#: Bytes hashed at each end of an input file for the cache key.
HASH_BYTES = 1 << 20
_CACHE_NAME = re.compile(r"^samples-[0-9a-f]{16}\.npz$")
#: Errors of reading a cache file that is missing a part, truncated or corrupt.
_UNREADABLE = (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile)


def file_fingerprint(path: str | os.PathLike[str]) -> str:
    """Cheap content hash of a file, for the sample-cache key.

    BLAKE2b of the file size and of the first and last :data:`HASH_BYTES`
    (1 MiB) of the file, i.e. the whole content of files up to 2 MiB. It reads
    at most 2 MiB whatever the size, so multi-GB SAR images cost milliseconds;
    an edit that keeps size and modification time and only touches the middle
    of a file larger than 2 MiB is not seen.

    Args:
        path: the file

    Returns:
        Hex digest (32 characters).

    .. versionadded:: 0.2
    """
    digest = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        digest.update(str(size).encode())
        digest.update(f.read(HASH_BYTES))
        if size > HASH_BYTES:
            f.seek(max(HASH_BYTES, size - HASH_BYTES))
            digest.update(f.read(HASH_BYTES))
    return digest.hexdigest()


def _defaults(cls: Callable[..., Any]) -> dict[str, str]:
    """Constructor defaults of a data-layer class, as stable strings.

    Args:
        cls: the class

    Returns:
        Mapping of parameter name to the ``repr`` of its default (the type name
        for defaults whose ``repr`` is not stable across processes).
    """
    simple = (bool, int, float, str, tuple, list, type(None))
    out = {}
    for name, param in inspect.signature(cls).parameters.items():
        if param.default is inspect.Parameter.empty:
            continue
        default = param.default
        stable = isinstance(default, simple)
        out[name] = repr(default) if stable else type(default).__name__
    return out


def _file_stats(
    files_of: Callable[[str], Mapping[str, Path | None]], areas: Sequence[str]
) -> dict[str, list[int | str]]:
    """Size, modification time and content hash of the input files of *areas*.

    Args:
        files_of: path of every input of an area (None for an input not used)
        areas: area names

    Returns:
        ``{"<area>/<input>": [size, mtime_ns, fingerprint]}`` for the files
        that exist (:func:`file_fingerprint`; ``""`` for a folder).
    """
    stats: dict[str, list[int | str]] = {}
    for area in areas:
        for name, path in files_of(area).items():
            if path is not None and path.exists():
                stat = path.stat()
                fingerprint = file_fingerprint(path) if path.is_file() else ""
                stats[f"{area}/{name}"] = [
                    stat.st_size,
                    stat.st_mtime_ns,
                    fingerprint,
                ]
    return stats


def _cache_key(state: dict[str, Any]) -> str:
    """Hash of a cache state.

    Args:
        state: everything the samples depend on (JSON-serialisable)

    Returns:
        Hex digest (16 characters).
    """
    digest = hashlib.sha256(json.dumps(state, sort_keys=True).encode())
    return digest.hexdigest()[:16]


def _load_samples(
    path: Path, owner: str, stacklevel: int
) -> dict[str, np.ndarray] | None:
    """Load a cache file if it exists and is readable.

    Args:
        path: the cache file
        owner: name of the dataset class, in warnings
        stacklevel: stack level of the warning, as in :func:`warnings.warn`

    Returns:
        Its arrays, or None (missing, or unreadable: warned, then rebuilt).
    """
    if not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = dict(npz)
        if "meta_report" not in arrays:
            raise KeyError("meta_report")
    except _UNREADABLE as err:
        warnings.warn(
            f"{owner}: the sample cache {str(path)!r} is unreadable "
            f"({err}); extracting the samples again.",
            stacklevel=stacklevel,
        )
        return None
    return arrays


def _save_samples(
    path: Path,
    arrays: dict[str, np.ndarray],
    meta: dict[str, Any],
    owner: str,
    stacklevel: int,
) -> None:
    """Write the samples to a cache file, atomically.

    Args:
        path: the cache file
        arrays: the samples
        meta: the data root and cache state, stored with the samples for
            pruning (``meta_cache``)
        owner: name of the dataset class, in warnings
        stacklevel: stack level of the warning, as in :func:`warnings.warn`
    """
    try:
        with atomic_write(path) as f:
            meta_array = np.array(json.dumps(meta))
            np.savez(f, allow_pickle=False, meta_cache=meta_array, **arrays)
    except OSError as err:
        warnings.warn(
            f"{owner}: cannot write the sample cache in "
            f"{str(path.parent)!r} ({err}); the samples will be extracted again "
            "next time. Pass cache_dir= a writable folder, or cache=False.",
            stacklevel=stacklevel,
        )


def _prune_samples(
    folder: Path,
    root: Path,
    keep: Path,
    versions: Mapping[str, Any],
    file_stats: Callable[[Sequence[str]], dict[str, list[int | str]]],
    verbose: bool,
) -> None:
    """Delete cache files of a data root whose inputs or versions are stale.

    A file is stale when it was written for the same root by another cache
    format, package or simulator version, or when one of the input files it
    was built from has changed size, modification time or content hash
    since. Cache files of other parameters (areas, modalities, ...) with
    current inputs are kept. Files written before the cache recorded its root
    (format 1) are stale when they sit in ``root/.cache``.

    Args:
        folder: the cache folder
        root: the data root
        keep: the cache file in use
        versions: the versions of the current cache state
        file_stats: the current :func:`_file_stats` of some areas
        verbose: if True, print the files removed
    """
    if not folder.is_dir():
        return
    resolved = str(root.resolve())
    default = folder.resolve() == (root / ".cache").resolve()
    for path in folder.iterdir():
        if path == keep or not _CACHE_NAME.match(path.name):
            continue
        try:
            with np.load(path, allow_pickle=False) as npz:
                found = "meta_cache" in npz.files
                meta = json.loads(str(npz["meta_cache"])) if found else None
        except _UNREADABLE:
            meta = None
        if meta is None:
            stale = default
        elif meta.get("root") != resolved:
            continue
        else:
            old = meta.get("state", {})
            outdated = any(old.get(k) != v for k, v in versions.items())
            changed = old.get("files") != file_stats(old.get("areas", []))
            stale = outdated or changed
        if stale:
            with contextlib.suppress(OSError):
                path.unlink()
                if verbose:
                    print(f"Removed stale sample cache {path}")
