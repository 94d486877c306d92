"""The latent map page through AppTest (the click itself is in the browser tests)."""

import pytest

from tests.app_support import app_env, captions, open_page


@pytest.fixture(autouse=True)
def _models(monkeypatch):
    app_env(monkeypatch)


def page(model: str | None = None, **query):
    return open_page("latent_map", model, **query)


def test_a_two_dimensional_code_is_shown_on_its_raw_axes():
    at = page()
    assert at.get("plotly_chart")
    assert any("its own axes, no projection" in c.value for c in at.caption)
    assert "input #0" in captions(at) and "reconstruction" in captions(at)


def test_pca_axes_with_explained_variance_and_a_point_by_number():
    at = page("mnist-vae-mlp-z12")
    assert at.metric[0].label == "Variance in this plane"
    share = float(at.metric[0].value.rstrip("%"))
    assert 0 < share <= 100
    at.selectbox(key="map_y").select(2).run()
    assert float(at.metric[0].value.rstrip("%")) != share
    at.selectbox(key="map_x").select(1).run()
    assert at.query_params["x"] == "2" and at.query_params["y"] == "3"
    at.number_input(key="map_row").set_value(17).run()
    assert "input #17" in captions(at) and at.query_params["row"] == "17"


def test_the_number_of_points():
    at = page()
    at.select_slider(key="map_points").set_value(500).run()
    assert not at.exception
    assert any(c.value.startswith("500 of 1,000 test images") for c in at.caption)
    at.number_input(key="map_row").set_value(499).run()
    at.select_slider(key="map_points").set_value(1000).run()
    assert not at.exception


def test_faces_without_labels_and_a_small_test_split_use_every_image():
    at = page("faces-vae-mlp-z3")
    assert any("all 100 images" in c.value for c in at.caption)
    assert at.number_input(key="map_row").max == 99


def test_a_link_restores_the_point_and_bad_values_get_a_note():
    at = page("mnist-vae-mlp-z12", points="500", x="2", y="3", row="42")
    assert at.select_slider(key="map_points").value == 500
    assert at.selectbox(key="map_x").value == 1 and at.selectbox(key="map_y").value == 2
    assert "input #42" in captions(at)
    at = page(row="1e9", x="PC7")
    assert "input #0" in captions(at)
    assert any("point" in i.value for i in at.info)
