"""Latent map projections: PCA, UMAP and t-SNE of 10,000 MNIST codes, first call and warm.

    python -m benchmarks.projections [--data-dir ../shared/data] [--checkpoint checkpoints/mnist-vae-conv-z16]

Encodes the full MNIST test set (10,000 digits) with the shipped conv VAE (latent 16) and times
``core.lenses.projection.project`` for each method twice in this fresh process: the first call pays
the imports (scikit-learn, umap-learn and numba, openTSNE) and numba's compilation, as the
first map after a server start does; the second is what every later map costs (one thread each,
as the app runs them). Without the data folder the offline 5,000 digits are used, and the
output says so. Also printed: how often a code's nearest neighbour on the map has its label
(5-NN agreement on a held-out half), a sanity check that the clusters survived. Figures are
printed, never asserted.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks.machine import header
from core.data.registry import DataError, load_dataset
from core.formats.checkpoints import load_checkpoint
from core.lenses.latent import encode_codes
from core.lenses.projection import METHODS, project

ROOT = Path(__file__).resolve().parent.parent
DEFAULT = ROOT / "checkpoints" / "mnist-vae-conv-z16"


def codes_to_map(data_dir: str | None, checkpoint: str) -> tuple[np.ndarray, np.ndarray, str]:
    """(mu (N, 16), labels, what they are): the full test set, else the offline digits."""
    model = load_checkpoint(checkpoint).model
    try:
        ds = load_dataset("mnist", data_dir, download=False) if data_dir else None
    except DataError as exc:
        print(f"(the data folder cannot be used: {exc})")
        ds = None
    if ds is not None and len(ds.test_x) >= 10_000:
        x, y, what = ds.test_x, ds.test_y, f"the {len(ds.test_x):,} MNIST test digits ({ds.source_note})"
    else:
        ds = load_dataset("mnist-5k")
        x, y = np.concatenate([ds.test_x, ds.train_x]), np.concatenate([ds.test_y, ds.train_y])
        what = f"the offline {len(x):,} MNIST digits (no full data: pass --data-dir for the 10,000 test digits)"
    t0 = time.perf_counter()
    codes = encode_codes(model, x, y)
    print(f"encoded {what} in {time.perf_counter() - t0:.1f} s")
    return codes.mu, codes.labels, what


def agreement(coords: np.ndarray, labels: np.ndarray) -> float:
    """5-NN label agreement: fitted on every other point, scored on the rest."""
    from sklearn.neighbors import KNeighborsClassifier

    fit, test = np.arange(0, len(coords), 2), np.arange(1, len(coords), 2)
    return float(KNeighborsClassifier(5).fit(coords[fit], labels[fit]).score(coords[test], labels[test]))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.projections", description=__doc__.split("\n")[0])
    p.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data"))
    p.add_argument("--checkpoint", default=str(DEFAULT))
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    print(header("Latent map projections: PCA, UMAP and t-SNE of MNIST codes (mnist-vae-conv-z16)"))
    mu, labels, _ = codes_to_map(args.data_dir if Path(args.data_dir).is_dir() else None, args.checkpoint)
    rows = [("raw 16-d codes", "", "", "", agreement(mu, labels))]
    load_before = os.getloadavg()[0]
    for method, threads in (("pca", 1), ("umap", 1), ("tsne", 1)):
        times = []
        for _ in range(2):
            t0 = time.perf_counter()
            result = project(mu, method, threads=threads)
            times.append(time.perf_counter() - t0)
            print(f"  {METHODS[method].title}, {threads} thread(s): {times[-1]:.2f} s", flush=True)
        agree = agreement(result.coords, labels)
        rows.append((METHODS[method].title, str(threads), f"{times[0]:.2f}", f"{times[1]:.2f}", agree))
    print(f"\n{len(mu):,} codes of 16 dimensions; target: a map of ≤ 10,000 codes in ≤ 10 s on 2 cores")
    load_after = os.getloadavg()[0]
    print(f"load average (1 min) before / after: {load_before:.1f} / {load_after:.1f} (other work on the cores)\n")
    print("| projection | threads | first call, s | warm, s | 5-NN label agreement |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name, threads, first, warm, agree in rows:
        print(f"| {name} | {threads} | {first} | {warm} | {agree:.3f} |")
    print(
        "\nFirst call: a fresh process, imports and numba compilation included (numba caches its compiled code on "
        "disk, so only the very first run after an install compiles everything: tens of seconds). The app runs "
        "UMAP and t-SNE as background jobs with a progress bar, one thread each, and keeps every map for later visits."
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
