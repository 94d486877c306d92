import io

import numpy as np
import pytest
from PIL import Image

from core.data.images import ImageError, mnist_style, open_image, to_model_input, to_png


def _png(img: Image.Image, fmt="PNG", **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


def _drawn_digit(light_background=True) -> Image.Image:
    """A thick '1'-like stroke, off-centre, on a 200×120 canvas."""
    arr = np.full((200, 120), 255 if light_background else 0, np.uint8)
    arr[30:170, 20:40] = 0 if light_background else 255
    return Image.fromarray(arr, "L")


def test_digit_is_made_mnist_style():
    x = to_model_input(open_image(_png(_drawn_digit())), (1, 28, 28), digit=True)
    assert x.shape == (1, 1, 28, 28) and x.dtype == np.float32
    img = x[0, 0]
    assert img[0].max() == 0 and img[:, 0].max() == 0  # black background
    ys, _ = np.nonzero(img > 0.5)
    assert ys.max() - ys.min() + 1 == 20  # the long side fills the 20-pixel box
    cy, cx = (np.indices(img.shape) * img).reshape(2, -1).sum(1) / img.sum()
    assert abs(cy - 14) <= 1 and abs(cx - 14) <= 1  # centred by centre of mass
    dark = to_model_input(open_image(_png(_drawn_digit(light_background=False))), (1, 28, 28), True)
    assert np.abs(dark - x).max() < 1e-6  # white-on-black input gives the same result


def test_blank_drawing_is_refused():
    with pytest.raises(ImageError, match="blank"):
        mnist_style(np.ones((50, 50), np.float32))


def test_faces_are_cropped_and_resized():
    rgb = Image.fromarray(np.random.default_rng(0).integers(0, 255, (90, 60, 3), dtype=np.uint8), "RGB")
    x = to_model_input(open_image(_png(rgb)), (1, 28, 20), digit=False)
    assert x.shape == (1, 1, 28, 20) and x.min() >= 0 and x.max() <= 1


@pytest.mark.parametrize(
    "mode",
    ["RGBA", "P", "CMYK", "I;16", "LA", "1"],
)
def test_every_common_mode_decodes_to_gray(mode):
    if mode == "I;16":
        img = Image.fromarray(np.arange(4096, dtype=np.uint16).reshape(64, 64) * 16)  # a 16-bit PNG
    else:
        img = Image.fromarray((np.arange(64 * 64) % 256).astype(np.uint8).reshape(64, 64), "L").convert(mode)
    fmt = "JPEG" if mode == "CMYK" else "PNG"
    out = open_image(_png(img, fmt))
    assert out.mode == "L" and out.size == (64, 64)


def test_animated_gif_uses_the_first_frame():
    frames = [Image.new("L", (30, 30), v) for v in (0, 255)]
    data = _png(frames[0], "GIF", save_all=True, append_images=frames[1:])
    assert np.asarray(open_image(data)).max() == 0


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (b"", "empty"),
        (b"hello, this is text", "not an image"),
        (b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"></svg>', "SVG"),
        (b"x" * (11 * 1024 * 1024), "limit is 10 MB"),
    ],
)
def test_bad_files_get_a_message(data, match):
    with pytest.raises(ImageError, match=match):
        open_image(data)


