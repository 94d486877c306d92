"""Anomalies in tables (core.experiments.tabular and the table job of core.app.jobs): the real-valued
likelihood, a model that learns normal rows, the tuned baselines, the report, the rows explained,
and the background job's result and cancel; the shipped breast-cancer model's figures."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from core.app.jobs import CANCELLED, DONE, start_table
from core.data.tables import Table, breast_cancer, split_table
from core.experiments import tabular
from core.experiments.anomaly import auroc
from core.experiments.tabular import (
    BASELINES,
    SHIPPED_TABLE_MODEL,
    explain_rows,
    fit_table_model,
    score_table,
    tune_baseline,
)
from core.formats.checkpoints import SHIPPED_DIR, load_checkpoint
from core.models import losses
from core.models.config import ModelConfig
from core.models.networks import build_model


def clustered(n_normal: int = 600, n_anomalous: int = 80, f: int = 6, seed: int = 0) -> Table:
    """Normal rows near a 2-D plane in F dimensions (what an autoencoder can learn); anomalies off it."""
    rng = np.random.default_rng(seed)
    basis = rng.normal(size=(2, f))
    normal = rng.normal(size=(n_normal, 2)) @ basis + 0.05 * rng.normal(size=(n_normal, f))
    anomalous = rng.normal(size=(n_anomalous, 2)) @ basis + 1.0 * rng.normal(size=(n_anomalous, f))
    x = np.concatenate([normal, anomalous]) * 10 + 50  # the file's units: not standardised
    is_anomaly = np.r_[np.zeros(n_normal, bool), np.ones(n_anomalous, bool)]
    return Table("plane", tuple(f"f{i}" for i in range(f)), x, is_anomaly, ("ok", "odd"), np.arange(len(x)), "test")


@pytest.fixture(scope="module")
def plane():
    split = split_table(clustered())
    model, history, _ = fit_table_model(split, "vae", epochs=40)
    return split, model, history


def test_the_real_valued_likelihood_is_a_gaussian_on_the_decoders_output():
    logits, x = torch.tensor([[[[3.0, -2.0]]]]), torch.tensor([[[[2.5, -1.0]]]])
    log_sigma = torch.tensor(math.log(0.5))
    nll = losses.reconstruction_nll(logits, x, "gaussian-real", log_sigma)
    expected = ((0.5**2 + 1.0**2) / (2 * 0.25)) + 2 * (math.log(0.5) + 0.5 * math.log(2 * math.pi))
    assert nll.item() == pytest.approx(expected, rel=1e-6)
    model = build_model(ModelConfig(kind="ae", arch="mlp", image_shape=(1, 1, 2), latent_dim=1, hidden=(4,),
                                    likelihood="gaussian-real"))  # fmt: skip
    with torch.no_grad():
        model.decoder.net[-1].bias.fill_(7.0)
        model.decoder.net[-1].weight.zero_()
    assert model.decode(torch.zeros(1, 1)).flatten().tolist() == [7.0, 7.0]  # no sigmoid: beyond [0, 1]


def test_a_model_of_normal_rows_scores_the_anomalies_higher(plane):
    split, model, history = plane
    assert history.epochs[-1].train_loss < history.epochs[0].train_loss
    report = score_table(model, split, baselines=("pca",))
    assert set(report.scores) == {"recon-mse", "recon-nll", "elbo", "pca"}
    assert min(report.auroc[k] for k in tabular.SCORES) > 0.9, report.auroc
    assert report.best_baseline() == "pca"  # the normal rows lie on a plane: PCA's own case


def test_each_baseline_is_tuned_on_the_validation_rows(plane):
    split = plane[0]
    for spec in BASELINES.values():
        grid = [dict(zip(spec.grid, v, strict=True)) for v in itertools.product(*spec.grid.values())]
        result = tune_baseline(spec, split)
        assert result.params in grid
        assert result.val_auroc > 0.8, spec.name  # anomalies off the plane: every detector sees them
        assert result.scores.shape == (len(split.test_x),)
        for other in grid:  # the chosen point is the grid's best on the validation rows
            assert auroc(spec.make(split.train_x, **other)(split.val_x), split.val_anomaly) <= result.val_auroc + 1e-12


def test_a_baseline_fits_on_at_most_its_row_budget(monkeypatch, plane):
    seen = []
    spec = BASELINES["lof"]

    def counting(train, **params):
        seen.append(len(train))
        return spec.make(train, **params)

    monkeypatch.setitem(tabular.FIT_ROWS_MOST, "lof", 100)
    tune_baseline(tabular.Baseline("lof", spec.title, spec.short, spec.grid, counting), plane[0])
    assert seen and set(seen) == {100}


def test_the_rows_are_explained_by_the_features_they_get_wrong(plane):
    split, model, _ = plane
    x = split.test_x.copy()
    i = int(np.flatnonzero(~split.test_anomaly)[0])
    split.test_x[i, 4] += 8.0  # one feature of a normal row pushed far off
    try:
        why = explain_rows(model, split, np.array([i]))[0]
    finally:
        split.test_x[:] = x
    assert why.row == int(split.test_rows[i])
    assert why.features[0][0] == "f4" and why.features[0][3] > 0.5
    value = split.scaler.invert(split.test_x[i : i + 1])[0, 4] + 8.0 * split.scaler.std[4]
    assert why.features[0][1] == pytest.approx(value, rel=1e-4)  # reported in the file's units


def test_the_table_job_trains_scores_and_can_be_cancelled():
    split = split_table(clustered(n_normal=200, n_anomalous=40))
    job = start_table(split, "ae", epochs=5)
    assert job.wait(120) and job.status == DONE
    assert set(job.result.report.auroc) == {"recon-mse", "recon-nll", *BASELINES}  # an AE has no ELBO
    slow = start_table(split, "vae", epochs=500)
    slow.cancel()
    assert slow.wait(120) and slow.status in (CANCELLED, DONE) and slow.result is None


def test_the_shipped_breast_cancer_model_detects_malignant_rows():
    ckpt = load_checkpoint(SHIPPED_DIR / f"{SHIPPED_TABLE_MODEL}.safetensors")
    assert ckpt.config.likelihood == "gaussian-real" and ckpt.config.image_shape == (1, 1, 30)
    report = score_table(ckpt.model, split_table(breast_cancer()), baselines=("pca",))
    assert report.auroc["recon-mse"] > 0.9


def test_without_labels_every_row_is_scored_and_the_baselines_take_their_grids_middle(plane):
    t = clustered(n_normal=150, n_anomalous=10)
    split = split_table(Table(t.name, t.features, t.x, None, t.label_names, t.rows, "no labels"))
    report = score_table(plane[1], split)
    assert report.curves == {} and report.best_baseline() is None
    assert all(len(s) == 160 for s in report.scores.values())
    assert report.baselines["pca"].params == {"n_components": 4} and math.isnan(report.baselines["pca"].val_auroc)
