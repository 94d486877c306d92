"""A latent-diffusion VAE (Stable Diffusion's, FLUX's, yours): what its spatial latent keeps and loses."""

import numpy as np
import streamlit as st

from core.app import catalog
from core.app.jobs import FractionProgress, SharedJobs, start_computation
from core.data.registry import fit_images
from core.lenses.latent import image_grid
from core.lenses.spatial import (
    Reconstruction,
    SetScan,
    channel_shift,
    interpolate_spatial,
    latent_stats,
    noise_robustness,
    reconstruction,
    scaling_check,
    scan_set,
)
from pages import _ui_charts as charts
from pages import _ui_jobs as jobs_ui
from pages import _ui_load as load
from pages import _ui_state as state_ui

PAGE = {  # this page's row of the page table (core/app/site.py)
    "title": "Latent-diffusion VAE",
    "icon": ":material/blur_on:",
    "url_path": "latent-diffusion",
    "section": "Explore",
    "order": 75,
    "params": ("size", "image", "channel", "delta", "region", "row"),
    "tagline": "the VAE under Stable Diffusion, checked",
    "blurb": "Reconstruction, latent channels, the scaling factor, channel shifts and noise.",
    "inputs": ("spatial",),
}
N_IMAGES = 8  # images measured at once (a real SD VAE at 256² takes seconds each on a CPU)
N_SET = 48  # images on the map of pooled codes, at the smallest size
SIGMAS = (0.0, 0.1, 0.25, 0.5, 1.0)
REGIONS = {"all": "everywhere", "left": "left half", "top": "top half", "centre": "centre quarter"}

state_ui.intro(
    "Latent-diffusion VAE",
    """
A latent-diffusion model (Stable Diffusion, SDXL, SD3, FLUX) works on a small **map of latents**
from its VAE, C channels × H/8 × W/8, scaled by the VAE's `scaling_factor` (less its `shift_factor`)
so that it looks like N(0, 1). The bugs are visual and silent: a wrong factor after swapping a VAE,
colour shifts, lost fine detail, a decoder that breaks on slightly-off latents; this page shows each
on your images.
""",
)

cur = load.current()
model = cur.model
for note in model.notes:
    st.warning(note)
data = load.data(cur.entry.dataset, on_missing="warn")  # at its own size: the page fits it
if data is None:
    st.stop()
state = st.session_state
f = model.downsample
if model.fixed_size and model.fixed_size[0] == model.fixed_size[1]:
    sizes = [model.fixed_size[0]]  # an export of one image size takes no other
else:
    sizes = [s for s in (64, 128, 256, 512) if s % f == 0] or [8 * f]
if state_ui.first_visit(PAGE["url_path"]):  # a bookmark's settings, each checked
    for key, name, parser, args in (
        ("ld_size", "size", catalog.parse_choice, ([str(s) for s in sizes], "image size")),
        ("ld_image", "image", catalog.parse_int, (0, N_IMAGES - 1, "image")),
        ("ld_channel", "channel", catalog.parse_int, (0, model.latent_channels - 1, "channel")),
        ("ld_delta", "delta", catalog.parse_float, (-3.0, 3.0, "δ")),
        ("ld_region", "region", catalog.parse_choice, (list(REGIONS), "region")),
        ("ld_row", "row", catalog.parse_int, (0, N_SET - 1, "image of the set")),
    ):
        value = state_ui.link_value(name, parser, *args)
        if value is not None:
            state[key] = int(value) if key == "ld_size" else value
state_ui.show_link_notes()
state.setdefault("ld_size", 128 if 128 in sizes and data.image_shape[-1] >= 96 else sizes[0])
state.setdefault("ld_method", "linear")
top = st.columns([1, 1, 2])
size = top[0].selectbox("Image size", sizes, key="ld_size", help=f"Sides must be multiples of {f}")


@st.cache_resource
def _jobs() -> SharedJobs[FractionProgress, Reconstruction | SetScan]:
    """This process's encode/decode runs, one per model, data set, image size and purpose, shared by
    every session: a 256² or 512² set takes seconds to minutes on a CPU, so it runs in the background
    (other sessions go on) with its progress shown, and is kept for later visits."""
    return SharedJobs()


def test_images(n: int, side: int) -> np.ndarray:
    """n of the data set's test images, spread over it, fitted to 3 × side × side in [0, 1]."""
    rows = np.linspace(0, len(data.test_x) - 1, min(n, len(data.test_x))).round().astype(int)
    return fit_images(data.test_x[rows], (3, side, side))


