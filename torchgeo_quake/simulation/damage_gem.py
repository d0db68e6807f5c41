"""Damage of the calibrated scenario: GEM's vulnerability functions.

The ``"calibrated"`` scenario (:mod:`~torchgeo_quake.simulation.scenario`)
draws which buildings collapse from GEM's published vulnerability functions of
the Turkish stock (:mod:`~torchgeo_quake.simulation.vulnerability`) instead of
the hand-set increments of :mod:`~torchgeo_quake.simulation.damage` (v0.1).

Function of a building
    Its exposure taxonomy maps to one or two functions
    (``taxonomy_mapping_Turkey.csv``); with two, one is drawn with the mapping's
    weights (one ``rng.random(n)`` draw, inverse transform).

Collapse probability
    ``p_i = P(LR >= LR_c | f_i, IM_i)``: the beta loss-ratio distribution of the
    building's function at its intensity ``IM_i`` (the function's IMT: PGA,
    SA(0.3), SA(0.6) or SA(1.0)) reaching the collapse loss ratio
    ``LR_c = 0.8`` (:data:`COLLAPSE_LOSS_RATIO`). Source: GEM's consequence
    model gives the damage-to-loss ratios slight 0.05, moderate 0.15,
    extensive 0.60, complete 1.00 (OpenQuake vulnerability documentation,
    "Damage-to-Loss Ratios", docs.openquake.org/vulnerability; HAZUS-MH
    Technical Manual, FEMA 2003, Table 15.2: extensive 50 %, complete 100 % of
    the structural replacement cost). ``LR_c`` is the midpoint between the
    extensive (0.60) and complete (1.00) ratios, so a loss ratio of 0.8 or more
    is read as the complete damage state; HOTOSM's "destroyed" and Copernicus
    EMS "destroyed" correspond to complete damage / collapse.

Shaking and vulnerability parts
    ``logit p_i = s_i + v_i`` with the *shaking part*
    ``s_i = logit(pbar_i)``, ``pbar_i = sum_k w_k P(LR >= LR_c | f_k, IM_i)``,
    the collapse probability of the city's whole stock (``w_k``: share of the
    city's buildings drawn with function ``k``) at the building's ground motion,
    and the *vulnerability part* ``v_i = logit p_i - s_i`` (how much more or
    less fragile the building's own function is than the stock). Probabilities
    are clipped to ``[1e-6, 1 - 1e-6]`` before the logit
    (:data:`PROBABILITY_FLOOR`).

Latent variable
    ``z_i = s_i + strength * v_i + u_i + e_i`` with standard logistic noise
    ``e_i`` (scale 1). Without the neighbourhood term (``u_i = 0``) and with
    ``strength = 1`` (GEM's fragility), ``P(z_i > 0) = p_i`` exactly: the
    threshold form of a Bernoulli(``p_i``) draw. With ``strength = 0`` the
    building's type drops out: damage depends only on the ground motion at the
    building (through the stock's collapse probability), its neighbourhood and
    chance. ``strength > 1`` makes the type more decisive. Shaking always enters
    through ``s_i``.

Neighbourhood term
    ``u_i = sigma * G(x_i, y_i)``, ``G`` a unit Gaussian random field with
    correlation length :data:`NEIGHBOURHOOD_LENGTH_M` (200 m, a few city
    blocks) and ``sigma =`` :data:`NEIGHBOURHOOD_SD` (2.75 on the logit scale):
    the unobserved causes that neighbouring buildings share and that neither
    GEM's functions nor the ground-motion field resolve (soil and amplification
    at the scale of a few blocks, one builder, design and inspection for a
    housing block). It is what makes collapses cluster as in the real layer:
    without it, the share of destroyed buildings with another destroyed one in
    their 80 m patch was 0.19-0.30 in Islahiye and Kahramanmaraş against 0.68
    in the real HOTOSM layer. ``sigma`` was fitted so that the mean cluster
    share of the three large cities (Islahiye, Kahramanmaraş, Nurdağı; the two
    small ones have 16 and 23 destroyed buildings, too few to fit) matches the
    real layer's 0.68, averaged over four draws at full scale (0.65 at 2.5,
    0.70 at 3.0; the length was scanned over 150-250 m, where the share barely
    changes). It is fitted to the clustering only, never to a model's score.
    Part of the real layer's clustering may come from how it was mapped
    (volunteers covered some neighbourhoods completely), so ``sigma`` is an
    upper estimate of the physical effect. It is drawn on a 20 m grid from its
    own random stream (:func:`neighbourhood_term`).

Exact counts
    As in :func:`~torchgeo_quake.simulation.damage.simulate_damage`: among the
    counted buildings the ``C = D + n_fn`` with the highest ``z`` collapse, the
    reference misses ``n_fn`` of them chosen with probability proportional to
    ``1 / sqrt(area)``, partial damage goes to the ``round(partial_factor * C)``
    non-collapsed buildings with the highest ``s + strength * v + e'``
    (independent noise), and the debris geometry is drawn the same way. The
    damage record holds ``propensity = s + strength * v + u``, the latent threshold
    ``tau`` and ``probability = 1 / (1 + exp(-(propensity - tau)))``, the
    collapse probability given the exact count (same meaning as in v0.1);
    GEM's unconditional ``p_i`` is :func:`collapse_probabilities`.

Collapse table
    :func:`collapse_table` gives GEM's building-weighted collapse probability by
    material (RC, masonry, other) x storey class (HAZUS height classes:
    low-rise 1-3, mid-rise 4-7, high-rise 8+ storeys) at given intensities, for
    the docs' calibration table. :func:`design_spectrum_imts` gives spectral
    accelerations from a PGA with the Eurocode 8 type 1 elastic spectrum,
    ground type C (EN 1998-1:2004, 3.2.2.2, Table 3.2: ``S = 1.15``,
    ``T_B = 0.2 s``, ``T_C = 0.6 s``, ``T_D = 2 s``, 5 % damping), a plausible
    stand-in until the ground-motion field of the ruptures provides them.

.. versionadded:: 0.3
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy.special import expit, logit

from .cities import CitySpec
from .damage import Damage, debris_geometry, exact_count_grades
from .fields import GridField, gaussian_random_field
from .gem_tables import parse_taxonomies
from .vulnerability import IMTS, VulnerabilityModel, imt_period

__all__ = [
    "COLLAPSE_LOSS_RATIO",
    "NEIGHBOURHOOD_LENGTH_M",
    "NEIGHBOURHOOD_SD",
    "PROBABILITY_FLOOR",
    "STOREY_CLASSES",
    "collapse_probabilities",
    "collapse_table",
    "design_spectrum_imts",
    "draw_functions",
    "neighbourhood_term",
    "simulate_damage_gem",
    "stock_collapse_probability",
    "taxonomy_collapse_probability",
]

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
ObjectArray = npt.NDArray[np.object_]

#: Loss ratio from which a building counts as collapsed (complete damage).
COLLAPSE_LOSS_RATIO = 0.8
#: Collapse probabilities are clipped to ``[floor, 1 - floor]`` before logits.
PROBABILITY_FLOOR = 1e-6
#: Standard deviation (logit scale) of the neighbourhood term ``u``.
NEIGHBOURHOOD_SD = 2.75
#: Correlation length (metres) of the neighbourhood term ``u``.
NEIGHBOURHOOD_LENGTH_M = 200.0
#: Grid spacing (metres) on which the neighbourhood field is drawn.
_NEIGHBOURHOOD_CELL_M = 20.0
#: HAZUS height classes: name and storey range (inclusive).
STOREY_CLASSES: tuple[tuple[str, int, int], ...] = (
    ("low-rise (1-3)", 1, 3),
    ("mid-rise (4-7)", 4, 7),
    ("high-rise (8+)", 8, 10_000),
)


def draw_functions(
    model: VulnerabilityModel, taxonomy: ObjectArray, rng: np.random.Generator
) -> ObjectArray:
    """Draw one vulnerability function per building.

    Args:
        model: vulnerability functions and taxonomy mapping
        taxonomy: exposure taxonomy of each building
        rng: random generator (one ``rng.random(n)`` call)

    Returns:
        Function id of each building.

    Raises:
        KeyError: If a taxonomy is not in the mapping.

    .. versionadded:: 0.3
    """
    u = rng.random(taxonomy.size)
    out = np.empty(taxonomy.size, dtype=object)
    codes, inverse = np.unique(taxonomy.astype(str), return_inverse=True)
    for k, tax in enumerate(codes):
        pairs = model.lookup(str(tax))
        where = np.flatnonzero(inverse == k)
        bounds = np.cumsum([w for _, w in pairs])
        pick = np.minimum(
            np.searchsorted(bounds, u[where], side="right"), len(pairs) - 1
        )
        out[where] = np.asarray([f.id for f, _ in pairs], dtype=object)[pick]
    return out


def _intensity(imt_values: Mapping[str, FloatArray], imt: str, n: int) -> FloatArray:
    """Intensities of one IMT, checked.

    Args:
        imt_values: intensities (g) per IMT
        imt: the IMT needed
        n: number of buildings

    Returns:
        The intensities.

    Raises:
        KeyError: If the IMT is missing.
        ValueError: If the array has the wrong length or bad values.
    """
    if imt not in imt_values:
        raise KeyError(
            f"a vulnerability function needs intensity {imt!r}, but imt_values "
            f"holds only {sorted(imt_values)}; give all of {IMTS}"
        )
    x = np.broadcast_to(np.asarray(imt_values[imt], dtype=np.float64), (n,))
    if not (np.isfinite(x).all() and (x >= 0).all()):
        raise ValueError(f"intensities {imt!r} must be finite and >= 0 (g)")
    return np.asarray(x, dtype=np.float64)


def collapse_probabilities(
    model: VulnerabilityModel,
    functions: ObjectArray,
    imt_values: Mapping[str, FloatArray],
    loss_ratio: float = COLLAPSE_LOSS_RATIO,
) -> FloatArray:
    """GEM collapse probability of each building at its own intensity.

    Args:
        model: vulnerability functions
        functions: function id of each building (:func:`draw_functions`)
        imt_values: intensities (g) per IMT, arrays of the buildings' length
        loss_ratio: collapse loss ratio ``LR_c``

    Returns:
        ``P(LR >= loss_ratio | f_i, IM_i)`` per building.

    .. versionadded:: 0.3
    """
    n = functions.size
    out = np.zeros(n)
    ids, inverse = np.unique(functions.astype(str), return_inverse=True)
    for k, fid in enumerate(ids):
        f = model.functions[str(fid)]
        where = np.flatnonzero(inverse == k)
        out[where] = f.exceedance(_intensity(imt_values, f.imt, n)[where], loss_ratio)
    return out


def taxonomy_collapse_probability(
    model: VulnerabilityModel,
    taxonomy: ObjectArray,
    imt_values: Mapping[str, FloatArray],
    loss_ratio: float = COLLAPSE_LOSS_RATIO,
) -> FloatArray:
    """Expected GEM collapse probability of each building's taxonomy.

    Unlike :func:`collapse_probabilities` no function is drawn: the
    probabilities of a taxonomy's functions are averaged with the mapping
    weights (the reference of the calibration table).

    Args:
        model: vulnerability functions and mapping
        taxonomy: exposure taxonomy of each building
        imt_values: intensities (g) per IMT, arrays of the buildings' length
        loss_ratio: collapse loss ratio ``LR_c``

    Returns:
        ``sum_k w_k P(LR >= loss_ratio | f_k, IM_i)`` over the taxonomy's
        functions ``f_k`` with weights ``w_k``.

    Raises:
        KeyError: If a taxonomy is unmapped or an IMT is missing.

    .. versionadded:: 0.3
    """
    n = taxonomy.size
    out = np.zeros(n)
    codes, inverse = np.unique(taxonomy.astype(str), return_inverse=True)
    for k, tax in enumerate(codes):
        where = np.flatnonzero(inverse == k)
        for f, w in model.lookup(str(tax)):
            x = _intensity(imt_values, f.imt, n)[where]
            out[where] += w * f.exceedance(x, loss_ratio)
    return out


def stock_collapse_probability(
    model: VulnerabilityModel,
    functions: ObjectArray,
    imt_values: Mapping[str, FloatArray],
    loss_ratio: float = COLLAPSE_LOSS_RATIO,
) -> FloatArray:
    """Collapse probability of the whole stock at each building's intensity.

    Args:
        model: vulnerability functions
        functions: function id of each building; their shares are the weights
        imt_values: intensities (g) per IMT, arrays of the buildings' length
        loss_ratio: collapse loss ratio ``LR_c``

    Returns:
        ``pbar_i = sum_k w_k P(LR >= loss_ratio | f_k, IM_i)`` per building.

    .. versionadded:: 0.3
    """
    n = functions.size
    ids, counts = np.unique(functions.astype(str), return_counts=True)
    out = np.zeros(n)
    for fid, count in zip(ids, counts, strict=True):
        f = model.functions[str(fid)]
        x = _intensity(imt_values, f.imt, n)
        out += (count / n) * f.exceedance(x, loss_ratio)
    return out


def neighbourhood_term(
    x: FloatArray,
    y: FloatArray,
    radius: float,
    rng: np.random.Generator,
    sd: float = NEIGHBOURHOOD_SD,
    length: float = NEIGHBOURHOOD_LENGTH_M,
) -> FloatArray:
    """The neighbourhood term ``u`` of the latent collapse variable.

    Args:
        x: building x coordinates (local metres, origin at the city centre)
        y: building y coordinates (local metres)
        radius: half-width of the square the field covers (metres); buildings
            outside it take the nearest edge value
        rng: random generator (one ``standard_normal`` draw of the padded grid)
        sd: standard deviation of ``u`` (0 switches the term off: zeros, no draw)
        length: correlation length (metres)

    Returns:
        ``u_i`` per building (see the module docstring).

    Raises:
        ValueError: If *sd* is negative or not finite, *radius* is not
            positive, or (when a field is drawn, ``sd > 0``) *length* is not
            positive.

    .. versionadded:: 0.3
    """
    if not (math.isfinite(sd) and sd >= 0):
        raise ValueError(f"neighbourhood sd must be finite and >= 0: {sd}")
    if not radius > 0:
        raise ValueError(f"radius must be positive: {radius}")
    if sd == 0:
        return np.zeros(np.shape(x))
    cell = _NEIGHBOURHOOD_CELL_M
    n = math.ceil(2 * radius / cell) + 1
    field = GridField(
        gaussian_random_field((n, n), cell, length, rng), -radius, radius, cell
    )
    return sd * field.sample(x, y)


def simulate_damage_gem(
    city: CitySpec,
    taxonomy: ObjectArray,
    area: FloatArray,
    heights: FloatArray,
    imt_values: Mapping[str, FloatArray],
    counted: BoolArray,
    n_damaged: int,
    strength: float,
    rng: np.random.Generator,
    model: VulnerabilityModel,
    loss_ratio: float = COLLAPSE_LOSS_RATIO,
    neighbourhood: FloatArray | None = None,
) -> Damage:
    """Draw damage from GEM's vulnerability functions with exact counts.

    RNG calls, in order: function draw (``random(n)``), collapse noise and
    partial-damage noise (``logistic(0, 1, n)`` each), the missed collapses
    (``choice``), then the debris geometry as in v0.1.

    Args:
        city: the city (``false_negative_share``, ``partial_factor``)
        taxonomy: GEM exposure taxonomy of each building
        area: footprint area (m²)
        heights: intact building heights (metres)
        imt_values: intensities (g) at each building for ``"PGA"``,
            ``"SA(0.3)"``, ``"SA(0.6)"`` and ``"SA(1.0)"`` (PGA is required,
            the others where the buildings' functions use them)
        counted: True for the buildings inside the valid SAR area
        n_damaged: damaged buildings the reference must list among the counted
        strength: weight of the vulnerability part (scenario
            ``vulnerability_strength``; 1 = GEM's fragility)
        rng: random generator
        model: vulnerability functions (:func:`~torchgeo_quake.simulation.
            vulnerability.load_vulnerability`)
        loss_ratio: collapse loss ratio ``LR_c``
        neighbourhood: the neighbourhood term ``u`` per building
            (:func:`neighbourhood_term`); None: no term

    Returns:
        The damage state (``propensity = s + strength * v + u``; see the module
        docstring).

    Raises:
        KeyError: If a taxonomy is unmapped or an IMT is missing.
        ValueError: If *strength* is negative or not finite, array lengths
            differ, or *n_damaged* is not between 1 and the number of counted
            buildings minus one.

    .. versionadded:: 0.3
    """
    n = taxonomy.size
    if not (math.isfinite(strength) and strength >= 0):
        raise ValueError(f"vulnerability strength must be finite and >= 0: {strength}")
    local = np.zeros(n) if neighbourhood is None else neighbourhood
    for name, arr in (
        ("area", area),
        ("heights", heights),
        ("counted", counted),
        ("neighbourhood", local),
    ):
        if np.shape(arr) != (n,):
            raise ValueError(f"{name} has shape {np.shape(arr)}, expected ({n},)")
    pga = _intensity(imt_values, "PGA", n)
    functions = draw_functions(model, taxonomy, rng)
    floor = PROBABILITY_FLOOR
    p = np.clip(
        collapse_probabilities(model, functions, imt_values, loss_ratio),
        floor,
        1 - floor,
    )
    pbar = np.clip(
        stock_collapse_probability(model, functions, imt_values, loss_ratio),
        floor,
        1 - floor,
    )
    shaking = logit(pbar)
    eta = shaking + strength * (logit(p) - shaking) + local
    latent = eta + rng.logistic(0.0, 1.0, size=n)
    latent2 = eta + rng.logistic(0.0, 1.0, size=n)
    grade, in_reference, threshold = exact_count_grades(
        city, latent, latent2, area, counted, n_damaged, rng
    )
    # Debris geometry as in damage.simulate_damage (same draws, same order).
    residual, heap, spread, apron = debris_geometry(grade, heights, rng)
    return Damage(
        grade=grade,
        in_reference=np.asarray(in_reference, dtype=bool),
        pga_g=pga.copy(),
        propensity=np.asarray(eta, dtype=np.float64),
        probability=np.asarray(expit(eta - threshold), dtype=np.float64),
        threshold=float(threshold),
        residual=residual,
        heap_height=np.asarray(heap, dtype=np.float64),
        spread=np.asarray(spread, dtype=np.float64),
        apron_side=apron,
        neighbourhood=np.asarray(local, dtype=np.float64),
    )


def design_spectrum_imts(pga_g: float) -> dict[str, float]:
    """Intensities of the four IMTs from a PGA (Eurocode 8 spectrum shape).

    Type 1 elastic spectrum, ground type C, 5 % damping (EN 1998-1:2004,
    Table 3.2): with the surface PGA ``S * a_g``, ``SA(T) = 2.5 * PGA`` on the
    plateau ``T_B <= T <= T_C`` and ``2.5 * PGA * T_C / T`` up to ``T_D``.
    A stand-in for the ground-motion field.

    Args:
        pga_g: peak ground acceleration at the surface (g)

    Returns:
        Intensity (g) per IMT of :data:`~torchgeo_quake.simulation.
        vulnerability.IMTS`.

    Raises:
        ValueError: If *pga_g* is negative or not finite.

    .. versionadded:: 0.3
    """
    if not (math.isfinite(pga_g) and pga_g >= 0):
        raise ValueError(f"PGA must be finite and >= 0 (g): {pga_g}")
    t_b, t_c, t_d = 0.2, 0.6, 2.0
    out = {}
    for imt in IMTS:
        t = imt_period(imt)
        if t == 0:
            factor = 1.0
        elif t < t_b:
            factor = 1.0 + t / t_b * 1.5
        elif t <= t_c:
            factor = 2.5
        elif t <= t_d:
            factor = 2.5 * t_c / t
        else:
            factor = 2.5 * t_c * t_d / t**2
        out[imt] = float(pga_g * factor)
    return out


def _material_class(group: object) -> str:
    """RC, masonry or other from a simulator material group.

    Args:
        group: material group (``RC``, ``MUR_*``, ``W``, ``S``)

    Returns:
        ``"RC"``, ``"masonry"`` or ``"other"``.
    """
    text = str(group)
    if text == "RC":
        return "RC"
    return "masonry" if text.startswith("MUR") else "other"


def collapse_table(
    model: VulnerabilityModel,
    imt_values: Mapping[str, float],
    stock: pd.DataFrame,
    loss_ratio: float = COLLAPSE_LOSS_RATIO,
    storey_classes: Sequence[tuple[str, int, int]] = STOREY_CLASSES,
) -> pd.DataFrame:
    """GEM collapse probability by material x storey class at intensities.

    Args:
        model: vulnerability functions and mapping
        imt_values: one intensity (g) per IMT (e.g.
            :func:`design_spectrum_imts`)
        stock: exposure rows with ``taxonomy`` and ``buildings`` (e.g.
            :meth:`~torchgeo_quake.simulation.gem_tables.ExposureTable.province`)
        loss_ratio: collapse loss ratio ``LR_c``
        storey_classes: ``(name, lowest, highest)`` storeys of each class
            (the taxonomy's lowest storey count decides); default the HAZUS
            height classes :data:`STOREY_CLASSES`

    Returns:
        One row per material (``RC``, ``masonry``, ``other``) and storey class
        present, with ``buildings`` and the
        building-weighted mean ``probability`` (mapping weights within a
        taxonomy).

    Raises:
        KeyError: If a taxonomy is unmapped or an IMT is missing.
        ValueError: If *stock* lacks its columns.

    .. versionadded:: 0.3
    """
    if not {"taxonomy", "buildings"} <= set(stock.columns):
        raise ValueError("stock needs the columns 'taxonomy' and 'buildings'")
    taxonomies = stock["taxonomy"].astype(str).reset_index(drop=True)
    parsed = parse_taxonomies(taxonomies)
    intensities = {k: np.asarray(v, dtype=np.float64) for k, v in imt_values.items()}
    n = len(taxonomies)
    prob = taxonomy_collapse_probability(
        model,
        taxonomies.to_numpy(object),
        {k: np.broadcast_to(v, (n,)) for k, v in intensities.items()},
        loss_ratio,
    )
    storeys = parsed["storeys_min"].to_numpy(np.int64)
    frame = pd.DataFrame(
        {
            "material": [_material_class(g) for g in parsed["material_group"]],
            "storey_class": pd.Series([None] * len(storeys), dtype=object),
            "buildings": stock["buildings"].to_numpy(np.float64),
            "weighted": stock["buildings"].to_numpy(np.float64) * prob,
        }
    )
    for name, lo, hi in storey_classes:
        frame.loc[(storeys >= lo) & (storeys <= hi), "storey_class"] = name
    frame = frame.dropna(subset=["storey_class"])
    table = frame.groupby(["material", "storey_class"], sort=True)[
        ["buildings", "weighted"]
    ].sum()
    table["probability"] = table["weighted"] / table["buildings"]
    return table.drop(columns="weighted").reset_index()
