"""Tables of the protocols: aggregation, bold significant, formats (no training)."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from torchgeo_quake.protocols import (
    SUN_ET_AL,
    build_table,
    format_markdown,
    write_tables,
)
from torchgeo_quake.protocols.tables import SUN_LABEL


def record(
    config: str, split: str, seed: int = 0, shift: float = 0.0, **extra: float
) -> dict[str, Any]:
    metrics = {
        "test_precision_oracle": 0.5 + shift,
        "test_recall_oracle": 0.4 + shift,
        "test_f1_oracle": 0.45 + shift,
        "test_kappa_oracle": 0.3 + shift,
        "test_auroc": 0.8 + shift,
        "test_ap": 0.6 + shift,
        "test_precision_valthr": 0.3 + shift,
        "test_recall_valthr": 0.2 + shift,
        "test_f1_valthr": 0.25 + shift,
        "test_kappa_valthr": 0.1 + shift,
    }
    metrics.update(extra)
    return {
        "config": config,
        "label": config.upper(),
        "split": split,
        "seed": seed,
        "metrics": metrics,
        "val_threshold": 0.5,
        "best_epoch": 0,
    }


def cv_records(a: str = "a") -> list[dict[str, Any]]:
    # "b" is 0.05 better than "a" in every fold; the folds differ by 0.2 ->
    # sample std 0.2 / sqrt(2).
    return [
        record(name, f"fold{k}", shift=base + delta)
        for name, base in ((a, 0.0), ("b", 0.05))
        for k, delta in enumerate((0.0, 0.2))
    ]


def test_mean_sample_std_and_bold() -> None:
    records = cv_records("sar_ftp")
    table = build_table(records, "cv", "bestf1", order=["sar_ftp", "b"])
    assert table.number == "III"
    assert table.columns == ["SAR_FTP", "B"]
    f1_a = table.cells[("F1 score",), "SAR_FTP"]
    assert f1_a.mean == pytest.approx(0.55)
    assert f1_a.std == pytest.approx(np.std([0.45, 0.65], ddof=1))
    markdown = format_markdown(table)
    # "b" is better by 0.05 in every fold: significant, bold, higher.
    assert "| F1 score | 0.550 ± 0.141 | **0.600 ± 0.141** ▲ |" in markdown
    assert "| AUROC | 0.900 ± 0.141 | **0.950 ± 0.141** ▲ |" in markdown
    assert "| AP | 0.700 ± 0.141 | **0.750 ± 0.141** ▲ |" in markdown
    assert markdown.count("**") == 2 * 6  # "b" per metric; never the reference
    assert "best-F1 threshold of each test split" in markdown
    assert "sample SD (ddof=1)" in table.caption and "n = 2 runs" in table.caption
    assert "excludes zero" in table.caption
    interval = table.cells[("F1 score",), "B"].comparison
    assert interval is not None and interval.mean == pytest.approx(0.05)


def legacy(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The records as versions before 0.3 wrote them (test_f1, not _oracle)."""
    return [
        {
            **r,
            "metrics": {k.removesuffix("_oracle"): v for k, v in r["metrics"].items()},
        }
        for r in records
    ]


def test_records_of_earlier_versions_give_the_same_tables(tmp_path: Path) -> None:
    new = cv_records("sar_ftp")
    old = legacy(new)
    assert "test_f1" in old[0]["metrics"] and "test_f1_oracle" not in old[0]["metrics"]
    for policy in ("bestf1", "valthr"):
        a = build_table(new, "cv", policy, order=["sar_ftp", "b"])
        b = build_table(old, "cv", policy, order=["sar_ftp", "b"])
        assert format_markdown(a) == format_markdown(b)
    # The oracle F1 is read, not missing: 0.55 in the old records too.
    cell = build_table(old, "cv", "bestf1", order=["sar_ftp", "b"]).cells[
        ("F1 score",), "SAR_FTP"
    ]
    assert cell.mean == pytest.approx(0.55) and cell.n == 2
    write_tables(old, tmp_path, "cv", order=["sar_ftp", "b"])
    with (tmp_path / "runs.csv").open() as f:
        row = next(csv.DictReader(f))
    assert float(row["test_f1_oracle"]) == pytest.approx(0.45)
    assert "test_f1" not in row


