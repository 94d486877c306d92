"""The latent space: encode a data set, project it, traverse it, interpolate and sample.

Everything takes a model and numpy arrays and returns numpy arrays (images (N, C, H, W)
float32 in [0, 1], codes (N, z) float32) and small dataclasses; pages draw them.
Nothing here changes the model (cached models are shared between sessions), and nothing
needs gradients, so decoding runs under ``torch.inference_mode``.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from core.models.evaluate import encode_dataset, unit_activity
from core.models.losses import gaussian_kl_per_dim
from core.models.protocol import LatentModel

Labels = np.ndarray | torch.Tensor | int | None

# ---------------------------------------------------------------- encoding and projection


@dataclass
class LatentCodes:
    """A data set's codes.

    mu: (N, z) posterior means (the code itself for an AE).
    logvar: (N, z) posterior log-variances, or None for an AE.
    labels: (N,) int64 class labels for colouring, or None.
    """

    mu: np.ndarray
    logvar: np.ndarray | None
    labels: np.ndarray | None

    @property
    def latent_dim(self) -> int:
        return self.mu.shape[1]

    @property
    def spread(self) -> np.ndarray:
        """(z,) standard deviation of each dimension's mean across the data (traversal units)."""
        return dimension_spread(self.mu)


def encode_codes(
    model: LatentModel, x: np.ndarray | torch.Tensor, y: np.ndarray | None = None, batch_size: int = 1000
) -> LatentCodes:
    """Encode images x (N, C, H, W) in [0, 1]; ``y`` (N,) labels are kept for colouring
    (and fed to the encoder of a conditional VAE)."""
    mu, logvar = encode_dataset(model, x, y, batch_size=batch_size)
    labels = None if y is None else np.asarray(y).astype(np.int64)
    return LatentCodes(
        mu=mu.astype(np.float32), logvar=None if logvar is None else logvar.astype(np.float32), labels=labels
    )


@dataclass
class Projection:
    """Codes mapped to 2-D or 3-D for a scatter plot.

    coords: (N, k) the projected points.
    method: "pca" or "axes" (the raw latent axes, when the code has at most k dimensions).
    axis_labels: k strings for the plot's axes, e.g. "PC1 (41.2%)" or "z0".
    explained_variance_ratio: (k,) fraction of the codes' variance along each axis (1.0 in
        total for raw axes).
    explained_variance: (k,) variance along each axis, in code units squared.
    mean: (z,) and components: (k, z): code = mean + coords @ components, so a point in the
        plot maps back to a code on the projection's plane (``to_codes``). (Click-to-decode on
        the map decodes the clicked image's own code, not this plane's point.)
    """

    coords: np.ndarray
    method: str
    axis_labels: list[str]
    explained_variance_ratio: np.ndarray
    explained_variance: np.ndarray
    mean: np.ndarray
    components: np.ndarray

    def to_codes(self, coords: np.ndarray) -> np.ndarray:
        """Points (M, k) in the plot's coordinates -> codes (M, z) on the projection's plane."""
        coords = np.atleast_2d(np.asarray(coords, dtype=np.float32))
        return (self.mean + coords @ self.components).astype(np.float32)


def project(mu: np.ndarray, n_components: int = 2, seed: int = 0) -> Projection:
    """Project codes mu (N, z) to ``n_components`` (2 or 3) dimensions.

    A code with at most ``n_components`` dimensions is shown on its raw axes (for latent
    size 2 the plot is the latent space itself); otherwise PCA (scikit-learn) finds the
    plane of largest variance. ``coords`` then has min(z, n_components) columns.
    """
    mu = np.asarray(mu, dtype=np.float32)
    if mu.ndim != 2 or len(mu) == 0:
        raise ValueError(f"codes must be a non-empty (N, z) array, got shape {mu.shape}")
    if n_components not in (2, 3):
        raise ValueError(f"project to 2 or 3 dimensions, not {n_components}")
    z = mu.shape[1]
    if z <= n_components:
        var = mu.var(axis=0, ddof=1) if len(mu) > 1 else np.zeros(z, np.float32)
        total = var.sum()
        return Projection(
            coords=mu.copy(),
            method="axes",
            axis_labels=[f"z{i}" for i in range(z)],
            explained_variance_ratio=var / total if total > 0 else np.full(z, 1.0 / z),
            explained_variance=var,
            mean=np.zeros(z, np.float32),
            components=np.eye(z, dtype=np.float32),
        )
    if len(mu) < n_components:
        raise ValueError(f"PCA to {n_components} dimensions needs at least {n_components} codes, got {len(mu)}")
    from sklearn.decomposition import PCA  # imported here: training workers never need it

    pca = PCA(n_components=n_components, random_state=seed).fit(mu)
    ratio = pca.explained_variance_ratio_.astype(np.float32)
    return Projection(
        coords=pca.transform(mu).astype(np.float32),
        method="pca",
        axis_labels=[f"PC{i + 1} ({100 * r:.1f}%)" for i, r in enumerate(ratio)],
        explained_variance_ratio=ratio,
        explained_variance=pca.explained_variance_.astype(np.float32),
        mean=pca.mean_.astype(np.float32),
        components=pca.components_.astype(np.float32),
    )


