"""Samplers for building-centred patches."""

from .centroid import BuildingCentroidSampler, find_datasets

__all__ = ["BuildingCentroidSampler", "find_datasets"]
