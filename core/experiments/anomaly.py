"""Anomaly detection with autoencoders: score each example, compare with ROC curves.

A model trained only on "normal" data reconstructs normal images well and others badly, so
the reconstruction error (or the negative ELBO, which adds the KL of the code) is an
anomaly score. Two setups: one-class (train on one digit, the other nine are anomalies) and
cross-data-set (MNIST normal, Fashion-MNIST anomalous). A PCA reconstruction error, fitted on
the same normal training images, is the linear baseline beside it.

Dividing the squared error by the image's edge length (its total variation, "recon-edge")
removes most of the error's dependence on how much there is to draw: trained on 8s, the plain
error passes 1s as normal (little ink, little to get wrong). On one-class MNIST (full test set)
the shipped one-class AEs reach a mean AUROC of 0.989 per edge against 0.967 by plain error
(PCA: 0.981 and 0.956), measured by ``benchmarks/anomaly.py``. The app's held-out-digit
models are shipped for the default digit and otherwise trained in the background
(:func:`core.app.jobs.start_held_out`) and kept in the user checkpoints (:func:`load_held_out`).

Scores are numpy arrays (N,), higher = more anomalous; curves and AUROC come from
``sklearn.metrics``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from core.data.registry import Dataset
from core.formats.checkpoints import Checkpoint, CheckpointError
from core.lenses.denoise import fit_pca, pca_reconstruct
from core.models.config import ModelConfig
from core.models.evaluate import elbo_terms
from core.models.networks import AutoEncoder
from core.models.protocol import LatentModel
from core.training.train import Callback, History, TrainConfig, train_model

SCORES = ("recon-mse", "recon-edge", "recon-nll", "elbo")
SCORE_TITLES = {
    "recon-mse": "reconstruction error (MSE)",
    "recon-edge": "reconstruction error per unit of edge (SSE / total variation)",
    "recon-nll": "reconstruction −log p(x|z=μ) (nats)",
    "elbo": "negative ELBO (nats)",
}

# ---------------------------------------------------------------- scores


@torch.inference_mode()
def anomaly_scores(
    model: LatentModel,
    x: np.ndarray,
    y: np.ndarray | None = None,
    kind: str = "recon-mse",
    samples: int = 1,
    seed: int = 0,
    batch_size: int = 1000,
) -> np.ndarray:
    """Per-example anomaly scores (N,) for images x (N, C, H, W) in [0, 1].

    kind:
        recon-mse: mean squared error per pixel of the reconstruction through the code mean.
        recon-edge: the squared error summed over pixels divided by the image's total variation
            (:func:`edge_length`): the error per unit of stroke outline, so that a simple image
            (a 1) is not passed as normal only because it has little ink to get wrong.
        recon-nll: the decoder's -log p(x | z = μ) in nats (BCE summed over pixels for a
            Bernoulli decoder).
        elbo: the negative ELBO in nats, -log p(x|z) for z ~ q(z|x) averaged over ``samples``
            draws (seeded) plus KL(q(z|x) || p(z)); VAEs only (an AE has no ELBO).
    y: labels, used only by a conditional VAE.
    """
    if kind not in SCORES:
        raise ValueError(f"unknown score {kind!r}; choose one of {SCORES}")
    if kind == "elbo" and not model.is_variational:
        raise ValueError("the ELBO score needs a VAE; a deterministic AE has no ELBO (use a reconstruction score)")
    if samples < 1:
        raise ValueError(f"samples must be ≥ 1, got {samples}")
    device = model.device
    x_t = torch.as_tensor(np.asarray(x, np.float32))
    y_t = torch.as_tensor(np.asarray(y)).long() if (y is not None and model.conditional) else None
    gen = torch.Generator(device=device).manual_seed(seed)
    out = []
    for start in range(0, len(x_t), batch_size):
        xb = x_t[start : start + batch_size].to(device)
        yb = y_t[start : start + batch_size].to(device) if y_t is not None else None
        if kind in ("recon-mse", "recon-edge"):
            recon = model.decode(model.encode(xb, yb)[0], yb)
            err = (recon - xb).pow(2).flatten(1)
            out.append((err.mean(1) if kind == "recon-mse" else err.sum(1) / _edges(xb)).cpu())
        elif kind == "recon-nll":
            out.append(elbo_terms(model, xb, yb, sample=False)[0].cpu())
        else:
            total = torch.zeros(len(xb), dtype=torch.float64, device=device)
            for _ in range(samples):
                recon, kl = elbo_terms(model, xb, yb, gen)
                total += recon.double()
            out.append((total / samples + kl.double()).float().cpu())
    return torch.cat(out).numpy() if out else np.zeros(0, np.float32)


def _edges(x: torch.Tensor) -> torch.Tensor:
    """(B,) total variation of images (B, C, H, W), at least 1 (see :func:`edge_length`)."""
    tv = (x[..., 1:, :] - x[..., :-1, :]).abs().flatten(1).sum(1) + (x[..., 1:] - x[..., :-1]).abs().flatten(1).sum(1)
    return tv.clamp_min(1.0)


def edge_length(x: np.ndarray) -> np.ndarray:
    """(N,) the total variation of images (N, C, H, W) in [0, 1]: the summed absolute difference
    of neighbouring pixels, down and across (for a white stroke on black, about twice its outline
    length in pixels; at least 1). A cheap measure of an image's complexity (Serrà et al. 2020
    use a compressor's code length for the same purpose)."""
    return _edges(torch.as_tensor(np.asarray(x, np.float32))).numpy()


