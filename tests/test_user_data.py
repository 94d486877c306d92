"""Users' own images as a data set: folders, .npz files and uploads (core.data.user_data and the
registry's hook in core.data.registry)."""

import io
import math
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core.data import user_data
from core.data.registry import DataError, is_user_data, load_dataset, load_user_data, load_user_upload


def _png(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def _image(h: int, w: int, seed: int = 0, rgb: bool = False) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (h, w, 3) if rgb else (h, w), dtype=np.uint8)


def _write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _npz(path: Path, **arrays) -> Path:
    np.savez(path, **arrays)
    return path


# ---------------------------------------------------------------- folders


@pytest.fixture
def class_folder(tmp_path):
    """Three class folders of 32×32 images (cat: 6, dog: 5, emu: 4), plus hidden and non-image files."""
    root = tmp_path / "pets"
    for c, (label, n) in enumerate((("dog", 5), ("cat", 6), ("emu", 4))):
        for i in range(n):
            _write(root / label / f"{i}.png", _png(_image(32, 32, seed=10 * c + i)))
    _write(root / "cat" / ".DS_Store", b"junk")
    _write(root / "cat" / "readme.txt", b"not counted")
    _write(root / ".hidden" / "x.png", _png(_image(32, 32)))
    return root


def test_class_folders_give_labels_and_class_names(class_folder):
    ds = load_dataset(f"folder:{class_folder}")
    assert ds.name == f"folder:{class_folder}" and ds.source == "user"
    assert ds.class_names == ("cat", "dog", "emu")
    assert ds.image_shape == (1, 32, 32) and len(ds.train_x) + len(ds.test_x) == 15
    for x in (ds.train_x, ds.test_x):
        assert x.dtype == np.float32 and x.min() >= 0 and x.max() <= 1
    y = np.concatenate([ds.train_y, ds.test_y])
    assert np.bincount(y).tolist() == [6, 5, 4] and ds.train_y.dtype == np.int64
    assert set(ds.test_y) == {0, 1, 2}, "the split is stratified"
    assert ds.skipped == []
    assert "15 images in 3 classes (cat, dog, emu)" in ds.source_note and "kept at 32×32" in ds.source_note


def test_a_class_folder_image_keeps_its_pixels_and_label(tmp_path):
    img = _image(8, 8, seed=3)
    for label in ("a", "b"):
        for i in range(3):
            _write(tmp_path / label / f"{i}.png", _png(img if (label, i) == ("b", 2) else _image(8, 8, seed=i)))
    images = user_data.read_folder(tmp_path)
    row = images.x.shape[0] - 1  # sorted: a/0..2, b/0..2
    np.testing.assert_allclose(images.x[row, 0] * 255, img, atol=1e-3)
    assert images.y.tolist() == [0, 0, 0, 1, 1, 1]


def test_resized_to_the_callers_target(class_folder):
    ds = load_user_data(f"folder:{class_folder}", target_shape=(1, 28, 28))
    assert ds.image_shape == (1, 28, 28)
    assert "resized from 32×32 to 28×28" in ds.source_note
    assert load_user_data(f"folder:{class_folder}", target_shape=(20, 24)).image_shape == (1, 20, 24)
    assert load_user_data(f"folder:{class_folder}", target_shape=(3, 28, 28)).image_shape == (3, 28, 28)
    with pytest.raises(DataError, match=r"1 channel \(grey\) or 3 \(RGB\)"):
        load_user_data(f"folder:{class_folder}", target_shape=(4, 28, 28))


def test_a_flat_folder_is_unlabelled_and_keeps_its_colour(tmp_path):
    for i in range(4):
        _write(tmp_path / f"IMG_{i}.JPG", _jpeg(_image(16, 16, seed=i, rgb=True)))
    ds = load_dataset(f"folder:{tmp_path}")
    assert ds.train_y is None and ds.test_y is None and ds.class_names is None
    assert ds.image_shape == (3, 16, 16) and len(ds.test_x) == 1 and len(ds.train_x) == 3
    assert "4 unlabelled images, colour (RGB)" in ds.source_note


def _jpeg(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="JPEG")
    return buf.getvalue()


def test_mixed_sizes_go_to_the_most_common_one(tmp_path):
    for i in range(3):
        _write(tmp_path / f"a{i}.png", _png(_image(20, 30, seed=i)))  # (H, W) = (20, 30)
    _write(tmp_path / "b.png", _png(_image(40, 40)))
    _write(tmp_path / "c.bmp", _bmp(_image(10, 15)))
    ds = load_user_data(f"folder:{tmp_path}")
    assert ds.image_shape == (1, 20, 30) and len(ds.train_x) + len(ds.test_x) == 5
    assert "2 images of other sizes resized to 30×20, the most common size" in ds.source_note
    assert "1 centre-cropped" in ds.source_note  # the square one (the 15×10 one has the same aspect ratio)


