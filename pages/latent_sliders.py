"""Latent sliders: one slider per latent dimension; the decoded image follows them live.

By default the sliders and the picture live in the browser, which decodes a frame per move of a
drag (``pages/_ui_decoder.py``); the server hears of the code when the drag ends. Where the
browser cannot decode, or with ``?decoder=server``, the sliders decode on the server.
"""

import hashlib

import numpy as np
import streamlit as st

from core.app import browser_decoder, catalog
from core.data.images import to_png
from core.lenses.latent import decode, encode_codes
from pages import _ui_charts as charts
from pages import _ui_decoder as decoder_ui
from pages import _ui_factors as factors_ui
from pages import _ui_inputs as inputs
from pages import _ui_load as load
from pages import _ui_state as state_ui

PAGE = {  # this page's row of the page table (core/app/site.py)
    "title": "Latent sliders",
    "icon": ":material/tune:",
    "url_path": "sliders",
    "section": "Explore",
    "order": 10,
    "params": ("start", "seed", "item", "z", "y", "decoder"),
    "tagline": "one slider per latent dimension",
    "blurb": "What each dimension of the code does to the image.",
}
SHOWN = 8  # sliders in view for a large code; the rest wait in an expander
ALL_SHOWN_UP_TO = 10

state_ui.intro(
    "Latent sliders",
    """
The picture on the left is the decoder's output for the code set by the sliders on the right,
one slider per latent dimension. Move one and watch which feature of the image it controls:
the model learned these directions from data alone, without labels. The most used dimensions
(by KL for a VAE, by spread for a plain AE) come first; dimensions the model left unused do nothing.
""",
)

cur = load.current()
data = load.data_of(cur.entry, on_missing="quiet")
rank = load.ranking(cur, data)
z_dim = cur.model.latent_dim
variational = cur.model.is_variational
# Slider ranges: prior units for a VAE; the codes' own spread for a plain AE.
ranges = load.code_range(cur, data)
centre, spread, lo, hi, step = ranges.centre, ranges.spread, ranges.lo, ranges.hi, ranges.step
order = rank.order if rank is not None else np.arange(z_dim)
# On data whose generative factors are known, a dimension that clearly carries one is named after it.
factor_names = factors_ui.slider_names(factors_ui.report_of(cur.entry, cur.model, data), z_dim)


def slider_key(i: int) -> str:
    return f"sl_{cur.key}_{i}"


def set_code(z: np.ndarray, moved_by_page: bool = True) -> None:
    """Put code z into the sliders. A code the page chose (not the browser's own, after a drag)
    bumps the revision, so the in-browser sliders take it."""
    for i, v in enumerate(np.clip(z, lo, hi)):
        st.session_state[slider_key(i)] = float(round(float(v), 2))
    if moved_by_page:
        st.session_state["sl_rev"] = st.session_state.get("sl_rev", 0) + 1


def current_code() -> np.ndarray:
    return np.array([st.session_state[slider_key(i)] for i in range(z_dim)], np.float32)


def random_code(seed: int) -> np.ndarray:
    return (centre + spread * np.random.default_rng(seed).standard_normal(z_dim)).astype(np.float32)


# ---- where the code starts
STARTS = {
    "prior": "Prior mean (z = 0)" if variational else "Centre of the codes",
    "random": "Random sample",
    "test": "Test image",
    "upload": "Upload",
}
if data is None:  # no test images behind it (a foreign model that names no data set of ours)
    del STARTS["test"]
if inputs.can_draw(cur):
    STARTS["draw"] = "Draw"
link_now = state_ui.first_visit(PAGE["url_path"])  # the link is read once per session
if link_now:
    start = state_ui.link_value("start", catalog.parse_choice, tuple(STARTS), "start")
    if start is not None:
        st.session_state["sl_start"] = start
    seed = state_ui.link_value("seed", catalog.parse_int, 0, 10_000, "seed")
    if seed is not None:
        st.session_state["sl_seed"] = seed
    if data is not None:
        item = state_ui.link_value("item", catalog.parse_test_row, data, "test image")
        if item is not None:
            inputs.set_test_item("sl_item", item)
