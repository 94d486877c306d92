"""The in-browser decoder's server half (core.app.browser_decoder): the decoder file served once per
model, the vendored onnxruntime-web, and the component's data (slider rows, path codes, the code
the browser sends back). The browser half is tested in tests/test_browser_sliders.py."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from core.app import browser_decoder as bd
from core.app.catalog import LoadedModel
from core.formats.checkpoints import load_checkpoint, save_checkpoint
from core.formats.export import ExportError, export_checkpoint
from core.formats.onnx_model import load_onnx_model
from core.lenses.latent import decode, lerp, slerp
from core.models.config import ModelConfig
from core.models.networks import build_model
from tests.conftest import ROOT

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    """An untrained conditional MLP VAE (latent 3, 10 classes), saved as one of our checkpoints."""
    torch.manual_seed(0)
    model = build_model(ModelConfig(kind="cvae", arch="mlp", latent_dim=3, hidden=(16,), num_classes=10))
    return save_checkpoint(model, tmp_path_factory.mktemp("ckpt") / "tiny-cvae")


def loaded(path: Path) -> LoadedModel:
    ckpt = load_checkpoint(path)
    return LoadedModel(ckpt.name, ckpt.model, ckpt.meta, ckpt.path)


def run_decoder(path: Path, dec: bd.BrowserDecoder, z: np.ndarray, y: int) -> np.ndarray:
    """What the page computes: the graph's output, through a sigmoid for logits."""
    import onnxruntime as ort

    out = ort.InferenceSession(str(path)).run([dec.output], {dec.inputs[0]: z[None], dec.inputs[1]: np.array([y])})[0]
    return 1 / (1 + np.exp(-out)) if dec.output_kind == "logits" else out


def test_a_checkpoint_is_exported_once_and_named_by_its_weights(checkpoint, tmp_path, monkeypatch):
    model = loaded(checkpoint)
    dec = bd.prepare(model, tmp_path)
    assert dec.file == f"{model.meta['weights_sha256']}.onnx"
    assert (dec.inputs, dec.output_kind, dec.label, dec.num_classes) == (("z", "y"), "logits", "index", 10)
    assert dec.image_shape == (1, 28, 28) and dec.latent_dim == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([dec.file, dec.file.replace(".onnx", ".json")])
    z = np.array([0.5, -1.0, 2.0], np.float32)
    want = decode(model.model, z, 7)[0]
    assert np.abs(run_decoder(tmp_path / dec.file, dec, z, 7) - want).max() < 1e-5
    monkeypatch.setattr("core.formats.export.export_checkpoint", lambda *a, **k: pytest.fail("exported twice"))
    assert bd.prepare(model, tmp_path) == dec, "found on disk the second time"
    data = dec.to_data("app/static/decoders/" + dec.file)
    assert data["url"].endswith(dec.file) and data["key"] == model.meta["weights_sha256"]
    json.dumps(data)  # the component's data is JSON


def test_the_shipped_decoders_are_exported_ahead_and_a_broken_model_is_skipped(checkpoint, tmp_path, monkeypatch):
    from core.app.catalog import ModelEntry

    good = ModelEntry("tiny-cvae", "tiny-cvae", "shipped", checkpoint, load_checkpoint(checkpoint).meta)
    broken = ModelEntry("broken", "broken", "shipped", tmp_path / "nope.safetensors", {}, error="unreadable")
    out = tmp_path / "decoders"
    assert bd.export_ahead([broken, good], out) == ["tiny-cvae"]
    assert (out / f"{good.meta['weights_sha256']}.onnx").is_file()
    monkeypatch.setattr("core.formats.export.export_checkpoint", lambda *a, **k: pytest.fail("exported twice"))
    assert bd.export_ahead([good], out) == ["tiny-cvae"], "the page finds it on disk: no wait"


def test_a_page_never_waits_behind_another_threads_export(checkpoint, tmp_path):
    model = loaded(checkpoint)
    # the warm-up thread is exporting another model: the page hears so at once
    with bd._EXPORTING, pytest.raises(bd.ExportInProgress, match="still being prepared"):
        bd.prepare(model, tmp_path, wait=False)
    assert not list(tmp_path.iterdir()), "nothing half-written"
    assert bd.prepare(model, tmp_path, wait=False).file.endswith(".onnx"), "the next run exports it"


