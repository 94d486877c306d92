"""Latent directions and arithmetic: d = mean(A) − mean(B), a walk along d, and what else d moves."""

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from core.app import catalog
from core.lenses.directions import (
    change_map,
    class_directions,
    class_shift,
    direction,
    entanglement,
    format_rows,
    parse_rows,
    walk,
)
from core.lenses.latent import gif_bytes, image_grid
from core.lenses.projection import project
from pages import _ui_charts as charts
from pages import _ui_load as load
from pages import _ui_state as state_ui

PAGE = {  # this page's row of the page table (core/app/site.py)
    "title": "Latent directions",
    "icon": ":material/trending_flat:",
    "url_path": "directions",
    "section": "Explore",
    "order": 45,
    "params": ("src_a", "a", "rows_a", "src_b", "b", "rows_b", "start", "alpha", "name"),
    "tagline": "latent arithmetic: add a direction",
    "blurb": "d = mean(A) − mean(B): walk any code along it, and see what else it moves.",
}
WALK = np.linspace(-1.5, 1.5, 13, dtype=np.float32)  # the GIF's and video's steps, in units of d

state_ui.intro(
    "Latent directions",
    """
Take two groups of images, A and B (two classes, two lasso selections on the latent map, or sets
you pick by hand), and subtract their mean codes: **d = mean(A) − mean(B)**. Adding d to any code
should add "what A has and B lacks" (the smile vector of latent arithmetic). The idea: directions
are *entangled*: a direction learnt from data also carries whatever else differed between A and B,
and the last section measures how far it moves the other attributes.
""",
)

cur = load.current()
data = load.data_of(cur.entry, on_missing="warn")
if data is None:
    st.stop()
state = st.session_state
codes = load.codes_of(cur.entry, cur.model, data, None)  # every image of the pool
mu, labels = codes.codes.mu, codes.codes.labels
names = data.class_names if labels is not None else None
present = sorted(set(labels.tolist())) if labels is not None else []
SOURCES = ({"class": "A class"} if present else {}) | {"map": "Map selection", "hand": "By hand"}


def default_class(side: str) -> int:
    """Digits open on "1 → 7" (A = 7, B = 1); other labelled data on its first two classes."""
    wanted = {"a": 7, "b": 1} if catalog.is_digits(cur.entry) else {"a": present[min(1, len(present) - 1)], "b": 0}
    return wanted[side] if wanted[side] in present else present[0 if side == "b" else -1]


MAP_LINK_MOST = 500  # a larger lasso selection stays out of the link (the URL would get too long)


def parse_link_rows(text: str | None, what: str) -> tuple[list[int] | None, str | None]:
    """A link's "3-5, 9" -> image numbers (a ``catalog.parse_*`` style parser for ``link_value``)."""
    if text is None:
        return None, None
    rows, problem = parse_rows(text, len(mu))
    return (rows, None) if rows else (None, f"{what} {catalog.quote(text)}: {problem or 'no image numbers'}")


NAME_MOST = 40  # characters of a direction's name
NAME_MARKS = set(" -_.,:;!?'()+/&=%°·−→←")  # besides letters and digits: a name is plain text


def parse_name(text: str | None) -> tuple[str | None, str | None]:
    """A link's direction name: plain text (letters, digits, spaces and a few marks, no markup),
    cut to NAME_MOST characters (with a note, and the cut name goes back into the URL)."""
    if text is None:
        return None, None
    name = " ".join(text.split())
    if not name:
        return None, None
    if not all(ch.isalnum() or ch in NAME_MARKS for ch in name):
        return None, f"direction name {catalog.quote(text)} is not plain text (letters, digits, spaces, - . , : ( ))"
    if len(name) > NAME_MOST:
        return name[:NAME_MOST].rstrip(), f"the direction name was cut to {NAME_MOST} characters"
    return name, None


