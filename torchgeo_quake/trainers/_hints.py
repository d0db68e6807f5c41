"""Hints shared by the trainers' error messages: which configuration fits."""

from __future__ import annotations

from collections.abc import Sequence

from ..paper import CONFIG_FILES


def config_hint(modalities: Sequence[str]) -> str:
    """Name the configuration that matches some modalities.

    Args:
        modalities: Canonical modalities.

    Returns:
        E.g. ``"modalities: [sar, footprint] (experiments/sar_ftp.yaml)"``.
    """
    text = f"modalities: [{', '.join(modalities)}]"
    config = CONFIG_FILES.get(tuple(modalities))
    return f"{text} ({config})" if config else text


def gem_hint() -> str:
    """Describe the expected GEM width, importing the dataset module lazily.

    Returns:
        A sentence for error messages.
    """
    try:
        from ..datasets import GEM_FEATURE_NAMES
    except Exception:  # pragma: no cover - only when the datasets are broken
        return "gem_features must equal len(torchgeo_quake.datasets.GEM_FEATURE_NAMES)"
    return (
        "gem_features must equal len(torchgeo_quake.datasets.GEM_FEATURE_NAMES) "
        f"= {len(GEM_FEATURE_NAMES)}"
    )
