"""Serve one class from one machine: N Latent Lab replicas on loopback behind HAProxy (``make class``).

Streamlit keeps each session in the process that served it, so one process is one CPU's worth of
visitors. This starts ``--replicas`` copies of the app (``serve.py``) on ``127.0.0.1:PORT+1`` ...
``PORT+N``, all reading and saving the same user-checkpoint folder, and HAProxy on ``PORT`` in
front of them with cookie-sticky sessions (see deploy/haproxy.cfg for the why of each setting).
It waits until every replica answers ``/_stcore/health``, prints the URL, restarts a replica that
dies, and on Ctrl-C / SIGTERM stops HAProxy first (no new connections), then the replicas.

    python -m deploy.class_server --replicas 3 --port 8501
    python -m deploy.class_server --render compose > deploy/haproxy.compose.cfg

The HAProxy config is rendered from the one template deploy/haproxy.cfg by :func:`render`, both
for the loopback replicas here and for the containers (compose's service names).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = Path(__file__).resolve().parent / "haproxy.cfg"
USER_ENV = "LATENTLAB_USER_CHECKPOINTS"  # core.formats.checkpoints.USER_ENV (not imported: it pulls in core)
COMPOSE_REPLICAS = 3  # deploy/compose.yaml's app1 ... app3
COMPOSE_APP_PORT = 8501
GENERATED = "# Rendered from deploy/haproxy.cfg by deploy/class_server.py: edit the template, not this file."
STATS_OFFSET = 1000  # the stats page listens on 127.0.0.1:PORT+1000 (8501 -> 9501)


class RenderError(ValueError):
    """The template and the values given to it do not fit."""


def render(servers: list[tuple[str, str]], bind: str, stats_bind: str, *, compose: bool = False) -> str:
    """deploy/haproxy.cfg with its ``{{...}}`` fields filled: one ``server`` line per (name, address).

    Each server's cookie value is its name, so ``LLSERVER=r2`` pins a visitor to replica r2.
    compose: the addresses are service names that Docker's DNS (127.0.0.11) resolves, maybe only
    once the containers are up, so HAProxy starts without them (init-addr none) and resolves later.
    """
    if not servers:
        raise RenderError("at least one replica is needed")
    lines = [f"    server {name} {address} cookie {name} check" for name, address in servers]
    fields = {
        "bind": bind,
        "stats_bind": stats_bind,
        "servers": "\n".join(lines),
        "server_options": "resolvers docker init-addr last,libc,none" if compose else "",
        "extra": (
            "\n# Docker's embedded DNS: the replicas' service names, re-resolved when a container restarts.\n"
            "resolvers docker\n"
            "    nameserver dns 127.0.0.11:53\n"
            "    hold valid 10s\n"
            if compose
            else ""
        ),
    }
    text = TEMPLATE.read_text(encoding="utf-8")
    for key, value in fields.items():
        if "{{" + key + "}}" not in text:
            raise RenderError(f"{TEMPLATE} has no {{{{{key}}}}} field")
        text = text.replace("{{" + key + "}}", value)
    if "{{" in text:
        raise RenderError(f"{TEMPLATE} has a field render() does not fill: {text[text.index('{{') :][:40]!r}")
    # An empty field leaves trailing spaces or a blank last line behind: tidy them.
    body = "\n".join(line.rstrip() for line in text.splitlines()).rstrip()
    return f"{GENERATED}\n{body}\n"


def render_loopback(port: int, replicas: int, bind_address: str = "") -> str:
    """The config for ``make class``: replicas r1..rN on 127.0.0.1:PORT+1.., HAProxy on PORT."""
    servers = [(f"r{i}", f"127.0.0.1:{port + i}") for i in range(1, replicas + 1)]
    return render(servers, f"{bind_address}:{port}", f"127.0.0.1:{port + STATS_OFFSET}")


def render_compose(replicas: int = COMPOSE_REPLICAS) -> str:
    """The config for deploy/compose.yaml: services app1..appN on their port 8501, HAProxy on 8501.

    The stats page listens on 8404 inside the proxy's container (compose.yaml publishes it on the
    host's loopback only)."""
    servers = [(f"r{i}", f"app{i}:{COMPOSE_APP_PORT}") for i in range(1, replicas + 1)]
    return render(servers, f":{COMPOSE_APP_PORT}", ":8404", compose=True)


