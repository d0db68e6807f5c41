"""TorchGeo trainer for building-damage detection with the late-fusion model.

:class:`DamageDetectionTask` is the Lightning task. Its validation and test
steps, threshold and metrics are in
:class:`~torchgeo_quake.trainers.evaluation.EvaluationMixin`; it delegates its
other jobs to the modules ``normalization`` (inputs), ``calibration`` (Platt
scaling), ``data_checks`` (batches, data module, input spec), ``checkpoint``
(compatibility), ``finetune`` (``init_from``), ``optimization``, ``precision``
and ``seeding`` of :mod:`torchgeo_quake.trainers`.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping, Sequence
from typing import IO, Any, Literal, Self

import lightning.pytorch.utilities.types
import torch
import torch.nn as nn
from torch import Tensor
from torchgeo.trainers import BaseTask

from ..models import MODALITIES, LateFusionNet, canonical_modalities
from .calibration import restore_calibration
from .checkpoint import check_compatible, checkpoint_name, is_restoring, restoring
from .collection import EpochPredictions
from .data_checks import check_batch, check_datamodule, warn_other_inputs
from .evaluation import EvaluationMixin
from .finetune import INIT_WEIGHTS as INIT_WEIGHTS
from .finetune import (
    FineTuneInit,
    apply_init_from,
    check_init_found,
    check_init_spec,
    encoder_modules,
    warn_init_stats_kept,
)
from .input_spec import INPUT_SPEC_KEY, InputSpec, validate_input_spec
from .input_spec import RADIOMETRIES as RADIOMETRIES
from .input_spec import SAR_RES_TOLERANCE as SAR_RES_TOLERANCE
from .input_stats import (
    INPUT_STATS_KEY,
    datamodule_statistics,
    validate_input_statistics,
)
from .normalization import NORMALIZED as NORMALIZED
from .normalization import NormalizationMixin
from .optimization import configure_optimization
from .precision import resolve_precision, warn_amp_deprecated
from .seeding import seed_epoch

__all__ = [
    "INPUT_SPEC_KEY",
    "DamageDetectionTask",
    "EpochPredictions",
    "validate_input_spec",
]

# INPUT_SPEC_KEY, RADIOMETRIES and SAR_RES_TOLERANCE (.input_spec),
# EpochPredictions (.collection), NORMALIZED (.normalization), INIT_WEIGHTS
# (.finetune) and validate_input_spec (.input_spec) are re-exported here.


class DamageDetectionTask(NormalizationMixin, EvaluationMixin, BaseTask):
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

    Validation and test log the metrics of the damaged class over the whole
    epoch (listed in
    :class:`~torchgeo_quake.trainers.evaluation.EvaluationMixin`). Each
    validation epoch fits Platt scaling
    (:mod:`~torchgeo_quake.trainers.calibration`) and chooses the threshold
    that maximises F1 on its precision–recall curve; both are kept in buffers,
    so the checkpoint of the best epoch carries them, and every probability of
    the task (metrics, thresholds, :meth:`predict_step`) is
    ``sigmoid(scale * logit + bias)``. Checkpoints written before 0.2 load
    uncalibrated (scale 1, bias 0), with a warning.

    **Fine-tuning.** ``init_from`` starts the network from a checkpoint of this
    task (e.g. to fine-tune on another event), with every network weight
    (``init_weights="all"``) or the encoders of the modalities both share
    (``"encoders"``); ``freeze_encoders=True`` trains the fusion head only. The
    init is applied once, when the task is built; a task restored from a
    checkpoint does not need the ``init_from`` file. See
    :mod:`~torchgeo_quake.trainers.finetune` for what is loaded and when.

    .. versionadded:: 0.1
    .. versionchanged:: 0.2
       ``init_from``, ``init_weights`` and ``freeze_encoders``; statistics of
       the training inputs (:attr:`input_stats`) in checkpoints; calibrated
       probabilities (Platt scaling) and the ``test_brier``, ``test_ece`` and
       ``test_count_*`` metrics.
    """

    #: ``sar_weights`` is a file path: not saved, so that checkpoints load
    #: anywhere (the weights themselves are in the checkpoint).
    ignore = "sar_weights"

    monitor = "val_f1"
    mode = "max"

    threshold: Tensor
    threshold_set: Tensor

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
        amp: bool | None = None,
        init_from: str | None = None,
        init_weights: Literal["all", "encoders"] = "all",
        freeze_encoders: bool = False,
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
            amp: Deprecated and ignored (a warning says so unless a
                checkpoint is being restored): precision is Lightning's
                ``trainer.precision``, e.g. ``bf16-mixed`` (the experiment
                configurations'; float32 where the hardware has no bfloat16,
                see :mod:`~torchgeo_quake.trainers.precision`) or ``32-true``.
            init_from: Optional checkpoint (``.ckpt``) of this task to start
                from, e.g. ``runs/all_inputs/checkpoints/best.ckpt``, to
                fine-tune on another event. Read safely
                (``weights_only=True``) when the task is built, but not when
                the task is restored from a checkpoint. A file that does not
                exist is reported with a warning here and an error at the start
                of fitting (or testing, ...) unless the trainer restores a
                checkpoint (``ckpt_path``), so that a fine-tuned checkpoint
                still loads after the original one was moved.
            init_weights: What to load from *init_from*: ``"all"`` (every
                network weight; modalities and GEM width must equal the
                checkpoint's) or ``"encoders"`` (the raster encoders and GEM MLP
                of the modalities both share; the fusion head stays freshly
                initialised; encoders of modalities the checkpoint lacks keep
                their default initialisation, with a warning).
            freeze_encoders: Train the fusion head only: the encoders get
                ``requires_grad=False`` (so the optimiser does not see them)
                and stay in evaluation mode during training.

        Raises:
            ValueError: If an argument is invalid, the SAR weights do not fit,
                or *init_from* is not a checkpoint of this task or does not fit
                it (other modalities with ``"all"``, no shared modality, other
                GEM width or architecture); the message names the file.
            FileNotFoundError: If *sar_weights* does not exist.

        .. versionchanged:: 0.2
           *init_from*, *init_weights* and *freeze_encoders*; *amp* is
           deprecated for Lightning's ``trainer.precision``.
        """
        canonical_modalities(modalities)
        if amp is not None and not is_restoring():
            warn_amp_deprecated(amp)
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
        if init_weights not in INIT_WEIGHTS:
            raise ValueError(
                f"init_weights must be 'all' or 'encoders', got {init_weights!r}"
            )
        self.sar_weights = sar_weights
        #: How the model's inputs were made (``radiometry``, ``sar_res``,
        #: ``patch_size``), taken from the data module's ``input_spec()`` at the
        #: start of fitting and saved in checkpoints; None when unknown (data
        #: module without ``input_spec``, or an older checkpoint).
        self.input_spec: dict[str, Any] | None = None
        #: Statistics of the training inputs
        #: (:func:`~torchgeo_quake.trainers.input_stats.input_statistics`),
        #: taken from the data module's training split at the start of fitting
        #: and saved in checkpoints; None when unknown.
        self.input_stats: dict[str, Any] | None = None
        self.last_predictions: dict[str, EpochPredictions] = {}
        super().__init__()

    @property
    def modalities(self) -> tuple[str, ...]:
        """Configured modalities in canonical order."""
        return canonical_modalities(self.hparams["modalities"])

    def configure_models(self) -> None:
        """Initialize the model and the normalisation and threshold buffers.

        Applies ``init_from`` (see
        :func:`~torchgeo_quake.trainers.finetune.apply_init_from`) unless
        the task is being restored from a checkpoint.
        """
        self.model = LateFusionNet(
            modalities=self.hparams["modalities"],
            gem_features=self.hparams["gem_features"],
            hidden_dim=self.hparams["hidden_dim"],
            gem_hidden_dim=self.hparams["gem_hidden_dim"],
            dropout=self.hparams["dropout"],
            sar_weights=self.sar_weights,
        )
        self.configure_normalization(self.hparams["gem_features"])
        self.register_buffer("threshold", torch.tensor(0.5))
        self.register_buffer("threshold_set", torch.tensor(False))
        self.configure_calibration()
        # What init_from did in this process; cleared when a checkpoint of
        # this task is restored (its state replaces the init).
        self._finetune = FineTuneInit()
        if self.hparams.get("init_from") is not None and not is_restoring():
            self._finetune = apply_init_from(
                self, self.model, self.hparams, self.sar_weights
            )
        if self.hparams.get("freeze_encoders", False):
            for module in self.encoder_modules():
                module.requires_grad_(False)

    def encoder_modules(self) -> list[nn.Module]:
        """The encoders of the network: everything but the fusion head.

        Returns:
            The raster encoders (one
            :class:`~torchgeo_quake.models.GroupedResNet18` for all raster
            modalities, or one ResNet-18 each) and the GEM MLP, where present.
            The fusion head is ``self.model.head``.

        .. versionadded:: 0.2
        """
        return encoder_modules(self.model)

    def train(self, mode: bool = True) -> Self:
        """Set training mode, keeping frozen encoders in evaluation mode.

        With ``freeze_encoders=True`` the encoders stay in evaluation mode, so
        that their batch normalisations use, and do not update, the statistics
        they were trained with.

        Args:
            mode: Training (True) or evaluation mode.

        Returns:
            The task.
        """
        super().train(mode)
        if mode and self.hparams.get("freeze_encoders", False):
            for module in self.encoder_modules():
                module.eval()
        return self

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

        See :func:`~torchgeo_quake.trainers.optimization.configure_optimization`.

        Returns:
            Optimizer and, unless ``scheduler="none"``, learning-rate scheduler.
        """
        return configure_optimization(self, self.monitor)

    def _check_batch(self, batch: Mapping[str, Any], need_label: bool) -> None:
        """Check that a batch holds what the task needs.

        Args:
            batch: The batch.
            need_label: Whether ``label`` is required.

        Raises:
            ValueError: If a modality or the label is missing, or the GEM
                vector has the wrong width.
        """
        check_batch(batch, self.modalities, self.hparams["gem_features"], need_label)

    def _check_datamodule(self, check_spec: bool = False) -> None:
        """Check ``init_from`` and that the data module provides our inputs.

        See :func:`~torchgeo_quake.trainers.data_checks.check_datamodule`.

        Args:
            check_spec: Also check the data module's ``input_spec()`` against
                the stored :attr:`input_spec`.
        """
        check_init_found(self._finetune)
        check_datamodule(
            getattr(self.trainer, "datamodule", None),
            self.modalities,
            self.trainer.ckpt_path,
            self.input_spec if check_spec else None,
        )

    def forward(self, *args: Any, **kwargs: Any) -> Tensor:
        """Damage logits from raw (un-normalised) inputs.

        Args:
            args: A batch dict, or nothing.
            kwargs: Tensors by modality name (``sar=``, ``footprint=``,
                ``dsm=``, ``gem=``); ignored keys are allowed.

        Returns:
            Logits of the damaged class, shape ``(B,)``, float32 (also
            under a bfloat16 ``trainer.precision``).

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
        logits: Tensor = self.model(**self.normalize(inputs))
        # Float32 under a bfloat16 trainer.precision too: loss and metrics.
        return logits.float()

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

    def predict_step(
        self, batch: Any, batch_idx: int, dataloader_idx: int = 0
    ) -> dict[str, Any]:
        """Predict damage probabilities and classes.

        Args:
            batch: The output of your DataLoader.
            batch_idx: Integer displaying index of this batch.
            dataloader_idx: Index of the current dataloader.

        Returns:
            ``prob`` (calibrated probability of damage, ``(B,)``), ``pred`` (1 where
            ``prob >= threshold``, the stored validation threshold) and, when in
            the batch, ``building_id``, ``centroid``, ``city`` and ``label``.
        """
        probs = self.calibrate(self(batch).float())
        out: dict[str, Any] = {
            "prob": probs,
            "pred": (probs >= self.threshold).long(),
        }
        for key in ("building_id", "centroid", "city", "label"):
            if key in batch:
                out[key] = batch[key]
        return out

    def setup(self, stage: str) -> None:
        """Train in float32 where the trainer's bfloat16 would be slow.

        See :func:`~torchgeo_quake.trainers.precision.resolve_precision`.

        Args:
            stage: ``"fit"``, ``"validate"``, ``"test"`` or ``"predict"``.

        .. versionadded:: 0.2
        """
        if self._trainer is not None:
            resolve_precision(self._trainer)

    def on_fit_start(self) -> None:
        """Check the data module, take its normalisation statistics and input spec.

        When the network was just initialised from ``init_from`` (not when a
        checkpoint was restored), the data module's input spec must have the
        checkpoint's radiometry and patch size (another SAR pixel size only
        warns), and the statistics copied from the checkpoint are replaced by
        the data module's (kept, with a warning, when it has none).

        The statistics of the training inputs are recorded too
        (:func:`~torchgeo_quake.trainers.input_stats.datamodule_statistics`),
        for the shift check of ``torchgeo-quake map``.

        Raises:
            ValueError: If the data module lacks a modality of the task, its
                statistics do not fit (e.g. a GEM vector of another width), or
                it makes its inputs otherwise than the ``init_from``
                checkpoint's training data.
            FileNotFoundError: If ``init_from`` names a missing file and no
                checkpoint was restored.
        """
        self._check_datamodule()
        datamodule = getattr(self.trainer, "datamodule", None)
        fresh_init = self._finetune.source is not None
        get_stats = getattr(datamodule, "normalization_stats", None)
        if callable(get_stats):
            self.set_normalization(get_stats())
        elif fresh_init and self._finetune.stats:
            warn_init_stats_kept(self._finetune)
        get_spec = getattr(datamodule, "input_spec", None)
        if callable(get_spec):
            spec = InputSpec.from_mapping(get_spec(), "the data module's input_spec()")
            if fresh_init and self._finetune.spec is not None:
                check_init_spec(self._finetune, spec, type(datamodule).__name__)
            else:
                warn_other_inputs(self.input_spec, spec)
            self.input_spec = spec.to_dict()
        stats = datamodule_statistics(datamodule)
        if stats is not None:
            self.input_stats = stats
        self._warn_if_unnormalized()

    def on_train_epoch_start(self) -> None:
        """Seed the random generators from the run's seed and the epoch.

        The shuffling of the training set, the augmentation and dropout of an
        epoch then depend only on the global seed (``seed_everything``), the
        epoch and the process rank, not on what ran before in the process: a
        run resumed from a checkpoint continues exactly as an uninterrupted
        run would (on the CPU, bit for bit); see
        :func:`~torchgeo_quake.trainers.seeding.seed_epoch`.

        With ``freeze_encoders=True`` the encoders are also put in evaluation
        mode (Lightning does not call :meth:`train` at the start of fitting;
        its evaluation loops restore the modes they found).
        """
        if self.hparams.get("freeze_encoders", False):
            for module in self.encoder_modules():
                module.eval()
        seed_epoch(self.current_epoch, self.global_rank)

    def on_validation_epoch_start(self) -> None:
        """Check ``init_from``; forget the outputs of earlier validation epochs."""
        check_init_found(self._finetune)
        self._outputs["val"].reset()

    def on_test_epoch_start(self) -> None:
        """Check the data module; forget the outputs of earlier test epochs."""
        self._check_datamodule(check_spec=True)
        self._outputs["test"].reset()

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
        with restoring(source if isinstance(source, str) else None):
            task = super().load_from_checkpoint(source, *args, **kwargs)
        assert isinstance(task, DamageDetectionTask)
        return task

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Save :attr:`input_spec` and :attr:`input_stats` (when known).

        Args:
            checkpoint: The checkpoint being saved.
        """
        if self.input_spec is not None:
            checkpoint[INPUT_SPEC_KEY] = dict(self.input_spec)
        if self.input_stats is not None:
            checkpoint[INPUT_STATS_KEY] = dict(self.input_stats)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Refuse checkpoints trained with other modalities or GEM width.

        Also restores :attr:`input_spec` and :attr:`input_stats` (None for
        checkpoints without them) and forgets what ``init_from`` loaded: the
        checkpoint's state replaces it.

        Args:
            checkpoint: The loaded checkpoint.

        A checkpoint written before the calibration was stored gets an
        uncalibrated one (scale 1, bias 0), with a warning.

        Raises:
            ValueError: If the checkpoint's modalities or GEM width differ from
                this task's, or its input spec is malformed; the message names
                the file where known and the configuration that fits it.
        """
        name = checkpoint_name(
            None if self._trainer is None else self._trainer.ckpt_path
        )
        check_compatible(
            checkpoint, name, self.modalities, self.hparams["gem_features"]
        )
        # Checkpoints of 0.1 hold no calibration: load them uncalibrated.
        state = checkpoint.get("state_dict")
        if isinstance(state, dict):
            restore_calibration(state, name)
        spec = checkpoint.get(INPUT_SPEC_KEY)
        self.input_spec = (
            None if spec is None else validate_input_spec(spec, f"{name} input spec")
        )
        stats = checkpoint.get(INPUT_STATS_KEY)
        self.input_stats = (
            None if stats is None else validate_input_statistics(stats, name)
        )
        # The restored state replaces whatever init_from loaded.
        self._finetune = FineTuneInit()
