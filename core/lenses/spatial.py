"""Lenses on a spatial latent: what a latent diffusion model's VAE keeps, and whether its factors fit.

The autoencoder of a latent diffusion model (Rombach et al. 2022) turns an image (3, H, W) into a
latent map (C, H/f, W/f). Its bugs are visual and silent: a wrong ``scaling_factor`` or a missing
``shift_factor`` after swapping a VAE, colour shifts, lost fine detail, a decoder that breaks on
slightly-off latents. Each function here makes one of them visible and returns numpy arrays:

- :func:`reconstruction`: decode(encode(x)), PSNR and SSIM per image, an absolute-difference map;
- :func:`latent_stats` and :func:`scaling_check`: are the scaled latents about N(0, 1), and which
  scaling (and shift) factor do your images call for;
- :func:`channel_shift`: add δ to one latent channel, everywhere or inside a mask;
- :func:`interpolate_spatial`: linear or spherical paths between two images' latents, or a pixel fade;
- :func:`noise_robustness`: decode latent + σ·ε and watch the PSNR fall;
- :func:`pooled_codes`: a short vector per image (channels average-pooled to a small grid) for the
  map, neighbours and anomaly lenses, which take flat codes.

The model is duck-typed (:class:`core.formats.spatial.SpatialModel` fits; a lens never loads a file):
``encode(x)`` with x (B, 3, H, W) in [0, 1] -> scaled latents (B, C, h, w); ``decode(latents)`` ->
images in [0, 1]; ``scaling_factor`` and ``shift_factor``. The convention of diffusers' pipelines:
``latents = (mean - shift) * scaling`` and the decoder takes ``latents / scaling + shift``.
Images here are float32 arrays (N, 3, H, W) in [0, 1]; latents are (N, C, h, w) scaled.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch
import torch.nn.functional as F

from core.lenses.denoise import psnr, ssim
from core.lenses.latent import lerp, slerp

HIST_RANGE = (-4.0, 4.0)
HIST_BINS = 64
STD_TOLERANCE = 0.2  # |std - 1| beyond this: the scaling factor does not fit these images
MEAN_TOLERANCE = 0.2  # |mean| beyond this many std's, with shift_factor 0: a shift may be missing
METHODS = ("linear", "slerp", "pixels")
Progress = Callable[[float, str], "bool | None"]  # (fraction done, what) -> True to stop


class SpatialLatentModel(Protocol):
    """What these lenses need of a model (``core.formats.spatial.SpatialModel`` has it)."""

    scaling_factor: float
    shift_factor: float

    def encode(self, x: torch.Tensor) -> torch.Tensor: ...

    def decode(self, latents: torch.Tensor) -> torch.Tensor: ...


def _tensor(a: np.ndarray | torch.Tensor) -> torch.Tensor:
    return torch.as_tensor(np.asarray(a, np.float32) if not isinstance(a, torch.Tensor) else a).float()


def encode(model: SpatialLatentModel, x: np.ndarray | torch.Tensor) -> np.ndarray:
    """Images (N, 3, H, W) in [0, 1] -> scaled latents (N, C, h, w)."""
    with torch.no_grad():
        return model.encode(_tensor(x)).cpu().numpy()


def decode(model: SpatialLatentModel, latents: np.ndarray | torch.Tensor) -> np.ndarray:
    """Scaled latents (N, C, h, w) -> images (N, 3, H, W) in [0, 1]."""
    with torch.no_grad():
        return model.decode(_tensor(latents)).cpu().numpy()


# ---------------------------------------------------------------- reconstruction


@dataclass
class Reconstruction:
    recon: np.ndarray  # (N, 3, H, W) in [0, 1]
    psnr: np.ndarray  # (N,) dB, data_range 1; +inf for an exact copy
    ssim: np.ndarray  # (N,)
    diff: np.ndarray  # (N, H, W) |x - recon| averaged over channels, in [0, 1]
    latents: np.ndarray  # (N, C, h, w) scaled, reusable by latent_stats / scaling_check

    @property
    def mean_psnr(self) -> float:
        return float(np.mean(self.psnr)) if len(self.psnr) else float("nan")

    @property
    def mean_ssim(self) -> float:
        return float(np.mean(self.ssim)) if len(self.ssim) else float("nan")


class Cancelled(Exception):
    """The caller's progress callback asked to stop."""


