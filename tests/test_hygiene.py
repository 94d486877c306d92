"""Project-wide rules: core stays free of Streamlit, nothing unpickles, and no test reaches the network."""

import re
import subprocess
import sys

from tests.conftest import ROOT

CODE_DIRS = ["core", "pages", "benchmarks"]


def _python_files():
    files = [ROOT / "app.py"]
    for d in CODE_DIRS:
        files += sorted((ROOT / d).rglob("*.py"))
    return files


def test_core_imports_without_streamlit():
    # A None entry in sys.modules makes any `import streamlit` raise ImportError.
    code = (
        "import sys, pkgutil, importlib; sys.modules['streamlit'] = None\n"
        "import core\n"
        "names = [m.name for m in pkgutil.walk_packages(core.__path__, 'core.') if m.name != 'core.__main__']\n"
        "[importlib.import_module(n) for n in names]\n"
        "print(len(names))"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert int(proc.stdout.strip()) >= 35, "every module of core/, in its floor, was imported"


def test_no_pickle_or_torch_load_anywhere():
    pattern = re.compile(r"\bimport pickle\b|\bpickle\.loads?\(|torch\.load\(|\bjoblib\b|weights_only")
    offenders = [str(p.relative_to(ROOT)) for p in _python_files() if pattern.search(p.read_text())]
    assert offenders == []


def test_uploads_are_decoded_in_memory_and_never_written():
    # The pages and the upload decoder touch no file: no open() for writing, no temp files, no
    # write_bytes/write_text, no Image.save to a path (only to an in-memory buffer).
    pattern = re.compile(r"write_bytes\(|write_text\(|tempfile|\bopen\([^)]*['\"][wax]b?['\"]|\.save\((?!buf\b)")
    files = [ROOT / "app.py", ROOT / "core" / "data" / "images.py", *sorted((ROOT / "pages").glob("*.py"))]
    offenders = [f"{p.relative_to(ROOT)}: {m.group()}" for p in files for m in pattern.finditer(p.read_text())]
    assert offenders == []


def test_every_uploader_sets_its_own_size_limit():
    """The server's limit is the largest upload's (a table); every other uploader asks for less."""
    import ast

    calls = []
    for path in sorted((ROOT / "pages").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "file_uploader":
                calls.append((path.name, node.lineno, {k.arg for k in node.keywords}))
    assert len(calls) >= 4
    assert [c[:2] for c in calls if "max_upload_size" not in c[2]] == []


def test_the_server_config_is_hardened():
    import tomllib

    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert config["server"]["enableXsrfProtection"] is True
    # MB: the largest upload (a table for the anomaly page); each uploader sets a smaller limit of its
    # own (an image 10 MB, a zip of images or an ONNX graph 20 MB), which the browser enforces
    assert config["server"]["maxUploadSize"] <= 100
    assert config["browser"]["gatherUsageStats"] is False
    from PIL import Image

    import core.data.images

    assert Image.MAX_IMAGE_PIXELS == core.data.images.MAX_PIXELS  # Pillow's bomb guard is on


def test_the_network_guard_fails_a_test_that_leaves_this_machine(pytester):
    """conftest.py's guard (tests/network_guard.py): a connection to another host fails the test
    even when the code swallows the error; loopback is allowed."""
    pytester.makepyfile(
        """
        import socket
        import urllib.request

        def test_swallowed():
            try:
                socket.create_connection(("192.0.2.1", 80), timeout=30)  # TEST-NET-1: never routed
            except OSError:
                pass

        def test_by_name():
            try:
                urllib.request.urlopen("https://example.com", timeout=30)
            except OSError:
                pass

        def test_loopback_is_fine():
            with socket.socket() as server:
                server.bind(("127.0.0.1", 0))
                server.listen()
                socket.create_connection(server.getsockname(), timeout=5).close()
        """
    )
    result = pytester.runpytest_inprocess("-p", "tests.network_guard", "-q")
    result.assert_outcomes(passed=3, errors=2)
    result.stdout.fnmatch_lines(
        ["*reached for the network: 192.0.2.1:80*", "*reached for the network: example.com:443*"]
    )
