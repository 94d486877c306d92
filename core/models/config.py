"""What a model is: its kind (one spec per kind, in :data:`KINDS`) and its configuration (what a
checkpoint's JSON records to rebuild it).

Torch-free on purpose: listing checkpoints and validating their JSON (the app's sidebar, the
CLI's ``list``) must not pay for importing torch.

Adding a model kind that an existing network can train (a VAE, an AE or a conditional VAE with
other training settings) is one :class:`ModelKind` entry in :data:`KINDS` plus its test: the
CLI's ``--model`` choices, the Train page's menu, the model cards and ``pretrain`` read it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

ARCHS = ("mlp", "conv")
LIKELIHOODS = ("bernoulli", "gaussian", "gaussian-real")
REAL_VALUED = "gaussian-real"  # features on the real line (a standardised table): the decoder's mean is its output
ACTIVATION_NAMES = ("relu", "silu", "elu")
MAX_LATENT = 256  # the denoising AE for every corruption needs 256 (PCA: 25.1 dB at 128, 30.8 at 256)


class ConfigError(ValueError):
    """A configuration value is out of range; the message says which and why."""


# ---------------------------------------------------------------- model kinds


@dataclass(frozen=True)
class ModelKind:
    """One kind of model the app trains and explains.

    network: the network that is built, ``ModelConfig.kind`` ("vae", "ae" or "cvae"; each of
    them is a kind of its own, whose ``network`` is its name). variational: it encodes to a
    distribution with a KL term (it has a β and a prior to sample). conditional: the label is
    an input of encoder and decoder (it needs a labelled data set). train_overrides: fields of
    ``core.training.train.TrainConfig`` that make this kind (a denoising AE is an AE trained on noise).
    """

    name: str
    title: str
    help: str
    network: str
    variational: bool
    conditional: bool = False
    train_overrides: dict = field(default_factory=dict, hash=False)

    def model_config(
        self, image_shape: tuple[int, int, int], num_classes: int = 0, data_title: str = "this data set", **arch
    ) -> ModelConfig:
        """The config of this kind for images (C, H, W) of a data set with ``num_classes`` classes
        (0: no labels); ``arch`` sets the other ModelConfig fields. ConfigError when the data
        cannot serve this kind (a conditional model on a data set without labels; the message
        names the data set as ``data_title``)."""
        if self.conditional and num_classes < 2:
            raise ConfigError(f"a {self.title.lower()} needs class labels; {data_title} has none")
        return ModelConfig(
            kind=self.network,
            image_shape=tuple(image_shape),
            num_classes=num_classes if self.conditional else 0,
            **arch,
        )


KINDS: dict[str, ModelKind] = {
    k.name: k
    for k in (
        ModelKind("vae", "VAE", "a code distribution pulled towards N(0, I) by the KL term.", "vae", True),
        ModelKind("ae", "Autoencoder (AE)", "a plain code, no KL.", "ae", False),
        ModelKind("cvae", "Conditional VAE", "gets the class as an input.", "cvae", True, conditional=True),
        ModelKind(
            "dae",
            "Denoising AE",
            "learns to undo Gaussian noise (σ 0.5).",
            "ae",
            False,
            train_overrides={"noise": "gaussian", "noise_level": 0.5},
        ),
        ModelKind(
            "sparse", "Sparse AE", "an L1 penalty on the code.", "ae", False, train_overrides={"sparse_weight": 0.1}
        ),
        ModelKind(
            "contractive",
            "Contractive AE",
            "a penalty on how fast the code changes with the input.",
            "ae",
            False,
            train_overrides={"contractive_weight": 0.1},
        ),
    )
}
# The networks ModelConfig.kind can build: the kinds that are their own network.
NETWORKS = tuple(k.name for k in KINDS.values() if k.network == k.name)


def get_kind(name: str) -> ModelKind:
    """The spec of model kind ``name``; ConfigError naming the choices when there is none."""
    try:
        return KINDS[name]
    except (KeyError, TypeError):
        raise ConfigError(f"unknown model kind {name!r}; choose one of {tuple(KINDS)}") from None


def is_variational(network: str) -> bool:
    """Whether a checkpoint's network kind ("vae", "ae", "cvae") has a KL term."""
    spec = KINDS.get(network)
    return spec is not None and spec.variational


