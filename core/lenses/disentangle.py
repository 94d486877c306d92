"""Disentanglement scores: how well a code's dimensions line up with known generative factors.

On data whose factors of variation are known (:mod:`core.data.sprites`: shape, hue, scale, x, y,
rotation), one can ask of a VAE's codes whether each factor lives in one code dimension and each
dimension carries one factor. Two standard scores answer it, both written here once on numpy and
scikit-learn (there is no maintained package: disentanglement_lib is TensorFlow 1 and archived).

- **MIG**, the mutual information gap (Chen et al., 2018, "Isolating Sources of Disentanglement
  in VAEs"): for each factor, the gap between the code dimension that shares the most mutual
  information (MI) with it and the runner-up, divided by the factor's entropy; averaged over the
  factors. 1: every factor sits in one dimension alone; 0: its two best dimensions know it equally
  (a factor split over two dimensions, or a rotated code). :func:`mig`.
- **DCI** (Eastwood & Williams, 2018, "A Framework for the Quantitative Evaluation of
  Disentangled Representations"): one classifier per factor predicts the factor from the whole
  code, and its feature importances fill a (D, K) importance matrix. *Disentanglement*: per code
  dimension, 1 − the entropy (base K) of its importances over the factors, weighted by the
  dimension's share of all importance (does each dimension serve one factor?). *Completeness*: per
  factor, 1 − the entropy (base D) of its importances over the dimensions (is each factor served by
  one dimension?), weighted by the factor's share of importance; the importances of each classifier
  sum to 1, so the weights are equal and this is the plain mean. *Informativeness*: the classifiers'
  mean accuracy on held-out codes (is the factor in the code at all?). :func:`dci`.

Caveat (Locatello et al., 2019, "Challenging Common Assumptions in the Unsupervised Learning of
Disentangled Representations"): without supervision, these scores depend on the random seed and
the hyper-parameters as much as on β; compare models over several seeds before crediting β.

Shapes and units: ``codes`` (N, D) float, the posterior means; ``factors`` (N, K) float, the true
factor values (categorical indices or values on a grid, like ``sprites.to_levels`` or the factors
themselves). MI and entropies are in nats. Nothing here imports torch or Streamlit.

Choices:

- Factors are discrete for MI and for the classifiers: a factor with at most 50 distinct values
  keeps them (the sprites grid: 3 to 16 levels); a finer one is cut into ``bins`` equal-frequency
  bins. Circular factors (hue, rotation) need nothing special: binning ignores the order of levels.
- Codes are cut into ``bins`` (20) equal-width bins over each dimension's range, as in
  disentanglement_lib's ``_histogram_discretize``; MI is ``sklearn.metrics.mutual_info_score`` on the
  bin labels. It is a plug-in estimate with a small positive bias (about (bins − 1)(levels − 1) / 2N
  nats), so an unrelated dimension shows a few hundredths of a nat, not 0.
- A constant factor has no entropy: MIG leaves it out (NaN in ``per_factor``), DCI leaves it out of
  completeness and informativeness (its importance column is 0, its accuracy NaN).
- DCI's classifier is ``ExtraTreesClassifier(50 trees, max_depth=8, min_samples_leaf=10,
  max_features=None)``, a randomised forest (Geurts et al., 2006; Eastwood & Williams used random
  forests and lasso). disentanglement_lib's gradient boosting takes about 10 s for N = 5,000, D = 10,
  K = 6 at 20 trees on two cores; this takes under a second. Its impurity importances also leak
  less to noise dimensions than a bootstrap random forest's, because with random thresholds over
  all features the informative dimension wins almost every split.
- :func:`factor_of_dims` and :func:`dims_of_factors` turn an MI or importance matrix into labels
  for sliders: "z3 ≈ x" when dimension 3 mostly carries x and is x's best dimension.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.stats import entropy
from sklearn.ensemble import ExtraTreesClassifier
from sklearn.metrics import mutual_info_score

MAX_LEVELS = 50  # a factor with more distinct values than this is binned
DEFAULT_BINS = 20


# ---------------------------------------------------------------- discretising and mutual information


def _checked(codes: np.ndarray, factors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """codes (N, D), factors (N, K) or (N,) -> float64 2-D arrays, or a ValueError that says what is wrong."""
    codes = np.asarray(codes, dtype=np.float64)
    factors = np.asarray(factors, dtype=np.float64)
    if factors.ndim == 1:
        factors = factors[:, None]
    if codes.ndim != 2 or factors.ndim != 2:
        raise ValueError(f"codes must be (N, D) and factors (N, K), got {codes.shape} and {factors.shape}")
    if codes.shape[0] != factors.shape[0] or codes.shape[0] < 2:
        raise ValueError(f"codes and factors need the same N ≥ 2 rows, got {codes.shape[0]} and {factors.shape[0]}")
    if not (np.isfinite(codes).all() and np.isfinite(factors).all()):
        raise ValueError("codes and factors must be finite (no NaN or inf)")
    return codes, factors


def discretize_codes(codes: np.ndarray, bins: int = DEFAULT_BINS) -> np.ndarray:
    """codes (N, D) -> (N, D) int bin labels: ``bins`` equal-width bins over each dimension's range."""
    codes = np.asarray(codes, dtype=np.float64)
    out = np.empty(codes.shape, dtype=np.int64)
    for d in range(codes.shape[1]):
        edges = np.histogram_bin_edges(codes[:, d], bins=bins)
        out[:, d] = np.digitize(codes[:, d], edges[1:-1])  # 0 .. bins-1; the maximum lands in the last bin
    return out


