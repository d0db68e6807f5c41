"""TorchGeo trainer for building-damage detection with the late-fusion model."""

from __future__ import annotations

import contextvars
import math
import os
import random
import warnings
from collections.abc import Mapping, Sequence
from typing import IO, Any, Literal, NamedTuple

import lightning.pytorch.utilities.types
import numpy as np
import numpy.typing as npt
import torch
import torch.nn as nn
from torch import Tensor
from torch.optim import Adam, AdamW, Optimizer
from torch.optim.lr_scheduler import CosineAnnealingLR, ReduceLROnPlateau
from torchgeo.trainers import BaseTask

from ..models import MODALITIES, LateFusionNet, canonical_modalities
from .metrics import (
    best_f1_threshold,
    decision_threshold,
    ranking_metrics,
    threshold_metrics,
)

__all__ = [
    "INPUT_SPEC_KEY",
    "DamageDetectionTask",
    "EpochPredictions",
    "validate_input_spec",
]

#: Modalities normalised with a mean and standard deviation stored in the task.
NORMALIZED = ("sar", "dsm", "gem")

#: Checkpoint key of :attr:`DamageDetectionTask.input_spec`.
INPUT_SPEC_KEY = "torchgeo_quake_input_spec"

#: SAR radiometries an input specification may name.
RADIOMETRIES = ("db", "amplitude", "intensity")

#: Relative difference of SAR pixel sizes treated as the same pixel size.
SAR_RES_TOLERANCE = 0.01

#: The experiment configuration of each of the paper's input configurations.
CONFIG_FILES: dict[tuple[str, ...], str] = {
    ("sar", "footprint"): "experiments/sar_ftp.yaml",
    ("sar", "footprint", "dsm"): "experiments/sar_ftp_dsm.yaml",
    ("sar", "footprint", "dsm", "gem"): "experiments/all_inputs.yaml",
}

#: File being read by :meth:`DamageDetectionTask.load_from_checkpoint`.
_LOADING: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "torchgeo_quake_loading_checkpoint", default=None
)


class EpochPredictions(NamedTuple):
    """Predictions of one validation or test epoch, gathered over all processes.

    .. versionadded:: 0.1
    """

    #: Predicted probability of damage, shape (N,).
    probs: npt.NDArray[np.float64]
    #: Reference labels (1 = damaged), shape (N,).
    labels: npt.NDArray[np.int64]
    #: OSM ids of the buildings, shape (N,), or None if batches had none.
    building_ids: npt.NDArray[np.int64] | None


def validate_input_spec(spec: Any, source: str = "input spec") -> dict[str, Any]:
    """Check an input specification and return it in canonical form.

    Args:
        spec: Mapping with ``radiometry`` (``"db"``, ``"amplitude"`` or
            ``"intensity"``), ``sar_res`` (positive SAR pixel size in metres,
            or None if unknown) and ``patch_size`` (positive int); other keys
            are kept.
        source: Where *spec* comes from, for error messages.

    Returns:
        A new dict with ``sar_res`` as float (or None) and ``patch_size`` as int.

    Raises:
        ValueError: If a key is missing or a value is invalid.

    .. versionadded:: 0.1
    """
    if not isinstance(spec, Mapping):
        raise ValueError(f"{source} must be a mapping, got {type(spec).__name__}")
    missing = [k for k in ("radiometry", "sar_res", "patch_size") if k not in spec]
    if missing:
        raise ValueError(f"{source} lacks {missing} (got keys {sorted(spec)})")
    out = dict(spec)
    if out["radiometry"] not in RADIOMETRIES:
        raise ValueError(
            f"{source}: radiometry must be one of {list(RADIOMETRIES)}, got "
            f"{out['radiometry']!r}"
        )
    res = out["sar_res"]
    if res is not None:
        if isinstance(res, bool) or not isinstance(res, int | float):
            raise ValueError(f"{source}: sar_res must be a number or None, got {res!r}")
        if not (math.isfinite(res) and res > 0):
            raise ValueError(f"{source}: sar_res must be positive, got {res!r}")
        out["sar_res"] = float(res)
    size = out["patch_size"]
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ValueError(f"{source}: patch_size must be a positive int, got {size!r}")
    return out


def _spec_differences(saved: Mapping[str, Any], data: Mapping[str, Any]) -> list[str]:
    """Describe how two input specifications differ.

    Args:
        saved: Specification of the trained model.
        data: Specification of the data.

    Returns:
        One phrase per differing key (empty when they agree; an unknown
        ``sar_res`` on either side agrees with anything).
    """
    diffs = []
    for key in ("radiometry", "patch_size"):
        if saved[key] != data[key]:
            diffs.append(f"{key} {saved[key]!r} (model) != {data[key]!r} (data)")
    a, b = saved["sar_res"], data["sar_res"]
    if a is not None and b is not None and abs(a - b) > SAR_RES_TOLERANCE * a:
        diffs.append(f"sar_res {a:g} m (model) != {b:g} m (data)")
    return diffs


