"""Users' own images as a data set: a folder of image files, an ``.npz`` archive, or an upload.

A data set name of the form ``folder:PATH`` or ``npz:PATH`` (PATH absolute, or relative to the
working directory) names the user's own images wherever a registered name is used:

* ``folder:PATH``: PNG, JPEG, BMP, GIF, WebP or TIFF files directly in the folder (unlabelled),
  or in sub-folders, one per class (the class names are the sub-folder names, sorted). With
  class sub-folders, images directly in the folder are ignored and the note says so; deeper
  folders are not read; a single class folder means unlabelled images. Hidden files and other
  extensions are ignored; files that cannot be used (empty, not an image, damaged, too large)
  are listed in ``skipped`` and never stop the load.
* ``npz:PATH``: an ``.npz`` with ``x`` shaped (N, H, W), (N, H, W, C) or (N, C, H, W), C in
  {1, 3, 4} (4: RGBA, composited on white), uint8 0-255 or float in [0, 1] or [0, 255]; and
  optionally ``y``, (N,) integer or string labels. It is opened with ``allow_pickle=False`` and its headers are checked
  before any array is read, so an object array is refused and never unpickled.

Images keep their channels: float32 in [0, 1] shaped (N, C, H, W), C = 1 when every image is
grey and C = 3 (RGB) when any is colour; a grey image in a colour set is repeated to three
channels, and transparency is composited on white, each with a note. Colour is judged from the
file's header (its mode, or a palette's colours), so an RGB file whose channels happen to be
equal still counts as colour. A caller's (C, H, W), a model's input, decides instead: C = 3
makes every image RGB, C = 1 converts colour to grayscale luma (ITU-R 601).

The size is the caller's (H, W), honoured exactly up to 512×512, or else the most common size
among the images scaled down to fit 128×128; an image of another aspect ratio is centre-cropped
to the chosen one first (noted), and one more than 10 times wider or taller than that is skipped,
as is one smaller than 2×2. The float array is held to 2 GB: a larger set is capped to a fixed
random choice of images, with a note. Every file is decoded with :mod:`core.data.images`'
guards (size, pixel count, Pillow's decompression-bomb check).

This module only reads and checks. It returns :class:`UserImages`; ``core.data.registry`` splits them
into a :class:`~core.data.registry.Dataset` (``load_dataset("folder:…")``, ``load_user_upload``). It
never imports ``core.data.registry``, so the two are not an import cycle.
"""

from __future__ import annotations

import io
import os
import re
import zipfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import numpy as np
from PIL import Image, ImageOps

from core.data.images import MAX_PIXELS, MAX_UPLOAD_BYTES, ImageError, decoding, has_alpha, open_image

PREFIXES = ("folder:", "npz:")
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"})
MAX_IMAGES = 70_000  # more are capped to a fixed random choice of this many
MAX_DEFAULT_SIDE = 128  # the default size (the most common one) is scaled down to fit 128×128
MAX_SIDE = 512  # the largest side a caller may ask for (ModelConfig's limit)
MAX_CROP_RATIO = 10  # an image whose aspect ratio is further than this from the chosen one is skipped
MAX_SET_BYTES = 2 << 30  # the float32 (N, C, H, W) array; more images are capped to fit
MAX_ARCHIVE_BYTES = 1 << 30  # an .npz file or an upload (.npz or .zip)
MAX_ARRAY_BYTES = 1 << 30  # x (or y) of an .npz once uncompressed
MAX_ZIP_MEMBERS = 100_000
MAX_ZIP_TOTAL = 1 << 30  # a zip upload's members, uncompressed, all together
MAX_CLASSES = 1_000  # more distinct labels than this are not classes: the images stay unlabelled
TEST_FRACTION = 0.2  # core.data.registry's split of these images (80/20, seed 0, stratified when it can)
SEED = 0
_GRAY_MODES = frozenset({"1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"})
_NOTE_SKIPPED = 3  # skipped files named in the note; the rest are counted


class UserDataError(ValueError):
    """The user's images cannot be used; the message says why, in words for the page.

    ``core.data.registry`` turns it into a ``DataError`` with the same message."""


@dataclass
class UserImages:
    """What was read, before the train/test split."""

    spec: str  # the data set's name: "folder:PATH", "npz:PATH" or "upload:FILE"
    x: np.ndarray  # (N, C, H, W) float32 in [0, 1], C 1 (grey) or 3 (RGB)
    y: np.ndarray | None  # (N,) int64 indices into class_names, or None
    class_names: tuple[str, ...] | None
    note: str  # for people: what was read and what was done to it
    location: str  # the folder or file (absolute), or "upload NAME"
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (file, why)


