"""The sprites data set: deterministic, its factors reproduce its images, and each factor does what
its name says."""

from __future__ import annotations

import math

import numpy as np
import pytest

from core.data import sprites
from core.data.sprites import FACTOR_NAMES, FACTORS, SHAPE_NAMES, generate, render, sample_factors

SHAPE, HUE, SCALE, X, Y, ROTATION = range(6)


def one(shape=0, hue=0.0, scale=1.0, x=0.5, y=0.5, rotation=0.0) -> np.ndarray:
    return np.array([[shape, hue, scale, x, y, rotation]], dtype=np.float64)


def rows(**varying) -> np.ndarray:
    """One factor row per value of the one varying factor, the others at :func:`one`'s defaults."""
    ((name, values),) = varying.items()
    return np.concatenate([one(**{name: v}) for v in values])


def centre_of_mass(images: np.ndarray) -> np.ndarray:
    """(N, C, H, W) -> (N, 2): the (column, row) of each image's brightness centre, in pixels."""
    mass = images.sum(axis=1)
    grid = np.arange(mass.shape[-1]) + 0.5
    total = mass.sum(axis=(1, 2))
    return np.stack([(mass.sum(axis=1) * grid).sum(1) / total, (mass.sum(axis=2) * grid).sum(1) / total], axis=1)


@pytest.fixture(scope="module")
def small():
    return generate(n_train=300, n_test=100, seed=7)


# --- the contract ---------------------------------------------------------------------------------


def test_the_factors_are_named_and_gridded():
    assert FACTOR_NAMES == ("shape", "hue", "scale", "x", "y", "rotation")
    assert SHAPE_NAMES == ("square", "ellipse", "triangle")
    assert tuple(f.name for f in FACTORS) == FACTOR_NAMES
    assert tuple(f.values for f in FACTORS) == (3, 6, 6, 16, 16, 10)
    assert sprites.GRID_SIZE == 276_480
    np.testing.assert_allclose(FACTORS[HUE].levels(), np.arange(6) / 6)
    np.testing.assert_allclose(FACTORS[SCALE].levels(), [0.5, 0.6, 0.7, 0.8, 0.9, 1.0])
    np.testing.assert_allclose(FACTORS[ROTATION].levels(), np.radians(np.arange(10) * 9.0))
    assert FACTORS[ROTATION].levels().max() < math.pi / 2


def test_shapes_dtypes_and_ranges(small):
    assert small.train_x.shape == (300, 3, 64, 64) and small.test_x.shape == (100, 3, 64, 64)
    assert small.train_x.dtype == np.float32
    assert small.train_factors.shape == (300, 6) and small.test_factors.shape == (100, 6)
    assert small.train_x.min() == 0.0 and small.train_x.max() == 1.0
    assert small.train_y.dtype == np.int64 and set(small.train_y) == {0, 1, 2}
    np.testing.assert_array_equal(small.test_y, small.test_factors[:, SHAPE])
    grey = generate(n_train=20, n_test=5, seed=7, size=32, colour=False)
    assert grey.train_x.shape == (20, 1, 32, 32) and grey.test_x.shape == (5, 1, 32, 32)
    assert grey.train_x.dtype == np.float32 and grey.train_x.min() >= 0.0 and grey.train_x.max() <= 1.0
    # Grey is the colour image's brightest channel: a white sprite of the same coverage.
    np.testing.assert_array_equal(grey.train_x[:, 0], render(grey.train_factors, size=32).max(axis=1))


def test_sampled_factors_lie_on_the_grid_and_are_distinct():
    f = sample_factors(2000, seed=1)
    assert f.shape == (2000, 6) and f.dtype == np.float64
    for k, spec in enumerate(FACTORS):
        assert np.isin(f[:, k], spec.levels()).all(), spec.name
        assert len(np.unique(f[:, k])) == spec.values, spec.name  # 2000 draws reach every level
    assert len(np.unique(f, axis=0)) == 2000
    levels = sprites.to_levels(f)
    np.testing.assert_array_equal(sprites.from_levels(levels), f)
    assert levels.max(axis=0).tolist() == [2, 5, 5, 15, 15, 9]


