"""Datasets: post-event SAR, DSM, building footprints and GEM exposure."""

from .builder import Area, build_area
from .building_damage import BuildingDamage
from .csk import CSKSAR
from .dsm import CartoSatDSM
from .gem import GEM_FEATURE_NAMES, GEMExposure
from .intersection import BuildingIntersectionDataset, join_samples
from .kahramanmaras import MODALITIES, TABLE_II, KahramanmarasDamage
from .osm import OSMBuildings, read_vector
from .raster import CachedRasterDataset, RasterGrid
from .references import (
    DEFAULT_GRADE_MAP,
    EMS_GRADES,
    DamageJoin,
    join_damage,
    labels_from_field,
    read_damage_reference,
)
from .splits import make_splits, patch_overlap, spatial_blocks
from .taxonomy import GEMTaxonomy, parse_taxonomy
from .windows import BuildingWindows, find_datasets

__all__ = [
    "CSKSAR",
    "DEFAULT_GRADE_MAP",
    "EMS_GRADES",
    "GEM_FEATURE_NAMES",
    "MODALITIES",
    "TABLE_II",
    "Area",
    "BuildingDamage",
    "BuildingIntersectionDataset",
    "BuildingWindows",
    "CachedRasterDataset",
    "CartoSatDSM",
    "DamageJoin",
    "GEMExposure",
    "GEMTaxonomy",
    "KahramanmarasDamage",
    "OSMBuildings",
    "RasterGrid",
    "build_area",
    "find_datasets",
    "join_damage",
    "join_samples",
    "labels_from_field",
    "make_splits",
    "parse_taxonomy",
    "patch_overlap",
    "read_damage_reference",
    "read_vector",
    "spatial_blocks",
]