def _bmp(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="BMP")
    return buf.getvalue()


def test_large_images_default_to_at_most_128(tmp_path):
    for i in range(2):
        _write(tmp_path / f"{i}.png", _png(_image(150, 300, seed=i)))
    images = user_data.read_folder(tmp_path)
    assert images.x.shape == (2, 1, 64, 128)
    assert "resized from 300×150 to 128×64 (at most 128×128 unless a model asks)" in images.note


def test_bad_files_are_listed_and_skipped(tmp_path):
    for i in range(3):
        _write(tmp_path / f"good{i}.png", _png(_image(12, 12, seed=i)))
    _write(tmp_path / "text.png", b"hello, I am not a picture")
    _write(tmp_path / "truncated.png", _png(_image(64, 64))[:200])
    _write(tmp_path / "empty.png", b"")
    _write(tmp_path / "notes.txt", b"ignored: not an image extension")
    ds = load_dataset(f"folder:{tmp_path}")
    assert len(ds.train_x) + len(ds.test_x) == 3
    reasons = dict(ds.skipped)
    assert sorted(reasons) == ["empty.png", "text.png", "truncated.png"]
    assert reasons["empty.png"] == "empty"
    assert "not an image" in reasons["text.png"]
    assert "truncated" in reasons["truncated.png"]
    assert "3 files skipped (" in ds.source_note and "empty.png: empty" in ds.source_note


def test_an_oversized_file_is_skipped(tmp_path, monkeypatch):
    monkeypatch.setattr(user_data, "MAX_UPLOAD_BYTES", 1000)
    for i in range(2):
        _write(tmp_path / f"small{i}.png", _png(np.zeros((8, 8), np.uint8)))
    _write(tmp_path / "big.png", _png(_image(64, 64)))  # ~4 kB of noise
    images = user_data.read_folder(tmp_path)
    assert len(images.x) == 2 and images.skipped[0][0] == "big.png" and "the limit is" in images.skipped[0][1]


def test_a_folder_with_nothing_usable_says_why(tmp_path):
    _write(tmp_path / "a.png", b"")
    _write(tmp_path / "b.jpg", b"GIF89a but not really")
    with pytest.raises(DataError, match=r"no usable image: all 2 image files were skipped \(a.png: empty; b.jpg"):
        load_dataset(f"folder:{tmp_path}")
    empty = tmp_path / "nothing"
    empty.mkdir()
    (empty / "notes.txt").write_text("hi")
    with pytest.raises(DataError, match="has no image files"):
        load_dataset(f"folder:{empty}")
    with pytest.raises(DataError, match="does not exist"):
        load_dataset(f"folder:{tmp_path / 'missing'}")


def test_loose_files_beside_class_folders_are_ignored_with_a_note(class_folder):
    _write(class_folder / "stray.png", _png(_image(32, 32)))
    images = user_data.read_folder(class_folder)
    assert len(images.x) == 15
    assert "1 image directly in the folder ignored" in images.note


def test_a_relative_path_is_read_from_the_working_directory(class_folder, monkeypatch):
    monkeypatch.chdir(class_folder.parent)
    ds = load_dataset("folder:pets")
    assert ds.name == "folder:pets" and ds.location == str(class_folder)


def test_too_many_images_are_capped(tmp_path, monkeypatch):
    monkeypatch.setattr(user_data, "MAX_IMAGES", 4)
    for i in range(6):
        _write(tmp_path / f"{i}.png", _png(_image(8, 8, seed=i)))
    images = user_data.read_folder(tmp_path)
    assert len(images.x) == 4 and "capped at 4 of 6 images" in images.note


def test_spec_strings():
    assert is_user_data("folder:/x") and is_user_data("npz:x.npz") and not is_user_data("mnist")
    assert user_data.parse_spec("npz:a/b.npz")[1] == Path.cwd() / "a" / "b.npz"
    with pytest.raises(DataError, match="names no path"):
        load_dataset("folder:")
    with pytest.raises(DataError, match="unknown data set"):
        load_dataset("upload:x.zip")


# ---------------------------------------------------------------- .npz files


