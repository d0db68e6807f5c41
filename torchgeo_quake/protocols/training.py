"""Train and test one run of a protocol, and write its files.

:func:`train_run` builds the run's data module and model from its configuration
(:func:`~torchgeo_quake.protocols.config.instantiate`, with the run's split and
seed), trains with Lightning, resuming from ``checkpoints/last.ckpt`` when an
interrupted attempt left one, tests the checkpoint with the best validation F1
and writes the run's files (:mod:`.records`), ``metrics.json`` last.

.. versionadded:: 0.2
"""

from __future__ import annotations

import inspect
import re
import shutil
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..utils import is_global_zero
from .config import ExperimentConfig, instantiate, section_class
from .records import RunSpec, resume_checkpoint, start_attempt, write_run
from .settings import ProtocolSettings, trainer_kwargs

__all__: list[str] = []

#: Warnings of a protocol run that say nothing actionable, besides
#: :data:`torchgeo_quake.utils.LIGHTNING_NOISE`.
QUIET_PATTERNS = (
    ".*The number of training batches.*",
    ".*Checkpoint directory .* exists and is not empty.*",
    ".*GPU available but not used.*",
    ".*Converting CartoSatDSM res.*",
)

#: Attributes of the model holding its normalisation statistics.
_STATISTICS = ("sar_mean", "sar_std", "dsm_mean", "dsm_std", "gem_mean", "gem_std")


class _EpochProgress:
    """A Lightning callback advancing the protocol's bar (in epochs) per batch.

    Each training batch advances the bar by its share of the epoch, and the
    bar's text names the run and its epoch, so that the bar moves within a
    run's epoch too.
    """

    def __new__(cls, bar: Any, run: str = "") -> Any:
        """Build the callback (a subclass of Lightning's ``Callback``).

        Args:
            bar: the tqdm bar (or None)
            run: the run's name, shown beside the bar

        Returns:
            The callback instance.
        """
        from lightning.pytorch.callbacks import Callback

        class EpochProgress(Callback):
            def __init__(self) -> None:
                self.epochs = 0
                self.done = 0.0  # share of the current epoch on the bar

            def _show(self, trainer: Any) -> bool:
                return bar is not None and bool(trainer.is_global_zero)

            def on_train_epoch_start(self, trainer: Any, pl_module: Any) -> None:
                self.done = 0.0
                if self._show(trainer):
                    epoch = f"epoch {trainer.current_epoch + 1}/{trainer.max_epochs}"
                    bar.set_postfix_str(f"{run} {epoch}".strip(), refresh=False)

            def on_train_batch_end(
                self,
                trainer: Any,
                pl_module: Any,
                outputs: Any,
                batch: Any,
                batch_idx: int,
            ) -> None:
                total = trainer.num_training_batches
                if not self._show(trainer) or not 0 < total < float("inf"):
                    return
                share = min(1.0, (batch_idx + 1) / total) - self.done
                if share > 0:
                    self.done += share
                    bar.update(share)

            def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
                self.epochs += 1
                if self._show(trainer):
                    bar.update(1.0 - self.done)  # the rest of the epoch
                self.done = 0.0

        return EpochProgress()


def _test_cities(
    ids: np.ndarray | None, test_ids: np.ndarray, test_cities: np.ndarray
) -> np.ndarray:
    """The city of every test prediction.

    Args:
        ids: building ids of the predictions, in their order (None: none)
        test_ids: building ids of the test split, in data-loader order
        test_cities: cities of the test split, same order

    Returns:
        One city per prediction.

    Raises:
        ValueError: If predictions come in another order (several processes)
            and a building id repeats across the test split's cities, so that
            the city of a prediction is ambiguous.
    """
    if ids is None:
        return np.array([], dtype=str)
    if len(ids) == len(test_ids) and np.array_equal(ids, test_ids):
        return np.asarray(test_cities).astype(str)  # one process: same order
    city_of: dict[int, str] = {}
    for building, city in zip(test_ids.tolist(), test_cities.tolist(), strict=True):
        if city_of.setdefault(int(building), str(city)) != str(city):
            raise ValueError(
                f"building id {building} is in the test split of both "
                f"{city_of[int(building)]!r} and {city!r}; give every city's "
                "footprints distinct ids (e.g. OSM ids with their type)"
            )
    return np.array([city_of.get(int(i), "") for i in ids])


