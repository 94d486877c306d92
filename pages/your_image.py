"""Your own image: any common image file -> the model's input -> its code and reconstruction."""

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from core.app import catalog
from core.data.registry import REGISTRY
from core.lenses.latent import TypicalInputs, check_input, encode_codes, reconstruct, typical_inputs
from pages import _ui_charts as charts
from pages import _ui_inputs as inputs
from pages import _ui_load as load
from pages import _ui_state as state_ui

PAGE = {  # this page's row of the page table (core/app/site.py)
    "title": "Your own image",
    "icon": ":material/image:",
    "url_path": "your-image",
    "section": "Explore",
    "order": 60,
    "params": ("input", "digit"),
    "tagline": "encode a photo or a drawing",
    "blurb": "Upload a digit or a face and see what the model makes of it.",
}

state_ui.intro(
    "Your own image",
    """
Upload a photo of a handwritten digit, a face or whatever the model was trained on: it is turned into
the model's kind of input (grey or colour, size, for digits the MNIST recipe of white ink centred in a
20×20 box), encoded, and decoded again. The idea: the model only knows its training data, so it
rebuilds your image as the nearest thing it has learned, and the result shows what its code space
can represent.
""",
)

cur = load.current()
digits = catalog.is_digits(cur.entry)
st.caption(
    "Digits: any photo or scan of one digit, dark ink on light paper or light on dark; it is cropped "
    "to the ink, fitted into 20×20 and centred by its centre of mass, as in MNIST."
    if digits
    else "Your photo is centre-cropped to the model's aspect ratio and resized"
    + (" (colour kept)." if cur.model.image_shape[0] == 3 else ", and made grey.")
)
INPUTS = {"upload": "Upload a file"} | ({"draw": "Draw"} if inputs.can_draw(cur) else {})
if state_ui.first_visit(PAGE["url_path"]):
    source = state_ui.link_value("input", catalog.parse_choice, tuple(INPUTS), "input")
    if source is not None:
        st.session_state["yi_source"] = source
    if cur.conditional:
        digit = state_ui.link_value("digit", catalog.parse_int, 0, cur.num_classes - 1, "digit")
        if digit is not None:
            st.session_state["yi_y"] = digit
state_ui.show_link_notes()
st.session_state.setdefault("yi_source", "upload")
up_col, y_col = st.columns([2, 1])
with up_col:
    source = "upload"
    if len(INPUTS) > 1:
        source = st.segmented_control("Input", list(INPUTS), format_func=INPUTS.get, required=True, key="yi_source")
    if source == "draw":
        up = inputs.drawn_input(cur, "yi_canvas")
    else:
        up = inputs.uploaded_input(cur, "yi_upload", "Upload an image (PNG, JPEG, GIF, BMP, WebP, TIFF)")
with y_col:
    y = inputs.condition_picker(cur, "yi_y", "Which digit is it? (the condition)")
state_ui.set_link(input=source if len(INPUTS) > 1 else None, digit=y)
if up is None:
    st.info(
        "No drawing yet: draw a digit above with the mouse."
        if source == "draw"
        else "No image yet: upload one above. Anything that is not a readable image gets a message here."
    )
    st.stop()

original, x = up
# What the model's data set holds, in words: (the pictures, one of them).
KINDS = {
    "digits": ("handwritten digits", "digit"),
    "faces": ("faces", "face"),
    "fashion": ("clothes", "garment"),
    "sprites": ("coloured shapes", "sprite"),
    "objects": ("3-D scenes", "scene"),
}


@st.cache_resource(max_entries=8, show_spinner="Measuring the model's test images…")
def _typical(key: str, mtime: float, _model, _data) -> TypicalInputs:
    return typical_inputs(_model, _data.test_x, _data.test_y if _model.conditional else None)


def kind_check() -> None:
    """Warn when the input is unlike the model's test images (reconstruction error, brightness,
    mid-grey share; see ``core.lenses.latent.check_input``): a face photo on a digits model."""
    data = load.data_of(cur.entry, on_missing="quiet")
    if data is None or len(data.test_x) < 20:
        st.caption("Not checked against the model's test images: they are not available here.")
        return
    typical = _typical(cur.key, cur.entry.mtime, cur.model, data)
    check = check_input(cur.model, x, typical, y)
    spec = REGISTRY.get(cur.entry.dataset)
    what, one = KINDS.get(spec.kind if spec else "", ("its training images", "training image"))
    title = catalog.dataset_title(cur.entry.dataset)
    if check.typical:
        st.caption(
            f"Checked against {len(typical.errors)} test images of {title}: its reconstruction error (better than "
            f"{100 * (1 - check.worse_than):.0f}% of them), brightness and share of mid-grey pixels are typical."
        )
        return
    st.warning(
        f"This does not look like the {what} this model was trained on ({title}): " + "; ".join(check.reasons) + ". "
        f"The model only knows {what} like those, so the reconstruction is the nearest {one} it can draw, "
        "not your picture.",
        icon="⚠️",
    )


labels = None if y is None else np.array([y])
code = encode_codes(cur.model, x[None], labels)
recon = reconstruct(cur.model, x[None], labels)[0]
target = 260
cols = st.columns(3)
with cols[0]:
    h, w = original.shape[-2:]
    caption = (
        f"your {'drawing' if source == 'draw' else 'file'} ({w}×{h}, {'colour' if original.ndim == 3 else 'grey'})"
    )
    charts.image(
        original, caption, file_name="original.png", key="yi_orig_png", target=min(max(original.shape), target)
    )
with cols[1]:
    c, h, w = x.shape
    charts.image(x, f"the model's input ({w}×{h})", file_name="model-input.png", key="yi_in_png", target=target)
with cols[2]:
    charts.image(recon, "its reconstruction", file_name="reconstruction.png", key="yi_out_png", target=target)
kind_check()

st.subheader("Its code")
mu = code.mu[0]
sd = None if code.logvar is None else np.exp(0.5 * code.logvar[0])
fig = go.Figure(
    go.Bar(
        x=[f"z{i}" for i in range(len(mu))],
        y=mu,
        error_y=None if sd is None else {"type": "data", "array": sd, "visible": True},
        marker_color="#1f77b4",
    )
)
fig.update_layout(
    height=300, margin={"l": 10, "r": 10, "t": 10, "b": 10}, yaxis_title="μ (± σ)" if sd is not None else "z"
)
st.plotly_chart(fig, key="yi_code", config=charts.plotly_config(f"{cur.entry.name}-code"))
st.caption(
    "Bars are the code's mean μ per dimension, whiskers the encoder's uncertainty σ; "
    "a dimension with σ ≈ 1 and μ ≈ 0 is unused (its posterior is the prior)."
    if sd is not None
    else "A plain autoencoder gives one code, no uncertainty."
)


def to_sliders() -> None:
    st.session_state["sl_handoff"] = mu.copy()


if st.button(":material/tune: Explore this code with the sliders", on_click=to_sliders, key="yi_to_sliders"):
    st.switch_page("pages/latent_sliders.py")
