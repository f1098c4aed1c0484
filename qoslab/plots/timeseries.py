"""Latency and loss against time, with the path's EVENTS and detected spikes overlaid."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from ..analysis import detect_spikes, spike_events
from ..analysis.summary import ANSWERED_STATUSES, REPLY_STATUSES
from ..errors import ConfigError
from ._common import (
    EVENT_STYLES,
    OTHER_EVENT,
    as_float,
    delay_axis,
    describe_run,
    log_axis,
    new_axes,
    plot_style,
    run_tables,
    select_streams,
    short_labels,
    stream_colors,
)

__all__ = ["latency", "loss_over_time", "overlay_events", "shade_spikes", "LATENCY_KINDS"]

#: The two ways ping-exp drew latency against time (``-l`` chose lines).
LATENCY_KINDS: tuple[str, ...] = ("scatter", "line")


def latency(
    run,
    kind: str = "scatter",
    streams: Sequence[str] | None = None,
    events: bool | Sequence[str] = True,
    spikes=None,
    ax: Axes | None = None,
    *,
    logy: bool = False,
) -> Figure:
    """Plot RTT against send time, one colour per stream, with events and spikes overlaid.

    Parameters
    ----------
    run
        A :class:`~qoslab.runs.Run` (or a bare PROBES frame, which has no events).
    kind
        ``"scatter"`` (one point per answered probe; one PathCollection per stream) or
        ``"line"`` (one Line2D per stream; lost probes break the line).
    streams
        Stream labels to draw (default: all, in run order).
    events
        ``True`` draws every event kind, a sequence draws only those kinds, ``False`` none.
        Each kind becomes one LineCollection (gid ``"events:<kind>"``) with one vertical line
        per event inside the time range of the probes; ``hash_change`` is solid dark red, the
        other kinds are dashed or dotted in their own colours (see ``EVENT_STYLES``).
    spikes
        ``None``: no shading. A DataFrame with ``t_start`` and ``t_end`` (and optionally
        ``stream``), e.g. from :func:`qoslab.analysis.detect_spikes`: one shaded span per
        spike event (see :func:`shade_spikes`). ``True`` or ``"detect"``: detect them in the
        drawn probes.
    ax
        Draw into these axes instead of a new figure.
    logy
        Logarithmic RTT axis (useful when a bloated queue and a quiet one share a plot).

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import qoslab
    >>> run = qoslab.load(qoslab.data_path("flent/ping-v4-icmp-irtt.flent.gz"))
    >>> fig = latency(run, kind="line")
    >>> [line.get_label() for line in fig.axes[0].lines]
    ['Ping (ms) ICMP', 'Ping (ms) UDP']
    """
    if kind not in LATENCY_KINDS:
        raise ConfigError(f"latency plot kind {kind!r}: expected one of {', '.join(LATENCY_KINDS)}")
    probes, event_table, meta = run_tables(run)
    names = select_streams(probes, streams)
    colors = stream_colors(list(pd.unique(probes["stream"].dropna())))
    fig, ax = new_axes(ax)
    with plot_style():
        for name in names:
            df = probes[probes["stream"] == name].sort_values(["t_sent", "seq"], kind="stable")
            df = df[~df["status"].isin(["duplicate"]).fillna(False)]
            t = as_float(df["t_sent"])
            rtt = as_float(df["rtt_ms"])
            answered = df["status"].isin(REPLY_STATUSES).fillna(False).to_numpy() & np.isfinite(rtt)
            if kind == "scatter":
                ax.scatter(t[answered], rtt[answered], s=6, color=colors[name], label=name,
                           linewidths=0, gid=f"stream:{name}")
            else:
                y = np.where(answered, rtt, np.nan)
                ax.plot(t, y, color=colors[name], label=name, gid=f"stream:{name}")
        t_all = as_float(probes.loc[probes["stream"].isin(names), "t_sent"])
        span = (np.nanmin(t_all), np.nanmax(t_all)) if np.isfinite(t_all).any() else None
        if spikes is not None and spikes is not False and span is not None:
            table = _spike_table(probes[probes["stream"].isin(names)], spikes)
            shade_spikes(ax, table, streams=names, span=span)
        if events is not False and span is not None:
            kinds = None if events is True else list(events)
            overlay_events(ax, event_table, kinds=kinds, span=span)
        ax.set_xlabel("time since start (s)")
        ax.set_ylabel(delay_axis(meta)["label"])
        if logy:
            log_axis(ax)
        elif ax.has_data():
            ax.set_ylim(bottom=0)
        if span is not None:
            ax.set_xlim(*_pad(span))
        ax.set_title(describe_run(meta, "latency over time") if meta else "Latency over time",
                     loc="left")
        if ax.get_legend_handles_labels()[0]:
            ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), markerscale=2)
    return fig


def overlay_events(
    ax: Axes,
    events: pd.DataFrame,
    kinds: Sequence[str] | None = None,
    span: tuple[float, float] | None = None,
) -> dict[str, int]:
    """Draw one vertical line per event, one LineCollection per event kind.

    Parameters
    ----------
    ax
        Axes whose x axis is seconds since the run's start.
    events
        EVENTS table (``t``, ``kind``, ``detail``).
    kinds
        Kinds to draw (default: every kind present).
    span
        ``(t_min, t_max)``: only events inside are drawn (default: the current x limits).

    Returns
    -------
    dict
        kind -> number of lines drawn.

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> ev = pd.DataFrame({"t": [1.0, 2.0, 9.0], "kind": ["hash_change"] * 3,
    ...                    "detail": ["", "", ""]})
    >>> fig, ax = plt.subplots()
    >>> overlay_events(ax, ev, span=(0.0, 5.0))
    {'hash_change': 2}
    """
    if events is None or len(events) == 0:
        return {}
    lo, hi = span if span is not None else ax.get_xlim()
    t = as_float(events["t"])
    kind_col = events["kind"].astype("string").fillna("").to_numpy(dtype=object)
    wanted = list(pd.unique(kind_col)) if kinds is None else list(kinds)
    drawn: dict[str, int] = {}
    for kind in wanted:
        sel = (kind_col == kind) & (t >= lo) & (t <= hi)
        if not sel.any():
            continue
        style = EVENT_STYLES.get(kind, OTHER_EVENT)
        label = style["label"] or kind.replace("_", " ")
        lw = 1.0 if kind == "hash_change" else 1.2
        ax.vlines(t[sel], 0, 1, transform=ax.get_xaxis_transform(), colors=style["color"],
                  linestyles=style["linestyle"], linewidth=lw, alpha=0.8, zorder=1.5,
                  label=f"{label} ({int(sel.sum())})", gid=f"events:{kind}")
        drawn[kind] = int(sel.sum())
    return drawn


def shade_spikes(
    ax: Axes,
    spikes: pd.DataFrame,
    colors: dict | None = None,
    streams: Sequence[str] | None = None,
    *,
    span: tuple[float, float] | None = None,
) -> int:
    """Shade each spike event's ``[t_start, t_end]``; return the number of spans drawn.

    A table with a ``stream`` column (per-stream spikes, as
    :func:`qoslab.analysis.detect_spikes` returns) keeps the rows of ``streams`` and is merged
    into spike events (:func:`qoslab.analysis.spike_events`): one span per queue event, as
    everywhere in qoslab. Every span has the one spike colour (``SPIKE_COLOR``, also in the
    legend swatch), is at least 0.4 % of the time axis wide (a 0.3 s spike stays visible on a
    120 s axis) and carries a solid cap along the top. Each span is a patch with gid
    ``"spike"``, each cap one with gid ``"cap:spike"``.

    Parameters
    ----------
    ax
        The axes.
    spikes
        ``t_start``, ``t_end`` (and optionally ``stream``).
    colors
        Ignored (kept for callers of older versions: spans no longer take stream colours).
    streams
        Only spikes of these streams (when the table has ``stream``).
    span
        ``(t_min, t_max)`` of the axis, for the minimum width (default: the current limits).

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> fig, ax = plt.subplots()
    >>> shade_spikes(ax, pd.DataFrame({"t_start": [1.0, 4.0], "t_end": [1.5, 4.2]}))
    2
    """
    from .chart import SPIKE_COLOR  # cycle: qoslab.plots.chart imports this one

    del colors
    if spikes is None or len(spikes) == 0:
        return 0
    for col in ("t_start", "t_end"):
        if col not in spikes.columns:
            raise ConfigError(f"spike table lacks column {col!r}; expected t_start and t_end")
    if "stream" in spikes.columns:
        if streams is not None:
            spikes = spikes[spikes["stream"].isin(list(streams))]
        spikes = spike_events(spikes)
    lo, hi = span if span is not None else ax.get_xlim()
    min_width = 0.004 * max(hi - lo, 0.0)
    n = len(spikes)
    for i, (a, z) in enumerate(zip(as_float(spikes["t_start"]), as_float(spikes["t_end"]),
                                   strict=True)):
        if z - a < min_width:
            mid = (a + z) / 2
            a, z = mid - min_width / 2, mid + min_width / 2
        ax.axvspan(a, z, color=SPIKE_COLOR, alpha=0.3, linewidth=0, zorder=0.5, gid="spike",
                   label=f"spike event ({n})" if i == 0 else None)
        ax.axvspan(a, z, ymin=0.975, ymax=1.0, color=SPIKE_COLOR, alpha=0.95, linewidth=0,
                   zorder=0.6, gid="cap:spike")
    return n


def loss_over_time(
    run,
    streams: Sequence[str] | None = None,
    window: float | None = None,
    events: bool | Sequence[str] = True,
    ax: Axes | None = None,
) -> Figure:
    """Plot when probes went unanswered, one row per stream (ping-exp's fourth panel).

    Parameters
    ----------
    run
        A Run or PROBES frame.
    streams
        Streams to draw (default all).
    window
        ``None``: a marker at the send time of every unanswered probe, on the stream's own row;
        one PathCollection per (stream, status) with a marker per status (``lost`` x,
        ``unreachable`` v, ``time_exceeded`` ^, ``error`` s). A number of seconds: the loss
        percentage of each window instead, one Line2D per stream.
    events
        Event overlay as in :func:`latency`.
    ax
        Axes to draw into.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> probes = pd.DataFrame({"stream": ["a"] * 4, "seq": [1, 2, 3, 4],
    ...     "t_sent": [0.0, 1.0, 2.0, 3.0], "rtt_ms": [1.0, np.nan, np.nan, 1.0],
    ...     "status": ["ok", "lost", "unreachable", "ok"]})
    >>> fig = loss_over_time(probes)
    >>> sorted(c.get_gid() for c in fig.axes[0].collections)
    ['loss:a:lost', 'loss:a:unreachable']
    """
    probes, event_table, _meta = run_tables(run)
    names = select_streams(probes, streams)
    colors = stream_colors(list(pd.unique(probes["stream"].dropna())))
    fig, ax = new_axes(ax, figsize=(9, 1.2 + 0.45 * max(len(names), 2)))
    with plot_style():
        sub = probes[probes["stream"].isin(names) & (probes["status"] != "duplicate")]
        t_all = as_float(sub["t_sent"])
        span = (np.nanmin(t_all), np.nanmax(t_all)) if np.isfinite(t_all).any() else None
        if window is None:
            if not _loss_markers(ax, sub, names, colors):
                ax.text(0.5, 0.5, "every probe answered", transform=ax.transAxes, ha="center",
                        va="center", color="#555555", fontsize="small")
            ax.set_yticks(range(len(names)), short_labels(names, width=28))
            ax.set_ylim(-0.6, len(names) - 0.4)
            ax.invert_yaxis()
            ax.grid(axis="y", visible=False)
        else:
            if not window > 0:
                raise ConfigError(f"loss window must be a positive number of seconds, not {window}")
            _loss_rate(ax, sub, names, colors, float(window), span)
            ax.set_ylabel(f"loss per {window:g} s window (%)")
            ax.set_ylim(-2, 102)
        if events is not False and span is not None:
            overlay_events(ax, event_table, kinds=None if events is True else list(events),
                           span=span)
        if span is not None:
            ax.set_xlim(*_pad(span))
        ax.set_xlabel("time since start (s)")
        ax.set_title("Unanswered probes over time")
        if ax.get_legend_handles_labels()[0]:
            ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return fig


_LOSS_MARKERS = {"lost": "x", "unreachable": "v", "time_exceeded": "^", "error": "s"}
#: Most windows a loss-rate panel draws (``--window``): a figure shows a few thousand; a tiny
#: window over a long run asked numpy for billions of bin edges (tens of GB).
MAX_LOSS_WINDOWS = 100_000


def _loss_markers(ax: Axes, sub: pd.DataFrame, names: list[str], colors: dict) -> int:
    status = sub["status"].astype("string").fillna("error")
    unanswered = ~status.isin(ANSWERED_STATUSES)
    labelled: set[str] = set()
    for row, name in enumerate(names):
        mine = sub[(sub["stream"] == name).to_numpy() & unanswered.to_numpy()]
        for st in pd.unique(mine["status"].astype("string").fillna("error")):
            t = as_float(mine.loc[mine["status"].fillna("error") == st, "t_sent"])
            label = None if st in labelled else st
            labelled.add(st)
            ax.scatter(t, np.full(t.shape, row), marker=_LOSS_MARKERS.get(st, "o"),
                       color=colors[name], s=28, linewidths=1.2, label=label,
                       gid=f"loss:{name}:{st}")
    return len(labelled)


def _loss_rate(ax: Axes, sub: pd.DataFrame, names: list[str], colors: dict, window: float,
               span) -> None:
    if span is None:
        return
    count = (span[1] - span[0]) / window
    if count > MAX_LOSS_WINDOWS:
        raise ConfigError(f"loss window {window:g} s over {span[1] - span[0]:g} s of probes makes "
                          f"{count:,.0f} windows; at most {MAX_LOSS_WINDOWS:,} "
                          "(qoslab.plots.timeseries.MAX_LOSS_WINDOWS): give a window of at least "
                          f"{(span[1] - span[0]) / MAX_LOSS_WINDOWS:.3g} s")
    edges = np.arange(span[0], span[1] + window, window)
    if edges.size < 2:
        edges = np.array([span[0], span[0] + window])
    for name in names:
        mine = sub[sub["stream"] == name]
        t = as_float(mine["t_sent"])
        lost = (~mine["status"].isin(ANSWERED_STATUSES).fillna(True)).to_numpy()
        sent, _ = np.histogram(t, bins=edges)
        missed, _ = np.histogram(t[lost], bins=edges)
        with np.errstate(invalid="ignore", divide="ignore"):
            pct = np.where(sent > 0, 100.0 * missed / sent, np.nan)
        ax.plot((edges[:-1] + edges[1:]) / 2, pct, color=colors[name], marker=".", label=name,
                gid=f"stream:{name}")


def _spike_table(probes: pd.DataFrame, spikes) -> pd.DataFrame:
    if isinstance(spikes, pd.DataFrame):
        return spikes
    if spikes is True or spikes == "detect":
        return detect_spikes(probes)
    raise ConfigError("spikes: expected None, True/'detect', or a DataFrame with t_start, t_end")


def _pad(span: tuple[float, float]) -> tuple[float, float]:
    lo, hi = span
    pad = max((hi - lo) * 0.01, 1e-3)
    return lo - pad, hi + pad
