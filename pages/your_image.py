"""Your own image: any common image file -> the model's input -> its code and reconstruction."""

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from core import catalog
from core.latent import encode_codes, reconstruct
from pages import _ui_charts as charts
from pages import _ui_inputs as inputs
from pages import _ui_load as load
from pages import _ui_state as state_ui

PAGE = {  # this page's row of the page table (core/site.py)
    "title": "Your own image",
    "icon": ":material/image:",
    "url_path": "your-image",
    "section": "Explore",
    "order": 60,
    "params": (),
    "tagline": "encode a photo or a drawing",
    "blurb": "Upload a digit or a face and see what the model makes of it.",
}

state_ui.intro(
    "Your own image",
    """
Upload a photo of a handwritten digit or a face: it is turned into the model's kind of input
(grayscale, size, for digits the MNIST recipe of white ink centred in a 20×20 box), encoded, and
decoded again. The idea: the model only knows its training data, so it rebuilds your image as the
nearest thing it has learned, and the result shows what its code space can represent.
""",
)

cur = load.current()
digits = catalog.is_digits(cur.entry)
st.caption(
    "Digits: any photo or scan of one digit, dark ink on light paper or light on dark; it is cropped "
    "to the ink, fitted into 20×20 and centred by its centre of mass, as in MNIST."
    if digits
    else "Faces: the photo is converted to grayscale, centre-cropped to the model's aspect ratio and resized."
)
up_col, y_col = st.columns([2, 1])
with up_col:
    source = "upload"
    if inputs.can_draw(cur):
        source = st.segmented_control(
            "Input", ["upload", "draw"], format_func={"upload": "Upload a file", "draw": "Draw"}.get,
            default="upload", required=True, key="yi_source",
        )  # fmt: skip
    if source == "draw":
        up = inputs.drawn_input(cur, "yi_canvas")
    else:
        up = inputs.uploaded_input(cur, "yi_upload", "Upload an image (PNG, JPEG, GIF, BMP, WebP, TIFF)")
with y_col:
    y = inputs.condition_picker(cur, "yi_y", "Which digit is it? (the condition)")
if up is None:
    st.info(
        "No drawing yet: draw a digit above with the mouse."
        if source == "draw"
        else "No image yet: upload one above. Anything that is not a readable image gets a message here."
    )
    st.stop()

original, x = up
labels = None if y is None else np.array([y])
code = encode_codes(cur.model, x[None], labels)
recon = reconstruct(cur.model, x[None], labels)[0]
target = 260
cols = st.columns(3)
with cols[0]:
    caption = f"your {'drawing' if source == 'draw' else 'file'} ({original.shape[1]}×{original.shape[0]}, grayscale)"
    charts.image(
        original, caption, file_name="original.png", key="yi_orig_png", target=min(max(original.shape), target)
    )
with cols[1]:
    c, h, w = x.shape
    charts.image(x, f"the model's input ({w}×{h})", file_name="model-input.png", key="yi_in_png", target=target)
with cols[2]:
    charts.image(recon, "its reconstruction", file_name="reconstruction.png", key="yi_out_png", target=target)

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
