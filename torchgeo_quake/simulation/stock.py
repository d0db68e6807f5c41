"""Building stock of the ``calibrated`` scenario: footprint sizes and density.

The v0.1 stock draws each footprint from GEM's floor area per building divided
by its storeys (times a log-normal factor with sigma 0.3) and packs the blocks
densely. Compared with the real HOTOSM "Turkey Destroyed Buildings" layer
(:mod:`~torchgeo_quake.simulation.reference_stats`, UTM 37N, the city boxes of
``/work/shared/data/README.md``), its footprints are 1.6-2.7 times too small
and too uniform, and its cities too compact. The calibrated stock keeps GEM's
*relative* sizes (floor area per storey of each taxonomy) and the street
layout model, and changes four things, each derived from the real layer:

``footprint_scale`` = 1.88
    Multiplier of GEM's floor area per storey. Nurdağı is the city whose
    destroyed buildings are closest to a sample of its stock: 13 % of its
    mapped buildings were destroyed (Table II), across a homogeneous low-rise
    masonry stock. Its real destroyed footprints have a median of 174.8 m²;
    the v0.1 Nurdağı stock has 97.8 m² (ratio 1.79). With the clamps of the
    placer the calibrated Nurdağı stock reaches 175 m² at 1.88.
``footprint_sigma`` = 0.62
    Log-normal spread of a footprint around its taxonomy's size (v0.1: 0.3).
    The real Nurdağı destroyed footprints have a log inter-quartile range
    ln(268 / 130) = 0.72; the calibrated Nurdağı stock has 0.72 at 0.62.
    The GEM sizes alone (4-8-storey RC blocks: 220-430 m² floor area per
    storey in the GEM tables of TR-27 and TR-46) already match the
    200-600 m² typical of Turkish mid-rise apartment blocks.
``max_side_m`` = 60
    Longest footprint side (v0.1: 40 m). The real layer's minimum rotated
    rectangles have long sides above 40 m in 10 % of Kahramanmaraş's and
    Türkoğlu's destroyed buildings (90 % quantile 40.5 and 43.8 m).
Block geometry
    Block lengths, block depths and the building-row depth
    (``block_length_m``, ``block_depth_m``, ``row_depth_m``) scale with the
    side of a footprint, sqrt(1.88) = 1.37, so the larger buildings fit the
    blocks as before (geometric similarity; street widths are unchanged).
``block_vacancy`` and ``density_per_km2`` (per city)
    The real layer lists destroyed buildings only, so the density of a
    city's mapped buildings is estimated from their spread: if the
    destroyed buildings are spread like the stock at the kilometre scale,
    the median distance of the stock from its centre equals that of the
    destroyed buildings (``radius_m`` of
    :class:`~torchgeo_quake.simulation.reference_stats.FootprintStats`:
    Islahiye 485 m, Kahramanmaraş 990 m, Nurdağı 795 m, Osmaniye 508 m,
    Türkoğlu 691 m). The calibrated sizes at no vacancy give stock radii of
    753, 1038, 691, 229 and 262 m (seed 0, full scale). Where the simulated
    city is more compact than the real one, a share
    ``v = 1 - (r_sim / r_real) ** 2`` of the blocks is left open (no
    building: fields, orchards, vacant land) so the city's area grows by
    ``1 / (1 - v)``; elsewhere ``v = 0``. ``density_per_km2``, which only
    sizes the working area, becomes the v0.1 value times
    ``(r_v01 / max(r_real, r_sim)) ** 2`` with the v0.1 stock radii
    621, 858, 564, 179 and 199 m.

The damage model decides which of these buildings are destroyed; the stock
does not favour any size or place for damage.

.. versionadded:: 0.3
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from .cities import CitySpec

__all__ = [
    "CALIBRATED_FOOTPRINT_SCALE",
    "CALIBRATED_FOOTPRINT_SIGMA",
    "CALIBRATED_MAX_SIDE_M",
    "StockModel",
    "calibrated_spec",
    "stock_model",
]

#: Multiplier of GEM's floor area per storey (see the module docstring).
CALIBRATED_FOOTPRINT_SCALE = 1.88
#: Log-normal spread of a footprint around its taxonomy's size.
CALIBRATED_FOOTPRINT_SIGMA = 0.62
#: Longest footprint side (metres).
CALIBRATED_MAX_SIDE_M = 60.0


@dataclass(frozen=True)
class _CityFit:
    """Spread of a real city and of its simulated stocks (metres).

    Attributes:
        real_radius: median distance of the real destroyed buildings from their
            median point (HOTOSM layer, city box)
        v01_radius: the same for the whole v0.1 stock (seed 0, full scale)
        calibrated_radius: the same for the calibrated sizes at no vacancy
    """

    real_radius: float
    v01_radius: float
    calibrated_radius: float


# Measured with reference_stats (real: real_stats(); simulated:
# simulated_stats(folder)[1].radius_m), see the module docstring.
_FITS: dict[str, _CityFit] = {
    "islahiye": _CityFit(485.4, 621.0, 753.0),
    "kahramanmaras": _CityFit(989.8, 858.0, 1038.0),
    "nurdagi": _CityFit(795.1, 564.0, 691.0),
    "osmaniye": _CityFit(508.0, 179.0, 229.0),
    "turkoglu": _CityFit(691.1, 199.0, 262.0),
}


@dataclass(frozen=True)
class StockModel:
    """Footprint size and vacancy model of the calibrated building stock.

    Attributes:
        footprint_scale: multiplier of GEM's floor area per storey
        footprint_sigma: log-normal spread of a footprint's area
        max_side_m: longest footprint side (metres)
        block_vacancy: share of blocks left without buildings

    .. versionadded:: 0.3
    """

    footprint_scale: float = CALIBRATED_FOOTPRINT_SCALE
    footprint_sigma: float = CALIBRATED_FOOTPRINT_SIGMA
    max_side_m: float = CALIBRATED_MAX_SIDE_M
    block_vacancy: float = 0.0

    def __post_init__(self) -> None:
        """Check the fields.

        Raises:
            ValueError: If a value is out of range.
        """
        if not (self.footprint_scale > 0 and math.isfinite(self.footprint_scale)):
            raise ValueError(f"footprint_scale must be > 0, got {self.footprint_scale}")
        if not (self.footprint_sigma >= 0 and math.isfinite(self.footprint_sigma)):
            raise ValueError(
                f"footprint_sigma must be >= 0, got {self.footprint_sigma}"
            )
        if not 9.0 <= self.max_side_m <= 200.0:
            raise ValueError(f"max_side_m must be in [9, 200], got {self.max_side_m}")
        if not 0.0 <= self.block_vacancy < 1.0:
            raise ValueError(
                f"block_vacancy must be in [0, 1), got {self.block_vacancy}"
            )


def _fit(city: CitySpec) -> _CityFit:
    """The measured spreads of a city.

    Args:
        city: the city

    Returns:
        Its fit.

    Raises:
        ValueError: If the city has no calibration.
    """
    if city.slug not in _FITS:
        raise ValueError(
            f"no calibrated stock for city {city.slug!r}; calibrated cities: "
            f"{', '.join(_FITS)}"
        )
    return _FITS[city.slug]


def stock_model(city: CitySpec) -> StockModel:
    """Footprint and vacancy model of a city in the calibrated scenario.

    Args:
        city: the city (one of the five)

    Returns:
        The stock model (pass it to
        :func:`~torchgeo_quake.simulation.layout.generate_candidates`).

    Raises:
        ValueError: If the city has no calibration.

    .. versionadded:: 0.3
    """
    fit = _fit(city)
    ratio = fit.calibrated_radius / fit.real_radius
    vacancy = max(0.0, 1.0 - ratio**2)
    return StockModel(block_vacancy=round(vacancy, 3))


def calibrated_spec(city: CitySpec) -> CitySpec:
    """City specification with the block geometry of the calibrated stock.

    Block lengths, block depths and row depths grow with the footprint side
    (``sqrt(footprint_scale)``); the density that sizes the working area
    follows the real spread (see the module docstring). All other fields are
    kept.

    Args:
        city: the v0.1 specification (one of the five)

    Returns:
        A new specification.

    Raises:
        ValueError: If the city has no calibration.

    .. versionadded:: 0.3
    """
    fit = _fit(city)
    side = math.sqrt(CALIBRATED_FOOTPRINT_SCALE)
    spread = max(fit.real_radius, fit.calibrated_radius)
    return replace(
        city,
        block_length_m=(city.block_length_m[0] * side, city.block_length_m[1] * side),
        block_depth_m=(city.block_depth_m[0] * side, city.block_depth_m[1] * side),
        row_depth_m=(city.row_depth_m[0] * side, city.row_depth_m[1] * side),
        density_per_km2=round(city.density_per_km2 * (fit.v01_radius / spread) ** 2, 1),
    )
