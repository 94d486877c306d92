"""Denoising: corrupt a batch, run denoisers side by side, score them with PSNR and SSIM.

Denoisers are :class:`Method` objects, one call from noisy images (N, C, H, W) in [0, 1] to
denoised ones of the same shape. Three families:

* model: any model of the protocol (:class:`~core.models.protocol.LatentModel`) through its code
  mean (a denoising AE, a VAE, a plain AE), which has learned what a clean image of the data set looks like;
* pca: projection onto the top principal components of clean training images (the linear
  autoencoder, the model's closest classical cousin);
* classical: scikit-image / SciPy filters that know nothing of the data set: total variation
  (Chambolle), non-local means, wavelet shrinkage, median and Gaussian blur.

Metrics come from ``skimage.metrics`` with data_range=1, per image, then averaged.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import product

import numpy as np
import torch

from core.data.corrupt import corrupt
from core.models.protocol import LatentModel

Array = np.ndarray


def corrupt_images(x: Array, kind: str, level: float, seed: int = 0) -> Array:
    """Corrupt images x (N, C, H, W) in [0, 1] with :func:`core.data.corrupt.corrupt`, seeded."""
    gen = torch.Generator().manual_seed(seed)
    return corrupt(torch.as_tensor(np.asarray(x, np.float32)), kind, level, gen).numpy()


# ---------------------------------------------------------------- metrics


def _pairs(clean: Array, test: Array) -> tuple[Array, Array]:
    clean, test = np.asarray(clean, np.float64), np.asarray(test, np.float64)
    if clean.shape != test.shape or clean.ndim != 4:
        raise ValueError(f"need two (N, C, H, W) batches of the same shape, got {clean.shape} and {test.shape}")
    return clean, test


def psnr(clean: Array, test: Array) -> Array:
    """Peak signal-to-noise ratio per image in dB (data_range 1): (N, C, H, W) x2 -> (N,).

    An exact copy scores +inf, as in scikit-image.
    """
    from skimage.metrics import peak_signal_noise_ratio

    clean, test = _pairs(clean, test)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # divide by zero for an exact copy -> inf
        return np.array([peak_signal_noise_ratio(c, t, data_range=1.0) for c, t in zip(clean, test, strict=True)])


def ssim(clean: Array, test: Array) -> Array:
    """Structural similarity per image (data_range 1, 7×7 window): (N, C, H, W) x2 -> (N,)."""
    from skimage.metrics import structural_similarity

    clean, test = _pairs(clean, test)
    if clean.shape[1] == 1:
        return np.array([structural_similarity(c[0], t[0], data_range=1.0) for c, t in zip(clean, test, strict=True)])
    return np.array(
        [structural_similarity(c, t, data_range=1.0, channel_axis=0) for c, t in zip(clean, test, strict=True)]
    )


# ---------------------------------------------------------------- denoisers


@dataclass
class Method:
    """A named denoiser: ``fn(noisy (N, C, H, W), y (N,) | None) -> denoised (N, C, H, W)``."""

    name: str
    family: str  # "classical" | "pca" | "model"
    fn: Callable[[Array, Array | None], Array]
    params: dict = field(default_factory=dict)

    def __call__(self, noisy: Array, y: Array | None = None) -> Array:
        out = self.fn(np.asarray(noisy, np.float32), y)
        return np.clip(out, 0.0, 1.0).astype(np.float32)


def _per_image(noisy: Array, f: Callable[[Array], Array]) -> Array:
    """Apply a 2-D/colour filter image by image: f takes (H, W) or (H, W, C)."""
    out = np.empty_like(noisy)
    for i, img in enumerate(noisy):
        if img.shape[0] == 1:
            out[i, 0] = f(img[0])
        else:
            out[i] = np.moveaxis(f(np.moveaxis(img, 0, -1)), -1, 0)
    return out


def _tv(noisy: Array, weight: float) -> Array:
    from skimage.restoration import denoise_tv_chambolle

    return _per_image(
        noisy, lambda im: denoise_tv_chambolle(im, weight=weight, channel_axis=-1 if im.ndim == 3 else None)
    )


def _nl_means(noisy: Array, h: float, patch_size: int = 3, patch_distance: int = 4) -> Array:
    """Non-local means (Buades et al. 2005): h is the patch-distance cut-off in intensity
    units (scikit-image suggests h ≈ 0.8 σ of the noise); 3×3 patches suit 28×28 digits."""
    from skimage.restoration import denoise_nl_means

    return _per_image(
        noisy,
        lambda im: denoise_nl_means(
            im,
            h=h,
            patch_size=patch_size,
            patch_distance=patch_distance,
            fast_mode=True,
            channel_axis=-1 if im.ndim == 3 else None,
        ),
    )


def _wavelet(noisy: Array, method: str = "BayesShrink", mode: str = "soft", wavelet: str = "db1") -> Array:
    """Wavelet shrinkage with the noise σ estimated per image (needs PyWavelets).

    An image without any detail coefficient (a flat one, such as a digit wholly covered by an
    occlusion) has no noise to estimate: scikit-image returns NaN for it, and it is kept as it is.
    """
    from skimage.restoration import denoise_wavelet

    def one(im: Array) -> Array:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # the empty median of a flat image
            out = denoise_wavelet(
                im,
                method=method,
                mode=mode,
                wavelet=wavelet,
                rescale_sigma=True,
                channel_axis=-1 if im.ndim == 3 else None,
            )
        return out if np.isfinite(out).all() else im

    return _per_image(noisy, one)


def _median(noisy: Array, size: int) -> Array:
    from scipy.ndimage import median_filter

    # One call over the whole batch: the window spans only the two image axes.
    return median_filter(noisy, size=(1, 1, size, size), mode="reflect")


def _gaussian(noisy: Array, sigma: float) -> Array:
    from scipy.ndimage import gaussian_filter

    return gaussian_filter(noisy, sigma=(0, 0, sigma, sigma), mode="reflect")


_CLASSICAL: dict[str, Callable[..., Array]] = {
    "tv": _tv,
    "nl-means": _nl_means,
    "wavelet": _wavelet,
    "median": _median,
    "gaussian": _gaussian,
}
# Defaults that do reasonably on 28×28 digits at moderate noise (σ ≈ 0.3-0.5).
DEFAULT_PARAMS: dict[str, dict] = {
    "tv": {"weight": 0.2},
    "nl-means": {"h": 0.3},
    "wavelet": {"method": "BayesShrink", "mode": "soft"},
    "median": {"size": 3},
    "gaussian": {"sigma": 1.0},
}
# What ``tune`` tries, per method.
PARAM_GRIDS: dict[str, dict[str, list]] = {
    "tv": {"weight": [0.05, 0.1, 0.2, 0.35, 0.5, 0.8]},
    "nl-means": {"h": [0.1, 0.2, 0.3, 0.45, 0.6]},
    "wavelet": {"method": ["BayesShrink", "VisuShrink"], "mode": ["soft", "hard"]},
    "median": {"size": [3, 5]},
    "gaussian": {"sigma": [0.5, 0.8, 1.2, 1.6]},
}
CLASSICAL_METHODS = tuple(_CLASSICAL)


def _has_pywavelets() -> bool:
    import importlib.util

    return importlib.util.find_spec("pywt") is not None


def available_classical() -> tuple[str, ...]:
    """The classical methods usable here: scikit-image's wavelet denoiser needs PyWavelets."""
    return tuple(n for n in CLASSICAL_METHODS if n != "wavelet" or _has_pywavelets())


