"""Anomaly detection: an autoencoder's reconstruction error (or −ELBO) as an anomaly score,
in two setups, with a threshold, the ROC curve, a PCA baseline and the top outliers."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from core import catalog
from core.anomaly import (
    HELD_OUT_MODEL,
    HELD_OUT_TRAIN,
    SCORE_TITLES,
    AnomalySplit,
    DetectionReport,
    ThresholdStats,
    anomaly_scores,
    cross_dataset_split,
    detect,
    held_out_split,
    most_anomalous,
    threshold_stats,
)
from core.data import DataError
from core.jobs import (
    CANCELLED,
    DONE,
    FAILED,
    QUEUED,
    HeldOutProgress,
    HeldOutResult,
    Job,
    SharedJobs,
    describe_error,
    start_held_out,
)
from core.latent import image_grid, reconstruct
from pages import _ui_charts as charts
from pages import _ui_inputs as inputs
from pages import _ui_load as load
from pages import _ui_state as state_ui

PAGE = {  # this page's row of the page table (core/site.py)
    "title": "Anomaly detection",
    "icon": ":material/report:",
    "url_path": "anomalies",
    "section": "Experiments",
    "order": 30,
    "params": ("setup", "digit", "score"),
    "tagline": "reconstruction error as a score",
    "blurb": "What a model never saw reconstructs badly: histograms, ROC and the top outliers.",
}
SETUPS = {"cross": "Another data set", "held-out": "A digit held out"}
SCORES = {"recon-mse": "Reconstruction error", "elbo": "−ELBO"}
PER_SIDE = 1000  # test images from each data set in the cross-data-set setup
HELD_OUT_DATA = "mnist-5k"  # the offline subset: the held-out models train on it in seconds
DIGIT_SHAPE = (1, 28, 28)
GALLERY = 12
PCA_COMPONENTS = 32
POLL_S = 0.5  # how often the page looks at a held-out model in training
COLOURS = {"normal": "#1f77b4", "anomalous": "#d62728", "pca": "#7f7f7f", "you": "#2ca02c"}

state_ui.intro(
    "Anomaly detection",
    """
