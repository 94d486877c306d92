"""Support for the app's tests: tiny models trained once per test session, and small images.

The app reads its checkpoints from ``LATENTLAB_CHECKPOINTS``; the tests point it at a temporary
folder of models trained here in a few seconds (embedded data, MLPs, one epoch), so they never
depend on the shipped checkpoints or on the network.
"""

from __future__ import annotations

import fcntl
import functools
import io
import os
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from core.app.site import demo_pages
from tests.conftest import ROOT

# name -> (data set, kind, latent size); kind "dae" is an AE trained on noisy inputs
MODELS = {
    "mnist-vae-mlp-z2": ("mnist-5k", "vae", 2),
    "mnist-vae-mlp-z12": ("mnist-5k", "vae", 12),
    "mnist-ae-mlp-z12": ("mnist-5k", "ae", 12),
    "mnist-dae-mlp-z12": ("mnist-5k", "dae", 12),  # an AE trained on Gaussian noise σ = 0.5
    "mnist-cvae-mlp-z4": ("mnist-5k", "cvae", 4),
    "faces-vae-mlp-z3": ("lfw-faces", "vae", 3),
}
BROKEN = "broken-model"  # a JSON that is not a checkpoint: the sidebar lists it as unusable
# Every page file of the app but home, in the navigation's order (from the page table).
PAGE_FILES = [spec.stem for spec in demo_pages()]


RUN_ENV = "LATENTLAB_TEST_RUN"  # set once per pytest run by conftest.py, inherited by xdist's workers


def run_folder(name: str) -> Path:
    """A folder shared by every process of this test run (``/tmp/latentlab-RUN-name``); conftest.py
    removes them all when the run ends."""
    return Path(tempfile.gettempdir()) / f"latentlab-{os.environ[RUN_ENV]}-{name}"


@functools.cache
def model_folder() -> Path:
    """The test models, trained once per test run (about 7 s): the first process to ask trains
    them under a lock into a staging folder and renames it into place; xdist's other workers wait
    for it and share it (a browser test's server reads it too)."""
    root = run_folder("app-models")
    with open(f"{root}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not root.is_dir():
            staging = Path(tempfile.mkdtemp(prefix=f"{root.name}-staging-", dir=root.parent))
            _train_models(staging)
            staging.rename(root)
    return root


def _train_models(root: Path) -> None:
    """The models of MODELS (embedded data, MLPs, one epoch) and one broken JSON, into ``root``."""
    import torch

    from core.data.registry import load_dataset
    from core.formats.checkpoints import save_checkpoint
    from core.models.config import ModelConfig
    from core.models.evaluate import measure_card
    from core.training.train import TrainConfig, train_model

    torch.set_num_threads(1)
    data = {}
    for name, (dataset, kind, latent) in MODELS.items():
        ds = data.setdefault(dataset, load_dataset(dataset))
        noise = {"noise": "gaussian", "noise_level": 0.5} if kind == "dae" else {}
        kind = "ae" if kind == "dae" else kind
        mcfg = ModelConfig(
            kind=kind,
            arch="mlp",
            image_shape=ds.image_shape,
            latent_dim=latent,
            hidden=(64,),
            num_classes=ds.num_classes if kind == "cvae" else 0,
        )
        tcfg = TrainConfig(
            epochs=1 if dataset == "mnist-5k" else 3, batch_size=128, lr=3e-3, seed=0, device="cpu", **noise
        )
        model, history = train_model(mcfg, ds, tcfg)
        card = measure_card(model, ds.test_x, ds.test_y)
        card.update(epochs=history.last.epoch, data_source=ds.source_note)
        save_checkpoint(model, root / name, dataset=ds.info(), train=tcfg.to_dict(), card=card)
    (root / f"{BROKEN}.json").write_text("{not json", encoding="utf-8")


def with_shipped(folder: Path, *names: str) -> Path:
    """``folder``: a copy of the test models plus the named shipped checkpoints (JSON and weights)."""
    import shutil

    shutil.copytree(model_folder(), folder)
    for name in names:
        for suffix in (".json", ".safetensors"):
            shutil.copy(ROOT / "checkpoints" / f"{name}{suffix}", folder)
    return folder


def app_env(monkeypatch, folder: Path | None = None, user: Path | None = None) -> None:
    """Point the app at the test models (and an empty user folder); forget the cached listing."""
    from pages import _ui_load

    monkeypatch.setenv("LATENTLAB_CHECKPOINTS", str(folder or model_folder()))
    monkeypatch.setenv("LATENTLAB_USER_CHECKPOINTS", str(user or Path(tempfile.gettempdir()) / "latentlab-no-user"))
    monkeypatch.delenv("LATENTLAB_DOWNLOAD", raising=False)
    # AppTest runs no JavaScript: pages decode on the server (tests/test_pages_browser_decoder.py
    # checks the in-browser decoder's side of the pages).
    monkeypatch.setenv("LATENTLAB_DECODER", "server")
    _ui_load.models.clear()


def _without_pages_directory() -> None:
    """Run AppTests as serve.py serves the app: without Streamlit's legacy pages/ router. AppTest
    turns it back on before every run, and then a page file named like its URL path (neighbours,
    directions, denoising) runs without app.py's frame around it (no sidebar, no page rule)."""
    from streamlit.runtime.pages_manager import PagesManager

    init = PagesManager.__init__
    if getattr(init, "without_pages_directory", False):
        return

    def without_pages_directory(self, *args, **kwargs):
        init(self, *args, **kwargs)
        PagesManager.uses_pages_directory = False

    without_pages_directory.without_pages_directory = True
    PagesManager.__init__ = without_pages_directory


def app_test(page: str | None = None, query: dict | None = None, timeout: float = 90):
    """An AppTest of app.py opened with the link ``query``, on ``pages/<page>.py`` (else home),
    with app.py's frame around every page (see :func:`_without_pages_directory`)."""
    from streamlit.testing.v1 import AppTest

    _without_pages_directory()
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=timeout)
    if query:
        at.query_params.update(query)
    at.run()
    if page:
        # The first run (on the home page) drops other pages' settings from the URL, as a browser
        # opening the home page would; put them back as if the link had named the page.
        at.query_params.update({k: v for k, v in (query or {}).items() if k not in ("page", "model")})
        at.switch_page(f"pages/{page}.py").run()
    return at


def open_page(page: str, model: str | None = None, **query):
    """AppTest of ``pages/<page>.py`` opened with ``model`` and the link ``query``; no exception."""
    if model:
        query["model"] = model
    at = app_test(page, query=query)
    assert not at.exception, at.exception
    return at


def captions(at) -> str:
    """Every image caption on the page, joined."""
    return " ".join(c for img in at.image for c in img.captions)


def digit_png(digit: str = "7", size: int = 120, dark_on_light: bool = True) -> bytes:
    """A hand-drawn-looking digit as PNG bytes (thick strokes on paper)."""
    img = Image.new("L", (size, size), 255 if dark_on_light else 0)
    draw = ImageDraw.Draw(img)
    ink = 0 if dark_on_light else 255
    w = size // 10
    if digit == "7":
        draw.line([(size * 0.25, size * 0.2), (size * 0.75, size * 0.2), (size * 0.4, size * 0.85)], fill=ink, width=w)
    else:  # a "0"
        draw.ellipse([size * 0.3, size * 0.15, size * 0.7, size * 0.85], outline=ink, width=w)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def blank_png(size: int = 40) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.full((size, size), 255, np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def image_urls(at) -> list[str]:
    return [url for img in at.image for url in img.value]
