"""core.lenses.latent: codes, projections, traversals, interpolation, sampling and grids."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image
from scipy.stats import norm
from sklearn.decomposition import PCA

from core.lenses import latent
from core.models.config import ModelConfig
from core.models.evaluate import evaluate
from core.models.networks import build_model
from core.training.train import TrainConfig, train_model

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def vae(mnist5k):
    model, _ = train_model(
        ModelConfig(kind="vae", arch="mlp", latent_dim=8, hidden=(128,)), mnist5k, TrainConfig(epochs=3, lr=2e-3)
    )
    return model


@pytest.fixture(scope="module")
def ae(mnist5k):
    model, _ = train_model(
        ModelConfig(kind="ae", arch="mlp", latent_dim=8, hidden=(128,)), mnist5k, TrainConfig(epochs=2, lr=2e-3)
    )
    return model


@pytest.fixture(scope="module")
def codes(vae, mnist5k):
    return latent.encode_codes(vae, mnist5k.test_x, mnist5k.test_y)


# ---------------------------------------------------------------- codes and projections


def test_encode_codes_match_the_encoder_and_keep_labels(vae, codes, mnist5k):
    n = len(mnist5k.test_x)
    assert codes.mu.shape == codes.logvar.shape == (n, 8)
    assert codes.mu.dtype == np.float32
    assert np.array_equal(codes.labels, mnist5k.test_y)
    with torch.no_grad():
        mu, logvar = vae.encode(torch.from_numpy(mnist5k.test_x[:5]))
    np.testing.assert_allclose(codes.mu[:5], mu.numpy(), atol=1e-5)
    np.testing.assert_allclose(codes.logvar[:5], logvar.numpy(), atol=1e-5)
    np.testing.assert_allclose(codes.spread, codes.mu.std(axis=0, ddof=1), rtol=1e-4)


def test_ae_codes_have_no_logvar(ae, mnist5k):
    c = latent.encode_codes(ae, mnist5k.test_x[:50])
    assert c.logvar is None and c.labels is None and c.mu.shape == (50, 8)


@pytest.mark.parametrize("k", [2, 3])
def test_pca_projection_matches_scikit_learn(codes, k):
    proj = latent.project(codes.mu, k)
    ref = PCA(n_components=k, random_state=0).fit(codes.mu)
    expected = ref.transform(codes.mu)
    assert proj.method == "pca" and proj.coords.shape == (len(codes.mu), k)
    # Same solver, same data: same axes up to the sign convention, which both share.
    np.testing.assert_allclose(np.abs(proj.coords), np.abs(expected), atol=1e-3)
    np.testing.assert_allclose(proj.explained_variance_ratio, ref.explained_variance_ratio_, rtol=1e-4)
    assert np.all(np.diff(proj.explained_variance_ratio) <= 0) and proj.explained_variance_ratio.sum() < 1
    assert proj.axis_labels[0].startswith("PC1 (")
    # Mapping the plot's points back lands on the PCA plane: projecting again is the identity.
    back = proj.to_codes(proj.coords[:10])
    np.testing.assert_allclose(ref.transform(back), expected[:10], atol=1e-3)


def test_small_latents_use_raw_axes():
    mu = np.random.default_rng(0).normal(size=(100, 2)).astype(np.float32)
    proj = latent.project(mu, 2)
    assert proj.method == "axes" and proj.axis_labels == ["z0", "z1"]
    np.testing.assert_array_equal(proj.coords, mu)
    np.testing.assert_allclose(proj.to_codes(mu[:3]), mu[:3])
    assert proj.explained_variance_ratio.sum() == pytest.approx(1.0)
    # A 2-D code asked for a 3-D plot keeps its two axes.
    assert latent.project(mu, 3).coords.shape == (100, 2)


def test_project_rejects_bad_input():
    with pytest.raises(ValueError, match="2 or 3"):
        latent.project(np.zeros((5, 4)), 4)
    with pytest.raises(ValueError, match="non-empty"):
        latent.project(np.zeros((0, 4)), 2)


# ---------------------------------------------------------------- decoding and traversals


def test_decode_matches_the_model_and_leaves_it_alone(vae):
    z = np.random.default_rng(1).normal(size=(7, 8)).astype(np.float32)
    vae.train()
    imgs = latent.decode(vae, z)
    assert vae.training  # not switched to eval behind the caller's back
    vae.eval()
    with torch.no_grad():
        ref = vae.decode(torch.from_numpy(z)).numpy()
    np.testing.assert_allclose(imgs, ref, atol=1e-6)
    assert imgs.shape == (7, 1, 28, 28) and imgs.min() >= 0 and imgs.max() <= 1
    assert latent.decode(vae, z[0]).shape == (1, 1, 28, 28)  # one code (z,)
    with pytest.raises(ValueError, match="latent size is 8"):
        latent.decode(vae, np.zeros((1, 3)))


def test_traversal_moves_one_dimension_in_spread_units(vae, codes):
    base = codes.mu[0]
    spread = codes.spread
    t = latent.traverse(vae, base, dim=2, spread=spread, span=2.0, steps=5)
    np.testing.assert_allclose(t.offsets, [-2, -1, 0, 1, 2])
    np.testing.assert_allclose(t.values, base[2] + t.offsets * spread[2], rtol=1e-5)
    others = np.delete(t.codes, 2, axis=1)
    np.testing.assert_array_equal(others, np.repeat(np.delete(base, 2)[None], 5, axis=0))
    np.testing.assert_allclose(t.images[2], latent.decode(vae, base)[0], atol=1e-6)  # the middle is the base
    assert np.abs(t.images[0] - t.images[-1]).mean() > 1e-3  # the ends differ
    with pytest.raises(ValueError, match="out of range"):
        latent.traverse(vae, base, dim=8)


def test_traversal_grid_agrees_with_single_traversals(vae, codes):
    grid = latent.traversal_grid(vae, codes.mu[3], dims=[0, 5], spread=codes.spread, steps=4)
    assert grid.shape == (2, 4, 1, 28, 28)
    single = latent.traverse(vae, codes.mu[3], 5, codes.spread, steps=4)
    np.testing.assert_allclose(grid[1], single.images, atol=1e-6)


def test_dimensions_ranked_by_kl_sum_to_the_models_kl(vae, codes, mnist5k):
    r = latent.rank_dimensions(codes.mu, codes.logvar)
    assert r.by == "kl" and sorted(r.order.tolist()) == list(range(8))
    assert np.all(np.diff(r.kl[r.order]) <= 0)
    # The per-dimension KLs add up to the evaluator's KL term (analytic, so exact).
    assert r.kl.sum() == pytest.approx(evaluate(vae, mnist5k.test_x).kl, rel=1e-4)
    np.testing.assert_allclose(r.activity, codes.mu.var(axis=0, ddof=1), rtol=1e-4)


def test_ae_dimensions_ranked_by_activity(ae, mnist5k):
    c = latent.encode_codes(ae, mnist5k.test_x[:500])
    r = latent.rank_dimensions(c.mu)
    assert r.by == "activity" and r.kl is None
    assert r.order[0] == np.argmax(c.mu.var(axis=0, ddof=1))


# ---------------------------------------------------------------- interpolation


def test_slerp_keeps_the_norm_between_its_endpoints():
    rng = np.random.default_rng(2)
    t = np.linspace(0, 1, 11)
    for _ in range(20):
        a, b = rng.normal(size=16), 2.5 * rng.normal(size=16)
        path = latent.slerp(a, b, t)
        norms = np.linalg.norm(path, axis=1)
        lo, hi = sorted([np.linalg.norm(a), np.linalg.norm(b)])
        assert np.all(norms >= lo - 1e-4) and np.all(norms <= hi + 1e-4)
        np.testing.assert_allclose(path[0], a, atol=1e-5)
        np.testing.assert_allclose(path[-1], b, atol=1e-5)
        # The norm runs linearly; the straight line cuts inside, towards the low-density origin.
        np.testing.assert_allclose(norms, (1 - t) * np.linalg.norm(a) + t * np.linalg.norm(b), rtol=1e-5)
        assert np.linalg.norm(latent.lerp(a, b, [0.5])[0]) < norms[5]


def test_slerp_on_a_sphere_stays_on_it_and_handles_degenerate_pairs():
    a = np.array([3.0, 0, 0])
    b = np.array([0, 3.0, 0])
    path = latent.slerp(a, b, np.linspace(0, 1, 5))
    np.testing.assert_allclose(np.linalg.norm(path, axis=1), 3.0, rtol=1e-6)
    np.testing.assert_allclose(path[2], [3 / np.sqrt(2), 3 / np.sqrt(2), 0], atol=1e-5)
    # Parallel and antipodal endpoints give finite paths with the right ends.
    for other in (2 * a, -a):
        p = latent.slerp(a, other, np.linspace(0, 1, 7))
        assert np.isfinite(p).all()
        np.testing.assert_allclose(p[[0, -1]], [a, other], atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(latent.slerp(a, -a, np.linspace(0, 1, 7)), axis=1), 3.0, rtol=1e-6)


@pytest.mark.parametrize("method", ["linear", "slerp"])
@pytest.mark.parametrize("kind", ["vae", "ae"])
def test_interpolation_endpoints_decode_to_the_reconstructions(request, kind, method, mnist5k):
    model = request.getfixturevalue(kind)
    xa, xb = mnist5k.test_x[0], mnist5k.test_x[1]
    path = latent.interpolate(model, xa, xb, steps=6, method=method)
    assert path.images.shape == (6, 1, 28, 28) and path.codes.shape == (6, 8)
    recon = model.reconstruct(torch.from_numpy(mnist5k.test_x[:2])).numpy()
    np.testing.assert_allclose(path.images[0], recon[0], atol=1e-4)
    np.testing.assert_allclose(path.images[-1], recon[1], atol=1e-4)
    # Every frame differs from its neighbour: the path moves.
    assert np.all(np.abs(np.diff(path.images, axis=0)).mean(axis=(1, 2, 3)) > 1e-4)


def test_linear_midpoint_and_pixel_blend(vae, mnist5k):
    xa, xb = mnist5k.test_x[2], mnist5k.test_x[3]
    lin = latent.interpolate(vae, xa, xb, steps=3, method="linear")
    np.testing.assert_allclose(lin.codes[1], (lin.codes[0] + lin.codes[2]) / 2, atol=1e-6)
    pix = latent.interpolate(vae, xa, xb, steps=3, method="pixel")
    assert pix.codes is None
    np.testing.assert_allclose(pix.images[0], xa)
    np.testing.assert_allclose(pix.images[1], (xa + xb) / 2, atol=1e-6)
    np.testing.assert_allclose(pix.images[2], xb)
    with pytest.raises(ValueError, match="at least 2 steps"):
        latent.interpolate(vae, xa, xb, steps=1)
    with pytest.raises(ValueError, match="unknown interpolation"):
        latent.interpolate(vae, xa, xb, method="cubic")


def test_interpolation_for_a_conditional_vae_needs_and_uses_labels(mnist5k):
    torch.manual_seed(0)
    model = build_model(ModelConfig(kind="cvae", arch="mlp", latent_dim=4, hidden=(32,), num_classes=10)).eval()
    xa, xb = mnist5k.test_x[0], mnist5k.test_x[1]
    with pytest.raises(ValueError, match="labels"):
        latent.interpolate(model, xa, xb)
    path = latent.interpolate(model, xa, xb, steps=4, y_a=3, y_b=7)
    ref = model.reconstruct(torch.from_numpy(np.stack([xa, xb])), torch.tensor([3, 7])).numpy()
    np.testing.assert_allclose(path.images[[0, -1]], ref, atol=1e-5)


def test_gif_is_an_animation_of_the_path(vae, mnist5k):
    path = latent.interpolate(vae, mnist5k.test_x[0], mnist5k.test_x[1], steps=5)
    data = latent.gif_bytes(path.images, duration_ms=80, scale=3)
    assert data[:6] == b"GIF89a"
    gif = Image.open(io.BytesIO(data))
    assert gif.size == (84, 84)
    assert gif.n_frames == 8  # 5 forward + 3 back (the ends are not repeated)
    assert gif.info["loop"] == 0
    gif.seek(0)
    first = np.asarray(gif.convert("L"), dtype=np.float32)[::3, ::3] / 255
    np.testing.assert_allclose(first, path.images[0, 0], atol=2 / 255)


# ---------------------------------------------------------------- sampling and grids


def test_prior_samples_are_seeded_and_scaled_by_temperature(vae):
    codes_a, imgs_a = latent.sample_prior(vae, 400, temperature=0.5, seed=3)
    _, imgs_b = latent.sample_prior(vae, 400, temperature=0.5, seed=3)
    np.testing.assert_array_equal(imgs_a, imgs_b)
    assert imgs_a.shape == (400, 1, 28, 28)
    assert codes_a.std() == pytest.approx(0.5, rel=0.05)
    _, other = latent.sample_prior(vae, 400, temperature=0.5, seed=4)
    assert not np.array_equal(imgs_a, other)
    codes0, imgs0 = latent.sample_prior(vae, 3, temperature=0.0)
    assert np.all(codes0 == 0) and np.allclose(imgs0[0], imgs0[2])
    np.testing.assert_allclose(imgs0[0], latent.decode(vae, np.zeros(8))[0], atol=1e-6)


def test_manifold_grid_uses_the_inverse_normal_cdf():
    torch.manual_seed(0)
    model = build_model(ModelConfig(kind="vae", arch="mlp", latent_dim=2, hidden=(32,))).eval()
    g = latent.manifold_grid(model, n=5)
    expected = norm.ppf([0.1, 0.3, 0.5, 0.7, 0.9])
    np.testing.assert_allclose(g.cols, expected, atol=1e-6)
    np.testing.assert_allclose(g.rows, expected[::-1], atol=1e-6)
    assert g.images.shape == (5, 5, 1, 28, 28) and g.codes.shape == (5, 5, 2)
    np.testing.assert_allclose(g.codes[0, 4], [expected[4], expected[4]], atol=1e-6)  # top right: both high
    np.testing.assert_allclose(g.codes[4, 0], [expected[0], expected[0]], atol=1e-6)  # bottom left: both low
    np.testing.assert_allclose(g.images[1, 3], latent.decode(model, g.codes[1, 3])[0], atol=1e-6)
    assert g.axes == ("z0", "z1")


def test_manifold_grid_over_two_of_many_dimensions(vae, codes):
    base = codes.mu[0]
    g = latent.manifold_grid(vae, n=4, dims=(2, 6), base=base, scale=codes.spread, center=codes.mu.mean(0))
    others = [d for d in range(8) if d not in (2, 6)]
    np.testing.assert_allclose(g.codes[..., others], np.broadcast_to(base[others], (4, 4, 6)), atol=1e-6)
    q = latent.gaussian_quantiles(4)
    np.testing.assert_allclose(g.codes[0, :, 2], codes.mu.mean(0)[2] + q * codes.spread[2], rtol=1e-5)
    with pytest.raises(ValueError, match="two different dimensions"):
        latent.manifold_grid(vae, dims=(1, 1))


def test_pca_grid_lies_on_the_pca_plane(vae, codes):
    proj = latent.project(codes.mu, 2)
    g = latent.pca_grid(vae, proj, n=6)
    assert g.images.shape == (6, 6, 1, 28, 28)
    flat = g.codes.reshape(-1, 8) - proj.mean
    residual = flat - (flat @ proj.components.T) @ proj.components
    assert np.abs(residual).max() < 1e-4
    # It spans about ±1.4 standard deviations of the codes along PC1 (quantiles of 6 points).
    along = flat @ proj.components[0]
    sd = np.sqrt(proj.explained_variance[0])
    assert along.max() == pytest.approx(norm.ppf(11 / 12) * sd, rel=1e-3)


def test_image_grid_tiles_with_make_grid():
    imgs = np.zeros((6, 1, 4, 5), np.float32)
    imgs[1] = 1.0
    g = latent.image_grid(imgs, nrow=3, padding=1, pad_value=0.5)
    assert g.dtype == np.uint8 and g.shape == (2 * 5 + 1, 3 * 6 + 1)
    assert g[1, 1] == 0 and g[1, 7] == 255 and g[0, 0] == 128  # image 0, image 1, padding
    grid5 = latent.image_grid(np.zeros((2, 4, 3, 8, 8), np.float32), padding=0)
    assert grid5.shape == (16, 32, 3)  # 2 rows of 4, colour kept
    with pytest.raises(ValueError):
        latent.image_grid(np.zeros((0, 1, 4, 4)))


def test_example_rows_go_across_classes_or_spread_over_an_unlabelled_set():
    labels = np.array([0, 0, 0, 1, 1, 2])
    assert latent.example_rows(labels, 6, 4).tolist() == [0, 3, 5, 1]  # one of each class, then the next round
    assert latent.example_rows(None, 196, 2).tolist() == [49, 147]  # never test #0 twice
    assert latent.example_rows(None, 1, 2).tolist() == [0] and len(latent.example_rows(labels, 6, 10)) == 6


def test_an_input_unlike_the_test_images_is_flagged_and_a_test_image_is_not(vae, mnist5k):
    typical = latent.typical_inputs(vae, mnist5k.test_x, n=300)
    assert len(typical.errors) == 300 and np.all(np.diff(typical.errors) >= 0)
    ok = latent.check_input(vae, mnist5k.test_x[1], typical)
    assert ok.typical and 0 <= ok.worse_than < 0.995
    photo = np.random.default_rng(0).uniform(0.2, 0.8, (1, 28, 28)).astype(np.float32)  # all mid-grey
    flagged = latent.check_input(vae, photo, typical)
    assert not flagged.typical and flagged.worse_than > 0.9 and flagged.grey == 1.0
    assert any("mid-grey" in r for r in flagged.reasons) and any("brightness" in r for r in flagged.reasons)


def test_gif_and_mp4_exports_keep_colour():
    frames = np.zeros((3, 3, 8, 8), np.float32)
    frames[:, 0] = 1.0  # red
    frames[:, 2, 2:6, 2:6] = 1.0  # a magenta square
    gif = Image.open(io.BytesIO(latent.gif_bytes(frames, scale=2))).convert("RGB")
    assert gif.getpixel((0, 0)) == (255, 0, 0) and gif.getpixel((8, 8)) == (255, 0, 255)
    if latent.can_write_mp4():
        import imageio.v3 as iio

        video = iio.imread(latent.mp4_bytes(frames, scale=4), extension=".mp4")
        assert video.shape[-1] == 3 and video[0, 2, 2, 0] > 200 and video[0, 2, 2, 1] < 60
