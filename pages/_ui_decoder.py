"""The in-browser decoder: an ``st.components.v2`` component that holds the latent sliders (or a
scrubber along an interpolation path) and the picture, decoded in the browser at every
``input`` event of a drag; the page hears of the code once, when the drag ends.

How it is fed: onnxruntime-web is vendored into ``static/ort/`` by ``make web`` and a model's
decoder is exported once into ``static/decoders/<sha256>.onnx`` (:mod:`core.app.browser_decoder`);
Streamlit serves both at ``/app/static/`` (``server.enableStaticServing``), and the page keeps
them in the browser's IndexedDB, so each is fetched once per browser (the decoder's name is its
content hash, so a new checkpoint is a new file). The component's own code is
``pages/decoder_component/decoder.js`` and ``decoder.css``.

When the browser cannot decode (no WebAssembly, a decoder that cannot be exported, onnxruntime-web
not built, ``?decoder=server`` or ``LATENTLAB_DECODER=server``), :func:`setup` says why in one
line and returns None, and the page keeps its server-side sliders.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import streamlit as st

from core.app import browser_decoder as bd
from core.app import catalog
from pages import _ui_state as state_ui

ROOT = Path(__file__).resolve().parent.parent
STATIC = ROOT / "static"  # served at /app/static/ (resolved against the page's URL in the browser)
ASSETS = Path(__file__).resolve().parent / "decoder_component"
URL = "app/static/"
PARAM = "decoder"  # ?decoder=server: decode on the server (a page lists it in its PAGE["params"])
ENV = "LATENTLAB_DECODER"  # LATENTLAB_DECODER=server: the same for every session of the process
OFF = "_decoder_off"  # session state: model key (or ANY_MODEL) -> why this browser could not run its decoder
ANY_MODEL = "*"  # no WebAssembly: no model can decode in this browser

_mount = st.components.v2.component(
    "latentlab_decoder",
    css=(ASSETS / "decoder.css").read_text(encoding="utf-8"),
    js=(ASSETS / "decoder.js").read_text(encoding="utf-8"),
)


@st.cache_resource(max_entries=32, show_spinner="Preparing the in-browser decoder (once per model)…")
def _prepare(key: str, mtime: float, _loaded) -> bd.BrowserDecoder | str:
    """The model's browser decoder (exported once, then found on disk), or why there is none."""
    try:
        return bd.prepare(_loaded, STATIC / "decoders", wait=False)  # ExportInProgress: not cached
    except bd.BrowserDecoderError as exc:
        return str(exc)


def export_ahead(entries: list) -> None:
    """Export ``entries``' decoders before their first visit (call it from a background thread;
    it touches no session). Nothing to do when the browser decoder is off for the process."""
    if os.environ.get(ENV, "").strip().lower() == "server" or not (STATIC / "ort").is_dir():
        return
    bd.export_ahead(entries, STATIC / "decoders")


def _why_not(cur) -> str | None:
    """Why this page must decode on the server, before looking at the model's decoder."""
    # A bad value (only "server" means anything) gets a note and leaves the URL.
    if state_ui.link_value(PARAM, catalog.parse_choice, ("server",), "decoder") == "server":
        return "the link asks for it (decoder=server)"
    if os.environ.get(ENV, "").strip().lower() == "server":
        return f"{ENV}=server"
    off = st.session_state.get(OFF, {})
    reason = off.get(cur.key) or off.get(ANY_MODEL)
    if reason:
        return f"this browser cannot run the decoder ({reason})"
    if not st.get_option("server.enableStaticServing"):
        return "static file serving is off (server.enableStaticServing in .streamlit/config.toml)"
    return None