def reconstruction(
    model: SpatialLatentModel,
    x: np.ndarray | torch.Tensor,
    *,
    batch_size: int = 4,
    progress: Progress | None = None,
) -> Reconstruction:
    """Encode and decode images x (N, 3, H, W) in [0, 1]: what the round trip loses, per image and per pixel.

    Works ``batch_size`` images at a time (a 512² image through an SD VAE holds ~1 GB of activations)
    and calls ``progress(fraction, text)`` after each batch; a True return raises :class:`Cancelled`.
    """
    x = np.asarray(_tensor(x).numpy(), np.float32)
    latents, recon = [], []
    for start in range(0, len(x), batch_size):
        latents.append(encode(model, x[start : start + batch_size]))
        recon.append(decode(model, latents[-1]))
        done = min(start + batch_size, len(x))
        if progress is not None and progress(done / len(x), f"{done} of {len(x)} images encoded and decoded"):
            raise Cancelled(f"stopped after {done} of {len(x)} images")
    if not recon:
        raise ValueError("no images to reconstruct")
    latents, recon = np.concatenate(latents), np.concatenate(recon)
    diff = np.abs(x - recon).mean(axis=1)
    return Reconstruction(recon=recon, psnr=psnr(x, recon), ssim=ssim(x, recon), diff=diff, latents=latents)


# ---------------------------------------------------------------- statistics and the scaling check


@dataclass
class LatentStats:
    mean: np.ndarray  # (C,) per channel
    std: np.ndarray  # (C,)
    edges: np.ndarray  # (HIST_BINS + 1,) over HIST_RANGE
    counts: np.ndarray  # (C, HIST_BINS) values per bin, per channel (values outside the range are not counted)
    density: np.ndarray  # (HIST_BINS,) all channels' histogram as a density, comparable to `normal`
    normal: np.ndarray  # (HIST_BINS,) the N(0, 1) density at the bin centres
    outside: float  # share of values outside HIST_RANGE

    @property
    def centres(self) -> np.ndarray:
        return (self.edges[:-1] + self.edges[1:]) / 2


def latent_stats(latents: np.ndarray | torch.Tensor, bins: int = HIST_BINS) -> LatentStats:
    """Per-channel mean and std of scaled latents (N, C, h, w), and their histogram beside N(0, 1)'s density."""
    a = np.asarray(_tensor(latents).numpy(), np.float64)
    if a.ndim != 4 or not a.size:
        raise ValueError(f"latents must be a non-empty (N, C, h, w) array, got shape {a.shape}")
    per_channel = a.transpose(1, 0, 2, 3).reshape(a.shape[1], -1)  # (C, N·h·w)
    edges = np.linspace(*HIST_RANGE, bins + 1)
    counts = np.stack([np.histogram(c, bins=edges)[0] for c in per_channel])
    centres = (edges[:-1] + edges[1:]) / 2
    return LatentStats(
        mean=per_channel.mean(1),
        std=per_channel.std(1),
        edges=edges,
        counts=counts,
        density=counts.sum(0) / (a.size * np.diff(edges)),
        normal=np.exp(-(centres**2) / 2) / np.sqrt(2 * np.pi),
        outside=float(1 - counts.sum() / a.size),
    )


