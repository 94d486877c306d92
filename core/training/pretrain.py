"""Rebuild the shipped checkpoints from ``checkpoints/manifest.json``.

    python -m core pretrain [--data-dir DIR] [--only NAME ...] [--force]

Each manifest entry names a data set, a model config, a training config (with its seed) and
a storage type. A checkpoint whose JSON already records the same entry is up to date and is
skipped unless ``--force`` is given. Every saved checkpoint carries a model card measured on
its test split, with the weights exactly as stored (float16 storage is applied first).
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from core.data.registry import Dataset, load_dataset
from core.formats.checkpoints import SHIPPED_DIR, CheckpointError, read_meta
from core.models.config import ConfigError, ModelConfig, get_kind
from core.training.runs import TqdmProgress, save_run
from core.training.train import Callback, TrainConfig, train_model

CHECKPOINTS = SHIPPED_DIR
MANIFEST = CHECKPOINTS / "manifest.json"
STORAGE = {"float32": torch.float32, "float16": torch.float16}


@dataclass
class Entry:
    """One manifest entry: what a shipped checkpoint is and how it was trained."""

    name: str
    dataset: str
    model: dict
    train: dict
    storage: str = "float32"
    title: str = ""
    notes: str = ""
    classes: list[int] | None = None  # train and test on these classes only (anomaly models)

    def raw(self) -> dict:
        raw = {
            "name": self.name,
            "title": self.title,
            "dataset": self.dataset,
            "model": self.model,
            "train": self.train,
            "storage": self.storage,
            "notes": self.notes,
        }
        return raw if self.classes is None else {**raw, "classes": list(self.classes)}

    def select(self, data: Dataset) -> Dataset:
        """``data`` with only the images of :attr:`classes` (all of it when None)."""
        if self.classes is None:
            return data
        if data.train_y is None or data.test_y is None:
            raise ConfigError(f"{self.name}: {data.name} has no labels to pick classes {self.classes} from")
        keep_train, keep_test = np.isin(data.train_y, self.classes), np.isin(data.test_y, self.classes)
        note = f"{data.source_note}; classes {', '.join(map(str, self.classes))} only"
        return replace(
            data,
            train_x=data.train_x[keep_train],
            train_y=data.train_y[keep_train],
            test_x=data.test_x[keep_test],
            test_y=data.test_y[keep_test],
            source_note=note,
        )

    def model_config(self, data: Dataset) -> ModelConfig:
        """The entry's model for ``data``: its kind's config for the data's images and classes."""
        fields = {k: v for k, v in self.model.items() if k not in ("kind", "image_shape", "num_classes")}
        kind = get_kind(self.model.get("kind", "vae"))
        ModelConfig.from_dict({**fields, "kind": kind.network})  # unknown keys are refused with the list of them
        return kind.model_config(data.image_shape, data.num_classes, **fields)

    def train_config(self) -> TrainConfig:
        return TrainConfig.from_dict(self.train)


def read_manifest(path: str | os.PathLike = MANIFEST) -> list[Entry]:
    """Parse and check the manifest: unique names, known data sets, valid configs."""
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{path}: cannot read the manifest ({exc})") from exc
    entries = [Entry(**e) for e in doc["checkpoints"]]
    names = [e.name for e in entries]
    if len(set(names)) != len(names):
        raise CheckpointError(f"{path}: duplicate names in the manifest")
    for e in entries:
        e.train_config().validate()
        if e.storage not in STORAGE:
            raise ConfigError(f"{e.name}: unknown storage {e.storage!r}")
    return entries


def is_up_to_date(entry: Entry, folder: Path = CHECKPOINTS) -> bool:
    try:
        meta = read_meta(folder / f"{entry.name}.safetensors")
    except CheckpointError:
        return False
    return (folder / f"{entry.name}.safetensors").is_file() and meta.get("manifest_entry") == entry.raw()


def build_entry(
    entry: Entry,
    data_dir: str | None = None,
    folder: Path = CHECKPOINTS,
    callbacks: list[Callback] | None = None,
    download: bool = True,
) -> Path:
    """Train one manifest entry and save it with its model card; returns the weights path."""
    data = entry.select(load_dataset(entry.dataset, data_dir, download=download))
    if data.source == "embedded" and entry.dataset not in ("mnist-5k", "lfw-faces"):
        print(f"warning: {entry.name} is trained on {data.source_note}, not the full set", file=sys.stderr)
    mcfg, tcfg = entry.model_config(data), entry.train_config()
    model, history = train_model(mcfg, data, tcfg, callbacks)
    extra = {"manifest_entry": entry.raw(), "title": entry.title, "notes": entry.notes}
    saved = save_run(
        model, folder, entry.name, dataset=data, train=tcfg, history=history, dtype=STORAGE[entry.storage], extra=extra
    )
    return saved.path


def pretrain(
    data_dir: str | None = None,
    only: list[str] | None = None,
    force: bool = False,
    folder: Path = CHECKPOINTS,
    manifest: Path = MANIFEST,
    download: bool = True,
) -> list[str]:
    """Build every manifest entry (or those in ``only``) that is not up to date."""
    entries = read_manifest(manifest)
    if only:
        unknown = set(only) - {e.name for e in entries}
        if unknown:
            raise CheckpointError(f"not in the manifest: {sorted(unknown)}")
        entries = [e for e in entries if e.name in only]
    built = []
    for i, entry in enumerate(entries, 1):
        if not force and is_up_to_date(entry, folder):
            print(f"[{i}/{len(entries)}] {entry.name}: up to date, skipped (--force rebuilds it)", file=sys.stderr)
            continue
        print(f"[{i}/{len(entries)}] {entry.name}: training on {entry.dataset}", file=sys.stderr)
        progress = TqdmProgress()
        try:
            path = build_entry(entry, data_dir, folder, [progress], download=download)
        finally:
            progress.close()
        card = read_meta(path)["card"]
        print(
            f"[{i}/{len(entries)}] {entry.name}: test loss {card['test_loss']:.2f} nats, "
            f"{card['active_units']} active units, {card['train_seconds']:.0f} s",
            file=sys.stderr,
        )
        built.append(entry.name)
    return built
