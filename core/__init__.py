"""Latent Lab's engine: data sets, the autoencoder family, training, checkpoints and analysis.

Importable and testable without Streamlit; pages call into it and draw what it returns.
"""

from core.checkpoints import Checkpoint, CheckpointError, list_checkpoints, load_checkpoint, save_checkpoint
from core.data import REGISTRY, DataError, Dataset, load_dataset
from core.evaluate import Metrics, active_units, encode_dataset, evaluate
from core.losses import Objective, gaussian_kl, reconstruction_nll
from core.models import AutoEncoder, ConfigError, ModelConfig, ModelOutput, build_model
from core.train import Callback, History, TrainConfig, TrainingDiverged, fit, train_model

__all__ = [
    "REGISTRY",
    "AutoEncoder",
    "Callback",
    "Checkpoint",
    "CheckpointError",
    "ConfigError",
    "DataError",
    "Dataset",
    "History",
    "Metrics",
    "ModelConfig",
    "ModelOutput",
    "Objective",
    "TrainConfig",
    "TrainingDiverged",
    "active_units",
    "build_model",
    "encode_dataset",
    "evaluate",
    "fit",
    "gaussian_kl",
    "list_checkpoints",
    "load_checkpoint",
    "load_dataset",
    "reconstruction_nll",
    "save_checkpoint",
    "train_model",
]
