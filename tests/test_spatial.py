"""Spatial-latent VAEs (the autoencoders of latent diffusion models): loading a diffusers folder and an
optimum ONNX export of a tiny random AutoencoderKL, refusing pickles and foreign classes, and the lenses."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from core.formats.spatial import SpatialModelError, open_spatial
from core.lenses import spatial as lens

SCALING = 0.5
SIDE = 32  # images 32×32 -> latents 4×16×16 (two blocks: downsample 2)


def _tiny_vae():
    from diffusers import AutoencoderKL

    torch.manual_seed(0)
    return AutoencoderKL(
        block_out_channels=(8, 16),
        layers_per_block=1,
        latent_channels=4,
        norm_num_groups=4,
        sample_size=SIDE,
        down_block_types=("DownEncoderBlock2D",) * 2,
        up_block_types=("UpDecoderBlock2D",) * 2,
        scaling_factor=SCALING,
    ).eval()


@pytest.fixture(scope="module")
def vae():
    return _tiny_vae()


@pytest.fixture(scope="module")
def vae_dir(vae, tmp_path_factory):
    folder = tmp_path_factory.mktemp("spatial") / "tiny-vae"
    vae.save_pretrained(folder, safe_serialization=True)
    return folder


@pytest.fixture(scope="module")
def model(vae_dir):
    return open_spatial(vae_dir)


@pytest.fixture(scope="module")
def images():
    return torch.rand(3, 3, SIDE, SIDE, generator=torch.Generator().manual_seed(1))


class _Encoder(torch.nn.Module):
    """optimum's vae_encoder: sample in [-1, 1] -> latent_parameters (B, 2C, h, w) = [mean, logvar]."""

    def __init__(self, vae):
        super().__init__()
        self.vae = vae

    def forward(self, sample):
        dist = self.vae.encode(sample).latent_dist
        return torch.cat([dist.mean, dist.logvar], 1)


class _Decoder(torch.nn.Module):
    """optimum's vae_decoder: latent_sample (unscaled) -> sample in [-1, 1]."""

    def __init__(self, vae):
        super().__init__()
        self.vae = vae

    def forward(self, latent_sample):
        return self.vae.decode(latent_sample).sample


