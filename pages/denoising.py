"""Denoising: corrupt test images (or your own), clean them with three autoencoders, the best
classical filter and PCA, and score every result with PSNR and SSIM."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from core.app import catalog
from core.data.corrupt import CORRUPTIONS
from core.lenses.denoise import (
    DenoiseResult,
    Denoisers,
    LevelCurve,
    build_denoisers,
    compare,
    level_curve,
    mean_psnr,
    split_rows,
)
from pages import _ui_charts as charts
from pages import _ui_inputs as inputs
from pages import _ui_load as load
from pages import _ui_state as state_ui

PAGE = {  # this page's row of the page table (core/app/site.py)
    "title": "Denoising",
    "icon": ":material/blur_off:",
    "url_path": "denoising",
    "section": "Experiments",
    "order": 20,
    "params": ("noise", "level", "input", "rows", "draw", "dae", "vae", "ae"),
    "tagline": "a denoising AE against filters",
    "blurb": "Corrupt test images; compare autoencoders, PCA and scikit-image by PSNR and SSIM.",
}
PAGE_CORRUPTIONS = tuple(k for k, c in CORRUPTIONS.items() if c.on_page)  # "mixed" is for training only
MAX_ROWS, MAX_DRAW = 8, 9999  # the rows-shown slider's top; the largest "Other images" draw in a link
ROLE_TITLES = {"dae": "Denoising AE", "vae": "VAE", "ae": "Plain AE"}
ROLE_NAMES = {"dae": "denoising AE", "vae": "VAE", "ae": "plain AE"}  # in a sentence
COLOURS = {
    "noisy": "#7f7f7f",
    "Denoising AE": "#d62728",
    "VAE": "#1f77b4",
    "Plain AE": "#2ca02c",
    "best classical": "#ff7f0e",
    "PCA": "#9467bd",
}

state_ui.intro(
    "Denoising",
    """
Test digits are corrupted (noise, missing pixels or a black square) and cleaned by three
autoencoders, the best of five classical filters and PCA; each result shows its PSNR (dB, higher is
better) and SSIM (1 = identical to the clean image). The idea: a model that has learned what the
data look like can put back what the corruption took away, and an autoencoder trained to do exactly
that (the denoising AE) does it best, while filters that know nothing of digits can only smooth.
""",
)

cur = load.current()
state = st.session_state
SOURCES = {"test": "Test images", "upload": "Upload"}
if inputs.can_draw(cur):
    SOURCES["draw"] = "Draw"

# ---------------------------------------------------------------- the models for the columns
candidates = catalog.denoiser_candidates(load.models(), cur.entry)
# The default denoising AE is one trained on every corruption (after the sidebar's own model).
candidates["dae"].sort(key=lambda e: (e.key != cur.entry.key, e.noise != "mixed"))
if state.get("_dn_for") != cur.key:  # a new sidebar model: pick its partners afresh
    state["_dn_for"] = cur.key
    for role in catalog.DENOISER_ROLES:
        state.pop(f"dn_{role}", None)
by_key = {e.key: e for models in candidates.values() for e in models}


def read_link() -> None:
    """The link's settings, once per session: corruption, level, input, rows, draw, models."""
    asked = state_ui.link_value("noise", catalog.parse_choice, PAGE_CORRUPTIONS, "corruption")
    if asked is not None:
        state["dn_kind"] = asked
    linked = CORRUPTIONS[state.get("dn_kind", "gaussian")]
    level_link = state_ui.link_value(
        "level", catalog.parse_float, linked.low, linked.high, f"{linked.title.lower()} level"
    )
    if level_link is not None:
        state[f"dn_level_{linked.name}"] = round(round(level_link / linked.step) * linked.step, 2)
    for param, key, parser, args in (
        ("input", "dn_source", catalog.parse_choice, (tuple(SOURCES), "input")),
        ("rows", "dn_rows", catalog.parse_int, (1, MAX_ROWS, "number of rows shown")),
        ("draw", "dn_seed", catalog.parse_int, (0, MAX_DRAW, "draw of test images")),
        *((role, f"dn_{role}", catalog.parse_choice, ([e.key for e in candidates[role]], ROLE_NAMES[role]))
          for role in catalog.DENOISER_ROLES),
    ):  # fmt: skip
        value = state_ui.link_value(param, parser, *args)
        if value is not None:
            state[key] = value


