"""Generate the figures of the documentation site from the code.

Every PNG under ``docs/assets/generated/`` is written by this script, never pasted:
a small simulated scene is made with the package's simulator, samples are built
through the data layer (:class:`~torchgeo_quake.datasets.KahramanmarasDamage`), and
the pictures are drawn with matplotlib.

Usage::

    python docs/scripts/make_figures.py              # (re)write all figures
    python docs/scripts/make_figures.py NAME.png     # (re)write some of them
    python docs/scripts/make_figures.py --check      # are the committed ones current?
    python docs/scripts/make_figures.py --check --full   # ... and render them all

Every figure has an entry in ``docs/assets/generated/manifest.json``, written with
it: what it was drawn from. That is a fingerprint of the script's code for the
figure (docstrings and comments excluded), the parameters, the values it shows
that are read from the package (the layer sizes of the network, for the
architecture diagram), a summary of the simulated data it is drawn from (building
counts, raster shapes and statistics, the buildings picked as examples) and a
fingerprint of the package code that draws it (``KahramanmarasDamage.plot``, the
overview of ``torchgeo_quake.mapping``). The scenes are simulated with the built-in
GEM table, so the figures are the same with or without ``../shared/data``.

``--check`` (run by ``tests/docs/test_docs.py``) recomputes those entries, which
takes seconds: the small scenes are simulated but no model is trained. It fails
when a committed figure is stale (its entry differs: the differences are listed),
when a page references a figure the script does not produce or that is not
committed, when a committed figure is no longer produced or referenced, or when a
committed figure is larger than 200 kB. It also renders every figure that needs no
training into a temporary folder, to prove the drawing code runs; ``--full``
renders the map overview too (trains a small model: minutes on a CPU). Pixels are
not compared: they change with library versions and, for the map, with training.
"""

from __future__ import annotations

import argparse
import ast
import copy
import hashlib
import inspect
import io
import json
import re
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
OUT = DOCS / "assets" / "generated"
MAX_BYTES = 200_000
CITY = "nurdagi"  # scene overview
CITIES = ("kahramanmaras", "nurdagi")  # example patches: tall RC and low masonry
SCALE = 0.1
SEED = 0
GEM = "builtin"  # GEM table of the simulated scenes: the same on every machine
MAP_SEED = 7  # the "new city" of the mapping tutorial
MAP_EPOCHS = 3  # training of the small model behind the map overview
CONFIG = ROOT / "experiments" / "all_inputs.yaml"  # the architecture diagram's model
MANIFEST = OUT / "manifest.json"
#: Figures that need a trained model: rendered by ``--check`` only with ``--full``.
EXPENSIVE = ("map_overview.png",)

_REF = re.compile(r"assets/generated/([A-Za-z0-9_.-]+\.png)")


# ------------------------------------------------------------------ helpers
def save(fig: Figure, path: Path, colors: int = 128) -> None:
    """Save a figure as a small palette PNG.

    Args:
        fig: the figure
        path: output file
        colors: palette size (speckled SAR images compress badly in RGB)
    """
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, facecolor="white", bbox_inches="tight")
    plt.close(fig)
    buffer.seek(0)
    image = Image.open(buffer).convert("RGB")
    image = image.quantize(
        colors=colors, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE
    )
    image.save(path, format="PNG", optimize=True)


class Context:
    """Lazily built inputs shared by the figures (one simulated scene)."""

    def __init__(self, workdir: Path) -> None:
        """Initialize the context.

        Args:
            workdir: scratch folder for the simulated scene
        """
        self.workdir = workdir
        self._dataset: Any = None

    @property
    def root(self) -> Path:
        """Folder of the simulated scene, simulated on first use."""
        root = self.workdir / "scene"
        if not (root / "scene.json").exists():
            from torchgeo_quake.simulation import simulate_scene

            simulate_scene(
                root, cities=list(CITIES), scale=SCALE, seed=SEED, gem_dir=GEM
            )
        return root

    @property
    def new_city(self) -> Path:
        """Folder of the map's city, another realisation, simulated on first use."""
        root = self.workdir / "newcity"
        if not (root / "scene.json").exists():
            from torchgeo_quake.simulation import simulate_scene

            simulate_scene(root, cities=[CITY], scale=SCALE, seed=MAP_SEED, gem_dir=GEM)
        return root / CITY

    @property
    def dataset(self) -> Any:
        """The city's samples, built through the data layer."""
        if self._dataset is None:
            from torchgeo_quake.datasets import KahramanmarasDamage

            self._dataset = KahramanmarasDamage(
                self.root, cities=list(CITIES), scale=SCALE, seed=SEED
            )
        return self._dataset


