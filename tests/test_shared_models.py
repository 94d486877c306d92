"""The models the app caches are shared by every session: no page may change them.

Every page is run through AppTest with every test model; afterwards each cached model must
still equal its checkpoint on disk, tensor for tensor, and still be in eval mode.
"""

from __future__ import annotations

import pytest
import torch

from core.app.catalog import list_models
from core.formats.checkpoints import load_checkpoint
from tests.app_support import PAGE_FILES, app_env, app_test

# Every page that runs the sidebar's model (β sweep and Train build models of their own; Load your model adds one).
PAGES = [p for p in PAGE_FILES if p not in ("beta_sweep", "train", "your_model")]


@pytest.fixture(autouse=True)
def _models(monkeypatch):
    app_env(monkeypatch)


@pytest.mark.slow
def test_no_page_mutates_a_cached_model():
    from pages import _ui_load

    entries = [e for e in list_models() if e.ok]
    assert len(entries) >= 4
    for entry in entries:
        for page in PAGES:
            at = app_test(page, query={"model": entry.key})
            assert not at.exception, (entry.key, page, at.exception)
    for entry in entries:
        cached = _ui_load._load_model(str(entry.path), entry.mtime, entry)  # the object every session shares
        fresh = load_checkpoint(entry.path).model
        assert not cached.model.training, entry.key
        for key, value in fresh.state_dict().items():
            assert torch.equal(cached.model.state_dict()[key], value), (entry.key, key)
