"""core.experiments.sweep: the β table, from trained models and from a (parallel) sweep."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core.experiments import sweep
from core.models.config import ConfigError, ModelConfig
from core.models.evaluate import active_units, encode_dataset, evaluate
from core.models.networks import build_model
from core.training.train import History, TrainConfig, TrainingDiverged
from tests.conftest import tiny_dataset

MLP = ModelConfig(kind="vae", arch="mlp", latent_dim=8, hidden=(128,))


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def small_and_large_beta(mnist5k):
    """A VAE at β = 0.1 and one at β = 50, same seed and schedule, trained in two processes.

    Short runs leave "weakly active" units at moderate β (the collapse below Burda's 0.01
    takes many epochs); at β = 50 the code collapses within a few epochs.
    """
    return sweep.run_sweep([50.0, 0.1], MLP, mnist5k, TrainConfig(epochs=6, batch_size=64, lr=2e-3, seed=0), workers=2)


def test_row_figures_agree_with_the_evaluator(mnist5k):
    torch.manual_seed(0)
    model = build_model(MLP).eval()
    x = mnist5k.test_x[:300]
    row = sweep.sweep_row(model, x, beta=2.0)
    mu, logvar = encode_dataset(model, x)
    m = evaluate(model, x)
    assert row.beta == 2.0 and row.latent_dim == 8 and row.n == 300
    assert row.kl_total == pytest.approx(sum(row.kl_per_dim), rel=1e-6)
    assert row.kl_total == pytest.approx(m.kl, rel=1e-4)
    assert row.test_loss == pytest.approx(m.loss, rel=1e-6) and row.recon == pytest.approx(m.recon, rel=1e-6)
    assert row.mean_variance == pytest.approx(float(np.exp(logvar).mean()), rel=1e-5)
    assert row.mean_abs_mu == pytest.approx(float(np.abs(mu).mean()), rel=1e-5)
    assert row.active_units == active_units(mu)
    recon = model.reconstruct(torch.from_numpy(x)).numpy()
    assert row.mse == pytest.approx(float(((recon - x) ** 2).mean()), rel=1e-4)
    assert set(row.to_dict()) >= {"beta", "mean_variance", "mean_abs_mu", "kl_per_dim", "active_units", "test_loss"}


def test_rows_need_a_vae():
    ae = build_model(ModelConfig(kind="ae", arch="mlp", latent_dim=4, hidden=(16,)))
    with pytest.raises(ValueError, match="needs a VAE"):
        sweep.sweep_row(ae, np.zeros((2, 1, 28, 28), np.float32), beta=1.0)


@pytest.mark.slow
def test_larger_beta_collapses_the_code(small_and_large_beta, mnist5k):
    res = small_and_large_beta
    assert not res.cancelled and not res.failures and res.workers == 2
    small, large = res.rows  # sorted by β
    assert (small.beta, large.beta) == (0.1, 50.0)
    # The known shape: posterior variance towards the prior's 1, means towards 0, fewer active units.
    assert small.mean_variance < 0.2 and 0.9 < large.mean_variance <= 1.05
    assert large.mean_abs_mu < 0.2 * small.mean_abs_mu
    assert small.active_units == 8
    assert large.active_units <= 2
    assert large.kl_total < 0.1 * small.kl_total
    # ... and the price: reconstructions get worse.
    assert large.recon > small.recon and large.mse > small.mse
    assert small.epochs == large.epochs == 6 and small.seconds > 0
    assert set(res.models) == {0.1, 50.0} and len(res.histories[50.0].epochs) == 6


@pytest.mark.slow
def test_rows_from_trained_models_reproduce_the_sweep(small_and_large_beta, mnist5k):
    res = small_and_large_beta
    rows = sweep.rows_from_models(res.models, mnist5k.test_x)
    for a, b in zip(rows, res.rows, strict=True):
        assert a.beta == b.beta
        assert a.active_units == b.active_units
        assert a.kl_total == pytest.approx(b.kl_total, rel=1e-5)
        assert a.test_loss == pytest.approx(b.test_loss, rel=1e-5)
    assert "active" in sweep.format_table(rows)
    pairs = sweep.rows_from_models([(50.0, res.models[50.0])], mnist5k.test_x[:100])
    assert len(pairs) == 1 and pairs[0].n == 100


class Recorder(sweep.SweepCallback):
    def __init__(self, stop_after_steps: int | None = None):
        self.started, self.ended, self.epochs, self.steps = [], [], [], 0
        self.stop_after = stop_after_steps

    def on_job_start(self, index, total_steps):
        self.started.append(index)

    def on_step(self, index, step, total_steps, loss):
        self.steps += 1
        assert 1 <= step <= total_steps and np.isfinite(loss)

    def on_epoch_end(self, index, metrics):
        self.epochs.append((index, metrics.epoch))

    def on_job_end(self, index, result):
        self.ended.append(index)

    def should_stop(self):
        return self.stop_after is not None and self.steps >= self.stop_after


@pytest.mark.slow
def test_parallel_sweep_matches_sequential_and_reports_progress():
    data = tiny_dataset(64)
    cfg = ModelConfig(kind="vae", arch="mlp", latent_dim=3, hidden=(16,))
    tc = TrainConfig(epochs=2, batch_size=16, seed=5)
    rec = Recorder()
    par = sweep.run_sweep([0.5, 2.0], cfg, data, tc, workers=2, callback=rec)
    seq = sweep.run_sweep([0.5, 2.0], cfg, data, tc, workers=1)
    assert par.workers == 2 and seq.workers == 1
    assert sorted(rec.started) == [0, 1] and sorted(rec.ended) == [0, 1]
    assert sorted(rec.epochs) == [(0, 1), (0, 2), (1, 1), (1, 2)]
    assert rec.steps >= 4
    # Same seed, same data: the worker processes train the same models as this process.
    for a, b in zip(par.rows, seq.rows, strict=True):
        assert a.beta == b.beta
        assert a.test_loss == pytest.approx(b.test_loss, rel=1e-4)
    w_par = par.models[2.0].state_dict()["to_mu.weight"]
    w_seq = seq.models[2.0].state_dict()["to_mu.weight"]
    assert torch.allclose(w_par, w_seq, atol=1e-5)


def test_cancel_stops_the_sweep_and_keeps_no_half_trained_row():
    data = tiny_dataset(64)
    cfg = ModelConfig(kind="vae", arch="mlp", latent_dim=3, hidden=(16,))
    rec = Recorder(stop_after_steps=1)
    res = sweep.run_sweep([0.5, 1.0, 2.0], cfg, data, TrainConfig(epochs=50, batch_size=8), workers=1, callback=rec)
    assert res.cancelled and res.rows == [] and res.models == {}
    assert rec.started == [0]  # later jobs never start
    assert res.histories[0.5].cancelled


def test_convex_form_and_bad_sweeps_are_refused(mnist5k):
    with pytest.raises(ConfigError, match="0 ≤ β ≤ 1"):
        sweep.run_sweep([0.5, 2.0], MLP, mnist5k, TrainConfig(epochs=1, loss_form="convex"))
    with pytest.raises(ConfigError, match="VAE"):
        sweep.run_sweep([1.0], ModelConfig(kind="ae", arch="mlp", latent_dim=4, hidden=(8,)), mnist5k)
    with pytest.raises(ConfigError, match="different β"):
        sweep.run_sweep([1.0, 1.0], MLP, mnist5k)


def test_convex_form_runs_and_is_recorded():
    data = tiny_dataset(32)
    cfg = ModelConfig(kind="vae", arch="mlp", latent_dim=2, hidden=(8,))
    res = sweep.run_sweep([0.5], cfg, data, TrainConfig(epochs=1, loss_form="convex"))
    assert [r.loss_form for r in res.rows] == ["convex"]
    assert res.histories[0.5].epochs[0].beta == 0.5


def test_a_diverged_model_is_reported_and_the_rest_go_on(monkeypatch):
    real = sweep.train_model

    def flaky(model_config, dataset, config, callbacks=None):
        if config.beta == 1.0:
            raise TrainingDiverged("training diverged at epoch 1", History())
        return real(model_config, dataset, config, callbacks)

    monkeypatch.setattr(sweep, "train_model", flaky)
    data = tiny_dataset(32)
    cfg = ModelConfig(kind="vae", arch="mlp", latent_dim=2, hidden=(8,))
    res = sweep.run_sweep([0.5, 1.0], cfg, data, TrainConfig(epochs=1), workers=1)
    assert [r.beta for r in res.rows] == [0.5]
    assert "diverged" in res.failures[1.0] and not res.cancelled


def _row(beta: float, var: float, form: str = "convex-mse") -> sweep.SweepRow:
    return sweep.SweepRow(beta, form, 4, var, 0.5, 1.0, [0.25] * 4, 4, 90.0, 0.02, 91.0, 100)


def test_the_table_prints_small_variances_with_significant_figures():
    # Issue 16: with 3 decimals every row below β = 5e-4 read 0.000.
    text = sweep.format_table([_row(0.0, 4.4e-5), _row(5e-6, 0.0089), _row(0.5, 0.99999905)], talk=True)
    lines = text.splitlines()[2:]
    assert "4.4e-05" in lines[0] and "0.0089" in lines[1] and "0.000 " not in text
    assert lines[2].split()[-1] == "0.999999", "the talk's figure beside ours"
    assert "talk σ²" in text.splitlines()[0] and "talk" not in sweep.format_table([_row(0.0, 1e-4)])


def test_the_talks_column_belongs_to_the_talks_objective():
    assert sweep.talk_variance(0.5, "convex-mse") == 0.99999905
    assert sweep.talk_variance(5e-6, "convex-mse") == 0.0089 and sweep.talk_variance(0.0, "convex-mse") == 4.4e-5
    assert sweep.talk_variance(1.0, "convex-mse") is None, "the talk has no figure at β = 1"
    assert sweep.talk_variance(0.5, "convex") is None and sweep.talk_variance(0.2, "convex-mse") is None
    talk = sweep.PRESETS["talk"]
    assert sweep.parse_betas(talk.betas) == sorted(sweep.TALK_BETAS) and talk.loss_form == "convex-mse"


def test_the_page_scores_a_subset_drawn_across_classes(mnist5k):
    small = sweep.page_test_split(mnist5k, 200)
    assert len(small.test_x) == 200 and len(small.train_x) == len(mnist5k.train_x)
    assert np.bincount(small.test_y, minlength=10).min() >= 19, "every digit, not the first 200 items"
    assert sweep.page_test_split(small, 500) is small


def test_the_page_recipe_and_its_time_estimate(mnist5k):
    tc = sweep.page_train_config(8, "convex-mse")
    tc.validate()
    assert (tc.batch_size, tc.lr_schedule, tc.loss_form) == (64, "cosine", "convex-mse")
    assert sweep.page_model_config(mnist5k, 10).latent_dim == 10
    quick = sweep.PRESETS["quick"]
    seconds = sweep.estimate_seconds(len(sweep.parse_betas(quick.betas)), quick.epochs, len(mnist5k.train_x))
    assert seconds <= 30, "issue 15: the page's sweep shows something within 30 s"


def test_the_talks_objective_trains():
    data = tiny_dataset(32)
    cfg = ModelConfig(kind="vae", arch="mlp", latent_dim=2, hidden=(8,))
    res = sweep.run_sweep([0.0, 0.5], cfg, data, TrainConfig(epochs=2, loss_form="convex-mse"), workers=1)
    assert [r.loss_form for r in res.rows] == ["convex-mse"] * 2
    # its training loss is on the MSE's scale (a fraction of one), not nats summed over pixels
    assert res.histories[0.0].epochs[-1].train_loss < 1.0 < res.histories[0.0].epochs[-1].train_recon


@pytest.mark.slow
def test_the_talks_preset_reproduces_the_shape(mnist5k):
    """Issue 16: β from 0 to 0.5 under (1-β)·MSE + β·KL moves the mean posterior variance from
    ≈ 0 to ≈ 1, monotonically (the collapsed rows at β ≥ 0.05 equal 1 up to optimisation noise)."""
    talk = sweep.PRESETS["talk"]
    data = sweep.page_test_split(mnist5k)
    betas = [0.0, 5e-6, 5e-4, 5e-3, 0.5]
    res = sweep.run_sweep(
        betas, sweep.page_model_config(data, talk.latent), data, sweep.page_train_config(talk.epochs, talk.loss_form)
    )
    var = [r.mean_variance for r in res.rows]
    assert var[0] <= 0.05 and var[-1] >= 0.95
    assert var == sorted(var), var
