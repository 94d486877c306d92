"""Latent directions and arithmetic: d = mean(A) − mean(B), walks along d, and what else d moves.

A direction is the difference of two groups' mean codes (the "smile vector" of latent
arithmetic: faces that smile minus faces that do not; for digits, the 7s minus the 1s).
Adding it to a code should add the attribute; :func:`class_shift` checks that without any
classifier, by the nearest class centroid in the latent space. :func:`entanglement` measures
how much a direction also moves along other attributes' directions (cosine, and the shift in
standard deviations of the codes along each), the reason "more smile" can also mean "darker
skin" when attributes were correlated in the data.

Arrays: codes (N, z) float32 (encoder means), labels (N,) int. Decoding goes through
:mod:`core.lenses.latent`. Nothing here imports Streamlit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.lenses.latent import Labels, decode
from core.models.protocol import LatentModel


@dataclass
class Direction:
    """vector = mean_a − mean_b (z,); n_a, n_b: the groups' sizes; name: e.g. "1 → 7"."""

    vector: np.ndarray
    mean_a: np.ndarray
    mean_b: np.ndarray
    n_a: int
    n_b: int
    name: str

    @property
    def norm(self) -> float:
        return float(np.linalg.norm(self.vector))


def direction(codes_a: np.ndarray, codes_b: np.ndarray, name: str = "B → A") -> Direction:
    """The direction from group B to group A: mean(codes_a) − mean(codes_b)."""
    a, b = np.asarray(codes_a, np.float32), np.asarray(codes_b, np.float32)
    if a.ndim != 2 or b.ndim != 2 or len(a) == 0 or len(b) == 0:
        raise ValueError(f"both groups need at least one code (N, z), got shapes {a.shape} and {b.shape}")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"the groups' codes differ in size: {a.shape[1]} and {b.shape[1]}")
    mean_a, mean_b = a.mean(0), b.mean(0)
    return Direction((mean_a - mean_b).astype(np.float32), mean_a, mean_b, len(a), len(b), name)


def walk_codes(start: np.ndarray, vector: np.ndarray, alphas: np.ndarray) -> np.ndarray:
    """start + α·vector for each α: (S, z)."""
    start, vector = np.asarray(start, np.float32).reshape(-1), np.asarray(vector, np.float32).reshape(-1)
    alphas = np.asarray(alphas, np.float32).reshape(-1, 1)
    return (start + alphas * vector).astype(np.float32)


def walk(model: LatentModel, start: np.ndarray, vector: np.ndarray, alphas: np.ndarray, y: Labels = None) -> np.ndarray:
    """Decode start + α·vector for each α: images (S, C, H, W) in [0, 1]."""
    return decode(model, walk_codes(start, vector, alphas), y)


