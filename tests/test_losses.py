import math

import pytest
import torch

from core.models.losses import Objective, elbo, gaussian_kl, gaussian_kl_per_dim, pixel_mse, reconstruction_nll


def test_bce_reconstruction_by_hand():
    # logits 0 give p = 0.5 for every pixel: -log p(x|z) = D · log 2 whatever x is.
    logits = torch.zeros(2, 1, 2, 2)
    x = torch.tensor([[[[1.0, 0.0], [0.5, 0.25]]], [[[0.0, 0.0], [0.0, 0.0]]]])
    nll = reconstruction_nll(logits, x)
    assert torch.allclose(nll, torch.full((2,), 4 * math.log(2)))
    # logit 2 on a pixel of value 1: -log sigmoid(2) = log(1 + e^-2)
    nll = reconstruction_nll(torch.full((1, 1, 1, 1), 2.0), torch.ones(1, 1, 1, 1))
    assert nll.item() == pytest.approx(math.log1p(math.exp(-2)), rel=1e-6)


def test_gaussian_reconstruction_by_hand():
    # sigmoid(0) = 0.5; x = 1 -> squared error 0.25 per pixel; σ = 1
    logits = torch.zeros(1, 1, 1, 3)
    x = torch.ones(1, 1, 1, 3)
    nll = reconstruction_nll(logits, x, "gaussian", torch.zeros(()))
    expected = 3 * (0.25 / 2 + 0.5 * math.log(2 * math.pi))
    assert nll.item() == pytest.approx(expected, rel=1e-6)


def test_kl_closed_form_by_hand():
    mu = torch.tensor([[1.0, 0.0]])
    logvar = torch.tensor([[0.0, math.log(4.0)]])
    # dim 1: 0.5·mu² = 0.5; dim 2: 0.5·(σ² - 1 - log σ²) = 0.5·(4 - 1 - log 4)
    expected = 0.5 + 0.5 * (3 - math.log(4))
    assert gaussian_kl(mu, logvar).item() == pytest.approx(expected, rel=1e-6)
    assert gaussian_kl_per_dim(mu, logvar).sum().item() == pytest.approx(expected, rel=1e-6)
    assert gaussian_kl(torch.zeros(3, 5), torch.zeros(3, 5)).abs().max().item() == 0


def test_kl_matches_monte_carlo():
    g = torch.Generator().manual_seed(0)
    mu = torch.randn(4, 3, generator=g)
    logvar = torch.randn(4, 3, generator=g) * 0.5
    std = torch.exp(0.5 * logvar)
    z = mu + std * torch.randn(200_000, 4, 3, generator=g)
    normal = torch.distributions.Normal
    log_q = normal(mu, std).log_prob(z).sum(-1)
    log_p = normal(torch.zeros(()), torch.ones(())).log_prob(z).sum(-1)
    mc = (log_q - log_p).mean(0)
    assert torch.allclose(mc, gaussian_kl(mu, logvar), atol=0.02)


def test_objective_forms():
    recon, kl = torch.tensor([10.0]), torch.tensor([2.0])
    assert Objective(4.0)(recon, kl).item() == 18.0
    assert Objective(0.25, "convex")(recon, kl).item() == pytest.approx(0.75 * 10 + 0.25 * 2)
    assert Objective(1.0)(recon, kl, beta=0.0).item() == 10.0  # warm-up override
    assert elbo(recon, kl).item() == 12.0


@pytest.mark.parametrize(("beta", "form"), [(-1.0, "standard"), (float("nan"), "standard"), (2.0, "convex")])
def test_objective_rejects_bad_beta(beta, form):
    with pytest.raises(ValueError, match="β"):
        Objective(beta, form)


def test_pixel_mse_is_the_mean_over_pixels():
    # sigmoid(0) = 0.5 everywhere; targets 1, 0, 0.5, 0.5 -> squared errors 0.25, 0.25, 0, 0
    logits = torch.zeros(1, 1, 2, 2)
    x = torch.tensor([[[[1.0, 0.0], [0.5, 0.5]]]])
    assert pixel_mse(logits, x).tolist() == [pytest.approx(0.125)]
    assert pixel_mse(torch.zeros(3, 1, 28, 28), torch.full((3, 1, 28, 28), 0.5)).abs().max().item() == 0


def test_the_talks_objective_uses_the_per_pixel_mse():
    recon, kl, mse = torch.tensor([100.0]), torch.tensor([2.0]), torch.tensor([0.04])
    talk = Objective(0.05, "convex-mse")
    assert talk(recon, kl, mse=mse).item() == pytest.approx(0.95 * 0.04 + 0.05 * 2.0)
    assert talk(recon, kl, beta=0.0, mse=mse).item() == pytest.approx(0.04)  # β = 0: a plain MSE autoencoder
    with pytest.raises(ValueError, match="MSE"):
        talk(recon, kl)
    with pytest.raises(ValueError, match="0 ≤ β ≤ 1"):
        Objective(2.0, "convex-mse")


def test_objective_of_a_model_output():
    from core.models.config import ModelConfig
    from core.models.networks import build_model

    torch.manual_seed(0)
    model = build_model(ModelConfig(kind="vae", arch="mlp", latent_dim=2, hidden=(8,), image_shape=(1, 4, 4)))
    x = torch.rand(5, 1, 4, 4)
    out = model(x)
    talk = Objective(0.25, "convex-mse").of_output(out, x)
    assert torch.allclose(talk, 0.75 * pixel_mse(out.logits, x) + 0.25 * out.kl)
    assert torch.allclose(Objective(0.25, "convex").of_output(out, x), 0.75 * out.recon + 0.25 * out.kl)
