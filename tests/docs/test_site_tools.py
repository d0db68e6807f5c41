"""The documentation's own tools: figure manifest, API help and screenshots.

``docs/scripts/make_figures.py`` decides whether a committed figure is current from
its manifest entry, so the pieces of that entry are tested here: the architecture
diagram's sizes come from the model the configuration builds, fingerprints see
code changes but not comments or docstrings, and differences are reported by
field. ``docs/scripts/protocol_results.py`` copies a protocol's outputs into
``docs/results/`` unedited, and ``docs/scripts/compare_protocols.py`` compares
two protocol folders split by split. ``test_screenshots`` renders the built site in
headless Chromium, and ``test_map_screenshot`` a small ``map.html`` opened from disk
with the network cut off; both run only where a Chromium is installed (CI machines
without one skip them, saying so).
"""

from __future__ import annotations

import json
import shutil
import textwrap
import types
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = ROOT / "docs" / "scripts"


@pytest.fixture(scope="module")
def docs_script(
    load_script: Callable[[Path], types.ModuleType],
) -> Callable[[str], types.ModuleType]:
    """A function that imports ``docs/scripts/<name>.py`` by name."""
    return lambda name: load_script(SCRIPTS / f"{name}.py")


@pytest.fixture(scope="module")
def figures(docs_script: Callable[[str], types.ModuleType]) -> types.ModuleType:
    return docs_script("make_figures")


