"""Sprites: a colour data set of 2-D shapes drawn from code, with every generative factor known.

Why it exists: a VAE's latent space can only be checked for *disentanglement* on data whose true
factors of variation are known. β-VAE (Higgins et al., 2017) was introduced together with such
data, and dSprites (Matthey et al., 2017) made it the standard: white shapes on black, one image
per combination of shape, scale, rotation and position. This is dSprites with colour: a filled
square, ellipse or triangle of a saturated hue on black. It feeds the colour demo and the
disentanglement scores (MIG, DCI), which compare latent codes with :data:`FACTOR_NAMES`. Nothing
is downloaded or read from disk and there is no licence to carry: the images are rendered here.

Factors, one row of a (N, 6) float array in the order of :data:`FACTOR_NAMES`:

- ``shape``: 0 square, 1 ellipse (axes 2:1), 2 equilateral triangle (see :data:`SHAPE_NAMES`).
- ``hue``: HSV hue in [0, 1), taken modulo 1 (0 red, 1/3 green, 2/3 blue); saturation and value 1.
- ``scale``: in (0, 1]; the radius of the circle around the sprite is ``scale * 0.2 * size``
  (the square has half-side ``r / √2``, the ellipse semi-axes ``r`` and ``r / 2``, the triangle
  circumradius ``r``), so at scale 1 a sprite spans at most 0.4 of the frame.
- ``x``, ``y``: in [0, 1], the centre's place across its free range, which is the middle half of
  the frame, ``[0.25, 0.75] * size`` (``y`` grows downwards, like image rows). The range leaves
  room for the largest sprite at every rotation, so no sprite touches the border (for size ≥ 20
  the outermost rows and columns stay black) and position does not depend on scale.
- ``rotation``: radians, counter-clockwise as seen on screen; any real number is drawn.

Sampling uses a grid, like dSprites (:data:`FACTORS` lists it): 3 shapes × 6 hues (the primary
and secondary colours, k/6) × 6 scales (0.5 to 1) × 16 x × 16 y × 10 rotations (k·9°, in
[0, π/2)): 276,480 distinct images. Rotations stay below 90° because the square repeats every 90°,
the triangle every 120° and the ellipse every 180°: on this range every level of every factor
gives a different image, so each factor can be read back from the pixels (hue, rotation and the
square's orientation are circular: 81° is close to 0°). In grey (``colour=False``) hue does not
reach the image; score disentanglement there on the other five factors.

Images: (N, 3, size, size) float32 in [0, 1] ((N, 1, size, size) in grey, the sprite white).
Edges are anti-aliased: a pixel's coverage is ``clip(0.5 - d, 0, 1)`` with ``d`` the signed
distance in pixels from its centre to the outline (exact along straight edges, a close
approximation at corners and on the ellipse); vectorised numpy in batches, about a second per
20,000 images at 64 × 64 on two cores.

Determinism: :func:`sample_factors` draws ``n`` distinct grid cells from
``np.random.default_rng(seed)``; :func:`generate` takes its training set from the front of that
seed's permutation of the grid and its test set from the back, so the two never share an image,
the training set does not depend on ``n_test`` and the test set does not depend on ``n_train``.
Rendering is a function of the factors alone: ``render(s.train_factors) == s.train_x`` exactly.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

from core.data.factor_grid import FactorGrid, FactorSpec, GeneratedSet

FACTOR_NAMES: tuple[str, ...] = ("shape", "hue", "scale", "x", "y", "rotation")
SHAPE_NAMES: tuple[str, ...] = ("square", "ellipse", "triangle")

RADIUS = 0.2  # the circle around a sprite of scale 1, as a fraction of the frame side
CENTRE_LOW, CENTRE_HIGH = 0.25, 0.75  # the centre's free range, as fractions of the frame side
_BATCH = 256  # images rendered at once: a few (256, 64, 64) float32 arrays, about 4 MB each


FACTORS: tuple[FactorSpec, ...] = (
    FactorSpec("shape", "categorical", 0, len(SHAPE_NAMES) - 1, len(SHAPE_NAMES)),
    FactorSpec("hue", "continuous", 0.0, 1.0, 6, circular=True),
    FactorSpec("scale", "continuous", 0.5, 1.0, 6),
    FactorSpec("x", "continuous", 0.0, 1.0, 16),
    FactorSpec("y", "continuous", 0.0, 1.0, 16),
    FactorSpec("rotation", "continuous", 0.0, math.pi / 2, 10, circular=True),
)
GRID = FactorGrid(FACTORS)
GRID_SIZE = GRID.size  # 276,480 distinct images


def from_levels(levels: np.ndarray) -> np.ndarray:
    """Grid levels (N, 6) int -> factors (N, 6) float64, ready for :func:`render`."""
    return GRID.from_levels(levels)


def to_levels(factors: np.ndarray) -> np.ndarray:
    """Factors (N, 6) -> the nearest grid level of each, (N, 6) int64: discrete labels for scores."""
    return GRID.nearest_levels(_checked(factors))


def sample_factors(n: int, seed: int) -> np.ndarray:
    """``n`` distinct grid cells drawn from ``np.random.default_rng(seed)``: factors (n, 6) float64.

    The first ``n`` cells of that seed's permutation of the grid, so a smaller ``n`` gives a prefix.
    """
    return GRID.sample(n, seed)


def render(factors: np.ndarray, size: int = 64, colour: bool = True) -> np.ndarray:
    """Factors (N, 6) -> images (N, 3, size, size) float32 in [0, 1]; (N, 1, size, size) in grey."""
    factors = _checked(factors)
    if int(size) != size or size < 8:
        raise ValueError(f"size must be an integer of at least 8, got {size}")
    size = int(size)
    out = np.zeros((len(factors), 3 if colour else 1, size, size), dtype=np.float32)
    for start in range(0, len(factors), _BATCH):
        rows = factors[start : start + _BATCH]
        cover = _coverage(rows, size)
        if colour:
            np.multiply(cover[:, None], _hue_rgb(rows[:, 1])[:, :, None, None], out=out[start : start + len(rows)])
        else:
            out[start : start + len(rows), 0] = cover
    return out


@dataclass(frozen=True)
class SpriteSet(GeneratedSet):
    """The sprites' training and test sets: images (N, C, size, size), factors (N, 6); grey or colour."""

    colour: bool


