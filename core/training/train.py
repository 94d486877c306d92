"""Training: ``fit(model, data, config, callbacks)``.

The data sit in memory as tensors and batches are slices of a seeded permutation: at
MNIST sizes this is several times faster than a DataLoader over a Dataset of PIL images,
and it keeps runs reproducible (the same seed gives the same numbers on the same machine).
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import asdict, dataclass, field

import torch

from core.data.corrupt import CORRUPTIONS, corrupt
from core.data.registry import Dataset
from core.models.config import ConfigError, ModelConfig
from core.models.evaluate import Metrics, binarize_fixed, evaluate, iwae_loss
from core.models.losses import Objective, check_objective
from core.models.networks import AutoEncoder, ModelOutput, build_model

MAX_EPOCHS = 10_000
MAX_LR = 1.0


@dataclass
class TrainConfig:
    """How a model is trained; stored in every checkpoint's JSON."""

    epochs: int = 10
    batch_size: int = 128
    lr: float = 1e-3
    beta: float = 1.0
    loss_form: str = "standard"  # "standard": recon + β·KL | "convex": (1-β)·recon + β·KL
    kl_warmup_epochs: float = 0.0  # β ramps linearly from 0 over this many epochs
    lr_schedule: str = "constant"  # "constant" | "cosine" (to zero at the last step)
    seed: int = 0
    device: str = "auto"  # "auto" picks cuda, then mps, then cpu
    noise: str | None = None  # a corruption from core.data.corrupt for a denoising AE
    noise_level: float = 0.0
    sparse_weight: float = 0.0  # λ·|code|_1 (sparse AE)
    contractive_weight: float = 0.0  # λ·‖∂code/∂x‖_F² (contractive AE)
    grad_clip: float | None = None
    augment_flip: bool = False  # random horizontal flips (faces: doubles a small data set)
    binarize: str | None = None  # "dynamic": x ~ Bernoulli(x) afresh each step (Burda et al. 2015)
    iw_samples: int = 1  # k > 1: train on the k-sample IWAE bound (Burda et al. 2015), not the ELBO

    def validate(self) -> None:
        def bad(msg: str) -> ConfigError:
            return ConfigError(msg)

        if not isinstance(self.epochs, int) or not 1 <= self.epochs <= MAX_EPOCHS:
            raise bad(f"epochs must be an integer from 1 to {MAX_EPOCHS:,}, got {self.epochs}")
        if not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise bad(f"batch size must be a positive integer, got {self.batch_size}")
        if not (math.isfinite(self.lr) and 0 < self.lr <= MAX_LR):
            raise bad(f"learning rate must be in (0, {MAX_LR}], got {self.lr}")
        try:
            check_objective(self.beta, self.loss_form)
        except ValueError as exc:
            raise bad(str(exc)) from None
        if not math.isfinite(self.kl_warmup_epochs) or self.kl_warmup_epochs < 0:
            raise bad(f"KL warm-up must be ≥ 0 epochs, got {self.kl_warmup_epochs}")
        if self.lr_schedule not in ("constant", "cosine"):
            raise bad(f"unknown learning-rate schedule {self.lr_schedule!r}")
        if self.noise is not None and self.noise not in CORRUPTIONS:
            raise bad(f"unknown noise {self.noise!r}; choose one of {tuple(CORRUPTIONS)}")
        if self.noise is not None and not 0 < self.noise_level <= CORRUPTIONS[self.noise].limit:
            raise bad(f"noise level for {self.noise} out of range: {self.noise_level}")
        for name in ("sparse_weight", "contractive_weight"):
            v = getattr(self, name)
            if not math.isfinite(v) or v < 0:
                raise bad(f"{name.replace('_', ' ')} must be ≥ 0, got {v}")
        if self.device not in ("auto", "cpu", "cuda", "mps"):
            raise bad(f"unknown device {self.device!r}")
        if self.binarize not in (None, "dynamic"):
            raise bad(f"unknown binarization {self.binarize!r}; choose None or 'dynamic'")
        if not isinstance(self.iw_samples, int) or not 1 <= self.iw_samples <= 1000:
            raise bad(f"IWAE samples must be an integer from 1 to 1,000, got {self.iw_samples}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        unknown = set(d) - set(cls.__dataclass_fields__)
        if unknown:
            raise ConfigError(f"unknown training config keys: {sorted(unknown)}")
        return cls(**d)


@dataclass
class EpochMetrics:
    """One epoch's figures, nats per example. ``train_*`` average the epoch's batches."""

    epoch: int
    train_loss: float
    train_recon: float
    train_kl: float
    test_loss: float
    test_recon: float
    test_kl: float
    beta: float  # the β in force at the epoch's end (after warm-up)
    lr: float
    seconds: float  # the whole epoch, test evaluation included
    train_seconds: float = 0.0  # the training steps only

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class History:
    epochs: list[EpochMetrics] = field(default_factory=list)
    cancelled: bool = False
    seconds: float = 0.0
    warnings: list[str] = field(default_factory=list)

    @property
    def last(self) -> EpochMetrics | None:
        return self.epochs[-1] if self.epochs else None

    def to_dict(self) -> dict:
        return {
            "epochs": [e.to_dict() for e in self.epochs],
            "cancelled": self.cancelled,
            "seconds": self.seconds,
            "warnings": list(self.warnings),
        }


class TrainingDiverged(RuntimeError):
    """The loss or gradients became NaN/inf. The model holds its last good weights."""

    def __init__(self, message: str, history: History):
        super().__init__(message)
        self.history = history


class Callback:
    """Hooks for progress bars, live plots and cancel buttons. Override what you need."""

    def on_train_begin(self, total_steps: int, config: TrainConfig) -> None: ...

    def on_step_end(self, step: int, total_steps: int, loss: float) -> None: ...

    def on_step_terms(self, step: int, recon: float, kl: float) -> None:
        """The step's batch means of reconstruction and KL in nats per example (live loss curves).

        Reading them costs a device sync per step, so ``fit`` calls this only on callbacks
        that override it.
        """

    def on_epoch_end(self, metrics: EpochMetrics, model: AutoEncoder) -> None: ...

    def should_stop(self) -> bool:
        """Return True to cancel; checked after every step."""
        return False


def pick_device(name: str = "auto") -> torch.device:
    if name != "auto":
        return torch.device(name)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def _contractive_penalty(model: AutoEncoder, x: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
    """‖∂mu/∂x‖_F² per example (B,), estimated with one random projection.

    For v ~ N(0, I) in code space, E_v ‖vᵀJ‖² = ‖J‖_F²: one vector-Jacobian product per
    step instead of latent_dim of them (Hutchinson's trick).
    """
    x = x.detach().requires_grad_(True)
    mu, _ = model.encode(x, y)
    v = torch.randn_like(mu)
    (g,) = torch.autograd.grad((mu * v).sum(), x, create_graph=True)
    return g.pow(2).flatten(1).sum(1)


def _snapshot(model: torch.nn.Module) -> dict:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


@dataclass
class _Run:
    """One training run's moving parts, made once by :func:`_start_run` and shared by its steps.

    x_train (N, C, H, W) and y_train (N,) sit on ``device``; ``batches`` is the generator of the
    epoch permutations, ``noise`` the one of the corruption and flips (seeded apart, so adding
    noise does not change the batch order). ``good_state`` is the last finished epoch's weights.
    """

    model: AutoEncoder
    config: TrainConfig
    device: torch.device
    x_train: torch.Tensor
    y_train: torch.Tensor | None
    batch_size: int
    steps_per_epoch: int
    total_steps: int
    objective: Objective
    opt: torch.optim.Optimizer
    sched: torch.optim.lr_scheduler.LRScheduler | None
    batches: torch.Generator
    noise: torch.Generator
    good_state: dict
    history: History
    step: int = 0


def check_training_data(data: Dataset) -> None:
    """ConfigError when ``data`` has no training images (offline Fashion-MNIST: only its
    held-out test set is here)."""
    if len(data.train_x) == 0:
        raise ConfigError(f"{data.name} has no training images here ({data.source_note})")


def _start_run(model: AutoEncoder, data: Dataset, config: TrainConfig) -> _Run:
    """Check the settings against the data, move everything to the device, build the optimizer."""
    config.validate()
    model.config.check_data(data)
    check_training_data(data)
    history = History()
    device = pick_device(config.device)
    model.to(device).train()
    torch.manual_seed(config.seed)
    x_train = torch.as_tensor(data.train_x).to(device)
    y_train = torch.as_tensor(data.train_y).to(device) if model.config.conditional else None
    n, batch_size = len(x_train), config.batch_size
    if batch_size > n:
        history.warnings.append(f"batch size {batch_size} is larger than the {n} training images; using {n}")
        batch_size = n
    steps_per_epoch = math.ceil(n / batch_size)
    total_steps = steps_per_epoch * config.epochs
    # The fused kernel is ~5% faster per step on CPU and CUDA; MPS lacks it.
    opt = torch.optim.Adam(model.parameters(), lr=config.lr, fused=device.type in ("cpu", "cuda"))
    cosine = config.lr_schedule == "cosine"
    return _Run(
        model=model,
        config=config,
        device=device,
        x_train=x_train,
        y_train=y_train,
        batch_size=batch_size,
        steps_per_epoch=steps_per_epoch,
        total_steps=total_steps,
        objective=Objective(config.beta, config.loss_form),
        opt=opt,
        sched=torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total_steps) if cosine else None,
        batches=torch.Generator().manual_seed(config.seed),
        noise=torch.Generator(device=device).manual_seed(config.seed + 1),
        good_state=_snapshot(model),
        history=history,
    )


def _step_beta(run: _Run) -> float:
    """β for the next step: ramped linearly from 0 over the KL warm-up, then ``config.beta``."""
    config = run.config
    if config.kl_warmup_epochs <= 0:
        return config.beta
    return config.beta * min(1.0, (run.step + 1) / (config.kl_warmup_epochs * run.steps_per_epoch))


def train_step(run: _Run, idx: torch.Tensor, beta: float, where: str) -> tuple[torch.Tensor, ModelOutput]:
    """One optimizer step on the training rows ``idx`` (B,): returns the per-example loss (B,)
    and the model's output. Raises TrainingDiverged (weights restored) on a NaN/inf loss or
    gradient; ``where`` names the step in that message."""
    model, config = run.model, run.config
    xb = run.x_train[idx]
    yb = run.y_train[idx] if run.y_train is not None else None
    if config.augment_flip:
        flip = torch.rand(len(xb), generator=run.noise, device=run.device) < 0.5
        xb = torch.where(flip[:, None, None, None], xb.flip(-1), xb)
    if config.binarize:
        xb = torch.bernoulli(xb, generator=run.noise)
    xin = corrupt(xb, config.noise, config.noise_level, run.noise) if config.noise else xb
    if config.iw_samples > 1:
        loss_b, out = iwae_loss(model, xin, yb, config.iw_samples, beta, run.noise)
    else:
        out = model(xin, yb, target=xb)
        loss_b = run.objective.of_output(out, xb, beta)
    if config.sparse_weight:
        loss_b = loss_b + config.sparse_weight * out.mu.abs().sum(1)
    if config.contractive_weight:
        loss_b = loss_b + config.contractive_weight * _contractive_penalty(model, xin, yb)
    loss = loss_b.mean()
    run.opt.zero_grad(set_to_none=True)
    loss.backward()
    # A NaN gradient with a finite loss shows up as a NaN loss on the next step.
    clip = config.grad_clip
    grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), clip) if clip else torch.zeros(())
    if not (torch.isfinite(loss) and torch.isfinite(grad_norm)):
        model.load_state_dict(run.good_state)
        last = f"epoch {run.history.last.epoch}" if run.history.last else "the initial weights"
        raise TrainingDiverged(
            f"training diverged at {where} (loss {loss.item():.4g}, gradient norm {grad_norm.item():.4g}); "
            f"restored the weights of {last}. Try a smaller learning rate than {config.lr:g}.",
            run.history,
        )
    run.opt.step()
    if run.sched is not None:
        run.sched.step()
    run.step += 1
    return loss_b, out


