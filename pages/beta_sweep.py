"""The β sweep: one VAE per β, tabulated and plotted; the shipped β family, or a sweep run here."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import streamlit as st

from core.app import catalog
from core.app.jobs import CANCELLED, FAILED, Job, SweepProgress, describe_error, start_sweep
from core.data.images import to_png
from core.data.registry import REGISTRY, Dataset
from core.experiments.sweep import (
    PAGE_HIDDEN,
    PAGE_TEST_IMAGES,
    PRESETS,
    BetaImages,
    SweepResult,
    SweepRow,
    beta_images,
    estimate_seconds,
    page_model_config,
    page_test_split,
    page_train_config,
    parse_betas,
    rows_from_models,
    talk_variance,
)
from core.lenses.factors import FactorReport
from core.lenses.latent import example_rows, image_grid
from core.models.config import ConfigError
from core.models.losses import LOSS_FORMS
from pages import _ui_charts as charts
from pages import _ui_factors as factors_ui
from pages import _ui_jobs as jobs_ui
from pages import _ui_load as load
from pages import _ui_state as state_ui

PAGE = {  # this page's row of the page table (core/app/site.py)
    "title": "β sweep",
    "icon": ":material/stacked_line_chart:",
    "url_path": "beta-sweep",
    "section": "Experiments",
    "order": 10,
    "params": ("family", "data", "betas", "epochs", "latent", "loss"),
    "tagline": "one VAE per β, side by side",
    "blurb": "β trades reconstruction for KL: the code empties towards the prior; run a sweep yourself.",
}
N_IMAGES = 8  # samples and reconstructions per β
LOSS_LABELS = {
    "standard": "recon + β·KL",
    "convex": "(1−β)·recon + β·KL",
    "convex-mse": "(1−β)·MSE + β·KL (the talk's)",
}
MAX_LATENT = 128

state_ui.intro(
    "β sweep",
    """
Each row is one VAE trained with a different β, the weight of the KL term in its loss
(reconstruction + β·KL). β balances reconstruction against KL: a small β buys sharp
reconstructions with codes far from the prior, a large β pulls every posterior towards
N(0, I), so the KL falls, the posterior variance goes to 1 and the images blur. Pushed harder,
that pressure leaves fewer dimensions in use, each for one independent factor of the images
(the disentangling of the β-VAE; Higgins et al., 2017), paid for in detail.
""",
)
state = st.session_state
QUICK = PRESETS["quick"]
FORM_DEFAULTS = {  # the form opens on the quick sweep
    "bs_dataset": "mnist-5k",
    "bs_betas": QUICK.betas,
    "bs_epochs": QUICK.epochs,
    "bs_latent": QUICK.latent,
    "bs_form_kind": QUICK.loss_form,
}


def betas_from_link(text: str | None) -> tuple[str | None, str | None]:
    """The link's β values, kept as typed when they make a sweep; else a problem."""
    if text is None:
        return None, None
    try:
        parse_betas(text)
    except ConfigError as exc:
        return None, f"β values {catalog.quote(text)}: {exc}"
    return text, None


def read_link(family_keys: list[str]) -> None:
    """Every setting the page shows, from the link (once per session)."""
    family = state_ui.link_value("family", catalog.parse_choice, family_keys, "β family")
    if family is not None:
        state["bs_family"] = family_keys.index(family)
    values = {
        "bs_dataset": state_ui.link_value("data", catalog.parse_choice, list(REGISTRY), "data set"),
        "bs_betas": state_ui.link_value("betas", betas_from_link),
        "bs_epochs": state_ui.link_value("epochs", catalog.parse_int, 1, 1000, "epochs"),
        "bs_latent": state_ui.link_value("latent", catalog.parse_int, 1, MAX_LATENT, "latent size"),
        "bs_form_kind": state_ui.link_value("loss", catalog.parse_choice, LOSS_FORMS, "loss"),
    }
    state.update({k: v for k, v in values.items() if v is not None})


families = catalog.beta_families(load.models())
FAMILY_KEYS = [f[0].key for f in families]
if state_ui.first_visit(PAGE["url_path"]):
    read_link(FAMILY_KEYS)
state_ui.show_link_notes()
for _key, _value in FORM_DEFAULTS.items():
    state.setdefault(_key, _value)


@dataclass
class Series:
    """One set of rows the page shows: an installed β family or a sweep run in this session.
    originals: the test images (k, C, H, W) that ``images`` reconstruct."""

    label: str
    rows: list[SweepRow]
    images: list[BetaImages]
    originals: np.ndarray
    note: str
    originals_label: str = "test images"
    factors: dict[float, FactorReport] | None = None  # per β, on a data set whose factors are known
    models: dict = field(default_factory=dict)  # β -> model, for the factor strips
    data: Dataset | None = None  # the test data the factors were scored on


