"""The decoder that runs in the browser: one ONNX file per model, served to the page once.

The latent sliders (and the interpolation scrubber) decode in the browser with
onnxruntime-web, so a drag paints a frame per ``input`` event instead of waiting for the
server. This module is the server's half, free of Streamlit:

* :func:`prepare` puts a model's decoder graph into a served folder (the app's
  ``static/decoders/``, ignored by git) as ``<sha256>.onnx`` beside ``<sha256>.json``, what the
  browser needs to run it (:class:`BrowserDecoder`). Our checkpoints are exported with
  :func:`core.formats.export.export_checkpoint` once per checkpoint (the key is the SHA-256 of its
  weights, so a retrained checkpoint gets a new file and the browser's cache never serves
  stale weights); a foreign model's ``decoder.onnx`` is copied as it is. Files are written
  under a temporary name and renamed, so a reader never sees half a file.
* :func:`ort_build` reads the manifest of the vendored onnxruntime-web (``make web`` writes
  ``static/ort/manifest.json``): which files to load, their version.
* :func:`slider_rows`, :func:`path_codes` and :func:`accept_code` are the component's data:
  the sliders in display order with ranges and labels, a dense path of codes for a scrubber,
  and the validation of a code the browser sends back (untrusted input, like a link).

Pixels: the browser turns the graph's output into bytes exactly as :func:`core.data.images.to_png`
does (``round(clip(p, 0, 1) * 255)``), ``p`` the sigmoid of logits or the image rescaled
from ``value_range``, so its frames equal the server's decode within 1/255.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import threading
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from core.app.catalog import LoadedModel, ModelEntry, load_entry
from core.formats.foreign import DECODER_FILE, OnnxSpec

FORMAT_VERSION = 1  # of the <sha>.json files; a change re-exports every decoder
MAX_BROWSER_BYTES = 64_000_000  # a larger decoder is not worth a page load: the sliders decode on the server
ORT_MANIFEST = "manifest.json"


class BrowserDecoderError(RuntimeError):
    """The model's decoder cannot run in the browser; the message says why, in one sentence."""


@dataclass(frozen=True)
class BrowserDecoder:
    """What the browser needs to run one decoder graph: the file's name in the served folder
    and how to read its input and output (the fields of ``model.json``, :mod:`core.formats.foreign`)."""

    file: str  # "<sha256>.onnx"
    inputs: tuple[str, ...]  # (z,) or (z, label)
    output: str
    output_kind: str  # "logits" (sigmoid in the browser) or "image" (in value_range)
    value_range: tuple[float, float]
    layout: str  # "CHW" or "HWC"
    label: str  # "index" (int64 (B,)) or "onehot" (float32 (B, K))
    num_classes: int
    image_shape: tuple[int, int, int]  # (C, H, W)
    latent_dim: int

    @classmethod
    def from_spec(cls, spec: OnnxSpec, file: str) -> BrowserDecoder:
        return cls(
            file=file,
            inputs=tuple(spec.decoder_inputs),
            output=spec.decoder_outputs[0],
            output_kind=spec.decoder,
            value_range=tuple(spec.value_range),
            layout=spec.layout,
            label=spec.label,
            num_classes=spec.num_classes,
            image_shape=tuple(spec.image_shape),
            latent_dim=spec.latent_dim,
        )

    def to_data(self, url: str) -> dict:
        """The component's ``decoder`` entry; ``url`` is where the page fetches the file."""
        return {**asdict(self), "url": url, "key": self.file.removesuffix(".onnx")}


# ---------------------------------------------------------------- the served file


