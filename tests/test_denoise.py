"""core.lenses.denoise: corruptions, PSNR/SSIM, classical and learned denoisers side by side."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core.data.corrupt import corrupt
from core.lenses import denoise
from core.models.config import ModelConfig
from core.training.train import TrainConfig, train_model

SIGMA = 0.5


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def batch(mnist5k):
    """200 clean test digits and their noisy copies (Gaussian σ = 0.5, clipped)."""
    clean = mnist5k.test_x[:200]
    return clean, denoise.corrupt_images(clean, "gaussian", SIGMA, seed=1)


@pytest.fixture(scope="module")
def validation(mnist5k):
    clean = mnist5k.train_x[-100:]
    return clean, denoise.corrupt_images(clean, "gaussian", SIGMA, seed=2)


@pytest.fixture(scope="module")
def dae(mnist5k):
    model, _ = train_model(
        ModelConfig(kind="ae", arch="mlp", latent_dim=32, hidden=(256,)),
        mnist5k,
        TrainConfig(epochs=6, batch_size=32, lr=2e-3, noise="gaussian", noise_level=SIGMA),
    )
    return model


# ---------------------------------------------------------------- metrics and corruption


def test_psnr_is_ten_log_of_one_over_mse():
    rng = np.random.default_rng(0)
    clean = rng.random((4, 1, 8, 8))
    test = np.clip(clean + rng.normal(0, 0.1, clean.shape), 0, 1)
    mse = ((clean - test) ** 2).reshape(4, -1).mean(1)
    np.testing.assert_allclose(denoise.psnr(clean, test), 10 * np.log10(1 / mse), rtol=1e-6)
    assert np.isinf(denoise.psnr(clean, clean)).all()
    with pytest.raises(ValueError, match="same shape"):
        denoise.psnr(clean, test[:2])


def test_ssim_is_one_for_a_copy_and_falls_with_noise():
    rng = np.random.default_rng(0)
    clean = rng.random((3, 1, 16, 16))
    np.testing.assert_allclose(denoise.ssim(clean, clean), 1.0)
    light = np.clip(clean + rng.normal(0, 0.05, clean.shape), 0, 1)
    heavy = np.clip(clean + rng.normal(0, 0.3, clean.shape), 0, 1)
    assert np.all(denoise.ssim(clean, heavy) < denoise.ssim(clean, light)) and np.all(denoise.ssim(clean, light) < 1)
    colour = rng.random((2, 3, 16, 16))
    assert denoise.ssim(colour, colour).shape == (2,)


def test_corrupt_images_reuses_core_corrupt_and_is_seeded(batch):
    clean, noisy = batch
    again = denoise.corrupt_images(clean, "gaussian", SIGMA, seed=1)
    np.testing.assert_array_equal(noisy, again)
    ref = corrupt(torch.from_numpy(clean), "gaussian", SIGMA, torch.Generator().manual_seed(1)).numpy()
    np.testing.assert_array_equal(noisy, ref)
    assert noisy.min() >= 0 and noisy.max() <= 1
    # Clipped noise on a black background: about 9-10 dB, SSIM far below 1.
    assert 8 < denoise.psnr(clean, noisy).mean() < 11
    masked = denoise.corrupt_images(clean, "masking", 0.5, seed=0)
    assert np.all(masked <= clean)


# ---------------------------------------------------------------- denoisers


@pytest.mark.parametrize("name", ["tv", "nl-means", "median", "gaussian", "wavelet"])
def test_each_classical_denoiser_beats_the_noisy_input(batch, name):
    if name == "wavelet":
        pytest.importorskip("pywt", reason="scikit-image's wavelet denoiser needs PyWavelets")
    clean, noisy = batch
    method = denoise.classical(name)
    out = method(noisy)
    assert out.shape == noisy.shape and out.dtype == np.float32
    assert out.min() >= 0 and out.max() <= 1
    gain = denoise.psnr(clean, out).mean() - denoise.psnr(clean, noisy).mean()
    assert gain > 1.0, f"{name} gains only {gain:.2f} dB"
    assert method.params == denoise.DEFAULT_PARAMS[name]


def test_classical_denoisers_handle_colour_images():
    rng = np.random.default_rng(0)
    clean = np.zeros((2, 3, 20, 20), np.float32)
    clean[:, :, 5:15, 5:15] = [[[0.9]], [[0.5]], [[0.2]]]
    noisy = np.clip(clean + rng.normal(0, 0.2, clean.shape), 0, 1).astype(np.float32)
    for name in ("tv", "nl-means", "median", "gaussian"):
        out = denoise.classical(name)(noisy)
        assert out.shape == clean.shape
        assert denoise.psnr(clean, out).mean() > denoise.psnr(clean, noisy).mean()


def test_unknown_denoiser_is_refused():
    with pytest.raises(ValueError, match="unknown classical denoiser"):
        denoise.classical("bilateral")
    assert set(denoise.available_classical()) <= set(denoise.CLASSICAL_METHODS)


def test_tuning_picks_the_best_parameter_on_the_validation_batch(validation):
    clean, noisy = validation
    best, score = denoise.tune("gaussian", noisy, clean, grid={"sigma": [0.3, 1.0, 3.0]})
    scores = {s: denoise.psnr(clean, denoise.classical("gaussian", sigma=s)(noisy)).mean() for s in (0.3, 1.0, 3.0)}
    assert best.params["sigma"] == max(scores, key=scores.get)
    assert score == pytest.approx(max(scores.values()))


def test_pca_fitted_on_clean_images_denoises(batch, mnist5k, validation):
    clean, noisy = batch
    pca, _ = denoise.tune("pca", validation[1], validation[0], grid={"n_components": [8, 32]}, train_x=mnist5k.train_x)
    assert pca.family == "pca" and pca.params["n_components"] in (8, 32)
    out = pca(noisy)
    assert denoise.psnr(clean, out).mean() > denoise.psnr(clean, noisy).mean() + 3
    # With every component kept, PCA gives back its input.
    small = np.random.default_rng(0).random((100, 1, 4, 4)).astype(np.float32)
    full = denoise.fit_pca(small, 16)
    np.testing.assert_allclose(denoise.pca_reconstruct(full, small[:5]), small[:5], atol=1e-4)


def test_a_denoising_autoencoder_beats_the_noisy_input_and_the_filters(batch, validation, dae):
    clean, noisy = batch
    methods = [denoise.tune(n, validation[1], validation[0])[0] for n in ("median", "tv")]
    methods.append(denoise.model_method(dae, "dae"))
    res = denoise.run_methods(clean, noisy, methods)
    assert [r.method for r in res.rows] == ["noisy", "median", "tv", "dae"]
    table = {r.method: r for r in res.rows}
    assert table["dae"].psnr > table["noisy"].psnr + 6
    assert table["dae"].psnr > max(table["median"].psnr, table["tv"].psnr) + 2
    assert table["dae"].ssim > table["noisy"].ssim + 0.2
    # The rows are the means of the per-image figures; the images are kept for display.
    np.testing.assert_allclose(table["dae"].psnr, res.per_image["dae"]["psnr"].mean())
    assert res.images["dae"].shape == clean.shape
    np.testing.assert_array_equal(res.images["noisy"], noisy)
    np.testing.assert_allclose(res.images["dae"], dae.reconstruct(torch.from_numpy(noisy)).numpy(), atol=1e-6)
    assert "dae" in denoise.format_table(res)
    assert res.row("tv").params["weight"] in denoise.PARAM_GRIDS["tv"]["weight"]


def test_run_methods_checks_its_input(batch):
    clean, noisy = batch
    with pytest.raises(ValueError, match="unique"):
        denoise.run_methods(clean, noisy, [denoise.classical("median"), denoise.classical("median")])
    with pytest.raises(ValueError, match="shape"):
        denoise.run_methods(clean, noisy[:5], [])


# ---------------------------------------------------------------- the denoising page's comparison


def test_best_classical_keeps_the_filter_with_the_best_validation_psnr(validation):
    clean, noisy = validation
    best, scores = denoise.best_classical(clean, noisy, ["median", "gaussian"])
    assert set(scores) == {"median", "gaussian"}
    assert best.name == "best classical" and best.family == "classical"
    assert best.params["method"] == max(scores, key=scores.get)
    assert denoise.psnr(clean, best(noisy)).mean() == pytest.approx(scores[best.params["method"]])
    with pytest.raises(ValueError, match="at least one"):
        denoise.best_classical(clean, noisy, [])


def test_compare_runs_models_the_best_filter_and_pca(batch, validation, dae, mnist5k):
    clean = batch[0][:32]
    den = denoise.build_denoisers(
        {"denoising AE": dae}, mnist5k.train_x, pca_components=(8, 32), classical_names=["median", "tv"]
    )
    assert [m.params["n_components"] for m in den.pca] == [8, 32]
    res = denoise.compare(clean, "gaussian", SIGMA, den, validation[0][:32], seed=1)
    assert [r.method for r in res.rows] == ["noisy", "denoising AE", "best classical", "PCA"]
    np.testing.assert_array_equal(res.images["noisy"], denoise.corrupt_images(clean, "gaussian", SIGMA, seed=1))
    assert res.row("best classical").params["method"] in ("median", "tv")
    assert res.row("PCA").params["n_components"] in (8, 32)
    table = {r.method: r.psnr for r in res.rows}
    assert table["denoising AE"] > table["best classical"] > table["noisy"]
    # Without training images there is no PCA column; a conditional model is refused.
    assert [
        r.method for r in denoise.compare(clean, "masking", 0.3, denoise.build_denoisers({}, None), clean).rows
    ] == [
        "noisy",
        "best classical",
    ]
    cvae = train_model(
        ModelConfig(kind="cvae", arch="mlp", latent_dim=2, hidden=(16,), num_classes=10),
        mnist5k,
        TrainConfig(epochs=1, batch_size=500),
    )[0]
    with pytest.raises(ValueError, match="conditional"):
        denoise.build_denoisers({"cvae": cvae}, None)


def test_level_curve_has_one_point_per_level_and_falls_with_the_noise(batch, validation, dae):
    den = denoise.build_denoisers({"dae": dae}, None, classical_names=["median"])
    curve = denoise.level_curve(batch[0][:16], "gaussian", [0.1, 0.5, 1.0], den, validation[0][:16])
    assert set(curve.psnr) == {"noisy", "dae", "best classical"}
    assert all(len(v) == 3 for v in (*curve.psnr.values(), *curve.ssim.values()))
    assert np.all(np.diff(curve.psnr["noisy"]) < 0)
    assert len(curve.params["best classical"]) == 3


def test_mean_psnr_leaves_out_exact_copies():
    assert denoise.mean_psnr(np.array([10.0, np.inf, 20.0])) == (15.0, 1)
    assert denoise.mean_psnr(np.array([np.inf])) == (float("inf"), 1)


def test_the_wavelet_filter_keeps_a_flat_image_as_it_is():
    pytest.importorskip("pywt")
    flat = np.zeros((2, 1, 28, 28), np.float32)
    flat[1, 0, 10:14, 10:14] = 1.0  # one with a square, one flat
    out = denoise.classical("wavelet")(flat)
    assert np.isfinite(out).all()
    np.testing.assert_array_equal(out[0], flat[0])


def test_the_scored_rows_start_with_one_of_each_class_even_in_a_sorted_split():
    labels = np.repeat(np.arange(10), 500)  # sorted by label, as the offline digits once were
    batch, val = denoise.split_rows(5000, seed=0, labels=labels)
    plain, same_val = denoise.split_rows(5000, seed=0)
    assert sorted(labels[batch[:10]]) == list(range(10)), labels[batch[:10]]
    assert sorted(batch) == sorted(plain) and np.array_equal(val, same_val) and not set(batch) & set(val)


def test_mixed_gives_each_image_one_corruption_at_a_level_within_the_page_range():
    x = torch.full((600, 1, 28, 28), 0.5)
    out = corrupt(x, "mixed", 1.0, torch.Generator().manual_seed(0)).flatten(1)
    assert torch.equal(out, corrupt(x, "mixed", 1.0, torch.Generator().manual_seed(0)).flatten(1))
    gaussian = ((out != 0) & (out != 0.5) & (out != 1)).any(1)
    salt = (out == 1).any(1) & ~gaussian
    black = (out == 0).any(1) & ~gaussian & ~salt  # masking or occlusion
    square = black & torch.tensor([_is_one_square(img.view(28, 28) == 0) for img in out])
    assert gaussian.sum() > 100 and salt.sum() > 100 and (black & ~square).sum() > 100 and square.sum() > 100
    changed = (out != 0.5).float().mean(1)
    assert changed[salt].max() <= 0.6 + 0.05 and changed[square].max() <= 0.5 + 0.05
    assert changed[black & ~square].max() <= 0.9 + 0.05
    milder = corrupt(x, "mixed", 0.25, torch.Generator().manual_seed(0)).flatten(1)
    assert (milder - 0.5).abs().mean() < 0.5 * (out - 0.5).abs().mean()
    TrainConfig(noise="mixed", noise_level=1.0).validate()  # a denoising AE can be trained on it


def _is_one_square(mask: torch.Tensor) -> bool:
    """True when the True pixels of ``mask`` (H, W) fill one axis-aligned rectangle."""
    rows, cols = mask.any(1).nonzero().flatten(), mask.any(0).nonzero().flatten()
    if len(rows) == 0:
        return False
    return bool(mask[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1].all()) and len(rows) > 1
