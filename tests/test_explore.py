"""Opening a model where it lives: ``python -m core explore`` checks a diffusers VAE folder, our
checkpoint or a broken folder before anything starts, and from Python ``explore(module, images=…)``
exports a user's nn.Module, starts the app and returns a URL that opens it."""

from __future__ import annotations

import urllib.request

import numpy as np
import pytest
import torch
import torch.nn as nn
from PIL import Image

from core.cli import main
from tests.conftest import ROOT
from tests.test_spatial import _tiny_vae

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def sd_vae(tmp_path_factory):
    folder = tmp_path_factory.mktemp("vae") / "tiny-sd-vae"
    _tiny_vae().save_pretrained(folder, safe_serialization=True)
    return folder


def test_check_only_opens_each_kind_of_model_and_starts_nothing(sd_vae, capsys):
    assert main(["explore", str(sd_vae), "--check-only"]) == 0
    assert "ok: explore:tiny-sd-vae" in capsys.readouterr().out
    assert main(["explore", str(ROOT / "checkpoints" / "mnist-vae-conv-z16.safetensors"), "--check-only"]) == 0
    assert "ok: explore:mnist-vae-conv-z16" in capsys.readouterr().out


def test_a_pickled_vae_or_a_missing_path_is_refused_before_anything_starts(tmp_path, capsys):
    pickled = tmp_path / "old-vae"
    pickled.mkdir()
    (pickled / "config.json").write_text('{"_class_name": "AutoencoderKL"}')
    (pickled / "diffusion_pytorch_model.bin").write_bytes(b"\x80\x04 not read")
    assert main(["explore", str(pickled)]) == 2
    assert "safetensors only" in capsys.readouterr().err
    assert main(["explore", str(tmp_path / "nothing-here")]) == 2
    assert "nothing-here" in capsys.readouterr().err


class NotebookVAE(nn.Module):
    """A user's module in a notebook: RGB 16×16, latent 3."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.enc, self.dec = nn.Linear(3 * 16 * 16, 6), nn.Linear(3, 3 * 16 * 16)

    def encode(self, x):
        return self.enc(x.flatten(1)).chunk(2, dim=1)

    def decode(self, z):
        return torch.sigmoid(self.dec(z)).view(-1, 3, 16, 16)


def test_a_module_from_a_notebook_opens_in_the_app_with_its_images(tmp_path):
    from core.app.explore import explore

    images = tmp_path / "photos"
    images.mkdir()
    rng = np.random.default_rng(0)
    for i in range(5):
        Image.fromarray(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)).save(images / f"{i}.png")
    shown = explore(NotebookVAE().eval(), images=images, title="notebook-vae")
    try:
        assert shown.url.endswith("/sliders?model=explore:notebook-vae"), shown.url
        port = shown.url.split(":")[2].split("/")[0]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=5) as r:
            assert r.status == 200
        assert "notebook-vae" in repr(shown)
    finally:
        shown.stop()
    assert shown.process.poll() is not None, "stop() ends the server"


def test_listing_models_with_a_spatial_vae_beside_them_stays_torch_free(sd_vae, tmp_path):
    """The sidebar lists models on every page: a diffusers folder among yours must not pull in torch."""
    import os
    import shutil
    import subprocess
    import sys

    user = tmp_path / "user"
    shutil.copytree(sd_vae, user / "tiny-sd-vae")
    code = (
        "import sys; from core.app import catalog; keys = [e.key for e in catalog.list_models()]; "
        "print('user:tiny-sd-vae' in keys, 'explore:tiny-sd-vae' in keys, "
        "[m for m in ('torch', 'onnxruntime', 'diffusers') if m in sys.modules])"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT), "LATENTLAB_USER_CHECKPOINTS": str(user),
           "LATENTLAB_EXPLORE": str(sd_vae)}  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert out.split() == ["True", "True", "[]"], out
