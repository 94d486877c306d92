"""Images and figures the pages share: an image or a grid enlarged with crisp pixels and a PNG
download, the plotly modebar's settings, the class palette, and the latent scatter with its
click-to-select."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import streamlit as st

from core.app import catalog
from core.data.images import to_png
from core.data.registry import REGISTRY
from pages._ui_state import presenting

if TYPE_CHECKING:
    import plotly.graph_objects as go

    from core.experiments.anomaly import RocCurve

PALETTE = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
    "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
]  # fmt: skip
HOVER = "%{customdata[1]}<br>x %{x:.2f}, y %{y:.2f}<extra></extra>"

# ---------------------------------------------------------------- images


PRESENT_MIN = 256  # px: in presenter mode every image's short side is at least this


def display_scale(shape: tuple[int, ...], target: int, min_short: int | None = None) -> int:
    """Integer upscaling (nearest neighbour: crisp pixels) so an image's long side is about
    ``target`` pixels, and its short side at least ``min_short`` pixels (None: presenter mode's
    PRESENT_MIN when it is on, else 0)."""
    h, w = shape[-2:]
    min_short = min_short_side() if min_short is None else min_short
    return max(1, round(target / max(h, w)), -(-min_short // max(1, min(h, w))))


def min_short_side() -> int:
    """The smallest short side an image is shown at: PRESENT_MIN in presenter mode, else 0."""
    return PRESENT_MIN if presenting() else 0


READABLE_MIN = 128  # px: in presenter mode a tile of a strip or a secondary picture is at least this
READABLE_ZOOM = 2  # screen pixels per image pixel, at least, for the same tiles (a 64 px image: 128 px)
PRESENT_WIDTH = 960  # px: the main column of a 1024-px projector in presenter mode


def readable_side(shape: tuple[int, ...]) -> int:
    """The short side a tile or a secondary picture of images ``shape`` (…, H, W) is shown at, at
    least, for the back of the room: in presenter mode 128 px or 2 px per image pixel, else 0."""
    return max(READABLE_MIN, READABLE_ZOOM * max(shape[-2:])) if presenting() else 0


def strip_columns(n: int, shape: tuple[int, ...]) -> int:
    """Tiles per row of a strip of ``n`` images ``shape``: all of them in one row, except in
    presenter mode, where a row holds only as many readable tiles as fit (a second row instead of
    tiles shrunk to 77 px)."""
    side = readable_side(shape)
    return n if not side else max(1, min(n, PRESENT_WIDTH // (side + 4)))


def is_faces(entry: catalog.ModelEntry) -> bool:
    """A model of faces (its images are shown a little larger than digits)."""
    spec = REGISTRY.get(entry.dataset)
    return spec is not None and spec.kind == "faces"


def image(
    img: np.ndarray,
    caption: str | None = None,
    *,
    file_name: str,
    key: str,
    target: int = 280,
    download: bool = True,
    min_short: int | None = None,
) -> bytes:
    """Show one image (C, H, W) / (H, W) in [0, 1] or uint8, enlarged with crisp pixels, with a
    PNG download button under it; ``min_short`` as in :func:`display_scale`. Returns the PNG bytes."""
    arr = np.asarray(img)
    png = to_png(arr, display_scale(arr.shape, target, min_short))
    st.image(png, caption=caption, output_format="PNG")
    if download:
        png_download(png, file_name, key)
    return png


def png_download(png: bytes | Callable[[], bytes], file_name: str, key: str) -> None:
    """A small "PNG" download button for image bytes already shown above it, or for a function
    that makes them (on the server, only when the button is clicked)."""
    st.download_button(
        ":material/download: PNG",
        png if callable(png) else lambda: png,  # deferred: nothing is stored until it is clicked
        file_name=file_name,
        mime="image/png",
        key=key,
        on_click="ignore",
        type="tertiary",
    )


def grid_scale(grid: np.ndarray, target: int = 720, min_short: int | None = None) -> int:
    """Integer upscaling of a grid (H, W[, 3]): long side about ``target`` (at most 6×), short
    side at least ``min_short`` pixels (None: as in ``display_scale``; at most 16×)."""
    min_short = min_short_side() if min_short is None else min_short
    fit = max(1, min(6, round(target / max(grid.shape[:2]))))
    return max(fit, min(16, -(-min_short // max(1, min(grid.shape[:2])))))


def grid_image(grid: np.ndarray, caption: str | None = None, *, file_name: str, key: str, target: int = 720) -> bytes:
    """Show a tiled grid (uint8 (H, W) or (H, W, 3)) with a PNG download."""
    png = to_png(grid, grid_scale(grid, target))
    st.image(png, caption=caption, output_format="PNG")
    png_download(png, file_name, key)
    return png


# ---------------------------------------------------------------- figures


PLOT_FORMATS = {"png": "PNG", "svg": "SVG"}  # what the modebar's camera saves (the format_picker's choice)


def plotly_config(file_name: str, *, select: bool = False) -> dict:
    """The modebar's camera button saves the figure as ``file_name`` in the format picked with
    :func:`format_picker` (PNG by default, SVG for slides); ``select`` keeps the lasso and box tools."""
    state = st.session_state  # the picker's own key first: it may sit below the plot, so drawn after this
    fmt = state.get("plot_format_pick", state.get("plot_format", "png"))
    return {
        "displaylogo": False,
        "toImageButtonOptions": {"format": fmt if fmt in PLOT_FORMATS else "png", "filename": file_name, "scale": 2},
        "modeBarButtonsToRemove": [] if select else ["lasso2d", "select2d"],
    }


def format_picker(container=st) -> str:
    """The "Plots save as PNG / SVG" switch: the camera button's format on every page (kept in
    ``plot_format``, so it outlives the widget)."""
    state = st.session_state
    state.setdefault("plot_format_pick", state.get("plot_format", "png"))
    fmt = container.segmented_control(
        "Plots save as",
        list(PLOT_FORMATS),
        format_func=PLOT_FORMATS.get,
        key="plot_format_pick",
        required=True,
        help="The camera icon above a plot saves it in this format: SVG stays sharp on slides.",
    )
    state["plot_format"] = fmt
    return fmt


def scatter(
    coords: np.ndarray,
    labels: np.ndarray | None,
    names: tuple[str, ...] | None,
    axis_labels: tuple[str, str],
    *,
    highlight: int | None = None,
    group: list[int] | None = None,
    height: int = 520,
    title: str | None = None,
    colour_by: tuple[str, np.ndarray] | None = None,
):
    """A plotly scatter of 2-D points (N, 2), one trace per class (point i carries i in
    custom_data), or one trace coloured by row for unlabelled data or many classes, or by
    ``colour_by`` = (name, values (N,)); ``group``: rows ringed in black (a lasso selection),
    ``highlight``: a row starred."""
    import plotly.graph_objects as go

    fig = go.Figure()
    if colour_by is None and labels is not None and names is not None and len(names) <= len(PALETTE):
        fig.add_traces(_class_traces(coords, labels, names))
    else:
        fig.add_trace(_colour_trace(coords, labels, names, colour_by))
    if group:
        fig.add_trace(_rings(coords[[r for r in group if 0 <= r < len(coords)]]))
    if highlight is not None and 0 <= highlight < len(coords):
        fig.add_trace(_star(coords[highlight]))
    fig.update_layout(
        height=height,
        margin={"l": 10, "r": 10, "t": 40 if title else 30, "b": 10},
        xaxis_title=axis_labels[0],
        yaxis_title=axis_labels[1],
        # a colour bar takes the right margin: the legend goes below the plot
        legend={"itemsizing": "constant", **({"orientation": "h", "y": -0.15} if colour_by else {})},
        title=title,
        clickmode="event+select",
        dragmode="pan",
    )
    return fig


def _class_traces(coords: np.ndarray, labels: np.ndarray, names: tuple[str, ...]) -> list:
    """One trace per class, in the palette's colour; custom_data: (row, hover text)."""
    import plotly.graph_objects as go

    ids = np.arange(len(coords))
    traces = []
    for c in np.unique(labels):
        m = labels == c
        traces.append(
            go.Scattergl(
                x=coords[m, 0],
                y=coords[m, 1],
                mode="markers",
                name=names[c],
                marker={"size": 6, "opacity": 0.75, "color": PALETTE[c % len(PALETTE)]},
                customdata=np.stack([ids[m], [f"#{i} · {names[c]}" for i in ids[m]]], axis=1),
                hovertemplate=HOVER,
            )
        )
    return traces