def haproxy_binary() -> str | None:
    """HAProxy on PATH, else Debian's /usr/sbin/haproxy (not on a normal user's PATH)."""
    found = shutil.which("haproxy")
    if found:
        return found
    return "/usr/sbin/haproxy" if os.access("/usr/sbin/haproxy", os.X_OK) else None


def replica_command(port: int, python: str = sys.executable) -> list[str]:
    """One replica: ``serve.py`` (``make run``'s server) on a loopback port."""
    return [
        python, "serve.py", "--server.headless", "true", "--server.address", "127.0.0.1",
        "--server.port", str(port), "--browser.gatherUsageStats", "false",
    ]  # fmt: skip


def healthy(url: str, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/_stcore/health", timeout=timeout) as r:
            return r.status == 200
    except OSError:
        return False


def _die_with_parent() -> None:
    """In the child, before exec: get SIGTERM if the launcher dies (Linux), so no replica is orphaned."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


@dataclass
class Child:
    """A process the launcher owns: its command, log file and the process once started."""

    name: str
    command: list[str]
    log: Path
    env: dict[str, str]
    proc: subprocess.Popen | None = None
    starts: list[float] = field(default_factory=list)

    def start(self) -> None:
        self.starts.append(time.monotonic())
        with open(self.log, "ab") as out:
            # Its own session: Ctrl-C in the terminal reaches the launcher only, which then stops
            # HAProxy before the replicas (a terminal's SIGINT would hit all of them at once).
            self.proc = subprocess.Popen(
                self.command, cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True, preexec_fn=_die_with_parent,
            )  # fmt: skip

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 10.0) -> None:
        if not self.alive():
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@dataclass
class ClassServer:
    """HAProxy on ``port`` and ``replicas`` app replicas on the ports after it."""

    port: int = 8501
    replicas: int = 3
    bind_address: str = ""  # "" = every interface (the class's laptops reach this machine)
    user_checkpoints: Path = field(default_factory=lambda: Path(os.environ.get(USER_ENV) or ROOT / "user_checkpoints"))
    logs: Path = ROOT / "out" / "class"
    python: str = sys.executable
    haproxy: str | None = None
    extra_env: dict[str, str] = field(default_factory=dict)  # more environment for the replicas
    children: list[Child] = field(default_factory=list)
    proxy: Child | None = None

    def replica_url(self, i: int) -> str:
        return f"http://127.0.0.1:{self.port + i}"

    def _env(self) -> dict[str, str]:
        env = {**os.environ, **self.extra_env}
        env[USER_ENV] = str(Path(self.user_checkpoints).resolve())
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
        # N replicas share the cores: torch in each would otherwise start a thread per core.
        env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // self.replicas)))
        return env

    def start(self, wait: float = 180.0) -> str:
        """Start the replicas, wait for their health checks, then HAProxy; returns the class's URL."""
        self.haproxy = self.haproxy or haproxy_binary()
        if self.haproxy is None:
            raise SystemExit("haproxy not found: `make class` installs it (apt-get install haproxy)")
        self.logs.mkdir(parents=True, exist_ok=True)
        Path(self.user_checkpoints).mkdir(parents=True, exist_ok=True)
        env = self._env()
        self.children = [
            Child(f"r{i}", replica_command(self.port + i, self.python), self.logs / f"replica-{i}.log", env)
            for i in range(1, self.replicas + 1)
        ]
        for child in self.children:
            child.start()
        deadline = time.monotonic() + wait
        for i, child in enumerate(self.children, 1):
            while not healthy(self.replica_url(i)):
                if not child.alive() or time.monotonic() > deadline:
                    self.stop()
                    tail = child.log.read_text(errors="replace")[-3000:]
                    raise SystemExit(f"replica {child.name} on port {self.port + i} did not start:\n{tail}")
                time.sleep(0.3)
        cfg = self.logs / "haproxy.cfg"
        cfg.write_text(render_loopback(self.port, self.replicas, self.bind_address), encoding="utf-8")
        check = subprocess.run([self.haproxy, "-c", "-q", "-f", str(cfg)], capture_output=True, text=True)
        if check.returncode != 0:
            self.stop()
            raise SystemExit(f"haproxy rejected {cfg}:\n{check.stdout}{check.stderr}")
        self.proxy = Child("haproxy", [self.haproxy, "-db", "-f", str(cfg)], self.logs / "haproxy.log", env)
        self.proxy.start()
        url = f"http://127.0.0.1:{self.port}"
        while not healthy(url):
            if not self.proxy.alive() or time.monotonic() > deadline:
                self.stop()
                raise SystemExit("haproxy did not start:\n" + self.proxy.log.read_text(errors="replace")[-3000:])
            time.sleep(0.2)
        return url

    def watch_once(self) -> list[str]:
        """Restart every replica (and HAProxy) that has exited; returns the names restarted.

        The first restart is at once; one that keeps dying is restarted at most once per 10 s, so a
        broken app does not spin. HAProxy's health check takes it back once it answers again."""
        restarted = []
        for child in [*self.children, *([self.proxy] if self.proxy else [])]:
            if child.alive() or (len(child.starts) > 1 and time.monotonic() - child.starts[-1] < 10):
                continue
            code = child.proc.returncode if child.proc else None
            print(f"{child.name} exited ({code}); restarting it (log: {child.log})", file=sys.stderr, flush=True)
            child.start()
            restarted.append(child.name)
        return restarted

    def stop(self) -> None:
        """HAProxy first (no visitor is sent to a stopping replica), then the replicas."""
        if self.proxy:
            self.proxy.stop()
        for child in self.children:
            if child.alive():
                child.proc.terminate()
        for child in self.children:
            child.stop()

    def serve_forever(self) -> None:
        stopping = False

        def on_signal(signum, frame):
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        try:
            url = self.start()
            host = self.bind_address or "0.0.0.0"
            first, last = self.port + 1, self.port + self.replicas
            print(
                f"\nLatent Lab for the class: {url}  (listening on {host}:{self.port}; give students this "
                f"machine's address)\n  {self.replicas} replicas on 127.0.0.1:{first}-{last}, "
                f"user models in {Path(self.user_checkpoints).resolve()}\n"
                f"  HAProxy stats: http://127.0.0.1:{self.port + STATS_OFFSET}/stats   logs: {self.logs}\n"
                "  Ctrl-C stops it.",
                flush=True,
            )
            while not stopping:
                self.watch_once()
                time.sleep(1)
        finally:
            print("stopping: haproxy, then the replicas", file=sys.stderr, flush=True)
            self.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m deploy.class_server", description=__doc__.split("\n\n")[0])
    parser.add_argument("--replicas", type=int, default=3, help="app processes (about one per 1-2 cores)")
    parser.add_argument("--port", type=int, default=8501, help="HAProxy's port; replicas take the next N")
    parser.add_argument("--address", default="", help="HAProxy's bind address (default: every interface)")
    parser.add_argument("--logs", type=Path, default=ROOT / "out" / "class", help="where the logs go")
    parser.add_argument(
        "--render",
        choices=["loopback", "compose"],
        help="print the HAProxy config (compose: deploy/haproxy.compose.cfg) and exit",
    )
    args = parser.parse_args(argv)
    if args.replicas < 1:
        parser.error("--replicas must be at least 1")
    if args.render == "compose":
        sys.stdout.write(render_compose())
        return
    if args.render == "loopback":
        sys.stdout.write(render_loopback(args.port, args.replicas, args.address))
        return
    ClassServer(port=args.port, replicas=args.replicas, bind_address=args.address, logs=args.logs).serve_forever()


if __name__ == "__main__":
    main()
