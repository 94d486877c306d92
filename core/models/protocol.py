"""The model protocol: what every page and analysis needs of a model, written once.

:class:`LatentModel` is a :class:`typing.Protocol`: any object with these members is a model
to Latent Lab, whatever built it. The shipped family (:class:`core.models.networks.AutoEncoder`)
implements it; so can a model loaded from other files (an ONNX encoder/decoder pair). The
analyses (:mod:`core.lenses.latent`, :mod:`core.lenses.denoise`, :mod:`core.experiments.anomaly`,
:mod:`core.models.evaluate`, :mod:`core.experiments.sweep`) and the pages ask only for these
members, never for a network's internals.

Shapes and units: images x are float tensors (B, C, H, W) in [0, 1] on ``device``; codes z,
mu, logvar are (B, latent_dim); labels y are int64 (B,) in [0, num_classes), given exactly
when the model is conditional; negative log-likelihoods are nats per example (B,). Encoding
and decoding do not depend on a training mode, and callers wrap them in ``torch.no_grad()``
when they need no gradients.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:  # the protocol itself needs no torch at run time
    import torch


@runtime_checkable
class LatentModel(Protocol):
    """A model whose latent space Latent Lab can explore."""

    @property
    def latent_dim(self) -> int:
        """Size of the code z."""

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of the images it encodes and decodes."""

    @property
    def likelihood(self) -> str:
        """The decoder's p(x | z): "bernoulli" (binary cross-entropy) or "gaussian"."""

    @property
    def is_variational(self) -> bool:
        """True when the encoder gives q(z | x) = N(mu, exp(logvar)) and a KL term to N(0, I)
        (there is a prior to sample); False for a deterministic autoencoder (logvar is None)."""

    @property
    def num_classes(self) -> int:
        """Classes of the label a conditional model takes; 0 for an unconditional one."""

    @property
    def conditional(self) -> bool:
        """True when encode and decode need labels y (num_classes > 0)."""

    @property
    def device(self) -> torch.device:
        """Where inputs must be (outputs come back there too)."""

    def encode(self, x: torch.Tensor, y: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """x (B, C, H, W) -> (mu (B, z), logvar (B, z), or None for a deterministic model)."""

    def decode(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """z (B, z) -> images (B, C, H, W) in [0, 1], the decoder's mean."""

    def recon_nll(self, x: torch.Tensor, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """-log p(x | z) per example (B,) in nats, under the model's likelihood."""
