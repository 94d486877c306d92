"""Foreign models (core.formats.foreign, core.formats.onnx_model): a folder of two ONNX graphs and a JSON behind the
model protocol, and every way such a folder can be broken, each with one message that names the
file and the problem.

The graphs here are built directly with ``onnx.helper`` (milliseconds each): a linear VAE on
4×4 images with a latent size of 2, which the tests then break one way at a time.
"""

from __future__ import annotations

import copy
import json
import os
import pickle
import zipfile
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper

from core.formats.checkpoints import CheckpointError
from core.formats.foreign import MAX_GRAPH_BYTES, ForeignModelError, OnnxSpec, list_foreign, read_spec
from core.formats.onnx_model import OnnxModel, load_onnx_model
from core.models.protocol import LatentModel

IMAGE = (1, 4, 4)
LATENT = 2
BATCH = "batch"
SPEC = {
    "format": "latentlab-onnx",
    "format_version": 1,
    "title": "linear test VAE",
    "latent_dim": LATENT,
    "image_shape": list(IMAGE),
    "layout": "CHW",
    "value_range": [0, 1],
    "encoder": "gaussian",
    "decoder": "image",
    "likelihood": "bernoulli",
    "num_classes": 0,
    "encoder_inputs": ["x"],
    "encoder_outputs": ["mu", "logvar"],
    "decoder_inputs": ["z"],
    "decoder_outputs": ["image"],
}

# ---------------------------------------------------------------- building graphs with onnx.helper


def _model(nodes, inputs, outputs, inits) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, "g", inputs, outputs, initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=9)
    return model


def _weights(name: str, shape: tuple[int, ...], seed: int) -> TensorProto:
    arr = np.random.default_rng(seed).normal(0, 0.3, shape).astype(np.float32)
    return numpy_helper.from_array(arr, name)


def _label(first: str, classes: int, onehot: bool, batch) -> tuple[list, list, list]:
    """(inputs, initializers, nodes) that take a label y and concatenate its one-hot to ``first`` as "h"."""
    if onehot:
        inputs = [helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, classes])]
        return inputs, [], [helper.make_node("Concat", [first, "y"], ["h"], axis=1)]
    inputs = [helper.make_tensor_value_info("y", TensorProto.INT64, [batch])]
    inits = [
        numpy_helper.from_array(np.array([classes], np.int64), "depth"),
        numpy_helper.from_array(np.array([0, 1], np.float32), "onoff"),
    ]
    nodes = [
        helper.make_node("OneHot", ["y", "depth", "onoff"], ["oh"], axis=-1),
        helper.make_node("Concat", [first, "oh"], ["h"], axis=1),
    ]
    return inputs, inits, nodes


def encoder_graph(
    image=IMAGE, latent=LATENT, in_name="x", outputs=("mu", "logvar"), batch=BATCH, classes=0, onehot=False
) -> onnx.ModelProto:
    """x (B, C, H, W) [, y (B,) int64] -> one (B, latent) output per name: Flatten, MatMul, Add."""
    d = int(np.prod(image))
    nodes = [helper.make_node("Flatten", [in_name], ["flat"], axis=1)]
    inputs = [helper.make_tensor_value_info(in_name, TensorProto.FLOAT, [batch, *image])]
    inits, h, width = [], "flat", d
    if classes:
        more = _label("flat", classes, onehot, batch)
        inputs, inits, nodes = inputs + more[0], inits + more[1], nodes + more[2]
        h, width = "h", d + classes
    outs = []
    for i, name in enumerate(outputs):
        inits += [_weights(f"w{i}", (width, latent), i), _weights(f"b{i}", (latent,), 10 + i)]
        nodes += [
            helper.make_node("MatMul", [h, f"w{i}"], [f"m{i}"]),
            helper.make_node("Add", [f"m{i}", f"b{i}"], [name]),
        ]
        outs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, [batch, latent]))
    return _model(nodes, inputs, outs, inits)


