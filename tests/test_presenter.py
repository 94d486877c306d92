"""Presenter mode and the talk (no browser): ``?present=1`` turns it on and the URL keeps it across
pages, "Next demo" opens the talk's next bookmark (settings and model included), images are
enlarged to at least 256 px on their short side, and a talk file is read with its bad entries
left out. The browser's side (hidden sidebar, sizes on a 1024×768 screen) is in
tests/test_presenter_browser.py."""

import json

import numpy as np
import pytest

from core.app import talk
from core.app.site import by_url_path
from tests.app_support import app_env, app_test


@pytest.fixture(autouse=True)
def _models(monkeypatch):
    app_env(monkeypatch)


@pytest.fixture
def talk_file(tmp_path, monkeypatch):
    path = tmp_path / "talk.json"
    demos = [
        "sliders?model=mnist-vae-mlp-z12&z=0.50,0.00,0.00,0.00,0.00,0.00,0.00,0.00,0.00,0.00,0.00,0.00",
        "latent-map?model=mnist-vae-mlp-z2&points=500",
        "/welcome",
        "nowhere?model=x",
    ]
    path.write_text(json.dumps({"demos": demos}), encoding="utf-8")
    monkeypatch.setenv(talk.ENV, str(path))
    return path


def test_the_default_talk_opens_existing_pages_on_shipped_models():
    demos, problems = talk.load_talk()
    assert not problems and len(demos) >= 5
    assert [d.path for d in demos][:2] == ["sliders", "latent-map"]
    assert all(d.path in by_url_path() and "model" in d.params for d in demos)


def test_a_talk_file_is_read_and_its_bad_entries_are_left_out(talk_file):
    demos, problems = talk.load_talk()
    assert [d.path for d in demos] == ["sliders", "latent-map", "welcome"]
    assert demos[1].params == {"model": "mnist-vae-mlp-z2", "points": "500"}
    assert problems == ["not a page of the app: nowhere?model=x"]
    talk_file.write_text("{not json", encoding="utf-8")
    demos, problems = talk.load_talk()
    assert [d.url for d in demos] == list(talk.DEFAULT_TALK)  # the default talk, and one problem
    assert len(problems) == 1 and "cannot be read" in problems[0]


def test_steps_wrap_around_the_talk():
    demos, _ = talk.parse_talk(["sliders", "latent-map", "sampling"])
    assert talk.step(demos, None) == 0 and talk.step(demos, 0) == 1 and talk.step(demos, 2) == 0
    assert talk.step(demos, 0, -1) == 2
    assert talk.position_of(demos, "latent-map", {}) == 1 and talk.position_of(demos, "denoising", {}) is None


def test_images_are_at_least_256_px_on_their_short_side_in_presenter_mode():
    from pages._ui_charts import display_scale, grid_scale

    assert display_scale((1, 28, 20), 280, 0) == 10  # normally: the long side about 280 px
    scale = display_scale((1, 28, 20), 112, 256)  # a face tile: nearest-neighbour to >= 256 px
    assert 20 * scale >= 256 and scale == 13
    assert display_scale((1, 28, 28), 112, 256) * 28 >= 256
    grid = np.zeros((28, 280), np.uint8)  # a strip of ten digits
    assert grid_scale(grid, 720, 256) * 28 >= 256 and grid_scale(grid, 720, 0) == 3


def test_present_in_the_link_turns_it_on_and_the_url_keeps_it_across_pages():
    at = app_test("latent_sliders", query={"present": "1", "model": "mnist-vae-mlp-z12"})
    assert not at.exception
    assert at.session_state["present"] is True and at.sidebar.toggle(key="present_switch").value is True
    assert at.query_params["present"] == "1" and at.query_params["model"] == "mnist-vae-mlp-z12"
    assert at.button(key="_talk_next").label.startswith("Next demo")
    assert any("stSidebar" in h.proto.body for h in at.get("html")), "the presenter style hides the sidebar"
    assert [e.label for e in at.expander][:1] == ["What this shows"], "the intro folds away: the demo starts higher"
    at.switch_page("pages/latent_map.py").run()
    assert not at.exception and at.query_params["present"] == "1"
    at.button(key="_present_exit").click().run()
    assert "present" not in at.query_params
    assert not [b for b in at.button if b.key == "_talk_next"]


def test_a_bad_present_value_gets_a_note_and_leaves_the_url():
    at = app_test(query={"present": "<b>yes</b>"})
    assert not at.exception
    assert any("presenter mode" in i.value for i in at.info)
    assert "present" not in at.query_params
    assert "present" not in at.session_state or not at.session_state["present"]


def test_next_demo_opens_the_next_bookmark_of_the_talk(talk_file):
    at = app_test(query={"present": "1", "model": "mnist-vae-mlp-z12"})
    titles = []
    for _ in range(4):  # home -> sliders -> map -> home -> sliders (wrapping around)
        at.button(key="_talk_next").click().run()
        assert not at.exception, at.exception
        assert at.query_params["present"] == "1"
        titles.append(at.title[0].value)
        if titles[-1] == "Latent map":
            assert at.query_params["model"] == "mnist-vae-mlp-z2" and at.query_params["points"] == "500"
            assert at.sidebar.selectbox[1].value == "mnist-vae-mlp-z2", "the model comes from the bookmark"
    assert titles == ["Latent sliders", "Latent map", "Latent Lab", "Latent sliders"]
    assert at.query_params["model"] == "mnist-vae-mlp-z12", "the second visit reads the bookmark again"
    assert sorted(s.value for s in at.slider)[-1] == pytest.approx(0.5)
    at.button(key="_talk_prev").click().run()
    assert not at.exception and at.title[0].value == "Latent Lab"


def test_presenter_mode_folds_the_denoising_pickers_so_the_pictures_come_first():
    at = app_test("denoising", query={"present": "1", "model": "mnist-dae-mlp-z12"})
    assert not at.exception
    labels = [e.label for e in at.expander]
    assert "The models compared" in labels and at.image, labels
    at = app_test("denoising", query={"model": "mnist-dae-mlp-z12"})
    assert "The models compared" not in [e.label for e in at.expander]
