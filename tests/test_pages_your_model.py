"""Bring your own model: a VAE defined here (not in core) is exported with the documented lines,
uploaded on the "Load your model" page, and explored on every Explore page; broken uploads get
one clear message each, and nothing is written anywhere else."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
import streamlit.testing.v1.app_test as app_test_module
import torch
import torch.nn as nn
import torch.nn.functional as F
from streamlit.runtime.pages_manager import PagesManager

from core.app.site import page_table
from core.formats.checkpoints import SHIPPED_DIR
from core.formats.export import export_model
from tests.app_support import app_env, app_test

pytestmark = pytest.mark.usefixtures("one_thread")
EXPLORE = [s.stem for s in page_table() if s.section == "Explore"]


class TinyVAE(nn.Module):
    """A user's own VAE, MLP 784-32-4: encode(x) -> (mu, logvar), decode(z) -> image in [0, 1]."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(1)
        self.hidden, self.mu, self.logvar = nn.Linear(784, 32), nn.Linear(32, 4), nn.Linear(32, 4)
        self.up, self.out = nn.Linear(4, 32), nn.Linear(32, 784)

    def encode(self, x):
        h = F.silu(self.hidden(x.flatten(1)))
        return self.mu(h), self.logvar(h)

    def decode(self, z):
        return torch.sigmoid(self.out(F.silu(self.up(z)))).view(-1, 1, 28, 28)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """The three files of an exported TinyVAE, by name, and the module itself."""
    module = TinyVAE().eval()
    folder = tmp_path_factory.mktemp("export") / "tiny-vae"
    export_model(module, folder, image_shape=(1, 28, 28), latent_dim=4, title="Tiny VAE", dataset="mnist-5k")
    return {p.name: p.read_bytes() for p in folder.iterdir()}, module


class _NavigationPages(PagesManager):
    """As a served app after its first run: st.navigation's pages, not the pages/ folder (AppTest
    would otherwise run a page whose URL path is its file name, such as /neighbours, without app.py)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        PagesManager.uses_pages_directory = False


@pytest.fixture
def user(monkeypatch, tmp_path):
    folder = tmp_path / "user"
    app_env(monkeypatch, user=folder)
    monkeypatch.setattr(app_test_module, "PagesManager", _NavigationPages)
    return folder


def upload(at, files: dict[str, bytes], name: str = "tiny-vae"):
    at.file_uploader(key="ym_files").set_value([(n, data, "application/octet-stream") for n, data in files.items()])
    at.run()
    at.text_input(key="ym_name").set_value(name)
    at.button(key="ym_add").click().run()
    assert not at.exception, at.exception
    return at


def shipped_files() -> dict[str, float]:
    return {p.name: p.stat().st_mtime for p in SHIPPED_DIR.iterdir()}


def test_an_uploaded_model_joins_the_picker_and_every_explore_page_runs_on_it(exported, user):
    files, _ = exported
    before = shipped_files()
    at = upload(app_test("your_model"), files)
    assert not at.error, [e.value for e in at.error]
    assert (user / "tiny-vae" / "model.json").is_file()
    card = json.loads((user / "tiny-vae" / "model.json").read_text())["card"]
    assert np.isfinite(card["test_loss"]) and card["test_n"] == 10000  # measured on MNIST's real test set (data/)
    assert any("tiny-vae" in m.value and "just added" in m.value for m in at.markdown)
    at.button(key="ym_open_tiny-vae").click().run()
    assert at.sidebar.selectbox[1].value == "user:tiny-vae"
    for page in EXPLORE:
        at = app_test(page, query={"model": "user:tiny-vae"})
        assert not at.exception, (page, at.exception)
        assert at.sidebar.selectbox[1].value == "user:tiny-vae", page
        if page in ("latent_sliders", "sampling_manifold", "interpolate", "latent_map"):
            assert at.image, f"{page} shows images"
    assert shipped_files() == before, "nothing is written into checkpoints/"


def test_the_sliders_page_shows_what_torch_decodes(exported, user, monkeypatch):
    from pages import _ui_charts

    files, module = exported
    upload(app_test("your_model"), files)
    shown: list[np.ndarray] = []
    to_png = _ui_charts.to_png
    monkeypatch.setattr(_ui_charts, "to_png", lambda arr, scale=1: shown.append(np.array(arr)) or to_png(arr, scale))
    at = app_test("latent_sliders", query={"model": "user:tiny-vae", "z": "0.50,-1.00,0.25,2.00"})
    assert not at.exception, at.exception
    with torch.no_grad():
        ref = module.decode(torch.tensor([[0.5, -1.0, 0.25, 2.0]]))[0].numpy()
    decoded = [a for a in shown if a.shape == ref.shape]
    assert decoded, "the page decoded the linked code"
    assert np.abs(decoded[-1] - ref).max() < 1e-4  # the image the page shows, as torch decodes it


def _without(files: dict[str, bytes], name: str) -> dict[str, bytes]:
    return {k: v for k, v in files.items() if k != name}


def _spec_with(files: dict[str, bytes], **changes) -> dict[str, bytes]:
    spec = json.loads(files["model.json"]) | changes
    return files | {"model.json": json.dumps(spec).encode()}


BROKEN = {
    "missing encoder": (lambda f: _without(f, "encoder.onnx"), "encoder.onnx"),
    "missing decoder": (lambda f: _without(f, "decoder.onnx"), "decoder.onnx"),
    "missing model.json": (lambda f: _without(f, "model.json"), "model.json"),
    "garbled model.json": (lambda f: f | {"model.json": b"{not json"}, "model.json"),
    "renamed pickle": (lambda f: f | {"decoder.onnx": pickle.dumps({"a": 1})}, "decoder.onnx"),
    "text as a graph": (lambda f: f | {"encoder.onnx": b"hello, I am not ONNX\n"}, "encoder.onnx"),
    "huge latent": (lambda f: _spec_with(f, latent_dim=10**9), "latent_dim"),
    "latent mismatch": (lambda f: _spec_with(f, latent_dim=5), "5"),
    "wrong input name": (lambda f: _spec_with(f, encoder_inputs=["image"]), "image"),
    "one output declared two": (lambda f: _spec_with(f, encoder="deterministic", encoder_outputs=["z"]), "output"),
    "image shape mismatch": (lambda f: _spec_with(f, image_shape=[1, 32, 32]), "32"),
    "unknown likelihood": (lambda f: _spec_with(f, likelihood="poisson"), "likelihood"),
}


@pytest.mark.parametrize("case", list(BROKEN))
def test_a_broken_upload_gets_one_clear_message_and_writes_nothing(exported, user, case):
    files, _ = exported
    broken, needle = BROKEN[case]
    before = shipped_files()
    at = upload(app_test("your_model"), broken(files), name="broken")
    (error,) = at.error
    assert error.value.startswith("This model cannot be used:") and needle in error.value, error.value
    assert not (user / "broken").exists() and not [p for p in user.glob("*") if p.name != ".keep"], "nothing left"
    assert shipped_files() == before
    at = app_test("latent_sliders")  # the app still serves
    assert not at.exception
