"""Our own ONNX format with a spatial latent (``latent_shape`` in model.json): a tiny conv VAE exported
with torch.onnx opens as a SpatialModel that matches torch, its layout and logits follow model.json,
each bad model.json gets its own message, and the catalog lists it (torch-free) as a latent-diffusion
VAE that ``python -m core explore --check-only`` opens."""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import onnx
import pytest
import torch
import torch.nn as nn
from onnx import helper

from core.formats.foreign import ForeignModelError, OnnxSpec, read_spec
from core.formats.spatial import SpatialModelError, open_spatial
from tests.conftest import ROOT

pytestmark = pytest.mark.usefixtures("one_thread")

SIDE, CHANNELS, F = 32, 4, 4  # RGB 32×32 images -> latents 4×8×8
SCALING, SHIFT = 0.5, 0.1
SPEC = {
    "format": "latentlab-onnx",
    "format_version": 1,
    "title": "tiny spatial VAE",
    "latent_shape": [CHANNELS, SIDE // F, SIDE // F],
    "image_shape": [3, SIDE, SIDE],
    "value_range": [-1, 1],
    "encoder": "gaussian",
    "decoder": "image",
    "encoder_inputs": ["image"],
    "encoder_outputs": ["mean", "logvar"],
    "decoder_inputs": ["latent"],
    "decoder_outputs": ["image"],
    "scaling_factor": SCALING,
    "shift_factor": SHIFT,
}


class TinyEncoder(nn.Module):
    """image (B, 3, H, W) in [-1, 1] -> (mean, logvar), each (B, 4, H/4, W/4)."""

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(3, 16, 3, 2, 1), nn.SiLU(), nn.Conv2d(16, 2 * CHANNELS, 3, 2, 1))

    def forward(self, image):
        return self.net(image).chunk(2, dim=1)


class TinyDecoder(nn.Module):
    """latent (B, 4, h, w), unscaled -> image (B, 3, 4h, 4w) in [-1, 1]."""

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(CHANNELS, 16, 3, 1, 1), nn.SiLU(), nn.ConvTranspose2d(16, 3, F, F), nn.Tanh()
        )

    def forward(self, latent):
        return self.net(latent)


@pytest.fixture(scope="module")
def nets():
    torch.manual_seed(0)
    return TinyEncoder().eval(), TinyDecoder().eval()