def decoder_graph(
    image=IMAGE,
    latent=LATENT,
    out="image",
    batch=BATCH,
    post="sigmoid",
    out_dims=None,
    reshape=None,
    classes=0,
    hidden_shape=False,
    onehot=False,
) -> onnx.ModelProto:
    """z (B, latent) [, y] -> image (B, C, H, W): MatMul, Add, then ``post`` ("sigmoid", "logits",
    "nan": sigmoid times NaN, "x255": sigmoid times 255, "bogus-op": an operator that does not exist)."""
    d = int(np.prod(image))
    inputs = [helper.make_tensor_value_info("z", TensorProto.FLOAT, [batch, latent])]
    inits = [_weights("wd", (latent + classes, d), 5), _weights("bd", (d,), 6)]
    nodes, h = [], "z"
    target = np.array(reshape or [-1, *image], np.int64)
    if hidden_shape:  # the Reshape target depends on z's values, so no shape inference can know it
        inits += [
            numpy_helper.from_array(target.astype(np.float32), "sf"),
            numpy_helper.from_array(np.float32(0), "k0"),
        ]
        nodes += [
            helper.make_node("ReduceSum", ["z"], ["zs"], keepdims=0),
            helper.make_node("Mul", ["zs", "k0"], ["z0"]),
            helper.make_node("Add", ["sf", "z0"], ["sa"]),
            helper.make_node("Cast", ["sa"], ["shape"], to=TensorProto.INT64),
        ]
    else:
        inits.append(numpy_helper.from_array(target, "shape"))
    if classes:
        more = _label("z", classes, onehot, batch)
        inputs, inits, nodes = inputs + more[0], inits + more[1], nodes + more[2]
        h = "h"
    nodes += [helper.make_node("MatMul", [h, "wd"], ["m"]), helper.make_node("Add", ["m", "bd"], ["a"])]
    last = "a"
    if post != "logits":
        nodes.append(helper.make_node("Sigmoid", ["a"], ["s"]))
        last = "s"
    if post in ("nan", "x255"):
        inits.append(numpy_helper.from_array(np.array(np.nan if post == "nan" else 255.0, np.float32), "k"))
        nodes.append(helper.make_node("Mul", ["s", "k"], ["s2"]))
        last = "s2"
    if post == "bogus-op":
        nodes.append(helper.make_node("NoSuchOperator", ["s"], ["s2"]))
        last = "s2"
    nodes.append(helper.make_node("Reshape", [last, "shape"], [out]))
    dims = [batch, *image] if out_dims is None else out_dims
    return _model(nodes, inputs, [helper.make_tensor_value_info(out, TensorProto.FLOAT, dims)], inits)


def write_folder(folder: Path, encoder=None, decoder=None, spec: dict | None = None, **changes) -> Path:
    """A model folder: the graphs (default: the linear VAE) and SPEC with ``changes`` applied."""
    folder.mkdir(parents=True, exist_ok=True)
    onnx.save(encoder or encoder_graph(), folder / "encoder.onnx")
    onnx.save(decoder or decoder_graph(), folder / "decoder.onnx")
    (folder / "model.json").write_text(json.dumps({**(spec or SPEC), **changes}))
    return folder


@pytest.fixture
def folder(tmp_path) -> Path:
    return write_folder(tmp_path / "linear-vae")


# ---------------------------------------------------------------- a good folder


def test_a_valid_folder_loads_as_a_latent_model_and_matches_numpy(folder):
    model = load_onnx_model(folder)
    assert isinstance(model, OnnxModel) and isinstance(model, LatentModel)
    assert (model.latent_dim, model.image_shape, model.likelihood) == (LATENT, IMAGE, "bernoulli")
    assert model.is_variational and not model.conditional and model.num_classes == 0
    assert model.device == torch.device("cpu") and model.title == "linear test VAE"
    x = torch.rand(5, *IMAGE, generator=torch.Generator().manual_seed(0))
    mu, logvar = model.encode(x)
    w = {t.name: numpy_helper.to_array(t) for t in encoder_graph().graph.initializer}
    flat = x.reshape(5, -1).numpy()
    assert np.allclose(mu.numpy(), flat @ w["w0"] + w["b0"], atol=1e-5)
    assert np.allclose(logvar.numpy(), flat @ w["w1"] + w["b1"], atol=1e-5)
    images = model.decode(mu)
    assert images.shape == (5, *IMAGE) and images.dtype == torch.float32
    assert float(images.min()) >= 0 and float(images.max()) <= 1
    nll = model.recon_nll(x, mu)
    ref = torch.nn.functional.binary_cross_entropy(images, x, reduction="none").flatten(1).sum(1)
    assert nll.shape == (5,) and torch.allclose(nll, ref, atol=1e-4)


