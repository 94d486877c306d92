"""Anomaly detection: an autoencoder's reconstruction error (or −ELBO) as an anomaly score, in
three image setups (another data set, a digit held out, one digit only; ``pages/_ui_anomaly.py``),
with a threshold, the ROC curve, a PCA baseline and the top outliers; and a table setup (rows ×
features, beside the classical detectors; ``pages/_ui_anomaly_table.py``)."""

from __future__ import annotations

import numpy as np
import streamlit as st

from core.app import catalog
from core.experiments.anomaly import (
    SCORE_TITLES,
    ThresholdStats,
    anomaly_scores,
    most_anomalous,
    threshold_scale,
    threshold_stats,
)
from core.lenses.latent import image_grid, reconstruct
from pages import _ui_anomaly as setups
from pages import _ui_anomaly_table as table_ui
from pages import _ui_charts as charts
from pages import _ui_inputs as inputs
from pages import _ui_load as load
from pages import _ui_state as state_ui

PAGE = {  # this page's row of the page table (core/app/site.py)
    "title": "Anomaly detection",
    "icon": ":material/report:",
    "url_path": "anomalies",
    "section": "Experiments",
    "order": 30,
    "params": ("setup", "digit", "score", "thr"),
    "tagline": "reconstruction error as a score",
    "blurb": "What a model never saw reconstructs badly: histograms, ROC and the top outliers.",
    "inputs": ("images", "table"),  # a table's model too (core/app/site.py INPUTS)
}
SCORES = {"recon-mse": "Reconstruction error", "recon-edge": "Error per edge", "elbo": "−ELBO"}
GALLERY = 12

state_ui.intro(
    "Anomaly detection",
    """
An autoencoder learns to rebuild the kind of images it was trained on; show it something else and
the rebuild fails. The histograms show that failure as a score (the reconstruction error or the
−ELBO) for normal and for anomalous test images, the slider sets where "anomalous" begins, and the
ROC curve sums up every threshold at once. The idea: the reconstruction error is an anomaly
detector for free, but it only flags what the model rebuilds badly, and a linear PCA baseline is
the bar it has to clear.
The same works on the rows of a table, the talk's fraud example: pick *A table*.
""",
)


cur = load.current()
state = st.session_state
if state_ui.first_visit(PAGE["url_path"]):
    for param, key, options, what in (
        ("setup", "an_setup", list(setups.SETUPS), "setup"),
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

# ---------------------------------------------------------------- choose the setup
if state.get("an_setup") not in setups.SETUPS:
    state["an_setup"] = setups.default_setup(cur)
state.setdefault("an_digit", 5)
state.setdefault("an_score", "recon-mse")

setup_id = st.segmented_control(  # a row of its own: four setups with long names
    "Setup",
    list(setups.SETUPS),
    format_func=lambda s: setups.cross_title(cur) if s == "cross" else setups.SETUPS[s],
    required=True,
    key="an_setup",
    help="Another data set: the sidebar's model, its own test images against another data set's. "
    "A digit held out: a small VAE that never saw one digit, which is then the anomaly. One digit only: a "
    "small AE that saw only one digit; the other nine are the anomalies. A table: rows × features (the talk's "
    "fraud example), a bundled one or your own CSV, beside the classical detectors.",
)
if setup_id == "table":  # rows × features: a page of its own below the picker
    state_ui.set_link(setup=setup_id, digit=None, score=None, thr=None)
    table_ui.show(state)
    st.stop()
# A digit (two setups), then the score; the cross setup has no digit: its score starts the row.
controls = st.columns([1, 2.6], gap="medium") if setup_id in ("held-out", "one-class") else [st.container()]
if setup_id == "held-out":
    digit = controls[0].selectbox("Held-out digit", list(range(10)), key="an_digit")
    setup = setups.held_out_setup(int(digit))
elif setup_id == "one-class":
    digit = controls[0].selectbox("Normal digit", list(range(10)), key="an_digit")
    setup = setups.one_class_setup(int(digit))
else:
    digit = None
    setup = setups.cross_setup(cur)
available = [k for k in SCORES if k in setup.report.scores]
if state.get("an_score") not in available:
    state["an_score"] = available[0]
kind = controls[-1].segmented_control(
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


def threshold_from_link(text: str | None, scale) -> tuple[float | None, str | None]:
    """A link's threshold within the slider's range, on the slider's grid."""
    value, problem = catalog.parse_float(text, -np.inf, np.inf, "threshold")
    if value is not None and not scale.admits(value):
        return None, f"threshold {catalog.quote(text)} is outside {scale.lo:g}..{scale.hi:g}"
    return (None, problem) if value is None else (scale.snap(value), None)


thr = threshold_scale(scores)
thr_key = f"an_thr_{setup_id}_{digit if digit is not None else cur.key}_{kind}"  # per setup, digit or model, score
if state_ui.first_visit(PAGE["url_path"] + "-ends"):  # the range is known once the setup has its scores
    linked = state_ui.link_value("thr", threshold_from_link, thr)
    if linked is not None:
        state[thr_key] = linked
    state_ui.show_link_notes()
if thr_key not in state:  # start where 5 % of the normal images are flagged
    state[thr_key] = thr.snap(float(np.quantile(scores[~is_anomaly], 0.95)))
elif not thr.lo <= state[thr_key] <= thr.hi:  # the same key, other scores (a model trained again)
    state[thr_key] = thr.snap(state[thr_key])


@st.fragment
def threshold_view(user: tuple[np.ndarray, float] | None) -> None:
    """The threshold slider and everything it moves: a move reruns only this part of the page."""
    threshold = st.slider(
        f"Threshold: a score above it is flagged as anomalous ({unit})",
        thr.lo,
        thr.hi,
        step=thr.step,
        format=fmt,
        key=thr_key,
    )
    stats = threshold_stats(scores, is_anomaly, threshold)
    setups.stats_row(stats)
    hist_col, roc_col = st.columns([1.4, 1], gap="medium")
    with hist_col:
        fig = charts.score_histogram(
            scores, is_anomaly, setup.names, threshold, None if user is None else user[1], SCORE_TITLES[kind]
        )
        st.plotly_chart(fig, key="an_hist", config=charts.plotly_config(f"anomaly-scores-{kind}"))
    with roc_col:
        st.plotly_chart(roc(stats), key="an_roc", config=charts.plotly_config(f"anomaly-roc-{kind}"))
    if user is not None:
        share = float(np.mean(scores[~is_anomaly] < user[1]))
        verdict = "**flagged as anomalous**" if user[1] > threshold else "passed as normal"
        st.markdown(
            f"**Your image** scores {number(user[1])} ({unit}): higher than {share:.0%} of the normal test "
            f"images, so at this threshold it is {verdict}."
        )
    state_ui.set_link(setup=setup_id, digit=digit, score=kind, thr=thr.link(threshold))


def roc(stats: ThresholdStats):
    """The ROC curves of the score and of its PCA baseline, with the threshold's point on them."""
    names = (kind, baseline) if baseline in report.curves else (kind,)
    curves = {("PCA baseline" if n == baseline else SCORES[n]): report.curves[n] for n in names}
    return charts.roc_chart(curves, "PCA baseline", (stats.fpr, stats.recall))


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
