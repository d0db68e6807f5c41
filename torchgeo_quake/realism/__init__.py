"""How realistic a simulated scene is: the simulator's calibration table.

The simulator (:mod:`torchgeo_quake.simulation`) writes files and holds no
dataset; measuring what a model could learn from a scene needs the data layer
(the paper's building-centred samples of
:class:`~torchgeo_quake.datasets.KahramanmarasDamage`). This subpackage sits
above both and measures a simulated scene against its public references
(issue 14, "Measured, not assumed"):

* :mod:`.features` - per-building features (mean dB in the footprint,
  footprint area, DSM height residual, GEM vector, SAR block means), their
  within-city and leave-one-city-out AUROCs and the documented bounds that the
  realism tests apply;
* :mod:`.table` - the calibration table (:func:`calibration_table`):
  footprints against the real HOTOSM layer, collapse rates against GEM's
  vulnerability functions, SAR difficulty, transfer across cities;
* :mod:`.markdown` - the table as Markdown (:func:`format_markdown`).

``docs/scripts/simulator_calibration.py`` runs it and writes the table that
docs/simulator.md includes.

.. versionadded:: 0.3
"""

from .features import SampleFeatures, loco_auroc, sample_features, within_city_auroc
from .markdown import format_markdown
from .table import calibration_table

__all__ = [
    "SampleFeatures",
    "calibration_table",
    "format_markdown",
    "loco_auroc",
    "sample_features",
    "within_city_auroc",
]
