"""Sampling from the prior, and the 2-D manifold of decoded codes."""

from dataclasses import replace

import numpy as np
import streamlit as st

from core.app import catalog
from core.lenses.latent import (
    image_grid,
    manifold_grid,
    pca_grid,
    project,
    readable_grid_size,
    sample_prior,
    tile_scale,
)
from pages import _ui_charts as charts
from pages import _ui_inputs as inputs
from pages import _ui_load as load
from pages import _ui_state as state_ui

PAGE = {  # this page's row of the page table (core/app/site.py)
    "title": "Sampling and the manifold",
    "icon": ":material/casino:",
    "url_path": "sampling",
    "section": "Explore",
    "order": 20,
    "params": ("t", "n", "seed", "grid", "span", "axes", "dx", "dy", "digit"),
    "tagline": "decode N(0, I)",
    "blurb": "A VAE as a generator; temperature; the 2-D grid of Kingma & Welling's figure.",
}

state_ui.intro(
    "Sampling and the 2-D manifold",
    """
Left: images decoded from random codes z ~ N(0, T²·I), codes the model never saw. Right: a grid
of codes laid out over two latent axes, each decoded, as in Kingma & Welling's Figure 4. The idea:
a VAE's KL term makes the whole neighbourhood of the origin decode to plausible images, so it
can *generate*; a lower temperature T stays nearer the centre and trades variety for clean samples.
""",
)

cur = load.current()
z_dim = cur.model.latent_dim
MANIFOLD_PX = 440  # the manifold column's width at 1280×800: its default grid keeps tiles >= 48 px there
MIN_TILE = 48
AXES = {"dims": "Two latent dimensions", "pca": "The first two PCA axes of the codes"}
name = cur.entry.name
if not cur.entry.is_variational:
    st.warning(
        "This is a plain autoencoder: nothing pulled its codes towards N(0, I), so most prior samples "
        "decode to smudges. That is the point of the **AE vs VAE** page.",
        icon="⚠️",
    )

state = st.session_state
if state_ui.first_visit(PAGE["url_path"]):
    for param, key, parser, args in (
        ("t", "sa_t", catalog.parse_float, (0.0, 2.0, "temperature")),
        ("n", "sa_n", catalog.parse_int, (2, 12, "grid size")),
        ("seed", "sa_seed", catalog.parse_int, (0, 1_000_000, "seed")),
        ("grid", "mf_n", catalog.parse_int, (3, 25, "manifold size")),
        ("span", "mf_span", catalog.parse_float, (0.25, 3.0, "range")),
        ("axes", "mf_axes", catalog.parse_choice, (tuple(AXES), "manifold axes")),
        ("dx", "mf_a", catalog.parse_int, (0, z_dim - 1, "horizontal dimension")),
        ("dy", "mf_b", catalog.parse_int, (0, z_dim - 1, "vertical dimension")),
        ("digit", "mf_y", catalog.parse_int, (0, max(cur.num_classes - 1, 0), "digit")),
    ):
        if (param in ("axes", "dx", "dy") and z_dim == 2) or (param == "digit" and not cur.conditional):
            continue  # settings this model's page does not show
        value = state_ui.link_value(param, parser, *args)
        if value is not None:
            state[key] = value
state_ui.show_link_notes()
default_grid = readable_grid_size(cur.model.image_shape, MANIFOLD_PX, MIN_TILE)
for key, default in (("sa_t", 1.0), ("sa_n", 8), ("sa_seed", 0), ("mf_n", default_grid), ("mf_span", 1.0),
                     ("mf_axes", "dims")):  # fmt: skip
    state.setdefault(key, default)


def new_samples() -> None:
    state["sa_seed"] = int(state.get("sa_seed", 0)) + 1


