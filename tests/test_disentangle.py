"""Disentanglement scores on codes whose answer is known: an identity code of independent factors
scores about 1, a rotation of it scores low, a split factor has no gap, a constant factor is left out."""

from __future__ import annotations

import math

import numpy as np
import pytest

from core.lenses.disentangle import (
    dci,
    dims_of_factors,
    discretize_factors,
    factor_entropy,
    factor_of_dims,
    mig,
    mutual_info_matrix,
)

N, K, LEVELS = 3000, 5, 10
NAMES = ["shape", "scale", "x", "y", "rotation"]


@pytest.fixture(scope="module")
def factors() -> np.ndarray:
    """(N, K) integer grid levels of K independent factors, like ``sprites.to_levels``."""
    return np.random.default_rng(0).integers(0, LEVELS, size=(N, K)).astype(np.float64)


@pytest.fixture(scope="module")
def identity_code(factors) -> np.ndarray:
    """Each factor scaled into its own dimension, plus a little noise: a perfectly disentangled code."""
    return factors / (LEVELS - 1) * 2.0 - 1.0 + 0.01 * np.random.default_rng(1).normal(size=factors.shape)


def _rotation(seed: int, size: int = K) -> np.ndarray:
    q, r = np.linalg.qr(np.random.default_rng(seed).normal(size=(size, size)))
    return q * np.sign(np.diag(r))  # Haar-distributed orthogonal matrix


def _dci(codes: np.ndarray, factors: np.ndarray):
    cut = 2 * len(codes) // 3
    return dci(codes[:cut], factors[:cut], codes[cut:], factors[cut:], seed=0)


def test_the_mutual_information_of_a_hand_computable_case():
    factors = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=float)  # two independent fair bits
    codes = np.array([[-1.0, 3.0], [-1.0, 5.0], [2.0, 3.0], [2.0, 5.0]])  # z0 = bit 0, z1 = bit 1
    mi = mutual_info_matrix(codes, factors)
    assert mi.shape == (2, 2)
    assert np.allclose(mi, [[math.log(2), 0.0], [0.0, math.log(2)]], atol=1e-12)
    assert np.allclose(factor_entropy(factors), [math.log(2), math.log(2)])
    score = mig(codes, factors)
    assert score.score == pytest.approx(1.0) and np.allclose(score.per_factor, 1.0)


def test_a_fine_factor_is_cut_into_equal_frequency_bins_and_a_coarse_one_keeps_its_levels():
    rng = np.random.default_rng(0)
    fine, coarse = rng.uniform(size=2000), rng.integers(0, 7, size=2000) * 0.5
    labels = discretize_factors(np.stack([fine, coarse], axis=1), bins=20)
    assert np.all(np.bincount(labels[:, 0]) == 100)  # 20 bins of 100 each
    assert sorted(set(labels[:, 1])) == list(range(7))
    assert factor_entropy(fine[:, None], bins=20)[0] == pytest.approx(math.log(20))


def test_an_identity_code_scores_about_one(identity_code, factors):
    score = mig(identity_code, factors)
    assert score.score >= 0.95 and np.all(score.per_factor >= 0.95)
    assert score.mi.shape == (K, K) and np.allclose(np.diag(score.mi), math.log(LEVELS), atol=0.02)
    d = _dci(identity_code, factors)
    assert d.disentanglement >= 0.95 and d.completeness >= 0.95 and d.informativeness >= 0.95
    assert d.importance.shape == (K, K) and np.allclose(d.importance.sum(axis=0), 1.0)
    assert np.all(np.argmax(d.importance, axis=0) == np.arange(K))


def test_random_rotations_of_it_score_low(identity_code, factors):
    """A rotation keeps every bit of information but spreads each factor over all dimensions. One
    Haar rotation can stay near an axis by chance (MIG from 0.03 to 0.28 over seeds 0-4), so five."""
    migs, dis, comp = [], [], []
    for seed in range(5):
        rotated = identity_code @ _rotation(seed)
        migs.append(mig(rotated, factors).score)
        d = _dci(rotated, factors)
        dis.append(d.disentanglement)
        comp.append(d.completeness)
    assert np.mean(migs) <= 0.2 and max(migs) <= 0.4  # identity: 0.99; a single rotation can land near an axis
    assert np.mean(dis) <= 0.4 and max(dis) <= 0.5  # identity: 0.99
    assert np.mean(comp) <= 0.4 and max(comp) <= 0.5