@pytest.mark.parametrize(
    "shape, dtype, scale",
    [
        ((10, 28, 28), np.uint8, 255),
        ((10, 28, 28, 1), np.float32, 1),
        ((10, 1, 28, 28), np.float64, 255),
        ((10, 28, 28, 3), np.uint8, 255),
        ((10, 3, 28, 28), np.float32, 1),
        ((10, 28, 28, 4), np.uint8, 255),
    ],
)
def test_npz_layouts_and_dtypes(tmp_path, shape, dtype, scale):
    rng = np.random.default_rng(0)
    x = (rng.random(shape) * scale).astype(dtype)
    ds = load_dataset(f"npz:{_npz(tmp_path / 'd.npz', x=x)}")
    channels = 3 if 3 in shape or 4 in shape else 1  # RGB(A) stays colour
    assert ds.image_shape == (channels, 28, 28) and len(ds.train_x) == 8 and len(ds.test_x) == 2
    assert ds.train_x.dtype == np.float32 and ds.train_x.min() >= 0 and ds.train_x.max() <= 1
    assert ds.train_x.max() > 0.9, "scaled to [0, 1], not left at 1/255"
    if len(shape) == 3:  # plain gray uint8: the pixels survive exactly
        np.testing.assert_allclose(np.concatenate([ds.train_x, ds.test_x]).sum(), x.sum() / 255, rtol=1e-5)
    if dtype == np.float64:
        assert "read as 0-255" in ds.source_note
    if channels == 3:
        assert "colour (RGB)" in ds.source_note
    if 4 in shape:
        assert "10 images with transparency composited on white" in ds.source_note


def test_npz_labels_and_resize(tmp_path):
    x = np.random.default_rng(0).integers(0, 256, (20, 32, 32), dtype=np.uint8)
    y = np.repeat([3, 7], 10)
    path = _npz(tmp_path / "d.npz", x=x, y=y)
    ds = load_user_data(f"npz:{path}", target_shape=(1, 28, 28))
    assert ds.image_shape == (1, 28, 28) and ds.class_names == ("3", "7")
    assert sorted(np.concatenate([ds.train_y, ds.test_y]).tolist()) == [0] * 10 + [1] * 10
    assert "20 images in 2 classes" in ds.source_note and "resized from 32×32 to 28×28" in ds.source_note


def test_text_labels_are_class_names(tmp_path):
    x = np.zeros((4, 8, 8), np.uint8)
    images = user_data.read_npz(_npz(tmp_path / "d.npz", x=x, y=np.array(["b", "a", "b", "a"])))
    assert images.class_names == ("a", "b") and images.y.tolist() == [1, 0, 1, 0]


def test_npz_object_array_is_refused_and_never_unpickled(tmp_path, monkeypatch):
    import pickle

    path = tmp_path / "evil.npz"
    np.savez(path, x=np.array([object(), None], dtype=object))

    def no_unpickling(*args, **kwargs):
        pytest.fail("unpickled")

    monkeypatch.setattr(pickle, "loads", no_unpickling)
    monkeypatch.setattr(pickle, "load", no_unpickling)
    with pytest.raises(DataError, match=r"'x' holds Python objects \(dtype object\), which Latent Lab never unpickles"):
        load_dataset(f"npz:{path}")
    np.savez(path, x=np.zeros((2, 4, 4), np.uint8), y=np.array([1, "a"], dtype=object))
    with pytest.raises(DataError, match="'y' holds Python objects"):
        load_dataset(f"npz:{path}")


def test_npz_with_nan_or_bad_values_is_refused(tmp_path):
    x = np.random.default_rng(0).random((4, 8, 8)).astype(np.float32)
    x[2, 3, 3] = np.nan
    with pytest.raises(DataError, match="NaN or infinite"):
        load_dataset(f"npz:{_npz(tmp_path / 'a.npz', x=x)}")
    x[2, 3, 3] = -1.0
    with pytest.raises(DataError, match="values down to -1"):
        load_dataset(f"npz:{_npz(tmp_path / 'b.npz', x=x)}")


def test_npz_with_mismatched_or_bad_labels_is_refused(tmp_path):
    x = np.zeros((5, 8, 8), np.uint8)
    with pytest.raises(DataError, match="'y' has 4 labels but 'x' has 5 images"):
        load_dataset(f"npz:{_npz(tmp_path / 'a.npz', x=x, y=np.arange(4))}")
    with pytest.raises(DataError, match="integer"):
        load_dataset(f"npz:{_npz(tmp_path / 'b.npz', x=x, y=np.zeros(5, np.float32))}")


def test_npz_shapes_and_keys_are_checked(tmp_path):
    with pytest.raises(DataError, match="has no array 'x' \\(it has: images\\)"):
        load_dataset(f"npz:{_npz(tmp_path / 'a.npz', images=np.zeros((2, 4, 4)))}")
    with pytest.raises(DataError, match="expected \\(N, H, W\\)"):
        load_dataset(f"npz:{_npz(tmp_path / 'b.npz', x=np.zeros((2, 5, 6, 7)))}")
    with pytest.raises(DataError, match="not a readable .npz"):
        load_dataset(f"npz:{_write(tmp_path / 'c.npz', b'garbage')}")
    with pytest.raises(DataError, match="does not exist"):
        load_dataset(f"npz:{tmp_path / 'missing.npz'}")