def _colour_trace(
    coords: np.ndarray,
    labels: np.ndarray | None,
    names: tuple[str, ...] | None,
    colour_by: tuple[str, np.ndarray] | None = None,
):
    """One trace coloured by ``colour_by``'s values, by class (many classes) or by row (no labels);
    custom_data as above."""
    import plotly.graph_objects as go

    ids = np.arange(len(coords))
    colour = colour_by[1] if colour_by else labels if labels is not None else ids
    bar = colour_by[0] if colour_by else "class" if labels is not None else "row"
    text = [f"#{i}" + (f" · {names[labels[i]]}" if names is not None and labels is not None else "") for i in ids]
    if colour_by:
        text = [f"{t} · {bar} {v:.4g}" for t, v in zip(text, colour_by[1], strict=True)]
    return go.Scattergl(
        x=coords[:, 0],
        y=coords[:, 1],
        mode="markers",
        name="images",
        marker={
            "size": 7,
            "opacity": 0.8,
            "color": colour,
            "colorscale": "Viridis",
            "colorbar": {"title": bar, **({"tickformat": ".1e"} if colour_by else {})},
        },
        customdata=np.stack([ids, text], axis=1),
        hovertemplate=HOVER,
    )


def _star(point: np.ndarray):
    """The selected point (2,), drawn as a star over the others."""
    import plotly.graph_objects as go

    return go.Scatter(
        x=[point[0]],
        y=[point[1]],
        mode="markers",
        name="selected",
        marker={"size": 16, "symbol": "star", "color": "black", "line": {"width": 1, "color": "white"}},
        hoverinfo="skip",
    )


