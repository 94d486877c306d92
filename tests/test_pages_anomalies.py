"""The anomaly page through AppTest: the held-out digit (trained on demand in a background job,
with progress and cancel), the threshold, the ROC curve with the PCA baseline, the outliers, your
own image, and the cross-data-set setup (a clear message offline; the real thing when
../shared/data holds Fashion-MNIST)."""

from __future__ import annotations

import threading

import pytest

from core import jobs
from tests.app_support import app_env, app_test, digit_png
from tests.conftest import requires_shared_data, shared_data_dir


@pytest.fixture(autouse=True)
def _models(monkeypatch):
    app_env(monkeypatch)


def ok(at):
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    return at


def trained(at):
    """Press the train button when this digit's model is not trained yet in this process, wait
    for the background job and rerun, as the page's poll would."""
    buttons = [b for b in at.button if b.key == "an_train"]
    if buttons:
        ok(buttons[0].click().run())
    if not at.metric and "an_job" in at.session_state:
        assert at.session_state["an_job"].wait(180), "the held-out model did not finish"
        ok(at.run())
    return at


def metrics(at) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def test_offline_it_opens_on_a_held_out_digit_and_trains_on_demand():
    at = ok(app_test("anomalies"))
    assert at.title[0].value == "Anomaly detection"
    assert at.segmented_control(key="an_setup").value == "held-out"
    trained(at)
    about = next(m.value for m in at.markdown if m.value.startswith("**Model**"))
    assert "trained here for 10 epochs" in about and "that are not 5" in about
    found = metrics(at)
    for name in ("AUROC · Reconstruction error", "AUROC · −ELBO", "AUROC · PCA baseline"):
        assert 0.5 < float(found[name]) <= 1.0, found
    assert {"Precision", "Recall", "False alarms", "F1"} <= set(found)
    assert len(at.get("plotly_chart")) == 2  # histogram, ROC
    assert len([i for i in at.image if i.captions and "·" in i.captions[0]]) == 12  # the outliers
    assert at.query_params["setup"] == "held-out" and at.query_params["digit"] == "5"


def test_the_held_out_model_trains_in_the_background_with_progress_and_cancel(monkeypatch):
    # One slot for the whole process, taken here: the job waits in the queue until the test
    # lets it run, so the page's progress and the cancel button can be seen for sure.
    slots = threading.BoundedSemaphore(1)
    monkeypatch.setattr(jobs, "_SLOTS", slots)
    assert slots.acquire(timeout=10)
    released = False
    try:
        at = ok(app_test("anomalies", query={"setup": "held-out", "digit": "7"}))
        assert not at.metric and at.button(key="an_train").label.endswith("Train without the 7s")
        ok(at.button(key="an_train").click().run())
        job = at.session_state["an_job"]
        assert job.status == jobs.QUEUED
        assert "Without the 7s" in at.progress[0].text and not at.metric
        ok(at.button(key="an_cancel").click().run())
        assert job.wait(10) and job.status == jobs.CANCELLED
        ok(at.run())
        assert "cancelled" in at.warning[0].value and not at.progress
        ok(at.button(key="an_train").click().run())  # start again: a new job
        again = at.session_state["an_job"]
        assert again is not job and at.progress and at.button(key="an_cancel")
        slots.release()
        released = True
        assert again.wait(180) and again.status == jobs.DONE
        ok(at.run())
    finally:
        if not released:
            slots.release()
    assert not at.progress and not at.warning
    assert 0.5 < float(metrics(at)["AUROC · Reconstruction error"]) <= 1.0
    assert "that are not 7" in next(m.value for m in at.markdown if m.value.startswith("**Model**"))
    other = ok(app_test("anomalies", query={"setup": "held-out", "digit": "7"}))
    assert "AUROC · PCA baseline" in metrics(other), "another session reuses the finished model"
    assert not [b for b in other.button if b.key == "an_train"]


