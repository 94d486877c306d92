"""Replicas of the app share one user-checkpoint folder (``make class``, the containers' volume):
two server processes that save under one name at the same moment must leave one valid checkpoint
and tell the other saver the name is taken (or, as the app's training jobs save, ``unique=True``,
both valid under different names), and a save by one process is listed at once by another.

Each saver is a separate Python process (as each replica is), started through ``subprocess``; all
of them import torch first, then wait on a "go" file, so their saves begin within a millisecond
of each other, and several rounds are run so the saves really overlap.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from core.formats.checkpoints import list_checkpoints, load_checkpoint
from tests.conftest import ROOT

ROUNDS = 6

# A saver: argv = folder, name, mode ("plain": save_checkpoint(overwrite=False); "unique":
# save_run(unique=True), as the app's jobs save), rounds, signal folder, saver id. It prints one
# JSON line per round: the name it saved under, or its error.
SAVER = r"""
import json, sys, time
from pathlib import Path

import numpy as np
import torch

from core.data.registry import Dataset
from core.formats.checkpoints import CheckpointError, save_checkpoint
from core.models.config import ModelConfig
from core.models.networks import build_model
from core.training.runs import save_run
from core.training.train import History, TrainConfig

folder, name, mode, rounds, signals, me = sys.argv[1:]
signals = Path(signals)
torch.manual_seed(int(me))
model = build_model(ModelConfig(arch="mlp", image_shape=(1, 8, 8), latent_dim=2, hidden=(8,)))
rng = np.random.default_rng(0)
x, y = rng.random((16, 1, 8, 8), dtype=np.float32), rng.integers(0, 2, 16)
data = Dataset(name="tiny", source="embedded", source_note="test", train_x=x[:8], test_x=x[8:],
               train_y=y[:8], test_y=y[8:], class_names=("0", "1"))
for k in range(int(rounds)):
    (signals / f"ready-{k}-{me}").touch()
    deadline = time.monotonic() + 60
    while not (signals / f"go-{k}").exists():  # a busy wait: the savers start together
        if time.monotonic() > deadline:
            sys.exit("no go signal")
        time.sleep(0.0005)
    try:
        if mode == "plain":
            save_checkpoint(model, Path(folder) / f"{name}-{k}", overwrite=False, dataset=data.info())
            result = {"saved": f"{name}-{k}"}
        else:
            saved = save_run(model, Path(folder) / f"round-{k}", name, dataset=data, train=TrainConfig(),
                             history=History(), unique=True)
            result = {"saved": saved.name}
    except CheckpointError as exc:
        result = {"error": str(exc)}
    print(json.dumps({"round": k, **result}), flush=True)
"""


def _race(folder: Path, signals: Path, name: str, mode: str, savers: int = 2) -> list[list[dict]]:
    """Run ``savers`` processes for ROUNDS rounds; returns each round's results, one per saver."""
    signals.mkdir()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    args = [sys.executable, "-c", SAVER, str(folder), name, mode, str(ROUNDS), str(signals)]
    pipes = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, "text": True}
    procs = [subprocess.Popen([*args, str(i)], cwd=ROOT, env=env, **pipes) for i in range(savers)]
    try:
        for k in range(ROUNDS):
            deadline = time.monotonic() + 90
            while not all((signals / f"ready-{k}-{i}").exists() for i in range(savers)):
                assert all(p.poll() is None for p in procs), [p.communicate() for p in procs]
                assert time.monotonic() < deadline, "the savers did not get ready"
                time.sleep(0.01)
            (signals / f"go-{k}").touch()
        outputs = [p.communicate(timeout=90) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    for p, (_, err) in zip(procs, outputs, strict=True):
        assert p.returncode == 0, err
    results = [[json.loads(line) for line in out.splitlines()] for out, _ in outputs]
    return [[r[k] for r in results] for k in range(ROUNDS)]


def test_two_processes_saving_one_name_leave_one_checkpoint_and_tell_the_other(tmp_path):
    folder = tmp_path / "user"
    for k, results in enumerate(_race(folder, tmp_path / "signals", "same", "plain")):
        saved = [r for r in results if "saved" in r]
        refused = [r for r in results if "error" in r]
        assert len(saved) == 1 and len(refused) == 1, results
        # Refused either at the first check (the other's files are there) or at the atomic
        # publish (both passed the check; the other's hard link won): both say the name is taken.
        message = refused[0]["error"]
        assert f"'same-{k}'" in message and "choose another name" in message, message
        assert "already exists" in message or "being saved" in message, message
    infos = list_checkpoints(folder)
    assert [i.name for i in infos] == [f"same-{k}" for k in range(ROUNDS)]
    assert all(i.ok for i in infos), [i.error for i in infos]
    for info in infos:
        load_checkpoint(info.path)  # weights and JSON are one saver's pair (the hash matches)
    assert sorted(p.name for p in folder.iterdir() if p.name.startswith(".")) == [], "no staged file is left"


def test_two_processes_saving_uniquely_both_keep_their_model(tmp_path):
    folder = tmp_path / "user"
    _race(folder, tmp_path / "signals", "same", "unique")
    for k in range(ROUNDS):
        infos = list_checkpoints(folder / f"round-{k}")
        assert [i.name for i in infos] == ["same", "same-2"], k
        weights = [load_checkpoint(i.path).model.state_dict() for i in infos]
        # Two different models (seeded by saver), not one saved twice.
        assert any((weights[0][key] != weights[1][key]).any() for key in weights[0])
        assert not [p.name for p in (folder / f"round-{k}").iterdir() if p.name.startswith(".")]


def test_a_save_in_one_process_is_offered_by_another_at_once(tmp_path, monkeypatch):
    """The catalog re-reads the folder on every call (no per-process cache in core; the app's
    sidebar caches the listing for 10 s, pages/_ui_load.py: models())."""
    from core.app import catalog

    folder = tmp_path / "user"
    monkeypatch.setenv("LATENTLAB_USER_CHECKPOINTS", str(folder))
    before = {e.name for e in catalog.list_models() if e.source == "user"}
    _race(folder, tmp_path / "signals", "other", "plain", savers=1)
    after = {e.name for e in catalog.list_models() if e.source == "user"}
    assert before == set()
    assert after == {f"other-{k}" for k in range(ROUNDS)}
