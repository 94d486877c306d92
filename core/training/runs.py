"""From a finished training run to a saved checkpoint: the one path that the CLI
(``python -m core train``), ``pretrain`` and the app's background jobs all take.

:func:`save_run` checks that the data fit the model, rounds the weights through their storage
type, measures the model card on the data set's test split, and writes the checkpoint into a
folder: under the name asked for, or (``unique=True``) under the first free name of
``NAME``, ``NAME-2``, ``NAME-3``, ... so two runs that finish at once never overwrite each
other. :class:`TqdmProgress` is the terminal's progress output for a run.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

import torch

from core.data.registry import Dataset
from core.formats.checkpoints import CheckpointError, check_name, save_checkpoint
from core.models.evaluate import card_binarized_seed, measure_card
from core.models.networks import AutoEncoder
from core.training.train import Callback, EpochMetrics, History, TrainConfig


class TqdmProgress(Callback):
    """A tqdm bar over all steps on stderr, with the last epoch's test loss written per epoch."""

    def on_train_begin(self, total_steps: int, config: TrainConfig) -> None:
        from tqdm import tqdm

        self.bar = tqdm(total=total_steps, unit="step", dynamic_ncols=True, file=sys.stderr)

    def on_step_end(self, step: int, total_steps: int, loss: float) -> None:
        self.bar.update(1)
        if step % 20 == 0:
            self.bar.set_postfix_str(f"loss {loss:.2f}", refresh=False)

    def on_epoch_end(self, m: EpochMetrics, model) -> None:
        self.bar.write(
            file=sys.stderr,
            s=f"epoch {m.epoch:3d}  train {m.train_loss:8.2f}  test {m.test_loss:8.2f} "
            f"(recon {m.test_recon:8.2f} + KL {m.test_kl:6.2f})  {m.seconds:5.1f} s",
        )

    def close(self) -> None:
        if hasattr(self, "bar"):
            self.bar.close()


@dataclass
class SavedModel:
    """Where a run was saved: ``name`` is the name used, ``asked`` the one asked for."""

    name: str
    asked: str
    path: Path  # the .safetensors file

    @property
    def renamed(self) -> bool:
        return self.name != self.asked


def round_to_storage(model: AutoEncoder, dtype: torch.dtype) -> None:
    """Round the weights through the storage type in place, so the card measures what is stored."""
    with torch.no_grad():
        for p in model.state_dict().values():
            if p.is_floating_point():
                p.copy_(p.to(dtype).to(p.dtype))


def run_card(model: AutoEncoder, dataset: Dataset, train: TrainConfig, history: History) -> dict:
    """The model card of a finished run: test figures (seeded with the run's seed), the epochs
    finished, the training time and where the data came from."""
    binarized = card_binarized_seed(train.to_dict())  # a model of binary images: measured on them
    card = measure_card(model, dataset.test_x, dataset.test_y, seed=train.seed, binarized_seed=binarized)
    last = history.last
    card.update(
        epochs=last.epoch if last else 0, train_seconds=round(history.seconds, 1), data_source=dataset.source_note
    )
    return card


def _free_names(name: str, limit: int = 1000):
    yield name
    for i in range(2, limit):
        suffix = f"-{i}"
        yield name[: 100 - len(suffix)] + suffix


def _make_folder(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CheckpointError(f"cannot create checkpoint folder {folder}: {exc.strerror or exc}") from exc


def _save_unique(model: AutoEncoder, folder: Path, name: str, **fields) -> SavedModel:
    """Save under the first free name of ``name``, ``name-2``, ...: each candidate is reserved
    with an exclusively created lock file (``.NAME.lock``, ignored by listings) before it is
    checked and written, so two runs that finish at the same moment get different names."""
    for candidate in _free_names(name):
        lock = folder / f".{candidate}.lock"
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            continue  # another run is saving under this name right now
        except OSError as exc:
            raise CheckpointError(f"cannot write in checkpoint folder {folder}: {exc.strerror or exc}") from exc
        try:
            if (folder / f"{candidate}.safetensors").exists() or (folder / f"{candidate}.json").exists():
                continue
            path = save_checkpoint(model, folder / candidate, overwrite=False, **fields)
            return SavedModel(name=candidate, asked=name, path=path)
        finally:
            os.close(fd)
            lock.unlink(missing_ok=True)
    raise CheckpointError(f"no free name left for {name!r} in {folder}")


def save_run(
    model: AutoEncoder,
    folder: str | os.PathLike,
    name: str,
    *,
    dataset: Dataset,
    train: TrainConfig,
    history: History,
    unique: bool = False,
    dtype: torch.dtype | None = None,
    extra: dict | None = None,
) -> SavedModel:
    """Save a finished run's ``model`` in ``folder`` with its model card; returns where.

    unique: never overwrite (take the first free name, see :func:`_save_unique`); otherwise
    ``name`` is replaced if it exists (``pretrain --force``, ``train --out``). dtype: storage
    type of the weights (float32 when None); the weights are rounded through it first, so the
    card measures what is stored. extra: more top-level JSON fields. The model ends on the CPU
    in eval mode. Raises ConfigError (data that do not fit the model) or CheckpointError.
    """
    model.config.check_data(dataset)
    check_name(name)
    folder = Path(folder)
    _make_folder(folder)
    model.cpu().eval()
    if dtype is not None and dtype != torch.float32:
        round_to_storage(model, dtype)
    fields = {
        "dataset": dataset.info(),
        "train": train.to_dict(),
        "history": history.to_dict(),
        "card": run_card(model, dataset, train, history),
        "dtype": dtype,
        "extra": extra,
    }
    if unique:
        return _save_unique(model, folder, name, **fields)
    return SavedModel(name=name, asked=name, path=save_checkpoint(model, folder / name, **fields))
