"""The β sweep page through AppTest: the table from an installed β family (tiny ones trained
here, and the shipped ones), the plots, a sweep run from the page, cancel, and bad input."""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from pathlib import Path

import pytest
import streamlit.testing.v1.app_test as app_test_module
from streamlit.runtime.pages_manager import PagesManager

from core import jobs
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

    from core.checkpoints import save_checkpoint
    from core.config import ModelConfig
    from core.data import load_dataset
    from core.evaluate import measure_card
    from core.train import TrainConfig, train_model

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
    at = sweep_page(monkeypatch, ROOT / "checkpoints")
    df = table(at)
    assert df["β"].tolist() == [0.1, 0.5, 1.0, 2.0, 4.0, 8.0]
    assert df["KL"].is_monotonic_decreasing and df["reconstruction"].is_monotonic_increasing
    assert "measured on 1,000 test images" in " ".join(c.value for c in at.caption), "the offline subset's test split"


def test_a_sweep_run_from_the_page_adds_its_rows(monkeypatch):
    at = sweep_page(monkeypatch, family_folder())
    assert at.text_input(key="bs_betas").value == "0.1, 0.5, 1, 2, 4, 8"
    assert at.number_input(key="bs_epochs").value == 3 and at.number_input(key="bs_latent").value == 10
    run_sweep(at, bs_betas="2, 0.25", bs_epochs=1, bs_latent=3)
    assert at.get("progress"), "a progress bar while it runs"
    job = finish(at)
    assert job.status == jobs.DONE
    df = table(at)
    assert len(df) == 5 and df[df["set"] == "your sweep 1"]["β"].tolist() == [0.25, 2.0]
    assert "2 models (finished)" in at.success[0].value and "latent 3" in at.success[0].value
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
        ({"bs_latent": 0}, "latent size must be an integer from 1 to 128"),
        ({"bs_form_kind": "convex"}, "needs 0 ≤ β ≤ 1, got 2.0"),
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
