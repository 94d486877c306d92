"""Home: what an autoencoder and a VAE are, the ELBO, the reparameterization trick, and a map
of the demos."""

import streamlit as st

from core.app.site import demo_pages
from core.data.registry import REGISTRY, held_out_test
from pages import _ui_load as load
from pages import _ui_state as state_ui

PAGE = {  # this page's row of the page table (core/app/site.py)
    "title": "Home",
    "icon": ":material/home:",
    "url_path": "welcome",
    "section": "Latent Lab",
    "order": 0,
    "params": (),
    "tagline": "what an autoencoder and a VAE are",
    "blurb": "The ELBO, the reparameterization trick and a map of the demos.",
    "inputs": ("images", "table"),  # a table's model too (core/app/site.py INPUTS)
}

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


@st.cache_resource(show_spinner=False)
def offline_gaps(datasets: tuple[str, ...]) -> list[str]:
    """The data sets of the shipped models that cannot be shown without the network or a data
    folder: neither embedded nor with a held-out test split in the repository's ``data/``."""
    return [d for d in datasets if d in REGISTRY and not REGISTRY[d].embedded and held_out_test(d) is None]


shipped = tuple(sorted({e.dataset for e in load.models() if e.ok and e.source == "shipped"}))
gaps = offline_gaps(shipped)
with right:
    st.subheader("The demos")
    for spec in demo_pages():
        st.page_link(spec.file, label=f"**{spec.title}**: {spec.tagline}", icon=spec.icon)
        st.caption(spec.blurb + ("" if gaps else " :green-badge[:material/wifi_off: runs offline]"))
    if gaps:
        st.caption(
            "Offline, these data sets have no test images in this install, so their models' demos need "
            f"`LATENTLAB_DATA` or the network: {', '.join(gaps)}."
        )
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
