"""The latent directions page through AppTest: a class direction moves a code to the second
class (by the nearest class centroid, no classifier), map and hand-picked groups, entanglement."""

import pytest

from tests.app_support import app_env, captions, image_urls, open_page
from tests.conftest import ROOT


@pytest.fixture(autouse=True)
def _models(monkeypatch):
    app_env(monkeypatch)


def page(model: str | None = "mnist-vae-mlp-z12", **query):
    return open_page("directions", model, **query)


def test_a_class_direction_moves_a_one_to_the_sevens(monkeypatch):
    """Digits open on 1 → 7; the shipped β = 1 VAE (on the offline digits) carries a 1 to the 7s."""
    app_env(monkeypatch, folder=ROOT / "checkpoints")
    at = page("mnist-bvae-mlp-z20-b1")
    assert at.selectbox(key="dir_a_class").value == 7 and at.selectbox(key="dir_b_class").value == 1
    text = captions(at)
    assert "start → nearest class 1" in text and "start + d → nearest class 7" in text
    check = next(c.value for c in at.caption if c.value.startswith("The check"))
    share = int(check.split("codes of group B, ")[1].split("%")[0])
    assert share >= 90, check
    assert at.query_params["a"] == "7" and at.query_params["b"] == "1"
    assert at.metric[0].label == "Most entangled with" and at.metric[0].value.startswith("class ")


def test_the_walk_slider_and_the_exports():
    at = page(a="3", b="8", alpha="0.5")
    assert "start + 0.5·d" in captions(at)
    at.slider(key="dir_alpha").set_value(-1.5).run()
    assert "start + -1.5·d" in captions(at) and at.query_params["alpha"] == "-1.5"
    assert at.get("download_button")
    from core.lenses.latent import can_write_mp4

    assert can_write_mp4() or any("GIF only" in c.value for c in at.caption)


def test_hand_picked_groups_and_a_saved_direction_join_the_bars():
    at = page()
    at.segmented_control(key="dir_a_src").set_value("hand").run()
    at.text_input(key="dir_a_hand").input("3, 17, 42, 99").run()
    assert "your 4 images: 4 images" in captions(at)
    at.text_input(key="dir_name").input("my four").run()
    at.button(key="dir_save").click().run()
    assert not at.exception, at.exception
    assert any("Saved: my four" in c.value for c in at.caption)
    at.text_input(key="dir_a_hand").input("3, 99999").run()
    assert any("cannot be used" in w.value for w in at.warning)


def test_faces_without_labels_open_on_the_ends_of_the_first_axis_and_take_groups_by_hand():
    at = page("faces-vae-mlp-z3")
    assert at.segmented_control(key="dir_a_src").value == "hand"
    assert "your 20 images: 20 images" in captions(at) and "start + d" in captions(at)
    assert any("No other attribute" in i.value for i in at.info)
    at.segmented_control(key="dir_a_src").set_value("map").run()
    assert any("Lasso a group" in i.value for i in at.info)
    at.segmented_control(key="dir_a_src").set_value("hand").run()
    for side, rows in (("a", "0, 1, 2, 3"), ("b", "10, 11, 12")):
        at.text_input(key=f"dir_{side}_hand").input(rows).run()
    assert not at.exception, at.exception
    assert "your 4 images: 4 images" in captions(at) and "your 3 images: 3 images" in captions(at)


def test_every_setting_round_trips_through_the_link():
    # Before: only classes were in the link; hand-picked (and the faces' default) groups were lost.
    at = page()
    at.segmented_control(key="dir_a_src").set_value("hand").run()
    at.text_input(key="dir_a_hand").input("3, 17, 40-42").run()
    at.number_input(key="dir_start").set_value(12).run()
    at.slider(key="dir_alpha").set_value(0.5).run()
    link = dict(at.query_params)
    assert (link["src_a"], link["rows_a"], link["src_b"], link["b"]) == ("hand", "3,17,40-42", "class", "1")
    again = page(link.pop("model"), **link)
    assert again.segmented_control(key="dir_a_src").value == "hand"
    assert again.text_input(key="dir_a_hand").value == "3, 17, 40-42"
    assert dict(again.query_params) == dict(at.query_params) and image_urls(again) == image_urls(at)
    bad = page(src_a="hand", rows_a="1-99999")
    assert any("images of group a" in i.value for i in bad.info)


def test_the_direction_name_round_trips_through_the_link():
    # Before: the name typed for a direction was not in the link.
    at = page(a="3", b="8", name="thin to round")
    assert at.text_input(key="dir_name").value == "thin to round" and at.query_params["name"] == "thin to round"
    at.text_input(key="dir_name").input("3 → 8, the loops").run()
    assert at.query_params["name"] == "3 → 8, the loops"
    link = dict(at.query_params)
    again = page(link.pop("model"), **link)
    assert again.text_input(key="dir_name").value == "3 → 8, the loops"
    assert dict(again.query_params) == dict(at.query_params)
    at.text_input(key="dir_name").input("").run()
    assert "name" not in at.query_params, "no name, no parameter"


def test_a_long_name_is_cut_and_markup_leaves_the_url():
    long = page(name="a very long name " * 10)
    assert long.text_input(key="dir_name").value == "a very long name a very long name a very"
    assert long.query_params["name"] == "a very long name a very long name a very"
    assert any("cut to 40 characters" in i.value for i in long.info)
    bad = page(name="<b>bold</b>")
    assert any("direction name '<b>bold</b>' is not plain text" in i.value for i in bad.info)
    assert "name" not in bad.query_params and not bad.text_input(key="dir_name").value
