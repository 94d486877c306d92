"""Spatial-latent autoencoders: the VAEs of latent diffusion models, loaded as data.

The autoencoder of a latent diffusion model (Rombach et al. 2022, "High-Resolution Image
Synthesis with Latent Diffusion Models"; Stable Diffusion 1.x/2.x/XL, SD3, FLUX) maps an RGB image
to a latent *map*, not a vector: (C, H/f, W/f) with C = 4 (SD, SDXL) or 16 (SD3, FLUX) channels and
a downsampling factor f = 8. Such a model does not fit the flat :class:`core.models.protocol.LatentModel`
(a code (B, latent_dim)), so it has its own small class, :class:`SpatialModel`.

Shapes and units: images x are float32 (B, 3, H, W) in [0, 1] (H and W multiples of
``downsample``); the networks themselves take and give images in [-1, 1] (``value_range``).
Latents are (B, C, H/f, W/f). The convention of diffusers' pipelines, followed here::

    latents = (mean - shift_factor) * scaling_factor      # encode: what the diffusion model sees
    z       = latents / scaling_factor + shift_factor     # decode: what the decoder takes

``mean`` is the mode of the posterior N(mean, exp(logvar)); ``scaling_factor`` makes the latents'
standard deviation about 1 (SD1.5 0.18215, SDXL 0.13025, SD3 1.5305, FLUX 0.3611) and
``shift_factor`` centres them (SD3 0.0609, FLUX 0.1159; 0 for SD and SDXL). A wrong pair after
swapping a VAE gives washed-out or burnt images, silently: :mod:`core.lenses.spatial` measures it.

Three folder layouts load, each run on the CPU, none runs code from the folder or unpickles anything:

- a diffusers ``AutoencoderKL`` folder (``config.json`` + ``diffusion_pytorch_model.safetensors``,
  an SD checkpoint's ``vae/``), opened offline by diffusers; a ``.bin`` weights file (a pickle) is
  refused unread;
- the ONNX layout that optimum exports: ``vae_encoder/model.onnx`` (``sample`` -> ``latent_parameters``,
  mean and log-variance stacked on channels, or an older ``latent_sample``) and
  ``vae_decoder/model.onnx`` (``latent_sample`` -> ``sample``), the factors in ``vae_decoder/config.json``;
  the graphs go through the checks of :mod:`core.formats.onnx_model` and run in onnxruntime;
- our own ONNX format (:mod:`core.formats.foreign`, docs/own-model.md): ``model.json`` with a
  ``latent_shape`` [C, h, w] instead of ``latent_dim``, ``encoder.onnx`` (image -> mean[, logvar]) and
  ``decoder.onnx`` (latent -> image), with the names, layout, value range and optional factors that
  ``model.json`` declares; checked and run like the optimum export.

:func:`open_spatial` tells the layouts apart; every problem is one :class:`SpatialModelError`
naming the file and what is wrong.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from core.formats.checkpoints import CheckpointError, _check_header, read_json_file
from core.formats.foreign import GRAPH_FILES, SPEC_FILE, OnnxSpec, read_spec
from core.formats.onnx_model import Port, _check_hash, _session, _short, check_ports, external_files, parse_graph
from core.formats.spatial_layout import (
    CONFIG_FILE,
    DECODER_DIR,
    ENCODER_DIR,
    ONNX_FILE,
    PICKLE_FILES,
    WEIGHTS_FILE,
    SpatialModelError,
    spatial_layout,
)

CLASS_NAME = "AutoencoderKL"
MAX_CONFIG_BYTES = 1_000_000
MAX_SIDE = 1024  # an image side the CPU can take: an SD VAE at 4096² needs tens of GB of activations
BATCH = 4  # images per network call: an SD VAE at 512×512 takes about 1.5 GB of activations on the CPU
PROBE_LATENT = 4  # the ONNX probe encodes a (1, 3, 4f, 4f) grey image


# ---------------------------------------------------------------- the model


@dataclass
class SpatialModel:
    """An autoencoder with a spatial latent, behind ``encode`` / ``decode`` in [0, 1] image units.

    ``backend`` does the networks' work in their own units: ``moments(x)`` with x (B, 3, H, W)
    in [-1, 1] -> (mean, logvar or None), each (B, C, h, w), unscaled; ``decode(z)`` -> images in
    [-1, 1]. Load one with :func:`open_spatial`; it holds no state a call changes.
    """

    name: str
    title: str
    folder: Path
    source: str  # "diffusers", "optimum-onnx" or "latentlab-onnx"
    latent_channels: int
    downsample: int
    scaling_factor: float
    shift_factor: float
    sample_size: int | None  # the image side it was trained on, if its config says
    backend: object = field(repr=False)
    notes: tuple[str, ...] = ()  # warnings for the page: a defaulted factor, a sampling encoder
    image_channels: int = 3
    value_range: tuple[float, float] = (-1.0, 1.0)
    fixed_size: tuple[int, int] | None = None  # (H, W) when the export takes one image size only

    def latent_shape_for(self, height: int, width: int) -> tuple[int, int, int]:
        """(C, h, w) of the latent of an (H, W) image; ValueError unless H and W are multiples of ``downsample``."""
        f = self.downsample
        if max(height, width) > MAX_SIDE:
            raise ValueError(
                f"{self.title}: {height}×{width} is too large for this machine (at most {MAX_SIDE} a side)"
            )
        if height % f or width % f or height < f or width < f:
            raise ValueError(f"{self.title}: image sides must be multiples of {f}, got {height}×{width}")
        return (self.latent_channels, height // f, width // f)

    @property
    def latent_shape(self) -> tuple[int, int, int] | None:
        """(C, h, w) at the trained image size ``sample_size`` (None when the config does not say)."""
        return self.latent_shape_for(self.sample_size, self.sample_size) if self.sample_size else None

    def _check_images(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.as_tensor(x).detach().to("cpu", torch.float32)
        if x.ndim != 4 or x.shape[1] != self.image_channels:
            raise ValueError(f"{self.title}: images must be (B, 3, H, W), got {tuple(x.shape)}")
        self.latent_shape_for(x.shape[2], x.shape[3])
        return x

    @torch.no_grad()
    def encode_raw(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """x (B, 3, H, W) in [0, 1] -> (mean, logvar or None), each (B, C, H/f, W/f), unscaled.

        logvar is None when the encoder gives no variance (an older optimum export) or B is 0."""
        lo, hi = self.value_range
        x = lo + self._check_images(x) * (hi - lo)
        if not len(x):
            return x.new_zeros((0, *self.latent_shape_for(x.shape[2], x.shape[3]))), None
        parts = [self.backend.moments(x[i : i + BATCH]) for i in range(0, len(x), BATCH)]
        mean = torch.cat([m for m, _ in parts])
        return mean, (None if parts[0][1] is None else torch.cat([lv for _, lv in parts]))

    def scale(self, mean: torch.Tensor) -> torch.Tensor:
        """Unscaled mean -> the latent a diffusion model sees: (mean - shift) * scaling."""
        return (mean - self.shift_factor) * self.scaling_factor

    def unscale(self, latents: torch.Tensor) -> torch.Tensor:
        """Scaled latents -> what the decoder takes: latents / scaling + shift."""
        return latents / self.scaling_factor + self.shift_factor

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, 3, H, W) in [0, 1] -> scaled latents (B, C, H/f, W/f), from the posterior's mode."""
        return self.scale(self.encode_raw(x)[0])

    @torch.no_grad()
    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """Scaled latents (B, C, h, w) -> images (B, 3, h·f, w·f) in [0, 1]."""
        z = self.unscale(torch.as_tensor(latents).detach().to("cpu", torch.float32))
        if z.ndim != 4 or z.shape[1] != self.latent_channels:
            raise ValueError(f"{self.title}: latents must be (B, {self.latent_channels}, h, w), got {tuple(z.shape)}")
        if not len(z):
            return z.new_zeros((0, 3, z.shape[2] * self.downsample, z.shape[3] * self.downsample))
        out = torch.cat([self.backend.decode(z[i : i + BATCH]) for i in range(0, len(z), BATCH)])
        lo, hi = self.value_range
        return ((out - lo) / (hi - lo)).clamp(0.0, 1.0)


