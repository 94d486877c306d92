"""Shared fixtures and settings: small data sets, the optional full data in ../shared/data, a clean
cache, one thread per xdist worker, the run's shared folders, and the browser and network-guard plugins."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest

# A worker per core (pytest-xdist) shares the CPU with the other workers and with the browser
# tests' servers: one thread each rather than one per core each (torch reads this on import).
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.setdefault("OMP_NUM_THREADS", "1")

from core.data.registry import Dataset

# The browser fixtures (server, browser, page, shots) and the network guard for every test module;
# pytester runs a test of the guard itself.
pytest_plugins = ["tests.browser_support", "tests.network_guard", "pytester"]

ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = ROOT.parent / "shared" / "data"


def shared_data_dir() -> Path | None:
    return SHARED_DATA if (SHARED_DATA / "MNIST" / "raw").is_dir() else None


requires_shared_data = pytest.mark.skipif(shared_data_dir() is None, reason="../shared/data is absent")


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path_factory, monkeypatch):
    """No test reads the user's data folder or writes the user's cache."""
    monkeypatch.delenv("LATENTLAB_DATA", raising=False)
    monkeypatch.setenv("LATENTLAB_CACHE", str(tmp_path_factory.mktemp("cache")))
    # AppTest runs app.py as ``__main__`` and leaves it there; worker processes started later
    # (spawn) would re-import app.py and die. Put pytest's own __main__ back after each test.
    monkeypatch.setitem(sys.modules, "__main__", sys.modules["__main__"])


@pytest.fixture(scope="module")
def one_thread():
    """Small MLPs train as fast on one thread, and do not stall when other jobs share the CPU
    (a module opts in with ``pytestmark = pytest.mark.usefixtures("one_thread")``)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def mnist5k() -> Dataset:
    from core.data.registry import load_dataset

    return load_dataset("mnist-5k")


def tiny_dataset(n: int = 64, shape=(1, 28, 28), classes: int = 10, seed: int = 0) -> Dataset:
    """Random images in [0, 1] with labels: for shape and plumbing tests, not for learning."""
    rng = np.random.default_rng(seed)
    x = rng.random((n, *shape), dtype=np.float32)
    y = rng.integers(0, classes, n)
    half = n // 2
    return Dataset(
        name="tiny",
        source="embedded",
        source_note="test data",
        train_x=x[:half],
        test_x=x[half:],
        train_y=y[:half],
        test_y=y[half:],
        class_names=tuple(str(i) for i in range(classes)),
    )


def no_network(monkeypatch) -> None:
    """Make every network connection fail the way an offline machine does."""
    import socket

    def refuse(*args, **kwargs):
        raise OSError("network disabled by the test")

    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


os.environ.setdefault("PYTHONHASHSEED", "0")


def pytest_addoption(parser) -> None:
    parser.addoption("--shots", action="store_true", help="browser tests save screenshots (the folder is printed)")


def pytest_configure(config) -> None:
    """One name for this run's shared temporary folders (tests/app_support.py:run_folder), made by
    the first process and inherited by xdist's workers, which start after this hook."""
    import uuid

    os.environ.setdefault("LATENTLAB_TEST_RUN", uuid.uuid4().hex[:12])


def pytest_unconfigure(config) -> None:
    """The run's shared folders go when the process that named them ends (not a worker's end)."""
    import shutil
    import tempfile

    if hasattr(config, "workerinput"):
        return
    for path in Path(tempfile.gettempdir()).glob(f"latentlab-{os.environ['LATENTLAB_TEST_RUN']}-*"):
        shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)
