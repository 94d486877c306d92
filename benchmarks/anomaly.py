"""Anomaly benchmark: one-class MNIST with the shipped models, and what the anomaly page costs.

    python -m benchmarks.anomaly [--data-dir ../shared/data] [--skip timing]

Prints, each figure labelled with the machine and the date:

1. (full data) one-class MNIST: for each digit, the shipped autoencoder trained on that digit's
   MNIST training images alone (``checkpoints/mnist-only-D-ae-mlp-z16``; trained here with the
   manifest's recipe when absent), AUROC on the FULL test set (10,000 images, the other nine
   digits being the anomalies) of two scores: the reconstruction error (MSE) and the
   reconstruction error per unit of edge (squared error summed over pixels / the image's total
   variation, ``core.experiments.anomaly.edge_length``); beside them PCA (32 components, fitted on the same
   training images) scored both ways, on the same test images. Mean and worst digit.
2. the anomaly page's held-out-digit recipe: seconds to train it (10 epochs on the offline digits
   but one, one thread; the page's "about N s"), and seconds to load and score the shipped one.
3. the size of the anomaly checkpoints and of everything shipped.

Not part of the tests: figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks.machine import header
from core.data.registry import DataError, Dataset, load_dataset
from core.experiments import anomaly
from core.formats.checkpoints import SHIPPED_DIR, load_checkpoint
from core.training.pretrain import build_entry, read_manifest

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA = ROOT.parent / "shared" / "data"
PCA = 32
TARGET_MEAN, TARGET_MIN = 0.98, 0.95


def one_class_model(digit: int, data_dir: str):
    """The shipped one-class model of ``digit``; built from its manifest entry when absent."""
    name = anomaly.one_class_name(digit)
    if not (SHIPPED_DIR / f"{name}.json").is_file():
        entry = next(e for e in read_manifest() if e.name == name)
        print(f"  {name} is not built: training it now (manifest recipe)", flush=True)
        build_entry(entry, data_dir)
    return load_checkpoint(SHIPPED_DIR / name).model


def one_class(mnist: Dataset, data_dir: str) -> None:
    print(header(f"One-class MNIST: AUROC on the full test set ({len(mnist.test_x):,} images), same images for all"))
    print(
        "ours: the shipped AE (MLP 256, latent 16, 15 epochs) of each digit; PCA: 32 components, same training images"
    )
    cols = ("AE MSE", "AE per edge", "PCA MSE", "PCA per edge")
    print(f"{'normal digit':>12} " + " ".join(f"{c:>12}" for c in cols))
    rows, t0 = [], time.perf_counter()
    for digit in range(10):
        split = anomaly.one_class_split(mnist, digit)
        model = one_class_model(digit, data_dir)
        report = anomaly.detect(model, split, kinds=("recon-mse", "recon-edge"), pca_components=PCA)
        auc = report.auroc
        rows.append([auc["recon-mse"], auc["recon-edge"], auc["pca"], auc["pca-edge"]])
        print(f"{digit:>12} " + " ".join(f"{v:>12.4f}" for v in rows[-1]), flush=True)
    rows = np.array(rows)
    print(f"{'mean':>12} " + " ".join(f"{v:>12.4f}" for v in rows.mean(0)))
    print(f"{'worst':>12} " + " ".join(f"{v:>12.4f}" for v in rows.min(0)))
    mean, worst = rows[:, 1].mean(), rows[:, 1].min()
    ok = "✔" if mean >= TARGET_MEAN and worst >= TARGET_MIN else "✘"
    print(
        f"AE per edge: mean {mean:.4f} (target ≥ {TARGET_MEAN}), worst digit {worst:.4f} (target ≥ {TARGET_MIN}) {ok}; "
        f"beside PCA per edge {rows[:, 3].mean():.4f} and PCA MSE {rows[:, 2].mean():.4f}"
    )
    print(f"scoring wall time (10 digits, both models): {time.perf_counter() - t0:.0f} s\n")


def page_timing(digit: int = 7) -> None:
    data = load_dataset("mnist-5k")
    split = anomaly.held_out_split(data, digit)
    print(header("The anomaly page's held-out-digit models"))
    t0 = time.perf_counter()
    model = anomaly.train_on_split(split, "vae")
    train_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    anomaly.detect(model, split, kinds=("recon-mse", "recon-edge", "elbo"), pca_components=PCA)
    score_s = time.perf_counter() - t0
    print(
        f"train without the {digit}s ({len(split.train_x):,} offline digits, {anomaly.HELD_OUT_TRAIN['epochs']} "
        f"epochs, {torch.get_num_threads()} thread): {train_s:.0f} s; score {len(split.test_x):,} test images + "
        f"PCA: {score_s:.1f} s (the page says about {anomaly.HELD_OUT_SECONDS} s)"
    )
    split5 = anomaly.held_out_split(data, 5)
    t0 = time.perf_counter()
    ckpt = anomaly.load_held_out(SHIPPED_DIR / anomaly.held_out_name("mnist", 5), 5)
    report = anomaly.detect(ckpt.model, split5, kinds=("recon-mse", "recon-edge", "elbo"), pca_components=PCA)
    aucs = ", ".join(f"{k} {v:.3f}" for k, v in report.auroc.items())
    print(f"shipped model without the 5s: loaded and scored in {time.perf_counter() - t0:.1f} s; AUROC {aucs}\n")


def sizes() -> None:
    names = [anomaly.held_out_name("mnist", 5)] + [anomaly.one_class_name(d) for d in range(10)]
    ours = sum((SHIPPED_DIR / f"{n}{s}").stat().st_size for n in names for s in (".json", ".safetensors"))
    total = sum(p.stat().st_size for p in SHIPPED_DIR.iterdir() if p.is_file())
    print(header("Checkpoint sizes"))
    print(f"anomaly models ({len(names)}): {ours / 1e6:.1f} MB; everything in checkpoints/: {total / 1e6:.1f} MB")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.anomaly", description=__doc__.split("\n")[0])
    p.add_argument("--data-dir", default=str(DEFAULT_DATA))
    p.add_argument("--skip", nargs="*", default=[], choices=["one-class", "timing", "sizes"])
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    if "one-class" not in args.skip:
        try:
            mnist = load_dataset("mnist", args.data_dir, download=False, fallback=False)
            one_class(mnist, args.data_dir)
        except DataError as exc:
            print(f"one-class part skipped: full MNIST not found ({exc})")
    if "timing" not in args.skip:
        page_timing()
    if "sizes" not in args.skip:
        sizes()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