def discretize_factors(factors: np.ndarray, bins: int = DEFAULT_BINS) -> np.ndarray:
    """factors (N, K) -> (N, K) int labels 0..L-1: the distinct values when there are at most
    :data:`MAX_LEVELS` of them, otherwise ``bins`` equal-frequency bins."""
    factors = np.asarray(factors, dtype=np.float64)
    factors = factors[:, None] if factors.ndim == 1 else factors
    out = np.empty(factors.shape, dtype=np.int64)
    for k in range(factors.shape[1]):
        column = factors[:, k]
        if np.unique(column).size > MAX_LEVELS:
            edges = np.quantile(column, np.linspace(0, 1, bins + 1)[1:-1])
            column = np.searchsorted(edges, column, side="right")
        out[:, k] = np.unique(column, return_inverse=True)[1]
    return out


def factor_entropy(factors: np.ndarray, bins: int = DEFAULT_BINS) -> np.ndarray:
    """(K,) entropy in nats of each factor, discretised as in :func:`discretize_factors`."""
    labels = discretize_factors(factors, bins)
    return np.array([entropy(np.bincount(labels[:, k])) for k in range(labels.shape[1])])


def mutual_info_matrix(codes: np.ndarray, factors: np.ndarray, bins: int = DEFAULT_BINS) -> np.ndarray:
    """(K, D) mutual information in nats between each factor and each code dimension.

    Factors are discretised by :func:`discretize_factors`, codes by :func:`discretize_codes`.
    """
    codes, factors = _checked(codes, factors)
    f_labels, z_labels = discretize_factors(factors, bins), discretize_codes(codes, bins)
    mi = np.empty((factors.shape[1], codes.shape[1]))
    for k in range(mi.shape[0]):
        for d in range(mi.shape[1]):
            mi[k, d] = mutual_info_score(f_labels[:, k], z_labels[:, d])
    return np.maximum(mi, 0.0)  # mutual_info_score can return -1e-16


# ---------------------------------------------------------------- MIG


