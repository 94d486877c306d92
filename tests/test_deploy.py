"""Serving a class (issue #26): HAProxy's config from its one template, the container recipes, the
container's command run as a plain process, and (browser) two replicas behind HAProxy with
cookie-sticky sessions, the page's websocket through the proxy, and a dead replica's visitors
moved to a live one."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from deploy import class_server
from deploy.class_server import ClassServer, haproxy_binary, render_compose, render_loopback
from tests.conftest import ROOT

DEPLOY = ROOT / "deploy"
HAPROXY = haproxy_binary()
needs_haproxy = pytest.mark.skipif(
    HAPROXY is None, reason="haproxy is not installed (`make test` installs it with the browser target)"
)


def _yaml():
    return pytest.importorskip("yaml", reason="PyYAML is not in requirements-dev.txt: the YAML recipes go unparsed")


def _haproxy_check(tmp_path: Path, text: str) -> subprocess.CompletedProcess:
    cfg = tmp_path / "haproxy.cfg"
    cfg.write_text(text)
    return subprocess.run([HAPROXY, "-c", "-f", str(cfg)], capture_output=True, text=True, timeout=30)


# ---------------------------------------------------------------- the HAProxy config


@needs_haproxy
def test_haproxy_accepts_the_rendered_configs(tmp_path):
    for text in (render_loopback(8501, 3), render_compose()):
        check = _haproxy_check(tmp_path, text)
        assert check.returncode == 0, check.stdout + check.stderr
        assert "Configuration file is valid" in check.stdout


def test_the_committed_compose_config_is_a_fresh_render_of_the_template():
    committed = (DEPLOY / "haproxy.compose.cfg").read_text()
    assert committed == render_compose(), (
        "deploy/haproxy.cfg changed: run `python -m deploy.class_server --render compose > deploy/haproxy.compose.cfg`"
    )


@pytest.mark.parametrize("text", [render_loopback(8501, 3), render_compose()], ids=["loopback", "compose"])
def test_the_config_keeps_a_visitor_on_one_replica_and_moves_them_off_a_dead_one(text):
    lines = [line.split("#")[0].strip() for line in text.splitlines()]
    for needed in (
        "mode http",
        "cookie LLSERVER insert indirect nocache",  # sticky by cookie ...
        "option httpchk GET /_stcore/health",
        "http-check expect status 200",
        "option redispatch",
        "balance leastconn",
        "timeout tunnel 1h",  # the websocket lives for a lesson
    ):
        assert any(line.startswith(needed) for line in lines), needed
    assert not any(line.startswith("balance source") for line in lines), "... never by IP: a class behind NAT is one"
    assert re.search(r"^\s*retries [1-9]", text, re.M)
    assert "on-marked-down shutdown-sessions" in text  # drain a replica that fails its checks
    servers = re.findall(r"^\s*server (\S+) (\S+) cookie (\S+) check", text, re.M)
    assert len(servers) == 3 and all(name == cookie for name, _, cookie in servers)
    assert "{{" not in text


def test_the_loopback_render_puts_the_replicas_on_the_ports_after_haproxys():
    text = render_loopback(9000, 2, "127.0.0.1")
    assert "bind 127.0.0.1:9000" in text and "bind 127.0.0.1:10000" in text  # the proxy, its stats
    assert re.findall(r"server (r\d) (\S+)", text) == [("r1", "127.0.0.1:9001"), ("r2", "127.0.0.1:9002")]
    with pytest.raises(class_server.RenderError, match="at least one"):
        class_server.render([], ":1", ":2")


def test_make_class_runs_the_launcher_and_make_test_installs_haproxy():
    dry = subprocess.run(
        ["make", "-n", "class", "REPLICAS=2", "PORT=8700"], cwd=ROOT, capture_output=True, text=True, timeout=30
    )
    assert dry.returncode == 0, dry.stderr
    assert "-m deploy.class_server --replicas 2 --port 8700" in dry.stdout
    assert "apt-get install -y -qq haproxy" in dry.stdout or "haproxy" in dry.stdout
    browser = subprocess.run(["make", "-n", "browser"], cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert "haproxy" in browser.stdout and "chromium" in browser.stdout


# ---------------------------------------------------------------- the containers


def _dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) per instruction, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def _final_stage(instructions):
    last_from = max(i for i, (word, _) in enumerate(instructions) if word == "FROM")
    return instructions[last_from:]


def _cmd() -> list[str]:
    return json.loads(next(rest for word, rest in _final_stage(_dockerfile()) if word == "CMD"))


def test_the_dockerfile_builds_a_non_root_offline_image_of_the_pinned_requirements():
    ins = _dockerfile()
    final = _final_stage(ins)
    words = [w for w, _ in final]
    assert final[0] == ("FROM", "python:3.11-slim")
    user = [rest for w, rest in final if w == "USER"]
    assert user and user[-1] not in ("root", "0"), "the app runs as a non-root user"
    assert words.index("USER") < words.index("CMD")
    runs = " ".join(rest for w, rest in final if w == "RUN")
    assert "-r requirements.txt" in runs and "pip install" in runs
    assert any(w == "COPY" and "requirements.txt" in rest for w, rest in final)
    assert ("EXPOSE", "8501") in final
    health = next(rest for w, rest in final if w == "HEALTHCHECK")
    assert "/_stcore/health" in health and "127.0.0.1:8501" in health
    # onnxruntime-web built by a node stage as `make web` builds it, copied into the image
    node = next(rest for w, rest in ins if w == "FROM" and rest.startswith("node:"))
    assert node.endswith("AS web")
    assert any(w == "RUN" and "npm ci" in rest and "build.mjs" in rest for w, rest in ins)
    assert any(w == "COPY" and "--from=web" in rest and "static/ort" in rest for w, rest in final)
    # the user checkpoints: a volume, where the app is told to look
    env = " ".join(rest for w, rest in final if w == "ENV")
    volume = json.loads(next(rest for w, rest in final if w == "VOLUME"))
    assert f"LATENTLAB_USER_CHECKPOINTS={volume[0]}" in env
    cmd = _cmd()
    assert cmd[:2] == ["python", "serve.py"]
    assert cmd[cmd.index("--server.address") + 1] == "0.0.0.0"
    assert cmd[cmd.index("--server.port") + 1] == "8501"


def test_the_docker_context_leaves_out_environments_and_keeps_what_the_app_reads():
    ignored = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()}
    ignored.discard("")
    for path in (".venv", "web/node_modules", "user_checkpoints", ".pytest_cache", ".git", "static/ort"):
        assert path in ignored, path
    for kept in ("checkpoints", "data", ".streamlit", "core", "pages", "app.py", "serve.py", "requirements.txt"):
        assert not any(kept == p or kept.startswith(p.rstrip("/") + "/") for p in ignored), kept
    assert (ROOT / "checkpoints" / "manifest.json").is_file() and (ROOT / "data").is_dir()


def test_compose_runs_the_replicas_haproxy_names_on_one_shared_volume():
    yaml = _yaml()
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    services = compose["services"]
    servers = re.findall(r"server \S+ (\S+):8501", render_compose())
    apps = sorted(name for name in services if name.startswith("app"))
    assert apps == sorted(s for s in servers)
    for name in apps:
        app = services[name]
        assert app["build"]["context"] == ".." and app["build"]["dockerfile"] == "Dockerfile"
        assert app["volumes"] == ["user-checkpoints:/data/user_checkpoints"]
        assert app["environment"]["LATENTLAB_USER_CHECKPOINTS"] == "/data/user_checkpoints"
    proxy = services["haproxy"]
    assert "./haproxy.compose.cfg:/usr/local/etc/haproxy/haproxy.cfg:ro" in proxy["volumes"]
    assert "8501:8501" in proxy["ports"]
    assert "user-checkpoints" in compose["volumes"]


def test_kubernetes_probes_pins_by_cookie_and_shares_a_read_write_many_volume():
    yaml = _yaml()
    docs = {d["kind"]: d for d in yaml.safe_load_all((DEPLOY / "k8s.yaml").read_text()) if d}
    assert {"Deployment", "Service", "Ingress", "PersistentVolumeClaim"} <= set(docs)
    pod = docs["Deployment"]["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] != 0
    uid = next(rest for w, rest in _dockerfile() if w == "RUN" and "useradd" in rest)
    assert f"--uid {pod['securityContext']['runAsUser']}" in uid, "the pod runs as the image's user"
    (app,) = pod["containers"]
    for probe in ("readinessProbe", "livenessProbe"):
        assert app[probe]["httpGet"]["path"] == "/_stcore/health"
    assert {"requests", "limits"} <= set(app["resources"])
    claim = docs["PersistentVolumeClaim"]
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]
    (volume,) = pod["volumes"]
    assert volume["persistentVolumeClaim"]["claimName"] == claim["metadata"]["name"]
    (mount,) = app["volumeMounts"]
    env = {e["name"]: e["value"] for e in app["env"]}
    assert mount["name"] == volume["name"] and mount["mountPath"] == env["LATENTLAB_USER_CHECKPOINTS"]
    notes = docs["Ingress"]["metadata"]["annotations"]
    assert notes["nginx.ingress.kubernetes.io/affinity"] == "cookie"
    assert notes["nginx.ingress.kubernetes.io/session-cookie-name"] == "LLSERVER"
    assert int(notes["nginx.ingress.kubernetes.io/proxy-read-timeout"]) >= 3600  # the websocket


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _health(url: str, proc: subprocess.Popen, log: Path, wait: float = 90) -> None:
    deadline = time.time() + wait
    while not class_server.healthy(url):
        if proc.poll() is not None or time.time() > deadline:
            pytest.fail(f"{url} did not answer /_stcore/health:\n" + log.read_text(errors="replace")[-3000:])
        time.sleep(0.3)


def test_the_containers_command_serves_the_health_check(tmp_path):
    """The image's CMD, run here as a plain process (same arguments, a free port)."""
    cmd = _cmd()
    port = _free_port()
    cmd[0] = sys.executable
    cmd[cmd.index("--server.port") + 1] = str(port)
    env = {**os.environ, "LATENTLAB_USER_CHECKPOINTS": str(tmp_path / "user"), "LATENTLAB_CACHE": str(tmp_path)}
    log = tmp_path / "server.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        _health(f"http://127.0.0.1:{port}", proc, log)
    finally:
        proc.terminate()
        proc.wait(10)