@dataclass
class ScalingCheck:
    scaling_factor: float  # the model's
    shift_factor: float  # the model's
    std: float  # of the scaled latents, over all values
    mean: float  # of the scaled latents
    measured_scaling: float  # 1 / std of the unscaled, shifted latent: the factor these images call for
    measured_shift: float  # mean of the unscaled latent: the shift these images call for
    warning: bool
    message: str


def scaling_check(model: SpatialLatentModel, latents: np.ndarray | torch.Tensor, scaled: bool = True) -> ScalingCheck:
    """Do the latents of these images have std about 1 and mean about 0 under the model's factors?

    ``latents`` (N, C, h, w) are scaled (``model.encode``'s output) or, with ``scaled=False``, the
    encoder's raw mean. A diffusion model was trained on latents of unit variance: std off 1 by
    more than 20 % means the scaling factor does not fit; a mean off 0 by more than 0.2 std while
    shift_factor is 0 means a shift may be missing (SD3 and FLUX need one).
    """
    s, shift = float(model.scaling_factor), float(model.shift_factor)
    a = np.asarray(_tensor(latents).numpy(), np.float64)
    if not scaled:
        a = (a - shift) * s
    std, mean = float(a.std()), float(a.mean())
    measured = s / std if std > 0 else float("inf")
    measured_shift = mean / s + shift
    off_scale = abs(std - 1) > STD_TOLERANCE
    off_shift = shift == 0 and abs(mean) > MEAN_TOLERANCE * std
    message = f"with scaling_factor {s:.5g} the latent std is {std:.3g}; 1/std measured on your images = {measured:.3g}"
    if off_scale:
        message += f" — the scaling factor does not fit these images (try {measured:.3g})"
    if off_shift:
        message += (
            f"; the latent mean is {mean:.3g}: a shift may be missing (measured shift_factor {measured_shift:.3g})"
        )
    return ScalingCheck(s, shift, std, mean, measured, measured_shift, off_scale or off_shift, message)


# ---------------------------------------------------------------- editing and walking the latent


def channel_shift(
    model: SpatialLatentModel,
    latents: np.ndarray | torch.Tensor,
    channel: int,
    delta: float,
    mask: np.ndarray | None = None,
) -> np.ndarray:
    """Decode latents (N, C, h, w) with δ added to one channel, everywhere or where ``mask`` (h, w) is True."""
    a = np.array(_tensor(latents).numpy(), np.float32)
    if not 0 <= channel < a.shape[1]:
        raise ValueError(f"channel {channel} is outside 0..{a.shape[1] - 1}")
    if mask is None:
        a[:, channel] += delta
    else:
        mask = np.asarray(mask, bool)
        if mask.shape != a.shape[2:]:
            raise ValueError(f"mask must be (h, w) = {a.shape[2:]}, got {mask.shape}")
        a[:, channel] += delta * mask
    return decode(model, a)


