"""Lenses on the latent space: a data set's codes laid out on a plane for the latent map.

Four ways to flatten codes mu (N, z) to points (N, 2), one :class:`ProjectionMethod` each in
:data:`METHODS` (the map page's choices and its link's ``proj`` values read this table):

* ``pca``: the plane of largest variance (linear; distances along it mean something);
* ``umap``: UMAP (McInnes et al. 2018, ``umap-learn``): keeps each code's neighbours together;
* ``tsne``: t-SNE (van der Maaten & Hinton 2008) through openTSNE's FFT-accelerated gradients
  (Linderman et al. 2019), fast enough for 10,000 codes on two cores;
* ``dims``: two raw latent dimensions as the axes, no reduction at all.

UMAP and t-SNE take seconds: :func:`project` reports its progress through a callback that can
also stop it (the app runs it as a background job): t-SNE within 25 iterations, UMAP at the end
of its current stage. Both are seeded and single-threaded by
default, so the same codes give the same map. Nothing here imports Streamlit or torch.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

# (fraction done in [0, 1], what is happening) -> True to stop the work
Progress = Callable[[float, str], "bool | None"]

UMAP_NEIGHBOURS = 15
UMAP_EPOCHS = 200  # umap-learn's default for large data sets; 500 for ≤ 10,000 points is 2.5× slower
TSNE_PERPLEXITY = 15.0  # in the usual 5-50; 30 costs twice the time for the same map of 10,000 codes
TSNE_EARLY_ITERS = 125  # early exaggeration (12×): clusters form
TSNE_ITERS = 300  # then the layout relaxes; more iterations only spread the clusters further
TSNE_FFT_FROM = 2000  # Barnes-Hut below this many codes, FFT interpolation from here on
MIN_POINTS = 10  # fewer codes than this have no neighbourhoods to keep


@dataclass(frozen=True)
class ProjectionMethod:
    """One way to lay the codes out: its name in links, title, one-line meaning for the page,
    whether it takes seconds (a background job in the app) and whether its axes have units."""

    name: str
    title: str
    about: str
    slow: bool
    linear: bool


METHODS = {
    m.name: m
    for m in (
        ProjectionMethod(
            "pca", "PCA", "the plane of largest variance: straight lines and distances keep their meaning", False, True
        ),
        ProjectionMethod(
            "umap",
            "UMAP",
            "keeps each code's nearest neighbours together; distances between clusters mean little",
            True,
            False,
        ),
        ProjectionMethod(
            "tsne",
            "t-SNE",
            "keeps each code's nearest neighbours together; cluster sizes and gaps mean little",
            True,
            False,
        ),
        ProjectionMethod(
            "dims", "Two dimensions", "two of the code's own dimensions as the axes: no reduction at all", False, True
        ),
    )
}


class ProjectionCancelled(Exception):
    """The progress callback asked the projection to stop."""


@dataclass
class MapProjection:
    """Codes laid out on a plane.

    coords: (N, 2) float32 points. method: a key of :data:`METHODS`.
    axis_labels: the two axes' names ("PC1 (41.2%)", "z3", "UMAP 1").
    axes: the principal components (pca) or latent dimensions (dims) shown, 0-based; (0, 1) otherwise.
    variance_share: the fraction of the codes' total variance the plane shows (pca, dims), else None.
    note: one sentence for the page on what the plot is.
    seconds: how long the projection took.
    """

    coords: np.ndarray
    method: str
    axis_labels: tuple[str, str]
    axes: tuple[int, int]
    variance_share: float | None
    note: str
    seconds: float


def axis_count(method: str, latent_dim: int) -> int:
    """How many axes a method offers to pick two from: PCs (at most 3) or latent dimensions."""
    if method == "pca":
        return min(3, latent_dim)
    return latent_dim if method == "dims" else 2


def project(
    mu: np.ndarray,
    method: str = "pca",
    axes: tuple[int, int] = (0, 1),
    *,
    seed: int = 0,
    threads: int = 1,
    progress: Progress | None = None,
) -> MapProjection:
    """Lay codes mu (N, z) out on a plane with ``method`` (a key of :data:`METHODS`).

    axes: which two principal components (pca) or latent dimensions (dims) to show.
    seed, threads: UMAP and t-SNE are seeded; more threads are faster but UMAP is then not reproducible.
    progress: called now and then with (fraction, text); return True to stop (ProjectionCancelled).
    A 2-D code's PCA is its own axes (a rotation would only hide them).
    """
    mu = _check(mu, method, axes)
    t0 = time.perf_counter()
    if method == "pca" and mu.shape[1] > 2:
        result = _pca(mu, axes)
    elif method in ("pca", "dims"):
        result = _dims(mu, axes)
    elif method == "umap":
        result = _plane(_umap(mu, seed, progress), "UMAP", f"UMAP of {len(mu):,} codes ({METHODS['umap'].about}).")
    else:
        result = _plane(
            _tsne(mu, seed, threads, progress), "t-SNE", f"t-SNE of {len(mu):,} codes ({METHODS['tsne'].about})."
        )
    result.seconds = time.perf_counter() - t0
    _report(progress, 1.0, "done")
    return result


def _check(mu: np.ndarray, method: str, axes: tuple[int, int]) -> np.ndarray:
    mu = np.asarray(mu, dtype=np.float32)
    if method not in METHODS:
        raise ValueError(f"unknown projection {method!r}; choose one of {tuple(METHODS)}")
    if mu.ndim != 2 or len(mu) == 0 or mu.shape[1] < 2:
        raise ValueError(f"codes must be a non-empty (N, z) array with z ≥ 2, got shape {mu.shape}")
    if not np.isfinite(mu).all():
        raise ValueError("the codes hold NaN or infinity")
    limit = axis_count(method, mu.shape[1])
    a, b = axes
    if a == b or not (0 <= a < limit and 0 <= b < limit):
        raise ValueError(f"choose two different axes in 0..{limit - 1}, got {axes}")
    if METHODS[method].slow and len(mu) < MIN_POINTS:
        raise ValueError(f"{METHODS[method].title} needs at least {MIN_POINTS} codes, got {len(mu)}")
    return mu


def _report(progress: Progress | None, fraction: float, text: str) -> None:
    if progress is not None and progress(float(min(1.0, max(0.0, fraction))), text):
        raise ProjectionCancelled(text)


def _pca(mu: np.ndarray, axes: tuple[int, int]) -> MapProjection:
    from sklearn.decomposition import PCA

    pca = PCA(n_components=axis_count("pca", mu.shape[1]), random_state=0).fit(mu)
    ratio = pca.explained_variance_ratio_
    coords = pca.transform(mu)[:, list(axes)].astype(np.float32)
    labels = tuple(f"PC{i + 1} ({100 * ratio[i]:.1f}%)" for i in axes)
    share = float(ratio[list(axes)].sum())
    note = f"PCA of {len(mu):,} codes: this plane holds {100 * share:.1f}% of their variance."
    return MapProjection(coords, "pca", labels, axes, share, note, 0.0)


def _dims(mu: np.ndarray, axes: tuple[int, int]) -> MapProjection:
    var = mu.var(axis=0)
    share = float(var[list(axes)].sum() / var.sum()) if var.sum() > 0 else 0.0
    labels = (f"z{axes[0]}", f"z{axes[1]}")
    if mu.shape[1] == 2:
        note = "The code has 2 dimensions: the plot shows its own axes, no projection."
    else:
        note = f"Dimensions z{axes[0]} and z{axes[1]} of {mu.shape[1]}: {100 * share:.1f}% of the codes' variance."
    return MapProjection(mu[:, list(axes)].copy(), "dims", labels, axes, share, note, 0.0)


def _plane(coords: np.ndarray, name: str, note: str) -> MapProjection:
    return MapProjection(
        np.asarray(coords, np.float32),
        name.lower().replace("-", ""),
        (f"{name} 1", f"{name} 2"),
        (0, 1),
        None,
        note,
        0.0,
    )


class _EpochFile:
    """A file for tqdm that turns umap-learn's epoch bar (``bar_format="{n}/{total}"``) into
    progress calls. It never raises: tqdm writes while holding its process-wide lock and does
    not release it on an exception, which would hang every later bar. So a stop request during
    the layout is only noted, and UMAP stops at its next stage boundary (the end)."""

    def __init__(self, progress: Progress | None, start: float):
        self.progress, self.start, self.stop = progress, start, False

    def write(self, text: str) -> None:
        done, _, total = text.strip().rpartition("\r")[2].partition("/")
        if self.progress is None or not (done.isdigit() and total.isdigit() and int(total) > 0):
            return
        frac = self.start + (1 - self.start) * int(done) / int(total)
        try:
            self.stop |= bool(self.progress(min(1.0, frac), f"UMAP layout: epoch {done} of {total}"))
        except Exception:  # a broken callback must not break tqdm's lock either
            self.stop = True

    def flush(self) -> None:
        pass


def _umap(mu: np.ndarray, seed: int, progress: Progress | None) -> np.ndarray:
    """UMAP on exact nearest neighbours (scikit-learn: under a second for 10,000 codes, and no
    numba compile for pynndescent), a PCA start and 200 epochs."""
    from sklearn.neighbors import NearestNeighbors

    k = min(UMAP_NEIGHBOURS, len(mu) - 1)
    _report(progress, 0.0, f"finding each code's {k} nearest neighbours")
    dist, idx = NearestNeighbors(n_neighbors=k).fit(mu).kneighbors(mu)
    _report(progress, 0.05, "building the neighbour graph (the first UMAP after a start compiles numba code)")
    import umap

    # Our neighbours are not a pynndescent index, so UMAP.transform is unavailable: we never call it.
    warnings.filterwarnings("ignore", message=r"precomputed_knn\[2\]", category=UserWarning)
    epochs = _EpochFile(progress, 0.15)
    bar = {"file": epochs, "bar_format": "{n}/{total}", "mininterval": 0.2, "disable": False}
    reducer = umap.UMAP(
        n_neighbors=k,
        min_dist=0.1,
        n_epochs=UMAP_EPOCHS,
        init="pca",
        random_state=seed,
        n_jobs=1,
        precomputed_knn=(idx, dist, None),
        tqdm_kwds=bar,
    )
    coords = reducer.fit_transform(mu)
    if epochs.stop:
        raise ProjectionCancelled("stopped during the UMAP layout")
    return coords


def _tsne(mu: np.ndarray, seed: int, threads: int, progress: Progress | None) -> np.ndarray:
    """t-SNE with openTSNE: exact affinities (perplexity 15, or less for few codes), a PCA start,
    early exaggeration then a short relaxation, negative gradients by FFT interpolation."""
    from openTSNE import TSNEEmbedding, affinity, initialization

    x = mu.astype(np.float64)
    perplexity = min(TSNE_PERPLEXITY, (len(x) - 1) / 3.01)
    _report(progress, 0.0, "finding neighbours and their affinities")
    aff = affinity.PerplexityBasedNN(x, perplexity=perplexity, method="exact", n_jobs=threads, random_state=seed)
    gradients = "fft" if len(x) >= TSNE_FFT_FROM else "bh"  # FFT's fixed grid costs more than it saves on few points
    emb = TSNEEmbedding(
        initialization.pca(x, random_state=seed),
        aff,
        negative_gradient_method=gradients,
        n_jobs=threads,
        random_state=seed,
        ints_in_interval=2,
    )
    total, done = TSNE_EARLY_ITERS + TSNE_ITERS, 0
    for iters, params in ((TSNE_EARLY_ITERS, {"exaggeration": 12, "momentum": 0.5}), (TSNE_ITERS, {"momentum": 0.8})):

        def tick(it: int, _error: float, _emb, before: int = done) -> None:
            _report(progress, 0.1 + 0.9 * (before + it) / total, f"t-SNE iteration {before + it} of {total}")

        emb = emb.optimize(iters, callbacks=tick, callbacks_every_iters=25, **params)  # raising here is clean
        done += iters
    return np.asarray(emb)


def warm_up() -> float:
    """Import umap-learn and openTSNE and run UMAP once on 200 random codes, which compiles its
    numba functions (cached on disk by numba, but still loaded and typed per process), so the
    first real UMAP after a start takes seconds instead of tens of seconds. Returns the seconds taken."""
    t0 = time.perf_counter()
    codes = np.random.default_rng(0).normal(size=(200, 4)).astype(np.float32)
    project(codes, "umap")
    import openTSNE  # noqa: F401

    return time.perf_counter() - t0