@st.cache_data(max_entries=8, show_spinner="Measuring the β family on the test images…")
def family_figures(
    keys: tuple[str, ...], mtimes: tuple[float, ...], dataset: str, _models: dict, _data: Dataset
) -> tuple[list[SweepRow], list[BetaImages]]:
    """The table rows and images of a family of checkpoints, cached per keys, mtimes and data."""
    rows = rows_from_models(_models, _data.test_x, _data.test_y)
    return rows, beta_images(_models, examples(_data), N_IMAGES)


def examples(data: Dataset) -> np.ndarray:
    """The test images every β reconstructs (N_IMAGES, C, H, W): drawn across the classes."""
    return data.test_x[example_rows(data.test_y, len(data.test_x), N_IMAGES)]


def examples_label(data: Dataset) -> str:
    """The test-images row's label: their classes, where the data have labels."""
    rows = example_rows(data.test_y, len(data.test_x), N_IMAGES)
    if data.test_y is None or not data.class_names:
        return "test images"
    return "test images: " + ", ".join(data.class_names[int(c)] for c in data.test_y[rows])


def describe_family(family: list[catalog.ModelEntry]) -> str:
    where = "shipped" if all(e.source == "shipped" for e in family) else "installed"
    betas = ", ".join(f"{catalog.beta_of(e):g}" for e in family)
    return f"{where}: {family[0].title} on {catalog.dataset_title(family[0].dataset)}, β = {betas}"


# ---------------------------------------------------------------- the sets of rows

series: list[Series] = []
if families:
    if state.get("bs_family") not in range(len(families)):
        state["bs_family"] = next((i for i, f in enumerate(families) if f[0].dataset == state.get("dataset")), 0)
    pick = state["bs_family"]
    if len(families) > 1:
        pick = st.selectbox(
            "β family", range(len(families)), format_func=lambda i: describe_family(families[i]), key="bs_family"
        )
    family = families[pick]
    data = load.data_of(family[0], on_missing="warn")
    if data is not None:
        models = {catalog.beta_of(e): load.load_model(e).model for e in family}
        rows, images = family_figures(
            tuple(e.key for e in family), tuple(e.mtime for e in family), data.name, models, data
        )
        meta = family[0].meta
        # what the training set is ("MNIST training set, 60,000 images"), never a folder's path
        trained = catalog.trained_on(meta["dataset"]) if meta.get("dataset", {}).get("n_train") else family[0].dataset
        arch = f"{family[0].model.get('arch', '?').upper()} VAEs, latent {family[0].latent_dim}"
        note = (
            f"{len(family)} {arch}, {meta.get('train', {}).get('epochs', '?')} epochs each on {trained}; "
            f"measured on {len(data.test_x):,} test images ({data.source_note})."
        )
        label = "shipped" if family[0].source == "shipped" else "installed"
        reports = {catalog.beta_of(e): factors_ui.report_of(e, models[catalog.beta_of(e)], data) for e in family}
        known = reports if all(r is not None for r in reports.values()) else None
        series.append(Series(label, rows, images, examples(data), note, examples_label(data), known, models, data))
elif not state.get("bs_runs"):
    st.info("No β family (VAEs that differ only in β) is installed here: run a sweep below to make one.")
series.extend(state.get("bs_runs", []))


# ---------------------------------------------------------------- the table and the plots


def table(all_series: list[Series]):
    """β | mean posterior variance | mean |μ| | KL | active units | reconstruction | test loss, and
    the talk's published variance beside ours when a set was trained with the talk's objective."""
    import pandas as pd

    records = []
    for s in all_series:
        for r in s.rows:
            records.append(
                {
                    "set": s.label,
                    "β": r.beta,
                    "mean posterior variance": r.mean_variance,
                    "mean |μ|": r.mean_abs_mu,
                    "KL": r.kl_total,
                    "active units": f"{r.active_units} / {r.latent_dim}",
                    "reconstruction": r.recon,
                    "test loss": r.test_loss,
                }
            )
            if s.factors and r.beta in s.factors:  # disentanglement against the known factors
                f = s.factors[r.beta]
                records[-1].update({"MIG": f.mig, "DCI disentanglement": f.disentanglement,
                                    "DCI completeness": f.completeness})  # fmt: skip
            published = talk_variance(r.beta, r.loss_form)
            if published is not None:
                records[-1]["the talk's variance"] = f"{published:.8g}"
    df = pd.DataFrame.from_records(records)
    if "the talk's variance" in df:
        df["the talk's variance"] = df["the talk's variance"].fillna("")
    return df