def kinds_help() -> str:
    """One line per kind, for a menu's help text."""
    return " ".join(f"{k.title}: {k.help}" for k in KINDS.values())


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to rebuild a model; stored in every checkpoint's JSON."""

    kind: str = "vae"  # "vae" | "ae" | "cvae"
    arch: str = "conv"  # "mlp" | "conv"
    image_shape: tuple[int, int, int] = (1, 28, 28)  # (C, H, W)
    latent_dim: int = 16
    # "bernoulli" (BCE) | "gaussian" (MSE, learned σ) | "gaussian-real" (tables); "" picks by the
    # images: Bernoulli for grey, Gaussian for colour (see COLOUR_LIKELIHOOD_WHY)
    likelihood: str = ""
    # gaussian: the decoder's σ (of an image's [0, 1] range), fixed when > 0, learned from 0.1 when
    # 0; None picks by the images: fixed COLOUR_SIGMA for colour, learned for grey (faces)
    sigma: float | None = None
    num_classes: int = 0  # for "cvae": the label is one-hot into encoder and decoder
    hidden: tuple[int, ...] = (400,)  # MLP hidden widths
    channels: tuple[int, ...] = ()  # conv channels per stride-2 stage; () picks by image size
    fc: int = 256  # conv: width of the dense layer between the feature map and the code
    conv_depth: int = 0  # conv: extra 3x3 convs per stage (more capacity, slower on CPU)
    activation: str = "silu"  # hidden nonlinearity: "relu" (the PyTorch example) | "silu" | "elu"
    # An AE's decoder also draws a gate g in [0, 1] per pixel and gives back g·x + (1 − g)·D(z): it
    # passes the input through where it can be trusted (light noise) and replaces it where not. A
    # code can hold a digit's shape but not its every pixel (PCA keeps 25 dB of MNIST in 128 numbers),
    # so at light noise a plain denoising AE loses more detail than the noise it removes.
    input_gate: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "image_shape", tuple(int(v) for v in self.image_shape))
        if not self.likelihood:
            object.__setattr__(self, "likelihood", default_likelihood(self.image_shape))
        if self.sigma is None:
            colour = self.likelihood == "gaussian" and self.image_shape[0] == 3
            object.__setattr__(self, "sigma", COLOUR_SIGMA if colour else 0.0)
        object.__setattr__(self, "hidden", tuple(int(v) for v in self.hidden))
        channels = tuple(int(v) for v in self.channels) or (
            default_channels(self.image_shape) if len(self.image_shape) == 3 else (32,)
        )
        object.__setattr__(self, "channels", channels)
        self.validate()

    def validate(self) -> None:
        if self.kind not in NETWORKS:
            raise ConfigError(f"unknown model kind {self.kind!r}; choose one of {NETWORKS}")
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
        if not (isinstance(self.sigma, int | float) and 0 <= self.sigma <= 1):
            raise ConfigError(f"σ must be a number from 0 (learned) to 1, got {self.sigma!r}")
        if self.sigma and self.likelihood != "gaussian":
            raise ConfigError(f"a fixed σ is for the Gaussian likelihood, not {self.likelihood!r}")
        if self.likelihood == "bernoulli" and self.image_shape[0] == 3:
            raise ConfigError(f"a Bernoulli likelihood does not fit colour images: {COLOUR_LIKELIHOOD_WHY}")
        if self.kind == "cvae" and self.num_classes < 2:
            raise ConfigError("a conditional VAE needs num_classes >= 2 (a labelled data set)")
        if self.arch == "mlp" and (not self.hidden or min(self.hidden) < 1):
            raise ConfigError(f"MLP hidden widths must be positive, got {self.hidden}")
        if self.input_gate and (self.kind != "ae" or self.likelihood == REAL_VALUED):
            raise ConfigError("an input gate is for an autoencoder of images (a denoising AE), not a VAE or a table")
        if self.arch == "conv" and (not self.channels or min(self.channels) < 1 or self.fc < 1):
            raise ConfigError(f"conv channels and fc width must be positive, got {self.channels}, {self.fc}")

    @property
    def is_variational(self) -> bool:
        return KINDS[self.kind].variational

    @property
    def conditional(self) -> bool:
        return KINDS[self.kind].conditional

    def check_data(self, data) -> None:
        """ConfigError unless ``data`` (a core.data.registry.Dataset) can train or test this model: the
        same image shape, and for a conditional model labels with ``num_classes`` classes."""
        if tuple(data.image_shape) != tuple(self.image_shape):
            raise ConfigError(f"{data.name} images are {tuple(data.image_shape)}, the model expects {self.image_shape}")
        if self.conditional and (data.train_y is None or data.num_classes != self.num_classes):
            raise ConfigError(
                f"a conditional VAE needs class labels ({self.num_classes} classes); {data.name} has none"
            )

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


COLOUR_LIKELIHOOD_WHY = (
    "a Bernoulli reads each value as the probability that a pixel is on, which fits ink on paper "
    "(near 0 or 1) but not a colour, whose three channels are intensities anywhere in [0, 1]; colour "
    "images take a Gaussian around the decoded image (likelihood 'gaussian', σ 0.1 by default)"
)
# Colour's default σ: fixed, so that β keeps its meaning (a learned σ shrinks until the KL term
# hardly counts and prior samples fall off the data); 0.1 of the range weighs an error like a
# Bernoulli does on ink, about as the β-VAE papers' binary sprites did.
COLOUR_SIGMA = 0.1


def default_likelihood(image_shape: tuple[int, ...]) -> str:
    """Bernoulli for grey images (the textbook's choice for digits), Gaussian for colour."""
    return "gaussian" if len(image_shape) == 3 and image_shape[0] == 3 else "bernoulli"


def default_channels(image_shape: tuple[int, int, int]) -> tuple[int, ...]:
    """Stride-2 stages until the shorter side is at most 8: 28 -> 7, 64 -> 8, 25 -> 7."""
    side = min(image_shape[1:])
    stages = []
    while side > 8 and len(stages) < 5:
        side //= 2
        stages.append(min(32 * 2 ** len(stages), 256))
    return tuple(stages) or (32,)