# ------------------------------------------------------------------ figures
def scene_overview(ctx: Context, path: Path) -> None:
    """Post-event SAR (dB) of the simulated city with footprints; damaged in red.

    Args:
        ctx: shared inputs
        path: output PNG
    """
    import geopandas as gpd
    import rasterio

    city = ctx.root / CITY
    with rasterio.open(city / "sar.tif") as src:
        amplitude = src.read(1).astype(np.float64)
        transform, crs = src.transform, src.crs
    buildings = gpd.read_file(city / "buildings.gpkg").to_crs(crs)
    destroyed = gpd.read_file(city / "destroyed.geojson")
    damaged = buildings["osm_id"].isin(destroyed["osm_id"])

    # A window of up to 600 m x 330 m inside the image, holding the most damaged
    # buildings and no nodata.
    centroids = buildings.geometry.centroid
    pts = np.column_stack([centroids.x, centroids.y])
    hits = pts[damaged.to_numpy()] if damaged.any() else pts
    left, top = transform.c, transform.f
    right = left + amplitude.shape[1] * transform.a
    bottom = top + amplitude.shape[0] * transform.e
    half_x = min(300.0, (right - left) / 2 - 2 * transform.a)
    half_y = min(0.55 * half_x, (top - bottom) / 2 - 2 * transform.a)
    best, best_score = (0.0, 0.0), -np.inf
    for px, py in hits:
        cx = float(np.clip(px, left + half_x, right - half_x))
        cy = float(np.clip(py, bottom + half_y, top - half_y))
        c0, r0 = (int(v) for v in ~transform * (cx - half_x, cy + half_y))
        c1, r1 = (int(v) for v in ~transform * (cx + half_x, cy - half_y))
        nodata = float((amplitude[r0:r1, c0:c1] <= 0).mean())
        inside = (np.abs(hits[:, 0] - cx) < half_x) & (np.abs(hits[:, 1] - cy) < half_y)
        score = inside.sum() - 1000 * nodata
        if score > best_score:
            best, best_score = (cx, cy), score
    cx, cy = best
    c0, r0 = (int(v) for v in ~transform * (cx - half_x, cy + half_y))
    c1, r1 = (int(v) for v in ~transform * (cx + half_x, cy - half_y))
    crop = amplitude[r0:r1, c0:c1]
    with np.errstate(divide="ignore"):
        db = np.where(crop > 0, 20 * np.log10(np.maximum(crop, 1e-6)), np.nan)
    low, high = np.nanpercentile(db, [2, 99])
    x0, y0 = transform * (c0, r0)
    x1, y1 = transform * (c1, r1)

    fig, ax = plt.subplots(figsize=(9.0, 5.4))
    ax.imshow(db, cmap="gray", vmin=low, vmax=high, extent=(x0, x1, y1, y0))
    ax.set_ylim(y1, y0)
    view = buildings.cx[x0:x1, y1:y0]
    hit = view["osm_id"].isin(destroyed["osm_id"])
    view[~hit].boundary.plot(ax=ax, color="#4fc3f7", linewidth=0.7)
    view[hit].boundary.plot(ax=ax, color="#ff1744", linewidth=1.4)
    ax.set_xlim(x0, x1)
    ax.set_ylim(y1, y0)
    ax.set_axis_off()
    ax.set_title(
        f"Simulated {ctx.dataset.city_names[CITY]}: post-event SAR (dB), "
        "footprints (blue), damage reference (red)",
        fontsize=10,
    )
    fig.tight_layout()
    save(fig, path, colors=64)


def _example(ctx: Context, label: int) -> dict[str, Any]:
    """A clear example: the tallest sampled building with the given label.

    Heights come from the simulator's ``truth.csv`` (the model never sees it).

    Args:
        ctx: shared inputs
        label: 0 (intact) or 1 (damaged)

    Returns:
        The sample.
    """
    import pandas as pd

    dataset = ctx.dataset
    truth = pd.concat(
        [pd.read_csv(ctx.root / city / "truth.csv") for city in CITIES]
    ).set_index("osm_id")
    candidates = np.flatnonzero(dataset.labels == label)
    heights = truth.loc[dataset.building_ids[candidates], "height_m"].to_numpy()
    sample: dict[str, Any] = dataset[int(candidates[int(np.argmax(heights))])]
    return sample


def patch_intact(ctx: Context, path: Path) -> None:
    """An intact building as plotted by ``KahramanmarasDamage.plot``.

    Args:
        ctx: shared inputs
        path: output PNG
    """
    save(ctx.dataset.plot(_example(ctx, 0)), path)


def patch_collapsed(ctx: Context, path: Path) -> None:
    """A collapsed building as plotted by ``KahramanmarasDamage.plot``.

    Args:
        ctx: shared inputs
        path: output PNG
    """
    save(ctx.dataset.plot(_example(ctx, 1)), path)