# ---------------------------------------------------------------- spec strings


def is_user_spec(name: str) -> bool:
    """True for ``folder:PATH`` and ``npz:PATH``."""
    return isinstance(name, str) and name.startswith(PREFIXES)


def parse_spec(spec: str) -> tuple[str, Path]:
    """``"folder:PATH"`` -> ("folder", absolute path); the same for ``npz:``."""
    if not is_user_spec(spec):
        raise UserDataError(f"{spec!r} is not a data set of your own; write folder:PATH or npz:PATH")
    kind, _, raw = spec.partition(":")
    if not raw:
        raise UserDataError(f"{spec!r} names no path; write {kind}:PATH")
    return kind, Path(os.path.abspath(Path(raw).expanduser()))


def read_spec(spec: str, target_shape: tuple[int, ...] | None = None) -> UserImages:
    """Read ``folder:PATH`` or ``npz:PATH``; ``target_shape`` is (H, W) or a model's (C, H, W), C 1 or 3."""
    kind, path = parse_spec(spec)
    if kind == "folder":
        return read_folder(path, target_shape, spec=spec)
    return read_npz(path, target_shape, spec=spec)


def read_upload(name: str, data: bytes, target_shape: tuple[int, ...] | None = None) -> UserImages:
    """An uploaded ``.zip`` of images (optionally one folder per class) or ``.npz``, from memory."""
    where = f"your upload {name}"
    if len(data) > MAX_ARCHIVE_BYTES:
        raise UserDataError(f"{where} is {_size(len(data))}; the limit is {_size(MAX_ARCHIVE_BYTES)}")
    suffix = Path(name).suffix.lower()
    if suffix == ".npz":
        return _read_npz_file(io.BytesIO(data), target_shape, f"upload:{name}", where, f"upload {name}")
    if suffix == ".zip":
        return _read_zip(io.BytesIO(data), target_shape, f"upload:{name}", where, f"upload {name}")
    raise UserDataError(f"{where}: upload a .zip of images or an .npz file (got {suffix or 'no extension'})")


# ---------------------------------------------------------------- folders and zips of image files


@dataclass
class _Item:
    """One image file to read: where it is, its class folder, how to open it."""

    name: str  # relative to the folder or zip, for messages
    label: str | None
    size: int  # bytes (a zip member's declared, enforced, uncompressed size)
    open: Callable[[], IO[bytes]]


def _is_image_name(name: str) -> bool:
    return not name.startswith(".") and Path(name).suffix.lower() in IMAGE_SUFFIXES


def read_folder(
    path: str | os.PathLike, target_shape: tuple[int, ...] | None = None, *, spec: str | None = None
) -> UserImages:
    """Read a folder of image files (flat: unlabelled; one sub-folder per class: labelled)."""
    root = Path(os.path.abspath(Path(path).expanduser()))
    where = f"your folder {root}"
    if not root.is_dir():
        raise UserDataError(f"{where} does not exist or is not a folder")
    root_items: list[_Item] = []
    classes: dict[str, list[_Item]] = {}
    nested = 0
    try:
        for entry in sorted(os.scandir(root), key=lambda e: e.name):
            if entry.name.startswith("."):
                continue
            if entry.is_dir():
                items, deeper = _scan_class_folder(Path(entry.path), entry.name)
                nested += deeper
                if items:
                    classes[entry.name] = items
            elif entry.is_file() and _is_image_name(entry.name):
                root_items.append(_file_item(Path(entry.path), entry.name, None))
    except OSError as exc:
        raise UserDataError(f"{where} cannot be read ({exc})") from exc
    items, notes = _arrange(root_items, classes, "folder")
    if nested:
        notes.append(f"{nested} folder{_s(nested)} inside class folders not read (only one level of sub-folders)")
    return _read_items(items, target_shape, spec or f"folder:{root}", where, str(root), notes)


def _scan_class_folder(folder: Path, label: str) -> tuple[list[_Item], int]:
    """The image files of one class folder, and how many folders it holds (not read)."""
    items, nested = [], 0
    for entry in sorted(os.scandir(folder), key=lambda e: e.name):
        if entry.name.startswith("."):
            continue
        if entry.is_dir():
            nested += 1
        elif entry.is_file() and _is_image_name(entry.name):
            items.append(_file_item(Path(entry.path), f"{label}/{entry.name}", label))
    return items, nested