def test_large_batches_run_in_chunks_with_the_same_result(folder, monkeypatch):
    model = load_onnx_model(folder)
    z = torch.randn(1000, LATENT, generator=torch.Generator().manual_seed(1))
    whole = model.decode(z)
    monkeypatch.setattr("core.formats.onnx_model.MAX_RUN_FLOATS", 16 * 7)  # 7 images per run
    assert torch.equal(model.decode(z), whole)
    assert model.decode(torch.zeros(0, LATENT)).shape == (0, *IMAGE)  # an empty batch runs nothing
    mu, logvar = model.encode(torch.zeros(0, *IMAGE))
    assert mu.shape == logvar.shape == (0, LATENT)


def test_layout_and_value_range_are_converted_at_the_boundary(tmp_path):
    """An "identity" model on HWC images in [-1, 1]: the code is the image itself, flattened."""
    shape = (3, 2, 2)
    d = int(np.prod(shape))
    hwc = [BATCH, 2, 2, 3]
    eye = numpy_helper.from_array(np.array([-1, d], np.int64), "flat_shape")
    back = numpy_helper.from_array(np.array([-1, 2, 2, 3], np.int64), "img_shape")
    zero = numpy_helper.from_array(np.array(0.0, np.float32), "zero")
    enc = _model(
        [helper.make_node("Reshape", ["x", "flat_shape"], ["mu"]), helper.make_node("Mul", ["mu", "zero"], ["logvar"])],
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, hwc)],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, [BATCH, d]) for n in ("mu", "logvar")],
        [eye, zero],
    )
    dec = _model(
        [helper.make_node("Reshape", ["z", "img_shape"], ["image"])],
        [helper.make_tensor_value_info("z", TensorProto.FLOAT, [BATCH, d])],
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, hwc)],
        [back],
    )
    spec = {**SPEC, "latent_dim": d, "image_shape": list(shape), "layout": "HWC", "value_range": [-1, 1]}
    model = load_onnx_model(write_folder(tmp_path / "hwc", enc, dec, spec))
    x = torch.rand(3, *shape, generator=torch.Generator().manual_seed(2))
    mu, _ = model.encode(x)
    assert torch.allclose(mu, (2 * x - 1).permute(0, 2, 3, 1).reshape(3, d), atol=1e-6)
    assert torch.allclose(model.decode(mu), x, atol=1e-6)


def test_a_conditional_model_takes_labels(tmp_path):
    folder = write_folder(
        tmp_path / "cvae",
        encoder_graph(classes=3),
        decoder_graph(classes=3),
        num_classes=3,
        encoder_inputs=["x", "y"],
        decoder_inputs=["z", "y"],
    )
    model = load_onnx_model(folder)
    assert model.conditional and model.num_classes == 3
    z = torch.zeros(2, LATENT)
    a, b = model.decode(z, torch.tensor([0, 0])), model.decode(z, torch.tensor([0, 2]))
    assert torch.equal(a[0], b[0]) and not torch.equal(a[1], b[1])
    assert torch.equal(model.decode(z, 2)[0], b[1])  # one label for the whole batch
    with pytest.raises(ValueError, match="needs labels"):
        model.decode(z)
    with pytest.raises(ValueError, match=r"labels must be 2 integers in \[0, 3\)"):
        model.decode(z, torch.tensor([0, 3]))


