"""Zoomable charts: latency against time drawn in the browser, in JupyterLab and offline HTML.

A 0.3 s spike in a 120 s run is three pixels wide in a static figure; these charts let the
reader zoom into it (drag across the plot, Ctrl + wheel, the +/− buttons) and pan (Shift +
drag, the arrow buttons), with the run's EVENTS as vertical lines, detected spikes as shaded
spans and reference lines (a full queue's delay) drawn at every zoom level.

**Why uPlot.** The chart is HTML + JavaScript drawn by `uPlot <https://github.com/leeoniya/uPlot>`_
(MIT; 51 kB minified, no dependencies), vendored with its licence in ``qoslab/_static/charts``
together with qoslab's own ~400-line ``qoslab-chart.js`` (zoom, pan, overlays, theme colours).
That is small enough to travel *inside* each chart output, so a chart works in live JupyterLab
and inside widget Output areas without any JupyterLab extension or server-side file, and
``qoslab report`` replaces the inline copies with one ``<script src="_static/…">`` per page: the
reports stay offline (no CDN). The alternatives were weighed: Plotly (≈3.5 MB of JS per page or
a JupyterLab extension; its mime type is not rendered by the widget html-manager), Bokeh
(≈1 MB, a Jupyter extension for notebook output), mpld3 (D3 from a CDN, partial matplotlib
coverage) and matplotlib's ipympl (needs a live kernel: nothing to zoom in a report). uPlot is
also fast -- tens of thousands of points draw in milliseconds -- so a widget redraws in the
browser instead of rasterising a PNG in the kernel.

Static figures stay matplotlib (:func:`qoslab.plots.latency`, PNG/SVG via ``save_figure``);
:meth:`Chart.figure` gives the static twin of a chart.
"""

from __future__ import annotations

import functools
import html
import json
import math
import os
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..analysis import detect_spikes, spike_events
from ..analysis.summary import REPLY_STATUSES
from ..errors import ConfigError
from ..outputs import write_bytes
from ._common import (
    EVENT_STYLES,
    OTHER_EVENT,
    as_float,
    delay_axis,
    describe_run,
    run_tables,
    select_streams,
    stream_colors,
)
from .compare import combine_runs
from .theme import GRAPHIC_CONTRAST, TEXT_CONTRAST, WASH_BOOST, dark_color
from .timeseries import latency

__all__ = ["Chart", "latency_chart", "chart_assets", "CHART_ASSET_FILES", "LIBRARY_MARK",
           "SPIKE_COLOR"]

#: The shipped files a page needs for charts, relative to ``qoslab/_static`` (load order).
CHART_ASSET_FILES: tuple[str, ...] = ("charts/uPlot.min.css", "charts/qoslab-chart.css",
                                      "charts/uPlot.iife.min.js", "charts/qoslab-chart.js")
#: Attribute marking the inline copy of the chart library in an output (``qoslab report``
#: replaces those elements by links to ``_static/charts``).
LIBRARY_MARK = 'data-qoslab-lib="charts"'
#: Shading of detected spikes (the same colour in the legend swatch and the spans).
SPIKE_COLOR = "#e08214"

_STATIC = Path(__file__).resolve().parent.parent / "_static"
#: Points above which a series is thinned to its per-pixel-column minima and maxima.
MAX_POINTS_PER_SERIES = 40_000
_DASHES = {"-": [], "--": [6, 4], "-.": [6, 3, 2, 3], ":": [2, 3]}
#: Line styles of the streams of one run when several runs are overlaid (colour = run).
_RUN_DASHES = ([], [7, 3], [2, 2], [7, 3, 2, 3])


@functools.lru_cache(maxsize=1)
def chart_assets() -> tuple[str, str]:
    """``(css, js)``: the chart library's stylesheets and scripts, concatenated (read once)."""
    css = "\n".join((_STATIC / f).read_text(encoding="utf-8")
                    for f in CHART_ASSET_FILES if f.endswith(".css"))
    js = "\n".join((_STATIC / f).read_text(encoding="utf-8")
                   for f in CHART_ASSET_FILES if f.endswith(".js"))
    if "</script" in js.lower() or "</style" in css.lower():  # never: they are inlined
        raise ConfigError("chart assets must not contain a closing script or style tag")
    return css, js


