"""core.lenses.projection: PCA, UMAP, t-SNE and raw axes for the latent map; progress and stopping."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from core.lenses.projection import METHODS, ProjectionCancelled, axis_count, project


def blobs(n: int = 300, z: int = 6, classes: int = 3, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Codes in well separated clusters: (n, z) and their labels."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, n)
    centres = rng.normal(0, 6, (classes, z))
    return (centres[labels] + rng.normal(0, 0.5, (n, z))).astype(np.float32), labels


def neighbour_agreement(coords: np.ndarray, labels: np.ndarray) -> float:
    """Share of points whose nearest other point in the plane has their label."""
    d = ((coords[:, None] - coords[None]) ** 2).sum(-1)
    np.fill_diagonal(d, np.inf)
    return float(np.mean(labels[d.argmin(1)] == labels))


def test_pca_matches_scikit_learn_and_names_its_axes():
    from sklearn.decomposition import PCA

    mu, _ = blobs()
    p = project(mu, "pca", (0, 2))
    ref = PCA(3).fit(mu)
    expected = ref.transform(mu)[:, [0, 2]]
    np.testing.assert_allclose(np.abs(p.coords), np.abs(expected), atol=1e-3)
    assert p.axis_labels[0].startswith("PC1 (") and p.axis_labels[1].startswith("PC3 (")
    assert p.variance_share == pytest.approx(ref.explained_variance_ratio_[[0, 2]].sum(), rel=1e-4)
    assert p.coords.dtype == np.float32 and p.coords.shape == (300, 2)


def test_raw_dimensions_are_the_codes_themselves():
    mu, _ = blobs()
    p = project(mu, "dims", (4, 1))
    np.testing.assert_array_equal(p.coords, mu[:, [4, 1]])
    assert p.axis_labels == ("z4", "z1") and 0 < p.variance_share < 1
    two = project(mu[:, :2], "pca")
    assert two.method == "dims" and "its own axes, no projection" in two.note


@pytest.mark.parametrize("method", ["umap", "tsne"])
def test_umap_and_tsne_keep_clusters_report_progress_and_are_seeded(method):
    mu, labels = blobs()
    seen = []
    p = project(mu, method, progress=lambda f, text: seen.append((f, text)))
    assert p.coords.shape == (300, 2) and np.isfinite(p.coords).all()
    assert p.method == method and p.variance_share is None and p.seconds > 0
    assert neighbour_agreement(p.coords, labels) > 0.95
    fractions = [f for f, _ in seen]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0 and len(seen) >= 3
    again = project(mu, method)
    np.testing.assert_allclose(again.coords, p.coords, atol=1e-4)


@pytest.mark.parametrize("method", ["umap", "tsne"])
def test_a_progress_callback_stops_a_long_projection_and_later_ones_still_run(method):
    mu, _ = blobs()
    calls = []

    def stop_after_a_while(fraction, text):
        calls.append(text)
        return len(calls) > 3  # UMAP: during its layout, inside tqdm's epoch bar

    with pytest.raises(ProjectionCancelled):
        project(mu, method, progress=stop_after_a_while)
    # tqdm holds a process-wide lock while it writes: a stop must not leave it held
    done = threading.Thread(target=project, args=(mu, method), daemon=True)
    done.start()
    done.join(120)
    assert not done.is_alive(), "a projection after a stopped one hangs"


def test_bad_input_gets_a_clear_error():
    mu, _ = blobs(20)
    with pytest.raises(ValueError, match="unknown projection"):
        project(mu, "mds")
    with pytest.raises(ValueError, match="two different axes"):
        project(mu, "pca", (1, 1))
    with pytest.raises(ValueError, match="two different axes"):
        project(mu, "dims", (0, 9))
    with pytest.raises(ValueError, match="at least 10 codes"):
        project(mu[:5], "umap")
    with pytest.raises(ValueError, match="NaN"):
        project(np.full((20, 3), np.nan), "pca")
    with pytest.raises(ValueError, match="z ≥ 2"):
        project(mu[:, :1], "pca")


def test_the_method_table():
    assert list(METHODS) == ["pca", "umap", "tsne", "dims"]
    assert [m for m in METHODS.values() if m.slow] == [METHODS["umap"], METHODS["tsne"]]
    assert axis_count("pca", 16) == 3 and axis_count("dims", 16) == 16 and axis_count("umap", 16) == 2
