"""The latent map: every test image as a point, the codes projected by PCA; click to decode."""

import numpy as np
import streamlit as st

from core import catalog
from core.latent import project, reconstruct
from pages import _ui_charts as charts
from pages import _ui_inputs as inputs
from pages import _ui_load as load
from pages import _ui_state as state_ui

PAGE = {  # this page's row of the page table (core/site.py)
    "title": "Latent map",
    "icon": ":material/scatter_plot:",
    "url_path": "latent-map",
    "section": "Explore",
    "order": 30,
    "params": ("points", "x", "y", "row"),
    "tagline": "every test image as a point",
    "blurb": "Classes cluster without labels; click a point to see its reconstruction.",
}

state_ui.intro(
    "Latent map",
    """
Each dot is one test image, placed by its code (the encoder's mean μ), projected onto the plane
of largest variance by PCA, or shown on the raw axes for a 2-D code. Colours are the true labels,
which the model never saw: similar images land near each other all the same. Click a dot to see
the image beside its reconstruction.
""",
)

cur = load.current()
data = load.data_of(cur.entry, on_missing="warn")
if data is None:
    st.stop()
state = st.session_state
pool_size = len(catalog.pool(data)[0])
choices = [p for p in inputs.MAP_POINTS if p < pool_size] + [pool_size]
if state_ui.first_visit(PAGE["url_path"]):
    points = state_ui.link_value("points", catalog.parse_int, 1, pool_size, "number of points")
    if points is not None:
        state["map_points"] = min(choices, key=lambda c: abs(c - points))
    for param in ("x", "y"):
        axis = state_ui.link_value(param, catalog.parse_int, 1, 3, f"{param} axis")
        if axis is not None:
            state[f"map_{param}"] = axis - 1
    row = state_ui.link_value("row", catalog.parse_int, 0, pool_size - 1, "point")
    if row is not None:
        state["map_row"] = row
state_ui.show_link_notes()
state.setdefault("map_points", 2000 if 2000 in choices else choices[-1])
if state["map_points"] not in choices:
    state["map_points"] = choices[-1]
for key, default in (("map_x", 0), ("map_y", 1), ("map_row", 0)):
    state.setdefault(key, default)

controls = st.columns([1.4, 1, 1, 2.2])
n_points = controls[0].select_slider(
    "Points", choices, key="map_points", help="A fixed random subset of the test images; more take longer to encode."
)
if state.get("map_points_prev") != n_points:  # a new subset numbers its points anew
    state["map_points_prev"] = n_points
    if "map_row" in state and state["map_row"] >= n_points:
        state["map_row"] = 0
codes = load.codes_of(cur.entry, cur.model, data, None if n_points >= pool_size else n_points)
if cur.model.latent_dim < 2:
    st.info("A one-dimensional code has no plane to show; the sliders page shows what it does.")
    st.stop()
proj = project(codes.codes.mu, n_components=3 if cur.model.latent_dim > 2 else 2)
k = proj.coords.shape[1]
if k > 2:
    ax = controls[1].selectbox("Horizontal", range(k), format_func=lambda i: proj.axis_labels[i], key="map_x")
    ay = controls[2].selectbox("Vertical", range(k), format_func=lambda i: proj.axis_labels[i], key="map_y")
else:
    ax, ay = 0, 1
with controls[3]:
    if proj.method == "pca":
        total = float(np.sum(proj.explained_variance_ratio[[ax, ay]]))
        st.metric("Variance in this plane", f"{100 * total:.1f}%", help="Explained variance of the two PCA axes shown")
    else:
        st.caption(f"The code has {cur.model.latent_dim} dimensions: the plot shows its own axes, no projection.")

labels = codes.codes.labels
names = data.class_names if labels is not None else None
# The chart's selection is in session state before the chart is drawn: use it now, so the
# star marks the clicked point in this very run.
clicked = charts.selected_point(state.get("map_chart"))
if clicked is not None and clicked != state.get("map_clicked"):
    state["map_clicked"] = clicked
    state["map_row"] = clicked
row = state.get("map_row")
plot, detail = st.columns([1.7, 1], gap="large")
with plot:
    fig = charts.scatter(
        proj.coords[:, [ax, ay]], labels, names, (proj.axis_labels[ax], proj.axis_labels[ay]), highlight=row
    )
    config = charts.plotly_config(f"{cur.entry.name}-map")
    st.plotly_chart(fig, key="map_chart", on_select="rerun", selection_mode="points", config=config)
    st.caption(f"{codes.description}, {data.source_note}. Drag to pan, scroll to zoom, camera icon to save a PNG.")
with detail:
    st.subheader("The point")
    row = st.number_input("Point number (or click a dot)", 0, len(codes.rows) - 1, key="map_row")
    x = codes.x[codes.rows[row]]
    y = None if labels is None else labels[row]
    recon = reconstruct(cur.model, x[None], None if y is None else np.array([y]))[0]
    caption = f"#{row}" + (f" · {names[y]}" if names is not None else "")
    pair = st.columns(2)
    target = 200 if charts.is_faces(cur.entry) else 168
    with pair[0]:
        charts.image(x, f"input {caption}", file_name=f"map-{row}-input.png", key="map_in_png", target=target)
    with pair[1]:
        charts.image(recon, "reconstruction", file_name=f"map-{row}-recon.png", key="map_out_png", target=target)
    coords = ", ".join(f"{proj.axis_labels[i].split(' ')[0]} {proj.coords[row, i]:.2f}" for i in (ax, ay))
    st.caption(f"Position: {coords}.")

state_ui.set_link(points=n_points, x=ax + 1 if k > 2 else None, y=ay + 1 if k > 2 else None, row=row)
