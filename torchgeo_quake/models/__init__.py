"""Models for earthquake building-damage detection."""

from .fusion import MODALITIES, RASTER_MODALITIES, LateFusionNet, canonical_modalities
from .resnet import (
    GroupedConv2d,
    GroupedResNet18,
    merge_resnet_state_dicts,
    resnet18_encoder,
    split_resnet_state_dict,
)
from .weights import WEIGHT_PREFIXES, load_resnet18_state_dict

__all__ = [
    "MODALITIES",
    "RASTER_MODALITIES",
    "WEIGHT_PREFIXES",
    "GroupedConv2d",
    "GroupedResNet18",
    "LateFusionNet",
    "canonical_modalities",
    "load_resnet18_state_dict",
    "merge_resnet_state_dicts",
    "resnet18_encoder",
    "split_resnet_state_dict",
]