def classical(name: str, **params) -> Method:
    """A classical denoiser by name ("tv", "nl-means", "wavelet", "median", "gaussian");
    parameters not given take :data:`DEFAULT_PARAMS`."""
    if name not in _CLASSICAL:
        raise ValueError(f"unknown classical denoiser {name!r}; choose one of {CLASSICAL_METHODS}")
    if name == "wavelet" and not _has_pywavelets():
        raise ImportError("the wavelet denoiser needs PyWavelets: pip install PyWavelets")
    p = {**DEFAULT_PARAMS[name], **params}
    f = _CLASSICAL[name]
    return Method(name=name, family="classical", fn=lambda noisy, y=None: f(noisy, **p), params=p)


def fit_pca(train_x: Array, n_components: int = 32, max_samples: int = 20_000, seed: int = 0):
    """Fit scikit-learn PCA to clean images (N, C, H, W) flattened (at most ``max_samples``,
    drawn at random, which changes the components very little and saves time)."""
    from sklearn.decomposition import PCA

    x = np.asarray(train_x, np.float32).reshape(len(train_x), -1)
    if len(x) > max_samples:
        x = x[np.random.default_rng(seed).choice(len(x), max_samples, replace=False)]
    n_components = min(n_components, *x.shape)
    return PCA(n_components=n_components, svd_solver="randomized", random_state=seed).fit(x)


