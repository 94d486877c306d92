"""The anomaly page's Table setup: the seed talk's fraud example on rows × features.

A bundled table (scikit-learn's breast-cancer data, malignant as the anomalies) with a shipped
VAE, scored on first visit; or the user's own CSV or Parquet file, whose model trains in the
background (progress, cancel) while the page stays responsive. Then: the talk's two histograms,
a threshold with precision and recall, ROC curves and AUROC of the model and of each tuned
classical baseline, and the rows that score highest with the features behind their error.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import streamlit as st

from core.app.jobs import (
    CANCELLED,
    DONE,
    FAILED,
    QUEUED,
    HeldOutProgress,
    Job,
    SharedJobs,
    TableResult,
    describe_error,
    start_table,
)
from core.data.tables import (
    MAX_TABLE_BYTES,
    TableError,
    TableSplit,
    breast_cancer,
    guess_label,
    read_frame,
    split_table,
    table_from_frame,
)
from core.experiments.anomaly import most_anomalous, threshold_scale, threshold_stats
from core.experiments.tabular import SCORES, TableReport, explain_rows, score_table
from core.experiments.tabular import SHIPPED_TABLE_MODEL as SHIPPED
from core.formats.checkpoints import CheckpointError, load_checkpoint, shipped_dir
from pages import _ui_anomaly as setups
from pages import _ui_charts as charts
from pages import _ui_jobs as jobs_ui

SOURCES = {"bundled": "Breast cancer (offline)", "upload": "Your CSV or Parquet"}
NO_LABEL = "(none: scores only)"
TOP_ROWS = 12
MODEL_METRIC = "Autoencoder"
TAIL_QUANTILE = 0.99  # the slider and histogram end here (a long tail would squash them)
KINDS = {"vae": "VAE", "ae": "AE"}


# ---------------------------------------------------------------- the two sources
@st.cache_resource(max_entries=2, show_spinner="Scoring the rows and tuning the baselines…")
def _bundled(path: str, mtime: float) -> tuple:
    ckpt = load_checkpoint(Path(path))
    split = split_table(breast_cancer())
    return ckpt, split, score_table(ckpt.model, split)


def bundled() -> tuple[object, TableSplit, TableReport, str]:
    """The shipped model of the bundled table, its split and report, and what it is in words."""
    path = shipped_dir() / f"{SHIPPED}.safetensors"
    try:
        ckpt, split, report = _bundled(str(path), path.stat().st_mtime)
    except (OSError, CheckpointError) as exc:
        st.info(f"The table model is not in this install's models: {exc}. Rebuild it with "
                f"`python -m core pretrain --only {SHIPPED}`.")  # fmt: skip
        st.stop()
    m = ckpt.config
    about = (
        f"**Data**: {split.name}, {len(split.features)} measurements of cell nuclei per row "
        f"(scikit-learn's bundled copy, offline). **Model**: a VAE (MLP {m.hidden[0]}–{m.hidden[1]}, latent "
        f"{m.latent_dim}, Gaussian likelihood on standardised features) shipped with the app, trained on the "
        f"benign rows only. **Split**: {split.description}."
    )
    return ckpt.model, split, report, about


@st.cache_data(max_entries=4, show_spinner="Reading the table…")
def _frame(digest: str, name: str, _data: bytes):
    return read_frame(_data, name)


@st.cache_resource
def _table_jobs() -> SharedJobs[HeldOutProgress, TableResult | None]:
    return SharedJobs()  # one per server: two people with the same file share one run


def uploaded() -> tuple[object, TableSplit, TableReport, str] | None:
    """The user's table: upload, label column, model kind; trained in the background. None (with
    a message) until there is a result."""
    up = st.file_uploader(
        f"A CSV or Parquet file (at most {MAX_TABLE_BYTES // 2**20} MB): one row per example, numeric columns",
        type=["csv", "tsv", "txt", "parquet", "pq"],
        key="an_table_file",
        max_upload_size=MAX_TABLE_BYTES // 2**20,
    )
    if up is None:
        st.caption("Upload a table. With a label column (two values, e.g. 0 and 1) the page measures the "
                   "detectors against it; without one it shows the scores.")  # fmt: skip
        return None
    data = up.getvalue()
    digest = hashlib.sha256(data).hexdigest()[:16]
    try:
        frame = _frame(digest, up.name, data)
    except TableError as exc:
        st.error(str(exc))
        return None
    columns = [str(c) for c in frame.columns]
    pick = st.columns(2)
    guess = guess_label(columns)
    label = pick[0].selectbox(
        "Label column", [NO_LABEL, *columns], index=0 if guess is None else columns.index(guess) + 1,
        key=f"an_table_label_{digest}", help="The column that says which rows are anomalous (two values).",
    )  # fmt: skip
    kind = pick[1].segmented_control("Model", list(KINDS), format_func=KINDS.get, default="vae",
                                     required=True, key="an_table_kind")  # fmt: skip
    try:
        table = table_from_frame(frame, up.name, None if label == NO_LABEL else label)
        split = split_table(table)
    except TableError as exc:
        st.error(str(exc))
        return None
    for note in table.notes:
        st.caption(f"Note: {note}.")
    jobs, key = _table_jobs(), (digest, label, kind)
    job = jobs.get(key)
    if job is None or (job.status in (FAILED, CANCELLED) and st.session_state.get("an_table_retry")):
        job = jobs.start(key, lambda: start_table(split, kind))
    st.session_state["an_table_job"] = job  # this session follows it (the tests wait on it)
    result = _follow(job, split)
    about = (
        f"**Data**: {table.describe()}. **Model**: a {KINDS[kind]} (MLP, Gaussian likelihood on standardised "
        f"features) trained here on the normal training rows in {result.seconds:.0f} s. **Split**: {split.description}."
    )
    return result.model, split, result.report, about


def _follow(job: Job[HeldOutProgress, TableResult | None], split: TableSplit) -> TableResult:
    """The job's result, or its progress (with Cancel) and a stop of the script until it ends."""
    if job.status == DONE and job.result is not None:
        return job.result
    if job.status == FAILED:
        st.error(f"Training on this table stopped with an error: {describe_error(job.error)}")
    elif job.done:  # cancelled (a cancelled run's result is None)
        st.warning("Training on this table was cancelled.")
    if job.done:
        st.button("Try again", key="an_table_retry")
        st.stop()

    def progress(j: Job[HeldOutProgress, TableResult | None]) -> tuple[float, str]:
        p = j.snapshot()
        if j.status == QUEUED:
            return 0.0, "Waiting for a free core: other work is running on this server…"
        if p.phase:
            return 1.0, f"Trained. Tuning the baselines on the validation rows: {p.phase}…"
        if not p.total_steps:
            return 0.0, f"Starting to train on {len(split.train_x):,} rows…"
        return p.fraction, f"Training on {len(split.train_x):,} rows: step {p.step:,} of {p.total_steps:,}"

    jobs_ui.follow(job, progress, cancel_key="an_table_cancel", cancel_note="Cancelling the table's training.")
    st.stop()


