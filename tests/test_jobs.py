"""core.app.jobs: background jobs, saving under a free name, training and sweep runs; and the small
helpers of core.experiments.sweep / core.app.catalog / core.training.train that the β sweep and Train pages use."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from core.app import catalog, jobs
from core.experiments.sweep import beta_images, parse_betas
from core.formats.checkpoints import CheckpointError, list_checkpoints, load_checkpoint
from core.models.config import ConfigError, ModelConfig
from core.training.train import Callback, TrainConfig, fit
from tests.conftest import tiny_dataset

MLP = ModelConfig(kind="vae", arch="mlp", image_shape=(1, 28, 28), latent_dim=3, hidden=(16,))


def request(folder: Path, name: str = "run", epochs: int = 2, data=None, **train) -> jobs.TrainRequest:
    data = data or tiny_dataset(64)
    return jobs.TrainRequest(
        model_config=MLP,
        train_config=TrainConfig(epochs=epochs, batch_size=16, device="cpu", **train),
        dataset=data,
        name=name,
        folder=folder,
        preview_x=data.test_x[:4],
    )


# ---------------------------------------------------------------- Job


def test_a_job_returns_its_result_and_copies_its_progress():
    def work(job):
        job.update(lambda p: p.append(1))
        return 42

    job = jobs.Job(work, [], name="t").start()
    assert job.wait(10)
    assert (job.status, job.result, job.error) == (jobs.DONE, 42, None)
    snap = job.snapshot()
    snap.append(2)
    assert job.progress == [1], "a snapshot is a copy"
    assert job.elapsed >= 0


def test_a_failing_job_keeps_its_error_and_a_cancelled_one_says_so():
    def boom(job):
        raise ConfigError("bad setting")

    failed = jobs.Job(boom, None).start()
    assert failed.wait(10) and failed.status == jobs.FAILED
    assert jobs.describe_error(failed.error) == "bad setting"
    assert jobs.describe_error(RuntimeError("x")) == "RuntimeError: x"

    started = threading.Event()

    def loop(job):
        started.set()
        while not job.cancelled:
            time.sleep(0.01)
        return "stopped"

    job = jobs.Job(loop, None).start()
    assert started.wait(10)
    job.cancel()
    assert job.wait(10) and job.status == jobs.CANCELLED and job.result == "stopped"


def test_jobs_beyond_the_free_slots_wait_and_can_be_cancelled_while_queued(monkeypatch):
    monkeypatch.setattr(jobs, "_SLOTS", threading.BoundedSemaphore(1))
    release = threading.Event()
    first = jobs.Job(lambda job: release.wait(10), None).start()
    time.sleep(0.1)
    second = jobs.Job(lambda job: "ran", None).start()
    time.sleep(0.3)
    assert second.status == jobs.QUEUED
    second.cancel()
    assert second.wait(5) and second.status == jobs.CANCELLED and second.result is None
    release.set()
    assert first.wait(10) and first.status == jobs.DONE


# ---------------------------------------------------------------- saving


def test_two_runs_saving_the_same_name_at_once_get_different_names(tmp_path):
    data = tiny_dataset(64)
    torch.manual_seed(0)
    from core.models.networks import build_model
    from core.training.runs import SavedModel, save_run
    from core.training.train import History

    models = [build_model(MLP) for _ in range(4)]
    barrier = threading.Barrier(len(models))
    saved: list[SavedModel] = []

    def save(model):
        barrier.wait()
        saved.append(
            save_run(model, tmp_path, "same", dataset=data, train=TrainConfig(), history=History(), unique=True)
        )

    threads = [threading.Thread(target=save, args=(m,)) for m in models]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    names = sorted(s.name for s in saved)
    assert names == ["same", "same-2", "same-3", "same-4"]
    assert sum(s.renamed for s in saved) == 3
    assert [i.name for i in list_checkpoints(tmp_path) if i.ok] == names
    assert not list(tmp_path.glob(".*lock")), "no reservation is left behind"
    meta = load_checkpoint(tmp_path / "same-2").meta
    assert meta["dataset"]["name"] == "tiny" and "test_loss" in meta["card"]


def test_a_bad_name_is_refused(tmp_path):
    with pytest.raises(CheckpointError, match="invalid checkpoint name"):
        jobs.check_request(request(tmp_path, name="../escape"))
    with pytest.raises(ConfigError, match="epochs"):
        jobs.check_request(request(tmp_path, epochs=10**6))


# ---------------------------------------------------------------- training in the background


def test_a_training_run_reports_progress_and_saves_itself(tmp_path):
    job = jobs.start_training(request(tmp_path, name="bg"))
    assert job.wait(60), "2 epochs of a tiny model"
    out = job.result
    assert job.status == jobs.DONE and out.status == "finished"
    assert out.saved.name == "bg" and out.saved.path.exists()
    p = job.snapshot()
    assert p.step == p.total_steps == 4 and p.fraction == 1.0
    assert len(p.epochs) == 2 and p.preview.shape == (4, 1, 28, 28)
    assert len(p.curve_x) == 4 and p.curve_x[-1] == 2.0, "x in epochs"
    assert all(np.isfinite(p.curve_recon)) and all(k >= 0 for k in p.curve_kl)
    again = jobs.start_training(request(tmp_path, name="bg"))
    assert again.wait(60) and again.result.saved.name == "bg-2"


def test_a_cancelled_run_is_not_saved_until_asked(tmp_path):
    job = jobs.start_training(request(tmp_path, name="stop", epochs=500))
    time.sleep(0.5)
    job.cancel()
    assert job.wait(30)
    out = job.result
    assert job.status == jobs.CANCELLED and out.status == "cancelled" and out.saved is None
    assert not list_checkpoints(tmp_path)
    if out.can_save:
        saved = jobs.save_outcome(out, request(tmp_path, name="stop", epochs=500))
        meta = load_checkpoint(saved.path).meta
        assert meta["train"]["epochs"] == len(out.history.epochs)


def test_a_diverging_run_keeps_the_last_good_weights_and_can_save_them(tmp_path, monkeypatch):
    class Poison(Callback):
        def __init__(self, model):
            self.model = model

        def on_step_end(self, step, total, loss):
            if step == 3:  # 2 steps per epoch: during epoch 2
                with torch.no_grad():
                    self.model.to_mu.weight[0, 0] = float("nan")

    def poisoned_fit(model, data, config, callbacks=None):
        return fit(model, data, config, [*(callbacks or []), Poison(model)])

    monkeypatch.setattr(jobs, "fit", poisoned_fit)
    req = request(tmp_path, name="nan", epochs=3)
    job = jobs.start_training(req)
    assert job.wait(60)
    out = job.result
    assert out.status == "diverged" and "restored the weights of epoch 1" in out.message
    assert out.saved is None and out.can_save
    assert all(torch.isfinite(v).all() for v in out.model.state_dict().values())
    saved = jobs.save_outcome(out, req)
    assert saved.name == "nan" and load_checkpoint(saved.path).meta["train"]["epochs"] == 1


def test_the_live_curve_keeps_a_bounded_number_of_points():
    p = jobs.TrainProgress(total_steps=10_000, steps_per_epoch=100)
    for step in range(1, 10_001):
        p.add_step(step, 1.0, 0.5)
    assert len(p.curve_x) <= jobs.MAX_CURVE_POINTS
    assert p.curve_x[-1] == 100.0 and p.curve_x == sorted(p.curve_x)


# ---------------------------------------------------------------- sweeps


def test_a_background_sweep_tabulates_every_beta(mnist5k):
    small = tiny_dataset(96)
    job = jobs.start_sweep([0.5, 4.0], MLP, small, TrainConfig(epochs=1, batch_size=16, device="cpu"))
    assert job.wait(60) and job.status == jobs.DONE
    assert [r.beta for r in job.result.rows] == [0.5, 4.0]
    p = job.snapshot()
    assert p.finished == p.total == 2 and p.fraction == 1.0


def test_bad_sweeps_are_refused_before_a_thread_starts():
    small = tiny_dataset(32)
    with pytest.raises(ConfigError, match="needs 0 ≤ β ≤ 1"):
        jobs.start_sweep([0.5, 2.0], MLP, small, TrainConfig(epochs=1, loss_form="convex"))
    with pytest.raises(ConfigError, match="needs a VAE"):
        jobs.start_sweep([1.0], ModelConfig(kind="ae", arch="mlp", latent_dim=2, hidden=(8,)), small, TrainConfig())
    with pytest.raises(ConfigError, match="images are"):
        jobs.start_sweep([1.0], MLP, tiny_dataset(32, shape=(1, 25, 25)), TrainConfig(epochs=1))


def test_parse_betas():
    assert parse_betas("4, 0.1; 1 2") == [0.1, 1.0, 2.0, 4.0]
    for text, msg in (
        ("", "at least one"),
        ("1, x", "not a number"),
        ("-1", "≥ 0"),
        ("1, 1", "repeats"),
        ("nan", "finite"),
        (" ".join(str(i) for i in range(13)), "at most 12"),
    ):
        with pytest.raises(ConfigError, match=msg):
            parse_betas(text)


def test_beta_images_decode_the_same_codes_for_every_beta():
    torch.manual_seed(0)
    from core.models.networks import build_model

    models = {2.0: build_model(MLP), 0.5: build_model(MLP)}
    x = tiny_dataset(8).test_x
    images = beta_images(models, x, n_samples=5)
    assert [im.beta for im in images] == [0.5, 2.0]
    assert images[0].samples.shape == (5, 1, 28, 28) and images[0].recons.shape == x.shape


def test_beta_families_group_vaes_that_differ_only_in_beta(tmp_path):
    def entry(name, beta, latent=10, kind="vae", source="shipped"):
        meta = {
            "model": {"kind": kind, "arch": "mlp", "latent_dim": latent, "image_shape": [1, 28, 28]},
            "dataset": {"name": "mnist"},
            "train": {"beta": beta, "loss_form": "standard"},
        }
        return catalog.ModelEntry(key=name, name=name, source=source, path=tmp_path / name, meta=meta)

    entries = [
        entry("b4", 4),
        entry("b1", 1),
        entry("b0.5", 0.5),
        entry("z2", 1, latent=2),
        entry("ae", 1, kind="ae"),
        entry("mine-b1", 1, source="user"),
        entry("z2-b3", 3, latent=2, source="user"),
    ]
    families = catalog.beta_families(entries)
    assert [[e.key for e in f] for f in families] == [["b0.5", "b1", "b4"], ["z2", "z2-b3"]]


def test_fit_reports_batch_terms_only_to_callbacks_that_want_them():
    class Terms(Callback):
        def __init__(self):
            self.seen = []

        def on_step_terms(self, step, recon, kl):
            self.seen.append((step, recon, kl))

    cb = Terms()
    torch.manual_seed(0)
    from core.models.networks import build_model

    fit(build_model(MLP), tiny_dataset(64), TrainConfig(epochs=1, batch_size=16), [cb, Callback()])
    assert [s for s, _, _ in cb.seen] == [1, 2]
    assert all(r > 0 and k >= 0 for _, r, k in cb.seen)


# ---------------------------------------------------------------- a held-out-digit anomaly model


def test_a_held_out_job_trains_scores_and_reports_its_steps(mnist5k):
    from core.experiments.anomaly import held_out_split

    split = held_out_split(mnist5k, 5)
    job = jobs.start_held_out(split, pca_components=8, epochs=1)
    assert job.wait(120), "one epoch of the small MLP"
    assert job.status == jobs.DONE, jobs.describe_error(job.error)
    p = job.snapshot()
    assert p.step == p.total_steps > 0 and p.fraction == 1.0 and np.isfinite(p.loss)
    report = job.result.report
    assert set(report.auroc) == {"recon-mse", "elbo", "pca"}
    assert all(0.0 <= a <= 1.0 for a in report.auroc.values())
    assert report.scores["recon-mse"].shape == split.is_anomaly.shape
    assert not job.result.model.training


def test_a_cancelled_held_out_job_stops_after_a_step_and_has_no_result(mnist5k):
    from core.experiments.anomaly import held_out_split

    job = jobs.start_held_out(held_out_split(mnist5k, 3), epochs=200)
    deadline = time.time() + 60
    while job.snapshot().step < 1 and time.time() < deadline:
        time.sleep(0.02)
    job.cancel()
    assert job.wait(30)
    p = job.snapshot()
    assert job.status == jobs.CANCELLED and job.result is None
    assert 1 <= p.step < p.total_steps


def test_shared_jobs_join_a_run_and_replace_only_a_failed_or_cancelled_one():
    shared = jobs.SharedJobs()
    release = threading.Event()
    started = []

    def begin():
        started.append(jobs.Job(lambda job: release.wait(10) and "model", None).start())
        return started[-1]

    first = shared.start(5, begin)
    assert shared.start(5, begin) is first and len(started) == 1, "a run in flight is joined"
    assert shared.get(5) is first and shared.get(3) is None
    release.set()
    assert first.wait(10) and first.result == "model"
    assert shared.start(5, begin) is first, "a finished run is reused"

    def fail(job):
        raise RuntimeError("boom")

    broken = shared.start(3, lambda: jobs.Job(fail, None).start())
    assert broken.wait(10) and broken.status == jobs.FAILED
    assert shared.start(3, begin) is not broken and len(started) == 2
