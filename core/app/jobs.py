"""Background jobs for the app: a training run or a β sweep in a thread of the server process.

A :class:`Job` runs one function in a daemon thread and holds what a page needs to show it:
a progress snapshot (copied under a lock, so a page never sees a half-written update), a
cancel flag the work polls after every step, and the result or the error at the end. The
page keeps the job in its session state and polls it, so the run survives page reruns and
never blocks the server's other sessions. Jobs of every session share a few slots (one per
core): more runs at once would only slow each other down, so the rest wait, cancellable.

A finished training run saves itself as a new user checkpoint through
:func:`core.training.runs.save_run`, under a name no other run has taken, so two people training at
once never overwrite each other. Nothing here imports Streamlit.
"""

from __future__ import annotations

import copy
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Generic, TypeVar

import numpy as np
import torch

from core.data.registry import Dataset
from core.data.tables import TableSplit
from core.experiments.anomaly import AnomalySplit, DetectionReport, detect, fit_on_split
from core.experiments.sweep import JobResult, SweepCallback, SweepResult, available_cores, check_sweep, run_sweep
from core.experiments.tabular import TableReport, fit_table_model, score_table
from core.formats.checkpoints import CheckpointError, check_name
from core.lenses.latent import reconstruct
from core.models.config import ConfigError, ModelConfig
from core.models.networks import AutoEncoder, build_model
from core.training.runs import SavedModel, save_run
from core.training.train import Callback, EpochMetrics, History, TrainConfig, TrainingDiverged, fit

T = TypeVar("T")
P = TypeVar("P")

QUEUED, RUNNING, DONE, CANCELLED, FAILED = "queued", "running", "done", "cancelled", "failed"
MAX_CURVE_POINTS = 2000  # step points kept for a live curve; longer runs keep every k-th step

# One slot per core for the whole server process (every session's jobs share them).
_SLOTS = threading.BoundedSemaphore(max(1, available_cores()))