if state_ui.first_visit(PAGE["url_path"]):
    read_link()
state_ui.show_link_notes()

data = load.data_of(cur.entry, on_missing="warn")
if data is None:
    st.info("The comparison needs the data set's images: PCA is fitted on them and the filters are tuned on them.")
    st.stop()

# ---------------------------------------------------------------- the corruption and the input
# Two rows of controls, each wide enough at 1024×768 (a projector): no button is cut off.
c = st.columns([1.6, 1], gap="medium")
with c[0]:
    state.setdefault("dn_kind", "gaussian")
    kind = st.segmented_control(
        "Corruption",
        list(PAGE_CORRUPTIONS),
        format_func=lambda k: CORRUPTIONS[k].button,
        required=True,
        key="dn_kind",
        wrap=True,
    )
spec = CORRUPTIONS[kind]
with c[1]:
    state.setdefault(f"dn_level_{kind}", spec.default)
    level = st.slider(
        "Level", spec.low, spec.high, step=spec.step, key=f"dn_level_{kind}", help=spec.meaning.capitalize() + "."
    )
c = st.columns([1.1, 1, 0.9], gap="small", vertical_alignment="bottom")
with c[0]:
    if state.get("dn_source") not in SOURCES:
        state["dn_source"] = "test"
    source = st.segmented_control(
        "Input", list(SOURCES), format_func=SOURCES.get, required=True, key="dn_source", wrap=True
    )
state.setdefault("dn_rows", 4)
state.setdefault("dn_seed", 0)
if source == "test":
    with c[1]:
        shown = st.slider("Rows shown", 1, MAX_ROWS, key="dn_rows")
    with c[2]:
        st.button(
            ":material/casino: Other images",
            key="dn_shuffle",
            on_click=lambda: state.update(dn_seed=(state.get("dn_seed", 0) + 1) % (MAX_DRAW + 1)),
            help="Other test images and another draw of the corruption.",
            width="stretch",
            wrap=True,
        )

chosen: dict[str, catalog.ModelEntry] = {}
missing = []
# In presenter mode the pickers fold away, so the pictures start on the first 768 px.
pick_box = st.expander("The models compared") if state_ui.presenting() else st.container()
pick_cols = pick_box.columns(3)
for col, role in zip(pick_cols, catalog.DENOISER_ROLES, strict=True):
    keys = [e.key for e in candidates[role]]
    if not keys:
        missing.append(ROLE_NAMES[role])
        col.caption(f"**{ROLE_TITLES[role]}**: none installed for {catalog.dataset_title(cur.entry.dataset)}.")
        continue
    if state.get(f"dn_{role}") not in keys:
        state[f"dn_{role}"] = keys[0]
    key = col.selectbox(ROLE_TITLES[role], keys, format_func=lambda k: by_key[k].label, key=f"dn_{role}")
    chosen[ROLE_TITLES[role]] = by_key[key]
if missing:
    st.info(
        f"No {' and no '.join(missing)} is installed for "
        f"{catalog.dataset_title(cur.entry.dataset)} at {'×'.join(map(str, cur.entry.image_shape[1:]))}, so "
        f"{'its column is' if len(missing) == 1 else 'their columns are'} left out. Train one on the "
        "*Train a model* page (a denoising AE is a plain AE trained on corrupted inputs)."
    )

