"""Latency distributions and per-stream summary bars."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from ..analysis.summary import (
    ANSWERED_STATUSES,
    REPLY_STATUSES,
    reported_summary,
    summarize,
)
from ..errors import ConfigError
from ._common import (
    as_float,
    describe_run,
    log_axis,
    new_axes,
    new_figure,
    plot_style,
    run_tables,
    select_streams,
    short_labels,
    stream_colors,
)

__all__ = ["histogram", "cdf", "summary_bars", "BAR_METRICS"]

#: Metric -> axis label for :func:`summary_bars` (columns of :func:`qoslab.analysis.summarize`).
BAR_METRICS: dict[str, str] = {
    "loss_pct": "packet loss (%)",
    "mean": "RTT mean (ms)",
    "mdev": "RTT mdev (ms)",
    "min": "RTT min (ms)",
    "median": "RTT median (ms)",
    "p90": "RTT p90 (ms)",
    "p99": "RTT p99 (ms)",
    "max": "RTT max (ms)",
    "jitter": "jitter (ms)",
}

_MAX_BINS = 400


def _replies(probes: pd.DataFrame, name: str) -> np.ndarray:
    mine = probes[probes["stream"] == name]
    rtt = as_float(mine["rtt_ms"])
    ok = mine["status"].isin(REPLY_STATUSES).fillna(False).to_numpy() & np.isfinite(rtt)
    return rtt[ok]


def _nice_width(values: np.ndarray) -> float:
    """A 1-2-5 bin width for the pooled RTTs (Freedman–Diaconis, at least 1/200 of the range).

    >>> _nice_width(np.linspace(0.040, 0.056, 50))
    0.002
    """
    v = values[np.isfinite(values)]
    if v.size < 2 or v.max() == v.min():
        return 1.0 if not v.size or v.max() == 0 else float(10 ** np.floor(np.log10(abs(v.max()))))
    q75, q25 = np.percentile(v, [75, 25])
    fd = 2 * (q75 - q25) / v.size ** (1 / 3)
    width = max(fd, (v.max() - v.min()) / 200)
    exp = np.floor(np.log10(width))
    m = max(x for x in (1, 2, 5) if x * 10 ** exp <= width * (1 + 1e-9))
    return float(round(m * 10 ** exp, 12))


def histogram(
    run,
    streams: Sequence[str] | None = None,
    binwidth_ms: float | str = 2.0,
    ax: Axes | None = None,
    *,
    density: bool = True,
) -> Figure:
    """Plot the RTT histogram of each stream as a step outline (ping-exp's third panel).

    ping-exp used 2 ms bins, normalised, all experiments together; so does this, with one
    StepPatch per stream so overlapping streams stay readable. When 2 ms bins would exceed
    400 bins (a bloated queue of seconds), the bin width grows to keep 400. With
    ``binwidth_ms="auto"`` each stream gets the bin width that fits *its* spread (a
    loopback ICMP stream of 0.04–0.06 ms and a UDP stream of 0.1–0.8 ms cannot share one
    width without one of them collapsing into two bars); the legend gives each width, and the
    densities stay comparable.

    Parameters
    ----------
    run
        A Run or PROBES frame.
    streams
        Streams to draw (default all).
    binwidth_ms
        Bin width in milliseconds, or ``"auto"``: a 1-2-5 width fitted to each stream
        (Freedman–Diaconis), for RTTs far from ping-exp's milliseconds (loopback: µs).
    ax
        Axes to draw into.
    density
        Normalise each stream's histogram to unit area (``False``: counts).

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import qoslab
    >>> run = qoslab.load(qoslab.data_path("flent/ping-v4-icmp-irtt.flent.gz"))
    >>> fig = histogram(run)
    >>> [p.get_label() for p in fig.axes[0].patches]
    ['Ping (ms) ICMP', 'Ping (ms) UDP']
    >>> [p.get_label() for p in histogram(run, binwidth_ms="auto").axes[0].patches]
    ['Ping (ms) ICMP (0.002 ms bins)', 'Ping (ms) UDP (0.02 ms bins)']
    """
    probes, _events, meta = run_tables(run)
    names = select_streams(probes, streams)
    colors = stream_colors(list(pd.unique(probes["stream"].dropna())))
    samples = {n: _replies(probes, n) for n in names}
    allv = np.concatenate([v for v in samples.values()] + [np.empty(0)])
    per_stream = isinstance(binwidth_ms, str)
    if per_stream:
        if binwidth_ms != "auto":
            raise ConfigError(f"histogram bin width {binwidth_ms!r}: a number of ms or 'auto'")
    elif not binwidth_ms > 0:
        raise ConfigError(f"histogram bin width must be positive, not {binwidth_ms}")
    own_figure = ax is None
    fig, ax = new_axes(ax, figsize=(7, 4))
    with plot_style():
        widths = set()
        for name in names:
            v = samples[name] if per_stream else allv
            if not samples[name].size:  # no reply at all: no bars, the legend says so
                ax.plot([], [], color=colors[name], ls=":", label=f"{name}: no reply",
                        gid=f"stream:{name}")
                continue
            edges, width = _edges(v, _nice_width(v) if per_stream else float(binwidth_ms))
            widths.add(width)
            values, _ = np.histogram(samples[name], bins=edges, density=False)
            if density:
                values = values / (samples[name].size * width)
            label = f"{name} ({width:g} ms bins)" if per_stream else name
            ax.stairs(values, edges, color=colors[name], label=label, linewidth=1.4,
                      fill=False, gid=f"stream:{name}")
        if not allv.size:
            title = "RTT histogram (no replies)"
        elif per_stream:
            title = "RTT histogram (bins fitted to each stream)"
        else:
            title = f"RTT histogram ({max(widths):g} ms bins)"
        ax.set_title(_titled(meta, title) if own_figure else title)
        ax.set_xlabel("RTT (ms)")
        ax.set_ylabel("probability density (1/ms)" if density else "replies")
        if names and allv.size:
            ax.legend()
    return fig


def _edges(values: np.ndarray, width: float) -> tuple[np.ndarray, float]:
    """Bin edges of ``width`` ms over ``values`` (at most 400 bins: the width grows)."""
    lo = np.floor(values.min() / width) * width
    hi = max(np.ceil(values.max() / width) * width, lo + width)
    width = max(width, (hi - lo) / _MAX_BINS)
    edges = np.arange(lo, hi + width * 0.5, width)
    if edges.size < 2 or edges[-1] < values.max():
        edges = np.append(edges, edges[-1] + width)
    return edges, float(width)


def _titled(meta: dict, what: str) -> str:
    """A figure's title: which run (test, host, date, as flent names it), then what is drawn."""
    return f"{describe_run(meta)}\n{what}" if meta else what


def cdf(
    run,
    streams: Sequence[str] | None = None,
    ax: Axes | None = None,
    *,
    count_lost: bool = True,
    logx: bool = False,
) -> Figure:
    """Plot the empirical CDF of RTT per stream, one Line2D per stream.

    Parameters
    ----------
    run
        A Run or PROBES frame.
    streams
        Streams to draw (default all).
    ax
        Axes to draw into.
    count_lost
        Normalise by the probes *sent* rather than the replies, so a stream's curve tops out at
        its delivery ratio: a lost probe is an infinitely late one, and a curve that reaches 1
        never hides loss. ``False`` gives the conventional CDF of the replies.
    logx
        Logarithmic RTT axis.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> probes = pd.DataFrame({"stream": ["a"] * 4, "seq": [1, 2, 3, 4],
    ...     "t_sent": [0.0, 1.0, 2.0, 3.0], "rtt_ms": [1.0, 2.0, np.nan, 3.0],
    ...     "status": ["ok", "ok", "lost", "ok"]})
    >>> line = cdf(probes).axes[0].lines[0]
    >>> float(line.get_ydata()[-1])
    0.75
    """
    probes, _events, meta = run_tables(run)
    names = select_streams(probes, streams)
    colors = stream_colors(list(pd.unique(probes["stream"].dropna())))
    own_figure = ax is None
    fig, ax = new_axes(ax, figsize=(7, 4))
    with plot_style():
        for name in names:
            mine = probes[probes["stream"] == name]
            rtt = as_float(mine["rtt_ms"])
            answered = mine["status"].isin(ANSWERED_STATUSES).fillna(False).to_numpy()
            values = np.sort(rtt[answered & np.isfinite(rtt)])
            sent = int((mine["status"] != "duplicate").fillna(True).sum())
            total = sent if count_lost else values.size
            if total == 0 or values.size == 0:
                if sent:  # every probe lost: no curve, but the legend says where it went
                    ax.plot([], [], color=colors[name], ls=":", label=f"{name}: no reply",
                            gid=f"stream:{name}")
                continue
            y = np.arange(1, values.size + 1) / total
            x = np.concatenate([[values[0]], values])
            y = np.concatenate([[0.0], y])
            ax.plot(x, y, drawstyle="steps-post", color=colors[name], label=name,
                    gid=f"stream:{name}")
        ax.set_xlabel("RTT (ms)")
        ax.set_ylabel("fraction of probes sent" if count_lost else "fraction of replies")
        ax.set_ylim(0, 1.02)
        if logx:
            log_axis(ax, "x")
        title = "RTT CDF" + (" (lost probes count as never answered)" if count_lost else "")
        ax.set_title(_titled(meta, title) if own_figure else title)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(loc="lower right")
    return fig


def summary_bars(
    run,
    streams: Sequence[str] | None = None,
    metrics: Sequence[str] = ("loss_pct", "mean", "mdev"),
    fig: Figure | None = None,
    *,
    reported: bool = True,
) -> Figure:
    """Bar charts of per-stream summary figures, one small panel per metric.

    ping-exp drew packet loss %, latency average and latency mdev as bars per experiment on one
    axis; here each metric gets its own axis (they have different units), the streams share
    colours with the other plots, and each bar is labelled with its value.

    ping-exp's bars are ``ping``'s own figures (its summary lines), not a recomputation from
    the rounded per-reply times. Where a run carries them
    (:func:`qoslab.analysis.reported_summary`, e.g. an original ping-exp file) the bars show
    them and the panel title says so ("as ping printed it"); a stream without them gets the
    recomputed figure, hatched, and the title says which is which.

    Parameters
    ----------
    run
        A Run or PROBES frame.
    streams
        Streams to draw (default all).
    metrics
        Columns of :func:`qoslab.analysis.summarize` (keys of ``BAR_METRICS``).
    fig
        A Figure or SubFigure to draw into (default: a new figure).
    reported
        Show the tool's own figures where the run has them (default); ``False``: always
        qoslab's recomputation (:func:`qoslab.analysis.summarize`).

    Returns
    -------
    matplotlib.figure.Figure
        One axes per metric, each with one bar per stream.

    Examples
    --------
    >>> import qoslab
    >>> run = qoslab.load(qoslab.data_path("flent/ping-v4-icmp-irtt.flent.gz"))
    >>> fig = summary_bars(run)
    >>> [len(ax.patches) for ax in fig.axes]
    [2, 2, 2]
    """
    unknown = [m for m in metrics if m not in BAR_METRICS]
    if unknown:
        raise ConfigError(f"unknown metric(s) {', '.join(unknown)}; choose from "
                          f"{', '.join(BAR_METRICS)}")
    probes, _events, _meta = run_tables(run)
    names = select_streams(probes, streams)
    colors = stream_colors(list(pd.unique(probes["stream"].dropna())))
    table = summarize(probes[probes["stream"].isin(names)]).reindex(names)
    own = reported_summary(run).reindex(names) if reported else None
    with plot_style():
        if fig is None:
            fig = new_figure(figsize=(3.2 * len(metrics) + 1, 3.6))
        axes = fig.subplots(1, len(metrics), squeeze=False)[0]
        for ax, metric in zip(axes, metrics, strict=True):
            values = table[metric].to_numpy(dtype="float64")
            by_tool = np.zeros(len(names), dtype=bool)
            if own is not None and metric in own.columns:
                theirs = own[metric].to_numpy(dtype="float64")
                by_tool = np.isfinite(theirs)
                values = np.where(by_tool, theirs, values)
            bars = ax.bar(range(len(names)), np.nan_to_num(values), color=[colors[n] for n in names],
                          gid=f"bars:{metric}")
            for bar, name, theirs in zip(bars, names, by_tool, strict=True):
                bar.set_label(name)
                bar.set_gid("reported" if theirs else "recomputed")
                if by_tool.any() and not theirs:
                    bar.set_hatch("//")
            ax.bar_label(bars, labels=[_fmt(v) for v in values], fontsize="x-small", padding=2)
            ax.set_xticks(range(len(names)), short_labels(names), rotation=30, ha="right",
                          fontsize="small")
            ax.set_title(BAR_METRICS[metric] + _provenance(own, by_tool))
            ax.grid(axis="x", visible=False)
            ax.set_xlim(-0.75, max(len(names), 3) - 0.25)  # one stream: no full-width slab
            ax.margins(y=0.15)
            finite = values[np.isfinite(values)]
            ax.set_ylim(0, None if finite.size and finite.max() > 0 else 1)
    return fig


def _provenance(own: pd.DataFrame | None, by_tool: np.ndarray) -> str:
    """Second title line saying whose figures the bars are (none: qoslab's recomputation)."""
    if not by_tool.any():
        return ""
    tools = ", ".join(dict.fromkeys(own["by"][by_tool].dropna())) or "the tool"
    if by_tool.all():
        return f"\nas {tools} printed it"
    return f"\nas {tools} printed it; hatched: recomputed"


def _fmt(v: float) -> str:
    if not np.isfinite(v):
        return "n/a"
    return f"{v:.3g}"
