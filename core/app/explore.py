"""Open a model where it lives: ``python -m core explore PATH [--images DIR]`` from a shell, or
``explore(model_or_path, images=...)`` from a notebook.

PATH is one of our checkpoints (``NAME.safetensors`` with its JSON), a foreign ONNX model folder,
a diffusers ``AutoencoderKL`` folder or an optimum ONNX export; from Python it may also be a
``torch.nn.Module`` with ``encode`` and ``decode``, which is exported to a model folder first
(:func:`core.formats.export.export_model`: ONNX, checked against torch, ``model.json`` written for
you, its image shape taken from your images or ``image_shape`` and its latent size probed).
The model is checked before anything starts; then an app server starts with the model in its
sidebar (``LATENTLAB_EXPLORE``) and the images as its data set (``LATENTLAB_EXPLORE_IMAGES``),
and the URL that opens it is returned. Nothing is copied into your models' folder.
"""

from __future__ import annotations

import atexit
import html
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from core import REPO_ROOT
from core.app.catalog import EXPLORE_ENV, EXPLORE_IMAGES_ENV, explored_entries

START_TIMEOUT_S = 120
_SERVERS: list[subprocess.Popen] = []  # stopped when the Python process ends (a notebook's kernel)


@dataclass
class Exploration:
    """A running app server showing one model: open ``url``; ``stop()`` ends it."""

    url: str
    process: subprocess.Popen
    what: str  # the model, in words

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=20)

    close = stop  # the name a notebook expects

    def __repr__(self) -> str:
        return f"Latent Lab is showing {self.what} at {self.url}"

    def _repr_html_(self) -> str:
        """In Jupyter: the app inline, with the link to open it in a tab."""
        return (
            f"<p>Latent Lab is showing {html.escape(self.what)}: "
            f'<a href="{self.url}" target="_blank">{self.url}</a></p>'
            f'<iframe src="{self.url}" width="100%" height="720" style="border:1px solid #ddd"></iframe>'
        )


def check(path: str | os.PathLike, images: str | os.PathLike | None = None) -> tuple[str, str]:
    """Open the model at ``path`` (and list ``images``) as the app will: (its key, what it is, in
    words). A model that cannot be used raises CheckpointError (or ValueError for the images)
    naming the file and the problem; nothing starts."""
    from core.app.catalog import load_entry
    from core.data.registry import load_user_data

    env = {EXPLORE_ENV: str(Path(path).expanduser().resolve())}
    if images is not None:
        env[EXPLORE_IMAGES_ENV] = str(Path(images).expanduser().resolve())
    with _environment(env):
        (entry,) = explored_entries()
    if not entry.ok:
        from core.formats.checkpoints import CheckpointError

        raise CheckpointError(entry.error)
    load_entry(entry)  # every check of its format, now rather than in the page
    if images is not None:
        load_user_data(f"folder:{env[EXPLORE_IMAGES_ENV]}")  # DataError when the folder holds no image
    return entry.key, f"{entry.title} ({entry.format})"


def explore(
    model_or_path,
    images: str | os.PathLike | None = None,
    port: int | None = None,
    image_shape: tuple[int, int, int] | None = None,
    title: str | None = None,
) -> Exploration:
    """Start the app on a model (a path, or an ``nn.Module`` exported here) and return where it is."""
    path = model_or_path if isinstance(model_or_path, str | os.PathLike) else export_module(
        model_or_path, images, image_shape, title
    )  # fmt: skip
    key, what = check(path, images)
    port = port or free_port()
    env = {**os.environ, EXPLORE_ENV: str(Path(path).expanduser().resolve())}
    env.pop(EXPLORE_IMAGES_ENV, None)
    if images is not None:
        env[EXPLORE_IMAGES_ENV] = str(Path(images).expanduser().resolve())
    process = subprocess.Popen(
        [sys.executable, str(REPO_ROOT / "serve.py"), "--server.port", str(port), "--server.headless", "true",
         "--browser.gatherUsageStats", "false"],
        cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    _SERVERS.append(process)
    _wait_healthy(port, process)
    page = "latent-diffusion" if what.endswith("(spatial)") else "sliders"
    return Exploration(f"http://localhost:{port}/{page}?model={key}", process, what)


def export_module(module, images, image_shape, title) -> Path:
    """An ``nn.Module`` -> a model folder in a temporary directory: image shape from ``image_shape``
    or the images' common size, latent size from what ``encode`` returns on a probe."""
    import torch

    from core.data.registry import load_user_data
    from core.formats.export import export_model

    if image_shape is None:
        if images is None:
            raise ValueError("give image_shape=(C, H, W) or images=DIR: a module does not say what it takes")
        image_shape = load_user_data(f"folder:{Path(images).expanduser().resolve()}").image_shape
    with torch.no_grad():
        code = module.encode(torch.rand(2, *image_shape))
    latent = (code[0] if isinstance(code, tuple | list) else code).shape[-1]
    folder = Path(tempfile.mkdtemp(prefix="latentlab-explore-")) / (title or type(module).__name__).replace(" ", "-")
    export_model(module, folder, image_shape=tuple(image_shape), latent_dim=int(latent), title=title or folder.name)
    return folder


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_healthy(port: int, process: subprocess.Popen) -> None:
    deadline = time.time() + START_TIMEOUT_S
    while time.time() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the app server stopped at start (exit code {process.returncode})")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    process.kill()
    raise RuntimeError(f"the app server did not answer on port {port} within {START_TIMEOUT_S} s")


class _environment:
    """Set environment variables for a block (the catalog reads the explored model from them)."""

    def __init__(self, values: dict[str, str]):
        self.values, self.saved = values, {}

    def __enter__(self):
        for k, v in self.values.items():
            self.saved[k] = os.environ.get(k)
            os.environ[k] = v

    def __exit__(self, *exc):
        for k, old in self.saved.items():
            if old is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = old


@atexit.register
def _stop_all() -> None:
    for process in _SERVERS:
        if process.poll() is None:
            process.terminate()
