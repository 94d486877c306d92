"""A latent-diffusion VAE trained here, end to end (issue 25): a small diffusers ``AutoencoderKL``
(4 latent channels, 64×64 RGB) trained for a few seconds on the colour sprites, saved with
``save_pretrained`` (safetensors), opened by path, served by every page (the spatial page shows it,
the others say in one line why they are off), and exported to optimum's ONNX layout, which decodes
and encodes as the diffusers folder does."""

from __future__ import annotations

import shutil
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from core.app.catalog import EXPLORE_ENV, EXPLORE_IMAGES_ENV
from core.app.site import page_table
from core.cli import main
from core.data.registry import load_dataset, load_user_data
from core.formats.spatial import open_spatial
from core.lenses import spatial as lens
from core.lenses.denoise import psnr
from core.training.spatial import SpatialRecipe, build_autoencoder_kl, round_trip_psnr, train_autoencoder_kl
from tests.app_support import app_env, app_test
from tests.conftest import ROOT
from tests.test_spatial import _Decoder, _Encoder

pytestmark = pytest.mark.usefixtures("one_thread")

NAME = "sprites-sd-vae"
SIDE = 64
# three blocks: downsample 4, so a 64×64 sprite becomes a 4×16×16 latent; about 6 s on one CPU thread
RECIPE = SpatialRecipe(blocks=(8, 16, 16), latent_channels=4, steps=60, batch=8, lr=5e-3)
LATENT = (4, SIDE // 4, SIDE // 4)
HELD_OUT = 40  # test sprites the reconstruction is measured on (and the page, on their test split)
PAGES = {s.stem: s.inputs for s in page_table()}  # home and every demo page: what each takes in


@dataclass(frozen=True)
class Trained:
    folder: Path  # the save_pretrained folder, named NAME
    vae: object  # the diffusers AutoencoderKL, eval mode
    held: np.ndarray  # (HELD_OUT, 3, 64, 64) test sprites in [0, 1]
    before: float  # mean PSNR (dB) of the untrained VAE on ``held``
    after: float  # … of the trained one
    black: float  # … of an all-black guess (most of a sprite is black background)


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Trained:
    """Train the VAE on sprites (core.training.spatial: seeded Adam, MSE on [-1, 1] images + a small
    KL, scaling_factor set to 1/std of its latents as SD's is) and save it with save_pretrained."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # this module-scoped fixture runs before the per-test one_thread
    try:
        data = load_dataset("sprites")
        held = np.array(data.test_x[:HELD_OUT])
        before = round_trip_psnr(build_autoencoder_kl(RECIPE, SIDE).eval(), held)
        vae = train_autoencoder_kl(data.train_x, RECIPE)
        after = round_trip_psnr(vae, held)
        folder = tmp_path_factory.mktemp("user") / NAME
        vae.save_pretrained(folder, safe_serialization=True)
    finally:
        torch.set_num_threads(threads)
    black = float(psnr(held, np.zeros_like(held)).mean())
    return Trained(folder=folder, vae=vae, held=held, before=before, after=after, black=black)


@pytest.fixture(scope="module")
def onnx_dir(trained, tmp_path_factory) -> Path:
    """The trained VAE in optimum's ONNX layout: vae_encoder/model.onnx (sample -> latent_parameters),
    vae_decoder/model.onnx (latent_sample -> sample) and the diffusers config beside the decoder."""
    folder = tmp_path_factory.mktemp("onnx") / f"{NAME}-onnx"
    graphs = [
        ("vae_encoder", _Encoder(trained.vae), torch.rand(2, 3, SIDE, SIDE) * 2 - 1, "sample", "latent_parameters"),
        ("vae_decoder", _Decoder(trained.vae), torch.randn(2, *LATENT), "latent_sample", "sample"),
    ]
    for sub, module, example, name_in, name_out in graphs:
        (folder / sub).mkdir(parents=True)
        with warnings.catch_warnings():  # the tracer's notes on diffusers' shape asserts
            warnings.simplefilter("ignore")
            # The TorchScript exporter, as optimum's exporter calls it (and ten times faster here than
            # dynamo=True): batch, height and width stay free, as in optimum's export.
            torch.onnx.export(
                module.eval(),
                (example,),
                str(folder / sub / "model.onnx"),
                input_names=[name_in],
                output_names=[name_out],
                dynamo=False,
                dynamic_axes={name_in: {0: "batch", 2: "height", 3: "width"}},
            )
    shutil.copy(trained.folder / "config.json", folder / "vae_decoder" / "config.json")
    return folder


def test_the_vae_learned_the_sprites_and_is_saved_as_safetensors(trained):
    # Measured (seed 0, one thread): 5.0 dB untrained, 20.6 dB trained, 18.5 dB for an all-black guess.
    assert trained.after > trained.before + 10, (trained.before, trained.after)
    assert trained.after > trained.black + 1, ("no better than drawing black", trained.black, trained.after)
    assert (trained.folder / "diffusion_pytorch_model.safetensors").is_file()
    assert (trained.folder / "config.json").is_file()
    assert not [p.name for p in trained.folder.rglob("*") if p.suffix in (".bin", ".pt", ".pth", ".pkl")]


def test_it_opens_by_path_and_reconstructs_as_trained(trained, capsys):
    model = open_spatial(trained.folder)
    assert (model.source, model.name, model.downsample, model.latent_channels) == ("diffusers", NAME, 4, 4)
    assert model.latent_shape == LATENT and model.notes == ()
    assert model.scaling_factor == trained.vae.config.scaling_factor != 1.0
    rec = lens.reconstruction(model, trained.held)
    assert rec.latents.shape == (HELD_OUT, *LATENT)
    assert rec.mean_psnr == pytest.approx(trained.after, abs=1e-3)
    assert 0.5 < float(rec.latents.std()) < 2, "scaled latents of about unit spread"
    assert main(["explore", str(trained.folder), "--check-only"]) == 0
    assert f"ok: explore:{NAME}" in capsys.readouterr().out


@pytest.mark.parametrize("page", list(PAGES))
def test_every_page_serves_the_trained_vae(trained, monkeypatch, page):
    """With the shipped models listed beside it, as deployed: the spatial page shows its images and
    their PSNR; every other page, home included, says in one line why it is off, naming the page to open."""
    app_env(monkeypatch, folder=ROOT / "checkpoints", user=trained.folder.parent)
    at = app_test(None if page == "home" else page, query={"model": f"user:{NAME}"})
    assert not at.exception, (page, at.exception)
    assert at.sidebar.selectbox[1].value == f"user:{NAME}", page
    off = [i.value for i in at.info if "images through a spatial latent" in i.value]
    if "spatial" in PAGES[page]:
        assert len(at.image) >= 5 and not off, (page, len(at.image), off)
        (value,) = [m.value for m in at.metric if m.label.startswith("PSNR")]
        assert np.isfinite(float(value.split(" dB")[0])), value
    else:
        assert len(off) == 1 and "Latent-diffusion VAE" in off[0], (page, [i.value for i in at.info])


def test_the_spatial_page_measures_it_on_the_sprites_that_explore_names(trained, monkeypatch, tmp_path, capsys):
    """``python -m core explore PATH --images DIR`` with the held-out sprites as PNGs: the page's PSNR
    is the trained model's on the folder's test split (well above drawing black), and the scaling
    factor set in training fits them."""
    images = tmp_path / "sprites"
    images.mkdir()
    for i, image in enumerate((trained.held * 255).round().astype(np.uint8)):  # (3, 64, 64) each
        Image.fromarray(image.transpose(1, 2, 0)).save(images / f"{i:02d}.png")
    assert main(["explore", str(trained.folder), "--images", str(images), "--check-only"]) == 0
    assert f"ok: explore:{NAME}" in capsys.readouterr().out
    app_env(monkeypatch, folder=ROOT / "checkpoints", user=tmp_path / "nobody")
    monkeypatch.setenv(EXPLORE_ENV, str(trained.folder))
    monkeypatch.setenv(EXPLORE_IMAGES_ENV, str(images))
    at = app_test("latent_diffusion", query={"model": f"explore:{NAME}"})
    assert not at.exception and not at.error, (at.exception, [e.value for e in at.error])
    test_x = load_user_data(f"folder:{images}").test_x  # (8, 3, 64, 64): the page measures these
    want = lens.reconstruction(open_spatial(trained.folder), test_x).mean_psnr
    (value,) = [m.value for m in at.metric if m.label.startswith("PSNR") and f"over {len(test_x)} images" in m.label]
    shown = float(value.split(" dB")[0])
    assert shown == pytest.approx(want, abs=0.06), (value, want)
    assert shown > float(psnr(test_x, np.zeros_like(test_x)).mean()) + 1, value
    assert not [w.value for w in at.warning if "scaling_factor" in w.value]
    factor = f"scaling_factor {trained.vae.config.scaling_factor:g} the latent std is"
    assert any(factor in s.value for s in at.success), [s.value for s in at.success]  # within 20 % of 1


def test_the_optimum_onnx_export_matches_the_diffusers_folder(trained, onnx_dir, capsys):
    folder, exported = open_spatial(trained.folder), open_spatial(onnx_dir)
    assert (exported.source, exported.downsample, exported.latent_shape) == ("optimum-onnx", 4, LATENT)
    assert exported.scaling_factor == folder.scaling_factor and exported.notes == ()
    x = torch.from_numpy(trained.held[:8])
    latents = folder.encode(x)
    torch.testing.assert_close(exported.decode(latents), folder.decode(latents), atol=1e-3, rtol=0)
    torch.testing.assert_close(exported.encode(x), latents, atol=1e-3, rtol=0)
    (_, logvar), (_, want) = exported.encode_raw(x[:2]), folder.encode_raw(x[:2])
    torch.testing.assert_close(logvar, want, atol=1e-3, rtol=0)
    noise = torch.randn(2, *LATENT, generator=torch.Generator().manual_seed(0))  # off the encoder's range too
    torch.testing.assert_close(exported.decode(noise), folder.decode(noise), atol=1e-3, rtol=0)
    assert main(["explore", str(onnx_dir), "--check-only"]) == 0
    assert f"ok: explore:{NAME}-onnx" in capsys.readouterr().out
