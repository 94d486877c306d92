import numpy as np
import pytest
import torch

from core.models.config import ConfigError, ModelConfig
from core.models.evaluate import active_units, encode_dataset, evaluate
from core.models.networks import build_model
from core.training.train import Callback, TrainConfig, TrainingDiverged, _contractive_penalty, fit, train_model
from tests.conftest import tiny_dataset

MLP = ModelConfig(kind="vae", arch="mlp", latent_dim=8, hidden=(128,))


def test_short_training_lowers_the_test_loss(mnist5k):
    torch.manual_seed(0)
    model = build_model(MLP)
    before = evaluate(model, mnist5k.test_x, seed=0).loss
    history = fit(model, mnist5k, TrainConfig(epochs=2, batch_size=64, seed=0))
    after = evaluate(model, mnist5k.test_x, seed=0).loss
    assert before > 500  # an untrained decoder is near 784·log 2 ≈ 543 nats
    assert after < 230 < before
    assert history.last.test_loss == pytest.approx(after, rel=1e-6)
    assert history.epochs[1].train_loss < history.epochs[0].train_loss
    for e in history.epochs:
        assert e.test_loss == pytest.approx(e.test_recon + e.test_kl, rel=1e-6)
        assert e.seconds > 0


def test_same_seed_gives_the_same_numbers():
    data = tiny_dataset(64)
    cfg = TrainConfig(epochs=2, batch_size=16, seed=3)
    _, h1 = train_model(MLP, data, cfg)
    _, h2 = train_model(MLP, data, cfg)
    _, h3 = train_model(MLP, data, TrainConfig(epochs=2, batch_size=16, seed=4))
    strip = [{k: v for k, v in e.to_dict().items() if not k.endswith("seconds")} for e in h1.epochs]
    assert strip == [{k: v for k, v in e.to_dict().items() if not k.endswith("seconds")} for e in h2.epochs]
    assert h1.last.test_loss != h3.last.test_loss


class Corrupter(Callback):
    """Poison a weight with NaN at a given step, as a diverging run would."""

    def __init__(self, model, at_step):
        self.model, self.at_step, self.after_epoch = model, at_step, []

    def on_step_end(self, step, total, loss):
        if step == self.at_step:
            with torch.no_grad():
                self.model.to_mu.weight[0, 0] = float("nan")

    def on_epoch_end(self, metrics, model):
        self.after_epoch.append({k: v.clone() for k, v in model.state_dict().items()})


def test_nan_guard_restores_the_last_good_epoch():
    data = tiny_dataset(64)
    torch.manual_seed(0)
    model = build_model(MLP)
    cb = Corrupter(model, at_step=3)  # 2 steps per epoch: poisoned during epoch 2
    with pytest.raises(TrainingDiverged, match="diverged at epoch 2.*restored the weights of epoch 1") as err:
        fit(model, data, TrainConfig(epochs=5, batch_size=16), [cb])
    assert len(err.value.history.epochs) == 1
    for k, v in model.state_dict().items():
        assert torch.equal(v, cb.after_epoch[0][k]), k
        assert torch.isfinite(v).all()


def test_nan_guard_in_the_first_epoch_restores_the_initial_weights():
    data = tiny_dataset(64)
    torch.manual_seed(0)
    model = build_model(MLP)
    initial = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(TrainingDiverged, match="initial weights"):
        fit(model, data, TrainConfig(epochs=1, batch_size=16), [Corrupter(model, at_step=1)])
    assert all(torch.equal(v, initial[k]) for k, v in model.state_dict().items())


def test_cancel_stops_after_the_current_step():
    class StopAt(Callback):
        steps = 0

        def on_step_end(self, step, total, loss):
            self.steps = step

        def should_stop(self):
            return self.steps >= 3

    cb = StopAt()
    _, history = train_model(MLP, tiny_dataset(64), TrainConfig(epochs=10, batch_size=4), [cb])
    assert history.cancelled and cb.steps == 3 and history.epochs == []


def test_kl_warmup_ramps_beta():
    seen = []

    class Record(Callback):
        def on_epoch_end(self, m, model):
            seen.append(m.beta)

    train_model(MLP, tiny_dataset(64), TrainConfig(epochs=4, batch_size=16, beta=2.0, kl_warmup_epochs=2), [Record()])
    assert seen == pytest.approx([1.0, 2.0, 2.0, 2.0])


