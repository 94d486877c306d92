"""The notebook recipe, as a user runs it: docs/explore.ipynb executed cell by cell in a Jupyter
kernel (nbclient) trains its small VAE and calls ``explore(model, images=...)``; the URL its output
shows serves the model's sliders page in Chromium, and the notebook's last cell, ``session.close()``,
frees the port."""

from __future__ import annotations

import contextlib
import os
import re
import socket
import urllib.request

import nbformat
import pytest
from nbclient import NotebookClient
from nbformat.v4 import new_code_cell

from tests.browser_support import image_src, open_page
from tests.conftest import ROOT

pytestmark = [pytest.mark.browser, pytest.mark.slow]
NOTEBOOK = ROOT / "docs" / "explore.ipynb"
Z_DIM = 4  # the notebook's TinyVAE


def shown_text(cell) -> str:
    """What a cell printed or displayed, as plain text."""
    parts = []
    for out in cell.get("outputs", []):
        parts.append(out.get("text", ""))
        parts.append(out.get("data", {}).get("text/plain", ""))
    return "".join(parts)


def port_is_free(port: int) -> bool:
    """Nothing answers on the port, and a new server could listen on it (as a restart would, with
    SO_REUSEADDR: the old server's closed connections may still wait in TIME_WAIT)."""
    with socket.socket() as s:
        if s.connect_ex(("127.0.0.1", port)) == 0:
            return False
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("", port))
            s.listen()
        except OSError:
            return False
    return True


def test_the_notebook_recipe_serves_the_sliders_and_close_frees_the_port(browser, tmp_path):
    nb = nbformat.read(NOTEBOOK, as_version=4)
    code = [i for i, cell in enumerate(nb.cells) if cell.cell_type == "code"]
    *steps, close = code
    assert nb.cells[close].source.strip() == "session.close()"
    # Run from docs/, as a user who opens the notebook where it lies: its first cell finds core.
    client = NotebookClient(
        nb, timeout=180, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOK.parent)}}
    )
    # One thread for the kernel's torch, as for each test worker (conftest): a second would only
    # contend with the app server and Chromium for the CPU. Its temporary folders (the images, the
    # exported model) go to the test's own.
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TMPDIR": str(tmp_path)}
    with client.setup_kernel(env=env):  # shuts the kernel down on the way out, whatever happened
        closed = False
        try:
            for i in steps:
                client.execute_cell(nb.cells[i], i)
            recipe = next(nb.cells[i] for i in steps if "explore(" in nb.cells[i].source)
            shown = shown_text(recipe)
            assert "Latent Lab is showing tiny-vae" in shown, shown
            url = re.search(r"http://\S+", shown).group(0)
            assert "/sliders?model=explore:tiny-vae" in url, url
            assert any("text/html" in out.get("data", {}) for out in recipe.outputs), "shown inline in Jupyter"
            port = int(re.search(r":(\d+)/", url).group(1))

            ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
            try:
                page = ctx.new_page()
                server, path = url.split("/sliders", 1)
                open_page(page, server, f"sliders{path}&decoder=server")  # the server's sliders: no `make web` needed
                main = page.get_by_test_id("stMain")
                assert main.get_by_test_id("stSlider").count() == Z_DIM, "one slider per latent dimension"
                assert image_src(page, "decoded from the sliders")
                assert page.get_by_test_id("stSidebar").get_by_text("tiny-vae").count() >= 1
                assert page.get_by_test_id("stException").count() == 0
            finally:
                ctx.close()

            client.execute_cell(nb.cells[close], close)
            closed = True
            assert port_is_free(port), f"port {port} is still taken after session.close()"
            with pytest.raises(OSError):
                urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2)
        finally:
            if not closed:  # a step failed: stop the app server the notebook's way, if it started
                with contextlib.suppress(Exception):  # the kernel's exit stops it too (atexit)
                    client.execute_cell(new_code_cell("if 'session' in globals(): session.close()"), len(nb.cells))
