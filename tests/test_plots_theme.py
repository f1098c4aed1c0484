"""qoslab.plots.theme: a figure's dark twin, the colours it takes, and the HTML that picks."""

from __future__ import annotations

import base64
import io
import re

import numpy as np
import pytest
from matplotlib.colors import to_hex
from PIL import Image

import qoslab
from qoslab import plots
from qoslab.plots._common import EVENT_STYLES, STYLE, plot_style
from qoslab.plots.chart import SPIKE_COLOR
from qoslab.plots.theme import (
    DARK_PAPER,
    GRAPHIC_CONTRAST,
    TEXT_CONTRAST,
    contrast_ratio,
    dark_color,
    figure_html,
    figure_pngs,
)
from tests.test_plots_chart import spiky_run


def latency_figure():
    run = spiky_run()
    return plots.latency(run, kind="line", spikes=qoslab.analysis.detect_spikes(run.probes),
                         logy=True)


def rgba(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGBA"))


def colours_of(fig) -> list:
    """Every colour an artist of the figure holds, in a stable order."""
    out = []
    for art in fig.findobj():
        for name in ("get_color", "get_facecolor", "get_edgecolor", "get_markerfacecolor"):
            get = getattr(art, name, None)
            if get is not None:
                value = get()
                rows = [value] if isinstance(value, str) or np.ndim(value) == 1 else value
                out.append([to_hex(c, keep_alpha=True) for c in rows])
    return out


def test_light_figure_is_the_design_unchanged_and_the_figure_is_left_as_it_was():
    fig = latency_figure()
    buf = io.BytesIO()
    with plot_style():
        fig.savefig(buf, format="png", dpi=100, bbox_inches=None)
    before = colours_of(fig)
    light, dark = figure_pngs(fig)
    assert light == buf.getvalue()  # the light figure is exactly what was drawn before
    assert colours_of(fig) == before
    assert figure_pngs(fig)[0] == light  # drawing the twin leaves no trace on the next light one
    assert rgba(light)[2, 2].tolist() == [255, 255, 255, 255]  # white paper, opaque


def test_dark_twin_has_transparent_paper_and_ink_that_reads_on_a_dark_page():
    light, dark = figure_pngs(latency_figure())
    px = rgba(dark)
    assert px.shape == rgba(light).shape  # same layout, same size
    assert (px[..., 3] == 0).mean() > 0.5  # the page shows through: no slab
    # composited on the lightest dark page, the text and axes read at 4.5:1
    page = np.array([int(DARK_PAPER[i:i + 2], 16) for i in (1, 3, 5)], dtype=float)
    a = px[..., 3:4] / 255.0
    seen = px[..., :3] * a + page * (1 - a)
    opaque = seen[px[..., 3] > 250]
    lum = np.array([contrast_ratio(c / 255.0, DARK_PAPER) for c in np.unique(
        opaque.round().astype(int), axis=0)])
    assert (lum >= TEXT_CONTRAST).sum() > 3  # several ink colours (text, spines, data)


def test_dark_colours_keep_their_hue_and_reach_their_contrast():
    import colorsys

    for name, style in EVENT_STYLES.items():
        twin = dark_color(style["color"])
        assert contrast_ratio(twin, DARK_PAPER) >= GRAPHIC_CONTRAST, name
        h0 = colorsys.rgb_to_hls(*[int(style["color"][i:i + 2], 16) / 255 for i in (1, 3, 5)])
        h1 = colorsys.rgb_to_hls(*[int(twin[i:i + 2], 16) / 255 for i in (1, 3, 5)])
        if h0[2] > 0.12:  # a colour, not a grey: same hue
            assert h1[0] == pytest.approx(h0[0], abs=0.01), name
    assert contrast_ratio(dark_color("#000000", minimum=TEXT_CONTRAST), DARK_PAPER) >= 4.5
    assert contrast_ratio(dark_color(STYLE["axes.edgecolor"]), DARK_PAPER) >= 3
    assert dark_color("#ffffff", minimum=1) == "#000000"  # paper swaps with ink
    assert dark_color((1, 0, 0, 0.3)).endswith("4c")  # alpha kept
    assert to_hex(dark_color(SPIKE_COLOR)) == to_hex(SPIKE_COLOR)  # already readable: unchanged


def test_figure_html_shows_the_light_figure_unless_the_page_is_dark():
    fig = latency_figure()
    light, dark = figure_pngs(fig)
    page = figure_html(fig, pngs=(light, dark))
    imgs = re.findall(r'<img class="(qoslab-figure-\w+)"( hidden)? alt="([^"]*)" '
                      r'src="data:image/png;base64,([^"]+)">', page)
    assert [(c, h) for c, h, _, _ in imgs] == [("qoslab-figure-light", ""),
                                               ("qoslab-figure-dark", " hidden")]
    assert base64.b64decode(imgs[0][3]) == light and base64.b64decode(imgs[1][3]) == dark
    assert imgs[0][2].startswith("toy, simulated")  # the title as alt text
    assert "[data-jp-theme-light='false'] .qoslab-figure .qoslab-figure-light{display:none}" \
        in page


def test_figures_and_widget_outputs_carry_both_twins_and_the_png_fallback():
    from IPython.core.formatters import DisplayFormatter

    from qoslab.widgets._base import figure_bundle

    fig = latency_figure()
    data, meta = DisplayFormatter().format(fig)
    assert data["text/html"].count("<img") == 2 and data["image/png"][:4] in (
        b"\x89PNG", "iVBO")
    assert meta["image/png"] == {"needs_background": "light"}
    out = figure_bundle(fig)
    assert out["data"]["text/html"].count("<img") == 2
    assert base64.b64decode(out["data"]["image/png"]) == figure_pngs(fig)[0]
    light_only = figure_bundle(fig, dark_twin=False)
    assert set(light_only["data"]) == {"image/png", "text/plain"}
    assert light_only["data"]["image/png"] == out["data"]["image/png"]
    assert fig._repr_png_()[0] == figure_pngs(fig)[0]
