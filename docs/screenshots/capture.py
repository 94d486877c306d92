"""Capture the README's screenshots of the app with the shipped checkpoints, as a fresh clone
shows them: offline, with nothing beside it (no data folder, no network).

    .venv/bin/python docs/screenshots/capture.py [--present] [OUT_DIR [VIEW ...]]

Normally one 1280×800 screen per page into ``docs/screenshots/``; with ``--present``, one
1024×768 screen per page in presenter mode (``?present=1``: a projector's view) into
``docs/screenshots/present/``. Starts the app on a free port, opens each view below in headless
Chromium (Debian's), waits until the script is idle, and saves a PNG per view. Views whose
model is not installed are skipped with a note. Look at every PNG before committing it.
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

# name -> (url path and query, model it needs, what to do before the shot)
VIEWS = {
    "home": ("", None, None),
    "sliders": ("sliders?model=frey-vae-conv-z12", "frey-vae-conv-z12", None),
    "sampling": ("sampling?model=mnist-vae-mlp-z2", "mnist-vae-mlp-z2", None),
    "latent-map": ("latent-map?model=mnist-vae-mlp-z2&points=2000&row=17", "mnist-vae-mlp-z2", None),
    "neighbours": ("neighbours?model=mnist-vae-conv-z16", "mnist-vae-conv-z16", None),
    "interpolation": ("interpolation?model=mnist-vae-conv-z16", "mnist-vae-conv-z16", None),
    "directions": ("directions?model=mnist-bvae-mlp-z20-b1", "mnist-bvae-mlp-z20-b1", None),
    "ae-vs-vae": ("ae-vs-vae?model=mnist-ae-conv-z16", "mnist-ae-conv-z16", None),
    "your-image": ("your-image?model=mnist-vae-conv-z16", "mnist-vae-conv-z16", "upload"),
    "beta-sweep": ("beta-sweep?model=mnist-bvae-mlp-z20-b1", "mnist-bvae-mlp-z20-b1", None),
    "denoising": ("denoising?model=mnist-dae-conv-z256-mixed-gate", "mnist-dae-conv-z256-mixed-gate", None),
    "anomalies": ("anomalies?model=mnist-vae-conv-z16", "mnist-vae-conv-z16", None),
    "sliders-colour": ("sliders?model=sprites-vae-conv-z10&start=test", "sprites-vae-conv-z10", None),
    "latent-map-colour": ("latent-map?model=sprites-vae-conv-z10&points=1000", "sprites-vae-conv-z10", None),
    "beta-sweep-factors": ("beta-sweep?family=sprites-vae-conv-z10", "sprites-vae-conv-z10", "factors"),
    "latent-diffusion": ("latent-diffusion?model=sprites-sd-vae&size=64", "sprites-sd-vae", None),
    "train": ("train", None, None),
    "your-model": ("your-model", None, None),
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

    args = sys.argv[1:]
    present = "--present" in args
    args = [a for a in args if a != "--present"]
    width, height = (1024, 768) if present else (1280, 800)
    out = Path(args[0]) if args else ROOT / "docs" / "screenshots" / ("present" if present else "")
    wanted = args[1:] or list(VIEWS)
    unknown = set(wanted) - set(VIEWS)
    if unknown:
        raise SystemExit(f"unknown views {sorted(unknown)}; choose from {list(VIEWS)}")
    out.mkdir(parents=True, exist_ok=True)
    sys.path.insert(0, str(ROOT))
    from core.app.catalog import list_models

    installed = {e.key for e in list_models() if e.ok}
    port = free_port()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "LATENTLAB_CACHE": tempfile.mkdtemp()}
    env.pop("LATENTLAB_DATA", None)  # offline, as a fresh clone: data/'s held-out test sets
    env.pop("LATENTLAB_DOWNLOAD", None)
    server = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true", "--server.port", str(port),
         "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": width, "height": height})
            for _ in range(600):
                try:
                    page.goto(url)
                    break
                except Exception:  # not listening yet
                    time.sleep(0.1)
            page.get_by_test_id("stSidebar").get_by_text("Checkpoint", exact=True).wait_for(timeout=120_000)
            settle(page)
            for name in wanted:
                path, model, action = VIEWS[name]
                if model and model not in installed:
                    print(f"skipped   {name}: {model} is not installed")
                    continue
                if present:
                    path += ("&" if "?" in path else "?") + "present=1"
                page.goto(f"{url}/{path}")
                page.get_by_test_id("stMain").get_by_role("heading").first.wait_for(timeout=120_000)
                settle(page)
                if action == "upload":
                    photo = Path(tempfile.mkdtemp()) / "my-three.png"
                    digit_photo(photo)
                    page.get_by_test_id("stFileUploaderDropzoneInput").set_input_files(str(photo))
                    page.get_by_text("its reconstruction", exact=True).wait_for(timeout=60_000)
                    photo.unlink()
                if action == "factors":  # the known-factors section, further down the β sweep page
                    page.get_by_text("Known factors: which dimension carries what").scroll_into_view_if_needed()
                    page.mouse.move(800, 400)
                    page.mouse.wheel(0, 330)
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
