"""3-D Shapes: a colour data set of a room corner with one object in it, ray-cast from code, every
generative factor known.

Why it exists: disentanglement is checked on data whose true factors of variation are known
(β-VAE, Higgins et al., 2017; Burgess et al., 2018, "Understanding disentangling in β-VAE").
:mod:`core.data.sprites` gives the flat 2-D case; this is its 3-D sibling, after DeepMind's 3dshapes
(Burgess & Kim, 2018): a floor, the walls of a room behind it and one object standing on the floor
in the middle, seen by a camera that circles the object. Here colour, perspective, shading and
occlusion carry the factors, as in natural images. Nothing is downloaded or read from disk and there
is no licence to carry: the images are rendered here, with numpy alone. The contract is the one of
:mod:`core.data.sprites` (``sample_factors``, ``render``, ``generate``, ``to_levels`` / ``from_levels``).

Factors, one row of a (N, 6) float array in the order of :data:`FACTOR_NAMES` (3dshapes' order):

- ``floor_hue``, ``wall_hue``, ``object_hue``: HSV hue in [0, 1), taken modulo 1 (0 red, 1/3
  green, 2/3 blue), saturation :data:`SATURATION` and value 1; light and shade scale the value.
- ``scale``: the object's size, 1 the nominal one (:data:`OBJECT_RADIUS` world units); any value in
  [0.5, 1.5] renders, the grid uses 0.75 to 1.25.
- ``shape``: 0 cube, 1 cylinder, 2 sphere, 3 capsule (see :data:`SHAPE_NAMES`), all standing on the
  floor at the origin; the cube's faces are aligned with the room's walls.
- ``orientation``: degrees; the camera circles the vertical axis through the object by this angle
  (positive moves it to the right), so the object stays in the middle of the frame while the walls,
  the corners where they meet, the floor's edge lines, the object's shadow and the cube's visible
  faces move. Any value in [-45, 45] renders, the grid uses -30 to 30.

Grid, like 3dshapes (:data:`FACTORS` lists it): 10 floor hues × 10 wall hues × 10 object hues
(each k/10) × 8 scales (0.75 to 1.25) × 4 shapes × 15 orientations (-30° to 30° in steps of
30/7°): 480,000 distinct images.

Rendering: a pinhole camera (field of view 2·atan(:data:`TAN_HALF_FOV`)) casts 2 × 2 rays per pixel
(supersampling for anti-aliased edges). Each ray meets the floor (y = 0), the back wall or a side
wall (planes) and the object (analytic ray-box, ray-cylinder with its lid, ray-sphere, and a capsule
as a cylinder with two hemispheres); the nearest hit wins. A hit is shaded ``AMBIENT + DIFFUSE ·
max(0, n · l)`` for a fixed directional light ``l``, and floor and walls lie in the object's shadow
where a ray towards the light meets it. The geometry depends on (shape, scale, orientation) alone,
so it is cast once per distinct triple in a call and gives three weight maps (floor, wall, object:
the mean shade of the sub-rays that hit each); an image is their sum, each times its surface's RGB.
Vectorised numpy: about 3 s for 11,000 images at 64 × 64 on two busy cores.

Images: (N, 3, size, size) float32 in [0, 1].

Determinism: :func:`sample_factors` draws ``n`` distinct grid cells from
``np.random.default_rng(seed)``; :func:`generate` takes its training set from the front of that
seed's permutation of the grid and its test set from the back, so the two never share an image,
the training set does not depend on ``n_test`` and the test set does not depend on ``n_train``.
Rendering is a function of the factors alone: per-image trigonometry uses Python's math, per-pixel
work only elementwise IEEE operations, so an image's bits do not depend on its batch and
``render(s.train_factors) == s.train_x`` exactly.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from core.data.factor_grid import FactorGrid, FactorSpec, GeneratedSet

FACTOR_NAMES: tuple[str, ...] = ("floor_hue", "wall_hue", "object_hue", "scale", "shape", "orientation")
SHAPE_NAMES: tuple[str, ...] = ("cube", "cylinder", "sphere", "capsule")
FLOOR_HUE, WALL_HUE, OBJECT_HUE, SCALE, SHAPE, ORIENTATION = range(6)

SCALE_RANGE = (0.5, 1.5)  # what render accepts; the grid is inside it
ORIENTATION_RANGE = (-45.0, 45.0)  # degrees, likewise

# The scene, in world units: y up, the object at the origin, the camera at orientation 0 on -z.
OBJECT_RADIUS = 1.0  # the object's size at scale 1 (a sphere's radius)
BACK_WALL_Z = 3.5  # the back wall is the plane z = 3.5, the side walls x = ±4
SIDE_WALL_X = 4.0
CAMERA_DISTANCE = 6.0  # from the vertical axis through the object
CAMERA_HEIGHT = 2.6
TARGET_HEIGHT = 0.9  # the camera looks at (0, 0.9, 0)
TAN_HALF_FOV = 0.5  # a field of view of about 53°
LIGHT = (-0.35, 1.0, -0.55)  # towards the light (normalised below): above, in front, to the left
AMBIENT, DIFFUSE = 0.35, 0.65
SATURATION = 0.8
_SUBSAMPLES = 2  # 2 × 2 rays per pixel
_CHUNK_RAYS = 1 << 18  # rays cast at once: a few dozen float64 arrays of 2 MB
_BATCH = 256  # images composed at once


FACTORS: tuple[FactorSpec, ...] = (
    FactorSpec("floor_hue", "continuous", 0.0, 1.0, 10, circular=True),
    FactorSpec("wall_hue", "continuous", 0.0, 1.0, 10, circular=True),
    FactorSpec("object_hue", "continuous", 0.0, 1.0, 10, circular=True),
    FactorSpec("scale", "continuous", 0.75, 1.25, 8),
    FactorSpec("shape", "categorical", 0, len(SHAPE_NAMES) - 1, len(SHAPE_NAMES)),
    FactorSpec("orientation", "continuous", -30.0, 30.0, 15),
)
GRID = FactorGrid(FACTORS)
GRID_SIZE = GRID.size  # 480,000 distinct images


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


def render(factors: np.ndarray, size: int = 64) -> np.ndarray:
    """Factors (N, 6) -> images (N, 3, size, size) float32 in [0, 1]."""
    factors = _checked(factors)
    if int(size) != size or size < 8:
        raise ValueError(f"size must be an integer of at least 8, got {size}")
    size = int(size)
    scenes, which = np.unique(factors[:, [SHAPE, SCALE, ORIENTATION]], axis=0, return_inverse=True)
    weights = _weights(scenes, size)  # (S, 3, size, size): floor, wall, object
    colours = np.stack([_hue_rgb(factors[:, k]) for k in (FLOOR_HUE, WALL_HUE, OBJECT_HUE)], axis=1)  # (N, 3, 3)
    out = np.empty((len(factors), 3, size, size), dtype=np.float32)
    for start in range(0, len(factors), _BATCH):
        w = weights[which[start : start + _BATCH]][:, :, None]  # (B, surface, 1, size, size)
        c = colours[start : start + _BATCH, :, :, None, None]  # (B, surface, channel, 1, 1)
        image = w[:, 0] * c[:, 0] + w[:, 1] * c[:, 1] + w[:, 2] * c[:, 2]
        np.minimum(image, 1.0, out=out[start : start + len(w)])
    return out


@dataclass(frozen=True)
class Shapes3DSet(GeneratedSet):
    """The 3-D scenes' training and test sets: images (N, 3, size, size), factors (N, 6)."""

    label_column: ClassVar[int] = SHAPE