# ---------------------------------------------------------------- decoding


def _labels_tensor(y: Labels, n: int, device: torch.device) -> torch.Tensor | None:
    if y is None:
        return None
    t = torch.as_tensor(np.asarray(y), device=device).long().reshape(-1)
    return t.expand(n) if t.numel() == 1 and n > 1 else t


@torch.inference_mode()
def decode(model: LatentModel, z: np.ndarray | torch.Tensor, y: Labels = None, batch_size: int = 1000) -> np.ndarray:
    """Codes z (B, z) (or one code (z,)) -> images (B, C, H, W) float32 in [0, 1].

    The decoder has no dropout or batch norm, so train/eval mode does not matter and the
    model is left as it is. ``y``: labels (B,) or one int for a conditional VAE.
    """
    device = model.device
    z = torch.as_tensor(np.asarray(z, dtype=np.float32) if not isinstance(z, torch.Tensor) else z).float()
    z = z.reshape(1, -1) if z.ndim == 1 else z
    if z.shape[1] != model.latent_dim:
        raise ValueError(f"codes have {z.shape[1]} dimensions, the model's latent size is {model.latent_dim}")
    yt = _labels_tensor(y, len(z), device)
    out = []
    for start in range(0, len(z), batch_size):
        yb = yt[start : start + batch_size] if yt is not None else None
        out.append(model.decode(z[start : start + batch_size].to(device), yb).cpu())
    if not out:
        c, h, w = model.image_shape
        return np.zeros((0, c, h, w), np.float32)
    return torch.cat(out).numpy()


@torch.inference_mode()
def reconstruct(
    model: LatentModel, x: np.ndarray | torch.Tensor, y: Labels = None, batch_size: int = 1000
) -> np.ndarray:
    """Images x (N, C, H, W) -> reconstructions through the code mean, (N, C, H, W) in [0, 1] (a gated
    AE's passes its input through where its gate trusts it: :meth:`AutoEncoder.output_logits`)."""
    device = model.device
    x = torch.as_tensor(x).float()
    yt = _labels_tensor(y, len(x), device) if model.conditional else None
    gated = getattr(getattr(model, "config", None), "input_gate", False)
    out = []
    for start in range(0, len(x), batch_size):
        yb = yt[start : start + batch_size] if yt is not None else None
        xb = x[start : start + batch_size].to(device)
        out.append((model.reconstruct(xb, yb) if gated else model.decode(model.encode(xb, yb)[0], yb)).cpu())
    return torch.cat(out).numpy() if out else np.zeros_like(np.asarray(x))


# ---------------------------------------------------------------- dimensions and traversals


@dataclass(frozen=True)
class TypicalInputs:
    """What a model's own test images look like, to tell whether another input is of their kind.

    errors: (n,) sorted per-image reconstruction errors (mean squared error per pixel, images in
        [0, 1]) of n test images; ink: (n,) sorted mean pixel values of the same images; grey: (n,)
        sorted shares of their pixels in mid-grey (0.2 to 0.8): digits are ink on black, a photo is not.
    q: the share of test images left outside at each end of the typical range.
    """

    errors: np.ndarray
    ink: np.ndarray
    grey: np.ndarray
    q: float = 0.005

    def span(self, values: np.ndarray) -> tuple[float, float]:
        return float(np.quantile(values, self.q)), float(np.quantile(values, 1 - self.q))


