"""Load test: a classroom of concurrent browser sessions against one app server, loopback only.

    python -m benchmarks.load [--sessions 30] [--seconds 60] [--checkpoints DIR]

Starts ``streamlit run app.py`` on a free loopback port and opens ``--sessions`` Playwright
contexts (separate cookies and websockets, so separate Streamlit sessions) in one headless
Chromium. For ``--seconds`` each session cycles through the pages: on the sliders page it
moves a slider by key presses and times key press → new image; on the latent map it clicks a
point; elsewhere it opens the page and waits for the script to finish. It stops by itself.

Reports: errors (exception boxes, timeouts, a page that never settled), slider latency
p50/p95, the server's peak RSS (VmHWM from /proc), and whether any session saw another's
state: each session drives its own slider to its own value and checks it is still there at
the end. Before and after, every cached model's weights are hashed: no session may mutate them.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.ui_latency import CHROMIUM, CHROMIUM_ARGS, PROBE_JS, ROOT, peak_rss_mb, start_server, summary

PAGES = ["sliders", "sampling", "latent-map", "interpolation", "ae-vs-vae", "your-image", "welcome"]
RUNNING = '[data-testid="stStatusWidget"]'


@dataclass
class SessionLog:
    index: int
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    pages: int = 0
    own_value: str | None = None  # the slider value this session set
    saw_foreign_state: bool = False


async def idle(page, timeout_s: float = 60) -> None:
    """Until no script runs for half a second (raises TimeoutError otherwise)."""
    deadline = time.monotonic() + timeout_s
    quiet = None
    while time.monotonic() < deadline:
        if await page.locator(RUNNING).count():
            quiet = None
        elif quiet is None:
            quiet = time.monotonic()
        elif time.monotonic() - quiet > 0.5:
            return
        await asyncio.sleep(0.05)
    raise TimeoutError("the page kept running")


async def check_exceptions(page, log: SessionLog, where: str) -> None:
    n = await page.get_by_test_id("stException").count()
    if n:
        text = (await page.get_by_test_id("stException").first.inner_text())[:200]
        log.errors.append(f"{where}: exception box: {text}")


async def slider_moves(page, log: SessionLog, presses: int) -> None:
    await page.evaluate(PROBE_JS)
    thumb = page.get_by_role("slider").first
    await thumb.focus()
    for _ in range(presses):
        await page.keyboard.press("ArrowRight")
        await page.wait_for_function("() => window.__lat.loads.length > 0", timeout=30_000)
        log.latencies.append(await page.evaluate("() => Math.min(...window.__lat.loads) - window.__lat.down"))
        await idle(page, 30)
    log.own_value = await thumb.get_attribute("aria-valuenow")


async def session(browser, url: str, log: SessionLog, until: float, rng: random.Random) -> None:
    ctx = await browser.new_context(viewport={"width": 1300, "height": 900})
    page = await ctx.new_page()
    try:
        # Each session first moves its slider to its own value (1..7 steps right).
        await page.goto(f"{url}/sliders", timeout=120_000)
        await page.get_by_role("slider").first.wait_for(timeout=120_000)
        await idle(page, 120)
        await slider_moves(page, log, 1 + log.index % 7)
        mine = log.own_value
        while time.monotonic() < until:
            name = rng.choice(PAGES)
            try:
                await page.get_by_test_id("stSidebarNav").locator(f'a[href$="/{name}"]').first.click(timeout=30_000)
                await page.get_by_test_id("stMain").get_by_role("heading").first.wait_for(timeout=60_000)
                await idle(page, 60)
                log.pages += 1
                if name == "sliders":
                    await slider_moves(page, log, 3)
                    await slider_moves(page, log, 0)  # reads the value back
                    mine = log.own_value
                elif name == "latent-map":
                    plot = page.locator(".js-plotly-plot").first
                    await plot.wait_for(timeout=60_000)
                    box = await plot.bounding_box()
                    if box:
                        await page.mouse.click(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.5)
                        await idle(page, 60)
                await check_exceptions(page, log, name)
            except Exception as exc:  # a timeout or a vanished element: an error of the run
                log.errors.append(f"{name}: {type(exc).__name__}: {str(exc).splitlines()[0][:160]}")
        # The slider this session set must still hold its value (session state is per session).
        await page.get_by_test_id("stSidebarNav").locator('a[href$="/sliders"]').first.click(timeout=30_000)
        await page.get_by_role("slider").first.wait_for(timeout=60_000)
        await idle(page, 60)
        await slider_moves(page, log, 0)
        log.saw_foreign_state = log.own_value != mine
    except Exception as exc:
        log.errors.append(f"session: {type(exc).__name__}: {str(exc).splitlines()[0][:160]}")
    finally:
        await ctx.close()


def weights_digest(folder: Path) -> dict[str, str]:
    import hashlib

    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.glob("*.safetensors"))}


async def run(args) -> int:
    from playwright.async_api import async_playwright

    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    env["LATENTLAB_DECODER"] = "server"  # the server-side sliders; benchmarks/slider_fps.py loads the browser's
    folder = Path(args.checkpoints).resolve() if args.checkpoints else ROOT / "checkpoints"
    env["LATENTLAB_CHECKPOINTS"] = str(folder)
    before = weights_digest(folder)
    proc, url, _ = start_server(ROOT / "app.py", ROOT, env)
    logs = [SessionLog(i) for i in range(args.sessions)]
    try:
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            warm = await browser.new_page()  # the first run of a fresh server, outside the clock
            for _ in range(600):
                try:
                    await warm.goto(url, timeout=5_000)
                    break
                except Exception:
                    await asyncio.sleep(0.2)
            await warm.get_by_test_id("stSidebar").get_by_text("Checkpoint", exact=True).wait_for(timeout=120_000)
            await warm.close()
            t0 = time.monotonic()
            until = t0 + args.seconds
            rng = random.Random(0)
            tasks = []
            for log in logs:  # staggered arrivals, as in a class
                tasks.append(asyncio.create_task(session(browser, url, log, until, random.Random(rng.random()))))
                await asyncio.sleep(0.2)
            await asyncio.gather(*tasks)
            wall = time.monotonic() - t0
            await browser.close()
        rss = peak_rss_mb(proc.pid)
    finally:
        proc.terminate()
        proc.wait(15)
    after = weights_digest(folder)

    lat = [v for log in logs for v in log.latencies]
    errors = [e for log in logs for e in log.errors]
    p50, p95 = summary(lat) if lat else (float("nan"), float("nan"))
    try:
        from benchmarks.machine import header

        print(header(f"Load: {args.sessions} concurrent browser sessions for {args.seconds} s (loopback)"))
    except Exception:
        print(f"## Load: {args.sessions} concurrent browser sessions for {args.seconds} s (loopback)")
    print()
    print(
        "| sessions | seconds | page visits | slider moves | errors | slider p50 (ms) | p95 (ms) "
        "| server peak RSS (MB) |"
    )
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    print(
        f"| {args.sessions} | {wall:.0f} | {sum(x.pages for x in logs)} | {len(lat)} | {len(errors)} | "
        f"{p50:.0f} | {p95:.0f} | {rss:.0f} |"
    )
    print()
    foreign = [log.index for log in logs if log.saw_foreign_state]
    print(f"sessions that saw another's state: {len(foreign)} {foreign or ''}")
    print(f"checkpoint weights unchanged: {before == after} ({len(before)} files)")
    met = {True: "met", False: "NOT met"}
    print(f"targets: errors 0 → {met[not errors]}; p95 ≤ 500 ms → {met[p95 <= 500]}")
    if lat:
        print(f"(mean {statistics.fmean(lat):.0f} ms, max {max(lat):.0f} ms)")
    for e in errors[:20]:
        print(f"  error: {e}")
    return 0 if not errors and not foreign and before == after else 1


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.load", description=__doc__.splitlines()[0])
    ap.add_argument("--sessions", type=int, default=30)
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--checkpoints", default=None, help="checkpoint folder (default: the shipped one)")
    args = ap.parse_args(argv)
    if not 1 <= args.sessions <= 100 or not 1 <= args.seconds <= 600:
        ap.error("sessions must be 1-100 and seconds 1-600 (a bounded run)")
    return asyncio.run(run(args))


if __name__ == "__main__":
    sys.exit(main())
