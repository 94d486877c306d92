"""The latent map: every test image as a point, laid out by PCA, UMAP, t-SNE or two raw latent
dimensions; click a point to decode it, lasso a group to decode its mean code."""

import threading

import numpy as np
import streamlit as st

from core.app import catalog
from core.app.jobs import FractionProgress, SharedJobs, start_computation
from core.lenses.directions import format_rows, parse_rows
from core.lenses.latent import decode, image_grid, reconstruct
from core.lenses.projection import METHODS, MapProjection, axis_count, project, warm_up
from pages import _ui_charts as charts
from pages import _ui_inputs as inputs
from pages import _ui_jobs as jobs_ui
from pages import _ui_load as load
from pages import _ui_state as state_ui

PAGE = {  # this page's row of the page table (core/app/site.py)
    "title": "Latent map",
    "icon": ":material/scatter_plot:",
    "url_path": "latent-map",
    "section": "Explore",
    "order": 30,
    "params": ("points", "proj", "x", "y", "row", "group"),
    "tagline": "every test image as a point",
    "blurb": "PCA, UMAP, t-SNE or two raw dimensions; click a point or lasso a group to decode it.",
    "inputs": ("images", "table"),  # a table's model too (core/app/site.py INPUTS)
}
GROUP_SHOWN = 24  # members of a lasso selection shown under its mean
GROUP_LINK_MOST = 500  # a larger lasso selection stays out of the link (the URL would get too long)

state_ui.intro(
    "Latent map",
    """
Each dot is one test image, placed by its code (the encoder's mean μ). **PCA** shows the plane of
largest variance, **UMAP** and **t-SNE** keep each code's neighbours together (clusters, not
distances), **Two dimensions** shows the code's own axes. Click a dot to see its image and
reconstruction, or pick the lasso in the plot's toolbar and circle a group: its mean code is decoded,
the average of what they share.
""",
)

cur = load.current()
data = load.data_of(cur.entry, on_missing="warn")
if data is None:
    st.stop()
state = st.session_state
pool_x, pool_y, _ = catalog.pool(data)
pool_size = len(pool_x)
choices = [p for p in inputs.MAP_POINTS if p < pool_size] + [pool_size]
z_dim = cur.model.latent_dim
if data.features is not None:
    st.markdown(
        "Each dot is a row of the table, coloured by its label, which the model never saw (it trained on the normal "
        "rows only): do the anomalous rows sit apart? Click a dot to see the row's values beside its reconstruction."
    )
elif pool_y is not None:
    st.markdown("The colours are the images' true labels, which the model never saw: do the classes form clusters?")
else:
    st.markdown(
        "This data set has no labels, so every dot has the same colour: the structure is the code's alone "
        "(click along a cluster or lasso one to see what it holds)."
    )


def read_link() -> None:
    """The link's settings, once per session: points, projection, axes (PCs count from 1,
    latent dimensions from 0, as their labels z0, z1, … do) and the point."""
    points = state_ui.link_value("points", catalog.parse_int, 1, pool_size, "number of points")
    if points is not None:
        state["map_points"] = min(choices, key=lambda c: abs(c - points))
    method = state_ui.link_value("proj", catalog.parse_choice, tuple(METHODS), "projection")
    if method is not None:
        state["map_proj"] = method
    dims = state.get("map_proj") == "dims"
    for param in ("x", "y"):
        lo, hi = (0, z_dim - 1) if dims else (1, 3)
        axis = state_ui.link_value(param, catalog.parse_int, lo, hi, f"{param} axis")
        if axis is not None:
            state[f"map_d{param}" if dims else f"map_{param}"] = axis if dims else axis - 1
    row = state_ui.link_value("row", catalog.parse_int, 0, pool_size - 1, "point")
    if row is not None:
        state["map_row"] = row
    group = state_ui.link_value("group", parse_group, "selected group")
    if group is not None:
        state["map_group_link"] = group