COLUMNS = {
    "β": st.column_config.NumberColumn(format="%g"),
    "mean posterior variance": st.column_config.NumberColumn(
        format="%.4g", help="σ² averaged over images and dimensions; the prior's is 1"
    ),
    "mean |μ|": st.column_config.NumberColumn(format="%.4g", help="|μ| averaged over images and dimensions"),
    "KL": st.column_config.NumberColumn(format="%.4g", help="KL(q(z|x) ‖ N(0, I)) in nats per image"),
    "active units": st.column_config.TextColumn(help="dimensions whose μ varies over the images (variance > 0.01)"),
    "reconstruction": st.column_config.NumberColumn(format="%.2f", help="nats per image: lower is sharper"),
    "test loss": st.column_config.NumberColumn(
        format="%.2f", help="the negative ELBO (reconstruction + KL, i.e. β = 1), comparable across β"
    ),
    "MIG": st.column_config.NumberColumn(
        format="%.2f",
        help="Mutual information gap (Chen et al. 2018): per known factor, how much more its best code dimension "
        "knows of it than the runner-up, over its entropy; 1 = each factor in one dimension alone",
    ),
    "DCI disentanglement": st.column_config.NumberColumn(
        format="%.2f", help="Eastwood & Williams 2018: does each code dimension serve one factor? (1 = yes)"
    ),
    "DCI completeness": st.column_config.NumberColumn(
        format="%.2f", help="Eastwood & Williams 2018: is each factor served by one code dimension? (1 = yes)"
    ),
    "the talk's variance": st.column_config.TextColumn(
        help="The seed talk's published mean posterior variance for this β, trained with (1−β)·MSE + β·KL"
    ),
}


# Half of a 1024-px-wide window is about 300 px: short titles, the legend under the plot.
CHART_HEIGHT = 420
LEGEND = {"orientation": "h", "yanchor": "top", "y": -0.25, "x": 0}


def kl_figure(s: Series):
    """KL per dimension, largest first, one line per β."""
    import plotly.graph_objects as go

    fig = go.Figure()
    for i, r in enumerate(s.rows):
        kl = np.sort(np.asarray(r.kl_per_dim))[::-1]
        fig.add_trace(
            go.Scatter(
                x=np.arange(1, len(kl) + 1),
                y=kl,
                mode="lines+markers",
                name=f"β = {r.beta:g}",
                line={"color": charts.PALETTE[i % len(charts.PALETTE)]},
                hovertemplate=f"β = {r.beta:g}<br>rank %{{x}}: %{{y:.2f}} nats<extra></extra>",
            )
        )
    dims = max((len(r.kl_per_dim) for r in s.rows), default=1)
    fig.update_layout(
        height=CHART_HEIGHT,
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
        title=f"KL per dimension ({s.label})",
        xaxis_title="dimension, by its KL",
        yaxis_title="KL (nats per image)",
        xaxis={"dtick": 1 if dims <= 10 else 5, "automargin": True},
        yaxis={"automargin": True},
        legend=LEGEND,
    )
    return fig


def tradeoff_figure(all_series: list[Series]):
    """Reconstruction against KL, one curve per set, points labelled by β."""
    import plotly.graph_objects as go

    fig = go.Figure()
    for i, s in enumerate(all_series):
        rows = sorted(s.rows, key=lambda r: r.beta)
        fig.add_trace(
            go.Scatter(
                x=[r.kl_total for r in rows],
                y=[r.recon for r in rows],
                mode="lines+markers+text",
                text=[f"β={r.beta:g}" for r in rows],
                textposition="top center",
                cliponaxis=False,
                name=s.label,
                marker={"size": 9, "color": charts.PALETTE[i % len(charts.PALETTE)]},
                line={"color": charts.PALETTE[i % len(charts.PALETTE)]},
                hovertemplate="KL %{x:.2f} nats, reconstruction %{y:.2f} nats<br>%{text}<extra></extra>",
            )
        )
    fig.update_layout(
        height=CHART_HEIGHT,
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
        title="Reconstruction against KL",
        xaxis_title="KL (nats per image)",
        yaxis_title="reconstruction (nats per image)",
        xaxis={"automargin": True},
        yaxis={"automargin": True},
        legend=LEGEND,
    )
    return fig