def generate(
    n_train: int = 20_000, n_test: int = 2_000, seed: int = 0, size: int = 64, colour: bool = True
) -> SpriteSet:
    """The training set (the front of ``seed``'s permutation of the grid) and the test set (its back).

    Cached per process: the same arguments give the same read-only arrays without rendering again.
    At the defaults the images take about 1.1 GB (float32, colour).
    """
    return _generate(
        GRID.count(n_train, "n_train"), GRID.count(n_test, "n_test", low=0), int(seed), int(size), bool(colour)
    )


@functools.lru_cache(maxsize=1)  # one set of 20k colour images is ~1 GB of float32
def _generate(n_train: int, n_test: int, seed: int, size: int, colour: bool) -> SpriteSet:
    if n_train + n_test > GRID_SIZE:
        raise ValueError(f"n_train + n_test must be at most {GRID_SIZE:,} (the grid's size)")
    train_factors, test_factors = GRID.split(n_train, n_test, seed)
    arrays = (
        render(train_factors, size, colour),
        train_factors,
        render(test_factors, size, colour),
        test_factors,
    )
    for array in arrays:
        array.setflags(write=False)
    return SpriteSet(*arrays, seed=seed, size=size, colour=colour)


# --- inside ---------------------------------------------------------------------------------------


def _checked(factors: np.ndarray) -> np.ndarray:
    factors = np.asarray(factors, dtype=np.float64)
    if factors.ndim != 2 or factors.shape[1] != len(FACTOR_NAMES):
        raise ValueError(f"factors must be (N, {len(FACTOR_NAMES)}) in the order {FACTOR_NAMES}, got {factors.shape}")
    if not np.all(np.isfinite(factors)):
        raise ValueError("factors must be finite")
    shape, scale, xy = factors[:, 0], factors[:, 2], factors[:, 3:5]
    if np.any((shape != np.rint(shape)) | (shape < 0) | (shape >= len(SHAPE_NAMES))):
        raise ValueError(f"shape must be an index from 0 to {len(SHAPE_NAMES) - 1} ({', '.join(SHAPE_NAMES)})")
    if np.any((scale <= 0) | (scale > 1)):
        raise ValueError("scale must be in (0, 1]")
    if np.any((xy < 0) | (xy > 1)):
        raise ValueError("x and y must be in [0, 1]")
    return factors