def sar_signatures(ctx: Context, path: Path) -> None:
    """SAR signature of one intact and one collapsed building (simulator physics).

    Args:
        ctx: shared inputs (unused: rendered directly by the simulator)
        path: output PNG
    """
    from torchgeo_quake.simulation import render_single_building

    height, incidence = 15.0, 35.0
    fig, axes = plt.subplots(
        2, 3, figsize=(11.5, 5.6), gridspec_kw={"width_ratios": [1, 1, 1.25]}
    )
    for row, collapsed in enumerate((False, True)):
        b = render_single_building(height, incidence, "ASCENDING", collapsed=collapsed)
        clean = 10 * np.log10(np.maximum(b.intensity, 1e-6))
        speckled = 20 * np.log10(np.maximum(b.amplitude, 1e-3))
        ny, nx = clean.shape
        extent = (b.left, b.left + nx * b.res, -ny * b.res / 2, ny * b.res / 2)
        for ax, image, title in (
            (axes[row, 0], clean, "noise-free intensity (dB)"),
            (axes[row, 1], speckled, "with speckle (dB)"),
        ):
            ax.imshow(image, cmap="gray", vmin=-25, vmax=10, extent=extent)
            ax.contour(
                b.footprint,
                levels=[0.5],
                colors="red",
                linewidths=1.0,
                extent=(extent[0], extent[1], extent[3], extent[2]),
            )
            ax.set_title(
                f"{'collapsed' if collapsed else 'intact'}: {title}", fontsize=11
            )
            ax.set_xlabel("ground range (m), sensor on the left", fontsize=10)
            ax.tick_params(labelsize=9)
            ax.set_yticks([])
        profile = clean[ny // 2]
        x = b.left + (np.arange(nx) + 0.5) * b.res
        ax = axes[row, 2]
        ax.plot(x, profile, color="black", linewidth=1.0)
        ax.axvspan(b.near_edge, b.far_edge, color="red", alpha=0.12, label="footprint")
        ax.axhline(10 * np.log10(b.ground), color="grey", linestyle=":", linewidth=1)
        ax.set_ylim(-30, 15)
        ax.set_ylabel("dB", fontsize=10)
        ax.set_xlabel("ground range (m)", fontsize=10)
        ax.tick_params(labelsize=9)
        ax.set_title("range profile through the centre", fontsize=11)
        if not collapsed:
            tan = np.tan(np.radians(incidence))
            ax.annotate(
                "layover",
                (b.near_edge - height / tan / 2, 7),
                fontsize=9,
                ha="center",
            )
            ax.annotate("double bounce", (b.near_edge + 2, 8), fontsize=9, ha="left")
            ax.annotate(
                "shadow",
                (b.far_edge + height * tan / 2, -27),
                fontsize=9,
                ha="center",
            )
            ax.legend(fontsize=9, loc="lower left")
    fig.suptitle(
        f"A {height:.0f} m building at {incidence:.0f}° incidence, sensor to the "
        "west (ascending pass), rendered by the simulator",
        fontsize=12,
    )
    fig.tight_layout()
    save(fig, path)


def simulated_city(ctx: Context, path: Path) -> None:
    """A whole simulated city: SAR, DSM and the hidden truth vs the reference.

    Args:
        ctx: shared inputs
        path: output PNG
    """
    import geopandas as gpd
    import pandas as pd
    import rasterio
    import rasterio.plot
    from matplotlib.lines import Line2D

    slug = "kahramanmaras"
    city = ctx.root / slug
    with rasterio.open(city / "sar.tif") as src:
        sar = src.read(1).astype(np.float64)
        sar_extent = rasterio.plot.plotting_extent(src)
        crs = src.crs
    with rasterio.open(city / "dsm.tif") as src:
        dsm = src.read(1, masked=True).astype(np.float64).filled(np.nan)
        dsm_extent = rasterio.plot.plotting_extent(src)
    buildings = gpd.read_file(city / "buildings.gpkg").to_crs(crs)
    truth = pd.read_csv(city / "truth.csv").set_index("osm_id")
    buildings = buildings.join(truth[["damage_grade", "in_reference"]], on="osm_id")
    classes = [
        ("intact", "#b0bec5", (buildings["damage_grade"] == 0)),
        (
            "partially damaged (not in reference)",
            "#ffb74d",
            buildings["damage_grade"] == 1,
        ),
        (
            "collapsed, in reference",
            "#e53935",
            (buildings["damage_grade"] == 2) & buildings["in_reference"],
        ),
        (
            "collapsed, missed by reference",
            "#1e88e5",
            (buildings["damage_grade"] == 2) & ~buildings["in_reference"],
        ),
    ]

    fig, axes = plt.subplots(1, 3, figsize=(11.5, 4.4))
    with np.errstate(divide="ignore"):
        db = np.where(sar > 0, 20 * np.log10(np.maximum(sar, 1e-6)), np.nan)
    low, high = np.nanpercentile(db, [2, 99])
    axes[0].imshow(db, cmap="gray", vmin=low, vmax=high, extent=sar_extent)
    axes[0].set_title("post-event SAR amplitude (dB)", fontsize=12)
    # Height above the local ground: DSM minus its morphological opening (55 m),
    # which removes buildings and trees but keeps the terrain.
    from scipy import ndimage

    filled = np.where(np.isfinite(dsm), dsm, np.nanmin(dsm))
    above = filled - ndimage.grey_opening(filled, size=(11, 11))
    im = axes[1].imshow(above, cmap="magma", vmin=0, vmax=30, extent=dsm_extent)
    axes[1].set_title("pre-event DSM: height above ground (m)", fontsize=12)
    fig.colorbar(im, ax=axes[1], fraction=0.04, pad=0.02)
    for _, color, mask in classes:
        if mask.any():
            buildings[mask].plot(ax=axes[2], color=color, linewidth=0)
    axes[2].set_title("truth.csv vs damage reference", fontsize=12)
    axes[2].legend(
        handles=[
            Line2D([], [], marker="s", linestyle="", color=c, label=name)
            for name, c, _ in classes
        ],
        fontsize=9.5,
        loc="lower left",
        framealpha=0.9,
    )
    for ax in axes:
        ax.set_xlim(sar_extent[0], sar_extent[1])
        ax.set_ylim(sar_extent[2], sar_extent[3])
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_xlabel("")
        ax.set_ylabel("")
    fig.suptitle(
        f"Simulated {ctx.dataset.city_names[slug]} at scale {SCALE} "
        f"({len(buildings)} buildings)",
        fontsize=13,
    )
    fig.tight_layout()
    save(fig, path, colors=160)


def architecture_spec() -> dict[str, Any]:
    """Sizes of the all-inputs network, read from the model the configuration builds.

    The task of ``experiments/all_inputs.yaml`` is instantiated with the
    configuration's arguments, and the sizes are read off its
    :class:`~torchgeo_quake.models.LateFusionNet`: a dummy batch through the raster
    encoders gives their embedding width, the layers give the rest.

    Returns:
        Patch size, embedding widths, head and GEM MLP sizes, parameter count.
    """
    import torch
    import yaml
    from torch import nn

    from torchgeo_quake.datasets import KahramanmarasDamage
    from torchgeo_quake.trainers import DamageDetectionTask

    config = yaml.safe_load(CONFIG.read_text(encoding="utf-8"))
    task = DamageDetectionTask(**config["model"]["init_args"])
    model = task.model
    size = int(
        config["data"]["init_args"].get(
            "size", inspect.signature(KahramanmarasDamage).parameters["size"].default
        )
    )
    n = len(model.rasters)
    with torch.no_grad():
        dummy = torch.zeros(1, n, size, size)
        if model.encoder is not None:
            embed = int(model.encoder.eval()(dummy).shape[1]) // n
        else:
            assert model.encoders is not None
            encoder = model.encoders[model.rasters[0]].eval()
            embed = int(encoder(dummy[:, :1]).shape[1])
    gem_layers = (
        [m for m in model.gem_mlp if isinstance(m, nn.Linear)]
        if model.gem_mlp is not None
        else []
    )
    head = []
    for module in model.head:
        if isinstance(module, nn.Linear):
            head.append(f"Linear → {module.out_features}")
        elif isinstance(module, nn.Dropout):
            head.append(f"dropout {module.p:g}")
        else:
            head.append(type(module).__name__)
    return {
        "config": str(CONFIG.relative_to(ROOT)),
        "modalities": list(model.modalities),
        "patch_size": size,
        "raster_embedding": embed,
        "gem_features": model.gem_features if model.use_gem else 0,
        "gem_layers": len(gem_layers),
        "gem_embedding": gem_layers[-1].out_features if gem_layers else 0,
        "head": head,
        "parameters": sum(p.numel() for p in model.parameters()),
    }


def architecture(ctx: Context, path: Path) -> None:
    """Diagram of the late-fusion network (paper's Fig. 4), sizes from the model.

    Args:
        ctx: shared inputs (unused: the diagram needs no data)
        path: output PNG
    """
    spec = architecture_spec()
    fig, ax = plt.subplots(figsize=(9.6, 4.6))
    ax.set_xlim(0, 100)
    ax.set_ylim(0, 50)
    ax.set_axis_off()

    def box(x: float, y: float, w: float, h: float, text: str, color: str) -> None:
        ax.add_patch(
            FancyBboxPatch(
                (x, y),
                w,
                h,
                boxstyle="round,pad=0.4,rounding_size=1.2",
                facecolor=color,
                edgecolor="#37474f",
                linewidth=1.0,
            )
        )
        ax.text(x + w / 2, y + h / 2, text, ha="center", va="center", fontsize=10.5)

    def arrow(x0: float, y0: float, x1: float, y1: float) -> None:
        ax.add_patch(
            FancyArrowPatch(
                (x0, y0),
                (x1, y1),
                arrowstyle="-|>",
                mutation_scale=10,
                color="#37474f",
                linewidth=1.0,
            )
        )

    px, embed = spec["patch_size"], str(spec["raster_embedding"])
    patch = f"1 × {px} × {px}"
    rows = [
        (f"SAR patch\n{patch}, dB", "ResNet-18", embed, "#bbdefb"),
        (f"footprint mask\n{patch}, 0/1", "ResNet-18", embed, "#c8e6c9"),
        (f"DSM patch\n{patch}, m", "ResNet-18", embed, "#ffe0b2"),
        (
            f"GEM vector\n{spec['gem_features']} features",
            f"MLP: {spec['gem_layers']} ×\nLinear + ReLU",
            str(spec["gem_embedding"]),
            "#e1bee7",
        ),
    ]
    ys = [40, 28.5, 17, 5.5]
    for (name, encoder, dim, color), y in zip(rows, ys, strict=True):
        box(0.5, y, 15, 7, name, color)
        arrow(16.3, y + 3.5, 21.5, y + 3.5)
        box(22, y, 15, 7, encoder, "#eceff1")
        arrow(37.8, y + 3.5, 49.2, 25)
        ax.text(40, y + (5.2 if y > 20 else 1.0), dim, fontsize=10, color="#455a64")
    ax.text(
        18.9,
        48.8,
        "SAR, DSM, GEM: z-scored with\ntraining-split statistics",
        ha="center",
        fontsize=9,
        color="#455a64",
    )
    box(49.7, 19, 12, 12, "concatenate\n(late fusion)", "#fff9c4")
    arrow(62.5, 25, 66.5, 25)
    box(67, 17.5, 17.5, 15, "\n".join(spec["head"]), "#eceff1")
    arrow(85.3, 25, 88.8, 25)
    box(89.3, 19, 10, 12, "sigmoid\nP(damaged)", "#ffcdd2")
    ax.text(
        75.75,
        14.5,
        f"{spec['parameters'] / 1e6:.1f} M parameters\n(all inputs)",
        ha="center",
        va="top",
        fontsize=9,
        color="#455a64",
    )
    ax.text(
        50,
        0.2,
        "DSM and GEM branches are optional: the network is built for the modalities "
        "in use (paper: SAR + FTP, + DSM, + GEM).",
        ha="center",
        fontsize=9.5,
        color="#455a64",
    )
    fig.tight_layout()
    save(fig, path, colors=64)


def _quick_model(ctx: Context, path: Path) -> None:
    """Train a small SAR + footprint model on the scene's samples (about a minute).

    Args:
        ctx: shared inputs (the training scene)
        path: output checkpoint
    """
    import lightning
    import torch
    from lightning import LightningDataModule, Trainer
    from torch.utils.data import DataLoader
    from torchgeo.datasets import stack_samples

    from torchgeo_quake.trainers import DamageDetectionTask

    dataset = ctx.dataset

    class Samples(LightningDataModule):
        modalities = ("sar", "footprint")

        def normalization_stats(self) -> dict[str, Any]:
            sar = dataset.arrays()["sar"].astype(np.float64)
            return {
                "sar_mean": torch.tensor(float(sar.mean())),
                "sar_std": torch.tensor(float(sar.std())),
            }

        def train_dataloader(self) -> DataLoader[Any]:
            return DataLoader(
                dataset, batch_size=32, shuffle=True, collate_fn=stack_samples
            )

        def val_dataloader(self) -> DataLoader[Any]:
            return DataLoader(dataset, batch_size=128, collate_fn=stack_samples)

    lightning.seed_everything(SEED, workers=True)
    task = DamageDetectionTask(
        modalities=["sar", "footprint"], pos_weight=10.0, scheduler="none"
    )
    trainer = Trainer(
        accelerator="cpu",
        max_epochs=MAP_EPOCHS,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        check_val_every_n_epoch=MAP_EPOCHS,
    )
    trainer.fit(task, datamodule=Samples())
    trainer.save_checkpoint(path, weights_only=True)


def map_overview(ctx: Context, path: Path) -> None:
    """``overview.png`` of ``torchgeo-quake map`` on a city the model has not seen.

    Args:
        ctx: shared inputs
        path: output PNG
    """
    from torchgeo_quake.mapping import map_damage

    checkpoint = ctx.workdir / "map-model.ckpt"
    _quick_model(ctx, checkpoint)
    city = ctx.new_city
    result = map_damage(
        city / "sar.tif",
        city / "buildings.gpkg",
        checkpoint,
        ctx.workdir / "map",
        name=f"Simulated {ctx.dataset.city_names[CITY]} (seed {MAP_SEED})",
    )
    image = Image.open(result.files["overview.png"]).convert("RGB")
    image.thumbnail((1000, 1000))
    image = image.quantize(
        colors=96, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE
    )
    image.save(path, format="PNG", optimize=True)


#: Figure name -> function drawing it.
FIGURES: dict[str, Callable[[Context, Path], None]] = {
    "scene_overview.png": scene_overview,
    "patch_intact.png": patch_intact,
    "patch_collapsed.png": patch_collapsed,
    "sar_signatures.png": sar_signatures,
    "simulated_city.png": simulated_city,
    "architecture.png": architecture,
    "map_overview.png": map_overview,
}


# ---------------------------------------------------------------- manifest
def _plain(value: Any) -> Any:
    """JSON-ready copy: NumPy scalars to Python, floats to 4 significant digits.

    Args:
        value: nested dicts, lists and scalars

    Returns:
        The same structure, comparable across machines.
    """
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return float(f"{value:.4g}")
    return value


def _stats(array: Any) -> dict[str, float]:
    """Summary statistics of the finite values of an array.

    Args:
        array: array-like

    Returns:
        Count, mean, standard deviation, minimum and maximum.
    """
    values = np.asarray(array, dtype=np.float64).ravel()
    values = values[np.isfinite(values)]
    if not values.size:
        return {"n": 0}
    summary: dict[str, float] = _plain(
        {
            "n": int(values.size),
            "mean": values.mean(),
            "std": values.std(),
            "min": values.min(),
            "max": values.max(),
        }
    )
    return summary


def _strip_docstrings(tree: ast.AST) -> ast.AST:
    """Copy of a syntax tree without docstrings.

    Args:
        tree: parsed source

    Returns:
        The tree without the docstrings of modules, classes and functions.
    """
    tree = copy.deepcopy(tree)
    for node in ast.walk(tree):
        if isinstance(
            node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef
        ):
            body = node.body
            if (
                body
                and isinstance(body[0], ast.Expr)
                and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)
            ):
                node.body = body[1:] or [ast.Pass()]
    return tree


