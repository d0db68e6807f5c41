"""Experiment configurations and protocol settings: read, check, instantiate.

A protocol's input configurations are LightningCLI configuration files
(``experiments/*.yaml``). :func:`load_config` reads one and checks it against the
classes it names **before** anything is trained or written: every ``init_args``
key of the ``model`` and ``data`` sections, and every ``trainer`` setting the
runner keeps, must be a parameter of its class, and every value must match the
parameter's type. A typo therefore ends the command at once with a
:class:`ConfigError` naming the file, the section and the key, with the closest
accepted names::

    experiments/sar_ftp.yaml: unknown key 'lrr' (did you mean 'lr'?) in
    model.init_args: torchgeo_quake.trainers.DamageDetectionTask has no such
    argument

Types are checked, and the model and data module built, by jsonargparse, as
LightningCLI (``torchgeo fit``) does with the same files (:func:`instantiate`),
so a file means the same to both commands.

:class:`~torchgeo_quake.protocols.settings.ProtocolSettings` holds everything
else a protocol depends on.

.. versionadded:: 0.2
"""

from __future__ import annotations

import argparse
import difflib
import importlib
import inspect
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml

from ..utils import experiment_config

__all__ = [
    "PROTOCOLS",
    "QUICK",
    "ConfigError",
    "ExperimentConfig",
    "instantiate",
    "load_config",
]

Protocol = Literal["cv", "loco", "islahiye", "blocked", "blocked-islahiye"]

#: The protocols, with the paper's table each one reproduces (the spatially
#: blocked ones are not in the paper: they lay out their tables as III and V).
#:
#: .. versionchanged:: 0.3
#:    ``"blocked"`` and ``"blocked-islahiye"``.
PROTOCOLS: dict[str, str] = {
    "cv": "Table III",
    "loco": "Table IV",
    "islahiye": "Table V",
    "blocked": "Table III, spatially blocked folds; not in the paper",
    "blocked-islahiye": "Table V, spatially blocked folds; not in the paper",
}

#: Protocols of spatially blocked folds (``strategy="blocked"``).
BLOCKED_PROTOCOLS = ("blocked", "blocked-islahiye")

#: Settings of ``--quick``: a small simulated scene, two epochs (see
#: ``benchmarks/RESULTS.md`` for the measured wall time).
QUICK: dict[str, Any] = {"scale": 0.1, "max_epochs": 2}

#: Default data root of the quick mode (a different scale is another scene).
QUICK_ROOT = "data/kahramanmaras-quick"

#: Paper labels of the input configurations, by canonical modalities.
_LABELS: dict[tuple[str, ...], str] = {
    ("sar", "footprint"): "SAR + FTP",
    ("sar", "footprint", "dsm"): "SAR + FTP + DSM",
    ("sar", "footprint", "dsm", "gem"): "SAR + FTP + DSM + GEM",
    ("sar", "footprint", "gem"): "SAR + FTP + GEM",
}

ORDER = ("sar", "footprint", "dsm", "gem")

#: Trainer settings of the configuration file the runner replaces by its own.
RUNNER_OWNED = (
    "logger",
    "callbacks",
    "default_root_dir",
    "enable_progress_bar",
    "enable_model_summary",
    "enable_checkpointing",
    # The configurations' wall-clock limit bounds a single `torchgeo fit` on a
    # CPU; in a protocol it would stop slower configurations after fewer epochs
    # and bias the comparison, so only --max-time sets one.
    "max_time",
)

_TRAINER = "lightning.pytorch.Trainer"


class ConfigError(ValueError):
    """An experiment configuration that cannot be used, found before any run.

    The message names the file, the section and the offending key or value.

    .. versionadded:: 0.2
    """


# ------------------------------------------------------------ configurations
@dataclass(frozen=True)
class ExperimentConfig:
    """One input configuration, read from a LightningCLI configuration file.

    .. versionadded:: 0.1
    """

    #: Short name (the file's stem), used in output paths.
    name: str
    #: The configuration file.
    path: str
    #: Paper-style label of the inputs, e.g. ``"SAR + FTP + DSM"``.
    label: str
    #: Model modalities in canonical order.
    modalities: tuple[str, ...]
    #: ``model`` section (``class_path`` and ``init_args``).
    model: dict[str, Any]
    #: ``data`` section (``class_path`` and ``init_args``).
    data: dict[str, Any]
    #: ``trainer`` section.
    trainer: dict[str, Any]