# --- determinism ----------------------------------------------------------------------------------


def test_the_same_seed_gives_the_same_bytes(small):
    sprites._generate.cache_clear()
    again = generate(n_train=300, n_test=100, seed=7)
    assert again is not small
    assert again.train_x.tobytes() == small.train_x.tobytes()
    assert again.test_x.tobytes() == small.test_x.tobytes()
    np.testing.assert_array_equal(sample_factors(300, seed=7), small.train_factors)
    # The training set is the front of the seed's order and the test set its back.
    other = generate(n_train=200, n_test=50, seed=7)
    np.testing.assert_array_equal(other.train_x, small.train_x[:200])
    np.testing.assert_array_equal(other.test_x, small.test_x[-50:])


def test_different_seeds_differ(small):
    other = generate(n_train=300, n_test=100, seed=8)
    assert not np.array_equal(other.train_factors, small.train_factors)
    assert not np.array_equal(other.train_x, small.train_x)
    assert (sample_factors(50, 0) != sample_factors(50, 1)).any(axis=1).mean() > 0.9


def test_train_and_test_share_no_image(small):
    train = {f.tobytes() for f in small.train_factors}
    assert not any(f.tobytes() in train for f in small.test_factors)
    flat_train = small.train_x.reshape(300, -1)
    flat_test = small.test_x.reshape(100, -1)
    # The closest pair of images across the split still differs in many pixels.
    distances = (flat_test**2).sum(1)[:, None] + (flat_train**2).sum(1)[None, :] - 2 * flat_test @ flat_train.T
    assert distances.min() > 1.0


def test_the_factors_reproduce_the_images(small):
    np.testing.assert_array_equal(render(small.train_factors[:40]), small.train_x[:40])
    np.testing.assert_array_equal(render(small.test_factors[17:29]), small.test_x[17:29])
    # One image alone or in a batch of 300 renders to the same bits.
    np.testing.assert_array_equal(render(small.train_factors[123:124]), small.train_x[123:124])


def test_the_cache_returns_read_only_arrays():
    first = generate(n_train=30, n_test=10, seed=3)
    assert generate(30, 10, 3) is first  # however the arguments are spelled
    for array in (first.train_x, first.train_factors, first.test_x, first.test_factors):
        with pytest.raises(ValueError, match="read-only"):
            array[0] = 0


# --- each factor does what it says ----------------------------------------------------------------


def test_x_moves_the_sprite_right_and_y_moves_it_down():
    positions = np.linspace(0, 1, 16)
    for shape in range(3):
        across = rows(x=positions)
        across[:, SHAPE] = shape
        com = centre_of_mass(render(across))
        assert (np.diff(com[:, 0]) > 0).all() and np.ptp(com[:, 1]) < 0.05
        down = rows(y=positions)
        down[:, SHAPE] = shape
        com = centre_of_mass(render(down))
        assert (np.diff(com[:, 1]) > 0).all() and np.ptp(com[:, 0]) < 0.05
    # The centre runs over the middle half of the frame: pixels 16 to 48 of 64.
    corners = np.concatenate([one(x=0, y=0), one(x=1, y=1, shape=1)])
    np.testing.assert_allclose(centre_of_mass(render(corners)), [[16, 16], [48, 48]], atol=0.05)


def test_a_larger_scale_lights_more_pixels_and_the_areas_are_right():
    scales = np.linspace(0.5, 1.0, 6)
    for shape in range(3):
        grown = rows(scale=scales)
        grown[:, SHAPE] = shape
        images = render(grown)
        assert (np.diff(images.sum(axis=(1, 2, 3))) > 0).all()
        lit = (images[:, 0] > 0).sum(axis=(1, 2))
        assert (np.diff(lit) >= 0).all() and lit[-1] > 2 * lit[0]
    r = 0.2 * 64  # the circle around a sprite of scale 1, in pixels
    areas = [2 * r * r, math.pi / 2 * r * r, 3 * math.sqrt(3) / 4 * r * r]  # square, ellipse, triangle
    shapes = np.concatenate([one(shape=k, rotation=0.3) for k in range(3)])
    np.testing.assert_allclose(render(shapes)[:, 0].sum(axis=(1, 2)), areas, rtol=0.01)


