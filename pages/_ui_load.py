"""The process and what it caches: the import freeze and warm-up, the model listing, the
sidebar's model loaded, data sets, and the latent codes of a model's test images.

Models, data sets and codes are cached per process with ``st.cache_resource`` and shared by
every session, so nothing here (or in a page) may change them: pages only call ``core``
functions that read a model.
"""

from __future__ import annotations

import gc
import sys
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import streamlit as st

from core.app import catalog
from core.data.registry import DataError, Dataset

if TYPE_CHECKING:  # torch-backed modules load on first use, so the first page paints before torch
    from core.lenses.latent import LatentCodes

ON_MISSING = ("warn", "error", "quiet", "raise")

# ---------------------------------------------------------------- the process

_frozen_at = 0  # len(sys.modules) at the last gc.freeze()


def freeze_imports() -> None:
    """Hide everything imported so far from Python's cyclic garbage collector (``gc.freeze``).

    torch, scikit-learn and plotly create hundreds of thousands of long-lived objects; every
    full collection walks them all, and collections happen during reruns: measured in the
    browser, a slider move took about 100 ms longer with torch imported and unfrozen than on a
    minimal page, and the same with it frozen. Run after each script run; it acts only when
    new modules were imported.
    """
    global _frozen_at
    if len(sys.modules) != _frozen_at:
        gc.freeze()
        _frozen_at = len(sys.modules)


# Python imports a module once, under a lock of its own; but a library whose modules import each
# other in a circle (scikit-learn) can be handed half-initialized to a second thread (the import
# system's deadlock avoidance), and plotly reads pandas from sys.modules while it is being
# imported. On a fresh server the first runs of many sessions import the engine at once (a class
# opening its links), so the first run of each page in this process, and the warm-up's imports,
# take turns under one lock. Later runs never wait for it.
_FIRST_RUNS = threading.Lock()
_pages_run: set[str] = set()


@contextmanager
def first_run(page_path: str):
    """Hold the first-run lock around a page's first run in this process. Later runs go free, and
    so do runs that waited while another session's first run of the same page ended (a class
    opening one link at once waits for one run, not for each other's)."""
    if page_path in _pages_run:
        yield
        return
    _FIRST_RUNS.acquire()
    if page_path in _pages_run:
        _FIRST_RUNS.release()
        yield
        return
    try:
        yield
    finally:
        _pages_run.add(page_path)
        _FIRST_RUNS.release()


def warm_up() -> None:
    """Import the torch-backed engine in a background thread, once per process, so the first
    page paints without waiting for torch and the demos open warm; then export the default
    model's browser decoder, so the first slider page of a class does not wait for it."""
    if not getattr(warm_up, "started", False):
        warm_up.started = True

        from pages import _ui_decoder  # registers its component here, in the script's thread

        # Only the model a class opens on: exporting every shipped decoder would take the CPU
        # from the first pages for a minute or two; the others export on their first visit.
        first = catalog.default_model([e for e in models() if e.ok and e.source == "shipped"])
        entries = [first] if first else []

        def load() -> None:
            with _FIRST_RUNS:  # never beside a page's first run (see first_run)
                import core.formats.checkpoints
                import core.lenses.latent  # noqa: F401
            _ui_decoder.export_ahead(entries)

        threading.Thread(target=load, name="latentlab-warm-up", daemon=True).start()


# ---------------------------------------------------------------- models


@st.cache_resource(ttl=10, show_spinner=False)
def models() -> list[catalog.ModelEntry]:
    """The checkpoints on offer; re-read every 10 s so a newly trained model shows up."""
    return catalog.list_models()


@st.cache_resource(max_entries=12, show_spinner="Loading the model…")
def _load_model(path: str, mtime: float, _entry: catalog.ModelEntry) -> catalog.LoadedModel:
    return catalog.load_entry(_entry)


@dataclass
class Current:
    """The model picked in the sidebar, loaded."""

    entry: catalog.ModelEntry
    ckpt: catalog.LoadedModel

    @property
    def model(self):
        return self.ckpt.model

    @property
    def key(self) -> str:
        return self.entry.key

    @property
    def conditional(self) -> bool:
        return self.model.conditional

    @property
    def num_classes(self) -> int:
        return self.model.num_classes


def current() -> Current:
    """The sidebar's model, loaded (cached); a page stops with a message when there is none."""
    entry = st.session_state.get("_entry")
    if entry is None:
        st.info(
            "No model is installed yet. Train one, for example "
            "`python -m core train --dataset mnist-5k --model vae --arch mlp --latent 2 "
            "--epochs 5 --out user_checkpoints/my-vae`, and reload this page."
        )
        st.stop()
    return Current(entry, load_model(entry))


def load_model(entry: catalog.ModelEntry) -> catalog.LoadedModel:
    """The entry's model, loaded once per process (per file time); a model that cannot be loaded
    stops the page with the reason."""
    from core.formats.checkpoints import CheckpointError

    try:
        return _load_model(str(entry.path), entry.mtime, entry)
    except CheckpointError as exc:
        what = "This model" if entry.format == "onnx" else "This checkpoint"
        st.error(f"{what} cannot be loaded: {exc}")
        st.stop()


