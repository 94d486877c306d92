"""Train a model: pick the data, the model and a few settings; watch it learn; keep it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import streamlit as st

from core.app import catalog
from core.app.jobs import (
    CANCELLED,
    FAILED,
    Job,
    TrainOutcome,
    TrainProgress,
    TrainRequest,
    describe_error,
    save_outcome,
    start_training,
)
from core.data.images import to_png
from core.data.registry import REGISTRY, Dataset
from core.formats.checkpoints import NAME_RE, CheckpointError
from core.lenses.latent import image_grid
from core.models.config import KINDS, MAX_LATENT, ConfigError, kinds_help
from core.training.train import MAX_EPOCHS, MAX_LR, TrainConfig, check_training_data
from pages import _ui_charts as charts
from pages import _ui_inputs as inputs
from pages import _ui_jobs as jobs_ui
from pages import _ui_load as load
from pages import _ui_state as state_ui

PAGE = {  # this page's row of the page table (core/app/site.py)
    "title": "Train a model",
    "icon": ":material/model_training:",
    "url_path": "train",
    "section": "Train",
    "order": 10,
    "params": ("data", "kind", "arch", "latent", "beta", "epochs", "lr", "name"),
    "tagline": "in the browser",
    "blurb": "Any model of the family on any data set, with live loss curves; saved to your checkpoints.",
    "inputs": ("images", "table"),  # a table's model too (core/app/site.py INPUTS)
}
N_PREVIEW = 8

state_ui.intro(
    "Train a model",
    """
Pick a data set, a model and a few settings, and watch it learn: the curves show the two terms
of the loss, reconstruction (how far the output is from the input) and KL (how far the codes
are from the prior), and the reconstructions below sharpen epoch by epoch. Training is a
trade between the two terms: a VAE's KL first jumps, then settles where extra code information
stops paying for itself. A finished model is saved as your own checkpoint and every page can open it.
""",
)
state = st.session_state


# ---------------------------------------------------------------- the job of this session

job: Job[TrainProgress, TrainOutcome] | None = state.get("tr_job")
if job is not None and job.done and state.get("tr_seen") is not job:
    # The run just ended (the page polled it, or the user came back to the page): refresh the
    # model listing so the sidebar picker offers the new checkpoint, then draw everything anew.
    state["tr_seen"] = job
    load.models.clear()
    st.rerun()


def open_in_sidebar(key: str, dataset: str) -> None:
    """Button callback (runs before the script, so the sidebar picker may still be set)."""
    state["dataset"], state["model"] = dataset, key


# ---------------------------------------------------------------- the settings
ARCHS = {"mlp": "MLP", "conv": "Conv"}
BETA_MOST = 1000.0  # the largest β a link may ask for (the form takes any β ≥ 0)
FORM_DEFAULTS = {"tr_dataset": "mnist-5k", "tr_model": "vae", "tr_arch": "mlp", "tr_latent": 10, "tr_beta": 1.0,
                 "tr_epochs": 3, "tr_lr": 1e-3}  # fmt: skip


def lr_from_link(text: str | None) -> tuple[float | None, str | None]:
    """A link's learning rate: a number in (0, MAX_LR] (``catalog.parse_float`` takes 0 too)."""
    value, problem = catalog.parse_float(text, 0.0, MAX_LR, "learning rate")
    if value == 0:
        return None, "learning rate 0 is not above 0"
    return value, problem


def name_from_link(text: str | None) -> tuple[str | None, str | None]:
    """A link's checkpoint name: letters, digits, '.', '_' and '-', as a saved name must be."""
    if text is None:
        return None, None
    if NAME_RE.match(text) and ".." not in text:
        return text, None
    return None, f"checkpoint name {catalog.quote(text)} is not 1-100 letters, digits, '.', '_' or '-'"


