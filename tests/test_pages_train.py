"""The Train page through AppTest: every control, a run that saves itself into the picker, a
taken name, cancel, a diverging run, and settings out of range."""

from __future__ import annotations

import numpy as np
import pytest
import streamlit.testing.v1.app_test as app_test_module
import torch
from streamlit.runtime.pages_manager import PagesManager

from core.app import jobs
from core.formats.checkpoints import list_checkpoints
from core.training import runs
from core.training.train import Callback, fit
from tests.app_support import app_env, app_test


class _NavigationPages(PagesManager):
    """As a served app after its first run: st.navigation's pages, not the pages/ folder.

    AppTest starts every run as a fresh server would, through the pages/-folder router, which
    runs a page whose URL path equals its file name (train.py at /train) without app.py.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        PagesManager.uses_pages_directory = False


@pytest.fixture(autouse=True)
def _models(monkeypatch, tmp_path):
    app_env(monkeypatch, user=tmp_path / "user")
    monkeypatch.setattr(app_test_module, "PagesManager", _NavigationPages)


def train_page():
    at = app_test("train")
    assert not at.exception, at.exception
    assert at.title[0].value == "Train a model"
    assert len(at.sidebar.selectbox) == 2, "the app's frame is around the page"
    return at


def click_train(at, **settings):
    for key, value in settings.items():
        widget = at.text_input(key=key) if key == "tr_name" else at.number_input(key=key)
        widget.set_value(value)
    at.button(key="tr_start").click().run()
    assert not at.exception, at.exception
    return at


def finish(at, timeout: float = 120):
    job = at.session_state["tr_job"]
    assert job.wait(timeout), "the run did not end"
    at.run()
    assert not at.exception, at.exception
    return job


def test_the_page_offers_every_choice_and_names_the_checkpoint_after_them():
    at = train_page()
    assert at.selectbox(key="tr_dataset").value == "mnist-5k"
    assert at.selectbox(key="tr_model").options == [
        "VAE",
        "Autoencoder (AE)",
        "Conditional VAE",
        "Denoising AE",
        "Sparse AE",
        "Contractive AE",
    ]
    assert at.button_group(key="tr_arch").value == "mlp"
    assert at.text_input(key="tr_name").value == "mnist-5k-vae-mlp-z10"
    at.number_input(key="tr_latent").set_value(4).run()
    at.number_input(key="tr_beta").set_value(4.0).run()
    assert at.text_input(key="tr_name").value == "mnist-5k-vae-mlp-z4-b4"
    at.selectbox(key="tr_model").select("ae").run()
    assert at.number_input(key="tr_beta").disabled, "an AE has no β"
    at.button_group(key="tr_arch").set_value("conv").run()
    assert at.text_input(key="tr_name").value == "mnist-5k-ae-conv-z4"
    at.text_input(key="tr_name").set_value("my-own").run()
    at.number_input(key="tr_latent").set_value(6).run()
    assert at.text_input(key="tr_name").value == "my-own", "a typed name stays"


def test_a_run_completes_saves_itself_and_appears_in_the_picker(tmp_path):
    at = click_train(train_page(), tr_epochs=2, tr_name="first-vae")
    assert at.get("progress"), "a progress bar while it runs"
    job = finish(at)
    assert job.result.status == "finished"
    (ok,) = at.success
    assert "first-vae" in ok.value and "after 2 epoch(s)" in ok.value
    assert [i.name for i in list_checkpoints(tmp_path / "user")] == ["first-vae"]
    assert len(at.get("plotly_chart")) == 1 and at.image, "the loss curves and the reconstructions"
    assert "user:first-vae" not in at.sidebar.selectbox[1].options
    at.button(key="tr_open").click().run()
    assert at.sidebar.selectbox[0].value == "mnist"
    assert at.sidebar.selectbox[1].value == "user:first-vae"
    assert "first-vae (your model)" in at.sidebar.selectbox[1].options
    assert at.button(key="tr_open").disabled

    # The same name again: a free one, and the page says so.
    finish(click_train(at, tr_epochs=1))
    assert "first-vae-2" in at.success[0].value and "was taken" in at.success[0].value
    assert sorted(i.name for i in list_checkpoints(tmp_path / "user")) == ["first-vae", "first-vae-2"]


def test_a_read_only_folder_gets_a_message_and_the_trained_weights_are_kept(monkeypatch, tmp_path):
    # Tests run as root, for whom chmod does not stop writes: fail the folder's first write
    # (the name's lock file) with the error a read-only folder gives.
    real_open = runs.os.open  # core.training.runs makes the name's lock file

    def read_only(path, flags, *args):
        if str(path).endswith(".lock") and not getattr(read_only, "fixed", False):
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, flags, *args)

    monkeypatch.setattr(runs.os, "open", read_only)
    at = click_train(train_page(), tr_epochs=1, tr_name="kept")
    job = finish(at)
    assert job.status == jobs.DONE and job.result.saved is None
    (err,) = at.error
    assert "could not be saved" in err.value and "Permission denied" in err.value
    assert not list_checkpoints(tmp_path / "user")
    read_only.fixed = True  # the user fixes the folder, then saves
    at.button(key="tr_save").click().run()
    assert "kept" in at.success[0].value
    assert [i.name for i in list_checkpoints(tmp_path / "user")] == ["kept"]


def test_a_denoising_autoencoder_trains_too(tmp_path):
    at = train_page()
    at.selectbox(key="tr_model").select("dae").run()
    finish(click_train(at, tr_epochs=1, tr_latent=8))
    assert "mnist-5k-dae-mlp-z8" in at.success[0].value
    (info,) = list_checkpoints(tmp_path / "user")
    assert info.meta["train"]["noise"] == "gaussian" and info.meta["model"]["kind"] == "ae"


def test_cancel_stops_the_run_and_offers_what_it_learned(tmp_path):
    at = click_train(train_page(), tr_epochs=300, tr_name="stopped")
    at.button(key="tr_cancel").click().run()
    job = finish(at)
    assert job.status == jobs.CANCELLED
    assert "cancelled after" in at.warning[0].value
    assert not list_checkpoints(tmp_path / "user"), "a cancelled run is not saved unasked"
    if job.result.can_save:
        at.button(key="tr_save").click().run()
        assert "stopped" in at.success[0].value
        assert [i.name for i in list_checkpoints(tmp_path / "user")] == ["stopped"]


def test_a_diverging_run_says_so_and_can_keep_its_last_good_weights(monkeypatch, tmp_path):
    class Poison(Callback):
        def __init__(self, model):
            self.model = model

        def on_step_end(self, step, total, loss):
            if step == 50:  # 40 steps per epoch on 5,000 digits: in epoch 2
                with torch.no_grad():
                    self.model.to_mu.weight[0, 0] = float("nan")

    monkeypatch.setattr(jobs, "fit", lambda model, data, config, cbs: fit(model, data, config, [*cbs, Poison(model)]))
    at = click_train(train_page(), tr_epochs=3, tr_name="wild")
    assert finish(at).result.status == "diverged"
    (err,) = at.error
    assert "NaN" in err.value and "restored the weights of epoch 1" in err.value
    assert not list_checkpoints(tmp_path / "user")
    at.button(key="tr_save").click().run()
    assert "wild" in at.success[0].value and "after 1 epoch(s)" in at.success[0].value


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"tr_latent": 0}, "latent size must be an integer from 1 to 256, got 0"),
        ({"tr_beta": -1.0}, "β must be a finite number ≥ 0, got -1.0"),
        ({"tr_epochs": 10**6}, "epochs must be an integer from 1 to 10,000, got 1000000"),
        ({"tr_lr": 5.0}, "learning rate must be in (0, 1.0], got 5.0"),
        ({"tr_lr": 0.0}, "learning rate must be in (0, 1.0]"),
        ({"tr_name": "my model!"}, "invalid checkpoint name"),
    ],
)
def test_settings_out_of_range_get_a_message_and_start_nothing(settings, message):
    at = click_train(train_page(), **settings)
    (err,) = at.error
    assert message in err.value and err.value.startswith("These settings cannot be trained")
    assert "tr_job" not in at.session_state


def test_a_conditional_vae_needs_labelled_data():
    at = train_page()
    at.selectbox(key="tr_dataset").select("lfw-faces").run()
    at.selectbox(key="tr_model").select("cvae").run()
    at.button(key="tr_start").click().run()
    assert "needs class labels" in at.error[0].value


def test_a_data_set_that_is_not_here_gets_a_message():
    at = train_page()
    at.selectbox(key="tr_dataset").select("fashion-mnist").run()
    at.button(key="tr_start").click().run()
    assert not at.exception
    assert "fashion-mnist has no training images here" in at.error[0].value


def _npz_bytes(n: int = 60, side: int = 16) -> bytes:
    import io

    import numpy as np

    rng = np.random.default_rng(0)
    buf = io.BytesIO()
    np.savez(buf, x=rng.integers(0, 256, (n, side, side), dtype=np.uint8), y=np.arange(n) % 3)
    return buf.getvalue()


def test_your_own_images_upload_trains_and_saves(tmp_path):
    at = train_page()
    at.selectbox(key="tr_dataset").select("your-images").run()
    assert not at.exception, at.exception
    assert any("No images yet" in c.value for c in at.caption)
    at.file_uploader(key="tr_upload").upload("shapes.npz", _npz_bytes(), "application/octet-stream").run()
    assert not at.exception, at.exception
    note = " ".join(c.value for c in at.caption)
    assert "60 images in 3 classes" in note and "16×16" in note, note
    click_train(at, tr_epochs=1, tr_latent=2)
    job = finish(at)
    outcome = job.result
    assert outcome.status == "finished" and outcome.saved is not None, outcome.message
    meta = next(i for i in list_checkpoints(tmp_path / "user") if i.ok).meta
    assert meta["model"]["image_shape"] == [1, 16, 16] and meta["dataset"]["name"] == "upload:shapes.npz"


def test_a_broken_upload_gets_a_message_and_trains_nothing():
    at = train_page()
    at.selectbox(key="tr_dataset").select("your-images").run()
    at.file_uploader(key="tr_upload").upload("junk.npz", b"not a zip at all", "application/octet-stream").run()
    assert not at.exception, at.exception
    assert any("These images cannot be used" in e.value for e in at.error)
    at.button(key="tr_start").click().run()
    assert "tr_job" not in at.session_state
    assert any("Upload your images first" in e.value for e in at.error)


LINK = {
    "data": "lfw-faces",
    "kind": "ae",
    "arch": "conv",
    "latent": "6",
    "beta": "2.5",
    "epochs": "7",
    "lr": "0.005",
    "name": "faces-try",
}


def form(at) -> dict:
    """What the Train form shows."""
    return {
        "data": at.selectbox(key="tr_dataset").value,
        "kind": at.selectbox(key="tr_model").value,
        "arch": at.button_group(key="tr_arch").value,
        **{p: at.number_input(key=f"tr_{p}").value for p in ("latent", "beta", "epochs", "lr")},
        "name": at.text_input(key="tr_name").value,
    }


def test_every_setting_of_the_form_round_trips_through_the_link():
    # Before: the Train page kept nothing in its link, so "train this" could not be bookmarked.
    at = app_test("train", query=LINK)
    assert not at.exception, at.exception
    assert form(at) == {**LINK, "latent": 6, "beta": 2.5, "epochs": 7, "lr": 0.005}
    assert {k: at.query_params[k] for k in LINK} == LINK
    at.number_input(key="tr_epochs").set_value(12).run()
    at.selectbox(key="tr_model").select("vae").run()
    at.button_group(key="tr_arch").set_value("mlp").run()
    assert (at.query_params["epochs"], at.query_params["kind"], at.query_params["arch"]) == ("12", "vae", "mlp")
    assert at.query_params["name"] == "faces-try", "a name of one's own stays"
    again = app_test("train", query=dict(at.query_params))
    assert form(again) == form(at) and dict(again.query_params) == dict(at.query_params)


def test_without_a_name_in_the_link_the_name_follows_the_linked_settings():
    at = app_test("train", query={k: v for k, v in LINK.items() if k != "name"})
    assert at.text_input(key="tr_name").value == "lfw-faces-ae-conv-z6" == at.query_params["name"]
    at.number_input(key="tr_latent").set_value(8).run()
    assert at.query_params["name"] == "lfw-faces-ae-conv-z8"


def test_bad_settings_in_the_link_get_a_note_and_leave_the_url():
    bad = {"kind": "gan", "latent": "500", "beta": "-1", "epochs": "0", "lr": "0", "name": "my model!"}
    at = app_test("train", query=bad)
    assert not at.exception, at.exception
    notes = " ".join(i.value for i in at.info)
    for part in (
        "unknown model kind 'gan'",
        "latent size 500 is outside 1..256",
        "β '-1' is outside 0..1000",
        "epochs 0 is outside 1..10000",
        "learning rate 0 is not above 0",
        "checkpoint name 'my model!' is not",
    ):
        assert part in notes, notes
    assert form(at) == {"data": "mnist-5k", "kind": "vae", "arch": "mlp", "latent": 10, "beta": 1.0, "epochs": 3,
                        "lr": 0.001, "name": "mnist-5k-vae-mlp-z10"}  # fmt: skip
    assert not {k for k, v in bad.items() if at.query_params.get(k) == v}, "no bad value stays in the URL"


def test_a_colour_set_trains_a_gaussian_model_in_colour(tmp_path):
    """Sprites are RGB: the page trains a Gaussian-likelihood model (never a Bernoulli on colour)
    and shows its reconstructions in colour."""
    from core.formats.checkpoints import load_checkpoint
    from pages import _ui_charts

    at = train_page()
    at.selectbox(key="tr_dataset").select("sprites").run()
    assert at.text_input(key="tr_name").value == "sprites-vae-mlp-z10"
    shown = []
    to_png = _ui_charts.to_png
    _ui_charts.to_png = lambda arr, scale=1: shown.append(arr) or to_png(arr, scale)
    try:
        finish(click_train(at, tr_epochs=1, tr_latent=4))
    finally:
        _ui_charts.to_png = to_png
    (saved,) = list_checkpoints(tmp_path / "user")
    ckpt = load_checkpoint(saved.path)
    assert ckpt.model.config.image_shape == (3, 64, 64) and ckpt.model.config.likelihood == "gaussian"
    assert ckpt.meta["card"]["test_psnr"] > 10
    colour = [a for a in shown if a.ndim == 3 and a.shape[-1] == 3]
    assert colour and max(int(np.ptp(a.astype(int), axis=-1).max()) for a in colour) > 60, "colour reconstructions"