class _DiffusersBackend:
    """A diffusers ``AutoencoderKL`` in eval mode, float32, on the CPU."""

    def __init__(self, vae):
        self.vae = vae

    def moments(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        dist = self.vae.encode(x).latent_dist
        return dist.mean, dist.logvar

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.vae.decode(z).sample


class _OnnxBackend:
    """The two onnxruntime sessions of an optimum export."""

    def __init__(self, folder: Path, encoder, decoder, encoder_output: str):
        self.folder, self.encoder, self.decoder, self.encoder_output = folder, encoder, decoder, encoder_output

    def _run(self, session, graph: str, output: str, feed: dict) -> torch.Tensor:
        try:
            out = session.run([output], {k: np.ascontiguousarray(v.numpy()) for k, v in feed.items()})[0]
        except Exception as exc:  # onnxruntime's own error types
            raise SpatialModelError(
                f"{self.folder / graph / ONNX_FILE}: onnxruntime failed to run it: {_short(exc)}"
            ) from exc
        return torch.from_numpy(np.asarray(out, np.float32))

    def moments(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        out = self._run(self.encoder, ENCODER_DIR, self.encoder_output, {"sample": x})
        if self.encoder_output == "latent_sample":
            return out, None
        mean, logvar = out.chunk(2, dim=1)
        return mean, logvar.clamp(-30.0, 20.0)  # diffusers' DiagonalGaussianDistribution clamps the same way

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self._run(self.decoder, DECODER_DIR, "sample", {"latent_sample": z})


# ---------------------------------------------------------------- config.json


def read_config(path: Path) -> dict:
    """Read a diffusers ``config.json`` (json.loads only) and check it describes an AutoencoderKL."""
    config = read_json_file(
        path,
        max_bytes=MAX_CONFIG_BYTES,
        missing="the VAE's diffusers config: _class_name, scaling_factor, …",
        what="a model config",
        error=SpatialModelError,
    )
    if not isinstance(config, dict):
        raise SpatialModelError(f"{path}: must hold a JSON object, not {type(config).__name__}")
    name = config.get("_class_name")
    if name != CLASS_NAME:
        raise SpatialModelError(
            f"{path}: _class_name is {name!r}; Latent Lab loads {CLASS_NAME} (the KL autoencoder of Stable "
            "Diffusion, SDXL, SD3 and FLUX) only"
        )
    return config


def _positive_int(config: dict, key: str, path: Path, default: int | None) -> int | None:
    value = config.get(key, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise SpatialModelError(f"{path}: field {key!r} must be a positive whole number, got {value!r}")
    return value


def _factor(config: dict, key: str, path: Path) -> float | None:
    value = config.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise SpatialModelError(f"{path}: field {key!r} must be a finite number, got {value!r}")
    if key == "scaling_factor" and value <= 0:
        raise SpatialModelError(f"{path}: scaling_factor must be positive, got {value!r}")
    return float(value)


def factors(config: dict, path: Path) -> tuple[float, float, list[str]]:
    """(scaling_factor, shift_factor, notes) from a config; a missing scaling_factor is 1.0 with a note."""
    scaling, shift = _factor(config, "scaling_factor", path), _factor(config, "shift_factor", path)
    notes = []
    if scaling is None:
        notes.append(
            f"{path.name} has no scaling_factor; using 1.0. Pipelines use one (SD1.5 0.18215, SDXL 0.13025): "
            "the scaling check measures the one your images call for."
        )
    return (1.0 if scaling is None else scaling), (shift or 0.0), notes


def _shape_facts(config: dict, path: Path) -> dict:
    """latent_channels, downsample (2 ** (len(block_out_channels) - 1)) and sample_size from a config."""
    blocks = config.get("block_out_channels", [64])  # diffusers' default: one block, no downsampling
    if not isinstance(blocks, list | tuple) or not blocks:
        raise SpatialModelError(f"{path}: field 'block_out_channels' must be a non-empty list, got {blocks!r}")
    size = config.get("sample_size")
    size = size[0] if isinstance(size, list | tuple) and size and size[0] == size[-1] else size
    return {
        "latent_channels": _positive_int(config, "latent_channels", path, 4),
        "downsample": 2 ** (len(blocks) - 1),
        "sample_size": size if isinstance(size, int) and not isinstance(size, bool) and size > 0 else None,
    }


# ---------------------------------------------------------------- loading a diffusers folder


def _weights(folder: Path) -> Path:
    """The safetensors weights of a diffusers folder, its header checked; a pickle is refused unread."""
    weights = folder / WEIGHTS_FILE
    if weights.is_file():
        try:
            _check_header(weights)
        except CheckpointError as exc:
            raise SpatialModelError(str(exc)) from exc
        return weights
    pickles = [folder / n for n in PICKLE_FILES if (folder / n).is_file()]
    if pickles:
        raise SpatialModelError(
            f"{pickles[0]}: is a pickle; Latent Lab loads safetensors only: convert it with "
            "`AutoencoderKL.from_pretrained(folder).save_pretrained(folder, safe_serialization=True)` in a "
            "trusted environment, or download the repository's diffusion_pytorch_model.safetensors"
        )
    raise SpatialModelError(f"{weights}: missing (a diffusers VAE folder needs its weights in safetensors)")


def _unknown_fields(config: dict, cls, path: Path) -> list[str]:
    """A note naming the config's fields that ``cls`` does not take (diffusers ignores them quietly)."""
    import inspect

    known = set(inspect.signature(cls.__init__).parameters)
    unknown = sorted(k for k in config if not k.startswith("_") and k not in known and k not in ("title",))
    if not unknown:
        return []
    return [f"{path}: fields {', '.join(unknown)} are not {cls.__name__}'s and were ignored (a newer or other VAE?)"]


def load_diffusers(folder: str | os.PathLike, name: str | None = None) -> SpatialModel:
    """Open a diffusers ``AutoencoderKL`` folder offline (config.json + safetensors weights)."""
    from diffusers import AutoencoderKL

    folder = Path(folder)
    config_path = folder / CONFIG_FILE
    config = read_config(config_path)
    weights = _weights(folder)
    scaling, shift, notes = factors(config, config_path)
    notes += _unknown_fields(config, AutoencoderKL, config_path)
    _shape_facts(config, config_path)  # a latent of 0 channels, in words, before diffusers' size mismatch
    try:
        vae = AutoencoderKL.from_pretrained(
            str(folder), use_safetensors=True, local_files_only=True, torch_dtype=torch.float32, low_cpu_mem_usage=False
        )
    except Exception as exc:  # diffusers raises OSError / ValueError / safetensors errors for a bad folder
        raise SpatialModelError(f"{weights}: diffusers cannot load it: {_short(exc)}") from exc
    vae = vae.to("cpu").eval().requires_grad_(False)
    name = name or folder.name
    return SpatialModel(
        name=name,
        title=str(config.get("title") or name),
        folder=folder,
        source="diffusers",
        scaling_factor=scaling,
        shift_factor=shift,
        backend=_DiffusersBackend(vae),
        notes=tuple(notes),
        **_shape_facts(dict(vae.config), config_path),  # the config diffusers built, defaults filled in
    )


# ---------------------------------------------------------------- loading an optimum ONNX export


def _graph_session(path: Path, threads: int):
    """Check a graph file (first bytes, size, protobuf, external data inside the folder) and open it."""
    try:
        proto = parse_graph(path)
        external_files(proto, path)
        del proto
        return _session(path, threads)
    except CheckpointError as exc:
        raise SpatialModelError(str(exc)) from exc


def _port(path: Path, kind: str, args: list, allowed: tuple[str, ...]):
    """The one input or output a graph must have, among ``allowed`` names, as a rank-4 float tensor."""
    names = [a.name for a in args]
    hits = [a for a in args if a.name in allowed]
    if not hits:
        want = " or ".join(repr(n) for n in allowed)
        raise SpatialModelError(f"{path}: its {kind}s are {names}; an optimum VAE export has {kind} {want}")
    arg = hits[0]
    if arg.type != "tensor(float)" or (arg.shape and len(arg.shape) != 4):
        raise SpatialModelError(f"{path}: {kind} {arg.name!r} is {arg.type} {arg.shape}; it must be float (B, C, H, W)")
    return arg


def _probe(model: SpatialModel, size: tuple[int, int]) -> None:
    """Encode a grey (1, 3, H, W) image and decode its latent: shapes as the config says, values finite."""
    (h, w), f = size, model.downsample
    mean, logvar = model.encode_raw(torch.full((1, 3, h, w), 0.5))
    want = (1, model.latent_channels, h // f, w // f)
    if tuple(mean.shape) != want or (logvar is not None and logvar.shape != mean.shape):
        got = tuple(mean.shape) if logvar is None else (1, 2 * mean.shape[1], *mean.shape[2:])
        raise SpatialModelError(
            f"{model.folder / ENCODER_DIR / ONNX_FILE}: a {h}×{w} image gave latents of shape {got}; the config "
            f"says {model.latent_channels} channels (×2 for latent_parameters) at 1/{f} the side"
        )
    image = model.decode(model.scale(mean))
    if tuple(image.shape) != (1, 3, h, w) or not (torch.isfinite(mean).all() and torch.isfinite(image).all()):
        raise SpatialModelError(
            f"{model.folder / DECODER_DIR / ONNX_FILE}: decoding a {h // f}×{w // f} latent gave shape "
            f"{tuple(image.shape)} or non-finite values; expected (1, 3, {h}, {w})"
        )


def _static_sides(sides: list) -> tuple[int, int] | None:
    """(H, W) when both image sides of an ONNX input are fixed numbers, else None."""
    if len(sides) == 2 and all(isinstance(d, int) and d > 0 for d in sides):
        return int(sides[0]), int(sides[1])
    return None


def _fixed_size_notes(fixed: tuple[int, int] | None) -> list[str]:
    return [f"The ONNX encoder takes {fixed[0]}×{fixed[1]} images only (a fixed-size export)."] if fixed else []


def load_optimum_onnx(folder: str | os.PathLike, name: str | None = None, threads: int = 1) -> SpatialModel:
    """Open an optimum ONNX export (vae_encoder/model.onnx, vae_decoder/model.onnx + config.json)."""
    folder = Path(folder)
    config_path = folder / DECODER_DIR / CONFIG_FILE
    config = read_config(config_path)
    scaling, shift, notes = factors(config, config_path)
    paths = {g: folder / g / ONNX_FILE for g in (ENCODER_DIR, DECODER_DIR)}
    sessions = {g: _graph_session(p, threads) for g, p in paths.items()}
    enc, dec = sessions[ENCODER_DIR], sessions[DECODER_DIR]
    sample = _port(paths[ENCODER_DIR], "input", enc.get_inputs(), ("sample",))
    output = _port(paths[ENCODER_DIR], "output", enc.get_outputs(), ("latent_parameters", "latent_sample")).name
    _port(paths[DECODER_DIR], "input", dec.get_inputs(), ("latent_sample",))
    _port(paths[DECODER_DIR], "output", dec.get_outputs(), ("sample",))
    facts = _shape_facts(config, config_path)
    fixed = _static_sides(list(sample.shape or [])[2:])
    size = fixed or (PROBE_LATENT * facts["downsample"],) * 2
    if output == "latent_sample":
        notes.append("The encoder gives a sampled latent (an older optimum export), not the posterior's mean.")
    name = name or folder.name
    model = SpatialModel(
        name=name,
        title=str(config.get("title") or name),
        folder=folder,
        source="optimum-onnx",
        scaling_factor=scaling,
        shift_factor=shift,
        backend=_OnnxBackend(folder, enc, dec, output),
        notes=tuple(notes + _fixed_size_notes(fixed)),
        fixed_size=fixed,
        **facts,
    )
    _probe(model, size)
    return model


# ---------------------------------------------------------------- loading a latentlab-onnx folder


class _LatentLabBackend:
    """The two onnxruntime sessions of a ``latentlab-onnx`` folder with a spatial latent: model.json's
    tensor names, its layout for images and latents alike, and a logits decoder's sigmoid."""

    def __init__(self, folder: Path, spec: OnnxSpec, sessions: dict):
        self.folder, self.spec, self.sessions = folder, spec, sessions  # "encoder" | "decoder" -> session

    def _run(self, graph: str, names: tuple[str, ...], t: torch.Tensor) -> list[torch.Tensor]:
        """t (B, C, H, W) -> the graph's outputs ``names``, each (B, C', H', W'); layout converted at both ends."""
        hwc = self.spec.layout == "HWC"
        feed = np.ascontiguousarray((t.permute(0, 2, 3, 1) if hwc else t).numpy())
        inputs = self.spec.encoder_inputs if graph == "encoder" else self.spec.decoder_inputs
        try:
            outs = self.sessions[graph].run(list(names), {inputs[0]: feed})
        except Exception as exc:  # onnxruntime's own error types
            raise SpatialModelError(
                f"{self.folder / GRAPH_FILES[graph]}: onnxruntime failed to run it: {_short(exc)}"
            ) from exc
        outs = [torch.from_numpy(np.asarray(o, np.float32)) for o in outs]
        return [o.permute(0, 3, 1, 2).contiguous() for o in outs] if hwc else outs

    def moments(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """x (B, 3, H, W) in value_range -> (mean, logvar or None for a deterministic encoder), each (B, C, h, w)."""
        outs = self._run("encoder", self.spec.encoder_outputs, x)
        return outs[0], (outs[1].clamp(-30.0, 20.0) if self.spec.is_variational else None)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """z (B, C, h, w), unscaled -> images (B, 3, H, W) in value_range."""
        out = self._run("decoder", self.spec.decoder_outputs, z)[0]
        if self.spec.decoder == "logits":  # the image is their sigmoid, given in value_range like an image's
            lo, hi = self.spec.value_range
            return lo + torch.sigmoid(out) * (hi - lo)
        return out


def spatial_ports(spec: OnnxSpec, graph: str) -> tuple[list[Port], list[Port]]:
    """The (inputs, outputs) model.json declares for a spatial model's graph "encoder" or "decoder"."""

    def dims(c: int, h: int, w: int) -> tuple[int | None, ...]:
        return (None, c, h, w) if spec.layout == "CHW" else (None, h, w, c)

    image = ("tensor(float)", dims(*spec.image_shape), f"image_shape {list(spec.image_shape)}, layout {spec.layout}")
    latent = (
        "tensor(float)",
        dims(*spec.latent_shape),
        f"latent_shape {list(spec.latent_shape)}, layout {spec.layout}",
    )
    if graph == "encoder":
        roles = ("mean", "logvar") if spec.is_variational else ("latent",)
        outputs = [Port(n, role, *latent) for n, role in zip(spec.encoder_outputs, roles, strict=True)]
        return [Port(spec.encoder_inputs[0], "image", *image)], outputs
    role = "image" if spec.decoder == "image" else "logits"
    return [Port(spec.decoder_inputs[0], "latent", *latent)], [Port(spec.decoder_outputs[0], role, *image)]


def _latentlab_sessions(folder: Path, spec: OnnxSpec, threads: int) -> dict:
    """Each graph checked as a foreign model's is (bytes, protobuf, external data, SHA-256), opened, and
    its declared inputs and outputs compared with model.json's."""
    sessions = {}
    for graph, file in GRAPH_FILES.items():
        path = folder / file
        external_files(parse_graph(path), path)
        _check_hash(path, spec)
        sessions[graph] = _session(path, threads)
        inputs, outputs = spatial_ports(spec, graph)
        check_ports(path, "input", inputs, sessions[graph].get_inputs())
        check_ports(path, "output", outputs, sessions[graph].get_outputs())
    return sessions


def _encoder_sides(spec: OnnxSpec, session) -> tuple[int, int] | None:
    """The encoder's image (H, W) when the export fixed it (only that size encodes), else None."""
    shape = list(session.get_inputs()[0].shape or [])
    return _static_sides(shape[2:] if spec.layout == "CHW" else shape[1:3])


def _probe_latentlab(model: SpatialModel, spec: OnnxSpec) -> None:
    """Encode a grey image at image_shape and decode its mean: latent_shape's shape, image_shape's
    shape, finite values, and an image decoder's values near value_range."""
    _, h, w = spec.image_shape
    encoder, decoder = (model.folder / GRAPH_FILES[g] for g in ("encoder", "decoder"))
    mean, logvar = model.encode_raw(torch.full((1, 3, h, w), 0.5))
    want = (1, *spec.latent_shape)
    for role, t in (("mean", mean), ("logvar", logvar)):
        if t is not None and tuple(t.shape) != want:
            raise SpatialModelError(
                f"{encoder}: encoding a {h}×{w} image gave a {role} of shape {tuple(t.shape)} (as B, C, h, w); "
                f"model.json's latent_shape {list(spec.latent_shape)} needs {want}"
            )
    raw = model.backend.decode(mean)  # in value_range
    if tuple(raw.shape) != (1, 3, h, w) or not (torch.isfinite(mean).all() and torch.isfinite(raw).all()):
        raise SpatialModelError(
            f"{decoder}: decoding a grey image's latent gave shape {tuple(raw.shape)} or non-finite values; "
            f"model.json's image_shape needs (1, 3, {h}, {w})"
        )
    lo, hi = spec.value_range
    if spec.decoder == "image" and (raw.min() < lo - (hi - lo) / 2 or raw.max() > hi + (hi - lo) / 2):
        raise SpatialModelError(
            f"{decoder}: decoding gave values in [{raw.min():.3g}, {raw.max():.3g}], far outside model.json's "
            f"value_range [{lo:g}, {hi:g}]"
        )


def load_latentlab_onnx(folder: str | os.PathLike, name: str | None = None, threads: int = 1) -> SpatialModel:
    """Open our own ONNX format with a spatial ``latent_shape`` (model.json, encoder.onnx, decoder.onnx)."""
    folder = Path(folder)
    try:
        spec = read_spec(folder, allow_spatial=True)
        if not spec.is_spatial:
            raise SpatialModelError(
                f"{folder / SPEC_FILE}: gives a flat latent_dim, not a latent_shape [channels, height, width]; it "
                "is a model for the other pages, not a latent-diffusion VAE"
            )
        sessions = _latentlab_sessions(folder, spec, threads)
    except SpatialModelError:
        raise
    except CheckpointError as exc:  # core.formats.foreign's and onnx_model's checks: one error type here
        raise SpatialModelError(str(exc)) from exc
    scaling, shift, notes = factors(spec.meta, folder / SPEC_FILE)  # validated already; the same note as diffusers'
    _, h, w = spec.image_shape
    fixed = _encoder_sides(spec, sessions["encoder"])
    name = name or folder.name
    model = SpatialModel(
        name=name,
        title=spec.title,
        folder=folder,
        source="latentlab-onnx",
        latent_channels=spec.latent_shape[0],
        downsample=spec.downsample,
        scaling_factor=scaling,
        shift_factor=shift,
        sample_size=h if h == w else None,
        backend=_LatentLabBackend(folder, spec, sessions),
        notes=tuple(notes + _fixed_size_notes(fixed)),
        value_range=spec.value_range,
        fixed_size=fixed,
    )
    _probe_latentlab(model, spec)
    return model


# ---------------------------------------------------------------- one entry point


def open_spatial(folder: str | os.PathLike, name: str | None = None) -> SpatialModel:
    """Open a spatial-latent VAE folder of any layout; SpatialModelError names the file and the problem."""
    layout = spatial_layout(folder)
    if layout == "latentlab-onnx":
        return load_latentlab_onnx(folder, name)
    if layout == "optimum-onnx":
        return load_optimum_onnx(folder, name)
    return load_diffusers(folder, name)
