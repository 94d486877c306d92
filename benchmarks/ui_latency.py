"""UI latency benchmark: slider key press -> new image, and server start -> first interactive page.

    python -m benchmarks.ui_latency [--presses 40] [--model mnist-vae-conv-z16] [--checkpoints DIR]

Runs, in one headless Chromium (Debian's, at /usr/bin/chromium):

1. the app (``streamlit run app.py``) and a minimal one-slider Streamlit page (a slider and an
   image that depends on it, nothing else), each started fresh: seconds from launching the
   server to the first page being interactive (the sidebar's model picker, or the minimal
   page's slider, on screen with no script running);
2. on the app's sliders page and on the minimal page: milliseconds from a key press on a
   focused slider (ArrowRight / ArrowLeft in turn) to the load of the new image, measured
   inside the page with ``performance.now()`` (a keydown listener and the image's load event).

Targets: sliders-page median ≤ 1.3 × the minimal page's, p95 ≤ 300 ms; first page ≤ 5 s.
Both include Streamlit's own slider debounce, which the minimal page pays too.
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
MINIMAL_APP = textwrap.dedent(
    """
    import numpy as np
    import streamlit as st

    v = st.slider("value", 0, 100, 50)
    ramp = np.linspace(0, 1, 28 * 28, dtype=np.float32).reshape(28, 28)
    st.image((ramp * v / 100 * 255).astype(np.uint8), width=280)
    """
)
# Installed once per page: a keydown listener and a capturing load listener on images.
PROBE_JS = """
() => {
  window.__lat = {down: null, loads: []};
  document.addEventListener('keydown', () => { window.__lat.down = performance.now(); window.__lat.loads = []; }, true);
  document.addEventListener('load', (e) => {
    if (e.target && e.target.tagName === 'IMG') window.__lat.loads.push(performance.now());
  }, true);
}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(script: Path, cwd: Path, env: dict) -> tuple[subprocess.Popen, str, float]:
    port = free_port()
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(script), "--server.headless", "true",
         "--server.port", str(port), "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false",
         "--server.fileWatcherType", "none"],
        cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
    )  # fmt: skip
    return proc, f"http://127.0.0.1:{port}", t0


def wait_idle(page, timeout_s: float = 120) -> None:
    """Until the app's script is not running (no status widget) for a moment."""
    deadline = time.time() + timeout_s
    quiet_since = None
    while time.time() < deadline:
        running = page.locator('[data-testid="stStatusWidget"]').count() > 0
        if running:
            quiet_since = None
        elif quiet_since is None:
            quiet_since = time.time()
        elif time.time() - quiet_since > 0.5:
            return
        time.sleep(0.05)
    raise TimeoutError("the page did not settle")


def first_interactive(page, url: str, t0: float, ready_selector: str) -> float:
    """Seconds from server launch (t0) to ``ready_selector`` visible with no script running."""
    while True:
        try:
            page.goto(url, timeout=60_000)
            break
        except Exception:  # the server is not listening yet
            if time.perf_counter() - t0 > 120:
                raise
            time.sleep(0.05)
    page.locator(ready_selector).first.wait_for(timeout=120_000)
    while page.locator('[data-testid="stStatusWidget"]').count() > 0:
        time.sleep(0.02)
    return time.perf_counter() - t0


def slider_latencies(page, presses: int, settle_s: float = 0.25) -> list[float]:
    """Milliseconds from each key press to the load of the new image."""
    page.evaluate(PROBE_JS)
    thumb = page.get_by_role("slider").first
    thumb.focus()
    out = []
    for i in range(presses + 2):
        page.keyboard.press("ArrowRight" if i % 2 == 0 else "ArrowLeft")
        page.wait_for_function("() => window.__lat.loads.length > 0", timeout=30_000)
        wait_idle(page, 30)
        lat = page.evaluate("() => Math.min(...window.__lat.loads) - window.__lat.down")
        if i >= 2:  # the first two warm the caches
            out.append(lat)
        time.sleep(settle_s)
    return out


APP_PAGES = ["welcome", "sliders", "sampling", "latent-map", "interpolation", "ae-vs-vae", "your-image",
             "beta-sweep", "denoising", "anomalies", "train"]  # fmt: skip


