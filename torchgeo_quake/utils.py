"""Small helpers shared across the package: files, ranks, quiet Lightning.

Each helper has one home here so that the datasets, the protocols and the
mapping command behave the same way.

.. versionadded:: 0.2
"""

from __future__ import annotations

import contextlib
import logging
import os
import warnings
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

__all__ = [
    "atomic_write",
    "atomic_write_text",
    "experiment_config",
    "is_global_zero",
    "plain_warnings",
    "quiet_lightning",
    "under_root_dir",
]

#: Exit status of a command or run stopped by SIGTERM (a job scheduler's time
#: limit, ``kill``): 128 + 15, as a shell reports it. Lightning's own
#: ``SIGTERMException`` exits with 0.
SIGTERM_EXIT_STATUS = 143

#: Lightning messages that say nothing actionable in this package's runs.
LIGHTNING_NOISE: tuple[str, ...] = (
    ".*does not have many workers.*",
    ".*LeafSpec.*",
)


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike[str], mode: str = "wb") -> Iterator[IO[Any]]:
    """Write a file atomically: a hidden temporary file beside it, then a rename.

    Readers never see a half-written file; if the block raises, the temporary
    file is removed and *path* is left as it was.

    Args:
        path: destination file (its folder is created when missing)
        mode: ``"wb"`` (binary) or ``"w"`` (text, UTF-8)

    Yields:
        The open temporary file.

    Raises:
        ValueError: If *mode* is neither ``"wb"`` nor ``"w"``.
        OSError: If the folder or file cannot be written.

    .. versionadded:: 0.2
    """
    if mode not in ("wb", "w"):
        raise ValueError(f"mode must be 'wb' or 'w', got {mode!r}")
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        encoding = "utf-8" if mode == "w" else None
        with open(tmp, mode, encoding=encoding) as handle:
            yield handle
        os.replace(tmp, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write a text file atomically (UTF-8).

    Args:
        path: destination file
        text: its content

    .. versionadded:: 0.2
    """
    with atomic_write(path, "w") as handle:
        handle.write(text)


def is_global_zero() -> bool:
    """Whether this process is rank 0 of a (possibly distributed) run.

    Lightning's launchers give every process its rank through the environment
    before the package runs, and its ``rank_zero_only.rank`` reads it; the node
    rank of a multi-node run is checked too.

    Returns:
        True on rank 0 or without distributed training.

    .. versionadded:: 0.2
    """
    from lightning.pytorch.utilities import rank_zero_only

    if int(getattr(rank_zero_only, "rank", 0)) != 0:
        return False
    return os.environ.get("NODE_RANK", "0") in ("", "0")


#: Folder of the experiment configurations installed with the package, a copy
#: of the repository's ``experiments/`` (a test keeps them equal).
EXPERIMENTS_DIR = Path(__file__).resolve().parent / "experiments"


def experiment_config(name: str | os.PathLike[str]) -> Path:
    """An experiment configuration installed with the package.

    The files of the repository's ``experiments/`` folder (``sar_ftp``,
    ``sar_ftp_dsm``, ``all_inputs``, ``own_event``) are installed with the
    package, so that they can be found from any folder, e.g.
    ``torchgeo fit --config $(python -c "from torchgeo_quake.utils import
    experiment_config; print(experiment_config('sar_ftp'))")``.

    Args:
        name: the configuration's name, with or without ``.yaml`` and the
            ``experiments/`` folder (``"sar_ftp"``, ``"experiments/sar_ftp.yaml"``)

    Returns:
        The installed file.

    Raises:
        FileNotFoundError: If no configuration of that name is installed; the
            message lists those that are.

    .. versionadded:: 0.2
    """
    given = Path(name)
    stem = given.name.removesuffix(".yaml")
    file = EXPERIMENTS_DIR / f"{stem}.yaml"
    if given.parent not in (Path("."), Path("experiments")) or not file.is_file():
        names = sorted(p.stem for p in EXPERIMENTS_DIR.glob("*.yaml"))
        raise FileNotFoundError(
            f"no experiment configuration {str(name)!r} is installed with "
            f"torchgeo_quake; installed: {', '.join(names)} (in {EXPERIMENTS_DIR})"
        )
    return file


def under_root_dir(path: str | os.PathLike[str], trainer: Any) -> Path:
    """An output path of a run: relative paths are under its ``default_root_dir``.

    The rule of every output of a run (checkpoints, logs, predictions, splits),
    so that ``--trainer.default_root_dir`` moves them all.

    Args:
        path: the path as configured
        trainer: the Lightning trainer of the run, or None

    Returns:
        *path* when it is absolute or there is no trainer, else *path* below the
        trainer's ``default_root_dir`` (the current folder when it is not set).

    .. versionadded:: 0.2
    """
    given = Path(path).expanduser()
    if given.is_absolute() or trainer is None:
        return given
    return Path(trainer.default_root_dir) / given


@contextlib.contextmanager
def plain_warnings(prefix: str = "warning") -> Iterator[None]:
    """Show warnings as one-line messages while the block runs.

    Python prints a warning with the file, line and source line that raised
    it, which tells a user of a command nothing. Inside the block, a
    :class:`UserWarning` prints as ``<prefix>: <message>``; other warnings keep
    Python's format without the source line. On a terminal the line a progress
    bar is drawn on is cleared first, so the message does not run into it (the
    bar is redrawn below at its next step). Only the format changes
    (``warnings.formatwarning``): filters and the recording of warnings (e.g.
    by ``warnings.catch_warnings(record=True)`` or pytest) are untouched. Meant
    for command-line entry points; the previous format is restored on exit.

    Args:
        prefix: text before the message, e.g. ``"torchgeo-quake map: warning"``

    Yields:
        Nothing.

    .. versionadded:: 0.2
    """
    import sys

    def format_plain(
        message: Warning | str,
        category: type[Warning],
        filename: str,
        lineno: int,
        line: str | None = None,
    ) -> str:
        if issubclass(category, UserWarning):
            text = f"{prefix}: {message}\n"
        else:
            text = before(message, category, filename, lineno, "")
        clear = "\r\x1b[K" if sys.stderr.isatty() else ""
        return clear + text

    before = warnings.formatwarning
    warnings.formatwarning = format_plain
    try:
        yield
    finally:
        warnings.formatwarning = before


@contextlib.contextmanager
def quiet_lightning(patterns: Iterable[str] = ()) -> Iterator[None]:
    """Silence Lightning's informational logging and known harmless warnings.

    Args:
        patterns: warning messages (regular expressions) to ignore besides
            :data:`LIGHTNING_NOISE`

    Yields:
        Nothing.

    .. versionadded:: 0.2
    """
    loggers = [logging.getLogger(n) for n in ("lightning.pytorch", "lightning.fabric")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            for pattern in (*LIGHTNING_NOISE, *patterns):
                warnings.filterwarnings("ignore", message=pattern)
            yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)
