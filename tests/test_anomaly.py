"""core.anomaly: scores, ROC/AUROC, thresholds, one-class and cross-data-set setups."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from core import anomaly
from core.config import ModelConfig
from core.data import load_dataset
from core.models import build_model
from core.train import TrainConfig, train_model
from tests.conftest import requires_shared_data, shared_data_dir

NORMAL = 1  # ones are the easy one-class case: everything else reconstructs badly


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def ones(mnist5k):
    return anomaly.one_class_split(mnist5k, NORMAL)


@pytest.fixture(scope="module")
def ones_vae(ones):
    model, _ = train_model(
        ModelConfig(kind="vae", arch="mlp", latent_dim=8, hidden=(128,)),
        ones.train_dataset(),
        TrainConfig(epochs=15, batch_size=32, lr=2e-3),
    )
    return model


# ---------------------------------------------------------------- ROC and thresholds


def test_roc_and_auroc_match_scikit_learn():
    rng = np.random.default_rng(0)
    is_anomaly = rng.random(500) < 0.3
    scores = rng.normal(size=500) + 1.5 * is_anomaly
    curve = anomaly.roc(scores, is_anomaly)
    assert curve.auroc == pytest.approx(roc_auc_score(is_anomaly, scores))
    assert anomaly.auroc(scores, is_anomaly) == curve.auroc
    assert 0.8 < curve.auroc < 0.9  # two unit Gaussians 1.5 apart: Φ(1.5/√2) ≈ 0.86
    assert curve.fpr[0] == 0 and curve.tpr[-1] == 1 and np.all(np.diff(curve.fpr) >= 0)
    assert curve.fpr.shape == curve.tpr.shape == curve.thresholds.shape
    assert anomaly.auroc(is_anomaly.astype(float), is_anomaly) == 1.0
    assert anomaly.auroc(-is_anomaly.astype(float), is_anomaly) == 0.0


def test_roc_refuses_one_sided_or_broken_input():
    with pytest.raises(ValueError, match="both"):
        anomaly.roc(np.arange(4.0), np.ones(4, bool))
    with pytest.raises(ValueError, match="NaN"):
        anomaly.roc(np.array([0.0, np.nan]), np.array([False, True]))
    with pytest.raises(ValueError, match="same length"):
        anomaly.roc(np.arange(3.0), np.array([False, True]))


def test_threshold_counts_precision_and_recall():
    scores = np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6])
    is_anomaly = np.array([False, False, True, False, True, True])
    s = anomaly.threshold_stats(scores, is_anomaly, 0.35)  # flags 0.4, 0.5, 0.6
    assert (s.tp, s.fp, s.tn, s.fn) == (2, 1, 2, 1)
    assert s.precision == pytest.approx(2 / 3) and s.recall == pytest.approx(2 / 3)
    assert s.fpr == pytest.approx(1 / 3) and s.accuracy == pytest.approx(4 / 6)
    assert s.f1 == pytest.approx(2 / 3)
    none = anomaly.threshold_stats(scores, is_anomaly, 1.0)
    assert (none.tp, none.fp, none.recall, none.precision) == (0, 0, 0.0, 1.0)
    every = anomaly.threshold_stats(scores, is_anomaly, -1.0)
    assert every.recall == 1.0 and every.precision == 0.5 and every.fpr == 1.0


def test_most_anomalous_are_the_highest_scores_first():
    scores = np.array([0.3, 5.0, 0.1, 2.0, 5.0])
    assert anomaly.most_anomalous(scores, 3).tolist() == [1, 4, 3]
    assert anomaly.most_anomalous(scores, 0).size == 0


# ---------------------------------------------------------------- scores


def test_scores_are_the_per_example_errors(mnist5k):
    torch.manual_seed(0)
    vae = build_model(ModelConfig(kind="vae", arch="mlp", latent_dim=4, hidden=(32,))).eval()
    x = mnist5k.test_x[:20]
    xt = torch.from_numpy(x)
    mse = anomaly.anomaly_scores(vae, x, kind="recon-mse")
    expected = ((vae.reconstruct(xt) - xt) ** 2).flatten(1).mean(1).numpy()
    np.testing.assert_allclose(mse, expected, rtol=1e-5)
    nll = anomaly.anomaly_scores(vae, x, kind="recon-nll")
    with torch.no_grad():
        np.testing.assert_allclose(nll, vae(xt, sample=False).recon.numpy(), rtol=1e-5)
    elbo = anomaly.anomaly_scores(vae, x, kind="elbo", samples=3, seed=1)
    np.testing.assert_allclose(elbo, anomaly.anomaly_scores(vae, x, kind="elbo", samples=3, seed=1))
    assert elbo.shape == (20,) and np.all(elbo > 0)
    # The ELBO adds the (positive) KL to a reconstruction term of the same size.
    assert np.mean(elbo) > 0.9 * np.mean(nll)


def test_elbo_needs_a_vae(mnist5k):
    ae = build_model(ModelConfig(kind="ae", arch="mlp", latent_dim=4, hidden=(16,)))
    with pytest.raises(ValueError, match="needs a VAE"):
        anomaly.anomaly_scores(ae, mnist5k.test_x[:2], kind="elbo")
    with pytest.raises(ValueError, match="unknown score"):
        anomaly.anomaly_scores(ae, mnist5k.test_x[:2], kind="likelihood")


# ---------------------------------------------------------------- setups


def test_one_class_split(ones, mnist5k):
    assert np.all(ones.train_x == mnist5k.train_x[mnist5k.train_y == NORMAL])
    np.testing.assert_array_equal(ones.is_anomaly, mnist5k.test_y != NORMAL)
    assert len(ones.normal_test_x) == np.sum(mnist5k.test_y == NORMAL)
    ds = ones.train_dataset()
    assert len(ds.train_x) == len(ones.train_x) and ds.image_shape == (1, 28, 28)
    with pytest.raises(ValueError, match="out of range"):
        anomaly.one_class_split(mnist5k, 10)


def test_one_class_vae_finds_the_other_digits(ones, ones_vae):
    report = anomaly.detect(ones_vae, ones, kinds=("recon-mse", "recon-nll", "elbo"), pca_components=16)
    assert set(report.scores) == {"recon-mse", "recon-nll", "elbo", "pca"}
    auc = report.auroc
    assert auc["recon-mse"] > 0.95 and auc["elbo"] > 0.95, auc
    assert auc["pca"] > 0.9, auc
    # The most anomalous images are anomalies; the least anomalous are ones.
    s = report.scores["recon-mse"]
    assert ones.is_anomaly[anomaly.most_anomalous(s, 20)].all()
    assert not ones.is_anomaly[np.argsort(s)[:20]].any()


def test_ae_detection_skips_the_elbo(ones, mnist5k):
    torch.manual_seed(0)
    ae = build_model(ModelConfig(kind="ae", arch="mlp", latent_dim=4, hidden=(16,))).eval()
    report = anomaly.detect(ae, ones, pca_components=None)
    assert set(report.scores) == {"recon-mse"}


def test_cross_dataset_split_with_embedded_sets(mnist5k):
    faces = load_dataset("lfw-faces")
    with pytest.raises(ValueError, match="shapes differ"):
        anomaly.cross_dataset_split(mnist5k, faces)
    inverted = mnist5k.__class__(
        name="inverted", source="derived", source_note="", train_x=1 - mnist5k.train_x, test_x=1 - mnist5k.test_x
    )
    split = anomaly.cross_dataset_split(mnist5k, inverted, max_per_side=300)
    assert len(split.test_x) == 600 and split.is_anomaly.sum() == 300
    np.testing.assert_array_equal(split.test_labels, split.is_anomaly)
    # The PCA baseline separates white-on-black from black-on-white digits perfectly.
    assert anomaly.auroc(anomaly.pca_scores(split.train_x, split.test_x, 16), split.is_anomaly) > 0.99


@pytest.mark.slow
@requires_shared_data
def test_mnist_vs_fashion_mnist(mnist5k):
    fashion = load_dataset("fashion-mnist", data_dir=shared_data_dir(), download=False, fallback=False)
    split = anomaly.cross_dataset_split(mnist5k, fashion, max_per_side=1000)
    vae, _ = train_model(
        ModelConfig(kind="vae", arch="mlp", latent_dim=16, hidden=(256,)), mnist5k, TrainConfig(epochs=4, lr=2e-3)
    )
    report = anomaly.detect(vae, split, kinds=("recon-mse", "elbo"), pca_components=32)
    assert report.auroc["recon-mse"] > 0.9 and report.auroc["elbo"] > 0.9, report.auroc


def test_held_out_split_is_the_reverse_of_one_class(mnist5k):
    split = anomaly.held_out_split(mnist5k, 5)
    assert len(split.train_x) == np.sum(mnist5k.train_y != 5)
    np.testing.assert_array_equal(split.is_anomaly, mnist5k.test_y == 5)
    assert len(split.normal_test_x) == np.sum(mnist5k.test_y != 5)
    assert "5 is the anomaly" in split.description
    with pytest.raises(ValueError, match="out of range"):
        anomaly.held_out_split(mnist5k, 10)
    with pytest.raises(ValueError, match="no labels"):
        anomaly.held_out_split(load_dataset("lfw-faces"), 0)


def test_a_small_model_trained_without_a_digit_flags_it(mnist5k):
    split = anomaly.held_out_split(mnist5k, 0)
    steps = []

    class Count(anomaly.Callback):
        def on_step_end(self, step, total_steps, loss):
            steps.append((step, total_steps))

    model = anomaly.train_on_split(split, "ae", [Count()], epochs=3)
    assert model.config.kind == "ae" and model.config.arch == "mlp"
    assert steps[-1][0] == steps[-1][1] == 3 * int(np.ceil(len(split.train_x) / anomaly.HELD_OUT_TRAIN["batch_size"]))
    report = anomaly.detect(model, split, pca_components=None)
    assert report.auroc["recon-mse"] > 0.6, report.auroc  # zeros are big round digits: easy to flag
    with pytest.raises(ValueError, match="'vae' or 'ae'"):
        anomaly.train_on_split(split, "cvae")