An autoencoder learns to rebuild the kind of images it was trained on; show it something else and
the rebuild fails. The histograms show that failure as a score (the reconstruction error or the
−ELBO) for normal and for anomalous test images, the slider sets where "anomalous" begins, and the
ROC curve sums up every threshold at once. The idea: the reconstruction error is an anomaly
detector for free, but it only flags what the model rebuilds badly, and a linear PCA baseline is
the bar it has to clear.
""",
)


@dataclass
class Setup:
    """What the rest of the page shows: a model, the split it is scored on, the scores."""

    model: object  # core.models.AutoEncoder
    split: AnomalySplit
    report: DetectionReport
    names: tuple[str, str]  # what a normal / an anomalous image is, for captions
    about: str  # what was trained on what, in words
    label_names: tuple[str, ...] | None  # the test images' class names (captions), or None
    digit_input: bool  # uploads are made MNIST-style
    shape: tuple[int, int, int]


cur = load.current()
state = st.session_state
if state_ui.first_visit(PAGE["url_path"]):
    for param, key, options, what in (
        ("setup", "an_setup", list(SETUPS), "setup"),
        ("score", "an_score", list(SCORES), "score"),
    ):
        value = state_ui.link_value(param, catalog.parse_choice, options, what)
        if value is not None:
            state[key] = value
    digit = state_ui.link_value("digit", catalog.parse_int, 0, 9, "held-out digit")
    if digit is not None:
        state["an_digit"] = digit
state_ui.show_link_notes()

# ---------------------------------------------------------------- the cross-data-set setup
SHORT = {"mnist": "MNIST", "mnist-5k": "MNIST", "fashion-mnist": "Fashion-MNIST"}
partner = catalog.CROSS_DATASET.get(cur.entry.dataset)
cross_ok = partner is not None and not cur.conditional
cross_title = f"{SHORT[cur.entry.dataset]} vs {SHORT[partner]}" if partner else "MNIST vs Fashion-MNIST"


@st.cache_resource(max_entries=4, show_spinner="Scoring the test images…")
def _cross(key: str, mtime: float, normal: str, anomalous: str, _model, _normal, _anomalous) -> tuple:
    split = cross_dataset_split(_normal, _anomalous, max_per_side=PER_SIDE)
    return split, detect(_model, split, pca_components=PCA_COMPONENTS)


def cross_setup() -> Setup:
    """The sidebar's model, its own test images as normal, the partner data set's as anomalies."""
    if not cross_ok:
        why = (
            "a conditional VAE needs each image's label, which an anomaly does not have"
            if cur.conditional and partner
            else f"the sidebar's model was trained on {catalog.dataset_title(cur.entry.dataset)}"
        )
        st.info(
            "This setup needs a model trained on MNIST (Fashion-MNIST is then the anomaly) or on "
            f"Fashion-MNIST (MNIST is then the anomaly); {why}. Pick one in the sidebar, such as "
            "mnist-vae-conv-z16, or hold out a digit instead."
        )
        st.stop()
    normal = load.data_of(cur.entry, on_missing="warn")
    if normal is None:
        st.stop()
    try:
        anomalous = load.data(partner, cur.entry.image_shape, on_missing="raise")
    except DataError as exc:
        st.warning(
            f"**{catalog.dataset_title(partner)} is not available here**, so this setup cannot run. "
            + (
                "Fashion-MNIST is not embedded offline (only a 5,000-digit MNIST subset is). "
                if partner == "fashion-mnist"
                else ""
            )
            + f"Put its files in a data folder in torchvision's layout (`DIR/FashionMNIST/raw/*.gz`, "
            "`DIR/MNIST/raw/*.gz`), start the app with `LATENTLAB_DATA=DIR` (or `LATENTLAB_DOWNLOAD=1` to "
            f"download it) and reload. The *digit held out* setup works offline. ({exc})"
        )
        st.stop()
    split, report = _cross(
        cur.key, cur.entry.mtime, normal.source_note, anomalous.source_note, cur.model, normal, anomalous
    )
    n_norm, n_anom = int((~split.is_anomaly).sum()), int(split.is_anomaly.sum())
    about = (
        f"**Model**: the sidebar's {cur.entry.label} ({cur.entry.title}), trained on "
        f"{catalog.dataset_title(cur.entry.dataset)} only. **Normal**: {n_norm:,} of its test images "
        f"({normal.source_note}). **Anomalous**: {n_anom:,} {SHORT[partner]} test images "
        f"({anomalous.source_note}). PCA ({PCA_COMPONENTS} components) is fitted on the same normal "
        "training images."
    )
    return Setup(
        cur.model,
        split,
        report,
        (SHORT[cur.entry.dataset], SHORT[partner]),
        about,
        None,
        catalog.is_digits(cur.entry),
        tuple(cur.entry.image_shape),
    )


# ---------------------------------------------------------------- the held-out-digit setup
@st.cache_resource
def _held_out_jobs() -> SharedJobs[HeldOutProgress, HeldOutResult | None]:
    """The held-out models trained here, one job per digit, shared by every session of this
    process: a job in flight is joined, a finished one keeps its model and scores for later
    visits; only a failed or cancelled one is started again."""
    return SharedJobs()


def held_out_setup(digit: int) -> Setup:
    """A small VAE trained here on the offline digits without ``digit``; that digit is the anomaly."""
    data = load.data(HELD_OUT_DATA, DIGIT_SHAPE, on_missing="raise")
    split = held_out_split(data, digit)
    hidden, latent = HELD_OUT_MODEL["hidden"][0], HELD_OUT_MODEL["latent_dim"]
    epochs = HELD_OUT_TRAIN["epochs"]
    what = (
        f"a VAE (MLP, {hidden} hidden units, latent {latent}) trained here for {epochs} epochs on the "
        f"{len(split.train_x):,} training digits of the offline 5,000-digit MNIST subset that are not {digit}"
    )
    result = held_out_model(digit, split, what)
    n_anom = int(split.is_anomaly.sum())
    about = (
        f"**Model**: {what} (the sidebar's model saw every digit, so it cannot take part). "
        f"**Normal**: the {len(split.is_anomaly) - n_anom:,} test digits other than {digit}. "
        f"**Anomalous**: the {n_anom} test {digit}s. PCA ({PCA_COMPONENTS} components) is fitted on the "
        "same training digits."
    )
    return Setup(
        result.model, split, result.report, ("other digits", f"{digit}s"), about, data.class_names, True, DIGIT_SHAPE
    )


def held_out_model(digit: int, split: AnomalySplit, what: str) -> HeldOutResult:
    """The trained model for ``digit`` and its scores. Until it is there the script stops here,
    under the train button, the training's progress, or why the last run ended."""
    jobs = _held_out_jobs()
    job = jobs.get(digit)
    if job is not None and job.status == DONE and job.result is not None:
        return job.result
    if job is not None and not job.done:
        state["an_job"] = job  # this session follows it (the tests wait on it)
        training_view(job, digit)
        st.stop()
    if job is not None and state.get("an_job") is job:  # the run this session watched ended badly
        if job.status == FAILED:
            st.error(f"Training stopped with an error: {describe_error(job.error)}")
        elif job.status == CANCELLED:
            st.warning("Training was cancelled, so there is no model yet. Start it again below.")
    st.info(f"This setup needs {what}. It takes a few seconds on a CPU and is kept for later visits.")
    if st.button(f":material/model_training: Train without the {digit}s", key="an_train", type="primary"):
        state["an_job"] = jobs.start(digit, lambda: start_held_out(split, "vae", PCA_COMPONENTS))
        st.rerun()
    st.stop()


