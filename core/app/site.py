"""The page table: one :class:`PageSpec` per page of the app, declared in the page's own file.

Each file ``pages/NAME.py`` (not ``_``-prefixed) starts with a literal ``PAGE = {...}`` that
says where it sits and what it keeps in the URL::

    PAGE = {
        "title": "Latent sliders",            # the navigation's and the home map's name
        "icon": ":material/tune:",
        "url_path": "sliders",                # /sliders and ?page=sliders open it
        "section": "Explore",                 # one of SECTIONS
        "order": 10,                          # its place in the navigation
        "params": ("z", "y"),                 # query parameters it owns (besides "model")
        "tagline": "one slider per latent dimension",
        "blurb": "What each dimension of the code does to the image.",
        "inputs": ("images",),                # optional: what the sidebar's model may model (INPUTS)
    }

This module reads those literals without running the pages (``ast.literal_eval``), so the
navigation (``app.py``), the home page's map and the tests all read one table, and adding a
page is one file (plus its test). A missing or malformed declaration is an error that names
the file. Nothing here imports Streamlit.
"""

from __future__ import annotations

import ast
import functools
from dataclasses import dataclass
from pathlib import Path

from core import REPO_ROOT

PAGES_DIR = REPO_ROOT / "pages"
SECTIONS = ("Latent Lab", "Explore", "Experiments", "Train")
HOME_SECTION = "Latent Lab"
DEMO_SECTIONS = ("Explore", "Experiments")  # the pages that show the sidebar's model
FIELDS = ("title", "icon", "url_path", "section", "order", "params", "tagline", "blurb")
OPTIONAL = {"inputs": ("images",)}  # optional fields and their defaults
# What a model takes in: images (C, H, W), or the rows of a table (core.data.tables). A page
# serves the inputs it declares; with another model in the sidebar it says why it is off.
INPUTS = ("images", "table", "spatial")
INPUT_WORDS = {  # what a model of each kind takes in, in the pages' words
    "images": "images",
    "table": "the rows of a table",
    "spatial": "images through a spatial latent (a latent-diffusion VAE)",
}


class PageTableError(ValueError):
    """A page's ``PAGE`` declaration is missing or malformed; the message names the file."""


@dataclass(frozen=True)
class PageSpec:
    """One page: its file, names, place in the navigation and URL parameters."""

    file: str  # path relative to the repository root, "pages/NAME.py"
    title: str
    icon: str
    url_path: str
    section: str
    order: int
    params: tuple[str, ...]
    tagline: str
    blurb: str
    inputs: tuple[str, ...] = ("images",)

    @property
    def stem(self) -> str:
        """The file's name without folder and suffix: "latent_sliders"."""
        return Path(self.file).stem

    @property
    def is_home(self) -> bool:
        return self.section == HOME_SECTION


def _declaration(path: Path) -> dict:
    """The literal dict assigned to ``PAGE`` at the top level of ``path``."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "PAGE" for t in node.targets):
            try:
                value = ast.literal_eval(node.value)
            except ValueError as exc:
                raise PageTableError(f"{path.name}: PAGE must be a literal dict ({exc})") from None
            if not isinstance(value, dict):
                raise PageTableError(f"{path.name}: PAGE must be a dict, not {type(value).__name__}")
            return value
    raise PageTableError(f"{path.name}: no PAGE = {{...}} declaration (see core/app/site.py)")


def read_spec(path: Path) -> PageSpec:
    """The :class:`PageSpec` declared in the page file ``path``; PageTableError when it is not right."""
    d = _declaration(path)
    d = {**OPTIONAL, **d}
    missing, unknown = set(FIELDS) - set(d), set(d) - set(FIELDS) - set(OPTIONAL)
    if missing or unknown:
        raise PageTableError(f"{path.name}: PAGE misses {sorted(missing)} / has unknown {sorted(unknown)}")
    if d["section"] not in SECTIONS:
        raise PageTableError(f"{path.name}: unknown section {d['section']!r}; choose one of {SECTIONS}")
    if not isinstance(d["order"], int) or not all(isinstance(p, str) for p in d["params"]):
        raise PageTableError(f"{path.name}: order must be an int and params a tuple of names")
    if "model" in d["params"] or "page" in d["params"]:
        raise PageTableError(f"{path.name}: 'model' and 'page' belong to every page; leave them out of params")
    if not d["inputs"] or set(d["inputs"]) - set(INPUTS):
        raise PageTableError(f"{path.name}: inputs must be some of {INPUTS}, got {d['inputs']}")
    return PageSpec(
        file=f"{path.parent.name}/{path.name}", **{**d, "params": tuple(d["params"]), "inputs": tuple(d["inputs"])}
    )


@functools.cache
def page_table(folder: Path = PAGES_DIR) -> tuple[PageSpec, ...]:
    """Every page in ``folder``, in navigation order (section, then order); checked for one home
    page and unique URL paths."""
    specs = [read_spec(p) for p in sorted(folder.glob("*.py")) if not p.name.startswith("_")]
    specs.sort(key=lambda s: (SECTIONS.index(s.section), s.order, s.title))
    homes = [s.file for s in specs if s.is_home]
    if len(homes) != 1:
        raise PageTableError(f"exactly one page must be in section {HOME_SECTION!r}, found {homes}")
    paths = [s.url_path for s in specs]
    if len(set(paths)) != len(paths):
        raise PageTableError(f"two pages share a URL path: {sorted(p for p in paths if paths.count(p) > 1)}")
    return tuple(specs)


def demo_pages(folder: Path = PAGES_DIR) -> tuple[PageSpec, ...]:
    """The pages other than home, in navigation order (the home page's map lists these)."""
    return tuple(s for s in page_table(folder) if not s.is_home)


def by_url_path(folder: Path = PAGES_DIR) -> dict[str, PageSpec]:
    return {s.url_path: s for s in page_table(folder)}


def off_reason(spec: PageSpec, model_input: str, model_title: str, folder: Path = PAGES_DIR) -> str | None:
    """Why ``spec`` cannot show the sidebar's model, of ``model_input`` (one of INPUTS) and
    called ``model_title``, naming the demo pages that can (one line); None when it can."""
    if model_input in spec.inputs:
        return None
    can = [s.title for s in demo_pages(folder) if model_input in s.inputs and s.section in DEMO_SECTIONS]
    what = INPUT_WORDS[model_input]
    bring = " (bring one: `python -m core explore PATH`)" if "spatial" in spec.inputs else ""
    return (
        f"{spec.title} shows models of {' or '.join(INPUT_WORDS[i] for i in spec.inputs)}{bring}; {model_title} "
        f"models {what}. Open {' or '.join(can) or 'another page'}, or pick another model in the sidebar."
    )
