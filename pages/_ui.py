"""What every page shares: the current model, cached loads, images with a PNG download, and
bookmarkable settings in the URL. Not a page itself (``app.py`` lists the pages).

Models, data sets and codes are cached per process with ``st.cache_resource`` and shared by
every session, so nothing here (or in a page) may change them: pages only call ``core``
functions that read a model.
"""

from __future__ import annotations

import gc
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import streamlit as st

from core import catalog
from core.data import REGISTRY, DataError, Dataset
from core.images import ImageError, open_image, to_model_input, to_png

if TYPE_CHECKING:  # torch-backed modules load on first use, so the first page paints before torch
    from core.checkpoints import Checkpoint
    from core.latent import LatentCodes

# Query parameters each page owns (besides "model", which every page carries). app.py drops
# the others when the page changes, so a link never carries another page's settings.
LINK_PARAMS = {
    "sliders": ("z", "y"),
    "sampling": ("t", "n", "seed", "grid", "span"),
    "latent-map": ("points", "x", "y", "row"),
    "interpolation": ("a", "b", "method", "steps"),
    "ae-vs-vae": ("pair", "a", "b"),
    "your-image": (),
    "beta-sweep": (),
    "denoising": ("noise", "level"),
    "anomalies": ("setup", "digit", "score"),
    "train": (),
}
IMAGE_TYPES = ["png", "jpg", "jpeg", "gif", "bmp", "webp", "tif", "tiff"]
MAP_POINTS = (500, 1000, 2000, 5000, 10000)


# ---------------------------------------------------------------- the process

_frozen_at = 0  # len(sys.modules) at the last gc.freeze()


def freeze_imports() -> None:
    """Hide everything imported so far from Python's cyclic garbage collector (``gc.freeze``).

    torch, scikit-learn and plotly create hundreds of thousands of long-lived objects; every
    full collection walks them all, and collections happen during reruns: measured in the
    browser, a slider move took about 100 ms longer with torch imported and unfrozen than on a
    minimal page, and the same with it frozen. Run after each script run; it acts only when
    new modules were imported.
    """
    global _frozen_at
    if len(sys.modules) != _frozen_at:
        gc.freeze()
        _frozen_at = len(sys.modules)


def warm_up() -> None:
    """Import the torch-backed engine in a background thread, once per process, so the first
    page paints without waiting for torch and the demos open warm."""
    if not getattr(warm_up, "started", False):
        warm_up.started = True

        def load() -> None:
            import core.checkpoints
            import core.latent  # noqa: F401

        threading.Thread(target=load, name="latentlab-warm-up", daemon=True).start()


# ---------------------------------------------------------------- cached loads


@st.cache_resource(ttl=10, show_spinner=False)
def models() -> list[catalog.ModelEntry]:
    """The checkpoints on offer; re-read every 10 s so a newly trained model shows up."""
    return catalog.list_models()


@st.cache_resource(max_entries=12, show_spinner="Loading the model…")
def _load_model(path: str, mtime: float) -> Checkpoint:
    from core.checkpoints import load_checkpoint

    return load_checkpoint(path)


@st.cache_resource(max_entries=4, show_spinner="Loading the data set…")
def _load_data(name: str, image_shape: tuple[int, ...]) -> Dataset:
    return catalog.load_data(name, image_shape)


@dataclass
class Codes:
    """Codes of the images a page plots: ``rows`` index ``x`` (and ``y``), the pool's images."""

    codes: LatentCodes
    rows: np.ndarray
    x: np.ndarray
    y: np.ndarray | None
    description: str


@st.cache_resource(max_entries=24, show_spinner="Encoding the images…")
def _codes(key: str, mtime: float, dataset: str, n: int | None, _model, _data: Dataset) -> Codes:
    from core.latent import encode_codes

    x, y, description = catalog.pool(_data)
    rows = catalog.subset_indices(len(x), n)
    if len(rows) < len(x):
        description = f"{len(rows):,} of {description}"
    codes = encode_codes(_model, x[rows], None if y is None else y[rows])
    return Codes(codes, rows, x, y, description)


