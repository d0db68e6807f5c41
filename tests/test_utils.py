from __future__ import annotations

import logging
import warnings
from pathlib import Path

import pytest

from torchgeo_quake.utils import (
    atomic_write,
    atomic_write_text,
    is_global_zero,
    quiet_lightning,
)


def test_atomic_write_text_creates_folders_and_leaves_no_temporary(
    tmp_path: Path,
) -> None:
    target = tmp_path / "a" / "b.json"
    atomic_write_text(target, "first")
    atomic_write_text(target, "second")
    assert target.read_text(encoding="utf-8") == "second"
    assert [p.name for p in target.parent.iterdir()] == ["b.json"]


def test_atomic_write_keeps_the_old_file_when_the_block_fails(tmp_path: Path) -> None:
    target = tmp_path / "data.bin"
    target.write_bytes(b"old")

    def fail() -> None:
        with atomic_write(target) as handle:
            handle.write(b"half")
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        fail()
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["data.bin"]


def test_atomic_write_rejects_other_modes(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="mode"), atomic_write(tmp_path / "x", "a"):
        pass


def test_is_global_zero_follows_lightning_and_node_rank(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from lightning.pytorch.utilities import rank_zero_only

    monkeypatch.setattr(rank_zero_only, "rank", 0, raising=False)
    monkeypatch.delenv("NODE_RANK", raising=False)
    assert is_global_zero()
    monkeypatch.setenv("NODE_RANK", "1")
    assert not is_global_zero()
    monkeypatch.delenv("NODE_RANK")
    monkeypatch.setattr(rank_zero_only, "rank", 2, raising=False)
    assert not is_global_zero()


def test_quiet_lightning_restores_levels_and_filters() -> None:
    logger = logging.getLogger("lightning.pytorch")
    before = logger.level
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with quiet_lightning([".*custom noise.*"]):
            assert logger.level == logging.WARNING
            warnings.warn("some custom noise here", UserWarning, stacklevel=1)
            warnings.warn(
                "the loader does not have many workers", UserWarning, stacklevel=1
            )
            warnings.warn("a real problem", UserWarning, stacklevel=1)
    assert logger.level == before
    assert [str(w.message) for w in caught] == ["a real problem"]