def _rings(points: np.ndarray):
    """The points of a selected group (M, 2), ringed in black over the others."""
    import plotly.graph_objects as go

    return go.Scattergl(
        x=points[:, 0],
        y=points[:, 1],
        mode="markers",
        name="selected group",
        marker={"size": 10, "symbol": "circle-open", "color": "black", "line": {"width": 1.5}},
        hoverinfo="skip",
    )


def selected_points(event) -> tuple[tuple[int, ...], bool] | None:
    """The custom_data ids of the points in a plotly selection event and whether they were taken
    by a lasso or a box (a group) rather than a click; None when nothing is selected."""
    try:
        sel = event.selection
    except AttributeError:
        sel = event.get("selection") if isinstance(event, dict) else None
    if not sel:
        return None
    ids = []
    for p in sel.get("points") or []:
        data = p.get("customdata") if isinstance(p, dict) else None
        try:
            ids.append(int(data[0]))
        except (TypeError, ValueError, IndexError):
            continue
    if not ids:
        return None
    return tuple(dict.fromkeys(ids)), bool(sel.get("lasso") or sel.get("box"))


def selected_point(event) -> int | None:
    """The custom_data id of the clicked point in a plotly selection event, if any."""
    try:
        points = event.selection.points
    except AttributeError:
        try:
            points = event["selection"]["points"]
        except (KeyError, TypeError):
            return None
    for p in points or []:
        data = p.get("customdata") if isinstance(p, dict) else None
        if data:
            try:
                return int(data[0])
            except (TypeError, ValueError):
                continue
    return None


def mp4_download(container, images: np.ndarray, file_name: str, key: str, scale: int = 4) -> None:
    """An MP4 download of the frames (S, C, H, W) in [0, 1] when imageio-ffmpeg is installed, else
    one line saying that only the GIF is offered (MP4 plays smoothly in slides; GIF everywhere)."""
    from core.lenses.latent import can_write_mp4, mp4_bytes

    if not can_write_mp4():
        container.caption("GIF only: MP4 needs the optional imageio-ffmpeg package, not installed here.")
        return
    container.download_button(
        ":material/download: MP4",
        lambda: mp4_bytes(images, scale=scale),
        file_name=file_name,
        mime="video/mp4",
        key=key,
        on_click="ignore",
        type="tertiary",
    )


# ---------------------------------------------------------------- anomaly scores
ANOMALY_COLOURS = {"normal": "#1f77b4", "anomalous": "#d62728", "baseline": "#7f7f7f", "you": "#2ca02c"}


