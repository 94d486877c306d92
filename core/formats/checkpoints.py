"""Checkpoints: weights in safetensors, everything else in JSON beside them.

``NAME.safetensors`` holds the tensors and nothing executable; ``NAME.json`` holds the model
config (enough to rebuild the model), the data set and its source, the training config,
per-epoch metrics, a model card, library versions, the creation time and the SHA-256 of the
weights file, so a mismatched pair is caught. There is no pickle and no ``torch.load``.

Writes are atomic: each file goes to a temporary name in the same folder and is renamed
into place, weights first and JSON last, so a listed checkpoint (one with a JSON) is always
complete. A process killed mid-save leaves at most a stray ``.tmp`` file, which is ignored.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import platform
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from core import REPO_ROOT
from core.models.config import ConfigError, ModelConfig

# torch (seconds to import) is imported only where weights are read or written: listing a
# folder and validating its JSON, which the app's sidebar and `python -m core list` do, stay fast.
if TYPE_CHECKING:
    import torch

    from core.models.networks import AutoEncoder

ROOT = REPO_ROOT
SHIPPED_DIR = ROOT / "checkpoints"  # the shipped models and their manifest, in git
SHIPPED_ENV = "LATENTLAB_CHECKPOINTS"  # where the app reads the shipped models (default SHIPPED_DIR)
USER_ENV = "LATENTLAB_USER_CHECKPOINTS"  # where the app reads and saves the user's own models
FORMAT = "latentlab-checkpoint"
FORMAT_VERSION = 1
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
MAX_JSON_BYTES = 5_000_000
MAX_WEIGHTS_BYTES = 500_000_000


class CheckpointError(RuntimeError):
    """A checkpoint cannot be saved or loaded; the message names the file and the cause."""


@dataclass
class Checkpoint:
    """A loaded checkpoint: the model (in eval mode) and its JSON metadata."""

    name: str
    model: AutoEncoder
    meta: dict
    path: Path  # the .safetensors file

    @property
    def config(self) -> ModelConfig:
        return self.model.config


@dataclass
class CheckpointInfo:
    """A folder listing entry, read from the JSON only (cheap)."""

    name: str
    path: Path
    meta: dict = field(default_factory=dict)
    error: str | None = None  # why it cannot be used, if it cannot

    @property
    def ok(self) -> bool:
        return self.error is None

    def summary(self) -> str:
        if self.error:
            return f"{self.name}: unusable ({self.error})"
        m = self.meta["model"]
        card = self.meta.get("card", {})
        loss = card.get("test_loss")
        beta = self.meta.get("train", {}).get("beta")
        return (
            f"{self.name}: {m['kind']} {m['arch']} latent {m['latent_dim']} on "
            f"{self.meta.get('dataset', {}).get('name', '?')}"
            + (f", β={beta:g}" if beta is not None else "")
            + (f", test loss {loss:.2f} nats" if loss is not None else "")
        )


def shipped_dir() -> Path:
    """The folder the app offers shipped models from: ``$LATENTLAB_CHECKPOINTS``, else ``checkpoints/``."""
    return Path(os.environ.get(SHIPPED_ENV) or SHIPPED_DIR)


def user_dir() -> Path:
    """The user's own models: ``$LATENTLAB_USER_CHECKPOINTS``, else ``user_checkpoints/`` (not in git)."""
    return Path(os.environ.get(USER_ENV) or ROOT / "user_checkpoints")


def library_versions() -> dict:
    import numpy
    import safetensors
    import torch

    versions = {"python": platform.python_version(), "torch": torch.__version__, "numpy": numpy.__version__}
    versions["safetensors"] = safetensors.__version__
    return versions