def in_background(purpose: str, side: int, n: int, lens, what: str):
    """``lens(model, images, progress=...)`` on n test images at side², as a shared background job."""
    key = (cur.key, cur.entry.mtime, data.name, side, n, purpose)
    x = test_images(n, side)
    begin = lambda: start_computation(lambda report: lens(model, x, progress=report), f"spatial-{purpose}")  # noqa: E731
    return x, jobs_ui.computed(_jobs(), key, begin, what, state_key=f"ld_{purpose}_job")


x, rec = in_background("page", size, N_IMAGES, reconstruction, f"Encoding and decoding {N_IMAGES} images at {size}²")
shown = max(256, size)  # px on screen: small images enlarged with crisp pixels, large ones at full resolution
state["ld_image"] = min(int(state.get("ld_image", 0)), len(x) - 1)
which = top[1].number_input("Image", 0, len(x) - 1, key="ld_image")
top[2].metric(
    f"PSNR / SSIM over {len(x)} images",
    f"{rec.mean_psnr:.1f} dB / {rec.mean_ssim:.3f}",
    help="Peak signal-to-noise ratio (data range 1) and structural similarity of each reconstruction, averaged",
)

st.subheader("1 · Reconstruction at full resolution")
cols = st.columns(3)
with cols[0]:
    charts.image(x[which], f"original, {size}×{size}", file_name="original.png", key="ld_orig", target=shown)
with cols[1]:
    charts.image(rec.recon[which], f"reconstruction: {rec.psnr[which]:.1f} dB, SSIM {rec.ssim[which]:.3f}",
                 file_name="reconstruction.png", key="ld_recon", target=shown)  # fmt: skip
with cols[2]:
    heat = rec.diff[which] / max(float(rec.diff[which].max()), 1e-6)
    charts.image(heat, f"|difference| (brightest {rec.diff[which].max():.3f})", file_name="difference.png",
                 key="ld_diff", target=shown)  # fmt: skip