# ---------------------------------------------------------------- two replicas behind HAProxy


def _free_base_port() -> int:
    """A port P with P, P+1, P+2 (HAProxy, two replicas) and P+1000 (stats) free on loopback."""
    for _ in range(50):
        base = _free_port()
        if base + class_server.STATS_OFFSET > 65535:
            continue
        try:
            for p in (base, base + 1, base + 2, base + class_server.STATS_OFFSET):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", p))
            return base
        except OSError:
            continue
    pytest.fail("no free block of ports")


@pytest.fixture(scope="module")
def classroom(tmp_path_factory):
    """``make class`` with two replicas (deploy.class_server, as the Makefile runs it) on the test
    models, on loopback; stopped afterwards."""
    if HAPROXY is None:
        pytest.skip("haproxy is not installed (`make test` installs it with the browser target)")
    from tests.app_support import model_folder

    env = {
        "LATENTLAB_CHECKPOINTS": str(model_folder()),
        "LATENTLAB_CACHE": str(tmp_path_factory.mktemp("cache")),
        "OMP_NUM_THREADS": "1",
    }
    server = ClassServer(
        port=_free_base_port(),
        replicas=2,
        bind_address="127.0.0.1",
        user_checkpoints=tmp_path_factory.mktemp("user"),
        logs=tmp_path_factory.mktemp("class-logs"),
        extra_env=env,
    )
    try:
        server.start(wait=120)
        yield server
    finally:
        server.stop()


