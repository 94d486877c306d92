"""Home: what an autoencoder and a VAE are, and which models this install has."""

from pathlib import Path

import streamlit as st

from core.checkpoints import list_checkpoints
from core.data import REGISTRY

CHECKPOINTS = Path(__file__).resolve().parent.parent / "checkpoints"

st.title("Latent Lab")
st.markdown(
    """
An **autoencoder** squeezes an image through a small code *z* and rebuilds it. A **variational
autoencoder** (VAE) makes the code a distribution q(z|x) and pulls it towards N(0, I), so that
any point of the latent space decodes to a plausible image. It is trained on the **ELBO**:

$$
-\\text{ELBO}(x) = \\underbrace{\\mathbb{E}_{q(z|x)}[-\\log p(x|z)]}_{\\text{reconstruction}}
+ \\beta \\cdot \\underbrace{\\mathrm{KL}\\big(q(z|x)\\,\\|\\,\\mathcal{N}(0, I)\\big)}_{\\text{regulariser}}
$$

The **reparameterization trick** writes a sample as z = μ + σ·ε with ε ~ N(0, I), so the
gradient flows through μ and σ.
"""
)

st.subheader("Models in this install")
infos = list_checkpoints(CHECKPOINTS)
if infos:
    for info in infos:
        st.write(("✅ " if info.ok else "⚠️ ") + info.summary())
else:
    st.info("No checkpoints yet. Train one with `python -m core train --dataset mnist-5k --out checkpoints/NAME`.")

st.subheader("Data sets")
st.table(
    [{"name": s.name, "title": s.title, "image": f"{s.image_shape[1]}×{s.image_shape[2]}"} for s in REGISTRY.values()]
)