def test_without_reference_nothing_is_bold() -> None:
    table = build_table(cv_records(), "cv", "bestf1", order=["a", "b"])
    assert not any(cell.bold for cell in table.cells.values())
    assert any("No runs of the reference" in note for note in table.notes)
    assert "Nothing bold" in table.caption


def test_policies_use_their_metrics() -> None:
    val = build_table(cv_records(), "cv", "valthr", order=["a", "b"])
    best = build_table(cv_records(), "cv", "bestf1", order=["a", "b"])
    assert val.cells[("F1 score",), "A"].mean == pytest.approx(0.35)
    assert best.cells[("F1 score",), "A"].mean == pytest.approx(0.55)
    # AUROC and AP are threshold-free: the same in both.
    assert val.cells[("AUROC",), "B"].mean == best.cells[("AUROC",), "B"].mean
    assert val.cells[("AP",), "B"].mean == best.cells[("AP",), "B"].mean
    assert "validation split" in val.caption
    assert "never chosen on the test data" in val.caption


def test_equal_is_not_bold_and_nan_is_marked() -> None:
    records = [
        record("sar_ftp", "fold0"),
        record("b", "fold0", test_precision_oracle=math.nan),
        record("b", "fold1"),
        record("sar_ftp", "fold1"),
    ]
    table = build_table(records, "cv", "bestf1", order=["sar_ftp", "b"])
    # Equal values: the difference is zero, the interval holds it.
    assert not table.cells[("Recall",), "B"].bold
    assert not table.cells[("Recall",), "SAR_FTP"].bold
    precision_b = table.cells[("Precision",), "B"]
    assert (precision_b.n, precision_b.total) == (1, 2)
    assert precision_b.text().endswith("†")
    assert any("†" in note for note in table.notes)


def test_loco_blocks_per_city() -> None:
    records = [
        record(name, city, shift=shift)
        for city, order in (("islahiye", (0.0, 0.1)), ("nurdagi", (0.1, 0.0)))
        for name, shift in zip(("sar_ftp", "b"), order, strict=True)
    ]
    table = build_table(records, "loco", "bestf1", order=["sar_ftp", "b"])
    assert table.number == "IV"
    assert table.index_names == ["City", "Inputs"]
    assert table.columns[3:5] == ["AUROC", "AP"]
    assert table.rows[0] == ("Islahiye", "SAR_FTP")
    # Without predictions.npz there is no bootstrap: nothing bold, a note.
    assert not any(cell.bold for cell in table.cells.values())
    assert any("no predictions.npz" in note for note in table.notes)
    markdown = format_markdown(table)
    assert "| Islahiye | SAR_FTP | 0.500 |" in markdown  # one seed: no ± std
    assert "|  | B | 0.600 |" in markdown  # the city is named once per block
    assert "seed 0 (n = 1 per cell)" in table.caption


def test_islahiye_quotes_sun_et_al() -> None:
    table = build_table(cv_records(), "islahiye", "bestf1", order=["a", "b"])
    assert table.number == "V"
    assert table.columns[0] == SUN_LABEL
    assert "quoted" in SUN_LABEL and "not re-run" in SUN_LABEL
    cell = table.cells[("Precision",), SUN_LABEL]
    assert cell.quoted and (cell.mean, cell.std) == SUN_ET_AL["precision"]
    assert not cell.bold  # quoted figures take no part in the comparison
    assert table.cells[("Kappa",), SUN_LABEL].text() == "–"
    assert table.cells[("AP",), SUN_LABEL].text() == "–"
    assert "0.237 ± 0.116" in format_markdown(table)
    # The validation-threshold version has no Sun et al. column.
    val = build_table(cv_records(), "islahiye", "valthr", order=["a", "b"])
    assert SUN_LABEL not in val.columns


