"""Command line: ``python -m core {train,evaluate,pretrain,list,export,import,explore}``.

    python -m core train --dataset mnist --model vae --arch conv --latent 16 --beta 1 \\
        --epochs 20 --out checkpoints/NAME [--data-dir DIR]
    python -m core evaluate checkpoints/NAME [--dataset mnist] [--data-dir DIR] [--iw K [--n N]] [--factors] [--record]
    python -m core pretrain [--data-dir DIR] [--only NAME ...] [--force]
    python -m core list [checkpoints]
    python -m core export checkpoints/NAME --onnx DIR
    python -m core import DIR [--name NAME] [--dataset mnist] [--data-dir DIR]
    python -m core explore PATH [--images DIR] [--port N] [--check-only]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from core.data import registry as data_mod
from core.data.corrupt import CORRUPTIONS
from core.data.registry import DataError, Dataset, load_dataset
from core.formats.checkpoints import (
    SHIPPED_DIR,
    CheckpointError,
    check_name,
    describe_folder,
    load_checkpoint,
    split_path,
    user_dir,
)
from core.formats.export import TOLERANCE, check_free, export_checkpoint, import_folder
from core.formats.foreign import read_spec
from core.formats.onnx_model import load_onnx_model
from core.models.config import ACTIVATION_NAMES, ARCHS, KINDS, LIKELIHOODS, ConfigError, ModelConfig, get_kind
from core.models.evaluate import binarize_fixed, card_binarized_seed, iw_nll, measure_card, record_card
from core.models.losses import LOSS_FORMS
from core.training.pretrain import pretrain
from core.training.runs import TqdmProgress, save_run
from core.training.train import TrainConfig, TrainingDiverged, train_model


def _dataset_name(text: str) -> str:
    """A registered data set, or your own images as ``folder:PATH`` / ``npz:PATH``."""
    if text in data_mod.dataset_names():
        return text
    if data_mod.is_user_data(text):  # absolute, so a model that records it finds it from anywhere
        kind, path = text.split(":", 1)
        return f"{kind}:{Path(path).expanduser().resolve()}"
    raise argparse.ArgumentTypeError(
        f"unknown data set {text!r}: choose one of {', '.join(data_mod.dataset_names())}, or folder:PATH / npz:PATH"
    )


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m core", description="Latent Lab engine")
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train a model and save it as a checkpoint")
    t.add_argument(
        "--dataset",
        default="mnist-5k",
        type=_dataset_name,
        help=f"one of {', '.join(data_mod.dataset_names())}, or your own images: folder:PATH or npz:PATH",
    )
    t.add_argument("--data-dir", default=None, help="folder in torchvision's layout (default $LATENTLAB_DATA)")
    t.add_argument(
        "--model", default="vae", choices=list(KINDS), help="; ".join(f"{k}: {v.title}" for k, v in KINDS.items())
    )
    t.add_argument("--arch", default="conv", choices=ARCHS)
    t.add_argument("--latent", type=int, default=16)
    t.add_argument(
        "--likelihood", default="", choices=("", *LIKELIHOODS), help="default: bernoulli for grey, gaussian for colour"
    )
    t.add_argument("--hidden", type=int, nargs="+", default=[400], help="MLP hidden widths")
    t.add_argument("--channels", type=int, nargs="+", default=None, help="conv channels per stage")
    t.add_argument("--fc", type=int, default=256, help="conv dense width")
    t.add_argument("--conv-depth", type=int, default=0, help="extra 3x3 convs per conv stage")
    t.add_argument("--input-gate", action="store_true", help="AE: output gate·input + (1 − gate)·decoded, per pixel")
    t.add_argument("--activation", default="silu", choices=list(ACTIVATION_NAMES))
    t.add_argument("--beta", type=float, default=1.0)
    t.add_argument("--loss-form", default="standard", choices=list(LOSS_FORMS))
    t.add_argument("--epochs", type=int, default=10)
    t.add_argument("--batch-size", type=int, default=128)
    t.add_argument("--lr", type=float, default=1e-3)
    t.add_argument("--lr-schedule", default="constant", choices=["constant", "cosine"])
    t.add_argument("--kl-warmup", type=float, default=0.0, help="epochs over which β ramps up")
    t.add_argument("--noise", default=None, choices=list(CORRUPTIONS), help="corruption for a denoising AE")
    t.add_argument("--noise-level", type=float, default=None)
    t.add_argument("--sparse", type=float, default=None, help="L1 weight on the code")
    t.add_argument("--contractive", type=float, default=None, help="Jacobian penalty weight")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--device", default="auto")
    t.add_argument("--no-download", action="store_true", help="never use the network")
    t.add_argument("--float16", action="store_true", help="store weights as float16")
    t.add_argument("--out", default=None, help="checkpoint path without suffix (default: not saved)")

    _evaluate_parser(sub)

    pt = sub.add_parser("pretrain", help="rebuild the shipped checkpoints from checkpoints/manifest.json")
    pt.add_argument("--data-dir", default=None)
    pt.add_argument("--only", nargs="+", default=None, metavar="NAME")
    pt.add_argument("--force", action="store_true", help="rebuild even when up to date")
    pt.add_argument("--no-download", action="store_true")

    ls = sub.add_parser("list", help="list a folder of checkpoints")
    ls.add_argument("folder", nargs="?", default=str(SHIPPED_DIR))
    ls.add_argument("--data-dir", default=None, help="unused; accepted everywhere for symmetry")
    ls.add_argument("--markdown", action="store_true", help="a Markdown table of the model cards")
    _onnx_parsers(sub)
    return p


def _evaluate_parser(sub: argparse._SubParsersAction) -> None:
    e = sub.add_parser("evaluate", help="test loss, reconstruction, KL, active units [, importance-weighted NLL]")
    e.add_argument("checkpoint")
    e.add_argument("--dataset", default=None, help="default: the checkpoint's own data set")
    e.add_argument("--data-dir", default=None)
    e.add_argument("--no-download", action="store_true")
    e.add_argument("--iw", type=int, default=None, metavar="K", help="importance-weighted NLL, K samples (in the card)")
    e.add_argument("--iw-seed", type=int, default=0, help="seed of the importance samples")
    e.add_argument("--n", type=int, default=None, help="only the first N test images (a quick estimate)")
    e.add_argument("--record", action="store_true", help="write the measured figures into the checkpoint's card")
    e.add_argument(
        "--factors", action="store_true", help="disentanglement (MIG, DCI) against the known factors (sprites)"
    )


def _onnx_parsers(sub: argparse._SubParsersAction) -> None:
    """The ONNX model folder commands (docs/own-model.md)."""
    ex = sub.add_parser("export", help="export a checkpoint to an ONNX model folder")
    ex.add_argument("checkpoint")
    ex.add_argument("--onnx", required=True, metavar="DIR", help="the model folder to write (must not exist)")

    im = sub.add_parser("import", help="validate an ONNX model folder and copy it into your models")
    im.add_argument("folder")
    im.add_argument("--name", default=None, help="the model's name (default: the folder's name)")
    im.add_argument(
        "--dataset",
        default=None,
        type=_dataset_name,
        help="measure a model card on this data set's test split (default: model.json's dataset, if one of ours)",
    )
    im.add_argument("--data-dir", default=None)
    im.add_argument("--no-download", action="store_true")

    ex = sub.add_parser(
        "explore", help="open a model where it lives (checkpoint, ONNX folder, diffusers VAE, optimum export)"
    )
    ex.add_argument("path", help="NAME.safetensors, a model folder, a diffusers VAE folder or an optimum export")
    ex.add_argument("--images", default=None, help="a folder of your images: the model's data set in the app")
    ex.add_argument("--port", type=int, default=None, help="default: a free port")
    ex.add_argument("--check-only", action="store_true", help="check the model and the images, start nothing")


def _model_config(args: argparse.Namespace, ds: Dataset) -> ModelConfig:
    return get_kind(args.model).model_config(
        ds.image_shape,
        ds.num_classes,
        arch=args.arch,
        latent_dim=args.latent,
        likelihood=args.likelihood,
        hidden=tuple(args.hidden),
        channels=tuple(args.channels or ()),
        fc=args.fc,
        conv_depth=args.conv_depth,
        input_gate=args.input_gate,
        activation=args.activation,
    )


def _train_config(args: argparse.Namespace) -> TrainConfig:
    """The kind's training overrides, then what the command line sets explicitly."""
    extra = dict(get_kind(args.model).train_overrides)
    for key, value in (
        ("noise", args.noise),
        ("noise_level", args.noise_level),
        ("sparse_weight", args.sparse),
        ("contractive_weight", args.contractive),
    ):
        if value is not None:
            extra[key] = value
    return TrainConfig(
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        beta=args.beta,
        loss_form=args.loss_form,
        kl_warmup_epochs=args.kl_warmup,
        lr_schedule=args.lr_schedule,
        seed=args.seed,
        device=args.device,
        **extra,
    )


