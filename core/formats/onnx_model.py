"""A foreign model behind the model protocol: an ONNX encoder/decoder pair run by onnxruntime.

:func:`load_onnx_model` opens a folder in the format of :mod:`core.formats.foreign` and returns an
:class:`OnnxModel`, which implements :class:`core.models.protocol.LatentModel`, so every analysis and
page takes it like a shipped model. Loading runs no code from the folder and unpickles
nothing: ``model.json`` goes through ``json.loads``, each graph's bytes through protobuf
(``onnx.load`` without its external data) and onnxruntime, on the CPU only.

Before a graph reaches onnxruntime it is checked, and each problem is one
:class:`core.formats.foreign.ForeignModelError` naming the file: size and first bytes
(:func:`core.formats.foreign.check_graph_file`), that it parses as an ONNX model, that every external
data file it names lies inside the folder and within the size limit, and the SHA-256 that
``model.json`` records, if any. Then each session's declared inputs and outputs (names, element
types, static dimensions) must match ``model.json``, and a probe run (a mid-grey batch of 2
through the encoder, zero codes through the decoder) must give the declared shapes and finite
values; graphs that declare no static shapes are caught there.

Shapes: images x are (B, C, H, W) float32 in [0, 1]; codes z, mu, logvar (B, latent_dim);
labels y int64 (B,). The graphs may take (B, H, W, C) and another value range: the model
converts at the boundary. Large batches run in chunks of about 128 MB of image floats.
"""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F

from core.formats.foreign import (
    GRAPH_FILES,
    MAX_GRAPH_BYTES,
    ForeignModelError,
    OnnxSpec,
    check_graph_file,
    read_spec,
)
from core.models import losses

if TYPE_CHECKING:
    import onnx
    import onnxruntime

MAX_RUN_FLOATS = 2**25  # floats of image per onnxruntime call (128 MB); larger batches run in chunks
PROBE_BATCH = 2


@dataclass(frozen=True)
class Port:
    """One input or output a graph must have: its name in the graph, its role, its ONNX element
    type and its dimensions (``None`` marks the batch dimension, which must be dynamic)."""

    name: str
    role: str
    dtype: str
    dims: tuple[int | None, ...]
    what: str  # what fixes the dimensions, for messages: "latent_dim 16"


def graph_ports(spec: OnnxSpec, graph: str) -> tuple[list[Port], list[Port]]:
    """The (inputs, outputs) that ``model.json`` declares for graph "encoder" or "decoder"."""
    c, h, w = spec.image_shape
    image_dims = (None, c, h, w) if spec.layout == "CHW" else (None, h, w, c)
    image_what = f"image_shape {list(spec.image_shape)}, layout {spec.layout}"
    image = ("tensor(float)", image_dims, image_what)
    code = ("tensor(float)", (None, spec.latent_dim), f"latent_dim {spec.latent_dim}")
    if spec.label == "index":
        label = ("tensor(int64)", (None,), "label 'index': int64 (B,)")
    else:
        label = ("tensor(float)", (None, spec.num_classes), f"label 'onehot', num_classes {spec.num_classes}")
    if graph == "encoder":
        ins, outs = [("image", image), ("label", label)], [("mu", code), ("logvar", code)]
        if not spec.is_variational:
            outs = [("z", code)]
        names_in, names_out = spec.encoder_inputs, spec.encoder_outputs
    else:
        ins, outs = [("z", code), ("label", label)], [("image" if spec.decoder == "image" else "logits", image)]
        names_in, names_out = spec.decoder_inputs, spec.decoder_outputs
    inputs = [Port(n, role, *t) for n, (role, t) in zip(names_in, ins, strict=False)]
    outputs = [Port(n, role, *t) for n, (role, t) in zip(names_out, outs, strict=True)]
    return inputs, outputs


# ---------------------------------------------------------------- checking a graph file