def parse_group(text: str | None, what: str) -> tuple[list[int] | None, str | None]:
    """A link's lasso selection, "3-5,9" -> point numbers (a ``catalog.parse_*`` style parser)."""
    if text is None:
        return None, None
    rows, problem = parse_rows(text, pool_size)
    return (rows, None) if len(rows) > 1 else (None, f"{what} {catalog.quote(text)}: {problem or 'too few points'}")


if state_ui.first_visit(PAGE["url_path"]):
    read_link()
state_ui.show_link_notes()
state.setdefault("map_points", 2000 if 2000 in choices else choices[-1])
if state["map_points"] not in choices:
    state["map_points"] = choices[-1]
for key, default in (("map_x", 0), ("map_y", 1), ("map_row", 0), ("map_proj", "pca")):
    state.setdefault(key, default)
if cur.model.latent_dim < 2:
    st.info("A one-dimensional code has no plane to show; the sliders page shows what it does.")
    st.stop()


def pick_axes(method: str, codes, cols) -> tuple[int, int]:
    """Two principal components (of three) or two latent dimensions (the two most active by
    default); UMAP and t-SNE have no axes to pick."""
    n_axes = axis_count(method, z_dim)
    if method not in ("pca", "dims") or n_axes <= 2:
        return 0, 1
    if method == "pca":
        label = lambda i: f"PC{i + 1}"  # noqa: E731
        keys = ("map_x", "map_y")
    else:
        label = lambda i: f"z{i}"  # noqa: E731
        keys = ("map_dx", "map_dy")
        top = np.argsort(-codes.codes.mu.var(axis=0), kind="stable")[:2]
        for key, default in zip(keys, top, strict=True):
            if state.get(key) not in range(n_axes):
                state[key] = int(default)
    ax = cols[0].selectbox("Horizontal", range(n_axes), format_func=label, key=keys[0])
    ay = cols[1].selectbox("Vertical", range(n_axes), format_func=label, key=keys[1])
    if ax == ay:
        st.info("Pick two different axes.")
        st.stop()
    return ax, ay


controls = st.columns([1.3, 2.2, 0.8, 0.8])
if len(choices) > 1:
    n_points = controls[0].select_slider(
        "Points",
        choices,
        key="map_points",
        help="A fixed random subset of the test images; more take longer to encode.",
    )
else:  # a small set: every image, nothing to choose
    n_points = choices[0]
    controls[0].markdown(f"**Points**  \nall {n_points:,} {data.examples}")
if state.get("map_points_prev") != n_points:  # a new subset numbers its points anew
    state["map_points_prev"] = n_points
    if "map_row" in state and state["map_row"] >= n_points:
        state["map_row"] = 0
    state.pop("map_group", None)
if "map_group_link" in state:  # a lasso selection from the link, in this subset's numbering
    state["map_group"] = state.pop("map_group_link")
method = controls[1].segmented_control(
    "Projection",
    list(METHODS),
    format_func=lambda m: METHODS[m].title,
    key="map_proj",
    required=True,
    help=f"PCA: {METHODS['pca'].about}. UMAP, t-SNE: {METHODS['umap'].about}. Two dimensions: "
    f"{METHODS['dims'].about}. UMAP and t-SNE take a few seconds the first time; then they are kept.",
)
codes = load.codes_of(cur.entry, cur.model, data, None if n_points >= pool_size else n_points)
axes = pick_axes(method, codes, controls[2:])


# ---------------------------------------------------------------- UMAP and t-SNE: background jobs


@st.cache_resource(show_spinner=False)
def _warm_up() -> threading.Thread:
    """Once per process, when the map first opens: import UMAP and compile its numba code in the
    background (5-30 s of one core), so that a first UMAP map takes seconds when it is asked for.
    The imports themselves (about 2 s) happen here, in the script's thread: two threads importing
    scikit-learn at once can deadlock on its partly initialised modules."""
    import openTSNE  # noqa: F401
    import sklearn.decomposition
    import sklearn.neighbors  # noqa: F401
    import umap  # noqa: F401

    thread = threading.Thread(target=warm_up, name="latentlab-warm-umap", daemon=True)
    thread.start()
    return thread