def _close(word: str, choices: Sequence[str]) -> str:
    """A ``(did you mean ...?)`` hint, or nothing.

    Args:
        word: the unknown name
        choices: the accepted names

    Returns:
        The hint, with a leading space, or ``""`` when nothing is close.
    """
    close = difflib.get_close_matches(word, choices, n=3)
    if not close:
        return ""
    return f" (did you mean {' or '.join(repr(c) for c in close)}?)"


def section_class(file: str, section: str, class_path: Any) -> type:
    """Import the class a configuration section names.

    Args:
        file: the configuration file (for messages)
        section: ``"model"``, ``"data"`` or ``"trainer"``
        class_path: dotted path, e.g. ``torchgeo_quake.trainers.DamageDetectionTask``

    Returns:
        The class.

    Raises:
        ConfigError: If the path does not name an importable class.
    """
    module_name, _, name = str(class_path).rpartition(".")
    where = f"{file}: {section}.class_path {class_path!r}"
    try:
        module = importlib.import_module(module_name)
    except (ImportError, ValueError) as err:
        raise ConfigError(f"{where} cannot be imported: {err}") from err
    cls = getattr(module, name, None)
    if not isinstance(cls, type):
        public = [n for n in dir(module) if not n.startswith("_")]
        raise ConfigError(
            f"{where}: module {module_name} has no class {name!r}{_close(name, public)}"
        )
    return cls


def _unknown_keys(
    cls: type, given: Mapping[str, Any], set_by_runner: Sequence[str] = ()
) -> tuple[list[str], list[str]]:
    """Keys a class's constructor does not accept.

    Args:
        cls: the class
        given: its keyword arguments
        set_by_runner: keys the runner adds (checked, but reported apart)

    Returns:
        Unknown keys of the file and unknown keys set by the runner; both empty
        when the constructor takes ``**kwargs`` (jsonargparse then checks them).
    """
    params = inspect.signature(cls).parameters.values()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return [], []
    accepted = {
        p.name for p in params if p.kind is not inspect.Parameter.VAR_POSITIONAL
    }
    unknown = [k for k in given if k not in accepted]
    return (
        [k for k in unknown if k not in set_by_runner],
        [k for k in unknown if k in set_by_runner],
    )


def check_section(
    file: str,
    section: str,
    class_path: str,
    init_args: Mapping[str, Any],
    set_by_runner: Sequence[str] = (),
) -> tuple[Any, Any]:
    """Check a section's arguments against its class, as LightningCLI would.

    Args:
        file: the configuration file (for messages)
        section: ``"model"``, ``"data"`` or ``"trainer"``
        class_path: the class
        init_args: its keyword arguments (those of the file and of the runner)
        set_by_runner: keys of *init_args* the runner sets, not the file

    Returns:
        The jsonargparse parser and the parsed configuration (the arguments
        with their types and defaults under ``section``).

    Raises:
        ConfigError: If the class cannot be imported, a key is not one of its
            parameters, or a value does not match the parameter's type.
    """
    from jsonargparse import ArgumentParser

    cls = section_class(file, section, class_path)
    place = section if section == "trainer" else f"{section}.init_args"
    unknown, runner_keys = _unknown_keys(cls, init_args, set_by_runner)
    if unknown:
        accepted = list(inspect.signature(cls).parameters)
        hints = [f"{k!r}{_close(k, accepted)}" for k in unknown]
        listed = (
            ""
            if all("did you mean" in h for h in hints)
            else f"; it accepts {', '.join(accepted)}"
        )
        raise ConfigError(
            f"{file}: unknown key{'s' * (len(hints) > 1)} {', '.join(hints)} in "
            f"{place}: {class_path} has no such argument{listed}"
        )
    if runner_keys:
        raise ConfigError(
            f"{file}: {class_path} (section '{section}') does not accept "
            f"{runner_keys}, which the protocol runner sets for every run; a "
            "protocol's data module takes the split arguments of "
            "torchgeo_quake.datamodules.BuildingDamageDataModule (root, "
            "strategy, fold, test_city, city, seed, splits_file)"
        )
    parser = ArgumentParser(exit_on_error=False)
    try:
        parser.add_class_arguments(cls, section, fail_untyped=False)
        parsed = parser.parse_object({section: dict(init_args)})
    except (argparse.ArgumentError, ValueError, TypeError) as err:
        detail = " ".join(str(err).split())
        # 'Parser key "model.lr": Expected ...' -> "'lr': Expected ..."
        detail = re.sub(
            rf'Parser key "{re.escape(section)}\.([^"]+)":', r"'\1':", detail
        )
        raise ConfigError(
            f"{file}: invalid value in {place} ({class_path}): {detail}"
        ) from err
    return parser, parsed