def read_link_group(side: str) -> None:
    """One group from the link: its source, and its class or its image numbers."""
    src = state_ui.link_value(f"src_{side}", catalog.parse_choice, tuple(SOURCES), f"source of group {side}")
    cls = state_ui.link_value(side, catalog.parse_choice, [str(c) for c in present], f"class of group {side}")
    rows = state_ui.link_value(f"rows_{side}", parse_link_rows, f"images of group {side}")
    if cls is not None and src in (None, "class"):
        state[f"dir_{side}_src"], state[f"dir_{side}_class"] = "class", int(cls)
    elif rows is not None and src == "map":
        state[f"dir_{side}_src"], state[f"dir_{side}_map"] = "map", (f"map selection ({len(rows)} points)", rows)
    elif rows is not None:
        state[f"dir_{side}_src"], state[f"dir_{side}_hand"] = "hand", format_rows(rows)
    elif src is not None and src != "class":
        state[f"dir_{side}_src"] = src


if state_ui.first_visit(PAGE["url_path"]):
    for side in ("a", "b"):
        read_link_group(side)
    start = state_ui.link_value("start", catalog.parse_int, 0, len(mu) - 1, "start image")
    if start is not None:
        state["dir_start"] = start
    alpha = state_ui.link_value("alpha", catalog.parse_float, -2.0, 2.0, "step along d")
    if alpha is not None:
        state["dir_alpha"] = alpha
    linked_name = state_ui.link_value("name", parse_name)
    if linked_name is not None:
        state["dir_name"] = linked_name
state_ui.show_link_notes()
for side in ("a", "b"):
    handoff = state.pop(f"dir_handoff_{side}", None)  # a lasso selection sent from the latent map
    if handoff is not None:
        state[f"dir_{side}_map"], state[f"dir_{side}_src"] = handoff, "map"
    state.setdefault(f"dir_{side}_src", next(iter(SOURCES)) if present else "hand")
    if present and state.get(f"dir_{side}_class") not in present:
        state[f"dir_{side}_class"] = default_class(side)


def pc1_sides(n: int = 20) -> dict[str, str]:
    """Without labels the page opens on two groups of n typical images, those nearest to one
    standard deviation either side of the mean along the codes' first principal axis (the map's
    PCA x axis): a direction of two standard deviations, to walk at once (for Frey: expression)."""
    pc1 = project(mu, "pca").coords[:, 0]
    sd = float(pc1.std())
    near = {side: sorted(np.argsort(np.abs(pc1 - v), kind="stable")[:n]) for side, v in (("a", sd), ("b", -sd))}
    return {side: ", ".join(map(str, rows)) for side, rows in near.items()}


if not present and "dir_a_hand" not in state and "dir_b_hand" not in state:
    for side, rows in pc1_sides().items():
        state[f"dir_{side}_hand"] = rows
    st.caption(
        "Opened on 20 images one standard deviation either side of the latent map's first principal axis; "
        "lasso your own groups on the map, or type image numbers."
    )


def pick_group(side: str) -> tuple[str, np.ndarray, int | None] | None:
    """One group: (its name, its pool rows, its class when it is a class), or None while empty."""
    src = st.segmented_control(
        "Group from", list(SOURCES), format_func=SOURCES.get, key=f"dir_{side}_src", required=True
    )
    if src == "class":
        cls = st.selectbox("Class", present, format_func=lambda c: names[c], key=f"dir_{side}_class")
        return names[cls], np.flatnonzero(labels == cls), int(cls)
    if src == "map":
        picked = state.get(f"dir_{side}_map")
        if picked is None:
            st.info('Lasso a group on the latent map and press "Use as group …" there.')
            st.page_link("pages/latent_map.py", label="Open the latent map", icon=":material/scatter_plot:")
            return None
        return picked[0], np.asarray(picked[1]), None
    text = st.text_input(
        "Image numbers (as on the nearest-neighbours page)", key=f"dir_{side}_hand", placeholder="e.g. 3, 17, 40-42"
    )
    rows, problem = parse_rows(text, len(mu))
    if problem:
        st.warning(f"These numbers cannot be used: {problem}.")
    return (f"your {len(rows)} images", np.asarray(rows), None) if rows else None


