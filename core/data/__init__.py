"""Ground floor: data in, as arrays: images (N, C, H, W) in [0, 1], or a table's standardised rows.

``registry`` (the data sets by name, where each comes from, train/test splits, the held-out sets
in ``data/``), ``user_data`` (the user's own folders, ``.zip`` and ``.npz`` files), ``images``
(decoding one uploaded image safely), ``corrupt`` (the corruptions of the denoising demos) and
``tables`` (a bundled table and the user's CSV or Parquet: read, checked, split, standardised).

May import: nothing else of ``core`` (data sets know no model).
"""

MAY_IMPORT: tuple[str, ...] = ()
