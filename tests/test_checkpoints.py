import json
import pickle

import pytest
import torch

from core.formats.checkpoints import (
    CheckpointError,
    list_checkpoints,
    load_checkpoint,
    read_meta,
    resolve,
    save_checkpoint,
)
from core.models.config import ModelConfig
from core.models.networks import build_model


@pytest.fixture
def saved(tmp_path):
    torch.manual_seed(0)
    model = build_model(ModelConfig(kind="vae", arch="conv", latent_dim=6)).eval()
    path = save_checkpoint(
        model, tmp_path / "demo", dataset={"name": "mnist"}, train={"beta": 2.0}, card={"test_loss": 99.5}
    )
    return model, path


def test_save_then_load_reproduces_outputs_exactly(saved):
    model, path = saved
    ckpt = load_checkpoint(path)
    assert ckpt.name == "demo" and ckpt.config == model.config and not ckpt.model.training
    x = torch.rand(5, 1, 28, 28)
    assert torch.equal(model.reconstruct(x), ckpt.model.reconstruct(x))
    z = torch.randn(3, 6)
    assert torch.equal(model.decode(z), ckpt.model.decode(z))
    meta = ckpt.meta
    assert meta["dataset"]["name"] == "mnist" and meta["train"]["beta"] == 2.0
    assert meta["versions"]["torch"] == torch.__version__ and meta["created"]
    # loading by stem or by the JSON path works too
    assert load_checkpoint(path.with_suffix("")).name == "demo"
    assert load_checkpoint(path.with_suffix(".json")).name == "demo"


@pytest.mark.parametrize("kind", ["ae", "cvae"])
def test_every_kind_round_trips(tmp_path, kind):
    cfg = ModelConfig(
        kind=kind, arch="mlp", latent_dim=3, num_classes=10 if kind == "cvae" else 0, likelihood="gaussian"
    )
    model = build_model(cfg).eval()
    ckpt = load_checkpoint(save_checkpoint(model, tmp_path / kind))
    x, y = torch.rand(2, 1, 28, 28), torch.tensor([1, 2]) if kind == "cvae" else None
    assert torch.equal(model(x, y).recon, ckpt.model(x, y).recon)


def test_float16_storage_is_smaller_and_close(tmp_path, saved):
    model, path32 = saved
    path16 = save_checkpoint(model, tmp_path / "half", dtype=torch.float16)
    assert path16.stat().st_size < 0.6 * path32.stat().st_size
    loaded = load_checkpoint(path16).model
    assert next(loaded.parameters()).dtype == torch.float32
    x = torch.rand(4, 1, 28, 28)
    assert (model.reconstruct(x) - loaded.reconstruct(x)).abs().max() < 1e-2


def test_listing_describes_good_and_broken_checkpoints(saved, tmp_path):
    (tmp_path / "broken.json").write_text("{not json")
    (tmp_path / ".demo.safetensors.abc.tmp").write_bytes(b"partial")  # a killed save's leftover
    infos = {i.name: i for i in list_checkpoints(tmp_path)}
    assert set(infos) == {"demo", "broken"}
    assert infos["demo"].ok and "vae conv latent 6 on mnist, β=2, test loss 99.50 nats" in infos["demo"].summary()
    assert not infos["broken"].ok and "not valid JSON" in infos["broken"].error


def _expect(path, match):
    with pytest.raises(CheckpointError, match=match):
        load_checkpoint(path)


def test_missing_json(saved):
    _, path = saved
    path.with_suffix(".json").unlink()
    _expect(path, r"demo.json: missing")


def test_garbled_json(saved):
    _, path = saved
    path.with_suffix(".json").write_text('{"format": "latentlab-checkpoint", "model": ')
    _expect(path, "not valid JSON")


def test_unknown_model_type(saved):
    _, path = saved
    meta = json.loads(path.with_suffix(".json").read_text())
    meta["model"]["kind"] = "diffusion"
    path.with_suffix(".json").write_text(json.dumps(meta))
    _expect(path, "unknown model kind 'diffusion'")


def test_latent_size_that_disagrees_with_the_weights(saved):
    _, path = saved
    meta = json.loads(path.with_suffix(".json").read_text())
    meta["model"]["latent_dim"] = 7
    path.with_suffix(".json").write_text(json.dumps(meta))
    _expect(path, r"has shape .* \(latent size or architecture disagrees")