class Job(Generic[P, T]):
    """``work(job)`` in a daemon thread. ``work`` updates ``job.progress`` inside
    ``with job.lock:`` (or through :meth:`update`) and polls :attr:`cancelled`; its return
    value becomes :attr:`result`, an exception :attr:`error`.

    status: "queued" (waiting for a free slot), "running", then "done", "cancelled" (the
    work saw the cancel flag and returned) or "failed" (it raised).
    """

    def __init__(self, work: Callable[[Job[P, T]], T], progress: P, name: str = "job"):
        self.name = name
        self.lock = threading.Lock()
        self.progress = progress
        self.status = QUEUED
        self.result: T | None = None
        self.error: BaseException | None = None
        self.created = time.time()
        self.started: float | None = None  # perf_counter when the work began
        self.finished: float | None = None
        self._work = work
        self._cancel = threading.Event()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"latentlab-{name}", daemon=True)

    def start(self) -> Job[P, T]:
        self._thread.start()
        return self

    def _run(self) -> None:
        while not _SLOTS.acquire(timeout=0.1):
            if self._cancel.is_set():
                self._finish(CANCELLED)
                return
        try:
            self.started = time.perf_counter()
            self.status = RUNNING
            self.result = self._work(self)
            status = CANCELLED if self._cancel.is_set() else DONE
        except BaseException as exc:  # reported to the page, which shows the message
            self.error = exc
            status = FAILED
        finally:
            _SLOTS.release()
        self._finish(status)

    def _finish(self, status: str) -> None:
        self.finished = time.perf_counter()
        self.status = status
        self._done.set()

    # -- for the work function
    @property
    def cancelled(self) -> bool:
        """True once :meth:`cancel` was called; the work checks it after every step."""
        return self._cancel.is_set()

    def update(self, change: Callable[[P], None]) -> None:
        """Apply ``change(progress)`` under the lock."""
        with self.lock:
            change(self.progress)

    # -- for the page
    def cancel(self) -> None:
        self._cancel.set()

    @property
    def done(self) -> bool:
        return self._done.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the job ends (True) or ``timeout`` seconds pass (False)."""
        return self._done.wait(timeout)

    def snapshot(self) -> P:
        """A deep copy of the progress, taken under the lock."""
        with self.lock:
            return copy.deepcopy(self.progress)

    @property
    def elapsed(self) -> float:
        """Seconds the work has run (0 while queued)."""
        if self.started is None:
            return 0.0
        return (self.finished or time.perf_counter()) - self.started


# ---------------------------------------------------------------- a training run


@dataclass
class TrainProgress:
    """What the Train page draws while a run goes on.

    step / total_steps: optimizer steps so far and in all. curve_x: positions in epochs
    (step / steps per epoch) of the kept step points; curve_recon, curve_kl: the batch means
    in nats per image at those steps. epochs: the finished epochs' metrics. preview: the
    reconstructions (k, C, H, W) of the preview images after the last finished epoch.
    """

    step: int = 0
    total_steps: int = 0
    steps_per_epoch: int = 1
    curve_x: list[float] = field(default_factory=list)
    curve_recon: list[float] = field(default_factory=list)
    curve_kl: list[float] = field(default_factory=list)
    stride: int = 1  # a step point is kept every ``stride`` steps
    epochs: list[EpochMetrics] = field(default_factory=list)
    preview: np.ndarray | None = None

    @property
    def fraction(self) -> float:
        return self.step / self.total_steps if self.total_steps else 0.0

    def add_step(self, step: int, recon: float, kl: float) -> None:
        if step % self.stride:
            return
        self.curve_x.append(step / self.steps_per_epoch)
        self.curve_recon.append(recon)
        self.curve_kl.append(kl)
        if len(self.curve_x) > MAX_CURVE_POINTS:  # halve the resolution, keep the whole run
            self.stride *= 2
            keep = [i for i, x in enumerate(self.curve_x) if round(x * self.steps_per_epoch) % self.stride == 0]
            self.curve_x = [self.curve_x[i] for i in keep]
            self.curve_recon = [self.curve_recon[i] for i in keep]
            self.curve_kl = [self.curve_kl[i] for i in keep]


@dataclass
class TrainRequest:
    """A training run to start: what to build, on what, how, and where to save it.

    preview_x: (k, C, H, W) test images whose reconstructions refresh each epoch; preview_y:
    their labels (k,) for a conditional VAE, else None.
    """

    model_config: ModelConfig
    train_config: TrainConfig
    dataset: Dataset
    name: str
    folder: Path
    preview_x: np.ndarray
    preview_y: np.ndarray | None = None


@dataclass
class TrainOutcome:
    """How a run ended. status: "finished" (saved, unless saving failed: then ``message`` says
    why), "cancelled" or "diverged" (not saved). ``model`` holds the weights of the last
    finished epoch. message: why, in words."""

    status: str
    model: AutoEncoder
    history: History
    message: str = ""
    saved: SavedModel | None = None

    @property
    def can_save(self) -> bool:
        """An unsaved run with at least one finished epoch."""
        return self.saved is None and bool(self.history.epochs)


class _TrainReporter(Callback):
    def __init__(self, job: Job[TrainProgress, TrainOutcome], request: TrainRequest):
        self.job, self.request = job, request

    def on_train_begin(self, total_steps: int, config: TrainConfig) -> None:
        def begin(p: TrainProgress) -> None:
            p.total_steps = total_steps
            p.steps_per_epoch = max(1, total_steps // config.epochs)
            p.stride = max(1, math.ceil(total_steps / MAX_CURVE_POINTS))

        self.job.update(begin)

    def on_step_end(self, step: int, total_steps: int, loss: float) -> None:
        self.job.progress.step = step  # one int: atomic, no lock needed

    def on_step_terms(self, step: int, recon: float, kl: float) -> None:
        self.job.update(lambda p: p.add_step(step, recon, kl))

    def on_epoch_end(self, metrics: EpochMetrics, model: AutoEncoder) -> None:
        r = self.request
        preview = reconstruct(model, r.preview_x, r.preview_y if model.conditional else None)

        def add(p: TrainProgress) -> None:
            p.epochs.append(metrics)
            p.preview = preview

        self.job.update(add)

    def should_stop(self) -> bool:
        return self.job.cancelled


def check_request(request: TrainRequest) -> None:
    """Every setting in range and the data fit for the model; ConfigError or CheckpointError
    with a message for people otherwise. Called before the thread starts."""
    request.train_config.validate()
    check_name(request.name)
    request.model_config.check_data(request.dataset)


def _train(job: Job[TrainProgress, TrainOutcome], request: TrainRequest) -> TrainOutcome:
    config = request.train_config
    torch.manual_seed(config.seed)  # as core.training.train.train_model: same seed, same numbers
    model = build_model(request.model_config)
    try:
        history = fit(model, request.dataset, config, [_TrainReporter(job, request)])
    except TrainingDiverged as exc:
        model.cpu().eval()
        return TrainOutcome("diverged", model, exc.history, str(exc))
    model.cpu().eval()
    if history.cancelled:
        done = len(history.epochs)
        return TrainOutcome("cancelled", model, history, f"cancelled after {done} finished epoch(s) of {config.epochs}")
    try:
        saved = save_run(
            model, request.folder, request.name, dataset=request.dataset, train=config, history=history, unique=True
        )
    except CheckpointError as exc:
        # The weights stay in the outcome: the page says why and offers to save them again
        # (after the folder is fixed) instead of losing the run.
        return TrainOutcome("finished", model, history, f"it could not be saved: {exc}")
    return TrainOutcome("finished", model, history, saved=saved)


def start_training(request: TrainRequest) -> Job[TrainProgress, TrainOutcome]:
    """Check the request (raises ConfigError / CheckpointError), then train it in the
    background; a finished run saves itself as a new checkpoint in ``request.folder``."""
    check_request(request)
    return Job(lambda job: _train(job, request), TrainProgress(), name="train").start()


def save_outcome(outcome: TrainOutcome, request: TrainRequest) -> SavedModel:
    """Save a cancelled or diverged run's weights (the last finished epoch's) on request."""
    if not outcome.history.epochs:
        raise CheckpointError("no epoch finished, so there are no trained weights to save")
    outcome.saved = save_run(
        outcome.model,
        request.folder,
        request.name,
        dataset=request.dataset,
        train=replace(request.train_config, epochs=len(outcome.history.epochs)),
        history=outcome.history,
        unique=True,
    )
    return outcome.saved


# ---------------------------------------------------------------- a β sweep


@dataclass
class SweepProgress:
    """A sweep in progress: ``fraction`` of all steps done, the model being trained
    (``current`` of ``total``, with its β) and the models finished so far."""

    fraction: float = 0.0
    current: int = 0
    total: int = 0
    beta: float | None = None
    finished: int = 0


class _SweepReporter(SweepCallback):
    def __init__(self, job: Job[SweepProgress, SweepResult], betas: list[float]):
        self.job, self.betas = job, betas
        self.total_steps = 1

    def on_job_start(self, index: int, total_steps: int) -> None:
        self.total_steps = max(1, total_steps)

        def start(p: SweepProgress) -> None:
            p.current, p.beta = index + 1, self.betas[index]

        self.job.update(start)

    def on_step(self, index: int, step: int, total_steps: int, loss: float) -> None:
        n = len(self.betas)
        self.job.progress.fraction = min(1.0, (index + step / max(1, total_steps)) / n)

    def on_job_end(self, index: int, result: JobResult) -> None:
        def end(p: SweepProgress) -> None:
            p.finished += 1
            p.fraction = max(p.fraction, (index + 1) / len(self.betas))

        self.job.update(end)

    def should_stop(self) -> bool:
        return self.job.cancelled


def start_sweep(
    betas: list[float], model_config: ModelConfig, dataset: Dataset, train_config: TrainConfig
) -> Job[SweepProgress, SweepResult]:
    """Check the sweep (raises ConfigError), then train one VAE per β in the background, one
    after another in this process (for small models this beats starting worker processes,
    which each import torch), and tabulate them on ``dataset.test_x``."""
    betas = [float(b) for b in betas]
    check_sweep(betas, model_config, train_config, dataset)

    def work(job: Job[SweepProgress, SweepResult]) -> SweepResult:
        return run_sweep(betas, model_config, dataset, train_config, workers=1, callback=_SweepReporter(job, betas))

    return Job(work, SweepProgress(total=len(betas)), name="sweep").start()


def describe_error(exc: BaseException | None) -> str:
    """A failed job's error as one line for people."""
    if exc is None:
        return "unknown error"
    text: Any = str(exc) or type(exc).__name__
    return text if isinstance(exc, ConfigError | CheckpointError) else f"{type(exc).__name__}: {text}"