@dataclass(frozen=True)
class MigScore:
    """score: the mean gap over factors with entropy, in [0, 1] (NaN if every factor is constant).
    per_factor: (K,) (top MI − second MI) / H(factor), NaN for a constant factor.
    mi: (K, D) mutual information in nats. entropy: (K,) H(factor) in nats."""

    score: float
    per_factor: np.ndarray
    mi: np.ndarray
    entropy: np.ndarray

    @property
    def normalized_mi(self) -> np.ndarray:
        """(K, D) MI / H(factor), in [0, 1]; NaN rows for constant factors."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.entropy[:, None] > 0, self.mi / self.entropy[:, None], np.nan)


def mig(codes: np.ndarray, factors: np.ndarray, bins: int = DEFAULT_BINS) -> MigScore:
    """The mutual information gap (Chen et al., 2018) of codes (N, D) against factors (N, K)."""
    mi = mutual_info_matrix(codes, factors, bins)
    h = factor_entropy(np.asarray(factors), bins)
    top = np.sort(mi, axis=1)[:, ::-1]
    second = top[:, 1] if top.shape[1] > 1 else np.zeros(len(top))
    has_entropy = h > 1e-12
    per_factor = np.full(len(h), np.nan)
    per_factor[has_entropy] = (top[has_entropy, 0] - second[has_entropy]) / h[has_entropy]
    score = float(np.mean(per_factor[has_entropy])) if has_entropy.any() else float("nan")
    return MigScore(score=score, per_factor=per_factor, mi=mi, entropy=h)


# ---------------------------------------------------------------- DCI


@dataclass(frozen=True)
class DciScore:
    """disentanglement, completeness, informativeness: in [0, 1] (see the module docstring).
    importance: (D, K) each classifier's feature importances (a column sums to 1, or 0 for a constant
    factor). per_dim: (D,) each dimension's disentanglement (NaN where it has no importance).
    per_factor: (K,) each factor's completeness. accuracy: (K,) test accuracy per factor (NaN if constant)."""

    disentanglement: float
    completeness: float
    informativeness: float
    importance: np.ndarray
    per_dim: np.ndarray
    per_factor: np.ndarray
    accuracy: np.ndarray


def _classifier(seed: int) -> ExtraTreesClassifier:
    return ExtraTreesClassifier(
        n_estimators=50, max_depth=8, min_samples_leaf=10, max_features=None, n_jobs=1, random_state=seed
    )


