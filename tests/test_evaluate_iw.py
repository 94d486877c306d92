"""The importance-weighted NLL (Burda et al. 2015) against closed forms, the training options that
go with it (dynamic binarization, the IWAE bound) and `python -m core evaluate --iw`."""

import math

import numpy as np
import pytest
import torch

from core.app.catalog import ModelEntry, card_rows
from core.data.registry import load_dataset
from core.formats.checkpoints import load_checkpoint, read_meta
from core.models.config import ConfigError, get_kind
from core.models.evaluate import binarize_fixed, iw_nll, iwae_loss, measure_card, weight_terms
from core.models.networks import build_model
from core.training.train import TrainConfig, train_model
from tests.conftest import tiny_dataset

pytestmark = pytest.mark.usefixtures("one_thread")

W = torch.tensor([[2.0, 0.0], [0.0, 1.0], [0.0, 0.0]])  # orthogonal columns: a diagonal posterior
B = torch.tensor([0.1, -0.2, 0.3])
SIGMA = 0.5


class LinearGaussian:
    """p(z) = N(0, I), p(x|z) = N(Wz + b, σ²I) on x (B, 3, 1, 1), so p(x) = N(b, WWᵀ + σ²I) exactly.
    q(z|x) is the exact posterior, or that posterior with its mean shifted and variance scaled."""

    latent_dim, image_shape, likelihood = 2, (3, 1, 1), "gaussian"
    is_variational, num_classes, conditional, device = True, 0, False, torch.device("cpu")

    def __init__(self, shift: float = 0.0, var_scale: float = 1.0):
        self.post_var = 1 / (1 + (W**2).sum(0) / SIGMA**2)  # (2,)
        self.shift, self.var_scale = shift, var_scale

    def encode(self, x, y=None):
        mu = (x.flatten(1) - B) @ W * self.post_var / SIGMA**2 + self.shift
        return mu, torch.log(self.post_var * self.var_scale).expand_as(mu)

    def recon_nll(self, x, z, y=None):
        mean = z @ W.T + B
        sq = (x.flatten(1) - mean).pow(2).sum(1)
        return sq / (2 * SIGMA**2) + 3 * math.log(SIGMA * math.sqrt(2 * math.pi))

    def decode(self, z, y=None):
        return (z @ W.T + B).view(-1, 3, 1, 1)


def exact_nll(x: torch.Tensor) -> torch.Tensor:
    cov = W @ W.T + SIGMA**2 * torch.eye(3)
    return -torch.distributions.MultivariateNormal(B, cov).log_prob(x.flatten(1))


def analytic_neg_elbo(model: LinearGaussian, x: torch.Tensor) -> torch.Tensor:
    """E_q[-log p(x|z)] + KL(q || p) in closed form, per example."""
    mu, logvar = model.encode(x)
    var = logvar.exp()
    resid = (x.flatten(1) - mu @ W.T - B).pow(2).sum(1) + (var * (W**2).sum(0)).sum(1)
    recon = resid / (2 * SIGMA**2) + 3 * math.log(SIGMA * math.sqrt(2 * math.pi))
    kl = 0.5 * (var + mu**2 - 1 - logvar).sum(1)
    return recon + kl


@pytest.fixture(scope="module")
def xs() -> torch.Tensor:
    gen = torch.Generator().manual_seed(1)
    return torch.randn(40, 3, 1, 1, generator=gen) * 1.5


def test_exact_posterior_gives_log_px_for_every_k_and_every_chunking(xs):
    want = exact_nll(xs).double()
    for k, passes in ((1, 1 << 15), (50, 1 << 15), (7, 3)):  # passes=3: one sample, one image a chunk
        est = iw_nll(LinearGaussian(), xs, k=k, passes=passes)
        assert est.nll == pytest.approx(want.mean().item(), abs=1e-4)
        assert est.se == pytest.approx(want.std().item() / math.sqrt(40), abs=1e-4)
        assert est.elbo == pytest.approx(est.nll, abs=1e-4) and (est.k, est.n) == (k, 40)


