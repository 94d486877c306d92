"""Export to the ONNX model folder and import from it (core.formats.export, ``python -m core export|import``).

The VAE here is defined in the test, as a user's would be, and exported with the very code that
docs/own-model.md shows (the test runs the document's snippet). Exports take a second or two
each; the one over all shipped checkpoints is marked slow.
"""

from __future__ import annotations

import json
import os
import pickle
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from core.cli import main
from core.data.registry import fit_images
from core.experiments import anomaly
from core.formats.checkpoints import load_checkpoint
from core.formats.export import (
    ExportError,
    export_checkpoint,
    export_model,
    import_files,
    import_folder,
    model_card,
)
from core.formats.foreign import ForeignModelError, list_foreign, read_spec
from core.formats.onnx_model import OnnxModel, load_onnx_model
from core.lenses import denoise, latent
from core.models import evaluate
from core.models.losses import gaussian_kl
from core.models.protocol import LatentModel
from tests.conftest import ROOT, tiny_dataset
from tests.test_foreign import decoder_graph, encoder_graph, write_folder

pytestmark = pytest.mark.usefixtures("one_thread")

DOC = ROOT / "docs" / "own-model.md"
MANIFEST = json.loads((ROOT / "checkpoints" / "manifest.json").read_text())["checkpoints"]
SHIPPED = [c["name"] for c in MANIFEST if not c["dataset"].startswith("table:")]  # image models
TABLE_MODELS = [c["name"] for c in MANIFEST if c["dataset"].startswith("table:")]


class MyVAE(nn.Module):
    """A user's VAE: MLP 784-64-16, ``encode(x) -> (mu, logvar)``, ``decode(z) -> image in [0, 1]``."""

    def __init__(self, latent: int = 16, seed: int = 0):
        super().__init__()
        torch.manual_seed(seed)
        self.fc1, self.fc2 = nn.Linear(784, 64), nn.Linear(latent, 64)
        self.mu, self.logvar, self.out = nn.Linear(64, latent), nn.Linear(64, latent), nn.Linear(64, 784)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = F.relu(self.fc1(x.flatten(1)))
        return self.mu(h), self.logvar(h)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.out(F.relu(self.fc2(z)))).view(-1, 1, 28, 28)