for key, default in (("sl_start", "prior"), ("sl_seed", 0)):
    st.session_state.setdefault(key, default)
if st.session_state["sl_start"] not in STARTS:  # a start this model cannot offer (no test images)
    st.session_state["sl_start"] = "prior"
top = st.columns([1.5, 1.5, 0.6], gap="large")
with top[0]:
    start = st.segmented_control(
        "Start from", list(STARTS), format_func=STARTS.get, required=True, key="sl_start", wrap=True
    )
base, base_label, start_img, item_row = None, "", None, None
with top[1]:
    if start == "prior":
        base, base_label = centre.copy(), STARTS["prior"]
    elif start == "random":
        seed = st.number_input("Seed", 0, 10_000, key="sl_seed")
        base, base_label = random_code(int(seed)), f"random sample, seed {seed}"
    elif start == "test":
        data = load.data_of(cur.entry, on_missing="warn")
        if data is not None:
            item_row, base_label = inputs.pick_test_item(data, "sl_item")
            start_img = data.test_x[item_row]
            y = None if data.test_y is None else data.test_y[[item_row]]
            base = encode_codes(cur.model, start_img[None], y).mu[0]
    elif start == "upload":
        if not catalog.is_digits(cur.entry):
            st.caption("Upload any photo: it is cropped and resized to the model's input (made grey for a grey model).")
        elif "draw" not in STARTS:
            st.caption(
                "To start from a drawing, draw a digit on paper or in any paint program and upload a photo of it "
                "(drawing inside the page needs the optional package streamlit-drawable-canvas)."
            )
        y_up = inputs.condition_picker(cur, "sl_upload_y", "Which digit is it? (the condition)")
        up = inputs.uploaded_input(cur, "sl_upload")
        if up is not None:
            start_img = up[1]
            base = encode_codes(cur.model, start_img[None], None if y_up is None else np.array([y_up])).mu[0]
            base_label = "your image"
    elif start == "draw":
        y_draw = inputs.condition_picker(cur, "sl_draw_y", "Which digit is it? (the condition)")
        drawn = inputs.drawn_input(cur, "sl_canvas")
        if drawn is None:
            st.caption("Draw a digit with the mouse: white on black, like MNIST.")
        else:
            start_img = drawn[1]
            base = encode_codes(cur.model, start_img[None], None if y_draw is None else np.array([y_draw])).mu[0]
            base_label = "your drawing"
if base is None:  # no data or no upload yet: keep whatever the sliders hold
    base = st.session_state.get("sl_base", centre)
    if len(base) != z_dim:
        base = centre.copy()
with top[2]:
    if start_img is not None:
        charts.image(start_img, "the input", file_name="input.png", key="sl_input_png", target=112, download=False)

# A new start (or model) moves the sliders to it; a link's code wins on the first visit.
signature = (cur.key, start, base_label, tuple(np.round(base, 4)))
if link_now:
    z_link = state_ui.link_value("z", catalog.parse_code, lo, hi)
    y_link = (
        state_ui.link_value("y", catalog.parse_int, 0, max(cur.num_classes - 1, 0), "digit")
        if cur.conditional
        else None
    )
    if y_link is not None:
        st.session_state["sl_y"] = y_link
    if z_link is not None:
        set_code(z_link)
        st.session_state["sl_sig"] = signature
handoff = st.session_state.pop("sl_handoff", None)  # a code sent from the "Your own image" page
if handoff is not None and len(handoff) == z_dim:
    set_code(handoff)
    st.session_state["sl_sig"] = signature
    base_label = "your uploaded image"
if st.session_state.get("sl_sig") != signature or any(slider_key(i) not in st.session_state for i in range(z_dim)):
    set_code(base)
    st.session_state["sl_sig"] = signature
st.session_state["sl_base"] = np.asarray(base, np.float32)
state_ui.show_link_notes()


def reset() -> None:
    set_code(st.session_state["sl_base"])