# ---------------------------------------------------------------- what the page shows
def show(state) -> None:
    """The whole Table setup, below the page's setup picker."""
    source = st.segmented_control("Table", list(SOURCES), format_func=SOURCES.get, default="bundled",
                                  required=True, key="an_table_source")  # fmt: skip
    got = bundled() if source == "bundled" else uploaded()
    if got is None:
        st.stop()
    model, split, report, about = got
    st.markdown(about)
    kinds = [k for k in SCORES if k in report.scores]
    if state.get("an_table_score") not in kinds:
        state["an_table_score"] = kinds[0]
    kind = st.segmented_control("Score", kinds, format_func=SCORES.get, required=True, key="an_table_score",
                                help="Reconstruction error: mean squared error over the standardised features. "
                                "−ELBO: the VAE's loss in nats, reconstruction plus KL of the code.")  # fmt: skip
    if split.labelled:
        auroc_row(report, kind)
    threshold_view(split, report, kind)
    top_rows(model, split, report.scores[kind], kind)


def auroc_row(report: TableReport, kind: str) -> None:
    """Test AUROC of the model's score and of each tuned baseline, and the best baseline named."""
    st.markdown("**AUROC on the test rows** (0.5 is guessing, 1 is perfect)")
    names = [kind, *report.baselines]
    cols = st.columns(len(names))
    for col, name in zip(cols, names, strict=True):
        base = report.baselines.get(name)
        col.metric(
            MODEL_METRIC if base is None else base.short,
            f"{report.auroc[name]:.3f}",
            help=f"The autoencoder's {in_text(kind)}."
            if base is None
            else f"{base.title}, tuned on the validation rows ({_params(base.params)}; validation AUROC "
            f"{base.val_auroc:.3f}), then scored once on the test rows.",
        )
    best = report.best_baseline()
    gap = report.auroc[kind] - report.auroc[best]
    verdict = "beats" if gap > 0 else "does not beat"
    st.caption(
        f"The best baseline here is **{report.baselines[best].title}** (AUROC {report.auroc[best]:.3f}): the "
        f"autoencoder's {in_text(kind)} {verdict} it ({gap:+.3f}). A practitioner should try both."
    )


