import subprocess
import sys

import pytest

from core.cli import main
from core.formats.checkpoints import load_checkpoint
from tests.conftest import ROOT


@pytest.mark.slow
def test_train_evaluate_list_round_trip(tmp_path, capsys):
    out = tmp_path / "ck" / "tiny-vae"
    rc = main(["train", "--dataset", "mnist-5k", "--arch", "mlp", "--latent", "4", "--hidden", "64",
               "--epochs", "1", "--out", str(out)])  # fmt: skip
    assert rc == 0
    printed = capsys.readouterr()
    assert "test loss" in printed.out and "saved" in printed.out
    assert "epoch   1" in printed.err  # the tqdm progress writer
    ckpt = load_checkpoint(out)
    card = ckpt.meta["card"]
    assert card["epochs"] == 1 and card["data_source"].startswith("offline") and card["train_seconds"] > 0
    assert ckpt.meta["dataset"]["source"] == "embedded" and ckpt.meta["train"]["epochs"] == 1

    assert main(["evaluate", str(out)]) == 0
    line = capsys.readouterr().out
    assert f"test loss {card['test_loss']:.2f} nats" in line and "active units" in line

    assert main(["list", str(out.parent)]) == 0
    assert "tiny-vae: vae mlp latent 4 on mnist-5k" in capsys.readouterr().out
    assert main(["list", str(out.parent), "--markdown"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].startswith("| checkpoint |") and f"| {card['test_loss']:.2f} |" in table[2]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["train", "--latent", "0"], "latent size must be an integer from 1 to 256"),
        (["train", "--beta", "-1"], "β must be a finite number ≥ 0"),
        (["train", "--epochs", "1000000"], "epochs must be an integer from 1 to 10,000"),
        (["evaluate", "/nonexistent/model"], "model.json: missing"),
    ],
)
def test_bad_input_gets_a_message_and_exit_code_2(args, message, capsys):
    assert main(args) == 2
    assert message in capsys.readouterr().err


def test_module_entry_point_lists_checkpoints(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "core", "list", str(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0 and "no checkpoints in" in proc.stdout


def test_train_on_your_own_folder_of_images_lists_what_it_skipped(tmp_path, capsys):
    import numpy as np
    from PIL import Image

    for cls in ("cats", "dogs"):
        (tmp_path / "imgs" / cls).mkdir(parents=True)
        for i in range(10):
            Image.fromarray((np.random.default_rng(i).random((20, 20)) * 255).astype(np.uint8)).save(
                tmp_path / "imgs" / cls / f"{i}.png"
            )
    (tmp_path / "imgs" / "cats" / "notes.png").write_text("not an image")
    out = tmp_path / "ck" / "own"
    rc = main(["train", "--dataset", f"folder:{tmp_path / 'imgs'}", "--arch", "mlp", "--latent", "2",
               "--hidden", "16", "--epochs", "1", "--out", str(out)])  # fmt: skip
    assert rc == 0
    err = capsys.readouterr().err
    assert "20 images in 2 classes (cats, dogs)" in err and "notes.png" in err
    meta = load_checkpoint(out).meta
    assert meta["model"]["image_shape"] == [1, 20, 20] and meta["dataset"]["name"].startswith("folder:")
    with pytest.raises(SystemExit):
        main(["train", "--dataset", "nonsense"])
    assert "folder:PATH / npz:PATH" in capsys.readouterr().err
