"""β sweeps: train one VAE per β and tabulate what β does to the code.

Each row holds β, the mean posterior variance and mean |μ| (both over examples and
dimensions), the KL per dimension and its total, the active units (Burda et al. 2016:
Cov_x(E_q[z_u]) > 0.01), the reconstruction error and the test loss. The table shows the
known shape: as β grows the posterior collapses onto the prior in more dimensions, so the
mean variance goes to 1, mean |μ| to 0, and the active units fall (Higgins et al. 2017;
Burgess et al. 2018).

Training K models runs in K worker processes where the machine has cores (each worker with
``torch.set_num_threads`` of its share, since a small MLP does not scale across threads as
well as across processes), sequentially otherwise. Progress and cancelling go through a
:class:`SweepCallback` in the calling process.
"""

from __future__ import annotations

import concurrent.futures as cf
import math
import multiprocessing as mp
import os
import queue as queue_mod
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np
import torch

from core.data.registry import Dataset
from core.lenses.latent import example_rows, reconstruct
from core.models.config import KINDS, ConfigError, ModelConfig
from core.models.evaluate import active_units, encode_dataset, evaluate
from core.models.losses import gaussian_kl_per_dim
from core.models.networks import AutoEncoder, build_model
from core.models.protocol import LatentModel
from core.training.train import Callback, EpochMetrics, History, TrainConfig, TrainingDiverged, train_model

# ---------------------------------------------------------------- the table


@dataclass
class SweepRow:
    """One β's figures on a test set; nats are per example.

    mean_variance: mean of exp(logvar) over examples and dimensions (1 = the prior's).
    mean_abs_mu: mean |μ| over examples and dimensions (0 = the prior's mean).
    kl_total: mean KL(q(z|x) || p(z)) in nats; kl_per_dim: its split over the z dimensions.
    active_units: dimensions with Cov_x(E_q[z_u]) > 0.01, out of ``latent_dim``.
    recon: reconstruction negative log-likelihood in nats (one-sample ELBO term).
    mse: mean squared error per pixel of the reconstruction through μ (images in [0, 1]).
    test_loss: the negative ELBO (recon + KL, β = 1) in nats, comparable across β.
    seconds, epochs: training time and length when the row comes from a sweep.
    """

    beta: float
    loss_form: str
    latent_dim: int
    mean_variance: float
    mean_abs_mu: float
    kl_total: float
    kl_per_dim: list[float]
    active_units: int
    recon: float
    mse: float
    test_loss: float
    n: int
    seconds: float | None = None
    epochs: int | None = None

    def to_dict(self) -> dict:
        return asdict(self)


@torch.no_grad()
def sweep_row(
    model: LatentModel,
    x: np.ndarray,
    y: np.ndarray | None = None,
    *,
    beta: float,
    loss_form: str = "standard",
    seed: int = 0,
) -> SweepRow:
    """The table row of a trained VAE on images x (N, C, H, W) (usually the test split)."""
    if not model.is_variational:
        raise ValueError("a β-sweep row needs a VAE (a deterministic AE has no posterior variance or KL)")
    mu, logvar = encode_dataset(model, x, y)  # (N, z) each
    kl_dim = gaussian_kl_per_dim(torch.from_numpy(mu), torch.from_numpy(logvar)).double().mean(0).numpy()
    metrics = evaluate(model, x, y, seed=seed)
    recon_images = reconstruct(model, x, y if model.conditional else None)
    mse = float(np.mean((recon_images.astype(np.float64) - np.asarray(x, np.float64)) ** 2))
    return SweepRow(
        beta=float(beta),
        loss_form=loss_form,
        latent_dim=mu.shape[1],
        mean_variance=float(np.exp(logvar.astype(np.float64)).mean()),
        mean_abs_mu=float(np.abs(mu.astype(np.float64)).mean()),
        kl_total=float(kl_dim.sum()),
        kl_per_dim=[float(v) for v in kl_dim],
        active_units=active_units(mu),
        recon=metrics.recon,
        mse=mse,
        test_loss=metrics.loss,
        n=metrics.n,
    )


