"""ping-exp's one-page figure, redrawn from a RUN."""

from __future__ import annotations

from collections.abc import Sequence

from matplotlib.figure import Figure

from ._common import describe_run, new_figure, plot_style, run_tables, select_streams
from .distributions import histogram, summary_bars
from .timeseries import latency, loss_over_time

__all__ = ["pingexp_figure"]


def pingexp_figure(
    run,
    kind: str = "scatter",
    streams: Sequence[str] | None = None,
    *,
    events: bool = True,
    spikes=None,
    binwidth_ms: float = 2.0,
) -> Figure:
    """Draw ping-exp's 10×10 inch figure: latency, summary bars, histogram, loss over time.

    The four panels of the original tool, top to bottom:

    1. latency against time, ``kind="scatter"`` (its default) or ``"line"`` (its ``-l``), one
       colour per stream -- here with the run's events (hash changes) and optional spikes
       overlaid;
    2. packet loss %, RTT mean and RTT mdev per stream -- here as three small bar panels with
       their own units instead of one shared axis;
    3. RTT histogram with 2 ms bins, normalised, all streams together -- here as outlines;
    4. lost probes against time, one row per stream -- here against send time rather than
       ``seq × interval``, with the status of each unanswered probe.

    Parameters
    ----------
    run
        A Run or PROBES frame (e.g. ``qoslab.load`` of an original ping-exp file).
    kind
        ``"scatter"`` or ``"line"``.
    streams
        Streams to draw (default all).
    events, spikes
        As in :func:`qoslab.plots.latency`.
    binwidth_ms
        Histogram bin width.

    Returns
    -------
    matplotlib.figure.Figure
        Four subfigures (``fig.subfigs``) holding, in order, the latency axes, the bar axes
        (one per metric), the histogram axes and the loss axes.

    Examples
    --------
    >>> import qoslab
    >>> run = qoslab.load(qoslab.data_path("flent/ping-v4-icmp-irtt.flent.gz"))
    >>> fig = pingexp_figure(run)
    >>> [len(sf.axes) for sf in fig.subfigs]
    [1, 3, 1, 1]
    """
    probes, _events, meta = run_tables(run)
    names = select_streams(probes, streams)
    with plot_style():
        fig = new_figure(figsize=(10, 10))
        top, bars, hist, loss = fig.subfigures(4, 1, height_ratios=[3.2, 2.2, 2.4, 1.4])
        top_ax = top.add_subplot()
        latency(run, kind=kind, streams=names, events=events, spikes=spikes, ax=top_ax)
        top_ax.set_title("latency over time", loc="left")
        summary_bars(run, streams=names, fig=bars)
        histogram(run, streams=names, binwidth_ms=binwidth_ms, ax=hist.add_subplot())
        loss_over_time(run, streams=names, events=events, ax=loss.add_subplot())
        title = describe_run(meta) if meta else "ping experiments"
        fig.suptitle(f"{title}: {len(names)} stream{'s' if len(names) != 1 else ''}",
                     fontweight="bold")
    return fig
