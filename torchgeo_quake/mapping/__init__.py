"""Damage mapping of a new city with a trained model.

:func:`map_damage` (command line: ``torchgeo-quake map``) runs a trained
:class:`~torchgeo_quake.trainers.DamageDetectionTask` on every building
footprint that a post-event SAR image covers and writes a GeoPackage, a
GeoJSON, a JSON summary, an overview image and an interactive HTML map that
works offline.

.. versionadded:: 0.1
"""

from .html import HTMLMapWriter, write_html_map
from .model import LoadedModel, fold_batch_norms, load_damage_model, select_model
from .overview import plot_overview
from .predict import OUTPUT_FILES, DamageMap, map_damage, spatial_order
from .rings import RingCollector, Rings
from .summary import EXPOSURE_COLUMNS, admin_units, grid_cells, summarise
from .writers import GeoJSONWriter, GeoPackageWriter, layer_geometry_type

__all__ = [
    "EXPOSURE_COLUMNS",
    "OUTPUT_FILES",
    "DamageMap",
    "GeoJSONWriter",
    "GeoPackageWriter",
    "HTMLMapWriter",
    "LoadedModel",
    "RingCollector",
    "Rings",
    "admin_units",
    "fold_batch_norms",
    "grid_cells",
    "layer_geometry_type",
    "load_damage_model",
    "map_damage",
    "plot_overview",
    "select_model",
    "spatial_order",
    "summarise",
    "write_html_map",
]
