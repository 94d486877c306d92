"""The shipped checkpoints: listed in the manifest, loadable, honest about their figures."""

import pytest

from core.app.catalog import SHIPPED_SPATIAL
from core.data.registry import load_dataset
from core.formats.checkpoints import list_checkpoints, load_checkpoint
from core.models.evaluate import card_binarized_seed, measure_card
from core.training.pretrain import CHECKPOINTS, MANIFEST, read_manifest
from tests.conftest import requires_shared_data, shared_data_dir

ENTRIES = read_manifest(MANIFEST)
MAX_BYTES = 60_000_000  # issue 23: everything shipped within 60 MB (45 MB before the colour models)


def test_manifest_and_folder_agree():
    on_disk = {p.name for p in CHECKPOINTS.iterdir() if not p.name.startswith(".")}
    expected = {"manifest.json", SHIPPED_SPATIAL}  # spatial/: diffusers folders (test below)
    for e in ENTRIES:
        expected |= {f"{e.name}.safetensors", f"{e.name}.json"}
    assert on_disk == expected
    assert all(info.ok for info in list_checkpoints(CHECKPOINTS))


def test_checkpoints_fit_in_the_size_budget():
    total = sum(p.stat().st_size for p in CHECKPOINTS.rglob("*") if p.is_file())
    assert total <= MAX_BYTES, f"checkpoints/ holds {total / 1e6:.1f} MB"


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: e.name)
def test_each_checkpoint_loads_and_matches_its_entry(entry):
    ckpt = load_checkpoint(CHECKPOINTS / entry.name)
    assert ckpt.meta["manifest_entry"] == entry.raw()
    cfg = ckpt.config.to_dict()
    assert {k: cfg[k] for k in entry.model} == entry.model
    assert {k: ckpt.meta["train"][k] for k in entry.train} == entry.train
    assert ckpt.meta["dataset"]["name"] == entry.dataset
    # trained on the full sets (the data folder), a table that ships inside scikit-learn, or a set
    # drawn by code (the embedded set is the whole set)
    generated = entry.dataset in ("sprites", "shapes3d")
    expected = "table" if entry.dataset.startswith("table:") else "embedded" if generated else "folder"
    assert ckpt.meta["dataset"]["source"] == expected
    card = ckpt.meta["card"]
    for key in ("test_loss", "test_recon", "test_kl", "active_units", "epochs", "train_seconds", "data_source"):
        assert key in card, key
    assert card["epochs"] == entry.train["epochs"]
    assert ckpt.meta["versions"]["torch"]


@requires_shared_data
@pytest.mark.slow
@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: e.name)
def test_recorded_test_metric_reproduces(entry):
    ckpt = load_checkpoint(CHECKPOINTS / entry.name)
    data = entry.select(load_dataset(entry.dataset, shared_data_dir(), download=False))  # classes, if any
    seed, binarized = ckpt.meta["card"]["eval_seed"], card_binarized_seed(ckpt.meta["train"])
    card = measure_card(ckpt.model, data.test_x, data.test_y, seed=seed, binarized_seed=binarized)
    recorded = ckpt.meta["card"]
    assert recorded.get("binarized_seed") == binarized, "a model of binary images is measured on binary images"
    assert card["test_loss"] == pytest.approx(recorded["test_loss"], abs=0.05)
    assert card["active_units"] == recorded["active_units"]


SPATIAL = sorted(p for p in (CHECKPOINTS / SHIPPED_SPATIAL).iterdir() if p.is_dir())


@pytest.mark.parametrize("folder", SPATIAL, ids=lambda p: p.name)
def test_each_shipped_spatial_vae_is_safetensors_and_reproduces_its_card(folder):
    """A diffusers folder with no pickle, its latentlab.json names one of our data sets, and its
    recorded PSNR on that set's test split comes back to 0.01 dB."""
    from core.formats.spatial import open_spatial
    from core.formats.spatial_layout import read_card
    from core.lenses.spatial import reconstruction

    files = {"config.json", "diffusion_pytorch_model.safetensors", "latentlab.json"}
    assert {p.name for p in folder.iterdir()} == files
    meta = read_card(folder)
    model = open_spatial(folder)
    assert model.notes == () and model.source == "diffusers"
    data = load_dataset(meta["dataset"])
    psnr = reconstruction(model, data.test_x, batch_size=100).mean_psnr
    assert meta["card"]["test_n"] == len(data.test_x)
    assert psnr == pytest.approx(meta["card"]["test_psnr"], abs=0.01)
