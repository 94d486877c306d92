"""Train a small latent-diffusion-style VAE (a diffusers ``AutoencoderKL``) on a data set of ours.

The shipped ``checkpoints/sprites-sd-vae`` (the Latent-diffusion VAE page's offline demo) and the
tests' few-second model come from :func:`train_autoencoder_kl`: seeded Adam on images mapped to
[-1, 1] (diffusers' convention), a per-pixel MSE plus a small KL (a nearly deterministic AE, as
Stable Diffusion's VAE is), then the ``scaling_factor`` set to 1/std of the training latents, as
SD's 0.18215 was. :func:`save_spatial` writes the folder diffusers reads (``config.json`` +
``diffusion_pytorch_model.safetensors``, never a pickle) and ``latentlab.json`` beside it: the
title, the data set the app shows it on, and its card (PSNR on the test split).

    python -m core.training.spatial --out checkpoints/sprites-sd-vae [--steps 1500]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from core.data.registry import load_dataset
from core.formats.spatial_layout import CARD_FILE

KL_WEIGHT = 1e-2  # per pixel, beside the per-pixel MSE


@dataclass(frozen=True)
class SpatialRecipe:
    """How the VAE is built and trained. blocks: the encoder's channels per block (downsample
    2^(len − 1)); latent_channels: C of the latent; steps × batch images seen; lr: Adam's rate."""

    blocks: tuple[int, ...] = (16, 32, 32)
    latent_channels: int = 4
    steps: int = 1500
    batch: int = 16
    lr: float = 2e-3
    seed: int = 0


def build_autoencoder_kl(recipe: SpatialRecipe, side: int):
    from diffusers import AutoencoderKL

    torch.manual_seed(recipe.seed)
    return AutoencoderKL(
        block_out_channels=recipe.blocks,
        layers_per_block=1,
        latent_channels=recipe.latent_channels,
        norm_num_groups=min(4, recipe.blocks[0]),
        sample_size=side,
        down_block_types=("DownEncoderBlock2D",) * len(recipe.blocks),
        up_block_types=("UpDecoderBlock2D",) * len(recipe.blocks),
    )


def round_trip_psnr(vae, x: np.ndarray, batch: int = 50) -> float:
    """Mean PSNR (dB, data range 1, per image then averaged, as scikit-image and the lenses compute
    it) of the posterior mode's reconstruction of x (N, 3, H, W) in [0, 1]."""
    out = []
    with torch.no_grad():
        for start in range(0, len(x), batch):
            sample = torch.from_numpy(np.array(x[start : start + batch], np.float32)) * 2 - 1
            recon = vae.decode(vae.encode(sample).latent_dist.mode()).sample
            out.append(((recon + 1) / 2).clamp(0, 1).numpy())
    mse = ((np.asarray(x, np.float64) - np.concatenate(out)) ** 2).reshape(len(x), -1).mean(1)
    with np.errstate(divide="ignore"):
        return float((-10 * np.log10(mse)).mean())  # an exact copy: +inf, as in scikit-image


def train_autoencoder_kl(
    train_x: np.ndarray, recipe: SpatialRecipe, progress: Callable[[int, float], None] | None = None
):
    """An AutoencoderKL trained on images (N, 3, H, W) in [0, 1]; eval mode, scaling_factor set.
    ``progress(step, loss)`` is called after each step."""
    x_all = np.asarray(train_x, np.float32)  # read-only is fine: each batch is indexed out as a copy
    vae = build_autoencoder_kl(recipe, x_all.shape[-1]).train()
    generator = torch.Generator().manual_seed(recipe.seed)
    optimiser = torch.optim.Adam(vae.parameters(), lr=recipe.lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, recipe.steps)
    for step in range(recipe.steps):
        rows = torch.randint(len(x_all), (recipe.batch,), generator=generator).numpy()
        x = torch.from_numpy(x_all[rows]) * 2 - 1  # (B, 3, H, W) in [-1, 1]
        posterior = vae.encode(x).latent_dist
        recon = vae.decode(posterior.sample(generator=generator)).sample
        loss = torch.nn.functional.mse_loss(recon, x) + KL_WEIGHT * posterior.kl().mean() / x[0].numel()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        schedule.step()
        if progress is not None:
            progress(step + 1, loss.item())
    vae.eval()
    with torch.no_grad():
        mean = vae.encode(torch.from_numpy(np.array(x_all[:256])) * 2 - 1).latent_dist.mean  # (256, C, h, w)
    vae.register_to_config(scaling_factor=round(1.0 / float(mean.std()), 5))
    return vae


def save_spatial(vae, folder: Path, *, title: str, dataset: str, card: dict) -> Path:
    """save_pretrained (safetensors) plus ``latentlab.json`` (title, data set, card) in ``folder``."""
    folder = Path(folder)
    vae.save_pretrained(folder, safe_serialization=True)
    meta = {"title": title, "dataset": dataset, "card": card}
    (folder / CARD_FILE).write_text(json.dumps(meta, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return folder


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m core.training.spatial", description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True, help="the folder to write (e.g. checkpoints/sprites-sd-vae)")
    p.add_argument("--dataset", default="sprites", help="one of ours with colour images (default sprites)")
    p.add_argument("--steps", type=int, default=SpatialRecipe.steps)
    args = p.parse_args(argv)
    data = load_dataset(args.dataset, download=False)
    if data.image_shape[0] != 3:
        raise SystemExit(f"{args.dataset} is not a colour data set: a latent-diffusion VAE takes RGB images")
    recipe = SpatialRecipe(steps=args.steps)
    start = time.perf_counter()

    def report(step: int, loss: float) -> None:
        if step % 100 == 0 or step == recipe.steps:
            print(f"step {step}/{recipe.steps}: loss {loss:.4f} ({time.perf_counter() - start:.0f} s)", file=sys.stderr)

    vae = train_autoencoder_kl(data.train_x, recipe, report)
    seconds = time.perf_counter() - start
    card = {
        "test_psnr": round(round_trip_psnr(vae, data.test_x), 2),
        "test_n": len(data.test_x),
        "train_seconds": round(seconds, 1),
        "steps": recipe.steps,
        "batch": recipe.batch,
        "blocks": list(recipe.blocks),
    }
    title = f"A small latent-diffusion VAE ({recipe.latent_channels} × H/4 × W/4) trained on the {data.name}"
    save_spatial(vae, Path(args.out), title=title, dataset=data.name, card=card)
    print(f"saved {args.out}: PSNR {card['test_psnr']} dB on {card['test_n']} test images, {seconds:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