def pca_reconstruct(pca, x: Array) -> Array:
    """Project images (N, C, H, W) onto a fitted PCA's components and back, clipped to [0, 1]."""
    x = np.asarray(x, np.float32)
    flat = pca.inverse_transform(pca.transform(x.reshape(len(x), -1)))
    return np.clip(flat, 0.0, 1.0).reshape(x.shape).astype(np.float32)


def pca_method(train_x: Array, n_components: int = 32, seed: int = 0) -> Method:
    """PCA reconstruction as a denoiser, fitted on clean training images (N, C, H, W)."""
    pca = fit_pca(train_x, n_components, seed=seed)
    return Method(
        name="pca",
        family="pca",
        fn=lambda noisy, y=None: pca_reconstruct(pca, noisy),
        params={"n_components": int(pca.n_components_)},
    )


def model_method(model: LatentModel, name: str | None = None, batch_size: int = 1000) -> Method:
    """Any model as a denoiser: decode the code mean of the noisy image.

    A conditional VAE needs the labels, passed as ``y`` when the method is called.
    """
    from core.lenses.latent import reconstruct

    kind = "vae" if model.is_variational else "ae"
    return Method(
        name=name or kind,
        family="model",
        fn=lambda noisy, y=None: reconstruct(model, noisy, y, batch_size=batch_size),
        params={"kind": kind, "latent_dim": model.latent_dim},
    )


def tune(
    name: str,
    noisy: Array,
    clean: Array,
    grid: dict[str, Sequence] | None = None,
    train_x: Array | None = None,
) -> tuple[Method, float]:
    """Choose a method's parameters by mean PSNR on a small validation batch.

    name: a classical method, or "pca" (then ``train_x`` is needed and the grid is over
        ``n_components``). Returns (the best method, its validation PSNR in dB). Tune on
    images that are not in the test batch, at the same noise kind and level.
    """
    if name == "pca":
        if train_x is None:
            raise ValueError("tuning PCA needs clean training images (train_x)")
        grid = grid or {"n_components": [8, 16, 32, 64, 128]}
        candidates = [pca_method(train_x, n) for n in grid["n_components"]]
    else:
        if name not in _CLASSICAL:
            raise ValueError(f"unknown denoiser {name!r}; choose 'pca' or one of {CLASSICAL_METHODS}")
        grid = grid or PARAM_GRIDS[name]
        keys = list(grid)
        candidates = [classical(name, **dict(zip(keys, vals, strict=True))) for vals in product(*grid.values())]
    scored = [(float(np.mean(psnr(clean, m(noisy)))), i) for i, m in enumerate(candidates)]
    best_psnr, best = max(scored)
    return candidates[best], best_psnr


# ---------------------------------------------------------------- running and scoring


@dataclass
class DenoiseRow:
    """One method's averages over the batch; PSNR in dB, SSIM in [-1, 1], seconds of wall time."""

    method: str
    family: str
    psnr: float
    ssim: float
    seconds: float
    params: dict

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


@dataclass
class DenoiseResult:
    """rows: the table, "noisy" (the input itself) first. images: {method: (N, C, H, W)}.
    per_image: {method: {"psnr": (N,), "ssim": (N,)}} for per-image captions."""

    rows: list[DenoiseRow]
    images: dict[str, Array]
    per_image: dict[str, dict[str, Array]]

    def row(self, method: str) -> DenoiseRow:
        for r in self.rows:
            if r.method == method:
                return r
        raise KeyError(method)


