"""Nearest neighbours: the k test images nearest to a query in the latent space, beside the k
nearest in pixel space."""

import numpy as np
import streamlit as st

from core.app import catalog
from core.lenses.latent import encode_codes, reconstruct
from core.lenses.neighbours import METRICS, find_neighbours
from pages import _ui_charts as charts
from pages import _ui_inputs as inputs
from pages import _ui_load as load
from pages import _ui_state as state_ui

PAGE = {  # this page's row of the page table (core/app/site.py)
    "title": "Nearest neighbours",
    "icon": ":material/groups:",
    "url_path": "neighbours",
    "section": "Explore",
    "order": 35,
    "params": ("query", "row", "k", "metric", "digit"),
    "tagline": "what the code groups together",
    "blurb": "The nearest test images by code beside the nearest by pixels.",
}

state_ui.intro(
    "Nearest neighbours",
    """
The top row shows the test images whose codes (μ) lie nearest to the query's code; the bottom row
the images nearest pixel by pixel. The idea: the code groups images by what they *are* (a slanted
7 with a bold one) where pixels only see ink on the same spots, so the rows differ, and the
labels under them show which search found more of the same digit.
""",
)

cur = load.current()
data = load.data_of(cur.entry, on_missing="warn")
if data is None:
    st.stop()
state = st.session_state
pool_x, pool_y, pool_about = catalog.pool(data)
names = data.class_names if pool_y is not None else None
SOURCES = {"test": "Test image", "upload": "Upload"} | ({"draw": "Draw"} if inputs.can_draw(cur) else {})

if state_ui.first_visit(PAGE["url_path"]):
    row = state_ui.link_value("row", catalog.parse_int, 0, len(pool_x) - 1, "image number")
    if row is not None:
        state["nb_handoff"] = row
    k = state_ui.link_value("k", catalog.parse_int, 1, 16, "number of neighbours")
    if k is not None:
        state["nb_k"] = k
    metric = state_ui.link_value("metric", catalog.parse_choice, tuple(METRICS), "distance")
    if metric is not None:
        state["nb_metric"] = metric
    src = state_ui.link_value("query", catalog.parse_choice, tuple(SOURCES), "query")
    if src is not None:
        state["nb_src"] = src
    if cur.conditional:
        digit = state_ui.link_value("digit", catalog.parse_int, 0, cur.num_classes - 1, "digit")
        if digit is not None:
            state["nb_y"] = digit
state_ui.show_link_notes()
handoff = state.pop("nb_handoff", None)  # an image sent from the latent map (a pool row), or the link's
if handoff is not None and 0 <= handoff < len(pool_x):
    state["nb_src"], state["nb_row"] = "test", int(handoff)
for key, default in (("nb_k", 8), ("nb_metric", "euclidean"), ("nb_src", "test"), ("nb_row", 0)):
    state.setdefault(key, default)


def query() -> tuple[np.ndarray, int | None, str, int | None] | None:
    """The query: (image (C, H, W), label or None, caption, its pool row or None)."""
    src = st.segmented_control("Query", list(SOURCES), format_func=SOURCES.get, key="nb_src", required=True)
    if src == "test":
        r = st.number_input(
            f"Image number (0–{len(pool_x) - 1}; the map's points link here)", 0, len(pool_x) - 1, key="nb_row"
        )
        y = None if pool_y is None else int(pool_y[r])
        return pool_x[r], y, f"image #{r}" + (f" · {names[y]}" if names else ""), int(r)
    y = inputs.condition_picker(cur, "nb_y", "Which digit is it? (the condition)")
    up = inputs.drawn_input(cur, "nb_canvas") if src == "draw" else inputs.uploaded_input(cur, "nb_upload")
    if up is None:
        st.info("Draw a digit above." if src == "draw" else "Upload an image above.")
        return None
    return up[1], y, "your drawing" if src == "draw" else "your image", None


cols = st.columns([1.2, 1, 1])
with cols[0]:
    q = query()
k = cols[1].slider("Neighbours (k)", 1, 16, key="nb_k")
metric = cols[2].segmented_control(
    "Distance between codes",
    list(METRICS),
    format_func=METRICS.get,
    key="nb_metric",
    required=True,
    help="Euclidean: straight-line distance between the codes. Cosine: only the codes' directions count, "
    "not their lengths (1 − cosine similarity).",
)
src = state["nb_src"]
digit = state.get("nb_y") if cur.conditional and src != "test" else None
state_ui.set_link(query=src, row=None if q is None else q[3], k=k, metric=metric, digit=digit)
if q is None:
    st.stop()
x, y, caption, row = q
if cur.conditional and y is None:
    st.info("A conditional VAE needs the class of the image.")
    st.stop()
codes = load.codes_of(cur.entry, cur.model, data, None)  # every image of the pool, cached
query_code = (
    codes.codes.mu[row]
    if row is not None
    else encode_codes(cur.model, x[None], None if y is None else np.array([y])).mu[0]
)
found = find_neighbours(query_code, x, codes.codes.mu, pool_x, k, metric, exclude=row)

small = 96 if charts.is_faces(cur.entry) else 84
with cols[1]:
    charts.image(x, f"query: {caption}", file_name="query.png", key="nb_q_png", target=small + 40, download=False)
with cols[2]:
    recon = reconstruct(cur.model, x[None], None if y is None else np.array([y]))[0]
    charts.image(
        recon, "its reconstruction", file_name="query-recon.png", key="nb_r_png", target=small + 40, download=False
    )


def strip(title: str, rows: np.ndarray, dist: np.ndarray, key: str) -> None:
    """One row of neighbours, nearest first, each captioned with its number, label and distance."""
    st.markdown(f"**{title}**")
    slots = st.columns(max(len(rows), 8))
    for slot, r, d in zip(slots, rows, dist, strict=False):
        label = f" · {names[pool_y[r]]}" if names else ""
        with slot:
            charts.image(
                pool_x[r],
                f"#{r}{label} · {d:.2f}",
                file_name=f"{key}-{r}.png",
                key=f"{key}_{r}",
                target=small,
                download=False,
            )


strip(f"Nearest in the latent space (μ, {METRICS[metric]} distance)", found.latent, found.latent_dist, "nb_lat")
strip("Nearest in pixel space (Euclidean distance between the images)", found.pixel, found.pixel_dist, "nb_pix")
agree = found.agreement(pool_y, y)
stats = st.columns(3)
stats[0].metric(
    "In both rows",
    f"{len(found.shared)} of {len(found.latent)}",
    help="Images found by both searches: the rest is what the code groups together and pixels do not",
)
if agree is not None:
    stats[1].metric("Same label: latent", f"{agree[0]} of {len(found.latent)}")
    stats[2].metric("Same label: pixels", f"{agree[1]} of {len(found.pixel)}")
st.caption(
    f"Searched: {codes.description}, {data.source_note}" + (" (the query itself left out)." if row is not None else ".")
)
