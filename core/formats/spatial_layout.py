"""Which layout a spatial-latent VAE folder has, without opening it (torch-free, like
:mod:`core.formats.foreign`): the sidebar lists such folders on every page, and listing must not
pay for importing torch. :mod:`core.formats.spatial` opens them.

The layouts: "latentlab-onnx" (our own ``model.json`` with a ``latent_shape``, beside ``encoder.onnx``
and ``decoder.onnx``), "optimum-onnx" (``vae_encoder/``, ``vae_decoder/``) and "diffusers"
(``config.json`` + safetensors weights)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from core.formats.checkpoints import CheckpointError
from core.formats.foreign import SPEC_FILE

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "diffusion_pytorch_model.safetensors"
PICKLE_FILES = ("diffusion_pytorch_model.bin", "diffusion_pytorch_model.ckpt", "diffusion_pytorch_model.pt")
ENCODER_DIR, DECODER_DIR, ONNX_FILE = "vae_encoder", "vae_decoder", "model.onnx"
CARD_FILE = "latentlab.json"  # beside a VAE we trained: its title, the data set it is shown on, its card


class SpatialModelError(CheckpointError):
    """A spatial-latent model folder cannot be used; the message names the file and the cause."""


def spatial_layout(folder: str | os.PathLike) -> str:
    """ "latentlab-onnx", "optimum-onnx" or "diffusers" for a model folder, by the files it holds (a
    ``model.json`` is ours; whether it declares a spatial latent_shape is the loader's check);
    SpatialModelError when it is none of them."""
    folder = Path(folder)
    if not folder.is_dir():
        raise SpatialModelError(f"{folder}: not a folder (a spatial VAE is a folder of files)")
    if (folder / SPEC_FILE).is_file():
        return "latentlab-onnx"
    if (folder / ENCODER_DIR).is_dir() or (folder / DECODER_DIR).is_dir():
        return "optimum-onnx"
    if (folder / CONFIG_FILE).is_file():
        return "diffusers"
    if (folder / "vae" / CONFIG_FILE).is_file():
        raise SpatialModelError(f"{folder}: a whole pipeline; open its VAE, {folder / 'vae'}")
    raise SpatialModelError(
        f"{folder}: neither a diffusers VAE folder ({CONFIG_FILE} + {WEIGHTS_FILE}) nor an optimum ONNX export "
        f"({ENCODER_DIR}/{ONNX_FILE}, {DECODER_DIR}/{ONNX_FILE}, {DECODER_DIR}/{CONFIG_FILE}) nor a Latent Lab "
        f"model folder ({SPEC_FILE} with a latent_shape, encoder.onnx, decoder.onnx)"
    )


def read_card(folder: str | os.PathLike) -> dict:
    """A spatial VAE folder's ``latentlab.json`` ({"title", "dataset", "card"}), or {} when it has
    none or it cannot be read (the folder still opens; only its title and data set fall back)."""
    try:
        meta = json.loads((Path(folder) / CARD_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return meta if isinstance(meta, dict) else {}
