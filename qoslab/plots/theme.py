"""Figures on dark pages: the dark twin of a colour and of a figure, and the HTML that shows
the twin matching the page's theme.

A PNG cannot change its colours after it is drawn, and the kernel does not know the theme of
the page that will show it (JupyterLab's theme can change at any time, a report is read long
after it was made). So a figure is drawn twice -- as designed (light, white paper) and as its
dark twin (transparent paper, light ink, every hue kept but lifted until it stands out against
a dark page) -- and the page picks: :func:`figure_html` hides the twin that does not match
``data-jp-theme-light`` of the page (set by JupyterLab's theme manager and by the report
pages). Where a page drops the stylesheet (a notebook reopened untrusted), the light figure
alone shows, as it always did.

The zoomable charts (:mod:`.chart`) draw in the browser and take their ink from the page's
theme variables; their data colours use :func:`dark_color` for dark pages, so a colour means
the same in every figure of a theme.
"""

from __future__ import annotations

import base64
import colorsys
import functools
import html
import io
from typing import Any

import numpy as np
from matplotlib.collections import Collection
from matplotlib.colors import to_hex, to_rgba
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.text import Text

__all__ = ["DARK_PAPER", "TEXT_CONTRAST", "GRAPHIC_CONTRAST", "WASH_BOOST", "contrast_ratio", "dark_color",
           "figure_pngs", "figure_html", "light_png", "THEME_CSS"]

#: The lightest background a dark theme puts behind a figure (JupyterLab Dark's
#: ``--jp-layout-color1``; its notebook background ``#111`` gives every colour more contrast).
#: Dark twins are checked against it.
DARK_PAPER = "#212121"
#: Minimum contrast of text with the page (WCAG 2.x, AA for normal text).
TEXT_CONTRAST = 4.5
#: Minimum contrast of lines, markers and shapes that carry data (WCAG 2.x, non-text).
GRAPHIC_CONTRAST = 3.0
#: The light style's grid colour and the grid of a dark page (JupyterLab Dark's
#: ``--jp-border-color2``): as faint on dark as the light grid is on white.
_GRID_LIGHT, _GRID_DARK = "#e5e5e5", "#424242"
#: Below this HLS saturation a colour is a grey: its lightness is inverted (ink <-> paper).
_GREY_SATURATION = 0.12
#: The lightest ink of a dark twin (JupyterLab Dark's text, 87 % white on its background).
_INK_MAX_LIGHTNESS = 0.88
#: How much more opaque a translucent colour wash is on a dark page.
WASH_BOOST = 1.6

#: Shows the twin matching the page's theme (JupyterLab and report pages set
#: ``data-jp-theme-light`` on ``<body>``); the dark twin carries ``hidden`` so that a page
#: without this stylesheet shows the light figure only.
THEME_CSS = ("<style>.qoslab-figure img{max-width:100%;height:auto}"
             "[data-jp-theme-light='false'] .qoslab-figure .qoslab-figure-light{display:none}"
             "[data-jp-theme-light='false'] .qoslab-figure .qoslab-figure-dark[hidden]"
             "{display:inline-block}</style>")


def _luminance(rgb) -> float:
    c = np.asarray(rgb[:3], dtype=float)
    c = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    return float(0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2])


def contrast_ratio(a, b) -> float:
    """WCAG contrast ratio of two opaque colours (1 … 21).

    Examples
    --------
    >>> round(contrast_ratio("black", "white"), 1), round(contrast_ratio("#777777", "#777777"), 1)
    (21.0, 1.0)
    """
    la, lb = sorted((_luminance(to_rgba(a)), _luminance(to_rgba(b))), reverse=True)
    return (la + 0.05) / (lb + 0.05)


@functools.lru_cache(maxsize=4096)
def _dark_rgba(rgba: tuple, minimum: float) -> tuple:
    r, g, b, a = rgba
    if a == 0:
        return rgba
    h, light, s = colorsys.rgb_to_hls(r, g, b)
    if s < _GREY_SATURATION or max(r, g, b) - min(r, g, b) < 0.06:  # ink <-> paper
        light = min(1.0 - light, _INK_MAX_LIGHTNESS)
        if minimum <= 1.0:
            return (*colorsys.hls_to_rgb(h, light, s), a)
    # a colour keeps its hue and is lifted until it stands out against a dark page
    while contrast_ratio((*colorsys.hls_to_rgb(h, light, s), 1.0), DARK_PAPER) < minimum \
            and light < 0.97:
        light = min(0.97, light + 0.02)
    return (*colorsys.hls_to_rgb(h, light, s), a)