def data_overrides(
    run: RunSpec, config: ExperimentConfig, settings: ProtocolSettings, root: str
) -> dict[str, Any]:
    """Data-module arguments the runner sets for a run (split, seed, files).

    Args:
        run: the run
        config: its configuration
        settings: resolved settings
        root: data root

    Returns:
        Keyword arguments that replace the configuration's; the blocked
        protocols add ``block_size`` and ``buffer``, the inner-city selection
        ``selection``.

    .. versionchanged:: 0.3
       ``block_size``, ``buffer`` and ``selection``.
    """
    overrides: dict[str, Any] = {
        "root": root,
        "strategy": run.strategy,
        "fold": run.fold if run.fold is not None else 0,
        "test_city": run.test_city,
        "city": run.city,
        "seed": run.seed,
        # Absolute: a relative one would be read below the trainer's
        # default_root_dir, which is the run's folder already.
        "splits_file": str((run.directory(settings.out) / "splits.json").absolute()),
    }
    if run.strategy == "blocked":
        overrides["block_size"] = settings.block_size
        overrides["buffer"] = settings.buffer
    if settings.selection != "random":
        overrides["selection"] = settings.selection
    data_class = section_class(config.path, "data", config.data["class_path"])
    if "scale" in inspect.signature(data_class).parameters:
        overrides["scale"] = settings.scale
    return overrides


def _callbacks(ckpt_dir: Path, bar: Any, run: str = "") -> tuple[Any, Any, Any]:
    """The run's checkpoints (best and last) and progress callbacks.

    Args:
        ckpt_dir: the run's ``checkpoints`` folder
        bar: the progress bar (or None)
        run: the run's name, for the bar

    Returns:
        The best-epoch checkpoint, the resumable one and the progress callback.
    """
    from lightning.pytorch.callbacks import ModelCheckpoint

    # The best epoch (weights and buffers only: the test needs no optimiser) and
    # the full state of the last epoch (to resume an interrupted run).
    best = ModelCheckpoint(
        dirpath=ckpt_dir,
        filename="best-{epoch}",
        monitor="val_f1",
        mode="max",
        save_weights_only=True,
    )
    # Full state after every epoch, overwritten (save_last with save_top_k=0
    # would only be written when a top-k checkpoint is, i.e. never).
    resumable = ModelCheckpoint(
        dirpath=ckpt_dir,
        filename="last",
        monitor=None,
        save_top_k=1,
        every_n_epochs=1,
        enable_version_counter=False,
    )
    return best, resumable, _EpochProgress(bar, run)


