"""Caption sentences and footnotes of the protocol tables (private helpers).

:func:`~torchgeo_quake.protocols.tables.build_table` composes its captions and
notes from these: the bold rule (:func:`bold_rule`), the null reference
(:func:`null_sentence`, :func:`null_cities_sentence`), Sun et al.'s quoted
column (:func:`sun_notes`) and the runs cut short or with undefined metrics
(:func:`run_notes`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ._comparisons import NULL_DRAWS, NULL_MAX_DAMAGED, Comparisons

if TYPE_CHECKING:
    from .tables import Cell


def upper_first(text: str) -> str:
    """Capitalise the first letter only.

    Args:
        text: a sentence

    Returns:
        The sentence with an upper-case first letter.
    """
    return text[:1].upper() + text[1:]


def bold_rule(comparisons: Comparisons, label_of: Mapping[str, str]) -> str:
    """The caption's sentence on the bold cells.

    Args:
        comparisons: the paired comparisons
        label_of: display label per configuration

    Returns:
        The sentence.
    """
    if not comparisons.intervals:
        return "Nothing bold: no paired comparison (see the notes)."
    reference = label_of.get(comparisons.reference, comparisons.reference)
    return (
        f"Bold: the 95 % interval of the paired difference to {reference} "
        f"excludes zero (▲ higher, ▼ lower; {comparisons.method}; see "
        f"comparisons_{comparisons.protocol}.md)."
    )


def null_sentence(comparisons: Comparisons) -> str:
    """The fold tables' caption sentence on the null reference.

    Args:
        comparisons: the comparisons (with the typical fold size)

    Returns:
        The sentence (empty when the fold sizes are unknown).
    """
    null = comparisons.null.get("")
    if comparisons.fold_size is None or null is None:
        return ""
    total, damaged = comparisons.fold_size
    return (
        f" Null reference for a typical test fold ({total} buildings, {damaged} "
        f"damaged): {null.text()} (random scores; median [95th percentile] of "
        f"{NULL_DRAWS} draws)."
    )


def run_notes(
    records: Sequence[Mapping[str, Any]],
    cells: Mapping[tuple[tuple[str, ...], str], Cell],
) -> list[str]:
    """Notes on runs cut by the time limit and on undefined metrics.

    Args:
        records: the runs
        cells: the table's cells

    Returns:
        The notes, possibly none.
    """
    notes = []
    cut = [r for r in records if r.get("stopped_by_max_time")]
    if cut:
        notes.append(
            f"{len(cut)} of {len(records)} runs were stopped by the time limit "
            "(--max-time) before their last epoch: "
            + ", ".join(f"{r['config']}/{r['split']} ({r['epochs']})" for r in cut)
            + "."
        )
    computed = [c for c in cells.values() if not c.quoted]
    if any(0 < c.n < c.total for c in computed):
        notes.append(
            "†: undefined in some runs (e.g. precision when nothing is predicted "
            "damaged); mean over the runs where it is defined."
        )
    if any(c.n == 0 for c in computed):
        notes.append(
            "–: undefined in every run (e.g. precision when nothing is predicted "
            "damaged)."
        )
    return notes


def null_cities_sentence() -> str:
    """Table IV's caption sentence on its null-reference column.

    Returns:
        The sentence.
    """
    return (
        f" Null reference (cities with fewer than {NULL_MAX_DAMAGED} damaged "
        "test buildings): best F1 and AUROC of random scores on that city's "
        f"test set, median [95th percentile] of {NULL_DRAWS} draws."
    )


def sun_notes(policy: str, label: str) -> str:
    """The note on Sun et al.'s quoted column of Table V.

    Args:
        policy: the threshold policy
        label: the column's label

    Returns:
        The note.
    """
    if policy == "bestf1":
        return (
            f"{label}: figures of Sun et al. (2024), QuickQuakeBuildings, "
            "real Capella SAR of Islahiye, at their best-F1 threshold, as "
            "quoted in the paper's Table V. They were not re-run here and are "
            "not comparable with the simulated columns; they take no part in "
            "the bold marking. They report neither AP nor kappa (–)."
        )
    return (
        "Sun et al. (2024) report no metrics at a validation-chosen "
        "threshold; see the best-F1 version of this table for their figures."
    )