def _digest(nodes: list[ast.AST]) -> str:
    dump = "\n".join(ast.dump(_strip_docstrings(node)) for node in nodes)
    return hashlib.sha256(dump.encode()).hexdigest()[:16]


def code_fingerprint(obj: Any) -> str:
    """Fingerprint of the code of a module, class or function.

    Formatting, comments and docstrings do not change it; any change to what the
    code does does.

    Args:
        obj: the object

    Returns:
        16 hexadecimal digits.
    """
    return _digest([ast.parse(textwrap.dedent(inspect.getsource(obj)))])


def script_fingerprint(name: str) -> str:
    """Fingerprint of a function of this script and everything it uses here.

    The top-level functions, classes and constants of this file that the
    function names, directly or through others, are included.

    Args:
        name: top-level name in this script

    Returns:
        16 hexadecimal digits.
    """
    tree = ast.parse(Path(__file__).read_text(encoding="utf-8"))
    top: dict[str, ast.AST] = {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.ClassDef):
            top[node.name] = node
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if isinstance(target, ast.Name):
                    top[target.id] = node
    seen: set[str] = set()
    todo = [name]
    while todo:
        current = todo.pop()
        if current in seen or current not in top or current == "FIGURES":
            continue
        seen.add(current)
        todo += [n.id for n in ast.walk(top[current]) if isinstance(n, ast.Name)]
    return _digest([top[n] for n in sorted(seen)])


