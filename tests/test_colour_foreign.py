"""A colour model from outside: an RGB VAE defined here (not in core), exported with plain
``torch.onnx``, imported with ``python -m core import --dataset folder:PATH`` together with a
folder of colour PNGs in class sub-folders, then every page of the app opened on it."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image

from core.app.site import demo_pages
from core.cli import main
from tests.app_support import app_env, app_test

pytestmark = pytest.mark.usefixtures("one_thread")
LATENT = 8
# The pages that draw the sidebar model's pictures without an upload or a click.
DRAWS_THE_MODEL = {"latent_sliders", "sampling_manifold", "latent_map", "neighbours", "interpolate", "directions"}
COLOURS = {"red": (220, 40, 30), "green": (40, 200, 60), "blue": (30, 60, 230)}


class ColourVAE(nn.Module):
    """A user's RGB VAE: conv 3×32×32 -> 16×16 -> 8×8 -> latent 8, images in [0, 1]."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(3)
        self.down1, self.down2 = nn.Conv2d(3, 16, 4, 2, 1), nn.Conv2d(16, 32, 4, 2, 1)
        self.mu, self.logvar = nn.Linear(32 * 8 * 8, LATENT), nn.Linear(32 * 8 * 8, LATENT)
        self.up = nn.Linear(LATENT, 32 * 8 * 8)
        self.up1, self.up2 = nn.ConvTranspose2d(32, 16, 4, 2, 1), nn.ConvTranspose2d(16, 3, 4, 2, 1)

    def encode(self, x):
        h = F.silu(self.down2(F.silu(self.down1(x)))).flatten(1)
        return self.mu(h), self.logvar(h) - 2.0

    def decode(self, z):
        h = F.silu(self.up(z)).view(-1, 32, 8, 8)
        tint = torch.tensor([1.0, 0.0, -1.0]).view(1, 3, 1, 1)  # reddish: untrained, yet clearly colour
        return torch.sigmoid(self.up2(F.silu(self.up1(h))) + tint)


class _Encoder(nn.Module):
    def __init__(self, vae):
        super().__init__()
        self.vae = vae

    def forward(self, x):
        return self.vae.encode(x)


class _Decoder(nn.Module):
    def __init__(self, vae):
        super().__init__()
        self.vae = vae

    def forward(self, z):
        return self.vae.decode(z)


def _export(graph: nn.Module, example: torch.Tensor, inputs: list[str], outputs: list[str], path) -> None:
    """The two lines a user writes: torch.onnx.export with a dynamic batch dimension."""
    batch = torch.export.Dim("batch")
    torch.onnx.export(
        graph, (example,), str(path), dynamo=True, input_names=inputs, output_names=outputs,
        dynamic_shapes=({0: batch},), external_data=False,
    )  # fmt: skip


