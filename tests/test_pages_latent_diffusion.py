"""The latent-diffusion VAE page through AppTest, on a tiny diffusers AutoencoderKL saved in your
models' folder: the sidebar lists it, the page measures it on the offline colour scenes (and on
your images when `explore` names them), the other pages say in one line why they are off, and a
bookmark's settings come back."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from core.app.site import demo_pages
from tests.app_support import app_env, app_test
from tests.test_spatial import _tiny_vae

pytestmark = pytest.mark.usefixtures("one_thread")
PAGE_INPUTS = {s.stem: s.inputs for s in demo_pages()}


@pytest.fixture(scope="module")
def user(tmp_path_factory):
    folder = tmp_path_factory.mktemp("user")
    _tiny_vae().save_pretrained(folder / "tiny-sd-vae", safe_serialization=True)
    return folder


JOBS = ("ld_page_job", "ld_set_job")  # the page's background encode/decode runs


def settled(at):
    """Rerun the page until its background jobs have ended (each shows its progress meanwhile)."""
    for _ in range(len(JOBS) + 1):
        pending = [at.session_state[k] for k in JOBS if k in at.session_state and not at.session_state[k].done]
        if not pending:
            return at
        for job in pending:
            assert job.wait(120), "an encode/decode job did not end"
        at.run()
        assert not at.exception, at.exception
    return at


def test_the_page_measures_a_diffusers_vae_on_colour_scenes(user, monkeypatch):
    app_env(monkeypatch, user=user)
    at = settled(app_test("latent_diffusion", query={"model": "user:tiny-sd-vae"}))
    assert not at.exception, at.exception
    assert at.sidebar.selectbox[1].value == "user:tiny-sd-vae"
    assert "dB" in at.metric[0].value
    checks = [m.value for m in (*at.success, *at.warning)]
    assert any("scaling_factor 0.5" in m and "1/std measured on your images" in m for m in checks), checks
    assert len(at.image) == 11, "original, reconstruction, difference, zoom, channels, two shifts, path, noise, set"


def test_the_set_has_a_map_neighbours_and_anomalies_by_reconstruction_error(user, monkeypatch):
    app_env(monkeypatch, user=user)
    at = settled(app_test("latent_diffusion", query={"model": "user:tiny-sd-vae", "row": "5"}))
    chart = at.get("plotly_chart")[-1].proto.spec
    assert "pooled codes, coloured by reconstruction error" in chart and '"MSE"' in chart
    (near,) = [c.value for c in at.main.caption if "nearest by pooled code" in c.value]
    (worst,) = [c.value for c in at.main.caption if c.value.startswith("the least typical: ")]
    assert near.startswith("image 5, then its nearest by pooled code: ")
    assert len(near.split(": ")[1].split(", ")) == 5 and "5 (" not in near.split(": ")[1]
    errors = [float(part.rstrip(")").split("MSE ")[1]) for part in worst.split(": ")[1].split(", ")]
    assert len(errors) == 5 and errors == sorted(errors, reverse=True) and errors[-1] > 0


def test_a_256_image_is_worked_on_in_the_background_while_other_sessions_go_on(user, monkeypatch):
    """The encode/decode of 256² images runs in a job: the page shows its progress and returns, and
    another session's page serves meanwhile; when the job ends the page shows the 256² pictures."""
    import threading

    from core.lenses import spatial

    release, original = threading.Event(), spatial.reconstruction

    def held(model, x, **kw):
        assert release.wait(60), "the test never released the job"
        return original(model, x, **kw)

    monkeypatch.setattr(spatial, "reconstruction", held)
    app_env(monkeypatch, user=user)
    at = app_test("latent_diffusion", query={"model": "user:tiny-sd-vae", "size": "256"})
    assert not at.exception, at.exception
    assert not at.image and "ld_page_job" in at.session_state, "the page waits on its job, not in its script"
    other = app_test("latent_sliders")  # another session, while the job is held
    assert not other.exception and other.slider, "another session is served meanwhile"
    release.set()
    at = settled(at)
    assert at.session_state["ld_size"] == 256 and "256×256" in at.image[0].proto.imgs[0].caption
    assert "dB" in at.metric[0].value


def test_the_image_pages_say_why_they_are_off_for_a_spatial_vae(user, monkeypatch):
    app_env(monkeypatch, user=user)
    at = app_test("latent_sliders", query={"model": "user:tiny-sd-vae"})
    assert not at.exception
    off = " ".join(i.value for i in at.info)
    assert "images through a spatial latent" in off and "Latent-diffusion VAE" in off


def test_a_bookmark_restores_the_settings(user, monkeypatch):
    app_env(monkeypatch, user=user)
    query = {"model": "user:tiny-sd-vae", "size": "64", "image": "2", "channel": "3", "delta": "-1.5", "region": "top"}
    at = settled(app_test("latent_diffusion", query=query))
    assert not at.exception, at.exception
    got = {k: at.session_state[f"ld_{k}"] for k in ("size", "image", "channel", "delta", "region")}
    assert got == {"size": 64, "image": 2, "channel": 3, "delta": -1.5, "region": "top"}
    assert {k: at.query_params[k][0] if isinstance(at.query_params[k], list) else at.query_params[k]
            for k in query} == query  # fmt: skip