def _file_item(path: Path, name: str, label: str | None) -> _Item:
    return _Item(name=name, label=label, size=path.stat().st_size, open=lambda: open(path, "rb"))


_UNSAFE = re.compile(r"(^|[/\\])\.\.([/\\]|$)|^[/\\]|^[A-Za-z]:")


def _read_zip(file: IO[bytes], target_shape, spec: str, where: str, location: str) -> UserImages:
    """Read a zip of image files in memory (nothing is extracted), with zip-bomb guards."""
    try:
        zf = zipfile.ZipFile(file)
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise UserDataError(f"{where} is not a readable zip file ({exc})") from exc
    with zf:
        infos = zf.infolist()
        if len(infos) > MAX_ZIP_MEMBERS:
            raise UserDataError(f"{where} holds {len(infos):,} files; the limit is {MAX_ZIP_MEMBERS:,}")
        for info in infos:
            if _UNSAFE.search(info.filename):
                raise UserDataError(f"{where} holds an unsafe file name {info.filename!r} (a path out of the archive)")
        total = sum(info.file_size for info in infos)
        if total > MAX_ZIP_TOTAL:
            raise UserDataError(
                f"{where} would unpack to {_size(total)}; the limit is {_size(MAX_ZIP_TOTAL)} (a zip bomb?)"
            )
        root_items, classes, deeper = _zip_items(zf, infos)
        items, notes = _arrange(root_items, classes, "zip")
        if deeper:
            notes.append(f"{deeper} file{_s(deeper)} in deeper folders not read (only one level of sub-folders)")
        return _read_items(items, target_shape, spec, where, location, notes)


def _zip_items(zf: zipfile.ZipFile, infos: list[zipfile.ZipInfo]) -> tuple[list[_Item], dict[str, list[_Item]], int]:
    """Sort a zip's image members into root files and class folders (a zipped folder's own top
    folder, shared by every image, is looked through)."""
    found = []
    for info in infos:
        parts = info.filename.replace("\\", "/").split("/")
        if info.is_dir() or any(p.startswith(".") or p == "__MACOSX" for p in parts) or not _is_image_name(parts[-1]):
            continue
        found.append((parts, info))
    found.sort(key=lambda pi: pi[0])
    while found and all(len(p) > 1 for p, _ in found) and len({p[0] for p, _ in found}) == 1:
        found = [(p[1:], info) for p, info in found]
    root_items, classes, deeper = [], {}, 0
    for parts, info in found:
        item = _Item("/".join(parts), None, info.file_size, lambda info=info: zf.open(info))
        if info.flag_bits & 0x1:
            item.open = _refuse(item.name, "is encrypted (Latent Lab reads no passwords)")
        if len(parts) == 1:
            root_items.append(item)
        elif len(parts) == 2:
            item.label = parts[0]
            classes.setdefault(parts[0], []).append(item)
        else:
            deeper += 1
    return root_items, classes, deeper


def _refuse(name: str, why: str) -> Callable[[], IO[bytes]]:
    def opener() -> IO[bytes]:
        raise ImageError(f"{name} {why}")

    return opener


def _arrange(root_items: list[_Item], classes: dict[str, list[_Item]], what: str) -> tuple[list[_Item], list[str]]:
    """Decide labelled or not: class folders win over loose files; one class is no labels."""
    notes = []
    if not classes:
        return root_items, notes
    if root_items:
        n = len(root_items)
        notes.append(f"{n} image{_s(n)} directly in the {what} ignored (with class sub-folders, each image is in one)")
    items = [item for label in sorted(classes) for item in classes[label]]
    if len(classes) == 1:
        notes.append(f"one class folder ({next(iter(classes))}): read as unlabelled images")
        for item in items:
            item.label = None
    return items, notes


@dataclass
class _Found:
    """An image file whose header was read."""

    item: _Item
    size: tuple[int, int]  # (width, height)
    colour: bool
    alpha: bool