def _scene(city: Path) -> dict[str, Any]:
    """Summary of one simulated city's files.

    Args:
        city: folder of the city

    Returns:
        Building and reference counts, damage grades, raster shapes and statistics.
    """
    import geopandas as gpd
    import pandas as pd
    import rasterio

    with rasterio.open(city / "sar.tif") as src:
        sar = src.read(1).astype(np.float64)
    with rasterio.open(city / "dsm.tif") as src:
        dsm = src.read(1, masked=True).astype(np.float64).filled(np.nan)
    truth = pd.read_csv(city / "truth.csv")
    return {
        "buildings": len(gpd.read_file(city / "buildings.gpkg")),
        "reference": len(gpd.read_file(city / "destroyed.geojson")),
        "damage_grades": truth["damage_grade"].value_counts().sort_index().to_dict(),
        "heights": _stats(truth["height_m"]),
        "sar_shape": list(sar.shape),
        "sar": _stats(np.where(sar > 0, sar, np.nan)),
        "dsm_shape": list(dsm.shape),
        "dsm": _stats(dsm),
    }


def _simulation() -> dict[str, Any]:
    return {"cities": list(CITIES), "scale": SCALE, "seed": SEED, "gem": GEM}


def _example_inputs(ctx: Context, label: int) -> dict[str, Any]:
    from torchgeo_quake.datasets import KahramanmarasDamage

    sample = _example(ctx, label)
    return {
        "simulation": _simulation(),
        "samples": ctx.dataset.counts().to_dict(),
        "building": {
            "osm_id": int(sample["building_id"]),
            "city": str(sample["city"]),
            "label": int(sample["label"]),
        },
        "patches": {key: _stats(sample[key]) for key in ("sar", "footprint", "dsm")},
        "gem": _stats(sample["gem"]),
        "plot": code_fingerprint(KahramanmarasDamage.plot),
    }