seed = int(state.get("dn_seed", 0))
# Every setting is chosen by now: into the URL before anything can stop the run (no upload yet).
state_ui.set_link(
    noise=kind,
    level=f"{level:g}",
    input=source,
    rows=state["dn_rows"],
    draw=seed,
    **{role: state.get(f"dn_{role}") for role in catalog.DENOISER_ROLES},
)
# scored (across the classes first: the rows shown are different digits) / the filters and PCA are tuned on
batch_rows, val_rows = split_rows(len(data.test_x), seed, labels=data.test_y)
val_clean = data.test_x[val_rows]


def test_caption(row: int) -> str:
    """``test #row (class name)``, as the test-image pickers write it."""
    if data.test_y is None or not data.class_names:
        return f"test #{row}"
    return f"test #{row} ({data.class_names[int(data.test_y[row])]})"


if source == "test":
    clean, captions = data.test_x[batch_rows], [test_caption(r) for r in batch_rows]
else:
    st.caption(
        "Your image is the clean reference: it is corrupted here, then each method tries to get it back. "
        + ("Digits are made MNIST-style (white ink, centred in 20×20)." if catalog.is_digits(cur.entry) else "")
    )
    up = (
        inputs.drawn_input(cur, "dn_canvas")
        if source == "draw"
        else inputs.uploaded_input(cur, "dn_upload", "Upload an image (PNG, JPEG, GIF, BMP, WebP, TIFF)")
    )
    if up is None:
        st.info("No drawing yet: draw a digit above." if source == "draw" else "No image yet: upload one above.")
        st.stop()
    clean, captions, shown = up[1][None], ["your image"], 1


# ---------------------------------------------------------------- the work (cached)
def signature() -> tuple:
    """What the results depend on: the models (key and file time) and the data set."""
    return (data.name, data.source_note, *((t, e.key, e.mtime) for t, e in chosen.items()))


@st.cache_resource(max_entries=4, show_spinner="Fitting PCA to the training images…")
def _denoisers(sig: tuple, _models: dict, _train_x: np.ndarray) -> Denoisers:
    return build_denoisers(_models, _train_x)


@st.cache_data(max_entries=48, show_spinner="Denoising…")
def _compare(
    sig: tuple, kind: str, level: float, seed: int, clean: np.ndarray, val_clean: np.ndarray, _den: Denoisers
) -> DenoiseResult:
    return compare(clean, kind, level, _den, val_clean, seed=seed)


@st.cache_data(max_entries=16, show_spinner="PSNR at each level…")
def _curve(
    sig: tuple, kind: str, levels: tuple, seed: int, clean: np.ndarray, val_clean: np.ndarray, _den: Denoisers
) -> LevelCurve:
    return level_curve(clean, kind, levels, _den, val_clean, seed=seed)


sig = signature()
den = _denoisers(sig, {t: load.load_model(e).model for t, e in chosen.items()}, data.train_x)
result = _compare(sig, kind, float(level), seed, clean, val_clean, den)


def db(value: float) -> str:
    return "∞ dB" if not np.isfinite(value) else f"{value:.1f} dB"


def settings(method: str) -> str:
    """What a column ran: the checkpoint, the chosen filter or the PCA size."""
    row = result.row(method)
    if method in chosen:
        entry = chosen[method]
        train = entry.meta.get("train", {})
        trained = f", trained on {entry.noise} noise {train.get('noise_level', '?')}" if entry.noise else ""
        if entry.noise == "mixed":
            trained = ", trained on all four corruptions at random levels"
        if entry.model.get("input_gate"):
            trained += "; a per-pixel gate keeps the input where it can be trusted"
        return f"{entry.label}{trained}"
    if method == "best classical":
        params = {k: v for k, v in row.params.items() if k != "method"}
        return f"{row.params['method']} ({', '.join(f'{k} {v}' for k, v in params.items())})"
    if method == "PCA":
        return f"{row.params['n_components']} components"
    return f"{spec.title.lower()}, level {level:g}"