cols = st.columns(2, gap="large")
groups = {}
for col, side, title in ((cols[0], "a", "Group A (towards)"), (cols[1], "b", "Group B (away from)")):
    with col:
        st.subheader(title)
        groups[side] = pick_group(side)
        if groups[side] is not None:
            rows = groups[side][1]
            st.image(
                image_grid(codes.x[codes.rows[rows[:16]]], nrow=8),
                width=300,
                caption=f"{groups[side][0]}: {len(rows):,} images" + (", 16 shown" if len(rows) > 16 else ""),
            )
if groups["a"] is None or groups["b"] is None:
    st.info("Pick both groups to build a direction.")
    st.stop()
(name_a, rows_a, cls_a), (name_b, rows_b, cls_b) = groups["a"], groups["b"]
d = direction(mu[rows_a], mu[rows_b], f"{name_b} → {name_a}")
st.markdown(
    f"**d = mean(A) − mean(B)**, from {name_b} to {name_a}: length {d.norm:.2f}, that is "
    f"{d.norm / max(float((mu @ (d.vector / max(d.norm, 1e-9))).std()), 1e-9):.1f} standard deviations of the "
    "codes along d."
)


# ---------------------------------------------------------------- the walk
st.subheader("Walk a code along d")
state.setdefault("dir_start", int(rows_b[0]))
state.setdefault("dir_alpha", 1.0)
left, right = st.columns([1, 2], gap="large")
start_row = left.number_input("Start image number (default: the first of B)", 0, len(mu) - 1, key="dir_start")
alpha = left.slider("Step along d (α)", -2.0, 2.0, step=0.1, key="dir_alpha", help="The image shows start + α·d")
start = mu[start_row]
y = int(labels[start_row]) if cur.conditional else None  # a conditional decoder keeps the start's class
target = 150 if charts.is_faces(cur.entry) else 120


def centroid_note(codes_: np.ndarray) -> list[str]:
    """The nearest class centroid of each code, in words (empty without labels)."""
    if labels is None:
        return ["" for _ in codes_]
    shift = class_shift(codes_, np.zeros_like(d.vector), mu, labels)
    return [f" → nearest class {names[c]}" for c in shift.before]


strip_alphas = np.array([-1.0, 0.0, 1.0, alpha], np.float32)
images = walk(cur.model, start, d.vector, strip_alphas, y)
notes = centroid_note(start + strip_alphas[:, None] * d.vector)
titles = ("start − d", "start", "start + d", f"start + {alpha:.1f}·d")
with left:
    charts.image(images[3], titles[3] + notes[3], file_name="direction-alpha.png", key="dir_png_a", target=target)
with right:
    for slot, img, title, note, key in zip(st.columns(3), images, titles, notes, ("m", "s", "p"), strict=False):
        with slot:
            charts.image(img, title + note, file_name=f"direction-{key}.png", key=f"dir_png_{key}", target=target)


def exports() -> None:
    """The walk from start − 1.5·d to start + 1.5·d as a GIF, and as an MP4 when ffmpeg is there."""
    frames = walk(cur.model, start, d.vector, WALK, y)
    scale = 5 if charts.is_faces(cur.entry) else 6
    columns = charts.strip_columns(len(WALK), cur.model.image_shape)  # 13 across, or rows of readable tiles
    st.image(image_grid(frames, nrow=columns), caption="start − 1.5·d … start + 1.5·d", use_container_width=True)
    cols = st.columns(3)
    cols[0].download_button(
        ":material/download: GIF",
        lambda: gif_bytes(frames, scale=scale),
        file_name=f"{cur.entry.name}-direction.gif",
        mime="image/gif",
        key="dir_gif",
        on_click="ignore",
        type="tertiary",
    )
    charts.mp4_download(cols[1], frames, f"{cur.entry.name}-direction.mp4", "dir_mp4", scale=scale)


