"""Analysis benchmark: decoding speed, the β sweep, denoising and anomaly detection.

    python -m benchmarks.analysis [--data-dir ../shared/data] [--quick]
        [--dae PATH] [--ae PATH] [--vae PATH]   # checkpoints instead of training here

Prints, each figure labelled with the machine and the date:

1. decode milliseconds per image for the shipped model sizes (checkpoints/manifest.json);
2. the β-sweep table for β ∈ {0.1, 0.5, 1, 2, 4, 8} on the embedded mnist-5k set and the
   wall time of the 6-model sweep (one process per core);
3. (full data) denoising on the MNIST test set at Gaussian σ = 0.5: PSNR/SSIM of the noisy
   input, each classical filter (parameters tuned on 200 training images), PCA, AE, VAE, DAE;
4. (full data) one-class MNIST AUROC per class by reconstruction error of a conv AE, with
   the PCA baseline beside it;
5. (full data) MNIST vs Fashion-MNIST AUROC by reconstruction error and by the ELBO.

``--quick`` shortens everything (fewer epochs, smaller test sets) to check that it runs; its
figures are not the README's. Without the full data sets, parts 3-5 say they were skipped.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from benchmarks.machine import header
from core.data.registry import REGISTRY, DataError, Dataset, load_dataset
from core.experiments import anomaly, sweep
from core.formats.checkpoints import load_checkpoint
from core.lenses import denoise, latent
from core.models.config import ModelConfig
from core.models.networks import AutoEncoder, build_model
from core.training.train import TrainConfig

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA = ROOT.parent / "shared" / "data"
BETAS = (0.1, 0.5, 1.0, 2.0, 4.0, 8.0)
SIGMA = 0.5


@dataclass(frozen=True)
class Plan:
    """How much work each part does (full or --quick)."""

    sweep_epochs: int
    denoise_test: int | None  # test images (None: all 10,000)
    denoise_train: int | None  # training images for the models (None: all 60,000)
    denoise_epochs: int
    one_class_epochs: int
    one_class_classes: tuple[int, ...]
    cross_test: int | None


FULL = Plan(30, None, None, 10, 20, tuple(range(10)), None)
QUICK = Plan(3, 1000, 10_000, 1, 2, (0, 1), 1000)

# ---------------------------------------------------------------- 1. decoding speed


def shipped_configs() -> list[tuple[str, ModelConfig]]:
    """The model sizes the app ships (from the manifest), built with untrained weights: the
    speed of a forward pass does not depend on the weights' values."""
    path = ROOT / "checkpoints" / "manifest.json"
    entries = json.loads(path.read_text())["checkpoints"] if path.is_file() else []
    out, seen = [], set()
    for e in entries:
        spec = REGISTRY[e["dataset"]]
        d = {**e["model"], "image_shape": spec.image_shape}
        if d.get("kind") == "cvae":
            d.setdefault("num_classes", len(spec.class_names or ()))
        cfg = ModelConfig.from_dict(d)
        key = (cfg.arch, cfg.latent_dim, cfg.hidden, cfg.channels, cfg.image_shape)
        if key not in seen:
            seen.add(key)
            out.append((e["name"], cfg))
    return out or [("mlp-z20", ModelConfig(kind="vae", arch="mlp", latent_dim=20)), ("conv-z16", ModelConfig())]


def _single_ms(model: AutoEncoder, z1: np.ndarray, y: int | None, repeats: int) -> float:
    for _ in range(10):
        latent.decode(model, z1, y)  # warm-up: first calls allocate
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        latent.decode(model, z1, y)
        times.append(time.perf_counter() - t0)
    return 1000 * float(np.median(times))


def decode_speed(repeats: int = 200) -> None:
    threads = torch.get_num_threads()
    print(header("Decode time per image (latent.decode, CPU)"))
    print(f"{'model':<28} {'image':>7} {'1 image, ms':>12} {'1 image, 1 thread':>18} {'batch of 64, ms/image':>22}")
    for name, cfg in shipped_configs():
        torch.manual_seed(0)
        model = build_model(cfg).eval()
        z1 = np.zeros((1, cfg.latent_dim), np.float32)
        z64 = np.random.default_rng(0).normal(size=(64, cfg.latent_dim)).astype(np.float32)
        y = 0 if cfg.conditional else None  # a conditional VAE decodes a code with a label
        single = _single_ms(model, z1, y, repeats)
        torch.set_num_threads(1)
        try:
            single_1t = _single_ms(model, z1, y, repeats)
        finally:
            torch.set_num_threads(threads)
        t0 = time.perf_counter()
        for _ in range(10):
            latent.decode(model, z64, y)
        batch = (time.perf_counter() - t0) / 640
        shape = "×".join(map(str, cfg.image_shape[1:]))
        print(f"{name:<28} {shape:>7} {single:>12.3f} {single_1t:>18.3f} {1000 * batch:>22.3f}")
    print(f"(median of {repeats} single-code calls with {threads} threads and with 1; target ≤ 2 ms per image.")
    print(" On a CPU shared with other jobs, several threads for one small image can cost 10x more.)\n")


