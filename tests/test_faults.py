"""Faults while saving: a process killed mid-save, and two savers racing for one name.

The promise under test: a listing never shows a half-written checkpoint, the other
checkpoints in the folder stay byte-for-byte intact, and two savers of one name never produce
a weights file from one and a JSON from the other.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest
import torch

from core.formats.checkpoints import CheckpointError, list_checkpoints, load_checkpoint, save_checkpoint
from core.models.config import ModelConfig
from core.models.networks import build_model
from tests.conftest import ROOT

SAVER = textwrap.dedent(
    """
    import sys, torch
    from core.formats.checkpoints import save_checkpoint
    from core.models.config import ModelConfig
    from core.models.networks import build_model

    # A wide MLP (about 40 MB of float32 weights): a save lasts long enough to be killed in it.
    torch.manual_seed(1)
    model = build_model(ModelConfig(kind="vae", arch="mlp", latent_dim=8, hidden=(4096, 2048)))
    print("ready", flush=True)
    i = 0
    while True:  # save again and again until killed
        save_checkpoint(model, sys.argv[1] + f"/victim-{i % 3}", card={"round": i})
        i += 1
    """
)


def _snapshot(folder) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir() if not p.name.startswith(".")}


@pytest.mark.slow
def test_a_save_killed_with_sigkill_leaves_no_partial_checkpoint_and_the_others_intact(tmp_path):
    torch.manual_seed(0)
    keeper = build_model(ModelConfig(kind="vae", arch="mlp", latent_dim=4, hidden=(64,)))
    save_checkpoint(keeper, tmp_path / "keeper", card={"test_loss": 1.0})
    before = {k: v for k, v in _snapshot(tmp_path).items() if k.startswith("keeper")}

    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    for delay in (0.3, 0.9, 1.6):  # different points of the save loop
        proc = subprocess.Popen(
            [sys.executable, "-c", SAVER, str(tmp_path)], env=env, cwd=ROOT, stdout=subprocess.PIPE, text=True
        )
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)

        infos = list_checkpoints(tmp_path)
        for info in infos:
            assert info.ok, info.error  # nothing half-written is listed
            load_checkpoint(info.path)  # and everything listed loads (weights match their JSON)
        after = _snapshot(tmp_path)
        assert {k: after[k] for k in before} == before  # the other checkpoint is untouched
    assert any(i.name.startswith("victim") for i in list_checkpoints(tmp_path))


def test_two_savers_of_one_name_never_mix_their_files(tmp_path):
    torch.manual_seed(0)
    models = [build_model(ModelConfig(kind="vae", arch="mlp", latent_dim=4, hidden=(256,))) for _ in range(2)]
    for round_ in range(6):
        name = tmp_path / f"same-{round_}"
        results: list[str] = [""] * 2
        start = threading.Barrier(2)

        def save(i: int, name=name, results=results, start=start) -> None:
            start.wait()
            try:
                save_checkpoint(models[i], name, card={"who": i}, overwrite=False)
                results[i] = "saved"
            except CheckpointError as exc:
                results[i] = str(exc)

        threads = [threading.Thread(target=save, args=(i,)) for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(r == "saved" for r in results) == [False, True], results
        assert "choose another name" in next(r for r in results if r != "saved")
        ckpt = load_checkpoint(name)  # the SHA-256 in the JSON matches the weights beside it
        winner = ckpt.meta["card"]["who"]
        assert results[winner] == "saved"
        for key, value in models[winner].state_dict().items():
            assert torch.equal(ckpt.model.state_dict()[key], value)
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_a_weights_file_without_its_json_is_not_listed_and_names_itself_when_in_the_way(tmp_path):
    model = build_model(ModelConfig(kind="ae", arch="mlp", latent_dim=2, hidden=(32,)))
    weights = save_checkpoint(model, tmp_path / "orphan")
    weights.with_suffix(".json").unlink()  # as if the save was killed before its JSON
    assert list_checkpoints(tmp_path) == []
    with pytest.raises(CheckpointError, match=r"interrupted save left .*orphan.safetensors without its JSON"):
        save_checkpoint(model, tmp_path / "orphan", overwrite=False)
    save_checkpoint(model, tmp_path / "orphan")  # overwrite=True (the CLI's --force) replaces it
    assert [i.name for i in list_checkpoints(tmp_path)] == ["orphan"]