def _file_sha256(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


_EXPORTING = threading.Lock()


def model_key(loaded: LoadedModel) -> str:
    """The SHA-256 that names a model's browser decoder: of the checkpoint's weights (ours,
    as its JSON records them), or of the foreign model's decoder.onnx."""
    spec = getattr(loaded.model, "spec", None)
    if isinstance(spec, OnnxSpec):
        return _file_sha256(Path(loaded.path) / DECODER_FILE)
    return loaded.meta.get("weights_sha256") or _file_sha256(Path(loaded.path))


def _publish(src: Path, dest: Path) -> None:
    """Copy ``src`` to ``dest`` through a temporary name in dest's folder, then rename."""
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".tmp")
    os.close(fd)
    try:
        shutil.copyfile(src, tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _write_spec(spec: OnnxSpec, dest: Path) -> None:
    with tempfile.NamedTemporaryFile("w", dir=dest.parent, suffix=".tmp", delete=False, encoding="utf-8") as f:
        json.dump({"format_version": FORMAT_VERSION, "spec": spec.to_dict()}, f)
    os.chmod(f.name, 0o644)
    os.replace(f.name, dest)


def _read_cached(json_path: Path) -> OnnxSpec | None:
    """The spec stored beside a served decoder, or None when missing, stale or unreadable."""
    try:
        stored = json.loads(json_path.read_text(encoding="utf-8"))
        if stored.get("format_version") != FORMAT_VERSION:
            return None
        return OnnxSpec.from_dict(stored["spec"], json_path)
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def _foreign_source(loaded: LoadedModel) -> tuple[Path, OnnxSpec]:
    """A foreign model's decoder.onnx and spec; refused when its weights live in other files."""
    model = loaded.model
    if model.external.get("decoder"):
        raise BrowserDecoderError(
            "its decoder keeps its weights in separate files; the browser needs a single-file decoder.onnx"
        )
    return Path(loaded.path) / DECODER_FILE, model.spec


class ExportInProgress(RuntimeError):
    """Another thread is exporting a decoder right now (the warm-up at server start): a page
    that must not wait decodes on the server this run and asks again on the next."""


def prepare(loaded: LoadedModel, folder: str | os.PathLike, wait: bool = True) -> BrowserDecoder:
    """Put ``loaded``'s decoder into ``folder`` (once per model: later calls find it there) and
    say how to run it. Exports one of our checkpoints with :func:`core.formats.export.export_checkpoint`
    (a few seconds); copies a foreign model's decoder.onnx. Raises BrowserDecoderError."""
    folder = Path(folder)
    key = model_key(loaded)
    onnx_path, json_path = folder / f"{key}.onnx", folder / f"{key}.json"
    spec = _read_cached(json_path) if onnx_path.is_file() else None
    if spec is not None:
        return BrowserDecoder.from_spec(spec, onnx_path.name)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BrowserDecoderError(f"cannot write the decoder to {folder}: {exc.strerror or exc}") from exc
    if isinstance(getattr(loaded.model, "spec", None), OnnxSpec):
        src, spec = _foreign_source(loaded)
        _check_size(src)
        _publish(src, onnx_path)
    else:
        # One export at a time: the warm-up thread and a page may both ask. A page does not
        # queue behind the warm-up's exports (wait=False): it hears ExportInProgress instead.
        if not _EXPORTING.acquire(blocking=wait):
            raise ExportInProgress("the in-browser decoders are still being prepared (a few seconds)")
        try:
            spec = _read_cached(json_path) if onnx_path.is_file() else None
            spec = spec or _export_ours(loaded, onnx_path)
        finally:
            _EXPORTING.release()
    _write_spec(spec, json_path)
    return BrowserDecoder.from_spec(spec, onnx_path.name)


def export_ahead(entries: list[ModelEntry], folder: str | os.PathLike) -> list[str]:
    """Export the browser decoders of ``entries`` (in that order) into ``folder`` before anyone
    opens them: the first export of a model takes seconds, which a class should not wait for on
    its first slider page. Models that cannot be exported are skipped (the page says why when
    it is opened). Returns the keys of the models whose decoder is now in ``folder``."""
    done = []
    for entry in entries:
        try:
            prepare(load_entry(entry), folder)
        except Exception:  # a broken or unexportable model waits for its page's message
            continue
        done.append(entry.key)
    return done


def _check_size(path: Path) -> None:
    size = path.stat().st_size
    if size > MAX_BROWSER_BYTES:
        raise BrowserDecoderError(f"its decoder is {size / 1e6:.0f} MB, more than a page should load")


def _export_ours(loaded: LoadedModel, dest: Path) -> OnnxSpec:
    """Export a checkpoint of ours into a temporary folder and publish its decoder.onnx as ``dest``."""
    from core.formats.checkpoints import CheckpointError
    from core.formats.export import export_checkpoint

    tmp = Path(tempfile.mkdtemp(dir=dest.parent, prefix=".export-", suffix=".tmp"))
    try:
        report = export_checkpoint(loaded.path, tmp / "model")
        _check_size(tmp / "model" / DECODER_FILE)
        _publish(tmp / "model" / DECODER_FILE, dest)
        return report.spec
    except CheckpointError as exc:  # ExportError is one: the export failed or disagrees with torch
        raise BrowserDecoderError(f"the decoder could not be exported: {exc}") from exc
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# ---------------------------------------------------------------- the vendored onnxruntime-web


@dataclass(frozen=True)
class OrtBuild:
    """The vendored onnxruntime-web (``make web``): its version and the two files the page loads."""

    version: str
    module: str  # the ES module (the WebAssembly backend with its glue bundled)
    wasm: str  # the WebAssembly binary


def ort_build(folder: str | os.PathLike) -> OrtBuild:
    """Read ``folder/manifest.json`` (written by web/build.mjs) and check that its files are
    there; BrowserDecoderError says how to build them when they are not."""
    folder = Path(folder)
    try:
        manifest = json.loads((folder / ORT_MANIFEST).read_text(encoding="utf-8"))
        build = OrtBuild(str(manifest["version"]), str(manifest["module"]), str(manifest["wasm"]))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise BrowserDecoderError("onnxruntime-web is not built here (`make web` builds it; it needs npm)") from exc
    missing = [f for f in (build.module, build.wasm) if not (folder / f).is_file()]
    if missing:
        raise BrowserDecoderError(f"onnxruntime-web's {missing[0]} is missing (`make web` rebuilds it)")
    return build


# ---------------------------------------------------------------- the component's data


def slider_rows(order: np.ndarray, lo: np.ndarray, hi: np.ndarray, step: np.ndarray, labels: list[str]) -> list[dict]:
    """One row per latent dimension, in display order: its index, label and range."""
    return [
        {"i": int(i), "label": labels[int(i)], "lo": float(lo[i]), "hi": float(hi[i]), "step": float(step[i])}
        for i in order
    ]


def path_codes(z_a: np.ndarray, z_b: np.ndarray, method: str, points: int = 101) -> list[list[float]]:
    """Codes (points, z) from z_a to z_b at t = 0, 1/(points-1), ..., 1, by ``method`` ("linear"
    or "slerp", :func:`core.lenses.latent.lerp` / :func:`core.lenses.latent.slerp`): the browser scrubs
    along them, blending neighbours linearly between two points."""
    from core.lenses.latent import lerp, slerp

    t = np.linspace(0.0, 1.0, points)
    codes = (lerp if method == "linear" else slerp)(np.asarray(z_a), np.asarray(z_b), t)
    return np.round(np.asarray(codes, np.float64), 6).tolist()


def code_at(path: list[list[float]] | np.ndarray, t: float) -> np.ndarray:
    """The code at ``t`` in [0, 1] on a dense path of :func:`path_codes`, its two neighbours blended
    linearly, as the browser's scrubber computes it -> float32 (z,)."""
    codes = np.asarray(path, np.float64)
    n = len(codes) - 1
    pos = min(max(float(t), 0.0), 1.0) * n
    k = min(int(np.floor(pos)), n - 1)
    f = pos - k
    return (codes[k] * (1 - f) + codes[k + 1] * f).astype(np.float32)


def accept_code(payload: object, lo: np.ndarray, hi: np.ndarray) -> np.ndarray | None:
    """A code the browser sent (``{"z": [...]}``) -> float32 (z,), clipped to [lo, hi]; None when
    it is not a list of finite numbers of the model's size (the page keeps its code)."""
    z = payload.get("z") if isinstance(payload, dict) else None
    if not isinstance(z, list) or len(z) != len(lo):
        return None
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in z):
        return None
    arr = np.asarray(z, np.float64)
    if not np.isfinite(arr).all():
        return None
    return np.clip(arr, lo, hi).astype(np.float32)
