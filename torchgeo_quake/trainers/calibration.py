"""Platt scaling of damage logits, and the task's calibration buffers.

The network's probability ``sigmoid(logit)`` is not a frequency: it is trained
on a sample of intact buildings (about 20 intact per damaged one, not the
city's proportion) with a loss that may weight the damaged class
(``pos_weight``), and both shift the **intercept** of the logit. A temperature
(``sigmoid(logit / T)``) only stretches the logit around 0 and cannot move
that intercept, so it cannot repair the bias the sampling makes; Platt scaling
(Platt, 1999) fits a scale **and** a bias::

    p = sigmoid(scale * logit + bias)

:func:`fit_platt` fits them on held-out logits (the validation split) by
minimising the log loss, :func:`apply_platt` applies them, and
:class:`CalibrationMixin` keeps them in buffers of
:class:`~torchgeo_quake.trainers.DamageDetectionTask`
(``calibration_scale``, ``calibration_bias``, ``calibration_set``), so that a
checkpoint carries the calibration of its epoch. Checkpoints written before
the buffers existed load as uncalibrated (scale 1, bias 0).

A monotone calibration (``scale > 0``) changes no ranking (AUROC, AP) and no
decision at a threshold moved with it; it changes what the probabilities
*mean*: their sum is then an estimate of the number of damaged buildings.

.. versionadded:: 0.2
"""

from __future__ import annotations

import warnings
from collections.abc import MutableMapping
from typing import Any, TypeVar, overload

import numpy as np
import numpy.typing as npt
import torch
import torch.nn as nn
from scipy.special import expit, log_expit
from torch import Tensor

__all__ = [
    "CALIBRATION_BUFFERS",
    "CalibrationMixin",
    "apply_platt",
    "fit_platt",
    "restore_calibration",
]

#: State-dict keys of the calibration, with the values of an uncalibrated task.
CALIBRATION_BUFFERS: dict[str, float | bool] = {
    "calibration_scale": 1.0,
    "calibration_bias": 0.0,
    "calibration_set": False,
}

_Array = TypeVar("_Array", Tensor, npt.NDArray[Any])