def _get(url: str, cookie: str | None = None) -> tuple[int, str | None]:
    """(status, the LLSERVER value HAProxy set, if it set one)."""
    req = urllib.request.Request(url, headers={"Cookie": f"LLSERVER={cookie}"} if cookie else {})
    with urllib.request.urlopen(req, timeout=30) as r:
        set_cookie = " ".join(r.headers.get_all("Set-Cookie") or [])
        found = re.search(r"LLSERVER=(\w+)", set_cookie)
        return r.status, found.group(1) if found else None


def _sessions(server: ClassServer) -> dict[str, int]:
    """Per replica, the requests HAProxy has sent it (stot in the stats CSV)."""
    stats = f"http://127.0.0.1:{server.port + class_server.STATS_OFFSET}/stats;csv"
    with urllib.request.urlopen(stats, timeout=10) as r:
        rows = r.read().decode().lstrip("# ").splitlines()
    head = rows[0].split(",")
    out = {}
    for row in rows[1:]:
        cells = dict(zip(head, row.split(","), strict=False))
        if cells["pxname"] == "replicas" and cells["svname"].startswith("r"):
            out[cells["svname"]] = int(cells["stot"])
    return out


@pytest.mark.browser
def test_the_page_renders_through_haproxy_and_its_visitor_stays_on_one_replica(classroom, browser):
    url = f"http://127.0.0.1:{classroom.port}"
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
    try:
        page = ctx.new_page()
        sockets = []
        page.on("websocket", lambda ws: sockets.append(ws))
        page.goto(url)
        page.get_by_role("heading", name="Latent Lab", exact=True).wait_for(timeout=90_000)
        page.get_by_test_id("stMain").get_by_text("reparameterization trick", exact=True).wait_for(timeout=60_000)
        assert page.get_by_test_id("stException").count() == 0
        # The script ran on the replica, so its websocket came through HAProxy and is open.
        assert any(ws.url == f"ws://127.0.0.1:{classroom.port}/_stcore/stream" and not ws.is_closed() for ws in sockets)
        (pinned,) = [c["value"] for c in ctx.cookies() if c["name"] == "LLSERVER"]
        assert pinned in ("r1", "r2")
        other = "r2" if pinned == "r1" else "r1"

        # Every later request with the cookie goes to the same replica, and no new cookie is set.
        before = _sessions(classroom)
        for _ in range(6):
            assert _get(f"{url}/_stcore/health", pinned) == (200, None)
        after = _sessions(classroom)
        # (>= 6: the open page makes requests of its own, to its replica too)
        assert after[pinned] - before[pinned] >= 6 and after[other] == before[other], (before, after)
        page.reload()
        page.get_by_role("heading", name="Latent Lab", exact=True).wait_for(timeout=90_000)
        assert [c["value"] for c in ctx.cookies() if c["name"] == "LLSERVER"] == [pinned]

        # The pinned replica dies: its visitor's next request goes to the live one, which HAProxy
        # names in a new cookie, and the open page reconnects there and runs again.
        dead = next(c for c in classroom.children if c.name == pinned)
        opened = len(sockets)
        dead.stop()
        assert _get(f"{url}/", pinned) == (200, other)
        deadline = time.time() + 60
        while not (len(sockets) > opened and not sockets[-1].is_closed()):
            assert time.time() < deadline, "the page did not reconnect to the live replica"
            page.wait_for_timeout(200)
        page.get_by_test_id("stMain").get_by_text("reparameterization trick", exact=True).wait_for(timeout=60_000)
        assert [c["value"] for c in ctx.cookies() if c["name"] == "LLSERVER"] == [other]
        assert classroom.watch_once() == [pinned] and dead.alive(), "the launcher restarts a dead replica"
    finally:
        ctx.close()


