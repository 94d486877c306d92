"""The anomaly page through AppTest: the held-out digit (trained on demand in a background job,
with progress and cancel), the threshold, the ROC curve with the PCA baseline, the outliers, your
own image, and the cross-data-set setup (a clear message offline; the real thing when
../shared/data holds Fashion-MNIST)."""

from __future__ import annotations

import os
import shutil
import threading

import pytest
import streamlit as st

from core.app import jobs
from core.experiments import anomaly
from core.formats.checkpoints import SHIPPED_DIR
from tests.app_support import app_env, app_test, digit_png, model_folder, with_shipped
from tests.conftest import no_network, requires_shared_data, shared_data_dir

HELD_OUT_5 = "mnist-without-5-vae-mlp-z8"  # shipped: the default held-out digit needs no training


@pytest.fixture(autouse=True)
def _models(monkeypatch, tmp_path):
    app_env(monkeypatch, user=tmp_path / "user")
    no_network(monkeypatch)
    monkeypatch.setattr(anomaly, "HELD_OUT_TRAIN", {**anomaly.HELD_OUT_TRAIN, "epochs": 1})  # seconds, not minutes


@pytest.fixture
def with_shipped_held_out(monkeypatch, tmp_path):
    """The test models plus the shipped held-out model of digit 5, as the app's shipped folder."""
    folder = with_shipped(tmp_path / "shipped", HELD_OUT_5, anomaly.one_class_name(8))
    app_env(monkeypatch, folder=folder, user=tmp_path / "user")


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


def about(at) -> str:
    return next(m.value for m in at.markdown if m.value.startswith("**Model**"))


def test_offline_mnist_against_fashion_mnist_runs_on_first_visit():
    # No ../shared, no LATENTLAB_DATA, no network: Fashion-MNIST's test set comes from data/.
    assert "LATENTLAB_DATA" not in os.environ
    at = ok(app_test("anomalies", query={"model": "mnist-vae-mlp-z12"}))
    assert at.segmented_control(key="an_setup").value == "cross"
    found = metrics(at)
    for name in ("AUROC · Reconstruction error", "AUROC · −ELBO", "AUROC · PCA baseline"):
        assert 0.6 < float(found[name]) <= 1.0, found  # a one-epoch test model
    assert "1,000 Fashion-MNIST test images" in about(at) and "data/" in about(at)
    assert not [b for b in at.button if b.key == "an_train"] and not at.warning
    table = next(m.value for m in at.markdown if "flagged" in m.value)
    counts = [int(c.replace(",", "")) for c in table.split("|") if c.strip().replace(",", "").isdigit()]
    assert sum(counts) == 2000  # 1,000 MNIST and 1,000 Fashion-MNIST test images


def test_the_default_held_out_digit_needs_no_training(with_shipped_held_out):
    at = ok(app_test("anomalies", query={"setup": "held-out"}))
    assert at.selectbox(key="an_digit").value == 5
    assert not [b for b in at.button if b.key == "an_train"] and "an_job" not in at.session_state
    assert 0.5 < float(metrics(at)["AUROC · Reconstruction error"]) <= 1.0
    text = about(at)
    assert "shipped with the app" in text and "training digits that are not 5" in text
    assert "4 epochs" in text and "54," in text  # every MNIST training digit but the 5s


def test_one_digit_only_uses_the_shipped_model_and_scores_per_edge(with_shipped_held_out):
    at = ok(app_test("anomalies", query={"setup": "one-class", "digit": "8", "score": "recon-edge"}))
    assert not [b for b in at.button if b.key == "an_train"]
    found = metrics(at)
    assert float(found["AUROC · Error per edge"]) > 0.95 > float(found["AUROC · Reconstruction error"]), found
    assert "AUROC · −ELBO" not in found and float(found["AUROC · PCA baseline"]) > 0.9  # PCA per edge
    assert "of 8 only" in about(at) and "the other 9,026 test digits" in about(at)
    assert at.query_params["setup"] == "one-class" and at.query_params["score"] == "recon-edge"
    ok(at.selectbox(key="an_digit").select(3).run())  # not in this folder: a message, no training
    assert any("not in this install's models" in i.value for i in at.info) and not at.metric