def test_hue_picks_the_colour():
    images = render(rows(hue=[0.0, 1 / 3, 2 / 3, 1.0]))
    lit = images.sum(axis=(2, 3))  # (4, 3): each channel's brightness
    assert lit[0].argmax() == 0 and lit[1].argmax() == 1 and lit[2].argmax() == 2
    for k, channel in enumerate((0, 1, 2)):
        others = [c for c in range(3) if c != channel]
        assert lit[k, others].max() < 1e-3 * lit[k, channel]  # a pure primary
    np.testing.assert_array_equal(images[3], images[0])  # hue is circular
    yellow = render(one(hue=1 / 6))[0].sum(axis=(1, 2))
    np.testing.assert_allclose(yellow[1], yellow[0], rtol=1e-6)
    assert yellow[2] == 0


def test_rotation_turns_the_sprite():
    for shape in range(3):
        turned = rows(rotation=[0.0, 0.0, math.pi / 8])
        turned[:, SHAPE] = shape
        images = render(turned)
        np.testing.assert_array_equal(images[0], images[1])
        assert np.abs(images[2] - images[0]).sum() > 20, SHAPE_NAMES[shape]
        # Turning keeps the area and the centre.
        np.testing.assert_allclose(images[2].sum(), images[0].sum(), rtol=0.01)
        np.testing.assert_allclose(centre_of_mass(images[2:]), centre_of_mass(images[:1]), atol=0.05)
    # The square repeats every 90°, the ellipse every 180°, the triangle every 120°.
    for shape, period in ((0, math.pi / 2), (1, math.pi), (2, 2 * math.pi / 3)):
        pair = rows(rotation=[0.3, 0.3 + period])
        pair[:, SHAPE] = shape
        a, b = render(pair)
        np.testing.assert_allclose(a, b, atol=1e-4)


def test_every_rotation_level_gives_a_different_image():
    for shape in range(3):
        turned = rows(rotation=FACTORS[ROTATION].levels())
        turned[:, SHAPE] = shape
        flat = render(turned).reshape(10, -1)
        gaps = np.abs(flat[:, None] - flat[None]).sum(-1) + np.eye(10) * 1e9
        assert gaps.min() > 5, SHAPE_NAMES[shape]


def test_the_shapes_differ():
    images = render(np.concatenate([one(shape=k) for k in range(3)])).reshape(3, -1)
    for a in range(3):
        for b in range(a + 1, 3):
            assert np.abs(images[a] - images[b]).sum() > 50


@pytest.mark.parametrize("size", [64, 32])
def test_the_sprite_never_leaves_the_frame(size):
    corners = [(0, 0), (0, 1), (1, 0), (1, 1)]
    angles = np.linspace(0, math.pi, 13)
    factors = np.array([[s, 0.0, 1.0, x, y, a] for s in range(3) for x, y in corners for a in angles])
    images = render(factors, size=size)
    border = np.concatenate([images[..., 0, :], images[..., -1, :], images[..., :, 0], images[..., :, -1]], axis=-1)
    assert border.max() == 0.0
    assert images.sum(axis=(1, 2, 3)).min() > 0.05 * size * size  # and the sprite is there


# --- bad input ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("factors", "match"),
    [
        (np.zeros((2, 5)), "factors must be"),
        (one(shape=3), "shape must be"),
        (one(shape=0.5), "shape must be"),
        (one(scale=0), "scale must be"),
        (one(scale=1.5), "scale must be"),
        (one(x=-0.1), "x and y"),
        (one(y=1.01), "x and y"),
        (one(rotation=math.nan), "finite"),
    ],
)
def test_render_refuses_bad_factors(factors, match):
    with pytest.raises(ValueError, match=match):
        render(factors)


def test_generate_refuses_bad_sizes():
    with pytest.raises(ValueError, match="n_train"):
        generate(n_train=0)
    with pytest.raises(ValueError, match="at most"):
        generate(n_train=sprites.GRID_SIZE, n_test=1)
    with pytest.raises(ValueError, match="size"):
        render(one(), size=4)