# ---------------------------------------------------------------- a held-out-digit anomaly model


@dataclass
class HeldOutProgress:
    """Training of an anomaly model so far: optimizer steps done and in all, the last batch's
    loss (nats per example; NaN before the first step), and what runs after training ("" while
    training; a baseline's title while a table's baselines are tuned)."""

    step: int = 0
    total_steps: int = 0
    loss: float = float("nan")
    phase: str = ""

    @property
    def fraction(self) -> float:
        return self.step / self.total_steps if self.total_steps else 0.0


@dataclass
class HeldOutResult:
    """A model trained on a split's normal images and its scores on the split's test images.

    saved: the checkpoint it was saved as (None when not asked to, or when saving failed:
    ``message`` then says why); seconds: how long training took.
    """

    model: AutoEncoder
    report: DetectionReport
    saved: Path | None = None
    message: str = ""
    seconds: float = 0.0


class _StepReporter(Callback):
    """Copies each step into the job's progress; stops training when the job is cancelled."""

    def __init__(self, job: Job[HeldOutProgress, Any]):
        self.job = job

    def on_step_end(self, step: int, total_steps: int, loss: float) -> None:
        def record(p: HeldOutProgress) -> None:
            p.step, p.total_steps, p.loss = step, total_steps, loss

        self.job.update(record)

    def should_stop(self) -> bool:
        return self.job.cancelled


