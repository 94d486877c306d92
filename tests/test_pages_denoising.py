"""The denoising page through AppTest: the seven columns with their numbers, every control,
uploads (good and bad), a missing model named, and the link."""

from __future__ import annotations

import importlib.util
import re

import pytest

from tests.app_support import app_env, app_test, digit_png

COLUMNS = ["Noisy", "Denoising AE", "VAE", "Plain AE", "best classical", "PCA"]
NUMBERS = re.compile(r"^\*\*(.+?)\*\*\s+(\d+\.\d) dB · SSIM (-?\d\.\d\d)$")


@pytest.fixture(autouse=True)
def _models(monkeypatch):
    app_env(monkeypatch)


def headers(at) -> dict[str, tuple[float, float]]:
    """{column: (mean PSNR dB, mean SSIM)} from the column headers."""
    found = {}
    for md in at.markdown:
        m = NUMBERS.match(md.value)
        if m:
            found[m.group(1)] = (float(m.group(2)), float(m.group(3)))
    return found


def ok(at):
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    return at


def test_the_columns_render_with_psnr_and_ssim():
    at = ok(app_test("denoising"))
    assert at.title[0].value == "Denoising"
    numbers = headers(at)
    assert list(numbers) == COLUMNS
    for psnr, ssim in numbers.values():
        assert 5 < psnr < 40 and -1 <= ssim <= 1
    # the best classical filter and PCA were tuned: they beat the noisy input at σ = 0.5
    assert numbers["best classical"][0] > numbers["Noisy"][0]
    assert numbers["PCA"][0] > numbers["Noisy"][0]
    assert len(at.image) == 7 * 4  # clean + six columns, four rows shown
    per_image = [c for img in at.image for c in img.captions if c.endswith(tuple("0123456789")) and "dB ·" in c]
    assert len(per_image) == 6 * 4
    captions = [c.value for c in at.caption]
    assert "mnist-dae-mlp-z12, trained on gaussian noise 0.5" in captions
    assert any(c.startswith("median") or c.startswith("tv") or "(" in c for c in captions)
    assert len(at.get("plotly_chart")) == 1
    assert len(at.dataframe) == 1 and len(at.dataframe[0].value) == 6
    assert at.query_params["noise"] == "gaussian" and at.query_params["level"] == "0.5"


@pytest.mark.parametrize(("kind", "level"), [("salt-pepper", 0.4), ("masking", 0.8), ("occlusion", 0.4)])
def test_every_corruption_and_its_level(kind, level):
    at = app_test("denoising")
    ok(at.segmented_control(key="dn_kind").set_value(kind).run())
    assert list(headers(at)) == COLUMNS
    before = headers(at)["Noisy"][0]
    ok(at.slider(key=f"dn_level_{kind}").set_value(level).run())
    assert headers(at)["Noisy"][0] < before, "a stronger corruption lowers the noisy input's PSNR"
    assert at.query_params["noise"] == kind and at.query_params["level"] == f"{level:g}"


def test_rows_other_images_and_model_pickers():
    at = app_test("denoising")
    ok(at.slider(key="dn_rows").set_value(2).run())
    assert len(at.image) == 7 * 2
    first = [c for c in at.image[0].captions]
    ok(at.button(key="dn_shuffle").click().run())
    assert [c for c in at.image[0].captions] != first, "other test images"
    picker = at.selectbox(key="dn_vae")
    assert picker.options == ["mnist-vae-mlp-z2", "mnist-vae-mlp-z12"]
    ok(picker.select("mnist-vae-mlp-z12").run())
    assert "mnist-vae-mlp-z12" in [c.value for c in at.caption]
    assert at.selectbox(key="dn_dae").value == "mnist-dae-mlp-z12"
    assert at.selectbox(key="dn_ae").value == "mnist-ae-mlp-z12"


def test_an_upload_is_corrupted_and_denoised_and_a_bad_one_gets_a_message():
    at = app_test("denoising")
    ok(at.segmented_control(key="dn_source").set_value("upload").run())
    assert any("No image yet" in i.value for i in at.info)
    ok(at.file_uploader(key="dn_upload").upload("seven.png", digit_png("7"), "image/png").run())
    assert list(headers(at)) == COLUMNS
    assert len(at.image) == 7
    assert at.image[0].captions == ["your image"]
    assert any("not your image" in c.value for c in at.caption)
    at.file_uploader(key="dn_upload").clear().upload("notes.png", b"just some text", "image/png").run()
    assert not at.exception
    assert any("cannot be used" in e.value and "not an image file" in e.value for e in at.error)
    assert not headers(at)


def test_a_missing_model_is_named():
    at = ok(app_test("denoising", query={"model": "faces-vae-mlp-z3"}))
    assert any("No denoising AE and no plain AE" in i.value for i in at.info)
    assert list(headers(at)) == ["Noisy", "VAE", "best classical", "PCA"]


def test_a_link_restores_the_setting_and_a_bad_one_gets_a_note():
    at = ok(app_test("denoising", query={"noise": "masking", "level": "0.7"}))
    assert at.segmented_control(key="dn_kind").value == "masking"
    assert at.slider(key="dn_level_masking").value == pytest.approx(0.7)
    at = ok(app_test("denoising", query={"noise": "fog", "level": "9"}))
    assert any("unknown corruption 'fog'" in i.value for i in at.info)
    assert at.segmented_control(key="dn_kind").value == "gaussian"


