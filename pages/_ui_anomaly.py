"""The anomaly page's three setups, each a model, a split and its scores (a :class:`Setup`), or
the script stops here with what is missing: another data set (the sidebar's model against a
partner data set), a digit held out (shipped, saved earlier, or trained here in the background)
and one digit only (shipped one-class models)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import streamlit as st

from core.app import catalog
from core.app.jobs import (
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
from core.data.registry import DataError
from core.experiments.anomaly import (
    HELD_OUT_SECONDS,
    HELD_OUT_SUBDIR,
    HELD_OUT_TRAIN,
    AnomalySplit,
    DetectionReport,
    ThresholdStats,
    cross_dataset_split,
    detect,
    held_out_paths,
    held_out_recipe,
    held_out_split,
    load_held_out,
    load_one_class,
    one_class_name,
    one_class_split,
)
from core.formats.checkpoints import CheckpointError, shipped_dir, user_dir
from pages import _ui_jobs as jobs_ui
from pages import _ui_load as load

SETUPS = {
    "cross": "Another data set",
    "held-out": "A digit held out",
    "one-class": "One digit only",
    "table": "A table",  # rows × features: pages/_ui_anomaly_table.py
}
KINDS = ("recon-mse", "recon-edge", "elbo")  # the scores each setup computes (−ELBO only for a VAE)
PER_SIDE = 1000  # test images from each data set in the cross-data-set setup
HELD_OUT_DATA = "mnist-5k"  # the offline subset: the held-out models train on it in seconds
DIGIT_SHAPE = (1, 28, 28)
PCA_COMPONENTS = 32
SHORT = {"mnist": "MNIST", "mnist-5k": "MNIST", "fashion-mnist": "Fashion-MNIST"}


@dataclass
class Setup:
    """What the rest of the page shows: a model, the split it is scored on, the scores."""

    model: object  # a model of the protocol (core.models.protocol.LatentModel)
    split: AnomalySplit
    report: DetectionReport
    names: tuple[str, str]  # what a normal / an anomalous image is, for captions
    about: str  # what was trained on what, in words
    label_names: tuple[str, ...] | None  # the test images' class names (captions), or None
    digit_input: bool  # uploads are made MNIST-style
    shape: tuple[int, int, int]


def partner_of(cur: load.Current) -> str | None:
    """The data set whose test images are the anomalies for the sidebar's model, or None."""
    return catalog.CROSS_DATASET.get(cur.entry.dataset)


def cross_ok(cur: load.Current) -> bool:
    return partner_of(cur) is not None and not cur.conditional


def cross_title(cur: load.Current) -> str:
    partner = partner_of(cur)
    return f"{SHORT[cur.entry.dataset]} vs {SHORT[partner]}" if partner else "MNIST vs Fashion-MNIST"


def default_setup(cur: load.Current) -> str:
    """The Table setup for a table's model; the cross setup where its partner data set is here,
    else the held-out digit (offline)."""
    if cur.entry.input_kind == "table":
        return "table"
    here = cross_ok(cur) and load.data(partner_of(cur), cur.entry.image_shape, on_missing="quiet") is not None
    return "cross" if here else "held-out"


# ---------------------------------------------------------------- another data set
@st.cache_resource(max_entries=4, show_spinner="Scoring the test images…")
def _cross(key: str, mtime: float, normal: str, anomalous: str, _model, _normal, _anomalous) -> tuple:
    split = cross_dataset_split(_normal, _anomalous, max_per_side=PER_SIDE)
    pca = PCA_COMPONENTS if len(_normal.train_x) > PCA_COMPONENTS else None  # offline Fashion-MNIST: test images only
    return split, detect(_model, split, KINDS, pca_components=pca)


def _cross_refusal(cur: load.Current) -> str:
    why = (
        "a conditional VAE needs each image's label, which an anomaly does not have"
        if cur.conditional and partner_of(cur)
        else f"the sidebar's model was trained on {catalog.dataset_title(cur.entry.dataset)}"
    )
    return (
        "This setup needs a model trained on MNIST (Fashion-MNIST is then the anomaly) or on "
        f"Fashion-MNIST (MNIST is then the anomaly); {why}. Pick one in the sidebar, such as "
        "mnist-vae-conv-z16, or hold out a digit instead."
    )


def _partner_missing(partner: str, exc: DataError) -> str:
    return (
        f"**{catalog.dataset_title(partner)} is not available here**, so this setup cannot run. "
        + (
            "Its test set is not in this install's `data/` folder, and the network is not used. "
            if partner == "fashion-mnist"
            else ""
        )
        + "Put its files in a data folder in torchvision's layout (`DIR/FashionMNIST/raw/*.gz`, "
        "`DIR/MNIST/raw/*.gz`), start the app with `LATENTLAB_DATA=DIR` (or `LATENTLAB_DOWNLOAD=1` to "
        f"download it) and reload. The *digit held out* setup works offline. ({exc})"
    )