def check_name(name: str) -> str:
    """A checkpoint name is a plain file stem: no folders, no ``..``, no absolute paths."""
    if not isinstance(name, str) or not NAME_RE.match(name) or ".." in name:
        raise CheckpointError(
            f"invalid checkpoint name {name!r}: use 1-100 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return name


def resolve(folder: str | os.PathLike, name: str) -> Path:
    """The weights path of checkpoint ``name`` inside ``folder``, refusing path traversal."""
    folder = Path(folder).resolve()
    path = (folder / f"{check_name(name)}.safetensors").resolve()
    if path.parent != folder:
        raise CheckpointError(f"checkpoint {name!r} is outside {folder}")
    return path


def split_path(path: str | os.PathLike) -> tuple[Path, str]:
    """``dir/NAME``, ``dir/NAME.safetensors`` or ``dir/NAME.json`` -> (dir, NAME)."""
    p = Path(path)
    name = p.name
    for suffix in (".safetensors", ".json"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
    return p.parent, name


def _stage(path: Path, write) -> str:
    """Write a hidden temporary file beside ``path`` (0644, fsynced) and return its name.

    Listings skip hidden files, so a staged file is never taken for a checkpoint.
    """
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)  # may replace the file (safetensors does), so the mode is set after it
        os.chmod(tmp, 0o644)  # mkstemp makes 0600 files; checkpoints are ordinary readable files
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
    except BaseException:
        os.unlink(tmp)
        raise
    return tmp


def _commit(tmp: str, path: Path, overwrite: bool) -> None:
    """Move a staged file into place: a rename, or with ``overwrite=False`` a hard link that
    fails if ``path`` exists, so two savers of one name never both win."""
    try:
        if overwrite:
            os.replace(tmp, path)
        else:
            os.link(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)  # gone after a replace; the staged copy after a link


def _sha256(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _check_free(folder: Path, name: str, overwrite: bool) -> str:
    """Refuse a taken name unless ``overwrite``; returns the message for a name taken later."""
    weights, meta_path = folder / f"{name}.safetensors", folder / f"{name}.json"
    taken = f"a checkpoint named {name!r} already exists in {folder}; choose another name"
    if not overwrite and weights.exists() and not meta_path.exists():
        raise CheckpointError(
            f"a checkpoint named {name!r} is being saved, or an interrupted save left {weights} without "
            "its JSON: choose another name (or delete that file)"
        )
    if not overwrite and (weights.exists() or meta_path.exists()):
        raise CheckpointError(taken)
    return taken


def _metadata(model: AutoEncoder, name: str, dtype: torch.dtype, weights_sha256: str, fields: dict) -> str:
    """The checkpoint's JSON text: format, config, the caller's fields, versions and the weights' hash."""
    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "name": name,
        "model": model.config.to_dict(),
        "dataset": fields.get("dataset") or {},
        "train": fields.get("train") or {},
        "history": fields.get("history") or {},
        "card": fields.get("card") or {},
        "storage_dtype": str(dtype).removeprefix("torch."),
        "weights_sha256": weights_sha256,
        "versions": library_versions(),
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        **(fields.get("extra") or {}),
    }
    return json.dumps(meta, indent=2, allow_nan=False)


def save_checkpoint(
    model: AutoEncoder,
    path: str | os.PathLike,
    *,
    dataset: dict | None = None,
    train: dict | None = None,
    history: dict | None = None,
    card: dict | None = None,
    dtype: torch.dtype | None = None,
    overwrite: bool = True,
    extra: dict | None = None,
) -> Path:
    """Save ``model`` as ``path.safetensors`` + ``path.json``; returns the weights path.

    dtype: storage type of floating tensors, float32 when None (float16 halves the size; loading restores
        float32). overwrite=False refuses an existing name instead of replacing it.
    """
    import torch
    from safetensors.torch import save_file

    dtype = dtype or torch.float32
    folder, name = split_path(path)
    check_name(name)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CheckpointError(f"cannot create checkpoint folder {folder}: {exc.strerror or exc}") from exc
    if not os.access(folder, os.W_OK):
        raise CheckpointError(f"checkpoint folder {folder} is read-only; choose another folder")
    weights, meta_path = folder / f"{name}.safetensors", folder / f"{name}.json"
    taken = _check_free(folder, name, overwrite)
    tensors = {
        k: (v.detach().to("cpu", dtype) if v.is_floating_point() else v.detach().cpu()).contiguous()
        for k, v in model.state_dict().items()
    }
    fields = {"dataset": dataset, "train": train, "history": history, "card": card, "extra": extra}
    staged: list[str] = []
    try:
        # Both files are staged in full first, then committed back to back: weights, then the
        # JSON, which is what makes a checkpoint exist (listings go by the JSON). A process
        # killed before the JSON's commit leaves at most a weights file without a JSON, which
        # is not listed; the other checkpoints in the folder are never touched.
        staged.append(_stage(weights, lambda tmp: save_file(tensors, tmp, metadata={"format": FORMAT})))
        text = _metadata(model, name, dtype, _sha256(Path(staged[0])), fields)
        staged.append(_stage(meta_path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8")))
        _commit_pair(staged, weights, meta_path, overwrite, taken)
    except OSError as exc:
        raise CheckpointError(f"cannot write checkpoint {name!r} in {folder}: {exc.strerror or exc}") from exc
    finally:
        for tmp in staged:
            Path(tmp).unlink(missing_ok=True)
    return weights


def _commit_pair(staged: list[str], weights: Path, meta_path: Path, overwrite: bool, taken: str) -> None:
    """Commit the staged weights, then the staged JSON (popping each from ``staged``)."""
    try:
        _commit(staged.pop(0), weights, overwrite)
    except FileExistsError as exc:
        raise CheckpointError(taken) from exc
    try:
        _commit(staged.pop(0), meta_path, overwrite)
    except FileExistsError as exc:
        # A JSON without weights holds the name (our weights link found no weights file):
        # withdraw our weights rather than pair them with a stranger's JSON.
        weights.unlink(missing_ok=True)
        raise CheckpointError(taken) from exc


def read_json_file(
    path: Path, *, max_bytes: int, missing: str, what: str, error: type[CheckpointError] = CheckpointError
) -> object:
    """A model's JSON file, parsed with json.loads only: ``error`` when it is missing (``missing`` says
    what it should be), larger than ``max_bytes`` (too large for ``what``) or not valid JSON."""
    if not path.is_file():
        raise error(f"{path}: missing ({missing})")
    size = path.stat().st_size
    if size > max_bytes:
        raise error(f"{path}: {size:,} bytes is too large for {what}")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise error(f"{path}: not valid JSON ({exc})") from exc


def read_meta(path: str | os.PathLike) -> dict:
    """Read and validate a checkpoint's JSON (not its weights)."""
    folder, name = split_path(path)
    meta_path = folder / f"{name}.json"
    meta = read_json_file(
        meta_path,
        max_bytes=MAX_JSON_BYTES,
        missing="every checkpoint needs its JSON beside the weights",
        what="a checkpoint's JSON",
    )
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{meta_path}: not a Latent Lab checkpoint (no format {FORMAT!r})")
    if meta.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"{meta_path}: unsupported format version {meta.get('format_version')!r}")
    if not isinstance(meta.get("model"), dict):
        raise CheckpointError(f"{meta_path}: no model config")
    try:
        ModelConfig.from_dict(meta["model"])
    except (ConfigError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{meta_path}: bad model config: {exc}") from exc
    return meta


def load_checkpoint(path: str | os.PathLike, device: str | torch.device = "cpu") -> Checkpoint:
    """Load and validate a checkpoint; the model comes back in eval mode, float32.

    Raises CheckpointError naming the file for: missing or garbled JSON, an unknown model
    type, a weights file that is not safetensors (a renamed pickle is rejected by its
    header and never unpickled), a truncated file, a hash that does not match the JSON,
    unknown or missing tensors, and shape mismatches.
    """
    import torch
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from core.models.networks import build_model

    folder, name = split_path(path)
    weights = folder / f"{name}.safetensors"
    meta = read_meta(weights)
    config = ModelConfig.from_dict(meta["model"])
    if not weights.is_file():
        raise CheckpointError(f"{weights}: missing weights file")
    size = weights.stat().st_size
    if size > MAX_WEIGHTS_BYTES:
        raise CheckpointError(f"{weights}: {size:,} bytes is too large for a Latent Lab model")
    _check_header(weights)
    if meta.get("weights_sha256") and _sha256(weights) != meta["weights_sha256"]:
        raise CheckpointError(f"{weights}: contents do not match its JSON (SHA-256 differs): truncated or replaced")
    try:
        tensors = load_file(str(weights), device="cpu")
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"{weights}: not a valid safetensors file ({exc})") from exc

    model = build_model(config)
    expected = model.state_dict()
    unknown = sorted(set(tensors) - set(expected))
    missing = sorted(set(expected) - set(tensors))
    if unknown or missing:
        parts = []
        if unknown:
            parts.append(f"unknown tensors {unknown[:5]}")
        if missing:
            parts.append(f"missing tensors {missing[:5]}")
        raise CheckpointError(f"{weights}: weights do not fit the {config.kind} model in its JSON: " + "; ".join(parts))
    for k, v in tensors.items():
        if tuple(v.shape) != tuple(expected[k].shape):
            raise CheckpointError(
                f"{weights}: tensor {k!r} has shape {tuple(v.shape)}, the model config needs "
                f"{tuple(expected[k].shape)} (latent size or architecture disagrees with the weights)"
            )
        if not torch.isfinite(v).all():
            raise CheckpointError(f"{weights}: tensor {k!r} holds NaN or inf")
    model.load_state_dict({k: v.to(expected[k].dtype) for k, v in tensors.items()})
    model.to(device).eval()
    return Checkpoint(name=name, model=model, meta=meta, path=weights)


def _check_header(weights: Path) -> None:
    """Reject anything that is not safetensors by its first bytes, before any parser runs.

    safetensors starts with an 8-byte little-endian header length, then a JSON object
    (``{``). A pickle starts with 0x80 (protocol 2+); a torch zip archive with ``PK``. The
    safetensors test comes first: a header length such as 0x0580 also starts with 0x80.
    """
    with open(weights, "rb") as f:
        head = f.read(9)
    if len(head) < 9:
        raise CheckpointError(f"{weights}: truncated ({len(head)} bytes)")
    header_len = int.from_bytes(head[:8], "little")
    if head[8:9] == b"{" and 2 <= header_len <= weights.stat().st_size - 8:
        return
    if head[:1] == b"\x80" or head[:2] == b"PK":
        raise CheckpointError(f"{weights}: is a pickle / torch.save file, not safetensors; refusing to load it")
    raise CheckpointError(f"{weights}: not a safetensors file (bad header)")


def list_checkpoints(folder: str | os.PathLike) -> list[CheckpointInfo]:
    """Every checkpoint in ``folder`` (by its JSON), sorted by name; broken ones say why."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    infos = []
    # A checkpoint exists once its JSON does (save_checkpoint commits the JSON last), so a
    # weights file alone, such as one left by a save that was killed, is not listed.
    stems = {p.name[: -len(".json")] for p in folder.glob("*.json")}
    for name in sorted(stems):
        if name.startswith(".") or name == "manifest":
            continue
        weights = folder / f"{name}.safetensors"
        try:
            meta = read_meta(weights)
            if not weights.is_file():
                raise CheckpointError(f"{weights}: missing weights file")
            infos.append(CheckpointInfo(name=name, path=weights, meta=meta))
        except CheckpointError as exc:
            infos.append(CheckpointInfo(name=name, path=weights, error=str(exc)))
    return infos


def describe_folder(folder: str | os.PathLike, markdown: bool = False) -> str:
    """A readable listing of a folder of checkpoints, one line each, or a Markdown table of cards."""
    infos = list_checkpoints(folder)
    if not infos:
        return f"no checkpoints in {folder}"
    if not markdown:
        return "\n".join(info.summary() for info in infos)
    rows = [
        "| checkpoint | data | model | β | epochs | test loss | recon | KL | active units | train s | MB |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for info in infos:
        if not info.ok:
            rows.append(f"| {info.name} | unusable: {info.error} |" + " |" * 9)
            continue
        m, c, t = info.meta["model"], info.meta.get("card", {}), info.meta.get("train", {})
        size = info.path.stat().st_size / 1e6
        nan = float("nan")
        cells = [
            f"`{info.name}`",
            info.meta.get("dataset", {}).get("name", "?") + (" (binarized)" if "binarized_seed" in c else ""),
            f"{m['kind']} {m['arch']} z={m['latent_dim']}",
            f"{t.get('beta', 1):g}",
            str(c.get("epochs", "?")),
            *(f"{c.get(k, nan):.2f}" for k in ("test_loss", "test_recon", "test_kl")),
            f"{c.get('active_units', '?')}/{m['latent_dim']}",
            f"{c.get('train_seconds', 0):.0f}",
            f"{size:.1f}",
        ]
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows)