def test_the_threshold_moves_precision_recall_and_the_counts():
    at = trained(app_test("anomalies"))
    slider = next(s for s in at.slider if s.key.startswith("an_thr_"))
    table = next(m.value for m in at.markdown if "flagged" in m.value)
    ok(slider.set_value(slider.min).run())
    low = metrics(at)
    assert low["Recall"] == "100.0%"
    ok(at.slider(key=slider.key).set_value(slider.max).run())
    high = metrics(at)
    assert high["Recall"] == "0.0%" and high["Precision"] == "100.0%"
    assert next(m.value for m in at.markdown if "flagged" in m.value) != table
    counts = [int(c.replace(",", "")) for c in next(m.value for m in at.markdown if "flagged" in m.value).split("|")
              if c.strip().replace(",", "").isdigit()]  # fmt: skip
    assert sum(counts) == 1000  # every test image of the offline subset


def test_the_score_and_the_digit_can_change():
    at = trained(app_test("anomalies"))
    ok(at.segmented_control(key="an_score").set_value("elbo").run())
    assert at.query_params["score"] == "elbo"
    assert any(s.key.endswith("_elbo") for s in at.slider)
    ok(at.selectbox(key="an_digit").select(1).run())
    trained(at)
    assert "that are not 1" in next(m.value for m in at.markdown if m.value.startswith("**Model**"))
    assert "AUROC · PCA baseline" in metrics(at)


def test_your_image_is_scored_and_a_bad_file_gets_a_message():
    at = trained(app_test("anomalies"))
    ok(at.file_uploader(key="an_upload").upload("seven.png", digit_png("7"), "image/png").run())
    assert any(m.value.startswith("**Your image** scores") for m in at.markdown)
    assert any("your image and its reconstruction" in c for i in at.image for c in i.captions)
    at.file_uploader(key="an_upload").clear().upload("cut.png", digit_png("7")[:60], "image/png").run()
    assert not at.exception
    assert any("damaged or truncated" in e.value for e in at.error)


def test_offline_the_cross_data_set_setup_says_fashion_mnist_is_missing():
    at = ok(app_test("anomalies", query={"setup": "cross"}))
    warning = " ".join(w.value for w in at.warning)
    assert "Fashion-MNIST is not available here" in warning and "not embedded offline" in warning
    assert "LATENTLAB_DATA" in warning
    assert not at.metric


def test_a_conditional_model_cannot_score_the_other_data_set():
    at = ok(app_test("anomalies", query={"setup": "cross", "model": "mnist-cvae-mlp-z4"}))
    assert any("conditional VAE" in i.value for i in at.info)


def test_a_link_restores_the_setup_and_a_bad_one_gets_a_note():
    at = ok(app_test("anomalies", query={"setup": "held-out", "digit": "3", "score": "elbo"}))
    assert at.selectbox(key="an_digit").value == 3
    at = ok(app_test("anomalies", query={"setup": "moon", "digit": "12"}))
    notes = " ".join(i.value for i in at.info)
    assert "unknown setup 'moon'" in notes and "held-out digit 12 is outside 0..9" in notes


@requires_shared_data
def test_mnist_against_fashion_mnist_with_the_full_data(monkeypatch):
    monkeypatch.setenv("LATENTLAB_DATA", str(shared_data_dir()))
    at = ok(app_test("anomalies", query={"model": "mnist-ae-mlp-z12"}))
    assert at.segmented_control(key="an_setup").value == "cross"
    found = metrics(at)
    assert float(found["AUROC · Reconstruction error"]) > 0.6  # a one-epoch test model
    assert float(found["AUROC · PCA baseline"]) > 0.6
    assert "AUROC · −ELBO" not in found, "a plain AE has no ELBO"
    assert at.segmented_control(key="an_score").options == ["Reconstruction error"]
    about = next(m.value for m in at.markdown if m.value.startswith("**Model**"))
    assert "1,000 Fashion-MNIST test images" in about
