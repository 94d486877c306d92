"""Model configuration: what a checkpoint's JSON records to rebuild its model.

Torch-free on purpose: listing checkpoints and validating their JSON (the app's sidebar, the
CLI's ``list``) must not pay for importing torch.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

MODEL_KINDS = ("vae", "ae", "cvae")
ARCHS = ("mlp", "conv")
LIKELIHOODS = ("bernoulli", "gaussian")
ACTIVATION_NAMES = ("relu", "silu", "elu")
MAX_LATENT = 128


class ConfigError(ValueError):
    """A configuration value is out of range; the message says which and why."""


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to rebuild a model; stored in every checkpoint's JSON."""

    kind: str = "vae"  # "vae" | "ae" | "cvae"
    arch: str = "conv"  # "mlp" | "conv"
    image_shape: tuple[int, int, int] = (1, 28, 28)  # (C, H, W)
    latent_dim: int = 16
    likelihood: str = "bernoulli"  # "bernoulli" (BCE) | "gaussian" (MSE, learned σ)
    num_classes: int = 0  # for "cvae": the label is one-hot into encoder and decoder
    hidden: tuple[int, ...] = (400,)  # MLP hidden widths
    channels: tuple[int, ...] = ()  # conv channels per stride-2 stage; () picks by image size
    fc: int = 256  # conv: width of the dense layer between the feature map and the code
    conv_depth: int = 0  # conv: extra 3x3 convs per stage (more capacity, slower on CPU)
    activation: str = "silu"  # hidden nonlinearity: "relu" (the PyTorch example) | "silu" | "elu"

    def __post_init__(self) -> None:
        object.__setattr__(self, "image_shape", tuple(int(v) for v in self.image_shape))
        object.__setattr__(self, "hidden", tuple(int(v) for v in self.hidden))
        channels = tuple(int(v) for v in self.channels) or (
            default_channels(self.image_shape) if len(self.image_shape) == 3 else (32,)
        )
        object.__setattr__(self, "channels", channels)
        self.validate()

    def validate(self) -> None:
        if self.kind not in MODEL_KINDS:
            raise ConfigError(f"unknown model kind {self.kind!r}; choose one of {MODEL_KINDS}")
        if self.arch not in ARCHS:
            raise ConfigError(f"unknown architecture {self.arch!r}; choose one of {ARCHS}")
        if self.likelihood not in LIKELIHOODS:
            raise ConfigError(f"unknown likelihood {self.likelihood!r}; choose one of {LIKELIHOODS}")
        if self.activation not in ACTIVATION_NAMES:
            raise ConfigError(f"unknown activation {self.activation!r}; choose one of {ACTIVATION_NAMES}")
        if not isinstance(self.latent_dim, int) or not 1 <= self.latent_dim <= MAX_LATENT:
            raise ConfigError(f"latent size must be an integer from 1 to {MAX_LATENT}, got {self.latent_dim}")
        if len(self.image_shape) != 3 or min(self.image_shape) < 1 or max(self.image_shape) > 512:
            raise ConfigError(f"image shape must be (C, H, W) with sides 1..512, got {self.image_shape}")
        if self.kind == "cvae" and self.num_classes < 2:
            raise ConfigError("a conditional VAE needs num_classes >= 2 (a labelled data set)")
        if self.arch == "mlp" and (not self.hidden or min(self.hidden) < 1):
            raise ConfigError(f"MLP hidden widths must be positive, got {self.hidden}")
        if self.arch == "conv" and (not self.channels or min(self.channels) < 1 or self.fc < 1):
            raise ConfigError(f"conv channels and fc width must be positive, got {self.channels}, {self.fc}")

    @property
    def is_variational(self) -> bool:
        return self.kind in ("vae", "cvae")

    @property
    def conditional(self) -> bool:
        return self.kind == "cvae"

    def to_dict(self) -> dict:
        d = asdict(self)
        for key in ("image_shape", "hidden", "channels"):
            d[key] = list(d[key])
        return d

    @classmethod
    def from_dict(cls, d: dict) -> ModelConfig:
        known = set(cls.__dataclass_fields__)
        unknown = set(d) - known
        if unknown:
            raise ConfigError(f"unknown model config keys: {sorted(unknown)}")
        return cls(**d)


def default_channels(image_shape: tuple[int, int, int]) -> tuple[int, ...]:
    """Stride-2 stages until the shorter side is at most 8: 28 -> 7, 64 -> 8, 25 -> 7."""
    side = min(image_shape[1:])
    stages = []
    while side > 8 and len(stages) < 5:
        side //= 2
        stages.append(min(32 * 2 ** len(stages), 256))
    return tuple(stages) or (32,)
