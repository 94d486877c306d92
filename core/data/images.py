"""Users' own images -> model inputs, and arrays -> PNG bytes.

An upload is untrusted: it is decoded from memory (never written to disk), with Pillow's
decompression-bomb guard on and a pixel limit of our own, and every failure becomes an
:class:`ImageError` whose message can be shown in the page as it is.

Images are decoded to grayscale ("L") or colour ("RGB"): transparency is composited on white,
16-bit and 32-bit grey are scaled from their full range (0-65535 for 16-bit), CMYK and palettes
become RGB, and an animation gives its first frame.

Digits are made MNIST-style (LeCun et al.): grayscale, white ink on black (inverted when the
background is light), the ink's bounding box fitted into 20×20 keeping its aspect ratio, then
placed in 28×28 so that its centre of mass is at the centre.
"""

from __future__ import annotations

import io
import warnings
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

MAX_UPLOAD_BYTES = 10 * 1024 * 1024
MAX_PIXELS = 40_000_000  # width × height; larger is refused before decoding
Image.MAX_IMAGE_PIXELS = MAX_PIXELS  # Pillow raises DecompressionBombError past 2× this


class ImageError(ValueError):
    """An image cannot be used; the message says why, in words for the page."""


@contextmanager
def decoding(name: str) -> Iterator[None]:
    """Run Pillow on an untrusted file named ``name`` with the decompression-bomb guard raised to
    an error; every way it fails becomes one :class:`ImageError` that names the file."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            yield
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageError(f"{name} is too large to decode safely ({exc})") from exc
    except UnidentifiedImageError as exc:
        raise ImageError(f"{name} is not an image file Latent Lab can read") from exc
    except (OSError, SyntaxError, ValueError, EOFError, zipfile.BadZipFile) as exc:  # truncated or corrupt data
        raise ImageError(f"{name} is damaged or truncated ({exc})") from exc


def open_image(data: bytes, name: str = "upload", mode: str = "L") -> Image.Image:
    """Decode image bytes into a single-frame 8-bit image of ``mode``: "L" (grayscale, the
    default) or "RGB" (grey files repeated to three channels).

    Handles 16-bit, transparency (composited on white), palette, CMYK and animated files (first
    frame). Refuses empty, truncated, non-image, vector (SVG) and oversized files.
    """
    if mode not in ("L", "RGB"):
        raise ValueError(f"mode must be 'L' or 'RGB', not {mode!r}")
    img = decode_image(data, name)
    with decoding(name):  # a conversion Pillow lacks (LAB, …) is an ImageError too
        return to_rgb(img) if mode == "RGB" else to_gray(img)


def decode_image(data: bytes, name: str = "upload") -> Image.Image:
    """Decode image bytes, under every guard, into the first frame in the file's own mode."""
    if not data:
        raise ImageError(f"{name} is empty")
    if len(data) > MAX_UPLOAD_BYTES:
        raise ImageError(f"{name} is {len(data) / 1e6:.1f} MB; the limit is {MAX_UPLOAD_BYTES // 2**20} MB")
    head = data[:256].lstrip().lower()
    if head.startswith(b"<?xml") or head.startswith(b"<svg") or b"<svg" in head:
        raise ImageError(f"{name} is an SVG (vector) file; please upload a PNG, JPEG, GIF, BMP or WebP image")
    with decoding(name):
        img = Image.open(io.BytesIO(data))
        w, h = img.size
        if w * h > MAX_PIXELS:
            raise ImageError(f"{name} is {w}×{h} pixels; the limit is {MAX_PIXELS / 1e6:.0f} megapixels")
        img.seek(0)  # first frame of an animation
        img.load()
    return img


ALPHA_MODES = frozenset({"RGBA", "RGBa", "LA", "La", "PA"})
_WIDE_GRAY_MODES = frozenset({"I;16", "I;16B", "I;16L", "I;16N", "I", "F"})


def has_alpha(img: Image.Image) -> bool:
    """Whether the image has an alpha channel or a transparent colour (from its header)."""
    return img.mode in ALPHA_MODES or "transparency" in img.info


def to_gray(img: Image.Image) -> Image.Image:
    """Any Pillow mode -> 8-bit grayscale ("L", ITU-R 601 luma); transparency over white."""
    return _flatten(img).convert("L")


def to_rgb(img: Image.Image) -> Image.Image:
    """Any Pillow mode -> 8-bit "RGB" (grey repeated); CMYK converted; transparency over white."""
    return _flatten(img).convert("RGB")


def _flatten(img: Image.Image) -> Image.Image:
    """Wide grey -> "L"; transparency composited onto white; CMYK -> "RGB"; others as they are."""
    if img.mode in _WIDE_GRAY_MODES:
        return _wide_gray(img)
    if has_alpha(img):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if img.mode in ("CMYK", "P"):
        return img.convert("RGB")
    return img


