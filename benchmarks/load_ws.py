"""Load test with light clients: Streamlit websocket sessions instead of browsers, loopback only.

    python -m benchmarks.load_ws [--sessions 30] [--seconds 60] [--model mnist-vae-conv-z16]

``benchmarks/load.py`` drives 30 Chromium tabs, whose rendering takes most of a 2-core
machine's CPU and so measures the client as much as the server. Here each session is what the
browser sends and receives, without the rendering: one websocket to ``/_stcore/stream``
speaking Streamlit's protocol (BackMsg / ForwardMsg protobufs). A session opens the sliders
page, then for ``--seconds`` moves a slider (a fragment rerun with the new value, as the
browser sends it), waits for the rerun to finish, fetches the new image over HTTP as the
browser would, and pauses 0.5–1.5 s, as a person dragging a slider in class does; after about
one move in seven it opens another page (any but Train's and the sweep's runs) and comes back.

Reports errors (exception boxes, failed runs, timeouts), the move → image p50/p95, the
server's peak RSS, and whether any session saw another's state: each session's slider value is
its own, and the image it gets back after a move must be the one decoded for that value (one
value, one image, across all sessions; the images must also differ between values).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import random
import sys
import time
import urllib.request
from dataclasses import dataclass, field

from benchmarks.ui_latency import ROOT, peak_rss_mb, start_server, summary

# The pages a session visits between slider moves (the sliders page is home base); Train and
# β sweep are opened but not run: a class does not train thirty models at once.
OTHER_PAGES = ["welcome", "sampling", "latent-map", "interpolation", "ae-vs-vae", "your-image", "beta-sweep",
               "denoising", "anomalies", "train"]  # fmt: skip
VISIT_OTHER_PAGE = 0.15


@dataclass
class Log:
    index: int
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    images: dict[float, set[str]] = field(default_factory=dict)  # slider value -> image digests seen
    pages: int = 0  # other pages opened between slider moves
    page_ms: dict[str, list[float]] = field(default_factory=dict)  # page -> run times


def _back(query: str, page: str, widgets=None, fragment_id: str = "") -> bytes:
    from streamlit.proto.BackMsg_pb2 import BackMsg

    msg = BackMsg()
    state = msg.rerun_script
    state.query_string = query
    state.page_name = page
    if fragment_id:
        state.fragment_id = fragment_id
    for w in widgets or []:
        state.widget_states.widgets.append(w)
    return msg.SerializeToString()


async def _until_finished(ws, timeout: float = 60) -> tuple[dict, list[str]]:
    """Read ForwardMsgs until the run finishes; returns ({slider id: (element, fragment id)}, image urls).
    An exception box in the page raises RuntimeError with its message."""
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

    sliders, images = {}, []
    while True:
        raw = await asyncio.wait_for(ws.recv(), timeout)
        msg = ForwardMsg()
        msg.ParseFromString(raw)
        kind = msg.WhichOneof("type")
        if kind == "delta" and msg.delta.WhichOneof("type") == "new_element":
            el = msg.delta.new_element
            which = el.WhichOneof("type")
            if which == "slider":
                sliders[el.slider.id] = (el.slider, msg.delta.fragment_id)
            elif which == "imgs":
                images += [img.url for img in el.imgs.imgs]
            elif which == "exception":
                raise RuntimeError(f"exception box: {el.exception.type}: {el.exception.message[:120]}")
        elif kind == "script_finished":
            if msg.script_finished in (ForwardMsg.FINISHED_SUCCESSFULLY, ForwardMsg.FINISHED_FRAGMENT_RUN_SUCCESSFULLY):
                return sliders, images
            if msg.script_finished != ForwardMsg.FINISHED_EARLY_FOR_RERUN:
                raise RuntimeError(f"script finished with status {msg.script_finished}")


async def warm_up(url: str, model: str, log: Log) -> None:
    import websockets

    try:
        async with websockets.connect(
            f"ws://{url.removeprefix('http://')}/_stcore/stream", subprotocols=["streamlit"], origin=url
        ) as ws:
            for page in ["sliders", *OTHER_PAGES]:
                await ws.send(_back(f"model={model}", page))
                await _until_finished(ws, 300)
    except Exception as exc:
        log.errors.append(f"warm-up: {type(exc).__name__}: {str(exc)[:160]}")


def _fetch(url: str) -> str:
    with urllib.request.urlopen(url, timeout=30) as r:
        return hashlib.sha256(r.read()).hexdigest()


async def session(url: str, model: str, log: Log, until: float, rng: random.Random) -> None:
    import websockets
    from streamlit.proto.WidgetStates_pb2 import WidgetState

    host = url.removeprefix("http://")
    query = f"model={model}"
    loop = asyncio.get_running_loop()
    try:
        async with websockets.connect(
            f"ws://{host}/_stcore/stream", subprotocols=["streamlit"], origin=url, max_size=2**26
        ) as ws:
            await ws.send(_back(query, "sliders"))
            sliders, _ = await _until_finished(ws, 120)
            if not sliders:
                raise RuntimeError("no slider on the sliders page")
            slider_id, (slider, fragment_id) = next(iter(sliders.items()))
            value = round(rng.uniform(slider.min, slider.max) * 4) / 4
            while time.monotonic() < until:
                if rng.random() < VISIT_OTHER_PAGE:  # now and then, another page, then back
                    page = rng.choice(OTHER_PAGES)
                    try:
                        t_page = time.perf_counter()
                        await ws.send(_back(query, page))
                        await _until_finished(ws, 120)
                        log.pages += 1
                        log.page_ms.setdefault(page, []).append((time.perf_counter() - t_page) * 1000)
                    except Exception as exc:
                        log.errors.append(f"session {log.index}, page {page}: {type(exc).__name__}: {str(exc)[:160]}")
                    await ws.send(_back(query, "sliders"))
                    sliders, _ = await _until_finished(ws, 120)
                    slider_id, (slider, fragment_id) = next(iter(sliders.items()))
                value = min(slider.max, max(slider.min, value + rng.choice([-0.25, 0.25])))
                state = WidgetState(id=slider_id)
                state.double_array_value.data.append(value)
                t0 = time.perf_counter()
                await ws.send(_back(query, "sliders", [state], fragment_id))
                _, images = await _until_finished(ws)
                if not images:
                    raise RuntimeError("a slider move brought no image")
                digest = await loop.run_in_executor(None, _fetch, url + images[0])
                log.latencies.append((time.perf_counter() - t0) * 1000)
                log.images.setdefault(value, set()).add(digest)
                await asyncio.sleep(rng.uniform(0.5, 1.5))
    except Exception as exc:
        log.errors.append(f"session {log.index}: {type(exc).__name__}: {str(exc)[:160]}")


async def run(args) -> int:
    env = {"PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "LATENTLAB_DECODER": "server"}  # server-side sliders
    import os

    env = {**os.environ, **env}
    proc, url, _ = start_server(ROOT / "app.py", ROOT, env)
    logs = [Log(i) for i in range(args.sessions)]
    try:
        for _ in range(600):  # until the server answers
            try:
                urllib.request.urlopen(url + "/_stcore/health", timeout=2)
                break
            except OSError:
                await asyncio.sleep(0.2)
        # Outside the clock, as the teacher does before class: open every page once, so that the
        # models are loaded and each page's cached figures computed.
        warm = Log(-1)
        await warm_up(url, args.model, warm)
        if warm.errors:
            print("warm-up failed:", warm.errors)
            return 1
        rng = random.Random(0)
        t0 = time.monotonic()
        until = t0 + args.seconds
        tasks = []
        for log in logs:  # staggered arrivals
            tasks.append(asyncio.create_task(session(url, args.model, log, until, random.Random(rng.random()))))
            await asyncio.sleep(0.1)
        await asyncio.gather(*tasks)
        wall = time.monotonic() - t0
        rss = peak_rss_mb(proc.pid)
    finally:
        proc.terminate()
        proc.wait(15)

    lat = [v for log in logs for v in log.latencies]
    errors = [e for log in logs for e in log.errors]
    seen: dict[float, set[str]] = {}
    for log in logs:
        for value, digests in log.images.items():
            seen.setdefault(value, set()).update(digests)
    # One slider value must always decode to one image, whoever asked: two images for one value
    # would mean a session's image depended on another session's state.
    mixed = sorted(v for v, d in seen.items() if len(d) > 1)
    # ... and the image must follow the value (else the moves were not applied at all).
    distinct = len(set().union(*seen.values())) if seen else 0
    if len(seen) > 1 and distinct < 2:
        errors.append(f"{len(seen)} slider values all gave the same image: the moves were not applied")
    p50, p95 = summary(lat) if lat else (float("nan"), float("nan"))
    from benchmarks.machine import header

    title = f"Load: {args.sessions} websocket sessions for {args.seconds:g} s, sliders and every page (loopback)"
    print(header(title))
    print()
    pages = sum(log.pages for log in logs)
    print(
        "| sessions | seconds | slider moves | other pages opened | errors | move → image p50 (ms) | p95 (ms) "
        "| server peak RSS (MB) |"
    )
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    print(
        f"| {args.sessions} | {wall:.0f} | {len(lat)} | {pages} | {len(errors)} | {p50:.0f} | {p95:.0f} | {rss:.0f} |"
    )
    print()
    print(f"slider values whose image differed between moves or sessions: {len(mixed)} {mixed[:5] or ''}")
    print(f"distinct images: {distinct} for {len(seen)} distinct slider values")
    by_page: dict[str, list[float]] = {}
    for log in logs:
        for page, values in log.page_ms.items():
            by_page.setdefault(page, []).extend(values)
    print(
        "page opened (median / max ms): "
        + ", ".join(f"{p} {summary(v)[0]:.0f}/{max(v):.0f}" for p, v in sorted(by_page.items()))
    )
    met = {True: "met", False: "NOT met"}
    print(f"targets: errors 0 → {met[not errors]}; p95 ≤ 500 ms → {met[p95 <= 500]}")
    for e in errors[:10]:
        print(f"  error: {e}")
    return 0 if not errors and not mixed else 1


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.load_ws", description=__doc__.splitlines()[0])
    p.add_argument("--sessions", type=int, default=30)
    p.add_argument("--seconds", type=float, default=60)
    p.add_argument("--model", default="mnist-vae-conv-z16")
    args = p.parse_args(argv)
    if not 1 <= args.sessions <= 200 or not 1 <= args.seconds <= 600:
        p.error("sessions must be 1-200 and seconds 1-600 (a bounded run)")
    return asyncio.run(run(args))


if __name__ == "__main__":
    sys.exit(main())
