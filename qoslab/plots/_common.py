"""Shared plumbing of the plot modules: the one style, input normalisation, saving."""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import matplotlib as mpl
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from ..errors import ConfigError, RunFormatError
from ..outputs import write_with
from ..schema import empty_events
from ..units import format_rate
from .theme import figure_html, figure_pngs, light_png

__all__ = [
    "STYLE",
    "EVENT_STYLES",
    "QoslabFigure",
    "new_figure",
    "plot_style",
    "stream_colors",
    "save_figure",
    "show_figure",
    "new_axes",
    "run_tables",
    "select_streams",
    "short_labels",
    "describe_run",
    "delay_axis",
    "log_axis",
]

#: The one look of every qoslab figure (seaborn "whitegrid"-like, readable in print).
STYLE: dict[str, Any] = {
    "axes.facecolor": "white",
    "axes.edgecolor": "#444444",
    "axes.grid": True,
    "axes.axisbelow": True,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.titlesize": "medium",
    "axes.titleweight": "bold",
    "axes.labelsize": "medium",
    "grid.color": "#e5e5e5",
    "grid.linewidth": 0.8,
    "figure.facecolor": "white",
    "figure.dpi": 100,
    "savefig.dpi": 150,
    "savefig.bbox": "tight",
    "legend.frameon": False,
    "legend.fontsize": "small",
    "font.size": 10,
    "lines.linewidth": 1.2,
    "svg.fonttype": "none",
    # labels come from files (stream names, hosts, titles): a "$" is a dollar sign, never
    # TeX (an unknown \command or an unbalanced brace ended the figure in a ParseException)
    "text.parse_math": False,
}

#: How each EVENTS kind is drawn over a time axis: colour, line style, legend text.
#: Hash changes are the reason the package exists: solid, dark red, always in the legend.
EVENT_STYLES: dict[str, dict[str, Any]] = {
    "hash_change": {"color": "#b2182b", "linestyle": "-", "label": "hash change (perturb)"},
    "config_change": {"color": "#2166ac", "linestyle": "--", "label": "config change"},
    "load_start": {"color": "#1a9850", "linestyle": "-.", "label": "load start"},
    "load_stop": {"color": "#1a9850", "linestyle": ":", "label": "load stop"},
    "run_start": {"color": "#555555", "linestyle": ":", "label": "run start"},
    "run_stop": {"color": "#555555", "linestyle": ":", "label": "run stop"},
    "note": {"color": "#762a83", "linestyle": ":", "label": "note"},
}
OTHER_EVENT = {"color": "#7f7f7f", "linestyle": ":", "label": None}


@contextmanager
def plot_style():
    """Apply the qoslab figure style within a ``with`` block (seaborn palette included).

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> with plot_style():
    ...     fig = plt.figure()
    >>> fig.get_facecolor()[:3]
    (1.0, 1.0, 1.0)
    """
    with mpl.rc_context(STYLE):
        yield


class QoslabFigure(Figure):
    """A matplotlib Figure that shows itself in Jupyter, without pyplot, in the page's theme.

    qoslab's figures are not registered with pyplot (no window or notebook auto-display, no
    leaked figures in loops); :meth:`_repr_mimebundle_` is what makes a returned figure appear
    in a notebook cell, exactly once: HTML holding the figure and its dark twin, the page
    showing the one matching its theme (:mod:`qoslab.plots.theme`), and the light PNG for
    front ends without HTML.
    """

    def _repr_png_(self) -> tuple[bytes, dict]:
        return light_png(self), {"needs_background": "light"}

    def _repr_mimebundle_(self, include=None, exclude=None):
        pngs = figure_pngs(self)
        return ({"text/html": figure_html(self, pngs=pngs), "image/png": pngs[0],
                 "text/plain": repr(self)},
                {"image/png": {"needs_background": "light"}})


def new_figure(**kwargs) -> QoslabFigure:
    """Return a new styled :class:`QoslabFigure` (constrained layout unless told otherwise).

    Examples
    --------
    >>> fig = new_figure(figsize=(4, 3))
    >>> fig._repr_png_()[0][:4]
    b'\\x89PNG'
    >>> sorted(fig._repr_mimebundle_()[0])
    ['image/png', 'text/html', 'text/plain']
    """
    kwargs.setdefault("layout", "constrained")
    with plot_style():
        return QoslabFigure(**kwargs)


