"""The β sweep and Train pages in headless Chromium: a model trained from the page lands in the
sidebar's picker, and a sweep run from the page adds its rows. Wall times are printed."""

from __future__ import annotations

import time

import pytest

from tests.browser_support import alert, open_page, settle

pytestmark = pytest.mark.browser


def fill(page, label: str, value: str) -> None:
    box = page.get_by_test_id("stMain").get_by_label(label, exact=True)
    box.fill(value)
    box.press("Enter")
    settle(page)


def test_the_train_page_trains_a_vae_and_its_checkpoint_appears_in_the_picker(server, page, shots):
    open_page(page, server, "train")
    assert page.get_by_test_id("stException").count() == 0
    fill(page, "Epochs", "2")
    fill(page, "Checkpoint name", "browser-vae")
    t0 = time.perf_counter()
    page.get_by_role("button", name="Train").click()
    page.get_by_test_id("stProgress").first.wait_for(timeout=30_000)
    alert(page, "Success", "Saved as your checkpoint").wait_for(timeout=120_000)
    print(f"\n2-epoch MLP VAE on the offline subset, click to saved: {time.perf_counter() - t0:.1f} s")
    settle(page)
    assert page.get_by_test_id("stException").count() == 0
    assert page.locator(".js-plotly-plot").count() == 1, "the loss curves"
    shots(page, "train-done.png", full_page=True)
    page.get_by_role("button", name="Open it in the sidebar").click()
    settle(page)
    shots(page, "train-picked.png")
    page.wait_for_url("**model=user*browser-vae*", timeout=30_000)
    picker = page.get_by_test_id("stSidebar").get_by_test_id("stSelectbox").nth(1)
    shown = picker.inner_text() + " ".join(i.input_value() for i in picker.locator("input").all())
    assert "browser-vae (your model)" in shown
    assert "model=user%3Abrowser-vae" in page.url or "model=user:browser-vae" in page.url


def test_a_sweep_from_the_page_adds_rows(server, page, shots):
    open_page(page, server, "beta-sweep")
    alert(page, "Info", "No β family").wait_for(timeout=30_000)
    main = page.get_by_test_id("stMain")
    main.get_by_label("β values", exact=True).fill("0.5, 4")
    main.get_by_label("Epochs", exact=True).fill("1")
    t0 = time.perf_counter()
    main.get_by_role("button", name="Run the sweep").click()
    page.get_by_test_id("stAlertContentSuccess").get_by_text("2 models (finished)").wait_for(timeout=120_000)
    print(f"\n2-model sweep, click to rows: {time.perf_counter() - t0:.1f} s")
    settle(page)
    page.locator(".js-plotly-plot").nth(1).wait_for(timeout=30_000)
    assert page.get_by_test_id("stException").count() == 0
    page.get_by_test_id("stDataFrame").first.wait_for(timeout=30_000)  # the table, drawn after the rows join
    assert page.get_by_test_id("stDataFrame").count() == 1
    assert page.locator(".js-plotly-plot").count() == 2
    assert page.get_by_test_id("stMarkdown").get_by_text("β = 4", exact=True).count() == 1, "a row of images per β"
    shots(page, "beta-sweep-run.png", full_page=True)
