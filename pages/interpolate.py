"""Interpolation: walk from one image to another through the latent space (or across pixels)."""

import numpy as np
import streamlit as st

from core.app import browser_decoder, catalog
from core.data.images import to_png
from core.lenses.latent import INTERPOLATIONS, decode, example_rows, gif_bytes, image_grid, interpolate
from pages import _ui_charts as charts
from pages import _ui_decoder as decoder_ui
from pages import _ui_inputs as inputs
from pages import _ui_load as load
from pages import _ui_state as state_ui

PAGE = {  # this page's row of the page table (core/app/site.py)
    "title": "Interpolation",
    "icon": ":material/swap_horiz:",
    "url_path": "interpolation",
    "section": "Explore",
    "order": 40,
    "params": ("a", "b", "src_a", "src_b", "ya", "yb", "method", "steps", "all"),
    "tagline": "walk from one image to another",
    "blurb": "Linear, spherical and pixel-space paths, as a strip and a GIF.",
}
METHODS = {"linear": "Linear", "slerp": "Spherical", "pixel": "Pixels"}

state_ui.intro(
    "Interpolation",
    """
Two images are encoded, and the codes on the path between them are decoded: the strip shows the
steps from A (left) to B (right). The idea: in a good latent space every point on the way is a
plausible image that morphs smoothly, while a pixel cross-fade just superimposes two pictures.
Spherical interpolation keeps the path at the typical distance from the origin of a Gaussian prior.
""",
)

cur = load.current()
data = load.data_of(cur.entry, on_missing="quiet")
state = st.session_state
SOURCES = {"test": "Test image", "random": "Random", "upload": "Upload"}
if data is None:
    SOURCES = {"upload": "Upload"}
    st.info("The data set is not available here, so both ends come from uploads.")

ENDS = ("a", "b")
if data is not None and state.get("_ip_for") != data.name:  # another data set: its own default ends
    state["_ip_for"] = data.name
    for end in ENDS:
        for key in ("class", "index", "rrow", "draw"):
            state.pop(f"ip_{end}_{key}", None)


def read_link() -> None:
    """The link's settings, once per session: method, steps, all three paths, and each end's
    source and test row (a random end keeps the row it drew)."""
    method = state_ui.link_value("method", catalog.parse_choice, INTERPOLATIONS, "interpolation")
    if method is not None:
        state["ip_method"] = method
    steps = state_ui.link_value("steps", catalog.parse_int, 3, 16, "number of steps")
    if steps is not None:
        state["ip_steps"] = steps
    compare = state_ui.link_value("all", catalog.parse_choice, ("0", "1"), "all three paths")
    if compare is not None:
        state["ip_compare"] = compare == "1"
    for end in ENDS:
        src = state_ui.link_value(f"src_{end}", catalog.parse_choice, tuple(SOURCES), f"source of {end.upper()}")
        pick = None
        if data is not None:
            pick = state_ui.link_value(end, catalog.parse_test_row, data, f"test image {end.upper()}")
        if src is not None or pick is not None:
            state[f"ip_{end}_src"] = src or "test"
        if cur.conditional:  # the class of an uploaded end
            y = state_ui.link_value(f"y{end}", catalog.parse_int, 0, cur.num_classes - 1, f"digit of {end.upper()}")
            if y is not None:
                state[f"ip_{end}_y"] = y
        if pick is not None and state[f"ip_{end}_src"] == "random":
            state[f"ip_{end}_rrow"] = pick.row
        elif pick is not None:
            inputs.set_test_item(f"ip_{end}", pick)


if state_ui.first_visit(PAGE["url_path"]):
    read_link()
state_ui.show_link_notes()
for key, default in (("ip_method", "linear"), ("ip_steps", 10), ("ip_a_src", next(iter(SOURCES))),
                     ("ip_b_src", next(iter(SOURCES))), ("ip_compare", False)):  # fmt: skip
    state.setdefault(key, default)
# A and B open on two different images: across classes, or far apart in an unlabelled set.
EXAMPLES = example_rows(None if data is None else data.test_y, 0 if data is None else len(data.test_x), 2)


def shuffle(end: str) -> None:
    state[f"ip_{end}_draw"] = state.get(f"ip_{end}_draw", 0) + 1
    state.pop(f"ip_{end}_rrow", None)


def pick(end: str):
    """One end of the path -> (image (C, H, W), label or None, caption, test row or None)."""
    src = st.segmented_control(
        "Source", list(SOURCES), format_func=SOURCES.get, required=True, key=f"ip_{end}_src", wrap=True
    )
    if src == "test":
        default = EXAMPLES[ENDS.index(end) % len(EXAMPLES)] if len(EXAMPLES) else None
        row, caption = inputs.pick_test_item(data, f"ip_{end}", "Image", default_row=default)
    elif src == "random":
        st.button(":material/casino: Another one", key=f"ip_{end}_shuffle", on_click=shuffle, args=(end,))
        draw = state.get(f"ip_{end}_draw", 0)
        row = state.get(f"ip_{end}_rrow")  # the row a link named
        if row is None or not 0 <= row < len(data.test_x):
            row = int(np.random.default_rng([ord(end), draw]).integers(len(data.test_x)))
        caption = f"test #{row}"
    else:
        y = inputs.condition_picker(cur, f"ip_{end}_y", "Which digit is it? (the condition)")
        up = inputs.uploaded_input(cur, f"ip_{end}_upload")
        if up is None:
            return None
        return up[1], y, "your image", None
    y = None if data.test_y is None else int(data.test_y[row])
    return data.test_x[row], y, caption, row


