"""Strip-wise image formation of the calibrated scenario (bounded memory).

:func:`render_calibrated` renders the SAR image of a city in the calibrated
scenario (see :mod:`~torchgeo_quake.simulation.sar`) strip by strip: the
render grid (1.25 m) is processed in strips of :data:`STRIP_ROWS` rows, each
with a halo of rows for the misregistration shift (bilinear, weights fixed by
the shift) and for the impulse response (half its length), and only the
2.5 m outputs are held for the whole city, so memory grows with the image's
width, not its area. Ray casting runs along rows (range is east-west), so
strips need no halo for it.

The image does not depend on the strip size: whole-city steps are computed
once (:mod:`~torchgeo_quake.simulation.surface_plan`), the texture and
point-scatterer draws come from one PCG64 stream advanced to each strip's rows
(:class:`GridDraws`: the values one whole-grid draw gives), and the complex
speckle from chunks of :data:`NOISE_CHUNK_ROWS` rows, each seeded by the city's
speckle seed, the array and the chunk (:class:`RowNoise`).

.. versionadded:: 0.3
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from .city import CitySimulation, city_rng
from .landcover import CityFields, PixelGrid, build_surface, rasterize
from .sar import (
    CITY_CONTRAST_RANGE,
    OVERSAMPLING,
    RANGE_PAD_M,
    SAR_RES,
    SarImage,
    acquisition_tags,
    blend_db,
    misregistration,
)
from .sar_radiometry import form_image, impulse_response, scatter_rasters
from .sar_raycast import coarsen, render_intensity
from .surface_plan import plan_surface

__all__ = [
    "NOISE_CHUNK_ROWS",
    "STRIP_ROWS",
    "GridDraws",
    "RowNoise",
    "render_calibrated",
]

F32Array = npt.NDArray[np.float32]
FloatArray = npt.NDArray[np.float64]

#: Render rows per strip (bounds memory; does not change the image).
STRIP_ROWS = 256
#: Rows per independently seeded chunk of :class:`RowNoise`.
NOISE_CHUNK_ROWS = 64


@dataclass(frozen=True)
class GridDraws:
    """Random draws of the calibrated scatter rasters, addressable by row.

    The texture and point-scatterer draws are full-grid uniform arrays taken
    in turn from one PCG64 stream (one 64-bit output per value), so the rows
    of any strip are found by advancing the stream: strips of a grid get
    exactly the values one whole-grid draw would give.

    Attributes:
        grid: the whole grid
        roof: roof brightness offset of every building (dB, before damage)
        state: PCG64 state after the roof draw

    .. versionadded:: 0.3
    """

    grid: PixelGrid
    roof: FloatArray
    state: Any

    @classmethod
    def draw(
        cls, rng: np.random.Generator, n_buildings: int, grid: PixelGrid
    ) -> GridDraws:
        """Draw the per-building values and keep the stream for the grid.

        Args:
            rng: random generator (PCG64)
            n_buildings: number of buildings
            grid: the whole grid

        Returns:
            The draws.

        Raises:
            TypeError: If *rng* is not a PCG64 generator.
        """
        if not isinstance(rng.bit_generator, np.random.PCG64):
            raise TypeError("row-addressable draws need a PCG64 generator")
        roof = rng.normal(0.0, 1.5, size=n_buildings)
        return cls(grid, np.asarray(roof, np.float64), rng.bit_generator.state)

    def uniform(self, k: int, grid: PixelGrid) -> FloatArray:
        """Rows of a strip of the *k*-th full-grid uniform draw.

        Args:
            k: which draw (0 texture, 1 point-scatterer hits, 2 their values)
            grid: a row strip of :attr:`grid`

        Returns:
            Uniform values in [0, 1) of the strip's shape.
        """
        g = self.grid
        row0 = round((g.top - grid.top) / g.res)
        bits = np.random.PCG64()
        bits.state = self.state
        bits.advance(k * g.rows * g.cols + row0 * g.cols)
        return np.random.Generator(bits).random(grid.shape)


@dataclass(frozen=True)
class RowNoise:
    """Standard normal arrays of a grid, addressable by row.

    Rows come in chunks of :data:`NOISE_CHUNK_ROWS`, each from its own
    generator seeded by (*seed*, array, chunk), so any rows of the grid get
    the same values however the grid is cut into strips.

    Attributes:
        seed: seed of the arrays
        cols: columns of the grid
        r0: first row of the strip
        r1: end row of the strip

    .. versionadded:: 0.3
    """

    seed: int
    cols: int
    r0: int
    r1: int

    def __call__(self, j: int) -> FloatArray:
        """Rows *r0* to *r1* of the *j*-th array.

        Args:
            j: which array

        Returns:
            Standard normal values of shape (``r1 - r0``, *cols*).
        """
        size = NOISE_CHUNK_ROWS
        first, last = self.r0 // size, (self.r1 - 1) // size
        parts = []
        for chunk in range(first, last + 1):
            seq = np.random.SeedSequence(self.seed, spawn_key=(j, chunk))
            rows = np.random.default_rng(seq).standard_normal((size, self.cols))
            a = max(self.r0 - chunk * size, 0)
            b = min(self.r1 - chunk * size, size)
            parts.append(rows[a:b])
        return np.concatenate(parts, axis=0)


def _shift_rows(
    fine: F32Array, row0: int, rows: tuple[int, int], shift: tuple[float, float]
) -> F32Array:
    """Shift rows of an image by a sub-pixel offset (bilinear, edges repeated).

    ``out[i, j] = fine[i - shift[0], j - shift[1]]`` for the rows ``rows`` of
    the whole image, from a strip of it starting at row *row0* and holding
    every row needed (or the image's first / last row, repeated beyond the
    image); the weights depend only on the shift, so every strip gives the
    same values.

    Args:
        fine: rows of the image, from row *row0* on
        row0: row of the whole image of ``fine[0]``
        rows: (first, end) rows of the whole image to return
        shift: (rows, columns) shift in pixels

    Returns:
        The shifted rows (float32).
    """
    p = math.floor(-shift[0])
    f = -shift[0] - p
    q = math.floor(-shift[1])
    g = -shift[1] - q
    last = row0 + fine.shape[0] - 1
    i = np.arange(rows[0], rows[1]) + p  # the strip holds every row needed
    r_a = np.clip(i, row0, last) - row0
    r_b = np.clip(i + 1, row0, last) - row0
    cols = fine.shape[1]
    j = np.arange(cols) + q
    c_a = np.clip(j, 0, cols - 1)
    c_b = np.clip(j + 1, 0, cols - 1)
    top = fine[r_a].astype(np.float64)
    bottom = fine[r_b].astype(np.float64)
    upper = (1.0 - g) * top[:, c_a] + g * top[:, c_b]
    lower = (1.0 - g) * bottom[:, c_a] + g * bottom[:, c_b]
    return np.asarray((1.0 - f) * upper + f * lower, dtype=np.float32)


def render_calibrated(
    sim: CitySimulation, fields: CityFields, strip_rows: int | None = None
) -> SarImage:
    """Render the SAR image of a city in the calibrated scenario, in strips.

    The render grid is processed in strips of *strip_rows* rows with a halo
    for the misregistration shift and the impulse response; every random
    draw is addressed by its row of the whole grid, so the image does not
    depend on the strip size.

    Args:
        sim: the city
        fields: the city's surface random fields
        strip_rows: render rows per strip (default :data:`STRIP_ROWS`), a
            multiple of :data:`~torchgeo_quake.simulation.sar.OVERSAMPLING`

    Returns:
        The image.

    Raises:
        ValueError: If *strip_rows* is not a positive multiple of
            :data:`~torchgeo_quake.simulation.sar.OVERSAMPLING`.

    .. versionadded:: 0.3
    """
    strip_rows = STRIP_ROWS if strip_rows is None else strip_rows
    if strip_rows <= 0 or strip_rows % OVERSAMPLING:
        raise ValueError(
            f"strip_rows must be a positive multiple of {OVERSAMPLING}, "
            f"got {strip_rows}"
        )
    city = sim.city
    rng = city_rng(sim.seed, city, sim.scale, "sar")
    contrast = rng.uniform(*CITY_CONTRAST_RANGE) * sim.scenario.sar_contrast
    dx, dy = misregistration(rng)
    seeds = rng.integers(0, 2**62, size=2)
    speckle_seed = int(rng.integers(0, 2**62))
    left, bottom, right, top = sim.selection.bounds
    res = SAR_RES / OVERSAMPLING
    render = PixelGrid.from_bounds(
        (left - RANGE_PAD_M, bottom, right + RANGE_PAD_M, top), res
    )
    plan = plan_surface(sim, render)
    plan.draw_heaps(sim, np.random.default_rng(seeds[0]))
    draws = GridDraws.draw(np.random.default_rng(seeds[1]), len(sim.buildings), render)
    kernel = impulse_response(res)
    shift = (-dy / res, dx / res)
    halo = kernel.size // 2
    reach = math.ceil(max(abs(shift[0]), 1.0)) + 1
    pad = round(RANGE_PAD_M / res)
    grid = PixelGrid.from_bounds(sim.selection.bounds, SAR_RES)
    intensity = np.empty(grid.shape, dtype=np.float32)
    detected_img = np.empty(grid.shape, dtype=np.float32)
    cover = np.empty(grid.shape, dtype=np.uint8)
    total = render.rows

    def intensity_of(
        strip: PixelGrid, post_event: bool
    ) -> tuple[F32Array, npt.NDArray[np.uint8]]:
        gen = np.random.default_rng(seeds[0])  # unused: the plan holds the heaps
        surface = build_surface(sim, fields, strip, post_event, gen, plan)
        rasters = scatter_rasters(sim, surface, gen, post_event, draws)
        out = render_intensity(rasters, city.incidence_deg, city.sensor_side)
        return out, surface.cover

    for s0 in range(0, total, strip_rows):
        s1 = min(total, s0 + strip_rows)
        a0, a1 = max(0, s0 - halo), min(total, s1 + halo)  # shifted rows
        b0 = max(0, min(a0 - reach, s0))  # rendered rows
        b1 = min(total, max(a1 + reach, s1))
        strip = plan.strip(b0, b1)
        fine, cover_fine = intensity_of(strip, True)
        if contrast != 1.0:
            fine = blend_db(intensity_of(strip, False)[0], fine, contrast)
        shifted = _shift_rows(fine, b0, (a0, a1), shift)
        del fine
        noise = RowNoise(speckle_seed, render.cols, a0, a1)
        detected = form_image(
            shifted, city.looks, res, rng, kernel, OVERSAMPLING, noise
        )
        core = np.s_[s0 - a0 : s1 - a0, pad : render.cols - pad]
        o0, o1 = s0 // OVERSAMPLING, s1 // OVERSAMPLING
        intensity[o0:o1] = coarsen(np.ascontiguousarray(shifted[core]), OVERSAMPLING)
        detected_img[o0:o1] = coarsen(
            np.ascontiguousarray(detected[core]), OVERSAMPLING
        )
        del shifted, detected
        cover[o0:o1] = _pure_cover(cover_fine[s0 - b0 : s1 - b0, pad:-pad])
    valid = rasterize([sim.selection.valid_area], [1], grid) > 0
    amplitude = np.maximum(np.sqrt(detected_img), 1e-6).astype(np.float32)
    del detected_img
    amplitude[~valid] = 0.0
    return SarImage(
        amplitude=amplitude,
        intensity=intensity,
        cover=cover,
        valid=valid,
        grid=grid,
        tags=acquisition_tags(city),
        shift_m=(dx, dy),
        contrast=float(contrast),
    )


def _pure_cover(cover_fine: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    """Land cover per image pixel where its render pixels agree, else 255.

    Args:
        cover_fine: land cover on the render grid

    Returns:
        The image's land cover.
    """
    rows = cover_fine.shape[0] // OVERSAMPLING
    cols = cover_fine.shape[1] // OVERSAMPLING
    blocks = cover_fine.reshape(rows, OVERSAMPLING, cols, OVERSAMPLING)
    first = blocks[:, :1, :, :1]
    pure = (blocks == first).all(axis=(1, 3))
    return np.where(pure, first[:, 0, :, 0], 255).astype(np.uint8)