def _read_items(items: list[_Item], target_shape, spec: str, where: str, location: str, notes: list[str]) -> UserImages:
    """Check, size, decode and resize the chosen files; label them by class folder."""
    channels, target = _target(target_shape)
    if not items:
        raise UserDataError(f"{where} has no image files ({', '.join(sorted(IMAGE_SUFFIXES))})")
    items = _capped(items, MAX_IMAGES, notes)
    skipped: list[tuple[str, str]] = []
    found = []
    for item in items:
        try:
            found.append(_probe(item))
        except ImageError as exc:
            skipped.append((item.name, _reason(exc, item.name)))
    found = _croppable(found, _choose_size([f.size for f in found], target)[0], skipped)
    hw, size_note = _choose_size([f.size for f in found], target)  # the same size; the note counts no skipped
    channels = channels or (3 if any(f.colour for f in found) else 1)
    found = _capped(found, _budget(channels, hw), notes, "to fit in memory")
    x, kept, cropped = _decode_all(found, channels, hw, skipped)
    if len(kept) < 2:
        raise UserDataError(_nothing_usable(where, len(kept), skipped))
    y, class_names = _folder_labels([f.item.label for f in kept])
    colour, alpha = sum(f.colour for f in kept), sum(f.alpha for f in kept)
    done = [_channel_note(channels, colour, len(kept)), _alpha_note(alpha), size_note + _cropped_note(cropped)]
    note = _compose_note(where, len(x), class_names, done + notes, skipped)
    return UserImages(spec, x, y, class_names, note, location, skipped)


def _capped(things: list, limit: int, notes: list[str], why: str = "") -> list:
    """At most ``limit`` of ``things``: a fixed random choice (kept in order), with a note."""
    if len(things) <= limit:
        return things
    keep = np.sort(np.random.default_rng(SEED).permutation(len(things))[:limit])
    notes.append(f"capped at {limit:,} of {len(things):,} images{' ' + why if why else ''} (a fixed random choice)")
    return [things[i] for i in keep]