def grey_share(x: np.ndarray) -> np.ndarray:
    """(N,) share of each image's pixels in mid-grey, 0.2 to 0.8, for images x (N, C, H, W) in [0, 1]."""
    x = np.asarray(x).reshape(len(x), -1)
    return ((x > 0.2) & (x < 0.8)).mean(1)


def recon_errors(model: LatentModel, x: np.ndarray, y: Labels = None) -> np.ndarray:
    """(N,) mean squared error per pixel between images x (N, C, H, W) in [0, 1] and their reconstructions."""
    x = np.asarray(x, np.float32)
    return ((reconstruct(model, x, y) - x) ** 2).reshape(len(x), -1).mean(1)


def typical_inputs(model: LatentModel, x: np.ndarray, y: Labels = None, n: int = 500, seed: int = 0) -> TypicalInputs:
    """Measure ``n`` of the model's test images x (N, C, H, W) (a fixed random subset)."""
    rows = np.sort(np.random.default_rng(seed).permutation(len(x))[:n])
    y = None if y is None else np.asarray(y)[rows]
    sample = np.asarray(x, np.float32)[rows]
    errors, ink = recon_errors(model, sample, y), sample.reshape(len(rows), -1).mean(1)
    return TypicalInputs(np.sort(errors), np.sort(ink), np.sort(grey_share(sample)))


@dataclass(frozen=True)
class InputCheck:
    """One input against :class:`TypicalInputs`: its error, ink and grey share, the share of test
    images reconstructed better than it, and the reasons (in words) it looks unlike them; none: typical."""

    error: float
    ink: float
    grey: float
    worse_than: float
    reasons: tuple[str, ...]

    @property
    def typical(self) -> bool:
        return not self.reasons


def check_input(model: LatentModel, x: np.ndarray, typical: TypicalInputs, y: Labels = None) -> InputCheck:
    """Is image x (C, H, W) in [0, 1] of the kind the model was trained on? Three simple, honest
    tests against its test images: the reconstruction error (a model rebuilds its own kind of
    picture well), the mean brightness and the share of mid-grey pixels (a photo on a digits
    model), each outside the test images' central 99 % (q = 0.5 % at each end) being a reason.
    Not a classifier: a typical result is no proof, a flag a strong hint."""
    x = np.asarray(x, np.float32)[None]
    error = float(recon_errors(model, x, None if y is None else np.atleast_1d(y))[0])
    ink, grey = float(x.mean()), float(grey_share(x)[0])
    worse_than = float(np.searchsorted(typical.errors, error) / len(typical.errors))
    reasons = []
    lo, hi = typical.span(typical.errors)
    if error > hi:
        reasons.append(
            f"the model rebuilds it worse than {100 * worse_than:.1f}% of its test images "
            f"(error {error:.3f} per pixel; test images {lo:.3f} to {hi:.3f})"
        )
    lo, hi = typical.span(typical.ink)
    if not lo <= ink <= hi:
        reasons.append(f"its mean brightness {ink:.2f} is outside the test images' {lo:.2f} to {hi:.2f}")
    lo, hi = typical.span(typical.grey)
    if not lo <= grey <= hi:
        reasons.append(
            f"{100 * grey:.0f}% of its pixels are mid-grey, against {100 * lo:.0f}% to {100 * hi:.0f}% "
            "in the test images"
        )
    return InputCheck(error, ink, grey, worse_than, tuple(reasons))


def dimension_spread(mu: np.ndarray) -> np.ndarray:
    """(z,) standard deviation of each code dimension across the data set (ddof=1)."""
    return np.sqrt(unit_activity(np.asarray(mu, dtype=np.float64))).astype(np.float32)


@dataclass
class CodeRange:
    """Where a model's codes live, per dimension, for sliders and grids; each field (z,).

    centre, spread: the middle and the unit of a dimension (a VAE: the prior's 0 and 1; a plain
    AE: the mean and standard deviation of its codes over the data, since nothing pulled them
    to N(0, I)). lo, hi, step: a slider over centre ± 4 spreads, rounded for display.
    """

    centre: np.ndarray
    spread: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    step: np.ndarray

    def clip(self, z: np.ndarray) -> np.ndarray:
        return np.clip(z, self.lo, self.hi)


