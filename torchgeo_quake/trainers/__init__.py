"""Lightning trainers and metrics for earthquake building-damage detection."""

from .calibration import apply_platt, fit_platt
from .callbacks import RunSummary
from .collection import EpochPredictions
from .damage import DamageDetectionTask
from .input_spec import INPUT_SPEC_KEY, InputSpec, InputSpecError, validate_input_spec
from .metrics import (
    ReliabilityCurve,
    best_f1_threshold,
    brier_score,
    calibration_metrics,
    confusion_counts,
    decision_threshold,
    expected_calibration_error,
    ranking_metrics,
    reliability_curve,
    threshold_metrics,
)
from .run_dir import RunCSVLogger, RunDirectory, RunTensorBoardLogger
from .writer import PREDICTION_COLUMNS, DamagePredictionWriter

__all__ = [
    "INPUT_SPEC_KEY",
    "PREDICTION_COLUMNS",
    "DamageDetectionTask",
    "DamagePredictionWriter",
    "EpochPredictions",
    "InputSpec",
    "InputSpecError",
    "ReliabilityCurve",
    "RunCSVLogger",
    "RunDirectory",
    "RunSummary",
    "RunTensorBoardLogger",
    "apply_platt",
    "best_f1_threshold",
    "brier_score",
    "calibration_metrics",
    "confusion_counts",
    "decision_threshold",
    "expected_calibration_error",
    "fit_platt",
    "ranking_metrics",
    "reliability_curve",
    "threshold_metrics",
    "validate_input_spec",
]
