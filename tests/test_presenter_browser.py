"""Presenter mode in headless Chromium on a projector's 1024×768 screen: ``?present=1`` hides the
sidebar and the toolbar, images are at least 256 px on their short side, "Next demo" opens the
talk's next bookmark; and in every mode no "Deploy" button, and /welcome opens the home page
without a "Page not found" box."""

from __future__ import annotations

import json
import os
from urllib.parse import parse_qsl, urlsplit

import pytest

from tests.browser_support import settle

pytestmark = pytest.mark.browser

TALK = [
    "sliders?model=faces-vae-mlp-z3&decoder=server",
    "latent-map?model=mnist-vae-mlp-z2&points=500",
    "interpolation?model=mnist-vae-mlp-z12&method=slerp",
]
IMAGE_SIZES = """[...document.querySelectorAll('[data-testid=stMain] [data-testid=stImage] img')].map(i => {
  const r = i.getBoundingClientRect(); return [i.naturalWidth, i.naturalHeight, r.width, r.height]; })"""


@pytest.fixture(scope="module", autouse=True)
def _talk(tmp_path_factory):
    """The server (started after this, same scope) reads this talk file."""
    path = tmp_path_factory.mktemp("talk") / "talk.json"
    path.write_text(json.dumps(TALK), encoding="utf-8")
    old = os.environ.get("LATENTLAB_TALK")
    os.environ["LATENTLAB_TALK"] = str(path)
    yield
    if old is None:
        os.environ.pop("LATENTLAB_TALK", None)
    else:
        os.environ["LATENTLAB_TALK"] = old


@pytest.fixture
def projector(browser):
    ctx = browser.new_context(viewport={"width": 1024, "height": 768})
    yield ctx.new_page()
    ctx.close()


def open_main(page, url: str) -> None:
    page.goto(url)
    page.get_by_test_id("stMain").get_by_role("heading").first.wait_for(timeout=90_000)
    settle(page)


def test_present_hides_the_sidebar_and_toolbar_and_shows_large_images(server, projector):
    open_main(projector, f"{server}/sliders?model=faces-vae-mlp-z3&decoder=server&present=1")
    assert not projector.get_by_test_id("stSidebar").is_visible()
    assert not projector.get_by_test_id("stToolbar").is_visible()
    assert projector.get_by_text("Deploy").count() == 0
    assert projector.evaluate("getComputedStyle(document.documentElement).fontSize") == "18px"
    sizes = projector.evaluate(IMAGE_SIZES)
    assert sizes, "the sliders' picture"
    for natural_w, natural_h, shown_w, shown_h in sizes:
        assert min(natural_w, natural_h) >= 256 and min(shown_w, shown_h) >= 255.5, sizes
    assert projector.get_by_test_id("stException").count() == 0


def test_next_demo_steps_through_the_talk_and_keeps_presenter_mode(server, projector):
    open_main(projector, f"{server}/sliders?model=faces-vae-mlp-z3&decoder=server&present=1")
    for demo in TALK[1:] + TALK[:1]:
        projector.get_by_role("button", name="Next demo").click()
        path, query = demo.split("?")
        projector.wait_for_url(f"**/{path}?**", timeout=60_000)
        settle(projector)
        shown = dict(parse_qsl(urlsplit(projector.url).query))
        assert {k: shown.get(k) for k, _ in parse_qsl(query)} == dict(parse_qsl(query))
        assert shown["present"] == "1" and not projector.get_by_test_id("stSidebar").is_visible()
        assert projector.get_by_test_id("stException").count() == 0


def test_no_deploy_button_and_welcome_opens_home_without_a_pop_up(server, page):
    open_main(page, f"{server}/welcome")
    assert page.get_by_text("Page not found").count() == 0
    assert urlsplit(page.url).path == "/" and page.get_by_role("heading", name="Latent Lab").count() == 1
    assert page.get_by_test_id("stSidebar").is_visible()
    assert page.get_by_text("Deploy").count() == 0


def test_the_interpolation_strip_is_on_the_first_screen_with_readable_tiles(server, projector):
    """The path is the demo: in presenter mode the two ends are named, not drawn (the strip's first
    and last tiles show them), and a long strip wraps into rows of tiles of at least 128 px."""
    open_main(projector, f"{server}/interpolation?model=mnist-vae-mlp-z12&steps=10&present=1")
    boxes = projector.evaluate("""[...document.querySelectorAll('[data-testid=stMain] [data-testid=stImage] img')]
      .map(i => { const r = i.getBoundingClientRect(); return [r.width, r.top]; })""")
    ((shown_w, top),) = boxes
    columns = 7  # 10 steps wrap after 7 tiles of 28×28 at 1024 px (pages/_ui_charts.strip_columns)
    tile = shown_w / columns
    assert tile >= 128, boxes
    assert top + tile <= 768, f"the strip's first row is on a 768-px screen (it starts at {top:.0f} px)"
    assert projector.get_by_text("the strip's first tile").count() == 1