def code_range(latent_dim: int, variational: bool, mu: np.ndarray | None = None) -> CodeRange:
    """The :class:`CodeRange` of a model with ``latent_dim`` dimensions. A VAE's is the prior's,
    ±4 in steps of 0.05; a plain AE's comes from its codes mu (N, z) over the data, or, without
    data, a guess of spread 2.5 around 0."""
    z = latent_dim
    if variational:
        centre, spread = np.zeros(z, np.float32), np.ones(z, np.float32)
        return CodeRange(centre, spread, np.full(z, -4.0), np.full(z, 4.0), np.full(z, 0.05))
    if mu is not None:
        centre, spread = np.asarray(mu).mean(0), np.maximum(dimension_spread(mu), 1e-3)
    else:
        centre, spread = np.zeros(z, np.float32), np.full(z, 2.5, np.float32)
    half = np.ceil(4 * spread * 10) / 10
    lo, hi = np.round(centre - half, 1), np.round(centre + half, 1)
    return CodeRange(centre, spread, lo, hi, np.maximum(np.round(half / 40, 2), 0.01))


@dataclass
class DimensionRanking:
    """Latent dimensions ordered by how much they matter.

    order: (z,) dimension indices, most important first.
    kl: (z,) mean KL(q(z_u|x) || N(0, 1)) per dimension in nats, or None for an AE.
    activity: (z,) Cov_x(E_q[z_u]), the variance of the mean across the data (Burda et al.).
    by: "kl" or "activity", what ``order`` sorts by.
    """

    order: np.ndarray
    kl: np.ndarray | None
    activity: np.ndarray
    by: str


def rank_dimensions(mu: np.ndarray, logvar: np.ndarray | None = None) -> DimensionRanking:
    """Rank dimensions by mean KL (a VAE: the nats a dimension carries) or, for an AE, by
    activity, so a slider page can show the dimensions that matter first."""
    mu = np.asarray(mu, dtype=np.float32)
    activity = unit_activity(mu.astype(np.float64)).astype(np.float32)
    kl = None
    if logvar is not None:
        kl = gaussian_kl_per_dim(torch.from_numpy(mu), torch.from_numpy(np.asarray(logvar, np.float32)))
        kl = kl.mean(0).numpy()
    key = kl if kl is not None else activity
    # Stable sort on the negated key: ties keep their index order.
    order = np.argsort(-key, kind="stable")
    return DimensionRanking(order=order, kl=kl, activity=activity, by="kl" if kl is not None else "activity")


@dataclass
class Traversal:
    """One dimension varied around a base code.

    dim: the dimension. offsets: (S,) in units of the dimension's spread (e.g. -3 .. 3).
    values: (S,) the dimension's value in code units. codes: (S, z). images: (S, C, H, W).
    """

    dim: int
    offsets: np.ndarray
    values: np.ndarray
    codes: np.ndarray
    images: np.ndarray


def traverse(
    model: LatentModel,
    base: np.ndarray,
    dim: int,
    spread: np.ndarray | float = 1.0,
    span: float = 3.0,
    steps: int = 9,
    y: Labels = None,
) -> Traversal:
    """Vary dimension ``dim`` of the code ``base`` (z,) from -span to +span spreads.

    spread: (z,) per-dimension spread across the data (``dimension_spread``) or a scalar;
        1.0 means prior units for a VAE.
    """
    base = np.asarray(base, dtype=np.float32).reshape(-1)
    if not 0 <= dim < base.size:
        raise ValueError(f"dimension {dim} is out of range for a {base.size}-dimensional code")
    if steps < 1:
        raise ValueError(f"a traversal needs at least one step, got {steps}")
    s = float(np.broadcast_to(np.asarray(spread, np.float32), base.shape)[dim])
    offsets = np.linspace(-span, span, steps, dtype=np.float32)
    codes = np.repeat(base[None], steps, axis=0)
    codes[:, dim] = base[dim] + offsets * s
    return Traversal(dim=dim, offsets=offsets, values=codes[:, dim].copy(), codes=codes, images=decode(model, codes, y))


