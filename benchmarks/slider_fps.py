"""Frame-rate sliders: the sliders that decode in the browser against the server-side ones, side by side.

    python -m benchmarks.slider_fps [--drags 12] [--presses 30] [--sessions 30] [--seconds 60]

One app server (the shipped checkpoints), one headless Chromium (Debian's), both modes of the
sliders page in the same run: in the browser (the default) and on the server (``?decoder=server``).

1. For each model (mnist-vae-conv-z16, orl-faces-vae-conv-z32; frey-vae-conv-z12 for its 28×20
   images; sprites-vae-conv-z10 for colour), in each mode:
   * input → frame painted, median and p95 (ms). In the browser: from each ``input`` event of
     a mouse drag to the animation frame that shows its image, timed in the page
     (``performance.now()``, ``requestAnimationFrame``). On the server: from a key press on a
     slider to the load of the new image (as ``benchmarks/ui_latency.py`` measures it).
   * distinct frames painted during (and right after) a 1-second mouse drag of a slider;
   * websocket messages the browser sends the server for one drag (the server's work);
   * in the browser: the largest difference between the last frame's pixels and the server's
     decode of the code in the link after the drags, in steps of 1/255.
2. The server's CPU while N sessions (one Chromium page each) drag a slider for a while: in
   the browser, each session drags for a second (an ``input`` event every 16 ms from a script
   in the page, then ``change``) and rests for a second; on the server, each session moves its
   slider once per two seconds with a key press (what a drag costs there: Streamlit's slider
   sends one value, when the drag ends). The server's CPU is its process's user + system time
   over the wall time, from /proc. The Chromium pages share the machine with the server, so on a
   small machine they slow each other; the figure that matters is the server's own CPU, which
   the pages do not add to.

Figures are printed, never asserted (``python -m benchmarks --only slider_fps`` keeps them).
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import statistics
import sys
import time
from pathlib import Path
from urllib.parse import parse_qs, urlparse

from benchmarks.ui_latency import CHROMIUM, CHROMIUM_ARGS, PROBE_JS, ROOT, start_server, summary, wait_idle

# 28×28, 64×64, 28×20 grey; 64×64 colour
MODELS = ("mnist-vae-conv-z16", "orl-faces-vae-conv-z32", "frey-vae-conv-z12", "sprites-vae-conv-z10")
READY_JS = "() => (window.__latentlab?.ready || 0) > 0"
STATS_JS = "() => ({frames: window.__latentlab.frames, distinct: window.__latentlab.distinct})"
# In-page drivers for the load test: no round trip to Python per move.
DRIVE_BROWSER_JS = """
async ([seconds, dragMs, pauseMs]) => {
  const root = document.querySelector('[data-testid=stBidiComponentIsolated]').shadowRoot;
  const input = root.querySelector('input[type=range]');
  const [lo, hi] = [Number(input.min), Number(input.max)];
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  const end = performance.now() + seconds * 1000;
  let drags = 0, moves = 0;
  while (performance.now() < end) {
    const t0 = performance.now();
    for (let k = 0; performance.now() - t0 < dragMs; k++, moves++) {
      input.value = String(lo + (hi - lo) * (0.5 + 0.4 * Math.sin((drags + k) / 9)));
      input.dispatchEvent(new Event('input', {bubbles: true}));
      await sleep(16);
    }
    input.dispatchEvent(new Event('change', {bubbles: true}));
    drags++;
    await sleep(pauseMs);
  }
  return {drags, moves};
}
"""


def open_sliders(page, url: str, model: str, mode: str) -> None:
    page.goto(f"{url}/sliders?model={model}" + ("&decoder=server" if mode == "server" else ""), timeout=120_000)
    if mode == "browser":
        page.wait_for_function(READY_JS, timeout=180_000)
    else:
        page.locator('[data-testid="stSlider"]').first.wait_for(timeout=180_000)
    wait_idle(page)


def mouse_drag(page, slider, sign: int, seconds: float = 1.0) -> None:
    """Press the slider in the middle and drag it left and right for ``seconds``, ending at 80%
    of its width (``sign`` 1) or 20% (-1): alternate signs, since a drag that ends where the one
    before ended changes nothing, and sends nothing."""
    slider.scroll_into_view_if_needed()
    box = slider.bounding_box()
    y = box["y"] + box["height"] / 2
    page.mouse.move(box["x"] + box["width"] * 0.5, y)
    page.mouse.down()
    start = time.time()
    while (elapsed := time.time() - start) < seconds:
        page.mouse.move(box["x"] + box["width"] * (0.5 + sign * 0.3 * math.sin(2 * math.pi * 1.25 * elapsed)), y)
    page.mouse.up()


def count_sent(page) -> list[float]:
    sent: list[float] = []
    page.on("websocket", lambda ws: ws.on("framesent", lambda payload: sent.append(time.time())))
    return sent


def browser_mode(page, drags: int) -> dict:
    """Mouse drags on the first slider: latencies, distinct frames and messages per drag."""
    sent = count_sent(page)
    page.reload()
    page.wait_for_function(READY_JS, timeout=180_000)
    wait_idle(page)
    page.evaluate("() => { window.__latentlab.latencies = []; }")
    slider = page.locator("input[type=range]").first
    frames, messages = [], []
    for i in range(drags):
        before, n0 = page.evaluate(STATS_JS), len(sent)
        mouse_drag(page, slider, 1 - 2 * (i % 2))
        time.sleep(0.4)
        wait_idle(page, 60)
        frames.append(page.evaluate(STATS_JS)["distinct"] - before["distinct"])
        messages.append(len(sent) - n0)
        time.sleep(0.3)
    return {"latencies": page.evaluate("() => window.__latentlab.latencies"), "frames": frames, "messages": messages}


def pixel_gap(page, model: str, checkpoints: Path) -> int:
    """Max |browser − server| over the last frame's pixels (0–255) for the code in the page's link."""
    import numpy as np

    from core.formats.checkpoints import load_checkpoint
    from core.lenses.latent import decode

    z = np.array([float(v) for v in parse_qs(urlparse(page.url).query)["z"][0].split(",")], np.float32)
    want = (np.clip(decode(load_checkpoint(checkpoints / f"{model}.safetensors").model, z)[0], 0, 1) * 255).round()
    rgba = np.array(page.evaluate("() => Array.from(window.__latentlab.pixels)")).reshape(*want.shape[1:], 4)
    return int(np.abs(rgba[..., : want.shape[0]].transpose(2, 0, 1) - want).max())


IMAGES_JS = """
() => {
  window.__imgs = new Set();
  const seen = (e) => { if (e.target.tagName === 'IMG') window.__imgs.add(e.target.src); };
  document.addEventListener('load', seen, true);
}
"""


def server_mode(page, drags: int, presses: int) -> dict:
    """Key presses (latency, as benchmarks/ui_latency.py) and mouse drags (frames, messages)."""
    from benchmarks.ui_latency import slider_latencies

    sent = count_sent(page)
    page.reload()
    page.locator('[data-testid="stSlider"]').first.wait_for(timeout=180_000)
    wait_idle(page)
    page.evaluate(PROBE_JS)
    latencies = slider_latencies(page, presses)
    page.evaluate(IMAGES_JS)
    track = page.locator('[data-testid="stSlider"] div[data-orientation="horizontal"][style*="relative"]').first
    frames, messages = [], []
    for i in range(drags):
        page.evaluate("() => window.__imgs.clear()")
        n0 = len(sent)
        mouse_drag(page, track, 1 - 2 * (i % 2))
        time.sleep(0.4)
        wait_idle(page, 60)
        frames.append(page.evaluate("() => window.__imgs.size"))
        messages.append(len(sent) - n0)
        time.sleep(0.3)
    return {"latencies": latencies, "frames": frames, "messages": messages}


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process (all its threads), from /proc/PID/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _session(browser, url: str, model: str, mode: str, sent: list) -> object:
    ctx = await browser.new_context(viewport={"width": 1280, "height": 900})
    page = await ctx.new_page()
    page.on("websocket", lambda ws: ws.on("framesent", lambda payload: sent.append(time.time())))
    await page.goto(f"{url}/sliders?model={model}" + ("&decoder=server" if mode == "server" else ""), timeout=600_000)
    if mode == "browser":
        await page.wait_for_function(READY_JS, timeout=600_000)
    else:
        await page.locator('[data-testid="stSlider"]').first.wait_for(timeout=600_000)
    return page


async def _press_keys(page, seconds: float, period: float) -> dict:
    """The server-side sliders' load: one move per ``period`` (a drag sends Streamlit one value)."""
    await page.get_by_role("slider").first.focus()
    end, drags = time.perf_counter() + seconds, 0
    while time.perf_counter() < end:
        await page.keyboard.press("ArrowLeft" if drags % 2 else "ArrowRight")
        drags += 1
        await asyncio.sleep(period)
    return {"drags": drags, "moves": drags}