def test_a_onehot_label_input_gives_the_same_model(tmp_path):
    names = {"num_classes": 3, "encoder_inputs": ["x", "y"], "decoder_inputs": ["z", "y"]}
    index = write_folder(tmp_path / "index", encoder_graph(classes=3), decoder_graph(classes=3), **names)
    onehot = write_folder(
        tmp_path / "onehot", encoder_graph(classes=3, onehot=True), decoder_graph(classes=3, onehot=True), **names
    )
    _edit_json(onehot, label="onehot")
    a, b = load_onnx_model(index), load_onnx_model(onehot)
    x, y = torch.rand(4, *IMAGE), torch.tensor([2, 0, 1, 2])
    assert torch.allclose(a.encode(x, y)[0], b.encode(x, y)[0], atol=1e-6)
    assert torch.allclose(a.decode(torch.ones(4, LATENT), y), b.decode(torch.ones(4, LATENT), y), atol=1e-6)


@pytest.mark.parametrize("decoder", ["image", "logits"])
def test_a_gaussian_model_has_an_honest_nll(decoder, tmp_path):
    graph = decoder_graph(post="logits" if decoder == "logits" else "sigmoid")
    spec = {**SPEC, "decoder": decoder, "likelihood": "gaussian", "sigma": 0.2}
    folder = write_folder(tmp_path / "g", decoder=graph, spec=spec)
    model = load_onnx_model(folder)
    x, z = torch.rand(4, *IMAGE), torch.randn(4, LATENT)
    ref = torch.distributions.Normal(model.decode(z), 0.2).log_prob(x).flatten(1).sum(1)
    assert torch.allclose(model.recon_nll(x, z), -ref, atol=1e-3)


def test_listing_a_folder_of_models_reads_json_only(tmp_path):
    write_folder(tmp_path / "good")
    broken = write_folder(tmp_path / "broken")
    (broken / "decoder.onnx").unlink()
    (tmp_path / ".importing.tmp").mkdir()
    (tmp_path / "not-a-model").mkdir()
    infos = list_foreign(tmp_path)
    assert [i.name for i in infos] == ["broken", "good"]
    assert infos[1].ok and infos[1].spec.latent_dim == LATENT
    assert not infos[0].ok and "decoder.onnx: missing" in infos[0].error


def test_the_spec_round_trips_through_its_dict():
    spec = OnnxSpec.from_dict(SPEC)
    assert OnnxSpec.from_dict(spec.to_dict()) == spec and spec.sigma is None and spec.label == "index"


# ---------------------------------------------------------------- broken folders


def _pickle(folder: Path, name: str) -> None:
    (folder / name).write_bytes(pickle.dumps({"state_dict": [1, 2, 3]}))


def _zip(folder: Path, name: str) -> None:
    with zipfile.ZipFile(folder / name, "w") as z:
        z.writestr("archive/data.pkl", b"\x80\x02}q\x00.")


def _external(folder: Path, name: str, location: str) -> None:
    """Move the graph's weights to an external data file at ``location`` (relative to the folder)."""
    model = onnx.load(folder / name)
    for tensor in model.graph.initializer:
        if tensor.name.startswith("w"):
            onnx.external_data_helper.set_external_data(tensor, location=location)
            tensor.ClearField("raw_data")
            tensor.ClearField("float_data")
    onnx.save(model, folder / name)


def _edit_json(folder: Path, **changes) -> None:
    spec = json.loads((folder / "model.json").read_text())
    for key, value in changes.items():
        if value is ...:
            spec.pop(key, None)
        else:
            spec[key] = value
    (folder / "model.json").write_text(json.dumps(spec))


