"""Bookmarks round-trip, in headless Chromium: for every page of the page table, a link that sets
each of the page's URL settings (its ``PAGE["params"]``) to a non-default valid value opens with
those values kept, and the URL it ends on, opened in a new tab (a new session),
shows the same settings (every widget of the main area), the same URL and the same image bytes.
Each look is a new tab: a new session, in the module's one browser context (shared caches).

One server for all pages (the module's ``server`` fixture, on the test models of
``tests/app_support.py``). A page that gains a URL setting needs a value in CASES
(``test_every_url_setting_has_a_case`` says which).
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest

from core.app.site import page_table
from tests.browser_support import settle

pytestmark = [pytest.mark.browser, pytest.mark.slow]

MODEL = "mnist-vae-mlp-z12"  # not the sidebar's default (mnist-vae-mlp-z2): the model round-trips too
CVAE = "mnist-cvae-mlp-z4"  # for the settings only a conditional VAE shows (a digit to draw)

# page URL path -> links: (model, {param: non-default value, written as the page writes it}).
CASES: dict[str, list[tuple[str, dict[str, str]]]] = {
    "sliders": [
        (CVAE, {"z": "0.50,-1.00,0.00,1.50", "y": "3", "decoder": "server"}),
        (MODEL, {"start": "random", "seed": "5", "decoder": "server"}),
        (MODEL, {"start": "test", "item": "12", "decoder": "server"}),
    ],
    "sampling": [
        (
            CVAE,
            {
                "t": "0.5",
                "n": "4",
                "seed": "7",
                "grid": "5",
                "span": "2",
                "axes": "dims",
                "dx": "1",
                "dy": "2",
                "digit": "3",
            },
        ),
        (MODEL, {"axes": "pca"}),
    ],
    "latent-map": [
        (MODEL, {"points": "500", "proj": "dims", "x": "3", "y": "5", "row": "7"}),
        (MODEL, {"group": "3-5,9"}),
    ],
    "neighbours": [
        (MODEL, {"row": "5", "k": "4", "metric": "cosine"}),
        (CVAE, {"query": "upload", "digit": "3"}),
    ],
    "interpolation": [
        (MODEL, {"a": "10", "b": "20", "src_a": "test", "src_b": "test", "method": "slerp", "steps": "6", "all": "1"}),
        (MODEL, {"src_a": "random", "method": "pixel"}),
        (CVAE, {"src_a": "upload", "ya": "3", "src_b": "upload", "yb": "5"}),
    ],
    "directions": [
        (MODEL, {"a": "3", "b": "8", "start": "5", "alpha": "-0.5", "name": "3 → 8, the loops"}),
        (MODEL, {"src_a": "hand", "rows_a": "3-5,9", "src_b": "map", "rows_b": "10-12"}),
    ],
    "ae-vs-vae": [
        (
            MODEL,
            {
                "pair": "mnist-ae-mlp-z12,mnist-vae-mlp-z12",
                "points": "500",
                "a": "10",
                "b": "20",
                "steps": "6",
                "grid": "4",
                "seed": "3",
            },
        )
    ],
    "denoising": [
        (
            MODEL,
            {
                "noise": "salt-pepper",
                "level": "0.2",
                "input": "test",
                "rows": "2",
                "draw": "3",
                "dae": "mnist-dae-mlp-z12",
                "vae": "mnist-vae-mlp-z12",
                "ae": "mnist-ae-mlp-z12",
            },
        )
    ],
    "anomalies": [(MODEL, {"setup": "cross", "score": "elbo", "thr": "690.9"})],  # thr: 147 steps of 4.7 nats
    "beta-sweep": [(MODEL, {"data": "lfw-faces", "betas": "0.2,0.6", "epochs": "2", "latent": "4", "loss": "convex"})],
    "your-image": [(CVAE, {"input": "upload", "digit": "3"})],
    "train": [
        (
            MODEL,
            {
                "data": "lfw-faces",
                "kind": "ae",
                "arch": "conv",
                "latent": "6",
                "beta": "2.5",
                "epochs": "7",
                "lr": "0.005",
                "name": "faces-try",
            },
        )
    ],
}
# Settings no case sets, and why (each is still read and checked by the page).
NOT_SET = {
    ("anomalies", "digit"): "shown only with setup=held-out, whose non-default digits train in the background",
    ("beta-sweep", "family"): "the test models hold no family of β-VAEs to choose from",
    **{
        ("latent-diffusion", p): "the test models hold no latent-diffusion VAE; tests/test_pages_latent_diffusion.py "
        "round-trips these with AppTest"
        for p in ("size", "image", "channel", "delta", "region", "row")
    },
}
# Known losses: (page, case number) -> what is lost. The test is expected to fail there (strict:
# it says so when the page is fixed). Empty when every page round-trips.
LOST: dict[tuple[str, int], str] = {}

SNAPSHOT_JS = (Path(__file__).with_name("browser_widgets.js")).read_text(encoding="utf-8")


@dataclass
class View:
    """What a link showed: the URL it ended on, its settings, its images and its notes."""

    url: str
    query: dict[str, str]
    widgets: list[str]
    images: list[str]  # sha256 of each image's bytes, in page order
    notes: str
    exceptions: int


def look(context, url: str) -> View:
    """Open ``url`` in a new tab (a new session) and read what the page shows."""
    pg = context.new_page()
    try:
        pg.set_viewport_size({"width": 1280, "height": 800})
        pg.goto(url)
        pg.get_by_test_id("stMain").get_by_role("heading").first.wait_for(timeout=90_000)
        widgets, srcs = _steady(pg)
        images = [hashlib.sha256(context.request.get(src).body()).hexdigest()[:16] for src in srcs]
        notes = " ".join(pg.get_by_test_id("stAlert").all_inner_texts())
        return View(
            url=pg.url,
            query=dict(parse_qsl(urlsplit(pg.url).query)),
            widgets=widgets,
            images=images,
            notes=notes,
            exceptions=pg.get_by_test_id("stException").count(),
        )
    finally:
        pg.close()


IMAGES_JS = "[...document.querySelectorAll('[data-testid=stMain] [data-testid=stImage] img')].map(i => i.src)"


def _steady(pg, quiet_s: float = 1.0, timeout_s: float = 90) -> tuple[list[str], list[str]]:
    """The widgets and image sources once the script is idle and they stayed the same, with no
    run in between, for ``quiet_s`` (a page may rerun itself once after its first run)."""
    settle(pg)
    deadline, last, since = time.time() + timeout_s, None, time.time()
    while time.time() < deadline:
        running = pg.get_by_test_id("stStatusWidget").count() > 0
        now = None if running else (pg.evaluate(SNAPSHOT_JS), pg.evaluate(IMAGES_JS))
        if running or now != last:
            last, since = now, time.time()
        elif time.time() - since >= quiet_s:
            return now
        time.sleep(0.2)
    raise AssertionError("the page kept changing")


def _cases():
    for spec in page_table():
        path = "" if spec.is_home else spec.url_path
        for i, (model, params) in enumerate(CASES.get(spec.url_path, [(MODEL, {})])):
            lost = LOST.get((spec.url_path, i))
            marks = [pytest.mark.xfail(reason=lost, strict=True)] if lost else []
            yield pytest.param(path, model, params, id=f"{spec.url_path}-{i}", marks=marks)


def test_every_url_setting_has_a_case():
    missing = {
        spec.url_path: sorted(
            p
            for p in spec.params
            if (spec.url_path, p) not in NOT_SET and not any(p in q for _, q in CASES.get(spec.url_path, []))
        )
        for spec in page_table()
    }
    assert not {k: v for k, v in missing.items() if v}, "add a non-default value for these to CASES"


@pytest.mark.parametrize(("path", "model", "params"), list(_cases()))
def test_a_bookmark_brings_back_the_same_settings_and_images(server, browser_context, path, model, params):
    first = look(browser_context, f"{server}/{path}?{urlencode({'model': model, **params})}")
    assert first.exceptions == 0
    assert "could not be used" not in first.notes, first.notes
    kept = {k: first.query.get(k) for k in ("model", *params)}
    assert kept == {"model": model, **params}, "every setting of the link is kept in the URL"
    again = look(browser_context, first.url)
    assert again.exceptions == 0
    assert again.query == first.query, "the URL is stable"
    assert again.widgets == first.widgets, "the same settings on screen"
    assert len(again.images) == len(first.images) and again.images == first.images, "the same image bytes"