def cross_setup(cur: load.Current) -> Setup:
    """The sidebar's model, its own test images as normal, the partner data set's as anomalies."""
    partner = partner_of(cur)
    if not cross_ok(cur):
        st.info(_cross_refusal(cur))
        st.stop()
    normal = load.data_of(cur.entry, on_missing="warn")
    if normal is None:
        st.stop()
    try:
        anomalous = load.data(partner, cur.entry.image_shape, on_missing="raise")
    except DataError as exc:
        st.warning(_partner_missing(partner, exc))
        st.stop()
    split, report = _cross(
        cur.key, cur.entry.mtime, normal.source_note, anomalous.source_note, cur.model, normal, anomalous
    )
    n_norm, n_anom = int((~split.is_anomaly).sum()), int(split.is_anomaly.sum())
    mine, theirs = SHORT[cur.entry.dataset], SHORT[partner]
    about = (
        f"**Model**: the sidebar's {cur.entry.label} ({cur.entry.title}), trained on "
        f"{catalog.dataset_title(cur.entry.dataset)} only. **Normal**: {n_norm:,} of its test images "
        f"({normal.source_note}). **Anomalous**: {n_anom:,} {theirs} test images ({anomalous.source_note}). "
        + (
            f"PCA ({PCA_COMPONENTS} components) is fitted on the same normal training images."
            if "pca" in report.scores
            else f"No PCA baseline: offline there are no training images of {mine} to fit it on (start the "
            "app with `LATENTLAB_DATA=DIR` for them)."
        )
    )
    shape = tuple(cur.entry.image_shape)
    return Setup(cur.model, split, report, (mine, theirs), about, None, catalog.is_digits(cur.entry), shape)


# ---------------------------------------------------------------- a digit held out
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


def short(folder: Path) -> str:
    """A folder by its last two names ("`user_checkpoints/anomaly`"): where, without the server's path."""
    return f"`{folder.parent.name}/{folder.name}`"


def saved_paths(digit: int) -> list[Path]:
    return held_out_paths(digit, shipped_dir(), user_dir(), HELD_OUT_DATA)


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
        n_train = int(ckpt.meta.get("dataset", {}).get("n_train", 0))
        what = held_out_recipe(digit, n_train, len(ckpt.meta.get("history", {}).get("epochs", [])))
        where = (
            "shipped with the app" if path.parent == shipped_dir() else f"trained here and kept in {short(path.parent)}"
        )
        return ckpt.model, report, f"{what}, {where}"
    return None


def held_out_model(digit: int, split: AnomalySplit) -> tuple:
    """(model, report, what) for ``digit``. Until there is one the script stops here, under the
    train button, the training's progress, or why the last run ended."""
    jobs, state = _held_out_jobs(), st.session_state
    job = jobs.get(digit)
    what = held_out_recipe(digit, len(split.train_x), HELD_OUT_TRAIN["epochs"])
    if job is not None and job.status == DONE and job.result is not None:
        r = job.result
        if r.message:
            st.warning(f"The model was trained, but {r.message}")
        kept = f" and kept in {short(r.saved.parent)}" if r.saved else ""
        return r.model, r.report, f"{what}, trained here in {r.seconds:.0f} s{kept}"
    found = saved_model(digit, split)
    if found is not None:
        return found
    if job is not None and not job.done:
        state["an_job"] = job  # this session follows it (the tests wait on it)
        jobs_ui.follow(job, lambda j: _training_progress(j, digit), cancel_key="an_cancel")
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


def _training_progress(job: Job[HeldOutProgress, HeldOutResult | None], digit: int) -> tuple[float, str]:
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
    return p.fraction, f"Without the {digit}s · {text}"


# ---------------------------------------------------------------- one digit only
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


# ---------------------------------------------------------------- shared by every setup
def stats_row(stats: ThresholdStats, what: str = "images") -> None:
    """Precision, recall, false alarms and F1 at the threshold, and the confusion table;
    ``what`` the setup's examples are ("images", "rows")."""
    m = st.columns([1, 1, 1, 0.8, 1.7])
    m[0].metric("Precision", f"{stats.precision:.1%}", help=f"Of the flagged {what}, the share that are anomalies.")
    m[1].metric("Recall", f"{stats.recall:.1%}", help="Of the anomalies, the share that are flagged.")
    m[2].metric("False alarms", f"{stats.fpr:.1%}", help=f"Of the normal {what}, the share that are flagged.")
    m[3].metric("F1", f"{stats.f1:.3f}")
    with m[4]:
        st.markdown(
            "| | flagged | passed |\n|---|---:|---:|\n"
            f"| **anomalous** | {stats.tp:,} | {stats.fn:,} |\n| **normal** | {stats.fp:,} | {stats.tn:,} |"
        )