def stream_colors(streams: Sequence[str]) -> dict[str, tuple]:
    """Return a stable colour per stream (seaborn ``colorblind``, ``husl`` beyond 10).

    Examples
    --------
    >>> c = stream_colors(["a", "b"])
    >>> sorted(c) == ["a", "b"] and c["a"] != c["b"]
    True
    """
    import seaborn as sns

    n = len(streams)
    palette = sns.color_palette("colorblind", n) if n <= 10 else sns.color_palette("husl", n)
    return {s: tuple(palette[i]) for i, s in enumerate(streams)}


def save_figure(fig: Figure, path: str | os.PathLike, *, force: bool = False) -> Path:
    """Write a figure as PNG or SVG, chosen by the file suffix.

    Parameters
    ----------
    fig
        The figure.
    path
        Target file; its suffix must be ``.png`` or ``.svg``; its folder must exist.
    force
        Replace an existing file (see :mod:`qoslab.outputs`).

    Returns
    -------
    pathlib.Path
        The path written.

    Raises
    ------
    ConfigError
        For any other suffix.
    qoslab.outputs.OutputExistsError
        The file exists and ``force`` is false.

    Examples
    --------
    >>> import tempfile, matplotlib.pyplot as plt
    >>> fig = plt.figure()
    >>> with tempfile.TemporaryDirectory() as d:
    ...     save_figure(fig, Path(d) / "f.svg").read_text()[:5]
    '<?xml'
    """
    path = Path(path)
    fmt = path.suffix.lower().lstrip(".")
    if fmt not in ("png", "svg"):
        raise ConfigError(f"{path}: cannot tell the image format; use a .png or .svg file name")

    def draw(tmp: Path) -> None:
        with plot_style():
            fig.savefig(tmp, format=fmt, metadata=_metadata(fmt))

    return write_with(path, draw, force=force, what="figure")


def show_figure(fig: Figure) -> None:
    """Open a window for a figure (qoslab figures are not registered with pyplot).

    Raises
    ------
    ConfigError
        When matplotlib has no interactive backend (no display): write a file instead.
    """
    import matplotlib.pyplot as plt

    backend = mpl.get_backend().lower()
    if backend in ("agg", "pdf", "ps", "svg", "cairo", "pgf", "template"):
        raise ConfigError(
            f"no interactive matplotlib backend (backend is {backend!r}: no display?); "
            "write a file with -o FILE.png instead"
        )
    plt.figure(fig)  # hand the plain Figure to pyplot so it gets a manager and a window
    if fig.canvas.manager is None:  # older matplotlib only activates figures it made
        raise ConfigError(f"matplotlib {mpl.__version__} cannot open a window for this figure; "
                          "write a file with -o FILE.png instead")
    plt.show()


def _metadata(fmt: str) -> dict[str, Any]:
    # Reproducible files: no creation date in SVG output.
    return {"Date": None} if fmt == "svg" else {}


def new_axes(ax: Axes | None, figsize=(9, 4.5)) -> tuple[Figure, Axes]:
    """Return ``(figure, axes)``: the given axes' figure, or a new styled figure."""
    if ax is not None:
        return ax.figure, ax
    with plot_style():
        fig = new_figure(figsize=figsize)
        ax = fig.add_subplot()
    return fig, ax


def run_tables(run) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """Return ``(probes, events, meta)`` of a Run, or of a bare PROBES frame (no events)."""
    if hasattr(run, "probes") and hasattr(run, "events"):
        return run.probes, run.events, dict(getattr(run, "meta", {}) or {})
    if isinstance(run, pd.DataFrame):
        missing = [c for c in ("stream", "seq", "t_sent", "rtt_ms", "status")
                   if c not in run.columns]
        if missing:
            raise RunFormatError(
                f"expected a Run or a PROBES table; the frame lacks {', '.join(missing)}"
            )
        return run, empty_events(), {}
    raise RunFormatError(f"expected a Run or a PROBES DataFrame, got {type(run).__name__}")


def select_streams(probes: pd.DataFrame, streams: Sequence[str] | str | None) -> list[str]:
    """Return the streams to draw, in run order; unknown names raise with the known ones."""
    known = list(pd.unique(probes["stream"].dropna()))
    if streams is None:
        return known
    if isinstance(streams, str):
        streams = [streams]
    unknown = [s for s in streams if s not in known]
    if unknown:
        raise ConfigError(
            f"no stream {', '.join(map(repr, unknown))} in this run; streams are "
            f"{', '.join(map(repr, known)) or '(none)'}"
        )
    return [s for s in known if s in set(streams)]