def test_unknown_keys(saved):
    from safetensors.torch import load_file, save_file

    _, path = saved
    tensors = load_file(str(path))
    tensors["extra.weight"] = torch.zeros(3)
    save_file(tensors, str(path))
    meta = json.loads(path.with_suffix(".json").read_text())
    meta.pop("weights_sha256")  # so the key check, not the hash, speaks
    path.with_suffix(".json").write_text(json.dumps(meta))
    _expect(path, r"unknown tensors \['extra.weight'\]")


def test_truncated_weights(saved):
    _, path = saved
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    _expect(path, "SHA-256 differs")
    meta = json.loads(path.with_suffix(".json").read_text())
    meta.pop("weights_sha256")
    path.with_suffix(".json").write_text(json.dumps(meta))
    _expect(path, "not a valid safetensors file")
    path.write_bytes(data[:5])
    _expect(path, "truncated")


class _Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_pickle_renamed_safetensors_is_never_unpickled(saved, tmp_path):
    _, path = saved
    marker = tmp_path / "pwned"
    path.write_bytes(pickle.dumps(_Payload(str(marker)), protocol=4))
    _expect(path, "pickle")
    assert not marker.exists()
    # the same payload in a torch.save zip archive is refused by its header too
    path.write_bytes(b"PK\x03\x04" + b"\x00" * 100)
    _expect(path, "pickle")
    assert not marker.exists()


def test_a_safetensors_header_length_starting_with_0x80_is_not_taken_for_a_pickle(tmp_path):
    # The shipped mnist-ae-conv-z16 has a 0x...80-byte header: its first byte is a pickle's.
    from safetensors.torch import save_file

    from core.formats.checkpoints import _check_header

    path = tmp_path / "w.safetensors"
    for pad in range(300):
        save_file({"w": torch.zeros(2)}, str(path), metadata={"pad": "x" * pad})
        if path.read_bytes()[:1] == b"\x80":
            break
    assert path.read_bytes()[:1] == b"\x80"
    _check_header(path)  # no error


def test_not_a_checkpoint_json(saved):
    _, path = saved
    path.with_suffix(".json").write_text(json.dumps({"hello": "world"}))
    _expect(path, "not a Latent Lab checkpoint")


@pytest.mark.parametrize("name", ["../evil", "/etc/passwd", "a/b", "..", ".hidden", "", "x" * 101])
def test_names_cannot_escape_the_folder(tmp_path, name):
    with pytest.raises(CheckpointError, match="invalid checkpoint name"):
        resolve(tmp_path, name)


def test_resolve_inside_folder(tmp_path):
    assert resolve(tmp_path, "ok-name_1.2") == (tmp_path / "ok-name_1.2.safetensors").resolve()


def test_overwrite_refused_when_asked(saved, tmp_path):
    model, _ = saved
    with pytest.raises(CheckpointError, match="already exists"):
        save_checkpoint(model, tmp_path / "demo", overwrite=False)


def test_unwritable_folder_is_a_clear_error(saved, tmp_path):
    model, _ = saved
    blocker = tmp_path / "file"
    blocker.write_text("a file where a folder should be")
    with pytest.raises(CheckpointError, match="cannot create checkpoint folder"):
        save_checkpoint(model, blocker / "sub" / "m")


def test_failed_save_leaves_the_old_checkpoint_intact(saved, monkeypatch):
    model, path = saved
    before = path.read_bytes(), path.with_suffix(".json").read_text()

    def boom(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("safetensors.torch.save_file", boom)  # imported by save_checkpoint when it runs
    with pytest.raises(CheckpointError, match="No space left"):
        save_checkpoint(build_model(model.config), path)
    assert (path.read_bytes(), path.with_suffix(".json").read_text()) == before
    assert not list(path.parent.glob("*.tmp"))
    assert read_meta(path)["card"]["test_loss"] == 99.5


def test_saved_files_are_readable_by_everyone(saved):
    _, weights = saved
    # A checkpoint is an ordinary file (git keeps 0644): a staged temporary file was left 0600.
    import os
    import stat

    for path in (weights, weights.with_suffix(".json")):
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o644, path