def scrubber(codes: np.ndarray, labels: list[int] | None, method: str) -> None:
    """t from 0 (A) to 1 (B) along the path, decoded in the browser at every move of a drag (where
    the browser cannot decode, one line says so: the strip above is the path)."""
    setup = decoder_ui.setup(cur, "The scrubber along the path needs the in-browser decoder")
    if setup is None:
        return
    st.markdown(f"**Scrub along the {METHODS[method].lower()} path** · t from 0 (A) to 1 (B)")
    dense = browser_decoder.path_codes(codes[0], codes[-1], method)
    scale = charts.display_scale(cur.model.image_shape, 280)
    t = decoder_ui.path_scrubber_component(
        setup, dense, labels, state.get("ip_t", 0.5), rev=0, key=f"ip_scrub_{method}", ends=("A", "B"),
        caption="the code at t, decoded in your browser", scale=scale,
    )  # fmt: skip
    state["ip_t"] = t = state.get("ip_t", 0.5) if t is None else t
    y = None if labels is None else labels[0 if t < 0.5 else 1]

    def png() -> bytes:  # the frame at t, decoded here when the PNG is downloaded
        return to_png(decode(cur.model, browser_decoder.code_at(dense, t), y)[0], scale)

    charts.png_download(png, f"{cur.entry.name}-{method}-t{t:.2f}.png", f"ip_scrub_png_{method}")


ends = {}
cols = st.columns([1, 1, 1.1], gap="large")
for col, end in zip(cols, ENDS, strict=False):
    with col:
        st.subheader(f"From {end.upper()}" if end == "a" else f"To {end.upper()}")
        ends[end] = pick(end)
        if ends[end] is not None and state_ui.presenting():
            # On a projector the path is the demo and must start on the first screen; the strip's
            # first and last tiles show A and B (reconstructed), so the ends are named, not drawn.
            st.caption(f"{ends[end][2]}: the strip's {'first' if end == 'a' else 'last'} tile")
        elif ends[end] is not None:
            charts.image(ends[end][0], ends[end][2], file_name=f"input-{end}.png", key=f"ip_{end}_png", target=112,
                         download=False)  # fmt: skip
with cols[2]:
    st.subheader("The path")
    method = st.segmented_control(
        "Interpolation",
        list(METHODS),
        format_func=METHODS.get,
        required=True,
        key="ip_method",
        wrap=True,
        help="Linear: a straight line between the codes. Spherical (slerp): along the great circle, the norm "
        "going linearly. Pixels: a cross-fade of the two images, no model involved.",
    )
    steps = st.slider("Steps", 3, 16, key="ip_steps")
    compare = st.toggle("Show all three paths", key="ip_compare", help="Linear, spherical and pixel, one strip each")

rows = {end: None if ends[end] is None else ends[end][3] for end in ENDS}  # the test rows (None: an upload)
ys = {end: state.get(f"ip_{end}_y") if cur.conditional and state[f"ip_{end}_src"] == "upload" else None for end in ENDS}
state_ui.set_link(
    a=rows["a"], b=rows["b"], src_a=state["ip_a_src"], src_b=state["ip_b_src"], ya=ys["a"], yb=ys["b"],
    method=method, steps=steps, all=1 if compare else None,
)  # fmt: skip
if ends["a"] is None or ends["b"] is None:
    st.info("Upload an image for each end to see the path.")
    st.stop()

(x_a, y_a, cap_a, _), (x_b, y_b, cap_b, _) = ends["a"], ends["b"]
if cur.conditional and (y_a is None or y_b is None):
    st.info("A conditional VAE needs the class of both images.")
    st.stop()
name = cur.entry.name
paths = {}
for m in INTERPOLATIONS if compare else (method,):
    path = paths[m] = interpolate(cur.model, x_a, x_b, steps, m, y_a, y_b)
    st.markdown(f"**{METHODS[m]}**" + (" · first and last are the reconstructions of A and B" if m != "pixel" else ""))
    charts.grid_image(
        image_grid(path.images, nrow=charts.strip_columns(steps, cur.model.image_shape)),
        None,
        file_name=f"{name}-{m}-{steps}.png",
        key=f"ip_png_{m}",
        target=min(1200, 110 * steps),
    )
    st.download_button(
        ":material/download: GIF (loops A → B → A)",
        lambda images=path.images: gif_bytes(images, scale=6 if not charts.is_faces(cur.entry) else 5),
        file_name=f"{name}-{m}-{steps}.gif",
        mime="image/gif",
        key=f"ip_gif_{m}",
        on_click="ignore",
        type="tertiary",
    )
    scale = 6 if not charts.is_faces(cur.entry) else 5
    charts.mp4_download(st, path.images, f"{name}-{m}-{steps}.mp4", f"ip_mp4_{m}", scale=scale)
    if cur.conditional:
        st.caption("A conditional VAE switches the class input at the midpoint; the code carries the style.")

if method != "pixel":
    scrubber(paths[method].codes, [y_a, y_b] if cur.conditional else None, method)