def run_methods(
    clean: Array,
    noisy: Array,
    methods: Sequence[Method],
    y: Array | None = None,
    include_noisy: bool = True,
) -> DenoiseResult:
    """Run every method on the noisy batch and score each against the clean one.

    clean, noisy: (N, C, H, W) in [0, 1]; y: labels for a conditional model.
    """
    clean = np.asarray(clean, np.float32)
    noisy = np.asarray(noisy, np.float32)
    if clean.shape != noisy.shape:
        raise ValueError(f"clean and noisy batches differ in shape: {clean.shape} vs {noisy.shape}")
    names = [m.name for m in methods]
    if len(set(names)) != len(names) or (include_noisy and "noisy" in names):
        raise ValueError(f"method names must be unique (and not 'noisy'): {names}")
    rows, images, per_image = [], {}, {}
    todo: list[tuple[str, str, dict, Callable[[], Array]]] = []
    if include_noisy:
        todo.append(("noisy", "input", {}, lambda: noisy))
    todo += [(m.name, m.family, m.params, lambda m=m: m(noisy, y)) for m in methods]
    for name, family, params, run in todo:
        t0 = time.perf_counter()
        out = run()
        seconds = time.perf_counter() - t0
        p, s = psnr(clean, out), ssim(clean, out)
        rows.append(
            DenoiseRow(
                method=name,
                family=family,
                psnr=float(np.mean(p)),
                ssim=float(np.mean(s)),
                seconds=seconds,
                params=dict(params),
            )
        )
        images[name] = out
        per_image[name] = {"psnr": p, "ssim": s}
    return DenoiseResult(rows=rows, images=images, per_image=per_image)


def format_table(result: DenoiseResult) -> str:
    """The result table as fixed-width text."""
    head = f"{'method':<16} {'family':<10} {'PSNR dB':>8} {'SSIM':>6} {'s':>7}  params"
    lines = [head, "-" * len(head)]
    for r in result.rows:
        params = ", ".join(f"{k}={v}" for k, v in r.params.items())
        lines.append(f"{r.method:<16} {r.family:<10} {r.psnr:>8.2f} {r.ssim:>6.3f} {r.seconds:>7.2f}  {params}")
    return "\n".join(lines)


# ---------------------------------------------------------------- the denoising page's comparison


def best_classical(
    val_clean: Array, val_noisy: Array, names: Sequence[str] | None = None
) -> tuple[Method, dict[str, float]]:
    """Tune every classical method (:func:`tune`) on a validation pair and keep the best.

    val_clean, val_noisy: (N, C, H, W) in [0, 1], images that are not scored afterwards.
    names: the methods to try (default :func:`available_classical`). Returns the winner,
    renamed "best classical" with ``params["method"]`` naming it, and the validation PSNR in
    dB of every method tried, {name: dB}.
    """
    names = tuple(names) if names is not None else available_classical()
    if not names:
        raise ValueError("best_classical needs at least one classical method")
    tuned = {name: tune(name, val_noisy, val_clean) for name in names}
    scores = {name: psnr_db for name, (_, psnr_db) in tuned.items()}
    winner = max(scores, key=scores.get)
    method = tuned[winner][0]
    return (
        Method(name="best classical", family="classical", fn=method.fn, params={"method": winner, **method.params}),
        scores,
    )


@dataclass
class Denoisers:
    """What the page compares, built once per set of models and data set.

    models: {column name: method} for the autoencoders, in column order.
    pca: fitted PCA denoisers, one per candidate number of components (chosen per noise
        setting on the validation batch, like the classical filters' parameters).
    classical: the classical methods to tune.
    """

    models: dict[str, Method]
    pca: list[Method]
    classical: tuple[str, ...]


def build_denoisers(
    models: dict[str, LatentModel],
    train_x: Array | None,
    pca_components: Sequence[int] = (8, 16, 32, 64),
    classical_names: Sequence[str] | None = None,
    seed: int = 0,
) -> Denoisers:
    """Model methods for ``models`` ({column name: unconditional autoencoder}) and PCAs fitted
    on clean training images train_x (N, C, H, W) (no PCA when train_x is None)."""
    for name, model in models.items():
        if model.conditional:
            raise ValueError(f"{name}: a conditional VAE needs labels; the comparison takes unconditional models")
    pca = [] if train_x is None else [pca_method(train_x, n, seed=seed) for n in pca_components]
    return Denoisers(
        models={name: model_method(model, name) for name, model in models.items()},
        pca=pca,
        classical=tuple(classical_names) if classical_names is not None else available_classical(),
    )


def _best_pca(pcas: Sequence[Method], val_clean: Array, val_noisy: Array) -> Method | None:
    if not pcas:
        return None
    scored = [(float(np.mean(psnr(val_clean, m(val_noisy)))), i) for i, m in enumerate(pcas)]
    best = pcas[max(scored)[1]]
    return Method(name="PCA", family="pca", fn=best.fn, params=dict(best.params))