def test_permuting_dimensions_does_not_change_mig(identity_code, factors):
    order = np.array([3, 0, 4, 1, 2])
    before, after = mig(identity_code, factors), mig(identity_code[:, order], factors)
    assert after.score == pytest.approx(before.score, abs=1e-12)
    assert np.allclose(after.mi, before.mi[:, order])


def test_a_factor_in_two_dimensions_has_no_gap_and_lowers_completeness(identity_code, factors):
    copy = identity_code[:, :1] + 0.01 * np.random.default_rng(2).normal(size=(N, 1))
    doubled = np.concatenate([identity_code, copy], axis=1)  # factor 0 in z0 and z5
    score = mig(doubled, factors)
    assert score.per_factor[0] <= 0.05 and np.all(score.per_factor[1:] >= 0.95)
    plain, split = _dci(identity_code, factors), _dci(doubled, factors)
    assert split.per_factor[0] <= 0.8 < plain.per_factor[0]
    assert split.completeness < plain.completeness - 0.03


def test_a_constant_factor_is_left_out(identity_code, factors):
    with_constant = np.concatenate([factors, np.full((N, 1), 2.0)], axis=1)
    score = mig(identity_code, with_constant)
    assert np.isnan(score.per_factor[-1]) and score.entropy[-1] == 0
    assert score.score == pytest.approx(mig(identity_code, factors).score)
    d = _dci(identity_code, with_constant)
    assert np.isnan(d.accuracy[-1]) and np.all(d.importance[:, -1] == 0) and np.isnan(d.per_factor[-1])
    assert d.disentanglement >= 0.95 and d.completeness >= 0.95 and d.informativeness >= 0.95
    all_constant = mig(identity_code, np.zeros((N, 2)))
    assert np.isnan(all_constant.score) and np.all(np.isnan(all_constant.per_factor))


def test_dimensions_are_named_after_the_factor_they_carry(identity_code, factors):
    mi = mig(identity_code, factors).mi
    dims = factor_of_dims(mi, NAMES)
    assert [d.name for d in dims] == NAMES and all(d.clear and d.share >= 0.9 for d in dims)
    assert dims[2].label == "z2 ≈ x"
    per_factor = dims_of_factors(mi, NAMES)
    assert [f.dim for f in per_factor] == list(range(K)) and per_factor[3].label == "dim 3 ≈ y"
    importance = _dci(identity_code, factors).importance
    assert [d.name for d in factor_of_dims(importance.T, NAMES)] == NAMES


def test_a_fully_mixed_code_names_no_dimension():
    """A Hadamard rotation gives every dimension an equal part of every factor: nothing is clear."""
    levels = np.random.default_rng(3).integers(0, LEVELS, size=(N, 4)).astype(np.float64)
    hadamard = np.array([[1, 1, 1, 1], [1, -1, 1, -1], [1, 1, -1, -1], [1, -1, -1, 1]]) / 2.0
    mixed = (levels / (LEVELS - 1)) @ hadamard
    mi = mig(mixed, levels).mi
    dims, facs = factor_of_dims(mi, NAMES[:4]), dims_of_factors(mi, NAMES[:4])
    assert not any(d.clear for d in dims) and all(d.share < 0.5 for d in dims)
    assert not any(f.clear for f in facs) and dims[0].label == "z0"
    assert facs[0].label == "shape: no single dimension"
    importance = _dci(mixed, levels).importance
    assert not any(d.clear for d in factor_of_dims(importance.T, NAMES[:4]))


def test_bad_input_is_refused_with_a_message():
    with pytest.raises(ValueError, match="same N"):
        mig(np.zeros((5, 2)), np.zeros((4, 1)))
    with pytest.raises(ValueError, match="finite"):
        mig(np.array([[0.0], [np.nan]]), np.array([0.0, 1.0]))
    with pytest.raises(ValueError, match="K = 2 names"):
        factor_of_dims(np.ones((3, 2)), ["a", "b"])
