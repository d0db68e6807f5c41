"""Splitting a GEM taxonomy string into codes, and reading their values.

:func:`~torchgeo_quake.datasets.taxonomy.parse_taxonomy` walks the attribute
groups of a string and records each code; these functions do the lexing under
it: splitting on ``/`` and ``+`` outside parentheses (keeping the ``+`` of open
ranges such as ``HBET:10+``), taking each code apart into its name,
parenthesised argument and ``:value``, and reading the numeric values of
height and date codes.
"""

from __future__ import annotations

import re
from typing import NamedTuple

# Uppercase code, optional parenthesised argument, optional ``:value``.
_TOKEN_RE = re.compile(
    r"^(?P<code>[A-Z][A-Z0-9]*)(?:\((?P<inner>[^()]*)\))?(?::(?P<value>[A-Z0-9.,<>+\-]+))?$"
)
_NUMBER_RE = re.compile(r"^\d+(?:\.\d+)?$")
_RANGE_RE = re.compile(r"^(\d+(?:\.\d+)?)[-,](\d+(?:\.\d+)?)$")


class _Token(NamedTuple):
    """One code of a taxonomy string."""

    text: str
    code: str
    inner: str | None
    value: str | None


def _split_top(text: str, sep: str, raw: str) -> list[str]:
    """Split *text* on *sep* outside parentheses.

    Args:
        text: text to split
        sep: one-character separator
        raw: the whole taxonomy string, for error messages

    Returns:
        The parts (possibly empty strings).

    Raises:
        ValueError: If parentheses are unbalanced.
    """
    parts: list[str] = []
    depth = 0
    start = 0
    for i, char in enumerate(text):
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth < 0:
                raise ValueError(f"invalid GEM taxonomy {raw!r}: unbalanced ')'")
        elif char == sep and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    if depth != 0:
        raise ValueError(f"invalid GEM taxonomy {raw!r}: unbalanced '('")
    parts.append(text[start:])
    return parts


def _group_tokens(group: str, raw: str) -> list[str]:
    """Split an attribute group into codes, keeping ``n+`` open ranges together.

    Args:
        group: one ``/``-separated group
        raw: the whole taxonomy string, for error messages

    Returns:
        The codes of the group.

    Raises:
        ValueError: If the group or one of its codes is empty.
    """
    if not group:
        raise ValueError(f"invalid GEM taxonomy {raw!r}: empty attribute group")
    tokens: list[str] = []
    for part in _split_top(group, "+", raw):
        if not part:
            # "HBET:10+" splits into "HBET:10" and "": the "+" is an open range.
            if tokens and ":" in tokens[-1] and tokens[-1][-1].isdigit():
                tokens[-1] += "+"
                continue
            raise ValueError(f"invalid GEM taxonomy {raw!r}: empty code in {group!r}")
        tokens.append(part)
    return tokens


def _number(value: str, raw: str) -> float:
    """Convert a plain or open-ended numeric value of a height or date code.

    Args:
        value: ``n``, ``a-b``, ``a,b``, ``n+``, ``>n`` or ``<n``
        raw: the whole taxonomy string, for error messages

    Returns:
        The value (midpoint of a range, first admissible integer of an open one;
        ``<n`` gives the midpoint of 1..n-1).

    Raises:
        ValueError: If the value is not numeric.
    """
    if _NUMBER_RE.match(value):
        return float(value)
    match = _RANGE_RE.match(value)
    if match:
        low, high = float(match.group(1)), float(match.group(2))
        if high < low:
            raise ValueError(f"invalid GEM taxonomy {raw!r}: empty range {value!r}")
        return (low + high) / 2
    if value.endswith("+") and _NUMBER_RE.match(value[:-1]):
        return float(value[:-1])
    if value.startswith(">") and _NUMBER_RE.match(value[1:]):
        return float(value[1:]) + 1
    if value.startswith("<") and _NUMBER_RE.match(value[1:]):
        return max(float(value[1:]) / 2, 1.0)
    raise ValueError(f"invalid GEM taxonomy {raw!r}: cannot read value {value!r}")


def _storeys(code: str, value: str | None, raw: str) -> float | None:
    """Number of storeys of a height code.

    Args:
        code: ``H``, ``HEX``, ``HBET``, ``HAPP`` or ``H99``
        value: its ``:value`` part
        raw: the whole taxonomy string, for error messages

    Returns:
        Storeys, or None when unknown (``H99``, ``H:UNK``).

    Raises:
        ValueError: If a value is missing or not numeric.
    """
    if code == "H99" or value in {"UNK", "99"}:
        return None
    if value is None:
        raise ValueError(f"invalid GEM taxonomy {raw!r}: {code} without a value")
    storeys = _number(value, raw)
    if storeys <= 0:
        raise ValueError(f"invalid GEM taxonomy {raw!r}: {value!r} storeys")
    return storeys


def _year(code: str, value: str | None, raw: str) -> float | None:
    """Construction year of a date code.

    Args:
        code: ``Y``, ``YEX``, ``YBET``, ``YPRE``, ``YAPP``, ``Y99`` or ``YN``
        value: its ``:value`` part
        raw: the whole taxonomy string, for error messages

    Returns:
        The year (midpoint of ranges; ``YPRE:n`` -> n - 1), or None if unknown.

    Raises:
        ValueError: If a value is missing or not numeric.
    """
    if code in {"Y99", "YN"} or value in {"UNK", "99"}:
        return None
    if value is None:
        raise ValueError(f"invalid GEM taxonomy {raw!r}: {code} without a value")
    if code == "YPRE":
        return _number(value, raw) - 1
    return _number(value, raw)


def _tokens(group: str, raw: str) -> list[_Token]:
    """Parse the codes of one attribute group.

    Args:
        group: one ``/``-separated group
        raw: the whole taxonomy string, for error messages

    Returns:
        The codes.

    Raises:
        ValueError: If a code is malformed.
    """
    tokens = []
    for text in _group_tokens(group, raw):
        match = _TOKEN_RE.match(text)
        if match is None:
            raise ValueError(f"invalid GEM taxonomy {raw!r}: bad code {text!r}")
        tokens.append(_Token(text, match["code"], match["inner"], match["value"]))
    return tokens