def read_link() -> None:
    """Every setting of the form, from the link (once per session): "train this" as a bookmark."""
    values = {
        "tr_dataset": state_ui.link_value("data", catalog.parse_choice, [*REGISTRY, inputs.YOUR_IMAGES], "data set"),
        "tr_model": state_ui.link_value("kind", catalog.parse_choice, list(KINDS), "model kind"),
        "tr_arch": state_ui.link_value("arch", catalog.parse_choice, list(ARCHS), "architecture"),
        "tr_latent": state_ui.link_value("latent", catalog.parse_int, 1, MAX_LATENT, "latent size"),
        "tr_beta": state_ui.link_value("beta", catalog.parse_float, 0.0, BETA_MOST, "β"),
        "tr_epochs": state_ui.link_value("epochs", catalog.parse_int, 1, MAX_EPOCHS, "epochs"),
        "tr_lr": state_ui.link_value("lr", lr_from_link),
        "tr_name": state_ui.link_value("name", name_from_link),
    }
    state.update({k: v for k, v in values.items() if v is not None})


if state_ui.first_visit(PAGE["url_path"]):
    read_link()
state_ui.show_link_notes()
for _key, _value in FORM_DEFAULTS.items():
    state.setdefault(_key, _value)
running = job is not None and not job.done
c = st.columns([1.4, 1.2, 0.8])
dataset_name = inputs.dataset_picker(
    c[0],
    "tr_dataset",
    "MNIST 5,000 digits and LFW faces are always here; the full sets need a data folder or a download. "
    "Or upload your own images.",
    your_images=True,
)
uploaded = inputs.your_images_upload("tr_upload") if dataset_name == inputs.YOUR_IMAGES else None
preset = c[1].selectbox("Model", list(KINDS), format_func=lambda k: KINDS[k].title, key="tr_model", help=kinds_help())
arch = (
    c[2].segmented_control(
        "Architecture",
        list(ARCHS),
        format_func=ARCHS.get,
        required=True,
        key="tr_arch",
        help="MLP: fully connected, fast on a CPU. Conv: convolutions, sharper images, several times slower.",
    )
    or "mlp"
)
kind = KINDS[preset]
variational = kind.variational
c = st.columns(4)
latent = c[0].number_input("Latent size", step=1, key="tr_latent", help="Dimensions of the code, 1 to 128")
beta = c[1].number_input(
    "β",
    step=0.5,
    format="%g",
    key="tr_beta",
    disabled=not variational,
    help="Weight of the KL term (β-VAE); 1 is the plain VAE." if variational else "An AE has no KL term, so no β.",
)
epochs = c[2].number_input(
    "Epochs", step=1, key="tr_epochs", help="Passes over the training images; 3 take a few seconds on MNIST 5k"
)
lr = c[3].number_input(
    "Learning rate", step=1e-4, format="%g", key="tr_lr", help="Adam's step size; 10⁻³ is a safe start"
)
suggested = f"{dataset_name}-{preset}-{arch}-z{latent}" + (f"-b{beta:g}" if variational and beta != 1 else "")
if state.get("tr_name") in (None, "", state.get("tr_name_suggested")):
    state["tr_name"] = suggested  # follow the settings until the user types a name of their own
state["tr_name_suggested"] = suggested
c = st.columns([2.6, 1], vertical_alignment="bottom")
name = c[0].text_input(
    "Checkpoint name",
    key="tr_name",
    max_chars=100,
    help="Letters, digits, '.', '_' and '-'. A name already taken gets -2, -3, … added: nothing is overwritten.",
)
start = c[1].button("Train", type="primary", icon=":material/play_arrow:", disabled=running, key="tr_start")
state_ui.set_link(
    data=dataset_name,
    kind=preset,
    arch=arch,
    latent=latent,
    beta=f"{beta:g}",
    epochs=epochs,
    lr=f"{lr:g}",
    name=name_from_link(name or None)[0],  # a name that could be saved (else the link would drop it)
)