def _signature_inputs(ctx: Context) -> dict[str, Any]:
    from torchgeo_quake.simulation import render_single_building

    states = {}
    for collapsed in (False, True):
        b = render_single_building(15.0, 35.0, "ASCENDING", collapsed=collapsed)
        states["collapsed" if collapsed else "intact"] = {
            "shape": list(b.intensity.shape),
            "edges": [b.left, b.near_edge, b.far_edge, b.res],
            "ground": b.ground,
            "intensity": _stats(b.intensity),
            "amplitude": _stats(b.amplitude),
        }
    return {"height_m": 15.0, "incidence_deg": 35.0, "renders": states}


def _map_inputs(ctx: Context) -> dict[str, Any]:
    from torchgeo_quake.mapping import overview

    return {
        "training": {
            "simulation": _simulation(),
            "samples": ctx.dataset.counts().to_dict(),
        },
        "epochs": MAP_EPOCHS,
        "city": {"slug": CITY, "seed": MAP_SEED, **_scene(ctx.new_city)},
        "overview": code_fingerprint(overview),
    }


#: Figure name -> what it is drawn from (its manifest entry, without the script).
INPUTS: dict[str, Callable[[Context], dict[str, Any]]] = {
    "scene_overview.png": lambda ctx: {
        "simulation": _simulation(),
        "city": CITY,
        "scene": _scene(ctx.root / CITY),
    },
    "patch_intact.png": lambda ctx: _example_inputs(ctx, 0),
    "patch_collapsed.png": lambda ctx: _example_inputs(ctx, 1),
    "sar_signatures.png": _signature_inputs,
    "simulated_city.png": lambda ctx: {
        "simulation": _simulation(),
        "scene": _scene(ctx.root / "kahramanmaras"),
    },
    "architecture.png": lambda ctx: architecture_spec(),
    "map_overview.png": _map_inputs,
}