_warm_up()


@st.cache_resource
def _layouts() -> SharedJobs[FractionProgress, MapProjection]:
    """UMAP and t-SNE maps of this process, one job per model, data set, number of points and
    method, shared by every session: computed once, kept for later visits."""
    return SharedJobs()


def slow_layout(method: str) -> MapProjection:
    """The method's map of these codes; until it is there the script stops here, showing its progress."""
    mu = codes.codes.mu
    return jobs_ui.computed(
        _layouts(),
        (cur.key, cur.entry.mtime, data.name, n_points, method),
        lambda: start_computation(lambda report: project(mu, method, progress=report), f"map-{method}"),
        f"{METHODS[method].title} of {len(codes.rows):,} codes",
        state_key="map_job",
        quick_s=0.0,
        caption="It is kept for later visits; PCA shows the map at once meanwhile.",
    )


proj = slow_layout(method) if METHODS[method].slow else project(codes.codes.mu, method, axes)


# ---------------------------------------------------------------- the plot and the selection


def tidy(fig):
    """Colour by label only where there are labels (one colour, no colour bar, without them),
    and where a colour bar shows the labels (many classes), put the legend above the plot so
    the two never overlap."""
    bar = False
    for trace in fig.data:
        if trace.name != "images":  # the one trace coloured along a scale (no labels, or many classes)
            continue
        if labels is None:
            trace.update(marker={"color": charts.PALETTE[0], "showscale": False}, showlegend=False)
        else:
            bar = True
            trace.update(marker={"colorbar": {"title": {"text": "label", "side": "right"}}}, showlegend=False)
    if bar:
        fig.update_layout(legend={"orientation": "h", "yanchor": "bottom", "y": 1.01, "xanchor": "left", "x": 0})
    return fig


labels = codes.codes.labels
names = data.class_names if labels is not None else None
# The chart's selection is in session state before the chart is drawn: use it now, so the
# star (or the rings of a lasso) mark it in this very run.
picked = charts.selected_points(state.get("map_chart"))
if picked is not None and picked != state.get("map_clicked"):
    state["map_clicked"] = picked
    rows, is_group = picked
    if is_group and len(rows) > 1:
        state["map_group"] = list(rows)
    else:
        state["map_row"] = rows[0]
        state.pop("map_group", None)
group = [r for r in state.get("map_group") or [] if 0 <= r < len(codes.rows)] or None
row = state.get("map_row")
plot, detail = st.columns([1.7, 1], gap="large")
with plot:
    fig = tidy(charts.scatter(proj.coords, labels, names, proj.axis_labels, highlight=None if group else row,
                              group=group))  # fmt: skip
    config = charts.plotly_config(f"{cur.entry.name}-map-{proj.method}", select=True)
    st.plotly_chart(fig, key="map_chart", on_select="rerun", selection_mode=("points", "box", "lasso"), config=config)
    took = f" Computed in {proj.seconds:.1f} s." if METHODS[method].slow else ""
    st.caption(
        f"{codes.description}, {data.source_note}. {proj.note}{took} Drag to pan, scroll to zoom; the "
        "lasso and box icons select a group; the camera icon saves the plot."
    )
    charts.format_picker()
    if proj.variance_share is not None:
        st.metric(
            "Variance in this plane",
            f"{100 * proj.variance_share:.1f}%",
            help="The share of the codes' total variance along the two axes shown",
        )


# ---------------------------------------------------------------- the point, or the group's mean


def to_directions(side: str, rows: list[int]) -> None:
    """Hand a lasso group to the directions page as its group A or B (pool rows, so any number of points fits)."""
    state[f"dir_handoff_{side}"] = (f"map selection ({len(rows)} points)", [int(codes.rows[r]) for r in rows])


def to_neighbours(r: int) -> None:
    state["nb_handoff"] = int(codes.rows[r])


def class_counts(rows: list[int]) -> str:
    if labels is None:
        return ""
    found, counts = np.unique(labels[rows], return_counts=True)
    order = np.argsort(-counts, kind="stable")
    return ", ".join(f"{names[found[i]]} ×{counts[i]}" for i in order[:6])


