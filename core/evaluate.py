"""Test-set metrics in nats per example, latent statistics and active units."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch

from core.models import AutoEncoder

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


def model_device(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device


@torch.no_grad()
def evaluate(
    model: AutoEncoder,
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
    was_training = model.training
    model.eval()
    device = model_device(model)
    x = torch.as_tensor(x)
    y = None if y is None or not model.config.conditional else torch.as_tensor(y)
    gen = torch.Generator(device=device).manual_seed(seed)
    tot = torch.zeros(3, dtype=torch.float64)
    try:
        for sl in _batches(len(x), batch_size):
            xb = x[sl].to(device)
            yb = y[sl].to(device) if y is not None else None
            out = model(xb, yb, sample=model.config.is_variational, generator=gen)
            tot += torch.stack([(out.recon + out.kl).sum(), out.recon.sum(), out.kl.sum()]).double().cpu()
    finally:
        model.train(was_training)
    n = len(x)
    loss, recon, kl = (tot / max(n, 1)).tolist()
    return Metrics(loss=loss, recon=recon, kl=kl, n=n)


@torch.no_grad()
def encode_dataset(
    model: AutoEncoder,
    x: np.ndarray | torch.Tensor,
    y: np.ndarray | torch.Tensor | None = None,
    batch_size: int = 1000,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Encode every image: returns mu (N, z) and logvar (N, z) (None for an AE) as numpy."""
    was_training = model.training
    model.eval()
    device = model_device(model)
    x = torch.as_tensor(x)
    y = None if y is None or not model.config.conditional else torch.as_tensor(y)
    mus, logvars = [], []
    try:
        for sl in _batches(len(x), batch_size):
            mu, logvar = model.encode(x[sl].to(device), y[sl].to(device) if y is not None else None)
            mus.append(mu.cpu())
            if logvar is not None:
                logvars.append(logvar.cpu())
    finally:
        model.train(was_training)
    mu = torch.cat(mus).numpy()
    return mu, (torch.cat(logvars).numpy() if logvars else None)


def unit_activity(mu: np.ndarray) -> np.ndarray:
    """Cov_x(E_q[z_u]) for every latent unit u: mu (N, z) -> (z,)."""
    return mu.var(axis=0, ddof=1) if len(mu) > 1 else np.zeros(mu.shape[1])


def active_units(mu: np.ndarray, threshold: float = ACTIVE_THRESHOLD) -> int:
    """How many units are active (Burda et al. 2016): Cov_x(E_q[z_u]) > threshold."""
    return int((unit_activity(mu) > threshold).sum())


def measure_card(model: AutoEncoder, x_test: np.ndarray, y_test: np.ndarray | None = None, seed: int = 0) -> dict:
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
