import pytest
import torch

from core.data.registry import REGISTRY
from core.models.config import MAX_LATENT, ConfigError, ModelConfig
from core.models.networks import build_model, conv_stages

SHAPES = sorted({spec.image_shape for spec in REGISTRY.values()})


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"{s[1]}x{s[2]}")
@pytest.mark.parametrize("arch", ["mlp", "conv"])
@pytest.mark.parametrize("kind", ["vae", "ae", "cvae"])
def test_output_shapes_for_every_model_and_data_set(kind, arch, shape):
    cfg = ModelConfig(kind=kind, arch=arch, image_shape=shape, latent_dim=5, num_classes=3 if kind == "cvae" else 0)
    model = build_model(cfg).train()
    x = torch.rand(4, *shape)
    y = torch.tensor([0, 1, 2, 0]) if kind == "cvae" else None
    out = model(x, y)
    assert out.logits.shape == (4, *shape)
    assert out.mu.shape == out.z.shape == (4, 5)
    assert out.recon.shape == out.kl.shape == (4,)
    if kind == "ae":
        assert out.logvar is None
        assert torch.equal(out.z, out.mu)
        assert out.kl.abs().max() == 0
    else:
        assert out.logvar.shape == (4, 5)
        assert (out.kl > 0).all()
    assert model.reconstruct(x, y).shape == (4, *shape)
    imgs = model.sample(3, y=torch.tensor([1, 2, 0]) if kind == "cvae" else None)
    assert imgs.shape == (3, *shape)
    assert imgs.min() >= 0 and imgs.max() <= 1


@pytest.mark.parametrize("latent", [1, MAX_LATENT])
def test_latent_extremes(latent):
    model = build_model(ModelConfig(latent_dim=latent)).eval()
    mu, logvar = model.encode(torch.rand(2, 1, 28, 28))
    assert mu.shape == logvar.shape == (2, latent)
    assert model.decode(mu).shape == (2, 1, 28, 28)


def test_conv_stages_round_trip_odd_sizes():
    assert conv_stages((1, 28, 20), (32, 64)) == [(14, 10), (7, 5)]
    assert conv_stages((1, 25, 25), (32, 64)) == [(12, 12), (6, 6)]
    assert ModelConfig(image_shape=(1, 64, 64)).channels == (32, 64, 128)


def test_reparameterize_is_mean_plus_scaled_noise():
    mu = torch.full((20000, 1), 3.0)
    logvar = torch.full((20000, 1), 2 * torch.log(torch.tensor(0.5)).item())  # σ = 0.5
    z = build_model(ModelConfig()).reparameterize(mu, logvar, torch.Generator().manual_seed(0))
    assert z.mean().item() == pytest.approx(3.0, abs=0.02)
    assert z.std().item() == pytest.approx(0.5, abs=0.02)
    # gradients flow through mu and logvar
    mu.requires_grad_(True)
    build_model(ModelConfig()).reparameterize(mu, logvar).sum().backward()
    assert mu.grad is not None


def test_eval_mode_decodes_the_mean_and_is_deterministic():
    model = build_model(ModelConfig(arch="mlp")).eval()
    x = torch.rand(3, 1, 28, 28)
    a, b = model(x), model(x)
    assert torch.equal(a.z, a.mu)
    assert torch.equal(a.logits, b.logits)


def test_cvae_label_changes_the_decoded_image():
    model = build_model(ModelConfig(kind="cvae", num_classes=10, arch="mlp")).eval()
    z = torch.zeros(1, 16)
    assert not torch.allclose(model.decode(z, torch.tensor([1])), model.decode(z, torch.tensor([7])))
    with pytest.raises(ValueError, match="labels"):
        model.decode(z)
    with pytest.raises(ValueError, match="labels"):
        model.decode(z, torch.tensor([10]))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"latent_dim": 0}, "latent size"),
        ({"latent_dim": 257}, "latent size"),
        ({"kind": "gan"}, "model kind"),
        ({"arch": "transformer"}, "architecture"),
        ({"likelihood": "poisson"}, "likelihood"),
        ({"kind": "cvae", "num_classes": 0}, "num_classes"),
        ({"image_shape": (1, 0, 28)}, "image shape"),
    ],
)
def test_bad_model_configs_are_refused(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        ModelConfig(**kwargs)


def test_config_round_trips_through_dict():
    cfg = ModelConfig(kind="cvae", num_classes=10, image_shape=(1, 28, 20), latent_dim=8)
    assert ModelConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ConfigError, match="unknown model config keys"):
        ModelConfig.from_dict({**cfg.to_dict(), "dropout": 0.5})


