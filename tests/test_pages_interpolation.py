"""The interpolation page through AppTest."""

import pytest

from tests.app_support import app_env, digit_png, image_urls, open_page


@pytest.fixture(autouse=True)
def _models(monkeypatch):
    app_env(monkeypatch)


def page(model: str | None = None, **query):
    return open_page("interpolate", model, **query)


def test_a_linear_path_between_two_test_images_with_png_and_gif():
    at = page()
    assert next(m.value for m in at.markdown if m.value.startswith("**")).startswith("**Linear**")
    labels = [b.label for b in at.download_button]
    assert any("GIF" in label for label in labels) and any("PNG" in label for label in labels)
    from core.lenses.latent import can_write_mp4

    # An MP4 for slides where imageio-ffmpeg is installed; otherwise the page says GIF only.
    assert (
        any("MP4" in label for label in labels) if can_write_mp4() else any("GIF only" in c.value for c in at.caption)
    )
    assert at.query_params["method"] == "linear" and at.query_params["steps"] == "10"


def test_method_steps_and_all_three_paths():
    at = page()
    urls = image_urls(at)
    at.segmented_control(key="ip_method").set_value("slerp").run()
    assert image_urls(at)[-1] != urls[-1] and at.query_params["method"] == "slerp"
    at.segmented_control(key="ip_method").set_value("pixel").run()
    assert at.query_params["method"] == "pixel"
    at.slider(key="ip_steps").set_value(5).run()
    assert at.query_params["steps"] == "5"
    at.toggle(key="ip_compare").set_value(True).run()
    assert not at.exception
    assert len([b for b in at.download_button if "GIF" in b.label]) == 3


def test_ends_from_class_and_index_random_and_upload():
    at = page()
    at.selectbox(key="ip_b_class").select(9).run()
    at.number_input(key="ip_b_index").set_value(2).run()
    b = at.query_params["b"]
    at.segmented_control(key="ip_a_src").set_value("random").run()
    a = at.query_params["a"]
    at.button(key="ip_a_shuffle").click().run()
    assert at.query_params["a"] != a and at.query_params["b"] == b
    at.segmented_control(key="ip_b_src").set_value("upload").run()
    assert any("Upload an image" in i.value for i in at.info)
    at.file_uploader(key="ip_b_upload").upload("zero.png", digit_png("0"), "image/png").run()
    assert not at.exception
    assert "b" not in at.query_params
    assert any("your image" in c for img in at.image for c in img.captions)


def test_a_conditional_vae_needs_the_class_of_an_upload():
    at = page("mnist-cvae-mlp-z4")
    at.segmented_control(key="ip_a_src").set_value("upload").run()
    at.file_uploader(key="ip_a_upload").upload("seven.png", digit_png("7"), "image/png").run()
    at.selectbox(key="ip_a_y").select(7).run()
    assert not at.exception
    assert any("switches the class" in c.value for c in at.caption)
    assert at.query_params["src_a"] == "upload" and at.query_params["ya"] == "7" and "a" not in at.query_params
    link = dict(at.query_params)
    again = page(link.pop("model"), **link)
    assert again.segmented_control(key="ip_a_src").value == "upload" and again.selectbox(key="ip_a_y").value == 7


def test_a_link_restores_the_pair_and_bad_values_get_a_note():
    at = page(a="10", b="500", method="slerp", steps="6")
    assert at.query_params["a"] == "10" and at.query_params["b"] == "500"
    assert at.segmented_control(key="ip_method").value == "slerp" and at.slider(key="ip_steps").value == 6
    at = page(method="teleport", steps="2", a="-1")
    assert at.segmented_control(key="ip_method").value == "linear"
    note = " ".join(i.value for i in at.info)
    assert "unknown interpolation" in note and "number of steps 2" in note and "test image A" in note


def test_a_and_b_differ_by_default_on_unlabelled_faces():
    # Bug (issue 15): on Frey and ORL both ends opened on test #0, so every frame was one face.
    at = page("faces-vae-mlp-z3")
    assert at.query_params["a"] != at.query_params["b"]
    assert at.number_input(key="ip_a_index").value != at.number_input(key="ip_b_index").value


def test_a_and_b_are_two_classes_by_default_on_digits():
    at = page()
    a, b = (at.selectbox(key=f"ip_{end}_class").value for end in "ab")
    assert a != b and at.query_params["a"] != at.query_params["b"]


def test_every_setting_round_trips_through_the_link():
    at = page()
    at.segmented_control(key="ip_a_src").set_value("random").run()
    at.button(key="ip_a_shuffle").click().run()
    at.number_input(key="ip_b_index").set_value(3).run()
    at.segmented_control(key="ip_method").set_value("slerp").run()
    at.slider(key="ip_steps").set_value(7).run()
    at.toggle(key="ip_compare").set_value(True).run()
    link = dict(at.query_params)
    assert link["src_a"] == "random" and link["all"] == "1"
    again = page(**{k: v for k, v in link.items() if k != "model"})
    assert dict(again.query_params) == link
    assert again.segmented_control(key="ip_a_src").value == "random"
    assert again.toggle(key="ip_compare").value is True
    assert image_urls(again) == image_urls(at)
