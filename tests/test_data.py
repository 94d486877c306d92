import gzip
import hashlib
import os
import shutil

import numpy as np
import pytest

from core.data import registry as data_mod
from core.data.registry import DataError, load_dataset, read_idx
from tests.conftest import no_network, requires_shared_data, shared_data_dir

STEMS = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]


def _idx_bytes(arr: np.ndarray) -> bytes:
    magic = 2048 + arr.ndim
    header = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in arr.shape)
    return header + arr.astype(np.uint8).tobytes()


@pytest.fixture
def fake_mnist(tmp_path, monkeypatch):
    """A small MNIST folder in torchvision's layout, with its MD5s registered as the published ones."""
    rng = np.random.default_rng(0)
    arrays = {
        STEMS[0]: rng.integers(0, 256, (30, 28, 28)),
        STEMS[1]: rng.integers(0, 10, 30),
        STEMS[2]: rng.integers(0, 256, (10, 28, 28)),
        STEMS[3]: rng.integers(0, 10, 10),
    }
    raw = tmp_path / "data" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    md5s = {}
    for stem, arr in arrays.items():
        path = raw / f"{stem}.gz"
        path.write_bytes(gzip.compress(_idx_bytes(arr)))
        md5s[stem] = hashlib.md5(path.read_bytes()).hexdigest()
    monkeypatch.setitem(data_mod._IDX_FILES["mnist"], "files", md5s)
    return tmp_path / "data", arrays


def test_folder_is_used_first_and_never_written(fake_mnist, monkeypatch):
    root, arrays = fake_mnist
    monkeypatch.setitem(data_mod._DOWNLOADERS, "mnist", lambda cache: pytest.fail("must not download"))
    before = sorted((p.relative_to(root), p.stat().st_mtime_ns) for p in root.rglob("*"))
    ds = load_dataset("mnist", root)
    assert ds.source == "folder"
    assert ds.train_x.shape == (30, 1, 28, 28) and ds.test_x.shape == (10, 1, 28, 28)
    assert ds.train_x.dtype == np.float32 and ds.train_x.min() >= 0 and ds.train_x.max() <= 1
    np.testing.assert_allclose(ds.train_x[:, 0] * 255, arrays[STEMS[0]], atol=1e-3)
    np.testing.assert_array_equal(ds.test_y, arrays[STEMS[3]])
    assert ds.class_names[3] == "3"
    assert sorted((p.relative_to(root), p.stat().st_mtime_ns) for p in root.rglob("*")) == before


def test_environment_variable_names_the_folder(fake_mnist, monkeypatch):
    root, _ = fake_mnist
    monkeypatch.setenv("LATENTLAB_DATA", str(root))
    assert load_dataset("mnist").source == "folder"


def test_extracted_files_are_enough(fake_mnist, tmp_path, monkeypatch):
    root, _ = fake_mnist
    raw = root / "MNIST" / "raw"
    for stem in STEMS:
        (raw / stem).write_bytes(gzip.decompress((raw / f"{stem}.gz").read_bytes()))
        (raw / f"{stem}.gz").unlink()
    assert load_dataset("mnist", root).train_x.shape[0] == 30


