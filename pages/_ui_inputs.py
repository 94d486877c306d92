"""Widgets the pages share: a data-set picker, a conditional VAE's label, a test image, an
uploaded or a drawn image. Each returns the user's choice; bad input gets a message in the
page, never a traceback."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import streamlit as st

from core.app import catalog
from core.data.images import MAX_UPLOAD_BYTES, ImageError, open_image, to_model_input
from core.data.registry import REGISTRY, Dataset
from pages import _ui_load as load

if TYPE_CHECKING:
    from pages._ui_load import Current

IMAGE_TYPES = ["png", "jpg", "jpeg", "gif", "bmp", "webp", "tif", "tiff"]
IMAGES_UPLOAD_MB = 20  # a .zip or .npz of the user's images (the server's limit is the table's, 100 MB)
MAP_POINTS = (500, 1000, 2000, 5000, 10000)  # the latent map's choices of how many points to plot


YOUR_IMAGES = "your-images"  # the data-set picker's choice for an upload of the user's own images


def dataset_picker(container, key: str, help: str, *, your_images: bool = False) -> str:
    """A select box over every registered data set, opening on the offline MNIST digits; with
    ``your_images``, a last choice :data:`YOUR_IMAGES` for an upload (see ``your_images_upload``)."""
    names = list(REGISTRY) + ([YOUR_IMAGES] if your_images else [])

    def title(name: str) -> str:
        return "Your own images (upload)" if name == YOUR_IMAGES else catalog.dataset_title(name)

    return container.selectbox("Data set", names, index=names.index("mnist-5k"), format_func=title, key=key, help=help)


def your_images_upload(key: str) -> Dataset | None:
    """An upload of the user's own images as a data set (a .zip of PNG/JPEG files, one folder per
    class, or an .npz with ``x`` and optionally ``y``), or None; what was done to them, and the
    files that were skipped, are said under it."""
    file = st.file_uploader(
        "Your images: a .zip of PNG/JPEG files (optionally one folder per class) or an .npz with x (and y)",
        type=["zip", "npz"],
        key=key,
        help="Colour stays colour (grey images join a colour set as RGB); resized to one size (the most common, at "
        "most 128×128); 80% train, 20% test. Up to "
        f"{IMAGES_UPLOAD_MB} MB.",
        max_upload_size=IMAGES_UPLOAD_MB,
    )
    if file is None:
        st.caption("No images yet: upload a .zip or an .npz above.")
        return None
    data = load.user_upload(file.name, file.getvalue())
    if data is not None:
        st.caption(f"{data.source_note}.")
    return data


def condition_picker(cur: Current, key: str, label: str = "Digit to draw (the condition)") -> int | None:
    """A conditional VAE's label for the decoder; None for other models."""
    if not cur.conditional:
        return None
    if st.session_state.get(key) not in range(cur.num_classes):
        st.session_state[key] = 0
    return st.selectbox(
        label,
        list(range(cur.num_classes)),
        key=key,
        help="A conditional VAE gets the class as an input; the code only holds the style.",
    )


def set_test_item(key: str, pick: catalog.TestPick) -> None:
    """Point the :func:`pick_test_item` widgets of ``key`` at a test image (a link's choice),
    before they are drawn."""
    if pick.cls is not None:
        st.session_state[f"{key}_class"] = pick.cls
    st.session_state[f"{key}_index"] = pick.index


