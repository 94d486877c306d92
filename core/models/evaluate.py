"""Test-set metrics in nats per example, latent statistics and active units, for any model of the
protocol (:class:`core.models.protocol.LatentModel`)."""

from __future__ import annotations

import json
import math
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from core.models.config import REAL_VALUED
from core.models.losses import gaussian_kl
from core.models.networks import AutoEncoder, ModelOutput
from core.models.protocol import LatentModel

ACTIVE_THRESHOLD = 0.01  # Burda et al. 2016: a unit is active when Cov_x(E_q[z_u]) > 0.01
LOG_2PI = math.log(2 * math.pi)
BINARY_TEST_SEED = 0  # the one fixed binarization of a test split (see binarize_fixed)
IW_PASSES = 1 << 15  # decoder passes per chunk of the importance-weighted estimate (memory bound)


@dataclass
class Metrics:
    """Average per-example figures in nats: loss = recon + kl (the negative ELBO, β = 1)."""

    loss: float
    recon: float
    kl: float
    n: int

    def to_dict(self) -> dict:
        return asdict(self)


def _batches(n: int, batch_size: int):
    for start in range(0, n, batch_size):
        yield slice(start, min(n, start + batch_size))


def elbo_terms(
    model: LatentModel,
    x: torch.Tensor,
    y: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
    sample: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The negative ELBO's two terms per example in nats, each (B,): -log p(x | z) and
    KL(q(z|x) || N(0, I)). z ~ q(z|x) is drawn with ``generator`` (a one-sample Monte-Carlo
    estimate) when ``sample``, else z = mu; a deterministic model decodes its code, KL 0."""
    mu, logvar = model.encode(x, y)
    z = AutoEncoder.reparameterize(mu, logvar, generator) if sample else mu
    recon = model.recon_nll(x, z, y)
    kl = gaussian_kl(mu, logvar) if logvar is not None else torch.zeros_like(recon)
    return recon, kl


@torch.no_grad()
def evaluate(
    model: LatentModel,
    x: np.ndarray | torch.Tensor,
    y: np.ndarray | torch.Tensor | None = None,
    batch_size: int = 1000,
    seed: int = 0,
) -> Metrics:
    """The negative ELBO, reconstruction and KL on (x, y), averaged per example.

    For a VAE the reconstruction term is a one-sample Monte-Carlo estimate with z ~ q(z|x)
    (as in the PyTorch example and the papers); the sample is drawn from a generator seeded
    with ``seed``, so the figure is reproducible. For an AE z is the code itself.
    """
    device = model.device
    x = torch.as_tensor(x)
    y = None if y is None or not model.conditional else torch.as_tensor(y)
    gen = torch.Generator(device=device).manual_seed(seed)
    tot = torch.zeros(3, dtype=torch.float64)
    for sl in _batches(len(x), batch_size):
        yb = y[sl].to(device) if y is not None else None
        recon, kl = elbo_terms(model, x[sl].to(device), yb, gen)
        tot += torch.stack([(recon + kl).sum(), recon.sum(), kl.sum()]).double().cpu()
    n = len(x)
    loss, recon, kl = (tot / max(n, 1)).tolist()
    return Metrics(loss=loss, recon=recon, kl=kl, n=n)


@torch.no_grad()
def encode_dataset(
    model: LatentModel,
    x: np.ndarray | torch.Tensor,
    y: np.ndarray | torch.Tensor | None = None,
    batch_size: int = 1000,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Encode every image: returns mu (N, z) and logvar (N, z) (None for an AE) as numpy."""
    device = model.device
    x = torch.as_tensor(x)
    y = None if y is None or not model.conditional else torch.as_tensor(y)
    mus, logvars = [], []
    for sl in _batches(len(x), batch_size):
        mu, logvar = model.encode(x[sl].to(device), y[sl].to(device) if y is not None else None)
        mus.append(mu.cpu())
        if logvar is not None:
            logvars.append(logvar.cpu())
    mu = torch.cat(mus).numpy()
    return mu, (torch.cat(logvars).numpy() if logvars else None)


def unit_activity(mu: np.ndarray) -> np.ndarray:
    """Cov_x(E_q[z_u]) for every latent unit u: mu (N, z) -> (z,)."""
    return mu.var(axis=0, ddof=1) if len(mu) > 1 else np.zeros(mu.shape[1])


def active_units(mu: np.ndarray, threshold: float = ACTIVE_THRESHOLD) -> int:
    """How many units are active (Burda et al. 2016): Cov_x(E_q[z_u]) > threshold."""
    return int((unit_activity(mu) > threshold).sum())


def measure_card(
    model: LatentModel,
    x_test: np.ndarray,
    y_test: np.ndarray | None = None,
    seed: int = 0,
    binarized_seed: int | None = None,
) -> dict:
    """The figures a checkpoint's JSON carries about its test split (nats per example).

    binarized_seed: for a model of binary images (trained on dynamically binarized ones), the
    test images are first binarized once with this seed (:func:`binarize_fixed`), as its
    IW-NLL is: a card measures a model on the data it models, and records the seed to say so."""
    if binarized_seed is not None:
        x_test = binarize_fixed(x_test, binarized_seed)
    m = evaluate(model, x_test, y_test, seed=seed)
    mu, _ = encode_dataset(model, x_test, y_test)
    card = {
        "test_loss": round(m.loss, 4),
        "test_recon": round(m.recon, 4),
        "test_kl": round(m.kl, 4),
        "test_n": m.n,
        "active_units": active_units(mu),
        "eval_seed": seed,
    }
    if model.likelihood != REAL_VALUED:  # images in [0, 1]: how close the reconstruction is, in dB
        card["test_psnr"] = round(recon_psnr(model, x_test, mu, y_test), 2)
    return card if binarized_seed is None else {**card, "binarized_seed": binarized_seed}


def recon_psnr(model: LatentModel, x: np.ndarray, mu: np.ndarray, y: np.ndarray | None, batch_size: int = 500) -> float:
    """Mean PSNR in dB (peak 1, over every channel) of the decoded mean codes ``mu`` (N, z)
    against the images ``x`` (N, C, H, W) in [0, 1]: a figure people compare across models."""
    psnr = []
    y = None if y is None or not model.conditional else torch.as_tensor(y)
    for sl in _batches(len(x), batch_size):
        z = torch.as_tensor(mu[sl], dtype=torch.float32, device=model.device)
        with torch.no_grad():
            recon = model.decode(z, None if y is None else y[sl].to(model.device)).cpu()
        mse = ((recon - torch.as_tensor(x[sl])) ** 2).flatten(1).mean(1).clamp_min(1e-10)
        psnr.append(-10 * torch.log10(mse))
    return float(torch.cat(psnr).mean())


def card_binarized_seed(train: dict) -> int | None:
    """The binarization seed a model's card is measured with: :data:`BINARY_TEST_SEED` for a model
    trained on dynamically binarized images (its JSON's ``train`` record), else None."""
    return BINARY_TEST_SEED if train.get("binarize") == "dynamic" else None


# ---------------------------------------------------------------- importance-weighted likelihood


def binarize_fixed(x: np.ndarray | torch.Tensor, seed: int = BINARY_TEST_SEED) -> np.ndarray:
    """One fixed binarization of grey images: x (N, C, H, W) in [0, 1] -> {0, 1} float32, each
    pixel ~ Bernoulli(x), drawn in order from a CPU ``torch.Generator`` seeded with ``seed``
    (the test set of a model trained on dynamically binarized images, Burda et al. 2015)."""
    gen = torch.Generator().manual_seed(seed)
    return torch.bernoulli(torch.as_tensor(x, dtype=torch.float32), generator=gen).numpy()


def weight_terms(
    model: LatentModel,
    x: torch.Tensor,
    y: torch.Tensor | None = None,
    k: int = 1,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The two parts of log w = log p(x|z) + [log p(z) - log q(z|x)] for k codes z ~ q(z|x) per image.

    x (B, C, H, W), y (B,) or None -> (log p(x|z) (k, B), log p(z) - log q(z|x) (k, B), mu (B, z),
    logvar (B, z)), all in nats; p(z) = N(0, I), q(z|x) = N(mu, exp(logvar)). Needs a variational
    model; gradients flow (reparameterized) unless the caller disables them.
    """
    mu, logvar = model.encode(x, y)
    if logvar is None:
        raise ValueError("an importance-weighted likelihood needs a variational model (q(z|x) with a variance)")
    eps = torch.randn((k, *mu.shape), generator=generator, device=mu.device, dtype=mu.dtype)
    z = mu + torch.exp(0.5 * logvar) * eps  # (k, B, z)
    log_q = -0.5 * (eps.pow(2) + logvar + LOG_2PI).sum(-1)
    log_pz = -0.5 * (z.pow(2) + LOG_2PI).sum(-1)
    b = x.shape[0]
    xk = x.expand(k, *x.shape).reshape(k * b, *x.shape[1:])
    yk = y.repeat(k) if y is not None else None  # row i*B + j is image j, like z's reshape
    log_px = -model.recon_nll(xk, z.reshape(k * b, -1), yk).view(k, b)
    return log_px, log_pz - log_q, mu, logvar


def iwae_loss(
    model: AutoEncoder,
    x: torch.Tensor,
    y: torch.Tensor | None,
    k: int,
    beta: float = 1.0,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, ModelOutput]:
    """The IWAE training loss (Burda et al. 2015, eq. 8) per example (B,) in nats:
    -log (1/k) sum_i p(x|z_i) [p(z_i)/q(z_i|x)]^β, with k reparameterized samples (β < 1 during a KL
    warm-up). The output carries the mean reconstruction over the samples and the analytic KL, z = mu,
    and the input in place of logits (no single decode stands for the k samples)."""
    log_px, log_ratio, mu, logvar = weight_terms(model, x, y, k, generator)
    loss = -(torch.logsumexp(log_px + beta * log_ratio, dim=0) - math.log(k))
    recon = -log_px.mean(0)
    kl = gaussian_kl(mu, logvar)
    return loss, ModelOutput(logits=x, mu=mu, logvar=logvar, z=mu, recon=recon, kl=kl)


@dataclass
class IWEstimate:
    """The importance-weighted negative log-likelihood (Burda et al. 2015) of a test set.

    nll: mean over images of -log (1/k) sum_i w_i, nats per example (an upper bound on -log p(x)
    that tightens as k grows); se: its standard error over images (std / sqrt(n)); elbo: the mean
    of -log w_i over the same samples and images (the one-sample negative ELBO, averaged over k).
    """

    nll: float
    se: float
    elbo: float
    k: int
    n: int
    seed: int

    def to_dict(self) -> dict:
        """Rounded to 1e-4 nats; an undefined standard error (one image) becomes None (valid JSON)."""
        return {
            k: (round(v, 4) if math.isfinite(v) else None) if isinstance(v, float) else v
            for k, v in asdict(self).items()
        }


@torch.no_grad()
def _image_log_px(
    model: LatentModel, x: torch.Tensor, y: torch.Tensor | None, k: int, gen: torch.Generator, passes: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """log p̂(x) = logmeanexp of k weights and the mean log w, per image (B,) float64, in chunks of
    at most ``passes`` decoder passes."""
    chunk = max(1, passes // len(x))
    parts = []
    for start in range(0, k, chunk):
        log_px, log_ratio, _, _ = weight_terms(model, x, y, min(chunk, k - start), gen)
        parts.append((log_px + log_ratio).double().cpu())
    log_w = torch.cat(parts)  # (k, B)
    return torch.logsumexp(log_w, 0) - math.log(k), log_w.mean(0)


@torch.no_grad()
def iw_nll(
    model: LatentModel,
    x: np.ndarray | torch.Tensor,
    y: np.ndarray | torch.Tensor | None = None,
    k: int = 5000,
    seed: int = 0,
    passes: int = IW_PASSES,
    progress=None,
) -> IWEstimate:
    """The k-sample importance-weighted NLL of x (N, C, H, W) in nats per example, with its standard
    error over images: batched over images and samples so that one chunk decodes at most ``passes``
    codes (memory stays bounded whatever k). Codes come from a generator seeded with ``seed``.
    ``progress(done, n, nll)`` is called after each batch of images, with the -log p̂(x) so far (done,)."""
    if k < 1:
        raise ValueError(f"k must be ≥ 1, got {k}")
    device = model.device
    x = torch.as_tensor(x)
    y = None if y is None or not model.conditional else torch.as_tensor(y)
    gen = torch.Generator(device=device).manual_seed(seed)
    per_batch = max(1, passes // k)
    log_px, log_w = [], []
    for sl in _batches(len(x), per_batch):
        yb = y[sl].to(device) if y is not None else None
        lp, lw = _image_log_px(model, x[sl].to(device), yb, k, gen, passes)
        log_px.append(lp)
        log_w.append(lw)
        if progress is not None:
            progress(sl.stop, len(x), -torch.cat(log_px))
    nll = -torch.cat(log_px)
    n = len(nll)
    se = float(nll.std() / math.sqrt(n)) if n > 1 else float("nan")
    return IWEstimate(nll=float(nll.mean()), se=se, elbo=float(-torch.cat(log_w).mean()), k=k, n=n, seed=seed)


def record_card(weights: str | os.PathLike, figures: dict) -> Path:
    """Write ``figures`` into ``card`` (each key replaced) in the JSON beside a checkpoint's
    weights (NAME.safetensors -> NAME.json), atomically (a staged file renamed into place);
    returns the JSON's path. The weights and their hash are untouched."""
    path = Path(weights).with_suffix(".json")
    meta = json.loads(path.read_text(encoding="utf-8"))
    meta.setdefault("card", {}).update(figures)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(meta, f, indent=2, ensure_ascii=False)
            f.write("\n")
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
