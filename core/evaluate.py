"""Test-set metrics in nats per example, latent statistics and active units, for any model of the
protocol (:class:`core.protocol.LatentModel`)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch

from core.losses import gaussian_kl
from core.models import AutoEncoder
from core.protocol import LatentModel

ACTIVE_THRESHOLD = 0.01  # Burda et al. 2016: a unit is active when Cov_x(E_q[z_u]) > 0.01


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


def measure_card(model: LatentModel, x_test: np.ndarray, y_test: np.ndarray | None = None, seed: int = 0) -> dict:
    """The figures a checkpoint's JSON carries about its test split (nats per example)."""
    m = evaluate(model, x_test, y_test, seed=seed)
    mu, _ = encode_dataset(model, x_test, y_test)
    return {
        "test_loss": round(m.loss, 4),
        "test_recon": round(m.recon, 4),
        "test_kl": round(m.kl, 4),
        "test_n": m.n,
        "active_units": active_units(mu),
        "eval_seed": seed,
    }
