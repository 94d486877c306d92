"""The β sweep page through AppTest: the table from an installed β family (tiny ones trained
here, and the shipped ones), the plots, a sweep run from the page, cancel, and bad input."""

from __future__ import annotations

import atexit
import functools
import json
import shutil
import tempfile
from pathlib import Path

import pytest
import streamlit.testing.v1.app_test as app_test_module
from streamlit.runtime.pages_manager import PagesManager

from core.app import jobs
from tests.app_support import app_env, app_test, model_folder
from tests.conftest import ROOT

FAMILY_BETAS = (0.5, 1.0, 4.0)
COLUMNS = [
    "set",
    "β",
    "mean posterior variance",
    "mean |μ|",
    "KL",
    "active units",
    "reconstruction",
    "test loss",
]


class _NavigationPages(PagesManager):
    """As a served app after its first run: st.navigation's pages, not the pages/ folder."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        PagesManager.uses_pages_directory = False


@functools.cache
def family_folder() -> Path:
    """The app's test models plus a β family of three tiny MLP VAEs (β 0.5, 1, 4)."""
    import torch

    from core.data.registry import load_dataset
    from core.formats.checkpoints import save_checkpoint
    from core.models.config import ModelConfig
    from core.models.evaluate import measure_card
    from core.training.train import TrainConfig, train_model

    torch.set_num_threads(1)
    root = Path(tempfile.mkdtemp(prefix="latentlab-beta-family-"))
    atexit.register(shutil.rmtree, root, True)
    for f in model_folder().iterdir():
        shutil.copy(f, root / f.name)
    ds = load_dataset("mnist-5k")
    mcfg = ModelConfig(kind="vae", arch="mlp", image_shape=ds.image_shape, latent_dim=4, hidden=(32,))
    for beta in FAMILY_BETAS:
        tcfg = TrainConfig(epochs=1, batch_size=128, lr=3e-3, beta=beta, device="cpu")
        model, _ = train_model(mcfg, ds, tcfg)
        card = measure_card(model, ds.test_x, ds.test_y)
        card.update(epochs=1, data_source=ds.source_note)
        save_checkpoint(model, root / f"tiny-bvae-b{beta:g}", dataset=ds.info(), train=tcfg.to_dict(), card=card)
    return root


@pytest.fixture(autouse=True)
def _navigation(monkeypatch):
    monkeypatch.setattr(app_test_module, "PagesManager", _NavigationPages)


def sweep_page(monkeypatch, folder: Path | None):
    app_env(monkeypatch, folder=folder)
    at = app_test("beta_sweep")
    assert not at.exception, at.exception
    assert at.title[0].value == "β sweep"
    return at


def table(at):
    (df,) = at.dataframe
    return df.value


def run_sweep(at, timeout: float = 120, **settings):
    for key, value in settings.items():
        (at.text_input if key == "bs_betas" else at.number_input)(key=key).set_value(value)
    at.button(key="FormSubmitter:bs_form-Run the sweep").click().run()
    assert not at.exception, at.exception
    return at


def finish(at, timeout: float = 120):
    job = at.session_state["bs_job"]
    assert job.wait(timeout)
    at.run()
    assert not at.exception, at.exception
    return job


def test_the_table_and_plots_open_from_an_installed_beta_family(monkeypatch):
    at = sweep_page(monkeypatch, family_folder())
    df = table(at)
    assert list(df.columns) == COLUMNS
    assert df["β"].tolist() == list(FAMILY_BETAS) and set(df["set"]) == {"shipped"}
    assert df["KL"].is_monotonic_decreasing, "more β, less KL"
    assert df["mean posterior variance"].is_monotonic_increasing, "more β, posteriors nearer the prior"
    assert all(a.endswith("/ 4") for a in df["active units"])
    assert len(at.get("plotly_chart")) == 2, "KL per dimension and the trade-off"
    labels = [m.value for m in at.markdown]
    assert [f"β = {b:g}" for b in FAMILY_BETAS] == [m for m in labels if m.startswith("β = ")]
    assert len(at.image) == 1 + 2 * len(FAMILY_BETAS), "the test images, then samples and reconstructions per β"
    assert "balances reconstruction against KL" in at.markdown[0].value.replace("\n", " ")
    assert "disentangling" in at.markdown[0].value


