"""The AE vs VAE page through AppTest."""

import pytest

from tests.app_support import app_env, app_test, image_urls


@pytest.fixture(autouse=True)
def _models(monkeypatch):
    app_env(monkeypatch)


def test_the_pair_side_by_side_codes_paths_and_samples():
    at = app_test("ae_vs_vae", query={"model": "mnist-vae-mlp-z12"})
    assert not at.exception
    assert at.selectbox(key="av_pair").value == "mnist-ae-mlp-z12,mnist-vae-mlp-z12"
    assert len(at.get("plotly_chart")) == 2
    spread = [c.value for c in at.caption if c.value.startswith("Spread")]
    assert "nothing sets a scale" in spread[0] and "the prior's is 1" in spread[1]
    assert len(at.image) == 4  # two paths, two sample grids
    urls = image_urls(at)
    at.selectbox(key="av_b_class").select(8).run()
    at.number_input(key="av_a_index").set_value(4).run()
    at.slider(key="av_steps").set_value(6).run()
    assert image_urls(at)[:2] != urls[:2]
    urls = image_urls(at)
    at.slider(key="av_n").set_value(4).run()
    at.number_input(key="av_seed").set_value(9).run()
    assert image_urls(at)[2:] != urls[2:]
    at.select_slider(key="av_points").set_value(500).run()
    assert not at.exception
    assert at.query_params["pair"] == "mnist-ae-mlp-z12,mnist-vae-mlp-z12"


def test_a_link_restores_the_ends_and_a_bad_pair_gets_a_note():
    at = app_test("ae_vs_vae", query={"a": "5", "b": "6", "pair": "x,y"})
    assert not at.exception
    assert at.query_params["a"] == "5" and at.query_params["b"] == "6"
    assert any("unknown model pair" in i.value for i in at.info)


def test_without_a_pair_the_page_says_what_it_needs(monkeypatch, tmp_path):
    import shutil

    from tests.app_support import model_folder

    for suffix in (".json", ".safetensors"):
        shutil.copy(model_folder() / f"mnist-vae-mlp-z2{suffix}", tmp_path / f"only-vae{suffix}")
    app_env(monkeypatch, folder=tmp_path)
    at = app_test("ae_vs_vae")
    assert not at.exception
    assert any("plain AE and a VAE" in i.value for i in at.info)


@pytest.fixture
def faces_pair(monkeypatch, tmp_path):
    """The test models plus a plain AE of the faces beside their VAE (same size, latent 3)."""
    import shutil

    from core.app import catalog
    from core.formats.checkpoints import save_checkpoint
    from core.models.config import ModelConfig
    from core.training.train import TrainConfig, train_model
    from tests.app_support import model_folder

    ds = catalog.load_data("lfw-faces")
    mcfg = ModelConfig(kind="ae", arch="mlp", image_shape=ds.image_shape, latent_dim=3, hidden=(64,))
    model, _ = train_model(mcfg, ds, TrainConfig(epochs=1, batch_size=128, seed=0, device="cpu"))
    shutil.copytree(model_folder(), tmp_path, dirs_exist_ok=True)
    save_checkpoint(model, tmp_path / "faces-ae-mlp-z3", dataset=ds.info(), train={}, card={})
    app_env(monkeypatch, folder=tmp_path)


def test_the_pair_follows_the_sidebars_data_set_with_two_different_ends(faces_pair):
    # Bug (issue 15): the page compared the MNIST pair whatever the sidebar said.
    at = app_test("ae_vs_vae", query={"model": "mnist-vae-mlp-z12"})
    assert at.selectbox(key="av_pair").value == "mnist-ae-mlp-z12,mnist-vae-mlp-z12"
    at.selectbox(key="dataset").select("lfw-faces").run()
    assert not at.exception
    assert at.selectbox(key="av_pair").value == "faces-ae-mlp-z3,faces-vae-mlp-z3"
    assert at.query_params["a"] != at.query_params["b"]  # unlabelled faces: two different images


def test_a_data_set_without_a_pair_says_why():
    at = app_test("ae_vs_vae", query={"model": "faces-vae-mlp-z3"})
    assert not at.exception
    note = " ".join(i.value for i in at.info)
    assert "No plain AE and VAE of LFW faces" in note and "compares the MNIST" in note
    at = app_test("ae_vs_vae", query={"model": "mnist-vae-mlp-z2"})  # MNIST has a pair, but not of latent 2
    assert at.selectbox(key="av_pair").value == "mnist-ae-mlp-z12,mnist-vae-mlp-z12"
    assert any("mnist-vae-mlp-z2 has no partner" in c.value for c in at.caption)


def test_every_setting_round_trips_through_the_link():
    at = app_test("ae_vs_vae", query={"model": "mnist-vae-mlp-z12"})
    at.select_slider(key="av_points").set_value(500).run()
    at.number_input(key="av_b_index").set_value(3).run()
    at.slider(key="av_steps").set_value(5).run()
    at.slider(key="av_n").set_value(4).run()
    at.number_input(key="av_seed").set_value(11).run()
    link = dict(at.query_params)
    assert (link["points"], link["steps"], link["grid"], link["seed"]) == ("500", "5", "4", "11")
    again = app_test("ae_vs_vae", query=link)
    assert dict(again.query_params) == link and image_urls(again) == image_urls(at)
    assert again.select_slider(key="av_points").value == 500 and again.number_input(key="av_seed").value == 11