@pytest.fixture(scope="module")
def onnx_dir(vae, vae_dir, tmp_path_factory):
    folder = tmp_path_factory.mktemp("spatial") / "tiny-onnx"
    dyn = torch.export.Dim.DYNAMIC
    graphs = [
        ("vae_encoder", _Encoder(vae).eval(), torch.rand(2, 3, SIDE, SIDE) * 2 - 1, "sample", "latent_parameters"),
        ("vae_decoder", _Decoder(vae).eval(), torch.randn(2, 4, SIDE // 2, SIDE // 2), "latent_sample", "sample"),
    ]
    for sub, module, example, name_in, name_out in graphs:
        (folder / sub).mkdir(parents=True)
        torch.onnx.export(
            module,
            (example,),
            str(folder / sub / "model.onnx"),
            input_names=[name_in],
            output_names=[name_out],
            dynamo=True,
            dynamic_shapes={name_in: {0: dyn, 2: dyn, 3: dyn}},
            external_data=False,
            verbose=False,
        )
    shutil.copy(vae_dir / "config.json", folder / "vae_decoder" / "config.json")
    return folder


# ---------------------------------------------------------------- the diffusers folder


def test_a_diffusers_folder_opens_offline_with_its_shapes_and_factors(model):
    assert (model.source, model.downsample, model.latent_channels, model.image_channels) == ("diffusers", 2, 4, 3)
    assert model.latent_shape == (4, 16, 16)
    assert model.latent_shape_for(64, 48) == (4, 32, 24)
    assert (model.scaling_factor, model.shift_factor, model.value_range, model.notes) == (SCALING, 0.0, (-1, 1), ())
    with pytest.raises(ValueError, match="multiples of 2"):
        model.latent_shape_for(31, 32)


def test_encode_and_decode_match_diffusers_own_calls(model, vae, images):
    latents = model.encode(images)
    with torch.no_grad():
        want = vae.encode(images * 2 - 1).latent_dist.mode() * SCALING
        decoded = (vae.decode(latents / SCALING).sample + 1) / 2
    assert latents.shape == (3, 4, 16, 16)
    torch.testing.assert_close(latents, want, atol=1e-5, rtol=0)
    torch.testing.assert_close(model.decode(latents), decoded.clamp(0, 1), atol=1e-5, rtol=0)
    mean, logvar = model.encode_raw(images)
    assert mean.shape == logvar.shape == (3, 4, 16, 16)


def test_the_shift_factor_is_subtracted_before_scaling(vae_dir, model, images, tmp_path):
    shifted = tmp_path / "shifted"
    shutil.copytree(vae_dir, shifted)
    config = json.loads((shifted / "config.json").read_text())
    (shifted / "config.json").write_text(json.dumps(config | {"shift_factor": 0.1}))
    other = open_spatial(shifted)
    mean, _ = model.encode_raw(images)
    torch.testing.assert_close(other.encode(images), (mean - 0.1) * SCALING, atol=1e-5, rtol=0)
    torch.testing.assert_close(
        other.decode(other.encode(images)), model.decode(model.encode(images)), atol=1e-5, rtol=0
    )


def test_a_pickle_only_folder_is_refused_unread(vae_dir, tmp_path, monkeypatch):
    folder = tmp_path / "pickled"
    folder.mkdir()
    shutil.copy(vae_dir / "config.json", folder / "config.json")
    (folder / "diffusion_pytorch_model.bin").write_bytes(b"\x80\x02" + b"\x00" * 64)

    def refuse(*args, **kwargs):
        raise AssertionError("a weights file was read")

    for target in ("torch.load", "pickle.load", "pickle.loads", "safetensors.torch.load_file"):
        monkeypatch.setattr(target, refuse)
    with pytest.raises(SpatialModelError, match="diffusion_pytorch_model.bin: is a pickle.*safetensors only"):
        open_spatial(folder)


def test_bad_folders_get_one_clear_error(vae_dir, tmp_path):
    wrong = tmp_path / "unet"
    shutil.copytree(vae_dir, wrong)
    config = json.loads((wrong / "config.json").read_text())
    (wrong / "config.json").write_text(json.dumps(config | {"_class_name": "UNet2DConditionModel"}))
    with pytest.raises(SpatialModelError, match="UNet2DConditionModel.*AutoencoderKL"):
        open_spatial(wrong)
    (wrong / "config.json").write_text(json.dumps(config))
    (wrong / "diffusion_pytorch_model.safetensors").unlink()
    with pytest.raises(SpatialModelError, match="diffusion_pytorch_model.safetensors: missing"):
        open_spatial(wrong)
    with pytest.raises(SpatialModelError, match="neither a diffusers VAE folder"):
        open_spatial(tmp_path / "unet" / "..")
    with pytest.raises(SpatialModelError, match="not a folder"):
        open_spatial(tmp_path / "absent")


def test_a_config_without_scaling_factor_uses_one_and_says_so(vae_dir, tmp_path):
    folder = tmp_path / "unscaled"
    shutil.copytree(vae_dir, folder)
    config = json.loads((folder / "config.json").read_text())
    del config["scaling_factor"]
    (folder / "config.json").write_text(json.dumps(config))
    model = open_spatial(folder)
    assert model.scaling_factor == 1.0
    assert len(model.notes) == 1 and "no scaling_factor" in model.notes[0]


# ---------------------------------------------------------------- the optimum ONNX export


def test_an_optimum_onnx_export_opens_and_matches_diffusers(onnx_dir, model, images):
    onnx_model = open_spatial(onnx_dir)
    assert (onnx_model.source, onnx_model.downsample, onnx_model.latent_shape) == ("optimum-onnx", 2, (4, 16, 16))
    assert onnx_model.scaling_factor == SCALING
    latents = model.encode(images)
    torch.testing.assert_close(onnx_model.encode(images), latents, atol=1e-4, rtol=0)
    torch.testing.assert_close(onnx_model.decode(latents), model.decode(latents), atol=1e-4, rtol=0)
    _, logvar = onnx_model.encode_raw(images[:1])
    torch.testing.assert_close(logvar, model.encode_raw(images[:1])[1], atol=1e-4, rtol=0)


def test_an_onnx_export_with_other_tensor_names_is_refused(onnx_dir, tmp_path):
    folder = tmp_path / "swapped"
    shutil.copytree(onnx_dir, folder)
    shutil.copy(folder / "vae_encoder" / "model.onnx", folder / "vae_decoder" / "model.onnx")
    with pytest.raises(SpatialModelError, match=r"vae_decoder/model.onnx: its inputs are \['sample'\].*latent_sample"):
        open_spatial(folder)
    (folder / "vae_encoder" / "model.onnx").unlink()
    with pytest.raises(SpatialModelError, match="vae_encoder/model.onnx: missing"):
        open_spatial(folder)
    no_decoder = tmp_path / "no-decoder"
    shutil.copytree(onnx_dir, no_decoder)
    (no_decoder / "vae_decoder" / "model.onnx").unlink()
    with pytest.raises(SpatialModelError, match="vae_decoder/model.onnx: missing"):
        open_spatial(no_decoder)


# ---------------------------------------------------------------- the lenses


class _Identity:
    """A stand-in 'VAE' whose latent is the image itself (C = 3, no downsampling)."""

    scaling_factor, shift_factor = 1.0, 0.0

    def encode(self, x):
        return x.clone()

    def decode(self, latents):
        return latents.clamp(0, 1)


def test_reconstruction_scores_and_maps(model, images):
    exact = lens.reconstruction(_Identity(), images)
    assert np.isinf(exact.psnr).all() and np.allclose(exact.ssim, 1) and exact.diff.max() == 0
    tiny = lens.reconstruction(model, images)
    assert tiny.recon.shape == (3, 3, SIDE, SIDE) and tiny.diff.shape == (3, SIDE, SIDE)
    assert tiny.psnr.shape == tiny.ssim.shape == (3,) and np.isfinite(tiny.mean_psnr)
    assert tiny.latents.shape == (3, 4, 16, 16)


def test_latent_stats_and_the_scaling_check(model):
    z = np.random.default_rng(0).standard_normal((8, 4, 16, 16)).astype(np.float32)
    stats = lens.latent_stats(z)
    assert np.allclose(stats.std, 1, atol=0.05) and np.allclose(stats.mean, 0, atol=0.05)
    assert stats.counts.shape == (4, lens.HIST_BINS) and stats.density.shape == stats.normal.shape
    assert np.abs(stats.density - stats.normal).max() < 0.1
    good = lens.scaling_check(model, z)
    assert not good.warning and abs(good.std - 1) < 0.05
    bad = lens.scaling_check(model, z * 5)
    assert bad.warning and bad.measured_scaling == pytest.approx(SCALING / 5, rel=0.05)
    assert f"{bad.measured_scaling:.3g}" in bad.message and "scaling_factor 0.5" in bad.message
    shifted = lens.scaling_check(model, z + 1)
    assert shifted.warning and "shift may be missing" in shifted.message
    assert shifted.measured_shift == pytest.approx(1 / SCALING, rel=0.05)
    assert lens.scaling_check(model, z / SCALING, scaled=False).std == pytest.approx(good.std)


def test_a_channel_shift_inside_a_mask_changes_mostly_that_region(model, images):
    latents = lens.encode(model, images)
    mask = np.zeros((16, 16), bool)
    mask[:8, :8] = True
    base = lens.decode(model, latents)
    moved = np.abs(lens.channel_shift(model, latents, channel=1, delta=3.0, mask=mask) - base).mean(axis=(0, 1))
    inside = np.kron(mask, np.ones((2, 2), bool))
    assert moved[inside].mean() > 1.3 * moved[~inside].mean()  # the mid-block's attention spreads some of it
    everywhere = lens.channel_shift(model, latents, channel=1, delta=3.0)
    assert np.abs(everywhere - base).mean() > 0


def test_interpolation_ends_at_the_endpoints_decodes(model, images):
    ends = lens.decode(model, lens.encode(model, images[:2]))
    for method in ("linear", "slerp"):
        path = lens.interpolate_spatial(model, images[0], images[1], steps=5, method=method)
        assert path.shape == (5, 3, SIDE, SIDE)
        np.testing.assert_allclose(path[[0, -1]], ends, atol=1e-4)
    fade = lens.interpolate_spatial(model, images[0], images[1], steps=3, method="pixels")
    np.testing.assert_allclose(fade[1], (images[0] + images[1]).numpy() / 2, atol=1e-6)


def test_noise_robustness_falls_as_sigma_grows_and_codes_pool(model, images):
    latents = lens.encode(model, images)
    result = lens.noise_robustness(model, latents, [0.0, 0.1, 0.5, 2.0])
    assert result.images.shape == (4, 3, 3, SIDE, SIDE) and result.psnr.shape == (4, 3)
    assert result.mean_psnr[0] > 100 and np.all(np.diff(result.mean_psnr[1:]) < 0)
    codes = lens.pooled_codes(latents)
    assert codes.shape == (3, 16)
    np.testing.assert_allclose(codes[:, 0], latents[:, 0, :8, :8].mean(axis=(1, 2)), atol=1e-6)


def test_unknown_config_fields_and_absurd_sizes_get_a_clear_message(vae_dir, tmp_path):
    import json
    import shutil

    odd = tmp_path / "odd-vae"
    shutil.copytree(vae_dir, odd)
    config = json.loads((odd / "config.json").read_text())
    (odd / "config.json").write_text(json.dumps({**config, "mystery_knob": 3}))
    model = open_spatial(odd)
    assert any("mystery_knob" in n and "ignored" in n for n in model.notes)
    with pytest.raises(ValueError, match="4096×4096 is too large"):
        model.latent_shape_for(4096, 4096)
    (odd / "config.json").write_text(json.dumps({**config, "latent_channels": 0}))
    with pytest.raises(SpatialModelError, match="latent_channels"):
        open_spatial(odd)
