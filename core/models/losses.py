"""The VAE objective, written once.

Kingma & Welling (2014), eq. 10 and Appendix B: for q(z|x) = N(mu, diag(sigma²)) and
p(z) = N(0, I),

    -ELBO(x) = E_q[-log p(x|z)] + KL(q(z|x) || p(z))
    KL       = -1/2 * sum_j (1 + log sigma_j² - mu_j² - sigma_j²)

β-VAE (Higgins et al. 2017) weights the KL term: loss = reconstruction + β·KL.
The "convex" form, (1-β)·reconstruction + β·KL, is the one used in some β-VAE talks;
both are here so a sweep can use either. All terms are nats per example (summed over
pixels and latent dimensions), so the numbers compare with the literature's "nats".

"convex-mse" is the talk's own objective, M = (1-β)·MSE + β·KL, whose reconstruction term is
the per-pixel mean squared error (mean over pixels of (x - x̂)², x̂ = sigmoid(logits), images
in [0, 1]) instead of a log-likelihood in nats. Its MSE is ~100x smaller than a summed
reconstruction, so the β where the KL takes over moves down by orders of magnitude: the talk
sweeps β from 1 to 0 over six decades.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from core.models.config import REAL_VALUED

LOSS_FORMS = ("standard", "convex", "convex-mse")
CONVEX_FORMS = ("convex", "convex-mse")  # (1-β)·recon + β·KL: need 0 ≤ β ≤ 1


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) || N(0, I)) per example: (B, z) -> (B,) nats."""
    return -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp(), dim=1)


def gaussian_kl_per_dim(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """The same KL, kept per latent dimension: (B, z) -> (B, z) nats."""
    return -0.5 * (1 + logvar - mu.pow(2) - logvar.exp())


def decoder_mean(logits: torch.Tensor, likelihood: str) -> torch.Tensor:
    """The decoder's mean from its output: sigmoid(logits), an image in [0, 1]; for a real-valued
    likelihood ("gaussian-real", standardised table features) the output itself."""
    return logits if likelihood == REAL_VALUED else torch.sigmoid(logits)


def reconstruction_nll(
    logits: torch.Tensor,
    target: torch.Tensor,
    likelihood: str = "bernoulli",
    log_sigma: torch.Tensor | None = None,
) -> torch.Tensor:
    """-log p(x|z) per example, summed over pixels: (B, C, H, W) -> (B,) nats.

    bernoulli: binary cross-entropy with logits (the PyTorch example's BCE sum; for
        continuous x in [0, 1] this is the usual "continuous MNIST" figure, not a
        normalised likelihood).
    gaussian: N(x; sigmoid(logits), sigma²) with one learned sigma, i.e. a scaled MSE
        plus the log-normaliser: sum((x - x̂)²) / (2σ²) + D·log(σ·sqrt(2π)).
    gaussian-real: the same with x̂ = logits, for features on the real line (a sigmoid could
        not reach a standardised value beyond [0, 1]), and a σ per feature (``log_sigma`` shaped
        like one example): a feature the decoder rebuilds tightly weighs more in the NLL.
    """
    if likelihood == "bernoulli":
        nll = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
        return nll.flatten(1).sum(1)
    if likelihood in ("gaussian", REAL_VALUED):
        if log_sigma is None:
            log_sigma = torch.zeros((), device=logits.device)
        # log_sigma: one σ () or one per value (C, H, W), broadcast over the batch
        sq = (decoder_mean(logits, likelihood) - target).pow(2)
        nll = sq / (2 * torch.exp(2 * log_sigma)) + log_sigma + 0.5 * math.log(2 * math.pi)
        return nll.flatten(1).sum(1)
    raise ValueError(f"unknown likelihood {likelihood!r}")


def pixel_mse(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error per pixel of the reconstruction sigmoid(logits) against ``target``:
    (B, C, H, W) -> (B,), in squared image units (images in [0, 1]), averaged over pixels."""
    return (torch.sigmoid(logits) - target).pow(2).flatten(1).mean(1)


def check_objective(beta: float, form: str) -> None:
    """ValueError unless β and the loss form make an objective: β finite and ≥ 0, and ≤ 1 for
    the convex form (whose reconstruction weight 1 − β must not turn negative)."""
    if form not in LOSS_FORMS:
        raise ValueError(f"unknown loss form {form!r}; choose one of {LOSS_FORMS}")
    if not math.isfinite(beta) or beta < 0:
        raise ValueError(f"β must be a finite number ≥ 0, got {beta}")
    if form in CONVEX_FORMS and beta > 1:
        raise ValueError(f"the (1-β)·recon + β·KL form needs 0 ≤ β ≤ 1, got {beta}")


@dataclass
class Objective:
    """How reconstruction and KL are combined into the training loss."""

    beta: float = 1.0
    form: str = "standard"  # "standard": recon + β·KL; "convex": (1-β)·recon + β·KL;
    # "convex-mse": (1-β)·MSE + β·KL with the per-pixel MSE as reconstruction (the talk's M)

    def __post_init__(self) -> None:
        check_objective(self.beta, self.form)

    def __call__(
        self, recon: torch.Tensor, kl: torch.Tensor, beta: float | None = None, mse: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Per-example loss (B,) from per-example terms (B,); ``beta`` overrides (KL warm-up).
        recon: -log p(x|z) in nats; mse: the per-pixel MSE (:func:`pixel_mse`), which the
        "convex-mse" form uses instead of ``recon`` and needs."""
        b = self.beta if beta is None else beta
        if self.form == "convex-mse":
            if mse is None:
                raise ValueError("the (1-β)·MSE + β·KL form needs the per-pixel MSE")
            return (1 - b) * mse + b * kl
        if self.form == "convex":
            return (1 - b) * recon + b * kl
        return recon + b * kl

    def of_output(self, out, target: torch.Tensor, beta: float | None = None) -> torch.Tensor:
        """Per-example loss (B,) of a model output (``core.models.networks.ModelOutput``: recon, kl,
        logits) against the clean images ``target`` (B, C, H, W)."""
        mse = pixel_mse(out.logits, target) if self.form == "convex-mse" else None
        return self(out.recon, out.kl, beta, mse=mse)


def elbo(recon: torch.Tensor, kl: torch.Tensor) -> torch.Tensor:
    """The (negative) ELBO per example: reconstruction + KL, with β = 1."""
    return recon + kl