def _wide_gray(img: Image.Image) -> Image.Image:
    """16-bit grey (and 32-bit integers up to 65535) -> 0-255 on the 0-65535 scale; float in
    [0, 1] as it is; any other range is stretched from its minimum to its maximum."""
    arr = np.asarray(img, dtype=np.float64)
    lo, hi = float(arr.min()), float(arr.max())
    if img.mode != "F" and lo >= 0 and hi <= 65535:
        arr = arr / 65535
    elif not (img.mode == "F" and lo >= 0 and hi <= 1):
        arr = (arr - lo) / (hi - lo) if hi > lo else np.zeros_like(arr)
    return Image.fromarray((arr * 255).round().astype(np.uint8))


def to_model_input(img: Image.Image, shape: tuple[int, int, int], digit: bool) -> np.ndarray:
    """An image -> float32 (1, C, H, W) in [0, 1] for a model of ``shape`` (C, H, W), C 1 or 3.

    digit=True applies MNIST preprocessing (see the module docstring) to the grey image (repeated
    to three channels for a colour model); otherwise the image is centre-cropped to the model's
    aspect ratio and resized (faces), in grey ("L") or colour ("RGB") as the model takes.
    """
    c, h, w = shape
    if c not in (1, 3):
        raise ImageError(f"models with {c} channels are not supported for uploads (1 or 3)")
    if min(img.size) < 2:
        raise ImageError(f"the image is {img.width}×{img.height} pixels; it needs to be at least 2×2")
    if digit:
        gray = np.asarray(img.convert("L"), dtype=np.float32) / 255.0
        out = np.repeat(mnist_style(gray, size=(h, w))[None], c, axis=0)
    else:
        fitted = ImageOps.fit(img.convert("RGB" if c == 3 else "L"), (w, h), method=Image.Resampling.LANCZOS)
        arr = np.asarray(fitted, dtype=np.float32) / 255.0
        out = np.moveaxis(arr, -1, 0) if c == 3 else arr[None]
    return out[None].astype(np.float32)


def mnist_style(arr: np.ndarray, size: tuple[int, int] = (28, 28), box: int = 20) -> np.ndarray:
    """(H, W) grayscale in [0, 1] -> (size) MNIST-style digit: ink white on black, fitted, centred."""
    # A light background (the border's median) means dark ink on paper: invert.
    border = np.concatenate([arr[0], arr[-1], arr[:, 0], arr[:, -1]])
    if np.median(border) > 0.5:
        arr, border = 1.0 - arr, 1.0 - border
    # Remove the background level and stretch the ink to full white, as in MNIST.
    arr = np.clip(arr - float(np.median(border)), 0, None)
    peak = float(arr.max())
    if peak < 0.05:
        raise ImageError("the image looks blank: no strokes were found")
    arr = arr / peak
    ink = arr > 0.1
    rows, cols = np.flatnonzero(ink.any(1)), np.flatnonzero(ink.any(0))
    crop = arr[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    ch, cw = crop.shape
    scale = box / max(ch, cw)
    nh, nw = max(1, round(ch * scale)), max(1, round(cw * scale))
    resized = Image.fromarray((crop * 255).astype(np.uint8)).resize((nw, nh), Image.Resampling.LANCZOS)
    digit = np.asarray(resized, dtype=np.float32) / 255.0
    out = np.zeros(size, dtype=np.float32)
    H, W = size
    total = digit.sum()
    ys, xs = np.indices(digit.shape)
    cy = (ys * digit).sum() / total if total > 0 else nh / 2
    cx = (xs * digit).sum() / total if total > 0 else nw / 2
    top = round(H / 2 - cy)
    left = round(W / 2 - cx)
    top = min(max(top, 0), H - nh)
    left = min(max(left, 0), W - nw)
    out[top : top + nh, left : left + nw] = digit
    return out.clip(0, 1)


def to_png(image: np.ndarray, scale: int = 1) -> bytes:
    """(H, W), (C, H, W) with C 1 or 3, or (H, W, 3) (an image grid), float in [0, 1] or uint8
    -> PNG bytes, optionally enlarged."""
    arr = np.asarray(image)
    if arr.ndim == 3 and arr.shape[0] in (1, 3):
        arr = arr[0] if arr.shape[0] == 1 else np.moveaxis(arr, 0, -1)
    if arr.dtype != np.uint8:
        arr = (np.clip(arr, 0, 1) * 255).round().astype(np.uint8)
    img = Image.fromarray(arr)
    if scale > 1:
        img = img.resize((img.width * scale, img.height * scale), Image.Resampling.NEAREST)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()