def rows_from_models(
    models: Mapping[float, LatentModel] | Iterable[tuple[float, LatentModel]],
    x: np.ndarray,
    y: np.ndarray | None = None,
    loss_form: str = "standard",
    seed: int = 0,
) -> list[SweepRow]:
    """The sweep table for already-trained VAEs (e.g. shipped checkpoints), sorted by β.

    models: {β: model} or (β, model) pairs; x, y: the images (and labels for a conditional
    VAE) to measure on.
    """
    pairs = list(models.items()) if isinstance(models, Mapping) else list(models)
    rows = [sweep_row(m, x, y, beta=b, loss_form=loss_form, seed=seed) for b, m in pairs]
    return sorted(rows, key=lambda r: r.beta)


def format_table(rows: Sequence[SweepRow], talk: bool = False) -> str:
    """The table as fixed-width text (for the benchmark and the command line). Variances and
    |μ| get 4 significant figures, so a row far below 1 (or just under it) does not read 0.000
    (or 1.000); ``talk`` adds the talk's published variance where the row's β and form have one."""
    head = f"{'β':>6} {'mean σ²':>10} {'mean |μ|':>9} {'KL':>8} {'active':>7} {'recon':>8} {'MSE':>7} {'-ELBO':>8}"
    head += f" {'talk σ²':>10}" if talk else ""
    lines = [head, "-" * len(head)]
    for r in rows:
        line = (
            f"{r.beta:>6g} {r.mean_variance:>10.4g} {r.mean_abs_mu:>9.4g} {r.kl_total:>8.4g} "
            f"{r.active_units:>3d}/{r.latent_dim:<3d} {r.recon:>8.2f} {r.mse:>7.4f} {r.test_loss:>8.2f}"
        )
        if talk:
            published = talk_variance(r.beta, r.loss_form)
            line += f" {'—' if published is None else f'{published:g}':>10}"
        lines.append(line)
    return "\n".join(lines)


# ---------------------------------------------------------------- the talk's table

TALK_BETAS = (1.0, 0.5, 0.05, 5e-3, 5e-4, 5e-5, 5e-6, 0.0)
# The seed talk's published column: mean posterior variance of M = (1-β)·MSE + β·KL per β
# (its β = 1 row has no figure: M is the KL alone, whose optimum is the prior, σ² = 1).
TALK_VARIANCE = {0.5: 0.99999905, 0.05: 0.864, 5e-3: 0.555, 5e-4: 0.378, 5e-5: 0.097, 5e-6: 0.0089, 0.0: 4.4e-5}
TALK_FORM = "convex-mse"


def talk_variance(beta: float, loss_form: str) -> float | None:
    """The talk's published mean posterior variance for this β, when the row is trained with
    the talk's objective ((1-β)·MSE + β·KL) and the talk has a figure for β; else None."""
    if loss_form != TALK_FORM:
        return None
    return next((v for b, v in TALK_VARIANCE.items() if math.isclose(b, beta, rel_tol=1e-9, abs_tol=0.0)), None)


# ---------------------------------------------------------------- training many models


@dataclass
class TrainJob:
    """One model to train: the arguments of :func:`core.training.train.train_model` and a tag."""

    model_config: ModelConfig
    dataset: Dataset
    train_config: TrainConfig
    tag: str = ""


@dataclass
class JobResult:
    """What came back from one job. ``model`` is None when training failed (``error``)."""

    index: int
    tag: str
    model: AutoEncoder | None
    history: History | None
    error: str | None = None
    extra: Any = None  # what the job's ``measure`` function returned
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error is None and self.history is not None and not self.history.cancelled


