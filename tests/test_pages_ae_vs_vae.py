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