def instantiate(
    config: ExperimentConfig, section: Literal["model", "data"], **overrides: Any
) -> Any:
    """Build a configuration's model or data module with jsonargparse.

    The arguments are checked and converted to the parameters' types as
    LightningCLI does with the same file (e.g. YAML's ``1e-3``, a string to
    PyYAML, is the float 0.001).

    Args:
        config: the configuration
        section: ``"model"`` or ``"data"``
        **overrides: arguments the runner sets (e.g. the split of a run)

    Returns:
        The instance.

    Raises:
        ConfigError: If the arguments do not fit the class.

    .. versionadded:: 0.2
    """
    values = getattr(config, section)
    parser, parsed = check_section(
        config.path,
        section,
        values["class_path"],
        {**values["init_args"], **overrides},
        set_by_runner=tuple(overrides),
    )
    # jsonargparse >= 4.49 names it `instantiate`; earlier ones, the old name.
    build = getattr(parser, "instantiate", None) or parser.instantiate_classes
    return build(parsed)[section]


def _read_sections(file: Path) -> dict[str, dict[str, Any]]:
    """The ``model``, ``data`` and ``trainer`` sections of a configuration file.

    Args:
        file: the file

    Returns:
        ``model`` and ``data`` as ``class_path`` and ``init_args``; ``trainer``.

    Raises:
        ConfigError: If the file is not a mapping or a section is malformed.
    """
    try:
        raw = yaml.safe_load(file.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"{file}: not valid YAML: {err}") from err
    if not isinstance(raw, dict):
        raise ConfigError(f"{file}: expected a mapping at the top level")
    sections: dict[str, dict[str, Any]] = {}
    for key in ("model", "data"):
        section = raw.get(key)
        if not isinstance(section, dict) or "class_path" not in section:
            raise ConfigError(f"{file}: needs a '{key}' section with a class_path")
        init_args = section.get("init_args") or {}
        if not isinstance(init_args, dict):
            raise ConfigError(f"{file}: {key}.init_args must be a mapping")
        sections[key] = {
            "class_path": section["class_path"],
            "init_args": dict(init_args),
        }
    trainer = raw.get("trainer") or {}
    if not isinstance(trainer, dict):
        raise ConfigError(f"{file}: the 'trainer' section must be a mapping")
    sections["trainer"] = dict(trainer)
    return sections


def _modalities(file: Path, model: Mapping[str, Any], data: Mapping[str, Any]) -> Any:
    """The model's modalities in canonical order, checked against the data's.

    Args:
        file: the configuration file (for messages)
        model: ``model.init_args``
        data: ``data.init_args``

    Returns:
        The modalities, a tuple.

    Raises:
        ConfigError: If a modality is unknown or the data lacks one.
    """
    mods = model.get("modalities", ORDER)
    unknown = sorted(set(mods) - set(ORDER))
    if unknown:
        raise ConfigError(
            f"{file}: unknown modalities {unknown} in model.init_args.modalities; "
            f"choose among {list(ORDER)}"
        )
    modalities = tuple(m for m in ORDER if m in set(mods))
    data_mods = data.get("modalities")
    if data_mods is not None and not set(modalities) <= set(data_mods):
        raise ConfigError(
            f"{file}: the model's modalities {list(modalities)} are not all among "
            f"the data's {list(data_mods)}; give model and data the same "
            "`modalities`"
        )
    return modalities


