"""The foreign model format: a folder holding ``encoder.onnx``, ``decoder.onnx`` and ``model.json``.

A model built anywhere (PyTorch, Keras, JAX) joins Latent Lab as data, never as code: two ONNX
graphs, run by onnxruntime (:mod:`core.formats.onnx_model`), and a small JSON that says how to read
them. This module is the JSON's half, torch-free like :mod:`core.models.config`, so that listing a
folder of models stays fast: the fields and their limits (:class:`OnnxSpec`), reading and
validating ``model.json`` (:func:`read_spec`), the cheap checks of a graph file's size and
first bytes (:func:`check_graph_file`), and listing a folder of model folders
(:func:`list_foreign`). ``docs/own-model.md`` describes every field for users.

A model's latent is a flat code (``latent_dim``; :mod:`core.formats.onnx_model` runs it) or a
spatial map (``latent_shape`` [C, h, w], a latent-diffusion VAE's; :mod:`core.formats.spatial` runs
it). :func:`read_spec` accepts the spatial kind only when its caller asks, so a loader of flat codes
never mistakes a map for one.

Every problem raises :class:`ForeignModelError` (a :class:`core.formats.checkpoints.CheckpointError`,
so the handlers that catch a bad checkpoint catch a bad foreign model) with one message that
names the file and what is wrong.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

from core.formats.checkpoints import CheckpointError, read_json_file

FORMAT = "latentlab-onnx"
FORMAT_VERSION = 1
SPEC_FILE = "model.json"
ENCODER_FILE = "encoder.onnx"
DECODER_FILE = "decoder.onnx"
GRAPH_FILES = {"encoder": ENCODER_FILE, "decoder": DECODER_FILE}

MAX_GRAPH_BYTES = 500_000_000  # one graph: its .onnx file plus any external data files it names
MAX_SPEC_BYTES = 1_000_000
MAX_LATENT = 1024
MAX_LATENT_CHANNELS = 256  # a spatial latent's channels: SD 4, SD3 and FLUX 16, DC-AE up to 128
MAX_SIDE = 1024  # image height and width
MAX_CLASSES = 1000
MAX_RANGE = 65_535.0  # |value_range| bound: [0, 255] and [-1, 1] are the usual ones
MAX_TITLE = 200
MAX_SIGMA = 10.0

CHANNELS = (1, 3)
LAYOUTS = ("CHW", "HWC")  # the graphs' image tensors are (B, C, H, W) or (B, H, W, C)
ENCODERS = ("gaussian", "deterministic")  # (mu, logvar) or a code z
DECODER_OUTPUTS = ("image", "logits")  # an image in value_range, or logits whose sigmoid is the image
LIKELIHOODS = ("bernoulli", "gaussian")
LABELS = ("index", "onehot")  # a conditional model's label input: int64 (B,) or float32 (B, K)


class ForeignModelError(CheckpointError):
    """A foreign model folder cannot be used; the message names the file and the cause."""


@dataclass(frozen=True)
class OnnxSpec:
    """What ``model.json`` says about the two graphs (see docs/own-model.md, field by field).

    Images at the protocol's side are always (B, C, H, W) floats in [0, 1]; ``layout`` and
    ``value_range`` say what the graphs take and give, and the model converts at the boundary.
    Input and output names are per graph, in a fixed order: encoder inputs (image[, label]),
    encoder outputs (mu, logvar) for a gaussian encoder or (z,) for a deterministic one,
    decoder inputs (z[, label]) and decoder outputs (image-or-logits,).

    A spatial model has ``latent_shape`` (C, h, w) instead of a flat code (``latent_dim`` is then 0):
    its encoder's outputs are (mean, logvar) or (latent,), each (B, C, h, w) in ``layout``, at
    ``image_shape``'s size; H / h = W / w is its downsampling factor. ``scaling_factor`` and
    ``shift_factor`` (None when model.json gives none) are the diffusers convention's.
    """

    title: str
    latent_dim: int  # 0 for a spatial model
    image_shape: tuple[int, int, int]  # (C, H, W)
    layout: str = "CHW"
    value_range: tuple[float, float] = (0.0, 1.0)
    encoder: str = "gaussian"
    decoder: str = "image"
    likelihood: str = "bernoulli"
    sigma: float | None = None  # the gaussian decoder's fixed σ, in [0, 1] image units
    num_classes: int = 0
    label: str = "index"
    encoder_inputs: tuple[str, ...] = ("x",)
    encoder_outputs: tuple[str, ...] = ("mu", "logvar")
    decoder_inputs: tuple[str, ...] = ("z",)
    decoder_outputs: tuple[str, ...] = ("image",)
    dataset: str | None = None  # the data set it was trained on, if one of ours
    latent_shape: tuple[int, int, int] | None = None  # (C, h, w) of a spatial latent; None for a flat code
    scaling_factor: float | None = None  # a spatial latent's: latents = (mean - shift_factor) * scaling_factor
    shift_factor: float | None = None
    meta: dict = field(default_factory=dict, compare=False, hash=False, repr=False)  # the whole JSON

    @property
    def conditional(self) -> bool:
        return self.num_classes > 0

    @property
    def is_variational(self) -> bool:
        return self.encoder == "gaussian"

    @property
    def is_spatial(self) -> bool:
        return self.latent_shape is not None

    @property
    def downsample(self) -> int:
        """H / h of a spatial model (1 for a flat one)."""
        return self.image_shape[1] // self.latent_shape[1] if self.latent_shape else 1

    def to_dict(self) -> dict:
        """The JSON fields, in the documented order (``meta``'s extra fields such as ``card`` follow)."""
        size = {"latent_shape": list(self.latent_shape)} if self.is_spatial else {"latent_dim": self.latent_dim}
        out = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "title": self.title,
            **size,
            "image_shape": list(self.image_shape),
            "layout": self.layout,
            "value_range": list(self.value_range),
            "encoder": self.encoder,
            "decoder": self.decoder,
            "likelihood": self.likelihood,
            "sigma": self.sigma,
            "num_classes": self.num_classes,
            "label": self.label,
            "encoder_inputs": list(self.encoder_inputs),
            "encoder_outputs": list(self.encoder_outputs),
            "decoder_inputs": list(self.decoder_inputs),
            "decoder_outputs": list(self.decoder_outputs),
            "dataset": self.dataset,
        }
        if self.is_spatial:
            out |= {"scaling_factor": self.scaling_factor, "shift_factor": self.shift_factor}
        return out | {k: v for k, v in self.meta.items() if k not in out}

    @classmethod
    def from_dict(cls, meta: object, where: str | os.PathLike = SPEC_FILE, allow_spatial: bool = False) -> OnnxSpec:
        """Validate a parsed ``model.json``; ForeignModelError names ``where`` and the field. A spatial
        ``latent_shape`` is refused unless ``allow_spatial`` (its caller can run a spatial model)."""
        w = str(where)
        if not isinstance(meta, dict):
            raise ForeignModelError(f"{w}: must hold a JSON object {{...}}, not {type(meta).__name__}")
        if meta.get("format") != FORMAT:
            raise ForeignModelError(f"{w}: not a Latent Lab ONNX model (field 'format' must be {FORMAT!r})")
        if meta.get("format_version") != FORMAT_VERSION:
            raise ForeignModelError(f"{w}: unsupported format_version {meta.get('format_version')!r}; this is 1")
        encoder = _choice(meta, "encoder", ENCODERS, w)
        num_classes = _int(meta, "num_classes", 0, MAX_CLASSES, w, default=0)
        if num_classes == 1:
            raise ForeignModelError(f"{w}: num_classes is 1; use 0 for a model without labels, or 2 or more")
        extra = 1 if num_classes else 0
        image_shape = _image_shape(meta, w)
        latent = _latent(meta, image_shape, num_classes, w, allow_spatial)
        spatial = "latent_shape" in latent  # its likelihood is optional: the pages measure PSNR and SSIM
        return cls(
            title=_text(meta, "title", w),
            image_shape=image_shape,
            **latent,
            layout=_choice(meta, "layout", LAYOUTS, w, default="CHW"),
            value_range=_value_range(meta, w),
            encoder=encoder,
            decoder=_choice(meta, "decoder", DECODER_OUTPUTS, w),
            likelihood=_choice(meta, "likelihood", LIKELIHOODS, w, default="bernoulli" if spatial else ...),
            sigma=_sigma(meta, w),
            num_classes=num_classes,
            label=_choice(meta, "label", LABELS, w, default="index"),
            encoder_inputs=_names(meta, "encoder_inputs", 1 + extra, "image" + (", label" if extra else ""), w),
            encoder_outputs=_names(
                meta, "encoder_outputs", 2 if encoder == "gaussian" else 1, _encoder_roles(encoder), w
            ),
            decoder_inputs=_names(meta, "decoder_inputs", 1 + extra, "z" + (", label" if extra else ""), w),
            decoder_outputs=_names(meta, "decoder_outputs", 1, "image or logits", w),
            dataset=_optional_text(meta, "dataset", w),
            meta=dict(meta),
        )


