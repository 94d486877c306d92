"""The latent map page through AppTest (the click itself is in the browser tests)."""

import pytest

from tests.app_support import app_env, captions, open_page


@pytest.fixture(autouse=True)
def _models(monkeypatch):
    app_env(monkeypatch)


def page(model: str | None = None, **query):
    return open_page("latent_map", model, **query)


def test_a_two_dimensional_code_is_shown_on_its_raw_axes():
    at = page()
    assert at.get("plotly_chart")
    assert any("its own axes, no projection" in c.value for c in at.caption)
    assert "input #0" in captions(at) and "reconstruction" in captions(at)


def test_pca_axes_with_explained_variance_and_a_point_by_number():
    at = page("mnist-vae-mlp-z12")
    assert at.metric[0].label == "Variance in this plane"
    share = float(at.metric[0].value.rstrip("%"))
    assert 0 < share <= 100
    at.selectbox(key="map_y").select(2).run()
    assert float(at.metric[0].value.rstrip("%")) != share
    at.selectbox(key="map_x").select(1).run()
    assert at.query_params["x"] == "2" and at.query_params["y"] == "3"
    at.number_input(key="map_row").set_value(17).run()
    assert "input #17" in captions(at) and at.query_params["row"] == "17"


def test_the_number_of_points():
    at = page()
    at.select_slider(key="map_points").set_value(500).run()
    assert not at.exception
    assert any(c.value.startswith("500 of ") and "test images" in c.value for c in at.caption)
    at.number_input(key="map_row").set_value(499).run()
    at.select_slider(key="map_points").set_value(1000).run()
    assert not at.exception


def test_faces_without_labels_and_a_small_test_split_use_every_image():
    at = page("faces-vae-mlp-z3")
    assert any("all 100 images" in c.value for c in at.caption)
    assert at.number_input(key="map_row").max == 99


def chart_spec(at) -> dict:
    import json

    return json.loads(at.get("plotly_chart")[0].proto.spec)


def test_unlabelled_faces_are_one_colour_and_the_text_says_so():
    # Bug (issue 15): the faces' map coloured points by row number while the text said "true labels".
    at = page("faces-vae-mlp-z3")
    spec = chart_spec(at)
    images = next(t for t in spec["data"] if t.get("name") == "images")
    assert isinstance(images["marker"]["color"], str) and not images["marker"].get("showscale", True)
    text = " ".join(m.value for m in at.markdown)
    assert "true label" not in text and "no labels" in text


def test_a_small_set_shows_no_one_choice_points_slider():
    # Bug (issue 15): with 100 images the Points slider had one choice, a lone dot.
    at = page("faces-vae-mlp-z3")
    assert not [s for s in at.select_slider if s.key == "map_points"]
    assert any("all 100 images" in m.value for m in at.markdown) and "points" not in at.query_params
    labelled = page()
    assert "true labels" in " ".join(m.value for m in labelled.markdown)


@pytest.fixture
def orl_models(monkeypatch, tmp_path):
    """The test models plus a tiny VAE of the ORL faces (40 subjects: more classes than colours)."""
    import shutil

    from core.app import catalog
    from core.formats.checkpoints import save_checkpoint
    from core.models.config import ModelConfig
    from core.training.train import TrainConfig, train_model
    from tests.app_support import model_folder

    ds = catalog.load_data("olivetti-faces")
    mcfg = ModelConfig(kind="vae", arch="mlp", image_shape=ds.image_shape, latent_dim=3, hidden=(32,))
    model, _ = train_model(mcfg, ds, TrainConfig(epochs=1, batch_size=64, seed=0, device="cpu"))
    shutil.copytree(model_folder(), tmp_path, dirs_exist_ok=True)
    info = {**ds.info(), "name": "olivetti-faces"}  # as a model trained on the full set records it
    save_checkpoint(model, tmp_path / "orl-vae-mlp-z3", dataset=info, train={}, card={})
    app_env(monkeypatch, folder=tmp_path)


def test_many_classes_put_the_legend_above_the_colour_bar(orl_models):
    # Bug (issue 15): the colour bar's title overlapped the legend.
    at = page("orl-vae-mlp-z3")
    spec = chart_spec(at)
    images = next(t for t in spec["data"] if t.get("name") == "images")
    assert images["marker"]["colorbar"]["title"]["text"] == "label"
    assert spec["layout"]["legend"]["orientation"] == "h" and spec["layout"]["legend"]["y"] > 1
    assert "true labels" in " ".join(m.value for m in at.markdown)


