"""core.lenses.directions and core.lenses.neighbours: latent arithmetic, its classifier-free check, entanglement,
and nearest neighbours by code and by pixels."""

from __future__ import annotations

import numpy as np
import pytest

from core.lenses import directions as dirs
from core.lenses.latent import encode_codes
from core.lenses.neighbours import distances, find_neighbours, nearest
from tests.conftest import ROOT


@pytest.fixture(scope="module")
def digits(mnist5k):
    """The shipped β = 1 MLP VAE (latent 20, trained on full MNIST) and the codes of the offline
    set's 10,000 test digits (the test app's one-epoch models cluster too loosely for arithmetic)."""
    from core.formats.checkpoints import load_checkpoint

    model = load_checkpoint(ROOT / "checkpoints" / "mnist-bvae-mlp-z20-b1").model
    return model, encode_codes(model, mnist5k.test_x, mnist5k.test_y)


def test_a_class_direction_moves_codes_to_the_second_class(digits):
    """d = mean(7s) − mean(1s): a test 1 plus d has the 7s' centroid as its nearest (no classifier)."""
    model, codes = digits
    mu, y = codes.mu, codes.labels
    d = dirs.direction(mu[y == 7], mu[y == 1], "1 → 7")
    np.testing.assert_allclose(d.vector, mu[y == 7].mean(0) - mu[y == 1].mean(0), atol=1e-5)
    ones = mu[y == 1]
    classes, centroids = dirs.class_centroids(mu, y)
    ones = ones[dirs.nearest_class(ones, classes, centroids) == 1]  # the 1s the centroids call 1s
    assert len(ones) > 50
    shift = dirs.class_shift(ones, d.vector, mu, y, 1.0, target=7)
    assert (shift.before == 1).all()
    assert shift.share_to_target > 0.9, shift.after
    tenth = dirs.class_shift(ones, d.vector, mu, y, 0.1, target=7)
    assert tenth.share_to_target < 0.2
    images = dirs.walk(model, ones[0], d.vector, np.array([-1.0, 0.0, 1.0]))
    assert images.shape == (3, 1, 28, 28) and images.min() >= 0 and images.max() <= 1


def test_walks_centroids_and_the_change_map():
    start, vec = np.array([1.0, 2.0]), np.array([0.5, -1.0])
    np.testing.assert_allclose(dirs.walk_codes(start, vec, [-1, 0, 2]), [[0.5, 3.0], [1.0, 2.0], [2.0, 0.0]])
    mu = np.array([[0, 0], [0, 2], [10, 0], [10, 2]], np.float32)
    classes, centroids = dirs.class_centroids(mu, np.array([3, 3, 5, 5]))
    np.testing.assert_array_equal(classes, [3, 5])
    np.testing.assert_allclose(centroids, [[0, 1], [10, 1]])
    assert dirs.nearest_class(np.array([[9, 9], [1, 1]]), classes, centroids).tolist() == [5, 3]
    a, b = np.zeros((2, 1, 4, 4)), np.zeros((2, 1, 4, 4))
    b[:, :, 0, 0] = 1
    heat = dirs.change_map(a, b)
    assert heat.shape == (4, 4) and heat[0, 0] == 1 and heat.sum() == 1
    with pytest.raises(ValueError, match="at least one code"):
        dirs.direction(np.zeros((0, 2)), mu)


def test_entanglement_is_the_cosine_with_each_attribute_and_the_shift_in_sds():
    rng = np.random.default_rng(0)
    mu = rng.normal(0, [1, 2, 3], (2000, 3)).astype(np.float32)
    attrs = {"x": np.array([1, 0, 0.0]), "y": np.array([0, 5, 0.0]), "xy": np.array([1, 1, 0.0]), "none": np.zeros(3)}
    ent = dirs.entanglement(np.array([2, 0, 0.0]), attrs, mu)
    np.testing.assert_allclose(ent.cosines, [1, 0, np.sqrt(0.5), 0], atol=1e-6)
    assert ent.shifts[0] == pytest.approx(2.0, rel=0.05)  # 2 units along x, whose SD is 1
    assert ent.shifts[1] == 0 and ent.most == ("x", pytest.approx(1.0))
    assert dirs.entanglement(np.ones(3), {}, mu).most is None
    found = dirs.class_directions(mu, np.array([0, 1] * 1000), ("even", "odd"))
    assert set(found) == {"even", "odd"}
    np.testing.assert_allclose(found["even"], -found["odd"])


def test_neighbours_in_latent_and_pixel_space_differ_and_leave_the_query_out(digits, mnist5k):
    _, codes = digits
    x = mnist5k.test_x
    found = find_neighbours(codes.mu[3], x[3], codes.mu, x, k=8, exclude=3)
    assert len(found.latent) == len(found.pixel) == 8 and 3 not in found.latent and 3 not in found.pixel
    assert (np.diff(found.latent_dist) >= 0).all() and (np.diff(found.pixel_dist) >= 0).all()
    assert set(found.latent.tolist()) != set(found.pixel.tolist())
    same = found.agreement(codes.labels, int(codes.labels[3]))
    assert same is not None and 0 <= same[0] <= 8
    cosine = find_neighbours(codes.mu[3], x[3], codes.mu, x, k=8, metric="cosine", exclude=3)
    assert cosine.metric == "cosine" and (cosine.latent_dist <= 2).all()


def test_distances_and_nearest():
    pts = np.array([[1, 0], [0, 2], [-1, 0], [0, 0]], np.float32)
    np.testing.assert_allclose(distances([1, 0], pts), [0, np.sqrt(5), 2, 1], rtol=1e-6)
    np.testing.assert_allclose(distances([1, 0], pts, "cosine"), [0, 1, 2, 1], atol=1e-6)
    rows, d = nearest([1, 0], pts, 2)
    assert rows.tolist() == [0, 3] and d.tolist() == [0, 1]
    rows, _ = nearest([1, 0], pts, 10, exclude=0)
    assert rows.tolist() == [3, 2, 1]
    with pytest.raises(ValueError, match="unknown distance"):
        distances([1, 0], pts, "manhattan")


def test_an_mp4_of_a_walk_or_a_clear_error_without_ffmpeg():
    from core.lenses.latent import can_write_mp4, mp4_bytes

    frames = np.random.default_rng(0).random((5, 1, 28, 20), dtype=np.float32)
    if not can_write_mp4():
        with pytest.raises(RuntimeError, match="imageio-ffmpeg"):
            mp4_bytes(frames)
        return
    video = mp4_bytes(frames, scale=3)
    assert video[4:8] == b"ftyp" and len(video) > 1000


def test_groups_as_text_round_trip_with_ranges_and_bad_text_says_why():
    rows = [3, 4, 5, 9, 17, 18]
    assert dirs.format_rows(rows) == "3-5, 9, 17-18"
    assert dirs.parse_rows("3-5, 9;17 18", 20) == (rows, None)
    assert dirs.parse_rows(dirs.format_rows(rows).replace(" ", ""), 20) == (rows, None)
    assert dirs.parse_rows("", 20) == ([], None)
    for text, why in (("3, 20", "outside 0..19"), ("5-2", "outside"), ("x", "not an image number"), ("1-2-3", "range")):
        found, problem = dirs.parse_rows(text, 20)
        assert found == [] and why in problem
    assert "more than 10" in dirs.parse_rows("0-50", 100, limit=10)[1]
