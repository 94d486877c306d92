"""A talk: the ordered list of bookmarked views that presenter mode's "Next demo" steps through.

Each demo is a bookmark relative to the app's root, ``"PATH?QUERY"`` (what the address bar
shows after the host, without the leading slash): the page's URL path from the page table
(``core.app.site``) and its settings, ``model=`` included (in presenter mode the sidebar is hidden,
so the model comes from the link). The default talk below walks from the sliders to anomaly
detection on the shipped checkpoints.

Your own talk: a JSON file holding a list of such bookmarks (or ``{"demos": [...]}``), named by
the environment variable ``LATENTLAB_TALK``, e.g. ::

    ["sliders?model=frey-vae-mlp-z2", "latent-map?model=mnist-vae-mlp-z2&proj=pca"]

Copy a bookmark from the address bar while preparing. Entries whose page does not exist are
left out (:func:`load_talk` says which). Nothing here imports Streamlit.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit

from core.app.site import by_url_path, page_table

ENV = "LATENTLAB_TALK"  # a JSON file with the talk's bookmarks; unset: DEFAULT_TALK
MAX_DEMOS = 100

DEFAULT_TALK = (
    "sliders?model=frey-vae-mlp-z2",  # a face under two sliders: what a latent code is
    "latent-map?model=mnist-vae-mlp-z2",  # the whole test set in two dimensions
    "interpolation?model=mnist-vae-conv-z16&method=slerp",  # walking from one digit to another
    "ae-vs-vae?model=mnist-vae-conv-z16",  # why the VAE's space has no holes
    "sampling?model=mnist-vae-mlp-z2",  # prior samples and the 2-D manifold
    "denoising?model=mnist-dae-conv-z256-mixed-gate",  # noisy in, clean out
    "anomalies?model=mnist-vae-conv-z16",  # a high reconstruction error flags the odd one out
)


@dataclass(frozen=True)
class Demo:
    """One bookmarked view: the page's URL path and its query parameters (in order)."""

    path: str
    params: dict[str, str]

    @property
    def url(self) -> str:
        """``"PATH?a=1&b=2"`` (just ``"PATH"`` without parameters)."""
        return self.path + ("?" + urlencode(self.params) if self.params else "")


def parse_demo(text: str, paths: set[str]) -> Demo | None:
    """A bookmark ``"PATH?QUERY"`` (a leading "/" or a whole ``http://host/...`` address is
    fine) -> a :class:`Demo`, or None when its page is not one of ``paths``."""
    if not isinstance(text, str):
        return None
    parts = urlsplit(text.strip())
    params = dict(parse_qsl(parts.query))
    path = parts.path.strip("/").rsplit("/", 1)[-1] or params.get("page") or _home()
    params.pop("page", None)
    return Demo(path=path, params=params) if path in paths else None


def _home() -> str:
    return next(s.url_path for s in page_table() if s.is_home)


def parse_talk(entries: list | tuple) -> tuple[tuple[Demo, ...], list[str]]:
    """Bookmarks -> (the demos, in order, at most MAX_DEMOS; the entries that were left out)."""
    paths = set(by_url_path())
    demos, dropped = [], []
    for text in list(entries)[:MAX_DEMOS]:
        demo = parse_demo(text, paths)
        if demo is None:
            dropped.append(str(text)[:60])
        else:
            demos.append(demo)
    return tuple(demos), dropped


def load_talk(path: str | Path | None = None) -> tuple[tuple[Demo, ...], list[str]]:
    """The talk in the JSON file ``path`` (default: ``$LATENTLAB_TALK``; unset: DEFAULT_TALK) ->
    (demos, problems). A file that cannot be read gives the default talk and one problem."""
    path = path or os.environ.get(ENV, "").strip() or None
    if path is None:
        return parse_talk(DEFAULT_TALK)
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        entries = data.get("demos") if isinstance(data, dict) else data
        if not isinstance(entries, list):
            raise ValueError("expected a list of bookmarks or {'demos': [...]}")
    except (OSError, ValueError) as exc:
        demos, _ = parse_talk(DEFAULT_TALK)
        return demos, [f"the talk {Path(path).name} cannot be read ({exc}); the default talk is used"]
    demos, dropped = parse_talk(entries)
    return demos, [f"not a page of the app: {d}" for d in dropped]


def step(demos: tuple[Demo, ...], position: int | None, by: int = 1) -> int:
    """The index of the demo ``by`` steps after ``position`` (None: before the first), wrapping."""
    if not demos:
        raise ValueError("an empty talk has no next demo")
    start = -1 if position is None and by > 0 else (0 if position is None else position)
    return (start + by) % len(demos)


def position_of(demos: tuple[Demo, ...], path: str, params: dict[str, str]) -> int | None:
    """The index of the demo shown now: the first whose page is ``path`` and whose settings are
    all in ``params``; else the first on that page; None when the page is not in the talk."""
    on_page = [i for i, d in enumerate(demos) if d.path == path]
    for i in on_page:
        if all(params.get(k) == v for k, v in demos[i].params.items()):
            return i
    return on_page[0] if on_page else None
