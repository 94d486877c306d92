"""A table's model in the sidebar (AppTest): it is listed under its table, the latent map shows
its rows coloured by label with a clicked row's values beside its reconstruction, the anomaly page
opens on the Table setup, and every page that shows images says in one line why it is off."""

from __future__ import annotations

import pytest

from core.app.site import demo_pages
from core.experiments.tabular import SHIPPED_TABLE_MODEL
from tests.app_support import app_env, app_test, with_shipped


@pytest.fixture(autouse=True)
def with_table_model(monkeypatch, tmp_path):
    app_env(monkeypatch, folder=with_shipped(tmp_path / "shipped", SHIPPED_TABLE_MODEL), user=tmp_path / "user")


def ok(at):
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    return at


def test_the_latent_map_shows_a_tables_rows_and_a_clicked_rows_values():
    at = ok(app_test("latent_map", query={"model": SHIPPED_TABLE_MODEL, "row": "5"}))
    assert at.selectbox(key="dataset").value == "table:breast-cancer"
    assert "Each dot is a row of the table" in " ".join(m.value for m in at.markdown)
    charts = [c.proto for c in at.get("plotly_chart")]
    assert len(charts) == 2  # the map and the row's bars
    import json

    bars = json.loads(charts[1].spec)["data"]
    assert [t["name"] for t in bars] == ["row #5 · " + bars[0]["name"].split(" · ")[1], "reconstruction"]
    assert bars[0]["name"].split(" · ")[1] in ("benign", "malignant")
    assert len(bars[0]["y"]) == 30 and bars[0]["y"][0] == "mean radius"


def test_the_anomaly_page_opens_on_the_table_setup_for_a_tables_model():
    at = ok(app_test("anomalies", query={"model": SHIPPED_TABLE_MODEL}))
    assert at.segmented_control(key="an_setup").value == "table"
    assert "Isolation Forest" in {m.label for m in at.metric}


IMAGE_ONLY = [s for s in demo_pages() if s.inputs == ("images",)]


@pytest.mark.parametrize("spec", IMAGE_ONLY, ids=lambda s: s.url_path)
def test_a_page_of_images_says_in_one_line_why_it_is_off(spec):
    at = ok(app_test(spec.stem, query={"model": SHIPPED_TABLE_MODEL}))
    info = [i.value for i in at.info]
    assert len(info) == 1 and info[0].startswith(f"{spec.title} shows models of images;"), info
    assert "Open Latent map or Anomaly detection" in info[0]