exports()
if labels is not None and cls_a is not None:
    moved = class_shift(mu[rows_b], d.vector, mu, labels, 1.0, cls_a)
    st.caption(
        f"The check, without a classifier: of the {len(rows_b):,} codes of group B, "
        f"{100 * moved.share_to_target:.0f}% have {name_a}'s class centroid as their nearest after adding d "
        f"({100 * float(np.mean(moved.before == cls_a)):.0f}% before)."
    )


# ---------------------------------------------------------------- entanglement
st.subheader("What else does d move? (entanglement)")
st.markdown(
    "Each bar compares d with another attribute's direction (a class: its mean code minus the others'; or a "
    "direction you saved). **Cosine 0**: walking along d leaves that attribute alone; **near ±1**: d *is* largely "
    "that attribute too. Hover a bar for how many standard deviations one step of d moves the codes along it. "
    "The picture on the right shows where in the image start → start + d changes the pixels: a clean direction "
    "changes one part, an entangled one changes several."
)
saved = state.setdefault("dir_saved", {}).setdefault(cur.key, {})  # name -> vector, per model
attributes = {}
if labels is not None:
    skip = {name_a, name_b} if cls_a is not None and cls_b is not None else set()
    attributes |= {f"class {n}": v for n, v in class_directions(mu, labels, names).items() if n not in skip}
attributes |= {f"saved: {n}": v for n, v in saved.items() if not np.allclose(v, d.vector)}
ent = entanglement(d.vector, attributes, mu)


def cosine_bars():
    fig = go.Figure(
        go.Bar(
            x=ent.names,
            y=ent.cosines,
            customdata=ent.shifts,
            marker_color=charts.PALETTE[0],
            hovertemplate="%{x}<br>cosine %{y:.2f}<br>one step of d moves it %{customdata:.2f} SD<extra></extra>",
        )
    )
    fig.update_layout(
        height=300,
        margin={"l": 10, "r": 10, "t": 30, "b": 10},
        yaxis={"range": [-1, 1]},
        yaxis_title="cosine with d",
        title=f"d = {d.name} against the other attributes",
    )
    return fig


left, right = st.columns([2, 1], gap="large")
with left:
    most = ent.most
    if most is None:
        st.info(
            "No other attribute to compare with yet: save this direction below, build another "
            "(e.g. glasses / no glasses), and compare the two."
        )
    else:
        st.metric(
            "Most entangled with",
            most[0],
            f"cosine {most[1]:+.2f}",
            delta_color="off",
            help="The other attribute whose direction lies closest to d (largest |cosine|)",
        )
        st.plotly_chart(cosine_bars(), key="dir_bars", config=charts.plotly_config(f"{cur.entry.name}-entanglement"))
        charts.format_picker()
with right:
    heat = change_map(images[1], images[2])
    charts.image(
        heat / max(float(heat.max()), 1e-6),
        f"where + d changes the image (largest change {float(heat.max()):.2f})",
        file_name="direction-change.png",
        key="dir_heat",
        target=200,
    )


def save_direction() -> None:
    name = (state.get("dir_name") or d.name).strip()[:NAME_MOST]
    saved[name] = d.vector.copy()


row = st.columns([2, 1, 2])
row[0].text_input("Name", key="dir_name", placeholder=d.name, max_chars=NAME_MOST, label_visibility="collapsed")
row[1].button(":material/bookmark_add: Save this direction", key="dir_save", on_click=save_direction)
if saved:
    row[2].caption("Saved: " + ", ".join(saved) + ". Saved directions join the bars above.")


def group_link(side: str, rows: np.ndarray, cls: int | None) -> dict:
    """One group's part of the link: its source and its class, or its image numbers."""
    src = state[f"dir_{side}_src"]
    listed = None if cls is not None or len(rows) > MAP_LINK_MOST else format_rows(rows).replace(" ", "")
    return {f"src_{side}": src, side: cls, f"rows_{side}": listed}


state_ui.set_link(
    **group_link("a", rows_a, cls_a),
    **group_link("b", rows_b, cls_b),
    start=start_row,
    alpha=f"{alpha:g}",
    name=parse_name(state.get("dir_name") or None)[0],  # what a link could bring back: plain text
)
