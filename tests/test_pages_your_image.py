"""The "your own image" page through AppTest: good files, bad files, the hand-over to the sliders."""

import importlib.util
import io

import pytest
from PIL import Image

from tests.app_support import app_env, app_test, blank_png, digit_png


@pytest.fixture(autouse=True)
def _models(monkeypatch):
    app_env(monkeypatch)


def upload(at, name: str, data: bytes, mime: str = "image/png"):
    at.file_uploader(key="yi_upload").clear().upload(name, data, mime).run()
    assert not at.exception, at.exception
    return at


def test_an_upload_is_preprocessed_encoded_and_reconstructed():
    at = app_test("your_image")
    assert any("No image yet" in i.value for i in at.info)
    upload(at, "seven.png", digit_png("7"))
    captions = [c for img in at.image for c in img.captions]
    assert captions[0].startswith("your file (120×120") and "the model's input (28×28)" in captions[1]
    assert captions[2] == "its reconstruction"
    assert len(at.get("plotly_chart")) == 1
    assert len(at.download_button) == 3


@pytest.mark.parametrize("fmt", ["JPEG", "GIF", "BMP", "WEBP", "TIFF"])
def test_common_formats_are_accepted(fmt):
    buf = io.BytesIO()
    Image.open(io.BytesIO(digit_png("0"))).convert("RGB").save(buf, format=fmt)
    at = upload(app_test("your_image"), f"zero.{fmt.lower()}", buf.getvalue(), f"image/{fmt.lower()}")
    assert not at.error
    assert len(at.image) == 3


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("notes.png", b"just some text", "not an image file"),
        ("empty.png", b"", "is empty"),
        ("cut.png", digit_png("7")[:60], "damaged or truncated"),
        ("blank.png", blank_png(), "looks blank"),
        ("drawing.png", b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"></svg>', "SVG"),
    ],
)
def test_bad_files_get_a_message_not_a_traceback(name, data, message):
    at = upload(app_test("your_image"), name, data)
    assert any(message in e.value for e in at.error), [e.value for e in at.error]
    assert not at.image


def test_faces_are_resized_without_the_digit_recipe():
    at = app_test("your_image", query={"model": "faces-vae-mlp-z3"})
    assert any("centre-cropped to the model" in c.value and "made grey" in c.value for c in at.caption)
    upload(at, "face.png", digit_png("0", size=90))
    assert "the model's input (25×25)" in [c for img in at.image for c in img.captions][1]


def test_a_conditional_vae_asks_which_digit_it_is():
    at = app_test("your_image", query={"model": "mnist-cvae-mlp-z4"})
    upload(at, "seven.png", digit_png("7"))
    at.selectbox(key="yi_y").select(7).run()
    assert not at.exception


def test_the_code_goes_to_the_sliders():
    at = upload(app_test("your_image"), "seven.png", digit_png("7"))
    at.button(key="yi_to_sliders").click().run()
    assert not at.exception
    assert at.title[0].value == "Latent sliders"
    assert at.query_params["z"] != "0.00,0.00"
    assert any("your uploaded image" in c for img in at.image for c in img.captions)


@pytest.mark.skipif(
    importlib.util.find_spec("streamlit_drawable_canvas") is None, reason="streamlit-drawable-canvas is not installed"
)
def test_a_digit_can_be_drawn_instead():
    at = app_test("your_image")
    at.segmented_control(key="yi_source").set_value("draw").run()
    assert not at.exception
    assert any("No drawing yet" in i.value for i in at.info)


def png_of(arr, size: int = 112) -> bytes:
    """An image (H, W) in [0, 1] as PNG bytes, enlarged to ``size`` pixels on its long side."""
    import numpy as np

    img = Image.fromarray((np.asarray(arr) * 255).astype("uint8"), "L")
    buf = io.BytesIO()
    img.resize((size * img.width // max(img.size), size * img.height // max(img.size))).save(buf, format="PNG")
    return buf.getvalue()


def test_a_face_photo_on_a_digits_model_gets_a_warning():
    # Bug (issue 15): a face photo on an MNIST model gave junk with no word that it knows only digits.
    from skimage.data import lfw_subset

    at = upload(app_test("your_image"), "face.png", png_of(lfw_subset()[0]))
    warning = " ".join(w.value for w in at.warning)
    assert "only knows handwritten digits" in warning and "mid-grey" in warning


def test_a_real_test_digit_passes_the_check():
    from core.app import catalog

    digit = catalog.load_data("mnist-5k").test_x[0, 0]
    at = upload(app_test("your_image"), "digit.png", png_of(digit))
    assert not at.warning
    assert any(c.value.startswith("Checked against 500 test images") for c in at.caption)


def test_the_input_choice_and_digit_are_in_the_link():
    at = app_test("your_image", query={"model": "mnist-cvae-mlp-z4", "digit": "5"})
    assert at.selectbox(key="yi_y").value == 5 and at.query_params["digit"] == "5"
    bad = app_test("your_image", query={"model": "mnist-cvae-mlp-z4", "digit": "12"})
    assert any("digit 12" in i.value for i in bad.info) and bad.query_params["digit"] == "0"