def _tensors(graph: onnx.GraphProto) -> Iterator[onnx.TensorProto]:
    """Every tensor a graph holds: initializers, sparse ones, node attributes, subgraphs."""
    yield from graph.initializer
    for sparse in graph.sparse_initializer:
        yield from (sparse.values, sparse.indices)
    for node in graph.node:
        for attr in node.attribute:
            if attr.HasField("t"):
                yield attr.t
            yield from attr.tensors
            if attr.HasField("g"):
                yield from _tensors(attr.g)
            for sub in attr.graphs:
                yield from _tensors(sub)


def external_files(model: onnx.ModelProto, path: Path) -> list[str]:
    """The external data files a parsed graph names (relative to its folder), after checking
    that each one is a plain relative name inside the folder, exists, and that the graph's
    file plus its data stay within :data:`core.formats.foreign.MAX_GRAPH_BYTES`."""
    import onnx

    folder = path.parent.resolve()
    found: list[str] = []
    for tensor in _tensors(model.graph):
        if tensor.data_location != onnx.TensorProto.EXTERNAL:
            continue
        location = next((e.value for e in tensor.external_data if e.key == "location"), "")
        target = (folder / location).resolve()
        if not location or os.path.isabs(location) or not target.is_relative_to(folder) or target == folder:
            raise ForeignModelError(
                f"{path}: tensor {tensor.name!r} refers to external data {location!r} outside the model's "
                "folder; refusing to read it"
            )
        if not target.is_file():
            raise ForeignModelError(f"{path}: its external data file {location!r} is missing")
        if location not in found:
            found.append(location)
    total = path.stat().st_size + sum((folder / loc).stat().st_size for loc in found)
    if total > MAX_GRAPH_BYTES:
        raise ForeignModelError(f"{path}: with its external data, {total:,} bytes is over {MAX_GRAPH_BYTES:,}")
    return found


def parse_graph(path: Path) -> onnx.ModelProto:
    """Parse a graph's protobuf without its external data; ForeignModelError unless it is an
    ONNX model with a graph."""
    import onnx

    check_graph_file(path)
    try:
        model = onnx.load_model(str(path), load_external_data=False)
    except Exception as exc:  # protobuf's DecodeError and friends: the bytes are not a ModelProto
        raise ForeignModelError(f"{path}: not an ONNX model (it does not parse: {_short(exc)})") from exc
    if model.ir_version <= 0 or not model.graph.node or not model.graph.output:
        raise ForeignModelError(f"{path}: not an ONNX model (no graph, or no ir_version)")
    return model


def _check_hash(path: Path, spec: OnnxSpec) -> None:
    hashes = spec.meta.get("sha256")
    if hashes is None:
        return
    want = hashes.get(path.name) if isinstance(hashes, dict) else None
    if not isinstance(want, str):
        raise ForeignModelError(f"{path.parent / 'model.json'}: field 'sha256' must map {path.name} to a hex digest")
    with open(path, "rb") as f:
        if hashlib.file_digest(f, "sha256").hexdigest() != want:
            raise ForeignModelError(f"{path}: contents do not match model.json's SHA-256: truncated or replaced")