def _budget(channels: int, hw: tuple[int, int]) -> int:
    """How many images of (channels, *hw) float32 fit MAX_SET_BYTES (2 at least)."""
    return max(2, MAX_SET_BYTES // (channels * hw[0] * hw[1] * 4))


def _probe(item: _Item) -> _Found:
    """Read only the header (size, colour, transparency), under core.data.images' limits."""
    if item.size == 0:
        raise ImageError(f"{item.name} is empty")
    if item.size > MAX_UPLOAD_BYTES:
        raise ImageError(f"{item.name} is {_size(item.size)}; the limit is {_size(MAX_UPLOAD_BYTES)}")
    with decoding(item.name), item.open() as f:
        img = Image.open(f)
        w, h = img.size
        colour = img.mode not in _GRAY_MODES and not _gray_palette(img)
        alpha = has_alpha(img)
    if w * h > MAX_PIXELS:
        raise ImageError(f"{item.name} is {w}×{h} pixels; the limit is {MAX_PIXELS / 1e6:.0f} megapixels")
    if min(w, h) < 2:
        raise ImageError(f"{item.name} is {w}×{h} pixels; an image needs at least 2×2")
    return _Found(item, (w, h), colour, alpha)


def _gray_palette(img: Image.Image) -> bool:
    """A palette image whose colours are all grays (read from the header, nothing decoded)."""
    palette = getattr(img, "palette", None)
    if img.mode != "P" or palette is None or palette.mode != "RGB":
        return False
    rgb = np.frombuffer(bytes(palette.palette), dtype=np.uint8)
    rgb = rgb[: len(rgb) // 3 * 3].reshape(-1, 3)
    return bool((rgb == rgb[:, :1]).all())


def _croppable(found: list[_Found], hw: tuple[int, int], skipped: list[tuple[str, str]]) -> list[_Found]:
    """Skip the images whose aspect ratio is more than MAX_CROP_RATIO from the chosen size's."""
    h, w = hw
    kept = []
    for f in found:
        fw, fh = f.size
        off = (fw * h) / (fh * w)
        if max(off, 1 / off) <= MAX_CROP_RATIO:
            kept.append(f)
            continue
        skipped.append((f.item.name, f"{fw}×{fh} pixels: aspect {_aspect(fw, fh)} too extreme to crop to {w}×{h}"))
    return kept


def _aspect(w: int, h: int) -> str:
    """1000×10 -> "100:1", 10×25 -> "1:2.5"."""
    ratio = max(w, h) / min(w, h)
    text = f"{ratio:,.1f}".removesuffix(".0")
    return f"{text}:1" if w >= h else f"1:{text}"


def _decode_all(
    found: list[_Found], channels: int, hw: tuple[int, int], skipped: list[tuple[str, str]]
) -> tuple[np.ndarray, list[_Found], int]:
    """Decode every image into one (N, C, H, W) array; the images kept; how many were cropped."""
    x = np.empty((len(found), channels, *hw), dtype=np.float32)
    kept, cropped = [], 0
    for f in found:
        try:
            arr, was_cropped = _decode(f.item, hw, channels)
        except ImageError as exc:
            skipped.append((f.item.name, _reason(exc, f.item.name)))
            continue
        x[len(kept)] = arr
        kept.append(f)
        cropped += was_cropped
    return (x if len(kept) == len(found) else x[: len(kept)].copy()), kept, cropped


def _decode(item: _Item, hw: tuple[int, int], channels: int) -> tuple[np.ndarray, bool]:
    """Decode with core.data.images.open_image (all its guards) -> (C, H, W) float32 at ``hw``."""
    try:
        with item.open() as f:
            data = f.read(MAX_UPLOAD_BYTES + 1)
    except ImageError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise ImageError(f"{item.name} is damaged or truncated ({exc})") from exc
    return _fit(open_image(data, item.name, "RGB" if channels == 3 else "L"), hw)


def _fit(img: Image.Image, hw: tuple[int, int]) -> tuple[np.ndarray, bool]:
    """An "L", "RGB" or "F" image -> (C, H, W) float32 in [0, 1] at ``hw``; centre-cropped first
    when its aspect ratio differs (returns whether it was)."""
    h, w = hw
    a, b = img.width * h, img.height * w
    cropped = abs(a - b) > 0.01 * max(a, b)
    if img.size != (w, h):
        img = ImageOps.fit(img, (w, h), method=Image.Resampling.LANCZOS)
    arr = np.asarray(img, dtype=np.float32)
    arr = (arr if img.mode == "F" else arr / 255.0).clip(0, 1)
    return (arr[None] if arr.ndim == 2 else np.moveaxis(arr, -1, 0)), cropped


def _folder_labels(labels: list[str | None]) -> tuple[np.ndarray | None, tuple[str, ...] | None]:
    if labels[0] is None:
        return None, None
    names = tuple(sorted(set(labels)))
    index = {name: i for i, name in enumerate(names)}
    return np.array([index[label] for label in labels], dtype=np.int64), names


def _nothing_usable(where: str, n: int, skipped: list[tuple[str, str]]) -> str:
    if n == 1:
        return f"{where} has only 1 usable image; a data set needs at least 2 (one to train on, one to test)"
    shown = "; ".join(f"{name}: {why}" for name, why in skipped[:_NOTE_SKIPPED])
    more = f"; and {len(skipped) - _NOTE_SKIPPED} more" if len(skipped) > _NOTE_SKIPPED else ""
    return f"{where} has no usable image: all {len(skipped)} image files were skipped ({shown}{more})"


# ---------------------------------------------------------------- .npz archives


def read_npz(
    path: str | os.PathLike, target_shape: tuple[int, ...] | None = None, *, spec: str | None = None
) -> UserImages:
    """Read ``x`` (and ``y``) from an .npz file; never unpickles."""
    file = Path(os.path.abspath(Path(path).expanduser()))
    where = f"your file {file}"
    if not file.is_file():
        raise UserDataError(f"{where} does not exist or is not a file")
    size = file.stat().st_size
    if size > MAX_ARCHIVE_BYTES:
        raise UserDataError(f"{where} is {_size(size)}; the limit is {_size(MAX_ARCHIVE_BYTES)}")
    with open(file, "rb") as f:
        return _read_npz_file(f, target_shape, spec or f"npz:{file}", where, str(file))


def _read_npz_file(file: IO[bytes], target_shape, spec: str, where: str, location: str) -> UserImages:
    target = _target(target_shape)
    try:
        npz = np.load(file, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise UserDataError(f"{where} is not a readable .npz file ({exc})") from exc
    if not isinstance(npz, np.lib.npyio.NpzFile):
        raise UserDataError(f"{where} is a single .npy array, not an .npz; save it with np.savez(path, x=images)")
    with npz:
        if len(npz.zip.infolist()) > MAX_ZIP_MEMBERS:
            raise UserDataError(f"{where} holds too many arrays")
        if "x" not in npz.files:
            raise UserDataError(f"{where} has no array 'x' (it has: {', '.join(npz.files) or 'nothing'})")
        x_shape, x_dtype = _npy_header(npz, "x", where)
        layout = _check_x(x_shape, x_dtype, where)
        y_info = _npy_header(npz, "y", where) if "y" in npz.files else None
        if y_info is not None:
            _check_y(*y_info, x_shape[0], where)
        x = _load_array(npz, "x", where)
        y = _load_array(npz, "y", where) if y_info is not None else None
    return _npz_images(x, y, layout, target, spec, where, location)


def _npy_header(npz, key: str, where: str) -> tuple[tuple[int, ...], np.dtype]:
    """An array's shape and dtype from its .npy header, without reading (or unpickling) its data."""
    member = f"{key}.npy" if f"{key}.npy" in npz.zip.namelist() else key
    info = npz.zip.getinfo(member)
    if info.file_size > MAX_ARRAY_BYTES + 65_536:
        raise UserDataError(f"{where}: '{key}' is {_size(info.file_size)}; the limit is {_size(MAX_ARRAY_BYTES)}")
    try:
        with npz.zip.open(member) as f:
            version = np.lib.format.read_magic(f)
            if version == (1, 0):
                shape, _, dtype = np.lib.format.read_array_header_1_0(f)
            elif version == (2, 0):
                shape, _, dtype = np.lib.format.read_array_header_2_0(f)
            else:
                raise ValueError(f"unsupported .npy format version {version}")
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise UserDataError(f"{where}: '{key}' is not a readable array ({exc})") from exc
    if dtype.hasobject:
        raise UserDataError(
            f"{where}: '{key}' holds Python objects (dtype object), which Latent Lab never unpickles; "
            "save plain numbers (uint8 or float)"
        )
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if nbytes > MAX_ARRAY_BYTES:
        raise UserDataError(f"{where}: '{key}' is {_size(nbytes)} in memory; the limit is {_size(MAX_ARRAY_BYTES)}")
    return tuple(int(s) for s in shape), dtype


def _check_x(shape: tuple[int, ...], dtype: np.dtype, where: str) -> str:
    """Check x's header; return its layout: "NHW", "NHWC" or "NCHW"."""
    if dtype.kind not in "uifb":
        raise UserDataError(f"{where}: 'x' must hold numbers (uint8 or float), not {dtype}")
    channels = (1, 3, 4)
    if len(shape) == 3:
        layout = "NHW"
    elif len(shape) == 4 and shape[1] in channels and shape[3] not in channels:
        layout = "NCHW"
    elif len(shape) == 4 and shape[3] in channels and shape[1] not in channels:
        layout = "NHWC"
    elif len(shape) == 4 and shape[1] in channels and shape[3] in channels:
        raise UserDataError(f"{where}: 'x' of shape {shape} is ambiguous (channels first or last?)")
    else:
        raise UserDataError(
            f"{where}: 'x' has shape {shape}; expected (N, H, W), (N, H, W, C) or (N, C, H, W) with C 1, 3 or 4"
        )
    h, w = (shape[2], shape[3]) if layout == "NCHW" else (shape[1], shape[2])
    if shape[0] < 2:
        raise UserDataError(f"{where}: 'x' has {shape[0]} image(s); a data set needs at least 2")
    if min(h, w) < 2 or h * w > MAX_PIXELS:
        raise UserDataError(f"{where}: images of {w}×{h} pixels cannot be used (2×2 up to {MAX_PIXELS:,} pixels)")
    return layout


def _check_y(shape: tuple[int, ...], dtype: np.dtype, n: int, where: str) -> None:
    if dtype.kind not in "iubU":
        raise UserDataError(f"{where}: 'y' must hold integer (or text) labels, not {dtype}")
    if len(shape) != 1:
        raise UserDataError(f"{where}: 'y' has shape {shape}; expected ({n},), one label per image")
    if shape[0] != n:
        raise UserDataError(f"{where}: 'y' has {shape[0]} labels but 'x' has {n} images")


def _load_array(npz, key: str, where: str) -> np.ndarray:
    try:
        return npz[key]
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:  # allow_pickle=False refuses objects
        raise UserDataError(f"{where}: '{key}' cannot be read ({exc})") from exc


def _npz_images(x, y, layout: str, target, spec: str, where: str, location: str) -> UserImages:
    """x as found (its layout checked) -> (N, C, H, W) in [0, 1]: grey stays grey, RGB(A) stays RGB."""
    channels, target_hw = target
    notes = []
    x, y = _capped_rows(x, y, MAX_IMAGES, notes)
    if layout == "NHW":
        x = x[..., None]
    elif layout == "NCHW":
        x = np.moveaxis(x, 1, -1)  # (N, H, W, C), a view
    scale, value_note = _value_scale(x, where)
    hw, size_note = _choose_size([(x.shape[2], x.shape[1])], target_hw)
    source = x.shape[-1]
    channels = channels or (1 if source == 1 else 3)
    x, y = _capped_rows(x, y, _budget(channels, hw), notes, "to fit in memory")
    out = np.empty((len(x), channels, *hw), dtype=np.float32)
    for start in range(0, len(x), 256):  # chunks keep the float copy small
        chunk = _as_channels(x[start : start + 256].astype(np.float32) / scale, channels)
        out[start : start + len(chunk)] = _fit_chunk(chunk, hw)
    labels, class_names, label_notes = _npz_labels(y)
    done = [value_note, _npz_channel_note(source, channels), _alpha_note(len(x) if source == 4 else 0), size_note]
    note = _compose_note(where, len(out), class_names, done + notes + label_notes, [])
    return UserImages(spec, out, labels, class_names, note, location)


def _capped_rows(x: np.ndarray, y: np.ndarray | None, limit: int, notes: list[str], why: str = ""):
    """x and y cut to at most ``limit`` rows, the same fixed random choice as :func:`_capped`."""
    if len(x) <= limit:
        return x, y
    keep = np.asarray(_capped(list(range(len(x))), limit, notes, why))
    return x[keep], (y[keep] if y is not None else None)


def _as_channels(x: np.ndarray, channels: int) -> np.ndarray:
    """(n, H, W, 1|3|4) in [0, 1] -> (n, H, W, channels): alpha over white, then grey repeated
    to RGB or colour to luma (ITU-R 601, as Pillow's "L")."""
    if x.shape[-1] == 4:
        alpha = x[..., 3:]
        x = x[..., :3] * alpha + (1.0 - alpha)
    if channels == 3 and x.shape[-1] == 1:
        return np.repeat(x, 3, axis=-1)
    if channels == 1 and x.shape[-1] == 3:
        return (x[..., 0] * 0.299 + x[..., 1] * 0.587 + x[..., 2] * 0.114)[..., None]
    return x


def _fit_chunk(chunk: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    """(n, H, W, C) float32 -> (n, C, h, w) in [0, 1], each channel fitted as an "F" image."""
    if chunk.shape[1:3] == hw:
        return np.moveaxis(chunk, -1, 1).clip(0, 1)
    out = np.empty((len(chunk), chunk.shape[-1], *hw), dtype=np.float32)
    for i, img in enumerate(chunk):
        for c in range(chunk.shape[-1]):
            out[i, c] = _fit(Image.fromarray(np.ascontiguousarray(img[..., c])), hw)[0][0]
    return out


def _npz_channel_note(source: int, channels: int) -> str:
    if channels == 1:
        kind = {1: "", 3: "RGB", 4: "RGBA"}[source]
        return f"{kind} converted to grayscale (the model takes one channel)" if kind else "grayscale"
    return "colour (RGB)" if source > 1 else "grey made RGB (the model takes 3 channels)"


def _value_scale(x: np.ndarray, where: str) -> tuple[float, str]:
    """The divisor that brings x into [0, 1], and what was found."""
    if x.dtype.kind == "b":
        return 1.0, "values true/false"
    lo, hi = float(x.min()), float(x.max())  # NaN propagates into both
    if not (np.isfinite(lo) and np.isfinite(hi)):
        raise UserDataError(f"{where}: 'x' holds NaN or infinite values")
    if lo < 0:
        raise UserDataError(f"{where}: 'x' has values down to {lo:g}; expected 0-255 or [0, 1]")
    if hi > 255:
        raise UserDataError(f"{where}: 'x' has values up to {hi:g}; expected 0-255 or [0, 1]")
    if x.dtype.kind in "ui":
        return 255.0, f"values {x.dtype} 0-255"
    if hi <= 1.0:
        return 1.0, "float values in [0, 1]"
    return 255.0, f"float values up to {hi:g}, read as 0-255"


def _npz_labels(y: np.ndarray | None) -> tuple[np.ndarray | None, tuple[str, ...] | None, list[str]]:
    if y is None:
        return None, None, []
    values, index = np.unique(y, return_inverse=True)
    if len(values) < 2:
        return None, None, ["'y' has a single value: unlabelled"]
    if len(values) > MAX_CLASSES:
        return None, None, [f"'y' has {len(values):,} different values (more than {MAX_CLASSES:,}): unlabelled"]
    return index.astype(np.int64).reshape(-1), tuple(str(v) for v in values), []


# ---------------------------------------------------------------- sizes and notes


def _target(target_shape) -> tuple[int | None, tuple[int, int] | None]:
    """(H, W) or a model's (C, H, W) -> (C or None, (H, W) or None); C must be 1 or 3."""
    if target_shape is None:
        return None, None
    shape = tuple(int(v) for v in target_shape)
    channels = None
    if len(shape) == 3:
        channels, shape = shape[0], shape[1:]
        if channels not in (1, 3):
            raise UserDataError(
                f"your images are read as 1 channel (grey) or 3 (RGB); a model of {channels} channels cannot use them"
            )
    if len(shape) != 2 or not all(1 <= v <= MAX_SIDE for v in shape):
        raise UserDataError(
            f"the target size must be (H, W) or (C, H, W) with C 1 or 3 and sides 1..{MAX_SIDE}, got {target_shape}"
        )
    return channels, shape  # type: ignore[return-value]


def _choose_size(sizes: list[tuple[int, int]], target: tuple[int, int] | None) -> tuple[tuple[int, int], str]:
    """The output (H, W) from the images' (width, height)s, and a note: the target when given,
    else the most common size scaled down to fit MAX_DEFAULT_SIDE."""
    if not sizes:
        return target or (MAX_DEFAULT_SIDE, MAX_DEFAULT_SIDE), ""
    counts = Counter(sizes)
    (w, h), n = counts.most_common(1)[0]
    source = f"{w}×{h}" if n == len(sizes) else f"mostly {w}×{h}"
    if target is None:
        factor = min(1.0, MAX_DEFAULT_SIDE / max(w, h))
        target = (max(1, round(h * factor)), max(1, round(w * factor)))
        if factor < 1:
            limit = f"{MAX_DEFAULT_SIDE}×{MAX_DEFAULT_SIDE}"
            return target, f"resized from {source} to {target[1]}×{target[0]} (at most {limit} unless a model asks)"
    if (h, w) == target:
        others = len(sizes) - n
        if not others:
            return target, f"kept at {w}×{h}"
        return target, f"{others:,} image{_s(others)} of other sizes resized to {w}×{h}, the most common size"
    return target, f"resized from {source} to {target[1]}×{target[0]}"


def _cropped_note(n: int) -> str:
    return f", {n} centre-cropped to that aspect ratio first" if n else ""


def _channel_note(channels: int, colour: int, total: int) -> str:
    """What became of the images' channels: kept, made RGB, or converted to grayscale."""
    grey = total - colour
    if channels == 1:
        if not colour:
            return "grayscale"
        which = "all" if colour == total else f"{colour:,} of {total:,}"
        return f"{which} colour images converted to grayscale (the model takes one channel)"
    if not colour:
        return "all grey images made RGB (the model takes 3 channels)"
    if not grey:
        return "colour (RGB)"
    return f"colour (RGB), {grey:,} grey image{_s(grey)} made RGB (the set mixes grey and colour)"


def _alpha_note(n: int) -> str:
    return f"{n:,} image{_s(n)} with transparency composited on white" if n else ""


def _compose_note(where: str, n: int, class_names, parts: list[str], skipped: list[tuple[str, str]]) -> str:
    """ "your folder /x: 812 images in 10 classes, …; 3 files skipped (a.png: empty; …)" """
    if class_names:
        shown = ", ".join(class_names[:10]) + (", …" if len(class_names) > 10 else "")
        what = f"{n:,} images in {len(class_names)} classes ({shown})"
    else:
        what = f"{n:,} unlabelled images"
    note = f"{where}: {what}, " + ", ".join(p for p in parts if p)
    if skipped:
        shown = "; ".join(f"{name}: {_short(why)}" for name, why in skipped[:_NOTE_SKIPPED])
        more = f"; and {len(skipped) - _NOTE_SKIPPED} more" if len(skipped) > _NOTE_SKIPPED else ""
        note += f"; {len(skipped)} file{_s(len(skipped))} skipped ({shown}{more})"
    return note


def _reason(exc: ImageError, name: str) -> str:
    """core.data.images' "a.png is empty" -> "empty" (the file's name is shown beside it)."""
    text = str(exc)
    for prefix in (f"{name} is ", f"{name} "):
        if text.startswith(prefix):
            return text[len(prefix) :]
    return text


def _short(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _size(n: int) -> str:
    return f"{n / 2**30:.1f} GB" if n >= 2**30 else f"{n / 2**20:.1f} MB"


def _s(n: int) -> str:
    return "" if n == 1 else "s"