def cmd_train(args: argparse.Namespace) -> int:
    ds = load_dataset(args.dataset, args.data_dir, download=not args.no_download)
    print(ds.describe(), file=sys.stderr)
    mcfg, tcfg = _model_config(args, ds), _train_config(args)
    tcfg.validate()
    progress = TqdmProgress()
    try:
        model, history = train_model(mcfg, ds, tcfg, [progress])
    finally:
        progress.close()
    for w in history.warnings:
        print(f"warning: {w}", file=sys.stderr)
    last = history.last
    per_epoch = history.seconds / max(len(history.epochs), 1)
    print(
        f"test loss {last.test_loss:.2f} nats (recon {last.test_recon:.2f} + KL {last.test_kl:.2f}) "
        f"after {last.epoch} epochs, {per_epoch:.2f} s/epoch"
    )
    if args.out:
        import torch

        folder, name = split_path(args.out)
        dtype = torch.float16 if args.float16 else None
        saved = save_run(model, folder, name, dataset=ds, train=tcfg, history=history, dtype=dtype)
        print(f"saved {saved.path} and {saved.path.with_suffix('.json').name}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    ckpt = load_checkpoint(args.checkpoint)
    name = args.dataset or ckpt.meta.get("dataset", {}).get("name") or "mnist-5k"
    ds = load_dataset(name, args.data_dir, download=not args.no_download)
    ckpt.config.check_data(ds)
    if args.iw is not None and args.iw < 1:
        raise ConfigError(f"--iw needs K ≥ 1 importance samples, got {args.iw}")
    x, y = ds.test_x[: args.n], (ds.test_y[: args.n] if ds.test_y is not None else None)
    # Trained on binary images: scored on one fixed binarization of the test split, card and IW-NLL alike.
    seed = card_binarized_seed(ckpt.meta.get("train", {}))
    card = measure_card(ckpt.model, x, y, seed=ckpt.meta.get("card", {}).get("eval_seed", 0), binarized_seed=seed)
    binarized = f" (test images binarized once, seed {seed})" if seed is not None else ""
    print(f"{ckpt.name} on {ds.describe()}{binarized}")
    print(
        f"test loss {card['test_loss']:.2f} nats  recon {card['test_recon']:.2f}  KL {card['test_kl']:.2f}  "
        f"active units {card['active_units']}/{ckpt.config.latent_dim}"
    )
    if args.factors:
        card["factors"] = _factor_scores(ckpt, ds)
    if args.record:
        print(f"recorded in {record_card(ckpt.path, card)}")
    if args.iw:
        _evaluate_iw(args, ckpt, binarize_fixed(x, seed) if seed is not None else x, y, card, seed is not None)
    return 0


def _factor_scores(ckpt, ds: Dataset) -> dict:
    """Print the codes' disentanglement against the data's known factors; returns them for the card."""
    from core.lenses.factors import NoFactors, factor_report

    try:
        report = factor_report(ckpt.model, ds)
    except NoFactors as exc:
        raise ConfigError(str(exc)) from None
    print(
        f"MIG {report.mig:.3f}  DCI disentanglement {report.disentanglement:.3f}  completeness "
        f"{report.completeness:.3f}  informativeness {report.informativeness:.3f} ({report.n_test:,} test codes)"
    )
    print("  " + ", ".join(f.label for f in report.factors()))
    return report.to_card()


def _evaluate_iw(args: argparse.Namespace, ckpt, x, y, card: dict, binarized: bool) -> None:
    """Print the K-sample importance-weighted NLL and record it in the checkpoint's card."""
    from tqdm import tqdm

    def progress(done: int, n: int, nll) -> None:  # the running estimate, should a long run be cut short
        se = nll.std().item() / done**0.5 if done > 1 else 0.0
        bar.set_postfix_str(f"IW-NLL {nll.mean().item():.3f} ± {se:.3f} over {done}", refresh=False)
        bar.update(done - bar.n)

    with tqdm(total=len(x), unit="image", file=sys.stderr, dynamic_ncols=True, mininterval=10) as bar:
        est = iw_nll(ckpt.model, x, y, k=args.iw, seed=args.iw_seed, progress=progress)
    print(
        f"IW-NLL {est.nll:.2f} ± {est.se:.2f} nats (K = {est.k}, n = {est.n}; one-sample ELBO "
        f"{card['test_loss']:.2f}, mean -log w {est.elbo:.2f})"
    )
    record = {**est.to_dict(), "test_loss": card["test_loss"], "binarized_seed": 0 if binarized else None}
    path = record_card(ckpt.path, {"iw_nll": record})
    print(f"recorded in {path}")


def cmd_pretrain(args: argparse.Namespace) -> int:
    built = pretrain(args.data_dir, args.only, args.force, download=not args.no_download)
    print(f"built {len(built)} checkpoint(s): {', '.join(built) or 'none needed'}")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    print(describe_folder(args.folder, markdown=args.markdown))
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    report = export_checkpoint(args.checkpoint, args.onnx)
    print(f"wrote {report.folder}: encoder.onnx, decoder.onnx, model.json")
    print(
        f"max abs difference against torch: decode {report.decode_diff:.1e}, encode {report.encode_diff:.1e} "
        f"(limit {TOLERANCE:.0e})"
    )
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    # Every check first (the graphs, the name), before any data is loaded.
    spec = load_onnx_model(args.folder).spec
    name = check_name(args.name or Path(args.folder).resolve().name)
    check_free(user_dir(), name)
    data_name = args.dataset or spec.dataset
    ds = None
    if data_mod.is_user_data(data_name or ""):  # your images, read at the model's shape
        ds = data_mod.load_user_data(data_name, spec.image_shape)
        print(f"measuring on {ds.describe()}", file=sys.stderr)
    elif data_name in data_mod.REGISTRY:
        ds = load_dataset(data_name, args.data_dir, download=not args.no_download)
        print(f"measuring on {ds.describe()}", file=sys.stderr)
    dest = import_folder(args.folder, user_dir(), name=name, dataset=ds)
    print(f"imported {dest.name} into {dest.parent}")
    if ds is None:
        print("no model card: name one of our data sets with --dataset to measure one")
        return 0
    card = read_spec(dest).meta["card"]
    print(
        f"test loss {card['test_loss']:.2f} nats  recon {card['test_recon']:.2f}  KL {card['test_kl']:.2f}  "
        f"active units {card['active_units']}/{spec.latent_dim} on {card['dataset']}"
    )
    return 0


def cmd_explore(args: argparse.Namespace) -> int:
    from core.app.explore import check, explore

    key, what = check(args.path, args.images)  # every check first: nothing starts for a broken model
    print(f"opening {what}" + (f" with the images in {args.images}" if args.images else ""), file=sys.stderr)
    if args.check_only:
        print(f"ok: {key}")
        return 0
    shown = explore(args.path, args.images, port=args.port)
    print(shown.url, flush=True)
    try:
        shown.process.wait()
    except KeyboardInterrupt:
        shown.stop()
    return 0


COMMANDS = {
    "train": cmd_train,
    "evaluate": cmd_evaluate,
    "pretrain": cmd_pretrain,
    "list": cmd_list,
    "export": cmd_export,
    "import": cmd_import,
    "explore": cmd_explore,
}


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    handler = COMMANDS[args.command]
    try:
        return handler(args)
    except (DataError, CheckpointError, ConfigError, TrainingDiverged) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