def test_explore_names_a_model_and_its_images(user, monkeypatch, tmp_path):
    """``python -m core explore PATH --images DIR`` sets these two variables; the sidebar opens on it."""
    images = tmp_path / "pets"
    images.mkdir()
    rng = np.random.default_rng(0)
    for i in range(6):
        Image.fromarray(rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)).save(images / f"{i}.png")
    app_env(monkeypatch, user=tmp_path / "nobody")
    monkeypatch.setenv("LATENTLAB_EXPLORE", str(user / "tiny-sd-vae"))
    monkeypatch.setenv("LATENTLAB_EXPLORE_IMAGES", str(images))
    at = settled(app_test("latent_diffusion", query={"model": "explore:tiny-sd-vae"}))
    assert not at.exception, at.exception
    assert at.sidebar.selectbox[1].value == "explore:tiny-sd-vae"
    assert "pets" in at.sidebar.selectbox[0].value or "pets" in str(at.sidebar.selectbox[0].options)


def test_the_page_explains_itself_and_a_hostile_link_is_dropped_with_a_note(user, monkeypatch):
    app_env(monkeypatch, user=user)
    junk = "<b>x</b>" + "9" * 10_000
    params = ("size", "image", "channel", "delta", "region")
    at = settled(app_test("latent_diffusion", query={"model": "user:tiny-sd-vae", **{p: junk for p in params}}))
    assert not at.exception, at.exception
    intro = at.markdown[0].value
    assert 2 <= intro.count(". ") + intro.strip().endswith(".") <= 3, intro
    notes = " ".join(i.value for i in at.info)
    assert "could not be used" in notes and "9" * 61 not in notes
    assert not {k: v for k, v in at.query_params.items() if "9" * 61 in v or "<b>" in v}


def _with_factor(source, folder, scaling: float, shift: float):
    """A copy of the tiny VAE whose config says ``scaling_factor`` and ``shift_factor``."""
    import json
    import shutil

    shutil.copytree(source, folder)
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "scaling_factor": scaling, "shift_factor": shift}))
    return folder


def test_a_wrong_scaling_factor_gets_a_visible_warning(user, monkeypatch, tmp_path):
    """The right factors (1/std and mean of the unscaled latent on the page's images) pass; a scaling
    factor four times too large warns and names the measured one."""
    from core.app.catalog import load_data
    from core.data.registry import fit_images
    from core.formats.spatial import open_spatial

    model = open_spatial(user / "tiny-sd-vae")
    data = load_data("shapes3d")
    rows = np.linspace(0, len(data.test_x) - 1, 8).round().astype(int)
    raw, _ = model.encode_raw(fit_images(data.test_x[rows], (3, 64, 64)))
    right, shift = 1.0 / float(raw.std()), float(raw.mean())
    folder = tmp_path / "models"
    _with_factor(user / "tiny-sd-vae", folder / "right-vae", right, shift)
    _with_factor(user / "tiny-sd-vae", folder / "wrong-vae", 4 * right, shift)
    app_env(monkeypatch, user=folder)
    ok = settled(app_test("latent_diffusion", query={"model": "user:right-vae", "size": "64"}))
    assert not ok.exception and not ok.warning and "the latent std is 1;" in ok.success[0].value
    bad = settled(app_test("latent_diffusion", query={"model": "user:wrong-vae", "size": "64"}))
    assert not bad.exception
    (warning,) = [w.value for w in bad.warning if "scaling_factor" in w.value]
    assert "the latent std is 4" in warning and f"{right:.3g}" in warning


@pytest.mark.parametrize("page", [s.stem for s in demo_pages() if s.stem != "latent_diffusion"])
def test_every_other_page_says_in_one_line_why_it_is_off(user, monkeypatch, page):
    app_env(monkeypatch, user=user)
    at = app_test(page, query={"model": "user:tiny-sd-vae"})
    assert not at.exception, (page, at.exception)
    if "spatial" not in (PAGE_INPUTS.get(page) or ()):
        off = [i.value for i in at.info if "images through a spatial latent" in i.value]
        assert len(off) == 1 and "Latent-diffusion VAE" in off[0], page


def test_off_the_page_links_to_the_shipped_latent_diffusion_vae(monkeypatch, tmp_path):
    """On the default (flat) model the page says why it is off and offers the VAE that ships."""
    from tests.conftest import ROOT

    app_env(monkeypatch, folder=ROOT / "checkpoints", user=tmp_path / "nobody")
    at = app_test("latent_diffusion")
    assert not at.exception, at.exception
    assert any("images through a spatial latent" in i.value for i in at.info)
    links = [m.value for m in at.markdown if m.value.startswith("Installed models this page shows")]
    assert links == ["Installed models this page shows: [sprites-sd-vae](latent-diffusion?model=sprites-sd-vae)."]