def randomise() -> None:
    st.session_state["sl_draws"] = st.session_state.get("sl_draws", 0) + 1
    set_code(random_code(10_000 + st.session_state["sl_draws"]))


def describe(i: int) -> str:
    name = f"z{i} ≈ {factor_names[i]}" if factor_names[i] else f"z{i}"
    if rank is None:
        return name
    if rank.kl is not None:
        return f"{name} · KL {rank.kl[i]:.2f} nats"
    return f"{name} · spread {np.sqrt(rank.activity[i]):.2f}"


def buttons() -> None:
    row = st.container(horizontal=True)
    row.button(":material/restart_alt: Reset", on_click=reset, help="Back to the start code", key="sl_reset")
    row.button(":material/casino: Randomise", on_click=randomise, help="A fresh random code", key="sl_random")


TARGET = 380 if charts.is_faces(cur.entry) else 336  # the picture's long side, in pixels


@st.fragment
def browser_explorer(setup: dict) -> None:
    """Sliders and picture in the browser, which decodes every frame of a drag; this part of the
    page reruns once per drag, for the link and the PNG (decoded here when it is downloaded)."""
    controls = st.columns([1, 1.35], gap="large")
    with controls[0]:
        buttons()
    with controls[1]:
        y = inputs.condition_picker(cur, "sl_y")
    code = decoder_ui.latent_sliders_component(
        setup,
        browser_decoder.slider_rows(order, lo, hi, step, [describe(i) for i in range(z_dim)]),
        current_code(),
        y,
        rev=st.session_state.get("sl_rev", 0),
        key="sl_browser_" + hashlib.sha256(cur.key.encode()).hexdigest()[:12],
        caption=f"decoded from the sliders ({base_label or 'start'}), in your browser",
        scale=charts.display_scale(cur.model.image_shape, TARGET),
        shown=z_dim if z_dim <= ALL_SHOWN_UP_TO else SHOWN,
    )
    z = browser_decoder.accept_code(code, lo, hi)
    if z is not None:
        set_code(z, moved_by_page=False)
    z = current_code()
    scale = charts.display_scale(cur.model.image_shape, TARGET)
    charts.png_download(lambda: to_png(decode(cur.model, z, y)[0], scale), f"{cur.entry.name}-sliders.png", "sl_png")
    if rank is None:
        st.caption("Dimensions in index order: the data set is not available to rank them.")
    state_ui.set_link(z=catalog.format_code(z), y=y, **start_link)


@st.fragment
def explorer() -> None:
    """Sliders and the decoded image, on the server: a slider move reruns only this part of the page."""
    picture, controls = st.columns([1, 1.35], gap="large")
    with controls:
        buttons()
        y = inputs.condition_picker(cur, "sl_y")
        shown = order if z_dim <= ALL_SHOWN_UP_TO else order[:SHOWN]
        rest = order[len(shown) :]
        cols = st.columns(2)
        for n, i in enumerate(shown):
            cols[n % 2].slider(describe(i), float(lo[i]), float(hi[i]), step=float(step[i]), key=slider_key(i))
        if len(rest):
            with st.expander(f"{len(rest)} more dimensions, less used"):
                more = st.columns(2)
                for n, i in enumerate(rest):
                    more[n % 2].slider(describe(i), float(lo[i]), float(hi[i]), step=float(step[i]), key=slider_key(i))
        if rank is None:
            st.caption("Dimensions in index order: the data set is not available to rank them.")
    z = current_code()
    image = decode(cur.model, z, y)[0]
    with picture:
        caption = f"decoded from the sliders ({base_label or 'start'})"
        charts.image(image, caption, file_name=f"{cur.entry.name}-sliders.png", key="sl_png", target=TARGET)
    state_ui.set_link(z=catalog.format_code(z), y=y, **start_link)


# Where the code started, for the link: the source, and the seed or test image it names.
start_link = {
    "start": start,
    "seed": st.session_state["sl_seed"] if start == "random" else None,
    "item": item_row if start == "test" else None,
}
in_browser = decoder_ui.setup(cur)
if in_browser is None:
    explorer()
else:
    browser_explorer(in_browser)