def colour_folder(root, per_class: int = 12, size: int = 40):
    """Class sub-folders of colour PNGs: a disc of the class's colour on a light background,
    at random places, 40×40 (the model takes 32×32: the import fits them)."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:size, :size]
    for name, rgb in COLOURS.items():
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            (cy, cx), r = rng.uniform(10, size - 10, 2), rng.uniform(5, 9)
            img = np.full((size, size, 3), 235, np.uint8)
            img[(yy - cy) ** 2 + (xx - cx) ** 2 < r * r] = rgb
            Image.fromarray(img, "RGB").save(root / name / f"{i:02d}.png")
    return root


@pytest.fixture(scope="module")
def imported(tmp_path_factory):
    """The exported folder imported with the colour images into a user folder; returns it."""
    tmp = tmp_path_factory.mktemp("colour")
    vae = ColourVAE().eval()
    export = tmp / "rgb-vae"
    export.mkdir()
    with torch.no_grad():
        _export(_Encoder(vae), torch.rand(2, 3, 32, 32), ["x"], ["mu", "logvar"], export / "encoder.onnx")
        _export(_Decoder(vae), torch.randn(2, LATENT), ["z"], ["image"], export / "decoder.onnx")
    spec = {
        "format": "latentlab-onnx", "format_version": 1, "title": "RGB VAE (user's own)", "latent_dim": LATENT,
        "image_shape": [3, 32, 32], "value_range": [0, 1], "encoder": "gaussian", "decoder": "image",
        "likelihood": "gaussian", "sigma": 0.1, "encoder_inputs": ["x"], "encoder_outputs": ["mu", "logvar"],
        "decoder_inputs": ["z"], "decoder_outputs": ["image"],
    }  # fmt: skip
    (export / "model.json").write_text(json.dumps(spec))
    images = colour_folder(tmp / "images")
    user = tmp / "user"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LATENTLAB_USER_CHECKPOINTS", str(user))
        assert main(["import", str(export), "--dataset", f"folder:{images}"]) == 0
    return user, images, vae


def test_the_import_attaches_the_colour_folder_and_measures_the_card_on_it(imported):
    user, images, _ = imported
    meta = json.loads((user / "rgb-vae" / "model.json").read_text())
    assert meta["dataset"] == f"folder:{images}"
    card = meta["card"]
    assert card["dataset"] == f"folder:{images}" and np.isfinite(card["test_loss"])
    assert card["test_n"] == 6  # 36 images, 80/20 stratified: 2 of 12 per class held out


def _decoded(monkeypatch) -> list[np.ndarray]:
    """Every array the pages turn into a PNG, as the page drew it."""
    from pages import _ui_charts

    shown: list[np.ndarray] = []
    to_png = _ui_charts.to_png
    monkeypatch.setattr(_ui_charts, "to_png", lambda arr, scale=1: shown.append(np.array(arr)) or to_png(arr, scale))
    return shown


@pytest.mark.parametrize("page", [spec.stem for spec in demo_pages()])
def test_every_page_runs_on_the_colour_model(imported, monkeypatch, page):
    user, _, _ = imported
    app_env(monkeypatch, user=user)
    shown = _decoded(monkeypatch)
    at = app_test(page, query={"model": "user:rgb-vae"})
    assert not at.exception, (page, at.exception)
    assert not [e.value for e in at.error], (page, [e.value for e in at.error])
    pictures = [_hwc(a) for a in shown]
    tiles = [a for a in pictures if a.shape[:2] == (32, 32)]  # single pictures at the model's size
    grey = [a for a in tiles if a.shape[-1] == 1]
    # The directions page adds a grey map of where a step changes the image (summed over channels).
    assert len(grey) == (page == "directions"), f"{page} drew {len(grey)} grey pictures of a colour model"
    if page in DRAWS_THE_MODEL:  # and what the model decodes is in colour: some pixel's channels differ
        spread = [float(np.ptp(a.astype(np.float32), axis=-1).max()) for a in pictures if a.shape[-1] == 3]
        assert spread and max(spread) > 60, (page, spread)


def _hwc(a: np.ndarray) -> np.ndarray:
    """A picture as to_png takes it ((H, W), (C, H, W) or an (H, W, 3) grid) -> (H, W, C) in 0..255."""
    if a.ndim == 2:
        a = a[..., None]
    elif a.shape[0] in (1, 3) and a.shape[-1] not in (1, 3):
        a = np.moveaxis(a, 0, -1)
    return a if a.dtype == np.uint8 else np.clip(a, 0, 1) * 255


@pytest.fixture(scope="module")
def shipped_colour(tmp_path_factory):
    from tests.app_support import with_shipped

    return with_shipped(tmp_path_factory.mktemp("shipped") / "models", "sprites-vae-conv-z10")


@pytest.mark.parametrize("page", sorted(DRAWS_THE_MODEL))
def test_the_shipped_colour_vae_draws_in_colour(shipped_colour, monkeypatch, page):
    """The offline colour demo: the generated sprites and their VAE, every drawing page in colour."""
    app_env(monkeypatch, folder=shipped_colour)
    shown = _decoded(monkeypatch)
    at = app_test(page, query={"model": "sprites-vae-conv-z10"})
    assert not at.exception, (page, at.exception)
    assert not [e.value for e in at.error], (page, [e.value for e in at.error])
    pictures = [_hwc(a) for a in shown]
    grey = [a for a in pictures if a.shape[:2] == (64, 64) and a.shape[-1] == 1]
    assert pictures and len(grey) == (page == "directions"), page  # only the directions' change map is grey
    assert max(float(np.ptp(a.astype(np.float32), axis=-1).max()) for a in pictures) > 100, page


def test_a_colour_photo_goes_into_the_colour_model_in_colour(shipped_colour, monkeypatch):
    """Your image: a colour upload for a colour model stays colour from the file to the reconstruction."""
    import io

    app_env(monkeypatch, folder=shipped_colour)
    shown = _decoded(monkeypatch)
    img = np.zeros((90, 120, 3), np.uint8)
    img[30:60, 40:80] = (250, 200, 0)  # a yellow rectangle on black, wider than tall
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="PNG")
    at = app_test("your_image", query={"model": "sprites-vae-conv-z10"})
    at.file_uploader(key="yi_upload").upload("sprite.png", buf.getvalue(), "image/png").run()
    assert not at.exception and not at.error, (at.exception, [e.value for e in at.error])
    assert any("120×90, colour" in c for i in at.image for c in i.captions)
    original, model_input, *recon = [_hwc(a) for a in shown]
    assert original.shape[-1] == 3 and model_input.shape == (64, 64, 3)
    yellow = model_input[32, 32]  # the centre crop keeps the rectangle in the middle
    assert yellow[0] > 200 and yellow[1] > 150 and yellow[2] < 60, yellow
    assert recon and all(a.shape[-1] == 3 for a in recon)
