"""Capture the README's screenshots of the app with the shipped checkpoints.

    .venv/bin/python docs/screenshots/capture.py [OUT_DIR [VIEW ...]]   # default: docs/screenshots, all

Starts the app on a free port (with ``LATENTLAB_DATA`` at ``../shared/data`` when that folder
exists, so the pages show the full test sets rather than the offline subsets), opens each view
below in headless Chromium (Debian's), waits until the script is idle, and saves a PNG per
view. Views whose model is not installed are skipped with a note. Look at every PNG before
committing it.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]  # fmt: skip

# name -> (url path and query, model it needs, viewport height, what to do before the shot)
VIEWS = {
    "home": ("", None, 1000, None),
    "sliders": ("sliders?model=frey-vae-conv-z12", "frey-vae-conv-z12", 900, None),
    "sampling": ("sampling?model=mnist-vae-mlp-z2&grid=15", "mnist-vae-mlp-z2", 1150, None),
    "latent-map": ("latent-map?model=mnist-vae-mlp-z2&points=2000&row=17", "mnist-vae-mlp-z2", 950, None),
    "interpolation": ("interpolation?model=mnist-vae-conv-z16&a=3&b=2&steps=10", "mnist-vae-conv-z16", 1250, "all"),
    "ae-vs-vae": ("ae-vs-vae", "mnist-ae-conv-z16", 1500, None),
    "your-image": ("your-image?model=mnist-vae-conv-z16", "mnist-vae-conv-z16", 1250, "upload"),
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def settle(page, timeout_s: float = 120) -> None:
    deadline, quiet = time.time() + timeout_s, None
    while time.time() < deadline:
        if page.get_by_test_id("stStatusWidget").count() or page.get_by_test_id("stSpinner").count():
            quiet = None
        elif quiet is None:
            quiet = time.time()
        elif time.time() - quiet > 1.0:
            return
        time.sleep(0.05)


def digit_photo(path: Path) -> None:
    """A dark '3' on paper, as a phone photo of a drawing would be."""
    from PIL import Image, ImageDraw

    img = Image.new("L", (240, 240), 235)
    d = ImageDraw.Draw(img)
    d.arc([70, 30, 170, 120], 200, 90, fill=30, width=16)
    d.arc([70, 110, 170, 210], 270, 160, fill=30, width=16)
    img.save(path)


def main() -> int:
    from playwright.sync_api import sync_playwright

    out = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "screenshots"
    wanted = sys.argv[2:] or list(VIEWS)
    unknown = set(wanted) - set(VIEWS)
    if unknown:
        raise SystemExit(f"unknown views {sorted(unknown)}; choose from {list(VIEWS)}")
    out.mkdir(parents=True, exist_ok=True)
    sys.path.insert(0, str(ROOT))
    from core.catalog import list_models

    installed = {e.key for e in list_models() if e.ok}
    port = free_port()
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    shared = ROOT.parent / "shared" / "data"
    if shared.is_dir() and "LATENTLAB_DATA" not in env:
        env["LATENTLAB_DATA"] = str(shared)
    server = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true", "--server.port", str(port),
         "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            for _ in range(600):
                try:
                    page.goto(url)
                    break
                except Exception:  # not listening yet
                    time.sleep(0.1)
            page.get_by_test_id("stSidebar").get_by_text("Checkpoint", exact=True).wait_for(timeout=120_000)
            settle(page)
            for name in wanted:
                path, model, height, action = VIEWS[name]
                if model and model not in installed:
                    print(f"skipped   {name}: {model} is not installed")
                    continue
                page.set_viewport_size({"width": 1400, "height": height})
                page.goto(f"{url}/{path}")
                page.get_by_test_id("stMain").get_by_role("heading").first.wait_for(timeout=120_000)
                settle(page)
                if action == "all":
                    page.get_by_text("Show all three paths").click()
                elif action == "upload":
                    photo = Path(tempfile.mkdtemp()) / "my-three.png"
                    digit_photo(photo)
                    page.get_by_test_id("stFileUploaderDropzoneInput").set_input_files(str(photo))
                    page.get_by_text("its reconstruction").wait_for(timeout=60_000)
                    photo.unlink()
                settle(page)
                broken = page.get_by_test_id("stException").count()
                page.screenshot(path=str(out / f"{name}.png"))
                print(f"{'EXCEPTION' if broken else 'ok':9} {name}: {out / f'{name}.png'}")
            browser.close()
    finally:
        server.terminate()
        server.wait(10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