def test_big_npz_arrays_are_refused_before_loading(tmp_path, monkeypatch):
    path = _npz(tmp_path / "a.npz", x=np.zeros((10, 32, 32), np.uint8))
    monkeypatch.setattr(user_data, "MAX_ARRAY_BYTES", 5000)
    monkeypatch.setattr(user_data, "_load_array", lambda *a: pytest.fail("loaded"))
    with pytest.raises(DataError, match="'x' is .* the limit is"):
        load_dataset(f"npz:{path}")
    monkeypatch.setattr(user_data, "MAX_ARCHIVE_BYTES", 100)
    with pytest.raises(DataError, match="the limit is"):
        load_dataset(f"npz:{path}")


def test_catalog_load_data_resizes_an_npz(tmp_path):
    from core.app.catalog import load_data

    path = _npz(tmp_path / "d.npz", x=np.random.default_rng(0).integers(0, 256, (10, 32, 32), dtype=np.uint8))
    ds = load_data(f"npz:{path}", image_shape=(1, 28, 28))
    assert ds.image_shape == (1, 28, 28) and ds.test_x.shape[1:] == (1, 28, 28) and ds.source == "user"


# ---------------------------------------------------------------- uploads


def _zip(members: dict[str, bytes], compression=zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def test_a_zip_upload_with_class_folders(tmp_path):
    members = {f"shapes/{label}/{i}.png": _png(_image(16, 16, seed=i)) for label in ("sq", "ci") for i in range(3)}
    members["shapes/ci/.hidden.png"] = b"ignored"
    members["__MACOSX/shapes/sq/._0.png"] = b"ignored"
    ds = load_user_upload("shapes.zip", _zip(members), target_shape=(1, 8, 8))
    assert ds.name == "upload:shapes.zip" and ds.source == "user" and ds.class_names == ("ci", "sq")
    assert ds.image_shape == (1, 8, 8) and len(ds.train_x) + len(ds.test_x) == 6
    assert ds.source_note.startswith("your upload shapes.zip: 6 images in 2 classes")


def test_an_npz_upload(tmp_path):
    buf = io.BytesIO()
    np.savez_compressed(buf, x=np.zeros((6, 10, 10), np.uint8), y=np.array([0, 1] * 3))
    ds = load_user_upload("mine.npz", buf.getvalue())
    assert ds.image_shape == (1, 10, 10) and ds.class_names == ("0", "1")
    with pytest.raises(DataError, match="upload a .zip of images or an .npz"):
        load_user_upload("mine.tar", b"x")


@pytest.mark.parametrize("bad", ["../evil.png", "a/../../evil.png", "/etc/evil.png", "..\\evil.png", "C:/evil.png"])
def test_a_zip_with_a_path_out_of_the_archive_is_refused(bad):
    data = _zip({"ok/1.png": _png(_image(8, 8)), bad: _png(_image(8, 8))})
    with pytest.raises(DataError, match="unsafe file name"):
        load_user_upload("x.zip", data)


def test_a_zip_bomb_is_refused(monkeypatch):
    monkeypatch.setattr(user_data, "MAX_ZIP_TOTAL", 1 << 20)
    data = _zip({"a.png": _png(_image(8, 8)), "bomb.png": bytes(4 << 20)})  # 4 MB of zeros, a few kB zipped
    assert len(data) < 20_000
    with pytest.raises(DataError, match="would unpack to 4.0 MB; the limit is 1.0 MB"):
        load_user_upload("x.zip", data)
    monkeypatch.setattr(user_data, "MAX_ZIP_MEMBERS", 3)
    with pytest.raises(DataError, match="holds 4 files; the limit is 3"):
        load_user_upload("x.zip", _zip({f"{i}.png": b"" for i in range(4)}))


def test_a_big_member_is_skipped_without_being_read(monkeypatch):
    data = _zip({"a.png": _png(_image(8, 8)), "b.png": _png(_image(8, 8, 1)), "c.png": bytes(11 << 20)})
    images = user_data.read_upload("x.zip", data)
    assert len(images.x) == 2 and images.skipped[0][0] == "c.png" and "the limit is 10.0 MB" in images.skipped[0][1]


# ---------------------------------------------------------------- the rest of the app uses it


def test_a_model_trains_on_your_folder(class_folder):
    from core.models.config import ModelConfig
    from core.training.train import TrainConfig, train_model

    ds = load_dataset(f"folder:{class_folder}")
    cfg = ModelConfig(kind="vae", arch="mlp", image_shape=ds.image_shape, latent_dim=2, hidden=(16,))
    _, history = train_model(cfg, ds, TrainConfig(epochs=1, device="cpu"))
    assert math.isfinite(history.last.train_loss) and math.isfinite(history.last.test_loss)
    assert ds.info()["name"] == f"folder:{class_folder}" and ds.info()["source"] == "user"
