"""The latent sliders page through AppTest: every control, the link, bad input."""

import importlib.util

import pytest

from tests.app_support import app_env, app_test, blank_png, digit_png, image_urls


@pytest.fixture(autouse=True)
def _models(monkeypatch):
    app_env(monkeypatch)


def sliders(model: str | None = None, **query):
    if model:
        query["model"] = model
    at = app_test("latent_sliders", query=query)
    assert not at.exception, at.exception
    return at


def values(at) -> list[float]:
    return [float(v) for v in at.query_params["z"].split(",")]


def test_one_slider_per_dimension_and_the_image_follows_them():
    at = sliders()
    assert [s.label.split(" ")[0] for s in at.slider] == ["z0", "z1"] or len(at.slider) == 2
    assert all("KL" in s.label for s in at.slider)
    assert at.slider[0].min == -4 and at.slider[0].max == 4
    assert values(at) == [0.0, 0.0]
    before = image_urls(at)
    at.slider(key="sl_mnist-vae-mlp-z2_0").set_value(1.5).run()
    assert not at.exception
    assert image_urls(at) != before
    assert values(at)[0] == 1.5
    assert any("decoded from the sliders" in c for img in at.image for c in img.captions)


def test_a_large_code_shows_the_most_used_dimensions_first_and_the_rest_in_an_expander():
    at = sliders("mnist-vae-mlp-z12")
    assert len(at.slider) == 12
    (more,) = [e for e in at.expander if "more dimensions" in e.label]
    assert more.label.startswith("4 more") and len(more.slider) == 4
    kl = [float(s.label.split("KL ")[1].split(" ")[0]) for s in at.slider]
    shown = kl[:8]
    assert min(shown) >= max(kl[8:]), "the dimensions in view carry more KL than those in the expander"


def test_a_plain_autoencoder_gets_ranges_from_its_codes():
    at = sliders("mnist-ae-mlp-z12")
    assert all("spread" in s.label for s in at.slider)
    assert {(s.min, s.max) for s in at.slider} != {(-4.0, 4.0)}
    assert "Centre of the codes" in at.segmented_control(key="sl_start").options


def test_reset_and_randomise():
    at = sliders()
    at.button(key="sl_random").click().run()
    drawn = values(at)
    assert drawn != [0.0, 0.0]
    at.button(key="sl_random").click().run()
    assert values(at) != drawn, "each press draws a new code"
    at.button(key="sl_reset").click().run()
    assert values(at) == [0.0, 0.0]


def test_start_from_a_random_sample_with_a_seed():
    at = sliders()
    at.segmented_control(key="sl_start").set_value("random").run()
    first = values(at)
    assert first != [0.0, 0.0]
    at.number_input(key="sl_seed").set_value(5).run()
    assert values(at) != first


def test_start_from_a_test_image_by_class_and_index():
    at = sliders()
    at.segmented_control(key="sl_start").set_value("test").run()
    assert not at.exception
    code = values(at)
    assert any("the input" in c for img in at.image for c in img.captions)
    at.selectbox(key="sl_item_class").select(7).run()
    assert values(at) != code
    code = values(at)
    at.number_input(key="sl_item_index").set_value(3).run()
    assert values(at) != code
    at.number_input(key="sl_item_index").set_value(10_000)  # out of range is refused by the widget
    assert not at.exception


def test_start_from_an_upload_and_a_bad_file_gets_a_message():
    at = sliders()
    at.segmented_control(key="sl_start").set_value("upload").run()
    if importlib.util.find_spec("streamlit_drawable_canvas") is None:
        assert any("streamlit-drawable-canvas" in c.value for c in at.caption)
    else:
        assert "Draw" in at.segmented_control(key="sl_start").options
    at.file_uploader(key="sl_upload").upload("seven.png", digit_png("7"), "image/png").run()
    assert not at.exception
    assert values(at) != [0.0, 0.0]
    at.file_uploader(key="sl_upload").clear().upload("notes.png", b"this is not an image", "image/png").run()
    assert not at.exception
    assert any("cannot be used" in e.value for e in at.error)
    at.file_uploader(key="sl_upload").clear().upload("blank.png", blank_png(), "image/png").run()
    assert any("blank" in e.value for e in at.error)


def test_a_link_restores_the_sliders():
    at = sliders(z="0.5,-1.25")
    assert values(at) == [0.5, -1.25]
    assert [s.value for s in at.slider if s.key.endswith("_0")] == [0.5]


@pytest.mark.parametrize(
    ("z", "why"),
    [("1,2,3", "has 3 values"), ("a,b", "not a list of numbers"), ("9,0", "outside"), ("nan,0", "NaN")],
)
def test_a_bad_code_in_the_link_falls_back_with_a_note(z, why):
    at = sliders(z=z)
    assert values(at) == [0.0, 0.0]
    assert any(why in i.value for i in at.info), [i.value for i in at.info]


def test_a_conditional_vae_draws_the_chosen_digit():
    at = sliders("mnist-cvae-mlp-z4", y="3")
    picker = at.selectbox(key="sl_y")
    assert picker.value == 3
    before = image_urls(at)
    picker.select(8).run()
    assert not at.exception
    assert image_urls(at) != before
    assert at.query_params["y"] == "8"


@pytest.mark.skipif(
    importlib.util.find_spec("streamlit_drawable_canvas") is None, reason="streamlit-drawable-canvas is not installed"
)
def test_the_drawing_pad_waits_for_a_drawing():
    at = sliders()
    at.segmented_control(key="sl_start").set_value("draw").run()
    assert not at.exception
    assert any("Draw a digit" in c.value for c in at.caption)
    assert values(at) == [0.0, 0.0]


def test_the_start_seed_and_test_image_round_trip_through_the_link():
    # Before: only the code was in the link, so a bookmark came back "from the prior mean".
    at = sliders("mnist-vae-mlp-z12")
    at.segmented_control(key="sl_start").set_value("random").run()
    at.number_input(key="sl_seed").set_value(5).run()
    link = dict(at.query_params)
    assert (link["start"], link["seed"]) == ("random", "5")
    again = sliders(**link)
    assert again.segmented_control(key="sl_start").value == "random" and again.number_input(key="sl_seed").value == 5
    assert dict(again.query_params) == link and image_urls(again) == image_urls(at)
    at.segmented_control(key="sl_start").set_value("test").run()
    at.number_input(key="sl_item_index").set_value(4).run()
    link = dict(at.query_params)
    assert link["start"] == "test" and "seed" not in link
    again = sliders(**link)
    assert again.number_input(key="sl_item_index").value == 4 and values(again) == values(at)
    assert image_urls(again) == image_urls(at)