def test_iw_estimate_tightens_with_k_towards_log_px_and_stays_below_the_elbo(xs):
    model = LinearGaussian(shift=0.4, var_scale=2.5)
    exact = exact_nll(xs).mean().item()
    neg_elbo = analytic_neg_elbo(model, xs).mean().item()
    # the gap is KL(q || posterior): 0.5 Σ_j (r − 1 − log r + shift² / var_j), r = 2.5, shift = 0.4
    r, pv = 2.5, model.post_var
    assert neg_elbo - exact == pytest.approx(0.5 * (2 * (r - 1 - math.log(r)) + (0.16 / pv).sum().item()), abs=1e-4)
    assert neg_elbo - exact == pytest.approx(2.3437, abs=1e-4)
    by_k = {k: iw_nll(model, xs, k=k, seed=3) for k in (1, 10, 100, 3000)}
    # K = 1 is the one-sample ELBO estimate itself; its mean over many samples is the closed form
    assert by_k[1].nll == pytest.approx(by_k[1].elbo, abs=1e-9)
    assert by_k[3000].elbo == pytest.approx(neg_elbo, abs=0.03)
    assert by_k[1].nll > by_k[10].nll > by_k[100].nll > by_k[3000].nll > exact - 1e-3
    assert by_k[3000].nll - exact < 0.02  # within 0.02 nats of log p(x) at K = 3000
    assert all(e.nll <= e.elbo + 1e-9 for e in by_k.values())  # Jensen, per draw


def test_k1_weight_is_the_one_sample_elbo_of_a_bernoulli_vae():
    cfg = get_kind("vae").model_config((1, 8, 8), 0, arch="mlp", latent_dim=3, hidden=(16,))
    torch.manual_seed(0)
    model = build_model(cfg).eval()
    x = binarize_fixed(torch.rand(5, 1, 8, 8))
    xt = torch.as_tensor(x)
    with torch.no_grad():
        log_px, log_ratio, mu, logvar = weight_terms(model, xt, k=1, generator=torch.Generator().manual_seed(4))
        eps = torch.randn(mu.shape, generator=torch.Generator().manual_seed(4))
        z = mu + (0.5 * logvar).exp() * eps
        log_q = torch.distributions.Normal(mu, (0.5 * logvar).exp()).log_prob(z).sum(1)
        log_pz = torch.distributions.Normal(0.0, 1.0).log_prob(z).sum(1)
        want = -model.recon_nll(xt, z) + log_pz - log_q
    torch.testing.assert_close(log_px[0] + log_ratio[0], want, atol=1e-4, rtol=0)
    est = iw_nll(model, x, k=1, seed=4)
    assert est.nll == pytest.approx(-want.double().mean().item(), abs=1e-4)


def test_iwae_loss_is_minus_log_mean_exp_and_has_gradients():
    cfg = get_kind("vae").model_config((1, 8, 8), 0, arch="mlp", latent_dim=3, hidden=(16,))
    model = build_model(cfg)
    x = torch.as_tensor(binarize_fixed(torch.rand(4, 1, 8, 8)))
    loss, out = iwae_loss(model, x, None, k=6, generator=torch.Generator().manual_seed(2))
    log_px, log_ratio, _, _ = weight_terms(model, x, k=6, generator=torch.Generator().manual_seed(2))
    want = -(torch.logsumexp(log_px + log_ratio, 0) - math.log(6))
    torch.testing.assert_close(loss, want)
    assert out.recon.shape == out.kl.shape == (4,)
    loss.mean().backward()
    assert model.to_logvar.weight.grad.abs().sum() > 0


def test_a_deterministic_model_has_no_importance_weights():
    cfg = get_kind("ae").model_config((1, 8, 8), 0, arch="mlp", latent_dim=3, hidden=(16,))
    with pytest.raises(ValueError, match="needs a variational model"):
        iw_nll(build_model(cfg), torch.rand(2, 1, 8, 8), k=3)


