"""Known factors measured on a model (core.lenses.factors): a code that is the factors scores
high and names every dimension, a rotation of it scores low and names none clearly, the report
survives a model card, and a data set without factors or a conditional model gets a clear error."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from core.data.registry import Dataset, load_dataset
from core.lenses.factors import FactorReport, NoFactors, factor_report

NAMES = ("shape", "size", "x", "y")


class CodeIsThePixels:
    """A stand-in model whose code is its (1, 1, K) image times a fixed matrix."""

    conditional = False
    device = torch.device("cpu")

    def __init__(self, matrix: np.ndarray):
        self.matrix = torch.as_tensor(matrix, dtype=torch.float32)

    def encode(self, x, y=None):
        return x.flatten(1) @ self.matrix, None


def factor_set(n_train: int = 3000, n_test: int = 1000) -> Dataset:
    """Images that hold their own four factors (levels 3, 6, 16, 16) as pixel values."""
    rng = np.random.default_rng(0)
    levels = np.array([3, 6, 16, 16])

    def draw(n):
        f = rng.integers(0, levels, size=(n, 4)).astype(np.float32)
        return f, (f / (levels - 1) + rng.normal(0, 0.01, f.shape)).astype(np.float32)[:, None, None, :]

    (ftr, xtr), (fte, xte) = draw(n_train), draw(n_test)
    return Dataset("toy", "embedded", "toy", xtr, xte, train_factors=ftr, test_factors=fte, factor_names=NAMES)


def test_a_code_that_is_the_factors_scores_high_and_names_every_dimension():
    report = factor_report(CodeIsThePixels(np.eye(4)), factor_set(), n_fit=2000)
    assert report.mig > 0.9 and report.disentanglement > 0.9 and report.completeness > 0.9
    assert report.informativeness > 0.9
    assert [d.label for d in report.dims()] == ["z0 ≈ shape", "z1 ≈ size", "z2 ≈ x", "z3 ≈ y"]
    assert report.mi.shape == (4, 4) and report.importance.shape == (4, 4) and report.n_test == 1000


def test_a_rotated_code_scores_low_and_names_no_dimension_clearly():
    hadamard = np.array([[1, 1, 1, 1], [1, -1, 1, -1], [1, 1, -1, -1], [1, -1, -1, 1]], np.float32) / 2
    report = factor_report(CodeIsThePixels(hadamard), factor_set(), n_fit=2000)
    assert report.mig < 0.3 and report.disentanglement < 0.5
    assert not any(d.clear for d in report.dims())


def test_the_report_survives_a_model_card():
    report = factor_report(CodeIsThePixels(np.eye(4)), factor_set(), n_fit=1000)
    back = FactorReport.from_card(json.loads(json.dumps(report.to_card())))
    assert back.names == NAMES and back.mig == pytest.approx(report.mig, abs=1e-4)
    assert np.allclose(back.mi, report.mi, atol=1e-4)
    assert [d.label for d in back.dims()] == [d.label for d in report.dims()]
    with pytest.raises(ValueError, match="malformed"):
        FactorReport.from_card({**report.to_card(), "mi": [[0.1]]})


def test_sets_without_factors_and_conditional_models_are_refused_in_words():
    with pytest.raises(NoFactors, match="lfw-faces does not know what made its images"):
        factor_report(CodeIsThePixels(np.eye(625)), load_dataset("lfw-faces"))
    conditional = CodeIsThePixels(np.eye(4))
    conditional.conditional = True
    with pytest.raises(NoFactors, match="conditional"):
        factor_report(conditional, factor_set(300, 100))