def show_group(rows: list[int]) -> None:
    """The decoded mean code of a lasso selection, a few of its members and where to take it."""
    st.subheader(f"The mean of {len(rows)} points")
    mean = codes.codes.mu[rows].mean(0)
    y = None
    if cur.conditional:  # a conditional decoder needs a class: the group's most common one
        y = int(np.bincount(labels[rows]).argmax())
    img = decode(cur.model, mean[None], y)[0]
    if data.features is not None:  # a table: the decoded mean as bars, the members' labels
        fig = charts.row_bars(data.features, {f"decoded mean code of {len(rows)} rows": img})
        st.plotly_chart(fig, key="map_mean_bars", config=charts.plotly_config("map-group-mean"))
        if labels is not None:
            st.caption(f"Labels in the group: {class_counts(rows)}.")
        return
    target = 200 if charts.is_faces(cur.entry) else 168
    charts.image(
        img,
        f"decoded mean code of {len(rows)} points",
        file_name="map-group-mean.png",
        key="map_mean_png",
        target=target,
    )
    members = codes.x[codes.rows[rows[:GROUP_SHOWN]]]
    st.image(image_grid(members, nrow=8), caption=f"{min(len(rows), GROUP_SHOWN)} of its members", width=320)
    if labels is not None:
        st.caption(f"Labels in the group: {class_counts(rows)}.")
    cols = st.columns(2)
    for col, side in zip(cols, ("a", "b"), strict=True):
        if col.button(
            f":material/trending_flat: As group {side.upper()}",
            key=f"map_to_dir_{side}",
            help=f"Open the Latent directions page with this selection as its group {side.upper()}",
            on_click=to_directions,
            args=(side, rows),
        ):
            st.switch_page("pages/directions.py")
    if st.button("Clear the selection", key="map_clear"):
        state.pop("map_group", None)
        st.rerun()


def show_point() -> None:
    st.subheader("The point")
    r = st.number_input("Point number (or click a dot)", 0, len(codes.rows) - 1, key="map_row")
    x = codes.x[codes.rows[r]]
    y = None if labels is None else labels[r]
    recon = reconstruct(cur.model, x[None], None if y is None else np.array([y]))[0]
    caption = f"#{r}" + (f" · {names[y]}" if names is not None else "")
    if data.features is not None:  # a table's row: its values and its reconstruction as bars
        fig = charts.row_bars(data.features, {f"row {caption}": x, "reconstruction": recon})
        st.plotly_chart(fig, key="map_row_bars", config=charts.plotly_config(f"map-row-{r}"))
        return
    pair = st.columns(2)
    target = 200 if charts.is_faces(cur.entry) else 168
    with pair[0]:
        charts.image(x, f"input {caption}", file_name=f"map-{r}-input.png", key="map_in_png", target=target)
    with pair[1]:
        charts.image(recon, "reconstruction", file_name=f"map-{r}-recon.png", key="map_out_png", target=target)
    where = ", ".join(f"{proj.axis_labels[i].split(' (')[0]} {proj.coords[r, i]:.2f}" for i in (0, 1))
    st.caption(f"Position: {where}.")
    if st.button(":material/groups: Its nearest neighbours", key="map_to_nb", on_click=to_neighbours, args=(r,)):
        st.switch_page("pages/neighbours.py")


with detail:
    if group:
        show_group(group)
    else:
        show_point()
        row = state["map_row"]

linear = proj.method in ("pca", "dims") and axis_count(proj.method, z_dim) > 2
link_axes = (axes[0] + 1, axes[1] + 1) if proj.method == "pca" else axes
state_ui.set_link(
    points=n_points if len(choices) > 1 else None,
    group=format_rows(group).replace(" ", "") if group and len(group) <= GROUP_LINK_MOST else None,
    proj=method,
    x=link_axes[0] if linear else None,
    y=link_axes[1] if linear else None,
    row=row,
)
