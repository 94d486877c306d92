"""The sliders that decode in the browser (onnxruntime-web in headless Chromium): a drag paints
many frames and the server hears of it once, the link carries the final code, the browser's
pixels equal the server's decode, the decoder is fetched once per browser, the interpolation
scrubber, and the fallback to the server-side sliders without WebAssembly."""

from __future__ import annotations

import time
from urllib.parse import parse_qs, urlparse

import numpy as np
import pytest

from pages import _ui_decoder
from tests.app_support import model_folder
from tests.browser_support import image_src, open_page, settle

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not (_ui_decoder.STATIC / "ort" / "manifest.json").is_file(), reason="static/ort is not built (make web)"
    ),
]
STATS = "() => { const s = window.__latentlab || {}; return {frames: s.frames || 0, distinct: s.distinct || 0, \
ready: s.ready || 0, fetched: s.fetched || []}; }"


def ready(page) -> dict:
    page.wait_for_function("() => (window.__latentlab?.ready || 0) > 0", timeout=90_000)
    return page.evaluate(STATS)


def link_code(page) -> list[float]:
    return [float(v) for v in parse_qs(urlparse(page.url).query)["z"][0].split(",")]


def drag(page, slider, seconds: float = 1.0) -> int:
    """Drag ``slider``'s thumb from the middle towards the left for ``seconds``; returns the moves."""
    slider.scroll_into_view_if_needed()
    box = slider.bounding_box()
    y = box["y"] + box["height"] / 2
    page.mouse.move(box["x"] + box["width"] * 0.5, y)
    page.mouse.down()
    start, moves = time.time(), 0
    while (elapsed := time.time() - start) < seconds:
        page.mouse.move(box["x"] + box["width"] * (0.5 - 0.4 * elapsed / seconds), y)
        moves += 1
    return moves


def test_a_drag_paints_many_frames_and_the_server_hears_of_it_once(server, page, shots):
    sent = []
    page.on("websocket", lambda ws: ws.on("framesent", lambda payload: sent.append(time.time())))
    open_page(page, server, "sliders?model=mnist-vae-mlp-z12")
    before = ready(page)
    slider = page.locator("input[type=range]").first
    dim = int(slider.get_attribute("aria-label").split(" ")[0][1:])  # "z7 · KL 1.23 nats"
    messages = len(sent)
    moves = drag(page, slider)
    during = len(sent) - messages
    page.mouse.up()
    page.wait_for_function("d => new URLSearchParams(location.search).get('z').split(',')[d] !== '0.00'", arg=dim)
    settle(page)
    after = page.evaluate(STATS)
    assert after["distinct"] - before["distinct"] >= min(10, moves // 2), "a frame per move of the drag"
    assert during == 0 and len(sent) - messages == 1, "one message, when the drag ends"
    assert link_code(page)[dim] == pytest.approx(float(slider.input_value()), abs=0.005)
    assert page.get_by_test_id("stException").count() == 0
    shots(page, "sliders-in-the-browser.png")


@pytest.mark.parametrize(("model", "query"), [("mnist-vae-mlp-z2", ""), ("mnist-cvae-mlp-z4", "&y=3"),
                                              ("faces-vae-mlp-z3", "")])  # fmt: skip
def test_the_browsers_pixels_equal_the_servers_decode(server, page, model, query):
    from core.formats.checkpoints import load_checkpoint
    from core.lenses.latent import decode

    open_page(page, server, f"sliders?model={model}{query}")
    ready(page)
    slider = page.locator("input[type=range]").first
    slider.focus()
    for _ in range(7):
        page.keyboard.press("ArrowRight")
    page.wait_for_function("() => new URLSearchParams(location.search).get('z').includes('0.35')")
    settle(page)
    time.sleep(0.3)
    z = np.array(link_code(page), np.float32)
    y = 3 if query else None
    want = decode(load_checkpoint(model_folder() / f"{model}.safetensors").model, z, y)[0]  # (C, H, W)
    want = (np.clip(want, 0, 1) * 255).round().astype(int)
    rgba = np.array(page.evaluate("() => Array.from(window.__latentlab.pixels)")).reshape(*want.shape[1:], 4)
    got = rgba[..., : want.shape[0]].transpose(2, 0, 1)
    assert np.abs(got - want).max() <= 1, "within 1/255"


def test_the_decoder_is_fetched_once_then_the_browser_keeps_it(server, fresh_page):
    page = fresh_page
    open_page(page, server, "sliders?model=mnist-vae-mlp-z2")
    first = ready(page)["fetched"]
    assert any("/app/static/decoders/" in u for u in first) and any(u.endswith(".wasm") for u in first)
    page.reload()
    page.get_by_test_id("stSidebar").get_by_text("Checkpoint", exact=True).wait_for(timeout=90_000)
    assert ready(page)["fetched"] == [], "a reload finds onnxruntime-web and the decoder in IndexedDB"


def test_the_interpolation_scrubber_decodes_in_the_browser(server, page, shots):
    open_page(page, server, "interpolation?model=mnist-vae-mlp-z12&method=slerp")
    before = ready(page)
    scrubber = page.locator("input[type=range]").last
    drag(page, scrubber, 0.5)
    page.mouse.up()
    settle(page)
    assert page.evaluate(STATS)["distinct"] - before["distinct"] >= 5
    assert page.get_by_test_id("stException").count() == 0
    shots(page, "interpolation-scrubber.png")


def test_without_webassembly_the_sliders_decode_on_the_server(server, browser, shots):
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
    ctx.add_init_script("delete globalThis.WebAssembly")
    page = ctx.new_page()
    try:
        open_page(page, server, "sliders?model=mnist-vae-mlp-z2")
        page.get_by_test_id("stSlider").first.wait_for(timeout=60_000)
        settle(page)
        line = (
            page.get_by_test_id("stMain")
            .get_by_test_id("stCaptionContainer")
            .filter(has_text="The sliders decode on the server")
        )
        assert line.count() == 1 and "WebAssembly is unavailable" in line.inner_text()
        before = image_src(page, "decoded from the sliders")
        page.get_by_role("slider").first.focus()
        page.keyboard.press("ArrowRight")
        page.wait_for_function(
            "src => [...document.querySelectorAll('[data-testid=stImage] img')].every(i => i.src !== src)",
            arg=before,
            timeout=30_000,
        )
        assert page.get_by_test_id("stException").count() == 0
        shots(page, "sliders-without-webassembly.png")
    finally:
        ctx.close()