def traversal_grid(
    model: LatentModel,
    base: np.ndarray,
    dims: Sequence[int],
    spread: np.ndarray | float = 1.0,
    span: float = 3.0,
    steps: int = 9,
    y: Labels = None,
) -> np.ndarray:
    """Traverse several dimensions in one decoder call: images (len(dims), steps, C, H, W)."""
    base = np.asarray(base, dtype=np.float32).reshape(-1)
    spread = np.broadcast_to(np.asarray(spread, np.float32), base.shape)
    offsets = np.linspace(-span, span, steps, dtype=np.float32)
    codes = np.repeat(base[None, None], len(dims), axis=0).repeat(steps, axis=1)  # (D, S, z)
    for row, d in enumerate(dims):
        codes[row, :, d] = base[d] + offsets * spread[d]
    images = decode(model, codes.reshape(-1, base.size), y)
    return images.reshape(len(dims), steps, *images.shape[1:])


# ---------------------------------------------------------------- interpolation


def lerp(a: np.ndarray, b: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Straight line: a, b (z,), t (S,) in [0, 1] -> (S, z)."""
    t = np.asarray(t, dtype=np.float64)[:, None]
    return ((1 - t) * np.asarray(a, np.float64) + t * np.asarray(b, np.float64)).astype(np.float32)


def slerp(a: np.ndarray, b: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Spherical interpolation: a, b (z,), t (S,) in [0, 1] -> (S, z).

    The direction moves along the great circle from a to b (Shoemake 1985; White 2016 for
    generative models) and the norm goes linearly from |a| to |b|, so no point falls into
    the low-density middle of a Gaussian that a straight line crosses: every norm stays
    between the endpoints' norms. Parallel endpoints fall back to a straight line.
    """
    a64, b64 = np.asarray(a, np.float64).reshape(-1), np.asarray(b, np.float64).reshape(-1)
    t = np.asarray(t, dtype=np.float64)
    na, nb = np.linalg.norm(a64), np.linalg.norm(b64)
    if na < 1e-12 or nb < 1e-12:
        return lerp(a64, b64, t)
    ua, ub = a64 / na, b64 / nb
    omega = np.arccos(np.clip(ua @ ub, -1.0, 1.0))
    if omega < 1e-6:
        return lerp(a64, b64, t)
    if np.pi - omega < 1e-6:
        # Antipodal: every great circle joins them; pick one through a fixed perpendicular.
        helper = np.zeros_like(ua)
        helper[np.argmin(np.abs(ua))] = 1.0
        perp = helper - (helper @ ua) * ua
        perp /= np.linalg.norm(perp)
        angle = t[:, None] * np.pi
        direction = np.cos(angle) * ua + np.sin(angle) * perp
    else:
        s = np.sin(omega)
        direction = (np.sin((1 - t) * omega)[:, None] * ua + np.sin(t * omega)[:, None] * ub) / s
    direction /= np.linalg.norm(direction, axis=1, keepdims=True)
    norms = (1 - t) * na + t * nb
    return (direction * norms[:, None]).astype(np.float32)


def example_rows(labels: np.ndarray | None, n_total: int, k: int) -> np.ndarray:
    """``k`` distinct rows (k,) of a set of ``n_total`` images to show as examples: across the
    classes where there are labels (the first image of each class in class order, then the
    second of each, …), else spread evenly over the set (rows (i + ½)·n/k). Never "the first
    k items": a split may be sorted by label or be consecutive video frames. Fewer than ``k``
    when the set is smaller."""
    k = max(0, min(k, n_total))
    if labels is None:
        return np.unique(((np.arange(k) + 0.5) * n_total / max(k, 1)).astype(np.int64))
    labels = np.asarray(labels)[:n_total]
    members = [np.flatnonzero(labels == c) for c in np.unique(labels)]
    rounds = max((len(m) for m in members), default=0)
    order = [m[i] for i in range(rounds) for m in members if i < len(m)]
    return np.asarray(order[:k], np.int64)


INTERPOLATIONS = ("linear", "slerp", "pixel")


@dataclass
class Interpolation:
    """A path from image a to image b.

    t: (S,) positions in [0, 1]. codes: (S, z), or None for pixel blending.
    images: (S, C, H, W) in [0, 1]; the first and last are the reconstructions of a and b
    for a latent path, the inputs themselves for pixel blending.
    """

    method: str
    t: np.ndarray
    codes: np.ndarray | None
    images: np.ndarray


def interpolate(
    model: LatentModel,
    x_a: np.ndarray,
    x_b: np.ndarray,
    steps: int = 10,
    method: str = "linear",
    y_a: int | None = None,
    y_b: int | None = None,
) -> Interpolation:
    """Interpolate between two images x_a, x_b (C, H, W) in ``steps`` steps (≥ 2).

    method: "linear" or "slerp" between the code means (any AE or VAE), or "pixel" for a
        plain cross-fade of the two images, the contrast that shows what a latent path adds.
    y_a, y_b: labels for a conditional VAE; the decoder's label switches at the midpoint
        (labels are discrete).
    """
    if method not in INTERPOLATIONS:
        raise ValueError(f"unknown interpolation {method!r}; choose one of {INTERPOLATIONS}")
    if steps < 2:
        raise ValueError(f"an interpolation needs at least 2 steps, got {steps}")
    x_a, x_b = np.asarray(x_a, np.float32), np.asarray(x_b, np.float32)
    if x_a.shape != x_b.shape or x_a.ndim != 3:
        raise ValueError(f"two images (C, H, W) of the same shape are needed, got {x_a.shape} and {x_b.shape}")
    t = np.linspace(0.0, 1.0, steps, dtype=np.float32)
    if method == "pixel":
        images = (1 - t)[:, None, None, None] * x_a + t[:, None, None, None] * x_b
        return Interpolation(method=method, t=t, codes=None, images=images.astype(np.float32))
    conditional = model.conditional
    if conditional and (y_a is None or y_b is None):
        raise ValueError("a conditional VAE needs the labels of both images")
    mu, _ = encode_dataset(model, np.stack([x_a, x_b]), np.array([y_a, y_b]) if conditional else None)
    path = lerp if method == "linear" else slerp
    codes = path(mu[0], mu[1], t)
    labels = np.where(t < 0.5, y_a, y_b) if conditional else None
    return Interpolation(method=method, t=t, codes=codes, images=decode(model, codes, labels))


def gif_bytes(images: np.ndarray, duration_ms: int = 120, scale: int = 4, boomerang: bool = True) -> bytes:
    """An animated GIF of a sequence of images (S, C, H, W) in [0, 1], looping forever.

    scale: integer upscaling (nearest neighbour) so a 28×28 digit is visible.
    boomerang: play forward then back, so the loop has no jump.
    """
    frames = to_uint8(images)  # (S, H, W) or (S, H, W, 3)
    if len(frames) == 0:
        raise ValueError("no images to animate")
    if boomerang and len(frames) > 2:
        frames = np.concatenate([frames, frames[-2:0:-1]])
    pil = [Image.fromarray(f) for f in frames]
    if scale > 1:
        pil = [p.resize((p.width * scale, p.height * scale), Image.Resampling.NEAREST) for p in pil]
    buf = io.BytesIO()
    pil[0].save(buf, format="GIF", save_all=True, append_images=pil[1:], duration=duration_ms, loop=0)
    return buf.getvalue()


# ---------------------------------------------------------------- sampling and grids


def sample_prior(
    model: LatentModel, n: int, temperature: float = 1.0, seed: int = 0, y: Labels = None
) -> tuple[np.ndarray, np.ndarray]:
    """Decode n codes z ~ N(0, temperature² I): returns (codes (n, z), images (n, C, H, W)).

    Temperature < 1 trades variety for cleaner samples. Seeded: same seed, same samples.
    """
    if n < 0 or not np.isfinite(temperature) or temperature < 0:
        raise ValueError(f"need n ≥ 0 and a temperature ≥ 0, got {n} and {temperature}")
    gen = torch.Generator().manual_seed(seed)
    codes = (torch.randn(n, model.latent_dim, generator=gen) * temperature).numpy()
    return codes, decode(model, codes, y)


@dataclass
class LatentGrid:
    """A grid of decoded codes: images (n, n, C, H, W), codes (n, n, z).

    Column j has value ``cols[j]`` along the first axis; row i has ``rows[i]`` along the
    second, highest at the top (row 0) as in a plot. ``axes`` names the two axes.
    """

    images: np.ndarray
    codes: np.ndarray
    cols: np.ndarray
    rows: np.ndarray
    axes: tuple[str, str]


def gaussian_quantiles(n: int) -> np.ndarray:
    """n values of the inverse normal CDF at evenly spaced probabilities (i + 0.5) / n.

    Kingma & Welling (2014), Fig. 4: a uniform grid on the unit square mapped through
    Φ⁻¹ covers the prior by equal probability mass, not equal distance.
    """
    if n < 1:
        raise ValueError(f"a grid needs at least one point per side, got {n}")
    from scipy.stats import norm  # imported here: scipy.stats takes a second to import

    return norm.ppf((np.arange(n) + 0.5) / n).astype(np.float32)


def _grid(
    model: LatentModel,
    origin: np.ndarray,
    axis_a: np.ndarray,
    axis_b: np.ndarray,
    n: int,
    names: tuple[str, str],
    y: Labels,
) -> LatentGrid:
    """Decode origin + q_j·axis_a + q_i·axis_b over Gaussian quantiles q: (n, n) images."""
    q = gaussian_quantiles(n)
    cols, rows = q, q[::-1].copy()
    codes = (origin + cols[None, :, None] * axis_a + rows[:, None, None] * axis_b).astype(np.float32)  # (n, n, z)
    images = decode(model, codes.reshape(n * n, -1), y)
    return LatentGrid(images=images.reshape(n, n, *images.shape[1:]), codes=codes, cols=cols, rows=rows, axes=names)


def manifold_grid(
    model: LatentModel,
    n: int = 15,
    dims: tuple[int, int] = (0, 1),
    base: np.ndarray | None = None,
    scale: np.ndarray | float = 1.0,
    center: np.ndarray | float = 0.0,
    y: Labels = None,
) -> LatentGrid:
    """The learned manifold over two code dimensions through the inverse normal CDF.

    For latent size 2 with the defaults this is Kingma & Welling's figure. For larger codes
    the other dimensions are held at ``base`` (default the prior mean, zeros) and the two
    chosen ones run over center + quantile × scale (per-dimension (z,) arrays or scalars).
    The defaults fit a VAE's N(0, I) prior; for an AE, whose codes do not follow it, pass
    the codes' mean and ``dimension_spread``.
    """
    z = model.latent_dim
    a, b = dims
    if a == b or not (0 <= a < z and 0 <= b < z):
        raise ValueError(f"choose two different dimensions in 0..{z - 1}, got {dims}")
    origin = np.zeros(z, np.float32) if base is None else np.asarray(base, np.float32).reshape(z).copy()
    scale = np.broadcast_to(np.asarray(scale, np.float32), (z,))
    center = np.broadcast_to(np.asarray(center, np.float32), (z,))
    origin[[a, b]] = center[[a, b]]
    axis_a = np.zeros(z, np.float32)
    axis_a[a] = scale[a]
    axis_b = np.zeros(z, np.float32)
    axis_b[b] = scale[b]
    return _grid(model, origin, axis_a, axis_b, n, (f"z{a}", f"z{b}"), y)


def readable_grid_size(
    image_shape: Sequence[int], width_px: int, min_tile: int = 48, padding: int = 2, most: int = 15, least: int = 3
) -> int:
    """Tiles per side of a square grid of images (C, H, W) shown ``width_px`` screen pixels wide
    so that each tile's short side is at least ``min_tile`` pixels: a 15×15 grid of 28×20 faces
    in a 440 px column gives 20 px tiles, too small to read from the back of a room. Clipped to
    [least, most]."""
    h, w = image_shape[-2:]
    tile_px = min_tile * (w + padding) / min(h, w)  # screen px one tile and its padding take, across
    return int(np.clip(width_px // tile_px, least, most))


def tile_scale(image_shape: Sequence[int], min_tile: int = 48) -> int:
    """Integer upscaling (crisp pixels) that makes an image's short side at least ``min_tile`` px."""
    return int(-(-min_tile // min(image_shape[-2:])))


def pca_grid(model: LatentModel, projection: Projection, n: int = 15, y: Labels = None) -> LatentGrid:
    """A manifold grid over the first two PCA axes of a data set's codes.

    Points are mean + q_i·sd_1·PC1 + q_j·sd_2·PC2 with q the Gaussian quantiles and sd the
    codes' standard deviation along each axis, so the grid covers where the data lie.
    """
    if projection.components.shape[0] < 2:
        raise ValueError("a PCA grid needs a projection with at least two axes")
    sd = np.sqrt(projection.explained_variance[:2]).astype(np.float32)
    axis_a = projection.components[0] * sd[0]
    axis_b = projection.components[1] * sd[1]
    names = (projection.axis_labels[0], projection.axis_labels[1])
    return _grid(model, projection.mean, axis_a, axis_b, n, names, y)


# ---------------------------------------------------------------- images for display


def to_uint8(images: np.ndarray) -> np.ndarray:
    """Images (N, C, H, W) in [0, 1] -> uint8 (N, H, W) for one channel, (N, H, W, C) otherwise."""
    images = np.asarray(images)
    u8 = (np.clip(images, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    return u8[:, 0] if u8.shape[1] == 1 else u8.transpose(0, 2, 3, 1)


def image_grid(images: np.ndarray, nrow: int | None = None, padding: int = 2, pad_value: float = 1.0) -> np.ndarray:
    """Tile images into one picture with torchvision's ``make_grid``.

    images: (N, C, H, W) in [0, 1], or (R, K, C, H, W) for R rows of K (then nrow = K).
    nrow: images per row (default: about square).
    Returns uint8 (H', W') for one channel or (H', W', 3) for colour.
    """
    from torchvision.utils import make_grid

    images = np.asarray(images, dtype=np.float32)
    if images.ndim == 5:
        nrow = images.shape[1]
        images = images.reshape(-1, *images.shape[2:])
    if images.ndim != 4 or len(images) == 0:
        raise ValueError(f"images must be a non-empty (N, C, H, W) or (R, K, C, H, W) array, got {images.shape}")
    nrow = nrow or int(np.ceil(np.sqrt(len(images))))
    grid = make_grid(torch.from_numpy(images), nrow=nrow, padding=padding, pad_value=pad_value)  # (3|C, H', W')
    channels = images.shape[1]
    grid = grid[:1] if channels == 1 else grid
    return to_uint8(grid[None].numpy())[0]


# ---------------------------------------------------------------- video


def can_write_mp4() -> bool:
    """True when imageio's ffmpeg plugin (the optional ``imageio-ffmpeg`` package) is installed."""
    import importlib.util

    return importlib.util.find_spec("imageio") is not None and importlib.util.find_spec("imageio_ffmpeg") is not None


def mp4_bytes(images: np.ndarray, fps: int = 8, scale: int = 4, boomerang: bool = True) -> bytes:
    """An H.264 MP4 of a sequence of images (S, C, H, W) in [0, 1] (slides play it where a GIF
    stutters); needs ``imageio-ffmpeg`` (:func:`can_write_mp4`), else RuntimeError.

    Frames are enlarged (nearest neighbour) and padded to even sizes, as H.264 requires.
    """
    if not can_write_mp4():
        raise RuntimeError("MP4 needs the imageio-ffmpeg package; GIF works without it")
    import imageio.v3 as iio

    frames = to_uint8(images)
    if len(frames) == 0:
        raise ValueError("no images to animate")
    if boomerang and len(frames) > 2:
        frames = np.concatenate([frames, frames[-2:0:-1]])
    frames = frames.repeat(scale, axis=1).repeat(scale, axis=2)
    pad = [(0, 0), (0, frames.shape[1] % 2), (0, frames.shape[2] % 2)] + [(0, 0)] * (frames.ndim - 3)
    frames = np.pad(frames, pad, mode="edge")
    if frames.ndim == 3:  # grey -> RGB: players expect colour video
        frames = np.repeat(frames[..., None], 3, axis=-1)
    return iio.imwrite("<bytes>", frames, extension=".mp4", fps=fps, codec="libx264", macro_block_size=1)
