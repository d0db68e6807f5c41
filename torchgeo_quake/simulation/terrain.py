"""Terrain of a simulated city: elevation and slope anywhere in its working area.

Elevation (metres above sea level) is the city's base elevation plus a regional
linear gradient, rolling relief (a Gaussian random field) and, where the city
lies at a mountain front (Islahiye below the Nur mountains, the northern edge of
Kahramanmaraş below Ahır Dağı), a logistic rise of the ground towards the
mountains. It is defined on a 10 m grid over the working area and sampled
bilinearly, so the DSM, the SAR terrain effects and the damage model see the
same ground.

.. versionadded:: 0.1
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from .cities import CitySpec
from .fields import GridField, gaussian_random_field

__all__ = ["TERRAIN_RES", "Terrain", "build_terrain"]

FloatArray = npt.NDArray[np.float64]

#: Spacing of the terrain grid (metres).
TERRAIN_RES = 10.0


@dataclass(frozen=True)
class Terrain:
    """Ground elevation over a city's working area (local metres, origin at centre).

    Attributes:
        elevation: elevation grid (metres above sea level)
        gradient_x: eastward slope dz/dx of the grid (dimensionless)
        gradient_y: northward slope dz/dy of the grid (dimensionless)

    .. versionadded:: 0.1
    """

    elevation: GridField
    gradient_x: GridField
    gradient_y: GridField

    def height(self, x: npt.ArrayLike, y: npt.ArrayLike) -> FloatArray:
        """Ground elevation at points.

        Args:
            x: local x (metres east of the centre)
            y: local y (metres north of the centre)

        Returns:
            Elevations in metres.
        """
        return self.elevation.sample(x, y)

    def slope_deg(self, x: npt.ArrayLike, y: npt.ArrayLike) -> FloatArray:
        """Terrain slope angle at points.

        Args:
            x: local x (metres)
            y: local y (metres)

        Returns:
            Slope in degrees.
        """
        gx = self.gradient_x.sample(x, y)
        gy = self.gradient_y.sample(x, y)
        return np.asarray(np.degrees(np.arctan(np.hypot(gx, gy))), dtype=np.float64)


def build_terrain(
    city: CitySpec, half_size: float, rng: np.random.Generator
) -> Terrain:
    """Make the terrain of a city over a square working area.

    Args:
        city: the city
        half_size: half the side of the working area (metres)
        rng: random generator

    Returns:
        The terrain.

    .. versionadded:: 0.1
    """
    n = int(np.ceil(2 * half_size / TERRAIN_RES)) + 1
    left = -0.5 * n * TERRAIN_RES
    top = 0.5 * n * TERRAIN_RES
    centres = left + (np.arange(n) + 0.5) * TERRAIN_RES
    xx, yy = np.meshgrid(centres, -centres)  # row 0 = north
    gx, gy = city.gradient_m_per_km
    z = city.elevation_m + (gx * xx + gy * yy) / 1000.0
    z = z + city.relief_m * gaussian_random_field(
        (n, n), TERRAIN_RES, city.terrain_corr_m, rng
    )
    if city.mountain is not None:
        rise, direction, foot, width = city.mountain
        angle = np.radians(direction)
        along = xx * np.cos(angle) + yy * np.sin(angle)
        z = z + rise / (1.0 + np.exp(-(along - foot) / width))
    dz_dy, dz_dx = np.gradient(z, TERRAIN_RES)
    return Terrain(
        elevation=GridField(np.asarray(z, np.float64), left, top, TERRAIN_RES),
        gradient_x=GridField(np.asarray(dz_dx, np.float64), left, top, TERRAIN_RES),
        gradient_y=GridField(np.asarray(-dz_dy, np.float64), left, top, TERRAIN_RES),
    )