def test_a_link_restores_the_point_and_bad_values_get_a_note():
    at = page("mnist-vae-mlp-z12", points="500", x="2", y="3", row="42")
    assert at.select_slider(key="map_points").value == 500
    assert at.selectbox(key="map_x").value == 1 and at.selectbox(key="map_y").value == 2
    assert "input #42" in captions(at)
    at = page(row="1e9", x="PC7")
    assert "input #0" in captions(at)
    assert any("point" in i.value for i in at.info)


# ---------------------------------------------------------------- projections, clicks and lassos


def finished(at):
    """Rerun the page until this session's UMAP or t-SNE layout job has ended."""
    job = at.session_state["map_job"]
    assert job.wait(120), "the layout did not end"
    at.run()
    assert not at.exception, at.exception
    return at


@pytest.mark.parametrize("proj", ["pca", "umap", "tsne", "dims"])
def test_each_projection_renders_and_a_point_decodes(proj):
    at = page("mnist-vae-mlp-z12", points="500", proj=proj)
    if proj in ("umap", "tsne"):
        assert at.get("plotly_chart") == [] and "map_job" in at.session_state  # the progress, then the map
        finished(at)
    assert at.get("plotly_chart")
    note = {"pca": "PCA of 500 codes", "umap": "UMAP of 500 codes", "tsne": "t-SNE of 500 codes", "dims": "Dimensions"}
    assert any(note[proj] in c.value for c in at.caption)
    at.number_input(key="map_row").set_value(17).run()  # what a click does (the click itself: the browser tests)
    assert "input #17" in captions(at) and "reconstruction" in captions(at)
    assert at.query_params["proj"] == proj and at.query_params["row"] == "17"


def test_raw_dimensions_pick_any_two_axes_and_the_link_keeps_them():
    at = page("mnist-vae-mlp-z12", proj="dims", x="5", y="11")
    assert at.selectbox(key="map_dx").value == 5 and at.selectbox(key="map_dy").value == 11
    assert any("Dimensions z5 and z11 of 12" in c.value for c in at.caption)
    at.selectbox(key="map_dy").select(2).run()
    assert at.query_params["x"] == "5" and at.query_params["y"] == "2"


def test_a_lasso_group_decodes_its_mean_code_and_goes_to_the_directions_page():
    at = page("mnist-vae-mlp-z12", points="500")
    at.session_state["map_group"] = [3, 8, 15, 16, 42]  # what a lasso selection leaves (see selected_points)
    at.run()
    assert not at.exception, at.exception
    assert "decoded mean code of 5 points" in captions(at)
    assert any("Labels in the group" in c.value for c in at.caption)
    at.button(key="map_to_dir_a").click().run()
    assert not at.exception, at.exception
    assert at.session_state["dir_a_src"] == "map" and len(at.session_state["dir_a_map"][1]) == 5


def test_a_lasso_event_is_a_group_and_a_click_is_a_point():
    from pages._ui_charts import selected_points

    point = {"curve_number": 2, "point_index": 9, "customdata": ["12", "#12 · 2"]}
    lasso = {"selection": {"points": [point, {**point, "customdata": ["40", "#40 · 7"]}], "lasso": [{"x": [0]}]}}
    assert selected_points(lasso) == ((12, 40), True)
    assert selected_points({"selection": {"points": [point], "box": [], "lasso": []}}) == ((12,), False)
    assert selected_points({"selection": {"points": [], "box": [], "lasso": []}}) is None
    assert selected_points(None) is None


def test_a_bad_projection_in_the_link_gets_a_note():
    at = page(proj="isomap")
    assert any("unknown projection 'isomap'" in i.value for i in at.info)
    assert at.get("plotly_chart")


def test_a_lasso_selection_is_in_the_link():
    at = page("mnist-vae-mlp-z12", points="500", group="3-5,9")
    assert any(h.value == "The mean of 4 points" for h in at.subheader)
    assert at.query_params["group"] == "3-5,9" and at.query_params["points"] == "500"
    bad = page(group="<b>x</b>")
    assert any("selected group" in i.value for i in bad.info) and "group" not in bad.query_params
