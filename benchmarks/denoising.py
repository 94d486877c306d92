"""Denoising benchmark: every method at several corruption levels on the MNIST test set.

    python -m benchmarks.denoising [--data-dir ../shared/data] [--test 10000]

The shipped conv models (denoising AE trained at Gaussian σ = 0.5, VAE, plain AE; all latent
16) against the best scikit-image filter and the best PCA, both re-tuned at every setting on
200 training images (not scored). Settings: Gaussian σ ∈ {0.1, 0.3, 0.5} and masking of 30%
and 50% of the pixels. Prints PSNR (dB) and SSIM per method and setting, and the margin of the
denoising AE over the best classical filter (target ≥ +3 dB at σ = 0.5).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from benchmarks.machine import header
from core import denoise
from core.checkpoints import load_checkpoint
from core.data import DataError, load_dataset

ROOT = Path(__file__).resolve().parent.parent
SETTINGS = [("gaussian", 0.1), ("gaussian", 0.3), ("gaussian", 0.5), ("masking", 0.3), ("masking", 0.5)]
MODELS = {"denoising AE": "mnist-dae-conv-z16", "VAE": "mnist-vae-conv-z16", "plain AE": "mnist-ae-conv-z16"}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.denoising", description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data"))
    p.add_argument("--test", type=int, default=10_000, help="test images scored (default: all 10,000)")
    args = p.parse_args(argv)
    print(header(f"Denoising: MNIST test set ({args.test:,} images), shipped conv models (latent 16)"))
    try:
        mnist = load_dataset("mnist", args.data_dir, download=False, fallback=False)
    except DataError as exc:
        print(f"skipped: full MNIST not found ({exc})")
        return 0
    models = {col: load_checkpoint(ROOT / "checkpoints" / name).model for col, name in MODELS.items()}
    denoisers = denoise.build_denoisers(models, mnist.train_x[:20_000])
    clean, val_clean = mnist.test_x[: args.test], mnist.train_x[-200:]
    results = {}
    for kind, level in SETTINGS:
        results[kind, level] = denoise.compare(clean, kind, level, denoisers, val_clean, seed=1)
        print(f"  {kind} {level:g}: done", flush=True)
    methods = [r.method for r in results[SETTINGS[0]].rows]
    print()
    print("PSNR dB / SSIM")
    print("| setting | " + " | ".join(methods) + " | denoising AE − best classical |")
    print("| --- | " + " | ".join("---:" for _ in methods) + " | ---: |")
    for (kind, level), res in results.items():
        cells = [f"{r.psnr:.2f} / {r.ssim:.3f}" for r in res.rows]
        margin = res.row("denoising AE").psnr - res.row("best classical").psnr
        best = res.row("best classical").params.get("method", "?")
        print(f"| {kind} {level:g} | " + " | ".join(cells) + f" | {margin:+.2f} dB (vs {best}) |")
    margin = results["gaussian", 0.5].row("denoising AE").psnr - results["gaussian", 0.5].row("best classical").psnr
    dae = results["gaussian", 0.5].row("denoising AE").psnr
    print()
    print(
        f"Gaussian σ = 0.5: denoising AE {dae:.2f} dB (target ≥ 19), {margin:+.2f} dB over the best classical "
        f"filter (target ≥ +3): {'met' if dae >= 19 and margin >= 3 else 'NOT met'}. The denoising AE saw only "
        "Gaussian σ = 0.5 in training; the other settings show how far that carries."
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
