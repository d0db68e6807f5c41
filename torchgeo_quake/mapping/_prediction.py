"""Prediction of a damage map: Lightning's prediction loop (private helpers).

Building patches are cut on the fly, batch by batch, from one compact array of
windows (:class:`_Patches`); only one probability per building is kept
(:class:`_Collector`, gathered over the processes of a DDP run). CPU, one GPU
or several devices with DDP all run through :func:`predict_windows`. A building
whose footprint mask is empty on the SAR grid (a footprint smaller than a
pixel, between the pixel centres) gets no probability; a batch size whose
batches would take much memory is warned about (:func:`check_batch_memory`).
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import torch
from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.accelerators import CUDAAccelerator
from lightning.pytorch.utilities.exceptions import SIGTERMException
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from ..utils import is_global_zero, quiet_lightning
from .model import LoadedModel, fold_batch_norms

#: Time slice of every query (the datasets are not time series).
_ALL_TIME = slice(pd.Timestamp.min, pd.Timestamp.max)

#: Lightning warnings silenced during the prediction, besides
#: :data:`torchgeo_quake.utils.LIGHTNING_NOISE`.
_PREDICT_NOISE: tuple[str, ...] = (".*predict_dataloader.*",)

#: Probability stored for a building whose footprint mask is empty (gathered
#: over the processes of a DDP run like a probability).
_EMPTY = -1.0

#: Bytes of the model's activations per byte of its raster inputs, in a
#: prediction batch (measured on the package's model on a CPU: 220-330 KiB per
#: building for 32 x 32 windows of two or three rasters, about 28 times the
#: inputs), rounded up.
ACTIVATION_FACTOR = 32

#: Estimated memory of one batch above which :func:`check_batch_memory` warns.
BATCH_MEMORY_WARNING = 1 << 30


def batch_memory(modalities: Sequence[str], patch_size: int, batch: int) -> int:
    """Estimated memory of one prediction batch: inputs and activations.

    Args:
        modalities: the model's inputs (``gem``, a short vector, is left out)
        patch_size: window side in pixels
        batch: buildings in the batch

    Returns:
        Bytes: float32 patches of every raster modality, times
        1 + :data:`ACTIVATION_FACTOR`, times the batch.
    """
    rasters = sum(1 for m in modalities if m != "gem")
    per_building = rasters * patch_size * patch_size * 4 * (1 + ACTIVATION_FACTOR)
    return per_building * batch


def check_batch_memory(
    modalities: Sequence[str],
    patch_size: int,
    batch_size: int,
    buildings: int,
    say: Callable[[str], None],
) -> None:
    """Warn when one batch would take more than :data:`BATCH_MEMORY_WARNING`.

    A batch holds at most the buildings to score, so the estimate is of
    ``min(batch_size, buildings)`` buildings (:func:`batch_memory`).

    Args:
        modalities: the model's inputs
        patch_size: window side in pixels
        batch_size: buildings per batch asked for
        buildings: buildings to score
        say: function printing progress messages
    """
    batch = min(batch_size, buildings)
    need = batch_memory(modalities, patch_size, batch)
    if need <= BATCH_MEMORY_WARNING:
        return
    default = batch_memory(modalities, patch_size, min(256, buildings))
    message = (
        f"--batch-size {batch_size}: a batch of {batch:,} buildings takes about "
        f"{need / 2**30:.1f} GiB (patches and the model's activations, "
        f"estimated; on the GPU when one is used), {default / 2**30:.2f} GiB at "
        "the default 256. Larger batches are rarely faster; pass a smaller "
        "--batch-size if memory runs short."
    )
    say(message)
    warnings.warn(message, UserWarning, stacklevel=2)


class _Patches(Dataset[dict[str, Tensor]]):
    """Building patches of the model's modalities, by position in a window array.

    The windows are kept as one compact array (not one query object per
    building); the query of a building is made when its patches are cut.
    """

    def __init__(
        self,
        dataset: Any,
        windows: npt.NDArray[np.float64],
        res: tuple[float, float],
        keys: Sequence[str],
        sar_affine: tuple[float, float] | None = None,
    ) -> None:
        """Initialize a new _Patches instance.

        Args:
            dataset: ``sar [& dsm] & footprints``
            windows: ``(xmin, xmax, ymin, ymax)`` of each building's window, in
                prediction order, shape (N, 4)
            res: (xres, yres) of the queries
            keys: sample keys the model needs
            sar_affine: ``(scale, offset)`` applied to the SAR values
                (``--adapt-radiometry``), or None
        """
        self.dataset = dataset
        self.windows = np.ascontiguousarray(windows, dtype=np.float64)
        self.res = (float(res[0]), float(res[1]))
        self.keys = tuple(keys)
        self.sar_affine = sar_affine

    def __len__(self) -> int:
        """Number of buildings.

        Returns:
            The length.
        """
        return len(self.windows)

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        """Cut the patches of one building.

        Args:
            index: position in the window array

        Returns:
            The model's inputs, ``index`` and ``empty_footprint`` (True where
            the building's footprint mask holds no pixel).
        """
        xmin, xmax, ymin, ymax = self.windows[index].tolist()
        query = (
            slice(xmin, xmax, self.res[0]),
            slice(ymin, ymax, self.res[1]),
            _ALL_TIME,
        )
        sample = self.dataset[query]
        out = {key: sample[key] for key in self.keys}
        if self.sar_affine is not None and "sar" in out:
            scale, offset = self.sar_affine
            out["sar"] = out["sar"] * scale + offset
        out["index"] = torch.tensor(index, dtype=torch.long)
        mask = sample.get("footprint")
        empty = mask is not None and not bool(mask.any())
        out["empty_footprint"] = torch.tensor(empty)
        return out


def _collate(samples: list[dict[str, Tensor]]) -> dict[str, Tensor]:
    """Stack samples into a batch.

    Args:
        samples: outputs of :class:`_Patches`

    Returns:
        The batch.
    """
    return {key: torch.stack([s[key] for s in samples]) for key in samples[0]}


class _Collector(Callback):
    """Keep the damage probability of every building, gathered over all ranks."""

    def __init__(self, n: int) -> None:
        """Initialize a new _Collector instance.

        Args:
            n: number of buildings predicted
        """
        self.probs = np.full(n, np.nan, dtype=np.float32)

    def on_predict_batch_end(
        self,
        trainer: Trainer,
        pl_module: LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        """Store the probabilities of a batch (:data:`_EMPTY` for empty masks).

        Args:
            trainer: the trainer
            pl_module: the model
            outputs: ``predict_step`` output (``prob``)
            batch: the batch (``index``, ``empty_footprint``)
            batch_idx: batch index
            dataloader_idx: data loader index

        Raises:
            SIGTERMException: If the process received SIGTERM (Lightning's
                prediction loop, unlike its training loop, does not stop).
        """
        if trainer.received_sigterm:
            raise SIGTERMException
        index = batch["index"].cpu().numpy()
        probs = outputs["prob"].detach().float().cpu().numpy()
        empty = batch.get("empty_footprint")
        if empty is not None:
            probs = np.where(empty.cpu().numpy(), np.float32(_EMPTY), probs)
        self.probs[index] = probs

    def on_predict_epoch_end(
        self, trainer: Trainer, pl_module: LightningModule
    ) -> None:
        """Combine the probabilities of all processes.

        Args:
            trainer: the trainer
            pl_module: the model
        """
        if trainer.world_size <= 1:
            return
        local = torch.from_numpy(self.probs).to(pl_module.device)
        gathered = trainer.strategy.all_gather(local)
        assert isinstance(gathered, Tensor)
        combined = gathered.reshape(-1, len(self.probs))
        merged = combined[0].clone()
        for row in combined[1:]:
            merged = torch.where(torch.isnan(merged), row, merged)
        self.probs = merged.cpu().numpy().astype(np.float32)


def predict_windows(
    model: LoadedModel,
    dataset: Any,
    windows: npt.NDArray[np.float64],
    res: tuple[float, float],
    *,
    accelerator: str,
    devices: int | str,
    batch_size: int,
    num_workers: int,
    progress: bool,
    root: Path,
    sar_affine: tuple[float, float] | None = None,
) -> tuple[npt.NDArray[np.float32], dict[str, Any]] | None:
    """The damage probability of every building window.

    The model's batch normalisations are folded into its convolutions first
    (the same probabilities to ~1e-7, faster).

    Args:
        model: the model
        dataset: ``sar [& dsm] & footprints``
        windows: ``(xmin, xmax, ymin, ymax)`` per building, in prediction order
        res: (xres, yres) of the queries
        accelerator: Lightning accelerator
        devices: Lightning devices
        batch_size: buildings per batch
        num_workers: data-loader worker processes
        progress: show Lightning's progress bar
        root: Lightning's ``default_root_dir`` (nothing is written there)
        sar_affine: ``(scale, offset)`` applied to the SAR values
            (``--adapt-radiometry``), or None

    Returns:
        The probabilities, in window order (NaN for buildings whose footprint
        mask on the SAR grid is empty: a footprint smaller than a pixel), and
        how the prediction ran (``accelerator`` and ``processes``, for the
        summary); None on a non-zero rank of a DDP run (rank 0 writes the map).

    Raises:
        RuntimeError: If a building received no prediction (a bug).
    """
    if not len(windows):
        if not is_global_zero():
            return None
        return np.zeros(0, dtype=np.float32), {"accelerator": None, "processes": 1}
    fold_batch_norms(model.task)
    patches = _Patches(dataset, windows, res, list(model.modalities), sar_affine)
    collector = _Collector(len(windows))
    with quiet_lightning(_PREDICT_NOISE):
        trainer = Trainer(
            accelerator=accelerator,
            devices=devices,
            logger=False,
            enable_checkpointing=False,
            enable_model_summary=False,
            enable_progress_bar=progress,
            callbacks=[collector],
            default_root_dir=root,
        )
        loader = DataLoader(
            patches,
            batch_size=batch_size,
            shuffle=False,
            num_workers=num_workers,
            collate_fn=_collate,
            pin_memory=isinstance(trainer.accelerator, CUDAAccelerator),
        )
        trainer.predict(model.task, dataloaders=loader, return_predictions=False)
    if not trainer.is_global_zero:
        return None
    if np.isnan(collector.probs).any():  # pragma: no cover - a bug
        raise RuntimeError("some buildings received no prediction")
    probs = collector.probs
    probs[probs == np.float32(_EMPTY)] = np.nan
    run_info = {
        "accelerator": type(trainer.accelerator).__name__,
        "processes": int(trainer.world_size),
    }
    return probs, run_info


@contextlib.contextmanager
def torch_threads(count: int | None) -> Iterator[None]:
    """Run a block with another number of PyTorch CPU threads.

    Args:
        count: threads, or None to keep PyTorch's

    Yields:
        Nothing.
    """
    threads = torch.get_num_threads()
    if count is not None:
        torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
