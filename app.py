"""Latent Lab: the Streamlit entry point. Run with ``make run`` (or ``python serve.py``, which is
``streamlit run app.py`` with a fresh server's first deep link routed right; see serve.py).

This file is the frame around every page: the navigation (one file per page in ``pages/``, from
the page table of ``core.app.site``, which each page's ``PAGE`` declaration fills),
the sidebar's model picker with its model card, and the URL (``?model=`` and each page's own
settings, so a bookmark restores what was on screen), and presenter mode (``?present=1`` or the
sidebar's switch: no sidebar or toolbar, larger type and images, and a "Next demo" bar that
steps through a talk's bookmarks, ``core.app.talk``; a talk of your own: ``LATENTLAB_TALK=talk.json``).
"""

import streamlit as st

st.set_page_config(page_title="Latent Lab", page_icon="🧭", layout="wide")

from core.app.site import SECTIONS, off_reason, page_table  # noqa: E402  (ast only: cheap, no torch)


def _to_home() -> None:
    """The hidden page at the home page's declared path (/welcome): the frame forwards it to "/"."""


def navigation() -> tuple[dict[str, list], dict[str, st.Page], st.Page]:
    """The page table (each page's own ``PAGE`` declaration) as st.navigation's sections, each
    page by its declared URL path, and the hidden alias page of home's declared path.

    Streamlit serves the default (home) page at "/" and would answer its declared path,
    /welcome, with a "Page not found" box; so home gets an internal path ("welcome-home") and
    /welcome is a hidden page that the frame forwards to "/"."""
    sections: dict[str, list] = {name: [] for name in SECTIONS}
    by_path, alias = {}, None
    for spec in page_table():
        url_path = f"{spec.url_path}-home" if spec.is_home else spec.url_path
        page = st.Page(spec.file, title=spec.title, icon=spec.icon, url_path=url_path, default=spec.is_home)
        sections[spec.section].append(page)
        by_path[spec.url_path] = page
        if spec.is_home:
            alias = st.Page(_to_home, title=spec.title, url_path=spec.url_path, visibility="hidden")
            sections[spec.section].append(alias)
    return {name: pages for name, pages in sections.items() if pages}, by_path, alias


PAGES, BY_PATH, HOME_ALIAS = navigation()

# st.navigation comes before the engine's imports (torch takes seconds): the first run of a fresh
# server goes through Streamlit's pages/-folder router, whose menu (every file in pages/) shows
# until this call replaces it.
page = st.navigation(PAGES, expanded=True)  # every demo visible (the default folds after 10)
if page is HOME_ALIAS:
    st.switch_page(BY_PATH[HOME_ALIAS.url_path], query_params=st.query_params.to_dict())

# Plotly looks pandas up in sys.modules without importing it: while one session's thread is still
# importing pandas, another's finds it half-initialized ("partially initialized module 'pandas' has
# no attribute 'Series'"), as when a class opens its links on a fresh server at once. An import
# here waits for an import in progress, so every page runs with pandas whole.
import pandas  # noqa: E402, F401

from core.app import catalog, talk  # noqa: E402
from pages import _ui_load as load  # noqa: E402
from pages import _ui_state as state_ui  # noqa: E402

# Presenter mode: no sidebar, no toolbar, larger type, a main area as wide as the screen (so
# each page's main demo fits 1024×768), and the "next demo" bar pinned to the bottom right.
PRESENTER_CSS = """<style>
[data-testid="stSidebar"], [data-testid="stSidebarCollapsedControl"], [data-testid="stExpandSidebarButton"],
[data-testid="stToolbar"], [data-testid="stDecoration"], header[data-testid="stHeader"] {display: none !important;}
html {font-size: 18px !important;}
[data-testid="stMainBlockContainer"] {padding: 0.5rem 1.25rem 3.5rem 1.25rem !important; max-width: 100% !important;}
[data-testid="stMain"] h1 {padding-top: 0 !important;}
.st-key-presenter_bar {position: fixed; right: 1rem; bottom: 0.5rem; z-index: 999990; width: auto !important;
  background: rgba(255, 255, 255, 0.92); border-radius: 0.5rem; padding: 0.1rem 0.4rem;}
</style>"""


def presenter_mode() -> bool:
    """``?present=1`` (read once per session, and again on a "next demo" step) or the sidebar's
    switch; on, the page is restyled for a projector. Returns whether it is on."""
    state = st.session_state
    if state_ui.first_visit("_present"):
        asked, problem = catalog.parse_choice(st.query_params.get("present"), ("0", "1"), "presenter mode")
        if problem:
            state_ui.note(problem + " (use present=1)")
        elif asked is not None:
            state[state_ui.PRESENT] = asked == "1"
    # The switch mirrors a plain session value: a widget's own state does not outlive a page change.
    state["present_switch"] = on = bool(state.get(state_ui.PRESENT, False))
    st.sidebar.toggle(
        ":material/co_present: Presenter mode",
        key="present_switch",
        on_change=lambda: state.update({state_ui.PRESENT: state["present_switch"]}),
        help="For a projector: hides this sidebar and the toolbar, enlarges type and images, and "
        "shows a bar to step through the talk's demos. The link keeps it (?present=1).",
    )
    if on:
        st.html(PRESENTER_CSS)
    return on


