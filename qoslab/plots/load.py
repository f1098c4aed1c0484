"""Latency under load: probes' RTT above the load's throughput, on one time axis.

flent's "all" / "totals" view for any flent test (or any RUN with SAMPLES): the top panel shows
every latency stream's RTT against send time, the bottom one each load stream's throughput
(flent's computed sums and averages dashed), both with the load start/stop EVENTS shaded. A run
without throughput samples (flent's ``voip``) shows what it measured instead: the metrics that
share its most common unit (VoIP's delay, jitter and induced delay in ms), as flent's default
plot of that test does.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
from matplotlib.figure import Figure

from ._common import describe_run, new_figure, plot_style, select_streams, stream_colors

__all__ = ["latency_under_load", "load_metrics"]


def load_metrics(samples: pd.DataFrame) -> list[str]:
    """The SAMPLES metrics the lower panel draws by default.

    ``["throughput"]`` when the run has throughput samples; otherwise every metric in the most
    common unit (ties: the unit met first); ``[]`` without samples.

    Examples
    --------
    >>> import qoslab
    >>> load_metrics(qoslab.load(qoslab.data_path("lab/bufferbloat.json.gz")).samples)
    []
    """
    if not len(samples):
        return []
    metrics = samples["metric"].astype("string")
    if (metrics == "throughput").any():
        return ["throughput"]
    units = samples["unit"].astype("string").fillna("")
    counts = units.value_counts(sort=False)
    unit = counts.index[counts.to_numpy().argmax()]
    return list(dict.fromkeys(metrics[units == unit].dropna()))


def latency_under_load(run, *, computed: bool = True,
                       metric: str | Sequence[str] | None = None,
                       streams: Sequence[str] | None = None) -> Figure:
    """Draw RTT over time above throughput over time (shared x axis, seconds from start).

    Parameters
    ----------
    run
        A :class:`~qoslab.runs.Run` (e.g. ``qoslab.load`` of a flent file).
    computed
        Also draw the series flent computed (sums, averages) as dashed lines.
    metric
        The SAMPLES metric(s) of the lower panel (``"throughput"``, ``"tcp_rtt"``, ...);
        default :func:`load_metrics`.
    streams
        Latency streams of the upper panel (default all).

    Returns
    -------
    matplotlib.figure.Figure
        Two axes sharing x: latency (ms) and the metric (its unit).

    Examples
    --------
    >>> import qoslab
    >>> run = qoslab.load(qoslab.data_path("flent/ping-v4-icmp-irtt.flent.gz"))
    >>> fig = latency_under_load(run)
    >>> len(fig.axes), len(fig.axes[0].lines)
    (2, 2)
    """
    probes, samples, events = run.probes, run.samples, run.events
    names = select_streams(probes, streams)
    metrics = ([metric] if isinstance(metric, str) else list(metric) if metric is not None
               else load_metrics(samples))
    with plot_style():
        fig = new_figure(figsize=(10, 6.5))
        top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=[3, 2])
        colors = stream_colors(list(dict.fromkeys(probes["stream"].dropna())))
        for stream in names:
            rows = probes[probes["stream"] == stream]
            ok = rows[rows["status"].isin(["ok", "late"])]
            top.plot(ok["t_sent"], ok["rtt_ms"], lw=0.8, marker=".", ms=2,
                     color=colors.get(stream), label=stream)
        top.set_ylabel("RTT (ms)")
        top.set_title(f"{describe_run(run.meta)} — latency under load" if run.meta
                      else "Latency under load")
        rows = samples[samples["metric"].isin(metrics)]
        if not computed:
            rows = rows[~rows["computed"].fillna(False)]
        units = sorted(set(rows["unit"].dropna()))
        for (series, what, is_computed), g in rows.groupby(["series", "metric", "computed"],
                                                           sort=False):
            g = g.sort_values("t")
            label = series if len(metrics) == 1 or what in series else f"{series} {what}"
            bottom.plot(g["t"], g["value"], lw=1.0, ls="--" if is_computed else "-",
                        label=label)
        what = ", ".join(metrics) if metrics else "throughput"
        bottom.set_ylabel(f"{what} ({', '.join(units)})" if units else what)
        bottom.set_xlabel("time since start (s)")
        starts = events[events["kind"] == "load_start"]["t"]
        stops = events[events["kind"] == "load_stop"]["t"]
        if len(starts) and len(stops):
            for ax in (top, bottom):
                ax.axvspan(starts.min(), stops.max(), color="0.9", zorder=0,
                           label="load" if ax is bottom else None)
        for ax in (top, bottom):
            if ax.get_legend_handles_labels()[0]:
                ax.legend(fontsize="x-small", loc="upper right", ncols=2)
        if not len(rows):
            bottom.text(0.5, 0.5, f"no {what} samples in this run", ha="center",
                        va="center", transform=bottom.transAxes)
    return fig