def _encoder_roles(encoder: str) -> str:
    return "mu, logvar (a gaussian encoder)" if encoder == "gaussian" else "z (a deterministic encoder)"


# ---------------------------------------------------------------- field validators (one message each)


def _require(meta: dict, key: str, where: str, default: object = ...) -> object:
    if key in meta and meta[key] is not None:
        return meta[key]
    if default is not ...:
        return default
    raise ForeignModelError(f"{where}: missing field {key!r}")


def _int(meta: dict, key: str, lo: int, hi: int, where: str, default: object = ...) -> int:
    value = _require(meta, key, where, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ForeignModelError(f"{where}: field {key!r} must be a whole number, got {value!r}")
    if not lo <= value <= hi:
        raise ForeignModelError(f"{where}: field {key!r} is {value:,}; it must be from {lo} to {hi:,}")
    return value


def _choice(meta: dict, key: str, options: tuple[str, ...], where: str, default: object = ...) -> str:
    value = _require(meta, key, where, default)
    if value not in options:
        raise ForeignModelError(f"{where}: field {key!r} is {value!r}; choose one of {', '.join(options)}")
    return value


def _text(meta: dict, key: str, where: str) -> str:
    value = _require(meta, key, where)
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_TITLE:
        raise ForeignModelError(f"{where}: field {key!r} must be a text of 1 to {MAX_TITLE} characters")
    return value.strip()


def _optional_text(meta: dict, key: str, where: str) -> str | None:
    value = meta.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_TITLE:
        raise ForeignModelError(f"{where}: field {key!r} must be a short text or null, got {value!r}")
    return value


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def _image_shape(meta: dict, where: str) -> tuple[int, int, int]:
    value = _require(meta, "image_shape", where)
    ok = isinstance(value, list) and len(value) == 3
    ok = ok and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
    if not ok:
        raise ForeignModelError(f"{where}: field 'image_shape' must be [channels, height, width], got {value!r}")
    c, h, w = value
    if c not in CHANNELS:
        raise ForeignModelError(f"{where}: image_shape has {c} channels; use 1 (grey) or 3 (RGB)")
    if not (1 <= h <= MAX_SIDE and 1 <= w <= MAX_SIDE):
        raise ForeignModelError(f"{where}: image_shape {h}×{w} is outside 1..{MAX_SIDE} pixels per side")
    return (c, h, w)


def _value_range(meta: dict, where: str) -> tuple[float, float]:
    value = _require(meta, "value_range", where, default=[0, 1])
    nums = [_number(v) for v in value] if isinstance(value, list) and len(value) == 2 else [None]
    if None in nums:
        raise ForeignModelError(f"{where}: field 'value_range' must be [low, high], e.g. [0, 1], got {value!r}")
    lo, hi = nums
    if not (lo < hi and max(abs(lo), abs(hi)) <= MAX_RANGE):
        raise ForeignModelError(f"{where}: value_range {value!r} needs low < high within ±{MAX_RANGE:g}")
    return (lo, hi)


def _latent(meta: dict, image_shape: tuple[int, int, int], num_classes: int, where: str, allow_spatial: bool) -> dict:
    """The latent's fields: ``latent_dim`` of a flat code, or ``latent_shape`` and the factors of a spatial map."""
    if meta.get("latent_shape") is None:
        return {"latent_dim": _int(meta, "latent_dim", 1, MAX_LATENT, where)}
    if meta.get("latent_dim") is not None:
        raise ForeignModelError(
            f"{where}: gives both 'latent_dim' and 'latent_shape'; a flat code has latent_dim, a spatial map "
            "latent_shape [channels, height, width], never both"
        )
    if not allow_spatial:
        raise ForeignModelError(
            f"{where}: has a spatial latent_shape, and this takes flat codes (latent_dim) only; a spatial model "
            "opens on the Latent-diffusion VAE page (put its folder in your models' folder, or run "
            "`python -m core explore FOLDER`)"
        )
    if image_shape[0] != 3:
        raise ForeignModelError(
            f"{where}: a spatial latent_shape needs RGB images; image_shape has {image_shape[0]} channel"
        )
    if num_classes:
        raise ForeignModelError(f"{where}: a model with a spatial latent_shape takes no labels; num_classes must be 0")
    return {
        "latent_dim": 0,
        "latent_shape": _latent_shape(meta["latent_shape"], image_shape, where),
        "scaling_factor": _factor(meta, "scaling_factor", where, positive=True),
        "shift_factor": _factor(meta, "shift_factor", where),
    }


def _latent_shape(value: object, image_shape: tuple[int, int, int], where: str) -> tuple[int, int, int]:
    """[C, h, w] with 1..MAX_LATENT_CHANNELS channels and one whole factor f from image (H, W) to (h, w)."""
    if not isinstance(value, list) or len(value) != 3:
        raise ForeignModelError(f"{where}: field 'latent_shape' must be [channels, height, width], got {value!r}")
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        raise ForeignModelError(f"{where}: field 'latent_shape' must hold three whole numbers, got {value!r}")
    c, h, w = value
    if not 1 <= c <= MAX_LATENT_CHANNELS:
        raise ForeignModelError(f"{where}: latent_shape has {c} channels; it must be from 1 to {MAX_LATENT_CHANNELS}")
    _, height, width = image_shape
    if min(h, w) < 1 or height % h or width % w or height // h != width // w:
        raise ForeignModelError(
            f"{where}: latent_shape's {h}×{w} must be image_shape's {height}×{width} divided by one whole factor f "
            f"on both sides (H = f·h and W = f·w; f = 8 for Stable Diffusion's VAE)"
        )
    return (c, h, w)


def _factor(meta: dict, key: str, where: str, positive: bool = False) -> float | None:
    """An optional finite number (positive if asked); None when absent or null."""
    value = meta.get(key)
    if value is None:
        return None
    number = _number(value)
    if number is None or (positive and number <= 0):
        kind = "a positive" if positive else "a finite"
        raise ForeignModelError(f"{where}: field {key!r} must be {kind} number or null, got {value!r}")
    return number


def _sigma(meta: dict, where: str) -> float | None:
    if meta.get("likelihood") != "gaussian":
        return None
    value = meta.get("sigma")
    sigma = _number(value)
    if sigma is None or not 0 < sigma <= MAX_SIGMA:
        raise ForeignModelError(
            f"{where}: a gaussian likelihood needs field 'sigma', the decoder's fixed σ in [0, 1] image "
            f"units, a number in (0, {MAX_SIGMA:g}]; " + ("it is missing" if value is None else f"got {value!r}")
        )
    return sigma


def _names(meta: dict, key: str, count: int, roles: str, where: str) -> tuple[str, ...]:
    value = _require(meta, key, where)
    if not isinstance(value, list) or not all(isinstance(v, str) and 0 < len(v) <= MAX_TITLE for v in value):
        raise ForeignModelError(f"{where}: field {key!r} must be a list of tensor names, got {value!r}")
    if len(value) != count:
        listed = f"{len(value)} name" + ("" if len(value) == 1 else "s")
        raise ForeignModelError(f"{where}: field {key!r} lists {listed}; this model needs {count}: {roles}")
    if len(set(value)) != len(value):
        raise ForeignModelError(f"{where}: field {key!r} names a tensor twice: {value!r}")
    return tuple(value)


# ---------------------------------------------------------------- reading a folder


def read_spec(folder: str | os.PathLike, allow_spatial: bool = False) -> OnnxSpec:
    """Read and validate ``folder/model.json`` (json.loads only; the graphs are not opened); a spatial
    ``latent_shape`` is refused unless ``allow_spatial``."""
    path = Path(folder) / SPEC_FILE
    if not Path(folder).is_dir():
        raise ForeignModelError(f"{folder}: not a folder (a model is a folder with {SPEC_FILE} and two .onnx files)")
    meta = read_json_file(
        path,
        max_bytes=MAX_SPEC_BYTES,
        missing=f"every ONNX model folder needs its {SPEC_FILE}",
        what="a model description",
        error=ForeignModelError,
    )
    return OnnxSpec.from_dict(meta, path, allow_spatial)


def check_graph_file(path: Path) -> int:
    """Check a graph file before any parser sees it: present, not too large, not a known
    non-ONNX kind by its first bytes. Returns its size in bytes.

    An ONNX model is a protobuf ``ModelProto``: binary, usually starting with the field tag
    0x08 (``ir_version``). A pickle (``torch.save`` of old, any ``.pkl``) starts with 0x80, a
    zip archive (``torch.save``, Keras ``.keras``) with ``PK``, HDF5 (Keras ``.h5``) with
    ``\\x89HDF``; a text file decodes as printable UTF-8. None of them is read further.
    """
    if not path.is_file():
        raise ForeignModelError(f"{path}: missing (an ONNX model folder needs {ENCODER_FILE} and {DECODER_FILE})")
    size = path.stat().st_size
    if size > MAX_GRAPH_BYTES:
        raise ForeignModelError(f"{path}: {size:,} bytes is over the limit of {MAX_GRAPH_BYTES:,} bytes per graph")
    with open(path, "rb") as f:
        head = f.read(512)
    if not head:
        raise ForeignModelError(f"{path}: empty file, not an ONNX model")
    kinds = {b"\x80": "a Python pickle", b"PK": "a zip archive (torch.save or Keras file)", b"\x89HDF": "an HDF5 file"}
    for magic, kind in kinds.items():
        if head.startswith(magic):
            raise ForeignModelError(f"{path}: is {kind}, not an ONNX model; refusing to load it")
    if _is_text(head):
        raise ForeignModelError(f"{path}: is a text file, not an ONNX model (export the graph to binary ONNX)")
    return size


def _is_text(head: bytes) -> bool:
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        # A multi-byte character cut at the 512th byte is still text.
        try:
            text = head[:-4].decode("utf-8")
        except UnicodeDecodeError:
            return False
    return all(ch.isprintable() or ch in "\t\n\r" for ch in text)


@dataclass
class ForeignInfo:
    """A listing entry for one model folder, read from its JSON only (cheap)."""

    name: str
    path: Path  # the folder
    spec: OnnxSpec | None = None
    error: str | None = None  # why it cannot be used, if it cannot

    @property
    def ok(self) -> bool:
        return self.error is None


def list_foreign(root: str | os.PathLike) -> list[ForeignInfo]:
    """Every model folder (a subfolder with ``model.json``) in ``root``, sorted by name; broken
    ones say why. Hidden folders (imports in progress) are skipped; the graphs are not opened.
    A spatial model's spec has ``is_spatial`` (the catalog lists it as a latent-diffusion VAE)."""
    root = Path(root)
    if not root.is_dir():
        return []
    infos = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        if not (folder / SPEC_FILE).is_file():
            continue
        try:
            spec = read_spec(folder, allow_spatial=True)
            for name in GRAPH_FILES.values():
                if not (folder / name).is_file():
                    raise ForeignModelError(f"{folder / name}: missing")
            infos.append(ForeignInfo(folder.name, folder, spec=spec))
        except ForeignModelError as exc:
            infos.append(ForeignInfo(folder.name, folder, error=str(exc)))
    return infos
