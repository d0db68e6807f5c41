"""Settings of a damage map: :class:`MapSettings`, the one list of its options.

Every option of a damage map is written out here once, as a field of
:class:`MapSettings` with its default, its documentation (the ``#:`` comment)
and, for the options of ``torchgeo-quake map``, its command-line form
(:class:`MapOption`, in the field's metadata). The command line builds its
options from these fields (:func:`torchgeo_quake.cli.build_parser`) and turns
the parsed options back into settings (:meth:`MapSettings.from_cli`);
:func:`~torchgeo_quake.mapping.predict.map_damage` builds settings from its
keyword arguments, whose signature repeats the fields only to stay the
function it always was (its arguments are checked by the settings).

Importing this module is cheap (no PyTorch, no GDAL): the command line reads it
to build its parser.

.. versionadded:: 0.2
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["MapOption", "MapSettings"]

#: SAR radiometries a model can be trained on (the values of
#: :data:`torchgeo_quake.trainers.input_spec.RADIOMETRIES`, repeated here so
#: that the command line does not import PyTorch to list them).
RADIOMETRIES: tuple[str, ...] = ("db", "amplitude", "intensity")

#: Schemas of a reference damage map (``--reference-schema``).
REFERENCE_SCHEMAS: tuple[str, ...] = ("auto", "hotosm", "ems")

#: How a command-line option's text is read (:attr:`MapOption.kind`).
OptionKind = Literal[
    "text", "integer", "number", "devices", "flag", "inverse-flag", "toggle"
]


@dataclass(frozen=True)
class MapOption:
    """The command-line form of a :class:`MapSettings` field.

    .. versionadded:: 0.2
    """

    #: Help text of the option.
    help: str
    #: The option, e.g. ``--batch-size`` (default: ``--`` and the field's name
    #: with dashes).
    flag: str = ""
    #: Name of the option's value in the help (default: argparse's).
    metavar: str | None = None
    #: How its text is read: ``text`` (as given), ``integer`` (at least
    #: :attr:`low`), ``number`` (in [low, high], or (low, high] with
    #: :attr:`low_open`), ``devices`` (a count or ``auto``), ``flag`` (given:
    #: True), ``inverse-flag`` (given: False) or ``toggle`` (``--x`` or
    #: ``--no-x``; not given: None, decided by the caller).
    kind: OptionKind = "text"
    #: Smallest value accepted (``integer``, ``number``).
    low: float = -math.inf
    #: Largest value accepted (``number``).
    high: float = math.inf
    #: Whether :attr:`low` itself is refused (``number``).
    low_open: bool = False
    #: The values accepted (``text``), or None for any.
    choices: tuple[str, ...] | None = None
    #: Whether the option must be given (the field has no default).
    required: bool = False
    #: Value when the option is not given: the field's default (flags and
    #: toggles are False or None when not given, whatever the field's default).
    default: Any = None

    @property
    def dest(self) -> str:
        """Name of the option's value in the parsed namespace.

        Returns:
            The flag without dashes, e.g. ``batch_size``.
        """
        return self.flag.lstrip("-").replace("-", "_")


def _option(help: str, **kwargs: Any) -> dict[str, MapOption]:
    """Field metadata giving a setting its command-line form.

    Args:
        help: help text
        **kwargs: other :class:`MapOption` fields

    Returns:
        The metadata.
    """
    return {"cli": MapOption(help=help, **kwargs)}


@dataclass(frozen=True, kw_only=True)
class MapSettings:
    """Everything a damage map is made from: inputs, model, options.

    The arguments of :func:`~torchgeo_quake.mapping.predict.map_damage` and the
    options of ``torchgeo-quake map`` (the command-line form of each field is in
    its metadata, see :meth:`cli_options`). Values are checked when the settings
    are made; the files are checked when the map is made
    (:func:`~torchgeo_quake.mapping.predict.run_map`).

    .. versionadded:: 0.2
    """

    #: Post-event SAR image (any format :class:`~torchgeo_quake.datasets.CSKSAR`
    #: reads).
    sar: str | os.PathLike[str] = field(metadata=_option("post-event SAR image"))
    #: One vector file of building footprints with :attr:`id_field` (any CRS;
    #: reprojected to the SAR image's).
    footprints: str | os.PathLike[str] = field(
        metadata=_option(
            "building footprints (one vector file, any CRS) with an osm_id column",
            metavar="BUILDINGS",
        )
    )
    #: Trained :class:`~torchgeo_quake.trainers.DamageDetectionTask` checkpoint.
    checkpoint: str | os.PathLike[str] = field(
        metadata=_option("trained model (.ckpt)", metavar="CKPT")
    )
    #: Output folder (created; must not hold results unless :attr:`overwrite`).
    out: str | os.PathLike[str] = field(
        metadata=_option("output folder (created)", metavar="DIR")
    )
    #: Pre-event DSM, required by models trained with it.
    dsm: str | os.PathLike[str] | None = field(
        default=None,
        metadata=_option("pre-event DSM (needed by models trained with it)"),
    )
    #: GEM point-asset CSV, required by models trained with it; also gives the
    #: exposure totals of the summary.
    exposure: str | os.PathLike[str] | None = field(
        default=None,
        metadata=_option(
            "GEM point-asset exposure CSV (needed by models trained with it; also "
            "gives occupants and replacement cost of damaged buildings)",
            metavar="GEM.csv",
        ),
    )
    #: Model trained without DSM/GEM, used instead of :attr:`checkpoint` only
    #: when that one needs an input that is not given.
    fallback_checkpoint: str | os.PathLike[str] | None = field(
        default=None,
        metadata=_option(
            "model trained without DSM/GEM, used instead of --checkpoint only when "
            "that one needs an input that is not given",
            metavar="CKPT",
        ),
    )
    #: Buildings per batch.
    batch_size: int = field(
        default=256, metadata=_option("default 256", kind="integer", low=1)
    )
    #: Lightning devices (several devices run with DDP; Lightning then
    #: relaunches the command line once per device, and only the first process
    #: writes).
    devices: int | str = field(
        default=1,
        metadata=_option(
            "number of devices or 'auto'; several GPUs run with DDP (default 1)",
            kind="devices",
        ),
    )
    #: Lightning accelerator (``"auto"``, ``"cpu"``, ``"gpu"``).
    accelerator: str = field(
        default="auto",
        metadata=_option("Lightning accelerator: auto, cpu, gpu, ... (default auto)"),
    )
    #: Data-loader worker processes.
    num_workers: int = field(
        default=0,
        metadata=_option(
            "data-loader worker processes (default 0)", kind="integer", low=0
        ),
    )
    #: CPU threads of PyTorch during the prediction (default: PyTorch's, one per
    #: core); 1 is faster on a CPU shared with other busy processes.
    num_threads: int | None = field(
        default=None,
        metadata=_option(
            "CPU threads of PyTorch (default: one per core; 1 is faster on a CPU "
            "shared with other busy processes)",
            flag="--threads",
            kind="integer",
            low=1,
        ),
    )
    #: Buildings per output tile (predicted and written a tile at a time).
    tile_size: int = 4096
    #: SAR values the model was trained on (``"db"``, ``"amplitude"`` or
    #: ``"intensity"``); by default the checkpoint's (``"db"`` for checkpoints
    #: that do not record it). A value that contradicts the checkpoint is an
    #: error.
    radiometry: str | None = field(
        default=None,
        metadata=_option(
            "SAR values the model was trained on (default: the checkpoint's; db "
            "for checkpoints that do not record it); a value that contradicts "
            "the checkpoint is an error",
            choices=RADIOMETRIES,
        ),
    )
    #: Polygons of admin units for the per-unit totals (else a square grid of
    #: :attr:`cell_size`).
    units: str | os.PathLike[str] | None = field(
        default=None,
        metadata=_option(
            "admin-unit polygons for per-unit totals (default: a square grid)",
            metavar="FILE",
        ),
    )
    #: Attribute naming the units in :attr:`units`.
    unit_field: str = field(
        default="name",
        metadata=_option("attribute naming the units in --units (default name)"),
    )
    #: Grid cell side in metres (in the SAR CRS when it is in metres, else in
    #: the local UTM zone).
    cell_size: float = field(
        default=500.0,
        metadata=_option(
            "side of the grid cells in metres (default 500; in the local UTM zone "
            "when the SAR CRS is not in metres)",
            kind="number",
            low=0.0,
            low_open=True,
        ),
    )
    #: Name of the city in titles (default: the footprint file's folder).
    name: str | None = field(default=None, metadata=_option("city name in titles"))
    #: Building id column of :attr:`footprints`.
    id_field: str = field(
        default="osm_id",
        metadata=_option("building id column (default osm_id)"),
    )
    #: Largest share of SAR nodata pixels tolerated in a building's window.
    max_nodata: float = field(
        default=0.0,
        metadata=_option(
            "largest share of SAR nodata tolerated in a building's window (0)",
            kind="number",
            low=0.0,
            high=1.0,
        ),
    )
    #: Reference damage map to audit (HOTOSM destroyed-building polygons or
    #: a Copernicus EMS grading product): its label is added to every building
    #: and ``audit.csv`` / ``audit.gpkg`` list the likely omissions and
    #: commissions (:mod:`~torchgeo_quake.mapping.audit`).
    reference: str | os.PathLike[str] | None = field(
        default=None,
        metadata=_option(
            "reference damage map to audit (HOTOSM destroyed buildings or a "
            "Copernicus EMS grading product): writes audit.csv and audit.gpkg",
            metavar="FILE",
        ),
    )
    #: Schema of :attr:`reference`: ``"auto"`` recognises both; ``"hotosm"``
    #: takes every feature of another layer for a damaged building.
    reference_schema: str = field(
        default="auto",
        metadata=_option(
            "schema of --reference: auto (default), hotosm (every feature a "
            "damaged building) or ems (graded points, column damage_gra)",
            choices=REFERENCE_SCHEMAS,
        ),
    )
    #: Metres within which a graded point outside every footprint is joined to
    #: the nearest footprint.
    reference_distance: float = field(
        default=10.0,
        metadata=_option(
            "metres within which an EMS point outside every footprint is "
            "joined to the nearest one (default 10)",
            kind="number",
            low=0.0,
        ),
    )
    #: XYZ tile URL template (``{z}``, ``{x}``, ``{y}``) drawn under
    #: ``map.html``; by default the map needs no network.
    basemap: str | None = field(
        default=None,
        metadata=_option(
            "XYZ tile URL template ({z}/{x}/{y}) drawn under map.html; by default "
            "the map needs no network",
            metavar="URL",
        ),
    )
    #: Attribution text of the basemap.
    basemap_attribution: str | None = field(
        default=None, metadata=_option("attribution of --basemap")
    )
    #: Match the SAR values of the new image to the training data's median and
    #: interquartile range (stored in the checkpoint) before predicting: a
    #: label-free adaptation to another radiometric level, see
    #: :func:`~torchgeo_quake.mapping.shift.radiometric_adaptation`.
    #:
    #: .. versionadded:: 0.2
    adapt_radiometry: bool = field(
        default=False,
        metadata=_option(
            "match the SAR values to the training data's median and spread "
            "(label-free adaptation to another radiometric level)",
            kind="flag",
        ),
    )
    #: CSV or vector file of a few graded buildings of the new city (a label
    #: column ``damaged`` or ``label`` and the building id, or a point or
    #: polygon per label) on which the probability scale and the threshold are
    #: refitted; see :mod:`~torchgeo_quake.mapping.recalibration`.
    #:
    #: .. versionadded:: 0.2
    calibration_labels: str | os.PathLike[str] | None = field(
        default=None,
        metadata=_option(
            "CSV or vector file of graded buildings of this city (id or geometry, "
            "and a damaged/label column of 1/0) to refit the probabilities and "
            "the threshold on",
            metavar="FILE",
        ),
    )
    #: Replace the results already in :attr:`out` (all of them or, if anything
    #: fails, none).
    overwrite: bool = field(
        default=False,
        metadata=_option("replace results already in DIR", kind="flag"),
    )
    #: Show progress bars: Lightning's for the prediction, one for the writing
    #: of the outputs (command line: by default when the terminal is
    #: interactive).
    #:
    #: .. versionchanged:: 0.3
    #:    The writing too.
    progress: bool = field(
        default=False,
        metadata=_option(
            "show a progress bar (default: when the terminal is interactive)",
            kind="toggle",
        ),
    )
    #: Print what is done (command line: unless ``--quiet``).
    verbose: bool = field(
        default=False,
        metadata=_option(
            "print only the final counts", flag="--quiet", kind="inverse-flag"
        ),
    )

    def __post_init__(self) -> None:
        """Check the values.

        Raises:
            ValueError: If :attr:`radiometry` or :attr:`reference_schema` is
                unknown, :attr:`batch_size`, :attr:`tile_size`,
                :attr:`num_threads` or :attr:`cell_size` is not positive,
                :attr:`reference_distance` is negative, or :attr:`basemap` is
                not an XYZ URL template.
        """
        if self.radiometry is not None and self.radiometry not in RADIOMETRIES:
            raise ValueError(
                "radiometry must be 'db', 'amplitude' or 'intensity', got "
                f"{self.radiometry!r}"
            )
        if self.batch_size < 1 or self.tile_size < 1:
            raise ValueError("batch_size and tile_size must be positive")
        if self.num_threads is not None and self.num_threads < 1:
            raise ValueError(f"num_threads must be positive, got {self.num_threads}")
        if not self.cell_size > 0:
            raise ValueError(f"cell_size must be positive, got {self.cell_size}")
        if self.reference_schema not in REFERENCE_SCHEMAS:
            raise ValueError(
                f"reference_schema must be one of {', '.join(REFERENCE_SCHEMAS)}, "
                f"got {self.reference_schema!r}"
            )
        if not self.reference_distance >= 0:
            raise ValueError(
                "reference_distance must be a distance >= 0 in metres, got "
                f"{self.reference_distance!r}"
            )
        basemap = self.basemap
        if basemap is not None and not all(k in basemap for k in ("{z}", "{x}", "{y}")):
            raise ValueError(
                "basemap must be an XYZ tile URL template with {z}, {x} and {y}, "
                f"got {basemap!r}"
            )

    @classmethod
    def cli_options(cls) -> dict[str, MapOption]:
        """The command-line options of ``torchgeo-quake map``, in help order.

        Returns:
            The option of each field that has one, by field name, with
            :attr:`MapOption.flag`, :attr:`~MapOption.required` and
            :attr:`~MapOption.default` filled in from the field.
        """
        options = {}
        for item in dataclasses.fields(cls):
            option = item.metadata.get("cli")
            if option is None:
                continue
            required = item.default is dataclasses.MISSING
            options[item.name] = dataclasses.replace(
                option,
                flag=option.flag or "--" + item.name.replace("_", "-"),
                required=required,
                default=None if required else item.default,
            )
        return options

    @classmethod
    def from_cli(cls, values: Mapping[str, Any], **overrides: Any) -> MapSettings:
        """Settings from parsed command-line options.

        Args:
            values: the parsed options by :attr:`MapOption.dest` (e.g.
                ``vars(args)``)
            **overrides: fields set directly, e.g. ``progress=`` for a
                ``toggle`` option left out (None)

        Returns:
            The settings (defaults for ``toggle`` options that are None and
            not overridden).

        Raises:
            ValueError: If a value is invalid (see :meth:`__post_init__`).
        """
        fields: dict[str, Any] = {}
        for name, option in cls.cli_options().items():
            value = values[option.dest]
            if option.kind == "inverse-flag":
                value = not value
            if value is not None or option.kind != "toggle":
                fields[name] = value
        return cls(**{**fields, **overrides})
