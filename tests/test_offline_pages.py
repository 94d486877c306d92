"""Offline, with nothing beside the clone, the shipped face and Fashion-MNIST models are shown on
their own held-out test images (``data/``), not on a warning or on LFW crops (issue 15's
"offline gaps"). AppTest on the shipped checkpoints; no data folder, no network."""

from __future__ import annotations

import pytest

from core.app import catalog
from core.data.registry import load_dataset
from core.formats.checkpoints import SHIPPED_DIR
from tests.app_support import app_env, open_page
from tests.conftest import no_network

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_thread")]

HELD_OUT = {  # shipped model -> (its data set, test images it must be shown on)
    "fashion-vae-conv-z16": ("fashion-mnist", 10000),
    "frey-vae-conv-z12": ("frey-faces", 196),
    "orl-faces-vae-conv-z32": ("olivetti-faces", 40),
}


@pytest.fixture
def offline_shipped(monkeypatch):
    no_network(monkeypatch)
    app_env(monkeypatch, folder=SHIPPED_DIR)


@pytest.mark.parametrize("model", HELD_OUT)
def test_the_pages_data_is_the_held_out_test_set(model):
    name, n = HELD_OUT[model]
    ds = load_dataset(name, download=False)
    x, _, what = catalog.pool(ds)
    assert len(x) == n and "test images" in what, "never mixed with the embedded LFW crops"
    assert "data/" in ds.source_note


@pytest.mark.parametrize("model", HELD_OUT)
@pytest.mark.parametrize("page", ["latent_map", "interpolate"])
def test_face_and_fashion_models_show_their_own_test_images_offline(offline_shipped, model, page):
    at = open_page(page, model)
    texts = " ".join(w.value for w in at.warning) + " ".join(e.value for e in at.error)
    assert "not available" not in texts and "cache" not in texts, texts
    assert at.image or at.get("plotly_chart"), "the demo is shown"