def test_colour_images_get_a_gaussian_with_a_fixed_sigma_and_never_a_bernoulli():
    colour = ModelConfig(image_shape=(3, 32, 32))
    assert (colour.likelihood, colour.sigma) == ("gaussian", 0.1)
    model = build_model(colour)
    assert "log_sigma" in model.state_dict() and not any("sigma" in n for n, _ in model.named_parameters())
    assert torch.exp(model.log_sigma).item() == pytest.approx(0.1)
    grey = ModelConfig(image_shape=(1, 28, 28))
    assert (grey.likelihood, grey.sigma) == ("bernoulli", 0.0)
    faces = build_model(ModelConfig(image_shape=(1, 28, 20), likelihood="gaussian"))
    assert any(n == "log_sigma" for n, _ in faces.named_parameters()), "grey Gaussian models learn their σ"
    with pytest.raises(ConfigError, match="a Bernoulli likelihood does not fit colour images"):
        ModelConfig(image_shape=(3, 32, 32), likelihood="bernoulli")
    with pytest.raises(ConfigError, match="σ must be a number from 0"):
        ModelConfig(image_shape=(3, 32, 32), sigma=-1.0)
    assert ModelConfig.from_dict(colour.to_dict()) == colour


def test_a_colour_model_reconstructs_colour_and_its_card_has_a_psnr():
    from core.models.evaluate import measure_card

    x = torch.zeros(8, 3, 32, 32)
    x[:, 0, 8:24, 8:24] = 1.0  # red squares
    model = build_model(ModelConfig(arch="mlp", image_shape=(3, 32, 32), latent_dim=2, hidden=(32,))).eval()
    card = measure_card(model, x.numpy())
    mse = ((model(x).logits.sigmoid() - x) ** 2).mean().item()  # an untrained decoder: about 0.25 off
    assert card["test_psnr"] == pytest.approx(-10 * torch.log10(torch.tensor(mse)).item(), abs=0.5)


@pytest.mark.parametrize("arch", ["mlp", "conv"])
def test_an_input_gate_mixes_the_input_and_the_decoded_image_by_its_gate(arch):
    """Gate fully open: the input comes back as it is; fully shut: the code's own image; the sliders
    and exports (decode) always draw the code's image."""
    cfg = ModelConfig(kind="ae", arch=arch, image_shape=(1, 28, 28), latent_dim=8, input_gate=True)
    model = build_model(cfg).eval()
    x = torch.rand(5, 1, 28, 28)
    last = [m for m in model.decoder.modules() if isinstance(m, torch.nn.Linear | torch.nn.ConvTranspose2d)][-1]
    gate_bias = last.bias.view(2, -1)[1] if arch == "mlp" else last.bias[1:]  # the gate's channel(s)
    with torch.no_grad():
        gate_bias.fill_(30.0)
        assert torch.allclose(model.reconstruct(x), x, atol=1e-5)
        assert model(x).logits.shape == (5, 1, 28, 28)
        gate_bias.fill_(-30.0)
        mu = model.encode(x)[0]
        assert torch.allclose(model.reconstruct(x), model.decode(mu), atol=1e-5)
        assert model.decode(mu).shape == (5, 1, 28, 28)


def test_an_input_gate_is_only_for_an_autoencoder_and_survives_a_round_trip():
    with pytest.raises(ConfigError, match="input gate is for an autoencoder"):
        ModelConfig(kind="vae", input_gate=True)
    cfg = ModelConfig(kind="ae", latent_dim=MAX_LATENT, input_gate=True)
    assert ModelConfig.from_dict(cfg.to_dict()) == cfg and cfg.latent_dim == 256
    assert ModelConfig.from_dict({k: v for k, v in cfg.to_dict().items() if k != "input_gate"}).input_gate is False