def presenter_bar(current: st.Page) -> None:
    """Bottom right in presenter mode: previous / next demo of the talk (core.app.talk) and exit."""
    demos, problems = talk.load_talk()
    if state_ui.first_visit("_talk"):
        for problem in problems:
            state_ui.note(problem)
    state = st.session_state
    path = next((p for p, pg in BY_PATH.items() if pg is current), "")
    pos = state.get("_talk_pos")
    if pos is None or pos >= len(demos) or demos[pos].path != path:
        pos = talk.position_of(demos, path, st.query_params.to_dict())
    with st.container(key="presenter_bar", horizontal=True, vertical_alignment="center"):
        back = st.button(":material/arrow_back:", key="_talk_prev", help="Previous demo", disabled=not demos)
        where = f"{pos + 1} / {len(demos)}" if pos is not None else f"– / {len(demos)}"
        st.caption(where)
        forward = st.button("Next demo :material/arrow_forward:", key="_talk_next", type="primary", disabled=not demos)
        st.button(":material/close:", key="_present_exit", help="Leave presenter mode", on_click=_leave)
    if back or forward:
        i = talk.step(demos, pos, 1 if forward else -1)
        demo = demos[i]
        state["_talk_pos"] = i
        state_ui.forget_link("_app", demo.path)  # the frame reads ?model again, the page its settings
        st.switch_page(BY_PATH[demo.path], query_params={**demo.params, "present": "1"})


def _leave() -> None:
    st.session_state[state_ui.PRESENT] = False


def model_picker() -> str | None:
    """Sidebar: data set, then model; the card below. The choice goes to session state and URL."""
    entries = load.models()
    usable = {e.key: e for e in entries if e.ok}
    state = st.session_state
    if state_ui.first_visit("_app"):
        asked = st.query_params.get("model")
        if asked is not None:
            if asked in usable:
                state["model"], state["dataset"] = asked, usable[asked].dataset
            else:
                state_ui.note(f"unknown model {catalog.quote(asked)}")
    st.sidebar.header("Model")
    datasets = catalog.datasets_of(entries)
    if not datasets:
        st.sidebar.info("No checkpoints found in `checkpoints/` or `user_checkpoints/`.")
        state["_entry"] = None
        return None
    if state.get("dataset") not in datasets:
        first = catalog.default_model(entries)
        state["dataset"] = first.dataset if first else datasets[0]
    dataset = st.sidebar.selectbox("Data set", datasets, format_func=catalog.dataset_title, key="dataset")
    options = [k for k, e in usable.items() if e.dataset == dataset]
    if state.get("model") not in options:
        state["model"] = catalog.default_model(entries, dataset).key
    key = st.sidebar.selectbox("Checkpoint", options, format_func=lambda k: usable[k].label, key="model")
    entry = usable[key]
    state["_entry"] = entry
    card = catalog.card_rows(entry)
    st.sidebar.markdown(
        f"**{card.pop('Model')}**\n\n" + "\n".join(f"- {name}: {value}" for name, value in card.items()),
        help=entry.meta.get("notes") or None,
    )
    broken = [e for e in entries if not e.ok]
    if broken:
        with st.sidebar.expander(f"⚠️ {len(broken)} checkpoint(s) cannot be read"):
            for e in broken:
                st.caption(f"{e.label}: {e.error}")
    return key


def follow_the_link(model_key: str | None, presenting: bool) -> None:
    """?page=NAME opens that page (the path, /NAME, does the same; an unknown name gets a note).
    The URL keeps the model and this page's own settings (its PAGE["params"]), nothing else (one
    update, so one browser history entry)."""
    asked_page = st.query_params.get("page")
    if asked_page is not None:
        target = BY_PATH.get(asked_page)
        if target is None:
            state_ui.note(f"unknown page {catalog.quote(asked_page)}")
        elif target is not page:
            rest = {k: v for k, v in st.query_params.to_dict().items() if k != "page"}
            st.switch_page(target, query_params=rest)
    own = set(next((s.params for s in page_table() if s.url_path == page.url_path), ()))
    current = st.query_params.to_dict()
    wanted = {k: v for k, v in current.items() if k in own}
    if model_key is not None:
        wanted["model"] = model_key
    if presenting:
        wanted["present"] = "1"
    if wanted != current:
        st.query_params.from_dict(wanted)


def frame_and_page() -> None:
    """The sidebar, presenter mode, the link, then the page itself."""
    model_key = model_picker()
    presenting = presenter_mode()
    follow_the_link(model_key, presenting)
    if presenting:
        presenter_bar(page)
    entry = st.session_state.get("_entry")
    spec = next((s for s in page_table() if BY_PATH[s.url_path] is page), None)
    off = entry is not None and spec is not None and off_reason(spec, entry.input_kind, entry.title)
    if off:  # one rule for every page: it declares the inputs it serves (its PAGE["inputs"])
        st.title(spec.title)
        st.info(off)
        fits = [e for e in load.models() if e.ok and e.input_kind in spec.inputs and e.source == "shipped"]
        if fits:  # one click to a model the page shows, e.g. the shipped latent-diffusion VAE
            links = ", ".join(f"[{e.name}]({spec.url_path}?model={e.key})" for e in fits[:5])
            st.markdown(f"Installed models this page shows: {links}.")
        return
    page.run()


# A page's first run in this process imports its part of the engine; those runs take turns (see
# _ui_load.first_run) so that a class opening its links on a fresh server at once never gets a
# half-imported library.
with load.first_run(page.url_path):
    frame_and_page()
load.warm_up()
load.freeze_imports()