def training_view(job: Job[HeldOutProgress, HeldOutResult | None], digit: int) -> None:
    """The progress of the model without ``digit`` and a Cancel button, polled; the whole page
    reruns when the job ends."""

    @st.fragment(run_every=POLL_S)
    def live() -> None:
        if job.done:
            st.rerun()
        p = job.snapshot()
        if job.status == QUEUED:
            text = "Waiting for a free core: other runs are training on this server…"
        elif p.total_steps and p.step >= p.total_steps:
            text = "Scoring the test images…"
        elif p.total_steps:
            text = f"Training… step {p.step} of {p.total_steps}, loss {p.loss:.0f} nats"
        else:
            text = "Training…"
        st.progress(min(1.0, p.fraction), text=f"Without the {digit}s · {text}")
        if st.button("Cancel", key="an_cancel", icon=":material/stop:"):
            job.cancel()
            st.toast("Cancelling: training stops after the current step.")

    live()


# ---------------------------------------------------------------- choose the setup
if state.get("an_setup") not in SETUPS:
    fashion_here = cross_ok and load.data(partner, cur.entry.image_shape, on_missing="quiet") is not None
    state["an_setup"] = "cross" if fashion_here else "held-out"
state.setdefault("an_digit", 5)
state.setdefault("an_score", "recon-mse")

controls = st.columns([1.6, 1, 1.4], gap="medium")
setup_id = controls[0].segmented_control(
    "Setup",
    list(SETUPS),
    format_func=lambda s: cross_title if s == "cross" else SETUPS[s],
    required=True,
    key="an_setup",
    help="Another data set: the sidebar's model, its own test images against another data set's. "
    "A digit held out: a small VAE trained here without one digit, which is then the anomaly.",
)
if setup_id == "held-out":
    digit = controls[1].selectbox("Held-out digit", list(range(10)), key="an_digit")
    setup = held_out_setup(int(digit))
else:
    digit = None
    setup = cross_setup()
available = [k for k in SCORES if k in setup.report.scores]
if state.get("an_score") not in available:
    state["an_score"] = available[0]
kind = controls[2].segmented_control(
    "Score",
    available,
    format_func=SCORES.get,
    required=True,
    key="an_score",
    help="Reconstruction error: mean squared error per pixel through the code mean. −ELBO: the VAE's "
    "loss in nats, reconstruction plus KL of the code (a plain AE has none).",
)
st.markdown(setup.about)

split, report = setup.split, setup.report
scores, is_anomaly = report.scores[kind], split.is_anomaly
cols = st.columns(3)
for col, name in zip(cols, [*available, "pca"], strict=False):
    title = "PCA baseline" if name == "pca" else SCORES[name]
    col.metric(
        f"AUROC · {title}",
        f"{report.auroc[name]:.3f}",
        help="The chance that a random anomaly scores higher than a random normal image: 0.5 is guessing, 1 is "
        "perfect. " + ("PCA: the reconstruction error (MSE) of a linear projection." if name == "pca" else ""),
    )
if report.auroc[kind] < 0.5:
    st.caption(
        f"An AUROC below 0.5: the anomalies ({setup.names[1]}) score *lower* than the normal images. Simple "
        "images (a 1 is one stroke, an MNIST digit is mostly black) are easy to encode and rebuild even when never "
        "seen: the score measures how hard an image is for the model, not how new it is (Nalisnick et al. 2019 "
        "found the same for the likelihoods of generative models)."
    )