def test_sun_et_al_matches_the_paper() -> None:
    paper = (
        Path(__file__).resolve().parents[3]
        / "shared"
        / "paper"
        / "russo2025-arxiv-2506.22338.txt"
    )
    if not paper.exists():
        pytest.skip("paper text not found")
    text = paper.read_text(encoding="utf-8")
    rows = text[text.index("Metric\tSun et al.") :].splitlines()[1:6]
    for (key, quoted), row in zip(SUN_ET_AL.items(), rows, strict=True):
        first = row.split("\t")[1]
        if quoted is None:
            assert key == "kappa" and first.strip() == "-"
        else:
            assert first == f"{quoted[0]:.3f} ± {quoted[1]:.3f}"


def test_write_three_formats(tmp_path: Path) -> None:
    files = write_tables(cv_records("sar_ftp"), tmp_path, "cv", ["sar_ftp", "b"])
    names = sorted(p.name for p in files)
    for policy in ("bestf1", "valthr"):
        for ext in ("md", "csv", "json"):
            assert f"table_III_cv_{policy}.{ext}" in names
    assert "runs.csv" in names
    assert {"comparisons_cv.md", "comparisons_cv.csv"} <= set(names)
    payload = json.loads((tmp_path / "table_III_cv_valthr.json").read_text())
    assert payload["threshold_policy"] == "valthr"
    assert "ddof=1" in payload["std"]
    cells = {(c["Metric"], c["column"]): c for c in payload["cells"]}
    assert cells["F1 score", "B"]["bold"] and cells["F1 score", "B"]["significant"]
    assert cells["F1 score", "B"]["mean"] == pytest.approx(0.4)
    assert cells["F1 score", "B"]["difference"] == pytest.approx(0.05)
    assert cells["F1 score", "SAR_FTP"]["difference"] is None
    with (tmp_path / "table_III_cv_bestf1.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 6 * 2
    f1 = next(r for r in rows if r["Metric"] == "F1 score" and r["column"] == "SAR_FTP")
    assert float(f1["mean"]) == pytest.approx(0.55)
    assert float(f1["std"]) == pytest.approx(np.std([0.45, 0.65], ddof=1), abs=1e-6)
    with (tmp_path / "comparisons_cv.csv").open() as f:
        compared = list(csv.DictReader(f))
    # One row per metric key: 4 threshold metrics × 2 policies, AUROC, AP.
    assert len(compared) == 10
    assert {r["significant"] for r in compared} == {"yes"}
    assert (
        "| B | F1 score | oracle | +0.050 |"
        in (tmp_path / "comparisons_cv.md").read_text()
    )
    with (tmp_path / "runs.csv").open() as f:
        runs = list(csv.DictReader(f))
    assert len(runs) == 4
    assert np.isclose(float(runs[0]["test_f1_oracle"]), 0.45)
    assert "test_f1" not in runs[0]


def test_invalid_arguments() -> None:
    with pytest.raises(ValueError, match="protocol"):
        build_table(cv_records(), "nope", "bestf1")
    with pytest.raises(ValueError, match="policy"):
        build_table(cv_records(), "cv", "nope")
    with pytest.raises(ValueError, match="no finished runs"):
        build_table([], "cv", "bestf1")


def test_confusion_figure_passes_over_tiny_test_splits() -> None:
    from torchgeo_quake.protocols.figures import MIN_DAMAGED, _figure_run

    def record(split: str, f1: float | None, damaged: int) -> dict[str, Any]:
        return {
            "split": split,
            "metrics": {"test_f1_oracle": f1},
            "n_test_damaged": damaged,
        }

    runs = [
        record("osmaniye", 0.9, 2),  # best F1, but only two damaged buildings
        record("nurdagi", 0.4, 100),
        record("islahiye", 0.5, MIN_DAMAGED),
        record("turkoglu", None, 20),
    ]
    chosen = _figure_run(runs)
    assert chosen is not None and chosen["split"] == "islahiye"
    # With only small splits, the best of them.
    small = _figure_run([record("a", 0.2, 1), record("b", 0.3, 2)])
    assert small is not None and small["split"] == "b"
    assert _figure_run([record("c", None, 50)]) is None