class SweepCallback:
    """Progress and cancel for :func:`train_many` / :func:`run_sweep`, called in the caller's
    process (the UI thread's process). ``index`` is the job's position in the list."""

    def on_job_start(self, index: int, total_steps: int) -> None: ...

    def on_step(self, index: int, step: int, total_steps: int, loss: float) -> None: ...

    def on_epoch_end(self, index: int, metrics: EpochMetrics) -> None: ...

    def on_job_end(self, index: int, result: JobResult) -> None: ...

    def should_stop(self) -> bool:
        """Return True to cancel every job; polled a few times a second."""
        return False


Measure = Callable[[AutoEncoder, Dataset, TrainConfig], Any]
STEP_REPORTS = 50  # progress messages per job: enough for a smooth bar, few enough to be free


class _Relay(Callback):
    """Forwards a training run's events to ``send`` and asks ``stop`` whether to cancel."""

    def __init__(self, index: int, send: Callable[[tuple], None], stop: Callable[[], bool]):
        self.index, self.send, self.stop = index, send, stop
        self.every = 1

    def on_train_begin(self, total_steps: int, config: TrainConfig) -> None:
        self.every = max(1, total_steps // STEP_REPORTS)
        self.send(("start", self.index, total_steps))

    def on_step_end(self, step: int, total_steps: int, loss: float) -> None:
        if step % self.every == 0 or step == total_steps:
            self.send(("step", self.index, step, total_steps, loss))

    def on_epoch_end(self, metrics: EpochMetrics, model: AutoEncoder) -> None:
        self.send(("epoch", self.index, metrics.to_dict()))

    def should_stop(self) -> bool:
        return self.stop()


def _history_from_dict(d: dict) -> History:
    return History(
        epochs=[EpochMetrics(**e) for e in d["epochs"]],
        cancelled=d["cancelled"],
        seconds=d["seconds"],
        warnings=list(d["warnings"]),
    )


def _run_job(index: int, job: TrainJob, measure: Measure | None, send, stop) -> dict:
    """Train one job; returns plain data (numpy weights, dicts) that crosses processes."""
    t0 = time.perf_counter()
    try:
        model, history = train_model(job.model_config, job.dataset, job.train_config, [_Relay(index, send, stop)])
    except (TrainingDiverged, ConfigError) as exc:
        history = getattr(exc, "history", None)
        return {
            "index": index,
            "error": str(exc),
            "history": history.to_dict() if history else None,
            "state": None,
            "extra": None,
            "seconds": time.perf_counter() - t0,
        }
    extra = measure(model, job.dataset, job.train_config) if measure and not history.cancelled else None
    state = {k: v.detach().cpu().numpy() for k, v in model.state_dict().items()}
    return {
        "index": index,
        "error": None,
        "history": history.to_dict(),
        "state": state,
        "extra": extra,
        "seconds": time.perf_counter() - t0,
    }


# Per-worker-process state, set once by the pool's initializer.
_WORKER: dict = {}


def _init_worker(events, cancel, threads: int) -> None:
    torch.set_num_threads(threads)
    _WORKER.update(events=events, cancel=cancel)


def _worker_job(index: int, job: TrainJob, measure: Measure | None) -> dict:
    events, cancel = _WORKER["events"], _WORKER["cancel"]
    return _run_job(index, job, measure, events.put, cancel.is_set)


def available_cores() -> int:
    """CPU cores this process may use (the affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def _dispatch(event: tuple, callback: SweepCallback) -> None:
    kind, index = event[0], event[1]
    if kind == "start":
        callback.on_job_start(index, event[2])
    elif kind == "step":
        callback.on_step(index, *event[2:])
    elif kind == "epoch":
        callback.on_epoch_end(index, EpochMetrics(**event[2]))


def _to_result(raw: dict, job: TrainJob) -> JobResult:
    model = None
    if raw["state"] is not None:
        model = build_model(job.model_config)
        model.load_state_dict({k: torch.from_numpy(v) for k, v in raw["state"].items()})
        model.eval()
    history = _history_from_dict(raw["history"]) if raw["history"] else None
    return JobResult(
        index=raw["index"],
        tag=job.tag,
        model=model,
        history=history,
        error=raw["error"],
        extra=raw["extra"],
        seconds=raw["seconds"],
    )


def train_many(
    jobs: Sequence[TrainJob],
    *,
    workers: int | None = None,
    callback: SweepCallback | None = None,
    measure: Measure | None = None,
) -> list[JobResult]:
    """Train every job; results come back in the jobs' order.

    workers: processes to use (default: one per core, at most one per job). With one
        worker, or one job, everything runs here in this process, with all its threads.
    measure: optional top-level function (model, dataset, train_config) -> picklable value,
        run in the worker right after training (e.g. :func:`sweep_row`), so measuring is
        parallel too; its value lands in ``JobResult.extra``.

    A job that diverges comes back with ``error`` set; the others go on. Cancelling (the
    callback's ``should_stop``) stops running jobs after their current step and skips the
    ones not started; their results have ``history.cancelled`` set, or no history.
    """
    callback = callback or SweepCallback()
    jobs = list(jobs)
    for job in jobs:
        job.train_config.validate()  # fail here, not in a worker
    cores = available_cores()
    workers = max(1, min(workers or cores, len(jobs), cores * 2))
    if workers == 1:
        return _train_here(jobs, callback, measure)
    return _train_in_workers(jobs, workers, max(1, cores // workers), callback, measure)


def _train_here(jobs: list[TrainJob], callback: SweepCallback, measure: Measure | None) -> list[JobResult]:
    """Train the jobs one after another in this process, with all its threads."""
    results = []
    for i, job in enumerate(jobs):
        if callback.should_stop():
            results.append(JobResult(i, job.tag, None, History(cancelled=True), error=None))
            continue
        raw = _run_job(i, job, measure, lambda e: _dispatch(e, callback), callback.should_stop)
        results.append(_to_result(raw, job))
        callback.on_job_end(i, results[-1])
    return results


def _drain(events, callback: SweepCallback, timeout: float) -> None:
    """Deliver the workers' progress events waiting in ``events`` (waiting up to ``timeout`` s for one)."""
    try:
        _dispatch(events.get(timeout=timeout), callback)
        while True:
            _dispatch(events.get_nowait(), callback)
    except queue_mod.Empty:
        pass


def _train_in_workers(
    jobs: list[TrainJob], workers: int, threads: int, callback: SweepCallback, measure: Measure | None
) -> list[JobResult]:
    """Train the jobs in ``workers`` processes of ``threads`` threads each, relaying progress."""
    # "spawn" starts clean interpreters: forking a process whose OpenMP pool is running can
    # hang the child, and spawn behaves the same on Linux, macOS and Windows.
    ctx = mp.get_context("spawn")
    events, cancel = ctx.Queue(), ctx.Event()
    results: list[JobResult | None] = [None] * len(jobs)
    with cf.ProcessPoolExecutor(
        max_workers=workers, mp_context=ctx, initializer=_init_worker, initargs=(events, cancel, threads)
    ) as pool:
        futures = {pool.submit(_worker_job, i, job, measure): i for i, job in enumerate(jobs)}
        pending = set(futures)
        while pending:
            _drain(events, callback, 0.1)
            if not cancel.is_set() and callback.should_stop():
                cancel.set()
                for f in pending:
                    f.cancel()  # those not started yet
            done = {f for f in pending if f.done()}
            pending -= done
            for f in sorted(done, key=futures.get):
                i = futures[f]
                if f.cancelled():
                    results[i] = JobResult(i, jobs[i].tag, None, History(cancelled=True))
                else:
                    results[i] = _to_result(f.result(), jobs[i])
                    _drain(events, callback, 0.0)  # deliver the job's last epoch before its end
                callback.on_job_end(i, results[i])
        _drain(events, callback, 0.0)
    return results  # type: ignore[return-value]


# ---------------------------------------------------------------- the β sweep


@dataclass
class SweepResult:
    """A finished (or cancelled) sweep.

    rows: one per β whose model finished, sorted by β. models: {β: trained model}.
    histories: {β: per-epoch history}. failures: {β: error message} for diverged runs.
    seconds: wall time of the whole sweep; workers: processes used.
    """

    rows: list[SweepRow]
    models: dict[float, AutoEncoder] = field(default_factory=dict)
    histories: dict[float, History] = field(default_factory=dict)
    failures: dict[float, str] = field(default_factory=dict)
    cancelled: bool = False
    seconds: float = 0.0
    workers: int = 1


def _measure_row(model: AutoEncoder, dataset: Dataset, config: TrainConfig) -> SweepRow:
    return sweep_row(
        model, dataset.test_x, dataset.test_y, beta=config.beta, loss_form=config.loss_form, seed=config.seed
    )


def check_sweep(betas: Sequence[float], model_config: ModelConfig, train_config: TrainConfig, dataset: Dataset) -> None:
    """ConfigError unless the sweep can run: a VAE, distinct β values that each make a valid
    training config, and data that fit the model. The app checks this before a thread starts."""
    if not model_config.is_variational:
        raise ConfigError("a β sweep needs a VAE model (kind 'vae' or 'cvae')")
    if not betas or len(set(betas)) != len(betas):
        raise ConfigError(f"give one or more different β values, got {list(betas)}")
    for b in betas:
        replace(train_config, beta=float(b)).validate()
    model_config.check_data(dataset)


def run_sweep(
    betas: Sequence[float],
    model_config: ModelConfig,
    dataset: Dataset,
    train_config: TrainConfig | None = None,
    *,
    workers: int | None = None,
    callback: SweepCallback | None = None,
) -> SweepResult:
    """Train one VAE per β (same architecture, seed and schedule) and tabulate them.

    Rows are measured on ``dataset.test_x``. ``train_config.loss_form`` picks the objective
    ("standard": recon + β·KL, or "convex": (1-β)·recon + β·KL, which needs β ≤ 1).
    """
    betas = [float(b) for b in betas]
    base = train_config or TrainConfig()
    check_sweep(betas, model_config, base, dataset)
    jobs = [TrainJob(model_config, dataset, replace(base, beta=b), tag=f"β={b:g}") for b in betas]
    t0 = time.perf_counter()
    cores = available_cores()
    used = max(1, min(workers or cores, len(jobs), cores * 2))
    results = train_many(jobs, workers=used, callback=callback, measure=_measure_row)
    out = SweepResult(rows=[], seconds=0.0, workers=used)
    for b, r in zip(betas, results, strict=True):
        if r.history is not None:
            out.histories[b] = r.history
        if r.error:
            out.failures[b] = r.error
        elif r.ok and r.model is not None:
            row: SweepRow = r.extra
            row.seconds = r.history.seconds if r.history else None
            row.epochs = len(r.history.epochs) if r.history else None
            out.rows.append(row)
            out.models[b] = r.model
        else:
            out.cancelled = True
    out.rows.sort(key=lambda row: row.beta)
    out.seconds = time.perf_counter() - t0
    return out


# ---------------------------------------------------------------- for the app's sweep page

MAX_SWEEP_MODELS = 12


def parse_betas(text: str, max_count: int = MAX_SWEEP_MODELS) -> list[float]:
    """``"0.1, 0.5 1; 2"`` -> [0.1, 0.5, 1.0, 2.0], sorted; ConfigError says what is wrong
    (not a number, negative, repeated, none, or more than ``max_count`` models)."""
    tokens = [t for t in str(text).replace(";", " ").replace(",", " ").split() if t]
    if not tokens:
        raise ConfigError("give at least one β value, e.g. 0.1, 1, 4")
    betas = []
    for t in tokens:
        try:
            b = float(t)
        except ValueError:
            raise ConfigError(f"β value {t!r} is not a number") from None
        if not np.isfinite(b) or b < 0:
            raise ConfigError(f"β must be a finite number ≥ 0, got {t}")
        betas.append(b)
    if len(set(betas)) != len(betas):
        raise ConfigError(f"each β once, please: {', '.join(tokens)} repeats a value")
    if len(betas) > max_count:
        raise ConfigError(f"at most {max_count} β values per sweep (one model each), got {len(betas)}")
    return sorted(betas)


@dataclass
class BetaImages:
    """What one β's model draws and reconstructs.

    samples: (n, C, H, W) in [0, 1], decoded from the same prior codes z ~ N(0, I) for every β.
    recons: (k, C, H, W) in [0, 1], reconstructions (through μ) of the images passed in.
    """

    beta: float
    samples: np.ndarray
    recons: np.ndarray


def beta_images(
    models: Mapping[float, LatentModel], x: np.ndarray, n_samples: int = 8, seed: int = 0
) -> list[BetaImages]:
    """Prior samples and reconstructions of x (k, C, H, W) for each β's VAE, sorted by β.
    Models with the same latent size decode the very same codes, so the rows compare."""
    from core.lenses.latent import sample_prior

    out = []
    for beta, model in sorted(models.items()):
        _, samples = sample_prior(model, n_samples, seed=seed)
        out.append(BetaImages(beta=float(beta), samples=samples, recons=reconstruct(model, x)))
    return out


# ---------------------------------------------------------------- the page's sweeps

PAGE_HIDDEN = (256,)  # the page's MLP, as the shipped β family: 784-256-z
PAGE_TEST_IMAGES = 1_000  # test images a page sweep scores each epoch and tabulates (across classes)


@dataclass(frozen=True)
class SweepPreset:
    """A sweep the page runs in one click: the form's settings (β values as typed)."""

    key: str
    label: str
    betas: str
    loss_form: str
    epochs: int
    latent: int
    note: str = ""


PRESETS = {
    p.key: p
    for p in (
        SweepPreset("quick", "A quick sweep", "0.1, 1, 4, 16", "standard", 8, 10, "four β values, recon + β·KL"),
        SweepPreset(
            "talk",
            "The talk's table",
            ", ".join(f"{b:g}" for b in TALK_BETAS),
            TALK_FORM,
            10,
            10,
            "(1−β)·MSE + β·KL with the per-pixel MSE, β from 1 down to 0: the talk's published variances beside ours",
        ),
    )
}


# One epoch of the page's MLP (latent 10) on the 5,000 offline digits, scored on 1,000 test
# images, measured on 2 CPU cores (python -m benchmarks.beta_sweep): the page's time estimate.
SECONDS_PER_MODEL_EPOCH = 0.6


def estimate_seconds(n_models: int, epochs: int, n_train: int) -> float:
    """About how long a page sweep takes (s) on 2 free CPU cores: linear in models × epochs × images."""
    return n_models * epochs * SECONDS_PER_MODEL_EPOCH * n_train / 5_000


def page_train_config(epochs: int, loss_form: str) -> TrainConfig:
    """The page's recipe: batches of 64, Adam at 2·10⁻³ decayed to 0 on a cosine, seed 0. On
    the 5,000 offline digits that is 79 steps per epoch: 8 epochs draw digits, not grey blobs."""
    return TrainConfig(epochs=int(epochs), batch_size=64, lr=2e-3, lr_schedule="cosine", loss_form=loss_form, seed=0)


def page_model_config(data: Dataset, latent: int) -> ModelConfig:
    """The page's MLP VAE (784-256-z) for ``data``'s images."""
    return KINDS["vae"].model_config(data.image_shape, arch="mlp", latent_dim=int(latent), hidden=PAGE_HIDDEN)


def page_test_split(data: Dataset, n: int = PAGE_TEST_IMAGES) -> Dataset:
    """``data`` with its test split cut to ``n`` images drawn across the classes (the first of
    each class, then the second, …): a page sweep scores the test split after every epoch."""
    if len(data.test_x) <= n:
        return data
    rows = np.sort(example_rows(data.test_y, len(data.test_x), n))
    test_y = None if data.test_y is None else data.test_y[rows]
    factors = None if data.test_factors is None else data.test_factors[rows]
    return replace(data, test_x=data.test_x[rows], test_y=test_y, test_factors=factors)
