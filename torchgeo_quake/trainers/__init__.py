"""Lightning trainers and metrics for earthquake building-damage detection."""

from .damage import DamageDetectionTask, EpochPredictions
from .metrics import (
    best_f1_threshold,
    confusion_counts,
    decision_threshold,
    ranking_metrics,
    threshold_metrics,
)

__all__ = [
    "DamageDetectionTask",
    "EpochPredictions",
    "best_f1_threshold",
    "confusion_counts",
    "decision_threshold",
    "ranking_metrics",
    "threshold_metrics",
]
