"""Small helpers shared across the package: atomic writes, ranks, quiet Lightning.

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

__all__ = ["atomic_write", "atomic_write_text", "is_global_zero", "quiet_lightning"]

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