BROKEN = {
    # name: (how to break the folder, the file the message names, what it says)
    "missing encoder": (lambda f: (f / "encoder.onnx").unlink(), "encoder.onnx", "missing"),
    "missing decoder": (lambda f: (f / "decoder.onnx").unlink(), "decoder.onnx", "missing"),
    "missing model.json": (lambda f: (f / "model.json").unlink(), "model.json", "missing"),
    "garbled model.json": (
        lambda f: (f / "model.json").write_text("{'latent_dim': 2,"),
        "model.json",
        "not valid JSON",
    ),
    "model.json not an object": (lambda f: (f / "model.json").write_text("[1, 2]"), "model.json", "JSON object"),
    "other format": (lambda f: _edit_json(f, format="keras"), "model.json", "not a Latent Lab ONNX model"),
    "missing latent_dim": (lambda f: _edit_json(f, latent_dim=...), "model.json", "missing field 'latent_dim'"),
    "latent_dim a string": (lambda f: _edit_json(f, latent_dim="2"), "model.json", "must be a whole number"),
    "huge latent": (lambda f: _edit_json(f, latent_dim=10**9), "model.json", "1,000,000,000; it must be from 1"),
    "huge image": (lambda f: _edit_json(f, image_shape=[1, 4096, 4]), "model.json", r"outside 1\.\.1024 pixels"),
    "four channels": (lambda f: _edit_json(f, image_shape=[4, 4, 4]), "model.json", "has 4 channels"),
    "unknown likelihood": (lambda f: _edit_json(f, likelihood="poisson"), "model.json", "'poisson'; choose one of"),
    "gaussian without sigma": (lambda f: _edit_json(f, likelihood="gaussian"), "model.json", "needs field 'sigma'"),
    "inverted value range": (lambda f: _edit_json(f, value_range=[1, 0]), "model.json", "needs low < high"),
    "one output name for a gaussian": (
        lambda f: _edit_json(f, encoder_outputs=["mu"]),
        "model.json",
        "lists 1 name; this model needs 2: mu, logvar",
    ),
    "pickle as decoder": (lambda f: _pickle(f, "decoder.onnx"), "decoder.onnx", "is a Python pickle"),
    "zip as encoder": (lambda f: _zip(f, "encoder.onnx"), "encoder.onnx", "is a zip archive"),
    "text as encoder": (
        lambda f: (f / "encoder.onnx").write_text("version https://git-lfs.github.com/spec/v1\n"),
        "encoder.onnx",
        "is a text file",
    ),
    "empty encoder": (lambda f: (f / "encoder.onnx").write_bytes(b""), "encoder.onnx", "empty file"),
    "binary garbage": (
        lambda f: (f / "decoder.onnx").write_bytes(b"\x00\xff" * 64),
        "decoder.onnx",
        "not an ONNX model",
    ),
    "over the size limit": (
        lambda f: os.truncate(f / "decoder.onnx", MAX_GRAPH_BYTES + 1),  # sparse: no disk is written
        "decoder.onnx",
        "500,000,001 bytes is over the limit",
    ),
    "unknown operator": (
        lambda f: onnx.save(decoder_graph(post="bogus-op"), f / "decoder.onnx"),
        "decoder.onnx",
        "onnxruntime cannot load it",
    ),
    "wrong input name": (
        lambda f: onnx.save(encoder_graph(in_name="input_1"), f / "encoder.onnx"),
        "encoder.onnx",
        r"its inputs are \['input_1'\], but model.json declares 'x' \(image\)",
    ),
    "one encoder output where two are declared": (
        lambda f: onnx.save(encoder_graph(outputs=("mu",)), f / "encoder.onnx"),
        "encoder.onnx",
        r"its outputs are \['mu'\], but model.json declares 'mu' \(mu\), 'logvar' \(logvar\)",
    ),
    "latent size differs": (
        lambda f: onnx.save(decoder_graph(latent=3), f / "decoder.onnx"),
        "decoder.onnx",
        r"input 'z' \(z\) has shape \(batch, 3\); model.json needs \(batch, 2\) \(latent_dim 2\)",
    ),
    "image shape differs": (
        lambda f: _edit_json(f, image_shape=[1, 5, 5]),
        "encoder.onnx",
        r"has shape \(batch, 1, 4, 4\); model.json needs \(batch, 1, 5, 5\) \(image_shape \[1, 5, 5\], layout CHW\)",
    ),
    "fixed batch size": (
        lambda f: onnx.save(encoder_graph(batch=1), f / "encoder.onnx"),
        "encoder.onnx",
        "fixed batch size of 1",
    ),
    "label declared, graph has none": (
        lambda f: _edit_json(f, num_classes=10, encoder_inputs=["x", "y"], decoder_inputs=["z", "y"]),
        "encoder.onnx",
        r"its inputs are \['x'\], but model.json declares 'x' \(image\), 'y' \(label\)",
    ),
    "decoder outputs NaN": (
        lambda f: onnx.save(decoder_graph(post="nan"), f / "decoder.onnx"),
        "decoder.onnx",
        "decoding zero codes, batch 2 gave NaN or inf in output 'image'",
    ),
    "values far outside value_range": (
        lambda f: onnx.save(decoder_graph(post="x255"), f / "decoder.onnx"),
        "decoder.onnx",
        r"far outside model.json's value_range \[0, 1\]",
    ),
    "external data outside the folder": (
        lambda f: _external(f, "encoder.onnx", "../weights.data"),
        "encoder.onnx",
        "refers to external data '../weights.data' outside the model's folder",
    ),
    "external data at an absolute path": (
        lambda f: _external(f, "encoder.onnx", "/etc/passwd"),
        "encoder.onnx",
        "outside the model's folder",
    ),
    "external data missing": (
        lambda f: _external(f, "decoder.onnx", "decoder.onnx.data"),
        "decoder.onnx",
        "external data file 'decoder.onnx.data' is missing",
    ),
    "replaced after hashing": (
        lambda f: _edit_json(f, sha256={"encoder.onnx": "0" * 64, "decoder.onnx": "0" * 64}),
        "encoder.onnx",
        "do not match model.json's SHA-256",
    ),
}


