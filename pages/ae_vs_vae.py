"""AE vs VAE: the same images through a plain autoencoder and a VAE of the same size."""

import numpy as np
import streamlit as st

from core.app import catalog
from core.lenses.latent import example_rows, image_grid, interpolate, project, sample_prior
from pages import _ui_charts as charts
from pages import _ui_inputs as inputs
from pages import _ui_load as load
from pages import _ui_state as state_ui

PAGE = {  # this page's row of the page table (core/app/site.py)
    "title": "AE vs VAE",
    "icon": ":material/compare:",
    "url_path": "ae-vs-vae",
    "section": "Explore",
    "order": 50,
    "params": ("pair", "points", "a", "b", "steps", "grid", "seed"),
    "tagline": "the same images through both",
    "blurb": "Why the KL term turns an autoencoder into a generative model.",
}

POINTS = [500, 1000, 2000]  # the scatters' choices of how many test codes to plot

state_ui.intro(
    "AE vs VAE",
    """
The same test images go through a plain autoencoder (left) and a VAE with the same encoder,
decoder and latent size (right). The only difference is the KL term in the VAE's loss. It pulls
the codes into one compact cloud around the origin: the VAE's paths between images stay on
plausible images, and its samples from N(0, I) look like data, while the AE's codes spread out
unevenly and its random samples mostly decode to smudges.
""",
)

every_pair = catalog.ae_vae_pairs(load.models())
if not every_pair:
    st.info(
        "This needs a plain AE and a VAE of the same data set and latent size "
        "(the shipped pair is mnist-ae-conv-z16 and mnist-vae-conv-z16); none is installed."
    )
    st.stop()
state = st.session_state
picked = state.get("_entry")  # the sidebar's model: the page compares a pair of its data set
pairs = [p for p in every_pair if picked is not None and p[0].dataset == picked.dataset]
if picked is not None and not pairs:
    pairs = every_pair
    st.info(
        f"No plain AE and VAE of {catalog.dataset_title(picked.dataset)} are installed to compare (the page needs "
        "both, with the same image and latent size: train the missing one on the Train page), so this compares "
        f"the {catalog.dataset_title(pairs[0][0].dataset)} pair instead."
    )
pair_ids = [f"{ae.key},{vae.key}" for ae, vae in pairs]
by_id = dict(zip(pair_ids, pairs, strict=True))
sidebar_key = None if picked is None else picked.key
if state.get("_av_for") != sidebar_key or state.get("av_pair") not in by_id:  # a new sidebar model
    state["_av_for"] = sidebar_key
    match = [i for i, (ae, vae) in by_id.items() if sidebar_key in (ae.key, vae.key)]
    state["av_pair"] = (match or pair_ids)[0]
if state_ui.first_visit(PAGE["url_path"]):
    link = state_ui.link_value("pair", catalog.parse_choice, pair_ids, "model pair")
    if link is not None:
        state["av_pair"] = link
    for param, key, lo, hi, what in (
        ("points", "av_points", 500, 2000, "number of points"),
        ("steps", "av_steps", 3, 16, "number of steps"),
        ("grid", "av_n", 3, 10, "grid size"),
        ("seed", "av_seed", 0, 1_000_000, "seed"),
    ):
        value = state_ui.link_value(param, catalog.parse_int, lo, hi, what)
        if value is not None:
            state[key] = value
for key, default in (("av_points", 1000), ("av_steps", 10), ("av_n", 6), ("av_seed", 0)):
    state.setdefault(key, default)
if state["av_points"] not in POINTS:
    state["av_points"] = min(POINTS, key=lambda p: abs(p - state["av_points"]))

pair_id = st.selectbox(
    "Compare", pair_ids, format_func=lambda i: " vs ".join(e.label for e in by_id[i]), key="av_pair",
)  # fmt: skip
ae, vae = by_id[pair_id]
if picked is not None and pairs is not every_pair and not any(picked.key in (a.key, v.key) for a, v in pairs):
    st.caption(
        f"{picked.label} has no partner of its kind and size (a plain AE beside a VAE, same latent size), so the "
        "page compares this pair of the same data set."
    )