def _hue_rgb(hue: np.ndarray) -> np.ndarray:
    """HSV (hue, 1, 1) -> RGB (N, 3) float32."""
    h6 = 6.0 * np.mod(hue, 1.0)
    rgb = np.stack([np.abs(h6 - 3) - 1, 2 - np.abs(h6 - 2), 2 - np.abs(h6 - 4)], axis=1)
    return np.clip(rgb, 0.0, 1.0).astype(np.float32)


def _coverage(factors: np.ndarray, size: int) -> np.ndarray:
    """The fraction of each pixel the sprite covers, (B, size, size) float32."""
    cover = np.empty((len(factors), size, size), dtype=np.float32)
    centres = np.arange(size, dtype=np.float64) + 0.5  # pixel centres, in pixels
    free = CENTRE_HIGH - CENTRE_LOW
    for shape in range(len(SHAPE_NAMES)):
        which = np.flatnonzero(factors[:, 0] == shape)
        if which.size == 0:
            continue
        f = factors[which]
        r = (RADIUS * size) * f[:, 2]
        cx = size * (CENTRE_LOW + free * f[:, 3])
        cy = size * (CENTRE_LOW + free * f[:, 4])
        dx = centres[None, :] - cx[:, None]  # (b, size): along a row
        dy = cy[:, None] - centres[None, :]  # (b, size): up a column (screen y runs down)
        cover[which] = _SHAPES[shape](dx, dy, f[:, 5], r)
    np.clip(0.5 - cover, 0.0, 1.0, out=cover)
    return cover


def _turned(angle: np.ndarray, by: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """cos and sin of ``angle + by``, per sprite with Python's math rather than numpy's vector
    trig, so that an image's bits do not depend on how its batch was cut."""
    return np.array([math.cos(t + by) for t in angle]), np.array([math.sin(t + by) for t in angle])


def _axis(dx: np.ndarray, dy: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a * dx + b * dy`` over the grid, (B, size, size) float32: a coordinate of the sprite's frame."""
    along = (a[:, None] * dx).astype(np.float32)[:, None, :]
    up = (b[:, None] * dy).astype(np.float32)[:, :, None]
    return along + up


def _square(dx, dy, angle, r):
    cos, sin = _turned(angle)
    u = np.abs(_axis(dx, dy, cos, sin))
    v = np.abs(_axis(dx, dy, -sin, cos))
    d = np.maximum(u, v, out=u)
    return d - (r / math.sqrt(2)).astype(np.float32)[:, None, None]


def _ellipse(dx, dy, angle, r):
    # Semi-axes a = r and b = r/2; d ≈ (k0 - 1) k0 / k1 with k0 = |p / (a, b)|, k1 = |p / (a², b²)|.
    cos, sin = _turned(angle)
    b = r / 2
    p = _axis(dx, dy, cos / r, sin / r)  # u / a
    q = _axis(dx, dy, -sin / b, cos / b)  # v / b
    k0 = np.sqrt(p * p + q * q)
    p /= r.astype(np.float32)[:, None, None]
    q /= b.astype(np.float32)[:, None, None]
    k1 = np.sqrt(p * p + q * q)
    np.maximum(k1, 1e-6, out=k1)
    return (k0 - 1) * k0 / k1


def _triangle(dx, dy, angle, r):
    # Pointing up at rotation 0; the edges' outward normals point at -90°, 30° and 150°, each edge
    # r/2 (the inradius) from the centre: d = the largest distance beyond an edge.
    d = None
    for normal in (-math.pi / 2, math.pi / 6, 5 * math.pi / 6):
        side = _axis(dx, dy, *_turned(angle, normal))
        d = side if d is None else np.maximum(d, side, out=d)
    return d - (r / 2).astype(np.float32)[:, None, None]


_SHAPES = (_square, _ellipse, _triangle)