left, right = st.columns([1, 1.25], gap="large")
with left:
    st.subheader("Samples from the prior")
    c = st.columns([1.3, 1, 1])
    temperature = c[0].slider("Temperature T", 0.0, 2.0, step=0.05, key="sa_t", help="z ~ N(0, T²·I)")
    n = c[1].slider("Grid size", 2, 12, key="sa_n", help="n × n samples")
    seed = c[2].number_input("Seed", 0, 1_000_000, key="sa_seed")
    st.button(":material/casino: New samples", on_click=new_samples, key="sa_new")
    # A conditional VAE draws one digit per row; the code carries only the style.
    y = (np.arange(n * n) // n) % cur.num_classes if cur.conditional else None
    _, samples = sample_prior(cur.model, n * n, temperature, int(seed), y)
    charts.grid_image(
        image_grid(samples, nrow=n),
        f"{n * n} samples at T = {temperature:g}, seed {seed}" + ("; row r draws digit r" if y is not None else ""),
        file_name=f"{name}-samples-T{temperature:g}-seed{seed}.png",
        key="sa_png",
        target=600,
    )

with right:
    st.subheader("The manifold")
    c = st.columns(2)
    size = c[0].slider(
        "Grid size", 3, 25, key="mf_n", help=f"n × n decoded codes; {default_grid} keeps each tile readable"
    )
    span = c[1].slider(
        "Range (× σ)",
        0.25,
        3.0,
        step=0.25,
        key="mf_span",
        help="Codes run over the Gaussian quantiles Φ⁻¹((i + ½)/n) times this factor, in prior σ for a VAE "
        "(the codes' own spread for a plain AE).",
    )
    data = load.data_of(cur.entry, on_missing="quiet")
    rank = load.ranking(cur, data)
    y_m = inputs.condition_picker(cur, "mf_y")
    if z_dim == 2:
        axes = "dims"
        dims = (0, 1)
        st.caption("Latent size 2: the grid covers the whole latent space, no choice of axes needed.")
    else:
        choices = dict(AXES)
        if data is None:
            choices.pop("pca")
            state["mf_axes"] = "dims"
        axes = st.segmented_control("Axes", list(choices), format_func=choices.get, required=True, key="mf_axes",
                                    wrap=True)  # fmt: skip
        dims = (0, 1)
        if axes == "dims":
            top = list(rank.order[:2]) if rank is not None else [0, 1]
            for key, default in zip(("mf_a", "mf_b"), top, strict=True):
                if state.get(key) not in range(z_dim):
                    state[key] = int(default)
            d = st.columns(2)
            a = d[0].selectbox("Horizontal", range(z_dim), format_func=lambda i: f"z{i}", key="mf_a")
            b = d[1].selectbox("Vertical", range(z_dim), format_func=lambda i: f"z{i}", key="mf_b")
            dims = (a, b)
    if axes == "dims" and dims[0] == dims[1]:
        st.info("Pick two different dimensions.")
    else:
        if axes == "pca":
            codes = load.codes_of(cur.entry, cur.model, data).codes
            proj = project(codes.mu)
            proj = replace(proj, explained_variance=proj.explained_variance * span**2)
            grid = pca_grid(cur.model, proj, size, y_m)
        else:  # prior units for a VAE; a plain AE's own centre and spread
            r = load.code_range(cur, data)
            grid = manifold_grid(cur.model, size, dims, base=r.centre, center=r.centre, scale=r.spread * span, y=y_m)
        tiled = image_grid(grid.images)
        charts.grid_image(
            tiled,
            f"{grid.axes[0]} left → right from {grid.cols[0]:.2f} to {grid.cols[-1]:.2f}; "
            f"{grid.axes[1]} bottom → top from {grid.rows[-1]:.2f} to {grid.rows[0]:.2f}"
            + ("" if z_dim == 2 or axes == "pca" else "; the other dimensions held at the prior mean"),
            file_name=f"{name}-manifold-{size}x{size}.png",
            key="mf_png",
            target=max(tiled.shape[:2]) * tile_scale(cur.model.image_shape, MIN_TILE),  # tiles >= MIN_TILE px
        )

many = z_dim > 2
state_ui.set_link(
    t=f"{temperature:g}", n=n, seed=seed, grid=size, span=f"{span:g}", axes=axes if many else None,
    dx=dims[0] if many and axes == "dims" else None, dy=dims[1] if many and axes == "dims" else None, digit=y_m,
)  # fmt: skip
