"""Helpers of the per-query fast paths of this package's datasets and samplers.

Building-centred sampling sends tens of thousands of tiny queries; these two
helpers remove fixed costs around them: :func:`complete_query` reads a query
without touching the dataset index, and :func:`paused_gc` keeps Python's
cyclic garbage collector from repeatedly scanning large object graphs while
many small objects are built.

.. versionadded:: 0.2
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator

from torchgeo.datasets.utils import GeoSlice

__all__ = ["complete_query", "paused_gc"]


@contextlib.contextmanager
def paused_gc() -> Iterator[None]:
    """Pause Python's cyclic garbage collector while building many small objects.

    Building tens of thousands of lists, tuples or dicts (GeoJSON mappings,
    sampler queries) next to the large object graphs of GeoDataFrames triggers
    repeated full collections that cost ten times the work itself. The objects
    built here hold no reference cycles, so pausing the collector loses nothing;
    it is re-enabled (if it was enabled) on exit.

    Yields:
        None

    .. versionadded:: 0.1
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def complete_query(query: GeoSlice) -> tuple[slice, slice, slice] | None:
    """Return a query as three complete slices without touching any index.

    TorchGeo's ``_disambiguate_slice`` fills missing components from the dataset
    bounds, which costs a GeoDataFrame reduction per query; samplers of this
    package always send complete slices, so this fast path avoids that.

    Args:
        query: [xmin:xmax:xres, ymin:ymax:yres, tmin:tmax:tres] coordinates.

    Returns:
        (x, y, t) slices, or None if some spatial component is missing.

    .. versionadded:: 0.1
    """
    if isinstance(query, tuple) and len(query) >= 2:
        x, y = query[0], query[1]
        if (
            x.start is not None
            and x.stop is not None
            and x.step is not None
            and y.start is not None
            and y.stop is not None
            and y.step is not None
        ):
            t = query[2] if len(query) == 3 else slice(None)
            return x, y, t
    return None
