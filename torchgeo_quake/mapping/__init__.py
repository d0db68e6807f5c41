"""Damage mapping of a new city with a trained model.

:func:`map_damage` (command line: ``torchgeo-quake map``) runs a trained
:class:`~torchgeo_quake.trainers.DamageDetectionTask` on every building
footprint that a post-event SAR image covers and writes a GeoPackage, a
GeoJSON, a JSON summary, an overview image and an interactive HTML map that
works offline. :class:`MapSettings` lists its options.

The names below are imported on first use, so that the command line can read
:mod:`~torchgeo_quake.mapping.settings` without importing PyTorch.

.. versionadded:: 0.1
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .damage_map import OUTPUT_FILES, DamageMap, spatial_order
    from .html import HTMLMapWriter, write_html_map
    from .intervals import Interval, count_interval, sum_interval
    from .model import LoadedModel, fold_batch_norms, load_damage_model, select_model
    from .overview import plot_overview
    from .predict import map_damage, run_map
    from .recalibration import (
        CalibrationLabels,
        Recalibration,
        read_calibration_labels,
        recalibrate,
    )
    from .rings import RingCollector, Rings
    from .settings import MapSettings
    from .shift import measure_shift, radiometric_adaptation
    from .summary import EXPOSURE_COLUMNS, admin_units, grid_cells, summarise
    from .writers import GeoJSONWriter, GeoPackageWriter, layer_geometry_type

__all__ = [
    "EXPOSURE_COLUMNS",
    "OUTPUT_FILES",
    "CalibrationLabels",
    "DamageMap",
    "GeoJSONWriter",
    "GeoPackageWriter",
    "HTMLMapWriter",
    "Interval",
    "LoadedModel",
    "MapSettings",
    "Recalibration",
    "RingCollector",
    "Rings",
    "admin_units",
    "count_interval",
    "fold_batch_norms",
    "grid_cells",
    "layer_geometry_type",
    "load_damage_model",
    "map_damage",
    "measure_shift",
    "plot_overview",
    "radiometric_adaptation",
    "read_calibration_labels",
    "recalibrate",
    "run_map",
    "select_model",
    "spatial_order",
    "sum_interval",
    "summarise",
    "write_html_map",
]

#: Modules holding the names of ``__all__``.
_MODULES: tuple[str, ...] = (
    "damage_map",
    "html",
    "intervals",
    "model",
    "overview",
    "predict",
    "recalibration",
    "rings",
    "settings",
    "shift",
    "summary",
    "writers",
)


def __getattr__(name: str) -> Any:
    """Import a public name on first use.

    Args:
        name: a name of ``__all__``

    Returns:
        The object.

    Raises:
        AttributeError: If *name* is not public.
    """
    if name in __all__:
        for module in _MODULES:
            found = vars(importlib.import_module(f"{__name__}.{module}"))
            if name in found.get("__all__", ()):
                globals()[name] = found[name]
                return found[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    """The module's names, the lazily imported ones included.

    Returns:
        The names.
    """
    return sorted({*globals(), *__all__})