def dark_color(color, *, minimum: float = GRAPHIC_CONTRAST) -> str:
    """The colour ``color`` takes in a figure on a dark page.

    Greys swap ink and paper (black text becomes near-white, a white box near-black); any
    colour keeps its hue and is made lighter until its contrast with :data:`DARK_PAPER` is at
    least ``minimum`` (3:1 for lines and shapes, :data:`TEXT_CONTRAST` for text; ``1`` for
    paper, which is never lifted). Alpha is kept.

    Examples
    --------
    >>> dark_color("black", minimum=TEXT_CONTRAST), dark_color("white", minimum=1)
    ('#e0e0e0', '#000000')
    >>> dark_color("#b2182b")  # the hash change's dark red, lifted
    '#d61d34'
    >>> contrast_ratio(dark_color("#b2182b"), DARK_PAPER) >= GRAPHIC_CONTRAST
    True
    """
    rgba = _dark_rgba(tuple(float(v) for v in to_rgba(color)), float(minimum))
    return to_hex(rgba, keep_alpha=rgba[3] < 1)


def _dark_array(colors, minimum: float) -> np.ndarray:
    return np.array([_dark_rgba(tuple(float(v) for v in c), minimum)
                     for c in np.atleast_2d(colors)]).reshape(-1, 4) if len(colors) else colors


def _dark_face(rgba) -> tuple:
    """A filled area on a dark page: a grey swaps paper and ink; a colour is lifted like a line
    and, when translucent (a shaded span), made less so: a wash that reads on white all but
    vanishes on a dark page."""
    rgba = tuple(float(v) for v in rgba)
    if max(rgba[:3]) - min(rgba[:3]) < 0.06:
        return _dark_rgba(rgba, 1.0)
    r, g, b, a = _dark_rgba(rgba, GRAPHIC_CONTRAST)
    return (r, g, b, min(1.0, a * WASH_BOOST) if a < 0.5 else a)


def _is_paper(rgba) -> bool:
    """White or nearly: the figure's or a box's background."""
    return rgba[3] > 0 and min(rgba[:3]) > 0.94


class _Recolour:
    """Turns a figure into its dark twin and back (every change recorded, undone in reverse)."""

    def __init__(self, fig: Figure) -> None:
        self.fig = fig
        self.undo: list[tuple[Any, Any]] = []

    def _set(self, setter, old, new) -> None:
        self.undo.append((setter, old))
        setter(new)

    def _patch(self, p: Patch, *, paper: bool) -> None:
        face = tuple(p.get_facecolor())
        if paper and _is_paper(face):
            self._set(p.set_facecolor, face, (0.0, 0.0, 0.0, 0.0))
        elif face[3] > 0:
            self._set(p.set_facecolor, face, _dark_face(face))
        edge = tuple(p.get_edgecolor())
        if edge[3] > 0:
            self._set(p.set_edgecolor, edge, _dark_rgba(edge, GRAPHIC_CONTRAST))

    def apply(self) -> None:
        fig = self.fig
        self._patch(fig.patch, paper=True)
        grid = {id(line) for ax in fig.axes for axis in (ax.xaxis, ax.yaxis)
                for line in axis.get_gridlines()}
        for ax in fig.axes:
            self._patch(ax.patch, paper=True)
        seen = {id(fig.patch)} | {id(ax.patch) for ax in fig.axes}
        legends = [*fig.legends, *(ax.get_legend() for ax in fig.axes if ax.get_legend())]
        frames = {id(lg.get_frame()) for lg in legends}
        for art in fig.findobj():
            if id(art) in seen:
                continue
            seen.add(id(art))
            if isinstance(art, Text):
                self._set(art.set_color, art.get_color(),
                          _dark_rgba(to_rgba(art.get_color()), TEXT_CONTRAST))
                box = art.get_bbox_patch()
                if box is not None:
                    self._patch(box, paper=True)
            elif isinstance(art, Line2D):
                self._line(art, grid=id(art) in grid)
            elif isinstance(art, Patch):
                self._patch(art, paper=id(art) in frames)
            elif isinstance(art, Collection) and art.get_array() is None:
                face, edge = art.get_facecolor(), art.get_edgecolor()
                if len(face):
                    self._set(art.set_facecolor, face,
                              np.array([_dark_face(tuple(c)) for c in face]).reshape(-1, 4))
                if len(edge):
                    self._set(art.set_edgecolor, edge, _dark_array(edge, GRAPHIC_CONTRAST))

    def _line(self, line: Line2D, *, grid: bool) -> None:
        # marker colours first: "auto" ones read as the line's colour, which is about to change
        markers = [(put, get()) for get, put in (
            (line.get_markerfacecolor, line.set_markerfacecolor),
            (line.get_markeredgecolor, line.set_markeredgecolor))]
        color = to_rgba(line.get_color())
        if grid and to_hex(color) == _GRID_LIGHT:
            new = (*to_rgba(_GRID_DARK)[:3], color[3])
        else:
            new = _dark_rgba(color, GRAPHIC_CONTRAST)
        self._set(line.set_color, line.get_color(), new)
        for put, old in markers:
            if isinstance(old, str) and old in ("none", "auto"):
                continue
            self._set(put, old, _dark_rgba(to_rgba(old), GRAPHIC_CONTRAST))

    def restore(self) -> None:
        for setter, old in reversed(self.undo):
            setter(old)
        self.undo.clear()