def _record(
    run: RunSpec,
    config: ExperimentConfig,
    settings: ProtocolSettings,
    *,
    trainer: Any,
    model: Any,
    datamodule: Any,
    results: Sequence[Mapping[str, Any]],
    best: str,
    resumed: bool,
    root: str,
    start: float,
) -> dict[str, Any]:
    """The contents of a finished run's ``metrics.json``.

    Args:
        run: the run
        config: its configuration
        settings: resolved settings
        trainer: the Lightning trainer, after testing
        model: the tested model
        datamodule: the run's data module
        results: what ``trainer.test`` returned
        best: path of the best checkpoint ("" when none)
        resumed: whether the run resumed an interrupted attempt
        root: data root
        start: ``time.perf_counter()`` when the attempt started

    Returns:
        The record.
    """
    match = re.search(r"epoch=(\d+)", Path(best).name) if best else None
    epochs = int(trainer.current_epoch)
    labels = model.last_predictions["test"].labels
    return {
        "protocol": run.protocol,
        "config": run.config,
        "config_file": config.path,
        "label": config.label,
        "modalities": list(config.modalities),
        "split": run.split,
        "seed": run.seed,
        "strategy": run.strategy,
        "fold": run.fold,
        "test_city": run.test_city,
        "city": run.city,
        "metrics": {k: float(v) for k, v in (results[0] if results else {}).items()},
        "val_threshold": float(model.threshold),
        # Platt scaling of the tested checkpoint (scale 1, bias 0: none).
        "calibration": {
            "calibrated": bool(model.calibration_set),
            "scale": float(model.calibration_scale),
            "bias": float(model.calibration_bias),
        },
        "best_epoch": int(match.group(1)) if match else None,
        "epochs": epochs,
        "max_epochs": trainer.max_epochs,
        # After the fall-back to float32 where bfloat16 would be slow.
        "precision": str(trainer.precision),
        # Fewer epochs than max_epochs with --max-time: the time limit stopped it.
        "stopped_by_max_time": bool(settings.max_time)
        and epochs < int(trainer.max_epochs or 0),
        "resumed": resumed,
        # Blocked protocols: block side and buffer, and the training and
        # validation buildings the buffer dropped.
        "block_size": settings.block_size,
        "buffer": settings.buffer,
        "dropped": dict(getattr(datamodule, "dropped", {})),
        # loco: where checkpoint and threshold were chosen.
        "selection": settings.selection,
        "val_city": getattr(datamodule, "val_city", None),
        "n_train": len(datamodule.indices["train"]),
        "n_val": len(datamodule.indices["val"]),
        "n_test": len(datamodule.indices["test"]),
        "n_test_damaged": int(np.asarray(labels).sum()),
        "normalization": {
            n: getattr(model, n) for n in _STATISTICS if hasattr(model, n)
        },
        "scale": settings.scale,
        "root": root,
        "wall_s": time.perf_counter() - start,
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }


def train_run(
    run: RunSpec,
    config: ExperimentConfig,
    settings: ProtocolSettings,
    root: str,
    bar: Any,
) -> None:
    """Train and test one run and write its outputs (``metrics.json`` last).

    Args:
        run: the run
        config: its configuration
        settings: resolved settings
        root: data root
        bar: the progress bar (or None)

    Raises:
        DamagedRunError: If the run's ``last.ckpt`` cannot be read.
    """
    import lightning
    from lightning.pytorch import Trainer
    from lightning.pytorch.loggers import CSVLogger

    directory = run.directory(settings.out)
    directory.mkdir(parents=True, exist_ok=True)
    resume = resume_checkpoint(run, settings.out)
    start_attempt(directory, resuming=resume is not None, rank0=is_global_zero())
    start = time.perf_counter()

    lightning.seed_everything(run.seed, workers=True, verbose=False)
    datamodule = instantiate(
        config, "data", **data_overrides(run, config, settings, root)
    )
    model = instantiate(config, "model")
    ckpt_dir = directory / "checkpoints"
    checkpoint, resumable, progress = _callbacks(ckpt_dir, bar, run.name)
    trainer = Trainer(
        **trainer_kwargs(settings, config),
        default_root_dir=str(directory),
        logger=CSVLogger(str(directory), name="", version=""),
        callbacks=[checkpoint, resumable, progress],
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(model, datamodule=datamodule, ckpt_path=resume)
    best = checkpoint.best_model_path
    results = trainer.test(
        model, datamodule=datamodule, ckpt_path=best or None, verbose=False
    )
    if not trainer.is_global_zero:
        return
    preds = model.last_predictions["test"]
    dataset = datamodule.dataset
    test_index = datamodule.indices["test"]
    ids = preds.building_ids
    cities = _test_cities(
        ids, dataset.building_ids[test_index], dataset.city_of[test_index]
    )
    record = _record(
        run,
        config,
        settings,
        trainer=trainer,
        model=model,
        datamodule=datamodule,
        results=results,
        best=best,
        resumed=resume is not None,
        root=root,
        start=start,
    )
    if not settings.keep_checkpoints:
        shutil.rmtree(ckpt_dir, ignore_errors=True)
    predictions = {
        "probs": preds.probs,
        "logits": preds.logits if preds.logits is not None else np.array([]),
        "labels": preds.labels,
        "building_ids": ids if ids is not None else np.array([], dtype=np.int64),
        "cities": cities.astype(str),
    }
    write_run(directory, predictions, record)
