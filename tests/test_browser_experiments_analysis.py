"""The denoising and anomaly pages in headless Chromium: each renders without an exception box,
denoising shows its PSNR numbers, anomalies trains its held-out model on a click and shows the
AUROC, and the threshold slider (a fragment) moves the precision; at 1024×768 the denoising grid's
rows line up and no control is clipped. Screenshots (``--shots``) go to a pytest temporary folder
whose path is printed."""

from __future__ import annotations

import re

import pytest

from tests.browser_support import open_page, settle

pytestmark = pytest.mark.browser
TALL = {"width": 1400, "height": 3200}  # the whole page in one screen: charts render when in view


def test_denoising_shows_the_columns_with_psnr(server, page, shots):
    page.set_viewport_size(TALL)
    open_page(page, server, "denoising?model=mnist-vae-mlp-z12")
    page.get_by_text(re.compile(r"\d+\.\d dB · SSIM")).first.wait_for(timeout=90_000)
    settle(page)
    assert page.get_by_test_id("stException").count() == 0
    assert page.get_by_text("Page not found").count() == 0
    for column in ("Noisy", "Denoising AE", "VAE", "Plain AE", "best classical", "PCA"):
        assert page.get_by_test_id("stMarkdown").get_by_text(column, exact=True).count() >= 1, column
    assert page.get_by_text(re.compile(r"\d+\.\d dB · SSIM")).count() == 6
    page.locator(".js-plotly-plot").first.wait_for(timeout=30_000)
    assert page.locator(".js-plotly-plot").count() == 1
    shots(page, "denoising.png", full_page=True)
    page.get_by_test_id("stButtonGroup").first.get_by_text("Occlusion", exact=True).click()
    page.get_by_role("heading", name=re.compile(r"^Occlusion at level 0\.25")).wait_for(timeout=60_000)
    page.wait_for_url(re.compile("noise=occlusion"), timeout=60_000)  # written at the end of the run
    settle(page)
    assert page.get_by_test_id("stException").count() == 0
    shots(page, "denoising-occlusion.png", full_page=True)


def test_anomalies_trains_on_a_click_and_shows_the_auroc(server, page, shots):
    page.set_viewport_size(TALL)
    open_page(page, server, "anomalies?model=mnist-vae-mlp-z12")
    assert page.get_by_test_id("stException").count() == 0
    train = page.get_by_role("button", name=re.compile("Train without the 5s"))
    if train.count():  # another test in this server process may have trained it already
        train.click()
    auroc = page.get_by_test_id("stMetric").filter(has_text="AUROC · Reconstruction error")
    auroc.wait_for(timeout=90_000)
    settle(page)
    value = float(auroc.get_by_test_id("stMetricValue").inner_text())
    assert 0.5 < value <= 1.0
    assert page.get_by_test_id("stMetric").filter(has_text="AUROC · PCA baseline").count() == 1
    page.locator(".js-plotly-plot").nth(1).wait_for(timeout=30_000)
    assert page.locator(".js-plotly-plot").count() == 2
    assert page.get_by_test_id("stException").count() == 0
    shots(page, "anomalies.png", full_page=True)

    precision = page.get_by_test_id("stMetric").filter(has_text="Precision").get_by_test_id("stMetricValue")
    before = precision.inner_text()
    page.get_by_role("slider").first.focus()
    for _ in range(40):
        page.keyboard.press("ArrowRight")
    page.wait_for_function(
        "([before]) => [...document.querySelectorAll('[data-testid=stMetric]')].some(m => m.innerText.includes("
        "'Precision') && !m.innerText.includes(before))",
        arg=[before],
        timeout=30_000,
    )
    settle(page)
    assert precision.inner_text() != before
    assert page.get_by_test_id("stException").count() == 0
    shots(page, "anomalies-threshold.png", full_page=True)


GRID_JS = """
() => {
  // The top of every image of the grid, grouped by its column's left edge.
  const cols = {};
  for (const img of document.querySelectorAll('[data-testid="stMain"] [data-testid="stImage"] img')) {
    const r = img.getBoundingClientRect();
    if (r.width < 30) continue;
    (cols[Math.round(r.left)] ??= []).push(Math.round(r.top + window.scrollY));
  }
  return Object.values(cols);
}
"""
FITS_JS = """
(label) => {
  // The button whose text is `label`: inside the main area and its own column, text not cut.
  const b = [...document.querySelectorAll('[data-testid="stMain"] button')]
    .find(e => e.innerText.trim().endsWith(label));
  if (!b) return 'missing';
  const r = b.getBoundingClientRect();
  const col = b.closest('[data-testid="stColumn"]') || b.closest('[data-testid="stMain"]');
  const c = col.getBoundingClientRect();
  const cut = [b, ...b.querySelectorAll('*')].some(e => e.scrollWidth > e.clientWidth + 1);
  const fits = r.left >= c.left - 1 && r.right <= c.right + 1 && !cut;
  return fits ? 'fits' : `clipped ${r.left}-${r.right} in ${c.left}-${c.right} cut=${cut}`;
}
"""


def test_denoising_at_1024x768_the_rows_line_up_and_no_control_is_clipped(server, browser, shots):
    ctx = browser.new_context(viewport={"width": 1024, "height": 768})
    page = ctx.new_page()
    try:
        open_page(page, server, "denoising")
        page.get_by_test_id("stImage").nth(20).wait_for(timeout=90_000)
        shots(page, "denoising-1024.png", full_page=True)
        columns = [c for c in page.evaluate(GRID_JS) if len(c) >= 4]
        assert len(columns) == 7, columns
        for row in zip(*columns, strict=False):
            assert max(row) - min(row) <= 2, f"image tops differ across the columns: {row}"
        for label in ("Occlusion", "Other images", "Gaussian"):
            assert page.evaluate(FITS_JS, label) == "fits", label
    finally:
        ctx.close()