def test_fixed_binarization_is_binary_seeded_and_unbiased():
    x = np.full((200, 1, 10, 10), 0.3, dtype=np.float32)
    a, b = binarize_fixed(x), binarize_fixed(x)
    assert set(np.unique(a)) == {0.0, 1.0} and np.array_equal(a, b) and a.dtype == np.float32
    assert a.mean() == pytest.approx(0.3, abs=0.01)
    assert not np.array_equal(a, binarize_fixed(x, seed=1))


@pytest.mark.parametrize(("field", "value", "message"), [("binarize", "static", "unknown binarization"),
                                                         ("iw_samples", 0, "IWAE samples")])  # fmt: skip
def test_bad_training_options_are_refused(field, value, message):
    with pytest.raises(ConfigError, match=message):
        TrainConfig(**{field: value}).validate()


def test_training_on_binarized_images_with_the_iwae_bound_then_evaluate_iw(tmp_path, capsys):
    from core.cli import main
    from core.training.runs import save_run

    ds = tiny_dataset(64, shape=(1, 8, 8))
    cfg = get_kind("vae").model_config(ds.image_shape, 10, arch="mlp", latent_dim=3, hidden=(16,))
    tcfg = TrainConfig(epochs=2, batch_size=16, binarize="dynamic", iw_samples=4)
    model, history = train_model(cfg, ds, tcfg)
    assert len(history.epochs) == 2 and all(math.isfinite(e.test_loss) for e in history.epochs)
    saved = save_run(model, tmp_path, "bin", dataset=ds, train=tcfg, history=history)
    card = read_meta(saved.path)["card"]
    on_binary = measure_card(model, binarize_fixed(ds.test_x), ds.test_y, seed=tcfg.seed)
    on_grey = measure_card(model, ds.test_x, ds.test_y, seed=tcfg.seed)
    assert card["binarized_seed"] == 0, "the card says it measured binary images"
    assert card["test_loss"] == on_binary["test_loss"] != on_grey["test_loss"]
    npz = tmp_path / "tiny.npz"
    np.savez(npz, x=ds.test_x)
    # the checkpoint's data set is "tiny" (not registered): point evaluate at the same images
    rc = main(["evaluate", str(saved.path.with_suffix("")), "--dataset", f"npz:{npz}", "--iw", "20", "--n", "5"])
    assert rc == 0, capsys.readouterr().err
    printed = capsys.readouterr().out
    assert "binarized once, seed 0" in printed and "IW-NLL" in printed and "K = 20, n = 5" in printed
    rec = read_meta(saved.path)["card"]["iw_nll"]
    assert (rec["k"], rec["n"], rec["binarized_seed"]) == (20, 5, 0) and rec["nll"] <= rec["elbo"]
    load_checkpoint(saved.path)  # the weights and their hash are untouched
    entry = ModelEntry(key="bin", name="bin", source="user", path=saved.path, meta=read_meta(saved.path))
    assert card_rows(entry)["IW-NLL"] == f"{rec['nll']:.2f} ± {rec['se']:.2f} nats (K = 20, 5 images)"
    assert card_rows(entry)["Test loss"] == f"{card['test_loss']:.1f} nats (−ELBO on the binarized test set)"
    # --record writes the measured figures into the card: the npz set's first 4 test images, binarized.
    assert main(["evaluate", str(saved.path.with_suffix("")), "--dataset", f"npz:{npz}", "--n", "4", "--record"]) == 0
    recorded = read_meta(saved.path)["card"]
    x = load_dataset(f"npz:{npz}").test_x[:4]
    want = measure_card(model, binarize_fixed(x), None, seed=card["eval_seed"])
    assert recorded["test_n"] == 4 and recorded["test_loss"] == pytest.approx(want["test_loss"], abs=1e-3)
    assert recorded["binarized_seed"] == 0 and recorded["iw_nll"] == rec, "the other figures stay"
    assert main(["evaluate", str(saved.path.with_suffix("")), "--dataset", f"npz:{npz}", "--iw", "0"]) == 2
    assert "--iw needs K ≥ 1" in capsys.readouterr().err
