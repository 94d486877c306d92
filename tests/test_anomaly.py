"""core.experiments.anomaly: scores, ROC/AUROC, thresholds, one-class and cross-data-set setups."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from core.data.registry import load_dataset
from core.experiments import anomaly
from core.models.config import ModelConfig
from core.models.networks import build_model
from core.training.train import TrainConfig, train_model
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


def test_the_threshold_scale_covers_the_scores_in_whole_steps():
    scores = np.array([0.0123, 0.05, 0.0871])
    scale = anomaly.threshold_scale(scores)
    assert scale.step == pytest.approx(0.00019)  # (0.0871 - 0.0123) / 400, two significant digits
    assert scale.lo <= 0.0123 and scale.hi >= 0.0871 and scale.hi - scale.lo < 0.0871 - 0.0123 + 2 * scale.step
    for ends in (scale.lo, scale.hi):
        assert abs(ends / scale.step - round(ends / scale.step)) < 1e-6
    assert scale.snap(0.05004) == pytest.approx(0.04997) and scale.snap(-1) == scale.lo and scale.snap(9) == scale.hi
    # A link keeps six significant digits: the value comes back to the same step.
    value = scale.snap(0.0612345)
    assert scale.snap(float(scale.link(value))) == value
    assert scale.admits(scale.hi + scale.step / 3) and not scale.admits(scale.hi + scale.step)
    flat = anomaly.threshold_scale(np.array([2.0, 2.0]))
    assert flat.hi > flat.lo and flat.step > 0, "equal scores still make a slider"


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


# ---------------------------------------------------------------- error per unit of edge


def test_edge_length_and_the_per_edge_score():
    x = np.zeros((2, 1, 28, 28), np.float32)
    x[0, 0, 10, 10] = 1.0  # one bright pixel: four unit steps
    x[1, 0, 5, 3:13] = 1.0  # a horizontal bar 10 long: 2·10 + 2 unit steps
    np.testing.assert_allclose(anomaly.edge_length(x), [4.0, 22.0])
    assert anomaly.edge_length(np.zeros((1, 1, 4, 4)))[0] == 1.0  # a blank image does not divide by 0
    torch.manual_seed(0)
    ae = build_model(ModelConfig(kind="ae", arch="mlp", latent_dim=4, hidden=(16,))).eval()
    with torch.no_grad():
        sse = ((ae.reconstruct(torch.from_numpy(x)) - torch.from_numpy(x)) ** 2).flatten(1).sum(1).numpy()
    np.testing.assert_allclose(anomaly.anomaly_scores(ae, x, kind="recon-edge"), sse / [4.0, 22.0], rtol=1e-5)


def test_the_per_edge_score_stops_passing_simple_digits_as_eights(mnist5k):
    # Bug (issue 16): trained on 8s, the reconstruction error passed 1s as normal (little ink to
    # get wrong): AUROC 8 vs 1 near 0.5. Per unit of edge, a 1 is as anomalous as it looks.
    split = anomaly.one_class_split(mnist5k, 8)
    model = anomaly.train_on_split(split, "ae", epochs=8)
    keep = (mnist5k.test_y == 8) | (mnist5k.test_y == 1)
    eights_vs_ones = anomaly.AnomalySplit("8-vs-1", split.train_x, split.normal_test_x, mnist5k.test_x[keep],
                                          mnist5k.test_y[keep] == 1, None, "")  # fmt: skip
    auc = anomaly.detect(model, eights_vs_ones, kinds=("recon-mse", "recon-edge"), pca_components=16).auroc
    assert auc["recon-mse"] < 0.75 and auc["recon-edge"] > 0.85, auc
    assert auc["pca-edge"] > auc["pca"], auc  # the same holds for the linear baseline


# ---------------------------------------------------------------- models kept on disk


def test_a_held_out_job_saves_its_model_and_it_loads_back(mnist5k, tmp_path):
    from core.app import jobs
    from core.formats.checkpoints import CheckpointError

    split = anomaly.held_out_split(mnist5k, 7)
    path = tmp_path / "anomaly" / anomaly.held_out_name("mnist-5k", 7)
    assert anomaly.load_held_out(path, 7) is None  # nothing saved yet
    job = jobs.start_held_out(split, "vae", None, save_as=path, digit=7, epochs=1)
    assert job.wait(120) and job.status == jobs.DONE, job.error
    result = job.result
    assert result.saved == path.with_name(path.name + ".safetensors") and not result.message
    assert result.seconds > 0 and set(result.report.scores) == {"recon-mse", "elbo"}
    again = anomaly.load_held_out(path, 7)  # as after a restart
    x = torch.from_numpy(split.test_x[:5])
    with torch.no_grad():
        np.testing.assert_allclose(again.model.reconstruct(x), result.model.reconstruct(x), atol=1e-6)
    assert anomaly.held_out_digit(again.meta) == 7
    with pytest.raises(CheckpointError, match="digit 3"):
        anomaly.load_held_out(path, 3)


def test_a_held_out_model_that_cannot_be_saved_still_serves(mnist5k, tmp_path):
    from core.app import jobs

    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    job = jobs.start_held_out(anomaly.held_out_split(mnist5k, 7), "ae", None, save_as=blocked / "m", digit=7, epochs=1)
    assert job.wait(120) and job.status == jobs.DONE, job.error
    assert job.result.saved is None and "could not be saved" in job.result.message


def test_the_anomaly_page_models_are_shipped():
    from core.formats.checkpoints import SHIPPED_DIR
    from core.training.pretrain import read_manifest

    ckpt = anomaly.load_held_out(SHIPPED_DIR / anomaly.held_out_name("mnist", 5), 5)
    assert ckpt is not None and ckpt.meta["dataset"]["n_train"] == 60_000 - 5_421  # every training digit but 5s
    entries = {e.name: e for e in read_manifest()}
    for digit in range(10):
        name = anomaly.one_class_name(digit)
        assert entries[name].classes == [digit] and entries[name].storage == "float16"
        one = anomaly.load_one_class(SHIPPED_DIR / name, digit)
        assert one is not None and one.meta["dataset"]["n_train"] > 5_000, name
    with pytest.raises(anomaly.CheckpointError, match="alone"):
        anomaly.load_one_class(SHIPPED_DIR / anomaly.one_class_name(3), 4)
    # Models of part of MNIST stay out of the sidebar and the other pages' pickers.
    from core.app.catalog import list_models

    listed = {e.name for e in list_models()}
    assert "mnist-vae-conv-z16" in listed and not any("-only-" in n or "-without-" in n for n in listed)


def test_a_manifest_entry_with_classes_trains_on_those_only(mnist5k):
    from core.training.pretrain import Entry

    entry = Entry(name="x", dataset="mnist-5k", model={}, train={"epochs": 1}, classes=[0, 2])
    picked = entry.select(mnist5k)
    assert set(picked.train_y) == {0, 2} and set(picked.test_y) == {0, 2}
    assert len(picked.train_x) == np.isin(mnist5k.train_y, [0, 2]).sum() and "classes 0, 2 only" in picked.source_note
    assert entry.raw()["classes"] == [0, 2]
    assert "classes" not in Entry(name="y", dataset="mnist", model={}, train={}).raw()  # old entries unchanged