def _config_file(path: str | os.PathLike[str]) -> Path:
    """The configuration file a path names.

    Args:
        path: a file, or ``experiments/<name>.yaml`` of the package

    Returns:
        *path* when it is a file, else the installed ``experiments/<name>.yaml``
        when the path names one.

    Raises:
        FileNotFoundError: If neither exists.
    """
    file = Path(path)
    if file.is_file():
        return file
    try:
        return experiment_config(file)
    except FileNotFoundError as err:
        raise FileNotFoundError(
            f"configuration file not found: {file} (relative paths are read from "
            f"{Path.cwd()}); give an existing file with --configs, or the name "
            f"of one installed with the package: {err}"
        ) from err


def load_config(path: str | os.PathLike[str]) -> ExperimentConfig:
    """Read and check an experiment configuration file (``experiments/*.yaml``).

    The ``model`` and ``data`` arguments and the ``trainer`` settings the runner
    keeps are checked against their classes (names and types, see the module's
    description); nothing is instantiated.

    Args:
        path: LightningCLI YAML file with ``model``, ``data`` and ``trainer``.

    Returns:
        The parsed configuration.

    Raises:
        FileNotFoundError: If the file does not exist.
        ConfigError: A :class:`ValueError`: if it lacks a ``model`` or ``data``
            section with ``class_path``, its modalities are not a known
            configuration, or a class, key or value of a section is invalid.

    .. versionadded:: 0.1
    .. versionchanged:: 0.2
       Checks the sections against their classes. A path
       ``experiments/<name>.yaml`` (or ``<name>.yaml``) that is not in the
       current folder is read from the copy installed with the package
       (:func:`~torchgeo_quake.utils.experiment_config`).
    """
    file = _config_file(path)
    sections = _read_sections(file)
    model, data = sections["model"], sections["data"]
    modalities = _modalities(file, model["init_args"], data["init_args"])
    for key in ("model", "data"):
        check_section(
            str(file), key, sections[key]["class_path"], sections[key]["init_args"]
        )
    kept = {k: v for k, v in sections["trainer"].items() if k not in RUNNER_OWNED}
    check_section(str(file), "trainer", _TRAINER, kept)
    label = _LABELS.get(modalities, " + ".join(m.upper() for m in modalities))
    return ExperimentConfig(
        name=file.stem,
        path=str(file),
        label=label,
        modalities=modalities,
        model=model,
        data=data,
        trainer=sections["trainer"],
    )


def is_kahramanmaras(config: ExperimentConfig) -> bool:
    """Whether a configuration's data module is the paper's five-city one.

    Args:
        config: the configuration

    Returns:
        True for :class:`~torchgeo_quake.datamodules.KahramanmarasDamageDataModule`
        and its subclasses, False for other data modules (e.g. the generic
        :class:`~torchgeo_quake.datamodules.BuildingDamageDataModule`).

    Raises:
        ConfigError: If the data class cannot be imported.
    """
    from ..datamodules import KahramanmarasDamageDataModule

    cls = section_class(config.path, "data", config.data["class_path"])
    return issubclass(cls, KahramanmarasDamageDataModule)


def data_root(config: ExperimentConfig, root: str | os.PathLike[str] | None) -> Path:
    """The data root of a configuration.

    Args:
        config: the configuration
        root: the root given to the runner (None: the configuration's)

    Returns:
        *root*, else the configuration's data ``root``, else the data module's
        default root.
    """
    if root is not None:
        return Path(root)
    given = config.data["init_args"].get("root")
    if given is not None:
        return Path(given)
    cls = section_class(config.path, "data", config.data["class_path"])
    default = inspect.signature(cls).parameters.get("root")
    if default is None or default.default is inspect.Parameter.empty:
        return Path("data/kahramanmaras")
    return Path(default.default)
