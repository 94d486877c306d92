"""Anomaly detection: an autoencoder's reconstruction error (or −ELBO) as an anomaly score,
in two setups, with a threshold, the ROC curve, a PCA baseline and the top outliers."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from core import catalog
from core.anomaly import (
    HELD_OUT_MODEL,
    HELD_OUT_SECONDS,
    HELD_OUT_SUBDIR,
    HELD_OUT_TRAIN,
    SCORE_TITLES,
    AnomalySplit,
    DetectionReport,
    ThresholdStats,
    anomaly_scores,
    cross_dataset_split,
    detect,
    held_out_name,
    held_out_split,
    load_held_out,
    load_one_class,
    most_anomalous,
    one_class_name,
    one_class_split,
    threshold_stats,
)
from core.checkpoints import CheckpointError, shipped_dir, user_dir
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
    "params": ("setup", "digit", "score", "thr"),
    "tagline": "reconstruction error as a score",
    "blurb": "What a model never saw reconstructs badly: histograms, ROC and the top outliers.",
}
SETUPS = {"cross": "Another data set", "held-out": "A digit held out", "one-class": "One digit only"}
SCORES = {"recon-mse": "Reconstruction error", "recon-edge": "Error per edge", "elbo": "−ELBO"}
KINDS = tuple(SCORES)  # the scores each setup computes (−ELBO only for a VAE)
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
    state_ui.link_value("thr", catalog.parse_float, -np.inf, np.inf, "threshold")  # not a number: out now;
    # a number is checked against the slider's range once the setup has its scores (below)
state_ui.show_link_notes()

# ---------------------------------------------------------------- the cross-data-set setup
SHORT = {"mnist": "MNIST", "mnist-5k": "MNIST", "fashion-mnist": "Fashion-MNIST"}
partner = catalog.CROSS_DATASET.get(cur.entry.dataset)
cross_ok = partner is not None and not cur.conditional
cross_title = f"{SHORT[cur.entry.dataset]} vs {SHORT[partner]}" if partner else "MNIST vs Fashion-MNIST"


@st.cache_resource(max_entries=4, show_spinner="Scoring the test images…")
def _cross(key: str, mtime: float, normal: str, anomalous: str, _model, _normal, _anomalous) -> tuple:
    split = cross_dataset_split(_normal, _anomalous, max_per_side=PER_SIDE)
    pca = PCA_COMPONENTS if len(_normal.train_x) > PCA_COMPONENTS else None  # offline Fashion-MNIST: test images only
    return split, detect(_model, split, KINDS, pca_components=pca)


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
                "Its test set is not in this install's `data/` folder, and the network is not used. "
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
        f"({anomalous.source_note}). "
        + (
            f"PCA ({PCA_COMPONENTS} components) is fitted on the same normal training images."
            if "pca" in report.scores
            else "No PCA baseline: offline there are no training images of "
            f"{SHORT[cur.entry.dataset]} to fit it on (start the app with `LATENTLAB_DATA=DIR` for them)."
        )
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
    """A small VAE that never saw ``digit`` (shipped, saved earlier or trained here); that digit
    is the anomaly of the offline MNIST test images."""
    data = load.data(HELD_OUT_DATA, DIGIT_SHAPE, on_missing="raise")
    split = held_out_split(data, digit)
    model, report, what = held_out_model(digit, split)
    n_anom = int(split.is_anomaly.sum())
    about = (
        f"**Model**: {what} (the sidebar's model saw every digit, so it cannot take part). "
        f"**Normal**: the {len(split.is_anomaly) - n_anom:,} test digits other than {digit}. "
        f"**Anomalous**: the {n_anom:,} test {digit}s. PCA ({PCA_COMPONENTS} components) is fitted on the "
        f"{len(split.train_x):,} offline training digits other than {digit}."
    )
    return Setup(model, split, report, ("other digits", f"{digit}s"), about, data.class_names, True, DIGIT_SHAPE)


def recipe(digit: int, n_train: int, epochs: int) -> str:
    hidden, latent = HELD_OUT_MODEL["hidden"][0], HELD_OUT_MODEL["latent_dim"]
    return (
        f"a VAE (MLP, {hidden} hidden units, latent {latent}) trained for {epochs} epochs on the "
        f"{n_train:,} MNIST training digits that are not {digit}"
    )


def short(folder: Path) -> str:
    """A folder by its last two names ("`user_checkpoints/anomaly`"): where, without the server's path."""
    return f"`{folder.parent.name}/{folder.name}`"


def saved_paths(digit: int) -> list[Path]:
    """Where a held-out model of ``digit`` may already be: shipped, then trained here earlier."""
    return [
        shipped_dir() / held_out_name("mnist", digit),
        user_dir() / HELD_OUT_SUBDIR / held_out_name(HELD_OUT_DATA, digit),
    ]


@st.cache_resource(max_entries=4, show_spinner="Loading the model and scoring the test images…")
def _saved(path: str, mtime: float, digit: int, _split: AnomalySplit) -> tuple:
    ckpt = load_held_out(Path(path), digit)
    return ckpt, detect(ckpt.model, _split, KINDS, pca_components=PCA_COMPONENTS)


