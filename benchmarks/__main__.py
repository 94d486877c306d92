"""Run every benchmark and put their tables in the README.

    python -m benchmarks [--only NAME ...] [--data-dir DIR] [--no-readme]

NAME: engine, analysis, quality, denoising, anomaly, anomaly_table, beta_sweep, factors, iw_nll, foreign, projections,
ui_latency, offline_demos, slider_fps, load_ws, load
(all by default).

Each benchmark runs as its own process (``python -m benchmarks.NAME``), one after another so
that they do not compete for the CPU; its output goes to ``benchmarks/results/NAME.md`` as it
comes. Then the README's section between ``<!-- benchmarks:start -->`` and
``<!-- benchmarks:end -->`` is rewritten from those files (all of them, so a partial run keeps
the other benchmarks' last figures). Not part of the tests: figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
README = ROOT / "README.md"
START, END = "<!-- benchmarks:start -->", "<!-- benchmarks:end -->"
# name -> (title in the README, extra arguments; {data} is the data folder)
BENCHMARKS = {
    "engine": ("Training against the PyTorch example", ["--data-dir", "{data}"]),
    # The shipped conv AE, VAE and DAE serve the denoising and cross-data-set parts.
    "analysis": (
        "Decoding, β sweep, denoising and anomaly detection",
        [
            "--data-dir",
            "{data}",
            *("--dae", "checkpoints/mnist-dae-conv-z256-mixed-gate"),
            *("--ae", "checkpoints/mnist-ae-conv-z16"),
            *("--vae", "checkpoints/mnist-vae-conv-z16"),
        ],
    ),
    "quality": ("Model quality beside published anchors", ["--data-dir", "{data}"]),
    "denoising": ("Denoising at several levels", ["--data-dir", "{data}"]),
    "anomaly": ("One-class MNIST: the shipped one-digit AEs beside PCA", ["--data-dir", "{data}"]),
    "anomaly_table": ("Anomalies in tables: the autoencoder beside the classical detectors", []),
    "beta_sweep": ("β sweep: the page's sweep, the talk's table and the shipped family", ["--data-dir", "{data}"]),
    "factors": ("Known factors: disentanglement of the sprites family (MIG, DCI)", []),
    "iw_nll": ("Importance-weighted NLL on binarized MNIST beside Burda et al.", ["--data-dir", "{data}"]),
    "foreign": ("Your own model: torch against its ONNX export", []),
    "projections": ("Latent map projections: PCA, UMAP and t-SNE of 10,000 codes", ["--data-dir", "{data}"]),
    "ui_latency": ("Interactivity", []),
    "offline_demos": ("Offline: every page's main demo on a fresh server", []),
    "slider_fps": ("Frame-rate sliders: decoding in the browser against the server", []),
    "load_ws": ("A classroom of concurrent sessions (websocket clients)", []),
    "load": ("A classroom of concurrent sessions (Chromium tabs on the same 2 cores)", []),
    "load_class": ("A class of 200: replicas behind HAProxy, load and a killed replica", []),
}


def run_one(name: str, data_dir: Path) -> int:
    args = [a.format(data=data_dir) for a in BENCHMARKS[name][1]]
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"{name}.md"
    tmp = out.with_suffix(".md.tmp")
    print(f"== {name}: python -m benchmarks.{name} {' '.join(args)}", flush=True)
    t0 = time.perf_counter()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with open(tmp, "w", encoding="utf-8") as f:
        proc = subprocess.Popen(
            [sys.executable, "-m", f"benchmarks.{name}", *args],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        for line in proc.stdout:  # echo and keep
            sys.stdout.write(line)
            f.write(line)
        code = proc.wait()
    if code == 0:
        tmp.replace(out)  # a failed run keeps the last good figures
    else:
        print(f"!! {name} exited with {code}; {out.name} keeps its previous figures", flush=True)
    print(f"== {name}: {time.perf_counter() - t0:.0f} s\n", flush=True)
    return code


def readme_section() -> str:
    parts = [START, ""]
    for name, (title, _) in BENCHMARKS.items():
        path = RESULTS / f"{name}.md"
        if path.is_file():
            body = path.read_text(encoding="utf-8").strip()
            # As printed (fixed-width and Markdown tables alike), so the README shows exactly that.
            command = " ".join(["python -m benchmarks." + name, *BENCHMARKS[name][1]]).format(data="../shared/data")
            parts += [f"### {title}", "", f"`{command}`", "", "```text", body, "```", ""]
    parts.append(END)
    return "\n".join(parts)


def update_readme() -> None:
    text = README.read_text(encoding="utf-8")
    if START not in text or END not in text:
        print(f"README.md has no {START} … {END} section; not updated")
        return
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    README.write_text(head + readme_section() + tail, encoding="utf-8")
    print("README.md benchmark section updated")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    p.add_argument("--only", nargs="*", choices=list(BENCHMARKS), default=list(BENCHMARKS))
    p.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data"))
    p.add_argument("--no-readme", action="store_true", help="leave README.md alone")
    args = p.parse_args(argv)
    failed = [name for name in args.only if run_one(name, Path(args.data_dir)) != 0]
    if not args.no_readme:
        update_readme()
    if failed:
        print(f"failed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