class LabelledAE(nn.Module):
    """A conditional deterministic autoencoder on 8×8 colour images: ``encode(x, y) -> z``."""

    def __init__(self, classes: int = 3, latent: int = 4):
        super().__init__()
        torch.manual_seed(1)
        self.classes = classes
        self.enc, self.dec = nn.Linear(192 + classes, latent), nn.Linear(latent + classes, 192)

    def encode(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.enc(torch.cat([x.flatten(1), F.one_hot(y, self.classes).float()], 1))

    def decode(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.dec(torch.cat([z, F.one_hot(y, self.classes).float()], 1))).view(-1, 3, 8, 8)


def doc_snippet() -> str:
    """The first Python block after docs/own-model.md's "## From PyTorch"."""
    text = DOC.read_text(encoding="utf-8").split("## From PyTorch", 1)[1]
    return re.search(r"```python\n(.*?)```", text, re.S).group(1)


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> tuple[MyVAE, Path, object]:
    """(the module, its model folder, the export report), made by running the document's snippet."""
    cwd, work = os.getcwd(), tmp_path_factory.mktemp("doc")
    vae = MyVAE()
    namespace = {"MyVAE": lambda: vae}
    os.chdir(work)
    try:
        exec(compile(doc_snippet(), str(DOC), "exec"), namespace)
    finally:
        os.chdir(cwd)
    return vae, work / "my-vae", namespace["report"]


@pytest.fixture(scope="module")
def onnx_vae(exported) -> OnnxModel:
    return load_onnx_model(exported[1])


# ---------------------------------------------------------------- a user's module


def test_the_documented_snippet_exports_a_vae_that_matches_torch(exported, onnx_vae):
    vae, folder, report = exported
    assert report.folder == Path("my-vae") and report.decode_diff <= 1e-4 and report.encode_diff <= 1e-4
    assert sorted(p.name for p in folder.iterdir()) == ["decoder.onnx", "encoder.onnx", "model.json"]
    spec = read_spec(folder)
    assert (spec.title, spec.latent_dim, spec.image_shape, spec.dataset) == (
        "My VAE on MNIST",
        16,
        (1, 28, 28),
        "mnist",
    )
    assert (
        spec.encoder == "gaussian"
        and spec.decoder == "image"
        and set(spec.meta["sha256"])
        == {
            "encoder.onnx",
            "decoder.onnx",
        }
    )
    assert isinstance(onnx_vae, LatentModel)
    gen = torch.Generator().manual_seed(5)
    z, x = torch.randn(300, 16, generator=gen), torch.rand(50, 1, 28, 28, generator=gen)
    with torch.no_grad():
        assert (onnx_vae.decode(z) - vae.decode(z)).abs().max() <= 1e-4
        for got, want in zip(onnx_vae.encode(x), vae.encode(x), strict=True):
            assert (got - want).abs().max() <= 1e-4


def test_the_analyses_run_on_the_exported_model(onnx_vae):
    data = tiny_dataset(64)
    x, y = data.test_x, data.test_y
    codes = latent.encode_codes(onnx_vae, x, y)
    assert codes.mu.shape == (32, 16) and codes.logvar.shape == (32, 16)
    images = latent.decode(onnx_vae, np.random.default_rng(0).normal(size=(1000, 16)).astype(np.float32))
    assert images.shape == (1000, 1, 28, 28)
    recon = latent.reconstruct(onnx_vae, x)
    path = latent.interpolate(onnx_vae, x[0], x[1], steps=5, method="slerp")
    _, samples = latent.sample_prior(onnx_vae, 9, seed=1)
    grid = latent.manifold_grid(onnx_vae, n=5, dims=(0, 3))
    metrics = evaluate.evaluate(onnx_vae, x)
    mu, logvar = evaluate.encode_dataset(onnx_vae, x)
    card = evaluate.measure_card(onnx_vae, x)
    scores = [anomaly.anomaly_scores(onnx_vae, x, kind=k) for k in anomaly.SCORES]
    denoised = denoise.model_method(onnx_vae)(x)
    arrays = [codes.mu, images, recon, path.images, samples, grid.images, mu, logvar, *scores, denoised]
    assert all(np.isfinite(a).all() for a in arrays)
    assert all(a.min() >= 0 and a.max() <= 1 for a in (images, recon, path.images, samples, grid.images, denoised))
    assert metrics.n == 32 and np.isfinite([metrics.loss, metrics.recon, metrics.kl]).all()
    assert card["test_n"] == 32 and 0 <= card["active_units"] <= 16


def test_evaluate_matches_a_torch_reference_for_bernoulli(exported, onnx_vae):
    vae = exported[0]
    x = torch.from_numpy(tiny_dataset(80).test_x)
    got = evaluate.evaluate(onnx_vae, x, seed=3)
    gen = torch.Generator().manual_seed(3)
    with torch.no_grad():  # Kingma & Welling: one sample z ~ q(z|x), BCE summed over pixels, KL to N(0, I)
        mu, logvar = vae.encode(x)
        z = mu + torch.exp(0.5 * logvar) * torch.randn(mu.shape, generator=gen)
        recon = F.binary_cross_entropy(vae.decode(z), x, reduction="none").flatten(1).sum(1)
        kl = gaussian_kl(mu, logvar)
    assert got.recon == pytest.approx(recon.mean().item(), rel=1e-5)
    assert got.kl == pytest.approx(kl.mean().item(), rel=1e-5)
    assert got.loss == pytest.approx((recon + kl).mean().item(), rel=1e-5)


def test_a_conditional_deterministic_module_exports(tmp_path):
    ae = LabelledAE()
    report = export_model(ae, tmp_path / "cae", image_shape=(3, 8, 8), latent_dim=4, title="labelled AE", num_classes=3)
    model = load_onnx_model(report.folder)
    assert not model.is_variational and model.conditional and report.spec.encoder_inputs == ("x", "y")
    x, y = torch.rand(6, 3, 8, 8), torch.tensor([0, 1, 2, 2, 1, 0])
    mu, logvar = model.encode(x, y)
    assert logvar is None and torch.allclose(mu, ae.encode(x, y), atol=1e-5)
    assert torch.allclose(model.decode(mu, y), ae.decode(mu, y), atol=1e-5)
    with pytest.raises(ValueError, match="needs labels"):
        model.decode(mu)


class Noisy(MyVAE):
    """A decoder that samples pixel noise: torch and onnxruntime draw different noise."""

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        image = super().decode(z)
        return (image + 0.05 * torch.rand_like(image)).clamp(0, 1)


def test_an_export_that_disagrees_with_torch_leaves_nothing(tmp_path):
    with pytest.raises(ExportError, match=r"disagrees with torch \(max abs difference: decode .*; nothing was written"):
        export_model(Noisy(), tmp_path / "noisy", image_shape=(1, 28, 28), latent_dim=16, title="noisy")
    assert list(tmp_path.iterdir()) == []  # neither the folder nor a hidden staging folder


class WrongDecode(MyVAE):
    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return super().decode(z).view(-1, 1, 14, 56)


def test_export_refuses_a_taken_folder_and_wrong_shapes(tmp_path):
    (tmp_path / "taken").mkdir()
    with pytest.raises(ExportError, match="taken: already exists"):
        export_model(MyVAE(), tmp_path / "taken", image_shape=(1, 28, 28), latent_dim=16, title="t")
    with pytest.raises(ExportError, match=r"gave \(2, 16\); latent_dim 8 needs \(2, 8\)"):
        export_model(MyVAE(), tmp_path / "wrong", image_shape=(1, 28, 28), latent_dim=8, title="t")
    with pytest.raises(ExportError, match=r"module.encode fails on images of shape \(2, 1, 32, 32\): "):
        export_model(MyVAE(), tmp_path / "wrong", image_shape=(1, 32, 32), latent_dim=16, title="t")
    with pytest.raises(ExportError, match=r"module.decode on 2 codes gave \(2, 1, 14, 56\); image_shape \[1, 28, 28\]"):
        export_model(WrongDecode(), tmp_path / "wrong", image_shape=(1, 28, 28), latent_dim=16, title="t")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken"]


def test_fit_images_converts_channels_and_size():
    grey = np.random.default_rng(0).random((5, 1, 28, 28), dtype=np.float32)
    rgb = fit_images(grey, (3, 32, 32))
    assert rgb.shape == (5, 3, 32, 32) and np.allclose(rgb[:, 0], rgb[:, 2])
    back = fit_images(rgb, (1, 32, 32))
    assert back.shape == (5, 1, 32, 32) and np.allclose(back[:, 0], rgb[:, 0], atol=1e-5)


# ---------------------------------------------------------------- our checkpoints and the CLI


def test_cli_exports_a_conditional_checkpoint_that_matches_torch(tmp_path, capsys):
    assert main(["export", str(ROOT / "checkpoints" / "mnist-cvae-mlp-z4"), "--onnx", str(tmp_path / "cvae")]) == 0
    out = capsys.readouterr().out
    assert "wrote" in out and re.search(r"max abs difference against torch: decode \S+, encode \S+", out)
    model, torch_model = (
        load_onnx_model(tmp_path / "cvae"),
        load_checkpoint(ROOT / "checkpoints" / "mnist-cvae-mlp-z4").model,
    )
    gen = torch.Generator().manual_seed(0)
    z, y, x = torch.randn(20, 4, generator=gen), torch.arange(20) % 10, torch.rand(20, 1, 28, 28, generator=gen)
    with torch.no_grad():
        assert (model.decode(z, y) - torch_model.decode(z, y)).abs().max() <= 1e-4
        assert torch.allclose(model.recon_nll(x, z, y), torch_model.recon_nll(x, z, y), rtol=1e-5)
    spec = read_spec(tmp_path / "cvae")
    assert spec.decoder == "logits" and spec.num_classes == 10 and spec.meta["card"]["test_loss"] > 0
    assert main(["export", str(ROOT / "checkpoints" / "mnist-cvae-mlp-z4"), "--onnx", str(tmp_path / "cvae")]) == 2
    assert "already exists" in capsys.readouterr().err


def test_cli_import_copies_the_folder_and_measures_a_card(exported, tmp_path, monkeypatch, capsys, mnist5k):
    monkeypatch.setenv("LATENTLAB_USER_CHECKPOINTS", str(tmp_path / "user"))
    assert main(["import", str(exported[1]), "--name", "mine", "--dataset", "mnist-5k"]) == 0
    assert "imported mine into" in capsys.readouterr().out
    dest = tmp_path / "user" / "mine"
    assert sorted(p.name for p in dest.iterdir()) == ["decoder.onnx", "encoder.onnx", "model.json"]
    card = read_spec(dest).meta["card"]
    want = evaluate.measure_card(load_onnx_model(exported[1]), mnist5k.test_x, mnist5k.test_y)
    assert card["test_loss"] == want["test_loss"] and card["dataset"] == "mnist-5k"
    assert [i.name for i in list_foreign(tmp_path / "user")] == ["mine"]
    assert main(["import", str(exported[1]), "--name", "mine", "--no-download"]) == 2
    assert "a model named 'mine' already exists" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("breaks", "file", "problem"),
    [
        (lambda f: (f / "decoder.onnx").write_bytes(pickle.dumps([1, 2])), "decoder.onnx", "is a Python pickle"),
        (lambda f: (f / "model.json").write_text("{"), "model.json", "not valid JSON"),
        (lambda f: (f / "encoder.onnx").unlink(), "encoder.onnx", "missing"),
    ],
)
def test_cli_import_of_a_broken_folder_exits_2_and_writes_nothing(
    breaks, file, problem, exported, tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv("LATENTLAB_USER_CHECKPOINTS", str(tmp_path / "user"))
    broken = tmp_path / "broken"
    shutil.copytree(exported[1], broken)
    breaks(broken)
    assert main(["import", str(broken), "--dataset", "mnist-5k"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {broken / file}: ") and problem in err
    assert not (tmp_path / "user").exists() or list((tmp_path / "user").iterdir()) == []


def test_import_copies_external_data_and_refuses_mismatched_labels(tmp_path):
    import onnx

    src = write_folder(tmp_path / "src")
    onnx.save(
        onnx.load(src / "decoder.onnx"),
        src / "decoder.onnx",
        save_as_external_data=True,
        location="w.data",
        size_threshold=100,
    )
    dest = import_folder(src, tmp_path / "user", name="ext")
    assert sorted(p.name for p in dest.iterdir()) == ["decoder.onnx", "encoder.onnx", "model.json", "w.data"]
    assert load_onnx_model(dest).decode(torch.zeros(1, 2)).shape == (1, 1, 4, 4)
    card = model_card(load_onnx_model(src), tiny_dataset(8))  # 28×28 data for a 4×4 model: resized
    assert card["test_n"] == 4 and card["data_source"].endswith("fitted to 1×4×4")
    labelled = write_folder(
        tmp_path / "lab",
        encoder_graph(classes=3),
        decoder_graph(classes=3),
        num_classes=3,
        encoder_inputs=["x", "y"],
        decoder_inputs=["z", "y"],
    )
    with pytest.raises(ExportError, match="the model takes 3 classes; tiny has 10"):
        model_card(load_onnx_model(labelled), tiny_dataset(8, shape=(1, 4, 4)))
    with pytest.raises(ExportError, match="already exists"):
        import_folder(src, tmp_path / "user", name="ext")


def test_uploaded_files_install_like_a_folder_and_failures_leave_nothing(exported, tmp_path):
    root = tmp_path / "user"
    files = {p.name: p.read_bytes() for p in exported[1].iterdir()} | {"notes.txt": b"not part of the model"}
    dest = import_files(files, "uploaded", root)
    assert sorted(p.name for p in dest.iterdir()) == ["decoder.onnx", "encoder.onnx", "model.json"]
    assert read_spec(dest).meta["imported"]["from"] == "upload" and load_onnx_model(dest).latent_dim == 16
    with pytest.raises(ForeignModelError, match=r"^broken/decoder.onnx: is a Python pickle"):
        import_files(files | {"decoder.onnx": pickle.dumps([1])}, "broken", root)
    with pytest.raises(ExportError, match="not a plain file name"):
        import_files({"../encoder.onnx": b"x"}, "evil", root)
    with pytest.raises(ExportError, match="already exists"):
        import_files(files, "uploaded", root)
    assert sorted(p.name for p in root.iterdir()) == ["uploaded"]  # no staging folder left behind


# ---------------------------------------------------------------- every shipped checkpoint


@pytest.mark.slow
@pytest.mark.parametrize("name", SHIPPED)
def test_every_shipped_checkpoint_exports_and_decodes_like_torch(name, tmp_path):
    ckpt = load_checkpoint(ROOT / "checkpoints" / name)
    report = export_checkpoint(ckpt, tmp_path / name)
    assert report.decode_diff <= 1e-4 and report.encode_diff <= 1e-4
    model = load_onnx_model(report.folder)
    cfg = ckpt.config
    z = torch.randn(64, cfg.latent_dim, generator=torch.Generator().manual_seed(7))
    y = torch.arange(64) % cfg.num_classes if cfg.conditional else None
    with torch.no_grad():
        assert (model.decode(z, y) - ckpt.model.decode(z, y)).abs().max() <= 1e-4
    assert (model.is_variational, model.likelihood, model.image_shape) == (
        cfg.is_variational,
        cfg.likelihood,
        cfg.image_shape,
    )


def test_a_tables_model_is_not_exported_and_says_why(tmp_path):
    assert TABLE_MODELS
    with pytest.raises(ExportError, match="models the rows of a table; latentlab-onnx folders hold image models"):
        export_checkpoint(ROOT / "checkpoints" / TABLE_MODELS[0], tmp_path / "t")
    assert not (tmp_path / "t").exists()