def test_truncated_png():
    data = _png(Image.new("L", (100, 100), 128))
    with pytest.raises(ImageError, match="damaged or truncated|not an image"):
        open_image(data[: len(data) // 2])


def test_decompression_bomb_is_refused_before_decoding():
    # A 30000×30000 PNG header compresses to almost nothing.
    bomb = _png(Image.new("1", (30000, 30000)))
    assert len(bomb) < 200_000
    with pytest.raises(ImageError, match="30000×30000 pixels|too large"):
        open_image(bomb)


def test_tiny_and_wide_images():
    with pytest.raises(ImageError, match="at least 2×2"):
        to_model_input(open_image(_png(Image.new("L", (1, 1)))), (1, 28, 28), digit=True)
    wide = Image.fromarray(np.pad(np.full((10, 10), 255, np.uint8), ((0, 0), (2000, 2000))), "L")
    x = to_model_input(open_image(_png(wide)), (1, 28, 28), digit=True)
    assert x.shape == (1, 1, 28, 28) and x.max() > 0.9


def test_png_encoding_round_trips():
    arr = np.linspace(0, 1, 28 * 28, dtype=np.float32).reshape(1, 28, 28)
    img = Image.open(io.BytesIO(to_png(arr, scale=2)))
    assert img.size == (56, 56)


def test_colour_images_and_colour_grids_become_pngs():
    from PIL import Image

    from core.data.images import to_png
    from core.lenses.latent import image_grid

    rgb = np.random.default_rng(0).random((3, 16, 12)).astype(np.float32)  # (C, H, W), a colour model's output
    assert Image.open(io.BytesIO(to_png(rgb))).size == (12, 16)
    grid = image_grid(np.stack([rgb, rgb]), nrow=2)  # uint8 (H', W', 3)
    assert grid.shape[-1] == 3
    png = Image.open(io.BytesIO(to_png(grid, scale=2)))
    assert png.mode == "RGB" and png.size == (grid.shape[1] * 2, grid.shape[0] * 2)


def test_colour_is_kept_when_asked_for():
    red = Image.new("RGB", (40, 30), (255, 0, 0))
    assert open_image(_png(red)).mode == "L"  # the default is still grayscale
    img = open_image(_png(red), mode="RGB")
    assert img.mode == "RGB" and img.getpixel((0, 0)) == (255, 0, 0)
    x = to_model_input(img, (3, 16, 16), digit=False)  # centre-cropped to square, resized
    assert x.shape == (1, 3, 16, 16) and x.dtype == np.float32
    np.testing.assert_allclose(x[0].mean(axis=(1, 2)), [1, 0, 0], atol=1e-6)
    grey = to_model_input(open_image(_png(Image.new("L", (20, 20), 51))), (3, 8, 8), digit=False)
    np.testing.assert_allclose(grey, 0.2, atol=1e-6)  # grey repeated to three channels
    digit = to_model_input(open_image(_png(_drawn_digit()), mode="RGB"), (3, 28, 28), digit=True)
    assert digit.shape == (1, 3, 28, 28) and np.array_equal(digit[0, 0], digit[0, 2])
    with pytest.raises(ImageError, match="4 channels"):
        to_model_input(img, (4, 16, 16), digit=False)


@pytest.mark.parametrize(
    ("img", "expected"),
    [
        (Image.new("RGB", (16, 16), (0, 0, 255)).convert("CMYK"), (0, 0, 255)),  # CMYK JPEG: not inverted
        (Image.new("RGBA", (16, 16), (255, 0, 0, 0)), (255, 255, 255)),  # transparent: white
        (Image.new("LA", (16, 16), (0, 0)), (255, 255, 255)),
    ],
)
def test_modes_decode_to_rgb(img, expected):
    fmt = "JPEG" if img.mode == "CMYK" else "PNG"
    out = open_image(_png(img, fmt, **({"quality": 95} if fmt == "JPEG" else {})), mode="RGB")
    assert out.mode == "RGB"
    assert np.abs(np.asarray(out, dtype=int)[8, 8] - expected).max() <= 8


def test_sixteen_bit_is_scaled_from_its_full_range():
    img = Image.fromarray(np.array([[0, 65535], [13107, 13107]], np.uint16))  # 13107 = 0.2 of 65535
    out = np.asarray(open_image(_png(img)))
    assert out.tolist() == [[0, 255], [51, 51]]
    low = Image.fromarray(np.full((4, 4), 257, np.uint16))  # a dark 16-bit image is not stretched to white
    assert np.asarray(open_image(_png(low))).max() == 1
