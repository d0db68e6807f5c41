"""Simulator scenarios: which damage and image model a scene is drawn from.

A :class:`Scenario` names the model and holds the two knobs that decide the
paper's question ("do DSM and GEM add information to single-date SAR?"):

* ``"calibrated"`` (the default since 0.3): damage from GEM's published
  vulnerability functions at a ground-motion field of the two 2023 ruptures,
  building stock and SAR image formation calibrated to public evidence
  (docs/simulator.md, "Calibration");
* ``"v0.1"``: the model of torchgeo_quake 0.1 and 0.2 (logit propensity with
  hand-set vulnerability increments, short-range shaking field, one damage
  contrast in every city), kept so that earlier results can be reproduced.

The knobs:

``sar_contrast``
    Multiplier of the damage signature in the SAR image (debris brightness,
    loss of the building's double bounce and layover): 1 is the calibrated
    contrast, 0 removes every damage cue from the SAR image, 2 doubles it.
``vulnerability_strength``
    Weight of the building's vulnerability (construction type, height, age)
    against shaking and chance in the damage draw: 1 is GEM's published
    fragility, 0 makes damage independent of the building (only shaking and
    chance), larger values make the building type more decisive.

Neither knob is tuned to the paper's DSM/GEM gains: they are the axes along
which a researcher draws the curve of modality gain.

.. versionadded:: 0.3
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Literal

__all__ = ["DEFAULT_SCENARIO", "SCENARIO_NAMES", "Scenario", "resolve_scenario"]

ScenarioName = Literal["calibrated", "v0.1"]

#: Names of the available scenarios, the default first.
SCENARIO_NAMES: tuple[ScenarioName, ...] = ("calibrated", "v0.1")


@dataclass(frozen=True)
class Scenario:
    """The damage and image model of a simulated scene.

    Attributes:
        name: ``"calibrated"`` (default) or ``"v0.1"`` (see the module docstring)
        sar_contrast: multiplier of the SAR damage signature (>= 0)
        vulnerability_strength: weight of the building's vulnerability in the
            damage draw (>= 0)

    .. versionadded:: 0.3
    """

    name: ScenarioName = "calibrated"
    sar_contrast: float = 1.0
    vulnerability_strength: float = 1.0

    def __post_init__(self) -> None:
        """Check the fields.

        Raises:
            ValueError: If the name is unknown or a knob is negative or not
                finite.
        """
        if self.name not in SCENARIO_NAMES:
            raise ValueError(
                f"unknown simulator scenario {self.name!r}; choose one of "
                f"{', '.join(SCENARIO_NAMES)}"
            )
        for key in ("sar_contrast", "vulnerability_strength"):
            value = getattr(self, key)
            if not (isinstance(value, int | float) and math.isfinite(value)):
                raise ValueError(f"scenario {key} must be a finite number: {value!r}")
            if value < 0:
                raise ValueError(f"scenario {key} must be >= 0, got {value}")
        if self.name == "v0.1" and (
            self.sar_contrast != 1.0 or self.vulnerability_strength != 1.0
        ):
            raise ValueError(
                "the v0.1 scenario has no knobs: sar_contrast and "
                "vulnerability_strength apply to the calibrated scenario only"
            )

    @property
    def is_v01(self) -> bool:
        """Whether this is the model of versions 0.1 and 0.2."""
        return self.name == "v0.1"

    def as_dict(self) -> dict[str, Any]:
        """The scenario as stored in ``scene.json``.

        Returns:
            ``{"name": ..., "sar_contrast": ..., "vulnerability_strength": ...}``.
        """
        values = asdict(self)
        values["sar_contrast"] = float(values["sar_contrast"])
        values["vulnerability_strength"] = float(values["vulnerability_strength"])
        return values

    def label(self) -> str:
        """Short human-readable name, e.g. ``calibrated (SAR contrast 0.5)``.

        Returns:
            The name, with the knobs that differ from 1.
        """
        knobs = []
        if self.sar_contrast != 1.0:
            knobs.append(f"SAR contrast {self.sar_contrast:g}")
        if self.vulnerability_strength != 1.0:
            knobs.append(f"vulnerability strength {self.vulnerability_strength:g}")
        return self.name + (f" ({', '.join(knobs)})" if knobs else "")


#: The default scenario.
DEFAULT_SCENARIO = Scenario()


def resolve_scenario(
    scenario: Scenario | str | None = None,
    sar_contrast: float | None = None,
    vulnerability_strength: float | None = None,
) -> Scenario:
    """A scenario from a name or instance and optional knob values.

    Args:
        scenario: a :class:`Scenario`, a name, or None for the default
        sar_contrast: overrides the scenario's SAR contrast if given
        vulnerability_strength: overrides its vulnerability strength if given

    Returns:
        The scenario.

    Raises:
        ValueError: If the name is unknown or a knob is invalid.

    .. versionadded:: 0.3
    """
    if scenario is None:
        base = DEFAULT_SCENARIO
    elif isinstance(scenario, Scenario):
        base = scenario
    else:
        base = Scenario(name=scenario)  # type: ignore[arg-type]
    return Scenario(
        name=base.name,
        sar_contrast=base.sar_contrast if sar_contrast is None else sar_contrast,
        vulnerability_strength=(
            base.vulnerability_strength
            if vulnerability_strength is None
            else vulnerability_strength
        ),
    )
