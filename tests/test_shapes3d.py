"""The 3-D shapes data set: deterministic, its factors reproduce its images, and each factor does
what its name says (floor, wall and object hues colour their own surfaces; scale grows the object;
shape changes it; orientation moves the room around it)."""

from __future__ import annotations

import numpy as np
import pytest

from core.data import shapes3d
from core.data.shapes3d import FACTOR_NAMES, FACTORS, SHAPE_NAMES, generate, render, sample_factors

FLOOR_HUE, WALL_HUE, OBJECT_HUE, SCALE, SHAPE, ORIENTATION = range(6)


def one(floor_hue=0.0, wall_hue=0.5, object_hue=0.3, scale=1.0, shape=0, orientation=0.0) -> np.ndarray:
    return np.array([[floor_hue, wall_hue, object_hue, scale, shape, orientation]], dtype=np.float64)


def rows(name: str, values, **fixed) -> np.ndarray:
    """One factor row per value of factor ``name``, the others at ``fixed`` or :func:`one`'s defaults."""
    return np.concatenate([one(**fixed, **{name: v}) for v in values])


def changed(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(3, H, W) images -> (H, W) bool: the pixels whose colour differs."""
    return (a != b).any(axis=0)


@pytest.fixture(scope="module")
def small():
    return generate(n_train=300, n_test=100, seed=7)


# --- the contract ---------------------------------------------------------------------------------


def test_the_factors_are_named_and_gridded_like_3dshapes():
    assert FACTOR_NAMES == ("floor_hue", "wall_hue", "object_hue", "scale", "shape", "orientation")
    assert SHAPE_NAMES == ("cube", "cylinder", "sphere", "capsule")
    assert tuple(f.name for f in FACTORS) == FACTOR_NAMES
    assert tuple(f.values for f in FACTORS) == (10, 10, 10, 8, 4, 15)
    assert shapes3d.GRID_SIZE == 480_000
    for k in (FLOOR_HUE, WALL_HUE, OBJECT_HUE):
        np.testing.assert_allclose(FACTORS[k].levels(), np.arange(10) / 10)
    np.testing.assert_allclose(FACTORS[SCALE].levels(), np.linspace(0.75, 1.25, 8))
    np.testing.assert_allclose(FACTORS[SHAPE].levels(), [0, 1, 2, 3])
    np.testing.assert_allclose(FACTORS[ORIENTATION].levels(), np.linspace(-30, 30, 15))


def test_shapes_dtypes_and_ranges(small):
    assert small.train_x.shape == (300, 3, 64, 64) and small.test_x.shape == (100, 3, 64, 64)
    assert small.train_x.dtype == np.float32 and small.test_x.dtype == np.float32
    assert small.train_factors.shape == (300, 6) and small.test_factors.shape == (100, 6)
    assert small.train_x.min() >= 0.0 and small.train_x.max() <= 1.0
    assert small.train_x.max() > 0.9 and small.train_x.min() < 0.2  # lit faces and shade both occur
    assert small.train_y.dtype == np.int64 and set(small.train_y) == {0, 1, 2, 3}
    np.testing.assert_array_equal(small.test_y, small.test_factors[:, SHAPE])
    assert render(one(), size=32).shape == (1, 3, 32, 32)


def test_sampled_factors_lie_on_the_grid_and_are_distinct():
    f = sample_factors(2000, seed=1)
    assert f.shape == (2000, 6) and f.dtype == np.float64
    for k, spec in enumerate(FACTORS):
        assert np.isin(f[:, k], spec.levels()).all(), spec.name
        assert len(np.unique(f[:, k])) == spec.values, spec.name  # 2000 draws reach every level
    assert len(np.unique(f, axis=0)) == 2000
    levels = shapes3d.to_levels(f)
    np.testing.assert_array_equal(shapes3d.from_levels(levels), f)
    assert levels.max(axis=0).tolist() == [9, 9, 9, 7, 3, 14]
    # Off the grid: the nearest level; hues wrap round, the others stop at their ends.
    np.testing.assert_array_equal(
        shapes3d.to_levels(one(floor_hue=0.98, scale=1.03, orientation=-40)), [[0, 5, 3, 4, 0, 0]]
    )


# --- determinism ----------------------------------------------------------------------------------


def test_the_same_seed_gives_the_same_bytes(small):
    shapes3d._generate.cache_clear()
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
    assert not np.array_equal(sample_factors(300, seed=8), small.train_factors)
    assert (sample_factors(50, 0) != sample_factors(50, 1)).any(axis=1).mean() > 0.9


def test_train_and_test_share_no_image(small):
    train = {f.tobytes() for f in small.train_factors}
    assert not any(f.tobytes() in train for f in small.test_factors)
    flat_train = small.train_x.reshape(300, -1).astype(np.float64)
    flat_test = small.test_x.reshape(100, -1).astype(np.float64)
    # The closest pair of images across the split still differs in many pixels.
    distances = (flat_test**2).sum(1)[:, None] + (flat_train**2).sum(1)[None, :] - 2 * flat_test @ flat_train.T
    assert distances.min() > 1.0


def test_the_factors_reproduce_the_images(small):
    np.testing.assert_array_equal(render(small.train_factors[:40]), small.train_x[:40])
    np.testing.assert_array_equal(render(small.test_factors[17:29]), small.test_x[17:29])
    # One image alone, or beside others of the same geometry, renders to the same bits.
    np.testing.assert_array_equal(render(small.train_factors[123:124]), small.train_x[123:124])
    np.testing.assert_array_equal(render(small.test_factors[::-7])[::-1], small.test_x[::-7][::-1])


def test_the_cache_returns_read_only_arrays():
    first = generate(n_train=30, n_test=10, seed=3)
    assert generate(30, 10, 3) is first  # however the arguments are spelled
    for array in (first.train_x, first.train_factors, first.test_x, first.test_factors):
        with pytest.raises(ValueError, match="read-only"):
            array[0] = 0


# --- each factor does what it says ----------------------------------------------------------------


@pytest.mark.parametrize("factor", range(6), ids=FACTOR_NAMES)
def test_every_level_of_every_factor_gives_a_different_image(factor):
    name = FACTOR_NAMES[factor]
    levels = FACTORS[factor].levels()
    for fixed in ({"orientation": 0.0}, {"orientation": 30.0}) if factor == SHAPE else ({"shape": 0}, {"shape": 3}):
        images = render(rows(name, levels, **fixed))
        flat = images.reshape(len(levels), -1).astype(np.float64)
        gaps = np.abs(flat[:, None] - flat[None]).sum(-1) + np.eye(len(levels)) * 1e9
        assert gaps.min() > 5, (name, fixed)


def test_floor_hue_colours_the_floor_only():
    for shape in range(4):
        a, b = render(rows("floor_hue", [0.0, 0.6], shape=shape))
        diff = changed(a, b)
        assert not diff[:24].any()  # the top rows are wall at every orientation
        assert diff[48:].all()  # the bottom rows are floor
        assert not diff[36, 32]  # the object's middle keeps its colour
        # Only the hue moves: the floor's brightness is the same in both.
        np.testing.assert_allclose(a[:, 56:].max(0), b[:, 56:].max(0), rtol=1e-5)


def test_wall_hue_colours_the_walls_only():
    for shape in range(4):
        for turn in (-30.0, 0.0, 30.0):
            a, b = render(np.concatenate([one(shape=shape, orientation=turn, wall_hue=h) for h in (0.1, 0.7)]))
            diff = changed(a, b)
            assert diff[:6].all()  # the top rows are wall
            assert not diff[40:].any()  # the bottom rows are floor
            assert not diff[36, 32]


def test_object_hue_colours_the_object_in_the_middle_only():
    for shape in range(4):
        for scale in (0.75, 1.25):
            a, b = render(np.concatenate([one(shape=shape, scale=scale, object_hue=h) for h in (0.2, 0.9)]))
            diff = changed(a, b)
            assert diff[36, 32] and diff[36, 31]  # the centre
            assert not diff[:6].any() and not diff[48:].any()  # not the wall's top, not the near floor
            assert not diff[:, :16].any() and not diff[:, 48:].any()  # not the sides


def test_a_larger_scale_covers_more_pixels_for_every_shape():
    for shape in range(4):
        covered = []
        for scale in FACTORS[SCALE].levels():
            a, b = render(np.concatenate([one(shape=shape, scale=scale, object_hue=h) for h in (0.2, 0.9)]))
            covered.append(changed(a, b).sum())
        assert (np.diff(covered) > 0).all(), SHAPE_NAMES[shape]
        assert covered[-1] > 2 * covered[0], SHAPE_NAMES[shape]  # the area grows as scale²: 2.8×


def test_the_four_shapes_differ():
    for turn in (-30.0, 0.0, 30.0):
        images = render(np.concatenate([one(shape=k, orientation=turn) for k in range(4)]))
        flat = images.reshape(4, -1).astype(np.float64)
        for a in range(4):
            for b in range(a + 1, 4):
                assert np.abs(flat[a] - flat[b]).sum() > 50, (SHAPE_NAMES[a], SHAPE_NAMES[b], turn)


def test_orientation_moves_the_room_not_only_the_object():
    turns = FACTORS[ORIENTATION].levels()
    for shape in range(4):
        images = render(rows("orientation", turns, shape=shape))
        # Away from the object (the top rows and the side columns) every turn gives another layout.
        room = np.concatenate([images[:, :, :6].reshape(15, -1), images[:, :, :, :12].reshape(15, -1)], axis=1)
        gaps = np.abs(room[:, None].astype(np.float64) - room[None]).sum(-1) + np.eye(15) * 1e9
        assert gaps.min() > 5, SHAPE_NAMES[shape]
    # The cube shows another face when the camera turns: its middle changes, not only the room.
    a, b = render(rows("orientation", [-30.0, 30.0], shape=0))
    assert np.abs(a[:, 28:44, 24:40] - b[:, 28:44, 24:40]).sum() > 20


# --- bad input ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("factors", "match"),
    [
        (np.zeros((2, 5)), "factors must be"),
        (one(shape=4), "shape must be"),
        (one(shape=0.5), "shape must be"),
        (one(scale=0.2), "scale must be"),
        (one(scale=2), "scale must be"),
        (one(orientation=60), "orientation must be"),
        (one(wall_hue=np.nan), "finite"),
    ],
)
def test_render_refuses_bad_factors(factors, match):
    with pytest.raises(ValueError, match=match):
        render(factors)


def test_generate_refuses_bad_sizes():
    with pytest.raises(ValueError, match="n_train"):
        generate(n_train=0)
    with pytest.raises(ValueError, match="at most"):
        generate(n_train=shapes3d.GRID_SIZE, n_test=1)
    with pytest.raises(ValueError, match="size"):
        render(one(), size=4)
