"""Parser for GEM Building Taxonomy strings (v2.0 / v3.x) as used in GEM exposure.

A GEM taxonomy string is a ``/``-separated list of attribute groups; each group is
a ``+``-separated list of codes, the first of which (the *head*) names the
attribute. Examples from GEM's exposure models::

    CR/LFINF(MUR+CBH)+CDL+DUL/H:3/RES     RC frame with hollow-block infill
    MUR+CLBRS/LWAL+DNO/H:2/RES            unreinforced solid-brick masonry walls
    S/LFM+CDM/HBET:4-7/COM                steel moment frame, 4 to 7 storeys
    UNK+CDL+DUL/H:1/MIX1                  unknown material, low code

Groups are recognised by their head code, not by their position, so attributes may
be omitted (``W/LWAL/H:1``) or the string may be just ``UNK``. Codes follow the GEM
Building Taxonomy v2.0 tables and the v3.3 JSON of ``gem/gem_taxonomy``; the
height forms ``HBET:a-b``/``HBET:a,b``, ``HBET:n+``, ``HEX:n``, ``H:n`` and
``H:UNK`` of GEM's exposure files are all accepted.

Splitting a string into codes and reading their numeric values is in
``_taxonomy_lexer``; this module knows what the codes mean.

.. versionadded:: 0.1
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from ._taxonomy_lexer import _split_top, _storeys, _Token, _tokens, _year

__all__ = [
    "CODE_LEVELS",
    "DUCTILITY_LEVELS",
    "STRUCTURE_CLASSES",
    "GEMTaxonomy",
    "parse_taxonomy",
]

#: Seismic design code levels (no, low, moderate, high code); ``UNK`` when absent.
CODE_LEVELS: tuple[str, ...] = ("CDN", "CDL", "CDM", "CDH")

#: Ductility codes: non-ductile, ductile (v2.0), low / moderate / high ductility
#: (v3), base isolation / dissipation devices; ``UNK`` when absent.
DUCTILITY_LEVELS: tuple[str, ...] = ("DNO", "DUC", "DUL", "DUM", "DUH", "DBD")

#: Typology classes returned by :attr:`GEMTaxonomy.structure_class`, in the order
#: used by the exposure feature vector.
STRUCTURE_CLASSES: tuple[str, ...] = (
    "rc_infill",
    "rc_wall_dual",
    "rc_other",
    "urm",
    "rm_confined",
    "steel",
    "wood",
    "other",
)

# Top-level material codes (v2.0 and v3.x). ``ET`` is not a v2/v3 head but is
# accepted as "earth, technology unspecified" because some exposure files use it.
_MATERIALS = frozenset(
    {
        "MAT99",
        "C",
        "C99",
        "CU",
        "CR",
        "SRC",
        "S",
        "ME",
        "M",
        "M99",
        "MUR",
        "MCF",
        "MR",
        "E",
        "E99",
        "EU",
        "ER",
        "ET",
        "W",
        "HYB",
        "INF",
        "MDD",
        "MATO",
    }
)

# Lateral load-resisting systems (v2.0 and v3.x).
_LATERAL = frozenset(
    {
        "L99",
        "LN",
        "LFM",
        "LFINF",
        "LFBR",
        "LPB",
        "LWAL",
        "LDUAL",
        "LFLS",
        "LFLSINF",
        "LH",
        "LHV",
        "LDD",
        "LO",
    }
)
_INFILLED = frozenset({"LFINF", "LFLSINF"})

# Height heads. Only H, HEX, HBET, HAPP and H99 give the number of storeys above
# ground; the others (basements, ground-floor height, slope, metres) are accepted
# and kept as details.
_STOREY_HEADS = frozenset({"H", "HEX", "HBET", "HAPP", "H99"})
_HEIGHT_HEADS = _STOREY_HEADS | frozenset(
    {
        "HB",
        "HB99",
        "HBEX",
        "HBBET",
        "HBAPP",
        "HF",
        "HF99",
        "HFEX",
        "HFBET",
        "HFAPP",
        "HD",
        "HD99",
        "HHT",
        "HHI",
    }
)

# Date of construction heads; YMP/YMM/YMG (maintenance) are kept as details.
_YEAR_HEADS = frozenset({"Y", "Y99", "YN", "YEX", "YBET", "YPRE", "YAPP"})
_DATE_HEADS = _YEAR_HEADS | frozenset({"YMP", "YMM", "YMG"})

# Occupancy codes, e.g. RES, RES2A, COM3, MIX1, IND, AGR2, OC99.
_OCCUPANCY_RE = re.compile(
    r"^(RES|COM|MIX|IND|AGR|ASS|GOV|EDU|REL|HEA|ENT|NONRES|OC)[0-9A-Z]*$"
)

# Remaining v2.0/v3 attributes (plan shape, position, irregularity, exterior
# walls, roof, floor, foundation, fire protection, hydrodynamics, direction).
_OTHER_RE = re.compile(r"^(PLF|BP|IR|EW|R|F|FOS|FIR|FP|GFH|WIN|OP)[0-9A-Z]*$")
_DIRECTION = frozenset({"DX", "DY", "D99", "PF", "OF"})


@dataclass(frozen=True)
class GEMTaxonomy:
    """A parsed GEM Building Taxonomy string.

    Attributes that the string does not mention are ``"UNK"`` (codes) or ``None``
    (numbers, occupancy).

    Args:
        raw: the string as given (surrounding whitespace removed)
        material: top-level material code (``CR``, ``MUR``, ``S``, ``W``, ``UNK``...)
        material_details: further material codes (``PC``, ``CBH``, ``CLBRS``...)
        lateral_system: lateral load-resisting system (``LFINF``, ``LFM``,
            ``LWAL``, ``LDUAL``, ``UNK``...)
        lateral_details: further lateral-system codes other than code level and
            ductility (``LFC:5``...)
        infill_material: codes of an infilled frame's infill, e.g. ``("MUR",
            "CBH")`` for ``LFINF(MUR+CBH)``
        code_level: seismic design level ``CDN``, ``CDL``, ``CDM``, ``CDH`` or
            ``UNK`` (v2.0 ``CDU`` is read as ``UNK``)
        ductility: ``DNO``, ``DUC``, ``DUL``, ``DUM``, ``DUH``, ``DBD`` or ``UNK``
            (v2.0 ``DU99`` is read as ``UNK``)
        height_storeys: storeys above ground; ranges give their midpoint
            (``HBET:4-7`` -> 5.5), open ranges their bound (``HBET:10+`` -> 10,
            ``H:>3`` -> 4, ``H:<4`` -> 2, the midpoint of 1..3); ``None`` if unknown
        year_built: construction year from a date attribute (``YEX:1980``,
            ``YBET:1970-1980`` -> 1975, ``YPRE:1975`` -> 1974); ``None`` if absent
        occupancy: occupancy code (``RES``, ``COM``, ``IND``, ``MIX1``...) or None
        other: codes of the remaining attributes (roof, floor, shape...), as given

    .. versionadded:: 0.1
    """

    raw: str
    material: str = "UNK"
    material_details: tuple[str, ...] = ()
    lateral_system: str = "UNK"
    lateral_details: tuple[str, ...] = ()
    infill_material: tuple[str, ...] = ()
    code_level: str = "UNK"
    ductility: str = "UNK"
    height_storeys: float | None = None
    year_built: float | None = None
    occupancy: str | None = None
    other: tuple[str, ...] = ()

    @property
    def structure_class(self) -> str:
        """Coarse structural typology, one of :data:`STRUCTURE_CLASSES`.

        * reinforced concrete (``CR``, ``SRC``, ``C``, ``C99``) with an infilled
          frame -> ``rc_infill``; with walls or a dual frame-wall system ->
          ``rc_wall_dual``; any other or unknown system (moment frame, flat slab,
          precast, braced...) -> ``rc_other``
        * unreinforced masonry (``MUR``) and masonry of unknown reinforcement
          (``M``, ``M99``, in practice mostly unreinforced) -> ``urm``
        * confined or reinforced masonry (``MCF``, ``MR``) -> ``rm_confined``
        * steel and other metals (``S``, ``ME``) -> ``steel``
        * wood (``W``) -> ``wood``
        * everything else (earth, unreinforced concrete ``CU``, hybrid, informal,
          other or unknown material) -> ``other``

        Returns:
            The class name.
        """
        material = self.material
        if material in {"CR", "SRC", "C", "C99"}:
            if self.lateral_system in _INFILLED:
                return "rc_infill"
            if self.lateral_system in {"LWAL", "LDUAL"}:
                return "rc_wall_dual"
            return "rc_other"
        if material in {"MUR", "M", "M99"}:
            return "urm"
        if material in {"MCF", "MR"}:
            return "rm_confined"
        if material in {"S", "ME"}:
            return "steel"
        if material == "W":
            return "wood"
        return "other"


def _kind(code: str) -> str:
    """Attribute a head code belongs to.

    Args:
        code: the code without ``(...)`` or ``:value``

    Returns:
        One of ``material``, ``lateral``, ``height``, ``date``, ``occupancy``,
        ``direction``, ``other``, ``unknown`` (``UNK``), ``code``, ``ductility``,
        ``lateral_param`` (lateral force coefficient, column/wall density) or
        ``""`` when not a head code.
    """
    if code == "UNK":
        return "unknown"
    if code in _MATERIALS:
        return "material"
    if code in _LATERAL:
        return "lateral"
    if code in _HEIGHT_HEADS:
        return "height"
    if code in _DATE_HEADS:
        return "date"
    if code in CODE_LEVELS or code == "CDU":
        return "code"
    if code in DUCTILITY_LEVELS or code == "DU99":
        return "ductility"
    if code in {"LFC", "DCW"}:
        return "lateral_param"
    if _OCCUPANCY_RE.match(code):
        return "occupancy"
    if code in _DIRECTION:
        return "direction"
    if _OTHER_RE.match(code):
        return "other"
    return ""


# Attributes that the second direction (after ``DY``) of a string may repeat.
_DIRECTIONAL = frozenset({"material", "lateral_system", "code_level", "ductility"})


class _Builder:
    """Collects the attributes of one taxonomy string."""

    def __init__(self, raw: str) -> None:
        self.raw = raw
        self.codes: dict[str, str] = {}
        self.numbers: dict[str, float | None] = {}
        self.material_details: list[str] = []
        self.lateral_details: list[str] = []
        self.infill: list[str] = []
        self.other: list[str] = []
        self.second_direction = False

    def seen(self, name: str) -> bool:
        return name in self.codes or name in self.numbers

    def _check(self, name: str) -> bool:
        if not self.seen(name):
            return True
        if self.second_direction and name in _DIRECTIONAL:
            return False
        raise ValueError(f"invalid GEM taxonomy {self.raw!r}: {name} given twice")

    def code(self, name: str, value: str) -> None:
        if self._check(name):
            self.codes[name] = value

    def number(self, name: str, value: float | None) -> None:
        if self._check(name):
            self.numbers[name] = value

    def design(self, token: _Token, kind: str) -> None:
        """Record a code level or ductility code."""
        if kind == "code":
            self.code("code_level", "UNK" if token.code == "CDU" else token.code)
        else:
            self.code("ductility", "UNK" if token.code == "DU99" else token.code)

    def build(self) -> GEMTaxonomy:
        return GEMTaxonomy(
            raw=self.raw,
            material=self.codes.get("material", "UNK"),
            material_details=tuple(self.material_details),
            lateral_system=self.codes.get("lateral_system", "UNK"),
            lateral_details=tuple(self.lateral_details),
            infill_material=tuple(self.infill),
            code_level=self.codes.get("code_level", "UNK"),
            ductility=self.codes.get("ductility", "UNK"),
            height_storeys=self.numbers.get("height_storeys"),
            year_built=self.numbers.get("year_built"),
            occupancy=self.codes.get("occupancy"),
            other=tuple(self.other),
        )


def _head(builder: _Builder, kind: str, head: _Token) -> None:
    """Record the head code of a group.

    Args:
        builder: attributes collected so far
        kind: attribute of the group (see :func:`_kind`)
        head: the first code of the group

    Raises:
        ValueError: If the code is malformed or repeats an attribute.
    """
    raw = builder.raw
    if kind in {"material", "lateral"} and head.value is not None:
        raise ValueError(f"invalid GEM taxonomy {raw!r}: bad code {head.text!r}")
    if kind == "material":
        builder.code("material", head.code)
        if head.inner is not None:
            builder.material_details.append(head.text)
    elif kind == "lateral":
        builder.code("lateral_system", head.code)
        if head.inner is not None and head.code in _INFILLED:
            builder.infill.extend(t for t in head.inner.split("+") if t)
        elif head.inner is not None:
            builder.lateral_details.append(head.text)
    elif kind == "height" and head.code in _STOREY_HEADS:
        builder.number("height_storeys", _storeys(head.code, head.value, raw))
    elif kind == "date" and head.code in _YEAR_HEADS:
        builder.number("year_built", _year(head.code, head.value, raw))
    elif kind == "occupancy":
        builder.code("occupancy", head.text)
    else:
        builder.other.append(head.text)


def _detail(builder: _Builder, kind: str, token: _Token, group: str) -> None:
    """Record a non-head code of a group.

    Args:
        builder: attributes collected so far
        kind: attribute of the group (see :func:`_kind`)
        token: the code
        group: the whole group, for error messages

    Raises:
        ValueError: If the code belongs to another attribute or repeats one.
    """
    raw = builder.raw
    detail_kind = _kind(token.code)
    if detail_kind in {"code", "ductility"} and kind in {"material", "lateral"}:
        builder.design(token, detail_kind)
    elif (
        detail_kind in {"material", "lateral", "occupancy", "unknown", "code"}
        or (detail_kind in {"height", "date", "ductility"} and detail_kind != kind)
        or (detail_kind == "lateral_param" and kind != "lateral")
    ):
        raise ValueError(
            f"invalid GEM taxonomy {raw!r}: code {token.text!r} of another "
            f"attribute inside group {group!r} (groups are separated by '/')"
        )
    elif kind == "height" and token.code in _STOREY_HEADS:
        builder.number("height_storeys", _storeys(token.code, token.value, raw))
    elif kind == "date" and token.code in _YEAR_HEADS:
        builder.number("year_built", _year(token.code, token.value, raw))
    elif kind == "material":
        builder.material_details.append(token.text)
    elif kind == "lateral":
        builder.lateral_details.append(token.text)
    else:
        builder.other.append(token.text)


@functools.lru_cache(maxsize=65536)
def parse_taxonomy(s: str) -> GEMTaxonomy:
    """Parse a GEM Building Taxonomy string.

    Results are cached, so parsing the few thousand distinct strings of an
    exposure model once per string is cheap.

    Args:
        s: taxonomy string, e.g. ``"CR/LFINF(MUR+CBH)+CDL+DUL/H:3/RES"``

    Returns:
        The parsed taxonomy.

    Raises:
        TypeError: If *s* is not a string.
        ValueError: If *s* is empty or malformed: empty groups or codes,
            unbalanced parentheses, lower-case or illegal characters, an
            unrecognised attribute, an attribute given twice (except in the
            second direction of a ``DX``/``DY`` string), a code of one attribute
            inside another's group, or a missing or non-numeric height or date.
            The message names the string.

    .. versionadded:: 0.1
    """
    if not isinstance(s, str):
        raise TypeError(f"GEM taxonomy must be a string, got {type(s).__name__}")
    raw = s.strip()
    if not raw:
        raise ValueError("invalid GEM taxonomy '': empty string")
    builder = _Builder(raw)
    for group in _split_top(raw, "/", raw):
        tokens = _tokens(group, raw)
        kind = _kind(tokens[0].code)
        if kind == "":
            raise ValueError(
                f"invalid GEM taxonomy {raw!r}: unknown attribute code "
                f"{tokens[0].code!r}"
            )
        if kind == "direction":
            builder.second_direction |= tokens[0].code == "DY"
            continue
        if kind == "unknown":
            # "UNK" stands for the first of material and lateral system not given.
            if not builder.seen("material"):
                kind = "material"
            elif not builder.seen("lateral_system"):
                kind = "lateral"
            else:
                raise ValueError(
                    f"invalid GEM taxonomy {raw!r}: 'UNK' after material and "
                    "lateral system"
                )
        if kind in {"code", "ductility", "lateral_param"}:
            # A group of design codes only ("CDL+DUL") describes the lateral system.
            for token in tokens:
                _detail(builder, "lateral", token, group)
            continue
        _head(builder, kind, tokens[0])
        for token in tokens[1:]:
            _detail(builder, kind, token, group)
    return builder.build()
