"""More lenses in headless Chromium: every projection of the latent map renders and a click
decodes its point, a lasso decodes the mean of a group, and the nearest-neighbours and
directions pages render. Screenshots go to a pytest temporary folder (the path is printed)."""

from __future__ import annotations

import pytest

from tests.browser_support import caption, click_map_point, image_src, open_page, settle

pytestmark = pytest.mark.browser

# A small square (in screen pixels) around the median point of the 3s, for the lasso.
LASSO_JS = """
() => {
  const gd = document.querySelector('.js-plotly-plot');
  const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis, box = gd.getBoundingClientRect();
  const trace = gd._fullData[3];
  const med = a => [...a].sort((p, q) => p - q)[Math.floor(a.length / 2)];
  return {x: box.left + xa._offset + xa.l2p(med(trace.x)), y: box.top + ya._offset + ya.l2p(med(trace.y)),
          left: box.left + xa._offset, top: box.top + ya._offset, width: xa._length, height: ya._length};
}
"""


def wait_for_map(page) -> None:
    page.locator(".js-plotly-plot").first.wait_for(timeout=120_000)
    page.wait_for_function("() => document.querySelector('.js-plotly-plot')?._fullLayout?.xaxis", timeout=30_000)
    settle(page)


@pytest.mark.parametrize("proj", ["pca", "umap", "tsne", "dims"])
def test_each_projection_renders_and_a_click_decodes_its_point(server, page, shots, proj):
    open_page(page, server, f"latent-map?model=mnist-vae-mlp-z12&points=500&proj={proj}")
    wait_for_map(page)
    point = click_map_point(page, 3)  # the scatter has one trace per class: trace 3 is the 3s
    caption(page, f"input #{point} · 3").wait_for(timeout=90_000)  # a loaded 2-core CI box can take long
    settle(page)
    assert image_src(page, "reconstruction")
    assert f"row={point}" in page.url and f"proj={proj}" in page.url
    assert page.get_by_test_id("stException").count() == 0
    shots(page, f"latent-map-{proj}.png", full_page=True)


def test_a_lasso_decodes_the_mean_of_the_group(server, page, shots):
    open_page(page, server, "latent-map?model=mnist-vae-mlp-z12&points=500&proj=umap")
    wait_for_map(page)
    page.locator(".js-plotly-plot").first.hover()
    page.locator('.modebar-btn[data-title="Lasso Select"]').first.click()
    t = page.evaluate(LASSO_JS)
    r = 0.08 * min(t["width"], t["height"])
    corners = [(t["x"] - r, t["y"] - r), (t["x"] + r, t["y"] - r), (t["x"] + r, t["y"] + r), (t["x"] - r, t["y"] + r)]
    page.mouse.move(*corners[0])
    page.mouse.down()
    for a, b in zip(corners, [*corners[1:], corners[0]], strict=True):
        for k in range(1, 9):
            page.mouse.move(a[0] + (b[0] - a[0]) * k / 8, a[1] + (b[1] - a[1]) * k / 8)
    page.mouse.up()
    page.get_by_test_id("stImage").filter(has_text="decoded mean code of").wait_for(timeout=30_000)
    settle(page)
    assert page.get_by_test_id("stCaptionContainer").filter(has_text="Labels in the group").count() == 1
    assert page.get_by_test_id("stException").count() == 0
    shots(page, "latent-map-lasso.png", full_page=True)


@pytest.mark.parametrize("path", ["neighbours?row=3", "directions"])
def test_the_new_pages_render(server, page, shots, path):
    open_page(page, server, f"{path}&model=mnist-vae-mlp-z12" if "?" in path else f"{path}?model=mnist-vae-mlp-z12")
    # The page's images come at the end of a long first run, which a loaded machine may start only
    # after open_page's quiet half-second: wait for them, then check nothing failed on the way.
    page.get_by_test_id("stImage").nth(5).wait_for(timeout=90_000)
    settle(page)
    assert page.get_by_test_id("stException").count() == 0
    shots(page, f"{path.split('?')[0]}.png", full_page=True)


def test_the_camera_saves_an_svg_when_asked(server, page, tmp_path):
    open_page(page, server, "latent-map?model=mnist-vae-mlp-z12&points=500")
    wait_for_map(page)
    page.get_by_test_id("stButtonGroup").get_by_text("SVG", exact=True).click()
    settle(page)
    wait_for_map(page)
    page.locator(".js-plotly-plot").first.hover()
    with page.expect_download(timeout=60_000) as info:
        page.locator('.modebar-btn[data-title^="Download plot"]').first.click()
    download = info.value
    assert download.suggested_filename == "mnist-vae-mlp-z12-map-pca.svg"
    path = tmp_path / download.suggested_filename
    download.save_as(path)
    assert path.read_text(encoding="utf-8").lstrip().startswith("<svg")