def saved_model(digit: int, split: AnomalySplit) -> tuple | None:
    """(model, report, what) of a held-out model on disk, or None; a broken file gets a note."""
    for path in saved_paths(digit):
        meta = path.with_name(path.name + ".json")
        if not meta.is_file():
            continue
        try:
            ckpt, report = _saved(str(path), meta.stat().st_mtime, digit, split)
        except CheckpointError as exc:
            st.caption(f"A saved model was skipped: {exc}")
            continue
        info = ckpt.meta.get("dataset", {})
        what = recipe(digit, int(info.get("n_train", 0)), len(ckpt.meta.get("history", {}).get("epochs", [])) or 0)
        where = (
            "shipped with the app" if path.parent == shipped_dir() else f"trained here and kept in {short(path.parent)}"
        )
        return ckpt.model, report, f"{what}, {where}"
    return None


def held_out_model(digit: int, split: AnomalySplit) -> tuple:
    """(model, report, what) for ``digit``. Until there is one the script stops here, under the
    train button, the training's progress, or why the last run ended."""
    jobs = _held_out_jobs()
    job = jobs.get(digit)
    what = recipe(digit, len(split.train_x), HELD_OUT_TRAIN["epochs"])
    if job is not None and job.status == DONE and job.result is not None:
        r = job.result
        if r.message:
            st.warning(f"The model was trained, but {r.message}")
        return (
            r.model,
            r.report,
            f"{what}, trained here in {r.seconds:.0f} s" + (f" and kept in {short(r.saved.parent)}" if r.saved else ""),
        )
    found = saved_model(digit, split)
    if found is not None:
        return found
    if job is not None and not job.done:
        state["an_job"] = job  # this session follows it (the tests wait on it)
        training_view(job, digit)
        st.stop()
    if job is not None and state.get("an_job") is job:  # the run this session watched ended badly
        if job.status == FAILED:
            st.error(f"Training stopped with an error: {describe_error(job.error)}")
        elif job.status == CANCELLED:
            st.warning("Training was cancelled, so there is no model yet. Start it again below.")
    st.info(
        f"This setup needs {what}. Training runs in the background on one CPU core and takes about "
        f"{HELD_OUT_SECONDS} s (longer when other runs share the server); the model is then saved with the "
        f"models trained here ({short(user_dir() / HELD_OUT_SUBDIR)}) and reused, also after a restart."
    )
    if st.button(f":material/model_training: Train without the {digit}s", key="an_train", type="primary"):
        save_as = saved_paths(digit)[1]
        state["an_job"] = jobs.start(
            digit, lambda: start_held_out(split, "vae", PCA_COMPONENTS, save_as=save_as, digit=digit, kinds=KINDS)
        )
        st.rerun()
    st.stop()


# ---------------------------------------------------------------- the one-class setup
@st.cache_resource(max_entries=4, show_spinner="Loading the model and scoring the test images…")
def _one_class(path: str, mtime: float, digit: int, _split: AnomalySplit) -> tuple:
    ckpt = load_one_class(Path(path), digit)
    return ckpt, detect(ckpt.model, _split, KINDS, pca_components=PCA_COMPONENTS)


def one_class_setup(digit: int) -> Setup:
    """A small AE shipped with the app that saw only ``digit``; the other nine are anomalies."""
    data = load.data(HELD_OUT_DATA, DIGIT_SHAPE, on_missing="raise")
    split = one_class_split(data, digit)
    path = shipped_dir() / one_class_name(digit)
    meta = path.with_name(path.name + ".json")
    try:
        ckpt, report = _one_class(str(path), meta.stat().st_mtime, digit, split) if meta.is_file() else (None, None)
    except CheckpointError as exc:
        ckpt, report = None, exc
    if ckpt is None:
        st.info(
            f"The one-class model of the {digit}s is not in this install's models ({path.parent}): "
            f"{report or 'rebuild it with `python -m core pretrain --only ' + path.name + '`'}."
        )
        st.stop()
    m, n_norm = ckpt.config, int((~split.is_anomaly).sum())
    about = (
        f"**Model**: an autoencoder (MLP, {m.hidden[0]} hidden units, latent {m.latent_dim}) shipped with the app, "
        f"trained on the {ckpt.meta['dataset']['n_train']:,} MNIST training images of {digit} only. "
        f"**Normal**: the {n_norm:,} test {digit}s. **Anomalous**: the other {len(split.test_x) - n_norm:,} test "
        f"digits. PCA ({PCA_COMPONENTS} components) is fitted on the {len(split.train_x):,} offline training "
        f"{digit}s."
    )
    return Setup(ckpt.model, split, report, (f"{digit}s", "other digits"), about, data.class_names, True, DIGIT_SHAPE)


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
        elif p.total_steps and p.step:
            left = job.elapsed * (p.total_steps - p.step) / p.step
            text = f"Training… step {p.step} of {p.total_steps}, loss {p.loss:.0f} nats, about {left:.0f} s left"
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
    "A digit held out: a small VAE that never saw one digit, which is then the anomaly. One digit only: a "
    "small AE that saw only one digit; the other nine are the anomalies.",
)
if setup_id == "held-out":
    digit = controls[1].selectbox("Held-out digit", list(range(10)), key="an_digit")
    setup = held_out_setup(int(digit))