@pytest.fixture(scope="module")
def folder(nets, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("foreign-spatial") / "tiny-spatial"
    folder.mkdir()
    dyn = torch.export.Dim.DYNAMIC
    (encoder, decoder), h = nets, SIDE // F
    graphs = [
        (encoder, torch.rand(2, 3, SIDE, SIDE) * 2 - 1, "encoder.onnx", ["image"], ["mean", "logvar"]),
        (decoder, torch.randn(2, CHANNELS, h, h), "decoder.onnx", ["latent"], ["image"]),
    ]
    for module, example, file, ins, outs in graphs:  # batch, height and width dynamic
        torch.onnx.export(
            module, (example,), str(folder / file), input_names=ins, output_names=outs, dynamo=True,
            dynamic_shapes=({0: dyn, 2: dyn, 3: dyn},), external_data=False, verbose=False,
        )  # fmt: skip
    (folder / "model.json").write_text(json.dumps(SPEC))
    return folder


@pytest.fixture(scope="module")
def model(folder):
    return open_spatial(folder)


@pytest.fixture(scope="module")
def images():
    return torch.rand(3, 3, SIDE, SIDE, generator=torch.Generator().manual_seed(1))


def _variant(folder: Path, dest: Path, **fields) -> Path:
    """A copy of ``folder`` with model.json's ``fields`` replaced (None removes one)."""
    shutil.copytree(folder, dest)
    spec = {k: v for k, v in (SPEC | fields).items() if v is not None}
    (dest / "model.json").write_text(json.dumps(spec))
    return dest


# ---------------------------------------------------------------- opening and matching torch


def test_a_latent_shape_folder_opens_as_a_spatial_model_that_matches_torch(model, nets, images):
    encoder, decoder = nets
    assert (model.source, model.latent_channels, model.downsample, model.latent_shape) == (
        "latentlab-onnx", CHANNELS, F, (CHANNELS, 8, 8)
    )  # fmt: skip
    assert (model.scaling_factor, model.shift_factor, model.value_range, model.notes) == (SCALING, SHIFT, (-1, 1), ())
    latents = model.encode(images)
    with torch.no_grad():
        mean, logvar = encoder(images * 2 - 1)
        decoded = ((decoder(latents / SCALING + SHIFT) + 1) / 2).clamp(0, 1)
    assert latents.shape == (3, CHANNELS, 8, 8)
    torch.testing.assert_close(latents, (mean - SHIFT) * SCALING, atol=1e-4, rtol=0)
    torch.testing.assert_close(model.encode_raw(images)[1], logvar, atol=1e-4, rtol=0)
    torch.testing.assert_close(model.decode(latents), decoded, atol=1e-4, rtol=0)
    assert model.encode(torch.rand(1, 3, 64, 48)).shape == (1, CHANNELS, 16, 12), "a dynamic export takes other sizes"


def test_absent_factors_are_one_and_zero_with_a_note(folder, tmp_path):
    plain = open_spatial(_variant(folder, tmp_path / "plain", scaling_factor=None, shift_factor=None))
    assert (plain.scaling_factor, plain.shift_factor) == (1.0, 0.0)
    assert len(plain.notes) == 1 and "model.json has no scaling_factor; using 1.0" in plain.notes[0]


def test_a_fixed_size_export_says_it_takes_one_size(folder, tmp_path):
    dest = _variant(folder, tmp_path / "fixed")
    graph = onnx.load(str(folder / "encoder.onnx"))
    for dim in graph.graph.input[0].type.tensor_type.shape.dim[2:]:
        dim.dim_value = SIDE  # height and width fixed, as an export without dynamic sides has them
    onnx.save(graph, str(dest / "encoder.onnx"))
    fixed = open_spatial(dest)
    assert fixed.notes == ("The ONNX encoder takes 32×32 images only (a fixed-size export).",)
    assert fixed.fixed_size == (SIDE, SIDE), "the page offers only this size"


def _hwc_logits(src: Path, dest: Path) -> None:
    """The same graph on (B, H, W, C) tensors (a Transpose after its input and before its outputs),
    with a final Tanh, if any, made an Identity: a decoder of logits."""
    model = onnx.load(str(src))
    g = model.graph
    inner = {p.name: p.name + "_chw" for p in (*g.input, *g.output)}  # the graph's own names, renamed inside
    for node in g.node:
        node.input[:] = [inner.get(n, n) for n in node.input]
        node.output[:] = [inner.get(n, n) for n in node.output]
        if node.op_type == "Tanh":
            node.op_type = "Identity"
    head = [helper.make_node("Transpose", [p.name], [inner[p.name]], perm=[0, 3, 1, 2]) for p in g.input]
    tail = [helper.make_node("Transpose", [inner[p.name]], [p.name], perm=[0, 2, 3, 1]) for p in g.output]
    nodes = head + list(g.node) + tail
    del g.node[:]
    g.node.extend(nodes)
    for port in (*g.input, *g.output):  # their declared shapes, (B, C, H, W) -> (B, H, W, C)
        dims = [copy.deepcopy(d) for d in port.type.tensor_type.shape.dim]
        del port.type.tensor_type.shape.dim[:]
        port.type.tensor_type.shape.dim.extend(dims[i] for i in (0, 2, 3, 1))
    kept = [v for v in g.value_info if v.name not in inner]
    del g.value_info[:]
    g.value_info.extend(kept)
    onnx.save(model, str(dest))


def test_an_hwc_layout_and_a_logits_decoder_follow_model_json(folder, nets, images, tmp_path):
    dest = _variant(folder, tmp_path / "hwc", layout="HWC", decoder="logits")
    for file in ("encoder.onnx", "decoder.onnx"):
        _hwc_logits(folder / file, dest / file)
    model = open_spatial(dest)
    encoder, decoder = nets
    latents = model.encode(images)
    with torch.no_grad():
        want = (encoder(images * 2 - 1)[0] - SHIFT) * SCALING
        decoded = torch.sigmoid(decoder.net[:-1](latents / SCALING + SHIFT))
    torch.testing.assert_close(latents, want, atol=1e-4, rtol=0)
    torch.testing.assert_close(model.decode(latents), decoded, atol=1e-4, rtol=0)


def test_the_spec_round_trips_and_a_flat_loader_refuses_it(folder, tmp_path):
    spec = read_spec(folder, allow_spatial=True)
    assert (spec.is_spatial, spec.latent_shape, spec.downsample, spec.latent_dim) == (True, (4, 8, 8), F, 0)
    assert OnnxSpec.from_dict(spec.to_dict(), allow_spatial=True) == spec
    with pytest.raises(ForeignModelError, match="has a spatial latent_shape, and this takes flat codes"):
        read_spec(folder)  # what load_onnx_model and `python -m core import` call
    flat = _variant(folder, tmp_path / "flat", latent_shape=None, latent_dim=16, likelihood="bernoulli")
    with pytest.raises(SpatialModelError, match="gives a flat latent_dim, not a latent_shape"):
        open_spatial(flat)


# ---------------------------------------------------------------- bad model.json, one message each

BAD = {
    "no channels": ({"latent_shape": [0, 8, 8]}, r"model.json: latent_shape has 0 channels; it must be from 1"),
    "non-integers": ({"latent_shape": [4, 8.5, 8]}, r"model.json: field 'latent_shape' must hold three whole"),
    "wrong length": ({"latent_shape": [4, 8]}, r"model.json: field 'latent_shape' must be \[channels, height, wid"),
    "both sizes": ({"latent_dim": 256}, r"model.json: gives both 'latent_dim' and 'latent_shape'"),
    "two factors": ({"latent_shape": [4, 8, 16]}, r"model.json: latent_shape's 8×16 must be image_shape's 32×32 div"),
    "grey images": ({"image_shape": [1, SIDE, SIDE]}, r"model.json: a spatial latent_shape needs RGB images"),
    "labels": ({"num_classes": 3}, r"model.json: a model with a spatial latent_shape takes no labels"),
    "zero scaling": ({"scaling_factor": 0}, r"model.json: field 'scaling_factor' must be a positive number"),
    "encoder's channels": (
        {"latent_shape": [8, 8, 8]},
        r"encoder.onnx: output 'mean' \(mean\) has shape \(batch, 4, .*\); model.json needs \(batch, 8, 8, 8\) "
        r"\(latent_shape \[8, 8, 8\], layout CHW\)",
    ),
    "encoder's size": (
        {"latent_shape": [4, 16, 16]},
        r"encoder.onnx: encoding a 32×32 image gave a mean of shape \(1, 4, 8, 8\) .*latent_shape \[4, 16, 16\] "
        r"needs \(1, 4, 16, 16\)",
    ),
}


@pytest.mark.parametrize("case", BAD)
def test_each_bad_model_json_gets_its_own_message(case, folder, tmp_path):
    fields, message = BAD[case]
    with pytest.raises(SpatialModelError, match=message) as info:
        open_spatial(_variant(folder, tmp_path / "bad", **fields))
    assert str(info.value).startswith(str(tmp_path / "bad")), "the message names the file"


# ---------------------------------------------------------------- the catalog and explore


def test_the_catalog_lists_it_as_a_spatial_model_without_importing_torch(folder, tmp_path):
    user = tmp_path / "user"
    shutil.copytree(folder, user / "tiny-spatial")
    code = (
        "import sys; from core.app import catalog\n"
        "for e in catalog.list_models():\n"
        "    if e.name == 'tiny-spatial': print(e.key, e.format, e.input_kind, e.ok, e.title, sep='|')\n"
        "print([m for m in ('torch', 'onnxruntime', 'diffusers') if m in sys.modules])"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT), "LATENTLAB_USER_CHECKPOINTS": str(user),
           "LATENTLAB_EXPLORE": str(folder)}  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert out.splitlines() == [
        "user:tiny-spatial|spatial|spatial|True|tiny spatial VAE",
        "explore:tiny-spatial|spatial|spatial|True|tiny spatial VAE",
        "[]",
    ], out


def test_the_catalog_opens_it_and_explore_checks_it(folder, monkeypatch, capsys):
    from core.app import catalog
    from core.cli import main

    monkeypatch.setenv("LATENTLAB_USER_CHECKPOINTS", str(folder.parent))
    (entry,) = [e for e in catalog.list_models() if e.key == "user:tiny-spatial"]
    assert catalog.card_rows(entry)["Latent"] == "C × H/f × W/f (a spatial map)"
    assert catalog.load_entry(entry).model.latent_shape == (CHANNELS, 8, 8)
    assert main(["explore", str(folder), "--check-only"]) == 0
    assert "ok: explore:tiny-spatial" in capsys.readouterr().out