@pytest.mark.skipif(
    importlib.util.find_spec("streamlit_drawable_canvas") is None, reason="streamlit-drawable-canvas is not installed"
)
def test_a_digit_can_be_drawn_instead():
    at = app_test("denoising")
    ok(at.segmented_control(key="dn_source").set_value("draw").run())
    assert any("No drawing yet" in i.value for i in at.info)


# ---------------------------------------------------------------- examples, the link, the default denoiser

ROW_CAPTION = re.compile(r"^test #(\d+) \((\d)\)$")


def shown_digits(at) -> list[str]:
    """The digits of the clean column's images, top to bottom (captions ``test #row (digit)``)."""
    return [m.group(2) for img in at.image for c in img.captions if (m := ROW_CAPTION.match(c))]


def test_the_example_rows_are_different_digits():
    at = ok(app_test("denoising"))
    assert len(shown_digits(at)) == 4 and len(set(shown_digits(at))) == 4, shown_digits(at)
    ok(at.slider(key="dn_rows").set_value(8).run())
    assert len(set(shown_digits(at))) == 8, shown_digits(at)


def page_state(at) -> dict:
    keys = ("dn_kind", "dn_source", "dn_rows", "dn_seed", "dn_dae", "dn_vae", "dn_ae")
    return {k: at.session_state[k] for k in keys} | {
        "level": at.slider(key=f"dn_level_{at.session_state['dn_kind']}").value
    }


def test_every_setting_comes_back_from_the_link():
    at = app_test("denoising")
    ok(at.segmented_control(key="dn_kind").set_value("occlusion").run())
    ok(at.slider(key="dn_level_occlusion").set_value(0.35).run())
    ok(at.slider(key="dn_rows").set_value(3).run())
    ok(at.button(key="dn_shuffle").click().run())
    ok(at.button(key="dn_shuffle").click().run())
    ok(at.selectbox(key="dn_vae").select("mnist-vae-mlp-z12").run())
    link = dict(at.query_params)
    assert link["draw"] == "2" and link["rows"] == "3" and link["vae"] == "mnist-vae-mlp-z12"
    before, pictures = page_state(at), [c for img in at.image for c in img.captions]
    again = ok(app_test("denoising", query=link))
    assert page_state(again) == before
    assert [c for img in again.image for c in img.captions] == pictures, "the same images and the same numbers"
    assert dict(again.query_params) == link
    # the input choice comes back too
    ok(at.segmented_control(key="dn_source").set_value("upload").run())
    assert at.query_params["input"] == "upload"
    assert ok(app_test("denoising", query=dict(at.query_params))).session_state["dn_source"] == "upload"


def test_bad_link_values_get_a_note_and_the_defaults():
    query = {"rows": "99", "draw": "<b>x</b>", "vae": "no-such-model", "input": "camera", "level": "0.3"}
    at = ok(app_test("denoising", query=query))
    notes = " ".join(i.value for i in at.info)
    for words in ("number of rows shown 99", "draw of test images", "unknown VAE", "unknown input 'camera'"):
        assert words in notes, (words, notes)
    assert at.session_state["dn_rows"] == 4 and at.session_state["dn_seed"] == 0
    assert at.session_state["dn_vae"] == "mnist-vae-mlp-z2" and at.session_state["dn_source"] == "test"
    assert at.query_params["rows"] == "4" and at.query_params["input"] == "test" and at.query_params["level"] == "0.3"


@pytest.fixture(scope="module")
def with_mixed(tmp_path_factory):
    """The test models and a small denoising AE trained on the mixed corruptions."""
    import shutil

    import torch

    from core.data.registry import load_dataset
    from core.formats.checkpoints import save_checkpoint
    from core.models.config import ModelConfig
    from core.training.train import TrainConfig, train_model
    from tests.app_support import model_folder

    folder = tmp_path_factory.mktemp("models")
    for f in model_folder().iterdir():
        shutil.copy(f, folder / f.name)
    torch.set_num_threads(1)
    ds = load_dataset("mnist-5k")
    mcfg = ModelConfig(kind="ae", arch="mlp", image_shape=ds.image_shape, latent_dim=12, hidden=(64,))
    tcfg = TrainConfig(epochs=1, lr=3e-3, device="cpu", noise="mixed", noise_level=1.0)
    model, _ = train_model(mcfg, ds, tcfg)
    save_checkpoint(model, folder / "mnist-dae-mlp-z12-mixed", dataset=ds.info(), train=tcfg.to_dict(), card={})
    return folder


def test_the_default_denoiser_is_the_one_trained_on_every_corruption(monkeypatch, with_mixed):
    app_env(monkeypatch, with_mixed)
    at = ok(app_test("denoising"))
    assert at.selectbox(key="dn_dae").value == "mnist-dae-mlp-z12-mixed"
    assert at.selectbox(key="dn_dae").options == ["mnist-dae-mlp-z12-mixed", "mnist-dae-mlp-z12"]
    assert "mnist-dae-mlp-z12-mixed, trained on all four corruptions at random levels" in [c.value for c in at.caption]
    assert list(headers(at)) == COLUMNS
    assert "Mixed" not in at.segmented_control(key="dn_kind").options, "a training corruption, not a page's"
