"""Known factors: the shipped sprites β family scored for disentanglement, measured afresh.

    python -m benchmarks.factors

For every shipped VAE on the generated sprites (the β family and the colour demo model): MIG
(Chen et al. 2018) and DCI disentanglement, completeness and informativeness (Eastwood & Williams
2018) of its posterior means on the 1,000 test sprites (DCI's classifiers fit on 5,000 training
codes), the reconstruction PSNR, active units, the factor each clearly named dimension carries,
and the seconds the scoring took. The published range for dSprites-like data is printed beside
it. Figures are printed, never asserted.
"""

from __future__ import annotations

import time

from benchmarks.machine import header

# Published figures for β-VAE on dSprites (binary 64×64 sprites, 5 factors), for scale:
PUBLISHED = (
    "Published, for scale (β-VAE on dSprites: binary sprites, 5 factors; approximate, read from the papers' "
    "figures, so compare ranges, not digits): MIG rises with β from about 0.1 towards 0.2–0.3 (Chen et al. 2018), "
    "and over 50 random seeds per setting it spreads from near 0 to about 0.4, as widely as β moves it "
    "(Locatello et al. 2019)."
)


def shipped_sprite_models() -> list:
    from core.app.catalog import list_models

    entries = [e for e in list_models() if e.ok and e.source == "shipped" and e.dataset == "sprites"]
    return sorted(entries, key=lambda e: (e.name != "sprites-vae-conv-z10", e.meta.get("train", {}).get("beta", 1)))


def main() -> None:
    from core.data.registry import load_dataset
    from core.formats.checkpoints import load_checkpoint
    from core.lenses.factors import factor_report
    from core.models.evaluate import active_units, encode_dataset, recon_psnr

    data = load_dataset("sprites")
    print(header("Known factors: the shipped sprites models, scored on the test sprites"))
    print(f"\ndata: {data.describe()}\n")
    print("| model | β | MIG | DCI disentanglement | completeness | informativeness | PSNR (dB) | active | "
          "named dimensions | s |")  # fmt: skip
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: |")
    for entry in shipped_sprite_models():
        model = load_checkpoint(entry.path).model
        start = time.perf_counter()
        report = factor_report(model, data)
        seconds = time.perf_counter() - start
        mu, _ = encode_dataset(model, data.test_x)
        named = ", ".join(d.label for d in report.dims() if d.clear) or "none"
        beta = entry.meta.get("train", {}).get("beta", 1)
        psnr = recon_psnr(model, data.test_x, mu, None)
        print(
            f"| `{entry.name}` | {beta:g} | {report.mig:.3f} | {report.disentanglement:.3f} | "
            f"{report.completeness:.3f} | {report.informativeness:.3f} | {psnr:.1f} "
            f"| {active_units(mu)}/{mu.shape[1]} | {named} | {seconds:.1f} |"
        )
    print(f"\n{PUBLISHED}")


if __name__ == "__main__":
    main()
