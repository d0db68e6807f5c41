"""How a damage model's inputs are made: the one contract and its one check.

A :class:`~torchgeo_quake.trainers.DamageDetectionTask` records in its
checkpoints how the patches it was trained on were made: the radiometry of the
SAR values, the SAR pixel size in metres and the patch size in pixels. Training
(the data module's ``input_spec()``, a restored or fine-tuned checkpoint) and
mapping (:func:`~torchgeo_quake.mapping.load_damage_model`) read that record
through :meth:`InputSpec.from_mapping` and compare two records with
:meth:`InputSpec.differences`, so both apply the same rules:

* ``radiometry`` is one of :data:`RADIOMETRIES`;
* ``sar_res`` is a positive, finite number of metres, or None when unknown. A
  *missing* ``sar_res`` key means unknown too (checkpoints written before the
  pixel size was recorded lack it), in training and in mapping alike;
* ``patch_size`` is a positive integer;
* other keys are ignored (and dropped), so that a record written by a later
  version with more keys still reads.

The normalisation statistics are not part of the specification: they stay
buffers of the task (saved in its ``state_dict``).

.. versionadded:: 0.2
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "INPUT_SPEC_KEY",
    "RADIOMETRIES",
    "SAR_RES_TOLERANCE",
    "InputSpec",
    "InputSpecError",
    "validate_input_spec",
]

#: Checkpoint key under which :meth:`InputSpec.to_dict` is stored.
INPUT_SPEC_KEY = "torchgeo_quake_input_spec"

#: SAR radiometries an input specification may name.
RADIOMETRIES = ("db", "amplitude", "intensity")

#: Relative difference of two SAR pixel sizes (metres per pixel) below which
#: they count as the same pixel size (1 %): used to compare specifications, to
#: decide whether a SAR image must be resampled for mapping and whether the
#: cities of a data set share one pixel size.
SAR_RES_TOLERANCE = 0.01

#: Keys every specification must have (``sar_res`` may be missing: unknown).
_REQUIRED = ("radiometry", "patch_size")


class InputSpecError(ValueError):
    """A malformed input specification.

    ``str(error)`` is ``"<source>: <problem>"``; :attr:`source` and
    :attr:`problem` are available separately for callers that phrase their own
    message.

    .. versionadded:: 0.2
    """

    def __init__(self, source: str, problem: str) -> None:
        """Initialize a new InputSpecError instance.

        Args:
            source: Where the specification comes from, e.g.
                ``"checkpoint 'best.ckpt' input spec"``.
            problem: What is wrong with it.
        """
        super().__init__(f"{source}: {problem}")
        self.source = source
        self.problem = problem


def _radiometry(value: Any, source: str) -> str:
    """Check a radiometry.

    Args:
        value: The value.
        source: Where it comes from, for messages.

    Returns:
        The radiometry.

    Raises:
        InputSpecError: If it is not one of :data:`RADIOMETRIES`.
    """
    if not isinstance(value, str) or value not in RADIOMETRIES:
        raise InputSpecError(
            source, f"radiometry must be one of {list(RADIOMETRIES)}, got {value!r}"
        )
    return value


def _sar_res(value: Any, source: str) -> float | None:
    """Check a SAR pixel size.

    Args:
        value: The value (None: unknown).
        source: Where it comes from, for messages.

    Returns:
        The pixel size as a float, or None.

    Raises:
        InputSpecError: If it is not a positive, finite number or None.
    """
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InputSpecError(
            source, f"sar_res must be a number of metres or None, got {value!r}"
        )
    res = float(value)
    if not (math.isfinite(res) and res > 0):
        raise InputSpecError(
            source, f"sar_res must be a positive number of metres, got {value!r}"
        )
    return res


def _patch_size(value: Any, source: str) -> int:
    """Check a patch size.

    Args:
        value: The value.
        source: Where it comes from, for messages.

    Returns:
        The patch size as an int.

    Raises:
        InputSpecError: If it is not a positive integer (floats are refused).
    """
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Integral)
        or int(value) < 1
    ):
        raise InputSpecError(
            source, f"patch_size must be a positive int, got {value!r}"
        )
    return int(value)


@dataclass(frozen=True)
class InputSpec:
    """How the patches a model sees are made.

    Instances are always valid: the constructor checks and canonicalises its
    arguments as :meth:`from_mapping` does.

    .. versionadded:: 0.2
    """

    #: Radiometry of the SAR values, one of :data:`RADIOMETRIES`.
    radiometry: str
    #: SAR pixel size in metres at which patches are extracted; None if unknown.
    sar_res: float | None
    #: Side of a patch in SAR pixels.
    patch_size: int

    def __post_init__(self) -> None:
        """Check the fields and canonicalise their types.

        Raises:
            InputSpecError: If a field is invalid.
        """
        source = "InputSpec"
        object.__setattr__(self, "radiometry", _radiometry(self.radiometry, source))
        object.__setattr__(self, "sar_res", _sar_res(self.sar_res, source))
        object.__setattr__(self, "patch_size", _patch_size(self.patch_size, source))

    @classmethod
    def from_mapping(cls, spec: Any, source: str = "input spec") -> InputSpec:
        """Check a stored or reported specification and build an InputSpec.

        This is the one validation of input specifications, used for the data
        module's ``input_spec()``, for checkpoints when training, fine-tuning
        and mapping.

        Args:
            spec: A mapping with ``radiometry``, ``patch_size`` and, optionally,
                ``sar_res`` (a missing ``sar_res`` means unknown, as None does:
                older checkpoints lack the key). Other keys are ignored.
            source: Where *spec* comes from, named in error messages, e.g.
                ``"checkpoint 'best.ckpt' input spec"``.

        Returns:
            The specification.

        Raises:
            InputSpecError: A :class:`ValueError` naming *source* and the
                problem, if *spec* is not a mapping, lacks a key or has an
                invalid value.
        """
        if not isinstance(spec, Mapping):
            raise InputSpecError(
                source, f"must be a mapping, got a {type(spec).__name__}"
            )
        missing = [key for key in _REQUIRED if key not in spec]
        if missing:
            raise InputSpecError(
                source, f"lacks {missing} (got keys {sorted(map(str, spec))})"
            )
        return cls(
            radiometry=_radiometry(spec["radiometry"], source),
            sar_res=_sar_res(spec.get("sar_res"), source),
            patch_size=_patch_size(spec["patch_size"], source),
        )

    def to_dict(self) -> dict[str, Any]:
        """The specification in its stored form (the checkpoint format).

        Returns:
            ``{"radiometry": str, "sar_res": float | None, "patch_size": int}``.
        """
        return {
            "radiometry": self.radiometry,
            "sar_res": self.sar_res,
            "patch_size": self.patch_size,
        }

    def differences(
        self, other: InputSpec, names: tuple[str, str] = ("model", "data")
    ) -> list[str]:
        """Describe how another specification differs from this one.

        Pixel sizes agree when they differ by at most
        :data:`SAR_RES_TOLERANCE` (relative to this one's), and an unknown
        pixel size on either side agrees with any.

        Args:
            other: The specification to compare with.
            names: What this and *other* describe, for the phrases.

        Returns:
            One phrase per differing field, e.g.
            ``"radiometry 'db' (model) != 'amplitude' (data)"``; empty when
            they agree.
        """
        mine, theirs = names
        diffs = [
            f"{key} {getattr(self, key)!r} ({mine}) != "
            f"{getattr(other, key)!r} ({theirs})"
            for key in ("radiometry", "patch_size")
            if getattr(self, key) != getattr(other, key)
        ]
        a, b = self.sar_res, other.sar_res
        if a is not None and b is not None and abs(a - b) > SAR_RES_TOLERANCE * a:
            diffs.append(f"sar_res {a:g} m ({mine}) != {b:g} m ({theirs})")
        return diffs


def validate_input_spec(spec: Any, source: str = "input spec") -> dict[str, Any]:
    """Check an input specification and return it in canonical form.

    A thin wrapper of ``InputSpec.from_mapping(spec, source).to_dict()`` (see
    :class:`InputSpec`), the one validation of input specifications, for code
    that works with the stored dict form.

    Args:
        spec: Mapping with ``radiometry`` (``"db"``, ``"amplitude"`` or
            ``"intensity"``), ``sar_res`` (positive SAR pixel size in metres,
            or None if unknown; a missing key means unknown too) and
            ``patch_size`` (positive int); other keys are ignored.
        source: Where *spec* comes from, for error messages.

    Returns:
        A new dict with exactly ``radiometry``, ``sar_res`` (float or None) and
        ``patch_size`` (int).

    Raises:
        ValueError: If *spec* is not a mapping, a required key is missing or a
            value is invalid (an :class:`InputSpecError`).

    .. versionadded:: 0.1
    .. versionchanged:: 0.2
       A missing ``sar_res`` means unknown (as in mapping) and other keys are
       dropped.
    """
    return InputSpec.from_mapping(spec, source).to_dict()
