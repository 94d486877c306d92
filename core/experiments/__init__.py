"""Third floor: experiments that train and measure several models.

``sweep`` (the β sweep and its table) and ``anomaly`` (anomaly scores, ROC, the demos' setups).

May import: every floor below: ``core.models``, ``core.data``, ``core.formats``, ``core.lenses``
and ``core.training``.
"""

MAY_IMPORT = ("models", "data", "formats", "lenses", "training")