# ---------------------------------------------------------------- your image
def your_image() -> tuple[np.ndarray, float] | None:
    """Upload or draw -> (model input (C, H, W), its score), or None."""
    sources = {"upload": "Upload a file"}
    if inputs.can_draw(cur, digits=setup.digit_input):
        sources["draw"] = "Draw"
    if state.get("an_source") not in sources:
        state["an_source"] = "upload"
    source = st.segmented_control("Your image", list(sources), format_func=sources.get, required=True, key="an_source")
    if source == "draw":
        up = inputs.drawn_input(cur, "an_canvas", shape=setup.shape)
    else:
        up = inputs.uploaded_input(
            cur,
            "an_upload",
            "Upload an image to score (PNG, JPEG, GIF, BMP, WebP, TIFF)",
            shape=setup.shape,
            digit=setup.digit_input,
        )
    if up is None:
        return None
    x = up[1]
    return x, float(anomaly_scores(setup.model, x[None], kind=kind)[0])


# ---------------------------------------------------------------- threshold, histogram, ROC
fmt = "%.4f" if kind == "recon-mse" else "%.1f"
unit = "MSE per pixel" if kind == "recon-mse" else "nats"


def number(v: float) -> str:
    return fmt % v


@st.fragment
def threshold_view(user: tuple[np.ndarray, float] | None) -> None:
    """The threshold slider and everything it moves: a move reruns only this part of the page."""
    threshold = threshold_slider()
    stats = threshold_stats(scores, is_anomaly, threshold)
    stats_row(stats)
    hist_col, roc_col = st.columns([1.4, 1], gap="medium")
    with hist_col:
        fig = histogram(threshold, None if user is None else user[1])
        st.plotly_chart(fig, key="an_hist", config=charts.plotly_config(f"anomaly-scores-{kind}"))
    with roc_col:
        st.plotly_chart(roc_figure(stats), key="an_roc", config=charts.plotly_config(f"anomaly-roc-{kind}"))
    if user is not None:
        share = float(np.mean(scores[~is_anomaly] < user[1]))
        verdict = "**flagged as anomalous**" if user[1] > threshold else "passed as normal"
        st.markdown(
            f"**Your image** scores {number(user[1])} ({unit}): higher than {share:.0%} of the normal test "
            f"images, so at this threshold it is {verdict}."
        )
    state_ui.set_link(setup=setup_id, digit=digit, score=kind)


def threshold_slider() -> float:
    """The threshold over the scores' range, one slider per setup, digit or model, and score."""
    lo, hi = float(scores.min()), float(scores.max())
    hi = max(hi, lo + 1e-6)  # a slider needs a range
    step = float(f"{(hi - lo) / 400:.2g}") or 1e-6
    slider_key = f"an_thr_{setup_id}_{digit if digit is not None else cur.key}_{kind}"
    if slider_key not in state:  # start where 5 % of the normal images are flagged
        default = float(np.quantile(scores[~is_anomaly], 0.95))
        state[slider_key] = min(hi, max(lo, lo + round((default - lo) / step) * step))
    return st.slider(
        f"Threshold: a score above it is flagged as anomalous ({unit})",
        lo,
        hi,
        step=step,
        format=fmt,
        key=slider_key,
    )


def stats_row(stats: ThresholdStats) -> None:
    """Precision, recall, false alarms and F1 at the threshold, and the confusion table."""
    m = st.columns([1, 1, 1, 0.8, 1.7])
    m[0].metric("Precision", f"{stats.precision:.1%}", help="Of the flagged images, the share that are anomalies.")
    m[1].metric("Recall", f"{stats.recall:.1%}", help="Of the anomalies, the share that are flagged.")
    m[2].metric("False alarms", f"{stats.fpr:.1%}", help="Of the normal images, the share that are flagged.")
    m[3].metric("F1", f"{stats.f1:.3f}")
    with m[4]:
        st.markdown(
            "| | flagged | passed |\n|---|---:|---:|\n"
            f"| **anomalous** | {stats.tp:,} | {stats.fn:,} |\n| **normal** | {stats.fp:,} | {stats.tn:,} |"
        )