crop = st.slider("Zoom: crop side (px), centred", 8, size, min(size, max(8, size // 4)), step=8, key="ld_crop")
lo = (size - crop) // 2
zoom = np.stack([x[which][:, lo : lo + crop, lo : lo + crop], rec.recon[which][:, lo : lo + crop, lo : lo + crop]])
st.image(charts.to_png(image_grid(zoom, nrow=2), max(1, 256 // crop)), caption="the centre crop: original | decoded")

st.subheader("2 · The latent: channels, statistics and the scaling factor")
latents = rec.latents  # (N, C, h, w), scaled as the diffusion model sees them
check = scaling_check(model, latents)
(st.warning if check.warning else st.success)(check.message)
stats = latent_stats(latents)
chan = np.clip((latents[which] + 3) / 6, 0, 1)[:, None]  # each channel as a picture, −3…3 → black…white
side = f"{chan.shape[-2]}×{chan.shape[-1]}"
st.image(
    charts.to_png(image_grid(chan, nrow=len(chan)), max(1, 96 // chan.shape[-1])),
    caption=f"the {len(chan)} channels of image {which}'s latent ({side}), −3 black … +3 white",
)
st.dataframe(
    {"channel": list(range(len(stats.mean))), "mean": stats.mean.round(3), "std": stats.std.round(3)},
    hide_index=True,
    key="ld_stats",
)


def histogram():
    import plotly.graph_objects as go

    fig = go.Figure()
    fig.add_bar(x=stats.centres, y=stats.density, name="scaled latent, all channels", marker_color=charts.PALETTE[0])
    fig.add_scatter(x=stats.centres, y=stats.normal, name="N(0, 1)", line={"color": charts.PALETTE[3]})
    fig.update_layout(height=300, margin={"l": 10, "r": 10, "t": 30, "b": 10}, title="values against N(0, 1)",
                      bargap=0, legend={"orientation": "h", "y": -0.2})  # fmt: skip
    return fig


st.plotly_chart(histogram(), config=charts.plotly_config("latent-histogram"), key="ld_hist")

st.subheader("3 · Channel sliders: what each channel carries")
c = st.columns([1, 2, 1])
channel = c[0].selectbox("Channel", list(range(model.latent_channels)), key="ld_channel")
state.setdefault("ld_delta", 1.0)
delta = c[1].slider("δ added to the channel", -3.0, 3.0, step=0.25, key="ld_delta")
region = c[2].selectbox("Where", list(REGIONS), format_func=REGIONS.get, key="ld_region")
h, w = latents.shape[-2:]
mask = np.zeros((h, w), bool)
mask[{"all": np.s_[:, :], "left": np.s_[:, : w // 2], "top": np.s_[: h // 2, :],
      "centre": np.s_[h // 4 : 3 * h // 4, w // 4 : 3 * w // 4]}[region]] = True  # fmt: skip
shifted = channel_shift(model, latents[which : which + 1], channel, delta, mask)[0]
cols = st.columns(2)
with cols[0]:
    charts.image(rec.recon[which], "decoded as encoded", file_name="as-encoded.png", key="ld_base", target=shown)
with cols[1]:
    charts.image(shifted, f"channel {channel} + {delta:g} ({REGIONS[region]})", file_name="shifted.png",
                 key="ld_shifted", target=shown)  # fmt: skip

st.subheader("4 · Interpolation: latent space against pixel space")
method = st.segmented_control("Path", ["linear", "slerp", "pixels"], required=True, key="ld_method")
other = (which + 1) % len(x)
path = interpolate_spatial(model, x[which], x[other], steps=7, method=method or "linear")
st.image(charts.to_png(image_grid(path, nrow=len(path)), max(1, 128 // size)),
         caption=f"image {which} → image {other}, {method or 'linear'}")  # fmt: skip

st.subheader("5 · Robustness: noise on the latent")
noisy = noise_robustness(model, latents[which : which + 1], SIGMAS)
losses = ", ".join(f"{s:g} ({p:.1f} dB)" for s, p in zip(SIGMAS, noisy.mean_psnr, strict=True))
st.image(charts.to_png(image_grid(noisy.images[:, 0], nrow=len(SIGMAS)), max(1, 128 // size)), caption=f"σ = {losses}")
st.caption(
    "A diffusion model's sampler hands the decoder latents that are never exactly an encoder's: a decoder "
    "whose picture falls apart at small σ will show artefacts in generated images."
)
state_ui.set_link(size=size, image=which, channel=channel, delta=delta, region=region, row=state.get("ld_row", 0))

st.subheader("6 · The set: a map of pooled codes, neighbours and anomalies")
n_set = min(N_SET, len(data.test_x))
if n_set < 2:
    st.info(f"The map needs at least 2 test images; {data.name} has {len(data.test_x)}.")
    st.stop()
st.caption(
    f"{n_set} test images at {sizes[0]}×{sizes[0]}; each latent is average-pooled to 2 × 2 per channel, a short "
    "vector per image. Neighbours are the nearest such vectors; the anomaly score is the reconstruction's mean "
    "squared error: what the VAE cannot give back is least like what it was trained on."
)
xs, scan = in_background("set", sizes[0], n_set, scan_set, f"The map of {n_set} images at {sizes[0]}×{sizes[0]}")
state["ld_row"] = min(int(state.get("ld_row", 0)), len(xs) - 1)
row = st.number_input("Image of the set", 0, len(xs) - 1, key="ld_row")
code_map = charts.scatter(
    scan.plane,
    None,
    None,
    scan.axis_labels,
    highlight=row,
    height=420,
    title="pooled codes, coloured by reconstruction error",
    colour_by=("MSE", scan.error),
)
st.plotly_chart(code_map, config=charts.plotly_config("pooled-code-map"), key="ld_map")
near, dist = scan.neighbours(row, k=min(5, len(xs) - 1))
strip = np.concatenate([xs[row : row + 1], xs[near]])
# captions below, not in st.image: a caption wider than its strip would stretch the pictures
st.image(charts.to_png(image_grid(strip, nrow=len(strip)), max(1, 128 // sizes[0])))
nearest = ", ".join(f"{r} ({d:.2f})" for r, d in zip(near, dist, strict=True))
st.caption(f"image {row}, then its nearest by pooled code: {nearest}")
worst = scan.most_anomalous(min(5, len(xs)))
st.image(charts.to_png(image_grid(xs[worst], nrow=len(worst)), max(1, 128 // sizes[0])))
st.caption("the least typical: " + ", ".join(f"image {r} (MSE {scan.error[r]:.4f})" for r in worst))
