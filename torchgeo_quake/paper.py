"""Facts of the paper this package reproduces, in one place.

Russo, Tapete, Ullo and Gamba, *A Deep Learning framework for building damage
assessment using VHR SAR and geospatial data* (arXiv 2506.22338): the input
modalities, the five cities of the 2023 Kahramanmaraş earthquake with their
Table II counts, and the three input configurations compared in Tables III-V.

Everything else (the simulator's city specifications, the dataset, the command
line, the tables) reads these constants instead of repeating them.

.. versionadded:: 0.2
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Final

__all__ = [
    "CITY_NAMES",
    "CITY_SLUGS",
    "CONFIG_FILES",
    "INPUT_CONFIGURATIONS",
    "MODALITIES",
    "RASTER_MODALITIES",
    "TABLE_II",
]

#: All input modalities, in the order in which the network concatenates them:
#: SAR patch, footprint mask, DSM patch, GEM exposure vector.
MODALITIES: Final = ("sar", "footprint", "dsm", "gem")

#: Modalities given as single-band patches ``(B, 1, H, W)``.
RASTER_MODALITIES: Final = ("sar", "footprint", "dsm")

#: City slugs, in the order of the paper's tables.
CITY_SLUGS: Final = ("islahiye", "kahramanmaras", "nurdagi", "osmaniye", "turkoglu")

#: Display name of each city slug.
CITY_NAMES: Final = MappingProxyType(
    {
        "islahiye": "Islahiye",
        "kahramanmaras": "Kahramanmaraş",
        "nurdagi": "Nurdağı",
        "osmaniye": "Osmaniye",
        "turkoglu": "Türkoğlu",
    }
)

#: Table II of the paper: (intact, damaged) buildings per city, 13,487 in all.
TABLE_II: Final = MappingProxyType(
    {
        "islahiye": (3825, 192),
        "kahramanmaras": (4641, 233),
        "nurdagi": (3289, 498),
        "osmaniye": (317, 16),
        "turkoglu": (453, 23),
    }
)

#: The paper's three input configurations, by the name of their experiment file.
INPUT_CONFIGURATIONS: Final = MappingProxyType(
    {
        "sar_ftp": ("sar", "footprint"),
        "sar_ftp_dsm": ("sar", "footprint", "dsm"),
        "all_inputs": ("sar", "footprint", "dsm", "gem"),
    }
)

#: The experiment configuration file of each input configuration.
CONFIG_FILES: Final = MappingProxyType(
    {
        modalities: f"experiments/{name}.yaml"
        for name, modalities in INPUT_CONFIGURATIONS.items()
    }
)