def histogram(threshold: float, user_score: float | None) -> go.Figure:
    """The scores of the normal and the anomalous test images, the threshold and your image's score."""
    lo, hi = float(scores.min()), max(float(scores.max()), float(scores.min()) + 1e-6)
    fig = go.Figure()
    bins = {"start": lo, "end": hi, "size": (hi - lo) / 60 or 1.0}
    for name, mask in (("normal", ~is_anomaly), ("anomalous", is_anomaly)):
        label = f"{name}: {setup.names[0 if name == 'normal' else 1]} ({int(mask.sum()):,})"
        fig.add_trace(
            go.Histogram(
                x=scores[mask],
                name=label,
                xbins=bins,
                histnorm="probability",
                marker_color=COLOURS[name],
                opacity=0.6,
            )
        )
    fig.add_vline(x=threshold, line={"color": "black", "dash": "dash"}, annotation_text="threshold")
    if user_score is not None:
        fig.add_vline(x=user_score, line={"color": COLOURS["you"], "width": 3}, annotation_text="your image")
    fig.update_layout(
        barmode="overlay",
        height=360,
        margin={"l": 10, "r": 10, "t": 30, "b": 10},
        xaxis_title=f"{SCORE_TITLES[kind]}",
        yaxis_title="share of its group",
        legend={"orientation": "h", "y": 1.12},
    )
    return fig


def roc_figure(stats: ThresholdStats) -> go.Figure:
    """The ROC curves of the score and of the PCA baseline, with the threshold's point on them."""
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="chance", line={"color": "#bbb", "dash": "dot"}))
    for name in (kind, "pca"):
        c = report.curves[name]
        title = "PCA baseline" if name == "pca" else SCORES[name]
        fig.add_trace(
            go.Scatter(
                x=c.fpr,
                y=c.tpr,
                mode="lines",
                name=f"{title} (AUROC {c.auroc:.3f})",
                line={"color": COLOURS["pca"] if name == "pca" else COLOURS["anomalous"]},
            )
        )
    fig.add_trace(
        go.Scatter(
            x=[stats.fpr],
            y=[stats.recall],
            mode="markers",
            name="the threshold",
            marker={"size": 12, "color": "black", "symbol": "x"},
        )
    )
    fig.update_layout(
        height=360,
        margin={"l": 10, "r": 10, "t": 30, "b": 10},
        xaxis_title="false-alarm rate (normal images flagged)",
        yaxis_title="recall (anomalies flagged)",
        legend={"x": 0.98, "y": 0.02, "xanchor": "right", "yanchor": "bottom", "bgcolor": "rgba(255,255,255,0.8)"},
        xaxis={"range": [0, 1]},
        yaxis={"range": [0, 1.02], "scaleanchor": "x"},
    )
    return fig


st.subheader("Scores, threshold and ROC curve")
view = st.container()
st.subheader("Score your own image")
mine_col, mine_img = st.columns([2, 1])
with mine_col:
    user = your_image()
if user is not None:
    with mine_img:
        recon = reconstruct(setup.model, user[0][None])[0]
        charts.grid_image(
            image_grid(np.stack([user[0], recon]), nrow=2),
            f"your image and its reconstruction · score {number(user[1])}",
            file_name="your-image-reconstruction.png",
            key="an_mine_png",
            target=240,
        )
else:
    mine_img.caption("Upload or draw an image: its score is marked on the histogram above.")
with view:
    threshold_view(user)

# ---------------------------------------------------------------- the top outliers
st.subheader(f"The {GALLERY} highest scores")
top = most_anomalous(scores, GALLERY)
recons = reconstruct(setup.model, split.test_x[top])
st.caption("Each pair: the test image (left) and the model's reconstruction (right), highest score first.")
cols = st.columns(4)
for rank, (i, recon) in enumerate(zip(top, recons, strict=True)):
    if setup.label_names is not None and split.test_labels is not None:
        label = setup.label_names[int(split.test_labels[i])]
    else:
        label = setup.names[int(is_anomaly[i])]
    tag = "anomaly" if is_anomaly[i] else "normal"
    with cols[rank % 4]:
        charts.image(
            image_grid(np.stack([split.test_x[i], recon]), nrow=2, pad_value=1.0),
            f"{rank + 1}. {label} ({tag}) · {number(scores[i])}",
            file_name=f"outlier-{rank + 1}.png",
            key=f"an_top_{rank}",
            target=160,
            download=False,
        )