def test_architecture_sizes_come_from_the_model(
    figures: types.ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = figures.architecture_spec()
    assert spec["head"][0] == "Linear → 256"
    assert spec["raster_embedding"] == 512
    # Another configuration gives another diagram (and another manifest entry).
    config = yaml.safe_load((ROOT / "experiments" / "all_inputs.yaml").read_text())
    config["model"]["init_args"].update(
        hidden_dim=96, dropout=0.25, modalities=["sar", "footprint", "gem"]
    )
    path = tmp_path / "experiments" / "other.yaml"
    path.parent.mkdir()
    path.write_text(yaml.safe_dump(config))
    monkeypatch.setattr(figures, "CONFIG", path)
    monkeypatch.setattr(figures, "ROOT", tmp_path)
    other = figures.architecture_spec()
    assert other["head"] == ["Linear → 96", "ReLU", "dropout 0.25", "Linear → 1"]
    assert other["modalities"] == ["sar", "footprint", "gem"]
    assert other["parameters"] < spec["parameters"]


def test_fingerprints_see_code_not_comments(figures: types.ModuleType) -> None:
    def fingerprint(source: str) -> str:
        return str(figures._digest([__import__("ast").parse(textwrap.dedent(source))]))

    base = fingerprint('def f(x):\n    """Doc."""\n    return x + 1\n')
    assert base == fingerprint("def f(x):  # a comment\n    return (x + 1)\n")
    assert base != fingerprint("def f(x):\n    return x + 2\n")
    # The script's fingerprint of a figure covers the helpers and constants it uses.
    assert figures.script_fingerprint("patch_intact") != figures.script_fingerprint(
        "patch_collapsed"
    )


def test_manifest_differences_name_the_fields(figures: types.ModuleType) -> None:
    old = {"script": "a", "inputs": {"scene": {"buildings": 10, "sar": [1, 2]}}}
    new = {"script": "a", "inputs": {"scene": {"buildings": 12, "sar": [1, 2]}}}
    assert figures.differences(old, new) == ["inputs.scene.buildings: 10 -> 12"]
    assert figures.differences(old, old) == []
    assert figures._plain({"x": 0.123456789, "n": [1, 2.00004]}) == {
        "x": 0.1235,
        "n": [1, 2.0],
    }


def test_committed_manifest_lists_every_figure(figures: types.ModuleType) -> None:
    manifest = figures.read_manifest()
    assert set(manifest) == set(figures.FIGURES)
    for entry in manifest.values():
        assert set(entry) == {"script", "inputs"}


def test_protocol_results_copy_outputs_unedited(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    docs_script: Callable[[str], types.ModuleType],
) -> None:
    results = docs_script("protocol_results")
    monkeypatch.setattr(results, "ROOT", tmp_path)
    monkeypatch.setattr(results, "DEST", tmp_path / "results")
    source = tmp_path / "runs" / "full-cv"
    (source / "runs" / "sar_ftp").mkdir(parents=True)
    (source / "table_III_cv_bestf1.md").write_text("| a |\n")
    (source / "runs.csv").write_text("config,wall_s\nsar_ftp,12.5\n")
    (source / "pr_roc_curves.png").write_bytes(b"png")
    (source / "runs" / "sar_ftp" / "last.ckpt").write_bytes(b"weights")
    last_call = {"trained": ["sar_ftp/fold4/seed0"], "skipped": [], "wall_s": 3.0}
    summary = {
        "settings": {"protocol": "cv", "scale": 1.0},
        "seeds": [0],
        "runs": ["sar_ftp/fold4/seed0"],
        "configs": [{"path": "experiments/sar_ftp.yaml", "sha256": "0"}],
        "fingerprint": "x",
        "last_call": last_call,
    }
    (source / "protocol.json").write_text(json.dumps(summary))
    assert results.main(["--runs", str(tmp_path / "runs"), "--kind", "full", "cv"]) == 0
    target = tmp_path / "results" / "full-cv"
    assert sorted(p.name for p in target.iterdir()) == [
        "pr_roc_curves.png",
        "protocol.json",
        "runs.csv",
        "table_III_cv_bestf1.md",
    ]
    assert (target / "runs.csv").read_text() == (source / "runs.csv").read_text()
    kept = json.loads((target / "protocol.json").read_text())
    # The last call's wall time keeps its name: it is not the protocol's wall time.
    assert kept == {
        "settings": summary["settings"],
        "last_call": last_call,
        "seeds": [0],
        "runs": ["sar_ftp/fold4/seed0"],
        "configs": ["experiments/sar_ftp.yaml"],
    }
    # A protocol that has not been run is refused, naming the folder.
    assert results.main(["--runs", str(tmp_path / "runs"), "loco"]) == 1
    # Any output folder by name, with its comparisons; never its run folders.
    (source / "comparisons_cv.md").write_text("| d |\n")
    assert results.main(["--source", str(source), "--name", "calibrated-cv"]) == 0
    named = tmp_path / "results" / "calibrated-cv"
    assert sorted(p.name for p in named.iterdir()) == [
        "comparisons_cv.md",
        "pr_roc_curves.png",
        "protocol.json",
        "runs.csv",
        "table_III_cv_bestf1.md",
    ]
    with pytest.raises(SystemExit):
        results.main(["--source", str(source)])  # --name missing
    with pytest.raises(SystemExit):
        results.main(["--source", str(source), "--name", "../outside"])


def test_argparse_help_is_generated(
    docs_script: Callable[[str], types.ModuleType],
) -> None:
    pytest.importorskip("mkdocs", reason="the hooks need MkDocs (docs extra)")
    hooks = docs_script("hooks")
    text = hooks.argparse_help("torchgeo_quake.cli:build_parser")
    for command in ("simulate", "protocol", "map"):
        assert f"## `torchgeo-quake {command}`" in text
        assert f"usage: torchgeo-quake {command}" in text
    assert max(len(line) for line in text.splitlines()) <= hooks.HELP_COLUMNS
    with pytest.raises(Exception, match="not a parser"):
        hooks.argparse_help("os:getcwd")


def test_screenshots(
    site: Path, tmp_path: Path, docs_script: Callable[[str], types.ModuleType]
) -> None:
    """Home and Quickstart render styled, with their images, in headless Chromium."""
    screenshot = docs_script("screenshot")
    if screenshot.find_chromium() is None:
        pytest.skip("no Chromium installed (Debian package chromium): not rendered")
    out = tmp_path / "shots"
    assert screenshot.main([str(site), "--out", str(out)]) == 0
    assert sorted(p.name for p in out.glob("*.png")) == ["index.png", "quickstart.png"]
    # The checks fail on a page without its stylesheet and images (on a copy).
    broken = tmp_path / "broken"
    shutil.copytree(site, broken)
    shutil.rmtree(broken / "assets" / "stylesheets")
    (broken / "assets" / "generated" / "scene_overview.png").unlink()
    assert screenshot.main([str(broken), "--out", str(out), "index.html"]) == 1
    assert any("stylesheet" in p for p in screenshot.check_png(out / "index.png"))
    assert any(
        "scene_overview.png" in url
        for url in screenshot.missing_resources(broken, "index.html")
    )


def _tiny_map(folder: Path) -> Path:
    """``map.html`` of 25 buildings over a speckled SAR image, as the map writes it."""
    import numpy as np
    import rasterio
    import shapely
    from pyproj import CRS, Transformer
    from rasterio.warp import transform_bounds

    from torchgeo_quake.mapping._underlay import sar_underlay
    from torchgeo_quake.mapping.html import HTMLMapWriter

    utm, web = CRS.from_epsg(32637), CRS.from_epsg(3857)
    sar = folder / "sar.tif"
    values = np.random.default_rng(0).gamma(1.0, 1.0, (150, 150)).astype("float32")
    values[:, 70:80] *= 0.05  # a dark street
    with rasterio.open(
        sar,
        "w",
        driver="GTiff",
        width=150,
        height=150,
        count=1,
        dtype="float32",
        crs=utm,
        transform=rasterio.transform.from_origin(300000, 4100300, 2, 2),
    ) as dst:
        dst.write(values, 1)
    to_web = Transformer.from_crs(utm, web, always_xy=True)
    squares = shapely.transform(
        [
            shapely.box(
                300020 + 55 * i, 4100020 + 55 * j, 300040 + 55 * i, 4100040 + 55 * j
            )
            for i in range(5)
            for j in range(5)
        ],
        lambda xy: np.column_stack(to_web.transform(xy[:, 0], xy[:, 1])),
    )
    bounds = transform_bounds(utm, web, 300000, 4100000, 300300, 4100300)
    underlay = sar_underlay(sar, web, bounds)
    assert underlay is not None
    page = folder / "map.html"
    writer = HTMLMapWriter(page)
    writer.add(np.asarray(squares, dtype=object), np.arange(25))
    probability = np.linspace(0, 1, 25)
    probability[0] = np.nan
    reasons = ["outside the SAR image"] + [None] * 24
    writer.close(
        probability, list(range(25)), reasons, 0.5, title="tiny", underlay=underlay
    )
    return page


def test_map_screenshot(
    tmp_path: Path, docs_script: Callable[[str], types.ModuleType]
) -> None:
    """map.html renders offline from disk: buildings over the SAR underlay."""
    shots = docs_script("screenshot_map")
    chromium = shots.find_chromium()
    if chromium is None:
        pytest.skip("no Chromium installed (Debian package chromium): not rendered")
    page = _tiny_map(tmp_path)
    png = tmp_path / "map.png"
    assert (
        shots.main([str(page), "--out", str(png), "--width", "800", "--height", "600"])
        == 0
    )
    assert png.is_file()
    # The checks fail on a copy whose underlay does not decode (nothing is drawn
    # under the buildings) and which asks the network for basemap tiles.
    text = page.read_text(encoding="utf-8")
    text = text.replace("data:image/png;base64,", "data:image/png;base64,AA", 1)
    text = text.replace('"basemap":null', '"basemap":"https://t.test/{z}/{x}/{y}.png"')
    broken = tmp_path / "broken.html"
    broken.write_text(text, encoding="utf-8")
    problems = shots.shoot_map(chromium, broken, tmp_path / "broken.png", 800, 600)
    assert len(problems) == 3, problems
    assert "fetches basemap tiles" in problems[0]
    assert "network requests" in problems[1] and "https://t.test/" in problems[1]
    assert "SAR underlay is not drawn" in problems[2]
    # A page without an underlay is flagged from its data.
    text = shots.variant(page.read_text(encoding="utf-8"), underlay=False, boxes=True)
    assert shots.page_problems("map.html", shots.page_data(text)) == [
        "map.html: no SAR underlay in the page (DATA.sar)"
    ]


def _protocol_folder(
    folder: Path, probs: dict[str, np.ndarray], labels: np.ndarray
) -> Path:
    """A minimal protocol output folder: runs.csv and per-run predictions."""
    rows = []
    for split, p in probs.items():
        run = folder / "runs" / "sar_ftp" / split / "seed0"
        run.mkdir(parents=True)
        np.savez(
            run / "predictions.npz",
            building_ids=np.arange(labels.size)[::-1],  # any order: sorted by id
            probs=p[::-1],
            labels=labels[::-1],
        )
        rows.append(
            {
                "config": "sar_ftp",
                "split": split,
                "seed": 0,
                "val_threshold": 0.5,
                "test_auroc": 0.0,
                "test_ap": 0.0,
                "test_f1_oracle": 0.0,
                "test_precision_valthr": 0.0,
                "test_recall_valthr": 0.0,
                "test_f1_valthr": 0.0,
            }
        )
    pd.DataFrame(rows).to_csv(folder / "runs.csv", index=False)
    return folder


def test_compare_protocols_per_split(
    docs_script: Callable[[str], types.ModuleType],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    compare = docs_script("compare_protocols")
    rng = np.random.default_rng(0)
    labels = (rng.random(400) < 0.2).astype(np.int64)
    noise = rng.random(400)
    good = np.clip(0.6 * labels + 0.4 * noise, 0, 1)  # ranks damage well
    same = rng.random(400)
    a = _protocol_folder(tmp_path / "a", {"x": good, "y": same}, labels)
    b = _protocol_folder(tmp_path / "b", {"x": noise, "y": same}, labels)
    out = tmp_path / "cmp" / "selection"
    assert compare.main([str(a), str(b), "--out", str(out), "--replicates", "200"]) == 0
    table = pd.read_csv(out.with_suffix(".csv"))
    rows = table[table["metric"] == "AUROC"].to_dict("records")
    auroc = {r["split"]: r for r in rows}
    # Split x: A ranks far better than B; split y: identical predictions.
    assert auroc["x"]["difference"] > 0.3 and auroc["x"]["significant"]
    assert auroc["x"]["low"] > 0
    y = table[table["split"] == "y"]
    assert (y["difference"] == 0).all() and not y["significant"].any()
    assert len(table) == 2 * len(compare.METRICS)
    assert "| x | AUROC | threshold-free |" in out.with_suffix(".md").read_text()
    assert "A − B" in capsys.readouterr().out
    # Folders that tested other buildings, or lack a run's predictions: an error.
    other = _protocol_folder(tmp_path / "c", {"x": noise}, labels[::-1].copy())
    assert compare.main([str(a), str(other), "--out", str(out)]) == 1
    assert "tested other buildings" in capsys.readouterr().err
    (a / "runs" / "sar_ftp" / "y" / "seed0" / "predictions.npz").unlink()
    assert compare.main([str(a), str(b), "--out", str(out)]) == 1
    assert "predictions.npz: missing" in capsys.readouterr().err
    assert compare.main([str(a), str(tmp_path), "--out", str(out)]) == 1
    assert "no runs.csv" in capsys.readouterr().err
