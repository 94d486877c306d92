"""Third floor: experiments that train and measure several models.

``sweep`` (the β sweep and its table), ``anomaly`` (anomaly scores, ROC, the demos' setups) and
``tabular`` (anomalies in tables: the model of normal rows beside the tuned classical detectors).

May import: every floor below: ``core.models``, ``core.data``, ``core.formats``, ``core.lenses``
and ``core.training``.
"""

MAY_IMPORT = ("models", "data", "formats", "lenses", "training")