@pytest.mark.browser
def test_a_model_trained_on_a_replica_that_dies_is_listed_by_the_live_one(classroom, browser):
    """A tab trains a small model on its replica, the replica is killed, the tab reconnects to the
    other one, and the checkpoint is still listed there (shared storage), with no error box."""
    from tests.browser_support import alert, settle

    url = f"http://127.0.0.1:{classroom.port}"
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
    try:
        page = ctx.new_page()
        page.goto(f"{url}/train")
        page.get_by_test_id("stMain").get_by_label("Epochs", exact=True).wait_for(timeout=90_000)
        settle(page)
        for label, value in (("Epochs", "1"), ("Checkpoint name", "class-vae")):
            box = page.get_by_test_id("stMain").get_by_label(label, exact=True)
            box.fill(value)
            box.press("Enter")
            settle(page)
        page.get_by_role("button", name="Train").click()
        alert(page, "Success", "Saved as your checkpoint").wait_for(timeout=120_000)
        (pinned,) = [c["value"] for c in ctx.cookies() if c["name"] == "LLSERVER"]
        next(c for c in classroom.children if c.name == pinned).stop()
        page.goto(f"{url}/sliders?model=user:class-vae")  # the same tab, now served by the live replica
        picker = page.get_by_test_id("stSidebar").get_by_test_id("stSelectbox").nth(1)
        picker.wait_for(timeout=90_000)
        settle(page)
        shown = picker.inner_text() + " ".join(i.input_value() for i in picker.locator("input").all())
        assert "class-vae (your model)" in shown
        assert [c["value"] for c in ctx.cookies() if c["name"] == "LLSERVER"] != [pinned]
        assert page.get_by_test_id("stException").count() == 0
    finally:
        ctx.close()
        classroom.watch_once()  # the launcher brings the killed replica back for the next test
