"""The importance-weighted NLL of the binarized-MNIST model beside Burda et al. (2015).

    python -m benchmarks.iw_nll [--data-dir ../shared/data] [--k 5000] [--n 10000] [--checkpoint NAME ...]

For each checkpoint (default: the shipped ``mnist-iwae-mlp-z40-bin``): the one-sample negative
ELBO (analytic KL, z ~ q(z|x) seeded) and the K-sample importance-weighted NLL
(:func:`core.models.evaluate.iw_nll`, its ± is the standard error over test images), on the MNIST test
split binarized once (each pixel ~ Bernoulli(grey level), ``core.models.evaluate.binarize_fixed``, seed 0).
Burda et al.'s figures (Table 1, one stochastic layer, dynamically binarized MNIST, K = 5000) are
printed beside them. A checkpoint trained on grey levels is scored on the same binary images, with
no retraining. K × n decoder passes: 5e7 for the full protocol (≈ 20 min on one free core for
a 2×400 MLP decoder).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from benchmarks.machine import header
from core.data.registry import load_dataset
from core.formats.checkpoints import load_checkpoint
from core.models.evaluate import binarize_fixed, evaluate, iw_nll

ROOT = Path(__file__).resolve().parent.parent
DEFAULT = "mnist-iwae-mlp-z40-bin"
# Burda, Grosse & Salakhutdinov 2015, Table 1 (MNIST, 1 stochastic layer; -log p(x) at K = 5000)
BURDA = [
    ("VAE (Burda et al. 2015)", "k = 1", 86.76),
    ("IWAE (Burda et al. 2015)", "k = 5", 85.54),
    ("IWAE (Burda et al. 2015)", "k = 50", 84.78),
]


class _Progress:
    """The running estimate on stderr every 500 images (a long run cut short still says something)."""

    def __init__(self) -> None:
        self.last = 0

    def __call__(self, done: int, n: int, nll) -> None:
        if done // 500 > self.last // 500 or done == n:
            se = nll.std().item() / done**0.5 if done > 1 else 0.0
            print(f"  {done:,}/{n:,} images: IW-NLL {nll.mean().item():.3f} ± {se:.3f}", file=sys.stderr, flush=True)
        self.last = done


def _training(meta: dict) -> str:
    train = meta.get("train", {})
    data = "dynamically binarized" if train.get("binarize") == "dynamic" else "grey levels"
    k = train.get("iw_samples", 1)
    bound = f"IWAE k = {k}" if k > 1 else "ELBO"
    return f"{bound}, {train.get('epochs', '?')} epochs, {data}"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.iw_nll", description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data"))
    p.add_argument("--checkpoint", nargs="+", default=[DEFAULT], help="names in checkpoints/ or paths")
    p.add_argument("--k", type=int, default=5000, help="importance samples per image")
    p.add_argument("--n", type=int, default=None, help="the first N test images (default: all)")
    p.add_argument("--seed", type=int, default=0, help="seed of the importance samples")
    args = p.parse_args(argv)
    data = load_dataset("mnist", args.data_dir, download=False, fallback=False)
    x = binarize_fixed(data.test_x[: args.n])
    print(header("Importance-weighted NLL on binarized MNIST (nats per test image)"))
    print(f"test images: {len(x):,} of {data.describe()}, binarized once (seed 0); K = {args.k:,}\n")
    print("| model | training | −ELBO (1 sample) | IW-NLL ± se | K | images | time |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
    for name in args.checkpoint:
        path = name if "/" in name else ROOT / "checkpoints" / name
        ckpt = load_checkpoint(path)
        elbo = evaluate(ckpt.model, x, seed=args.seed).loss
        t0 = time.perf_counter()
        est = iw_nll(ckpt.model, x, k=args.k, seed=args.seed, progress=_Progress())
        dt = time.perf_counter() - t0
        print(
            f"| `{ckpt.name}` | {_training(ckpt.meta)} | {elbo:.2f} | **{est.nll:.2f}** ± {est.se:.2f} "
            f"| {est.k:,} | {est.n:,} | {dt:.0f} s ({est.k * est.n / dt:,.0f} decodes/s) |",
            flush=True,
        )
    for model, k, nll in BURDA:
        print(f"| {model} | {k}, 3,280 epochs, dynamically binarized | | {nll:.2f} | 5,000 | 10,000 | |")
    print(
        "\nIW-NLL is an upper bound on −log p(x) that tightens as K grows; the one-sample −ELBO is the "
        "K = 1 bound. Burda's rows are their published figures, not re-measured here."
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