@dataclass
class Current:
    """The model picked in the sidebar, loaded."""

    entry: catalog.ModelEntry
    ckpt: Checkpoint

    @property
    def model(self):
        return self.ckpt.model

    @property
    def key(self) -> str:
        return self.entry.key

    @property
    def conditional(self) -> bool:
        return self.model.config.conditional

    @property
    def num_classes(self) -> int:
        return self.model.config.num_classes


def current() -> Current:
    """The sidebar's model, loaded (cached); a page stops with a message when there is none."""
    entry = st.session_state.get("_entry")
    if entry is None:
        st.info(
            "No model is installed yet. Train one, for example "
            "`python -m core train --dataset mnist-5k --model vae --arch mlp --latent 2 "
            "--epochs 5 --out user_checkpoints/my-vae`, and reload this page."
        )
        st.stop()
    return Current(entry, load_model(entry))


def load_model(entry: catalog.ModelEntry) -> Checkpoint:
    from core.checkpoints import CheckpointError

    try:
        return _load_model(str(entry.path), entry.mtime)
    except CheckpointError as exc:
        st.error(f"This checkpoint cannot be loaded: {exc}")
        st.stop()


def data_for(entry: catalog.ModelEntry, *, quiet: bool = False) -> Dataset | None:
    """The model's data set (offline-first), or None with a message in the page."""
    try:
        return _load_data(entry.dataset, entry.image_shape)
    except DataError as exc:
        if not quiet:
            st.warning(
                f"The {catalog.dataset_title(entry.dataset)} images are not available here ({exc}). "
                "Point `LATENTLAB_DATA` at a data folder, or pick another model; the parts of this "
                "page that need no data still work."
            )
        return None


def dataset(name: str, image_shape: tuple[int, ...]) -> Dataset:
    """Any registered data set (offline-first, resized to ``image_shape``, cached per process);
    raises DataError when it is not available here."""
    return _load_data(name, tuple(image_shape))


def dataset_picker(container, key: str, help: str) -> str:
    """A select box over every registered data set, opening on the offline MNIST digits."""
    names = list(REGISTRY)
    return container.selectbox(
        "Data set", names, index=names.index("mnist-5k"), format_func=catalog.dataset_title, key=key, help=help
    )


def dataset_named(name: str) -> Dataset | None:
    """Registered data set ``name`` at its own size (offline-first, cached), or None with an
    error in the page. For the pages that train models (β sweep, Train)."""
    try:
        return _load_data(name, None)
    except DataError as exc:
        st.error(
            f"The {catalog.dataset_title(name)} images are not available here ({exc}). Point "
            "`LATENTLAB_DATA` at a data folder, or pick an offline set (MNIST 5,000 digits, LFW faces)."
        )
        return None


def codes_of(entry: catalog.ModelEntry, model, data: Dataset, n: int | None = 2000) -> Codes:
    """Codes of a fixed random subset of ``n`` pool images (all when None); cached per model,
    data set and n. ``Codes.rows[i]`` is the row in ``Codes.x`` of code ``i``."""
    return _codes(entry.key, entry.mtime, data.name, n, model, data)


def ranking(cur: Current, data: Dataset | None):
    """Dimensions by KL (VAE) or activity (AE), or None without data."""
    if data is None:
        return None
    from core.latent import rank_dimensions

    codes = codes_of(cur.entry, cur.model, data).codes
    return rank_dimensions(codes.mu, codes.logvar)


# ---------------------------------------------------------------- text and images


def intro(title: str, text: str) -> None:
    """Every page opens with its title and two or three sentences: what you see, the one idea."""
    st.title(title)
    st.markdown(text)
    notes_slot()


def notes_slot() -> None:
    """Reserve the place for notes about the link (filled by ``show_link_notes``)."""
    st.session_state["_notes_slot"] = st.empty()
    show_link_notes()


