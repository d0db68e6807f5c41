"""Datasets: post-event SAR, DSM, building footprints and GEM exposure."""

from .csk import CSKSAR
from .dsm import CartoSatDSM
from .gem import GEM_FEATURE_NAMES, GEMExposure, GEMNormalizer
from .intersection import BuildingIntersectionDataset, join_samples
from .kahramanmaras import MODALITIES, TABLE_II, KahramanmarasDamage
from .osm import OSMBuildings, read_vector
from .raster import CachedRasterDataset, RasterGrid
from .taxonomy import GEMTaxonomy, parse_taxonomy

__all__ = [
    "CSKSAR",
    "GEM_FEATURE_NAMES",
    "MODALITIES",
    "TABLE_II",
    "BuildingIntersectionDataset",
    "CachedRasterDataset",
    "CartoSatDSM",
    "GEMExposure",
    "GEMNormalizer",
    "GEMTaxonomy",
    "KahramanmarasDamage",
    "OSMBuildings",
    "RasterGrid",
    "join_samples",
    "parse_taxonomy",
    "read_vector",
]
