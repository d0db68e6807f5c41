"""Staging of a map's outputs: all of them into place, or none (private helpers).

All files are written into a temporary folder beside the output folder
(:func:`staging_folder`) and moved into place only when everything succeeded
(:func:`commit`): an error or an interruption leaves nothing half-written
behind, and results that are replaced (``overwrite=True``) are all replaced
or, if anything fails, all kept.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path


def check_output(out: Path, overwrite: bool, files: Sequence[str]) -> None:
    """Refuse to replace results unless asked to.

    Args:
        out: the output folder
        overwrite: whether existing results may be replaced
        files: names of the result files

    Raises:
        FileExistsError: If *out* is a file, or holds results and *overwrite*
            is False.
    """
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"output {str(out)!r} exists and is not a folder")
    existing = [name for name in files if (out / name).exists()]
    if existing and not overwrite:
        raise FileExistsError(
            f"output folder {str(out)!r} already holds results "
            f"({', '.join(existing)}); pass --overwrite (overwrite=True) to "
            "replace them, or choose another folder."
        )


def existing_ancestor(path: Path) -> Path:
    """The nearest folder above *path* that exists.

    Args:
        path: a path

    Returns:
        The folder.
    """
    parent = path.resolve().parent
    while not parent.exists():
        parent = parent.parent
    return parent


@contextlib.contextmanager
def staging_folder(out: Path) -> Iterator[Path]:
    """A temporary folder beside the output folder, removed if the block fails.

    It is hidden (``.<out>.partial-*``) in the nearest existing folder above
    *out*, so that its files can be renamed into place, and has the
    permissions of a new folder (not the private ones of :func:`tempfile.mkdtemp`).

    Args:
        out: the output folder

    Yields:
        The staging folder.
    """
    staging = Path(
        tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=existing_ancestor(out))
    )
    umask = os.umask(0)
    os.umask(umask)
    staging.chmod(0o777 & ~umask)  # mkdtemp makes it private; out is not
    try:
        yield staging
    except BaseException:
        discard(staging)
        raise


def discard(staging: Path) -> None:
    """Remove a staging folder and what it holds.

    Args:
        staging: the folder
    """
    shutil.rmtree(staging, ignore_errors=True)


def commit(staging: Path, out: Path, files: Sequence[str], overwrite: bool) -> None:
    """Move finished results into the output folder, checking it again first.

    Args:
        staging: folder holding every file of *files*
        out: output folder
        files: names of the result files
        overwrite: whether existing results may be replaced

    Raises:
        FileExistsError: If results appeared in *out* meanwhile and *overwrite*
            is False.
        OSError: If a move fails (after the rollback).
    """
    check_output(out, overwrite, files)  # nothing appeared meanwhile
    install(staging, out, files)


def _replace(source: Path, target: Path) -> None:
    """Move a file or folder into place (:func:`os.replace`).

    Args:
        source: what to move
        target: where
    """
    os.replace(source, target)


def install(staging: Path, out: Path, files: Sequence[str]) -> None:
    """Move finished results into the output folder, all of them or none.

    A new folder is renamed into place. Into an existing folder (which may
    hold other files, kept), the previous results are first moved aside, then
    the new ones in; if any move fails, the new files are taken out again and
    the previous ones put back, so the folder never holds a mix of both.

    Args:
        staging: folder holding every file of *files*
        out: output folder
        files: names of the result files

    Raises:
        OSError: If a move fails (after the rollback).
    """
    if not out.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
        _replace(staging, out)
        return
    backup = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-old-", dir=out.parent))
    old: list[str] = []
    new: list[str] = []
    try:
        for file in files:
            if (out / file).exists():
                _replace(out / file, backup / file)
                old.append(file)
        for file in files:
            _replace(staging / file, out / file)
            new.append(file)
    except BaseException:
        for file in new:
            with contextlib.suppress(OSError):
                os.replace(out / file, staging / file)
        for file in old:
            with contextlib.suppress(OSError):
                os.replace(backup / file, out / file)
        shutil.rmtree(backup, ignore_errors=True)
        raise
    shutil.rmtree(backup, ignore_errors=True)
    shutil.rmtree(staging, ignore_errors=True)