def as_float(values) -> np.ndarray:
    """Return a float64 numpy array, NA as NaN."""
    return pd.to_numeric(pd.Series(values), errors="coerce").to_numpy(
        dtype="float64", na_value=np.nan
    )


def short_labels(names: Sequence[str], width: int = 22) -> list[str]:
    """Tick labels: drop the words every label shares (at the same place), then shorten what
    is left in the middle (the ends carry host and TOS).

    >>> short_labels(["tos10: 10.71.0.2 tos=0x10 size=56", "tos00: 10.71.0.2 tos=0x00 size=56"])
    ['tos10: tos=0x10', 'tos00: tos=0x00']
    >>> short_labels(["x: Ping (ms) ICMP", "y: Ping (ms) ICMP1 server"])
    ['x: Ping (ms) ICMP', 'y: Ping (ms…MP1 server']
    >>> short_labels(["a very long stream label that goes on and on"], width=15)
    ['a very … and on']
    """
    words = [str(n).split(" ") for n in names]
    if len(words) > 1 and len({len(w) for w in words}) == 1:  # same shape: drop shared words
        keep = [i for i in range(len(words[0])) if len({w[i] for w in words}) > 1]
        words = [[w[i] for i in keep] for w in words]
    elif len(words) > 1:
        head = 0
        while all(len(w) > head + 1 for w in words) and len({w[head] for w in words}) == 1:
            head += 1
        tail = 0
        while all(len(w) > head + tail + 1 for w in words) and len(
                {w[-1 - tail] for w in words}) == 1:
            tail += 1
        words = [w[head:len(w) - tail] for w in words]
    out = []
    for w in words:
        text = " ".join(w)
        if len(text) > width:
            keep = width - 1
            text = text[: (keep + 1) // 2] + "…" + text[len(text) - keep // 2:]
        out.append(text)
    return out


def describe_run(meta: dict, what: str = "") -> str:
    """A title that says which run this is, as flent names the test, host and date.

    Parameters
    ----------
    meta
        The RUN's META.
    what
        What the figure shows, appended after an em dash (``"latency over time"``).

    Examples
    --------
    >>> describe_run({"source": "flent", "test": "ping", "title": "qa", "targets": ["10.0.0.2"],
    ...               "start_time": "2026-11-26T16:35:26+00:00"})
    "flent ping 'qa' to 10.0.0.2, 2026-11-26 16:35 UTC"
    >>> describe_run({"source": "sim", "scenario": "sfq_perturb", "qdisc": "sfq limit 10 perturb 5",
    ...               "seed": 1}, "latency over time")
    'sfq_perturb, simulated: sfq limit 10 perturb 5, seed 1 — latency over time'
    """
    meta = meta or {}
    source = str(meta.get("source", ""))
    when = _when(meta.get("start_time"))
    targets = meta.get("targets")
    hosts = ""
    if isinstance(targets, (list, tuple)) and targets:
        names = [t.get("host", "?") if isinstance(t, dict) else str(t) for t in targets]
        names = list(dict.fromkeys(names))
        hosts = ", ".join(names[:3]) + (" …" if len(names) > 3 else "")
    if meta.get("combined_from"):
        text = str(meta.get("title") or " vs ".join(meta["combined_from"]))
    elif source == "flent":
        text = f"flent {meta.get('test', '?')}"
        if meta.get("title"):
            text += f" {meta['title']!r}"
        if hosts:
            text += f" to {hosts}"
        if when:
            text += f", {when}"
    elif source == "sim":
        text = f"{meta.get('scenario') or meta.get('name') or 'simulation'}, simulated"
        detail = [_leaf_qdisc(str(meta["qdisc"]))] if meta.get("qdisc") else []
        profile = (meta.get("params") or {}).get("profile") if isinstance(
            meta.get("params"), dict) else None
        if profile:
            detail.append(f"profile {profile}")
        if meta.get("seed") is not None:
            detail.append(f"seed {meta['seed']}")
        if detail:
            text += ": " + ", ".join(detail)
    elif source == "qoslab-lab":
        text = f"lab {meta.get('preset', 'run')}"
        if meta.get("kernel_release"):
            text += f" on Linux {str(meta['kernel_release']).split('-')[0]}"
        if when:
            text += f", {when}"
    elif source == "replay":
        capture = meta.get("capture")
        text = "replay" + (f" of {Path(str(capture)).name}" if capture else "") + ": "
        text += _leaf_qdisc(str(meta.get("tc") or "")) or "qdisc"
        rate = (meta.get("link") or {}).get("rate") if isinstance(meta.get("link"), dict) \
            else None
        if rate:
            text += f" at {format_rate(float(rate))}"
        if meta.get("profile"):
            text += f", profile {meta['profile']}"
    elif source in ("qoslab-ping", "ping-exp", "iputils"):
        text = ("ping-exp: " if source == "ping-exp" else "") + "ping" + (
            f" {hosts}" if hosts else "")
        if meta.get("hostname"):
            text += f" from {meta['hostname']}"
        if when:
            text += f", {when}"
    else:
        text = str(meta.get("title") or meta.get("name") or "run")
        if when:
            text += f", {when}"
    return f"{text} — {what}" if what else text


def delay_axis(meta: dict | None) -> dict[str, str]:
    """What a RUN's ``rtt_ms`` measures, for axis labels: a round trip, or (a replay's
    per-flow PROBES) the time a packet spent in the qdisc.

    Examples
    --------
    >>> delay_axis({"source": "flent"})["label"], delay_axis({"source": "replay"})["label"]
    ('RTT (ms)', 'time in the qdisc (ms)')
    """
    if (meta or {}).get("source") == "replay":
        return {"label": "time in the qdisc (ms)", "what": "time in the qdisc",
                "stream": "flow", "x": "arrival time"}
    return {"label": "RTT (ms)", "what": "RTT", "stream": "stream", "x": "send time"}


def _leaf_qdisc(tc: str) -> str:
    r"""The last qdisc of a tc script without its plumbing: ``'sfq limit 10 perturb 5'``, and
    the classifier attached to it, if any (``'sfq limit 127 + flow hash keys src,dst …'``).

    >>> _leaf_qdisc("tc qdisc add dev DEV root handle 1: htb default 10\n"
    ...             "tc qdisc add dev DEV parent 1:10 handle 10: sfq limit 10 perturb 5")
    'sfq limit 10 perturb 5'
    >>> _leaf_qdisc("tc qdisc add dev DEV parent 1:10 handle 10: sfq limit 127\n"
    ...             "tc filter add dev DEV parent 10: protocol all prio 1 flow hash keys "
    ...             "src,dst divisor 1024 baseclass 1:1")
    'sfq limit 127 + flow hash keys src,dst divisor 1024 baseclass 1:1'
    """
    lines = [ln.strip() for ln in tc.strip().splitlines() if ln.strip()]
    qdiscs = [ln for ln in lines if not ln.startswith("tc filter")]
    filters = [ln for ln in lines if ln.startswith("tc filter")]
    last = qdiscs[-1] if qdiscs else (lines[-1] if lines else "")
    m = re.search(r"(?:\broot|\bparent \S+)(?: handle \S+)?\s+(.*)$", last)
    text = (m.group(1) if m else last).strip()
    if filters and qdiscs:
        f = re.search(r"\bparent \S+\s+(?:protocol \S+\s+)?(?:(?:pref|prio) \S+\s+)?"
                      r"(?:handle \S+\s+)?(.*)$", filters[-1])
        text += " + " + (f.group(1) if f else filters[-1]).strip()
    return text


def _when(value) -> str:
    if not value:
        return ""
    try:
        ts = pd.Timestamp(value)
    except (ValueError, TypeError):
        return ""
    if ts.tzinfo is not None:
        ts = ts.tz_convert("UTC")
        return ts.strftime("%Y-%m-%d %H:%M UTC")
    return ts.strftime("%Y-%m-%d %H:%M")


def log_axis(ax, which: str = "y") -> None:
    """Make a matplotlib axis logarithmic with plain labels at 1, 2 and 5 × 10ⁿ.

    matplotlib's default labels only the powers of ten (``10²``) or writes ``3×10¹``; RTT
    readers want ``20, 50, 100, 200``.

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> fig, ax = plt.subplots()
    >>> _ = ax.plot([1, 2], [20, 700])
    >>> log_axis(ax)
    >>> fig.canvas.draw()
    >>> [t.get_text() for t in ax.get_yticklabels() if t.get_text()][:4]
    ['10', '20', '50', '100']
    """
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    (ax.set_yscale if which == "y" else ax.set_xscale)("log")
    axis = ax.yaxis if which == "y" else ax.xaxis
    axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    axis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g}"))
    axis.set_minor_locator(LogLocator(base=10, subs=(3.0, 4.0, 6.0, 7.0, 8.0, 9.0)))
    axis.set_minor_formatter(NullFormatter())
