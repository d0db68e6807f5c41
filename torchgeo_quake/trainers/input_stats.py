"""Statistics of a model's training inputs, stored in its checkpoint.

A :class:`~torchgeo_quake.trainers.DamageDetectionTask` records, at the start
of fitting, a few statistics of the inputs of its training split
(:func:`input_statistics`), so that ``torchgeo-quake map`` can tell when the
inputs of a new city are unlike anything the model was trained on (see
:mod:`torchgeo_quake.mapping.shift`). The same function computes the
statistics of the new inputs, so both sides measure the same thing:

* ``sar``: quantiles (:data:`QUANTILES`), mean and standard deviation of every
  pixel of the SAR windows, in the model's radiometry (dB by default), on at
  most :data:`MAX_SAR_WINDOWS` windows spread evenly over the samples;
* ``dsm_relief``: quantiles of the relief of each DSM window (its highest
  minus its lowest height, metres);
* ``footprint_pixels``: quantiles of the footprint area of each window, in
  SAR pixels (on the pixel size of the input specification);
* ``gem``: per exposure feature, the minimum, maximum, mean and standard
  deviation (every sample).

Only the inputs present are described. The record is a plain dict of numbers
and lists (:data:`INPUT_STATS_KEY` in the checkpoint), read back with
:func:`validate_input_statistics`.

.. versionadded:: 0.2
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = [
    "INPUT_STATS_KEY",
    "MAX_SAR_WINDOWS",
    "QUANTILES",
    "datamodule_statistics",
    "input_statistics",
    "validate_input_statistics",
]

#: Checkpoint key under which :func:`input_statistics` is stored.
INPUT_STATS_KEY = "torchgeo_quake_input_stats"

#: Quantiles recorded for the SAR pixels, the DSM relief and the footprints.
QUANTILES: tuple[float, ...] = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)

#: Most SAR windows whose pixels enter the SAR quantiles (evenly spread).
MAX_SAR_WINDOWS = 4096

#: Version of the record's layout.
_VERSION = 1

#: Most samples read one by one from a data set without sample arrays.
_MAX_READ_SAMPLES = 2048


def _quantiles(values: npt.NDArray[Any]) -> list[float]:
    """The :data:`QUANTILES` of the finite values.

    Args:
        values: numbers of any shape

    Returns:
        One value per quantile (NaN without finite values).
    """
    flat = np.asarray(values, dtype=np.float64).ravel()
    flat = flat[np.isfinite(flat)]
    if not len(flat):
        return [math.nan] * len(QUANTILES)
    return [float(q) for q in np.quantile(flat, QUANTILES)]


def _spread(n: int, most: int) -> npt.NDArray[np.int64]:
    """At most *most* indices spread evenly over ``range(n)``.

    Args:
        n: number of items
        most: largest number of indices

    Returns:
        Sorted, distinct indices.
    """
    if n <= most:
        return np.arange(n, dtype=np.int64)
    return np.unique(np.linspace(0, n - 1, most).round().astype(np.int64))


def input_statistics(arrays: Mapping[str, npt.NDArray[Any]]) -> dict[str, Any]:
    """Statistics of model inputs (see the module's description).

    Args:
        arrays: sample arrays with the sample axis first: ``sar``, ``dsm``,
            ``footprint`` (N, 1, H, W) and ``gem`` (N, F), any of them; other
            keys are ignored

    Returns:
        ``version``, ``samples``, ``quantiles`` and one entry per input present
        (``sar``, ``dsm_relief``, ``footprint_pixels``, ``gem``).

    Raises:
        ValueError: If the arrays hold different numbers of samples.

    .. versionadded:: 0.2
    """
    sizes = {k: len(v) for k, v in arrays.items() if k in _INPUTS}
    if len(set(sizes.values())) > 1:
        raise ValueError(f"input arrays of different lengths: {sizes}")
    n = next(iter(sizes.values()), 0)
    stats: dict[str, Any] = {
        "version": _VERSION,
        "samples": int(n),
        "quantiles": list(QUANTILES),
    }
    if "sar" in arrays:
        sar = np.asarray(arrays["sar"])[_spread(n, MAX_SAR_WINDOWS)]
        values = sar.astype(np.float64).ravel()
        values = values[np.isfinite(values)]
        stats["sar"] = {
            "quantiles": _quantiles(values),
            "mean": float(values.mean()) if len(values) else math.nan,
            "std": float(values.std()) if len(values) else math.nan,
        }
    if "dsm" in arrays:
        dsm = np.asarray(arrays["dsm"], dtype=np.float64).reshape(n, -1)
        relief = (dsm.max(axis=1) - dsm.min(axis=1)) if n else np.zeros(0)
        stats["dsm_relief"] = {"quantiles": _quantiles(relief)}
    if "footprint" in arrays:
        mask = np.asarray(arrays["footprint"]).reshape(n, -1)
        stats["footprint_pixels"] = {"quantiles": _quantiles((mask > 0).sum(axis=1))}
    if "gem" in arrays:
        gem = np.asarray(arrays["gem"], dtype=np.float64).reshape(n, -1)
        empty = [math.nan] * gem.shape[1]
        stats["gem"] = {
            "min": gem.min(axis=0).tolist() if n else empty,
            "max": gem.max(axis=0).tolist() if n else empty,
            "mean": gem.mean(axis=0).tolist() if n else empty,
            "std": gem.std(axis=0).tolist() if n else empty,
        }
    return stats


#: Sample keys described by :func:`input_statistics`.
_INPUTS = ("sar", "dsm", "footprint", "gem")


def _read_samples(dataset: Any, indices: npt.NDArray[np.int64]) -> dict[str, Any]:
    """Sample arrays read one sample at a time.

    Args:
        dataset: a map-style data set of sample dicts
        indices: samples to read

    Returns:
        Stacked arrays of the keys of :data:`_INPUTS` present in every sample.
    """
    samples = [dataset[int(i)] for i in indices]
    keys = [k for k in _INPUTS if samples and all(k in s for s in samples)]
    return {k: np.stack([np.asarray(s[k]) for s in samples]) for k in keys}


def datamodule_statistics(datamodule: Any) -> dict[str, Any] | None:
    """Statistics of the training split of a data module.

    In order: the data module's own ``input_statistics()`` if it has one; the
    sample arrays (``arrays()``) of its ``train_dataset`` (or, for a
    :class:`~torch.utils.data.Subset`, of its data set at the subset's
    indices), as in
    :class:`~torchgeo_quake.datamodules.BuildingDamageDataModule`; at most
    2048 samples of its ``train_dataset`` read one by one (spread evenly).

    Args:
        datamodule: a Lightning data module, or None

    Returns:
        :func:`input_statistics` of the training split, or None when the data
        module has neither method nor ``train_dataset``.

    .. versionadded:: 0.2
    """
    own = getattr(datamodule, "input_statistics", None)
    if callable(own):
        stats: dict[str, Any] = own()
        return stats
    train = getattr(datamodule, "train_dataset", None)
    if train is None:
        return None
    indices: npt.NDArray[np.int64] | None = None
    source = train
    if hasattr(train, "indices") and hasattr(train, "dataset"):  # a Subset
        indices = np.asarray(train.indices, dtype=np.int64)
        source = train.dataset
    arrays_of = getattr(source, "arrays", None)
    if callable(arrays_of):
        arrays = {k: v for k, v in arrays_of().items() if k in _INPUTS}
        if indices is not None:
            arrays = {k: np.asarray(v)[indices] for k, v in arrays.items()}
        return input_statistics(arrays)
    picks = _spread(len(train), _MAX_READ_SAMPLES)
    return input_statistics(_read_samples(train, picks))


def validate_input_statistics(stats: Any, what: str) -> dict[str, Any]:
    """Check a record of :func:`input_statistics` read from a checkpoint.

    Args:
        stats: the record
        what: what it is, for messages (e.g. the checkpoint's name)

    Returns:
        The record, as a dict.

    Raises:
        ValueError: If it is not a dict of the layout of
            :func:`input_statistics`.

    .. versionadded:: 0.2
    """
    if not isinstance(stats, Mapping) or "quantiles" not in stats:
        raise ValueError(
            f"{what}: input statistics must be a dict written by "
            f"input_statistics(), got {type(stats).__name__}"
        )
    width = len(stats["quantiles"])
    for key in ("sar", "dsm_relief", "footprint_pixels"):
        entry = stats.get(key)
        if entry is not None and not (
            isinstance(entry, Mapping) and len(entry.get("quantiles", ())) == width
        ):
            raise ValueError(f"{what}: input statistics {key!r} are malformed")
    gem = stats.get("gem")
    if gem is not None and not (
        isinstance(gem, Mapping)
        and len({len(gem.get(k, ())) for k in ("min", "max", "mean", "std")}) == 1
    ):
        raise ValueError(f"{what}: input statistics 'gem' are malformed")
    return dict(stats)