def _config_hint(modalities: Sequence[str]) -> str:
    """Name the configuration that matches some modalities.

    Args:
        modalities: Canonical modalities.

    Returns:
        E.g. ``"modalities: [sar, footprint] (experiments/sar_ftp.yaml)"``.
    """
    text = f"modalities: [{', '.join(modalities)}]"
    config = CONFIG_FILES.get(tuple(modalities))
    return f"{text} ({config})" if config else text


def _gem_hint() -> str:
    """Describe the expected GEM width, importing the dataset module lazily.

    Returns:
        A sentence for error messages.
    """
    try:
        from ..datasets import GEM_FEATURE_NAMES
    except Exception:  # pragma: no cover - only when the datasets are broken
        return "gem_features must equal len(torchgeo_quake.datasets.GEM_FEATURE_NAMES)"
    return (
        "gem_features must equal len(torchgeo_quake.datasets.GEM_FEATURE_NAMES) "
        f"= {len(GEM_FEATURE_NAMES)}"
    )


class DamageDetectionTask(BaseTask):
    """Binary building-damage detection (Russo et al., 2025).

    Trains a :class:`~torchgeo_quake.models.LateFusionNet` on batches with the
    keys of the sample contract (``sar``, ``footprint``, ``dsm``: ``(B, 1, H,
    W)``; ``gem``: ``(B, F)``; ``label``: ``(B,)``) with binary cross-entropy
    on logits.

    Inputs are normalised inside the task, with statistics held in buffers
    (hence saved in checkpoints): ``sar``, ``dsm`` and ``gem`` become
    ``(x - mean) / std``, the footprint mask is used as is. The statistics are
    set by :meth:`set_normalization`, called automatically at the start of
    fitting with ``trainer.datamodule.normalization_stats()`` when the data
    module has that method.

    Validation and test gather the predictions of the whole epoch (over all
    processes) and log, for the damaged class:

    * ``val_loss``, ``val_auroc``, ``val_ap`` and ``val_precision``,
      ``val_recall``, ``val_f1``, ``val_kappa`` at ``val_threshold``, the
      threshold maximising F1 on the validation precision–recall curve (the
      paper's choice). It is stored in the :attr:`threshold` buffer, so the
      checkpoint of the best epoch carries it, and used by :meth:`predict_step`.
      Without damaged buildings in the validation set the stored threshold is
      kept (and logged).
    * ``test_loss``, ``test_auroc``, ``test_ap`` and ``test_precision``,
      ``test_recall``, ``test_f1``, ``test_kappa`` at ``test_threshold``, the
      best-F1 threshold *of the test set* as in the paper (optimistic: it is
      chosen on the data it is scored on), and ``test_precision_valthr``,
      ``test_recall_valthr``, ``test_f1_valthr``, ``test_kappa_valthr`` at the
      stored validation threshold (``test_threshold_valthr``), the figure a
      deployed model would achieve.

    The predictions of the last validation and test epochs are kept in
    :attr:`last_predictions` (``"val"``, ``"test"``) for curves and confusion
    matrices. Under distributed training, samples that the distributed sampler
    repeats to even out the processes are counted once when batches carry
    ``building_id``.

    .. versionadded:: 0.1
    """

    #: ``sar_weights`` is a file path: not saved, so that checkpoints load
    #: anywhere (the weights themselves are in the checkpoint).
    ignore = "sar_weights"

    monitor = "val_f1"
    mode = "max"

    threshold: Tensor
    threshold_set: Tensor
    normalization_set: Tensor

    def __init__(
        self,
        modalities: Sequence[str] = MODALITIES,
        gem_features: int = 22,
        sar_weights: str | None = None,
        hidden_dim: int = 256,
        gem_hidden_dim: int = 64,
        dropout: float = 0.5,
        lr: float = 1e-3,
        weight_decay: float = 1e-4,
        optimizer: Literal["adamw", "adam"] = "adamw",
        scheduler: Literal["plateau", "cosine", "none"] = "plateau",
        patience: int = 10,
        pos_weight: float | None = None,
        amp: bool = True,
    ) -> None:
        """Initialize a new DamageDetectionTask instance.

        Args:
            modalities: Inputs of the model, a non-empty subset of
                ``["sar", "footprint", "dsm", "gem"]`` (paper:
                ``["sar", "footprint"]``, ``["sar", "footprint", "dsm"]`` and
                all four).
            gem_features: Width of the GEM vector; must equal
                ``len(torchgeo_quake.datasets.GEM_FEATURE_NAMES)`` (22) for
                data from this package (checked on every batch).
            sar_weights: Optional ResNet-18 state-dict file for the SAR encoder
                (see :func:`~torchgeo_quake.models.load_resnet18_state_dict`),
                e.g. SAR-HUB's TerraSAR-X model. Not saved in hyperparameters.
            hidden_dim: Hidden width of the classification head.
            gem_hidden_dim: Width of the GEM MLP.
            dropout: Dropout probability in the head.
            lr: Learning rate.
            weight_decay: Weight decay (decoupled for ``"adamw"``, L2 for
                ``"adam"``).
            optimizer: ``"adamw"`` or ``"adam"``.
            scheduler: ``"plateau"`` (reduce on a plateau of ``val_f1``),
                ``"cosine"`` (cosine annealing over ``trainer.max_epochs``) or
                ``"none"``.
            patience: Patience of the plateau scheduler, in epochs.
            pos_weight: Weight of the damaged class in the loss
                (:class:`~torch.nn.BCEWithLogitsLoss`), e.g. negatives per
                positive; None for none.
            amp: On CUDA, run the network under bfloat16 autocast (mixed
                precision) unless the trainer already sets a mixed
                ``precision``; the loss, metrics and outputs stay float32.
                Ignored on the CPU, so one config file serves both.

        Raises:
            ValueError: If an argument is invalid or the SAR weights do not fit.
            FileNotFoundError: If *sar_weights* does not exist.
        """
        canonical_modalities(modalities)
        if optimizer not in ("adamw", "adam"):
            raise ValueError(f"optimizer must be 'adamw' or 'adam', got {optimizer!r}")
        if scheduler not in ("plateau", "cosine", "none"):
            raise ValueError(
                f"scheduler must be 'plateau', 'cosine' or 'none', got {scheduler!r}"
            )
        if pos_weight is not None and not pos_weight > 0:
            raise ValueError(f"pos_weight must be positive, got {pos_weight}")
        if lr <= 0:
            raise ValueError(f"lr must be positive, got {lr}")
        self.sar_weights = sar_weights
        #: How the model's inputs were made (``radiometry``, ``sar_res``,
        #: ``patch_size``), taken from the data module's ``input_spec()`` at the
        #: start of fitting and saved in checkpoints; None when unknown (data
        #: module without ``input_spec``, or an older checkpoint).
        self.input_spec: dict[str, Any] | None = None
        self.last_predictions: dict[str, EpochPredictions] = {}
        self._outputs: dict[str, list[tuple[Tensor, Tensor, Tensor | None]]] = {}
        super().__init__()

    @property
    def modalities(self) -> tuple[str, ...]:
        """Configured modalities in canonical order."""
        return canonical_modalities(self.hparams["modalities"])

    def configure_models(self) -> None:
        """Initialize the model and the normalisation and threshold buffers."""
        self.model = LateFusionNet(
            modalities=self.hparams["modalities"],
            gem_features=self.hparams["gem_features"],
            hidden_dim=self.hparams["hidden_dim"],
            gem_hidden_dim=self.hparams["gem_hidden_dim"],
            dropout=self.hparams["dropout"],
            sar_weights=self.sar_weights,
        )
        for name in NORMALIZED:
            if name not in self.modalities:
                continue
            shape = (self.hparams["gem_features"],) if name == "gem" else ()
            self.register_buffer(f"{name}_mean", torch.zeros(shape))
            self.register_buffer(f"{name}_std", torch.ones(shape))
        self.register_buffer("normalization_set", torch.tensor(False))
        self.register_buffer("threshold", torch.tensor(0.5))
        self.register_buffer("threshold_set", torch.tensor(False))

    def configure_losses(self) -> None:
        """Initialize the loss criterion."""
        pos_weight = self.hparams["pos_weight"]
        self.criterion = nn.BCEWithLogitsLoss(
            pos_weight=None if pos_weight is None else torch.tensor(float(pos_weight))
        )

    def configure_optimizers(
        self,
    ) -> lightning.pytorch.utilities.types.OptimizerLRScheduler:
        """Initialize the optimizer and learning-rate scheduler.

        Adam(W) uses PyTorch's fused implementation where available (CPU and
        CUDA), which is much faster than the default for this 34M-parameter
        model and computes the same update.

        Returns:
            Optimizer and, unless ``scheduler="none"``, learning-rate scheduler.

        Raises:
            ValueError: If ``scheduler="cosine"`` without ``trainer.max_epochs``.
        """
        params = [p for p in self.parameters() if p.requires_grad]
        cls = AdamW if self.hparams["optimizer"] == "adamw" else Adam
        kwargs: dict[str, Any] = {
            "lr": self.hparams["lr"],
            "weight_decay": self.hparams["weight_decay"],
        }
        if all(p.device.type in ("cpu", "cuda") for p in params):
            kwargs["fused"] = True
        optimizer: Optimizer = cls(params, **kwargs)
        match self.hparams["scheduler"]:
            case "none":
                return optimizer
            case "cosine":
                max_epochs = self.trainer.max_epochs
                if max_epochs is None or max_epochs < 1:
                    raise ValueError("scheduler='cosine' needs trainer.max_epochs")
                return {
                    "optimizer": optimizer,
                    "lr_scheduler": CosineAnnealingLR(optimizer, T_max=max_epochs),
                }
            case _:
                scheduler = ReduceLROnPlateau(
                    optimizer, mode="max", patience=self.hparams["patience"]
                )
                return {
                    "optimizer": optimizer,
                    "lr_scheduler": {"scheduler": scheduler, "monitor": self.monitor},
                }

    # -- normalisation ---------------------------------------------------------

    def set_normalization(self, stats: Mapping[str, Any]) -> None:
        """Store the normalisation statistics of the inputs.

        Args:
            stats: ``sar_mean``, ``sar_std``, ``dsm_mean``, ``dsm_std``
                (scalars) and ``gem_mean``, ``gem_std`` (vectors of length
                ``gem_features``), as tensors, arrays or numbers; the keys of
                every configured modality among sar, dsm and gem are required,
                others are ignored. This is the format of
                ``KahramanmarasDamageDataModule.normalization_stats()``.
                A zero standard deviation (constant input) is replaced by 1.

        Raises:
            ValueError: If a required key is missing, a value has the wrong
                shape, is not finite, or a standard deviation is negative.
        """
        for name in NORMALIZED:
            if name not in self.modalities:
                continue
            missing = [k for k in (f"{name}_mean", f"{name}_std") if k not in stats]
            if missing:
                raise ValueError(
                    f"normalisation statistics lack {missing} needed for modality "
                    f"{name!r} (got keys {sorted(stats)})"
                )
            mean_buf: Tensor = getattr(self, f"{name}_mean")
            std_buf: Tensor = getattr(self, f"{name}_std")
            mean = torch.as_tensor(stats[f"{name}_mean"], dtype=torch.float32)
            std = torch.as_tensor(stats[f"{name}_std"], dtype=torch.float32)
            for key, value in ((f"{name}_mean", mean), (f"{name}_std", std)):
                if value.shape != mean_buf.shape:
                    raise ValueError(
                        f"{key} has shape {tuple(value.shape)}, expected "
                        f"{tuple(mean_buf.shape)}"
                        + (f"; {_gem_hint()}" if name == "gem" else "")
                    )
                if not torch.isfinite(value).all():
                    raise ValueError(f"{key} is not finite: {value}")
            if (std < 0).any():
                raise ValueError(f"{name}_std is negative: {std}")
            if (std == 0).any():
                warnings.warn(
                    f"{name}_std is zero for {int((std == 0).sum())} value(s) "
                    "(constant input); using 1 there",
                    UserWarning,
                    stacklevel=2,
                )
                std = torch.where(std == 0, torch.ones_like(std), std)
            mean_buf.copy_(mean)
            std_buf.copy_(std)
        self.normalization_set.fill_(True)

    def _check_datamodule(self, check_spec: bool = False) -> None:
        """Check, before any step, that the data module provides our inputs.

        Args:
            check_spec: Also check that the data module's ``input_spec()``
                (when it has one) agrees with the stored :attr:`input_spec`.

        Raises:
            ValueError: If the data module declares ``modalities`` that lack
                one of the task's (or, when a checkpoint is loaded, differ from
                the task's), or (with *check_spec*) makes its inputs otherwise
                than the model was trained on.
        """
        datamodule = getattr(self.trainer, "datamodule", None)
        provided = getattr(datamodule, "modalities", None)
        ckpt = self.trainer.ckpt_path
        if provided is not None and ckpt is not None:
            # LightningCLI rebuilds the model from the checkpoint's
            # hyper-parameters: a checkpoint of another input configuration
            # shows as data with other modalities than the model's.
            data = tuple(m for m in MODALITIES if m in tuple(provided))
            if set(data) != set(self.modalities):
                raise ValueError(
                    f"checkpoint {os.fspath(ckpt)!r} was trained with modalities "
                    f"{list(self.modalities)}, but the data module "
                    f"{type(datamodule).__name__} is configured with modalities "
                    f"{list(data)}: use the configuration with "
                    f"{_config_hint(self.modalities)} for this checkpoint, or a "
                    f"checkpoint trained with {_config_hint(data)}"
                )
        if provided is not None:
            missing = [m for m in self.modalities if m not in tuple(provided)]
            if missing:
                raise ValueError(
                    f"the model needs modalities {missing} that the data module "
                    f"{type(datamodule).__name__} does not provide (it has "
                    f"{list(provided)}); give model and data the same `modalities` "
                    "in the config"
                )
        get_spec = getattr(datamodule, "input_spec", None)
        if not check_spec or self.input_spec is None or not callable(get_spec):
            return
        data_spec = validate_input_spec(get_spec(), "the data module's input_spec()")
        diffs = _spec_differences(self.input_spec, data_spec)
        if diffs:
            source = self.trainer.ckpt_path or "the model"
            raise ValueError(
                f"{source} was trained on inputs made otherwise than the data "
                f"module {type(datamodule).__name__} makes them: {'; '.join(diffs)}; "
                "set the data module's radiometry (data.init_args.radiometry) to "
                "the model's, resample the SAR image to the model's pixel size, "
                "or use a model trained on such data"
            )

    def on_fit_start(self) -> None:
        """Check the data module, take its normalisation statistics and input spec.

        Raises:
            ValueError: If the data module lacks a modality of the task or its
                statistics do not fit (e.g. a GEM vector of another width).
        """
        self._check_datamodule()
        datamodule = getattr(self.trainer, "datamodule", None)
        get_stats = getattr(datamodule, "normalization_stats", None)
        if callable(get_stats):
            self.set_normalization(get_stats())
        get_spec = getattr(datamodule, "input_spec", None)
        if callable(get_spec):
            spec = validate_input_spec(get_spec(), "the data module's input_spec()")
            if self.input_spec is not None:
                diffs = _spec_differences(self.input_spec, spec)
                if diffs:
                    warnings.warn(
                        "fitting on inputs made otherwise than those the model was "
                        f"trained on ({'; '.join(diffs)}); the checkpoints will "
                        "record the new data's input_spec",
                        UserWarning,
                        stacklevel=2,
                    )
            self.input_spec = spec
        elif not bool(self.normalization_set) and any(
            m in NORMALIZED for m in self.modalities
        ):
            warnings.warn(
                "no normalisation statistics: the data module has no "
                "normalization_stats() and set_normalization() was not called; "
                "inputs are used as they are",
                UserWarning,
                stacklevel=2,
            )

    def on_train_epoch_start(self) -> None:
        """Seed the random generators from the run's seed and the epoch.

        The shuffling of the training set, the augmentation and dropout of an
        epoch then depend only on the global seed (``seed_everything``), the
        epoch and the process rank, not on what ran before in the process: a
        run resumed from a checkpoint continues exactly as an uninterrupted
        run would (on the CPU, bit for bit).
        """
        base = int(os.environ.get("PL_GLOBAL_SEED", "0"))
        seed = np.random.SeedSequence(
            [base, self.current_epoch, self.global_rank]
        ).generate_state(1)[0]
        random.seed(int(seed))
        np.random.seed(int(seed))  # noqa: NPY002 (the legacy global state)
        torch.manual_seed(int(seed))  # every device, CUDA included

    # -- inputs ----------------------------------------------------------------

    def _check_batch(self, batch: Mapping[str, Any], need_label: bool) -> None:
        """Check that a batch holds what the task needs.

        Args:
            batch: The batch.
            need_label: Whether ``label`` is required.

        Raises:
            ValueError: If a modality or the label is missing, or the GEM
                vector has the wrong width.
        """
        missing = [m for m in self.modalities if m not in batch]
        if need_label and "label" not in batch:
            missing.append("label")
        if missing:
            raise ValueError(
                f"batch lacks {missing} required by the task (modalities "
                f"{list(self.modalities)}); batch keys: {sorted(batch)}"
            )
        if "gem" in self.modalities:
            gem = batch["gem"]
            width = gem.shape[-1] if gem.ndim else None
            if gem.ndim != 2 or width != self.hparams["gem_features"]:
                raise ValueError(
                    f"batch 'gem' has shape {tuple(gem.shape)}, the task expects "
                    f"(B, {self.hparams['gem_features']}); {_gem_hint()}"
                )

    def normalize(self, inputs: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """Normalise raw inputs with the stored statistics.

        Args:
            inputs: Raw tensors by modality name (others are ignored).

        Returns:
            Tensors of the configured modalities, normalised, in the dtype of
            the task's buffers.
        """
        dtype = self.threshold.dtype  # float32, or the dtype of a "true" precision
        out: dict[str, Tensor] = {}
        for name in self.modalities:
            x = inputs[name].to(dtype)
            if name in NORMALIZED:
                mean: Tensor = getattr(self, f"{name}_mean")
                std: Tensor = getattr(self, f"{name}_std")
                x = (x - mean) / std
            out[name] = x
        return out

    def forward(self, *args: Any, **kwargs: Any) -> Tensor:
        """Damage logits from raw (un-normalised) inputs.

        Args:
            args: A batch dict, or nothing.
            kwargs: Tensors by modality name (``sar=``, ``footprint=``,
                ``dsm=``, ``gem=``); ignored keys are allowed.

        Returns:
            Logits of the damaged class, shape ``(B,)``.

        Raises:
            ValueError: If a configured modality is missing or malformed.
        """
        inputs: dict[str, Any] = {}
        for arg in args:
            if not isinstance(arg, Mapping):
                raise TypeError("positional arguments must be batch dicts")
            inputs.update(arg)
        inputs.update(kwargs)
        self._check_batch(inputs, need_label=False)
        normalized = self.normalize(inputs)
        device = next(iter(normalized.values())).device
        if (
            self.hparams.get("amp", False)
            and device.type == "cuda"
            and not torch.is_autocast_enabled("cuda")
        ):
            with torch.autocast("cuda", dtype=torch.bfloat16):
                logits: Tensor = self.model(**normalized)
            return logits.float()
        logits = self.model(**normalized)
        return logits

    # -- steps -----------------------------------------------------------------

    def training_step(
        self, batch: Any, batch_idx: int, dataloader_idx: int = 0
    ) -> Tensor:
        """Compute the training loss.

        Args:
            batch: The output of your DataLoader.
            batch_idx: Integer displaying index of this batch.
            dataloader_idx: Index of the current dataloader.

        Returns:
            The loss tensor.
        """
        self._check_batch(batch, need_label=True)
        y = batch["label"].float()
        logits = self(batch)
        loss: Tensor = self.criterion(logits, y)
        self.log("train_loss", loss, batch_size=y.shape[0])
        return loss

    def _collect(self, stage: str, batch: Any) -> None:
        """Predict a validation or test batch and keep the outputs.

        Args:
            stage: ``"val"`` or ``"test"``.
            batch: The batch.
        """
        self._check_batch(batch, need_label=True)
        logits = self(batch).detach().float()
        ids = batch.get("building_id")
        self._outputs.setdefault(stage, []).append(
            (logits, batch["label"].detach(), None if ids is None else ids.detach())
        )

    def validation_step(
        self, batch: Any, batch_idx: int, dataloader_idx: int = 0
    ) -> None:
        """Predict a validation batch; metrics follow at the end of the epoch.

        Args:
            batch: The output of your DataLoader.
            batch_idx: Integer displaying index of this batch.
            dataloader_idx: Index of the current dataloader.
        """
        self._collect("val", batch)

    def test_step(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None:
        """Predict a test batch; metrics follow at the end of the epoch.

        Args:
            batch: The output of your DataLoader.
            batch_idx: Integer displaying index of this batch.
            dataloader_idx: Index of the current dataloader.
        """
        self._collect("test", batch)

    def predict_step(
        self, batch: Any, batch_idx: int, dataloader_idx: int = 0
    ) -> dict[str, Any]:
        """Predict damage probabilities and classes.

        Args:
            batch: The output of your DataLoader.
            batch_idx: Integer displaying index of this batch.
            dataloader_idx: Index of the current dataloader.

        Returns:
            ``prob`` (probability of damage, ``(B,)``), ``pred`` (1 where
            ``prob >= threshold``, the stored validation threshold) and, when in
            the batch, ``building_id``, ``centroid``, ``city`` and ``label``.
        """
        probs = torch.sigmoid(self(batch).float())
        out: dict[str, Any] = {
            "prob": probs,
            "pred": (probs >= self.threshold).long(),
        }
        for key in ("building_id", "centroid", "city", "label"):
            if key in batch:
                out[key] = batch[key]
        return out

    # -- epoch ends ------------------------------------------------------------

    def on_validation_epoch_start(self) -> None:
        """Forget the outputs of earlier validation epochs."""
        self._outputs["val"] = []

    def on_test_epoch_start(self) -> None:
        """Check the data module; forget the outputs of earlier test epochs."""
        self._check_datamodule(check_spec=True)
        self._outputs["test"] = []

    def on_predict_epoch_start(self) -> None:
        """Check the data module before predicting; warn without a threshold."""
        self._check_datamodule(check_spec=True)
        if not bool(self.threshold_set):
            warnings.warn(
                "no validation threshold stored (the model never ran a validation "
                "epoch with damaged buildings): predictions use the threshold "
                f"{float(self.threshold)}",
                UserWarning,
                stacklevel=2,
            )

    def _all_gather_cat(self, tensor: Tensor) -> Tensor:
        """Concatenate a tensor of any length over all processes.

        Args:
            tensor: Local tensor, first dimension of any length.

        Returns:
            The tensors of all ranks concatenated in rank order.
        """
        world = self.trainer.world_size if self._trainer is not None else 1
        if world == 1:
            return tensor
        size = torch.tensor([tensor.shape[0]], device=tensor.device)
        all_sizes = self.all_gather(size)
        assert isinstance(all_sizes, Tensor)
        sizes = [int(n) for n in all_sizes.reshape(-1).tolist()]
        pad = tensor.new_zeros((max(sizes) - tensor.shape[0], *tensor.shape[1:]))
        gathered = self.all_gather(torch.cat([tensor, pad]))
        assert isinstance(gathered, Tensor)
        return torch.cat([gathered[r, :n] for r, n in enumerate(sizes)])

    def _gather(self, stage: str) -> tuple[Tensor, Tensor, Tensor | None]:
        """Gather the outputs of an epoch over all processes.

        Args:
            stage: ``"val"`` or ``"test"``.

        Returns:
            Logits, labels and building ids (None if batches had none).
        """
        outputs = self._outputs.get(stage, [])
        self._outputs[stage] = []
        logits = torch.zeros(0, device=self.device)
        labels = torch.zeros(0, dtype=torch.long, device=self.device)
        ids: Tensor | None = None
        if outputs:
            logits = torch.cat([o[0] for o in outputs])
            labels = torch.cat([o[1] for o in outputs]).long()
            id_parts = [o[2] for o in outputs if o[2] is not None]
            if len(id_parts) == len(outputs):
                ids = torch.cat(id_parts).long()
        logits = self._all_gather_cat(logits)
        labels = self._all_gather_cat(labels)
        if ids is not None:
            ids = self._all_gather_cat(ids)
        return logits, labels, ids

    def _epoch_metrics(
        self, stage: str
    ) -> tuple[EpochPredictions, float, dict[str, float]] | None:
        """Loss and threshold-free metrics of a gathered epoch.

        Args:
            stage: ``"val"`` or ``"test"``.

        Returns:
            Predictions, loss and ranking metrics; None for an empty epoch.
        """
        logits, labels, ids = self._gather(stage)
        if logits.numel() == 0:
            return None
        if ids is not None and self.trainer.world_size > 1:
            # A distributed sampler repeats samples to even out the ranks.
            _, first = np.unique(ids.cpu().numpy(), return_index=True)
            keep = torch.from_numpy(np.sort(first)).to(logits.device)
            logits, labels, ids = logits[keep], labels[keep], ids[keep]
        loss = float(self.criterion(logits, labels.float()))
        preds = EpochPredictions(
            probs=torch.sigmoid(logits.double()).cpu().numpy(),
            labels=labels.cpu().numpy().astype(np.int64),
            building_ids=None if ids is None else ids.cpu().numpy().astype(np.int64),
        )
        return preds, loss, ranking_metrics(preds.probs, preds.labels)

    def _log_all(self, values: Mapping[str, float]) -> None:
        """Log epoch-level values (already equal on every process).

        Args:
            values: Metric values by name.
        """
        for name, value in values.items():
            self.log(name, float(value), sync_dist=True)

    def on_validation_epoch_end(self) -> None:
        """Choose the best-F1 threshold and log the validation metrics."""
        result = self._epoch_metrics("val")
        if result is None:
            return
        preds, loss, ranking = result
        chosen = False
        threshold = best_f1_threshold(preds.probs, preds.labels)
        if math.isnan(threshold):
            threshold = float(self.threshold)  # keep the stored one
        else:
            # Same decisions on this data, robust to float32 storage and to
            # float32 / bfloat16 probabilities at prediction time.
            threshold = decision_threshold(preds.probs, threshold)
            chosen = True
        if chosen and not self.trainer.sanity_checking:
            self.threshold.fill_(threshold)
            self.threshold_set.fill_(True)
        if not self.trainer.sanity_checking:
            self.last_predictions["val"] = preds
        metrics = threshold_metrics(preds.probs, preds.labels, threshold)
        self._log_all(
            {
                "val_loss": loss,
                **{f"val_{k}": v for k, v in metrics.items()},
                "val_auroc": ranking["auroc"],
                "val_ap": ranking["ap"],
                "val_threshold": threshold,
            }
        )

    def on_test_epoch_end(self) -> None:
        """Log the test metrics at the test-set and the validation threshold."""
        result = self._epoch_metrics("test")
        if result is None:
            return
        preds, loss, ranking = result
        self.last_predictions["test"] = preds
        best = best_f1_threshold(preds.probs, preds.labels)
        if math.isnan(best):
            at_best = dict.fromkeys(("precision", "recall", "f1", "kappa"), math.nan)
        else:
            at_best = threshold_metrics(preds.probs, preds.labels, best)
        if not bool(self.threshold_set):
            warnings.warn(
                "no validation threshold stored (no validation epoch was run); "
                f"*_valthr metrics use {float(self.threshold)}",
                UserWarning,
                stacklevel=2,
            )
        at_val = threshold_metrics(preds.probs, preds.labels, float(self.threshold))
        self._log_all(
            {
                "test_loss": loss,
                **{f"test_{k}": v for k, v in at_best.items()},
                "test_auroc": ranking["auroc"],
                "test_ap": ranking["ap"],
                "test_threshold": best,
                **{f"test_{k}_valthr": v for k, v in at_val.items()},
                "test_threshold_valthr": float(self.threshold),
            }
        )

    # -- checkpoints -----------------------------------------------------------

    @classmethod
    def load_from_checkpoint(
        cls,
        checkpoint_path: str | os.PathLike[str] | IO[bytes],
        *args: Any,
        **kwargs: Any,
    ) -> DamageDetectionTask:
        """Load a task from a checkpoint, naming the file in mismatch errors.

        Same as :meth:`lightning.pytorch.LightningModule.load_from_checkpoint`.

        Args:
            checkpoint_path: The checkpoint file (or a file object).
            args: Positional arguments of the Lightning method.
            kwargs: Keyword arguments of the Lightning method, e.g.
                ``map_location`` or hyper-parameters to override.

        Returns:
            The task, with weights, buffers and :attr:`input_spec` restored.

        Raises:
            ValueError: If the checkpoint was trained with other modalities or
                GEM width than requested (the message names the file).
        """
        source: str | IO[bytes] = (
            os.fspath(checkpoint_path)
            if isinstance(checkpoint_path, str | os.PathLike)
            else checkpoint_path
        )
        token = _LOADING.set(source if isinstance(source, str) else None)
        try:
            task = super().load_from_checkpoint(source, *args, **kwargs)
        finally:
            _LOADING.reset(token)
        assert isinstance(task, DamageDetectionTask)
        return task

    def _checkpoint_name(self) -> str:
        """Name the checkpoint being loaded, for error messages.

        Returns:
            ``checkpoint '<path>'`` when known, else ``checkpoint``.
        """
        path = _LOADING.get()
        if path is None and self._trainer is not None:
            ckpt = self._trainer.ckpt_path
            path = None if ckpt is None else os.fspath(ckpt)
        return "checkpoint" if path is None else f"checkpoint {path!r}"

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Save :attr:`input_spec` under :data:`INPUT_SPEC_KEY`.

        Args:
            checkpoint: The checkpoint being saved.
        """
        if self.input_spec is not None:
            checkpoint[INPUT_SPEC_KEY] = dict(self.input_spec)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Refuse checkpoints trained with other modalities or GEM width.

        Also restores :attr:`input_spec` (None for checkpoints without one).

        Args:
            checkpoint: The loaded checkpoint.

        Raises:
            ValueError: If the checkpoint's modalities or GEM width differ from
                this task's, or its input spec is malformed; the message names
                the file where known and the configuration that fits it.
        """
        name = self._checkpoint_name()
        # The network's own record (its extra state) first: keyword arguments
        # of load_from_checkpoint overwrite the saved hyper-parameters.
        hparams = dict(checkpoint.get("hyper_parameters", {}))
        extra = checkpoint.get("state_dict", {}).get("model._extra_state")
        if isinstance(extra, Mapping):
            for key in ("modalities", "gem_features"):
                if key in extra:
                    hparams[key] = extra[key]
        if "modalities" in hparams:
            saved = canonical_modalities(hparams["modalities"])
            if saved != self.modalities:
                raise ValueError(
                    f"{name} was trained with modalities {list(saved)}, but "
                    f"this task is configured with modalities {list(self.modalities)}"
                    f": use the configuration with {_config_hint(saved)} for this "
                    "checkpoint, or a checkpoint trained with "
                    f"{_config_hint(self.modalities)}"
                )
        saved_gem = hparams.get("gem_features")
        if (
            "gem" in self.modalities
            and saved_gem is not None
            and saved_gem != self.hparams["gem_features"]
        ):
            raise ValueError(
                f"{name} was trained with gem_features={saved_gem}, but this "
                f"task is configured with gem_features={self.hparams['gem_features']}"
                f": set model.init_args.gem_features to {saved_gem} for this "
                "checkpoint, or retrain the model on the current GEM vector "
                f"({_gem_hint()})"
            )
        spec = checkpoint.get(INPUT_SPEC_KEY)
        self.input_spec = (
            None if spec is None else validate_input_spec(spec, f"{name} input spec")
        )
