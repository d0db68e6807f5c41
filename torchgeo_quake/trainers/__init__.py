"""Lightning trainers and metrics for earthquake building-damage detection."""

from .collection import EpochPredictions
from .damage import DamageDetectionTask
from .input_spec import INPUT_SPEC_KEY, InputSpec, InputSpecError, validate_input_spec
from .metrics import (
    best_f1_threshold,
    confusion_counts,
    decision_threshold,
    ranking_metrics,
    threshold_metrics,
)
from .writer import PREDICTION_COLUMNS, DamagePredictionWriter

__all__ = [
    "INPUT_SPEC_KEY",
    "PREDICTION_COLUMNS",
    "DamageDetectionTask",
    "DamagePredictionWriter",
    "EpochPredictions",
    "InputSpec",
    "InputSpecError",
    "best_f1_threshold",
    "confusion_counts",
    "decision_threshold",
    "ranking_metrics",
    "threshold_metrics",
    "validate_input_spec",
]
