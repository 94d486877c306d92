"""The pages' side of the in-browser decoder, through AppTest (which runs no JavaScript): what the
component is given, the one line and the server-side sliders when it cannot be used. The browser's
side (frames, the code sent back, pixels) is in tests/test_browser_sliders.py."""

from __future__ import annotations

import json

import pytest

from core.app import browser_decoder as bd
from pages import _ui_decoder
from tests.app_support import app_env, app_test

pytestmark = pytest.mark.skipif(
    not (_ui_decoder.STATIC / "ort" / "manifest.json").is_file(), reason="static/ort is not built (make web)"
)


@pytest.fixture(autouse=True)
def _models(monkeypatch):
    app_env(monkeypatch)
    monkeypatch.delenv("LATENTLAB_DECODER")  # app_env turns the in-browser decoder off for AppTest


def component_data(at) -> list[dict]:
    return [json.loads(e.proto.json) for e in at.get("bidi_component")]


def open_page(page: str, **query):
    at = app_test(page, query=query)
    assert not at.exception, at.exception
    return at


def test_the_sliders_live_in_the_browser_with_the_pages_ranges_and_code():
    at = open_page("latent_sliders", model="mnist-vae-mlp-z12", z=",".join(["0.50"] + ["0.00"] * 11))
    (data,) = component_data(at)
    assert not at.slider, "no server-side sliders"
    assert data["mode"] == "sliders" and len(data["rows"]) == 12 and data["shown"] == 8
    assert data["more"].startswith("4 more") and all("KL" in r["label"] for r in data["rows"])
    assert {(r["lo"], r["hi"], r["step"]) for r in data["rows"]} == {(-4.0, 4.0, 0.05)}
    assert data["z"][0] == 0.5 and data["y"] is None
    assert data["decoder"]["url"] == "app/static/decoders/" + data["decoder"]["file"]
    assert data["decoder"]["image_shape"] == [1, 28, 28] and data["decoder"]["output_kind"] == "logits"
    assert data["ort"]["module"].startswith("app/static/ort/")
    assert (_ui_decoder.STATIC / "decoders" / data["decoder"]["file"]).is_file()
    assert at.query_params["z"].startswith("0.50,")
    assert any(b.label.endswith("PNG") for b in at.get("download_button"))


def test_reset_and_randomise_move_the_browsers_sliders():
    at = open_page("latent_sliders")
    rev = component_data(at)[0]["rev"]
    at.button(key="sl_random").click().run()
    (data,) = component_data(at)
    assert data["rev"] > rev and data["z"] != [0.0, 0.0], "a new revision: the browser takes the code"
    at.button(key="sl_reset").click().run()
    assert component_data(at)[0]["z"] == [0.0, 0.0]


def test_a_conditional_model_gets_its_digit():
    at = open_page("latent_sliders", model="mnist-cvae-mlp-z4", y="3")
    (data,) = component_data(at)
    assert data["y"] == 3 and data["decoder"]["inputs"] == ["z", "y"] and data["decoder"]["num_classes"] == 10
    at.selectbox(key="sl_y").select(5).run()
    assert component_data(at)[0]["y"] == 5


def test_the_link_can_ask_for_the_server_and_one_line_says_so():
    at = open_page("latent_sliders", model="mnist-vae-mlp-z2", decoder="server")
    assert not component_data(at) and len(at.slider) == 2
    lines = [c.value for c in at.caption if "decode on the server" in c.value]
    assert len(lines) == 1 and "decoder=server" in lines[0]
    assert at.query_params["decoder"] == "server", "the choice stays in the link"


def test_a_decoder_that_cannot_be_exported_falls_back_with_one_line(monkeypatch):
    def refuse(loaded, folder, wait=True):
        raise bd.BrowserDecoderError("the decoder could not be exported: a test says no")

    monkeypatch.setattr(bd, "prepare", refuse)
    _ui_decoder._prepare.clear()
    try:
        at = open_page("latent_sliders", model="mnist-ae-mlp-z12")
    finally:
        _ui_decoder._prepare.clear()
    assert not component_data(at) and len(at.slider) == 12
    assert any("cannot run in the browser: the decoder could not be exported" in c.value for c in at.caption)


def test_without_onnxruntime_web_built_the_sliders_decode_on_the_server(monkeypatch, tmp_path):
    monkeypatch.setattr(_ui_decoder, "STATIC", tmp_path)
    at = open_page("latent_sliders")
    assert not component_data(at) and len(at.slider) == 2
    assert any("make web" in c.value for c in at.caption)


def test_the_interpolation_scrubber_walks_the_path_in_the_browser():
    at = open_page("interpolate", model="mnist-cvae-mlp-z4", method="slerp")
    (data,) = component_data(at)
    assert data["mode"] == "path" and len(data["path"]) == 101 and len(data["path"][0]) == 4
    assert data["labels"] == [0, 1] and data["t"] == 0.5
    at.segmented_control(key="ip_method").set_value("pixel").run()
    assert not component_data(at), "no scrubber for a pixel cross-fade"


def test_while_another_export_runs_the_page_decodes_on_the_server_and_says_so(monkeypatch):
    def busy(loaded, folder, wait=True):
        assert wait is False, "a page never queues behind the warm-up's export"
        raise bd.ExportInProgress("the in-browser decoders are still being prepared (a few seconds)")

    monkeypatch.setattr(bd, "prepare", busy)
    _ui_decoder._prepare.clear()
    try:
        at = open_page("latent_sliders", model="mnist-vae-mlp-z2")
        assert not component_data(at) and len(at.slider) == 2, "the server's sliders, at once"
        lines = [c.value for c in at.caption if "still being prepared" in c.value]
        assert len(lines) == 1 and "tries again" in lines[0]
    finally:
        _ui_decoder._prepare.clear()