def test_a_foreign_model_serves_its_own_decoder(checkpoint, tmp_path):
    folder = export_checkpoint(checkpoint, tmp_path / "foreign").folder
    onnx = load_onnx_model(folder)
    model = LoadedModel("foreign", onnx, {}, folder)
    dec = bd.prepare(model, tmp_path / "served")
    assert (tmp_path / "served" / dec.file).read_bytes() == (folder / "decoder.onnx").read_bytes()
    assert dec.file == bd.model_key(model) + ".onnx"
    onnx.external["decoder"] = ["weights.bin"]
    with pytest.raises(bd.BrowserDecoderError, match="single-file decoder.onnx"):
        bd.prepare(model, tmp_path / "other")


def test_a_failed_export_says_why_and_leaves_nothing(checkpoint, tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise ExportError("decoder.onnx: torch.onnx.export failed: no")

    monkeypatch.setattr("core.formats.export.export_checkpoint", broken)
    with pytest.raises(bd.BrowserDecoderError, match="could not be exported: decoder.onnx: torch.onnx.export failed"):
        bd.prepare(loaded(checkpoint), tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_a_stale_or_broken_description_is_exported_again(checkpoint, tmp_path):
    model = loaded(checkpoint)
    dec = bd.prepare(model, tmp_path)
    (tmp_path / dec.file.replace(".onnx", ".json")).write_text("{broken", encoding="utf-8")
    assert bd.prepare(model, tmp_path) == dec


def test_the_vendored_onnxruntime_web_is_found_or_the_message_says_how_to_build_it(tmp_path):
    with pytest.raises(bd.BrowserDecoderError, match="make web"):
        bd.ort_build(tmp_path)
    manifest = {"version": "1.30.0", "module": "ort.mjs", "wasm": "ort.wasm"}
    (tmp_path / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    (tmp_path / "ort.mjs").write_text("export {}", encoding="utf-8")
    with pytest.raises(bd.BrowserDecoderError, match="ort.wasm is missing"):
        bd.ort_build(tmp_path)
    (tmp_path / "ort.wasm").write_bytes(b"\0asm")
    assert bd.ort_build(tmp_path) == bd.OrtBuild("1.30.0", "ort.mjs", "ort.wasm")


def test_onnxruntime_web_is_pinned_and_the_built_files_match_the_pin():
    package = json.loads((ROOT / "web" / "package.json").read_text(encoding="utf-8"))
    pin = package["dependencies"]["onnxruntime-web"]
    assert pin[0].isdigit(), "an exact version, so every machine builds the same files"
    lock = json.loads((ROOT / "web" / "package-lock.json").read_text(encoding="utf-8"))
    assert lock["packages"]["node_modules/onnxruntime-web"]["version"] == pin
    built = ROOT / "static" / "ort"
    if not (built / "manifest.json").is_file():
        pytest.skip("static/ort is not built here (make web)")
    assert bd.ort_build(built).version == pin
    assert (built / "LICENSE.txt").read_text(encoding="utf-8").count("MIT License") == 1


def test_slider_rows_follow_the_display_order():
    rows = bd.slider_rows(np.array([2, 0, 1]), np.full(3, -4.0), np.full(3, 4.0), np.full(3, 0.05), ["a", "b", "c"])
    assert [r["i"] for r in rows] == [2, 0, 1]
    assert rows[0] == {"i": 2, "label": "c", "lo": -4.0, "hi": 4.0, "step": 0.05}
    json.dumps(rows)


@pytest.mark.parametrize("method", ["linear", "slerp"])
def test_a_dense_path_runs_from_a_to_b_and_the_scrubber_blends_neighbours(method):
    a, b = np.array([1.0, 0.0, 2.0]), np.array([-1.0, 3.0, 0.5])
    path = bd.path_codes(a, b, method)
    assert len(path) == 101 and np.allclose(path[0], a) and np.allclose(path[-1], b)
    exact = (lerp if method == "linear" else slerp)(a, b, np.array([0.3]))[0]
    assert np.allclose(bd.code_at(path, 0.3), exact, atol=1e-5)
    between = bd.code_at(path, 0.305)
    assert np.allclose(between, (np.asarray(path[30]) + np.asarray(path[31])) / 2, atol=1e-5)
    assert np.allclose(bd.code_at(path, 1.5), b) and np.allclose(bd.code_at(path, -1), a)


def test_a_code_from_the_browser_is_checked_like_a_link():
    lo, hi = np.full(2, -4.0), np.full(2, 4.0)
    assert np.array_equal(bd.accept_code({"z": [0.5, -9], "rev": 1}, lo, hi), np.array([0.5, -4.0], np.float32))
    for bad in (None, [], {"z": [1]}, {"z": [1, "2"]}, {"z": [True, 1]}, {"z": [float("nan"), 0]}, {"z": "1,2"}):
        assert bd.accept_code(bad, lo, hi) is None, bad
