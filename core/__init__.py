"""Latent Lab's engine: data sets, the autoencoder family, training, checkpoints and analysis.

Importable and testable without Streamlit; pages call into it and draw what it returns.

The names below are loaded on first use (PEP 562): ``import core`` or ``from core import
catalog`` must not import torch, which takes seconds and would delay the app's first page.
"""

from __future__ import annotations

import importlib
from pathlib import Path

# The repository's root: pages/, checkpoints/ and data/ sit beside core/.
REPO_ROOT = Path(__file__).resolve().parent.parent

_EXPORTS = {
    "core.formats.checkpoints": (
        "Checkpoint",
        "CheckpointError",
        "list_checkpoints",
        "load_checkpoint",
        "save_checkpoint",
    ),
    "core.models.config": ("ConfigError", "ModelConfig"),
    "core.data.registry": ("REGISTRY", "DataError", "Dataset", "load_dataset"),
    "core.models.evaluate": ("Metrics", "active_units", "encode_dataset", "evaluate"),
    "core.models.losses": ("Objective", "gaussian_kl", "reconstruction_nll"),
    "core.models.networks": ("AutoEncoder", "ModelOutput", "build_model"),
    "core.models.protocol": ("LatentModel",),
    "core.training.runs": ("save_run",),
    "core.training.train": ("Callback", "History", "TrainConfig", "TrainingDiverged", "fit", "train_model"),
}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}
__all__ = sorted(_WHERE)


def __getattr__(name: str):
    if name not in _WHERE:
        raise AttributeError(f"module 'core' has no attribute {name!r}")
    value = getattr(importlib.import_module(_WHERE[name]), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