def peak_rss_mb(pid: int) -> float:
    """VmHWM (peak resident set) of a process, in MB, from /proc."""
    text = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmHWM:\s+(\d+) kB", text).group(1)) / 1024


def open_every_page(page, url: str, query: str) -> None:
    for name in APP_PAGES:
        page.goto(f"{url}/{name}{query}")
        page.locator('[data-testid="stMain"] h1').first.wait_for(timeout=120_000)
        wait_idle(page)


def summary(values: list[float]) -> tuple[float, float]:
    values = sorted(values)
    p95 = values[min(len(values) - 1, round(0.95 * (len(values) - 1)))]
    return statistics.median(values), p95


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--presses", type=int, default=40)
    ap.add_argument("--model", default=None, help="checkpoint for the sliders page (default: the app's default)")
    ap.add_argument("--checkpoints", default=None, help="checkpoint folder (default: the shipped one)")
    args = ap.parse_args()

    from playwright.sync_api import sync_playwright

    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    env["LATENTLAB_DECODER"] = "server"  # the server-side sliders; benchmarks/slider_fps.py times the browser's
    if args.checkpoints:
        env["LATENTLAB_CHECKPOINTS"] = str(Path(args.checkpoints).resolve())
    query = f"?model={args.model}" if args.model else ""
    results = {}
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as pw:
        minimal = Path(tmp) / "minimal.py"
        minimal.write_text(MINIMAL_APP, encoding="utf-8")
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        home_ready = '[data-testid="stSidebar"] >> text="Checkpoint"'
        for name, script, cwd, ready in (
            ("minimal one-slider page", minimal, Path(tmp), '[data-testid="stSlider"]'),
            ("Latent Lab", ROOT / "app.py", ROOT, home_ready),
        ):
            proc, url, t0 = start_server(script, cwd, env)
            try:
                ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
                page = ctx.new_page()
                start_s = first_interactive(page, url + "/" + query, t0, ready)
                wait_idle(page)
                if name == "Latent Lab":
                    results["Latent Lab, home page"] = (start_s, None)
                    # A deep link opened first on a fresh server meets Streamlit's pages/-folder
                    # (v1) router and a spurious "Page not found" dialog; the home page came first.
                    page.goto(f"{url}/sliders{query}")
                    page.locator('[data-testid="stSlider"]').first.wait_for(timeout=120_000)
                    wait_idle(page)
                    name = "Latent Lab, sliders page"
                results[name] = (start_s, slider_latencies(page, args.presses))
                if name.startswith("Latent Lab"):
                    open_every_page(page, url, query)
                    rss_mb = peak_rss_mb(proc.pid)
                ctx.close()
            finally:
                proc.terminate()
                proc.wait(10)
        browser.close()

    try:
        from benchmarks.machine import header

        print(header("UI latency (headless Chromium)"))
    except Exception:  # torch missing or the like: the figures still stand
        print("## UI latency (headless Chromium)")
    print()
    print("| page | server start → interactive (s) | key → image median (ms) | p95 (ms) |")
    print("| --- | ---: | ---: | ---: |")
    for name, (start_s, lat) in results.items():
        if lat:
            med, p95 = summary(lat)
            start = f"{start_s:.1f}" if "sliders" not in name else "(as home)"
            print(f"| {name} | {start} | {med:.0f} | {p95:.0f} |")
        else:
            print(f"| {name} | {start_s:.1f} | – | – |")
    base_med, _ = summary(results["minimal one-slider page"][1])
    app_med, app_p95 = summary(results["Latent Lab, sliders page"][1])
    home_s = results["Latent Lab, home page"][0]
    print(f"server peak RSS after opening all {len(APP_PAGES)} pages: {rss_mb:.0f} MB")
    print()
    print(
        f"sliders page / minimal page, median: {app_med / base_med:.2f}× (target ≤ 1.3×); "
        f"p95 {app_p95:.0f} ms (target ≤ 300 ms); first page {home_s:.1f} s (target ≤ 5 s); "
        f"{args.presses} presses each"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
