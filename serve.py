"""Start Latent Lab's server: ``python serve.py [streamlit options]`` is ``streamlit run app.py``
with the first visit to a fresh server routed right (``make run`` uses it).

Why not plain ``streamlit run app.py``: app.py sits beside a ``pages/`` folder, so Streamlit
routes a fresh server's first script run through its legacy pages/-folder router (multipage apps
v1), whose pages are named after the files. A deep link opened first (a bookmark, ``/sliders``,
right after a restart before a talk) is not one of those names, so Streamlit sends "Page not
found" and shows its box over the right page (streamlit#9624) — until ``st.navigation`` has run
once in the process, which turns that router off for good. Latent Lab navigates with
``st.navigation`` only, so the switch is turned off here, before the server starts, and the very
first visit is routed like every later one.

Options pass through: ``python serve.py --server.port 8502 --server.address 0.0.0.0``.
"""

from __future__ import annotations

import sys
from pathlib import Path

APP = Path(__file__).resolve().parent / "app.py"


def main(argv: list[str]) -> None:
    from streamlit.runtime.pages_manager import PagesManager
    from streamlit.web import cli

    # Read once, when the first session starts (None: look for pages/); False is what
    # st.navigation sets on its first call.
    PagesManager.uses_pages_directory = False
    sys.argv = ["streamlit", "run", str(APP), *argv]
    cli.main(prog_name="streamlit")


if __name__ == "__main__":
    main(sys.argv[1:])