def strip(images: np.ndarray) -> bytes:
    return to_png(image_grid(images, nrow=len(images)), 2)


def show_images(s: Series) -> None:
    """Per β, side by side: prior samples and reconstructions of the same test images."""
    widths = [0.8, 4, 4]
    head = st.columns(widths)
    head[1].markdown("**Samples from the prior**, the same codes for every β")
    head[2].markdown("**Reconstructions** of the test images in the top row")
    row = st.columns(widths, vertical_alignment="center")
    row[0].markdown(s.originals_label)
    row[2].image(strip(s.originals), output_format="PNG")
    for im in s.images:
        row = st.columns(widths, vertical_alignment="center")
        row[0].markdown(f"β = {im.beta:g}")
        row[1].image(strip(im.samples), output_format="PNG")
        row[2].image(strip(im.recons), output_format="PNG")
    samples = image_grid(np.stack([im.samples for im in s.images]))
    recons = image_grid(np.stack([s.originals, *[im.recons for im in s.images]]))
    dl = st.columns(2)
    for col, grid, what in ((dl[0], samples, "samples"), (dl[1], recons, "reconstructions")):
        col.download_button(
            f":material/download: {what}, one row per β (PNG)",
            to_png(grid, 3),
            file_name=f"beta-sweep-{what}.png",
            mime="image/png",
            key=f"bs_png_{what}",
            on_click="ignore",
            type="tertiary",
        )


if series:
    st.subheader("The table")
    st.dataframe(table(series), hide_index=True, column_config=COLUMNS, key="bs_table")
    for s in series:
        st.caption(f"**{s.label}**: {s.note}")
    labels = [s.label for s in series]
    if "bs_show_next" in state:
        state["bs_show"] = state.pop("bs_show_next")
    if state.get("bs_show") not in labels:
        state["bs_show"] = labels[0]
    left, right = st.columns(2, gap="large")
    with left:
        if len(series) > 1:
            st.segmented_control("Set to plot", labels, key="bs_show", help="For the KL plot and the images below")
        shown = next((s for s in series if s.label == state.get("bs_show")), series[0])
        st.plotly_chart(kl_figure(shown), config=charts.plotly_config("beta-sweep-kl"), key="bs_kl")
    with right:
        st.plotly_chart(tradeoff_figure(series), config=charts.plotly_config("beta-sweep-tradeoff"), key="bs_tradeoff")
    st.caption(
        "Left: a dimension with KL near 0 carries nothing about the image (its posterior is the prior). "
        "Right: each step up in β gives up reconstruction to save KL, what the code tells about the image. "
        "Camera icon: save a plot as PNG."
    )
    if shown.factors and shown.data is not None:
        factors_ui.show(shown.factors, shown.models, shown.data)
    st.subheader(f"What each β draws and reconstructs ({shown.label})")
    show_images(shown)


# ---------------------------------------------------------------- a sweep, run here


def add_run(result: SweepResult, data: Dataset, settings: dict) -> None:
    """Turn a finished (or cancelled) sweep into a Series in the session."""
    runs = state.setdefault("bs_runs", [])
    label = f"your sweep {len(runs) + 1}"
    x = examples(data)
    images = beta_images(result.models, x, N_IMAGES) if result.models else []
    done = f"{len(result.rows)} of {settings['n']} models" if result.cancelled else f"{len(result.rows)} models"
    note = (
        f"{done} ({'cancelled' if result.cancelled else 'finished'}), {settings['form']} loss "
        f"({LOSS_LABELS[settings['form']]}), latent {settings['latent']}, {settings['epochs']} epoch(s) each on "
        f"{data.describe()}; measured on {len(data.test_x):,} test images drawn across the classes. "
        f"It took {result.seconds:.1f} s on this machine."
    )
    if result.failures:
        note += " Diverged: " + "; ".join(f"β={b:g}: {msg}" for b, msg in result.failures.items())
    if result.rows:
        reports = factors_ui.sweep_reports(result.models, data)  # None unless the data know their factors
        runs.append(Series(label, result.rows, images, x, note, examples_label(data), reports, result.models, data))
        state["bs_show_next"] = label  # plotted from the next run on (the control exists in this one)
    state["bs_last"] = note


def use_preset(key: str) -> None:
    """A preset's button: its settings into the form, and run it (button callbacks run first)."""
    p = PRESETS[key]
    state.update(bs_betas=p.betas, bs_epochs=p.epochs, bs_latent=p.latent, bs_form_kind=p.loss_form, bs_run_now=True)


