"""Anomalies in tables: an autoencoder's reconstruction error on rows, beside the classical
detectors a practitioner tries first.

The seed talk's fraud example: an autoencoder trained on normal rows only (a Gaussian likelihood
on standardised features, ``likelihood="gaussian-real"``) rebuilds normal rows well and anomalous
ones badly, so the reconstruction error is an anomaly score. The baselines, all scikit-learn,
each tuned on the validation split (its AUROC there picks the hyper-parameters; the test split
is scored once): Isolation Forest (Liu et al. 2008), the one-class SVM (Schölkopf et al. 2001),
the local outlier factor (Breunig et al. 2000, ``novelty=True``) and the reconstruction error
of a PCA. Each baseline is one :class:`Baseline` spec in :data:`BASELINES`.

Shapes: rows are (n, F) float32, standardised (:mod:`core.data.tables`); scores (n,), higher =
more anomalous.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from core.data.registry import table_dataset
from core.data.tables import TableSplit
from core.experiments.anomaly import RocCurve, anomaly_scores, auroc, roc
from core.models.config import REAL_VALUED, ModelConfig
from core.models.networks import AutoEncoder
from core.training.train import Callback, History, TrainConfig, train_model

SCORES = {"recon-mse": "Reconstruction error", "recon-nll": "−log p(x|z)", "elbo": "−ELBO"}
FIT_ROWS_MOST = {"ocsvm": 5_000, "lof": 20_000, "iforest": 100_000, "pca": 200_000}  # rows a baseline fits on
SHIPPED_TABLE_MODEL = "breast-cancer-vae-mlp-z7"  # checkpoints/: the bundled table's benign rows (manifest)
TARGET_STEPS = 3_000  # the table model trains for about this many optimizer steps, whatever the rows


# ---------------------------------------------------------------- the model


def table_model_config(n_features: int, kind: str = "vae") -> ModelConfig:
    """The MLP of the family for F features: two hidden layers, a code a quarter of F wide (2..8)."""
    if kind not in ("vae", "ae"):
        raise ValueError(f"kind must be 'vae' or 'ae', got {kind!r}")
    width = int(min(256, max(32, 4 * n_features)))
    return ModelConfig(
        kind=kind,
        arch="mlp",
        image_shape=(1, 1, n_features),
        latent_dim=int(min(8, max(2, n_features // 4))),
        hidden=(width, width // 2),
        likelihood=REAL_VALUED,
    )


def table_train_config(n_rows: int, **overrides) -> TrainConfig:
    """Batch 32 for small tables, 256 for large; epochs to make about :data:`TARGET_STEPS` steps."""
    batch = 32 if n_rows < 5_000 else 256
    epochs = int(min(500, max(3, math.ceil(TARGET_STEPS / max(1, math.ceil(n_rows / batch))))))
    return TrainConfig(**{"epochs": epochs, "batch_size": batch, "lr": 1e-3, "seed": 0, **overrides}, device="cpu")


def fit_table_model(
    split: TableSplit, kind: str = "vae", callbacks: list[Callback] | None = None, **train
) -> tuple[AutoEncoder, History, TrainConfig]:
    """Train :func:`table_model_config` on the split's training rows (seeded, on the CPU).
    train: overrides of :func:`table_train_config` (tests shorten the run)."""
    data = table_dataset(split, anomalies_in_test=False)  # the test loss of normal rows
    tcfg = table_train_config(len(split.train_x), **train)
    model, history = train_model(table_model_config(len(split.features), kind), data, tcfg, callbacks)
    return model.eval(), history, tcfg


@torch.inference_mode()
def reconstruct_rows(model: AutoEncoder, x: np.ndarray) -> np.ndarray:
    """(n, F) standardised rows -> (n, F) their reconstruction through the code mean."""
    xt = torch.as_tensor(np.asarray(x, np.float32))[:, None, None, :]
    return model.decode(model.encode(xt)[0]).reshape(len(x), -1).numpy()


def model_scores(model: AutoEncoder, x: np.ndarray) -> dict[str, np.ndarray]:
    """{score: (n,)} for rows (n, F): the mean squared error over features, and the −ELBO (a VAE)."""
    xi = np.asarray(x, np.float32)[:, None, None, :]
    kinds = [k for k in SCORES if k != "elbo" or model.is_variational]
    return {k: anomaly_scores(model, xi, kind=k) for k in kinds}


# ---------------------------------------------------------------- the baselines


@dataclass(frozen=True)
class Baseline:
    """A classical detector: ``make(**params)`` fits on normal rows and returns a scorer of rows;
    ``grid`` lists the hyper-parameters tried (the validation AUROC picks one)."""

    name: str
    title: str
    short: str  # for a narrow label
    grid: dict[str, tuple]
    make: Callable[..., Callable[[np.ndarray], np.ndarray]] = field(repr=False)


def _iforest(train: np.ndarray, max_samples: int, seed: int = 0):
    from sklearn.ensemble import IsolationForest

    f = IsolationForest(n_estimators=200, max_samples=min(max_samples, len(train)), random_state=seed).fit(train)
    return lambda x: -f.score_samples(x)


def _ocsvm(train: np.ndarray, nu: float, gamma: float, seed: int = 0):
    from sklearn.svm import OneClassSVM

    f = OneClassSVM(nu=nu, gamma=gamma / train.shape[1]).fit(train)  # gamma in units of 1/F (scikit's "scale")
    return lambda x: -f.score_samples(x)


def _lof(train: np.ndarray, n_neighbors: int, seed: int = 0):
    from sklearn.neighbors import LocalOutlierFactor

    f = LocalOutlierFactor(n_neighbors=min(n_neighbors, len(train) - 1), novelty=True).fit(train)
    return lambda x: -f.score_samples(x)


def _pca(train: np.ndarray, n_components: int, seed: int = 0):
    from sklearn.decomposition import PCA

    f = PCA(n_components=min(n_components, train.shape[1] - 1, len(train) - 1), random_state=seed).fit(train)
    return lambda x: ((f.inverse_transform(f.transform(x)) - x) ** 2).mean(1)


BASELINES: dict[str, Baseline] = {
    b.name: b
    for b in (
        Baseline("iforest", "Isolation Forest", "Isolation Forest", {"max_samples": (64, 256, 1024)}, _iforest),
        Baseline("ocsvm", "One-class SVM", "One-class SVM", {"nu": (0.05, 0.2), "gamma": (0.1, 1.0)}, _ocsvm),
        Baseline("lof", "Local outlier factor", "LOF", {"n_neighbors": (10, 35)}, _lof),
        Baseline("pca", "PCA reconstruction", "PCA", {"n_components": (1, 2, 4, 8)}, _pca),
    )
}


@dataclass
class BaselineResult:
    """A tuned baseline: its chosen ``params``, validation AUROC (NaN without labels) and test scores (n,)."""

    name: str
    title: str
    short: str
    params: dict
    val_auroc: float
    scores: np.ndarray


def tune_baseline(spec: Baseline, split: TableSplit, seed: int = 0) -> BaselineResult:
    """Fit ``spec`` for each point of its grid on (up to :data:`FIT_ROWS_MOST`) training rows and keep
    the one with the best validation AUROC; without labels, the grid's middle point."""
    rng = np.random.default_rng(seed)
    train = split.train_x
    if len(train) > FIT_ROWS_MOST[spec.name]:
        train = train[rng.choice(len(train), FIT_ROWS_MOST[spec.name], replace=False)]
    grid = [dict(zip(spec.grid, values, strict=True)) for values in itertools.product(*spec.grid.values())]
    if not split.labelled:
        params = grid[len(grid) // 2]
        scores = spec.make(train, **params, seed=seed)(split.test_x)
        return BaselineResult(spec.name, spec.title, spec.short, params, math.nan, scores)
    best: tuple[float, dict, Callable] | None = None
    for params in grid:
        scorer = spec.make(train, **params, seed=seed)
        score = auroc(scorer(split.val_x), split.val_anomaly)
        if best is None or score > best[0]:
            best = (score, params, scorer)
    return BaselineResult(spec.name, spec.title, spec.short, best[1], best[0], best[2](split.test_x))


# ---------------------------------------------------------------- the report


@dataclass
class TableReport:
    """Every detector's test scores {name: (n,)} (the model's under :data:`SCORES` names, the
    baselines' under theirs), their ROC curves (labelled tables only) and the tuned baselines."""

    scores: dict[str, np.ndarray]
    curves: dict[str, RocCurve]
    baselines: dict[str, BaselineResult]
    val_auroc: dict[str, float]

    @property
    def auroc(self) -> dict[str, float]:
        return {k: c.auroc for k, c in self.curves.items()}

    def best_baseline(self) -> str | None:
        """The baseline with the highest test AUROC (None without labels)."""
        return max(self.baselines, key=lambda b: self.auroc[b]) if self.curves else None


def score_table(
    model: AutoEncoder | None, split: TableSplit, baselines: tuple[str, ...] = tuple(BASELINES), seed: int = 0,
    on_baseline: Callable[[str], None] | None = None,
) -> TableReport:  # fmt: skip
    """Score the split's test rows with the model (None: baselines only) and each tuned baseline;
    ``on_baseline(title)`` is called before each baseline is tuned (a progress line)."""
    scores = model_scores(model, split.test_x) if model is not None else {}
    val_auroc = {}
    if model is not None and split.labelled:
        val = model_scores(model, split.val_x)
        val_auroc = {k: auroc(s, split.val_anomaly) for k, s in val.items()}
    tuned = {}
    for name in baselines:
        if on_baseline is not None:
            on_baseline(BASELINES[name].title)
        tuned[name] = tune_baseline(BASELINES[name], split, seed)
        scores[name], val_auroc[name] = tuned[name].scores, tuned[name].val_auroc
    curves = {k: roc(s, split.test_anomaly) for k, s in scores.items()} if split.labelled else {}
    return TableReport(scores, curves, tuned, val_auroc)


@dataclass
class RowExplanation:
    """Why a row scores high: its features ranked by squared error (standardised units), with the
    row's value and its reconstruction in the file's units."""

    row: int  # the file's row number
    features: list[tuple[str, float, float, float]]  # (name, value, reconstruction, share of the error)


def explain_rows(model: AutoEncoder, split: TableSplit, index: np.ndarray, top: int = 3) -> list[RowExplanation]:
    """For test rows ``index`` (k,): the ``top`` features that contribute most to each one's error."""
    x = split.test_x[index]
    recon = reconstruct_rows(model, x)
    err = (recon - x) ** 2
    raw, raw_recon = split.scaler.invert(x), split.scaler.invert(recon)
    out = []
    for i in range(len(index)):
        order = np.argsort(-err[i], kind="stable")[:top]
        total = float(err[i].sum()) or 1.0
        feats = [(split.features[j], float(raw[i, j]), float(raw_recon[i, j]), float(err[i, j]) / total) for j in order]
        out.append(RowExplanation(int(split.test_rows[index[i]]), feats))
    return out