def test_the_shipped_beta_family_fills_the_table(monkeypatch):
    from core.data.registry import load_dataset

    at = sweep_page(monkeypatch, ROOT / "checkpoints")
    df = table(at)
    assert df["β"].tolist() == [0.1, 0.5, 1.0, 2.0, 4.0, 8.0]
    assert df["KL"].is_monotonic_decreasing and df["reconstruction"].is_monotonic_increasing
    assert df["mean posterior variance"].is_monotonic_increasing
    n_test = len(load_dataset("mnist-5k").test_x)
    assert f"measured on {n_test:,} test images" in " ".join(c.value for c in at.caption), "the offline test split"
    # Issue 16: the family shows collapse: pushed harder, fewer dimensions stay in use.
    active = [int(a.split(" / ")[0]) for a in df["active units"]]
    assert active == sorted(active, reverse=True) and active[0] - active[-1] >= 5, active


def test_the_test_images_are_drawn_across_classes(monkeypatch):
    # Issue 15: offline, the first test items are all 0s, and the row showed only 0s.
    at = sweep_page(monkeypatch, family_folder())
    (label,) = [m.value for m in at.markdown if m.value.startswith("test images")]
    digits = label.removeprefix("test images: ").split(", ")
    assert len(digits) == 8 and len(set(digits)) == 8, label


def test_a_sweep_run_from_the_page_adds_its_rows(monkeypatch):
    at = sweep_page(monkeypatch, family_folder())
    assert at.text_input(key="bs_betas").value == "0.1, 1, 4, 16"
    assert at.number_input(key="bs_epochs").value == 8 and at.number_input(key="bs_latent").value == 10
    run_sweep(at, bs_betas="2, 0.25", bs_epochs=1, bs_latent=3)
    assert at.get("progress"), "a progress bar while it runs"
    job = finish(at)
    assert job.status == jobs.DONE
    df = table(at)
    assert len(df) == 5 and df[df["set"] == "your sweep 1"]["β"].tolist() == [0.25, 2.0]
    done = at.success[0].value
    assert "2 models (finished)" in done and "latent 3" in done
    # Issue 15: the page says how long its sweep took, and scores a test subset (fast epochs).
    assert f"It took {job.result.seconds:.1f} s" in done and "measured on 1,000 test images" in done
    assert at.segmented_control(key="bs_show").value == "your sweep 1", "the new set is plotted"
    assert len(at.image) == 1 + 2 * 2
    at.segmented_control(key="bs_show").set_value("shipped").run()
    assert len(at.image) == 1 + 2 * len(FAMILY_BETAS)

    at.radio(key="bs_form_kind").set_value("convex")
    finish(run_sweep(at, bs_betas="0.3, 0.6", bs_epochs=1, bs_latent=3))
    assert len(table(at)) == 7 and "convex loss" in at.success[0].value


def test_without_a_family_the_page_says_so_and_still_sweeps(monkeypatch):
    at = sweep_page(monkeypatch, None)
    assert "No β family" in at.info[0].value and not at.dataframe
    finish(run_sweep(at, bs_betas="1", bs_epochs=1, bs_latent=2))
    assert table(at)["set"].tolist() == ["your sweep 1"]