def test_a_held_out_model_trained_here_is_saved_and_reused_after_a_restart(tmp_path):
    at = ok(app_test("anomalies", query={"setup": "held-out", "digit": "3"}))
    info = " ".join(i.value for i in at.info)
    assert f"about {anomaly.HELD_OUT_SECONDS}" in info and "(`user/anomaly`)" in info
    trained(at)
    assert "trained here in" in about(at)
    auc = metrics(at)["AUROC · Reconstruction error"]
    saved = tmp_path / "user" / "anomaly" / anomaly.held_out_name("mnist-5k", 3)
    assert saved.with_suffix(".json").is_file() and saved.with_suffix(".safetensors").is_file()
    st.cache_resource.clear()  # a restart: no job and no cached model left
    again = ok(app_test("anomalies", query={"setup": "held-out", "digit": "3"}))
    assert not [b for b in again.button if b.key == "an_train"] and "an_job" not in again.session_state
    assert metrics(again)["AUROC · Reconstruction error"] == auc
    assert "trained here and kept in `user/anomaly`" in about(again)


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
    low = metrics(at)  # everything above the lowest score is flagged
    assert float(low["Recall"].rstrip("%")) >= 99.9 and float(low["False alarms"].rstrip("%")) >= 99.9, low
    ok(at.slider(key=slider.key).set_value(slider.max).run())
    high = metrics(at)
    assert high["Recall"] == "0.0%" and high["Precision"] == "100.0%"
    assert next(m.value for m in at.markdown if "flagged" in m.value) != table
    counts = [int(c.replace(",", "")) for c in next(m.value for m in at.markdown if "flagged" in m.value).split("|")
              if c.strip().replace(",", "").isdigit()]  # fmt: skip
    assert sum(counts) == 2000  # 1,000 MNIST and 1,000 Fashion-MNIST test images


def test_the_score_and_the_digit_can_change():
    at = trained(app_test("anomalies", query={"setup": "held-out"}))
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


def test_without_the_held_out_files_the_cross_data_set_setup_says_fashion_mnist_is_missing(monkeypatch, tmp_path):
    from core.data import registry as data

    monkeypatch.setattr(data, "HELD_OUT_DIR", tmp_path)  # a clone without data/
    st.cache_resource.clear()
    at = ok(app_test("anomalies", query={"setup": "cross"}))
    st.cache_resource.clear()  # later tests load data/ again
    warning = " ".join(w.value for w in at.warning)
    assert "Fashion-MNIST is not available here" in warning and "not in this install's `data/` folder" in warning
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


def threshold(at):
    return next(s for s in at.slider if s.key.startswith("an_thr_"))


def test_the_threshold_round_trips_through_the_link():
    # Before: the threshold was not in the link; a bookmark opened on the default 5 % false alarms.
    at = ok(app_test("anomalies", query={"model": "mnist-vae-mlp-z12", "setup": "cross", "score": "elbo"}))
    slider = threshold(at)
    assert at.query_params["thr"] == f"{slider.value:.6g}", "the default threshold is in the URL too"
    low = round((slider.min + 0.2 * (slider.max - slider.min)) / slider.step) * slider.step
    linked = ok(app_test("anomalies", query={**at.query_params, "thr": f"{low:.6g}"}))
    assert threshold(linked).value == low and linked.query_params["thr"] == f"{low:.6g}"
    assert metrics(linked)["False alarms"] != metrics(at)["False alarms"], "the threshold moved"
    high = round((slider.min + 0.7 * (slider.max - slider.min)) / slider.step) * slider.step
    ok(linked.slider(key=slider.key).set_value(high).run())
    assert linked.query_params["thr"] == f"{high:.6g}"
    again = ok(app_test("anomalies", query=dict(linked.query_params)))
    assert threshold(again).value == high and dict(again.query_params) == dict(linked.query_params)
    assert metrics(again) == metrics(linked), "the same threshold: the same precision, recall and counts"


@pytest.mark.parametrize(
    ("thr", "note"), [("1e9", "threshold '1e9' is outside"), ("abc", "threshold 'abc' is not a number")]
)
def test_a_threshold_out_of_the_range_gets_a_note_and_leaves_the_url(thr, note):
    at = ok(app_test("anomalies", query={"model": "mnist-vae-mlp-z12", "setup": "cross", "thr": thr}))
    assert note in " ".join(i.value for i in at.info)
    slider = threshold(at)
    assert at.query_params["thr"] == f"{slider.value:.6g}" != thr, "the default threshold replaces it"
    assert slider.min <= slider.value <= slider.max


@requires_shared_data
def test_mnist_against_fashion_mnist_with_the_full_data(monkeypatch):
    monkeypatch.setenv("LATENTLAB_DATA", str(shared_data_dir()))
    at = ok(app_test("anomalies", query={"model": "mnist-ae-mlp-z12"}))
    assert at.segmented_control(key="an_setup").value == "cross"
    found = metrics(at)
    assert float(found["AUROC · Reconstruction error"]) > 0.6  # a one-epoch test model
    assert float(found["AUROC · PCA baseline"]) > 0.6
    assert "AUROC · −ELBO" not in found, "a plain AE has no ELBO"
    assert at.segmented_control(key="an_score").options == ["Reconstruction error", "Error per edge"]
    about = next(m.value for m in at.markdown if m.value.startswith("**Model**"))
    assert "1,000 Fashion-MNIST test images" in about


