"""Into and out of the ONNX model format (:mod:`core.formats.foreign`).

Out: :func:`export_model` turns any ``torch.nn.Module`` with ``encode`` and ``decode`` into a
model folder (``encoder.onnx``, ``decoder.onnx``, ``model.json``) with torch's exporter
(``torch.onnx.export(..., dynamo=True)``, a dynamic batch dimension), loads the folder back with
:func:`core.formats.onnx_model.load_onnx_model` and checks it against the module on random inputs;
:func:`export_checkpoint` does the same for one of our checkpoints. In:
:func:`import_folder` validates a folder and copies it into the user's models with a model
card measured on a data set; :func:`import_files` does the same for files held in memory (an
upload).

Every write goes to a hidden temporary folder beside the destination and is renamed into
place once complete and checked, so a model folder is never half-written, and a folder that
disagrees with torch by more than :data:`TOLERANCE` is removed, not left behind.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import math
import os
import shutil
import tempfile
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import torch
import torch.nn as nn
import torch.nn.functional as F

from core.data.registry import Dataset, fit_images, is_user_data
from core.formats.checkpoints import NAME_RE, Checkpoint, check_name, load_checkpoint, user_dir
from core.formats.foreign import (
    DECODER_FILE,
    ENCODER_FILE,
    GRAPH_FILES,
    MAX_GRAPH_BYTES,
    MAX_SPEC_BYTES,
    SPEC_FILE,
    ForeignModelError,
    OnnxSpec,
)
from core.formats.onnx_model import OnnxModel, load_onnx_model
from core.models.config import REAL_VALUED
from core.models.evaluate import measure_card
from core.models.networks import AutoEncoder

TOLERANCE = 1e-4  # max abs difference between the ONNX model and torch (images in [0, 1], codes)
CHECK_BATCH = 8  # random inputs of the numerical check


class ExportError(ForeignModelError):
    """An export or import failed; the message says which file or step and why."""


@dataclass(frozen=True)
class ExportReport:
    """What an export wrote and how closely the ONNX model follows torch.

    decode_diff: max |ONNX - torch| over decoded images in [0, 1] of CHECK_BATCH random codes.
    encode_diff: max |ONNX - torch| over mu and logvar (or z) of CHECK_BATCH random images.
    """

    folder: Path
    spec: OnnxSpec
    decode_diff: float
    encode_diff: float

    def __str__(self) -> str:
        return (
            f"wrote {self.folder} ({ENCODER_FILE}, {DECODER_FILE}, {SPEC_FILE}); max abs difference against "
            f"torch: decode {self.decode_diff:.1e}, encode {self.encode_diff:.1e} (limit {TOLERANCE:.0e})"
        )


# ---------------------------------------------------------------- the two graphs


class EncodeGraph(nn.Module):
    """What encoder.onnx computes: x (B, C, H, W) in [0, 1] [, y (B,) int64] -> (mu, logvar), each
    (B, z), when ``module.encode`` returns a pair, else the code z (B, z)."""

    def __init__(self, module: nn.Module, conditional: bool):
        super().__init__()
        self.module, self.conditional = module, conditional

    def forward(
        self, x: torch.Tensor, y: torch.Tensor | None = None
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        out = self.module.encode(x, y) if self.conditional else self.module.encode(x)
        if isinstance(out, tuple | list):
            return (out[0], out[1]) if len(out) > 1 and out[1] is not None else out[0]
        return out


class DecodeGraph(nn.Module):
    """What decoder.onnx computes: z (B, z) [, y (B,) int64] -> ``module.decode(z[, y])`` (B, C, H, W)."""

    def __init__(self, module: nn.Module, conditional: bool):
        super().__init__()
        self.module, self.conditional = module, conditional

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return self.module.decode(z, y) if self.conditional else self.module.decode(z)


class Reference(Protocol):
    """What the numerical check needs of the torch side: the protocol's encode and decode."""

    def encode(self, x: torch.Tensor, y: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]: ...

    def decode(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor: ...


class _TorchReference:
    """The module seen through the model protocol, for the numerical check: decode gives the
    image in [0, 1] (the sigmoid of logits for a decoder that returns logits)."""

    def __init__(self, module: nn.Module, conditional: bool, logits: bool):
        self.encoder, self.decoder = EncodeGraph(module, conditional), DecodeGraph(module, conditional)
        self.logits = logits

    def encode(self, x: torch.Tensor, y: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        out = self.encoder(x, y)
        return out if isinstance(out, tuple) else (out, None)

    def decode(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        out = self.decoder(z, y)
        return torch.sigmoid(out) if self.logits else out


@contextmanager
def _eval_mode(module: nn.Module) -> Iterator[None]:
    """Export in eval mode (dropout off, batch-norm statistics fixed), then restore the module's mode."""
    was = module.training
    module.eval()
    try:
        yield
    finally:
        module.train(was)


def _examples(spec: OnnxSpec, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Random images x (n, C, H, W) in [0, 1], codes z (n, z) ~ N(0, I), labels y (n,) or None."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(n, *spec.image_shape, generator=gen)
    z = torch.randn(n, spec.latent_dim, generator=gen)
    y = torch.randint(0, spec.num_classes, (n,), generator=gen) if spec.conditional else None
    return x, z, y


def _export_graph(graph: nn.Module, args: tuple, names: tuple[list[str], list[str]], path: Path) -> None:
    """torch.onnx.export with the dynamo exporter, one file (no external data), dynamic batch."""
    batch = torch.export.Dim("batch")
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                graph,
                args,
                str(path),
                dynamo=True,
                input_names=names[0],
                output_names=names[1],
                dynamic_shapes=tuple({0: batch} for _ in args),
                external_data=False,
                verbose=False,
            )
    except Exception as exc:  # torch.export and the exporter raise many types
        text = " ".join(str(exc).split())[:400]
        raise ExportError(f"{path.name}: torch.onnx.export failed: {type(exc).__name__}: {text}") from exc


def compare(reference: Reference, model: OnnxModel, seed: int = 0, n: int = CHECK_BATCH) -> tuple[float, float]:
    """Max abs differences (decode, encode) between a torch model seen through the protocol
    (``reference``: encode -> (mu, logvar|None), decode -> images in [0, 1]) and ``model`` on
    n random codes and images."""
    x, z, y = _examples(model.spec, n, seed)
    with torch.no_grad():
        decode_diff = (reference.decode(z, y).float() - model.decode(z, y)).abs().max().item()
        want, got = reference.encode(x, y), model.encode(x, y)
        if (want[1] is None) != (got[1] is None):
            raise ExportError(f"{model.folder}: the ONNX encoder and torch disagree on returning logvar")
        pairs = [(w, g) for w, g in zip(want, got, strict=True) if w is not None]
        encode_diff = max((w.float() - g).abs().max().item() for w, g in pairs)
    return decode_diff, encode_diff


# ---------------------------------------------------------------- writing a folder


def _sha256(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _write_json(path: Path, meta: dict) -> None:
    try:
        text = json.dumps(meta, indent=2, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ExportError(f"{path}: cannot be written: {exc}") from exc
    with open(path, "w", encoding="utf-8") as f:
        f.write(text + "\n")
        f.flush()
        os.fsync(f.fileno())


def _staging(dest: Path) -> Path:
    """A hidden temporary folder beside ``dest`` (listings skip it); refuses a taken ``dest``."""
    if dest.exists():
        raise ExportError(f"{dest}: already exists; choose another folder (nothing is overwritten)")
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".tmp"))
    except OSError as exc:
        raise ExportError(f"{dest.parent}: cannot write there: {exc.strerror or exc}") from exc


def _commit(tmp: Path, dest: Path) -> None:
    """Rename the finished folder into place (0755, like any folder); a name taken meanwhile fails."""
    os.chmod(tmp, 0o755)  # mkdtemp makes 0700 folders
    if dest.exists():
        raise ExportError(f"{dest}: already exists; choose another folder (nothing is overwritten)")
    try:
        os.rename(tmp, dest)
    except OSError as exc:
        raise ExportError(f"{dest}: cannot be created: {exc.strerror or exc}") from exc


def _export(
    graphs: tuple[nn.Module, nn.Module], dest: Path, meta: dict, reference: Reference, tolerance: float
) -> ExportReport:
    """Export both graphs and the JSON into a staging folder, load it back, compare with
    ``reference``, and rename it to ``dest`` only when both differences are within ``tolerance``."""
    spec = OnnxSpec.from_dict(meta, f"{dest / SPEC_FILE} (to be written)")
    x, z, y = _examples(spec, 2, seed=1)
    tmp = _staging(dest)
    try:
        _export_graph(graphs[0], (x,) if y is None else (x, y), _names(spec, "encoder"), tmp / ENCODER_FILE)
        _export_graph(graphs[1], (z,) if y is None else (z, y), _names(spec, "decoder"), tmp / DECODER_FILE)
        meta = {**meta, "sha256": {f: _sha256(tmp / f) for f in GRAPH_FILES.values()}}
        _write_json(tmp / SPEC_FILE, meta)
        decode_diff, encode_diff = compare(reference, load_onnx_model(tmp))
        if not max(decode_diff, encode_diff) <= tolerance:
            raise ExportError(
                f"{dest}: the exported model disagrees with torch (max abs difference: decode {decode_diff:.2e}, "
                f"encode {encode_diff:.2e}; limit {tolerance:.0e}); nothing was written"
            )
        _commit(tmp, dest)
    except ForeignModelError as exc:  # name the destination, not the staging folder
        raise type(exc)(str(exc).replace(str(tmp), str(dest))) from exc
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # gone after the rename; the leftovers of a failure
    return ExportReport(dest, OnnxSpec.from_dict(meta, dest / SPEC_FILE), decode_diff, encode_diff)


def _names(spec: OnnxSpec, graph: str) -> tuple[list[str], list[str]]:
    if graph == "encoder":
        return list(spec.encoder_inputs), list(spec.encoder_outputs)
    return list(spec.decoder_inputs), list(spec.decoder_outputs)


def _check_module(module: nn.Module, image_shape: tuple[int, int, int], latent_dim: int, num_classes: int) -> str:
    """Run ``module.encode`` on 2 random images and ``module.decode`` on their codes: returns
    "gaussian" for (mu, logvar), "deterministic" for z; ExportError when a shape is wrong."""
    x = torch.rand(2, *image_shape, generator=torch.Generator().manual_seed(0))
    y = torch.zeros(2, dtype=torch.int64) if num_classes else None
    with torch.no_grad():
        try:
            out = EncodeGraph(module, num_classes > 0)(x, y)
        except Exception as exc:  # the module's own error, e.g. a matrix that does not fit the image
            raise ExportError(f"module.encode fails on images of shape {tuple(x.shape)}: {exc}") from exc
        codes = out if isinstance(out, tuple) else (out,)
        for c in codes:
            if not isinstance(c, torch.Tensor) or tuple(c.shape) != (2, latent_dim):
                got = tuple(c.shape) if isinstance(c, torch.Tensor) else type(c).__name__
                raise ExportError(
                    f"module.encode on 2 images gave {got}; latent_dim {latent_dim} needs (2, {latent_dim})"
                )
        try:
            image = DecodeGraph(module, num_classes > 0)(codes[0], y)
        except Exception as exc:
            raise ExportError(f"module.decode fails on codes of shape {tuple(codes[0].shape)}: {exc}") from exc
    if not isinstance(image, torch.Tensor) or tuple(image.shape) != (2, *image_shape):
        got = tuple(image.shape) if isinstance(image, torch.Tensor) else type(image).__name__
        raise ExportError(
            f"module.decode on 2 codes gave {got}; image_shape {list(image_shape)} needs (2, *image_shape)"
        )
    return "gaussian" if isinstance(out, tuple) else "deterministic"


def export_model(
    module: nn.Module,
    folder: str | os.PathLike,
    *,
    image_shape: tuple[int, int, int],
    latent_dim: int,
    title: str,
    num_classes: int = 0,
    likelihood: str = "bernoulli",
    sigma: float | None = None,
    decoder: str = "image",
    dataset: str | None = None,
    extra: dict | None = None,
    tolerance: float = TOLERANCE,
) -> ExportReport:
    """Export ``module`` to the model folder ``folder`` (which must not exist) and check it.

    module: ``encode(x) -> (mu, logvar)`` or ``-> z`` and ``decode(z) -> image`` for x (B, C, H, W)
        in [0, 1] and z (B, latent_dim); with ``num_classes`` > 0 both take a label y (B,) int64
        as their second argument. decode returns the image in [0, 1] (``decoder="image"``) or
        logits whose sigmoid is the image (``decoder="logits"``).
    likelihood: "bernoulli", or "gaussian" with the decoder's fixed ``sigma`` (image units).
    dataset: the data set it was trained on, if one of ours ("mnist"); extra: more JSON fields.
    Raises ExportError (nothing is written) when the export fails or the ONNX model differs from
    the module by more than ``tolerance``.
    """
    conditional = num_classes > 0
    with _eval_mode(module):
        kind = _check_module(module, tuple(image_shape), latent_dim, num_classes)
        meta = {
            "format": "latentlab-onnx",
            "format_version": 1,
            "title": title,
            "latent_dim": latent_dim,
            "image_shape": list(image_shape),
            "layout": "CHW",
            "value_range": [0, 1],
            "encoder": kind,
            "decoder": decoder,
            "likelihood": likelihood,
            "sigma": sigma,
            "num_classes": num_classes,
            "label": "index",
            "encoder_inputs": ["x", "y"] if conditional else ["x"],
            "encoder_outputs": ["mu", "logvar"] if kind == "gaussian" else ["z"],
            "decoder_inputs": ["z", "y"] if conditional else ["z"],
            "decoder_outputs": ["logits" if decoder == "logits" else "image"],
            "dataset": dataset,
            **(extra or {}),
        }
        graphs = (EncodeGraph(module, conditional), DecodeGraph(module, conditional))
        reference = _TorchReference(module, conditional, logits=decoder == "logits")
        return _export(graphs, Path(folder), meta, reference, tolerance)


# ---------------------------------------------------------------- our own checkpoints


class _CheckpointGraphs(nn.Module):
    """A shipped-family model with export-friendly ``encode`` / ``decode``: the label's one-hot is
    taken inside the graph without AutoEncoder's Python-side label checks (which torch.export
    cannot trace), and decode returns logits, so the Bernoulli NLL stays exact. The numerical
    check compares the result with the model's own ``encode`` and ``decode``."""

    def __init__(self, model: AutoEncoder):
        super().__init__()
        self.model = model

    def _onehot(self, y: torch.Tensor | None, like: torch.Tensor) -> torch.Tensor | None:
        return None if y is None else F.one_hot(y, self.model.num_classes).to(like.dtype)

    def encode(self, x: torch.Tensor, y: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        m = self.model
        h = m.encoder(x, self._onehot(y, x))
        mu = m.to_mu(h)
        return (mu, m.to_logvar(h).clamp(-18.0, 10.0)) if m.is_variational else (mu, None)

    def decode(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        out = self.model.decoder(z, self._onehot(y, z))
        # a gated AE's decoder draws its image, then its gate (which needs the input): the image only
        return out[:, : self.model.image_shape[0]] if self.model.config.input_gate else out


def export_checkpoint(
    checkpoint: str | os.PathLike | Checkpoint, folder: str | os.PathLike, tolerance: float = TOLERANCE
) -> ExportReport:
    """Export one of our checkpoints (a path, or a loaded :class:`Checkpoint`) to a model folder,
    with its title, data set and model card; checked against the torch model's own encode and
    decode. Raises CheckpointError / ExportError with a message naming the file."""
    ckpt = checkpoint if isinstance(checkpoint, Checkpoint) else load_checkpoint(checkpoint)
    model, cfg = ckpt.model.eval(), ckpt.model.config
    if cfg.likelihood == REAL_VALUED:  # standardised features: no image, no value range to give
        raise ExportError(f"{ckpt.name} models the rows of a table; latentlab-onnx folders hold image models")
    sigma = math.exp(model.log_sigma.item()) if cfg.likelihood == "gaussian" else None
    meta = {
        "format": "latentlab-onnx",
        "format_version": 1,
        "title": ckpt.meta.get("title") or f"{cfg.kind.upper()} {cfg.arch}, latent {cfg.latent_dim}",
        "latent_dim": cfg.latent_dim,
        "image_shape": list(cfg.image_shape),
        "layout": "CHW",
        "value_range": [0, 1],
        "encoder": "gaussian" if cfg.is_variational else "deterministic",
        "decoder": "logits",
        "likelihood": cfg.likelihood,
        "sigma": sigma,
        "num_classes": cfg.num_classes,
        "label": "index",
        "encoder_inputs": ["x", "y"] if cfg.conditional else ["x"],
        "encoder_outputs": ["mu", "logvar"] if cfg.is_variational else ["z"],
        "decoder_inputs": ["z", "y"] if cfg.conditional else ["z"],
        "decoder_outputs": ["logits"],
        "dataset": ckpt.meta.get("dataset", {}).get("name"),
        "card": ckpt.meta.get("card") or {},
        "source": {"checkpoint": ckpt.name, "weights_sha256": ckpt.meta.get("weights_sha256"), "kind": cfg.kind},
    }
    adaptor = _CheckpointGraphs(model)
    graphs = (EncodeGraph(adaptor, cfg.conditional), DecodeGraph(adaptor, cfg.conditional))
    with torch.no_grad():
        return _export(graphs, Path(folder), meta, model, tolerance)


# ---------------------------------------------------------------- importing a folder


def model_card(model: OnnxModel, data: Dataset, seed: int = 0) -> dict:
    """Test loss, reconstruction and KL in nats and active units of ``model`` on ``data``'s test
    split (:func:`core.models.evaluate.measure_card`), the images fitted to the model's shape first."""
    x = fit_images(data.test_x, model.image_shape)
    y = None
    if model.conditional:
        if data.test_y is None or data.num_classes != model.num_classes:
            raise ExportError(
                f"{model.folder / SPEC_FILE}: the model takes {model.num_classes} classes; {data.name} has "
                f"{data.num_classes or 'no labels'}: choose another data set"
            )
        y = data.test_y
    card = measure_card(model, x, y, seed=seed)
    if not all(math.isfinite(v) for v in card.values() if isinstance(v, float)):
        raise ExportError(f"{model.folder}: measuring the model on {data.name} gave NaN or inf: {card}")
    note = data.source_note
    if tuple(data.image_shape) != tuple(model.image_shape):
        note += f", fitted to {'×'.join(map(str, model.image_shape))}"
    measured = _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
    return {**card, "dataset": data.name, "data_source": note, "measured": measured}


def check_free(root: str | os.PathLike, name: str) -> None:
    """ExportError when ``root`` already holds a model called ``name`` (a folder or a checkpoint)."""
    root = Path(root)
    taken = [p for p in (root / name, root / f"{name}.json", root / f"{name}.safetensors") if p.exists()]
    if taken:
        raise ExportError(f"a model named {name!r} already exists in {root} ({taken[0].name}); choose another name")


def _finish(tmp: Path, model: OnnxModel, dataset: Dataset | None, origin: str) -> None:
    """Write the staged copy's model.json: the model's JSON, a card measured on ``dataset`` (if
    given), the copied graphs' SHA-256 and where the model came from."""
    meta = dict(model.spec.meta)
    if dataset is not None:
        meta["card"] = model_card(model, dataset)
        if is_user_data(dataset.name) or not meta.get("dataset"):
            meta["dataset"] = dataset.name  # your own folder becomes the model's data set: every page reads it
    meta["sha256"] = {f: _sha256(tmp / f) for f in GRAPH_FILES.values()}
    meta["imported"] = {"from": origin, "at": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")}
    _write_json(tmp / SPEC_FILE, meta)


def import_folder(
    src: str | os.PathLike,
    dest_root: str | os.PathLike | None = None,
    name: str | None = None,
    dataset: Dataset | None = None,
) -> Path:
    """Validate the model folder ``src`` and copy it to ``dest_root/NAME`` (default: the user's
    models, :func:`core.formats.checkpoints.user_dir`); returns the new folder.

    name: default the source folder's name; a taken name is an error (nothing is overwritten).
    dataset: when given, a model card measured on its test split goes into the copy's
    model.json under "card". The copy is made in a hidden temporary folder and renamed into
    place, so nothing is written when validation or measuring fails. Only the files the model
    reads are copied (model.json, the graphs, their external data).
    """
    src = Path(src)
    model = load_onnx_model(src)
    name = check_name(name or src.resolve().name)
    root = Path(dest_root) if dest_root is not None else user_dir()
    check_free(root, name)
    tmp = _staging(root / name)
    try:
        for rel in model.files():
            if rel != SPEC_FILE:
                (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(src / rel, tmp / rel)
        _finish(tmp, model, dataset, str(src.resolve()))
        _commit(tmp, root / name)
    except OSError as exc:
        raise ExportError(f"cannot copy {src} into {root}: {exc.strerror or exc}") from exc
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return root / name


def import_files(
    files: Mapping[str, bytes],
    name: str,
    dest_root: str | os.PathLike | None = None,
    dataset: Dataset | None = None,
) -> Path:
    """Install a model from files held in memory (an upload): file name -> bytes, at least
    model.json, encoder.onnx and decoder.onnx, plus any external data files they name.

    The files are written into a hidden staging folder in ``dest_root`` (default: the user's
    models), validated there exactly like a folder (messages name ``NAME/FILE``), given a model
    card on ``dataset`` if one is given, and renamed to ``dest_root/NAME``; files the model does
    not read are dropped. Nothing stays behind when anything fails.
    """
    name = check_name(name)
    root = Path(dest_root) if dest_root is not None else user_dir()
    check_free(root, name)
    for fname, data in files.items():
        if not isinstance(fname, str) or not NAME_RE.match(fname) or ".." in fname:
            raise ExportError(f"{fname!r}: not a plain file name (letters, digits, '.', '_', '-')")
        limit = MAX_SPEC_BYTES if fname == SPEC_FILE else MAX_GRAPH_BYTES
        if len(data) > limit:
            raise ExportError(f"{name}/{fname}: {len(data):,} bytes is over the limit of {limit:,} bytes")
    tmp = _staging(root / name)
    try:
        for fname, data in files.items():
            (tmp / fname).write_bytes(data)
        model = load_onnx_model(tmp)
        for extra in set(files) - set(model.files()):
            (tmp / extra).unlink()
        _finish(tmp, model, dataset, "upload")
        _commit(tmp, root / name)
    except ForeignModelError as exc:  # name the upload, not the staging folder
        raise type(exc)(str(exc).replace(str(tmp), name)) from exc
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return root / name
