"""The app's pages through Streamlit's AppTest (no browser)."""

from streamlit.testing.v1 import AppTest

from tests.conftest import ROOT


def test_home_page_renders_without_exceptions():
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60).run()
    assert not at.exception
    assert at.title[0].value == "Latent Lab"
    text = " ".join(m.value for m in at.markdown)
    assert "ELBO" in text and "reparameterization trick" in text
    names = [row for row in at.table[0].value["name"]]
    assert {"mnist", "mnist-5k", "frey-faces", "olivetti-faces", "lfw-faces", "fashion-mnist"} <= set(names)