def _library_html() -> str:
    css, js = chart_assets()
    return (f"<style {LIBRARY_MARK}>{css}</style>"
            f"<script {LIBRARY_MARK}>if(!window.qoslabChart){{\n{js}\n}}</script>")


def _with_theme(spec: dict[str, Any]) -> dict[str, Any]:
    """The spec with ``theme``: the dark twin of each data colour (:func:`.theme.dark_color`)
    and how much stronger a shaded span is on a dark page; the chart picks them on a dark page.

    >>> _with_theme({"series": [{"color": "#0173B2"}], "hlines": [{"color": "#7b3294"}]})["theme"]
    {'dark': {'#0173b2': '#0173b2', '#7b3294': '#b771cf'}, 'wash_boost': 1.6}
    """
    colors = {str(g["color"]).lower() for key in ("series", "events", "spans", "hlines", "notes")
              for g in spec.get(key) or () if g.get("color")}
    # notes and reference lines carry words written in their colour: text contrast
    worded = {str(g["color"]).lower() for key in ("hlines", "notes")
              for g in spec.get(key) or () if g.get("color")}
    dark = {c: dark_color(c, minimum=TEXT_CONTRAST if c in worded else GRAPHIC_CONTRAST)
            for c in sorted(colors)}
    return {**spec, "theme": {"dark": dark, "wash_boost": WASH_BOOST}}


def _json_for_script(obj: Any) -> str:
    text = json.dumps(obj, separators=(",", ":"), allow_nan=False)
    return text.replace("</", "<\\/").replace("<!--", "<\\!--")


class Chart:
    """A zoomable chart: a spec (plain data) and the HTML that draws it.

    Build one with :func:`latency_chart`; a notebook shows it as the interactive chart,
    ``str(chart.to_html())`` is the same HTML, :meth:`save` writes a standalone offline page.

    Attributes
    ----------
    spec
        The JSON-able description: ``title``, ``subtitle``, ``xlabel``, ``ylabel``, ``logy``,
        ``x_range``, ``series`` (``name``, ``color``, ``mode``, ``x``, ``y``), ``events``
        (``label``, ``kind``, ``color``, ``dash``, ``t``), ``spans`` (``label``, ``color``,
        ``t0``, ``t1``), ``hlines`` (``label``, ``y``, ``color``), ``notes`` (``t``, ``y``,
        ``text``) and ``key`` (charts with one key keep the reader's zoom across redraws).
    """

    def __init__(self, spec: dict[str, Any], static=None) -> None:
        self.spec = spec
        self._static = static

    def __repr__(self) -> str:
        n = sum(len(s["x"]) for s in self.spec.get("series", []))
        return f"<Chart {self.spec.get('title', '')!r}: {n} points>"

    def to_html(self, *, library: bool = True) -> str:
        """The chart as an HTML fragment (``library``: with the chart library inline).

        Examples
        --------
        >>> c = Chart({"title": "t", "series": [{"name": "a", "color": "#000000",
        ...            "mode": "line", "x": [0, 1], "y": [1, 2]}]})
        >>> frag = c.to_html(library=False)
        >>> frag.startswith('<div class="qoslab-chart-wrap"') and "qoslabChart.render" in frag
        True
        """
        cid = "qc-" + uuid.uuid4().hex[:12]
        boot = ("(function(s){var w=s.parentNode;function go(){window.qoslabChart.render(w)}"
                "if(window.qoslabChart){go()}else{(window.qoslabChartQueue="
                "window.qoslabChartQueue||[]).push(go)}})(document.currentScript);")
        title = html.escape(str(self.spec.get("title", "")))
        body = (f'<div class="qoslab-chart-wrap" id="{cid}" title="{title}">'
                f'<div class="qoslab-chart"></div>'
                f'<script type="application/json">{_json_for_script(_with_theme(self.spec))}'
                f'</script>'
                f"<script>{boot}</script></div>")
        return (_library_html() + body) if library else body

    def _repr_html_(self) -> str:
        return self.to_html()

    def _repr_mimebundle_(self, include=None, exclude=None):
        return {"text/html": self.to_html(), "text/plain": repr(self)}

    def figure(self):
        """The static matplotlib twin of this chart (same run, streams and overlays)."""
        if self._static is None:
            raise ConfigError("this chart was not built from a run; no static figure")
        return self._static()

    def save(self, path: str | os.PathLike, *, force: bool = False) -> Path:
        """Write a standalone HTML page (library inline: opens offline from anywhere).

        Examples
        --------
        >>> import tempfile
        >>> c = Chart({"title": "x", "series": []})
        >>> with tempfile.TemporaryDirectory() as d:
        ...     p = c.save(Path(d) / "c.html")
        ...     "uPlot" in p.read_text()
        True
        """
        path = Path(path)
        if path.suffix.lower() not in (".html", ".htm"):
            raise ConfigError(f"{path}: a chart is saved as an .html file")
        title = html.escape(str(self.spec.get("title", "qoslab chart")))
        page = (f"<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>{title}</title>"
                f"</head><body style=\"font-family: sans-serif; margin: 16px\">"
                f"{self.to_html()}</body></html>")
        return write_bytes(path, page.encode("utf-8"), force=force, what="chart")