def setup(cur, fallback: str = "The sliders decode on the server") -> dict | None:
    """The component's ``ort`` and ``decoder`` data for the sidebar's model ``cur``, or None with
    one line: ``fallback``, and why."""
    why, build, dec = _why_not(cur), None, None
    if why is None:
        try:
            build = bd.ort_build(STATIC / "ort")  # read once per run: the manifest of `make web`
        except bd.BrowserDecoderError as exc:
            why = str(exc)
    if why is None:
        try:
            dec = _prepare(cur.key, cur.entry.mtime, cur.ckpt)
        except bd.ExportInProgress as exc:
            dec, why = None, f"{exc}; the next move tries again"
        if isinstance(dec, str):
            why = f"this model's decoder cannot run in the browser: {dec}"
    if why is not None:
        st.caption(f":material/dns: {fallback}: {why}.")
        return None
    return {
        "ort": {"module": URL + "ort/" + build.module, "wasm": URL + "ort/" + build.wasm, "version": build.version},
        "decoder": dec.to_data(URL + "decoders/" + dec.file),
        "model": cur.key,
    }


def _failed(result, model_key: str) -> None:
    """The browser said it cannot run the decoder: note why for this session and decode on the server."""
    reason = result.get("failed")
    if reason and not st.session_state.get(OFF, {}).get(model_key):
        reason = str(reason)[:300]
        st.session_state.setdefault(OFF, {})[ANY_MODEL if "WebAssembly" in reason else model_key] = reason
        st.rerun()


def _noop() -> None:
    """Registers a state of the component (``on_NAME_change``); the page reads the result instead."""


def latent_sliders_component(
    setup_data: dict,
    rows: list[dict],
    z: np.ndarray,
    y: int | None,
    *,
    rev: int,
    key: str,
    caption: str,
    scale: int,
    shown: int,
) -> dict | None:
    """Mount the sliders and the picture, decoded in the browser from code ``z`` (and label ``y``).

    rows: the sliders in display order (:func:`core.app.browser_decoder.slider_rows`); the first
    ``shown`` are in view, the rest folded. rev: the page's revision of the code; the browser
    takes ``z`` only when it changes (a reset, a new start), so a rerun never moves a slider
    under the user's hand. Returns the browser's code at the end of its last drag, ``{"z":
    [...], "rev": n}``, or None (validate it with :func:`core.app.browser_decoder.accept_code`).
    """
    data = {
        **setup_data,
        "mode": "sliders",
        "layout_key": f"{setup_data['model']}|{len(rows)}|{shown}",
        "rows": rows,
        "shown": min(shown, len(rows)),
        "more": f"{len(rows) - shown} more dimensions, less used",
        "z": [round(float(v), 4) for v in z],
        "y": y,
        "rev": rev,
        "caption": caption,
        "scale": scale,
    }
    result = _mount(key=key, data=data, on_code_change=_noop, on_failed_change=_noop)
    _failed(result, setup_data["model"])
    code = result.get("code")
    return code if isinstance(code, dict) and code.get("rev") == rev else None


def path_scrubber_component(
    setup_data: dict, path: list[list[float]], labels: list[int] | None, t: float, *, rev: int, key: str,
    ends: tuple[str, str], caption: str, scale: int,
) -> float | None:  # fmt: skip
    """Mount a scrubber t in [0, 1] along ``path`` (codes at evenly spaced t, from
    :func:`core.app.browser_decoder.path_codes`) and the picture of the code at t, decoded in the
    browser; ``labels`` (y_a, y_b) for a conditional model, switched at t = 0.5. Returns t at
    the end of the last drag (None before one, or when ``rev`` moved on)."""
    data = {
        **setup_data,
        "mode": "path",
        "layout_key": f"{setup_data['model']}|path|{ends}",
        "path": path,
        "labels": labels,
        "t": float(t),
        "rev": rev,
        "y": None,
        "ends": list(ends),
        "caption": caption,
        "scale": scale,
    }
    result = _mount(key=key, data=data, on_code_change=_noop, on_failed_change=_noop)
    _failed(result, setup_data["model"])
    code = result.get("code")
    if not (isinstance(code, dict) and code.get("rev") == rev and isinstance(code.get("t"), int | float)):
        return None
    return float(min(1.0, max(0.0, code["t"])))
