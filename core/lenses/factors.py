"""Known factors, measured on a model: which code dimension carries which generative factor.

A data set that knows what made each image (``Dataset.test_factors``: the generated sprites'
shape, hue, size, x, y and rotation) lets a model's codes be scored for disentanglement
(:mod:`core.lenses.disentangle`: MIG, DCI) and its sliders be named ("z3 ≈ x"). This module
encodes the data with the model and gathers the figures a page or a model card shows in one
:class:`FactorReport`; :meth:`FactorReport.to_card` / :meth:`FactorReport.from_card` keep it in a
checkpoint's JSON (``python -m core evaluate NAME --factors --record``), so a page need not encode
anything for a shipped model.

Shapes: codes (N, D) are posterior means; the MI matrix is (K, D), each factor's row divided by
the factor's entropy (0: the dimension knows nothing of the factor, 1: all of it); DCI's importance
is (D, K).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.data.registry import Dataset
from core.lenses.disentangle import DimFactor, FactorDim, dci, dims_of_factors, factor_of_dims, mig
from core.models.evaluate import encode_dataset
from core.models.protocol import LatentModel

N_FIT = 5_000  # training images whose codes fit DCI's classifiers (the scores are on the test split)
CLEAR_SHARE = 0.5  # a dimension is named after a factor when it holds at least this share of its MI


class NoFactors(ValueError):
    """The data set does not know what made its images; the message says which set."""


@dataclass(frozen=True)
class FactorReport:
    """A model's codes against the known factors of its data's test split.

    names: (K,) the factors. mig: the mutual information gap in [0, 1]; mig_per_factor: (K,).
    mi: (K, D) mutual information over the factor's entropy, in [0, 1]. disentanglement,
    completeness, informativeness: DCI's three scores in [0, 1]; importance: (D, K).
    n_fit, n_test: the images whose codes fitted DCI's classifiers and were scored."""

    names: tuple[str, ...]
    mig: float
    mig_per_factor: np.ndarray
    mi: np.ndarray
    disentanglement: float
    completeness: float
    informativeness: float
    importance: np.ndarray
    n_fit: int
    n_test: int

    def dims(self) -> list[DimFactor]:
        """Per code dimension, the factor it carries most and whether that is clear ("z3 ≈ x")."""
        return factor_of_dims(self.mi, self.names, CLEAR_SHARE)

    def factors(self) -> list[FactorDim]:
        """Per factor, the dimension that carries it most ("dim 3 ≈ x")."""
        return dims_of_factors(self.mi, self.names, CLEAR_SHARE)

    def to_card(self) -> dict:
        """The report as plain JSON (rounded), for a model card."""
        return {
            "names": list(self.names),
            "mig": round(self.mig, 4),
            "mig_per_factor": _rounded(self.mig_per_factor),
            "mi": _rounded(self.mi),
            "dci": [round(v, 4) for v in (self.disentanglement, self.completeness, self.informativeness)],
            "importance": _rounded(self.importance),
            "n_fit": self.n_fit,
            "n_test": self.n_test,
        }

    @classmethod
    def from_card(cls, card: dict) -> FactorReport:
        """The report a model card recorded (:meth:`to_card`); ValueError when it is malformed."""
        try:
            d, c, i = (float(v) for v in card["dci"])
            report = cls(
                names=tuple(str(n) for n in card["names"]),
                mig=float(card["mig"]),
                mig_per_factor=np.asarray(card["mig_per_factor"], np.float64),
                mi=np.asarray(card["mi"], np.float64),
                disentanglement=d,
                completeness=c,
                informativeness=i,
                importance=np.asarray(card["importance"], np.float64),
                n_fit=int(card["n_fit"]),
                n_test=int(card["n_test"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"the model card's factor scores are malformed ({exc})") from exc
        k, dims = report.mi.shape if report.mi.ndim == 2 else (0, 0)
        if k != len(report.names) or report.importance.shape != (dims, k):
            raise ValueError("the model card's factor scores are malformed (shapes disagree)")
        return report


def _rounded(a: np.ndarray) -> list:
    """An array as nested lists of floats rounded to 4 places, NaN as None (JSON has no NaN)."""
    return [_rounded(r) for r in a] if np.ndim(a) > 1 else [None if np.isnan(v) else round(float(v), 4) for v in a]


def factor_report(model: LatentModel, data: Dataset, n_fit: int = N_FIT, seed: int = 0) -> FactorReport:
    """Encode ``data``'s test split (and ``n_fit`` training images, a fixed random choice) with
    ``model`` and score the codes against the known factors. NoFactors when the set has none."""
    if data.test_factors is None or data.train_factors is None or not data.factor_names:
        raise NoFactors(f"{data.name} does not know what made its images (no generative factors)")
    if model.conditional:
        raise NoFactors("a conditional model is given the class; its code is not scored against factors")
    fit = np.sort(np.random.default_rng(seed).permutation(len(data.train_x))[: min(n_fit, len(data.train_x))])
    test_codes, _ = encode_dataset(model, data.test_x)
    fit_codes, _ = encode_dataset(model, data.train_x[fit])
    gap = mig(test_codes, data.test_factors)
    scores = dci(fit_codes, data.train_factors[fit], test_codes, data.test_factors, seed=seed)
    return FactorReport(
        names=tuple(data.factor_names),
        mig=gap.score,
        mig_per_factor=gap.per_factor,
        mi=np.nan_to_num(gap.normalized_mi, nan=0.0),
        disentanglement=scores.disentanglement,
        completeness=scores.completeness,
        informativeness=scores.informativeness,
        importance=scores.importance,
        n_fit=len(fit),
        n_test=len(test_codes),
    )
