"""The nearest-neighbours page through AppTest: k neighbours by code beside k by pixels."""

import pytest

from tests.app_support import app_env, captions, digit_png, image_urls, open_page


@pytest.fixture(autouse=True)
def _models(monkeypatch):
    app_env(monkeypatch)


def page(model: str | None = "mnist-vae-mlp-z12", **query):
    return open_page("neighbours", model, **query)


def neighbour_captions(at, k: int) -> list[str]:
    """The captions of the two rows of neighbours (every image but the query and its reconstruction)."""
    found = [c for img in at.image for c in img.captions if c.startswith("#")]
    assert len(found) == 2 * k, found
    return found


def test_k_neighbours_by_code_and_by_pixels_and_the_rows_differ():
    at = page(row="3", k="6")
    assert "query: image #3" in captions(at)
    found = neighbour_captions(at, 6)
    latent, pixel = found[:6], found[6:]
    assert not any(c.startswith("#3 ") for c in found), "the query itself is left out"
    assert [c.split(" ")[0] for c in latent] != [c.split(" ")[0] for c in pixel]
    labels = {m.label: m.value for m in at.metric}
    assert labels["In both rows"].endswith("of 6") and "Same label: latent" in labels
    at.segmented_control(key="nb_metric").set_value("cosine").run()
    assert not at.exception and at.query_params["metric"] == "cosine"
    at.slider(key="nb_k").set_value(3).run()
    neighbour_captions(at, 3)
    assert at.query_params["k"] == "3" and at.query_params["row"] == "3"


def test_an_upload_is_a_query_too():
    at = page(k="5")
    at.segmented_control(key="nb_src").set_value("upload").run()
    assert any("Upload an image" in i.value for i in at.info)
    at.file_uploader(key="nb_upload").upload("seven.png", digit_png("7"), "image/png").run()
    assert not at.exception, at.exception
    assert "query: your image" in captions(at)
    neighbour_captions(at, 5)
    assert "row" not in at.query_params


def test_the_map_sends_its_point_here():
    at = open_page("latent_map", "mnist-vae-mlp-z12", points="500", row="12")
    at.button(key="map_to_nb").click().run()
    assert not at.exception, at.exception
    assert at.session_state["nb_src"] == "test" and str(at.number_input(key="nb_row").value) == at.query_params["row"]
    assert f"query: image #{at.query_params['row']}" in captions(at)


def test_faces_without_labels_and_a_bad_link():
    at = page("faces-vae-mlp-z3", k="40")
    assert any("number of neighbours" in i.value for i in at.info)
    assert not at.metric or all("Same label" not in m.label for m in at.metric)
    neighbour_captions(at, 8)


def test_every_setting_round_trips_through_the_link():
    at = page()
    at.number_input(key="nb_row").set_value(12).run()
    at.slider(key="nb_k").set_value(5).run()
    at.segmented_control(key="nb_metric").set_value("cosine").run()
    link = dict(at.query_params)
    again = page(link.pop("model", None), **link)
    assert dict(again.query_params) == dict(at.query_params) and image_urls(again) == image_urls(at)
    # The query's source too: a bookmark of the upload view opens on the uploader, not on a test image.
    again.segmented_control(key="nb_src").set_value("upload").run()
    assert again.query_params["query"] == "upload" and "row" not in again.query_params
    link = dict(again.query_params)
    third = page(link.pop("model", None), **link)
    assert third.segmented_control(key="nb_src").value == "upload" and third.slider(key="nb_k").value == 5