# ---------------------------------------------------------------- 2. β sweep


class _Progress(sweep.SweepCallback):
    def on_job_end(self, index: int, result: sweep.JobResult) -> None:
        print(f"  finished {result.tag} in {result.seconds:.1f} s", flush=True)


def beta_sweep(plan: Plan) -> None:
    data = load_dataset("mnist-5k")
    # Latent 20 (the PyTorch example's size) leaves room to switch units off: at latent 10 a
    # 30-epoch run keeps all ten weakly active even at β = 8 (KL ≈ 0.01 nats, Cov > 0.01).
    cfg = ModelConfig(kind="vae", arch="mlp", latent_dim=20, hidden=(256,))
    tc = TrainConfig(epochs=plan.sweep_epochs, batch_size=128, lr=2e-3, seed=0)
    print(header(f"β sweep: MLP VAE 784-256-20, {tc.epochs} epochs on mnist-5k ({len(data.train_x)} train)"))
    res = sweep.run_sweep(BETAS, cfg, data, tc, callback=_Progress())
    print(sweep.format_table(res.rows))
    print(f"wall time of the {len(BETAS)}-model sweep: {res.seconds:.1f} s with {res.workers} worker processes")
    print("KL per dimension (nats), dimensions sorted by KL:")
    for r in res.rows:
        print(f"  β={r.beta:<4g} " + " ".join(f"{v:5.2f}" for v in sorted(r.kl_per_dim, reverse=True)))
    print()


# ---------------------------------------------------------------- helpers for the full-data parts


def _subset(x: np.ndarray, n: int | None, seed: int = 0) -> np.ndarray:
    if n is None or n >= len(x):
        return x
    return x[np.sort(np.random.default_rng(seed).choice(len(x), n, replace=False))]


def _train_models(jobs: list[sweep.TrainJob]) -> list[AutoEncoder]:
    results = sweep.train_many(jobs, callback=_Progress())
    bad = [r for r in results if not r.ok]
    if bad:
        raise SystemExit(f"training failed: {[(r.tag, r.error) for r in bad]}")
    return [r.model for r in results]  # type: ignore[misc]


def _load(path: str) -> AutoEncoder:
    return load_checkpoint(path).model


# ---------------------------------------------------------------- 3. denoising


def denoising(mnist: Dataset, plan: Plan, paths: dict[str, str | None]) -> dict[str, AutoEncoder]:
    clean = _subset(mnist.test_x, plan.denoise_test)
    noisy = denoise.corrupt_images(clean, "gaussian", SIGMA, seed=1)
    val_clean = mnist.train_x[-200:]
    val_noisy = denoise.corrupt_images(val_clean, "gaussian", SIGMA, seed=2)
    train = Dataset(
        name="mnist-train",
        source=mnist.source,
        source_note=mnist.source_note,
        train_x=_subset(mnist.train_x, plan.denoise_train),
        test_x=mnist.test_x[:1000],
    )
    conv = {"arch": "conv", "latent_dim": 16, "channels": (32, 64), "fc": 256}
    base = TrainConfig(epochs=plan.denoise_epochs, batch_size=128, lr=2e-3, lr_schedule="cosine", seed=0)
    recipes = {
        "dae": (
            ModelConfig(kind="ae", **conv),
            TrainConfig(**{**base.to_dict(), "noise": "gaussian", "noise_level": SIGMA}),
        ),
        "ae": (ModelConfig(kind="ae", **conv), base),
        "vae": (ModelConfig(kind="vae", **conv), base),
    }
    models = {k: _load(p) for k, p in paths.items() if p}
    todo = [k for k in recipes if k not in models]
    if todo:
        print(f"training {', '.join(todo)} (conv, latent 16, {base.epochs} epochs on {len(train.train_x)} images)")
        trained = _train_models([sweep.TrainJob(recipes[k][0], train, recipes[k][1], tag=k) for k in todo])
        models.update(zip(todo, trained, strict=True))

    methods = []
    for name in denoise.available_classical():
        m, _ = denoise.tune(name, val_noisy, val_clean)
        methods.append(m)
    pca, _ = denoise.tune("pca", val_noisy, val_clean, train_x=train.train_x)
    methods.append(pca)
    methods += [denoise.model_method(models[k], k) for k in ("ae", "vae", "dae")]
    res = denoise.run_methods(clean, noisy, methods)
    print(header(f"Denoising: MNIST test ({len(clean)} images), Gaussian σ={SIGMA}, clipped to [0, 1]"))
    print(denoise.format_table(res))
    best = max((r for r in res.rows if r.family == "classical"), key=lambda r: r.psnr)
    gain = res.row("dae").psnr - best.psnr
    print(f"DAE − best classical ({best.method}): {gain:+.2f} dB (target ≥ +3 dB)")
    if "wavelet" not in denoise.available_classical():
        print("(wavelet skipped: PyWavelets is not installed)")
    print()
    return models