def generate(n_train: int = 10_000, n_test: int = 1_000, seed: int = 0, size: int = 64) -> Shapes3DSet:
    """The training set (the front of ``seed``'s permutation of the grid) and the test set (its back).

    Cached per process: the same arguments give the same read-only arrays without rendering again.
    At the defaults the images take about 540 MB (float32).
    """
    return _generate(GRID.count(n_train, "n_train"), GRID.count(n_test, "n_test", low=0), int(seed), int(size))


@functools.lru_cache(maxsize=1)  # one set of 10k colour images is ~0.5 GB of float32
def _generate(n_train: int, n_test: int, seed: int, size: int) -> Shapes3DSet:
    if n_train + n_test > GRID_SIZE:
        raise ValueError(f"n_train + n_test must be at most {GRID_SIZE:,} (the grid's size)")
    train_factors, test_factors = GRID.split(n_train, n_test, seed)
    images = render(np.concatenate([train_factors, test_factors]), size)  # one pass: shared geometry
    arrays = (images[:n_train], train_factors, images[n_train:], test_factors)
    for array in arrays:
        array.setflags(write=False)
    return Shapes3DSet(*arrays, seed=seed, size=size)


# --- inside ---------------------------------------------------------------------------------------


def _checked(factors: np.ndarray) -> np.ndarray:
    factors = np.asarray(factors, dtype=np.float64)
    if factors.ndim != 2 or factors.shape[1] != len(FACTOR_NAMES):
        raise ValueError(f"factors must be (N, {len(FACTOR_NAMES)}) in the order {FACTOR_NAMES}, got {factors.shape}")
    if not np.all(np.isfinite(factors)):
        raise ValueError("factors must be finite")
    shape, scale, turn = factors[:, SHAPE], factors[:, SCALE], factors[:, ORIENTATION]
    if np.any((shape != np.rint(shape)) | (shape < 0) | (shape >= len(SHAPE_NAMES))):
        raise ValueError(f"shape must be an index from 0 to {len(SHAPE_NAMES) - 1} ({', '.join(SHAPE_NAMES)})")
    if np.any((scale < SCALE_RANGE[0]) | (scale > SCALE_RANGE[1])):
        raise ValueError(f"scale must be in [{SCALE_RANGE[0]}, {SCALE_RANGE[1]}]")
    if np.any((turn < ORIENTATION_RANGE[0]) | (turn > ORIENTATION_RANGE[1])):
        raise ValueError(f"orientation must be in [{ORIENTATION_RANGE[0]:g}, {ORIENTATION_RANGE[1]:g}] degrees")
    return factors