models = {ae.key: load.load_model(ae).model, vae.key: load.load_model(vae).model}
data = load.data_of(ae, on_missing="warn")
if data is None:
    st.stop()
names = data.class_names if data.test_y is not None else None
if state.get("_av_data") != data.name:  # another data set: A and B open on its own two examples
    state["_av_data"] = data.name
    for key in ("av_a_class", "av_a_index", "av_b_class", "av_b_index"):
        state.pop(key, None)
examples = example_rows(data.test_y, len(data.test_x), 2)  # across classes, or far apart without labels

if state_ui.first_visit(PAGE["url_path"] + "-ends"):
    for end in ("a", "b"):
        pick = state_ui.link_value(end, catalog.parse_test_row, data, f"test image {end.upper()}")
        if pick is not None:
            inputs.set_test_item(f"av_{end}", pick)
state_ui.show_link_notes()

st.subheader("1 · The codes of the same test images")
pool_size = len(catalog.pool(data)[0])
if pool_size > POINTS[0]:
    n_points = st.columns([1, 3])[0].select_slider("Points", POINTS, key="av_points")
else:  # a small set: every image, nothing to choose
    n_points = None
    st.caption(f"All {pool_size:,} images of the set.")
cols = st.columns(2, gap="large")
for col, entry in zip(cols, (ae, vae), strict=True):
    codes = load.codes_of(entry, models[entry.key], data, n_points)
    proj = project(codes.codes.mu)
    with col:
        what = "plain AE" if entry is ae else "VAE"
        fig = charts.scatter(proj.coords[:, :2], codes.codes.labels, names, tuple(proj.axis_labels[:2]), height=420,
                             title=f"{what}: {entry.label}")  # fmt: skip
        st.plotly_chart(fig, key=f"av_map_{what}", config=charts.plotly_config(f"{entry.name}-codes"))
        spread = np.sqrt(proj.explained_variance[:2])
        st.caption(
            f"Spread along the two axes: {spread[0]:.2f} and {spread[1]:.2f} code units"
            + (" (the prior's is 1)" if entry is vae else " (nothing sets a scale)")
        )

st.subheader("2 · The path between the same two images")
cols = st.columns([1, 1, 1])
with cols[0]:
    row_a, cap_a = inputs.pick_test_item(data, "av_a", "A", default_row=int(examples[0]))
with cols[1]:
    row_b, cap_b = inputs.pick_test_item(data, "av_b", "B", default_row=int(examples[-1]))
with cols[2]:
    steps = st.slider("Steps", 3, 16, key="av_steps")
for entry in (ae, vae):
    path = interpolate(models[entry.key], data.test_x[row_a], data.test_x[row_b], steps, "linear")
    st.markdown(f"**{'Plain AE' if entry is ae else 'VAE'}** · {cap_a} → {cap_b}, linear in the code")
    charts.grid_image(image_grid(path.images, nrow=charts.strip_columns(steps, entry.image_shape)), None,
                      file_name=f"{entry.name}-path.png", key=f"av_path_{entry.key}",
                      target=min(1200, 110 * steps))  # fmt: skip

st.subheader("3 · Decoding random codes z ~ N(0, I)")
c = st.columns([1, 1, 3])
n = c[0].slider("Grid size", 3, 10, key="av_n")
seed = c[1].number_input("Seed", 0, 1_000_000, key="av_seed")
cols = st.columns(2, gap="large")
for col, entry in zip(cols, (ae, vae), strict=True):
    _, samples = sample_prior(models[entry.key], n * n, 1.0, int(seed))
    with col:
        charts.grid_image(image_grid(samples, nrow=n), f"{'plain AE' if entry is ae else 'VAE'}: the same {n * n} "
                          "codes", file_name=f"{entry.name}-samples.png", key=f"av_samples_{entry.key}",
                          target=480)  # fmt: skip

state_ui.set_link(pair=pair_id, points=n_points, a=row_a, b=row_b, steps=steps, grid=n, seed=seed)