def _session(path: Path, threads: int) -> onnxruntime.InferenceSession:
    """An onnxruntime session on the CPU, sized for a server: ``threads`` intra-op threads, one
    inter-op thread, sequential execution, errors only in the log."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 3
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")  # no busy-waiting on shared CPUs
    try:
        return ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own Fail / InvalidGraph / NotImplemented types
        raise ForeignModelError(f"{path}: onnxruntime cannot load it: {_short(exc)}") from exc


def _short(exc: BaseException, limit: int = 300) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[:limit] + "…"


def _fmt(dims: list | tuple) -> str:
    return "(" + ", ".join("batch" if d is None else str(d) for d in dims) + ")"


def check_ports(path: Path, kind: str, declared: list[Port], actual: list) -> None:
    """Compare a session's inputs or outputs (onnxruntime ``NodeArg``s) with model.json's."""
    names, want = [a.name for a in actual], [p.name for p in declared]
    if sorted(names) != sorted(want):
        roles = ", ".join(f"{p.name!r} ({p.role})" for p in declared)
        raise ForeignModelError(f"{path}: its {kind}s are {names}, but model.json declares {roles}")
    by_name = {a.name: a for a in actual}
    for p in declared:
        arg = by_name[p.name]
        if arg.type != p.dtype:
            raise ForeignModelError(f"{path}: {kind} {p.name!r} ({p.role}) is {arg.type}; it must be {p.dtype}")
        shape = list(arg.shape or [])
        if not shape:
            continue  # rank unknown: the probe run checks it
        if len(shape) != len(p.dims):
            raise ForeignModelError(
                f"{path}: {kind} {p.name!r} ({p.role}) has shape {_fmt(shape)}; model.json needs "
                f"{_fmt(p.dims)} ({p.what})"
            )
        if isinstance(shape[0], int):
            raise ForeignModelError(
                f"{path}: {kind} {p.name!r} has a fixed batch size of {shape[0]}; export it with a dynamic "
                "batch dimension"
            )
        for got, need in zip(shape[1:], p.dims[1:], strict=True):
            if isinstance(got, int) and got != need:
                raise ForeignModelError(
                    f"{path}: {kind} {p.name!r} ({p.role}) has shape {_fmt([None, *shape[1:]])}; model.json "
                    f"needs {_fmt(p.dims)} ({p.what})"
                )


# ---------------------------------------------------------------- the model


class OnnxModel:
    """A :class:`core.models.protocol.LatentModel` on two onnxruntime sessions (CPU).

    Load one with :func:`load_onnx_model`. Sessions are thread-safe for ``run``, and the model
    holds no state that a call changes, so one instance can serve many app sessions.
    """

    def __init__(self, folder: Path, spec: OnnxSpec, sessions: dict, external: dict[str, list[str]]):
        self.folder = folder
        self.spec = spec
        self.sessions = sessions  # "encoder" | "decoder" -> onnxruntime.InferenceSession
        self.external = external  # graph -> external data files it reads (relative names)

    def __repr__(self) -> str:
        return f"OnnxModel({str(self.folder)!r}, {self.spec.title!r})"

    # -- the model protocol's facts (core.models.protocol.LatentModel)
    @property
    def title(self) -> str:
        return self.spec.title

    @property
    def latent_dim(self) -> int:
        return self.spec.latent_dim

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return self.spec.image_shape

    @property
    def likelihood(self) -> str:
        return self.spec.likelihood

    @property
    def is_variational(self) -> bool:
        return self.spec.is_variational

    @property
    def num_classes(self) -> int:
        return self.spec.num_classes

    @property
    def conditional(self) -> bool:
        return self.spec.conditional

    @property
    def device(self) -> torch.device:
        return torch.device("cpu")

    def files(self) -> list[str]:
        """Every file the model reads, relative to its folder (what an import copies)."""
        return ["model.json", *GRAPH_FILES.values(), *sorted({f for fs in self.external.values() for f in fs})]

    # -- the boundary: protocol tensors <-> graph arrays
    def _image_in(self, x: torch.Tensor) -> np.ndarray:
        """x (B, C, H, W) in [0, 1] -> the encoder's image array (layout, value range)."""
        lo, hi = self.spec.value_range
        a = x.detach().to("cpu", torch.float32)
        if (lo, hi) != (0.0, 1.0):
            a = lo + a * (hi - lo)
        if self.spec.layout == "HWC":
            a = a.permute(0, 2, 3, 1)
        return np.ascontiguousarray(a.numpy())

    def _image_out(self, a: np.ndarray) -> torch.Tensor:
        """The decoder's array -> (B, C, H, W) float32, still in graph units (logits or value range)."""
        t = torch.from_numpy(np.asarray(a, np.float32))
        return t.permute(0, 3, 1, 2).contiguous() if self.spec.layout == "HWC" else t

    def _to_unit(self, raw: torch.Tensor) -> torch.Tensor:
        """The decoder's output (B, C, H, W) in graph units -> the image in [0, 1]."""
        if self.spec.decoder == "logits":
            return torch.sigmoid(raw)
        lo, hi = self.spec.value_range
        return ((raw - lo) / (hi - lo)).clamp(0.0, 1.0)

    def _labels(self, y: torch.Tensor | None, batch: int) -> np.ndarray:
        """Labels (B,) int64 (or one label for the whole batch) -> the graphs' label array."""
        if y is None:
            raise ValueError("a conditional model needs labels y (B,) to encode and decode")
        y = torch.as_tensor(y).detach().cpu().long().reshape(-1)
        if y.numel() == 1 and batch > 1:
            y = y.expand(batch)
        if y.numel() != batch or (batch and (y.min() < 0 or y.max() >= self.num_classes)):
            raise ValueError(f"labels must be {batch} integers in [0, {self.num_classes})")
        if self.spec.label == "index":
            return np.ascontiguousarray(y.numpy())
        return np.eye(self.num_classes, dtype=np.float32)[y.numpy()]

    def run(self, graph: str, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        """Run graph "encoder" or "decoder" on arrays with a leading batch dimension; returns its
        outputs in model.json's order. Batches run in chunks of about MAX_RUN_FLOATS image floats."""
        session = self.sessions[graph]
        ports = graph_ports(self.spec, graph)[1]
        names = [p.name for p in ports]
        n = len(next(iter(feeds.values())))
        if n == 0:  # some graphs cannot run an empty batch (a Reshape with -1); nothing to compute
            return [np.zeros((0, *p.dims[1:]), np.float32) for p in ports]
        step = max(1, MAX_RUN_FLOATS // math.prod(self.spec.image_shape))
        parts = []
        for start in range(0, n, step):
            chunk = {k: v[start : start + step] for k, v in feeds.items()}
            try:
                parts.append(session.run(names, chunk))
            except Exception as exc:  # onnxruntime's own error types
                path = self.folder / GRAPH_FILES[graph]
                raise ForeignModelError(f"{path}: onnxruntime failed to run it: {_short(exc)}") from exc
        return [np.concatenate([p[i] for p in parts]) if len(parts) > 1 else parts[0][i] for i in range(len(names))]

    # -- the canonical API
    def encode(self, x: torch.Tensor, y: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """x (B, C, H, W) in [0, 1] -> (mu (B, z), logvar (B, z) or None for a deterministic encoder)."""
        feeds = {self.spec.encoder_inputs[0]: self._image_in(x)}
        if self.conditional:
            feeds[self.spec.encoder_inputs[1]] = self._labels(y, len(x))
        outs = [torch.from_numpy(np.asarray(o, np.float32)) for o in self.run("encoder", feeds)]
        return outs[0], (outs[1] if self.is_variational else None)

    def decode_raw(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """z (B, z) -> the decoder's output (B, C, H, W) in graph units: logits, or the image in value_range."""
        feeds = {self.spec.decoder_inputs[0]: np.ascontiguousarray(z.detach().to("cpu", torch.float32).numpy())}
        if self.conditional:
            feeds[self.spec.decoder_inputs[1]] = self._labels(y, len(z))
        return self._image_out(self.run("decoder", feeds)[0])

    def decode(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """z (B, z) -> images (B, C, H, W) in [0, 1], the decoder's mean."""
        return self._to_unit(self.decode_raw(z, y))

    def recon_nll(self, x: torch.Tensor, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """-log p(x | z) per example (B,) in nats, under model.json's likelihood (and fixed σ)."""
        raw = self.decode_raw(z, y)
        x = x.detach().to("cpu", torch.float32)
        log_sigma = torch.tensor(math.log(self.spec.sigma)) if self.spec.sigma else None
        if self.spec.decoder == "logits":
            return losses.reconstruction_nll(raw, x, self.likelihood, log_sigma)
        p = self._to_unit(raw)
        if self.likelihood == "bernoulli":
            return F.binary_cross_entropy(p, x, reduction="none").flatten(1).sum(1)
        # N(x; p, σ²) per pixel, as core.models.losses.reconstruction_nll writes it for a logits decoder.
        d = x[0].numel()
        sq = (p - x).pow(2).flatten(1).sum(1)
        return sq / (2 * self.spec.sigma**2) + d * (log_sigma + 0.5 * math.log(2 * math.pi))


# ---------------------------------------------------------------- loading


def load_onnx_model(folder: str | os.PathLike, threads: int = 1, probe: bool = True) -> OnnxModel:
    """Load and validate a model folder (model.json, encoder.onnx, decoder.onnx).

    threads: onnxruntime intra-op threads per session (1 suits a server where many sessions
    share the CPU). probe: run the probe (the default; only tests switch it off).
    Raises ForeignModelError naming the file and the problem.
    """
    folder = Path(folder)
    spec = read_spec(folder)
    sessions, external = {}, {}
    for graph, name in GRAPH_FILES.items():
        path = folder / name
        proto = parse_graph(path)
        external[graph] = external_files(proto, path)
        del proto  # the session keeps its own copy; a large protobuf need not stay twice in memory
        _check_hash(path, spec)
        sessions[graph] = _session(path, threads)
        inputs, outputs = graph_ports(spec, graph)
        check_ports(path, "input", inputs, sessions[graph].get_inputs())
        check_ports(path, "output", outputs, sessions[graph].get_outputs())
    model = OnnxModel(folder, spec, sessions, external)
    if probe:
        probe_model(model)
    return model


def probe_model(model: OnnxModel) -> None:
    """Encode a mid-grey batch of 2 and decode two zero codes: every output must have its
    declared shape and finite values, and an image output must lie near its value range."""
    spec, b = model.spec, PROBE_BATCH
    feeds = {
        "encoder": {spec.encoder_inputs[0]: model._image_in(torch.full((b, *spec.image_shape), 0.5))},
        "decoder": {spec.decoder_inputs[0]: np.zeros((b, spec.latent_dim), np.float32)},
    }
    if spec.conditional:
        label = model._labels(torch.zeros(b, dtype=torch.int64), b)
        feeds["encoder"][spec.encoder_inputs[1]] = label
        feeds["decoder"][spec.decoder_inputs[1]] = label
    what = {"encoder": "encoding a mid-grey batch of 2", "decoder": "decoding zero codes, batch 2"}
    for graph in GRAPH_FILES:
        path = model.folder / GRAPH_FILES[graph]
        outs = model.run(graph, feeds[graph])
        for port, out in zip(graph_ports(spec, graph)[1], outs, strict=True):
            want = (b, *port.dims[1:])
            if tuple(np.shape(out)) != want:
                raise ForeignModelError(
                    f"{path}: {what[graph]} gave output {port.name!r} ({port.role}) of shape "
                    f"{tuple(np.shape(out))}; model.json needs {want} ({port.what})"
                )
            if not np.isfinite(out).all():
                raise ForeignModelError(f"{path}: {what[graph]} gave NaN or inf in output {port.name!r} ({port.role})")
        if graph == "decoder":
            _check_range(model, outs[0])


def _check_range(model: OnnxModel, out: np.ndarray) -> None:
    """An image output far outside value_range means model.json declares the wrong range."""
    if model.spec.decoder != "image":
        return
    lo, hi = model.spec.value_range
    slack = 0.5 * (hi - lo)
    if out.min() < lo - slack or out.max() > hi + slack:
        raise ForeignModelError(
            f"{model.folder / GRAPH_FILES['decoder']}: decoding zero codes gave values in "
            f"[{out.min():.3g}, {out.max():.3g}], far outside model.json's value_range [{lo:g}, {hi:g}]"
        )