async def load(pid: int, url: str, model: str, mode: str, sessions: int, seconds: float) -> dict:
    """N sessions drag for ``seconds``; the server's CPU over that time."""
    from playwright.async_api import async_playwright

    sent: list[float] = []
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        pages = []
        for _ in range(sessions):  # one at a time: 30 first page loads at once would time out
            pages.append(await _session(browser, url, model, mode, sent))
        await asyncio.sleep(3)
        cpu0, t0, n0 = cpu_seconds(pid), time.perf_counter(), len(sent)
        if mode == "browser":
            runs = [p.evaluate(DRIVE_BROWSER_JS, [seconds, 1000, 1000]) for p in pages]
        else:
            runs = [_press_keys(p, seconds, 2.0) for p in pages]
        results = await asyncio.gather(*runs, return_exceptions=True)
        wall, cpu, messages = time.perf_counter() - t0, cpu_seconds(pid) - cpu0, len(sent) - n0
        await browser.close()
    ok = [r for r in results if isinstance(r, dict)]
    return {
        "sessions": sessions,
        "wall": wall,
        "cpu": cpu,
        "drags": sum(r["drags"] for r in ok),
        "moves": sum(r["moves"] for r in ok),
        "messages": messages,
        "errors": len(results) - len(ok),
    }


