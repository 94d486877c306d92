"""A colour model in Chromium: the sliders of the shipped sprites VAE decode in the browser, paint
coloured pixels (the canvas read back: channels differ) and keep up with a drag."""

from __future__ import annotations

import numpy as np
import pytest

from pages import _ui_decoder
from tests.app_support import with_shipped
from tests.browser_support import open_page, serve_app, settle
from tests.test_browser_sliders import STATS, drag, ready

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not (_ui_decoder.STATIC / "ort" / "manifest.json").is_file(), reason="static/ort is not built (make web)"
    ),
]
MODEL = "sprites-vae-conv-z10"


@pytest.fixture(scope="module")
def colour_server(browser, tmp_path_factory):
    """The app on the test models plus the shipped colour VAE."""
    yield from serve_app(tmp_path_factory, with_shipped(tmp_path_factory.mktemp("models") / "m", MODEL))


def painted(page) -> np.ndarray:
    """The picture the browser decoder painted last, (H, W, 3) in 0..255."""
    rgba = np.array(page.evaluate("() => Array.from(window.__latentlab.pixels)"), np.int32)
    return rgba.reshape(64, 64, 4)[..., :3]


def test_the_sliders_of_a_colour_model_paint_colour_and_keep_up_with_a_drag(colour_server, page, shots):
    open_page(page, colour_server, f"sliders?model={MODEL}")
    before = ready(page)
    rgb = painted(page)
    assert np.ptp(rgb, axis=-1).max() > 100, "a coloured sprite: some pixel's channels differ widely"
    assert rgb.reshape(-1, 3).std(axis=0).min() > 1, "every channel varies over the picture"
    slider = page.locator("input[type=range]").first
    drag(page, slider, 1.0)
    page.mouse.up()
    settle(page)
    after = page.evaluate(STATS)
    assert after["distinct"] - before["distinct"] >= 30, "30 pictures or more in a 1 s drag"
    assert page.get_by_test_id("stException").count() == 0
    shots(page, "sliders-colour.png")
