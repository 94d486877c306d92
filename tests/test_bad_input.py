"""The bad-input suite: what a careless or hostile user can hand the app, case by case.

Every case goes through the app as a user would (AppTest runs app.py and the page) and must end
with a message in the page, never an exception box; files on disk must be left as they were.
Hyper-parameters are covered on the Train page (tests/test_pages_train.py) and in the CLI
(tests/test_cli.py); the unit-level checks of each parser live beside their modules.
"""

from __future__ import annotations

import io
import json
import pickle
import shutil
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from tests.app_support import app_env, app_test, digit_png, model_folder

# ---------------------------------------------------------------- uploads


def _png(arr: np.ndarray, mode: str | None = None) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr, mode).save(buf, format="PNG")
    return buf.getvalue()


def _encoded(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


def _bomb() -> bytes:
    """A PNG that declares 30000×30000 pixels (900 megapixels) in a few hundred bytes."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", 30000, 30000, 8, 0, 0, 0, 0)  # 8-bit grayscale
    pixels = zlib.compress(b"\0" * 30001 * 8)  # the first rows; nothing past the header is read
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


def _digit(mode: str) -> Image.Image:
    return Image.open(io.BytesIO(digit_png("7"))).convert(mode)


def _animated_gif() -> bytes:
    frames = [_digit("L"), Image.new("L", (120, 120), 128)]
    return _encoded(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)


def _sixteen_bit() -> bytes:
    arr = (np.asarray(_digit("L"), dtype=np.uint16) * 257).astype(np.uint16)
    return _png(arr)  # uint16 -> Pillow mode I;16


def _wide() -> bytes:
    img = Image.new("L", (4000, 20), 255)
    img.paste(0, (1990, 2, 2010, 18))
    return _encoded(img, "PNG")


# (file name, bytes, what the page must say): refused files get an error naming the problem.
REFUSED = {
    "empty": ("empty.png", b"", "is empty"),
    "truncated png": ("cut.png", digit_png("7")[:80], "damaged or truncated"),
    "text named .png": ("notes.png", b"these are my notes, not a picture", "not an image file"),
    # (a file named .svg never reaches the page: the uploader accepts image extensions only)
    "svg named .png": ("drawing.png", b'<svg xmlns="http://www.w3.org/2000/svg"><circle r="4"/></svg>', "SVG"),
    "svg with xml prolog": ("d.png", b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg"/>', "SVG"),
    "decompression bomb": ("bomb.png", None, "too large to decode safely"),
    "over the upload limit": ("huge.png", b"\x89PNG\r\n\x1a\n" + b"\0" * (10 * 1024 * 1024 + 1), "the limit is 10 MB"),
    "1×1 image": ("dot.png", None, "needs to be at least 2×2"),
    "html named .jpg": ("x.jpg", b"<html><script>alert(1)</script></html>", "not an image file"),
}
# Unusual but valid files: encoded, and the page shows the model's input.
ACCEPTED = {
    "16-bit png": lambda: _sixteen_bit(),
    "rgba png": lambda: _encoded(_digit("RGBA"), "PNG"),
    "cmyk jpeg": lambda: _encoded(_digit("CMYK"), "JPEG"),
    "palette png": lambda: _encoded(_digit("P"), "PNG"),
    "animated gif": lambda: _animated_gif(),
    "very wide image": lambda: _wide(),
}


@pytest.fixture
def app(monkeypatch):
    app_env(monkeypatch)


def _upload(name: str, data: bytes):
    at = app_test("your_image")
    at.file_uploader(key="yi_upload").upload(name, data, "image/png").run()
    assert not at.exception, at.exception
    return at


@pytest.mark.parametrize("case", list(REFUSED))
def test_a_refused_upload_gets_a_message(app, case):
    name, data, message = REFUSED[case]
    if case == "decompression bomb":
        data = _bomb()
    elif case == "1×1 image":
        data = _png(np.zeros((1, 1), np.uint8))
    at = _upload(name, data)
    errors = [e.value for e in at.error]
    assert any(message in e for e in errors), errors
    assert not at.image


@pytest.mark.parametrize("case", list(ACCEPTED))
def test_an_unusual_but_valid_upload_is_encoded(app, case):
    at = _upload(f"{case.replace(' ', '-')}.png", ACCEPTED[case]())
    assert not at.error, [e.value for e in at.error]
    captions = [c for img in at.image for c in img.captions]
    assert any("the model's input" in c for c in captions), captions


# ---------------------------------------------------------------- checkpoints in the user folder


class _Payload:
    """Unpickling this would create the marker file: proof that no pickle is ever executed."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _user_copy(tmp_path, name: str = "mine"):
    """A valid user checkpoint copied from the test models; returns (weights, json) paths."""
    src = model_folder() / "mnist-vae-mlp-z2"
    user = tmp_path / "user"
    user.mkdir(exist_ok=True)
    weights, meta = user / f"{name}.safetensors", user / f"{name}.json"
    shutil.copy(src.with_suffix(".safetensors"), weights)
    shutil.copy(src.with_suffix(".json"), meta)
    return weights, meta


def _edit_json(meta, change) -> None:
    doc = json.loads(meta.read_text())
    change(doc)
    meta.write_text(json.dumps(doc))


def _break(case: str, weights, meta, marker) -> None:
    if case == "pickle renamed .safetensors":
        weights.write_bytes(pickle.dumps(_Payload(str(marker)), protocol=4))
    elif case == "torch.save zip renamed":
        weights.write_bytes(b"PK\x03\x04" + b"\0" * 64)
    elif case == "truncated weights":
        weights.write_bytes(weights.read_bytes()[:100])
    elif case == "garbled json":
        meta.write_text('{"format": "latentlab-checkpoint", ')
    elif case == "unknown model type":
        _edit_json(meta, lambda d: d["model"].update(kind="diffusion"))
    elif case == "latent size disagrees with the weights":
        _edit_json(meta, lambda d: (d["model"].update(latent_dim=7), d.pop("weights_sha256")))
    elif case == "wrong shapes":
        _edit_json(meta, lambda d: (d["model"].update(hidden=[99]), d.pop("weights_sha256")))
    elif case == "weights replaced (hash differs)":
        other = model_folder() / "mnist-vae-mlp-z12.safetensors"
        weights.write_bytes(other.read_bytes())


CHECKPOINT_CASES = {
    # case -> (where the message shows: "sidebar" lists it as unusable, "page" when it is opened)
    "pickle renamed .safetensors": ("page", "pickle"),
    "torch.save zip renamed": ("page", "pickle"),
    "truncated weights": ("page", "not a safetensors file"),
    "garbled json": ("sidebar", "not valid JSON"),
    "unknown model type": ("sidebar", "unknown model kind 'diffusion'"),
    "latent size disagrees with the weights": ("page", "latent size or architecture disagrees"),
    "wrong shapes": ("page", "latent size or architecture disagrees"),
    "weights replaced (hash differs)": ("page", "SHA-256 differs"),
}


@pytest.mark.parametrize("case", list(CHECKPOINT_CASES))
def test_a_broken_user_checkpoint_gets_a_message_and_is_left_alone(monkeypatch, tmp_path, case):
    weights, meta = _user_copy(tmp_path)
    marker = tmp_path / "pwned"
    _break(case, weights, meta, marker)
    before = (weights.read_bytes(), meta.read_bytes())
    app_env(monkeypatch, user=weights.parent)
    where, message = CHECKPOINT_CASES[case]
    at = app_test("latent_sliders", query={"model": "user:mine"})
    assert not at.exception, at.exception
    if where == "sidebar":
        captions = [c.value for c in at.sidebar.caption]
        assert any(message in c for c in captions), captions
    else:
        errors = [e.value for e in at.error]
        assert any("cannot be loaded" in e and message in e for e in errors), errors
    assert not marker.exists()  # the pickle was never executed
    assert (weights.read_bytes(), meta.read_bytes()) == before  # nothing was rewritten
    # the app keeps serving: another page with a good model works
    at.sidebar.selectbox[1].set_value("mnist-vae-mlp-z2").run()
    assert not at.exception and at.slider


def test_a_weights_file_without_its_json_is_not_offered(monkeypatch, tmp_path):
    weights, meta = _user_copy(tmp_path)
    meta.unlink()
    app_env(monkeypatch, user=weights.parent)
    at = app_test(query={"model": "user:mine"})
    assert not at.exception
    assert "user:mine" not in at.sidebar.selectbox[1].options
    assert any("unknown model" in i.value for i in at.info)


# ---------------------------------------------------------------- links (query parameters)

LINKS = {
    "unknown page": ({"page": "../../admin"}, "unknown page"),
    "model with path traversal": ({"model": "../../../etc/passwd"}, "unknown model"),
    "model with an absolute path": ({"model": "/etc/passwd"}, "unknown model"),
    "script injection in the model": ({"model": "<script>alert(1)</script>"}, "unknown model"),
    "garbage slider values": ({"page": "sliders", "z": "abc,def"}, ""),
    "huge slider values": ({"page": "sliders", "z": "1e308,-1e308"}, ""),
    "nan slider values": ({"page": "sliders", "z": "nan,inf"}, ""),
    "huge number of steps": ({"page": "interpolation", "steps": "99999999999999999999"}, ""),
    "negative grid size": ({"page": "sampling", "grid": "-5"}, ""),
    "sql-like text": ({"page": "latent-map", "points": "1; DROP TABLE users"}, ""),
}


@pytest.mark.parametrize("case", list(LINKS))
def test_a_bad_link_opens_the_app_with_a_note(app, case):
    query, message = LINKS[case]
    at = app_test(query=query)
    assert not at.exception, at.exception
    notes = [i.value for i in at.info] + [w.value for w in at.warning]
    assert notes, "a bad value must be named in a note"
    if message:
        assert any(message in n for n in notes), notes