# --- building specs ---------------------------------------------------------------------------

def _num(values: np.ndarray, digits: int) -> list:
    """Floats for JSON: rounded, NaN as null."""
    out = np.round(values.astype("float64"), digits)
    return [None if not math.isfinite(v) else float(v) for v in out.tolist()]


def _thin(t: np.ndarray, y: np.ndarray, limit: int) -> tuple[np.ndarray, np.ndarray]:
    """Keep at most ~``limit`` points, preserving each bin's minimum and maximum (spikes
    survive thinning; gaps too)."""
    if t.size <= limit:
        return t, y
    bins = limit // 2
    edges = np.linspace(t[0], t[-1], bins + 1)
    which = np.clip(np.searchsorted(edges, t, side="right") - 1, 0, bins - 1)
    keep = np.zeros(t.size, dtype=bool)
    finite = np.isfinite(y)
    keep[~finite] = True
    order = np.lexsort((np.where(finite, y, np.inf), which))
    first = np.ones(order.size, dtype=bool)
    first[1:] = which[order][1:] != which[order][:-1]
    keep[order[first]] = True  # bin minima
    order = np.lexsort((np.where(finite, -y, np.inf), which))
    first[:] = True
    first[1:] = which[order][1:] != which[order][:-1]
    keep[order[first]] = True  # bin maxima
    return t[keep], y[keep]


def _event_groups(events: pd.DataFrame, kinds, span) -> list[dict]:
    if events is None or len(events) == 0 or kinds is False:
        return []
    t = as_float(events["t"])
    kind_col = events["kind"].astype("string").fillna("").to_numpy(dtype=object)
    wanted = list(pd.unique(kind_col)) if kinds in (None, True) else list(kinds)
    groups = []
    for kind in wanted:
        sel = (kind_col == kind) & np.isfinite(t)
        if span is not None:
            sel &= (t >= span[0]) & (t <= span[1])
        if not sel.any():
            continue
        style = EVENT_STYLES.get(kind, OTHER_EVENT)
        label = style["label"] or str(kind).replace("_", " ")
        at = np.unique(t[sel])  # overlaid runs with the same changes: one line each
        groups.append({"kind": kind, "label": f"{label} ({at.size})",
                       "color": style["color"], "dash": _DASHES.get(style["linestyle"], []),
                       "width": 1.0 if kind == "hash_change" else 1.3,
                       "t": _num(at, 6)})
    return groups


