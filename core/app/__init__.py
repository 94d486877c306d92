"""Top floor: services for the app (still no Streamlit here).

``site`` (the page table, read from each page's ``PAGE``), ``talk`` (presenter mode's list of
demos), ``catalog`` (every model the app can show, its card and data set), ``browser_decoder``
(the decoders exported for the browser) and ``jobs`` (long work in the background: progress,
cancel, saving under a free name).

May import: every floor below. ``core.cli`` sits beside this floor and may import all of it.
"""

MAY_IMPORT = ("models", "data", "formats", "lenses", "training", "experiments")
