"""What ``map.html`` and ``overview.png`` say about trusting the map (private).

Short texts made from ``summary.json``: the expected number of damaged
buildings with its interval (:func:`expected_line`), what the probabilities
are (:func:`calibration_line`) and the input-shift warnings
(:func:`shift_lines`); :func:`notes_html` puts them together as the HTML block
shown under the map's title, :func:`overview_lines` as lines of the overview's
title.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import Any

#: Style of the notes block (inlined in the page's style sheet).
NOTES_STYLE = """
.notes { margin: 4px 0 6px; }
.notes div { margin-top: 2px; }
.notes .shift { color: #8a1c1c; background: #fdecea; border-radius: 4px;
  padding: 3px 5px; }
.notes .ok { color: #2e6b2e; }
.notes .muted { color: #666; }
"""


def expected_line(summary: Mapping[str, Any]) -> str | None:
    """The expected number of damaged buildings, with its interval.

    Args:
        summary: the map's summary

    Returns:
        E.g. ``"expected damaged: 41.3 (90 % interval 33-50)"``, or None without
        an expected count.
    """
    counts = summary.get("counts", {})
    if "expected_damaged" not in counts:
        return None
    level = summary.get("interval", {}).get("level", 0.9)
    return (
        f"expected damaged: {counts['expected_damaged']:,.1f} ({level:.0%} "
        f"interval {counts['expected_damaged_low']:,.0f}-"
        f"{counts['expected_damaged_high']:,.0f})"
    )


def expected_exposure_line(summary: Mapping[str, Any]) -> str | None:
    """Expected occupants and replacement cost in damaged buildings.

    Args:
        summary: the map's summary

    Returns:
        A heading and one indented line per figure with its expected value
        and interval (figures the exposure file cannot give are left out), or
        None without exposure.
    """
    exposure = summary.get("exposure") or {}
    names = {
        "occupants_night": "occupants at night",
        "occupants_day": "occupants by day",
        "replacement_cost_usd": "USD of replacement cost",
    }
    lines = []
    for column, name in names.items():
        mid, low, high = (
            exposure.get(f"{column}_expected{end}") for end in ("", "_low", "_high")
        )
        if mid is not None and low is not None and high is not None:
            lines.append(f"  {mid:,.0f} {name} ({low:,.0f}-{high:,.0f})")
    if not lines:
        return None
    level = summary.get("interval", {}).get("level", 0.9)
    heading = f"expected in damaged buildings ({level:.0%} intervals):"
    return "\n".join([heading, *lines])


def calibration_line(summary: Mapping[str, Any]) -> str | None:
    """What the probabilities are: calibrated, recalibrated or uncalibrated.

    Args:
        summary: the map's summary

    Returns:
        One sentence, or None without a ``calibration`` section.
    """
    section = summary.get("calibration")
    if not section:
        return None
    kind = section.get("probabilities")
    if kind == "recalibrated":
        recal = section["recalibration"]
        return (
            f"probabilities recalibrated on {recal['labels_used']} labelled "
            f"buildings of this city ({recal['labels_damaged']} damaged; the "
            f"model ranks them with AUROC {recal['labels_auroc']:.2f})"
        )
    if kind == "calibrated":
        return "probabilities calibrated on the model's validation data"
    return (
        "probabilities uncalibrated: the expected count and its interval are "
        "not reliable"
    )


def shift_lines(summary: Mapping[str, Any]) -> tuple[list[str], bool]:
    """The input-shift warnings, or what was found.

    Args:
        summary: the map's summary

    Returns:
        The lines, and whether they are warnings.
    """
    section = summary.get("shift")
    if not section:
        return [], False
    if not section.get("checked"):
        return [str(section.get("reason", "shift not checked"))], False
    if section.get("warnings"):
        lines = [
            "The inputs differ from the model's training data; the model may "
            "be out of its depth here:",
            *section["warnings"],
        ]
        if section.get("adapt_radiometry"):
            lines.append("SAR values were adapted to the training levels.")
        return lines, True
    return ["inputs within the range of the training data"], False


def notes_html(summary: Mapping[str, Any]) -> str:
    """The notes block of ``map.html``.

    Args:
        summary: the map's summary

    Returns:
        Escaped HTML (a ``div`` of class ``notes``), empty without notes.
    """
    parts = []
    line = expected_line(summary)
    if line is not None:
        parts.append(f"<div><b>{html.escape(line)}</b></div>")
    line = calibration_line(summary)
    if line is not None:
        parts.append(f'<div class="muted">{html.escape(line)}</div>')
    lines, warning = shift_lines(summary)
    if lines:
        css = "shift" if warning else "muted"
        body = "<br>".join(html.escape(text) for text in lines)
        parts.append(f'<div class="{css}" id="shift">{body}</div>')
    if not parts:
        return ""
    return '<div class="notes">' + "".join(parts) + "</div>"


def overview_lines(summary: Mapping[str, Any]) -> list[str]:
    """Title lines of ``overview.png`` under the counts.

    Args:
        summary: the map's summary

    Returns:
        The expected count with its interval, and a warning line when the
        inputs are out of the training range.
    """
    lines = []
    line = expected_line(summary)
    if line is not None:
        calibration = summary.get("calibration", {}).get("probabilities")
        lines.append(
            line + (" - uncalibrated" if calibration == "uncalibrated" else "")
        )
    shift = summary.get("shift") or {}
    if shift.get("warnings"):
        outside = [k for k, v in shift.get("inputs", {}).items() if v.get("outside")]
        lines.append(
            f"WARNING: inputs unlike the training data ({', '.join(outside)}); "
            "see summary.json"
        )
    return lines


def report_lines(summary: Mapping[str, Any]) -> list[str]:
    """Lines of the printed report of ``torchgeo-quake map``.

    Args:
        summary: the map's summary

    Returns:
        The expected count with its interval, what the probabilities are, and
        the shift warnings (or why the shift was not checked).
    """
    lines = [
        text
        for text in (
            expected_line(summary),
            expected_exposure_line(summary),
            calibration_line(summary),
        )
        if text is not None
    ]
    shift, warning = shift_lines(summary)
    if warning:
        lines.append("WARNING: " + shift[0])
        lines.extend(f"  {text}" for text in shift[1:])
    elif shift:
        lines.append(shift[0])
    return lines
