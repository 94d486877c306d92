"""Latent Lab: the Streamlit entry point. Run with ``make run`` (or ``streamlit run app.py``).

This file is the frame around every page: the navigation (one file per page in ``pages/``, from
the page table of ``core.site``, which each page's ``PAGE`` declaration fills),
the sidebar's model picker with its model card, and the URL (``?model=`` and each page's own
settings, so a bookmark restores what was on screen).
"""

import streamlit as st

st.set_page_config(page_title="Latent Lab", page_icon="🧭", layout="wide")

from core.site import SECTIONS, page_table  # noqa: E402  (ast only: cheap, no torch)


def navigation() -> tuple[dict[str, list], dict[str, st.Page]]:
    """The page table (each page's own ``PAGE`` declaration) as st.navigation's sections, and
    each page by its declared URL path (the home page's is "welcome", though Streamlit serves
    the default page at "/")."""
    sections: dict[str, list] = {name: [] for name in SECTIONS}
    by_path = {}
    for spec in page_table():
        page = st.Page(spec.file, title=spec.title, icon=spec.icon, url_path=spec.url_path, default=spec.is_home)
        sections[spec.section].append(page)
        by_path[spec.url_path] = page
    return {name: pages for name, pages in sections.items() if pages}, by_path


PAGES, BY_PATH = navigation()

# st.navigation comes before the engine's imports (torch takes seconds): the first run of a fresh
# server goes through Streamlit's pages/-folder router, whose menu (every file in pages/) shows
# until this call replaces it.
page = st.navigation(PAGES, expanded=True)  # every demo visible (the default folds after 10)

from core import catalog  # noqa: E402
from pages import _ui_load as load  # noqa: E402
from pages import _ui_state as state_ui  # noqa: E402


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


model_key = model_picker()

# ?page=NAME opens that page (the path, /NAME, does the same); an unknown name gets a note.
asked_page = st.query_params.get("page")
if asked_page is not None:
    target = BY_PATH.get(asked_page)
    if target is None:
        state_ui.note(f"unknown page {catalog.quote(asked_page)}")
    elif target is not page:
        rest = {k: v for k, v in st.query_params.to_dict().items() if k != "page"}
        st.switch_page(target, query_params=rest)

# The URL keeps the model and this page's own settings (its PAGE["params"]), nothing else (one
# update, so one browser history entry).
own = set(next((s.params for s in page_table() if s.url_path == page.url_path), ()))
current = st.query_params.to_dict()
wanted = {k: v for k, v in current.items() if k in own}
if model_key is not None:
    wanted["model"] = model_key
if wanted != current:
    st.query_params.from_dict(wanted)

page.run()
load.warm_up()
load.freeze_imports()