@pytest.mark.parametrize("case", list(BROKEN))
def test_a_broken_folder_gets_one_message_naming_the_file(case, folder):
    breaks, file, problem = BROKEN[case]
    breaks(folder)
    with pytest.raises(ForeignModelError, match=problem) as info:
        load_onnx_model(folder)
    message = str(info.value)
    assert message.startswith(str(folder / file)), message
    assert isinstance(info.value, CheckpointError)  # the app's and CLI's existing handlers catch it
    assert "\n" not in message and "Traceback" not in message


def test_graphs_without_static_shapes_are_caught_by_the_probe(folder):
    wrong = decoder_graph(out_dims=[BATCH, None, None, None], reshape=[-1, 1, 2, 8], hidden_shape=True)
    onnx.save(wrong, folder / "decoder.onnx")
    with pytest.raises(ForeignModelError, match=r"gave output 'image' \(image\) of shape \(2, 1, 2, 8\)") as info:
        load_onnx_model(folder)
    assert str(info.value).startswith(str(folder / "decoder.onnx"))
    unknown_rank = decoder_graph()
    unknown_rank.graph.output[0].type.tensor_type.ClearField("shape")
    onnx.save(unknown_rank, folder / "decoder.onnx")
    assert load_onnx_model(folder).decode(torch.zeros(3, LATENT)).shape == (3, *IMAGE)


def test_a_symlink_out_of_the_folder_is_outside_it(folder, tmp_path):
    _external(folder, "encoder.onnx", "weights.data")
    (tmp_path / "elsewhere.data").write_bytes(b"\0" * 64)
    (folder / "weights.data").symlink_to(tmp_path / "elsewhere.data")
    with pytest.raises(ForeignModelError, match="outside the model's folder"):
        load_onnx_model(folder)


def test_external_data_inside_the_folder_loads(folder):
    reference = load_onnx_model(folder).decode(torch.ones(2, LATENT))
    model = onnx.load(folder / "decoder.onnx")
    onnx.save(
        model, folder / "decoder.onnx", save_as_external_data=True, location="decoder.onnx.data", size_threshold=100
    )
    loaded = load_onnx_model(folder)
    assert torch.equal(loaded.decode(torch.ones(2, LATENT)), reference)
    assert "decoder.onnx.data" in loaded.files()


def test_a_path_that_is_not_a_folder_is_named(tmp_path):
    with pytest.raises(ForeignModelError, match="not a folder"):
        load_onnx_model(tmp_path / "nowhere")
    with pytest.raises(ForeignModelError, match="missing"):
        read_spec(tmp_path)


def test_the_spec_validator_is_usable_without_a_folder():
    bad = copy.deepcopy(SPEC) | {"num_classes": 1}
    with pytest.raises(ForeignModelError, match="num_classes is 1"):
        OnnxSpec.from_dict(bad, "upload/model.json")
