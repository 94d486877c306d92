"""Second floor: making models.

``train`` (the loop: epochs, callbacks, NaN guard, seeds, device), ``runs`` (a finished run saved
as a checkpoint with its card) and ``pretrain`` (the recipes of the shipped checkpoints).

May import: ``core.models``, ``core.data`` and ``core.formats``.
"""

MAY_IMPORT = ("models", "data", "formats")
