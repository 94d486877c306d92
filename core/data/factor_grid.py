"""The grid of generative factors that a generated data set samples from, written once for every
such set (:mod:`core.data.sprites`, :mod:`core.data.shapes3d`).

A set's factors each take a few levels (:class:`FactorSpec`); every combination is one cell of the
grid, and one image. :class:`FactorGrid` turns level indices into factor values and back (the
nearest level: discrete labels for the disentanglement scores), and draws cells from a seed's
permutation of the whole grid: ``sample(n, seed)`` is its first ``n`` cells (a smaller ``n`` gives
a prefix), and ``split`` takes the training set from the front and the test set from the back, so
the two never share an image and neither depends on the other's size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np


@dataclass(frozen=True)
class FactorSpec:
    """One generative factor and how the grid draws it.

    kind: "categorical" (an index, ``low``..``high``) or "continuous". low / high: its range.
    values: the number of levels on the sampling grid. circular: ``high`` is the same as ``low``
    (a hue, a rotation), so the levels are ``low + k (high - low) / values`` and ``high`` is never
    drawn; otherwise the levels run evenly from ``low`` to ``high``, both included.
    """

    name: str
    kind: str
    low: float
    high: float
    values: int
    circular: bool = field(default=False)

    def levels(self) -> np.ndarray:
        """The grid's values of this factor, float64 (values,)."""
        if self.circular:
            return self.low + (self.high - self.low) * np.arange(self.values) / self.values
        return np.linspace(self.low, self.high, self.values)


@dataclass(frozen=True)
class FactorGrid:
    """Every combination of the levels of ``factors`` (K of them); shapes below are (N, K)."""

    factors: tuple[FactorSpec, ...]

    @property
    def sizes(self) -> tuple[int, ...]:
        return tuple(f.values for f in self.factors)

    @property
    def size(self) -> int:
        """How many distinct cells (images) the grid holds."""
        return math.prod(self.sizes)

    def from_levels(self, levels: np.ndarray) -> np.ndarray:
        """Grid levels (N, K) int -> factor values (N, K) float64."""
        levels, k = np.asarray(levels), len(self.factors)
        if levels.ndim != 2 or levels.shape[1] != k:
            raise ValueError(f"levels must be (N, {k}), got {levels.shape}")
        if np.any(levels < 0) or np.any(levels >= np.array(self.sizes)):
            raise ValueError(f"levels out of range: each column k runs from 0 to {[s - 1 for s in self.sizes]}[k]")
        return np.stack([spec.levels()[levels[:, i]] for i, spec in enumerate(self.factors)], axis=1)

    def nearest_levels(self, factors: np.ndarray) -> np.ndarray:
        """Checked factor values (N, K) float -> the nearest level of each, (N, K) int64 (a circular
        factor wraps round, the others stop at their ends)."""
        out = np.empty(factors.shape, dtype=np.int64)
        for i, spec in enumerate(self.factors):
            step = (spec.high - spec.low) / (spec.values if spec.circular else spec.values - 1)
            index = np.rint((factors[:, i] - spec.low) / step).astype(np.int64)
            out[:, i] = index % spec.values if spec.circular else np.clip(index, 0, spec.values - 1)
        return out

    def count(self, n: int, name: str, low: int = 1) -> int:
        """``n`` as a number of cells, ValueError (naming ``name``) unless ``low <= n <= size``."""
        if int(n) != n or not low <= n <= self.size:
            raise ValueError(f"{name} must be an integer from {low} to {self.size:,}, got {n}")
        return int(n)

    def _cells(self, cells: np.ndarray) -> np.ndarray:
        """Flat cell numbers -> factor values (N, K)."""
        return self.from_levels(np.stack(np.unravel_index(cells, self.sizes), axis=1))

    def sample(self, n: int, seed: int) -> np.ndarray:
        """The first ``n`` cells of ``np.random.default_rng(seed)``'s permutation of the grid: (n, K)."""
        return self._cells(np.random.default_rng(seed).permutation(self.size)[: self.count(n, "n")])

    def split(self, n_train: int, n_test: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """(train (n_train, K), test (n_test, K)) factor values: the front and the back of one
        permutation, so they never share a cell; checked counts."""
        order = np.random.default_rng(seed).permutation(self.size)
        return self._cells(order[:n_train]), self._cells(order[self.size - n_test :])


@dataclass(frozen=True)
class GeneratedSet:
    """A generated training and test set, both read-only: images (N, C, size, size) in [0, 1] and
    their factors (N, F); the class label of an image is its shape, column ``label_column``."""

    train_x: np.ndarray
    train_factors: np.ndarray
    test_x: np.ndarray
    test_factors: np.ndarray
    seed: int
    size: int

    label_column: ClassVar[int] = 0

    @property
    def train_y(self) -> np.ndarray:
        """The training set's labels: the shape index, int64 (N,)."""
        return np.asarray(self.train_factors)[:, self.label_column].astype(np.int64)

    @property
    def test_y(self) -> np.ndarray:
        """The test set's labels: the shape index, int64 (N,)."""
        return np.asarray(self.test_factors)[:, self.label_column].astype(np.int64)