elif setup_id == "one-class":
    digit = controls[1].selectbox("Normal digit", list(range(10)), key="an_digit")
    setup = one_class_setup(int(digit))
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
    help="Reconstruction error: mean squared error per pixel through the code mean. Error per edge: the "
    "squared error summed over pixels divided by the image's edge length (total variation), so a simple image "
    "(a 1) is not passed as normal just for having little ink to get wrong. −ELBO: the VAE's loss in nats, "
    "reconstruction plus KL of the code (a plain AE has none).",
)
st.markdown(setup.about)

split, report = setup.split, setup.report
scores, is_anomaly = report.scores[kind], split.is_anomaly
baseline = "pca-edge" if kind == "recon-edge" else "pca"  # PCA scored the same way, where there is one
shown = [*available, *([baseline] if baseline in report.scores else [])]
cols = st.columns(len(shown))
for col, name in zip(cols, shown, strict=True):
    title = "PCA baseline" if name.startswith("pca") else SCORES[name]
    col.metric(
        f"AUROC · {title}",
        f"{report.auroc[name]:.3f}",
        help="The chance that a random anomaly scores higher than a random normal image: 0.5 is guessing, 1 is "
        "perfect. "
        + (
            "PCA: the reconstruction error of a linear projection, scored as the chosen score."
            if title[0] == "P"
            else ""
        ),
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
fmt = "%.1f" if kind == "elbo" else "%.4f"
unit = {"recon-mse": "MSE per pixel", "recon-edge": "squared error per unit of edge", "elbo": "nats"}[kind]


def number(v: float) -> str:
    return fmt % v


@dataclass(frozen=True)
class Slider:
    """The threshold slider of this setup, digit or model, and score: its session key and its
    range, in steps of ``step`` (every value, the ends too, a whole number of steps)."""

    key: str
    lo: float
    hi: float
    step: float

    def snap(self, value: float) -> float:
        """``value`` on the slider's grid, within its ends."""
        return min(self.hi, max(self.lo, round(value / self.step) * self.step))


def threshold_range() -> Slider:
    """The scores' range, widened to whole steps (about 400 of them)."""
    lo, hi = float(scores.min()), float(scores.max())
    hi = max(hi, lo + 1e-6)  # a slider needs a range
    step = float(f"{(hi - lo) / 400:.2g}") or 1e-6
    key = f"an_thr_{setup_id}_{digit if digit is not None else cur.key}_{kind}"
    return Slider(key, float(np.floor(lo / step) * step), float(np.ceil(hi / step) * step), step)


def threshold_from_link(text: str | None, slider: Slider) -> tuple[float | None, str | None]:
    """A link's threshold within the slider's range (half a step of slack for the URL's rounding),
    put on the slider's grid."""
    value, problem = catalog.parse_float(text, -np.inf, np.inf, "threshold")
    if value is None:
        return None, problem
    if not slider.lo - slider.step / 2 <= value <= slider.hi + slider.step / 2:
        return None, f"threshold {catalog.quote(text)} is outside {slider.lo:g}..{slider.hi:g}"
    return slider.snap(value), None


def link_threshold(value: float) -> str:
    """The threshold as the URL holds it: six significant digits, enough to find its step again."""
    return f"{value:.6g}"


thr = threshold_range()
if state_ui.first_visit(PAGE["url_path"] + "-ends"):  # the range is known once the setup has its scores
    linked = state_ui.link_value("thr", threshold_from_link, thr)
    if linked is not None:
        state[thr.key] = linked
    state_ui.show_link_notes()
if thr.key not in state:  # start where 5 % of the normal images are flagged
    state[thr.key] = thr.snap(float(np.quantile(scores[~is_anomaly], 0.95)))
elif not thr.lo <= state[thr.key] <= thr.hi:  # the same key, other scores (a model trained again)
    state[thr.key] = thr.snap(state[thr.key])


@st.fragment
def threshold_view(user: tuple[np.ndarray, float] | None) -> None:
    """The threshold slider and everything it moves: a move reruns only this part of the page."""
    threshold = st.slider(
        f"Threshold: a score above it is flagged as anomalous ({unit})",
        thr.lo,
        thr.hi,
        step=thr.step,
        format=fmt,
        key=thr.key,
    )
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
    state_ui.set_link(setup=setup_id, digit=digit, score=kind, thr=link_threshold(threshold))


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
    for name in (kind, baseline) if baseline in report.curves else (kind,):
        c = report.curves[name]
        title = "PCA baseline" if name == baseline else SCORES[name]
        fig.add_trace(
            go.Scatter(
                x=c.fpr,
                y=c.tpr,
                mode="lines",
                name=f"{title} (AUROC {c.auroc:.3f})",
                line={"color": COLOURS["pca"] if name == baseline else COLOURS["anomalous"]},
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
