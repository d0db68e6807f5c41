"""Ray caster of the simulated SAR image: layover, shadow, walls, double bounce.

The image is formed on a render grid finer than the image pixels (see
:data:`~torchgeo_quake.simulation.sar.OVERSAMPLING`), from the scattering
inputs of :class:`ScatterRasters` (built by
:func:`~torchgeo_quake.simulation.sar_radiometry.scatter_rasters` for a city,
or directly for one building by
:func:`~torchgeo_quake.simulation.sar.render_single_building`).

Ray casting (per range line, vectorised over lines)
    With incidence angle ``theta`` a point at height ``z`` above the terrain is
    imaged ``z / tan(theta)`` closer to the sensor (layover), and a point is in
    shadow when ``max over nearer points of (z' + x' cot(theta))`` exceeds
    ``z + x cot(theta)``, which makes the shadow of a wall of height ``h``
    ``h tan(theta)`` long on the ground. Every lit horizontal surface element is
    deposited at its displaced position; every sensor-facing wall (a height step
    towards the far range) is spread over its displaced image
    ``[x - h_top cot, x - h_bottom cot]`` with the facade backscatter, plus a
    bright line per storey (balconies, window corners). The dihedral formed by a
    sensor-facing building wall and smooth lit ground in front of it returns a
    strong double-bounce line at the wall foot; its strength grows with the
    wall height usable for the bounce, ``min(h, L / tan(theta))`` for ``L`` metres
    of free ground in front, with the ground smoothness (asphalt > paving > soil)
    and falls off with the wall's aspect angle ``phi`` to the azimuth direction
    as ``0.05 + 0.95 exp(-(phi / 15°)**2)`` (street-grid orientation matters).

:func:`coarsen` then averages render pixels into image pixels.

Its names were defined in :mod:`~torchgeo_quake.simulation.sar` before,
which still re-exports them.

.. versionadded:: 0.2
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

__all__ = ["ScatterRasters", "coarsen", "render_intensity"]

F32Array = npt.NDArray[np.float32]
FloatArray = npt.NDArray[np.float64]

#: Intensity of one storey line of a facade (render-pixel units).
STOREY_LINE = 0.4


@dataclass
class ScatterRasters:
    """Inputs of the ray caster on the render grid.

    Attributes:
        height: height above the terrain (metres)
        sigma: backscatter of the horizontal surface of each pixel (linear,
            including texture and point scatterers)
        wall: backscatter per image pixel of a wall rising into the pixel
        double_bounce: double-bounce intensity per metre of usable height of a
            wall rising into the pixel (0 where the pixel is no building)
        specular: smoothness of the pixel as the ground of a dihedral (0-1)
        storey: storey height of the building in the pixel (metres, 0 if none)
        res: pixel size (metres)

    .. versionadded:: 0.1
    """

    height: F32Array
    sigma: F32Array
    wall: F32Array
    double_bounce: F32Array
    specular: F32Array
    storey: F32Array
    res: float


def _splat(
    acc: FloatArray,
    base: npt.NDArray[np.int64],
    t: FloatArray,
    weight: FloatArray,
    w: int,
) -> None:
    """Add linearly interpolated deltas to a flattened difference array.

    After a cumulative sum along each line, a delta of weight ``w`` at position
    ``t`` contributes ``w * clip(k + 1 - t, 0, 1)`` to pixel ``k``.

    Args:
        acc: flattened (lines x (w + 2)) difference array, updated in place
        base: offset of each delta's line in *acc*
        t: positions in pixels
        weight: weights
        w: number of pixels per line
    """
    t = np.clip(t, 0.0, w + 0.5)
    k = np.floor(t).astype(np.int64)
    f = t - k
    idx = base + k
    acc += np.bincount(idx, weight * (1.0 - f), minlength=acc.size)
    acc += np.bincount(idx + 1, weight * f, minlength=acc.size)


def _segments(
    acc: FloatArray,
    base: npt.NDArray[np.int64],
    start: FloatArray,
    end: FloatArray,
    density: FloatArray,
    w: int,
) -> None:
    """Deposit segments ``[start, end]`` of constant density along lines.

    Args:
        acc: flattened difference array, updated in place
        base: offset of each segment's line in *acc*
        start: segment starts (pixels)
        end: segment ends (pixels)
        density: intensity per pixel of segment length
        w: number of pixels per line
    """
    _splat(acc, base, start, density, w)
    _splat(acc, base, end, -density, w)


def render_intensity(
    rasters: ScatterRasters,
    incidence_deg: float,
    sensor_side: Literal["WEST", "EAST"],
    strip_rows: int = 256,
) -> F32Array:
    """Ray-cast the noise-free backscattered intensity on the render grid.

    See the module docstring for the model. Lines are independent, so the
    image is processed in strips of *strip_rows* lines to bound memory.

    Args:
        rasters: scattering inputs
        incidence_deg: incidence angle (degrees)
        sensor_side: side the sensor illuminates from
        strip_rows: lines per strip

    Returns:
        Intensity (linear, sigma-nought units) on the render grid.

    .. versionadded:: 0.1
    """
    cot = 1.0 / math.tan(math.radians(incidence_deg))
    px = rasters.res
    rows, cols = rasters.height.shape
    out = np.empty((rows, cols), dtype=np.float32)
    flip = sensor_side == "EAST"
    low = 0.3 / px
    for r0 in range(0, rows, strip_rows):
        r1 = min(rows, r0 + strip_rows)
        arrays = [
            np.asarray(a[r0:r1], dtype=np.float64)
            for a in (
                rasters.height,
                rasters.sigma,
                rasters.wall,
                rasters.double_bounce,
                rasters.specular,
                rasters.storey,
            )
        ]
        if flip:
            arrays = [a[:, ::-1] for a in arrays]
        z, sigma, wall, dbl, spec, storey = arrays
        z = z / px
        storey = storey / px
        n, w = z.shape
        col = np.arange(w, dtype=np.float64) + 0.5
        u = z + col[None, :] * cot
        m_incl = np.maximum.accumulate(u, axis=1)
        lit = np.ones_like(z, dtype=bool)
        lit[:, 1:] = u[:, 1:] >= m_incl[:, :-1] - 1e-9
        acc = np.zeros(n * (w + 2), dtype=np.float64)
        line = (np.arange(n, dtype=np.int64) * (w + 2))[:, None]
        base = np.broadcast_to(line, z.shape).ravel()

        # Horizontal surfaces at their displaced positions.
        p = (col[None, :] - z * cot).ravel()
        _segments(acc, base, p - 0.5, p + 0.5, np.where(lit, sigma, 0.0).ravel(), w)

        # Sensor-facing walls between pixels c - 1 and c (boundary x = c).
        edge = np.arange(1, w, dtype=np.float64)[None, :]
        z_low = np.maximum(z[:, :-1], m_incl[:, :-1] - edge * cot)
        rr, cc = np.nonzero((z[:, 1:] - z[:, :-1] > 0.2 / px) & (z[:, 1:] > z_low))
        if rr.size:
            top = z[rr, cc + 1]
            bottom = z_low[rr, cc]
            x = cc + 1.0
            wbase = rr * (w + 2)
            _segments(acc, wbase, x - top * cot, x - bottom * cot, wall[rr, cc + 1], w)
            st = storey[rr, cc + 1]
            for k in range(1, 40):
                zk = k * st
                on = (st > 0) & (zk < top - low) & (zk >= bottom)
                if not on.any():
                    if not ((st > 0) & (zk < top)).any():
                        break
                    continue
                pos = x[on] - zk[on] * cot
                weight = np.full(pos.size, STOREY_LINE)
                _segments(acc, wbase[on], pos - 0.5, pos + 0.5, weight, w)
            # Double bounce: smooth, flat, lit ground in front of the wall.
            good = (spec > 0) & lit & (z < low)
            index = np.where(good, -1, np.arange(w)[None, :])
            last_bad = np.maximum.accumulate(index, axis=1)
            run = cc - last_bad[rr, cc]
            usable = np.minimum(top - z[rr, cc], run * cot) * px
            strength = dbl[rr, cc + 1] * spec[rr, cc] * usable
            on = strength > 0
            if on.any():
                _segments(acc, wbase[on], x[on] - 0.5, x[on] + 0.5, strength[on], w)
        image = np.cumsum(acc.reshape(n, w + 2), axis=1)[:, :w]
        if flip:
            image = image[:, ::-1]
        out[r0:r1] = np.maximum(image, 0.0)
    return out


def coarsen(array: F32Array, factor: int) -> F32Array:
    """Average non-overlapping *factor* x *factor* blocks.

    Args:
        array: 2-D array whose shape is a multiple of *factor*
        factor: block size

    Returns:
        The block means.

    .. versionadded:: 0.1
    """
    rows, cols = array.shape
    blocks = array.reshape(rows // factor, factor, cols // factor, factor)
    return np.asarray(blocks.mean(axis=(1, 3)), dtype=np.float32)