def _hue_rgb(hue: np.ndarray) -> np.ndarray:
    """HSV (hue, SATURATION, 1) -> RGB (N, 3) float32."""
    h6 = 6.0 * np.mod(hue, 1.0)
    pure = np.clip(np.stack([np.abs(h6 - 3) - 1, 2 - np.abs(h6 - 2), 2 - np.abs(h6 - 4)], axis=1), 0.0, 1.0)
    return (1.0 - SATURATION + SATURATION * pure).astype(np.float32)


# --- the ray caster: vectors are tuples (x, y, z) of arrays that broadcast, (scenes, 1) by (1, rays)


def _dot(a, b):
    return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]


def _normalised(v):
    length = np.sqrt(_dot(v, v))
    return (v[0] / length, v[1] / length, v[2] / length)


_LIGHT = tuple(c / math.sqrt(sum(k * k for k in LIGHT)) for c in LIGHT)
_EPS = 1e-9
_MISS = np.inf


def _weights(scenes: np.ndarray, size: int) -> np.ndarray:
    """Scenes (S, 3) of (shape, scale, orientation) -> weight maps (S, 3, size, size) float32:
    per pixel, the mean shade of its sub-rays that hit the floor, a wall and the object."""
    out = np.empty((len(scenes), 3, size, size), dtype=np.float32)
    per_chunk = max(1, _CHUNK_RAYS // (size * size * _SUBSAMPLES**2))
    for shape in range(len(SHAPE_NAMES)):
        rows = np.flatnonzero(scenes[:, 0] == shape)
        for start in range(0, len(rows), per_chunk):
            chunk = rows[start : start + per_chunk]
            out[chunk] = _cast(shape, scenes[chunk, 1], scenes[chunk, 2], size)
    return out


def _camera(orientation: np.ndarray, size: int):
    """The camera's centre and its rays' unit directions, one row per scene: (S, 1) and (S, size² · 4)."""
    n = size * _SUBSAMPLES
    steps = (np.arange(n, dtype=np.float64) + 0.5) / n * 2 - 1  # sub-pixel centres in (-1, 1)
    u = np.tile(steps, n)[None, :] * TAN_HALF_FOV  # across, row-major over the (n, n) sub-grid
    v = -np.repeat(steps, n)[None, :] * TAN_HALF_FOV  # up: row 0 is the top
    angles = [math.radians(t) for t in orientation]
    eye = [(CAMERA_DISTANCE * math.sin(a), CAMERA_HEIGHT, -CAMERA_DISTANCE * math.cos(a)) for a in angles]
    rows = []
    for x, y, z in eye:  # per scene, with Python's math: an image's bits do not depend on its batch
        f = (-x, TARGET_HEIGHT - y, -z)
        norm = math.sqrt(f[0] ** 2 + f[1] ** 2 + f[2] ** 2)
        f = (f[0] / norm, f[1] / norm, f[2] / norm)
        flat = math.sqrt(f[0] ** 2 + f[2] ** 2)
        right = (f[2] / flat, 0.0, -f[0] / flat)
        up = (f[1] * right[2] - f[2] * right[1], f[2] * right[0] - f[0] * right[2], f[0] * right[1] - f[1] * right[0])
        rows.append((*f, *right, *up))
    f, r, up = (tuple(np.array([row[3 * k + i] for row in rows])[:, None] for i in range(3)) for k in range(3))
    direction = _normalised(tuple(f[i] + u * r[i] + v * up[i] for i in range(3)))
    origin = tuple(np.array([e[i] for e in eye])[:, None] for i in range(3))
    return origin, direction


def _cast(shape: int, scale: np.ndarray, orientation: np.ndarray, size: int) -> np.ndarray:
    """Weight maps (S, 3, size, size) float32 of S scenes of one shape."""
    origin, d = _camera(orientation, size)
    radius = (OBJECT_RADIUS * scale)[:, None]
    t_obj, n_obj = _OBJECTS[shape](origin, d, radius)
    t_bg, n_bg, is_floor = _room(origin, d)
    hit = tuple(origin[i] + t_bg * d[i] for i in range(3))
    shadowed = np.isfinite(_OBJECTS[shape](hit, _LIGHT, radius)[0])
    shade_bg = AMBIENT + DIFFUSE * np.maximum(_dot(n_bg, _LIGHT), 0.0) * ~shadowed
    shade_obj = AMBIENT + DIFFUSE * np.maximum(_dot(n_obj, _LIGHT), 0.0)
    on_obj = t_obj < t_bg
    kinds = (~on_obj & is_floor, ~on_obj & ~is_floor, on_obj)
    maps = np.stack([np.where(k, shade_obj if j == 2 else shade_bg, 0.0) for j, k in enumerate(kinds)], axis=1)
    s, n = _SUBSAMPLES, size
    maps = maps.reshape(len(scale), 3, n, s, n, s)
    total = maps[:, :, :, 0, :, 0] + maps[:, :, :, 0, :, 1] + maps[:, :, :, 1, :, 0] + maps[:, :, :, 1, :, 1]
    return (total * (1.0 / s**2)).astype(np.float32)


def _room(o, d):
    """The nearest of the floor (y = 0), the back wall and the side walls: t, unit normal, is-floor."""
    with np.errstate(divide="ignore", invalid="ignore"):
        floor = np.where(d[1] < 0, -o[1] / d[1], _MISS)
        back = np.where(d[2] > 0, (BACK_WALL_Z - o[2]) / d[2], _MISS)
        side = np.where(d[0] > 0, (SIDE_WALL_X - o[0]) / d[0], np.where(d[0] < 0, (-SIDE_WALL_X - o[0]) / d[0], _MISS))
    is_floor = floor <= np.minimum(back, side)
    on_back = ~is_floor & (back <= side)
    on_side = ~is_floor & ~on_back
    t = np.where(is_floor, floor, np.where(on_back, back, side))
    zero = np.zeros_like(t)
    normal = (np.where(on_side, -np.sign(d[0]), zero), np.where(is_floor, 1.0, zero), np.where(on_back, -1.0, zero))
    return t, normal, is_floor


def _nearest(*hits):
    """The nearest of several (t, normal) hits, elementwise."""
    t, n = hits[0]
    for t2, n2 in hits[1:]:
        closer = t2 < t
        t = np.where(closer, t2, t)
        n = tuple(np.where(closer, b, a) for a, b in zip(n, n2, strict=True))
    return t, n


def _sphere(o, d, centre_y, r):
    """A sphere of radius r around (0, centre_y, 0); ``d`` unit. t is inf where the ray misses."""
    oc = (o[0], o[1] - centre_y, o[2])
    b = _dot(oc, d)
    disc = b * b - (_dot(oc, oc) - r * r)
    with np.errstate(invalid="ignore"):
        t = -b - np.sqrt(disc)
    t = np.where((disc >= 0) & (t > _EPS), t, _MISS)
    p = tuple(oc[i] + np.where(np.isfinite(t), t, 0.0) * d[i] for i in range(3))
    return t, (p[0] / r, p[1] / r, p[2] / r)


def _tube(o, d, r, y0, y1):
    """The side of an upright cylinder of radius r around the y axis, from height y0 to y1."""
    a = d[0] * d[0] + d[2] * d[2]
    b = o[0] * d[0] + o[2] * d[2]
    disc = b * b - a * (o[0] * o[0] + o[2] * o[2] - r * r)
    with np.errstate(invalid="ignore", divide="ignore"):
        t = (-b - np.sqrt(disc)) / a
    t = np.where((disc >= 0) & (a > 0), t, _MISS)
    y = o[1] + np.where(np.isfinite(t), t, 0.0) * d[1]
    t = np.where((t > _EPS) & (y >= y0) & (y <= y1), t, _MISS)
    safe = np.where(np.isfinite(t), t, 0.0)
    return t, ((o[0] + safe * d[0]) / r, np.zeros_like(t), (o[2] + safe * d[2]) / r)


def _lid(o, d, r, y):
    """The disc of radius r at height y around the y axis, facing up."""
    with np.errstate(invalid="ignore", divide="ignore"):
        t = (y - o[1]) / d[1]
    safe = np.where(np.isfinite(t), t, 0.0)
    x, z = o[0] + safe * d[0], o[2] + safe * d[2]
    t = np.where((t > _EPS) & (x * x + z * z <= r * r), t, _MISS)
    zero = np.zeros_like(t)
    return t, (zero, zero + 1.0, zero)


def _cube(o, d, r):
    """An axis-aligned cube of half-side 0.8 r standing on the floor (slabs)."""
    half = 0.8 * r
    low, high = (-half, 0.0 * half, -half), (half, 2 * half, half)
    with np.errstate(divide="ignore", invalid="ignore"):
        ts = [((low[i] - o[i]) / d[i], (high[i] - o[i]) / d[i]) for i in range(3)]
    near = [np.minimum(a, b) for a, b in ts]
    far = [np.maximum(a, b) for a, b in ts]
    t_in = np.maximum(np.maximum(near[0], near[1]), near[2])
    t_out = np.minimum(np.minimum(far[0], far[1]), far[2])
    t = np.where((t_in <= t_out) & (t_in > _EPS), t_in, _MISS)
    normal = tuple(np.where(t_in == near[i], -np.sign(d[i]), 0.0) * np.isfinite(t) for i in range(3))
    return t, normal


def _cylinder(o, d, r):
    """An upright cylinder of radius 0.8 r and height 1.6 r with its top lid."""
    return _nearest(_tube(o, d, 0.8 * r, 0.0, 1.6 * r), _lid(o, d, 0.8 * r, 1.6 * r))


def _ball(o, d, r):
    """A sphere of radius r resting on the floor."""
    return _sphere(o, d, r, r)


def _capsule(o, d, r):
    """An upright capsule: a cylinder of radius 0.6 r from height 0.6 r to 2 r, capped by hemispheres."""
    a, top = 0.6 * r, 2.0 * r
    return _nearest(_tube(o, d, a, a, top), _sphere(o, d, a, a), _sphere(o, d, top, a))


_OBJECTS = (_cube, _cylinder, _ball, _capsule)