def display_scale(shape: tuple[int, ...], target: int) -> int:
    """Integer upscaling so an image's long side is about ``target`` pixels (crisp pixels)."""
    return max(1, round(target / max(shape[-2:])))


def is_faces(entry: catalog.ModelEntry) -> bool:
    spec = REGISTRY.get(entry.dataset)
    return spec is not None and spec.kind == "faces"


def image(
    img: np.ndarray,
    caption: str | None = None,
    *,
    file_name: str,
    key: str,
    target: int = 280,
    download: bool = True,
) -> bytes:
    """Show one image (C, H, W) / (H, W) in [0, 1] or uint8, enlarged with crisp pixels, with a
    PNG download button under it. Returns the PNG bytes."""
    arr = np.asarray(img)
    png = to_png(arr, display_scale(arr.shape, target))
    st.image(png, caption=caption, output_format="PNG")
    if download:
        png_download(png, file_name, key)
    return png


def png_download(png: bytes, file_name: str, key: str) -> None:
    """A small "PNG" download button for image bytes already shown above it."""
    st.download_button(
        ":material/download: PNG",
        lambda: png,  # deferred: nothing is stored for the download until it is clicked
        file_name=file_name,
        mime="image/png",
        key=key,
        on_click="ignore",
        type="tertiary",
    )


def grid_scale(grid: np.ndarray, target: int = 720) -> int:
    return max(1, min(6, round(target / max(grid.shape[:2]))))


def grid_image(grid: np.ndarray, caption: str | None = None, *, file_name: str, key: str, target: int = 720) -> bytes:
    """Show a tiled grid (uint8 (H, W) or (H, W, 3)) with a PNG download."""
    png = to_png(grid, grid_scale(grid, target))
    st.image(png, caption=caption, output_format="PNG")
    png_download(png, file_name, key)
    return png


def plotly_config(file_name: str) -> dict:
    """The modebar's camera button saves the figure as a PNG named ``file_name``."""
    return {
        "displaylogo": False,
        "toImageButtonOptions": {"format": "png", "filename": file_name, "scale": 2},
        "modeBarButtonsToRemove": ["lasso2d", "select2d"],
    }


# ---------------------------------------------------------------- inputs


def class_names(cur: Current, data: Dataset | None) -> tuple[str, ...] | None:
    if data is not None and data.class_names and data.test_y is not None:
        return data.class_names
    if cur.conditional:
        return tuple(str(i) for i in range(cur.num_classes))
    return None


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


def pick_test_item(
    data: Dataset, key: str, label: str = "Test image", default_index: int = 0, default_class: int = 0
) -> tuple[int, str]:
    """Class (when the data has labels) + index within that class -> (row in test_x, caption)."""
    names = data.class_names if data.test_y is not None else None
    state = st.session_state
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
    file = st.file_uploader(label, type=IMAGE_TYPES, key=key, help="PNG, JPEG, GIF, BMP, WebP or TIFF, up to 10 MB.")
    if file is None:
        return None
    digit = catalog.is_digits(cur.entry) if digit is None else digit
    try:
        img = open_image(file.getvalue(), file.name)
        x = to_model_input(img, tuple(shape or cur.model.config.image_shape), digit=digit)
    except ImageError as exc:
        st.error(f"This file cannot be used: {exc}")
        return None
    return np.asarray(img), x[0]


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
        x = to_model_input(Image.fromarray(gray, "L"), tuple(shape or cur.model.config.image_shape), digit=True)
    except ImageError:
        return None
    return gray, x[0]


# ---------------------------------------------------------------- the URL


def first_visit(page: str) -> bool:
    """True on this page's first run in the session: the moment to read its link settings."""
    seen = st.session_state.setdefault("_link_read", set())
    if page in seen:
        return False
    seen.add(page)
    return True


def link_value(name: str, parser: Callable, *args) -> object | None:
    """Parse query parameter ``name`` with a ``catalog.parse_*`` function; a bad value becomes a
    note shown at the top of the page and the default is used."""
    value, problem = parser(st.query_params.get(name), *args)
    if problem:
        note(problem)
    return value


