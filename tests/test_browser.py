"""The app in headless Chromium (Debian's), driven by Playwright: what only a browser shows.

The home page renders (every page, opened by its link on a fresh server, is in
test_browser_deep_links.py), a slider key press changes the decoded image, a click on the latent
map decodes that point, an uploaded PNG is encoded, and a bookmark brings
the sliders back. The server runs on the small models of ``tests/app_support.py``; screenshots
go to a pytest temporary folder (the path is printed).
"""

from __future__ import annotations

import importlib.util
from urllib.parse import parse_qs, urlparse

import pytest

from core.app.site import demo_pages
from tests.app_support import digit_png
from tests.browser_support import alert, caption, click_map_point, image_src, open_page, settle

pytestmark = pytest.mark.browser

PAGES = [spec.url_path for spec in demo_pages()]  # every page but home, from the page table


def test_home_page_renders_in_chromium(server, page, shots):
    page.goto(server)
    page.get_by_role("heading", name="Latent Lab", exact=True).wait_for(timeout=60_000)
    page.get_by_test_id("stMain").get_by_text("reparameterization trick", exact=True).wait_for(timeout=30_000)
    settle(page)
    assert page.get_by_test_id("stException").count() == 0
    assert page.get_by_test_id("stSidebarNavLink").count() == 1 + len(PAGES)
    shots(page, "home.png")


def test_a_slider_key_press_changes_the_image(server, page, shots):
    open_page(page, server, "sliders?model=mnist-vae-mlp-z2&decoder=server")
    before = image_src(page, "decoded from the sliders")
    slider = page.get_by_role("slider").first
    slider.focus()
    for _ in range(10):
        page.keyboard.press("ArrowRight")
    page.wait_for_function(
        "src => [...document.querySelectorAll('[data-testid=stImage] img')].every(i => i.src !== src)",
        arg=before,
        timeout=30_000,
    )
    settle(page)
    assert image_src(page, "decoded from the sliders") != before
    z = parse_qs(urlparse(page.url).query)["z"][0].split(",")
    assert sorted(z) == ["0.00", "0.50"], "ten presses of 0.05 on one slider, in the link"
    assert page.get_by_test_id("stException").count() == 0
    shots(page, "sliders-moved.png")


def test_a_bookmark_restores_the_sliders(server, page):
    open_page(page, server, "sliders?model=mnist-vae-mlp-z2&z=1.5,-2&decoder=server")
    values = page.get_by_test_id("stSliderThumbValue").all_inner_texts()
    assert sorted(values) == ["-2.00", "1.50"]
    open_page(page, server, "sliders?model=nope&z=garbage")
    assert alert(page, "Info", "could not be used").count() == 1
    assert page.get_by_test_id("stException").count() == 0


def test_a_click_on_the_latent_map_decodes_that_point(server, page, shots):
    open_page(page, server, "latent-map?model=mnist-vae-mlp-z12")
    page.locator(".js-plotly-plot").first.wait_for(timeout=60_000)
    page.wait_for_function("() => document.querySelector('.js-plotly-plot')?._fullLayout?.xaxis", timeout=30_000)
    point = click_map_point(page, 3)  # one trace per class: trace 3 is the 3s
    assert point != 0  # the point shown before the click
    caption(page, f"input #{point} · 3").wait_for(timeout=30_000)
    settle(page)
    assert image_src(page, "reconstruction")
    assert f"row={point}" in page.url
    assert page.get_by_test_id("stException").count() == 0
    shots(page, "latent-map-clicked.png")


def test_an_uploaded_png_is_encoded_and_a_bad_file_gets_a_message(server, page, shots, tmp_path):
    good, bad = tmp_path / "seven.png", tmp_path / "broken.png"
    good.write_bytes(digit_png("7"))
    bad.write_bytes(b"not an image at all")
    open_page(page, server, "your-image?model=mnist-vae-mlp-z12")
    page.get_by_test_id("stFileUploaderDropzoneInput").set_input_files(str(good))
    caption(page, "its reconstruction").wait_for(timeout=60_000)
    settle(page)
    assert page.get_by_test_id("stImage").count() == 3
    assert page.get_by_test_id("stException").count() == 0
    shots(page, "your-image.png", full_page=True)
    page.get_by_test_id("stFileUploaderDropzoneInput").set_input_files(str(bad))
    alert(page, "Error", "This file cannot be used").wait_for(timeout=60_000)
    assert page.get_by_test_id("stException").count() == 0


@pytest.mark.skipif(
    importlib.util.find_spec("streamlit_drawable_canvas") is None, reason="streamlit-drawable-canvas is not installed"
)
def test_a_drawn_digit_sets_the_sliders(server, page, shots):
    open_page(page, server, "sliders?model=mnist-vae-mlp-z12&decoder=server")
    page.get_by_test_id("stButtonGroup").get_by_text("Draw", exact=True).click()
    settle(page)
    pad = page.locator("canvas").last
    pad.wait_for(timeout=30_000)
    box = pad.bounding_box()
    page.mouse.move(box["x"] + 0.5 * box["width"], box["y"] + 0.2 * box["height"])
    page.mouse.down()
    for i in range(16):
        page.mouse.move(box["x"] + 0.5 * box["width"], box["y"] + (0.2 + 0.04 * i) * box["height"])
    page.mouse.up()
    caption(page, "decoded from the sliders (your drawing)").wait_for(timeout=30_000)
    settle(page)
    z = parse_qs(urlparse(page.url).query)["z"][0].split(",")
    assert any(v != "0.00" for v in z)
    assert page.get_by_test_id("stException").count() == 0
    shots(page, "sliders-drawn.png")
