"""Lightning data modules."""

from .kahramanmaras import (
    KahramanmarasDamageDataModule,
    PairedFlipRotate,
    make_splits,
    patch_overlap,
    sar_pixel_size,
    spatial_blocks,
)

__all__ = [
    "KahramanmarasDamageDataModule",
    "PairedFlipRotate",
    "make_splits",
    "patch_overlap",
    "sar_pixel_size",
    "spatial_blocks",
]
