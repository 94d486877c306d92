"""β-sweep benchmark: the page's sweeps (their time and table) and the shipped β family.

    python -m benchmarks.beta_sweep [--data-dir ../shared/data] [--skip page talk family]

Prints, each figure labelled with the machine and the date:

1. the page's quick sweep (core.experiments.sweep.PRESETS["quick"]) on the offline 5,000 digits: its
   table, its wall time and its CPU time (issue 15's target: ≤ 30 s on 2 cores). The CPU
   time is what the same run takes on one free core; a machine shared with other jobs shows
   a larger wall time. Also the measured seconds per model-epoch (core.experiments.sweep's
   ``SECONDS_PER_MODEL_EPOCH``, the page's estimate);
2. the talk's table (PRESETS["talk"]: M = (1-β)·MSE + β·KL, β from 1 down to 0) with the
   talk's published variances beside ours, and whether ours are monotone in β;
3. the shipped β family (mnist-bvae-*) measured on the full MNIST test set (with
   ``--data-dir``; else the offline test split): active units from the smallest to the largest β.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from benchmarks.machine import header
from core.app import catalog
from core.data.registry import DataError, load_dataset
from core.experiments import sweep
from core.formats.checkpoints import load_checkpoint

ROOT = Path(__file__).resolve().parent.parent


def run_preset(key: str):
    """Train a preset as the page does (one process, one model after another)."""
    p = sweep.PRESETS[key]
    data = sweep.page_test_split(load_dataset("mnist-5k"))
    betas = sweep.parse_betas(p.betas)
    t0, c0 = time.perf_counter(), time.process_time()
    res = sweep.run_sweep(
        betas, sweep.page_model_config(data, p.latent), data, sweep.page_train_config(p.epochs, p.loss_form), workers=1
    )
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    print(f"{p.label}: {len(betas)} models × {p.epochs} epochs, latent {p.latent}, {p.loss_form} loss")
    print(f"on {data.describe()}")
    return res, wall, cpu, len(betas) * p.epochs


def page_sweep() -> None:
    print(header("β sweep from the page: the quick preset"))
    res, wall, cpu, model_epochs = run_preset("quick")
    print(sweep.format_table(res.rows))
    print(f"wall time {wall:.1f} s; CPU time {cpu:.1f} s; {cpu / model_epochs:.2f} CPU s per model-epoch")
    print(f"(the page's estimate: {sweep.SECONDS_PER_MODEL_EPOCH} s per model-epoch; target ≤ 30 s)\n")


def talk_table() -> None:
    print(header("The talk's table: (1-β)·MSE + β·KL"))
    res, wall, cpu, _ = run_preset("talk")
    print(sweep.format_table(res.rows, talk=True))
    var = [r.mean_variance for r in res.rows]
    at = {r.beta: r.mean_variance for r in res.rows}
    print(
        f"monotone in β: {var == sorted(var)}; at β = 0.5: {at.get(0.5, float('nan')):.6g} (≥ 0.95); "
        f"at β = 0: {at.get(0.0, float('nan')):.3g} (≤ 0.05)"
    )
    print(f"wall time {wall:.1f} s; CPU time {cpu:.1f} s\n")


def shipped_family(data_dir: str | None) -> None:
    family = next((f for f in catalog.beta_families(catalog.list_models()) if f[0].source == "shipped"), None)
    if family is None:
        print("no shipped β family\n")
        return
    try:
        data = load_dataset(family[0].dataset, data_dir, download=False)
    except DataError as exc:
        print(f"skipped the shipped family: {exc}\n")
        return
    print(header(f"The shipped β family on {data.describe()}"))
    models = {catalog.beta_of(e): load_checkpoint(e.path).model for e in family}
    rows = sweep.rows_from_models(models, data.test_x, data.test_y)
    print(", ".join(e.key for e in family))
    print(sweep.format_table(rows))
    first, last = rows[0], rows[-1]
    print(f"active units from β = {first.beta:g} to β = {last.beta:g}: {first.active_units} → {last.active_units}\n")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", default=None)
    p.add_argument("--skip", nargs="*", default=[], choices=["page", "talk", "family"])
    args = p.parse_args()
    torch.set_num_threads(1)
    if "page" not in args.skip:
        page_sweep()
    if "talk" not in args.skip:
        talk_table()
    if "family" not in args.skip:
        shipped_family(args.data_dir)


if __name__ == "__main__":
    main()