def start(dataset_name: str, betas_text: str, epochs, latent, form: str) -> None:
    """Check the settings and start the sweep in the background (a message when it cannot run)."""
    try:
        betas = parse_betas(betas_text)
        data = load.data(dataset_name, on_missing="error")
        if data is None:
            return
        data = page_test_split(data)
        state["bs_job"] = start_sweep(betas, page_model_config(data, latent), data, page_train_config(epochs, form))
    except ConfigError as exc:
        st.error(f"This sweep cannot run: {exc}.")
        return
    state["bs_settings"] = {"n": len(betas), "form": form, "latent": int(latent), "epochs": int(epochs)}
    state["bs_data"] = data
    state.pop("bs_last", None)
    st.rerun()


st.subheader("Run a sweep now")
job: Job[SweepProgress, SweepResult] | None = state.get("bs_job")
busy = job is not None and not job.done
preset_cols = st.columns(len(PRESETS))
for col, p in zip(preset_cols, PRESETS.values(), strict=True):
    n = len(parse_betas(p.betas))
    col.button(
        f"{p.label}: {n} models, about {estimate_seconds(n, p.epochs, 5_000):.0f} s",
        on_click=use_preset,
        args=(p.key,),
        disabled=busy,
        key=f"bs_preset_{p.key}",
        help=p.note or None,
        icon=":material/play_arrow:",
    )
with st.form("bs_form"):
    cols = st.columns([1.3, 1.6, 0.7, 0.7, 1.5])
    dataset_name = cols[0].selectbox(
        "Data set",
        list(REGISTRY),
        format_func=catalog.dataset_title,
        key="bs_dataset",
        help="MNIST 5,000 digits and LFW faces are always here; the others need a data folder.",
    )
    betas_text = cols[1].text_input("β values", key="bs_betas", help="One model per value")
    epochs = cols[2].number_input("Epochs", step=1, key="bs_epochs")
    latent = cols[3].number_input("Latent size", step=1, key="bs_latent")
    form = cols[4].radio(
        "Loss",
        LOSS_FORMS,
        format_func=LOSS_LABELS.get,
        key="bs_form_kind",
        help="The convex forms keep the loss's scale and need 0 ≤ β ≤ 1; the talk's uses the per-pixel MSE.",
    )
    submitted = st.form_submit_button("Run the sweep", type="primary", disabled=busy)
st.caption(
    f"Each model is an MLP VAE (784–{PAGE_HIDDEN[0]}–z): batches of 64, Adam at 2·10⁻³ decayed on a cosine, "
    f"trained one after another on this machine and scored on {PAGE_TEST_IMAGES:,} test images. On the 5,000 "
    f"digits with 2 CPU cores each model-epoch takes about {estimate_seconds(1, 1, 5_000):.1f} s (measured): "
    "a busier machine takes longer, and the run's own time shows when it ends."
)
if (submitted or state.pop("bs_run_now", False)) and not busy:
    start(dataset_name, betas_text, epochs, latent, form)

job = state.get("bs_job")
if job is not None and not job.done:

    def sweep_progress(job) -> tuple[float, str]:
        p = job.snapshot()
        if job.status == "queued":
            return p.fraction, f"Waiting for a free core (another run is training)… {job.status}"
        if p.beta is None:
            return p.fraction, "Starting…"
        return p.fraction, f"Training model {p.current} of {p.total} (β = {p.beta:g}) · {job.elapsed:.0f} s"

    jobs_ui.follow(
        job,
        sweep_progress,
        cancel_key="bs_cancel",
        cancel_note="Cancelling: the model in training stops after its current step.",
    )
elif job is not None:
    # The sweep ended: its rows join the table once, then the job is forgotten.
    settings, data = state.pop("bs_settings"), state.pop("bs_data")
    state.pop("bs_job")
    if job.status == FAILED:
        state["bs_last"] = f"The sweep failed: {describe_error(job.error)}"
        state["bs_last_kind"] = "error"
    else:
        add_run(job.result, data, settings)
        bad = job.status == CANCELLED or job.result.failures
        state["bs_last_kind"] = "warning" if bad else "success"
    st.rerun()

if state.get("bs_last"):
    {"error": st.error, "warning": st.warning}.get(state.get("bs_last_kind"), st.success)(state["bs_last"])

state_ui.set_link(
    family=FAMILY_KEYS[state["bs_family"]] if len(families) > 1 else None,
    data=state["bs_dataset"],
    betas=state["bs_betas"],
    epochs=state["bs_epochs"],
    latent=state["bs_latent"],
    loss=state["bs_form_kind"],
)
