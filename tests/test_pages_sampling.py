"""The sampling and manifold page through AppTest."""

import pytest

from tests.app_support import app_env, captions, image_urls, open_page


@pytest.fixture(autouse=True)
def _models(monkeypatch):
    app_env(monkeypatch)


def page(model: str | None = None, **query):
    return open_page("sampling_manifold", model, **query)


def reopen(at):
    """The page opened afresh on the link ``at`` shows now (a bookmark reloaded)."""
    link = dict(at.query_params)
    return page(link.pop("model", None), **link)


def test_samples_and_the_manifold_for_a_two_dimensional_code():
    at = page()
    assert "64 samples at T = 1" in captions(at)
    assert "z0 left → right" in captions(at) and "Latent size 2" in " ".join(c.value for c in at.caption)
    assert len(at.download_button) == 2
    assert at.query_params["t"] == "1" and at.query_params["grid"] == "8"  # tiles >= 48 px (see below)


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


def test_the_manifold_opens_on_tiles_of_at_least_48_pixels():
    # Bug (issue 15): a 15×15 grid of 28×20 faces in a 440 px column drew ~20 px tiles.
    from core.lenses.latent import readable_grid_size, tile_scale

    for shape in ((1, 28, 20), (1, 28, 28), (1, 64, 64), (1, 25, 25)):
        n = readable_grid_size(shape, 440)
        shown = 440 / (n * (shape[2] + 2)) * shape[2]  # a tile's width on screen, in px
        assert shown >= 48 and readable_grid_size(shape, 440, most=25) < 25
        assert min(shape[1:]) * tile_scale(shape) >= 48
    at = page("faces-vae-mlp-z3")
    assert at.slider(key="mf_n").value == readable_grid_size((1, 25, 25), 440) == 8


def test_every_manifold_setting_round_trips_through_the_link():
    # Bug (issue 15): "The first two PCA axes" came back from a bookmark as "Two latent dimensions".
    at = page("mnist-vae-mlp-z12")
    at.segmented_control(key="mf_axes").set_value("pca").run()
    link = dict(at.query_params)
    assert link["axes"] == "pca"
    again = reopen(at)
    assert again.segmented_control(key="mf_axes").value == "pca" and image_urls(again) == image_urls(at)
    again.segmented_control(key="mf_axes").set_value("dims").run()
    again.selectbox(key="mf_a").select(4).run()
    again.selectbox(key="mf_b").select(7).run()
    link = dict(again.query_params)
    assert (link["axes"], link["dx"], link["dy"]) == ("dims", "4", "7")
    third = reopen(again)
    assert (third.selectbox(key="mf_a").value, third.selectbox(key="mf_b").value) == (4, 7)
    assert image_urls(third) == image_urls(again)


def test_a_conditional_vaes_manifold_digit_is_in_the_link():
    at = page("mnist-cvae-mlp-z4")
    at.selectbox(key="mf_y").select(6).run()
    assert at.query_params["digit"] == "6"
    again = reopen(at)
    assert again.selectbox(key="mf_y").value == 6 and image_urls(again) == image_urls(at)
    bad = page("mnist-vae-mlp-z12", axes="wobbly", dx="99")
    note = " ".join(i.value for i in bad.info)
    assert "manifold axes" in note and "horizontal dimension 99" in note
    assert "axes" in bad.query_params and bad.query_params["axes"] == "dims"
