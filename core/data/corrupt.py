"""Image corruptions: one spec per kind, read by training (a denoising AE), the CLI, the
denoising page and its tests.

Adding a corruption is one function and one :class:`Corruption` entry in :data:`CORRUPTIONS`
below (plus its test): training validates levels against its ``limit``, the denoising page
builds its button, slider and chart from the spec, and links accept its name. The "mixed"
entry is for training only (``on_page=False``): every image gets one of the page's
corruptions at a random level, so one denoising AE learns them all.

Every corruption takes images (B, C, H, W) in [0, 1] and returns a corrupted copy in [0, 1].
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

Apply = Callable[[torch.Tensor, float, "_Uniform"], torch.Tensor]


@dataclass(frozen=True)
class Corruption:
    """One kind of corruption and how the app offers it.

    title / button: its name in a sentence heading and on a button. meaning: what ``level``
    measures, in words. limit: the largest level training and links accept (levels run from 0).
    low / high / step / default: the denoising page's slider. chart_levels: the levels of its
    PSNR-against-level chart. apply(x, level, rand): the corruption itself, for level > 0;
    ``rand(*shape)`` draws uniform numbers in [0, 1) from the caller's generator. on_page:
    whether the denoising page offers it (False: a training corruption only).
    """

    name: str
    title: str
    button: str
    meaning: str
    limit: float
    low: float
    high: float
    step: float
    default: float
    chart_levels: tuple[float, ...]
    apply: Apply
    on_page: bool = True


def _gaussian(x: torch.Tensor, level: float, rand) -> torch.Tensor:
    return (x + level * rand.normal(*x.shape)).clamp(0, 1)


def _salt_pepper(x: torch.Tensor, level: float, rand) -> torch.Tensor:
    u = rand(*x.shape)
    out = x.clone()
    out[u < level / 2] = 0.0
    out[(u >= level / 2) & (u < level)] = 1.0
    return out


def _masking(x: torch.Tensor, level: float, rand) -> torch.Tensor:
    return x * (rand(*x.shape) >= level).to(x.dtype)


def _occlusion(x: torch.Tensor, level, rand) -> torch.Tensor:
    """One black square block of area ≈ level · H · W per image, at a random place; ``level``
    a float or one per image (B,)."""
    b, _, h, w = x.shape
    area = torch.as_tensor(level, dtype=torch.float64).expand(b) * (h * w)
    side_h = area.sqrt().round().clamp(1, h)
    side_w = (area / side_h).round().clamp(1, w)
    side_h, side_w = side_h.long().to(x.device), side_w.long().to(x.device)
    top = (rand(b) * (h - side_h + 1)).long()
    left = (rand(b) * (w - side_w + 1)).long()
    rows = torch.arange(h, device=x.device)
    cols = torch.arange(w, device=x.device)
    in_rows = (rows[None] >= top[:, None]) & (rows[None] < (top + side_h)[:, None])  # (B, H)
    in_cols = (cols[None] >= left[:, None]) & (cols[None] < (left + side_w)[:, None])  # (B, W)
    block = (in_rows[:, :, None] & in_cols[:, None, :])[:, None]  # (B, 1, H, W)
    return x.masked_fill(block, 0.0)


MIXED_KINDS = ("gaussian", "salt-pepper", "masking", "occlusion")


def _mixed(x: torch.Tensor, level: float, rand) -> torch.Tensor:
    """Each image gets one of :data:`MIXED_KINDS`, drawn uniformly, at a level drawn uniformly
    from [0, level · that kind's page maximum] (level 1: the page slider's whole range)."""
    b = x.shape[0]
    pick = (rand(b) * len(MIXED_KINDS)).long().clamp(max=len(MIXED_KINDS) - 1)  # (B,)
    frac = rand(b) * level  # (B,), a fraction of each kind's slider range
    out = x.clone()
    for i, kind in enumerate(MIXED_KINDS):
        rows = (pick == i).nonzero().flatten()
        if len(rows):
            lv = frac[rows] * CORRUPTIONS[kind].high
            per_pixel = lv if kind == "occlusion" else lv[:, None, None, None]
            out[rows] = CORRUPTIONS[kind].apply(x[rows], per_pixel, rand)
    return out


CORRUPTIONS: dict[str, Corruption] = {
    c.name: c
    for c in (
        Corruption(
            "gaussian", "Gaussian noise", "Gaussian", "σ of the added noise, pixels in [0, 1]",
            limit=5.0, low=0.05, high=1.0, step=0.05, default=0.5, chart_levels=(0.1, 0.25, 0.5, 0.75, 1.0),
            apply=_gaussian,
        ),
        Corruption(
            "salt-pepper", "Salt and pepper", "Salt & pepper", "fraction of pixels set to black or white",
            limit=1.0, low=0.05, high=0.6, step=0.05, default=0.2, chart_levels=(0.05, 0.1, 0.2, 0.35, 0.5),
            apply=_salt_pepper,
        ),
        Corruption(
            # Vincent et al. (2010) mask 25-50 % of the pixels.
            "masking", "Masking", "Masking", "fraction of pixels set to black",
            limit=1.0, low=0.05, high=0.9, step=0.05, default=0.5, chart_levels=(0.1, 0.3, 0.5, 0.7, 0.9),
            apply=_masking,
        ),
        Corruption(
            "occlusion", "Occlusion", "Occlusion", "area of a black square, as a fraction",
            limit=1.0, low=0.05, high=0.5, step=0.05, default=0.25, chart_levels=(0.05, 0.15, 0.25, 0.35, 0.5),
            apply=_occlusion,
        ),
        Corruption(
            "mixed", "Mixed corruptions", "Mixed", "fraction of each corruption's slider range",
            limit=1.0, low=0.05, high=1.0, step=0.05, default=1.0, chart_levels=(0.25, 0.5, 0.75, 1.0),
            apply=_mixed, on_page=False,
        ),
    )
}  # fmt: skip


def get_corruption(kind: str) -> Corruption:
    """The spec of corruption ``kind``; ValueError naming the choices when there is none."""
    try:
        return CORRUPTIONS[kind]
    except (KeyError, TypeError):
        raise ValueError(f"unknown corruption {kind!r}; choose one of {tuple(CORRUPTIONS)}") from None


def check_level(kind: str, level: float) -> float:
    """``level`` as a float within [0, limit] of corruption ``kind``; ValueError otherwise."""
    spec = get_corruption(kind)
    level = float(level)
    if not 0.0 <= level <= spec.limit:
        raise ValueError(f"{kind} level must be in [0, {spec.limit:g}], got {level}")
    return level


class _Uniform:
    """``rand(*shape)``: uniform [0, 1) draws, and ``rand.normal(*shape)``, from one generator
    on the images' device and dtype, so a seed gives the same corruption everywhere."""

    def __init__(self, like: torch.Tensor, generator: torch.Generator | None):
        self.like, self.generator = like, generator

    def __call__(self, *shape: int) -> torch.Tensor:
        return torch.rand(*shape, generator=self.generator, device=self.like.device, dtype=self.like.dtype)

    def normal(self, *shape: int) -> torch.Tensor:
        return torch.randn(shape, generator=self.generator, device=self.like.device, dtype=self.like.dtype)


def corrupt(x: torch.Tensor, kind: str, level: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """Corrupt a batch x (B, C, H, W) in [0, 1] with corruption ``kind`` at ``level`` (its spec's
    ``meaning``); level 0 returns a copy. Raises ValueError for an unknown kind or level."""
    level = check_level(kind, level)
    if level == 0:
        return x.clone()
    return CORRUPTIONS[kind].apply(x, level, _Uniform(x, generator))
