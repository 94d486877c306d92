"""The model catalog: which checkpoints the app offers, where their data comes from, and the
small non-UI helpers the pages share (model cards, AE/VAE partners, query-string parsing).

Two folders hold checkpoints: the shipped ones (``LATENTLAB_CHECKPOINTS``, default
``<repo>/checkpoints``) and the user's own (``LATENTLAB_USER_CHECKPOINTS``, default
``<repo>/user_checkpoints``, not in git). A model's key is its name for a shipped model and
``user:NAME`` for a user model, so the two never collide (a checkpoint name has no colon). The
user folder also holds foreign models, one sub-folder each (``NAME/`` with ``encoder.onnx``,
``decoder.onnx`` and ``model.json``; see :mod:`core.formats.foreign`), offered beside the others,
and latent-diffusion VAEs (a diffusers or optimum folder, or ours with a ``latent_shape``).

Data for the app is loaded offline-first: a data folder (``LATENTLAB_DATA``, else the download
cache when it exists), then the embedded subsets. The network is used only when
``LATENTLAB_DOWNLOAD=1``: an offline download attempt can hang for half a minute, and a page
must open in a blink. Nothing here imports Streamlit.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from core.data.registry import (
    REGISTRY,
    TABLE_PREFIX,
    Dataset,
    cache_dir,
    fit_images,
    is_user_data,
    load_dataset,
    load_user_data,
)
from core.data.tables import TABLES
from core.formats.checkpoints import list_checkpoints, shipped_dir, user_dir
from core.formats.foreign import ForeignInfo, list_foreign
from core.models.config import is_variational

DOWNLOAD_ENV = "LATENTLAB_DOWNLOAD"
USER_PREFIX = "user:"
# The model a fresh session opens on, if it is installed: the "quality" MNIST model.
PREFERRED_DEFAULTS = ("mnist-vae-conv-z16", "mnist-vae-mlp-z2")


# ---------------------------------------------------------------- the models on offer


@dataclass(frozen=True)
class ModelEntry:
    """One checkpoint the app can offer (read from its JSON only; loading is the page's job)."""

    key: str  # "NAME" (shipped) or "user:NAME"
    name: str
    source: str  # "shipped" | "user"
    path: Path  # the .safetensors file
    meta: dict = field(default_factory=dict, compare=False, hash=False)
    error: str | None = None
    format: str = "latentlab"  # "latentlab" (safetensors + JSON) | "onnx" (a foreign model folder)

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def model(self) -> dict:
        return self.meta.get("model", {})

    @property
    def kind(self) -> str:
        return self.model.get("kind", "?")

    @property
    def latent_dim(self) -> int:
        return int(self.model.get("latent_dim", 0))

    @property
    def image_shape(self) -> tuple[int, ...]:
        return tuple(self.model.get("image_shape", ()))

    @property
    def is_variational(self) -> bool:
        return is_variational(self.kind)

    @property
    def dataset(self) -> str:
        """The data set family the model belongs with: one trained on the embedded digits is an
        MNIST model (it pairs with the shipped ones and is shown on MNIST's test set)."""
        name = self.meta.get("dataset", {}).get("name") or "?"
        return REGISTRY[name].family_name if name in REGISTRY else name

    @property
    def input_kind(self) -> str:
        """What the model takes in (core.app.site.INPUTS): "table" for rows of a table, "spatial" for
        a latent-diffusion VAE (its code is a C × h × w map), else "images"."""
        if self.format == "spatial":
            return "spatial"
        return "table" if self.dataset.startswith(TABLE_PREFIX) else "images"

    @property
    def beta(self) -> float | None:
        beta = self.meta.get("train", {}).get("beta")
        return float(beta) if beta is not None else None

    @property
    def noise(self) -> str | None:
        """The training corruption of a denoising AE, or None."""
        return self.meta.get("train", {}).get("noise") or None

    @property
    def title(self) -> str:
        if self.meta.get("title"):
            return self.meta["title"]
        arch = self.model.get("arch", "?")
        return f"{self.kind.upper()} {arch}, latent {self.latent_dim}"

    @property
    def label(self) -> str:
        """What a picker shows."""
        return f"{self.name} (your model)" if self.source == "user" else self.name

    @property
    def mtime(self) -> float:
        """Changes when the checkpoint is rewritten, so a cache keyed on it reloads."""
        folder = self.format in ("onnx", "spatial") and self.path.is_dir()
        files = list(self.path.iterdir()) if folder else [self.path, self.path.with_suffix(".json")]
        try:
            return max(p.stat().st_mtime for p in files)
        except (OSError, ValueError):
            return 0.0


def list_models() -> list[ModelEntry]:
    """Every checkpoint in the shipped folder, then the user folder (broken ones say why); not
    the shipped image models of a few classes only (manifest ``classes``): the anomaly page loads
    those by name, and they would pass for models of the whole data set elsewhere. A table's model
    is listed: it is trained on the normal rows by design (its ``classes`` are the normal class)."""
    entries = []
    for source, folder in (("shipped", shipped_dir()), ("user", user_dir())):
        for info in list_checkpoints(folder):
            manifest = info.meta.get("manifest_entry") or {}
            if manifest.get("classes") is not None and not manifest.get("dataset", "").startswith(TABLE_PREFIX):
                continue
            key = info.name if source == "shipped" else USER_PREFIX + info.name
            entries.append(
                ModelEntry(key=key, name=info.name, source=source, path=info.path, meta=info.meta, error=info.error)
            )
    foreign = [_foreign_entry(info) for info in list_foreign(user_dir())]
    spatial = _spatial_entries(shipped_dir() / SHIPPED_SPATIAL, "shipped") + _spatial_entries(user_dir(), "user")
    return entries + foreign + spatial + explored_entries()


# A latent-diffusion VAE (a diffusers AutoencoderKL folder or optimum's ONNX export) in your models'
# folder, or a model opened with ``python -m core explore PATH [--images DIR]``, which names it here.
EXPLORE_ENV, EXPLORE_IMAGES_ENV = "LATENTLAB_EXPLORE", "LATENTLAB_EXPLORE_IMAGES"
EXPLORE_PREFIX = "explore:"


SHIPPED_SPATIAL = "spatial"  # checkpoints/spatial/: the latent-diffusion VAEs that ship (diffusers folders)


def _spatial_entries(root: Path, source: str) -> list[ModelEntry]:
    """Every subfolder of ``root`` laid out as a spatial VAE (nothing is opened: layout only);
    ``source`` "shipped" (keyed by name) or "user" (keyed ``user:NAME``)."""
    from core.formats.spatial_layout import SpatialModelError, spatial_layout

    if not root.is_dir():
        return []
    out = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        if (folder / "model.json").is_file():
            continue  # our ONNX format, flat or spatial: list_foreign lists it
        try:
            layout = spatial_layout(folder)
        except SpatialModelError:
            continue
        key = folder.name if source == "shipped" else USER_PREFIX + folder.name
        out.append(spatial_entry(folder, key, layout, source=source))
    return out


def spatial_entry(
    folder: Path,
    key: str,
    layout: str,
    images: str | None = None,
    title: str | None = None,
    source: str = "user",
) -> ModelEntry:
    """A spatial VAE folder as a catalog entry; ``images`` (folder:PATH) is its data set, ``title`` its
    name for people, if given; else its ``latentlab.json`` (a VAE we trained) names them, else the
    folder's name and the layout, on the offline 3-D scenes."""
    from core.formats.spatial_layout import read_card

    ours = read_card(folder)
    card = ours.get("card") if isinstance(ours.get("card"), dict) else {}
    measured = f" Reconstruction PSNR {card['test_psnr']} dB on its {card.get('test_n', '?')} test images." if (
        "test_psnr" in card
    ) else ""  # fmt: skip
    meta = {
        "model": {"kind": "vae", "arch": layout, "latent_dim": 0},
        "dataset": {"name": images or str(ours.get("dataset") or SPATIAL_IMAGES)},
        "title": title or str(ours.get("title") or f"{folder.name} (latent-diffusion VAE, {layout})"),
        "notes": f"A spatial-latent VAE in {folder}.{measured}",
    }
    return ModelEntry(key=key, name=folder.name, source=source, path=folder, meta=meta, format="spatial")


SPATIAL_IMAGES = "shapes3d"  # a spatial VAE's images when you name none: colour scenes, offline


def explored_entries() -> list[ModelEntry]:
    """The model ``python -m core explore`` opened (``LATENTLAB_EXPLORE``), its images as its data
    set (``LATENTLAB_EXPLORE_IMAGES``); none when unset. A path that cannot be read is listed broken."""
    raw = os.environ.get(EXPLORE_ENV, "").strip()
    if not raw:
        return []
    path = Path(raw).expanduser().resolve()
    images = os.environ.get(EXPLORE_IMAGES_ENV, "").strip()
    images = f"folder:{Path(images).expanduser().resolve()}" if images else None
    key = EXPLORE_PREFIX + path.name.removesuffix(".safetensors").removesuffix(".json")
    entry = _explored(path, key)
    if images and entry.meta:  # the images you named are its data set (its card stays as measured)
        entry = replace(entry, meta={**entry.meta, "dataset": {"name": images}})
    return [entry]


def _explored(path: Path, key: str) -> ModelEntry:
    from core.formats.checkpoints import list_checkpoints
    from core.formats.spatial_layout import SpatialModelError, spatial_layout

    if path.is_dir() and (path / "model.json").is_file():
        info = next(i for i in list_foreign(path.parent) if i.path == path)
        return replace(_foreign_entry(info), key=key)
    if path.is_dir():
        try:
            return spatial_entry(path, key, spatial_layout(path))
        except SpatialModelError as exc:
            return ModelEntry(key=key, name=path.name, source="user", path=path, error=str(exc), format="spatial")
    stem = path.name.removesuffix(".safetensors").removesuffix(".json")  # "…-b0.1" keeps its ".1"
    for info in list_checkpoints(path.parent):
        if info.name == stem:
            return ModelEntry(key=key, name=info.name, source="user", path=info.path, meta=info.meta, error=info.error)
    return ModelEntry(key=key, name=path.name, source="user", path=path, error=f"{path}: no model there")


YOUR_MODELS = "your-models"  # the sidebar's data set for a foreign model that names none of ours


def _foreign_entry(info: ForeignInfo) -> ModelEntry:
    """A foreign model folder as a catalog entry: its model.json in the shape of our checkpoints' JSON;
    one with a spatial latent_shape is a latent-diffusion VAE (:func:`spatial_entry`)."""
    meta: dict = {}
    s = info.spec
    if s is not None and s.is_spatial:
        images = s.dataset if s.dataset in REGISTRY or is_user_data(s.dataset or "") else None
        return spatial_entry(info.path, USER_PREFIX + info.name, "latentlab-onnx", images, s.title)
    if s is not None:
        kind = ("cvae" if s.conditional else "vae") if s.is_variational else "ae"
        model = {"kind": kind, "arch": "onnx", "latent_dim": s.latent_dim, "image_shape": list(s.image_shape)}
        meta = {
            "model": model | {"num_classes": s.num_classes, "likelihood": s.likelihood},
            "dataset": {"name": s.dataset if s.dataset in REGISTRY or is_user_data(s.dataset or "") else YOUR_MODELS},
            "card": s.meta.get("card") or {},
            "title": s.title,
            "notes": f"Your ONNX model in {info.path}.",
        }
    return ModelEntry(
        key=USER_PREFIX + info.name, name=info.name, source="user", path=info.path, meta=meta, error=info.error,
        format="onnx",
    )  # fmt: skip


@dataclass
class LoadedModel:
    """A model of the catalog, loaded: ``model`` implements :class:`core.models.protocol.LatentModel`."""

    name: str
    model: object
    meta: dict
    path: Path


def load_entry(entry: ModelEntry) -> LoadedModel:
    """Load the model behind ``entry`` (validated); CheckpointError (or its subclass
    ForeignModelError) naming the file and the problem when it cannot be used."""
    if entry.format == "onnx":
        from core.formats.onnx_model import load_onnx_model

        return LoadedModel(entry.name, load_onnx_model(entry.path), entry.meta, entry.path)
    if entry.format == "spatial":
        from core.formats.spatial import open_spatial

        return LoadedModel(entry.name, open_spatial(entry.path, entry.name), entry.meta, entry.path)
    from core.formats.checkpoints import load_checkpoint

    ckpt = load_checkpoint(entry.path)
    return LoadedModel(ckpt.name, ckpt.model, ckpt.meta, ckpt.path)


def default_model(entries: list[ModelEntry], dataset: str | None = None) -> ModelEntry | None:
    """The model to open on: a preferred one, else the first shipped VAE, else the first usable one."""
    usable = [e for e in entries if e.ok and (dataset is None or e.dataset == dataset)]
    by_key = {e.key: e for e in usable}
    for key in PREFERRED_DEFAULTS:
        if key in by_key:
            return by_key[key]
    for pick in (
        lambda e: e.source == "shipped" and e.kind == "vae",
        lambda e: e.kind == "vae",
        lambda e: True,
    ):
        for e in usable:
            if pick(e):
                return e
    return None


def datasets_of(entries: list[ModelEntry]) -> list[str]:
    """The data sets that have at least one usable model, in the registry's order."""
    have = {e.dataset for e in entries if e.ok}
    return [n for n in REGISTRY if n in have] + sorted(have - set(REGISTRY))


USER_DATA_PREFIXES = ("upload:", "folder:", "npz:")  # your own images (core.data.registry.load_user_data)


def dataset_title(name: str) -> str:
    """A data set's name for people: the registry's title, "Your images (NAME)" for your own."""
    spec = REGISTRY.get(name)
    if spec:
        return spec.title
    if name == YOUR_MODELS:
        return "Your models (no data set named)"
    if name.removeprefix(TABLE_PREFIX) in TABLES:
        return TABLES[name.removeprefix(TABLE_PREFIX)][0]
    for prefix in USER_DATA_PREFIXES:
        if name.startswith(prefix):
            return f"Your images ({Path(name[len(prefix) :]).name})"
    return name


def is_digits(entry: ModelEntry) -> bool:
    spec = REGISTRY.get(entry.dataset)
    return spec is not None and spec.kind == "digits"


def beta_of(entry: ModelEntry) -> float:
    """The model's β (1 when its JSON records none, the plain VAE's; 0 stays 0)."""
    return entry.beta if entry.beta is not None else 1.0


def card_rows(entry: ModelEntry) -> dict[str, str]:
    """The few facts a sidebar card shows: data, how many training images, latent size, β, test loss."""
    card = entry.meta.get("card", {})
    data = entry.meta.get("dataset", {})
    rows = {"Model": entry.title, "Data": dataset_title(entry.dataset)}
    if entry.format == "spatial":  # its latent shape depends on the image size; the page says it
        return rows | {"Latent": "C × H/f × W/f (a spatial map)"}
    if data.get("n_train"):  # what the data set is, not where it sat on the trainer's disk
        rows["Trained on"] = trained_on(data)
    rows["Latent size"] = str(entry.latent_dim)
    if entry.is_variational:
        rows["β"] = f"{entry.beta:g}" if entry.beta is not None else "1"
    else:
        rows["Kind"] = "denoising AE" if entry.noise else "plain AE (no KL)"
    if card.get("test_loss") is not None:  # −ELBO, one sample, on the test images the model models
        binary = " (−ELBO on the binarized test set)" if card.get("binarized_seed") is not None else ""
        rows["Test loss"] = f"{card['test_loss']:.1f} nats{binary}"
    if card.get("test_psnr") is not None:
        rows["Reconstruction"] = f"{card['test_psnr']:.1f} dB PSNR (test images)"
    if len(entry.image_shape) == 3 and entry.image_shape[0] == 3:  # why not the textbook's Bernoulli
        rows["Likelihood"] = (
            "Gaussian: colour values are intensities, not on/off pixels"
            if entry.model.get("likelihood") == "gaussian"
            else entry.model.get("likelihood", "?")
        )
    if card.get("active_units") is not None:
        rows["Active units"] = f"{card['active_units']} of {entry.latent_dim}"
    if iw := card.get("iw_nll"):  # python -m core evaluate NAME --iw K
        rows["IW-NLL"] = f"{iw['nll']:.2f} ± {iw['se'] or 0:.2f} nats (K = {iw['k']:,}, {iw['n']:,} images)"
    return rows


def trained_on(data: dict) -> str:
    """What a checkpoint's training images were, from its JSON's ``dataset`` record: "MNIST
    training set, 60,000 images"; never a path."""
    spec = REGISTRY.get(data.get("name", ""))
    n = f"{data['n_train']:,} {'rows' if data.get('name', '').startswith(TABLE_PREFIX) else 'images'}"
    if spec is None:  # the user's own images: the folder's or file's name only
        return f"{dataset_title(data.get('name', '?'))}, {n}"
    return f"{spec.train_title or spec.title}, {n}"


def partners(entries: list[ModelEntry], entry: ModelEntry) -> list[ModelEntry]:
    """Models to compare ``entry`` with on the AE vs VAE page: same data, image shape and latent
    size, the other side of the AE/VAE divide; plain AEs before denoising ones, same
    architecture first."""
    want_variational = not entry.is_variational
    found = [
        e
        for e in entries
        if e.ok
        and e.key != entry.key
        and e.kind in ("ae", "vae")
        and e.is_variational == want_variational
        and e.dataset == entry.dataset
        and e.image_shape == entry.image_shape
        and e.latent_dim == entry.latent_dim
    ]
    return sorted(
        found,
        key=lambda e: (
            e.noise is not None,
            e.model.get("arch") != entry.model.get("arch"),
            e.beta not in (None, 1.0),
            e.source != "shipped",
            e.key,
        ),
    )


DENOISER_ROLES = ("dae", "vae", "ae")  # denoising AE, VAE, plain AE: the denoising page's columns


def denoiser_role(entry: ModelEntry) -> str | None:
    """The model's column on the denoising page: "dae" (an AE trained on corrupted inputs), "vae"
    (unconditional), "ae" (plain), else None."""
    if entry.kind == "ae":
        return "dae" if entry.noise else "ae"
    return "vae" if entry.kind == "vae" else None


def denoiser_candidates(entries: list[ModelEntry], entry: ModelEntry) -> dict[str, list[ModelEntry]]:
    """Models for the denoising page's columns, per role of :data:`DENOISER_ROLES`: usable
    models of ``entry``'s data set and image shape, best first: ``entry`` itself when it has
    the role, then the same architecture and latent size, β = 1, shipped. A role with no
    model has an empty list."""
    found: dict[str, list[ModelEntry]] = {role: [] for role in DENOISER_ROLES}
    for e in entries:
        role = denoiser_role(e)
        if e.ok and role and e.dataset == entry.dataset and e.image_shape == entry.image_shape:
            found[role].append(e)
    for models in found.values():
        models.sort(
            key=lambda e: (
                e.key != entry.key,
                e.model.get("arch") != entry.model.get("arch"),
                e.latent_dim != entry.latent_dim,
                e.beta not in (None, 1.0),
                e.source != "shipped",
                e.key,
            )
        )
    return found


# The data set whose images are the anomalies for a model of the key's data set (same image
# size, a different kind of picture).
CROSS_DATASET = {"mnist": "fashion-mnist", "mnist-5k": "fashion-mnist", "fashion-mnist": "mnist"}


def ae_vae_pairs(entries: list[ModelEntry]) -> list[tuple[ModelEntry, ModelEntry]]:
    """Every (AE, VAE) pair that can be compared, best pairs first."""
    pairs = []
    for ae in entries:
        if ae.ok and ae.kind == "ae":
            for vae in partners(entries, ae):
                pairs.append((ae, vae))
    return sorted(
        pairs,
        key=lambda p: (
            p[0].noise is not None,
            p[0].model.get("arch") != p[1].model.get("arch"),
            p[1].beta not in (None, 1.0),
            p[0].source != "shipped" or p[1].source != "shipped",
        ),
    )


def beta_families(entries: list[ModelEntry]) -> list[list[ModelEntry]]:
    """Groups of usable (unconditional) VAEs that differ only in β: same data set, model config and loss form,
    at least two different β values (one model per β, the shipped one first). Each group is
    sorted by β; groups of shipped models come first, then larger groups."""
    groups: dict[tuple, dict[float, ModelEntry]] = {}
    for e in entries:
        if not (e.ok and e.kind == "vae"):
            continue
        form = e.meta.get("train", {}).get("loss_form", "standard")
        key = (e.dataset, form, tuple(sorted((k, str(v)) for k, v in e.model.items())))
        beta = beta_of(e)
        group = groups.setdefault(key, {})
        if beta not in group or (group[beta].source != "shipped" and e.source == "shipped"):
            group[beta] = e
    families = [sorted(g.values(), key=beta_of) for g in groups.values() if len(g) >= 2]
    return sorted(families, key=lambda f: (not all(e.source == "shipped" for e in f), -len(f), f[0].key))


# ---------------------------------------------------------------- data for the pages


def allow_download() -> bool:
    return os.environ.get(DOWNLOAD_ENV, "").strip().lower() in ("1", "true", "yes")


def load_data(name: str, image_shape: tuple[int, ...] | None = None) -> Dataset:
    """Load a data set without touching the network (unless ``LATENTLAB_DOWNLOAD=1``).

    The data folder is ``LATENTLAB_DATA``, else the download cache when it holds files; then
    the embedded subsets. Images are fitted to ``image_shape`` (C, H, W) when it differs (a
    model trained on the full set applied to the offline subset, a colour model on grey
    digits): :func:`core.data.registry.fit_images`. Your own images are read at that shape
    directly. Raises DataError.
    """
    if is_user_data(name):
        return load_user_data(name, None if image_shape is None else tuple(image_shape))
    folder = os.environ.get("LATENTLAB_DATA") or None
    if folder is None and cache_dir().is_dir():
        folder = str(cache_dir())
    ds = load_dataset(name, folder, download=allow_download())
    if image_shape is not None and tuple(ds.image_shape) != tuple(image_shape):
        c, h, w = image_shape
        what = f"{h}×{w}" if c == ds.image_shape[0] else f"{h}×{w} {'RGB' if c == 3 else 'grey'}"
        ds = replace(
            ds,
            train_x=fit_images(ds.train_x, tuple(image_shape)),
            test_x=fit_images(ds.test_x, tuple(image_shape)),
            source_note=ds.source_note + f", fitted to {what}",
        )
    return ds


def subset_indices(n_total: int, n: int | None, seed: int = 0) -> np.ndarray:
    """A fixed random subset of ``n`` of ``n_total`` rows, sorted (all rows when n is None or
    too large). Random, not the first n: some splits are sorted by label."""
    if n is None or n >= n_total:
        return np.arange(n_total)
    return np.sort(np.random.default_rng(seed).permutation(n_total)[:n])


MIN_POOL = 200


def pool(data: Dataset) -> tuple[np.ndarray, np.ndarray | None, str]:
    """The images whose codes a page plots: the test split, or train + test when the test split
    is too small to show structure (Olivetti holds out 40 faces). Returns (x, y, description)."""
    # Offline the training split is another set (LFW crops for the faces): never mix it in.
    noun = data.examples
    if len(data.test_x) >= MIN_POOL or len(data.train_x) == 0 or data.fell_back_from:
        return data.test_x, data.test_y, f"{len(data.test_x):,} test {noun}"
    x = np.concatenate([data.test_x, data.train_x])
    y = None if data.test_y is None or data.train_y is None else np.concatenate([data.test_y, data.train_y])
    return x, y, f"all {len(x):,} {noun} (the test split has only {len(data.test_x)})"


def class_members(data: Dataset, cls: int | None) -> np.ndarray:
    """Rows of ``data.test_x`` in class ``cls`` (every row when there are no labels or no class)."""
    if data.test_y is None or cls is None:
        return np.arange(len(data.test_x))
    return np.flatnonzero(np.asarray(data.test_y) == cls)


# ---------------------------------------------------------------- query strings
# A bookmark is untrusted text: every parser returns (value, problem). The value is None and
# the problem says why in words when the text cannot be used; the page falls back to its default.


def parse_choice(text: str | None, options: list[str] | tuple[str, ...], what: str) -> tuple[str | None, str | None]:
    if text is None:
        return None, None
    if text in options:
        return text, None
    return None, f"unknown {what} {quote(text)}"


def parse_int(text: str | None, lo: int, hi: int, what: str) -> tuple[int | None, str | None]:
    if text is None:
        return None, None
    try:
        value = int(text.strip())
    except (ValueError, AttributeError):
        return None, f"{what} {quote(text)} is not a whole number"
    if not lo <= value <= hi:
        return None, f"{what} {value} is outside {lo}..{hi}"
    return value, None


def parse_float(text: str | None, lo: float, hi: float, what: str) -> tuple[float | None, str | None]:
    if text is None:
        return None, None
    try:
        value = float(text.strip())
    except (ValueError, AttributeError):
        return None, f"{what} {quote(text)} is not a number"
    if not math.isfinite(value) or not lo <= value <= hi:
        return None, f"{what} {quote(text)} is outside {lo:g}..{hi:g}"
    return value, None


def parse_code(text: str | None, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray | None, str | None]:
    """``"0.5,-1.2,..."`` -> a code (z,) within [lo, hi] per dimension, or a problem."""
    if text is None:
        return None, None
    parts = text.split(",")
    if len(parts) != len(lo):
        return None, f"the code in the link has {len(parts)} values, this model has {len(lo)} dimensions"
    try:
        z = np.array([float(p) for p in parts], dtype=np.float64)
    except ValueError:
        return None, f"the code {quote(text)} is not a list of numbers"
    if not np.isfinite(z).all():
        return None, "the code in the link holds NaN or infinity"
    if (z < lo - 1e-6).any() or (z > hi + 1e-6).any():
        return None, "the code in the link is outside the sliders' range"
    return z.astype(np.float32), None


@dataclass(frozen=True)
class TestPick:
    """A test image as a picker holds it: ``row`` in ``test_x``, its class (None without
    labels) and its ``index`` among the test images of that class."""

    row: int
    cls: int | None
    index: int


def parse_test_row(text: str | None, data: Dataset, what: str) -> tuple[TestPick | None, str | None]:
    """``"123"`` -> the :class:`TestPick` of test image 123 of ``data``, or a problem."""
    row, problem = parse_int(text, 0, len(data.test_x) - 1, what)
    if row is None:
        return None, problem
    cls = None if data.test_y is None else int(data.test_y[row])
    index = int(np.flatnonzero(class_members(data, cls) == row)[0])
    return TestPick(row, cls, index), None


def format_code(z: np.ndarray) -> str:
    return ",".join(f"{v:.2f}".replace("-0.00", "0.00") for v in np.asarray(z, dtype=np.float64))


def quote(text: str, limit: int = 40) -> str:
    """Untrusted text from a link, quoted for a note and cut to ``limit`` characters."""
    text = str(text)
    return repr(text if len(text) <= limit else text[:limit] + "…")
