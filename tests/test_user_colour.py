"""Users' own images keep their channels: (N, C, H, W) with C 1 or 3, from folders, zips and .npz
files to the data set (core.data.user_data), and the sizes they are read at."""

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core.data import user_data
from core.data.registry import load_user_upload


def _encoded(img: Image.Image, fmt: str = "PNG", **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


def _write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _solid(colour, size=(16, 16), mode="RGB") -> bytes:
    return _encoded(Image.new(mode, size, colour))


def _gray_noise(h: int, w: int, seed: int = 0) -> bytes:
    return _encoded(Image.fromarray(np.random.default_rng(seed).integers(0, 256, (h, w), dtype=np.uint8)))


# ---------------------------------------------------------------- colour is kept


def test_an_rgb_folder_with_class_folders_keeps_its_colour(tmp_path):
    colours = {"red": (255, 0, 0), "green": (0, 255, 0), "blue": (0, 0, 255)}
    for label, rgb in colours.items():
        for i in range(3):
            _write(tmp_path / label / f"{i}.png", _solid(rgb))
    images = user_data.read_folder(tmp_path)
    assert images.x.shape == (9, 3, 16, 16) and images.x.dtype == np.float32
    assert images.class_names == ("blue", "green", "red")
    for row, label in zip(images.x, np.array(images.class_names)[images.y], strict=True):
        expected = np.array(colours[label]) / 255
        np.testing.assert_allclose(row.mean(axis=(1, 2)), expected, atol=1e-6)  # red: (1, 0, 0)
    assert "9 images in 3 classes" in images.note and "colour (RGB)" in images.note


def test_a_grey_folder_stays_one_channel(tmp_path):
    for i in range(3):
        _write(tmp_path / f"{i}.png", _gray_noise(12, 12, seed=i))
    images = user_data.read_folder(tmp_path)
    assert images.x.shape == (3, 1, 12, 12) and "grayscale" in images.note


def test_grey_and_colour_mixed_become_rgb_with_a_note(tmp_path):
    _write(tmp_path / "a.png", _solid((255, 0, 0)))
    _write(tmp_path / "b.png", _solid(77, mode="L"))
    _write(tmp_path / "c.png", _solid(200, mode="L"))
    images = user_data.read_folder(tmp_path)
    assert images.x.shape == (3, 3, 16, 16)
    np.testing.assert_allclose(images.x[1], 77 / 255, atol=1e-6)  # the grey one, repeated to 3 channels
    assert "2 grey images made RGB (the set mixes grey and colour)" in images.note


def test_transparency_is_composited_on_white_with_a_note(tmp_path):
    _write(tmp_path / "rgba.png", _solid((255, 0, 0, 0), mode="RGBA"))  # fully transparent red
    palette = Image.new("RGB", (16, 16), (0, 0, 255)).convert("P")
    _write(tmp_path / "palette.png", _encoded(palette, transparency=palette.getpixel((0, 0))))
    _write(tmp_path / "opaque.png", _solid((0, 255, 0)))
    images = user_data.read_folder(tmp_path)
    assert images.x.shape == (3, 3, 16, 16)
    np.testing.assert_allclose(images.x[1], 1.0, atol=1e-6)  # palette.png: white, not blue
    np.testing.assert_allclose(images.x[2], 1.0, atol=1e-6)  # rgba.png: white, not red
    assert "2 images with transparency composited on white" in images.note


def test_a_zip_upload_of_rgb_pngs_keeps_its_colour():
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for i in range(4):
            zf.writestr(f"mine/{i}.png", _solid((255, 128, 0)))
    ds = load_user_upload("mine.zip", buf.getvalue())
    assert ds.image_shape == (3, 16, 16)
    x = np.concatenate([ds.train_x, ds.test_x])
    np.testing.assert_allclose(x.mean(axis=(0, 2, 3)), [1.0, 128 / 255, 0.0], atol=1e-6)


# ---------------------------------------------------------------- .npz


def test_npz_rgb_channels_last_uint8_is_kept(tmp_path):
    x = np.zeros((4, 10, 12, 3), np.uint8)
    x[..., 0] = 255
    np.savez(tmp_path / "d.npz", x=x)
    images = user_data.read_npz(tmp_path / "d.npz")
    assert images.x.shape == (4, 3, 10, 12)
    np.testing.assert_allclose(images.x.mean(axis=(0, 2, 3)), [1, 0, 0])
    assert "colour (RGB)" in images.note


def test_npz_rgb_channels_first_float_is_kept(tmp_path):
    x = np.random.default_rng(0).random((5, 3, 8, 8)).astype(np.float32)
    np.savez(tmp_path / "d.npz", x=x)
    images = user_data.read_npz(tmp_path / "d.npz")
    np.testing.assert_allclose(images.x, x, atol=1e-6)
    resized = user_data.read_npz(tmp_path / "d.npz", target_shape=(3, 16, 16))
    assert resized.x.shape == (5, 3, 16, 16) and resized.x.min() >= 0 and resized.x.max() <= 1


def test_npz_rgba_over_white_and_grey_to_a_colour_model(tmp_path):
    x = np.zeros((3, 6, 6, 4), np.uint8)  # black, fully transparent
    np.savez(tmp_path / "a.npz", x=x)
    images = user_data.read_npz(tmp_path / "a.npz")
    assert images.x.shape == (3, 3, 6, 6) and images.x.min() == 1.0
    assert "3 images with transparency composited on white" in images.note
    np.savez(tmp_path / "g.npz", x=np.full((3, 6, 6), 51, np.uint8))
    grey = user_data.read_npz(tmp_path / "g.npz", target_shape=(3, 6, 6))
    assert grey.x.shape == (3, 3, 6, 6) and np.allclose(grey.x, 0.2)
    assert "grey made RGB (the model takes 3 channels)" in grey.note


# ---------------------------------------------------------------- a model's channels decide


def test_a_colour_model_repeats_a_grey_folder(tmp_path):
    for i in range(3):
        _write(tmp_path / f"{i}.png", _gray_noise(12, 12, seed=i))
    images = user_data.read_folder(tmp_path, target_shape=(3, 12, 12))
    assert images.x.shape == (3, 3, 12, 12)
    assert np.array_equal(images.x[:, 0], images.x[:, 1]) and np.array_equal(images.x[:, 0], images.x[:, 2])
    assert "all grey images made RGB (the model takes 3 channels)" in images.note


def test_a_grey_model_gets_luma_from_a_colour_folder(tmp_path):
    for i in range(3):
        _write(tmp_path / f"{i}.png", _solid((255, 0, 0)))
    images = user_data.read_folder(tmp_path, target_shape=(1, 16, 16))
    assert images.x.shape == (3, 1, 16, 16)
    np.testing.assert_allclose(images.x, round(255 * 0.299) / 255, atol=1 / 255)  # ITU-R 601 luma of red
    assert "all colour images converted to grayscale (the model takes one channel)" in images.note


def test_a_models_own_size_is_honoured_exactly(tmp_path):
    for i in range(2):
        _write(tmp_path / f"{i}.png", _solid((10, 20, 30), size=(40, 30)))
    images = user_data.read_folder(tmp_path, target_shape=(3, 256, 200))
    assert images.x.shape == (2, 3, 256, 200)


# ---------------------------------------------------------------- default size


@pytest.mark.parametrize(("side", "expected"), [(100, 100), (200, 128)])
def test_the_default_size_fits_128(tmp_path, side, expected):
    for i in range(2):
        _write(tmp_path / f"{i}.png", _solid((0, 0, 255), size=(side, side)))
    images = user_data.read_folder(tmp_path)
    assert images.x.shape == (2, 3, expected, expected)
    if side > 128:
        assert "resized from 200×200 to 128×128 (at most 128×128 unless a model asks)" in images.note
    else:
        assert "kept at 100×100" in images.note


def test_a_big_set_is_capped_to_fit_in_memory(tmp_path, monkeypatch):
    monkeypatch.setattr(user_data, "MAX_SET_BYTES", 3 * 16 * 16 * 4 * 3)  # room for 3 colour images
    for i in range(5):
        _write(tmp_path / f"{i}.png", _solid((i, 0, 0)))
    images = user_data.read_folder(tmp_path)
    assert images.x.shape == (3, 3, 16, 16)
    assert "capped at 3 of 5 images to fit in memory (a fixed random choice)" in images.note


# ---------------------------------------------------------------- bad files among good ones


def test_awkward_files_get_a_note_and_the_rest_is_used(tmp_path):
    for i in range(3):
        _write(tmp_path / f"good{i}.png", _solid((0, 255, 0), size=(32, 32)))
    cmyk = Image.new("RGB", (32, 32), (255, 0, 0)).convert("CMYK")
    _write(tmp_path / "cmyk.jpg", _encoded(cmyk, "JPEG", quality=95))
    _write(tmp_path / "deep.png", _encoded(Image.fromarray(np.full((32, 32), 65535 // 5, np.uint16))))
    _write(tmp_path / "dot.png", _solid((255, 255, 255), size=(1, 1)))
    _write(tmp_path / "strip.png", _solid((0, 0, 0), size=(10000, 10)))
    images = user_data.read_folder(tmp_path)
    names = ["cmyk.jpg", "deep.png", "good0.png", "good1.png", "good2.png"]
    assert images.x.shape == (5, 3, 32, 32)
    cmyk_rgb = images.x[names.index("cmyk.jpg")].mean(axis=(1, 2))
    np.testing.assert_allclose(cmyk_rgb, [1, 0, 0], atol=0.03)  # CMYK read as red, not inverted
    np.testing.assert_allclose(images.x[names.index("deep.png")], 0.2, atol=1 / 255)  # 16-bit: 0-65535 -> [0, 1]
    reasons = dict(images.skipped)
    assert reasons == {
        "dot.png": "1×1 pixels; an image needs at least 2×2",
        "strip.png": "10000×10 pixels: aspect 1,000:1 too extreme to crop to 32×32",
    }
    assert "2 files skipped (dot.png: 1×1 pixels" in images.note and "other sizes" not in images.note
    assert "1 grey image made RGB (the set mixes grey and colour)" in images.note


def test_a_moderately_wide_image_is_centre_cropped_with_a_note(tmp_path):
    for i in range(3):
        _write(tmp_path / f"{i}.png", _gray_noise(20, 20, seed=i))
    _write(tmp_path / "wide.png", _gray_noise(20, 80))
    images = user_data.read_folder(tmp_path)
    assert images.x.shape == (4, 1, 20, 20) and not images.skipped
    assert "1 image of other sizes resized to 20×20, the most common size, 1 centre-cropped" in images.note
