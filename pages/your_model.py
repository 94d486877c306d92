"""Load your model: a VAE trained elsewhere, as an ONNX encoder/decoder pair and its model.json,
added to your models so that every page can explore it."""

from __future__ import annotations

import streamlit as st

from core.app import catalog
from core.data.registry import REGISTRY, DataError
from core.formats.checkpoints import CheckpointError
from pages import _ui_load as load
from pages import _ui_state as state_ui

PAGE = {  # this page's row of the page table (core/app/site.py)
    "title": "Load your model",
    "icon": ":material/upload_file:",
    "url_path": "your-model",
    "section": "Train",
    "order": 20,
    "params": (),
    "tagline": "a VAE from your own code, in every page",
    "blurb": "Export any encoder/decoder to ONNX in a few lines, upload it, explore it like ours.",
    "inputs": ("images", "table"),  # a table's model too (core/app/site.py INPUTS)
}
SNIPPET = """from core.formats.export import export_model

model = MyVAE()  # encode(x) -> (mu, logvar) or z; decode(z) -> image in [0, 1]
export_model(model, "my-vae", image_shape=(1, 28, 28), latent_dim=16,
             title="My VAE on MNIST", dataset="mnist")"""
NO_DATA = "none"
MODEL_UPLOAD_MB = 20  # an encoder or decoder graph (the server's limit is the table's, 100 MB)

state_ui.intro(
    "Load your model",
    """
Bring a VAE or an autoencoder you trained in your own code (PyTorch, Keras, JAX): export its
encoder and decoder to ONNX, upload the two graphs with their `model.json`, and it joins the
sidebar's picker beside the shipped models, so every page explores it. The idea: the pages need
only what every autoencoder has, an encoder to a code and a decoder back; a model is data (two
graphs and a JSON file), never code, so opening someone else's is as safe as opening an image.
""",
)
state = st.session_state


def open_in_sidebar(key: str, dataset: str) -> None:
    """Button callback (runs before the sidebar is drawn, so its picker may still be set)."""
    state["dataset"], state["model"] = dataset, key


def measuring_set(name: str):
    """The data set the card is measured on, or None (no card, or not available here)."""
    if name == NO_DATA:
        return None
    try:
        return load.data(name, on_missing="raise")
    except DataError as exc:
        st.warning(f"No model card: {catalog.dataset_title(name)} is not available here ({exc}).")
        return None


def add_model(files: list, name: str, dataset_name: str) -> None:
    """Validate the uploaded files and install them as ``user_checkpoints/NAME``; say what happened."""
    from core.formats.export import import_files

    by_name = {f.name: f.getvalue() for f in files}
    try:
        with st.spinner("Checking the graphs and measuring the model…"):
            path = import_files(by_name, name.strip(), catalog.user_dir(), measuring_set(dataset_name))
    except CheckpointError as exc:
        st.error(f"This model cannot be used: {exc}")
        return
    load.models.clear()
    state["ym_added"] = path.name
    st.rerun()


st.subheader("1 · Export it")
st.markdown(
    "From PyTorch, in the Latent Lab folder, with your trained module (see `docs/own-model.md` for "
    "Keras and JAX, conditional models and every field of `model.json`):"
)
st.code(SNIPPET, language="python")

st.subheader("2 · Upload it")
files = st.file_uploader(
    "encoder.onnx, decoder.onnx and model.json",
    type=["onnx", "json", "data"],
    accept_multiple_files=True,
    key="ym_files",
    help=f"Up to {MODEL_UPLOAD_MB} MB a file. Nothing runs as code: the graphs go to onnxruntime.",
    max_upload_size=MODEL_UPLOAD_MB,
)
c = st.columns([1.4, 1.4, 1], vertical_alignment="bottom")
name = c[0].text_input("Name", value="my-model", max_chars=100, key="ym_name", help="Letters, digits, '.', '_', '-'.")
names = [NO_DATA, *REGISTRY]
dataset_name = c[1].selectbox(
    "Measure its card on",
    names,
    index=names.index("mnist-5k"),
    format_func=lambda n: "no card" if n == NO_DATA else catalog.dataset_title(n),
    key="ym_dataset",
    help="Test loss, reconstruction, KL and active units on this data set's test split (resized to the model).",
)
if c[2].button("Add to my models", type="primary", icon=":material/add:", key="ym_add", disabled=not files):
    add_model(files, name, dataset_name)

added = state.get("ym_added")
st.subheader("3 · Explore it")
mine = [e for e in load.models() if e.format == "onnx"]
if not mine:
    st.caption("Your ONNX models appear here and in the sidebar once they are added.")
for entry in mine:
    left, right = st.columns([3, 1], vertical_alignment="center")
    if not entry.ok:
        left.warning(f"**{entry.name}** cannot be used: {entry.error}")
        continue
    card = catalog.card_rows(entry)
    new = " (just added)" if entry.name == added else ""
    left.markdown(f"**{entry.name}**{new}: {card.pop('Model')} · " + " · ".join(f"{k} {v}" for k, v in card.items()))
    right.button(
        "Open in the sidebar",
        key=f"ym_open_{entry.name}",
        icon=":material/arrow_back:",
        on_click=open_in_sidebar,
        args=(entry.key, entry.dataset),
        disabled=state.get("model") == entry.key,
    )