def pick_test_item(
    data: Dataset,
    key: str,
    label: str = "Test image",
    default_index: int = 0,
    default_class: int = 0,
    default_row: int | None = None,
) -> tuple[int, str]:
    """Class (when the data has labels) + index within that class -> (row in test_x, caption).
    default_row: the test row to open on (instead of default_class and default_index), e.g. one
    of ``core.lenses.latent.example_rows``."""
    names = data.class_names if data.test_y is not None else None
    state = st.session_state
    if default_row is not None and f"{key}_index" not in state and 0 <= default_row < len(data.test_x):
        set_test_item(key, catalog.parse_test_row(str(default_row), data, label)[0])
    cols = st.columns(2)
    if names:
        present = sorted(set(np.asarray(data.test_y).tolist()))
        if state.get(f"{key}_class") not in present:
            state[f"{key}_class"] = present[min(default_class, len(present) - 1)]
        cls = cols[0].selectbox(f"{label}: class", present, format_func=lambda c: names[c], key=f"{key}_class")
    else:
        cls = None
    members = catalog.class_members(data, cls)
    last = max(0, len(members) - 1)
    state[f"{key}_index"] = min(int(state.get(f"{key}_index", default_index)), last)  # a smaller class clamps it
    idx = cols[1].number_input(f"{label}: index", 0, last, key=f"{key}_index")
    row = int(members[int(idx)])
    caption = f"test #{row}" + (f" ({names[cls]})" if names and cls is not None else "")
    return row, caption


def uploaded_input(
    cur: Current,
    key: str,
    label: str = "Upload an image",
    *,
    shape: tuple[int, int, int] | None = None,
    digit: bool | None = None,
) -> tuple[np.ndarray, np.ndarray] | None:
    """An uploaded image -> (original as uint8 (H, W), model input (C, H, W)), or None.

    shape, digit: the input's (C, H, W) and recipe when a page feeds another model than the
    sidebar's (default: the sidebar model's). Bad files get a message in the page (st.error),
    never a traceback.
    """
    file = st.file_uploader(
        label,
        type=IMAGE_TYPES,
        key=key,
        help="PNG, JPEG, GIF, BMP, WebP or TIFF, up to 10 MB.",
        max_upload_size=MAX_UPLOAD_BYTES // 2**20,  # the browser refuses more before sending it
    )
    if file is None:
        return None
    digit = catalog.is_digits(cur.entry) if digit is None else digit
    shape = tuple(shape or cur.model.image_shape)
    try:
        img = open_image(file.getvalue(), file.name, mode="RGB" if shape[0] == 3 else "L")
        x = to_model_input(img, shape, digit=digit)
    except ImageError as exc:
        st.error(f"This file cannot be used: {exc}")
        return None
    shown = np.asarray(img)  # (H, W) grey or (H, W, 3) colour, as the file was read
    return (shown if shown.ndim == 2 else np.moveaxis(shown, -1, 0)), x[0]


def can_draw(cur: Current, digits: bool | None = None) -> bool:
    """A drawing pad needs streamlit-drawable-canvas (optional) and a digits model (``digits``
    says so when a page feeds another model than the sidebar's)."""
    if not (catalog.is_digits(cur.entry) if digits is None else digits):
        return False
    try:
        import streamlit_drawable_canvas  # noqa: F401
    except ImportError:
        return False
    return True


def drawn_input(
    cur: Current, key: str, *, shape: tuple[int, int, int] | None = None
) -> tuple[np.ndarray, np.ndarray] | None:
    """A digit drawn with the mouse (white on black, like MNIST) -> (drawing as uint8 (H, W),
    model input (C, H, W)), or None while the pad is empty. Needs ``can_draw``. shape: the
    input's (C, H, W) when a page feeds another model than the sidebar's."""
    from PIL import Image
    from streamlit_drawable_canvas import st_canvas

    result = st_canvas(
        stroke_width=18,
        stroke_color="#ffffff",
        background_color="#000000",
        height=224,
        width=224,
        key=key,
        return_image_data=True,
    )
    rgba = getattr(result, "image_data", None)
    if rgba is None:
        return None
    gray = np.asarray(rgba, dtype=np.float32)[..., :3].mean(-1).astype(np.uint8)  # (H, W) 0-255
    if gray.max() < 32:
        return None
    try:
        x = to_model_input(Image.fromarray(gray, "L"), tuple(shape or cur.model.image_shape), digit=True)
    except ImageError:
        return None
    return gray, x[0]
