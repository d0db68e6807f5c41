"""Staging of a map's outputs: all of them into place, or none (private helpers).

One run at a time writes to an output folder: a lock file beside it
(:func:`output_lock`, ``.<out>.lock`` holding the pid, an exclusive
:func:`fcntl.flock` released at exit, even a hard one) is held from the check
that the folder holds no results to the final swap. Runs killed without a
chance to clean up leave a lock file and hidden staging folders: the next run
takes the lock over and removes them (:func:`clean_stale`), saying so.

All files are written into a hidden staging folder beside the output folder
(:func:`staging_folder`). When everything succeeded, the staging folder becomes
the whole new output folder (:func:`commit`): the other files of an existing
output folder are hard-linked into it (copied where links are not possible),
the previous folder is renamed aside as a backup, the new one renamed into
place (:func:`os.replace`), and the backup is deleted only once the swap
succeeded. An error or an interruption leaves nothing half-written behind;
results that are replaced (``overwrite=True``) are all replaced or, if anything
fails, all kept; and a hard crash during the swap leaves the previous folder as
a backup, which the next run puts back.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import re
import secrets
import shutil
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path


class OutputBusyError(OSError):
    """Another run is writing to the same output folder.

    .. versionadded:: 0.2
    """


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


def _writable(folder: Path) -> bool:
    """Whether files can be created and renamed in a folder.

    Args:
        folder: an existing folder

    Returns:
        True if the folder is writable and searchable.
    """
    return os.access(folder, os.W_OK | os.X_OK)


def check_writable(out: Path) -> None:
    """Check that the map can be staged and swapped in beside *out*.

    The staging folder, the lock and the swap of the output folder all happen
    in the folder that holds *out* (or would, once created): it must be
    writable, even when *out* itself is.

    Args:
        out: the output folder (absolute)

    Raises:
        PermissionError: If that folder (or the nearest existing one above it,
            where the missing ones would be created) is not writable.
    """
    folder = existing_ancestor(out)
    if _writable(folder):
        return
    where = "holds" if folder == out.parent else "would hold"
    raise PermissionError(
        errno.EACCES,
        f"cannot write in {str(folder)!r}, which {where} the output folder "
        f"{str(out)!r}: the map is written into a staging folder beside the "
        "output folder and swapped in whole when it is complete. Choose an "
        "--out inside a folder you can write to",
    )


def _created_parents(folder: Path) -> list[Path]:
    """Create a folder and its missing parents.

    Args:
        folder: the folder

    Returns:
        The folders created, deepest first.
    """
    missing = []
    current = folder
    while not current.exists():
        missing.append(current)
        current = current.parent
    folder.mkdir(parents=True, exist_ok=True)
    return missing


def _remove_if_empty(folders: Sequence[Path]) -> None:
    """Remove folders that are empty (deepest first), ignoring the others.

    Args:
        folders: the folders, deepest first
    """
    for folder in folders:
        with contextlib.suppress(OSError):
            folder.rmdir()


def _read_pid(fd: int) -> int | None:
    """The pid written in a lock file.

    Args:
        fd: the open lock file

    Returns:
        The pid, or None if the file holds none.
    """
    os.lseek(fd, 0, os.SEEK_SET)
    text = os.read(fd, 64).decode("ascii", "replace").strip()
    return int(text) if text.isdigit() else None


def lock_path(out: Path) -> Path:
    """The lock file of an output folder.

    Args:
        out: the output folder (absolute)

    Returns:
        ``.<name>.lock`` beside it.
    """
    return out.parent / f".{out.name}.lock"


def _acquire(path: Path, out: Path, say: Callable[[str], None]) -> int:
    """Take the exclusive lock of an output folder.

    Args:
        path: the lock file
        out: the output folder (for messages)
        say: function printing progress messages

    Returns:
        The open, locked lock file, holding this process's pid.

    Raises:
        OutputBusyError: If another live process holds the lock.
    """
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_pid(fd)
            os.close(fd)
            raise OutputBusyError(
                errno.EBUSY,
                f"another `torchgeo-quake map` run (pid {holder or 'unknown'}) is "
                f"writing to {str(out)!r} (lock file {str(path)!r}); wait for it "
                "to finish, or choose another --out",
            ) from None
        except BaseException:
            os.close(fd)
            raise
        # The lock file may have been removed (and made again) by the run that
        # held it meanwhile: then this lock is on a file nobody else sees.
        try:
            same = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    previous = _read_pid(fd)
    if previous is not None and previous != os.getpid():
        say(
            f"took over the lock {path} of an earlier run (pid {previous}) that "
            "ended without releasing it"
        )
    os.ftruncate(fd, 0)
    os.lseek(fd, 0, os.SEEK_SET)
    os.write(fd, f"{os.getpid()}\n".encode())
    return fd


@contextlib.contextmanager
def output_lock(out: Path, say: Callable[[str], None]) -> Iterator[None]:
    """Hold the exclusive lock of an output folder while a map is made.

    The lock file ``.<out>.lock`` is made beside *out* (its missing parent
    folders are created, and removed again at exit if they are still empty)
    and removed at exit. A lock file left by a run that ended without
    releasing it (killed) is taken over, with a message.

    Args:
        out: the output folder (absolute)
        say: function printing progress messages

    Yields:
        Nothing.

    Raises:
        OutputBusyError: If another run holds the lock.
    """
    created = _created_parents(out.parent)
    path = lock_path(out)
    try:
        fd = _acquire(path, out, say)
    except BaseException:
        _remove_if_empty(created)
        raise
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            if os.stat(path).st_ino == os.fstat(fd).st_ino:
                path.unlink()
        os.close(fd)
        _remove_if_empty(created)


def _staging_pattern(out: Path) -> re.Pattern[str]:
    """The names of the staging and backup folders of an output folder.

    Args:
        out: the output folder

    Returns:
        A pattern with the groups ``old`` (a backup) and ``pid`` (None for the
        names of older versions, which held no pid).
    """
    return re.compile(
        rf"^\.{re.escape(out.name)}\.partial-(?P<old>old-)?(?:(?P<pid>\d+)-)?"
    )


def _alive(pid: int) -> bool:
    """Whether a process runs.

    Args:
        pid: its id

    Returns:
        True if it runs (or exists under another user).
    """
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def clean_stale(out: Path, files: Sequence[str], say: Callable[[str], None]) -> None:
    """Remove what runs killed without a chance to clean up left beside *out*.

    Called with the lock held (:func:`output_lock`): no other run writes to
    *out*, so staging folders of processes that are not running any more are
    stale. A backup of the previous results (a run killed during the swap) is
    put back if the output folder is missing (or lacks some results: then its
    results are), and the other files it holds that the output folder lacks
    are moved back into it.

    Args:
        out: the output folder (absolute)
        files: names of the result files
        say: function printing progress messages
    """
    pattern = _staging_pattern(out)
    if not out.parent.is_dir():
        return
    for entry in sorted(out.parent.iterdir()):
        match = pattern.match(entry.name)
        if match is None or not entry.is_dir() or entry.is_symlink():
            continue
        pid = match.group("pid")
        if pid is not None and _alive(int(pid)):
            continue
        if match.group("old"):
            if not out.exists():
                os.replace(entry, out)
                say(
                    f"put back the previous results of {out} from {entry.name}, "
                    "left by a run killed while replacing them"
                )
                continue
            if not all((out / file).exists() for file in files):
                # Killed while moving result files one by one: the previous
                # results, all in the backup, are put back whole.
                for file in files:
                    if (entry / file).exists():
                        os.replace(entry / file, out / file)
                say(f"put back the previous results of {out} from {entry.name}")
            _merge_back(entry, out, files)
        shutil.rmtree(entry, ignore_errors=True)
        say(f"removed {entry.name}, left in {out.parent} by a run that was killed")


def _new_name(out: Path, kind: str) -> Path:
    """A unique hidden name beside *out* for a staging or backup folder.

    Args:
        out: the output folder
        kind: ``"partial"`` (staging) or ``"partial-old"`` (backup)

    Returns:
        The path (not created).
    """
    return out.parent / f".{out.name}.{kind}-{os.getpid()}-{secrets.token_hex(4)}"


@contextlib.contextmanager
def staging_folder(out: Path) -> Iterator[Path]:
    """A temporary folder beside the output folder, removed if the block fails.

    It is hidden (``.<out>.partial-<pid>-*``) in the folder of *out*, so that
    it can be renamed into place, and has the permissions of a new folder.

    Args:
        out: the output folder (its parent exists)

    Yields:
        The staging folder.
    """
    staging = _new_name(out, "partial")
    staging.mkdir()
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


def _replace(source: Path, target: Path) -> None:
    """Move a file or folder into place (:func:`os.replace`).

    Args:
        source: what to move
        target: where
    """
    os.replace(source, target)


def _mirror(source: Path, target: Path, skip: Sequence[str]) -> None:
    """Hard-link the files of a folder into another one, recursively.

    Folders are made again, symbolic links copied as links, and files that
    cannot be linked (another file system, no hard links) are copied.

    Args:
        source: the folder whose content is mirrored
        target: an existing folder receiving it
        skip: names at the top level of *source* left out
    """
    for entry in os.scandir(source):
        if entry.name in skip:
            continue
        destination = target / entry.name
        if entry.is_symlink():
            os.symlink(os.readlink(entry.path), destination)
        elif entry.is_dir():
            destination.mkdir()
            _mirror(Path(entry.path), destination, ())
            shutil.copystat(entry.path, destination)
        elif entry.is_file():
            try:
                os.link(entry.path, destination)
            except OSError:
                shutil.copy2(entry.path, destination)
        # Anything else (a socket, a pipe) is moved back by _merge_back.


def _merge_back(backup: Path, out: Path, skip: Sequence[str]) -> None:
    """Move what a backup holds and *out* lacks into *out*, recursively.

    Args:
        backup: the previous output folder
        out: the new one
        skip: names at the top level of *backup* left out (the old results)
    """
    for entry in os.scandir(backup):
        if entry.name in skip:
            continue
        destination = out / entry.name
        if entry.is_dir(follow_symlinks=False) and destination.is_dir():
            if not destination.is_symlink():
                _merge_back(Path(entry.path), destination, ())
        elif not os.path.lexists(destination):
            with contextlib.suppress(OSError):
                os.replace(entry.path, destination)


def commit(staging: Path, out: Path, files: Sequence[str], overwrite: bool) -> None:
    """Install finished results as the output folder, checking it again first.

    Args:
        staging: folder holding every file of *files*
        out: output folder
        files: names of the result files
        overwrite: whether existing results may be replaced

    Raises:
        FileExistsError: If results appeared in *out* meanwhile and *overwrite*
            is False.
        OSError: If the swap fails (after the rollback).
    """
    check_output(out, overwrite, files)  # nothing appeared meanwhile
    install(staging, out, files)


def install(staging: Path, out: Path, files: Sequence[str]) -> None:
    """Install finished results as the output folder, all of them or none.

    A new output folder is the staging folder renamed into place. An existing
    one (which may hold other files, kept) is swapped whole: its other files
    are hard-linked into the staging folder, it is renamed aside as a backup,
    the staging folder is renamed into place, and the backup is deleted only
    then. If the swap fails, the backup is put back. A hard crash between the
    two renames leaves the backup, which the next run puts back
    (:func:`clean_stale`). Where the output folder cannot be renamed (a mount
    point) or holds the working folder of this process, the result files are
    moved one by one, with a rollback. Result files of *files* that *staging*
    lacks (optional results, such as an audit, of an earlier run) are removed
    from *out*, not kept.

    Args:
        staging: folder holding the result files
        out: output folder
        files: names of the result files

    Raises:
        OSError: If a move fails (after the rollback).
    """
    if not out.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
        _replace(staging, out)
        return
    if _holds_cwd(out):  # renamed aside, it would leave the process in the backup
        _install_files(staging, out, files)
        return
    _mirror(out, staging, files)
    shutil.copymode(out, staging)
    backup = _new_name(out, "partial-old")
    try:
        _replace(out, backup)
    except OSError as err:
        if err.errno not in (errno.EBUSY, errno.EXDEV, errno.EPERM, errno.EACCES):
            raise
        _install_files(staging, out, files)
        return
    try:
        _replace(staging, out)
    except BaseException:
        os.replace(backup, out)
        raise
    _merge_back(backup, out, files)  # files made in the old folder meanwhile
    shutil.rmtree(backup, ignore_errors=True)


def _holds_cwd(folder: Path) -> bool:
    """Whether the working folder of this process is *folder* or inside it.

    Args:
        folder: an absolute, resolved path

    Returns:
        The answer (False when the working folder is gone).
    """
    try:
        cwd = Path.cwd().resolve()
    except OSError:
        return False
    return cwd == folder or folder in cwd.parents


def _install_files(staging: Path, out: Path, files: Sequence[str]) -> None:
    """Move result files into an existing folder one by one, all or none.

    The previous results are first moved aside, then the new ones in; if any
    move fails, the new files are taken out again and the previous ones put
    back.

    Args:
        staging: folder holding every file of *files*
        out: output folder
        files: names of the result files

    Raises:
        OSError: If a move fails (after the rollback).
    """
    backup = _new_name(out, "partial-old")
    backup.mkdir()
    old: list[str] = []
    new: list[str] = []
    try:
        for file in files:
            if (out / file).exists():
                _replace(out / file, backup / file)
                old.append(file)
        for file in files:
            if (staging / file).exists():  # optional results (an audit)
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