def test_cancel_stops_the_sweep(monkeypatch):
    at = run_sweep(sweep_page(monkeypatch, None), bs_betas="0.5, 1, 2", bs_epochs=400)
    at.button(key="bs_cancel").click().run()
    job = finish(at)
    assert job.status == jobs.CANCELLED and job.result.cancelled
    assert "cancelled" in at.warning[0].value


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"bs_betas": "0.5, lots"}, "β value 'lots' is not a number"),
        ({"bs_betas": "1, 1"}, "repeats a value"),
        ({"bs_betas": "-2"}, "β must be a finite number ≥ 0"),
        ({"bs_epochs": 0}, "epochs must be an integer from 1"),
        ({"bs_latent": 0}, "latent size must be an integer from 1 to 256"),
        ({"bs_form_kind": "convex"}, "needs 0 ≤ β ≤ 1, got 4.0"),
    ],
)
def test_bad_sweeps_get_a_message(monkeypatch, settings, message):
    at = sweep_page(monkeypatch, None)
    for key, value in settings.items():
        if key == "bs_form_kind":
            at.radio(key=key).set_value(value)
        else:
            (at.text_input if key == "bs_betas" else at.number_input)(key=key).set_value(value)
    run_sweep(at)
    (err,) = at.error
    assert message in err.value and err.value.startswith("This sweep cannot run")
    assert "bs_job" not in at.session_state


def test_the_talks_preset_fills_the_form_and_its_column_shows(monkeypatch):
    at = sweep_page(monkeypatch, None)
    at.button(key="bs_preset_talk").click().run()
    assert not at.exception, at.exception
    assert at.text_input(key="bs_betas").value == "1, 0.5, 0.05, 0.005, 0.0005, 5e-05, 5e-06, 0"
    assert at.radio(key="bs_form_kind").value == "convex-mse" and at.number_input(key="bs_epochs").value == 10
    job = at.session_state["bs_job"]
    assert job.snapshot().total == 8, "the preset runs at once"
    at.button(key="bs_cancel").click().run()
    finish(at)
    # A short run of the talk's objective: the talk's published variances stand beside ours.
    finish(run_sweep(at, bs_betas="0.5, 0", bs_epochs=1, bs_latent=2))
    df = table(at)
    assert df["the talk's variance"].tolist() == ["4.4e-05", "0.99999905"]
    assert "(1−β)·MSE + β·KL" in at.success[0].value


def test_every_setting_is_in_the_link_and_restored(monkeypatch):
    # Issue 15: every setting the page shows round-trips through the URL.
    app_env(monkeypatch, folder=None)
    link = {"data": "lfw-faces", "betas": "0.2, 3", "epochs": "5", "latent": "7", "loss": "convex"}
    at = app_test("beta_sweep", query=link)
    assert not at.exception, at.exception
    assert at.selectbox(key="bs_dataset").value == "lfw-faces" and at.text_input(key="bs_betas").value == "0.2, 3"
    assert at.number_input(key="bs_epochs").value == 5 and at.number_input(key="bs_latent").value == 7
    assert at.radio(key="bs_form_kind").value == "convex"
    assert {k: at.query_params[k] for k in link} == link, "written back as read"
    at.text_input(key="bs_betas").set_value("0.5, 0")
    at.radio(key="bs_form_kind").set_value("convex-mse")
    at.number_input(key="bs_latent").set_value(3)
    finish(run_sweep(at, bs_epochs=1))
    again = app_test("beta_sweep", query=dict(at.query_params.items()))
    for key in ("bs_dataset", "bs_betas", "bs_epochs", "bs_latent", "bs_form_kind"):
        assert again.session_state[key] == at.session_state[key], key
    assert again.text_input(key="bs_betas").value == "0.5, 0" and again.number_input(key="bs_latent").value == 3