def light_png(fig: Figure, *, dpi: int = 100) -> bytes:
    """The figure as designed, as PNG (what :func:`figure_pngs` gives first)."""
    return _png(fig, dpi)


def _png(fig: Figure, dpi: int) -> bytes:
    from ._common import plot_style  # cycle: qoslab.plots._common imports this one

    buf = io.BytesIO()
    with plot_style():  # a constrained layout already fits legends: no second "tight" draw
        fig.savefig(buf, format="png", dpi=dpi,
                    bbox_inches=None if fig.get_layout_engine() else "tight")
    return buf.getvalue()


def figure_pngs(fig: Figure, *, dpi: int = 100) -> tuple[bytes, bytes]:
    """``(light, dark)``: the figure as designed and its dark twin (transparent paper), as PNG.

    The figure is left as it was.

    Examples
    --------
    >>> from qoslab.plots import new_figure
    >>> fig = new_figure(figsize=(3, 2))
    >>> _ = fig.add_subplot().plot([0, 1], [1, 2], color="#b2182b")
    >>> light, dark = figure_pngs(fig)
    >>> light[:4] == dark[:4] == b"\\x89PNG", fig.axes[0].lines[0].get_color()
    (True, '#b2182b')
    """
    light = _png(fig, dpi)
    twin = _Recolour(fig)
    try:
        twin.apply()
        dark = _png(fig, dpi)
    finally:
        twin.restore()
        _settle_ticks(fig)
    return light, dark


def _settle_ticks(fig: Figure) -> None:
    """Ticks made while the twin was drawn copy the (restored) first tick's colours."""
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            for ticks in (axis.majorTicks, axis.minorTicks):
                if len(ticks) < 2:
                    continue
                first = ticks[0]
                for t in ticks[1:]:
                    t.label1.set_color(first.label1.get_color())
                    t.label2.set_color(first.label2.get_color())
                    for mine, theirs in ((t.tick1line, first.tick1line),
                                         (t.tick2line, first.tick2line),
                                         (t.gridline, first.gridline)):
                        mine.set_color(theirs.get_color())
                        mine.set_markeredgecolor(theirs.get_markeredgecolor())


def figure_html(fig: Figure, *, dpi: int = 100, pngs: tuple[bytes, bytes] | None = None) -> str:
    """HTML showing the figure (``<img>``) in the page's theme: light or its dark twin.

    Examples
    --------
    >>> from qoslab.plots import new_figure
    >>> fig = new_figure(figsize=(3, 2))
    >>> page = figure_html(fig)
    >>> page.count("<img"), "qoslab-figure-dark\\" hidden" in page
    (2, True)
    """
    light, dark = pngs or figure_pngs(fig, dpi=dpi)
    title = html.escape(_title(fig), quote=True)

    def img(kind: str, data: bytes, extra: str = "") -> str:
        return (f'<img class="qoslab-figure-{kind}"{extra} alt="{title}" '
                f'src="data:image/png;base64,{base64.b64encode(data).decode("ascii")}">')

    return (f'<div class="qoslab-figure">{THEME_CSS}{img("light", light)}'
            f'{img("dark", dark, " hidden")}</div>')


def _title(fig: Figure) -> str:
    texts = [fig._suptitle.get_text()] if getattr(fig, "_suptitle", None) else []
    texts += [ax.get_title(loc) for ax in fig.axes for loc in ("center", "left", "right")
              if ax.get_title(loc)]
    return texts[0] if texts else "figure"
