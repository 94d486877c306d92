"""Ground floor: images in, as arrays (N, C, H, W) in [0, 1].

``registry`` (the data sets by name, where each comes from, train/test splits, the held-out sets
in ``data/``), ``user_data`` (the user's own folders, ``.zip`` and ``.npz`` files), ``images``
(decoding one uploaded image safely) and ``corrupt`` (the corruptions of the denoising demos).

May import: nothing else of ``core`` (data sets know no model).
"""

MAY_IMPORT: tuple[str, ...] = ()
