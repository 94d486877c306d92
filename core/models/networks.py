"""The autoencoder family: VAE, deterministic AE and conditional VAE on one encoder/decoder.

Every model takes a :class:`ModelConfig` and its forward pass returns one type,
:class:`ModelOutput`, holding the decoder logits, the code and the per-example loss terms.
The objective (reconstruction + β·KL) lives in :mod:`core.models.losses`, written once.
:class:`AutoEncoder` implements :class:`core.models.protocol.LatentModel`, the model protocol the
pages and analyses use.

Shapes: images x are (B, C, H, W) floats in [0, 1]; codes z, mu, logvar are (B, latent_dim);
labels y are int64 (B,). The network's decoder gives logits (``decode_logits``, for a stable
loss); ``decode`` returns their sigmoid, the image.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from core.models import losses
from core.models.config import REAL_VALUED, ModelConfig

# Keys match core.models.config.ACTIVATION_NAMES, which validates them without torch.
ACTIVATIONS = {"relu": nn.ReLU, "silu": nn.SiLU, "elu": nn.ELU}
GATE_EPS = 1e-6  # a gated AE's output is kept in [ε, 1 − ε] so that its logit (±13.8) stays finite


@dataclass
class ModelOutput:
    """What every model's forward pass returns.

    logits: (B, C, H, W) decoder output before the sigmoid.
    mu: (B, z) code mean (the code itself for a deterministic AE).
    logvar: (B, z) log-variance of q(z|x), or None for a deterministic AE.
    z: (B, z) the code that was decoded (a sample for a VAE in training mode, mu otherwise).
    recon: (B,) reconstruction negative log-likelihood in nats.
    kl: (B,) KL(q(z|x) || N(0, I)) in nats (zeros for an AE).
    """

    logits: torch.Tensor
    mu: torch.Tensor
    logvar: torch.Tensor | None
    z: torch.Tensor
    recon: torch.Tensor
    kl: torch.Tensor


# ---------------------------------------------------------------- building blocks


def conv_stages(image_shape: tuple[int, int, int], channels: tuple[int, ...]) -> list[tuple[int, int]]:
    """Spatial sizes after each stride-2 stage, e.g. 28x28 -> [(14, 14), (7, 7)].

    A 4x4 stride-2 conv with padding 1 maps n to floor(n / 2); the decoder's transposed conv
    maps m to 2m + output_padding, with output_padding 0 or 1 chosen per stage so that any
    image size in the registry (28x20, 25x25, 64x64) comes back exactly.
    """
    h, w = image_shape[1:]
    sizes = []
    for _ in channels:
        h, w = max(1, h // 2), max(1, w // 2)
        sizes.append((h, w))
    return sizes


class Encoder(nn.Module):
    """x (B, C, H, W) [+ one-hot y (B, K)] -> features (B, F)."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        c, h, w = cfg.image_shape
        act = ACTIVATIONS[cfg.activation]
        if cfg.arch == "mlp":
            width = c * h * w
            self.body = nn.Flatten()
            self.flat_dim = width
            head_in, dims = width + cfg.num_classes, []
            for hdim in cfg.hidden:
                dims += [nn.Linear(head_in, hdim), act()]
                head_in = hdim
            self.head = nn.Sequential(*dims)
            self.out_dim = head_in
        else:
            layers, prev = [], c
            for ch in cfg.channels:
                layers += [nn.Conv2d(prev, ch, 4, stride=2, padding=1), act()]
                for _ in range(cfg.conv_depth):
                    layers += [nn.Conv2d(ch, ch, 3, padding=1), act()]
                prev = ch
            layers.append(nn.Flatten())
            self.body = nn.Sequential(*layers)
            fh, fw = conv_stages(cfg.image_shape, cfg.channels)[-1]
            self.flat_dim = prev * fh * fw
            self.head = nn.Sequential(nn.Linear(self.flat_dim + cfg.num_classes, cfg.fc), act())
            self.out_dim = cfg.fc

    def forward(self, x: torch.Tensor, y_onehot: torch.Tensor | None = None) -> torch.Tensor:
        h = self.body(x)
        if y_onehot is not None:
            h = torch.cat([h, y_onehot], dim=1)
        return self.head(h)


