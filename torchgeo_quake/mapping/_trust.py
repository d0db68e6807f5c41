"""What a damage map can be trusted with (private helpers of ``map_damage``).

Three stages around the prediction:

* before it, the **shift check** (:func:`check_shift`): the statistics of the
  training inputs stored in the checkpoint are compared with those of a sample
  of the new city's building windows (:mod:`~torchgeo_quake.mapping.shift`),
  a warning is printed for every input out of bounds, and with
  ``--adapt-radiometry`` the SAR values are mapped to the training levels;
* the **labels** of ``--calibration-labels`` are read and joined to the
  footprints early, so that a wrong file stops the run before the prediction
  (:func:`read_labels`);
* after it, the probabilities are **recalibrated** on those labels
  (:func:`recalibrated_results`), and the ``calibration`` section of the
  summary says what the probabilities are (:func:`calibration_section`).
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from ..trainers.input_stats import input_statistics
from ..utils import is_global_zero
from ._prediction import _Patches
from .recalibration import (
    CalibrationLabels,
    Recalibration,
    read_calibration_labels,
    recalibrate,
)
from .shift import measure_shift, radiometric_adaptation

if TYPE_CHECKING:
    from ._area import Area, Footprints
    from ._writing import Results
    from .model import LoadedModel
    from .settings import MapSettings

#: Building windows whose inputs enter the shift check (spread evenly over the
#: buildings to score, in their spatial order).
SHIFT_SAMPLE = 1000

#: AUROC on the calibration labels below which the map warns that the model
#: barely ranks them.
WEAK_RANKING = 0.6

#: Inputs described for the shift check.
_KEYS = ("sar", "dsm", "footprint", "gem")


def _sample_arrays(
    model: LoadedModel, area: Area, count: int
) -> dict[str, npt.NDArray[Any]]:
    """The model's inputs on a sample of the buildings to score.

    Args:
        model: the model (its modalities)
        area: the buildings to score
        count: most buildings in the sample

    Returns:
        Sample arrays (raw inputs, as the model receives them) by key.
    """
    n = len(area.windows)
    picks = np.unique(np.linspace(0, n - 1, min(n, count)).round().astype(np.int64))
    keys = [k for k in _KEYS if k in model.modalities]
    patches = _Patches(area.dataset, area.windows[picks], area.res, keys)
    samples = [patches[i] for i in range(len(patches))]
    return {k: np.stack([s[k].numpy() for s in samples]) for k in keys}


def check_shift(
    model: LoadedModel,
    area: Area,
    *,
    adapt: bool,
    say: Callable[[str], None],
) -> tuple[dict[str, Any], tuple[float, float] | None]:
    """Compare the new inputs with the training inputs; adapt the SAR values.

    The verdict (within the training range, the shift warnings, or why the
    shift was not checked) goes into the returned section only: the printed
    report of ``torchgeo-quake map`` shows it once, at the end
    (:func:`~torchgeo_quake.mapping._html_notes.report_lines`), and each
    shift warning is also raised as a :class:`UserWarning`.

    Args:
        model: the model (its training statistics, ``task.input_stats``)
        area: the buildings to score
        adapt: map the SAR values to the training median and interquartile
            range (``--adapt-radiometry``)
        say: function printing progress messages

    Returns:
        The ``shift`` section of the summary, and the ``(scale, offset)``
        applied to the SAR values (None: none).

    Raises:
        ValueError: If *adapt* is asked for with a checkpoint without training
            statistics.
    """
    from ..datasets import GEM_FEATURE_NAMES

    train = model.task.input_stats
    if train is None:
        if adapt:
            raise ValueError(
                f"--adapt-radiometry needs the statistics of the training inputs, "
                f"which checkpoint {str(model.path)!r} does not hold (it was "
                "trained before torchgeo_quake 0.2 recorded them); retrain the "
                "model, or map without --adapt-radiometry."
            )
        return measure_shift(None, {}, model.modalities), None
    if not len(area.windows):
        empty = {"checked": False, "reason": "no building to score", "warnings": []}
        return empty, None
    arrays = _sample_arrays(model, area, SHIFT_SAMPLE)
    new = input_statistics(arrays)
    section = measure_shift(
        train, new, model.modalities, arrays.get("gem"), GEM_FEATURE_NAMES
    )
    if is_global_zero():  # once, not per process of a DDP run
        for text in section["warnings"]:
            message = f"input shift: {text}; the model may be out of its depth here"
            warnings.warn(message, UserWarning, stacklevel=2)
    section["adapt_radiometry"] = None
    if not adapt:
        return section, None
    scale, offset = radiometric_adaptation(train, new)
    say(f"SAR values adapted to the training levels: x * {scale:.4g} + {offset:.4g}")
    section["adapt_radiometry"] = {"scale": round(scale, 6), "offset": round(offset, 6)}
    return section, (scale, offset)


def read_labels(
    settings: MapSettings, footprints: Footprints
) -> CalibrationLabels | None:
    """Read ``--calibration-labels`` and join them to the footprints.

    Args:
        settings: the map's settings
        footprints: the footprints, as read

    Returns:
        The labels, or None without a file.

    Raises:
        FileNotFoundError: If the file does not exist.
        ValueError: If the file is unusable (see
            :func:`~torchgeo_quake.mapping.recalibration.read_calibration_labels`).
    """
    if settings.calibration_labels is None:
        return None
    return read_calibration_labels(
        Path(settings.calibration_labels),
        footprints.frame[settings.id_field],
        footprints.geoms,
        footprints.crs,
        settings.id_field,
    )


def recalibrated_results(
    results: Results, labels: CalibrationLabels | None, say: Callable[[str], None]
) -> tuple[Results, Recalibration | None]:
    """The results with probabilities and threshold refitted on the labels.

    Args:
        results: what the map says of every feature
        labels: graded buildings, or None
        say: function printing progress messages

    Returns:
        The new results (the same without labels) and the recalibration.

    Raises:
        ValueError: If the labelled buildings that were scored are of one class
            only, or none was scored.
    """
    if labels is None:
        return results, None
    recal = recalibrate(results.probs, labels)
    if not recal.auroc >= WEAK_RANKING:
        message = (
            f"the model barely ranks the {recal.used} labelled buildings of "
            f"{str(labels.path)!r} (AUROC {recal.auroc:.2f}): the recalibrated "
            "probabilities are close to their share of damaged buildings and the "
            "damaged/intact classes of the map are unreliable; read the expected "
            "count and its interval"
        )
        say(message)
        warnings.warn(message, UserWarning, stacklevel=2)
    probs = recal.apply(results.probs)
    damaged = np.isfinite(probs) & (
        probs.astype(np.float32) >= np.float32(recal.threshold)
    )
    say(
        f"recalibrated on {recal.used} labelled buildings ({recal.damaged} damaged): "
        f"scale {recal.scale:.3g}, bias {recal.bias:.3g}, threshold "
        f"{recal.threshold:.3f}"
    )
    new = dataclasses.replace(
        results,
        probs=probs,
        damaged=damaged,
        threshold=recal.threshold,
        replicates=recal.replicate_probs(results.probs),
    )
    return new, recal


def calibration_section(
    model: LoadedModel, labels: CalibrationLabels | None, recal: Recalibration | None
) -> dict[str, Any]:
    """The ``calibration`` section of the summary.

    Args:
        model: the model
        labels: graded buildings, or None
        recal: their recalibration, or None

    Returns:
        ``probabilities`` (``"recalibrated"``, ``"calibrated"`` or
        ``"uncalibrated"``), the checkpoint's ``scale``/``bias`` and, after a
        recalibration, ``labels_file``, ``labels_read`` and ``recalibration``.
    """
    section: dict[str, Any] = {
        "probabilities": "calibrated" if model.calibrated else "uncalibrated",
        "checkpoint_calibrated": model.calibrated,
        "checkpoint_scale": model.calibration_scale,
        "checkpoint_bias": model.calibration_bias,
    }
    if recal is not None and labels is not None:
        section["probabilities"] = "recalibrated"
        section["labels_file"] = str(labels.path)
        section["labels_read"] = labels.read
        section["recalibration"] = recal.as_dict()
    return section