def in_text(kind: str) -> str:
    """A score's name inside a sentence: "reconstruction error", "−ELBO"."""
    name = SCORES[kind]
    return name[0].lower() + name[1:]


def _params(params: dict) -> str:
    return ", ".join(f"{k} {v}" for k, v in params.items())


def threshold_view(split: TableSplit, report: TableReport, kind: str) -> None:
    """The threshold slider, precision and recall, the two histograms and the ROC curves."""
    scores = report.scores[kind]
    is_anomaly = split.test_anomaly if split.labelled else np.zeros(len(scores), bool)
    normal = scores[~is_anomaly]
    # A table's errors have long tails (one wild feature): the slider and the histogram span the
    # scores up to their 99th percentile, the few beyond are drawn in the last bin.
    top = float(np.quantile(scores, TAIL_QUANTILE))
    shown = np.minimum(scores, top)
    thr = threshold_scale(shown)
    key = f"an_table_thr_{split.name}_{kind}_{len(scores)}"
    if key not in st.session_state:  # start where 5 % of the normal rows are flagged
        st.session_state[key] = thr.snap(float(np.quantile(normal, 0.95)))
    threshold = st.slider("Threshold: a row scoring above it is flagged", thr.lo, thr.hi, step=thr.step, key=key,
                          format="%.1f" if kind == "elbo" else "%.3f")  # fmt: skip
    names = split.label_names if split.labelled else ("every row", "")
    fig = charts.score_histogram(shown, is_anomaly, names, threshold, None, SCORES[kind])
    beyond = int((scores > top).sum())
    if beyond:
        st.caption(f"The {beyond:,} highest scores (up to {scores.max():.4g}) are drawn in the last bin at {top:.4g}.")
    if not split.labelled:
        flagged = int((scores > threshold).sum())
        st.markdown(f"**{flagged:,}** of {len(scores):,} rows ({flagged / len(scores):.1%}) score above the threshold.")
        st.plotly_chart(fig, key="an_table_hist", config=charts.plotly_config(f"table-scores-{kind}"))
        return
    stats = threshold_stats(scores, is_anomaly, threshold)
    setups.stats_row(stats, "rows")
    hist_col, roc_col = st.columns([1.4, 1], gap="medium")
    hist_col.plotly_chart(fig, key="an_table_hist", config=charts.plotly_config(f"table-scores-{kind}"))
    curves = {SCORES[kind]: report.curves[kind], **{b.title: report.curves[n] for n, b in report.baselines.items()}}
    baselines = tuple(b.title for b in report.baselines.values())
    roc = charts.roc_chart(curves, baselines, (stats.fpr, stats.recall))
    roc_col.plotly_chart(roc, key="an_table_roc", config=charts.plotly_config(f"table-roc-{kind}"))


def top_rows(model, split: TableSplit, scores: np.ndarray, kind: str) -> None:
    """The highest-scoring test rows, each with the three features that contribute most to its error."""
    st.subheader(f"The {TOP_ROWS} highest-scoring rows")
    top = most_anomalous(scores, TOP_ROWS)
    rows = []
    for rank, (i, why) in enumerate(zip(top, explain_rows(model, split, top), strict=True), 1):
        row = {"rank": rank, "row in file": why.row, "score": float(scores[i])}
        if split.labelled:
            row["label"] = split.label_names[int(split.test_anomaly[i])]
        for j, (name, value, recon, share) in enumerate(why.features, 1):
            row[f"feature {j}"] = f"{name}: {value:.4g} → {recon:.4g} ({share:.0%} of the error)"
        rows.append(row)
    st.caption("Each feature: the row's value → the model's reconstruction (the file's units), and its share of "
               "the row's squared error in standardised units.")  # fmt: skip
    st.dataframe(rows, hide_index=True, width="stretch")