def interpolate_spatial(
    model: SpatialLatentModel,
    a_img: np.ndarray,
    b_img: np.ndarray,
    steps: int = 8,
    method: str = "linear",
) -> np.ndarray:
    """Images (steps, 3, H, W) from a_img to b_img (each (3, H, W) in [0, 1]).

    "linear" and "slerp" (on the flattened latent; see :func:`core.lenses.latent.slerp`) walk the
    latent and decode; "pixels" fades the images themselves, the baseline a latent path should beat.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    t = np.linspace(0.0, 1.0, steps)
    a, b = np.asarray(a_img, np.float32), np.asarray(b_img, np.float32)
    if method == "pixels":
        return lerp(a.reshape(-1), b.reshape(-1), t).reshape(steps, *a.shape)
    za, zb = encode(model, np.stack([a, b]))
    path = (lerp if method == "linear" else slerp)(za.reshape(-1), zb.reshape(-1), t)
    return decode(model, path.reshape(steps, *za.shape))


@dataclass
class NoiseRobustness:
    sigmas: np.ndarray  # (S,)
    images: np.ndarray  # (S, N, 3, H, W) decodes of latent + σ·ε
    psnr: np.ndarray  # (S, N) dB against the noiseless decode
    mean_psnr: np.ndarray  # (S,)


def noise_robustness(
    model: SpatialLatentModel,
    latents: np.ndarray | torch.Tensor,
    sigmas: list[float] | np.ndarray,
    seed: int = 0,
) -> NoiseRobustness:
    """Decode latents (N, C, h, w) + σ·ε for each σ (one ε ~ N(0, 1) for all σ, from ``seed``)."""
    a = np.asarray(_tensor(latents).numpy(), np.float32)
    sigmas = np.asarray(sigmas, np.float64)
    eps = np.random.default_rng(seed).standard_normal(a.shape).astype(np.float32)
    clean = decode(model, a)
    images = np.stack([decode(model, a + np.float32(s) * eps) for s in sigmas])
    scores = np.stack([psnr(clean, im) for im in images]) if len(sigmas) else np.zeros((0, len(a)))
    return NoiseRobustness(sigmas=sigmas, images=images, psnr=scores, mean_psnr=scores.mean(axis=1))


def pooled_codes(latents: np.ndarray | torch.Tensor, grid: int = 2) -> np.ndarray:
    """Flat codes (N, C·grid·grid) for the lenses that take vectors: each channel average-pooled to grid × grid."""
    t = _tensor(latents)
    if t.ndim != 4:
        raise ValueError(f"latents must be (N, C, h, w), got shape {tuple(t.shape)}")
    return F.adaptive_avg_pool2d(t, grid).flatten(1).numpy()


# ---------------------------------------------------------------- a set of images: map, neighbours, anomalies


@dataclass
class SetScan:
    """A set of images through the VAE, for the lenses that take flat codes.

    rec: the reconstruction of every image. codes: (N, C·grid²) pooled latents (:func:`pooled_codes`).
    plane: (N, 2) the codes' first two principal components; axis_labels name them with their share
    of the variance. error: (N,) mean squared reconstruction error per image, the anomaly score
    (an image unlike the VAE's training data comes back worse).
    """

    rec: Reconstruction
    codes: np.ndarray
    plane: np.ndarray
    axis_labels: tuple[str, str]
    error: np.ndarray

    def neighbours(self, row: int, k: int = 5) -> tuple[np.ndarray, np.ndarray]:
        """The k rows nearest to ``row`` by pooled code (Euclidean): (rows, distances), nearest first."""
        from core.lenses.neighbours import nearest

        return nearest(self.codes[row], self.codes, k, exclude=row)

    def most_anomalous(self, k: int = 5) -> np.ndarray:
        """The k rows with the largest reconstruction error, largest first."""
        return np.argsort(-self.error, kind="stable")[:k]


def scan_set(model: SpatialLatentModel, x: np.ndarray, *, grid: int = 2, progress: Progress | None = None) -> SetScan:
    """Reconstruct images x (N, 3, H, W) in [0, 1] (N ≥ 2) and lay their pooled codes out on a plane."""
    from core.lenses.projection import project

    if len(x) < 2:
        raise ValueError(f"a map needs at least 2 images, got {len(x)}")
    rec = reconstruction(model, x, progress=progress)
    codes = pooled_codes(rec.latents, grid)
    # PCA's three components need three images; fewer (or a 1-number code) are drawn on their own values
    plane = project(codes, "pca") if codes.shape[1] > 1 and len(codes) >= 3 else None
    flat = np.c_[codes[:, :2], np.zeros((len(codes), max(0, 2 - codes.shape[1])))]
    coords = plane.coords if plane is not None else flat
    labels = plane.axis_labels if plane is not None else ("pooled value 1", "pooled value 2")
    error = ((np.asarray(x, np.float32) - rec.recon) ** 2).reshape(len(x), -1).mean(1)
    return SetScan(rec=rec, codes=codes, plane=np.asarray(coords, np.float32), axis_labels=labels, error=error)