def test_missing_file_is_named(fake_mnist):
    root, _ = fake_mnist
    (root / "MNIST" / "raw" / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte.gz: missing"):
        load_dataset("mnist", root)


def test_wrong_checksum_is_named(fake_mnist):
    root, _ = fake_mnist
    path = root / "MNIST" / "raw" / "train-labels-idx1-ubyte.gz"
    path.write_bytes(gzip.compress(b"\x00" * 100))
    with pytest.raises(DataError, match="train-labels-idx1-ubyte.gz: wrong checksum"):
        load_dataset("mnist", root)


def test_truncated_gzip_is_named(tmp_path):
    good = gzip.compress(_idx_bytes(np.zeros((5, 28, 28))))
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(good[: len(good) // 2])
    with pytest.raises(DataError, match="train-images-idx3-ubyte.gz"):
        read_idx(path)
    # a complete gzip of a truncated IDX payload is caught too
    path.write_bytes(gzip.compress(_idx_bytes(np.zeros((5, 28, 28)))[:-10]))
    with pytest.raises(DataError, match="truncated"):
        read_idx(path)


def test_missing_folder_is_an_error(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_dataset("mnist", tmp_path / "nope")


def test_download_comes_before_the_embedded_subset(tmp_path, monkeypatch):
    calls = []

    def fake_download(cache):
        calls.append(cache)
        ds = data_mod._load_mnist_5k()
        ds.source, ds.name = "download", "mnist"
        return ds

    monkeypatch.setitem(data_mod._DOWNLOADERS, "mnist", fake_download)
    ds = load_dataset("mnist", tmp_path)  # empty folder: no MNIST files in it
    assert ds.source == "download" and len(calls) == 1
    assert calls[0] == data_mod.cache_dir()


def test_offline_falls_back_to_the_embedded_subset(tmp_path, monkeypatch):
    no_network(monkeypatch)
    ds = load_dataset("mnist")
    assert ds.source == "embedded" and ds.fell_back_from == "mnist"
    assert "offline" in ds.source_note and "5,000" in ds.source_note
    assert any("download failed" in n for n in ds.notes)
    # all 5,000 embedded digits train; the test split is MNIST's real test set from data/
    assert ds.train_x.shape == (5000, 1, 28, 28) and ds.test_x.shape == (10000, 1, 28, 28)
    assert np.bincount(ds.test_y).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    # nothing half-downloaded is left looking like a data set
    assert load_dataset("mnist", download=False).source == "embedded"


def test_offline_faces_fall_back_resized_to_the_requested_shape(monkeypatch):
    no_network(monkeypatch)
    frey = load_dataset("frey-faces")
    assert frey.source == "embedded" and frey.image_shape == (1, 28, 20)
    assert "resized" in frey.source_note and "196 held-out Frey faces" in frey.source_note
    assert load_dataset("olivetti-faces", download=False).image_shape == (1, 64, 64)


def test_offline_fashion_without_its_held_out_file_says_so(tmp_path, monkeypatch):
    no_network(monkeypatch)
    monkeypatch.setattr(data_mod, "HELD_OUT_DIR", tmp_path)  # a clone without data/
    with pytest.raises(DataError, match="Fashion-MNIST is not available"):
        load_dataset("fashion-mnist")


def test_unknown_name():
    with pytest.raises(DataError, match="unknown data set 'cifar'"):
        load_dataset("cifar")


def test_embedded_sets_are_deterministic_and_stratified(tmp_path, monkeypatch):
    a, b = load_dataset("mnist-5k"), load_dataset("mnist-5k")
    np.testing.assert_array_equal(a.test_y, b.test_y)
    assert np.bincount(a.train_y).tolist() == [500] * 10 and len(a.test_y) == 10000
    monkeypatch.setattr(data_mod, "HELD_OUT_DIR", tmp_path)  # without data/: a stratified 20 %
    c = load_dataset("mnist-5k")
    assert np.bincount(c.test_y).tolist() == [100] * 10 and "no held-out test set" in c.source_note
    lfw = load_dataset("lfw-faces")
    assert lfw.image_shape == (1, 25, 25) and len(lfw.train_x) + len(lfw.test_x) == 100
    assert lfw.train_y is None and lfw.source == "embedded"


@requires_shared_data
@pytest.mark.slow
def test_full_mnist_from_shared_data():
    ds = load_dataset("mnist", shared_data_dir(), download=False)
    assert ds.source == "folder"
    assert ds.train_x.shape == (60000, 1, 28, 28) and ds.test_x.shape == (10000, 1, 28, 28)
    assert ds.train_y[0] == 5 and ds.test_y[0] == 7
    assert abs(float(ds.train_x.mean()) - 0.1307) < 1e-3  # the well-known MNIST pixel mean


@requires_shared_data
@pytest.mark.slow
def test_other_full_sets_from_shared_data():
    fashion = load_dataset("fashion-mnist", shared_data_dir(), download=False)
    assert fashion.train_x.shape == (60000, 1, 28, 28) and fashion.class_names[9] == "Ankle boot"
    frey = load_dataset("frey-faces", shared_data_dir(), download=False)
    assert len(frey.train_x) + len(frey.test_x) == 1965 and frey.image_shape == (1, 28, 20)
    oli = load_dataset("olivetti-faces", shared_data_dir(), download=False)
    assert len(oli.test_x) == 40 and sorted(oli.test_y.tolist()) == list(range(40))
    assert oli.image_shape == (1, 64, 64) and oli.train_x.max() <= 1.0


@requires_shared_data
def test_corrupt_frey_file_is_named(tmp_path):
    (tmp_path / "frey").mkdir()
    src = shared_data_dir() / "frey" / "frey_rawface.mat"
    dst = tmp_path / "frey" / "frey_rawface.mat"
    shutil.copy(src, dst)
    with open(dst, "r+b") as f:
        f.truncate(os.path.getsize(dst) // 2)
    with pytest.raises(DataError, match="frey_rawface.mat: wrong checksum"):
        load_dataset("frey-faces", tmp_path)


# ---------------------------------------------------------------- offline: held-out test sets in data/


def test_offline_mnist_test_split_shares_no_image_with_its_training_split(monkeypatch):
    no_network(monkeypatch)
    ds = load_dataset("mnist")
    train = {x.tobytes() for x in (ds.train_x * 255).round().astype(np.uint8)}
    test = {x.tobytes() for x in (ds.test_x * 255).round().astype(np.uint8)}
    assert len(train) > 4900 and len(test) > 9900
    assert train.isdisjoint(test)


def test_offline_fashion_mnist_has_its_test_set_and_refuses_to_train(monkeypatch):
    from core.models.config import ConfigError, get_kind
    from core.models.networks import build_model
    from core.training.train import TrainConfig, fit

    no_network(monkeypatch)
    ds = load_dataset("fashion-mnist")
    assert ds.source == "held-out" and ds.test_x.shape == (10000, 1, 28, 28) and len(ds.train_x) == 0
    assert np.bincount(ds.test_y).tolist() == [1000] * 10 and ds.class_names[9] == "Ankle boot"
    model = build_model(get_kind("vae").model_config((1, 28, 28), 0, arch="mlp", latent_dim=2))
    with pytest.raises(ConfigError, match="no training images"):
        fit(model, ds, TrainConfig(epochs=1))


def test_offline_face_test_splits_are_the_full_sets_test_splits(monkeypatch):
    no_network(monkeypatch)
    frey, orl = load_dataset("frey-faces", download=False), load_dataset("olivetti-faces", download=False)
    assert frey.test_x.shape == (196, 1, 28, 20) and orl.test_x.shape == (40, 1, 64, 64)
    assert orl.test_y.tolist() == list(range(40)) and orl.class_names[3] == "subject 3"
    shared = shared_data_dir()
    if shared is None:
        pytest.skip("../shared/data is not beside the clone")
    for name, off in (("frey-faces", frey), ("olivetti-faces", orl)):
        full = load_dataset(name, shared)
        assert np.array_equal(off.test_x, full.test_x), name  # the same images, the same scaling


def test_the_held_out_files_are_the_published_ones():
    # The MD5 of each t10k file is checked when it is read: a changed file raises DataError.
    for name in ("mnist", "fashion-mnist"):
        x, y, _ = data_mod.held_out_test(name)
        assert x.shape == (10000, 1, 28, 28) and y.shape == (10000,)
    assert data_mod.held_out_test("lfw-faces") is None


def test_a_damaged_held_out_file_is_a_clear_error(tmp_path, monkeypatch):
    (tmp_path / "frey-faces").mkdir()
    (tmp_path / "frey-faces" / "frey-faces-test.npz").write_bytes(b"PK\x03\x04 not really a zip")
    monkeypatch.setattr(data_mod, "HELD_OUT_DIR", tmp_path)
    with pytest.raises(DataError, match="frey-faces-test.npz: cannot read"):
        data_mod.held_out_test("frey-faces")


def test_a_data_folders_path_is_never_in_the_note_pages_show(monkeypatch):
    shared = shared_data_dir()
    if shared is None:
        pytest.skip("../shared/data is not beside the clone")
    for name in ("frey-faces", "olivetti-faces"):
        ds = load_dataset(name, shared)
        assert ds.source_note == data_mod.FOLDER_NOTE and str(shared) not in ds.source_note
        assert ds.location.startswith(str(shared)), "the path stays in the record, for the CLI and the JSON"