def preview_rows(data: Dataset) -> np.ndarray:
    """Test images to reconstruct each epoch: one per class where there are labels."""
    if data.test_y is None:
        return np.arange(min(N_PREVIEW, len(data.test_x)))
    firsts = [int(np.flatnonzero(data.test_y == k)[0]) for k in np.unique(data.test_y)[:N_PREVIEW]]
    rest = [i for i in range(len(data.test_x)) if i not in firsts]
    return np.array((firsts + rest)[:N_PREVIEW])


if start and not running:
    if dataset_name == inputs.YOUR_IMAGES:
        data = uploaded
        if data is None:
            st.error("Upload your images first (a .zip of PNG/JPEG files or an .npz).")
    else:
        data = load.data(dataset_name, on_missing="error")
    if data is not None:
        try:
            check_training_data(data)  # offline Fashion-MNIST is a test set only
            title = catalog.dataset_title(data.name)
            mcfg = kind.model_config(data.image_shape, data.num_classes, title, arch=arch, latent_dim=int(latent))
            beta_used = float(beta) if variational else 1.0
            tcfg = TrainConfig(epochs=int(epochs), lr=float(lr), beta=beta_used, seed=0, **kind.train_overrides)
            rows = preview_rows(data)
            request = TrainRequest(
                model_config=mcfg,
                train_config=tcfg,
                dataset=data,
                name=name.strip(),
                folder=Path(catalog.user_dir()),
                preview_x=data.test_x[rows],
                preview_y=None if data.test_y is None else data.test_y[rows],
            )
            state["tr_job"] = start_training(request)
            state["tr_request"] = request
            st.rerun()
        except (ConfigError, CheckpointError) as exc:
            st.error(f"These settings cannot be trained: {exc}.")


# ---------------------------------------------------------------- the run


