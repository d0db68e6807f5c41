"""The paper's experimental protocols: Tables III, IV and V from one command.

:func:`run_protocol` (:mod:`.runner`) trains every run of a protocol (input
configuration × split × seed) resumably and writes the tables (:mod:`.tables`),
the calibration before and after Platt scaling (:mod:`.calibration`) and
figures (:mod:`.figures`); ``torchgeo-quake protocol`` is its command line.
The configurations are read and checked by :mod:`.config`, each run is trained
by :mod:`.training`, and :mod:`.records` holds what every run writes and what
the tables and figures read back.

.. versionadded:: 0.1
"""

from .calibration import calibration_rows, calibration_table, write_calibration
from .config import (
    PROTOCOLS,
    QUICK,
    ConfigError,
    ExperimentConfig,
    load_config,
)
from .figures import (
    plot_confusion_matrix,
    plot_curves,
    plot_reliability,
    plot_training_curves,
    write_figures,
)
from .records import DamagedRunError, RunSpec, load_runs, read_run_log
from .runner import ProtocolResult, plan_runs, run_protocol
from .settings import ProtocolSettings
from .tables import (
    METRICS,
    POLICIES,
    SUN_ET_AL,
    Cell,
    Table,
    build_table,
    format_markdown,
    write_tables,
)

__all__ = [
    "METRICS",
    "POLICIES",
    "PROTOCOLS",
    "QUICK",
    "SUN_ET_AL",
    "Cell",
    "ConfigError",
    "DamagedRunError",
    "ExperimentConfig",
    "ProtocolResult",
    "ProtocolSettings",
    "RunSpec",
    "Table",
    "build_table",
    "calibration_rows",
    "calibration_table",
    "format_markdown",
    "load_config",
    "load_runs",
    "plan_runs",
    "plot_confusion_matrix",
    "plot_curves",
    "plot_reliability",
    "plot_training_curves",
    "read_run_log",
    "run_protocol",
    "write_calibration",
    "write_figures",
    "write_tables",
]
