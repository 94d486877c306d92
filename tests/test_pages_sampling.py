"""The sampling and manifold page through AppTest."""

import pytest

from tests.app_support import app_env, captions, image_urls, open_page


@pytest.fixture(autouse=True)
def _models(monkeypatch):
    app_env(monkeypatch)


def page(model: str | None = None, **query):
    return open_page("sampling_manifold", model, **query)


def test_samples_and_the_manifold_for_a_two_dimensional_code():
    at = page()
    assert "64 samples at T = 1" in captions(at)
    assert "z0 left → right" in captions(at) and "Latent size 2" in " ".join(c.value for c in at.caption)
    assert len(at.download_button) == 2
    assert at.query_params["t"] == "1" and at.query_params["grid"] == "15"


def test_every_sampling_control_changes_the_samples():
    at = page()
    urls = image_urls(at)
    at.slider(key="sa_t").set_value(0.5).run()
    assert image_urls(at)[0] != urls[0] and "T = 0.5" in captions(at)
    urls = image_urls(at)
    at.slider(key="sa_n").set_value(4).run()
    assert image_urls(at)[0] != urls[0] and "16 samples" in captions(at)
    urls = image_urls(at)
    at.number_input(key="sa_seed").set_value(3).run()
    assert image_urls(at)[0] != urls[0]
    at.button(key="sa_new").click().run()
    assert at.number_input(key="sa_seed").value == 4 and at.query_params["seed"] == "4"


def test_manifold_size_and_range():
    at = page()
    urls = image_urls(at)
    at.slider(key="mf_n").set_value(5).run()
    assert image_urls(at)[1] != urls[1]
    at.slider(key="mf_span").set_value(2.0).run()
    assert not at.exception
    assert at.query_params["span"] == "2" and at.query_params["grid"] == "5"


def test_a_larger_code_picks_two_dimensions_or_the_pca_axes():
    at = page("mnist-vae-mlp-z12")
    axes = at.segmented_control(key="mf_axes")
    assert axes.value == "dims"
    at.selectbox(key="mf_a").select(3).run()
    at.selectbox(key="mf_b").select(5).run()
    assert "z3 left → right" in captions(at) and "z5 bottom → top" in captions(at)
    at.selectbox(key="mf_b").select(3).run()
    assert any("two different dimensions" in i.value for i in at.info)
    at.segmented_control(key="mf_axes").set_value("pca").run()
    assert not at.exception
    assert "PC1" in captions(at)


def test_a_plain_autoencoder_gets_a_warning_and_a_grid_over_its_codes():
    at = page("mnist-ae-mlp-z12")
    assert any("plain autoencoder" in w.value for w in at.warning)
    assert "z" in captions(at)


def test_a_conditional_vae_draws_one_digit_per_row():
    at = page("mnist-cvae-mlp-z4")
    assert "row r draws digit r" in captions(at)
    urls = image_urls(at)
    at.selectbox(key="mf_y").select(4).run()
    assert image_urls(at)[1] != urls[1]


def test_a_link_restores_the_settings_and_bad_values_get_a_note():
    at = page(t="0.3", n="3", seed="7", grid="9", span="1.5")
    assert at.slider(key="sa_t").value == 0.3 and at.slider(key="sa_n").value == 3
    assert at.number_input(key="sa_seed").value == 7 and at.slider(key="mf_n").value == 9
    at = page(t="hot", n="99", grid="-1")
    assert at.slider(key="sa_t").value == 1.0 and at.slider(key="sa_n").value == 8
    note = " ".join(i.value for i in at.info)
    assert "temperature" in note and "grid size 99" in note and "manifold size" in note