class Decoder(nn.Module):
    """z (B, z) [+ one-hot y (B, K)] -> logits (B, C, H, W)."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        c, h, w = cfg.image_shape
        c *= 2 if cfg.input_gate else 1  # a gated AE's decoder draws its image, then its gate
        act = ACTIVATIONS[cfg.activation]
        self.image_shape = (c, h, w)
        z_in = cfg.latent_dim + cfg.num_classes
        if cfg.arch == "mlp":
            dims, prev = [], z_in
            for hdim in reversed(cfg.hidden):
                dims += [nn.Linear(prev, hdim), act()]
                prev = hdim
            dims.append(nn.Linear(prev, c * h * w))
            self.net = nn.Sequential(*dims)
        else:
            sizes = conv_stages(cfg.image_shape, cfg.channels)
            fh, fw = sizes[-1]
            last = cfg.channels[-1]
            self.fc = nn.Sequential(nn.Linear(z_in, cfg.fc), act(), nn.Linear(cfg.fc, last * fh * fw), act())
            self.feature_shape = (last, fh, fw)
            targets = [*reversed(sizes[:-1]), (h, w)]  # the size each up-stage must reach
            outs = [*reversed(cfg.channels[:-1]), cfg.channels[0]]
            layers, prev, cur = [], last, (fh, fw)
            for i, ((th, tw), ch) in enumerate(zip(targets, outs, strict=True)):
                for _ in range(cfg.conv_depth):
                    layers += [nn.Conv2d(prev, prev, 3, padding=1), act()]
                pad = (th - 2 * cur[0], tw - 2 * cur[1])  # 0 or 1 per side
                last_stage = i == len(targets) - 1
                # The last stage writes the image's channels directly (logits, no activation).
                out_ch = c if last_stage else ch
                layers.append(nn.ConvTranspose2d(prev, out_ch, 4, stride=2, padding=1, output_padding=pad))
                if not last_stage:
                    layers.append(act())
                prev, cur = ch, (th, tw)
            self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor, y_onehot: torch.Tensor | None = None) -> torch.Tensor:
        if y_onehot is not None:
            z = torch.cat([z, y_onehot], dim=1)
        if hasattr(self, "fc"):
            return self.net(self.fc(z).view(-1, *self.feature_shape))
        return self.net(z).view(-1, *self.image_shape)


# ---------------------------------------------------------------- the model


class AutoEncoder(nn.Module):
    """One class for the family; ``config.kind`` picks VAE, AE or conditional VAE.

    A VAE encodes to q(z|x) = N(mu, diag(exp(logvar))) and samples with the
    reparameterization trick; a deterministic AE encodes straight to z (logvar is None).
    """

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.encoder = Encoder(config)
        self.decoder = Decoder(config)
        self.to_mu = nn.Linear(self.encoder.out_dim, config.latent_dim)
        if config.is_variational:
            self.to_logvar = nn.Linear(self.encoder.out_dim, config.latent_dim)
        if config.likelihood in ("gaussian", REAL_VALUED):
            # One learned log σ for all pixels (σ-VAE, Rybkin et al. 2021): the decoder is
            # calibrated, so the reconstruction term is a real NLL in nats. It starts at 0.1 of
            # an image's [0, 1] range. Standardised table features get one σ each, starting at
            # their own spread (1): features differ in how well they can be predicted.
            if config.likelihood == REAL_VALUED:  # a σ per feature, each starting at 1
                self.log_sigma = nn.Parameter(torch.zeros(config.image_shape))
            elif config.sigma:  # fixed (colour's default): β alone sets the balance with the KL
                self.register_buffer("log_sigma", torch.tensor(math.log(config.sigma)))
            else:
                self.log_sigma = nn.Parameter(torch.tensor(math.log(0.1)))

    # -- the model protocol's facts (core.models.protocol.LatentModel)
    @property
    def latent_dim(self) -> int:
        return self.config.latent_dim

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return self.config.image_shape

    @property
    def likelihood(self) -> str:
        return self.config.likelihood

    @property
    def is_variational(self) -> bool:
        return self.config.is_variational

    @property
    def num_classes(self) -> int:
        return self.config.num_classes

    @property
    def conditional(self) -> bool:
        return self.config.conditional

    @property
    def device(self) -> torch.device:
        return self.to_mu.weight.device

    def _onehot(self, y: torch.Tensor | None, batch: int) -> torch.Tensor | None:
        if not self.config.conditional:
            return None
        if y is None:
            raise ValueError("a conditional VAE needs labels y (B,) to encode and decode")
        y = torch.as_tensor(y, device=self.to_mu.weight.device).long().reshape(-1)
        if y.numel() == 1 and batch > 1:
            y = y.expand(batch)
        if y.numel() != batch or y.min() < 0 or y.max() >= self.config.num_classes:
            raise ValueError(f"labels must be {batch} integers in [0, {self.config.num_classes})")
        return F.one_hot(y, self.config.num_classes).to(self.to_mu.weight.dtype)

    # -- the canonical API
    def encode(self, x: torch.Tensor, y: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """x (B, C, H, W) -> (mu (B, z), logvar (B, z) or None for an AE)."""
        h = self.encoder(x, self._onehot(y, x.shape[0]))
        mu = self.to_mu(h)
        if not self.config.is_variational:
            return mu, None
        # Clamp keeps exp(logvar) finite early in training; the range (1e-8 .. 2e4 variance)
        # never binds at a sensible optimum.
        return mu, self.to_logvar(h).clamp(-18.0, 10.0)

    @staticmethod
    def reparameterize(
        mu: torch.Tensor, logvar: torch.Tensor | None, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """z = mu + sigma * eps, eps ~ N(0, I): a sample that gradients flow through."""
        if logvar is None:
            return mu
        eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
        return mu + torch.exp(0.5 * logvar) * eps

    def decode_logits(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """z (B, z) -> logits (B, C, H, W), the network's output before the sigmoid (a gated AE's
        decoded image; its gate needs the input, see :meth:`output_logits`)."""
        out = self.decoder(z, self._onehot(y, z.shape[0]))
        return out[:, : self.image_shape[0]] if self.config.input_gate else out

    def output_logits(self, x: torch.Tensor, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """What the model gives back for input x (B, C, H, W) through code z (B, z), as logits (B, C, H, W).

        Without an input gate, the decoded image. With one, logit(g·x + (1 − g)·D(z)), g = sigmoid of
        the decoder's gate channels: each pixel trusts the input by g and the decoded image by 1 − g.
        """
        if not self.config.input_gate:
            return self.decode_logits(z, y)
        c = self.image_shape[0]
        out = self.decoder(z, self._onehot(y, z.shape[0]))
        gate = torch.sigmoid(out[:, c:])
        mixed = gate * x + (1 - gate) * torch.sigmoid(out[:, :c])
        return torch.logit(mixed.clamp(GATE_EPS, 1 - GATE_EPS))

    def decode(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """z (B, z) -> images (B, C, H, W) in [0, 1] (the decoder's mean; for a real-valued
        likelihood, standardised features (B, 1, 1, F) on the real line)."""
        return losses.decoder_mean(self.decode_logits(z, y), self.config.likelihood)

    def _nll(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return losses.reconstruction_nll(logits, target, self.config.likelihood, getattr(self, "log_sigma", None))

    def recon_nll(self, x: torch.Tensor, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """-log p(x | z) per example (B,) in nats."""
        return self._nll(self.decode_logits(z, y), x)

    def forward(
        self,
        x: torch.Tensor,
        y: torch.Tensor | None = None,
        target: torch.Tensor | None = None,
        sample: bool | None = None,
        generator: torch.Generator | None = None,
    ) -> ModelOutput:
        """Encode x, decode a code, and score the reconstruction against ``target``.

        sample: decode z ~ q(z|x) (the ELBO's Monte-Carlo estimate) rather than the mean;
            defaults to ``self.training``.
        target: what the reconstruction is scored against (the clean image when x is a
            corrupted input, as in a denoising AE); defaults to x.
        """
        mu, logvar = self.encode(x, y)
        sample = self.training if sample is None else sample
        z = self.reparameterize(mu, logvar, generator) if sample else mu
        logits = self.output_logits(x, z, y)
        recon = self._nll(logits, x if target is None else target)
        kl = losses.gaussian_kl(mu, logvar) if logvar is not None else torch.zeros_like(recon)
        return ModelOutput(logits=logits, mu=mu, logvar=logvar, z=z, recon=recon, kl=kl)

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """x (B, C, H, W) -> reconstruction (B, C, H, W) in [0, 1], through the code mean (and, for a
        gated AE, the input where its gate trusts it)."""
        mu, _ = self.encode(x, y)
        return losses.decoder_mean(self.output_logits(x, mu, y), self.config.likelihood)

    @torch.no_grad()
    def sample(
        self,
        n: int,
        temperature: float = 1.0,
        y: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Decode n codes drawn from N(0, temperature² I) -> images (n, C, H, W) in [0, 1].

        For a deterministic AE this is the same recipe, and the results show why an AE is
        not a generative model: its codes do not fill N(0, I).
        """
        z = torch.randn(n, self.latent_dim, generator=generator, device=self.device) * temperature
        return self.decode(z, y)


def build_model(config: ModelConfig) -> AutoEncoder:
    """The one constructor for every model in the family."""
    return AutoEncoder(config)