def start_held_out(
    split: AnomalySplit,
    kind: str = "vae",
    pca_components: int | None = 32,
    save_as: Path | None = None,
    digit: int | None = None,
    kinds: tuple[str, ...] = ("recon-mse", "elbo"),
    **train,
) -> Job[HeldOutProgress, HeldOutResult | None]:
    """Train :func:`core.experiments.anomaly.fit_on_split` on ``split`` in the background, then score the
    split with :func:`core.experiments.anomaly.detect` (the scores ``kinds``, the PCA baseline with
    ``pca_components``).

    save_as: a checkpoint path (folder/name, no suffix) to save the model at, with ``digit``
    (the held-out digit) in its JSON, so it outlives the server (:func:`core.experiments.anomaly.load_held_out`
    reads it back); an existing one is replaced. train: overrides of
    :data:`core.experiments.anomaly.HELD_OUT_TRAIN` (tests shorten the run). A cancelled job stops after the
    current step; its result is None.
    """

    def work(job: Job[HeldOutProgress, HeldOutResult | None]) -> HeldOutResult | None:
        model, history, config = fit_on_split(split, kind, [_StepReporter(job)], **train)
        if job.cancelled:
            return None
        result = HeldOutResult(model, detect(model, split, kinds, pca_components=pca_components), seconds=job.elapsed)
        if save_as is not None:
            extra = {"held_out": digit, "title": f"{kind.upper()} without the {digit}s (anomaly detection)"}
            try:
                saved = save_run(
                    model, save_as.parent, save_as.name, dataset=split.train_dataset(), train=config,
                    history=history, extra=extra,
                )  # fmt: skip
                result.saved = saved.path
            except CheckpointError as exc:  # the model still serves this process
                result.message = f"it could not be saved, so it lasts until the server restarts: {exc}"
        return result

    return Job(work, HeldOutProgress(), name="held-out").start()


@dataclass
class TableResult:
    """A model trained on a table's normal rows and the report of it and the baselines."""

    model: AutoEncoder
    report: TableReport
    seconds: float = 0.0


def start_table(split: TableSplit, kind: str = "vae", **train) -> Job[HeldOutProgress, TableResult | None]:
    """Train :func:`core.experiments.tabular.fit_table_model` on a table's split in the background,
    then score its test rows and tune each baseline (:func:`core.experiments.tabular.score_table`),
    saying which in the progress's ``phase``. train: overrides of the training config (tests
    shorten the run). A cancelled job stops after the current step or baseline; its result is None."""

    def work(job: Job[HeldOutProgress, TableResult | None]) -> TableResult | None:
        model, _, _ = fit_table_model(split, kind, [_StepReporter(job)], **train)
        if job.cancelled:
            return None

        def phase(title: str) -> None:
            if job.cancelled:
                raise _Cancelled
            job.update(lambda p: setattr(p, "phase", title))

        try:
            report = score_table(model, split, on_baseline=phase)
        except _Cancelled:
            return None
        return TableResult(model, report, seconds=job.elapsed)

    return Job(work, HeldOutProgress(), name="table").start()


class _Cancelled(Exception):
    """Raised inside a job's work to stop between two of its parts."""


@dataclass
class FractionProgress:
    """A computation's progress: how far (0 to 1) and what it is doing, in words."""

    fraction: float = 0.0
    text: str = "waiting for a free core"


def start_computation(compute: Callable[[Callable[[float, str], bool]], T], name: str) -> Job[FractionProgress, T]:
    """Run ``compute(report)`` as a job; ``report(fraction, text)`` updates the progress and returns
    True once the job is cancelled (the computation then stops by raising or returning)."""

    def work(job: Job[FractionProgress, T]) -> T:
        def report(fraction: float, text: str) -> bool:
            job.update(lambda p: (setattr(p, "fraction", fraction), setattr(p, "text", text)))
            return job.cancelled

        return compute(report)

    return Job(work, FractionProgress(), name=name).start()


class SharedJobs(Generic[P, T]):
    """One job per key for the whole server process, so that sessions asking for the same
    result share one run: a job in flight is joined, a finished one is reused (it keeps its
    result). Only a failed or cancelled job is replaced, by the next :meth:`start`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._jobs: dict[object, Job[P, T]] = {}

    def get(self, key: object) -> Job[P, T] | None:
        """The key's latest job (queued, running or ended), or None."""
        with self._lock:
            return self._jobs.get(key)

    def start(self, key: object, begin: Callable[[], Job[P, T]]) -> Job[P, T]:
        """The key's job when one is queued, running or done; else ``begin()``'s new job."""
        with self._lock:
            job = self._jobs.get(key)
            if job is None or job.status in (FAILED, CANCELLED):
                job = self._jobs[key] = begin()
            return job