def _check_inputs(
    logits: npt.ArrayLike, labels: npt.ArrayLike
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Validate logits and labels for :func:`fit_platt`.

    Args:
        logits: Logits of the damaged class.
        labels: Reference labels, 1 = damaged, 0 = intact.

    Returns:
        Logits and labels as flat float64 arrays.

    Raises:
        ValueError: If they are empty, differ in length, hold non-finite
            logits, labels other than 0/1, or a single class.
    """
    z = np.asarray(logits, dtype=np.float64).reshape(-1)
    y_raw = np.asarray(labels).reshape(-1)
    if z.size == 0:
        raise ValueError(
            "cannot fit a calibration on no predictions: pass the logits and "
            "labels of a held-out split with damaged and intact buildings"
        )
    if z.shape != y_raw.shape:
        raise ValueError(
            f"logits and labels differ in length: {z.size} vs {y_raw.size}"
        )
    if not np.isfinite(z).all():
        raise ValueError("logits contain NaN or infinite values")
    values = np.unique(y_raw)
    if not np.isin(values, (0, 1)).all():
        raise ValueError(f"labels must be 0 or 1, got values {values[:10].tolist()}")
    if values.size < 2:
        raise ValueError(
            f"cannot fit a calibration on one class: all {y_raw.size} labels are "
            f"{int(values[0])} ({'damaged' if values[0] == 1 else 'intact'}); "
            "pass labels with both damaged and intact buildings"
        )
    return z, y_raw.astype(np.float64)


def _log_loss(
    z: npt.NDArray[np.float64], t: npt.NDArray[np.float64], a: float, b: float
) -> float:
    """Cross-entropy of ``sigmoid(a * z + b)`` against soft targets, summed.

    Args:
        z: Logits.
        t: Targets in (0, 1).
        a: Scale.
        b: Bias.

    Returns:
        The summed log loss (stable for large logits).
    """
    s = a * z + b
    return float(-(t * log_expit(s) + (1 - t) * log_expit(-s)).sum())


def fit_platt(logits: npt.ArrayLike, labels: npt.ArrayLike) -> tuple[float, float]:
    """Fit Platt scaling: ``p = sigmoid(scale * logit + bias)``.

    The scale and bias minimise the log loss of the calibrated probabilities
    on *labels*, with Platt's (1999) targets ``(N+ + 1) / (N+ + 2)`` for the
    damaged and ``1 / (N- + 2)`` for the intact buildings instead of 1 and 0:
    a negligible change on a validation split of hundreds of buildings, but a
    finite fit on a handful of labels that the logits separate perfectly
    (where the plain maximum-likelihood scale is infinite). Newton's method in
    float64 with a backtracking line search (the loss is convex in the two
    parameters; about 10 iterations).

    The scale is kept positive, so a calibration never changes the model's
    ranking (AUROC, AP): when the logits rank the labels backwards or not at
    all (fitted scale ≤ 0, e.g. a model after one epoch), only the bias is
    fitted, with scale 1 (``p = sigmoid(logit + bias)``, which matches the
    share of damaged buildings), with a warning.

    Args:
        logits: Logits of the damaged class (any shape, flattened).
        labels: Reference labels, 1 = damaged, 0 = intact, same length.

    Returns:
        ``(scale, bias)``.

    Raises:
        ValueError: If the inputs are empty, differ in length, hold non-finite
            logits, labels other than 0 and 1, or only one class.

    .. versionadded:: 0.2
    """
    z, y = _check_inputs(logits, labels)
    n_pos = float(y.sum())
    n_neg = float(y.size - n_pos)
    t = np.where(y == 1, (n_pos + 1) / (n_pos + 2), 1 / (n_neg + 2))
    base = float(np.log((n_pos + 1) / (n_neg + 1)))
    a, b = 0.0, base
    loss = _log_loss(z, t, a, b)
    for _ in range(100):
        p = expit(a * z + b)
        r = p - t
        grad = np.array([(r * z).sum(), r.sum()])
        w = p * (1 - p)
        hess = np.array([[(w * z * z).sum(), (w * z).sum()], [(w * z).sum(), w.sum()]])
        hess += np.eye(2) * 1e-12 * max(1.0, float(np.trace(hess)))
        step = np.linalg.solve(hess, -grad)
        rate = 1.0
        while rate > 1e-10:
            a_new, b_new = a + rate * step[0], b + rate * step[1]
            new = _log_loss(z, t, a_new, b_new)
            if new <= loss + 1e-4 * rate * float(grad @ step):
                break
            rate /= 2
        else:
            break  # no descent left: at the minimum to float precision
        done = abs(loss - new) <= 1e-12 * max(1.0, abs(loss))
        a, b, loss = float(a_new), float(b_new), new
        if done or float(np.abs(step).max()) * rate < 1e-10:
            break
    if a <= 0:
        warnings.warn(
            f"the logits do not rank the {y.size} labels (fitted scale {a:.3g}): "
            "the calibration fits the bias only (scale 1), keeping the model's "
            "ranking and matching the share of damaged buildings",
            UserWarning,
            stacklevel=2,
        )
        a, b = 1.0, _fit_bias(z, t, base)
    return a, b


def _fit_bias(
    z: npt.NDArray[np.float64], t: npt.NDArray[np.float64], start: float
) -> float:
    """The bias minimising the log loss of ``sigmoid(z + bias)`` (scale 1).

    Args:
        z: Logits.
        t: Targets in (0, 1).
        start: Initial bias.

    Returns:
        The bias (Newton's method with step halving; the loss is convex).
    """
    b = start
    loss = _log_loss(z, t, 1.0, b)
    for _ in range(100):
        p = expit(z + b)
        grad, hess = float((p - t).sum()), float((p * (1 - p)).sum()) + 1e-12
        step, rate = -grad / hess, 1.0
        while rate > 1e-10 and _log_loss(z, t, 1.0, b + rate * step) > loss:
            rate /= 2
        b_new = b + rate * step
        new = _log_loss(z, t, 1.0, b_new)
        if new > loss or abs(rate * step) < 1e-12:
            break
        b, loss = b_new, new
    return float(b)


@overload
def apply_platt(logits: Tensor, scale: float, bias: float) -> Tensor: ...


@overload
def apply_platt(
    logits: npt.NDArray[Any], scale: float, bias: float
) -> npt.NDArray[np.float64]: ...


def apply_platt(
    logits: Tensor | npt.NDArray[Any], scale: float, bias: float
) -> Tensor | npt.NDArray[np.float64]:
    """Calibrated probabilities ``sigmoid(scale * logit + bias)``.

    Args:
        logits: Logits of the damaged class: a tensor (kept on its device and,
            for floating tensors, in its dtype) or an array (float64 result).
        scale: Platt scale (1 with bias 0: the plain sigmoid).
        bias: Platt bias.

    Returns:
        Probabilities of the same kind and shape as *logits*.

    .. versionadded:: 0.2
    """
    if isinstance(logits, Tensor):
        x = logits if logits.is_floating_point() else logits.double()
        return torch.sigmoid(x * scale + bias)
    array = np.asarray(logits, dtype=np.float64)
    return np.asarray(expit(array * scale + bias), dtype=np.float64)


class CalibrationMixin(nn.Module):
    """Platt calibration in buffers of the module, and its use.

    The buffers are top-level keys of the task's state dict:
    ``calibration_scale`` (1.0), ``calibration_bias`` (0.0) and
    ``calibration_set`` (False until a calibration was fitted).

    .. versionadded:: 0.2
    """

    calibration_scale: Tensor
    calibration_bias: Tensor
    calibration_set: Tensor

    def configure_calibration(self) -> None:
        """Register the calibration buffers, uncalibrated."""
        for name, value in CALIBRATION_BUFFERS.items():
            self.register_buffer(name, torch.tensor(value))

    @property
    def calibrated(self) -> bool:
        """Whether a calibration was fitted (else probabilities are sigmoids)."""
        return bool(self.calibration_set)

    @property
    def calibration(self) -> tuple[float, float]:
        """The stored ``(scale, bias)`` (``(1.0, 0.0)`` when uncalibrated)."""
        return float(self.calibration_scale), float(self.calibration_bias)

    def calibrate(self, logits: _Array) -> _Array:
        """Probabilities of damage under the stored calibration.

        Args:
            logits: Logits (tensor or array).

        Returns:
            ``sigmoid(scale * logits + bias)``, of the same kind.
        """
        scale, bias = self.calibration
        return apply_platt(logits, scale, bias)

    def set_calibration(self, scale: float, bias: float) -> None:
        """Store a fitted calibration and mark the task as calibrated.

        Args:
            scale: Platt scale.
            bias: Platt bias.
        """
        self.calibration_scale.fill_(scale)
        self.calibration_bias.fill_(bias)
        self.calibration_set.fill_(True)


def restore_calibration(state: MutableMapping[str, Any], name: str) -> bool:
    """Fill the calibration of a checkpoint written before it was stored.

    Args:
        state: The checkpoint's ``state_dict`` (changed in place).
        name: The checkpoint, for the warning (see
            :func:`~torchgeo_quake.trainers.checkpoint.checkpoint_name`).

    Returns:
        Whether the checkpoint had a calibration stored (False: defaults were
        filled in and a warning says the model is uncalibrated).

    .. versionadded:: 0.2
    """
    missing = [key for key in CALIBRATION_BUFFERS if key not in state]
    if not missing:
        return bool(state["calibration_set"])
    for key in missing:
        state[key] = torch.tensor(CALIBRATION_BUFFERS[key])
    warnings.warn(
        f"{name} stores no probability calibration (it was written before "
        "torchgeo_quake 0.2): its probabilities are uncalibrated sigmoids of the "
        "logits, so their sum is no estimate of the number of damaged buildings; "
        "retrain or validate the model with torchgeo_quake 0.2 to calibrate it",
        UserWarning,
        stacklevel=3,
    )
    return False