def test_bad_link_values_are_dropped_with_a_note(monkeypatch):
    app_env(monkeypatch, folder=None)
    at = app_test("beta_sweep", query={"betas": "1, 1", "epochs": "zero", "loss": "<b>x</b>", "latent": "500"})
    assert not at.exception, at.exception
    note = at.info[0].value
    assert "β values '1, 1'" in note and "epochs 'zero'" in note and "latent size 500" in note
    assert at.text_input(key="bs_betas").value == "0.1, 1, 4, 16" and at.number_input(key="bs_epochs").value == 8
    assert at.query_params["loss"] == "standard" and at.query_params["betas"] == "0.1, 1, 4, 16"


@pytest.fixture(scope="module")
def family_server(browser, tmp_path_factory):
    from tests.browser_support import serve_app

    yield from serve_app(tmp_path_factory, family_folder())


@pytest.mark.browser
def test_the_charts_fit_a_projector(browser, family_server):
    """Issue 15: at 1024×768 every chart's title and axis titles lie inside the chart."""
    from tests.browser_support import open_page

    ctx = browser.new_context(viewport={"width": 1024, "height": 768})
    page = ctx.new_page()
    try:
        open_page(page, family_server, "beta-sweep")
        charts = page.get_by_test_id("stPlotlyChart")
        charts.nth(1).locator(".g-xtitle").wait_for(timeout=60_000)
        assert charts.count() == 2
        for i in range(2):
            box = charts.nth(i).bounding_box()
            for part in (".gtitle", ".g-xtitle text", ".g-ytitle text"):
                t = charts.nth(i).locator(part).first.bounding_box()
                assert box["x"] - 1 <= t["x"] and t["x"] + t["width"] <= box["x"] + box["width"] + 1, (i, part)
                assert box["y"] - 1 <= t["y"] and t["y"] + t["height"] <= box["y"] + box["height"] + 1, (i, part)
    finally:
        ctx.close()


SPRITES_FAMILY = ["sprites-vae-conv-z10", "sprites-vae-conv-z10-b16", "sprites-vae-conv-z10-b256"]  # β = 1, 16, 256


def test_a_family_on_known_factors_is_scored_and_its_factors_mapped_to_dimensions(monkeypatch, tmp_path):
    """The shipped sprites family: MIG and DCI per β in the table (from the cards), the best β's
    factor × dimension map, and a strip per factor along its dimension."""
    from core.lenses.factors import FactorReport
    from tests.app_support import with_shipped

    folder = with_shipped(tmp_path / "models", *SPRITES_FAMILY)
    at = sweep_page(monkeypatch, folder)
    df = table(at)
    assert {"MIG", "DCI disentanglement", "DCI completeness"} <= set(df.columns)
    cards = {}
    for name in SPRITES_FAMILY:
        meta = json.loads((folder / f"{name}.json").read_text())
        cards[float(meta["train"]["beta"])] = FactorReport.from_card(meta["card"]["factors"])
    assert list(df["MIG"].round(4)) == [round(cards[b].mig, 4) for b in sorted(cards)]
    best = max(cards, key=lambda b: cards[b].mig)
    assert at.select_slider(key="bs_factor_beta").value == best
    assert at.get("plotly_chart"), "the factor × dimension heat map"
    strips = [m for m in at.markdown if "≈" in m.value or "no single dimension" in m.value]
    assert len(strips) == 6, "one row per factor: shape, hue, size, x, y, rotation"


def test_a_sweep_on_the_sprites_from_the_page_ends_with_its_scores(monkeypatch):
    at = sweep_page(monkeypatch, None)
    at.selectbox(key="bs_dataset").select("sprites")  # in the form: sent with the button
    job = finish(run_sweep(at, bs_betas="1, 8", bs_epochs=1, bs_latent=4), timeout=300)
    assert job.status == jobs.DONE
    df = table(at)
    mine = df[df["set"] == "your sweep 1"]
    assert mine["β"].tolist() == [1.0, 8.0] and mine["MIG"].between(0, 1).all()
    assert mine["DCI disentanglement"].between(0, 1).all(), "every β scored against the known factors"
    assert at.select_slider(key="bs_factor_beta").value in (1.0, 8.0)