def manifest_entry(name: str, ctx: Context) -> dict[str, Any]:
    """What a figure is drawn from now.

    Args:
        name: figure name
        ctx: shared inputs

    Returns:
        The script fingerprint and the inputs (JSON-ready).
    """
    entry = {
        "script": script_fingerprint(FIGURES[name].__name__),
        "inputs": INPUTS[name](ctx),
    }
    plain: dict[str, Any] = _plain(json.loads(json.dumps(entry, default=_plain)))
    return plain


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            out |= _flatten(item, f"{prefix}.{key}" if prefix else str(key))
        return out
    return {prefix: value}


def differences(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Fields of two manifest entries that differ.

    Args:
        old: committed entry
        new: entry computed now

    Returns:
        ``field: old -> new`` lines.
    """
    a, b = _flatten(old), _flatten(new)
    return [
        f"{key}: {a.get(key, '(none)')} -> {b.get(key, '(none)')}"
        for key in sorted(a.keys() | b.keys())
        if a.get(key) != b.get(key)
    ]


def read_manifest(path: Path = MANIFEST) -> dict[str, Any]:
    """A figure manifest.

    Args:
        path: the file (default: the committed manifest)

    Returns:
        Figure name -> entry; empty when there is no file.
    """
    if not path.exists():
        return {}
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def write_manifest(path: Path, entries: dict[str, Any]) -> None:
    """Write a figure manifest, sorted by figure name.

    Args:
        path: the file
        entries: figure name -> entry
    """
    text = json.dumps(dict(sorted(entries.items())), indent=1, ensure_ascii=False)
    path.write_text(text + "\n", encoding="utf-8")


# ------------------------------------------------------------------ driver
def generate(
    out: Path,
    ctx: Context,
    names: list[str] | None = None,
    manifest: Path | None = None,
) -> dict[str, dict[str, Any]]:
    """Write figures and compute their manifest entries.

    Args:
        out: output folder
        ctx: shared inputs (scratch folder with the simulated scenes)
        names: figures to make (default: all)
        manifest: manifest file to update after each figure (so that the
            figures already written keep their entries if a later one fails)

    Returns:
        Manifest entries of the figures written, by name.
    """
    out.mkdir(parents=True, exist_ok=True)
    entries = {}
    for name in names or list(FIGURES):
        start = time.perf_counter()
        FIGURES[name](ctx, out / name)
        entries[name] = manifest_entry(name, ctx)
        size = (out / name).stat().st_size
        print(f"{name}: {size / 1000:.0f} kB in {time.perf_counter() - start:.1f} s")
        if manifest is not None:
            write_manifest(manifest, {**read_manifest(manifest), name: entries[name]})
    return entries


def referenced() -> dict[str, list[str]]:
    """Figures under assets/generated referenced by the pages.

    Returns:
        Figure name -> pages referencing it.
    """
    refs: dict[str, list[str]] = {}
    for page in sorted(DOCS.rglob("*.md")):
        if "scripts" in page.parts:
            continue
        for name in _REF.findall(page.read_text(encoding="utf-8")):
            refs.setdefault(name, []).append(str(page.relative_to(ROOT)))
    return refs


def check(full: bool = False) -> list[str]:
    """Verify that the committed figures are current and agree with the pages.

    Args:
        full: also render the figures that need training (:data:`EXPENSIVE`)

    Returns:
        Problems found (empty when all is well).
    """
    problems = []
    manifest = read_manifest()
    with tempfile.TemporaryDirectory() as tmp:
        ctx = Context(Path(tmp))
        render = [n for n in FIGURES if full or n not in EXPENSIVE]
        current = generate(Path(tmp) / "out", ctx, render)
        for name in render:
            if (Path(tmp) / "out" / name).read_bytes()[:8] != b"\x89PNG\r\n\x1a\n":
                problems.append(f"{name}: the script did not write a PNG")
        for name in FIGURES:
            if name not in current:
                current[name] = manifest_entry(name, ctx)
    for name, entry in current.items():
        if name not in manifest:
            problems.append(
                f"{name} has no entry in {MANIFEST.relative_to(ROOT)}: run "
                f"python docs/scripts/make_figures.py {name}"
            )
        elif manifest[name] != entry:
            changed = differences(manifest[name], entry)
            shown = "; ".join(changed[:6]) + (" ..." if len(changed) > 6 else "")
            problems.append(
                f"{name} is stale, it was drawn from other inputs ({shown}): run "
                f"python docs/scripts/make_figures.py {name}"
            )
    for name in sorted(set(manifest) - set(FIGURES)):
        problems.append(f"{MANIFEST.relative_to(ROOT)} lists {name}, not a figure")
    refs = referenced()
    committed = {p.name: p for p in OUT.glob("*.png")} if OUT.exists() else {}
    for name, pages in refs.items():
        if name not in FIGURES:
            problems.append(
                f"{name} (used by {', '.join(pages)}) is not produced by this script"
            )
        elif name not in committed:
            problems.append(
                f"{name} (used by {', '.join(pages)}) is missing from {OUT}: run "
                f"python docs/scripts/make_figures.py {name}"
            )
    for name, path in committed.items():
        if name not in FIGURES:
            problems.append(
                f"{path} is not produced by this script any more: delete it"
            )
        elif name not in refs:
            problems.append(f"{path} is referenced by no page: delete it or use it")
        if path.stat().st_size > MAX_BYTES:
            problems.append(
                f"{path} is {path.stat().st_size / 1000:.0f} kB (limit "
                f"{MAX_BYTES / 1000:.0f} kB)"
            )
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--check",
        action="store_true",
        help="verify that the committed figures are current (manifest) and used",
    )
    parser.add_argument(
        "--full",
        action="store_true",
        help="with --check: also render the figures that need a trained model",
    )
    parser.add_argument("names", nargs="*", help="figures to make (default: all)")
    args = parser.parse_args(argv)
    if args.check:
        problems = check(full=args.full)
        for problem in problems:
            print(f"ERROR: {problem}", file=sys.stderr)
        print("figures OK" if not problems else f"{len(problems)} problem(s)")
        return 1 if problems else 0
    unknown = sorted(set(args.names) - set(FIGURES))
    if unknown:
        parser.error(f"unknown figures {unknown}; choose among {sorted(FIGURES)}")
    with tempfile.TemporaryDirectory() as tmp:
        generate(OUT, Context(Path(tmp)), args.names or None, manifest=MANIFEST)
    print(f"updated {MANIFEST.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
