"""Collapse signatures of the calibrated scenario: how a collapsed building looks.

In the v0.1 model every collapsed building became the same spreading debris
heap, which made damage easy to see in the SAR image. Real collapses differ
(reconnaissance of the 6 February 2023 earthquakes: METU/EERC report 2023-01,
Çetin et al., 2023; Ozkula et al., 2023, Natural Hazards 119:663-700): brittle
low-rise masonry crumbles into spreading rubble, reinforced-concrete frames with
soft storeys often *pancake* (floors stacked on each other, walls fallen away),
some buildings collapse only in part, and by the date of the post-event image a
growing share of the sites has already been cleared. :func:`collapse_signatures`
draws one mode per collapsed building (damage grade 2):

``SPREAD`` (0)
    the v0.1 debris heap: 20-35 % of the height, spreading 15-35 % of the
    height beyond the footprint, rough and bright;
``PANCAKE`` (1)
    stacked slabs: a low flat slab stack of 10-25 % of the building height
    (1-6 m; a slab and its crushed storey each take a fraction of the storey
    height) with the roof slab on top, a narrow rubble fringe of 0.5-2 m
    (0.8 m high): it can look like a low flat roof;
``PARTIAL`` (2)
    half of the footprint still stands (60-100 % of its height, the side away
    from :attr:`~torchgeo_quake.simulation.damage.Damage.apron_side`), the
    other half is a debris heap spreading beyond it;
``CLEARED`` (3)
    debris removed: flat, compacted bare ground over the footprint, no heap.

Debris removal pace (documented assumption from news reports): clearance of
collapsed buildings started when search and rescue wound down two weeks after
the event (AFAD: ~13,000 excavators, cranes and trucks deployed, Reuters/AFP
and Daily Sabah, 19-20 February 2023) and the Turkish government announced
rubble removal complete in all provinces but Hatay by 20 April 2023 (Daily
Sabah/Trend, 18 April 2023). The share of collapsed sites cleared at the SAR
acquisition is taken to grow linearly between these dates,
``p = clip((t - 13 d) / (73 d - 13 d), 0, 1)`` with ``t`` the days between the
event (2023-02-06) and the city's ``acquisition_date``: 0 for Osmaniye
(15 February), about 0.10 for images of 25 February and 0.17 for 1 March.

Mode shares of the remaining collapses (assumption: no public count of collapse
modes per building was found; the reconnaissance reports describe pancake
collapse as the typical failure of multi-storey RC frames and crumbling as that
of low-rise masonry): buildings of three or more storeys (height >= 8.5 m)
pancake with probability 0.5, lower ones with 0.15; a quarter of the rest
collapse partially, the others spread. The probabilities are not tuned to any
model result.

.. versionadded:: 0.3
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import replace
from enum import IntEnum

import numpy as np
import numpy.typing as npt
import shapely

from .cities import CitySpec
from .damage import Damage
from .scenario import Scenario

__all__ = [
    "CLEARANCE_END_DAYS",
    "CLEARANCE_START_DAYS",
    "EVENT_DATE",
    "CollapseMode",
    "clearance_probability",
    "collapse_signatures",
    "days_after_event",
    "split_footprint",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

#: Date of the two main shocks.
EVENT_DATE = dt.date(2023, 2, 6)
#: Days after the event when debris removal started (search and rescue ended).
CLEARANCE_START_DAYS = 13.0
#: Days after the event when removal was announced complete (20 April 2023).
CLEARANCE_END_DAYS = 73.0
#: Height from which a building counts as multi-storey (three storeys).
MULTI_STOREY_M = 8.5
#: Pancake probability of multi-storey and of low-rise collapses.
PANCAKE_SHARE = (0.15, 0.5)
#: Share of partial collapses among the collapses that do not pancake.
PARTIAL_SHARE = 0.25


class CollapseMode(IntEnum):
    """Collapse signature of a collapsed building (-1 for the others).

    .. versionadded:: 0.3
    """

    SPREAD = 0  #: spreading debris heap
    PANCAKE = 1  #: stacked slabs, low flat top
    PARTIAL = 2  #: half the footprint stands
    CLEARED = 3  #: debris removed, bare ground


def days_after_event(acquisition_date: str) -> float:
    """Days between the event and an acquisition.

    Args:
        acquisition_date: ISO date (``YYYY-MM-DD``)

    Returns:
        The number of days (may be negative for a pre-event date).

    Raises:
        ValueError: If the date is not an ISO date.

    .. versionadded:: 0.3
    """
    try:
        date = dt.date.fromisoformat(acquisition_date)
    except ValueError as err:
        raise ValueError(
            f"acquisition date {acquisition_date!r} is not an ISO date "
            "(YYYY-MM-DD); fix the city specification"
        ) from err
    return float((date - EVENT_DATE).days)


def clearance_probability(days: float) -> float:
    """Probability that a collapsed building's site is cleared after *days*.

    Args:
        days: days between the event and the image

    Returns:
        ``clip((days - 13) / 60, 0, 1)`` (see the module docstring).

    .. versionadded:: 0.3
    """
    span = CLEARANCE_END_DAYS - CLEARANCE_START_DAYS
    return float(np.clip((days - CLEARANCE_START_DAYS) / span, 0.0, 1.0))


def collapse_signatures(
    damage: Damage,
    heights: FloatArray,
    city: CitySpec,
    scenario: Scenario,
    rng: np.random.Generator,
) -> Damage:
    """Draw the collapse signature of every collapsed building.

    The v0.1 scenario returns *damage* unchanged (and draws nothing), so its
    output stays byte-identical.

    Args:
        damage: damage state with the v0.1 debris geometry
        heights: intact building heights (metres)
        city: the city (its acquisition date sets the cleared share)
        scenario: the scenario
        rng: random generator

    Returns:
        A copy of *damage* with :attr:`~Damage.mode` set (-1 for buildings that
        did not collapse) and ``residual``, ``heap_height``, ``spread`` and
        ``apron_side`` changed for the collapse modes as described in the
        module docstring.

    Raises:
        ValueError: If *heights* does not have one value per building.

    .. versionadded:: 0.3
    """
    if scenario.is_v01:
        return damage
    n = damage.grade.size
    heights = np.asarray(heights, dtype=np.float64)
    if heights.shape != (n,):
        raise ValueError(f"{city.name}: {heights.size} heights given for {n} buildings")
    collapsed = damage.grade == 2
    p_clear = clearance_probability(days_after_event(city.acquisition_date))
    u_clear = rng.random(n)
    u_pancake = rng.random(n)
    u_partial = rng.random(n)
    pancake_p = np.where(heights >= MULTI_STOREY_M, PANCAKE_SHARE[1], PANCAKE_SHARE[0])
    mode = np.full(n, -1, dtype=np.int64)
    mode[collapsed] = CollapseMode.SPREAD
    partial = collapsed & (u_partial < PARTIAL_SHARE)
    mode[partial] = CollapseMode.PARTIAL
    mode[collapsed & (u_pancake < pancake_p)] = CollapseMode.PANCAKE
    mode[collapsed & (u_clear < p_clear)] = CollapseMode.CLEARED

    residual = damage.residual.copy()
    heap = damage.heap_height.copy()
    spread = damage.spread.copy()
    side = damage.apron_side.copy()
    stack = np.clip(heights * rng.uniform(0.10, 0.25, size=n), 1.0, 6.0)
    fringe = rng.uniform(0.5, 2.0, size=n)
    standing = rng.uniform(0.6, 1.0, size=n)
    sides = rng.integers(0, 4, size=n)
    is_pancake = mode == CollapseMode.PANCAKE
    residual[is_pancake] = np.minimum(stack / heights, 1.0)[is_pancake]
    heap[is_pancake] = 0.8
    spread[is_pancake] = fringe[is_pancake]
    is_partial = mode == CollapseMode.PARTIAL
    residual[is_partial] = standing[is_partial]
    side[is_partial] = sides[is_partial]
    is_cleared = mode == CollapseMode.CLEARED
    residual[is_cleared] = 0.0
    heap[is_cleared] = 0.0
    spread[is_cleared] = 0.0
    return replace(
        damage,
        residual=residual,
        heap_height=heap,
        spread=spread,
        apron_side=side,
        mode=mode,
    )


def split_footprint(
    polygon: shapely.Polygon, angle_deg: float, side: int
) -> tuple[shapely.Geometry, shapely.Geometry]:
    """Split a footprint in two halves across one of its axes.

    Args:
        polygon: footprint
        angle_deg: orientation of the footprint axes
        side: 0-3, the side (along the building axes) of the fallen half

    Returns:
        (standing half, fallen half on *side*).

    .. versionadded:: 0.3
    """
    t = math.radians(angle_deg + 90.0 * side)
    dx, dy = math.cos(t), math.sin(t)
    c = shapely.centroid(polygon)
    reach = 2.0 * math.sqrt(max(polygon.area, 1.0)) + 1000.0
    cx, cy = float(c.x), float(c.y)
    box = shapely.Polygon(
        [
            (cx - dy * reach, cy + dx * reach),
            (cx + dx * reach - dy * reach, cy + dy * reach + dx * reach),
            (cx + dx * reach + dy * reach, cy + dy * reach - dx * reach),
            (cx + dy * reach, cy - dx * reach),
        ]
    )
    return shapely.difference(polygon, box), shapely.intersection(polygon, box)