# ---------------------------------------------------------------- data sets


@st.cache_resource(max_entries=4, show_spinner="Loading the data set…")
def _load_data(name: str, image_shape: tuple[int, ...] | None) -> Dataset:
    return catalog.load_data(name, image_shape)


def data(name: str, image_shape: tuple[int, ...] | None = None, *, on_missing: str) -> Dataset | None:
    """Registered data set ``name`` (offline-first, cached per process), resized to
    ``image_shape`` (C, H, W) or at its own size when None.

    on_missing: what happens when its images are not available here:
        "warn": a warning that the rest of the page still works (for a model's data), None;
        "error": an error that points at the offline sets (for the pages that train), None;
        "quiet": None, no message;
        "raise": the DataError propagates (the caller explains it).
    """
    if on_missing not in ON_MISSING:
        raise ValueError(f"on_missing must be one of {ON_MISSING}, got {on_missing!r}")
    try:
        return _load_data(name, None if image_shape is None else tuple(image_shape))
    except DataError as exc:
        if on_missing == "raise":
            raise
        if on_missing == "warn" and name == catalog.YOUR_MODELS:
            st.info(
                "This model's `model.json` names no data set of Latent Lab's (its `dataset` field), so the "
                "parts of this page that need test images are off; set `dataset` (e.g. `mnist`) and import it again."
            )
        elif on_missing == "warn":
            st.warning(
                f"The {catalog.dataset_title(name)} images are not available here ({exc}). "
                "Point `LATENTLAB_DATA` at a data folder, or pick another model; the parts of this "
                "page that need no data still work."
            )
        elif on_missing == "error":
            st.error(
                f"The {catalog.dataset_title(name)} images are not available here ({exc}). Point "
                "`LATENTLAB_DATA` at a data folder, or pick an offline set (MNIST 5,000 digits, LFW faces)."
            )
        return None


def data_of(entry: catalog.ModelEntry, *, on_missing: str) -> Dataset | None:
    """The data set a model was trained on, at the model's image size: :func:`data`."""
    return data(entry.dataset, entry.image_shape, on_missing=on_missing)


# ---------------------------------------------------------------- latent codes


@dataclass
class Codes:
    """Codes of the images a page plots: ``rows`` index ``x`` (and ``y``), the pool's images."""

    codes: LatentCodes
    rows: np.ndarray
    x: np.ndarray
    y: np.ndarray | None
    description: str


@st.cache_resource(max_entries=24, show_spinner="Encoding the images…")
def _codes(key: str, mtime: float, dataset: str, n: int | None, _model, _data: Dataset) -> Codes:
    from core.lenses.latent import encode_codes

    x, y, description = catalog.pool(_data)
    rows = catalog.subset_indices(len(x), n)
    if len(rows) < len(x):
        description = f"{len(rows):,} of {description}"
    codes = encode_codes(_model, x[rows], None if y is None else y[rows])
    return Codes(codes, rows, x, y, description)


def codes_of(entry: catalog.ModelEntry, model, data: Dataset, n: int | None = 2000) -> Codes:
    """Codes of a fixed random subset of ``n`` pool images (all when None); cached per model,
    data set and n. ``Codes.rows[i]`` is the row in ``Codes.x`` of code ``i``."""
    return _codes(entry.key, entry.mtime, data.name, n, model, data)


def ranking(cur: Current, data: Dataset | None):
    """Dimensions by KL (VAE) or activity (AE), or None without data."""
    if data is None:
        return None
    from core.lenses.latent import rank_dimensions

    codes = codes_of(cur.entry, cur.model, data).codes
    return rank_dimensions(codes.mu, codes.logvar)


def code_range(cur: Current, data: Dataset | None):
    """Where the model's codes live (``core.lenses.latent.CodeRange``): the prior's for a VAE, its
    codes' spread over the data for a plain AE (a guess without data)."""
    from core.lenses.latent import code_range as measure

    variational = cur.model.is_variational
    mu = None if variational or data is None else codes_of(cur.entry, cur.model, data).codes.mu
    return measure(cur.model.latent_dim, variational, mu)


@st.cache_resource(max_entries=4, show_spinner="Reading your images…")
def _user_upload(name: str, digest: str, _data: bytes) -> Dataset:
    from core.data.registry import load_user_upload

    return load_user_upload(name, _data)


def user_upload(name: str, data: bytes) -> Dataset | None:
    """An uploaded .zip of images or .npz as a data set (cached by content, shared by every
    session), or None with the reason in the page; the files it skipped are listed."""
    import hashlib

    try:
        ds = _user_upload(name, hashlib.sha256(data).hexdigest(), data)
    except DataError as exc:
        st.error(f"These images cannot be used: {exc}")
        return None
    if ds.skipped:
        with st.expander(f"{len(ds.skipped)} file(s) skipped"):
            st.markdown("\n".join(f"- `{f}`: {why}" for f, why in ds.skipped[:200]))
    return ds