# ---------------------------------------------------------------- the columns
n = len(clean)
st.subheader(f"{spec.title} at level {level:g}" + (f" · means over {n} test images" if n > 1 else ""))
methods = [r.method for r in result.rows]
n_cols = 1 + len(methods)
target = 84 if n_cols > 5 else 112
mean_db = {m: mean_psnr(result.per_image[m]["psnr"]) for m in methods}  # {method: (dB, images left out)}
# The headers in one row, then each row of images in a row of its own: headers of different
# heights (a long name wraps) never push one column's images below the others'.
head = st.columns(n_cols)
head[0].markdown("**Clean**")
head[0].caption("the reference")
for col, method in zip(head[1:], methods, strict=True):
    row = result.row(method)
    col.markdown(f"**{'Noisy' if method == 'noisy' else method}**  \n{db(mean_db[method][0])} · SSIM {row.ssim:.2f}")
    if not state_ui.presenting():  # which filter, which model: the speaker says it
        col.caption(settings(method))
for i in range(min(shown, n)):
    cells = st.columns(n_cols)
    with cells[0]:
        charts.image(
            clean[i], captions[i], file_name=f"clean-{i}.png", key=f"dn_clean_{i}", target=target, download=False
        )
    for col, method in zip(cells[1:], methods, strict=True):
        p, s = result.per_image[method]["psnr"], result.per_image[method]["ssim"]
        with col:
            charts.image(
                result.images[method][i],
                f"{db(p[i])} · {s[i]:.2f}",
                file_name=f"{method}-{i}.png",
                key=f"dn_{method}_{i}",
                target=target,
                download=False,
            )
best = max((r for r in result.rows if r.method != "noisy"), key=lambda r: mean_db[r.method][0])
untouched = mean_db["noisy"][1]
st.caption(
    (
        f"{untouched} of the {n} images came through the corruption unchanged (infinite PSNR); the means "
        "leave them out. "
        if untouched
        else ""
    )
    + f"Highest mean PSNR here: **{best.method}** ({db(mean_db[best.method][0])}, SSIM {best.ssim:.2f}). "
    "PSNR = 10·log10(1 / MSE), "
    "pixels in [0, 1]: +3 dB halves the squared error. SSIM compares local means, contrasts and structure in "
    "7×7 windows (scikit-image). Filters and PCA are tuned per setting on "
    f"{len(val_rows)} other test images."
)

# ---------------------------------------------------------------- PSNR against the level
st.subheader("PSNR against the corruption level")
if source != "test":
    st.caption(
        f"Over {len(batch_rows)} test images (not your image): how each method holds up as the corruption grows."
    )
test_clean = data.test_x[batch_rows]
curve = _curve(sig, kind, spec.chart_levels, seed, test_clean, val_clean, den)
fig = go.Figure()
for method, values in curve.psnr.items():
    fig.add_trace(
        go.Scatter(
            x=curve.levels,
            y=values,
            name="noisy input" if method == "noisy" else method,
            mode="lines+markers",
            line={"color": COLOURS.get(method), "dash": "dot" if method == "noisy" else "solid"},
            hovertemplate=f"{method}<br>level %{{x:g}}: %{{y:.2f}} dB<extra></extra>",
        )
    )
fig.add_vline(x=level, line={"color": "#444", "width": 1, "dash": "dash"}, annotation_text="now")
fig.update_layout(
    height=380,
    margin={"l": 10, "r": 10, "t": 30, "b": 10},
    xaxis_title=f"{spec.title} level ({spec.meaning})",
    yaxis_title=f"mean PSNR over {len(batch_rows)} images (dB)",
    legend={"orientation": "h", "y": -0.25},
)
st.plotly_chart(fig, key="dn_curve", config=charts.plotly_config(f"psnr-{kind}"))

with st.expander("The numbers"):
    st.dataframe(
        [
            {
                "method": "noisy input" if r.method == "noisy" else r.method,
                "PSNR (dB)": round(mean_db[r.method][0], 2),
                "SSIM": round(r.ssim, 3),
                "time (ms)": round(1000 * r.seconds, 1),
                "settings": settings(r.method),
            }
            for r in result.rows
        ],
        hide_index=True,
    )