def _spike_spans(probes: pd.DataFrame, spikes) -> dict | None:
    if spikes is None or spikes is False:
        return None
    if spikes is True or (isinstance(spikes, str) and spikes == "detect"):
        spikes = spike_events(detect_spikes(probes))
    if not isinstance(spikes, pd.DataFrame):
        raise ConfigError("spikes: expected None, True/'detect', or a DataFrame with t_start, "
                          "t_end")
    for col in ("t_start", "t_end"):
        if col not in spikes.columns:
            raise ConfigError(f"spike table lacks column {col!r}; expected t_start and t_end")
    if "stream" in spikes.columns:  # per-stream rows: one span per spike event
        spikes = spike_events(spikes)
    n = len(spikes)
    return {"label": f"spike event ({n})", "color": SPIKE_COLOR,
            "t0": _num(as_float(spikes["t_start"]), 6), "t1": _num(as_float(spikes["t_end"]), 6),
            "peak_t": _num(as_float(spikes["t_peak"]), 6) if "t_peak" in spikes else None,
            "peak_ms": _num(as_float(spikes["peak_ms"]), 4) if "peak_ms" in spikes else None}


def latency_chart(
    run,
    kind: str = "scatter",
    streams: Sequence[str] | None = None,
    events: bool | Sequence[str] = True,
    spikes=None,
    *,
    logy: bool = False,
    title: str | None = None,
    subtitle: str | None = None,
    note: str | Mapping | None = None,
    hlines: Sequence[Mapping] = (),
    key: str | None = None,
    height: int = 340,
) -> Chart:
    """A zoomable chart of RTT against send time, one colour per stream.

    The interactive counterpart of :func:`qoslab.plots.latency` (same arguments, same colours,
    same event styles); in a notebook it displays as the chart, in ``qoslab report`` pages too.

    Parameters
    ----------
    run
        A :class:`~qoslab.runs.Run`, a PROBES frame, or a mapping name -> Run (the runs are
        overlaid with their names in front of the stream labels, one colour per run as
        :func:`compare` does; a run's streams are told apart by line style).
    kind
        ``"scatter"`` (one point per answered probe) or ``"line"`` (lost probes break it).
    streams
        Stream labels to draw (default all).
    events
        ``True`` every EVENTS kind, a sequence those kinds, ``False`` none.
    spikes
        ``None``; ``True``/``"detect"`` (detect spike events); or a table with ``t_start``,
        ``t_end`` (per-stream spikes are merged into spike events): shaded spans that stay
        visible (at least 4 px wide) at any zoom.
    logy
        Logarithmic RTT axis (labelled at 1, 2, 5 × 10ⁿ).
    title, subtitle
        Default: what the run is (test or scenario, host, date) and what is drawn.
    note
        A teaching mark: ``"first"`` (or ``True``) circles the highest probe of the first spike
        event with "this is a spike"; a mapping ``{"t": …, "y": …, "text": …}`` puts any note.
    hlines
        Reference lines: mappings with ``y`` (ms), ``label`` and optionally ``color``, e.g.
        the delay of a full queue.
    key
        Charts drawn with the same key keep the reader's zoom when redrawn (live views).
    height
        Pixels.

    Returns
    -------
    Chart

    Examples
    --------
    >>> import qoslab
    >>> run = qoslab.load(qoslab.data_path("flent/ping-v4-icmp-irtt.flent.gz"))
    >>> c = latency_chart(run, kind="line")
    >>> [s["name"] for s in c.spec["series"]], c.spec["xlabel"]
    (['Ping (ms) ICMP', 'Ping (ms) UDP'], 'time since start (s)')
    """
    run_of: dict[str, str] = {}  # stream -> run name, when several runs are overlaid
    if isinstance(run, Mapping):
        runs = dict(run)
        if len(runs) > 1:
            run_of = {f"{n}: {s}": n for n, r in runs.items() for s in r.streams}
        run = combine_runs(runs)
    if kind not in ("scatter", "line"):
        raise ConfigError(f"latency chart kind {kind!r}: expected scatter or line")
    probes, event_table, meta = run_tables(run)
    names = select_streams(probes, streams)
    colors = stream_colors(list(pd.unique(probes["stream"].dropna())))
    dashes: dict[str, list] = {}
    if run_of:  # flent's comparison: one colour per run, the streams of a run told by dashes
        by_run = stream_colors(list(dict.fromkeys(run_of.values())))
        rank: dict[str, int] = {}
        for stream, name in run_of.items():
            colors[stream] = by_run[name]
            k = rank[name] = rank.get(name, -1) + 1
            dashes[stream] = _RUN_DASHES[k % len(_RUN_DASHES)]
    series = []
    t_lo, t_hi = math.inf, -math.inf
    for name in names:
        df = probes[probes["stream"] == name]
        df = df[~df["status"].isin(["duplicate"]).fillna(False)]
        t = as_float(df["t_sent"])
        rtt = as_float(df["rtt_ms"])
        order = np.argsort(np.where(np.isfinite(t), t, np.inf), kind="stable")
        t, rtt = t[order], rtt[order]
        answered = (df["status"].isin(REPLY_STATUSES).fillna(False).to_numpy()[order]
                    & np.isfinite(rtt))
        if logy:
            answered &= rtt > 0
        keep = np.isfinite(t)
        if kind == "scatter":
            keep &= answered
        t, y = t[keep], np.where(answered[keep], rtt[keep], np.nan)
        if t.size:
            t_lo, t_hi = min(t_lo, float(t[0])), max(t_hi, float(t[-1]))
        t, y = _thin(t, y, MAX_POINTS_PER_SERIES)
        r, g, b = (int(round(c * 255)) for c in colors[name][:3])
        series.append({"name": str(name), "color": f"#{r:02x}{g:02x}{b:02x}",
                       "mode": "points" if kind == "scatter" else "line",
                       "x": _num(t, 6), "y": _num(y, 4)})
        if dashes.get(name) and kind == "line":
            series[-1]["dash"] = dashes[name]
    span = (t_lo, t_hi) if t_hi >= t_lo else None
    x_range = None
    if span is not None:
        pad = max((span[1] - span[0]) * 0.01, 1e-3)
        lo = span[0] - pad
        if lo < 0 <= span[0] + pad:  # the margin never crosses 0: no "-0.05 s" axis start
            lo = min(span[0], 0.0)
        x_range = [lo, span[1] + pad]
    delay = delay_axis(meta)
    spec: dict[str, Any] = {
        "v": 1,
        "title": title or describe_run(meta),
        "subtitle": subtitle if subtitle is not None else
        f"{delay['what']} of {len(names)} {delay['stream']}{'s' if len(names) != 1 else ''} "
        f"against {delay['x']}" + ("; one colour per run" if run_of else ""),
        "xlabel": "time since start (s)", "xunit": "s",
        "ylabel": delay["label"], "yunit": "ms",
        "logy": bool(logy), "height": int(height),
        "x_range": x_range,
        "series": series,
        "events": _event_groups(event_table, events if events is not True else None, span)
        if events is not False else [],
        "spans": [],
        "hlines": [{"label": str(h["label"]), "y": float(h["y"]),
                    "color": h.get("color", "#7b3294")} for h in hlines],
        "notes": [],
    }
    spans = _spike_spans(probes[probes["stream"].isin(names)], spikes)
    if spans is not None and spans["t0"]:
        spec["spans"].append({k: v for k, v in spans.items() if k in ("label", "color", "t0",
                                                                       "t1")})
    if note:
        spec["notes"].append(_note(note, spans))
    if key:
        spec["key"] = str(key)

    def static():
        return latency(run, kind=kind, streams=names, events=events, spikes=spikes, logy=logy)

    return Chart(spec, static)


def _note(note, spans) -> dict:
    if isinstance(note, Mapping):
        return {"t": float(note["t"]), "y": float(note["y"]),
                "text": str(note.get("text", ""))}
    if spans is None or not spans["t0"]:
        raise ConfigError("note='first' marks the first spike event: pass spikes too (and a "
                          "run that has one)")
    t = spans["peak_t"][0] if spans.get("peak_t") else spans["t0"][0]
    y = spans["peak_ms"][0] if spans.get("peak_ms") else None
    if y is None:
        raise ConfigError("note='first' needs the spikes' peak_ms (detect_spikes gives it)")
    return {"t": t, "y": y, "text": "this is a spike" if note in (True, "first") else str(note)}