def test_the_home_page_marks_the_demos_that_run_offline(monkeypatch, tmp_path):
    from core.data import registry as data
    from tests.app_support import PAGE_FILES

    at = ok(app_test())
    marked = [c.value for c in at.caption if "runs offline" in c.value]
    assert len(marked) == len(PAGE_FILES)  # every demo: the test models' data sets are embedded
    folder = tmp_path / "with-fashion"
    shutil.copytree(model_folder(), folder)
    for suffix in (".json", ".safetensors"):
        shutil.copy(SHIPPED_DIR / f"fashion-vae-conv-z16{suffix}", folder)
    app_env(monkeypatch, folder=folder, user=tmp_path / "user")
    monkeypatch.setattr(data, "HELD_OUT_DIR", tmp_path / "no-data")  # a clone without data/
    st.cache_resource.clear()
    try:
        at = ok(app_test())
    finally:
        st.cache_resource.clear()
    assert not [c for c in at.caption if "runs offline" in c.value]
    assert any("need `LATENTLAB_DATA` or the network: fashion-mnist" in c.value for c in at.caption)


# ---------------------------------------------------------------- the Table setup


@pytest.fixture
def with_table_model(monkeypatch, tmp_path):
    """The test models plus the shipped breast-cancer model, as the app's shipped folder."""
    from core.experiments.tabular import SHIPPED_TABLE_MODEL

    app_env(monkeypatch, folder=with_shipped(tmp_path / "shipped", SHIPPED_TABLE_MODEL), user=tmp_path / "user")


def test_the_table_setup_shows_the_models_auroc_beside_each_baseline_on_first_visit(with_table_model):
    at = ok(app_test("anomalies", query={"model": "mnist-vae-mlp-z12", "setup": "table"}))
    found = metrics(at)
    titles = {"Autoencoder": "", "Isolation Forest": "Isolation Forest", "One-class SVM": "One-class SVM",
              "LOF": "Local outlier factor", "PCA": "PCA reconstruction"}  # fmt: skip
    values = {t: float(found[t]) for t in titles}
    assert all(0.85 < v <= 1.0 for v in values.values()), values  # malignant rows stand out for every detector
    best = max(list(titles)[1:], key=values.get)
    verdict = next(c.value for c in at.caption if c.value.startswith("The best baseline here"))
    assert f"**{titles[best]}** (AUROC {values[best]:.3f})" in verdict
    assert at.query_params["setup"] == "table"
    assert "benign rows only" in next(m.value for m in at.markdown if m.value.startswith("**Data**"))
    assert {"Precision", "Recall", "False alarms", "F1"} <= set(found)
    top = at.dataframe[0].value
    assert len(top) == 12 and top["score"].is_monotonic_decreasing and top["feature 1"].str.contains("→").all()
    ok(at.segmented_control(key="an_table_score").set_value("elbo").run())
    assert "the autoencoder's −ELBO" in next(c.value for c in at.caption if c.value.startswith("The best baseline"))


def table_csv(n: int = 300, label_values: int = 2) -> bytes:
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 5))
    odd = np.arange(n) % 10 == 0
    x[odd] += 4.0
    frame = pd.DataFrame(x, columns=[f"v{i}" for i in range(5)])
    frame["fraud"] = odd.astype(int) if label_values == 2 else np.arange(n) % label_values
    return frame.to_csv(index=False).encode()


def test_your_table_trains_in_the_background_and_a_bad_label_gets_a_message(with_table_model, monkeypatch):
    from core.experiments import tabular

    monkeypatch.setattr(tabular, "TARGET_STEPS", 300)  # seconds, not a minute
    at = ok(app_test("anomalies", query={"model": "mnist-vae-mlp-z12", "setup": "table"}))
    ok(at.segmented_control(key="an_table_source").set_value("upload").run())
    ok(at.file_uploader(key="an_table_file").upload("tx.csv", table_csv(), "text/csv").run())
    label = next(s for s in at.selectbox if s.label == "Label column")
    assert label.value == "fraud"  # guessed from its name
    job = at.session_state["an_table_job"]
    assert job.wait(180), "the table's model did not finish"
    ok(at.run())
    found = metrics(at)
    assert float(found["Autoencoder"]) > 0.9 and "Isolation Forest" in found
    ok(label.set_value("(none: scores only)").run())  # no labels: a new run, then scores only
    assert at.session_state["an_table_job"].wait(180)
    ok(at.run())
    assert "Autoencoder" not in metrics(at) and "Isolation Forest" not in metrics(at)
    assert any("rows (" in m.value and "score above the threshold" in m.value for m in at.markdown)
    at.file_uploader(key="an_table_file").clear().upload("kinds.csv", table_csv(label_values=30), "text/csv").run()
    assert not at.exception
    assert "has 30 distinct values; it needs two" in " ".join(e.value for e in at.error)