def pca_scores(
    train_x: np.ndarray, x: np.ndarray, n_components: int = 32, seed: int = 0, per_edge: bool = False
) -> np.ndarray:
    """The linear baseline: MSE per pixel of each image's reconstruction (N,) from a PCA with
    ``n_components`` fitted on the normal training images ``train_x``; with ``per_edge``, the
    squared error summed over pixels per unit of edge, as the "recon-edge" score."""
    err = _pca_errors(train_x, x, n_components, seed)
    return err.sum(1) / edge_length(x) if per_edge else err.mean(1)


def _pca_errors(train_x: np.ndarray, x: np.ndarray, n_components: int, seed: int) -> np.ndarray:
    """(N, D) squared errors of each image's PCA reconstruction (PCA fitted on ``train_x``)."""
    pca = fit_pca(train_x, n_components, seed=seed)
    x = np.asarray(x, np.float32)
    return ((pca_reconstruct(pca, x) - x) ** 2).reshape(len(x), -1)


# ---------------------------------------------------------------- ROC and thresholds


@dataclass
class RocCurve:
    """fpr, tpr: (T,) the ROC curve; thresholds: (T,) score cut-offs; auroc in [0, 1]."""

    fpr: np.ndarray
    tpr: np.ndarray
    thresholds: np.ndarray
    auroc: float


