"""Latency under load: probes' RTT above the load's throughput, on one time axis.

flent's "all" / "totals" view for any flent test (or any RUN with SAMPLES): the top panel shows
every latency stream's RTT against send time, the bottom one each load stream's throughput
(flent's computed sums and averages dashed), both with the load start/stop EVENTS shaded.
"""

from __future__ import annotations

from matplotlib.figure import Figure

from ._common import new_figure, plot_style, stream_colors

__all__ = ["latency_under_load"]


def latency_under_load(run, *, computed: bool = True, metric: str = "throughput") -> Figure:
    """Draw RTT over time above throughput over time (shared x axis, seconds from start).

    Parameters
    ----------
    run
        A :class:`~qoslab.runs.Run` (e.g. ``qoslab.load`` of a flent file).
    computed
        Also draw the series flent computed (sums, averages) as dashed lines.
    metric
        The SAMPLES metric of the lower panel (``"throughput"``, ``"tcp_rtt"``, ...).

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
    with plot_style():
        fig = new_figure(figsize=(10, 6.5))
        top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=[3, 2])
        colors = stream_colors(list(dict.fromkeys(probes["stream"].dropna())))
        for stream, rows in probes.groupby("stream", sort=False):
            ok = rows[rows["status"].isin(["ok", "late"])]
            top.plot(ok["t_sent"], ok["rtt_ms"], lw=0.8, marker=".", ms=2,
                     color=colors.get(stream), label=stream)
        top.set_ylabel("RTT (ms)")
        top.set_title("Latency under load")
        rows = samples[samples["metric"] == metric]
        if not computed:
            rows = rows[~rows["computed"].fillna(False)]
        units = sorted(set(rows["unit"].dropna()))
        for (series, is_computed), g in rows.groupby(["series", "computed"], sort=False):
            g = g.sort_values("t")
            bottom.plot(g["t"], g["value"], lw=1.0, ls="--" if is_computed else "-",
                        label=series)
        bottom.set_ylabel(f"{metric} ({', '.join(units)})" if units else metric)
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
            bottom.text(0.5, 0.5, f"no {metric} samples in this run", ha="center",
                        va="center", transform=bottom.transAxes)
    return fig