def score_histogram(
    scores: np.ndarray,
    is_anomaly: np.ndarray,
    names: tuple[str, str],
    threshold: float,
    user_score: float | None,
    x_title: str,
) -> go.Figure:
    """Overlaid histograms of the normal and anomalous scores (each as a share of its group),
    the threshold and, when given, the user's own score. ``names``: (normal, anomalous) in words."""
    import plotly.graph_objects as go

    lo, hi = float(scores.min()), max(float(scores.max()), float(scores.min()) + 1e-6)
    fig = go.Figure()
    bins = {"start": lo, "end": hi, "size": (hi - lo) / 60 or 1.0}
    for group, mask, name in (("normal", ~is_anomaly, names[0]), ("anomalous", is_anomaly, names[1])):
        if group == "anomalous" and not mask.any():  # no labels: one histogram of every score
            continue
        fig.add_trace(
            go.Histogram(
                x=scores[mask],
                name=f"{group}: {name} ({int(mask.sum()):,})",
                xbins=bins,
                histnorm="probability",
                marker_color=ANOMALY_COLOURS[group],
                opacity=0.6,
            )
        )
    fig.add_vline(x=threshold, line={"color": "black", "dash": "dash"}, annotation_text="threshold")
    if user_score is not None:
        fig.add_vline(x=user_score, line={"color": ANOMALY_COLOURS["you"], "width": 3}, annotation_text="your image")
    fig.update_layout(
        barmode="overlay",
        height=360,
        margin={"l": 10, "r": 10, "t": 30, "b": 10},
        xaxis_title=x_title,
        yaxis_title="share of its group",
        legend={"orientation": "h", "y": 1.12},
    )
    return fig


BASELINE_DASHES = ("solid", "dash", "dashdot", "longdash")


def roc_chart(
    curves: dict[str, RocCurve], baseline: str | tuple[str, ...] | None, point: tuple[float, float]
) -> go.Figure:
    """ROC curves by title (the ``baseline`` title or titles in grey, one dash each) and the
    threshold's (false-alarm rate, recall)."""
    import plotly.graph_objects as go

    baselines = (baseline,) if isinstance(baseline, str) else tuple(baseline or ())
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="chance", line={"color": "#bbb", "dash": "dot"}))
    for title, c in curves.items():
        line = {"color": ANOMALY_COLOURS["anomalous"]}
        if title in baselines:
            dash = BASELINE_DASHES[baselines.index(title) % len(BASELINE_DASHES)]
            line = {"color": ANOMALY_COLOURS["baseline"], "dash": dash, "width": 1.5}
        fig.add_trace(go.Scatter(x=c.fpr, y=c.tpr, mode="lines", name=f"{title} (AUROC {c.auroc:.3f})", line=line))
    fig.add_trace(
        go.Scatter(
            x=[point[0]],
            y=[point[1]],
            mode="markers",
            name="the threshold",
            marker={"size": 12, "color": "black", "symbol": "x"},
        )
    )
    fig.update_layout(
        height=360,
        margin={"l": 10, "r": 10, "t": 30, "b": 10},
        xaxis_title="false-alarm rate (normal images flagged)",
        yaxis_title="recall (anomalies flagged)",
        legend={"x": 0.98, "y": 0.02, "xanchor": "right", "yanchor": "bottom", "bgcolor": "rgba(255,255,255,0.8)"},
        xaxis={"range": [0, 1]},
        yaxis={"range": [0, 1.02], "scaleanchor": "x"},
    )
    return fig


def row_bars(features: tuple[str, ...], rows: dict[str, np.ndarray]) -> go.Figure:
    """A table's row(s) as grouped horizontal bars, one group per feature: ``rows`` maps a name
    ("this row", "reconstruction") to its (F,) standardised values (standard deviations from the
    training rows' mean)."""
    import plotly.graph_objects as go

    fig = go.Figure()
    colours = (ANOMALY_COLOURS["normal"], ANOMALY_COLOURS["anomalous"], ANOMALY_COLOURS["baseline"])
    for (name, values), colour in zip(rows.items(), colours, strict=False):
        fig.add_trace(go.Bar(y=list(features), x=np.asarray(values).ravel(), name=name, orientation="h",
                             marker_color=colour))  # fmt: skip
    fig.update_layout(
        barmode="group",
        height=max(260, 22 * len(features) + 80),
        margin={"l": 10, "r": 10, "t": 30, "b": 10},
        xaxis_title="standardised value (SDs from the training rows' mean)",
        yaxis={"autorange": "reversed"},
        legend={"orientation": "h", "y": 1.02, "yanchor": "bottom"},
    )
    return fig
