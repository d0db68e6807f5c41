"""torchgeo_quake: earthquake building-damage detection with TorchGeo.

Finds earthquake-damaged buildings from a single post-event very-high-resolution
SAR image, enriched with building footprints, a digital surface model and GEM
exposure data (Russo et al., arXiv 2506.22338).
"""

__all__ = ["__version__"]

#: The package version (PEP 440).
__version__ = "0.1.0"
