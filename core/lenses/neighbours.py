"""Nearest neighbours of an image, in the latent space and in pixel space, side by side.

The encoder's mean μ is the image's code. Its k nearest codes (Euclidean or cosine distance)
are the images the model groups with it; the k nearest images by pixel distance are what a
model-free search finds. Where the two lists differ, the code has learnt a similarity the
pixels do not show (a thin 7 and a bold 7 are far apart in pixels, close in the code).

Everything is numpy on arrays a page already has: codes (N, z), images (N, C, H, W).
Nothing here imports Streamlit or torch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

METRICS = {"euclidean": "Euclidean", "cosine": "cosine"}


def distances(query: np.ndarray, points: np.ndarray, metric: str = "euclidean") -> np.ndarray:
    """Distances (N,) from one vector ``query`` (d,) to every row of ``points`` (N, d).

    euclidean: ‖p − q‖. cosine: 1 − cos(p, q), in [0, 2] (a zero vector is at distance 1 from all).
    """
    if metric not in METRICS:
        raise ValueError(f"unknown distance {metric!r}; choose one of {tuple(METRICS)}")
    q = np.asarray(query, np.float32).reshape(-1)
    p = np.asarray(points, np.float32).reshape(len(points), -1)  # float32: 10,000 images × 784 pixels stay 31 MB
    if p.shape[1] != q.size:
        raise ValueError(f"the query has {q.size} values, the points {p.shape[1]}")
    if metric == "euclidean":
        return np.sqrt(((p - q) ** 2).sum(1, dtype=np.float64))
    norms = (np.linalg.norm(p, axis=1) * np.linalg.norm(q)).astype(np.float64)
    cos = np.divide((p @ q).astype(np.float64), norms, out=np.zeros(len(p)), where=norms > 0)
    return 1.0 - cos


def nearest(
    query: np.ndarray, points: np.ndarray, k: int, metric: str = "euclidean", exclude: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` rows of ``points`` nearest to ``query``: (rows (k,), distances (k,)), nearest
    first, ties by row. ``exclude``: a row to leave out (the query itself, when it is one of them)."""
    d = distances(query, points, metric)
    if exclude is not None and 0 <= exclude < len(d):
        d[exclude] = np.inf
    k = max(0, min(k, len(d) - (exclude is not None)))
    order = np.lexsort((np.arange(len(d)), d))[:k]
    return order, d[order]


@dataclass
class Neighbours:
    """The k nearest images of a query in two spaces (rows index the searched images).

    latent, latent_dist: by code (μ) distance under ``metric``. pixel, pixel_dist: by
    Euclidean pixel distance. ``shared``: rows in both lists.
    """

    latent: np.ndarray
    latent_dist: np.ndarray
    pixel: np.ndarray
    pixel_dist: np.ndarray
    metric: str

    @property
    def shared(self) -> np.ndarray:
        return np.intersect1d(self.latent, self.pixel)

    def agreement(self, labels: np.ndarray | None, label: int | None) -> tuple[int, int] | None:
        """How many of the latent and of the pixel neighbours share ``label``; None without labels."""
        if labels is None or label is None:
            return None
        labels = np.asarray(labels)
        return int((labels[self.latent] == label).sum()), int((labels[self.pixel] == label).sum())


def find_neighbours(
    query_code: np.ndarray,
    query_image: np.ndarray,
    codes: np.ndarray,
    images: np.ndarray,
    k: int = 8,
    metric: str = "euclidean",
    exclude: int | None = None,
) -> Neighbours:
    """The k nearest of ``images`` (N, C, H, W) to a query, by code and by pixels.

    query_code (z,), codes (N, z): encoder means. query_image (C, H, W) in [0, 1], the same size
    as ``images``. exclude: the query's own row when it is one of the searched images.
    """
    if len(codes) != len(images):
        raise ValueError(f"{len(codes)} codes for {len(images)} images")
    if np.asarray(query_image).size != np.asarray(images[0]).size:
        raise ValueError(f"the query image is {np.shape(query_image)}, the images {np.shape(images)[1:]}")
    lat, lat_d = nearest(query_code, codes, k, metric, exclude)
    pix, pix_d = nearest(
        np.asarray(query_image).reshape(-1), np.asarray(images).reshape(len(images), -1), k, "euclidean", exclude
    )
    return Neighbours(lat, lat_d.astype(np.float32), pix, pix_d.astype(np.float32), metric)
