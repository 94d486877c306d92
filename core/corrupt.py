"""Image corruptions for denoising: training a DAE and the denoising demos.

All take images (B, C, H, W) in [0, 1] and return a corrupted copy in [0, 1].
"""

from __future__ import annotations

import torch

CORRUPTIONS = ("gaussian", "salt-pepper", "masking", "occlusion")


def corrupt(x: torch.Tensor, kind: str, level: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """Corrupt a batch.

    kind:
        gaussian: add N(0, level²) noise, clip to [0, 1] (level = σ in pixel units).
        salt-pepper: a fraction ``level`` of pixels set to 0 or 1 with equal odds.
        masking: a fraction ``level`` of pixels set to 0 (Vincent et al. 2010 use 0.25-0.5).
        occlusion: a square block covering a fraction ``level`` of the image set to 0,
            at a random place per image.
    """
    if kind not in CORRUPTIONS:
        raise ValueError(f"unknown corruption {kind!r}; choose one of {CORRUPTIONS}")
    level = float(level)
    limit = 5.0 if kind == "gaussian" else 1.0
    if not 0.0 <= level <= limit:
        raise ValueError(f"{kind} level must be in [0, {limit:g}], got {level}")
    if level == 0:
        return x.clone()

    def rand(*shape: int) -> torch.Tensor:
        return torch.rand(*shape, generator=generator, device=x.device, dtype=x.dtype)

    if kind == "gaussian":
        noise = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        return (x + level * noise).clamp(0, 1)
    if kind == "salt-pepper":
        u = rand(*x.shape)
        out = x.clone()
        out[u < level / 2] = 0.0
        out[(u >= level / 2) & (u < level)] = 1.0
        return out
    if kind == "masking":
        return x * (rand(*x.shape) >= level).to(x.dtype)
    # occlusion: one square block of area ≈ level · H · W per image
    b, _, h, w = x.shape
    side_h = max(1, min(h, round((level * h * w) ** 0.5)))
    side_w = max(1, min(w, round(level * h * w / side_h)))
    top = (rand(b) * (h - side_h + 1)).long()
    left = (rand(b) * (w - side_w + 1)).long()
    rows = torch.arange(h, device=x.device)
    cols = torch.arange(w, device=x.device)
    in_rows = (rows[None] >= top[:, None]) & (rows[None] < (top + side_h)[:, None])  # (B, H)
    in_cols = (cols[None] >= left[:, None]) & (cols[None] < (left + side_w)[:, None])  # (B, W)
    block = (in_rows[:, :, None] & in_cols[:, None, :])[:, None]  # (B, 1, H, W)
    return x.masked_fill(block, 0.0)