def _fit_importances(
    z_train: np.ndarray, y_train: np.ndarray, z_test: np.ndarray, y_test: np.ndarray, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """One classifier per factor: importance (D, K) and test accuracy (K,); constant factors: 0 and NaN."""
    importance = np.zeros((z_train.shape[1], y_train.shape[1]))
    accuracy = np.full(y_train.shape[1], np.nan)
    for k in range(y_train.shape[1]):
        if np.unique(y_train[:, k]).size < 2:
            continue
        model = _classifier(seed).fit(z_train, y_train[:, k])
        importance[:, k] = np.abs(model.feature_importances_)
        accuracy[k] = model.score(z_test, y_test[:, k])
    return importance, accuracy


def _one_minus_entropy(weights: np.ndarray) -> np.ndarray:
    """Rows of non-negative weights (R, C) -> (R,) 1 − H(row / sum) / log C; NaN for an all-zero row."""
    rows, size = weights.shape
    out = np.full(rows, np.nan)
    for r in range(rows):
        if weights[r].sum() > 0:
            out[r] = 1.0 if size < 2 else 1.0 - entropy(weights[r], base=size)
    return out


def _weighted_mean(values: np.ndarray, weights: np.ndarray) -> float:
    keep = np.isfinite(values) & (weights > 0)
    return float(np.average(values[keep], weights=weights[keep])) if keep.any() else float("nan")


def dci(
    codes_train: np.ndarray,
    factors_train: np.ndarray,
    codes_test: np.ndarray,
    factors_test: np.ndarray,
    seed: int = 0,
    bins: int = DEFAULT_BINS,
) -> DciScore:
    """DCI (Eastwood & Williams, 2018): classifiers fit on (codes_train, factors_train), accuracy
    measured on the test pair. Factor levels come from :func:`discretize_factors` on both splits at once,
    so a level means the same in each."""
    z_train, f_train = _checked(codes_train, factors_train)
    z_test, f_test = _checked(codes_test, factors_test)
    if z_train.shape[1] != z_test.shape[1] or f_train.shape[1] != f_test.shape[1]:
        raise ValueError(
            f"train and test differ in shape: {z_train.shape}/{f_train.shape}, {z_test.shape}/{f_test.shape}"
        )
    labels = discretize_factors(np.concatenate([f_train, f_test]), bins)
    y_train, y_test = labels[: len(f_train)], labels[len(f_train) :]
    importance, accuracy = _fit_importances(z_train, y_train, z_test, y_test, seed)
    used = np.isfinite(accuracy)  # the factors that vary
    per_dim = _one_minus_entropy(importance[:, used]) if used.any() else np.full(importance.shape[0], np.nan)
    per_factor = _one_minus_entropy(importance.T)
    informativeness = float(np.mean(accuracy[used])) if used.any() else float("nan")
    return DciScore(
        disentanglement=_weighted_mean(per_dim, importance.sum(axis=1)),
        completeness=_weighted_mean(per_factor, importance.sum(axis=0)),
        informativeness=informativeness,
        importance=importance,
        per_dim=per_dim,
        per_factor=per_factor,
        accuracy=accuracy,
    )


# ---------------------------------------------------------------- labels for dimensions and factors


@dataclass(frozen=True)
class DimFactor:
    """Code dimension ``dim`` carries factor ``factor`` (``name``) most: ``share`` of the dimension's
    MI or importance. clear: the share is at least the threshold and ``dim`` is the factor's best dimension."""

    dim: int
    factor: int | None
    name: str | None
    share: float
    clear: bool

    @property
    def label(self) -> str:
        """ "z3 ≈ x" when clear, else "z3"."""
        return f"z{self.dim} ≈ {self.name}" if self.clear else f"z{self.dim}"


@dataclass(frozen=True)
class FactorDim:
    """Factor ``factor`` (``name``) lives most in code dimension ``dim``: ``share`` of the factor's
    MI or importance. clear: the share is at least the threshold and ``name`` is that dimension's main factor."""

    factor: int
    name: str
    dim: int | None
    share: float
    clear: bool

    @property
    def label(self) -> str:
        """ "dim 3 ≈ x" when clear, else "x: no single dimension"."""
        return f"dim {self.dim} ≈ {self.name}" if self.clear else f"{self.name}: no single dimension"


def _association(matrix: np.ndarray, names: Sequence[str]) -> np.ndarray:
    """(K, D) non-negative scores with NaN read as 0; names must have K entries."""
    m = np.nan_to_num(np.asarray(matrix, dtype=np.float64), nan=0.0)
    if m.ndim != 2 or m.shape[0] != len(names) or (m < 0).any():
        raise ValueError(f"need a non-negative (K, D) matrix with K = {len(names)} names, got shape {m.shape}")
    return m


def factor_of_dims(matrix: np.ndarray, names: Sequence[str], threshold: float = 0.5) -> list[DimFactor]:
    """For each code dimension, the factor it carries most. ``matrix`` (K, D): ``MigScore.mi`` (or
    ``normalized_mi`` when factors differ much in entropy) or ``DciScore.importance.T``."""
    m = _association(matrix, names)
    out = []
    for d in range(m.shape[1]):
        total = m[:, d].sum()
        if total <= 0:
            out.append(DimFactor(dim=d, factor=None, name=None, share=0.0, clear=False))
            continue
        k = int(np.argmax(m[:, d]))
        share = float(m[k, d] / total)
        clear = share >= threshold and int(np.argmax(m[k])) == d
        out.append(DimFactor(dim=d, factor=k, name=str(names[k]), share=share, clear=bool(clear)))
    return out


def dims_of_factors(matrix: np.ndarray, names: Sequence[str], threshold: float = 0.5) -> list[FactorDim]:
    """For each factor, the code dimension that carries it most; ``matrix`` (K, D) as in :func:`factor_of_dims`."""
    m = _association(matrix, names)
    out = []
    for k in range(m.shape[0]):
        total = m[k].sum()
        if total <= 0:
            out.append(FactorDim(factor=k, name=str(names[k]), dim=None, share=0.0, clear=False))
            continue
        d = int(np.argmax(m[k]))
        share = float(m[k, d] / total)
        clear = share >= threshold and int(np.argmax(m[:, d])) == k
        out.append(FactorDim(factor=k, name=str(names[k]), dim=d, share=share, clear=bool(clear)))
    return out