def split_rows(
    n_test: int, seed: int, batch: int = 64, validation: int = 32, labels: Array | None = None
) -> tuple[Array, Array]:
    """Share out a test split of ``n_test`` images, shuffled with ``seed``: (batch rows, validation
    rows), disjoint. The batch is scored; the filters' parameters and PCA's size are tuned on the
    validation rows. A small split (faces) gives validation at most a third. Validation rows are
    sorted; batch rows are sorted too, or, given the split's ``labels`` (n_test,), ordered across
    the classes (one of each class in class order, then a second of each, …), so the first rows
    a page shows are different classes even when the split is sorted by label."""
    rows = np.random.default_rng(seed).permutation(n_test)
    n_val = min(validation, n_test // 3)
    picked = np.sort(rows[n_val : n_val + batch])
    if labels is not None:
        cls = np.asarray(labels)[picked]
        rank = np.zeros(len(picked), np.int64)  # the row's place among the picked rows of its class
        for c in np.unique(cls):
            rank[cls == c] = np.arange(int((cls == c).sum()))
        picked = picked[np.lexsort((cls, rank))]
    return picked, np.sort(rows[:n_val])


def compare(
    clean: Array,
    kind: str,
    level: float,
    denoisers: Denoisers,
    val_clean: Array,
    seed: int = 0,
) -> DenoiseResult:
    """Corrupt ``clean`` (N, C, H, W) with ``kind`` at ``level`` (seeded) and run every denoiser:
    the models, the best classical filter and the best PCA, both tuned on ``val_clean``
    (M, C, H, W), other clean images corrupted the same way (with another seed).

    Returns :func:`run_methods`' result: "noisy" first, then the model columns, "best
    classical" and "PCA" (when there is one). PSNR in dB, SSIM in [-1, 1].
    """
    noisy = corrupt_images(clean, kind, level, seed)
    val_noisy = corrupt_images(val_clean, kind, level, seed + 1)
    methods = list(denoisers.models.values())
    if denoisers.classical:
        methods.append(best_classical(val_clean, val_noisy, denoisers.classical)[0])
    pca = _best_pca(denoisers.pca, val_clean, val_noisy)
    if pca is not None:
        methods.append(pca)
    return run_methods(clean, noisy, methods)


@dataclass
class LevelCurve:
    """Mean PSNR (dB, over the finite values: :func:`mean_psnr`) and SSIM of each method
    (including "noisy") at each corruption level.

    levels: (L,); psnr, ssim: {method: (L,)}; params: {method: [params at each level]}.
    """

    kind: str
    levels: np.ndarray
    psnr: dict[str, np.ndarray]
    ssim: dict[str, np.ndarray]
    params: dict[str, list[dict]]


def mean_psnr(values: Array) -> tuple[float, int]:
    """The mean of per-image PSNRs (N,) in dB over the finite ones, and how many were infinite
    (exact copies: an occlusion that fell on the background leaves an image unchanged)."""
    values = np.asarray(values, np.float64)
    finite = values[np.isfinite(values)]
    return (float(finite.mean()) if len(finite) else float("inf")), int(len(values) - len(finite))


def level_curve(
    clean: Array,
    kind: str,
    levels: Sequence[float],
    denoisers: Denoisers,
    val_clean: Array,
    seed: int = 0,
) -> LevelCurve:
    """:func:`compare` at every level in ``levels`` (the tuned methods re-tuned at each)."""
    psnr_: dict[str, list[float]] = {}
    ssim_: dict[str, list[float]] = {}
    params: dict[str, list[dict]] = {}
    for level in levels:
        result = compare(clean, kind, level, denoisers, val_clean, seed)
        for row in result.rows:
            psnr_.setdefault(row.method, []).append(mean_psnr(result.per_image[row.method]["psnr"])[0])
            ssim_.setdefault(row.method, []).append(row.ssim)
            params.setdefault(row.method, []).append(row.params)
    return LevelCurve(
        kind=kind,
        levels=np.asarray(levels, np.float64),
        psnr={k: np.asarray(v) for k, v in psnr_.items()},
        ssim={k: np.asarray(v) for k, v in ssim_.items()},
        params=params,
    )
