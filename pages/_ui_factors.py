"""Known factors on the pages: a model's disentanglement report (from its card, else measured once
per process), the factor × dimension heat map, and a traversal strip per factor along the
dimension that carries it. Used by the β sweep page and, for slider names, the sliders page."""

from __future__ import annotations

import numpy as np
import streamlit as st

from core.app import catalog
from core.data.registry import Dataset
from core.lenses.factors import FactorReport, NoFactors, factor_report
from core.lenses.latent import image_grid, traversal_grid
from pages import _ui_charts as charts

STEPS = 9  # pictures per factor strip
SPAN = 2.0  # the strip runs from −2 to +2 prior σ along the factor's dimension


@st.cache_resource(max_entries=32, show_spinner="Scoring the codes against the known factors…")
def _measured(key: str, mtime: float, _model, _data: Dataset) -> FactorReport | None:
    try:
        return factor_report(_model, _data)
    except NoFactors:
        return None


def report_of(entry: catalog.ModelEntry, model, data: Dataset | None) -> FactorReport | None:
    """The model's factor report: recorded in its card (``core evaluate --factors --record``), else
    measured on ``data`` once per process; None when the data know no factors."""
    recorded = entry.meta.get("card", {}).get("factors")
    if recorded:
        try:
            return FactorReport.from_card(recorded)
        except ValueError:
            pass  # a hand-edited card: measure it instead
    if data is None or data.test_factors is None:
        return None
    return _measured(entry.key, entry.mtime, model, data)


def sweep_reports(models: dict, data: Dataset) -> dict[float, FactorReport] | None:
    """Per β, the factor report of a sweep's freshly trained models (None when the data know no factors)."""
    if data.test_factors is None or not models:
        return None
    with st.spinner("Scoring the sweep's codes against the known factors…"):
        return {beta: factor_report(model, data) for beta, model in models.items()}


def slider_names(report: FactorReport | None, z_dim: int) -> list[str | None]:
    """Per code dimension, the factor it clearly carries ("x"), else None."""
    names: list[str | None] = [None] * z_dim
    for d in report.dims() if report is not None else ():
        if d.clear and d.dim < z_dim:
            names[d.dim] = d.name
    return names


def heatmap(report: FactorReport, title: str):
    """Factors (rows) × code dimensions (columns): mutual information over the factor's entropy."""
    import plotly.graph_objects as go

    z = np.asarray(report.mi)
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=[f"z{d}" for d in range(z.shape[1])],
            y=list(report.names),
            zmin=0,
            zmax=1,
            colorscale="Blues",
            text=np.round(z, 2),
            texttemplate="%{text:.2f}",
            hovertemplate="%{y} in %{x}: %{z:.2f} of its information<extra></extra>",
            colorbar={"title": "MI / H", "thickness": 12},
        )
    )
    fig.update_layout(
        height=380,
        margin={"l": 10, "r": 10, "t": 80, "b": 10},
        title={"text": title, "y": 0.98, "yanchor": "top"},
        yaxis={"autorange": "reversed", "automargin": True},
        xaxis={"side": "top", "automargin": True},
    )
    return fig


def factor_strips(report: FactorReport, model, data: Dataset) -> None:
    """One row per factor: its best dimension named, and the first test image's code walked along it."""
    base, _ = _base_code(model, data)
    found = report.factors()
    dims = [f.dim for f in found if f.dim is not None]
    strips = traversal_grid(model, base, dims, span=SPAN, steps=STEPS) if dims else None
    row = 0
    for f in found:
        left, right = st.columns([1.4, 3], vertical_alignment="center")
        if f.dim is None:
            left.markdown(f"**{f.label}**")
        elif f.clear:
            left.markdown(f"**{f.label}** · {100 * f.share:.0f}% of it")
        else:  # walked along its best dimension anyway: what that dimension does
            left.markdown(f"**{f.label}** (best: z{f.dim}, {100 * f.share:.0f}% of it)")
        if f.dim is None:
            right.caption("no dimension carries it")
            continue
        tiles = strips[row]
        row += 1
        right.image(charts.to_png(image_grid(tiles, nrow=STEPS), 2), output_format="PNG")


def _base_code(model, data: Dataset) -> tuple[np.ndarray, str]:
    from core.models.evaluate import encode_dataset

    mu, _ = encode_dataset(model, data.test_x[:1])
    return mu[0], "the first test image"


def show(reports: dict[float, FactorReport], models: dict, data: Dataset) -> None:
    """The known-factors section of the β sweep page for a family with a report per β."""
    st.subheader("Known factors: which dimension carries what")
    st.markdown(
        "On MNIST nobody knows the true factors of a digit, so disentangling can only be guessed at. Here "
        f"every image comes with its factors ({', '.join(reports[min(reports)].names)}), and two scores "
        "measure it: **MIG** (Chen et al., 2018), how much more a factor's best code dimension knows of it "
        "than the runner-up, and **DCI** (Eastwood & Williams, 2018), whether each dimension serves one factor "
        "and each factor one dimension. Raise β and watch the map below turn diagonal. The limit (Locatello "
        "et al., 2019): without labels, how disentangled a code comes out depends on the random seed and the "
        "other hyper-parameters as much as on β; one family is an illustration, not a proof."
    )
    betas = sorted(reports)
    best = max(betas, key=lambda b: reports[b].mig)
    if st.session_state.get("bs_factor_beta") not in betas:
        st.session_state["bs_factor_beta"] = best
    beta = st.select_slider("β of the model to look at", betas, key="bs_factor_beta", format_func=lambda b: f"{b:g}")
    report = reports[beta]
    left, right = st.columns([1.1, 1], gap="large")
    with left:
        title = f"β = {beta:g}: MIG {report.mig:.2f}, DCI disentanglement {report.disentanglement:.2f}"
        st.plotly_chart(heatmap(report, title), config=charts.plotly_config(f"factors-b{beta:g}"), key="bs_factor_map")
        st.caption(
            f"Each row is a factor, each column a code dimension: the share of the factor's information "
            f"(mutual information over its entropy) the dimension holds, on {report.n_test:,} test images. "
            "A disentangled code is one bright cell per row and per column."
        )
    with right:
        st.markdown(f"**Factor sliders** (β = {beta:g}): each factor's dimension, walked from −2 to +2")
        factor_strips(report, models[beta], data)
