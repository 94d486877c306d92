"""Project-wide rules: core stays free of Streamlit, and nothing unpickles."""

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
        "for m in pkgutil.iter_modules(core.__path__):\n"
        "    importlib.import_module('core.' + m.name) if m.name != '__main__' else None\n"
        "print('ok')"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"


def test_no_pickle_or_torch_load_anywhere():
    pattern = re.compile(r"\bimport pickle\b|\bpickle\.loads?\(|torch\.load\(|\bjoblib\b|weights_only")
    offenders = [str(p.relative_to(ROOT)) for p in _python_files() if pattern.search(p.read_text())]
    assert offenders == []


def test_uploads_are_decoded_in_memory_and_never_written():
    # The pages and the upload decoder touch no file: no open() for writing, no temp files, no
    # write_bytes/write_text, no Image.save to a path (only to an in-memory buffer).
    pattern = re.compile(r"write_bytes\(|write_text\(|tempfile|\bopen\([^)]*['\"][wax]b?['\"]|\.save\((?!buf\b)")
    files = [ROOT / "app.py", ROOT / "core" / "images.py", *sorted((ROOT / "pages").glob("*.py"))]
    offenders = [f"{p.relative_to(ROOT)}: {m.group()}" for p in files for m in pattern.finditer(p.read_text())]
    assert offenders == []


def test_the_server_config_is_hardened():
    import tomllib

    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert config["server"]["enableXsrfProtection"] is True
    assert 1 <= config["server"]["maxUploadSize"] <= 20  # MB: enough for a photo, not for junk
    assert config["browser"]["gatherUsageStats"] is False
    from PIL import Image

    import core.images

    assert Image.MAX_IMAGE_PIXELS == core.images.MAX_PIXELS  # Pillow's bomb guard is on
