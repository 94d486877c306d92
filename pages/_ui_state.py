"""Session state and the URL: reading a page's link once, notes about bad link values, the
page intro (which reserves the notes' place), and writing a page's settings back into the URL.

Session-state keys: the convention every page follows
----------------------------------------------------
* **A page's own keys start with its short prefix and "_"**: ``sl_`` latent sliders, ``sa_``
  and ``mf_`` sampling (its samples and its manifold), ``map_`` latent map, ``ip_`` interpolation,
  ``av_`` AE vs VAE, ``yi_`` your own image, ``bs_`` β sweep, ``dn_`` denoising, ``an_``
  anomalies, ``tr_`` train (home has no state). The prefix covers widget keys (``an_digit``,
  ``tr_start``), the download buttons and charts (``sl_png``, ``an_roc``) and the plain values a
  page keeps between runs (``tr_job``, ``an_job``, ``bs_runs``, ``sl_base``). A new page picks a new prefix.
* **Helper widgets derive their keys from the key the page passes**: ``pick_test_item(data,
  "ip_a")`` owns ``ip_a_class`` and ``ip_a_index``; ``condition_picker``, ``uploaded_input`` and
  ``drawn_input`` use the key as given. So every key still carries the page's prefix.
* **A key names what its value depends on** when the value only makes sense there:
  ``sl_{model}_{i}``, ``dn_level_{noise}``, ``an_thr_{setup}_{digit or model}_{score}``. Each
  model or option keeps its own value, and switching never carries a value out of range.
* **``present`` (presenter mode, a bool) belongs to the frame**: ``?present=1`` or the sidebar's
  switch (``present_switch``, which mirrors it) sets it; read it with :func:`presenting`. The
  talk's position is the frame's ``_talk_pos``.
* **``model`` and ``dataset`` belong to the sidebar** (``app.py``'s two select boxes). Pages read
  the sidebar's choice through ``_ui_load.current()`` (the ``_entry`` key); a page changes them
  only in a button callback, which runs before the sidebar is drawn (Train's "Open it in the
  sidebar").
* **Keys starting with "_" are bookkeeping, never settings**: the frame's ``_entry`` (the
  sidebar's ``catalog.ModelEntry``, None without models), ``_link_read`` (the pages whose link
  was read, see ``first_visit``; the frame reads its own under the name ``_app``),
  ``_link_notes`` (notes waiting to be shown) and ``_notes_slot`` (where they go); a bad link
  value leaves the URL when it is read (``link_value``); ``forget_link`` makes a page read its
  link again (presenter mode's "next demo"); and a
  page's private markers, which add its prefix: ``_dn_for`` (the model the denoising page
  picked its partners for).
* **Handing a value to another page**: write the receiving page's key from a button callback,
  and the receiver pops it on its next run (``yi_to_sliders`` writes ``sl_handoff``, the
  sliders page pops it).
* **Setting a widget's value from code** (a link, a default that depends on the model, a value
  clamped into a new range): write ``state[key]`` before the widget is drawn, and do not also
  pass ``value=`` / ``index=`` to that widget.
* **The link, once per session**: a page reads its query parameters on its first run in the
  session only: ``if first_visit(PAGE["url_path"]): state[key] = link_value(param,
  catalog.parse_..., ...)``, where ``PAGE`` is the page's own declaration at its top (a second
  read after the data is loaded takes another name: ``first_visit(PAGE["url_path"] + "-ends")``).
  Then ``show_link_notes()`` (``intro`` reserves the place for the notes), and at the end of the
  run ``set_link(...)`` writes the settings back. The parameters a page may write are its
  ``PAGE["params"]`` (read by ``core.app.site``); ``app.py`` drops the others when the page
  changes, and ``model`` is the frame's.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import streamlit as st


def intro(title: str, text: str) -> None:
    """Every page opens with its title and two or three sentences: what you see, the one idea.
    In presenter mode the sentences fold away (the speaker says them), so the demo starts
    higher on a 1024×768 screen."""
    st.title(title)
    if presenting():
        with st.expander("What this shows"):
            st.markdown(text)
    else:
        st.markdown(text)
    notes_slot()


def notes_slot() -> None:
    """Reserve the place for notes about the link (filled by ``show_link_notes``)."""
    st.session_state["_notes_slot"] = st.empty()
    show_link_notes()


def first_visit(page: str) -> bool:
    """True on this page's first run in the session: the moment to read its link settings."""
    seen = st.session_state.setdefault("_link_read", set())
    if page in seen:
        return False
    seen.add(page)
    return True


def link_value(name: str, parser: Callable, *args) -> object | None:
    """Parse query parameter ``name`` with a ``catalog.parse_*`` function; a bad value becomes a
    note shown at the top of the page, leaves the URL, and the default is used."""
    value, problem = parser(st.query_params.get(name), *args)
    if problem:
        note(problem)
        drop_param(name)
    return value


def drop_param(name: str) -> None:
    """Remove an unusable value from the URL (the page may write its default back later)."""
    if name in st.query_params:
        del st.query_params[name]


NOTE_LIMIT = 200  # characters of one note
WORD_LIMIT = 60  # characters of one word of a note: a value echoed whole from a link is cut here
_LONG_WORD = re.compile(r"\S{" + str(WORD_LIMIT + 1) + ",}")


def note(problem: str) -> None:
    """Queue a note about the link for ``show_link_notes``. A value echoed without
    ``catalog.quote`` (a word over WORD_LIMIT characters) is cut, and so is the note (NOTE_LIMIT)."""
    problem = _LONG_WORD.sub(lambda m: m.group()[: WORD_LIMIT - 1] + "…", str(problem))
    if len(problem) > NOTE_LIMIT:
        problem = problem[: NOTE_LIMIT - 1] + "…"
    st.session_state.setdefault("_link_notes", []).append(problem)


def forget_link(*pages: str) -> None:
    """Read these pages' links again on their next run (``first_visit`` is True once more): a
    "next demo" step opens a bookmark on a page this session has already seen."""
    seen = st.session_state.setdefault("_link_read", set())
    seen.difference_update(pages)
    seen.difference_update(p + "-ends" for p in pages)


PRESENT = "present"  # session state and URL (?present=1): presenter mode is on


def presenting() -> bool:
    """Presenter mode (the sidebar's switch or ``?present=1``): pages and image helpers show
    larger pictures and fit one 1024×768 screen."""
    return bool(st.session_state.get(PRESENT, False))


def show_link_notes() -> None:
    """Show the notes about unusable link settings, under the page's intro when it has one."""
    notes = st.session_state.pop("_link_notes", None)
    if notes:
        slot = st.session_state.get("_notes_slot") or st
        slot.info("Some settings in the link could not be used, so defaults were taken: " + "; ".join(notes) + ".")


def set_link(**params) -> None:
    """Write this page's settings into the URL (None removes a parameter), in one update: each
    change of the query string is one browser history entry."""
    current = st.query_params.to_dict()
    wanted = dict(current)
    for name, value in params.items():
        if value is None:
            wanted.pop(name, None)
        else:
            wanted[name] = str(value)
    if wanted != current:
        st.query_params.from_dict(wanted)
