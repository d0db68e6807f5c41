"""Lightning data modules."""

from .kahramanmaras import KahramanmarasDamageDataModule, PairedFlipRotate, make_splits

__all__ = ["KahramanmarasDamageDataModule", "PairedFlipRotate", "make_splits"]