def test_batch_larger_than_the_data_is_clamped_with_a_warning():
    _, history = train_model(MLP, tiny_dataset(64), TrainConfig(epochs=1, batch_size=1000))
    assert "larger than the 32 training images" in history.warnings[0]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"epochs": 10**6}, "epochs"),
        ({"epochs": 0}, "epochs"),
        ({"beta": -1.0}, "β"),
        ({"lr": 0.0}, "learning rate"),
        ({"lr": float("inf")}, "learning rate"),
        ({"batch_size": 0}, "batch size"),
        ({"loss_form": "convex", "beta": 4.0}, "0 ≤ β ≤ 1"),
        ({"noise": "speckle"}, "noise"),
        ({"noise": "gaussian", "noise_level": 0.0}, "noise level"),
        ({"sparse_weight": -1.0}, "sparse"),
    ],
)
def test_absurd_settings_are_refused(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        train_model(MLP, tiny_dataset(8), TrainConfig(**kwargs))


def test_data_that_do_not_fit_the_model_are_refused():
    with pytest.raises(ConfigError, match="model expects"):
        train_model(MLP, tiny_dataset(8, shape=(1, 25, 25)), TrainConfig(epochs=1))
    cvae = ModelConfig(kind="cvae", arch="mlp", num_classes=10, latent_dim=4)
    data = tiny_dataset(8)
    data.class_names = None
    with pytest.raises(ConfigError, match="labels"):
        train_model(cvae, data, TrainConfig(epochs=1))


def test_contractive_penalty_estimates_the_jacobian_norm():
    # With a linear encoder mu = W x + b, ∂mu/∂x = W for every x: ‖J‖_F² = ‖W‖_F².
    model = build_model(ModelConfig(kind="ae", arch="mlp", latent_dim=4, hidden=(16,)))
    model.encoder.head = torch.nn.Identity()
    model.encoder.out_dim = 784
    model.to_mu = torch.nn.Linear(784, 4)
    x = torch.rand(4000, 1, 28, 28)
    torch.manual_seed(0)
    est = _contractive_penalty(model, x, None).mean().item()
    exact = model.to_mu.weight.pow(2).sum().item()
    assert est == pytest.approx(exact, rel=0.05)


def test_regularizers_do_what_they_say(mnist5k):
    def code_l1(**kw):
        cfg = ModelConfig(kind="ae", arch="mlp", latent_dim=8, hidden=(128,))
        model, _ = train_model(cfg, mnist5k, TrainConfig(epochs=2, batch_size=64, **kw))
        mu, _ = encode_dataset(model, mnist5k.test_x)
        return np.abs(mu).sum(1).mean(), model

    plain, _ = code_l1()
    sparse, _ = code_l1(sparse_weight=1.0)
    assert sparse < 0.5 * plain


def test_denoising_training_learns_to_remove_noise(mnist5k):
    from core.data.corrupt import corrupt

    cfg = ModelConfig(kind="ae", arch="mlp", latent_dim=16, hidden=(256,))
    tcfg = TrainConfig(epochs=3, batch_size=64, noise="gaussian", noise_level=0.5)
    dae, _ = train_model(cfg, mnist5k, tcfg)
    clean = torch.as_tensor(mnist5k.test_x[:200])
    noisy = corrupt(clean, "gaussian", 0.5, torch.Generator().manual_seed(0))
    err_noisy = (noisy - clean).pow(2).mean().item()
    err_dae = (dae.reconstruct(noisy) - clean).pow(2).mean().item()
    assert err_dae < 0.4 * err_noisy


def test_cvae_trains_on_labels(mnist5k):
    cfg = ModelConfig(kind="cvae", arch="mlp", latent_dim=4, hidden=(128,), num_classes=10)
    model, history = train_model(cfg, mnist5k, TrainConfig(epochs=1, batch_size=64))
    assert history.last.test_loss < 250
    mu, logvar = encode_dataset(model, mnist5k.test_x, mnist5k.test_y)
    assert mu.shape == logvar.shape == (len(mnist5k.test_x), 4)
    assert active_units(mu) >= 1
