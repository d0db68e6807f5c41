"""Lightning trainers and metrics for earthquake building-damage detection."""

from .damage import (
    INPUT_SPEC_KEY,
    DamageDetectionTask,
    EpochPredictions,
    validate_input_spec,
)
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
    "best_f1_threshold",
    "confusion_counts",
    "decision_threshold",
    "ranking_metrics",
    "threshold_metrics",
    "validate_input_spec",
]