def _check(scores: np.ndarray, is_anomaly: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    scores, is_anomaly = np.asarray(scores, np.float64), np.asarray(is_anomaly, bool)
    if scores.shape != is_anomaly.shape or scores.ndim != 1:
        raise ValueError(f"scores and labels must be (N,) of the same length, got {scores.shape}, {is_anomaly.shape}")
    if is_anomaly.all() or not is_anomaly.any():
        raise ValueError("a ROC curve needs both normal and anomalous examples")
    if not np.isfinite(scores).all():
        raise ValueError("scores hold NaN or inf")
    return scores, is_anomaly


def roc(scores: np.ndarray, is_anomaly: np.ndarray) -> RocCurve:
    """ROC curve and AUROC (scikit-learn) of scores (N,) against boolean labels (N,)."""
    from sklearn.metrics import roc_auc_score, roc_curve

    scores, is_anomaly = _check(scores, is_anomaly)
    fpr, tpr, thr = roc_curve(is_anomaly, scores)
    return RocCurve(fpr=fpr, tpr=tpr, thresholds=thr, auroc=float(roc_auc_score(is_anomaly, scores)))


def auroc(scores: np.ndarray, is_anomaly: np.ndarray) -> float:
    """Area under the ROC curve: the chance that a random anomaly outscores a random normal."""
    from sklearn.metrics import roc_auc_score

    scores, is_anomaly = _check(scores, is_anomaly)
    return float(roc_auc_score(is_anomaly, scores))


def most_anomalous(scores: np.ndarray, k: int = 16) -> np.ndarray:
    """Indices (k,) of the k highest scores, highest first (ties keep index order)."""
    scores = np.asarray(scores)
    return np.argsort(-scores, kind="stable")[: max(0, k)]


@dataclass
class ThresholdStats:
    """What flagging ``score > threshold`` as anomalous gives; counts and rates in [0, 1]."""

    threshold: float
    tp: int
    fp: int
    tn: int
    fn: int
    precision: float
    recall: float  # true-positive rate: anomalies caught
    fpr: float  # normal examples flagged
    f1: float
    accuracy: float

    def to_dict(self) -> dict:
        return asdict(self)


def threshold_stats(scores: np.ndarray, is_anomaly: np.ndarray, threshold: float) -> ThresholdStats:
    """Confusion counts, precision and recall at one threshold (flag score > threshold).

    An empty prediction has precision 1 by convention (no false alarms), so a slider swept to
    the top does not show a jump to 0.
    """
    scores, is_anomaly = np.asarray(scores, np.float64), np.asarray(is_anomaly, bool)
    flagged = scores > threshold
    tp = int(np.sum(flagged & is_anomaly))
    fp = int(np.sum(flagged & ~is_anomaly))
    fn = int(np.sum(~flagged & is_anomaly))
    tn = int(np.sum(~flagged & ~is_anomaly))
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return ThresholdStats(
        threshold=float(threshold),
        tp=tp,
        fp=fp,
        tn=tn,
        fn=fn,
        precision=precision,
        recall=recall,
        fpr=fp / (fp + tn) if fp + tn else 0.0,
        f1=f1,
        accuracy=(tp + tn) / max(1, len(scores)),
    )


@dataclass(frozen=True)
class ThresholdScale:
    """A threshold slider's range over a set of scores, in steps of ``step`` (every value, the
    ends too, a whole number of steps), in the scores' own unit."""

    lo: float
    hi: float
    step: float

    def snap(self, value: float) -> float:
        """``value`` on the grid, within the ends."""
        return min(self.hi, max(self.lo, round(value / self.step) * self.step))

    def admits(self, value: float) -> bool:
        """Within the ends, with half a step of slack for the rounding of :meth:`link`."""
        return self.lo - self.step / 2 <= value <= self.hi + self.step / 2

    @staticmethod
    def link(value: float) -> str:
        """The threshold as a URL holds it: six significant digits, enough to find its step again."""
        return f"{value:.6g}"


def threshold_scale(scores: np.ndarray, steps: int = 400) -> ThresholdScale:
    """The scores' range widened to whole steps, about ``steps`` of them (two significant digits)."""
    lo, hi = float(np.min(scores)), float(np.max(scores))
    hi = max(hi, lo + 1e-6)  # a slider needs a range
    step = float(f"{(hi - lo) / steps:.2g}") or 1e-6
    return ThresholdScale(float(np.floor(lo / step) * step), float(np.ceil(hi / step) * step), step)


# ---------------------------------------------------------------- setups


@dataclass
class AnomalySplit:
    """A detection task.

    train_x: (M, C, H, W) normal training images (what a model is trained on).
    normal_test_x: (K, C, H, W) held-out normal images (for a model's per-epoch test loss).
    test_x: (N, C, H, W) the images to score; is_anomaly: (N,) bool.
    test_labels: (N,) the original class of each test image (for captions), or None.
    """

    name: str
    train_x: np.ndarray
    normal_test_x: np.ndarray
    test_x: np.ndarray
    is_anomaly: np.ndarray
    test_labels: np.ndarray | None
    description: str

    def train_dataset(self) -> Dataset:
        """The normal data as a :class:`Dataset`, ready for :func:`core.training.train.train_model`."""
        return Dataset(
            name=self.name,
            source="derived",
            source_note=self.description,
            train_x=self.train_x,
            test_x=self.normal_test_x,
        )


def _class_title(dataset: Dataset, cls: int, purpose: str) -> str:
    """The name of class ``cls``, after checking the data set has labels and that class."""
    if dataset.train_y is None or dataset.test_y is None:
        raise ValueError(f"{dataset.name} has no labels; {purpose} needs them")
    if not 0 <= cls < max(dataset.num_classes, int(dataset.train_y.max()) + 1):
        raise ValueError(f"class {cls} is out of range for {dataset.name}")
    names = dataset.class_names or ()
    return names[cls] if cls < len(names) else str(cls)


def one_class_split(dataset: Dataset, normal_class: int) -> AnomalySplit:
    """Train on one class of ``dataset``; test on its whole test split, the other classes
    being anomalies (the usual one-class MNIST protocol, e.g. Ruff et al. 2018)."""
    title = _class_title(dataset, normal_class, "a one-class split")
    normal_test = dataset.test_y == normal_class
    return AnomalySplit(
        name=f"{dataset.name}-one-class-{normal_class}",
        train_x=dataset.train_x[dataset.train_y == normal_class],
        normal_test_x=dataset.test_x[normal_test],
        test_x=dataset.test_x,
        is_anomaly=~normal_test,
        test_labels=dataset.test_y.copy(),
        description=f"{dataset.name}: class {title} is normal, the other classes are anomalies",
    )


def held_out_split(dataset: Dataset, anomalous_class: int) -> AnomalySplit:
    """Leave one class out: train on every other class of ``dataset``; test on its whole test
    split, the left-out class being the anomalies (the reverse of :func:`one_class_split`)."""
    title = _class_title(dataset, anomalous_class, "leaving a class out")
    anomalous_test = dataset.test_y == anomalous_class
    return AnomalySplit(
        name=f"{dataset.name}-without-{anomalous_class}",
        train_x=dataset.train_x[dataset.train_y != anomalous_class],
        normal_test_x=dataset.test_x[~anomalous_test],
        test_x=dataset.test_x,
        is_anomaly=anomalous_test,
        test_labels=dataset.test_y.copy(),
        description=f"{dataset.name} without class {title}: the other classes are normal, {title} is the anomaly",
    )


HELD_OUT_MODEL = {"arch": "mlp", "latent_dim": 8, "hidden": (256,)}
HELD_OUT_TRAIN = {"epochs": 10, "batch_size": 128, "lr": 2e-3, "seed": 0}
# Measured by benchmarks/anomaly.py: 42 s to train (10 epochs on the 4,500 offline digits but one, one
# thread of a 2-core machine busy with other jobs) and 7 s to score the 10,000 test images.
HELD_OUT_SECONDS = 60
HELD_OUT_SUBDIR = "anomaly"  # held-out models trained in the app: a folder in the user checkpoints


def fit_on_split(
    split: AnomalySplit, kind: str = "vae", callbacks: list[Callback] | None = None, **train
) -> tuple[AutoEncoder, History, TrainConfig]:
    """Train a small MLP autoencoder (``kind`` "vae" or "ae", :data:`HELD_OUT_MODEL`) on a
    split's normal training images, on the CPU, seeded (about 90 s for the 4,500 offline digits
    other than one on one core: ``benchmarks/anomaly.py`` measures it).

    train: overrides of :data:`HELD_OUT_TRAIN` (epochs, batch_size, lr, seed). callbacks:
    :class:`core.training.train.Callback` objects (a progress bar). Returns the model, its history and
    the training config used.
    """
    if kind not in ("vae", "ae"):
        raise ValueError(f"kind must be 'vae' or 'ae', got {kind!r}")
    data = split.train_dataset()
    mcfg = ModelConfig(kind=kind, image_shape=data.image_shape, **HELD_OUT_MODEL)
    tcfg = TrainConfig(**{**HELD_OUT_TRAIN, **train}, device="cpu")
    model, history = train_model(mcfg, data, tcfg, callbacks)
    return model, history, tcfg


def train_on_split(
    split: AnomalySplit, kind: str = "vae", callbacks: list[Callback] | None = None, **train
) -> AutoEncoder:
    """:func:`fit_on_split`'s model alone."""
    return fit_on_split(split, kind, callbacks, **train)[0]


def held_out_name(data_name: str, digit: int) -> str:
    """The checkpoint name of the held-out model of ``digit`` trained on ``data_name``
    ("mnist-without-5-vae-mlp-z8"): shipped ones in ``checkpoints/``, the app's own under
    ``HELD_OUT_SUBDIR`` of the user checkpoints."""
    return f"{data_name}-without-{int(digit)}-vae-{HELD_OUT_MODEL['arch']}-z{HELD_OUT_MODEL['latent_dim']}"


def held_out_digit(meta: dict) -> int | None:
    """The digit a checkpoint's JSON says its model never saw, or None: ``held_out`` (the app's
    own models) or a manifest entry's ``classes`` that lists every digit but one (shipped)."""
    if isinstance(meta.get("held_out"), int):
        return meta["held_out"]
    classes = (meta.get("manifest_entry") or {}).get("classes")
    missing = set(range(10)) - set(classes or range(10))
    return missing.pop() if classes and len(missing) == 1 else None


def held_out_recipe(digit: int, n_train: int, epochs: int) -> str:
    """The held-out model of ``digit`` in words, for the page."""
    hidden, latent = HELD_OUT_MODEL["hidden"][0], HELD_OUT_MODEL["latent_dim"]
    return (
        f"a VAE (MLP, {hidden} hidden units, latent {latent}) trained for {epochs} epochs on the "
        f"{n_train:,} MNIST training digits that are not {digit}"
    )


def held_out_paths(digit: int, shipped: Path, user: Path, data_name: str) -> list[Path]:
    """Where a held-out model of ``digit`` may already be, in the order to try: shipped (trained
    on full MNIST), then trained by the app on ``data_name`` under the user checkpoints."""
    return [shipped / held_out_name("mnist", digit), user / HELD_OUT_SUBDIR / held_out_name(data_name, digit)]


ONE_CLASS_MODEL = {"kind": "ae", "arch": "mlp", "latent_dim": 16, "hidden": (256,)}  # shipped, one per digit


def one_class_name(digit: int) -> str:
    """The shipped one-class model of ``digit``, trained on MNIST's training images of that digit
    only ("mnist-only-8-ae-mlp-z16"); ``benchmarks/anomaly.py`` measures all ten."""
    m = ONE_CLASS_MODEL
    return f"mnist-only-{int(digit)}-{m['kind']}-{m['arch']}-z{m['latent_dim']}"


def load_one_class(path: Path, digit: int) -> Checkpoint | None:
    """The one-class model of ``digit`` at ``path`` (no suffix), or None when absent;
    CheckpointError when it is broken or not trained on that digit alone."""
    from core.formats.checkpoints import load_checkpoint

    path = Path(path)
    if not path.with_name(path.name + ".json").is_file():
        return None
    ckpt = load_checkpoint(path)
    if (ckpt.meta.get("manifest_entry") or {}).get("classes") != [digit]:
        raise CheckpointError(f"{path}: not a model of the {digit}s alone")
    return ckpt


def load_held_out(path: Path, digit: int) -> Checkpoint | None:
    """The held-out model of ``digit`` saved at ``path`` (a checkpoint path without suffix), or
    None when there is none. CheckpointError when the files are there but unusable: broken,
    another digit, or another recipe than :data:`HELD_OUT_MODEL` (then it is trained again)."""
    from core.formats.checkpoints import load_checkpoint

    path = Path(path)
    if not path.with_name(path.name + ".json").is_file():
        return None
    ckpt = load_checkpoint(path)
    cfg = ckpt.config
    recipe = (cfg.kind, cfg.arch, cfg.latent_dim, tuple(cfg.hidden))
    if recipe != ("vae", *HELD_OUT_MODEL.values()) or held_out_digit(ckpt.meta) != digit:
        raise CheckpointError(f"{path}: not the held-out model of digit {digit} ({cfg.kind}, {cfg.arch})")
    return ckpt


def cross_dataset_split(
    normal: Dataset, anomalous: Dataset, max_per_side: int | None = None, seed: int = 0
) -> AnomalySplit:
    """Train on ``normal``; test on both test splits, ``anomalous`` being the anomalies.

    max_per_side: take at most this many test images from each (at random, seeded).
    test_labels: 0 for normal, 1 for anomalous images.
    """
    if normal.image_shape != anomalous.image_shape:
        raise ValueError(f"image shapes differ: {normal.image_shape} vs {anomalous.image_shape}")
    rng = np.random.default_rng(seed)

    def take(x: np.ndarray) -> np.ndarray:
        if max_per_side is None or len(x) <= max_per_side:
            return x
        return x[np.sort(rng.choice(len(x), max_per_side, replace=False))]

    a, b = take(normal.test_x), take(anomalous.test_x)
    is_anomaly = np.concatenate([np.zeros(len(a), bool), np.ones(len(b), bool)])
    return AnomalySplit(
        name=f"{normal.name}-vs-{anomalous.name}",
        train_x=normal.train_x,
        normal_test_x=normal.test_x,
        test_x=np.concatenate([a, b]),
        is_anomaly=is_anomaly,
        test_labels=is_anomaly.astype(np.int64),
        description=f"{normal.name} is normal, {anomalous.name} is anomalous",
    )


@dataclass
class DetectionReport:
    """Scores and ROC curves of several detectors on one split: {name: (N,)}, {name: RocCurve}."""

    scores: dict[str, np.ndarray]
    curves: dict[str, RocCurve]

    @property
    def auroc(self) -> dict[str, float]:
        return {k: c.auroc for k, c in self.curves.items()}


def detect(
    model: LatentModel | None,
    split: AnomalySplit,
    kinds: tuple[str, ...] = ("recon-mse", "elbo"),
    pca_components: int | None = 32,
    seed: int = 0,
) -> DetectionReport:
    """Score a split with a model (each score in ``kinds``; "elbo" is skipped for an AE)
    and, unless ``pca_components`` is None, the PCA baseline ("pca"; "pca-edge" too, the
    same per unit of edge, when "recon-edge" is in ``kinds``)."""
    scores: dict[str, np.ndarray] = {}
    if model is not None:
        for kind in kinds:
            if kind == "elbo" and not model.is_variational:
                continue
            scores[kind] = anomaly_scores(model, split.test_x, kind=kind, seed=seed)
    if pca_components:
        err = _pca_errors(split.train_x, split.test_x, pca_components, seed)
        scores["pca"] = err.mean(1)
        if "recon-edge" in kinds:
            scores["pca-edge"] = err.sum(1) / edge_length(split.test_x)
    return DetectionReport(scores=scores, curves={k: roc(s, split.is_anomaly) for k, s in scores.items()})