def note(problem: str) -> None:
    st.session_state.setdefault("_link_notes", []).append(problem)


def show_link_notes() -> None:
    """Show the notes about unusable link settings, under the page's intro when it has one."""
    notes = st.session_state.pop("_link_notes", None)
    if notes:
        slot = st.session_state.get("_notes_slot") or st
        slot.info("Some settings in the link could not be used, so defaults were taken: " + "; ".join(notes) + ".")


def set_link(**params) -> None:
    """Write this page's settings into the URL (None removes a parameter), in one update: each
    change of the query string is one browser history entry."""
    current = st.query_params.to_dict()
    wanted = dict(current)
    for name, value in params.items():
        if value is None:
            wanted.pop(name, None)
        else:
            wanted[name] = str(value)
    if wanted != current:
        st.query_params.from_dict(wanted)


# ---------------------------------------------------------------- the latent scatter

PALETTE = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
    "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
]  # fmt: skip


def scatter(
    coords: np.ndarray,
    labels: np.ndarray | None,
    names: tuple[str, ...] | None,
    axis_labels: tuple[str, str],
    *,
    highlight: int | None = None,
    height: int = 520,
    title: str | None = None,
):
    """A plotly scatter of 2-D points, one trace per class (point i carries i in custom_data),
    or one trace coloured by row for unlabelled data or many classes."""
    import plotly.graph_objects as go

    fig = go.Figure()
    ids = np.arange(len(coords))
    hover = "%{customdata[1]}<br>x %{x:.2f}, y %{y:.2f}<extra></extra>"
    if labels is not None and names is not None and len(names) <= len(PALETTE):
        for c in np.unique(labels):
            m = labels == c
            fig.add_trace(
                go.Scattergl(
                    x=coords[m, 0],
                    y=coords[m, 1],
                    mode="markers",
                    name=names[c],
                    marker={"size": 6, "opacity": 0.75, "color": PALETTE[c % len(PALETTE)]},
                    customdata=np.stack([ids[m], [f"#{i} · {names[c]}" for i in ids[m]]], axis=1),
                    hovertemplate=hover,
                )
            )
    else:
        colour = labels if labels is not None else ids
        text = [f"#{i}" + (f" · {names[labels[i]]}" if names is not None and labels is not None else "") for i in ids]
        fig.add_trace(
            go.Scattergl(
                x=coords[:, 0],
                y=coords[:, 1],
                mode="markers",
                name="images",
                marker={
                    "size": 7,
                    "opacity": 0.8,
                    "color": colour,
                    "colorscale": "Viridis",
                    "colorbar": {"title": "class" if labels is not None else "row"},
                },
                customdata=np.stack([ids, text], axis=1),
                hovertemplate=hover,
            )
        )
    if highlight is not None and 0 <= highlight < len(coords):
        fig.add_trace(
            go.Scatter(
                x=[coords[highlight, 0]],
                y=[coords[highlight, 1]],
                mode="markers",
                name="selected",
                marker={"size": 16, "symbol": "star", "color": "black", "line": {"width": 1, "color": "white"}},
                hoverinfo="skip",
            )
        )
    fig.update_layout(
        height=height,
        margin={"l": 10, "r": 10, "t": 40 if title else 30, "b": 10},
        xaxis_title=axis_labels[0],
        yaxis_title=axis_labels[1],
        legend={"itemsizing": "constant"},
        title=title,
        clickmode="event+select",
        dragmode="pan",
    )
    return fig


def selected_point(event) -> int | None:
    """The custom_data id of the clicked point in a plotly selection event, if any."""
    try:
        points = event.selection.points
    except AttributeError:
        try:
            points = event["selection"]["points"]
        except (KeyError, TypeError):
            return None
    for p in points or []:
        data = p.get("customdata") if isinstance(p, dict) else None
        if data:
            try:
                return int(data[0])
            except (TypeError, ValueError):
                continue
    return None
