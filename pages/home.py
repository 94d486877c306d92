"""Home: what an autoencoder and a VAE are, the ELBO, the reparameterization trick, and a map
of the demos."""

import streamlit as st

from core.data import REGISTRY
from pages import _ui_load as load
from pages import _ui_state as state_ui

st.title("Latent Lab")
state_ui.notes_slot()
st.markdown(
    """
Look inside variational autoencoders. Pick a model in the sidebar, then open a demo below:
every page says what you are looking at and the one idea it teaches.
"""
)

left, right = st.columns([1.15, 1], gap="large")
with left:
    st.subheader("From autoencoder to VAE")
    st.markdown(
        r"""
An **autoencoder** squeezes an image $x$ through a small code $z$ and rebuilds it: an encoder
maps $x \mapsto z$, a decoder maps $z \mapsto \hat{x}$, and training makes $\hat{x}$ close to
$x$. The codes it learns can sit anywhere, with gaps between them, so a random $z$ usually
decodes to nonsense.

A **variational autoencoder** (VAE; Kingma & Welling, 2014) makes the code a distribution
$q(z \mid x) = \mathcal{N}(\mu(x), \sigma^2(x))$ and pulls every one of them towards the prior
$p(z) = \mathcal{N}(0, I)$. The codes then fill the space around the origin without holes,
and any point near it decodes to a plausible image: the VAE is a generative model.

It is trained by maximising the **ELBO** (evidence lower bound) on $\log p(x)$, that is by
minimising

$$
\begin{aligned}
-\text{ELBO}(x) = {} & \underbrace{\mathbb{E}_{q(z\mid x)}\big[-\log p(x \mid z)\big]}_{\text{reconstruction}} \\
& + \beta \cdot \underbrace{\mathrm{KL}\big(q(z \mid x)\,\|\,p(z)\big)}_{\text{regulariser}}
\end{aligned}
$$

The first term rewards rebuilding $x$ from its code, the second keeps each code's distribution
close to the prior $p(z) = \mathcal{N}(0, I)$; $\beta = 1$ for the plain VAE, and a larger
$\beta$ (a β-VAE) trades sharpness for a tidier code.

The **reparameterization trick** makes the sampling step trainable: instead of drawing
$z \sim q(z \mid x)$ directly, draw $\varepsilon \sim \mathcal{N}(0, I)$ and set
$z = \mu + \sigma \odot \varepsilon$. The randomness is now an input, and gradients flow
through $\mu$ and $\sigma$ to the encoder.
"""
    )

with right:
    st.subheader("The demos")
    st.page_link(
        "pages/latent_sliders.py", label="**Latent sliders**: one slider per latent dimension", icon=":material/tune:"
    )
    st.caption("What each dimension of the code does to the image.")
    st.page_link(
        "pages/sampling_manifold.py", label="**Sampling and the manifold**: decode N(0, I)", icon=":material/casino:"
    )
    st.caption("A VAE as a generator; temperature; the 2-D grid of Kingma & Welling's figure.")
    st.page_link(
        "pages/latent_map.py", label="**Latent map**: every test image as a point", icon=":material/scatter_plot:"
    )
    st.caption("Classes cluster without labels; click a point to see its reconstruction.")
    st.page_link(
        "pages/interpolate.py", label="**Interpolation**: walk from one image to another", icon=":material/swap_horiz:"
    )
    st.caption("Linear, spherical and pixel-space paths, as a strip and a GIF.")
    st.page_link("pages/ae_vs_vae.py", label="**AE vs VAE**: the same images through both", icon=":material/compare:")
    st.caption("Why the KL term turns an autoencoder into a generative model.")
    st.page_link(
        "pages/your_image.py", label="**Your own image**: encode a photo or a drawing", icon=":material/image:"
    )
    st.caption("Upload a digit or a face and see what the model makes of it.")
    st.page_link(
        "pages/beta_sweep.py",
        label="**β sweep**: one VAE per β, side by side",
        icon=":material/stacked_line_chart:",
    )
    st.caption("β trades reconstruction for KL: the code empties towards the prior; run a sweep yourself.")
    st.page_link(
        "pages/denoising.py", label="**Denoising**: a denoising AE against filters", icon=":material/blur_off:"
    )
    st.caption("Corrupt test images; compare autoencoders, PCA and scikit-image by PSNR and SSIM.")
    st.page_link(
        "pages/anomalies.py", label="**Anomaly detection**: reconstruction error as a score", icon=":material/report:"
    )
    st.caption("What a model never saw reconstructs badly: histograms, ROC and the top outliers.")
    st.page_link("pages/train.py", label="**Train a model**: in the browser", icon=":material/model_training:")
    st.caption("Any model of the family on any data set, with live loss curves; saved to your checkpoints.")
    st.info(
        "For a talk: every page keeps its settings in the address bar, so a bookmark brings the "
        "same view back; every image has a PNG download, and charts save from the camera icon.",
        icon=":material/co_present:",
    )

with st.expander("Models and data sets in this install"):
    entries = load.models()
    if entries:
        for e in entries:
            st.write(("✅ " if e.ok else "⚠️ ") + (f"{e.label}: {e.title}" if e.ok else f"{e.label}: {e.error}"))
    else:
        st.info(
            "No checkpoints yet. Train one with `python -m core train --dataset mnist-5k --out user_checkpoints/NAME`."
        )
    st.table(
        [
            {"name": s.name, "title": s.title, "image": f"{s.image_shape[1]}×{s.image_shape[2]}"}
            for s in REGISTRY.values()
        ]
    )
