"""Lightning data modules."""

from .building_damage import BuildingDamageDataModule, PairedFlipRotate, sar_pixel_size
from .kahramanmaras import (
    KahramanmarasDamageDataModule,
    make_splits,
    patch_overlap,
    spatial_blocks,
)

__all__ = [
    "BuildingDamageDataModule",
    "KahramanmarasDamageDataModule",
    "PairedFlipRotate",
    "make_splits",
    "patch_overlap",
    "sar_pixel_size",
    "spatial_blocks",
]
