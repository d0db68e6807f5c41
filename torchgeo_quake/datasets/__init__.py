"""Datasets: post-event SAR, DSM, building footprints and GEM exposure."""

from .dsm import CartoSatDSM
from .osm import OSMBuildings, read_vector
from .raster import CachedRasterDataset, RasterGrid

__all__ = [
    "CachedRasterDataset",
    "CartoSatDSM",
    "OSMBuildings",
    "RasterGrid",
    "read_vector",
]