def _report_step(run: _Run, callbacks: list[Callback], loss_b: torch.Tensor, out: ModelOutput) -> bool:
    """Tell the callbacks about the step just taken; True when one of them asks to stop."""
    loss = loss_b.mean().item()
    for cb in callbacks:
        cb.on_step_end(run.step, run.total_steps, loss)
    # Reading the terms costs a device sync per step: only for callbacks that want them.
    term_callbacks = [cb for cb in callbacks if type(cb).on_step_terms is not Callback.on_step_terms]
    if term_callbacks:
        recon_b, kl_b = torch.stack([out.recon.detach().mean(), out.kl.detach().mean()]).tolist()
        for cb in term_callbacks:
            cb.on_step_terms(run.step, recon_b, kl_b)
    return any(cb.should_stop() for cb in callbacks)


def train_epoch(run: _Run, epoch: int, callbacks: list[Callback]) -> tuple[list[float], int, float]:
    """One pass over the training images in a fresh seeded order. Returns the epoch's mean
    (loss, recon, KL) in nats per example, the examples seen (fewer than N when cancelled, which
    sets ``history.cancelled``) and the β of its last step."""
    n = len(run.x_train)
    sums = torch.zeros(3, dtype=torch.float64, device=run.device)
    seen, beta = 0, run.config.beta
    perm = torch.randperm(n, generator=run.batches).to(run.device)
    for i in range(run.steps_per_epoch):
        idx = perm[i * run.batch_size : (i + 1) * run.batch_size]
        beta = _step_beta(run)
        loss_b, out = train_step(run, idx, beta, where=f"epoch {epoch}, step {i + 1}")
        seen += len(idx)
        sums += torch.stack([loss_b.detach().sum(), out.recon.detach().sum(), out.kl.detach().sum()]).double()
        if _report_step(run, callbacks, loss_b, out):
            run.history.cancelled = True
            break
    return (sums / max(seen, 1)).cpu().tolist(), seen, beta