def fmt_model_rows(model: str, figures: dict) -> list[str]:
    rows = []
    for mode, title in (("browser", "in the browser"), ("server", "on the server (today)")):
        f = figures[mode]
        med, p95 = summary(f["latencies"])
        gap = f"{f['gap']}/255" if "gap" in f else "(the server's own)"
        rows.append(
            f"| {model} | {title} | {med:.1f} | {p95:.1f} | {statistics.median(f['frames']):.0f} "
            f"({min(f['frames'])}–{max(f['frames'])}) | {statistics.median(f['messages']):.0f} "
            f"({min(f['messages'])}–{max(f['messages'])}) | {gap} |"
        )
    return rows


def print_report(figures: dict, loads: dict, args) -> None:
    try:
        from benchmarks.machine import header

        print(header("Frame-rate sliders: in the browser against the server (headless Chromium)"))
    except Exception:  # torch missing or the like: the figures still stand
        print("## Frame-rate sliders: in the browser against the server (headless Chromium)")
    print()
    print("| model | sliders decode | input → frame median (ms) | p95 (ms) | frames in a 1-s drag | messages per drag"
          " | pixels vs the server's decode |")  # fmt: skip
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
    for model, f in figures.items():
        print("\n".join(fmt_model_rows(model, f)))
    print()
    print(f"{args.drags} drags per row (frames and messages: median (min–max)); in the browser the latency covers")
    print("every input event of those drags, on the server it is key press → image over", args.presses, "presses.")
    print()
    print("| sliders decode | sessions | seconds | drags | moves | messages to the server | server CPU (% of one"
          " core) | server CPU (% of the machine) | server CPU per message (ms) | errors |")  # fmt: skip
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    cores = os.cpu_count() or 1
    for mode, r in loads.items():
        pct = 100 * r["cpu"] / r["wall"]
        per = 1000 * r["cpu"] / max(r["messages"], 1)
        print(f"| {mode} | {r['sessions']} | {r['wall']:.0f} | {r['drags']} | {r['moves']} | {r['messages']} | "
              f"{pct:.1f} | {pct / cores:.1f} | {per:.1f} | {r['errors']} |")  # fmt: skip
    print()
    print(f"load model: {args.load_model}; {cores} cores shared by the server and all {args.sessions} Chromium pages,")
    print("so the pages manage fewer drags than the 1 per 2 s they aim at; at that full pace the server would take")
    print(f"{args.sessions} / 2 × the CPU per message each second.")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--drags", type=int, default=12, help="1-second mouse drags per model and mode")
    ap.add_argument("--presses", type=int, default=30, help="key presses for the server's latency")
    ap.add_argument("--sessions", type=int, default=30)
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--load-model", default=MODELS[0])
    ap.add_argument("--checkpoints", default=None, help="checkpoint folder (default: the shipped one)")
    args = ap.parse_args()

    from playwright.sync_api import sync_playwright

    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    env.pop("LATENTLAB_DECODER", None)
    checkpoints = Path(args.checkpoints).resolve() if args.checkpoints else ROOT / "checkpoints"
    env["LATENTLAB_CHECKPOINTS"] = str(checkpoints)
    proc, url, _ = start_server(ROOT / "app.py", ROOT, env)
    figures, loads = {}, {}
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
            _first_page(page, url)
            for model in MODELS:
                open_sliders(page, url, model, "browser")  # exports the decoder once (seconds)
                figures[model] = {"browser": browser_mode(page, args.drags)}
                figures[model]["browser"]["gap"] = pixel_gap(page, model, checkpoints)
                open_sliders(page, url, model, "server")
                figures[model]["server"] = server_mode(page, args.drags, args.presses)
            browser.close()
        for mode in ("browser", "server"):
            loads[mode] = asyncio.run(load(proc.pid, url, args.load_model, mode, args.sessions, args.seconds))
    finally:
        proc.terminate()
        proc.wait(10)
    print_report(figures, loads, args)
    return 0


def _first_page(page, url: str) -> None:
    """Open the home page first: a fresh server's first run meets Streamlit's pages/ router."""
    for _ in range(600):
        try:
            page.goto(url, timeout=60_000)
            break
        except Exception:  # not listening yet
            time.sleep(0.1)
    page.locator('[data-testid="stSidebar"] >> text="Checkpoint"').first.wait_for(timeout=120_000)
    wait_idle(page)


if __name__ == "__main__":
    sys.exit(main())