# ---------------------------------------------------------------- 4. one-class MNIST


def one_class(mnist: Dataset, plan: Plan) -> None:
    # A VAE scored by reconstruction error beat a plain AE on the hard classes (2 and 8) in
    # trials here; its ELBO ranks worse than its MSE (it rewards simple, thin digits).
    cfg = ModelConfig(kind="vae", arch="conv", latent_dim=16, channels=(32, 64), fc=256)
    tc = TrainConfig(epochs=plan.one_class_epochs, batch_size=128, lr=2e-3, lr_schedule="cosine", seed=0)
    splits = {c: anomaly.one_class_split(mnist, c) for c in plan.one_class_classes}
    print(f"training {len(splits)} one-class conv VAEs ({tc.epochs} epochs each)")
    t0 = time.perf_counter()
    models = _train_models([sweep.TrainJob(cfg, s.train_dataset(), tc, tag=f"class {c}") for c, s in splits.items()])
    seconds = time.perf_counter() - t0
    print(header(f"One-class MNIST: conv VAE (latent 16, {tc.epochs} epochs), AUROC on the 10,000 test images"))
    print(f"{'normal class':>12} {'VAE recon MSE':>14} {'VAE -ELBO':>10} {'PCA (32)':>9}")
    rows = []
    for (c, split), model in zip(splits.items(), models, strict=True):
        auc = anomaly.detect(model, split, kinds=("recon-mse", "elbo"), pca_components=32).auroc
        rows.append((auc["recon-mse"], auc["elbo"], auc["pca"]))
        print(f"{c:>12} {rows[-1][0]:>14.4f} {rows[-1][1]:>10.4f} {rows[-1][2]:>9.4f}")
    mean = np.mean(rows, axis=0)
    print(f"{'mean':>12} {mean[0]:>14.4f} {mean[1]:>10.4f} {mean[2]:>9.4f}   (target ≥ 0.95, ideally ≥ 0.98)")
    print(f"training wall time: {seconds:.0f} s\n")


# ---------------------------------------------------------------- 5. MNIST vs Fashion-MNIST


def cross_dataset(mnist: Dataset, fashion: Dataset, vae: AutoEncoder, plan: Plan) -> None:
    split = anomaly.cross_dataset_split(mnist, fashion, max_per_side=plan.cross_test)
    report = anomaly.detect(vae, split, kinds=("recon-mse", "recon-nll", "elbo"), pca_components=32)
    n = int(split.is_anomaly.sum())
    print(header(f"MNIST (normal) vs Fashion-MNIST (anomalous): {len(split.test_x) - n} + {n} test images"))
    print("VAE: the denoising section's conv VAE, trained on MNIST only")
    for name, auc in report.auroc.items():
        print(f"  {anomaly.SCORE_TITLES.get(name, 'PCA reconstruction error (32 components)'):<40} AUROC {auc:.4f}")
    print()


# ---------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.analysis", description=__doc__.split("\n")[0])
    p.add_argument("--data-dir", default=None, help=f"full data sets (default {DEFAULT_DATA} when present)")
    p.add_argument("--quick", action="store_true", help="a short run that checks everything works")
    p.add_argument("--skip", nargs="*", default=[], choices=["decode", "sweep", "denoise", "one-class", "cross"])
    for k in ("dae", "ae", "vae"):
        p.add_argument(f"--{k}", default=None, help=f"checkpoint to use as the {k.upper()} (else trained here)")
    args = p.parse_args(argv)
    plan = QUICK if args.quick else FULL
    if args.quick:
        print("QUICK MODE: short runs for checking; not the README's figures\n")

    if "decode" not in args.skip:
        decode_speed(50 if args.quick else 200)
    if "sweep" not in args.skip:
        beta_sweep(plan)

    data_dir = Path(args.data_dir) if args.data_dir else DEFAULT_DATA
    try:
        mnist = load_dataset("mnist", data_dir, download=False, fallback=False)
    except DataError as exc:
        print(f"denoising, one-class and cross-data-set parts skipped: full MNIST not found ({exc})")
        return 0
    models: dict[str, AutoEncoder] = {}
    if "denoise" not in args.skip or "cross" not in args.skip:
        models = denoising(mnist, plan, {"dae": args.dae, "ae": args.ae, "vae": args.vae})
    if "one-class" not in args.skip:
        one_class(mnist, plan)
    if "cross" not in args.skip:
        try:
            fashion = load_dataset("fashion-mnist", data_dir, download=False, fallback=False)
        except DataError as exc:
            print(f"cross-data-set part skipped: Fashion-MNIST not found ({exc})")
        else:
            cross_dataset(mnist, fashion, models["vae"], plan)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