def eval_epoch(run: _Run, data: Dataset, epoch: int, train_means: list[float], beta: float, t_epoch: float):
    """Score the test split after an epoch and record it: returns its :class:`EpochMetrics`."""
    train_seconds = time.perf_counter() - t_epoch
    test: Metrics = evaluate(run.model, data.test_x, data.test_y, seed=run.config.seed)
    return EpochMetrics(
        epoch=epoch,
        train_loss=train_means[0],
        train_recon=train_means[1],
        train_kl=train_means[2],
        test_loss=test.loss,
        test_recon=test.recon,
        test_kl=test.kl,
        beta=beta,
        lr=run.opt.param_groups[0]["lr"],
        seconds=time.perf_counter() - t_epoch,
        train_seconds=train_seconds,
    )


def fit(
    model: AutoEncoder,
    data: Dataset,
    config: TrainConfig,
    callbacks: list[Callback] | None = None,
) -> History:
    """Train ``model`` in place on ``data.train_x`` and score ``data.test_x`` each epoch.

    Returns the per-epoch history. Cancelling (a callback's ``should_stop``) ends the run
    after the current step with ``history.cancelled`` set; the model keeps its weights.

    Raises:
        ConfigError: an out-of-range setting, or data that do not fit the model.
        TrainingDiverged: the loss became NaN/inf; the model is restored to the weights of
            the last finished epoch (or its initial weights).
    """
    callbacks = callbacks or []
    run = _start_run(model, data, config)
    if config.binarize:  # score the epochs on one fixed binarization of the test split
        data = dataclasses.replace(data, test_x=binarize_fixed(data.test_x))
    history = run.history
    for cb in callbacks:
        cb.on_train_begin(run.total_steps, config)
    t_start = time.perf_counter()
    try:
        for epoch in range(1, config.epochs + 1):
            t_epoch = time.perf_counter()
            means, seen, beta = train_epoch(run, epoch, callbacks)
            if history.cancelled and seen < len(run.x_train):
                break  # a partial epoch is not an epoch: keep the history to finished ones
            metrics = eval_epoch(run, data, epoch, means, beta, t_epoch)
            history.epochs.append(metrics)
            run.good_state = _snapshot(model)
            for cb in callbacks:
                cb.on_epoch_end(metrics, model)
            if history.cancelled:
                break
    finally:
        history.seconds = time.perf_counter() - t_start
    model.eval()
    return history


def train_model(
    model_config: ModelConfig,
    data: Dataset,
    config: TrainConfig,
    callbacks: list[Callback] | None = None,
) -> tuple[AutoEncoder, History]:
    """Build a fresh model with ``config.seed`` and fit it: same seed, same numbers."""
    config.validate()
    torch.manual_seed(config.seed)
    model = build_model(model_config)
    history = fit(model, data, config, callbacks)
    return model, history