def class_centroids(mu: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(classes (C,), centroids (C, z)): each present class's mean code."""
    mu, labels = np.asarray(mu, np.float32), np.asarray(labels)
    classes = np.unique(labels)
    return classes, np.stack([mu[labels == c].mean(0) for c in classes]).astype(np.float32)


def nearest_class(codes: np.ndarray, classes: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """The class of the nearest centroid (Euclidean) for each code: (N,)."""
    codes = np.atleast_2d(np.asarray(codes, np.float32))
    d2 = ((codes[:, None, :] - centroids[None]) ** 2).sum(-1)  # (N, C)
    return np.asarray(classes)[d2.argmin(1)]


@dataclass
class ClassShift:
    """Where the nearest class centroid of each start code goes when it walks α·d.

    before, after: (N,) classes. target: the class the direction points to (or None).
    """

    before: np.ndarray
    after: np.ndarray
    target: int | None

    @property
    def share_to_target(self) -> float | None:
        """Fraction of codes whose nearest centroid is the target after the walk."""
        return None if self.target is None or len(self.after) == 0 else float(np.mean(self.after == self.target))


def class_shift(
    starts: np.ndarray,
    vector: np.ndarray,
    mu: np.ndarray,
    labels: np.ndarray,
    alpha: float = 1.0,
    target: int | None = None,
) -> ClassShift:
    """The classifier-free check of a direction: each start code's nearest class centroid (of the
    labelled codes ``mu``) before and after adding α·vector."""
    classes, centroids = class_centroids(mu, labels)
    starts = np.atleast_2d(np.asarray(starts, np.float32))
    moved = starts + alpha * np.asarray(vector, np.float32)
    return ClassShift(nearest_class(starts, classes, centroids), nearest_class(moved, classes, centroids), target)


def class_directions(mu: np.ndarray, labels: np.ndarray, names: tuple[str, ...] | None = None) -> dict[str, np.ndarray]:
    """One attribute per class: "towards NAME" = mean(that class) − mean(the other classes)."""
    mu, labels = np.asarray(mu, np.float32), np.asarray(labels)
    found = {}
    for c in np.unique(labels):
        inside = labels == c
        if inside.all():
            continue
        name = names[c] if names is not None and c < len(names) else str(c)
        found[name] = (mu[inside].mean(0) - mu[~inside].mean(0)).astype(np.float32)
    return found


@dataclass
class Entanglement:
    """How a direction d lines up with other attributes' directions.

    names: the attributes. cosines: (K,) cos(d, attribute): 0 = d does not move that attribute,
    ±1 = d is that attribute. shifts: (K,) how far one step of d moves a code along each
    attribute, in standard deviations of the codes along it.
    """

    names: list[str]
    cosines: np.ndarray
    shifts: np.ndarray

    @property
    def most(self) -> tuple[str, float] | None:
        """The attribute d moves most (largest |cosine|) and its cosine, or None without attributes."""
        if not self.names:
            return None
        i = int(np.argmax(np.abs(self.cosines)))
        return self.names[i], float(self.cosines[i])


def entanglement(vector: np.ndarray, attributes: dict[str, np.ndarray], mu: np.ndarray) -> Entanglement:
    """Cosines and shifts (in standard deviations of ``mu`` along each attribute) of ``vector``
    against each attribute direction; a zero attribute or a zero vector counts as 0."""
    d = np.asarray(vector, np.float64).reshape(-1)
    mu = np.asarray(mu, np.float64)
    names, cosines, shifts = [], [], []
    for name, attr in attributes.items():
        a = np.asarray(attr, np.float64).reshape(-1)
        na, nd = np.linalg.norm(a), np.linalg.norm(d)
        unit = a / na if na > 0 else a
        sd = float((mu @ unit).std()) if na > 0 else 0.0
        names.append(name)
        cosines.append(float(d @ a / (na * nd)) if na > 0 and nd > 0 else 0.0)
        shifts.append(float(d @ unit) / sd if sd > 0 else 0.0)
    return Entanglement(names, np.asarray(cosines, np.float32), np.asarray(shifts, np.float32))


def change_map(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    """Where a walk changes the image: |after − before| averaged over channels and images,
    (H, W) in [0, 1]. before, after: (N, C, H, W) or (C, H, W)."""
    before, after = np.asarray(before, np.float32), np.asarray(after, np.float32)
    if before.shape != after.shape:
        raise ValueError(f"images of different shapes: {before.shape} and {after.shape}")
    diff = np.abs(after - before)
    return diff.reshape(-1, *diff.shape[-2:]).mean(0)


# ---------------------------------------------------------------- groups of images as text


def format_rows(rows) -> str:
    """Image numbers as short text, runs as ranges: [3, 4, 5, 9] -> "3-5, 9" (for a link or a text box)."""
    rows = sorted({int(r) for r in rows})
    parts, i = [], 0
    while i < len(rows):
        j = i
        while j + 1 < len(rows) and rows[j + 1] == rows[j] + 1:
            j += 1
        parts.append(str(rows[i]) if i == j else f"{rows[i]}-{rows[j]}")
        i = j + 1
    return ", ".join(parts)


def parse_rows(text: str | None, n: int, limit: int = 10_000) -> tuple[list[int], str | None]:
    """ "3, 17, 40-42" -> sorted distinct image numbers in 0..n-1, or ([], a problem in words);
    commas, semicolons or spaces separate, "a-b" is a range. At most ``limit`` numbers."""
    rows: set[int] = set()
    for part in (text or "").replace(";", ",").replace(" ", ",").split(","):
        if not part:
            continue
        ends = part.split("-")
        shown = part if len(part) <= 20 else part[:20] + "…"
        if len(ends) > 2 or not all(e.isdigit() for e in ends):
            return [], f"{shown!r} is not an image number or a range a-b"
        lo, hi = int(ends[0]), int(ends[-1])
        if not 0 <= lo <= hi < n:
            return [], f"{shown!r} is outside 0..{n - 1}"
        if len(rows) + hi - lo + 1 > limit:
            return [], f"more than {limit:,} images"
        rows.update(range(lo, hi + 1))
    return sorted(rows), None
