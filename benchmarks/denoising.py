"""Denoising benchmark: every method at several corruption levels on the MNIST test set.

    python -m benchmarks.denoising [--data-dir ../shared/data] [--test 10000]

The shipped conv models (the denoising AE trained on every corruption, the default of the
Denoising page; the σ = 0.5 specialist; VAE; plain AE) against the best scikit-image filter and
the best PCA (8 to 128 components, the mixed model's code size), both re-tuned at every setting
on 200 training images (not scored). The same test images and the same corruption draw for every
method, every setting in one run: Gaussian σ ∈ {0.1, 0.3, 0.5}, salt and pepper 20 %, masking
30 % and 50 %, and an occluding square of 25 % of the image. Prints PSNR (dB; the mean over the images
a method changed: an occlusion on the background leaves the noisy image exact) and SSIM per method
and setting, and the margin of the default denoiser over the better of the best classical filter
and PCA (target ≥ +1 dB at every setting, ≥ +4 dB at σ = 0.5).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from benchmarks.machine import header
from core.data.registry import DataError, load_dataset
from core.formats.checkpoints import load_checkpoint
from core.lenses import denoise

ROOT = Path(__file__).resolve().parent.parent
SETTINGS = [
    ("gaussian", 0.1),
    ("gaussian", 0.3),
    ("gaussian", 0.5),
    ("salt-pepper", 0.2),
    ("masking", 0.3),
    ("masking", 0.5),
    ("occlusion", 0.25),
]
DEFAULT = "mixed DAE"  # the Denoising page's default denoiser
MODELS = {
    DEFAULT: "mnist-dae-conv-z256-mixed-gate",
    "VAE": "mnist-vae-conv-z16",
    "plain AE": "mnist-ae-conv-z16",
}
PCA_COMPONENTS = (8, 16, 32, 64, 128)
TARGET, TARGET_05 = 1.0, 4.0  # dB over the better of the best classical filter and PCA


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.denoising", description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data"))
    p.add_argument("--test", type=int, default=10_000, help="test images scored (default: all 10,000)")
    args = p.parse_args(argv)
    print(header(f"Denoising: MNIST test set ({args.test:,} images), shipped conv models"))
    try:
        mnist = load_dataset("mnist", args.data_dir, download=False, fallback=False)
    except DataError as exc:
        print(f"skipped: full MNIST not found ({exc})")
        return 0
    models = {col: load_checkpoint(ROOT / "checkpoints" / name).model for col, name in MODELS.items()}
    denoisers = denoise.build_denoisers(models, mnist.train_x[:20_000], pca_components=PCA_COMPONENTS)
    clean, val_clean = mnist.test_x[: args.test], mnist.train_x[-200:]
    results = {}
    for kind, level in SETTINGS:
        start = time.perf_counter()
        results[kind, level] = denoise.compare(clean, kind, level, denoisers, val_clean, seed=1)
        print(f"  {kind} {level:g}: done in {time.perf_counter() - start:.0f} s", flush=True)
    print_table(results)
    return 0


def print_table(results: dict) -> None:
    """The PSNR / SSIM table and the default denoiser's margins over the best non-learned method."""
    methods = [r.method for r in next(iter(results.values())).rows]
    print()
    print("PSNR dB / SSIM")
    print(f"| setting | {' | '.join(methods)} | {DEFAULT} − max(best classical, PCA) |")
    print("| --- | " + " | ".join("---:" for _ in methods) + " | ---: |")
    met = True
    for (kind, level), res in results.items():
        db = {r.method: denoise.mean_psnr(res.per_image[r.method]["psnr"])[0] for r in res.rows}  # finite ones
        cells = [f"{db[r.method]:.2f} / {r.ssim:.3f}" for r in res.rows]
        rival = max((res.row("best classical"), res.row("PCA")), key=lambda r: db[r.method])
        name = rival.params.get("method") or f"PCA {rival.params.get('n_components')}"
        margin = db[DEFAULT] - db[rival.method]
        need = TARGET_05 if (kind, level) == ("gaussian", 0.5) else TARGET
        met &= margin >= need
        ok = "met" if margin >= need else "NOT met"
        print(f"| {kind} {level:g} | " + " | ".join(cells) + f" | {margin:+.2f} dB vs {name} (≥ +{need:g}: {ok}) |")
    print()
    print(
        f"{DEFAULT} (the Denoising page's default) ≥ +{TARGET:g} dB over the best classical filter and PCA at "
        f"every setting and ≥ +{TARGET_05:g} dB at Gaussian σ = 0.5: {'met' if met else 'NOT met'}."
    )


if __name__ == "__main__":
    raise SystemExit(main())