def curves(p: TrainProgress, variational: bool):
    """Reconstruction and KL per training step (batch means) and per epoch (test split)."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=1, cols=2, subplot_titles=("Reconstruction (nats per image)", "KL (nats per image)"))
    test_x = [e.epoch for e in p.epochs]
    for col, steps, test, colour in (
        (1, p.curve_recon, [e.test_recon for e in p.epochs], charts.PALETTE[0]),
        (2, p.curve_kl, [e.test_kl for e in p.epochs], charts.PALETTE[1]),
    ):
        fig.add_trace(
            go.Scatter(
                x=p.curve_x,
                y=steps,
                mode="lines",
                name="training batches",
                line={"color": colour, "width": 1},
                opacity=0.7,
                showlegend=col == 1,
                legendgroup="train",
            ),
            row=1,
            col=col,
        )
        fig.add_trace(
            go.Scatter(
                x=test_x,
                y=test,
                mode="lines+markers",
                name="test images (end of epoch)",
                line={"color": "black", "dash": "dot"},
                marker={"size": 8},
                showlegend=col == 1,
                legendgroup="test",
            ),
            row=1,
            col=col,
        )
    fig.update_xaxes(title_text="epoch")
    fig.update_layout(height=340, margin={"l": 10, "r": 10, "t": 40, "b": 10}, legend={"orientation": "h", "y": -0.25})
    if not variational:
        fig.add_annotation(text="an AE has no KL term", xref="x2 domain", yref="y2 domain", x=0.5, y=0.5)
    return fig


def preview_grid(request: TrainRequest, p: TrainProgress) -> np.ndarray | None:
    """Top row the test images, bottom row their latest reconstructions (uint8 grid)."""
    if p.preview is None:
        return None
    return image_grid(np.stack([request.preview_x, p.preview]))


def show_run(job: Job[TrainProgress, TrainOutcome], request: TrainRequest, live: bool) -> None:
    p = job.snapshot()
    epochs_total = request.train_config.epochs
    epoch_now = min(epochs_total, p.step // max(1, p.steps_per_epoch) + 1)
    if job.status == "queued":
        text = "Waiting for a free core: other runs are training on this server…"
    elif live:
        text = f"Epoch {epoch_now} of {epochs_total} · step {p.step:,} of {p.total_steps:,} · {job.elapsed:.0f} s"
    else:
        text = f"{len(p.epochs)} of {epochs_total} epoch(s) in {job.elapsed:.1f} s"
    st.progress(min(1.0, p.fraction), text=text)
    if live and st.button("Cancel", key="tr_cancel", icon=":material/stop:"):
        job.cancel()
        st.toast("Cancelling: training stops after the current step.")
    left, right = st.columns([1.6, 1], gap="large")
    with left:
        st.plotly_chart(
            curves(p, request.model_config.is_variational),
            config=charts.plotly_config(f"{request.name}-curves"),
            key="tr_curves_live" if live else "tr_curves",
        )
    with right:
        grid = preview_grid(request, p)
        last = p.epochs[-1] if p.epochs else None
        caption = (
            f"Top: test images. Bottom: reconstructions after epoch {last.epoch} (test loss {last.test_loss:.1f} nats)"
            if last
            else "Reconstructions appear after the first epoch."
        )
        if grid is None:
            st.caption(caption)
        elif live:
            st.image(to_png(grid, charts.grid_scale(grid, 480)), caption=caption, output_format="PNG")
        else:
            charts.grid_image(grid, caption, file_name=f"{request.name}-reconstructions.png", key="tr_png", target=480)


job = state.get("tr_job")
request: TrainRequest | None = state.get("tr_request")
if job is not None and request is not None:
    st.subheader(f"Run: {request.name}")
    if not job.done:

        @st.fragment(run_every=jobs_ui.POLL_S)
        def live_view() -> None:
            if job.done:
                st.rerun()  # the whole page: results, the save, the sidebar
            show_run(job, request, live=True)

        live_view()
    else:
        show_run(job, request, live=False)
        outcome: TrainOutcome | None = job.result
        if job.status == FAILED or outcome is None:
            st.error(f"Training stopped with an error: {describe_error(job.error)}")
        else:
            if outcome.status == "diverged":
                st.error(
                    f"The loss became NaN or infinite, so training stopped: {outcome.message} "
                    "Lower the learning rate and try again."
                )
            elif outcome.status == "cancelled" or job.status == CANCELLED:
                st.warning(f"Training was {outcome.message or 'cancelled'}.")
            elif outcome.status == "finished" and outcome.saved is None:
                st.error(f"The model is trained, but {outcome.message}. Its weights are kept in this session.")
            if outcome.saved is None and outcome.can_save:
                n = len(outcome.history.epochs)
                if st.button(f"Save the weights of epoch {n}", key="tr_save", icon=":material/save:"):
                    try:
                        save_outcome(outcome, request)
                        load.models.clear()
                        st.rerun()
                    except CheckpointError as exc:
                        st.error(f"Not saved: {exc}.")
            elif outcome.saved is None and outcome.status != "finished":
                st.info("No epoch finished, so there are no trained weights to save.")
            saved = outcome.saved
            if saved is not None:
                key = catalog.USER_PREFIX + saved.name
                renamed = f" ({saved.asked!r} was taken, so it got a free name)" if saved.renamed else ""
                last = outcome.history.last
                st.success(
                    f"Saved as your checkpoint **{saved.name}**{renamed}: test loss {last.test_loss:.1f} nats "
                    f"after {last.epoch} epoch(s). The sidebar offers it under "
                    f"{catalog.dataset_title(request.dataset.name)}."
                )
                st.button(
                    "Open it in the sidebar",
                    key="tr_open",
                    icon=":material/arrow_back:",
                    on_click=open_in_sidebar,
                    args=(key, request.dataset.name),
                    disabled=state.get("model") == key,
                )
                for w in outcome.history.warnings:
                    st.caption(f"Note: {w}")
