"""Foreign-model benchmark: a shipped model decoding natively in torch and as its ONNX export.

    python -m benchmarks.foreign [--checkpoint checkpoints/mnist-vae-conv-z16] [--repeats 200]

Exports the checkpoint to a temporary ONNX model folder (``core.formats.export.export_checkpoint``),
loads it back through ``core.formats.onnx_model.OnnxModel`` (onnxruntime, CPU, one intra-op thread, as
the app serves it) and prints, side by side in one run, decode milliseconds per image through
``core.lenses.latent.decode`` (the path every page takes) for one code and for a batch of 64: torch
with its default threads, torch with one thread, and onnxruntime with one thread. Also the
export time, the folder's size and the largest differences from torch. Figures are printed,
never asserted.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks.machine import header
from core.formats.checkpoints import load_checkpoint
from core.formats.export import export_checkpoint
from core.formats.onnx_model import load_onnx_model
from core.lenses import latent
from core.models.protocol import LatentModel

ROOT = Path(__file__).resolve().parent.parent
DEFAULT = ROOT / "checkpoints" / "mnist-vae-conv-z16"


def ms_per_image(model: LatentModel, z: np.ndarray, repeats: int) -> float:
    """Median over ``repeats`` calls of latent.decode(model, z), in milliseconds per image."""
    latent.decode(model, z)  # warm-up: first-call allocations, onnxruntime's arena
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        latent.decode(model, z)
        times.append(time.perf_counter() - t0)
    return 1000 * statistics.median(times) / len(z)


def with_threads(n: int, fn, *args) -> float:
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        return fn(*args)
    finally:
        torch.set_num_threads(before)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.foreign", description=__doc__.split("\n")[0])
    p.add_argument("--checkpoint", default=str(DEFAULT))
    p.add_argument("--repeats", type=int, default=200, help="timed calls per cell (batches of 64: a tenth)")
    args = p.parse_args(argv)
    ckpt = load_checkpoint(args.checkpoint)
    threads = torch.get_num_threads()
    print(header(f"Your own model: {ckpt.name} in torch and as ONNX (latent.decode, CPU)"))
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        report = export_checkpoint(ckpt, Path(tmp) / ckpt.name)
        export_s = time.perf_counter() - t0
        size_mb = sum(f.stat().st_size for f in report.folder.iterdir()) / 1e6
        onnx_model = load_onnx_model(report.folder, threads=1)
        rng = np.random.default_rng(0)
        rows = []
        for batch, repeats in ((1, args.repeats), (64, max(10, args.repeats // 10))):
            z = rng.normal(size=(batch, ckpt.config.latent_dim)).astype(np.float32)
            rows.append(
                (
                    batch,
                    ms_per_image(ckpt.model, z, repeats),
                    with_threads(1, ms_per_image, ckpt.model, z, repeats),
                    ms_per_image(onnx_model, z, repeats),
                )
            )
    print(f"{'batch':>5} {f'torch, {threads} threads':>18} {'torch, 1 thread':>16} {'onnxruntime, 1 thread':>22}")
    for batch, native, native_1t, ort_1t in rows:
        print(f"{batch:>5} {native:>18.3f} {native_1t:>16.3f} {ort_1t:>22.3f}")
    print(
        f"(ms per image, median of {args.repeats} calls for one code and {max(10, args.repeats // 10)} for 64.\n"
        f" Export {export_s:.1f} s, folder {size_mb:.1f} MB (float32 weights); ONNX against torch, max abs "
        f"difference: decode {report.decode_diff:.1e}, encode {report.encode_diff:.1e}.)\n"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
