"""Spatially correlated Gaussian random fields and grid sampling helpers.

The simulator draws every spatially correlated quantity (terrain relief, the
shaking field, neighbourhood building-stock "modernity", gardens, tree canopies)
from stationary Gaussian random fields with a Gaussian covariance
``C(r) = exp(-r**2 / l**2)``, made by filtering white noise in the Fourier domain.

.. versionadded:: 0.1
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import ndimage

__all__ = ["GridField", "gaussian_random_field"]

FloatArray = npt.NDArray[np.float64]


def gaussian_random_field(
    shape: tuple[int, int],
    pixel_size: float,
    correlation_length: float,
    rng: np.random.Generator,
) -> FloatArray:
    """Draw a zero-mean, unit-variance Gaussian random field.

    White noise is multiplied in the Fourier domain by the square root of the
    spectral density of the Gaussian covariance ``exp(-r**2 / l**2)``, i.e. by
    ``exp(-(pi * l * k)**2 / 2)`` with *k* in cycles per metre. The noise grid is
    padded by two correlation lengths on each side so the periodic FFT does not
    correlate opposite edges, then cropped and standardised.

    Args:
        shape: (rows, columns) of the field
        pixel_size: grid spacing in metres
        correlation_length: correlation length *l* in metres (the covariance drops
            to 1/e at this distance)
        rng: random generator

    Returns:
        The field, float64 of *shape*, mean 0 and standard deviation 1.

    Raises:
        ValueError: If *shape*, *pixel_size* or *correlation_length* is not
            positive.

    .. versionadded:: 0.1
    """
    rows, cols = shape
    if rows <= 0 or cols <= 0:
        raise ValueError(f"shape must be positive, got {shape}")
    if pixel_size <= 0 or correlation_length <= 0:
        raise ValueError(
            "pixel_size and correlation_length must be positive, got "
            f"{pixel_size} and {correlation_length}"
        )
    pad = int(np.ceil(2.0 * correlation_length / pixel_size))
    full = (rows + 2 * pad, cols + 2 * pad)
    noise = rng.standard_normal(full)
    ky = np.fft.fftfreq(full[0], d=pixel_size)
    kx = np.fft.rfftfreq(full[1], d=pixel_size)
    k2 = ky[:, None] ** 2 + kx[None, :] ** 2
    gain = np.exp(-0.5 * (np.pi * correlation_length) ** 2 * k2)
    field = np.fft.irfft2(np.fft.rfft2(noise) * gain, s=full)[
        pad : pad + rows, pad : pad + cols
    ]
    field -= field.mean()
    std = field.std()
    if std > 0:
        field /= std
    return np.asarray(field, dtype=np.float64)


@dataclass(frozen=True)
class GridField:
    """A scalar field on a regular north-up grid, sampled bilinearly anywhere.

    Attributes:
        values: (rows, columns) array, row 0 at the top (north)
        left: x coordinate of the left edge of the grid (metres)
        top: y coordinate of the top edge of the grid (metres)
        pixel_size: grid spacing in metres

    .. versionadded:: 0.1
    """

    values: FloatArray
    left: float
    top: float
    pixel_size: float

    def sample(self, x: npt.ArrayLike, y: npt.ArrayLike, order: int = 1) -> FloatArray:
        """Interpolate the field at points (nearest edge values outside the grid).

        Args:
            x: x coordinates in metres (any shape)
            y: y coordinates in metres (same shape as *x*)
            order: spline order (1 = bilinear)

        Returns:
            Field values, float64 with the shape of *x*.
        """
        xa = np.asarray(x, dtype=np.float64)
        ya = np.asarray(y, dtype=np.float64)
        col = (xa - self.left) / self.pixel_size - 0.5
        row = (self.top - ya) / self.pixel_size - 0.5
        out = ndimage.map_coordinates(
            self.values, [row.ravel(), col.ravel()], order=order, mode="nearest"
        )
        return np.asarray(out, dtype=np.float64).reshape(xa.shape)

    def sample_grid(
        self, left: float, top: float, pixel_size: float, shape: tuple[int, int]
    ) -> FloatArray:
        """Interpolate the field at the pixel centres of another north-up grid.

        Args:
            left: x of the left edge of the target grid
            top: y of the top edge of the target grid
            pixel_size: spacing of the target grid
            shape: (rows, columns) of the target grid

        Returns:
            Field values on the target grid, float64 of *shape*.
        """
        rows, cols = shape
        xs = left + (np.arange(cols) + 0.5) * pixel_size
        ys = top - (np.arange(rows) + 0.5) * pixel_size
        col = (xs - self.left) / self.pixel_size - 0.5
        row = (self.top - ys) / self.pixel_size - 0.5
        rr, cc = np.meshgrid(row, col, indexing="ij")
        out = ndimage.map_coordinates(self.values, [rr, cc], order=1, mode="nearest")
        return np.asarray(out, dtype=np.float64)
