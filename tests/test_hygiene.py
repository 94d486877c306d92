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
