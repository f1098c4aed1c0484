"""One entry point for "draw this kind of plot of this run" (used by the CLI and widgets)."""

from __future__ import annotations

from collections.abc import Sequence

from matplotlib.figure import Figure

from ..errors import ConfigError
from ..plot_kinds import PLOT_KINDS  # re-exported: the one list
from ..schema import has_occupancy, occupancy_table
from .compare import compare
from .distributions import cdf, histogram, summary_bars
from .load import latency_under_load
from .occupancy import occupancy
from .pingexp import pingexp_figure
from .timeseries import latency, loss_over_time

__all__ = ["PLOT_KINDS", "plot_kind"]



def plot_kind(
    run,
    kind: str = "pingexp",
    streams: Sequence[str] | None = None,
    *,
    lines: bool = False,
    events: bool = True,
    spikes=None,
    window: float | None = None,
) -> Figure:
    """Draw one of :data:`PLOT_KINDS` for a Run and return the figure.

    Parameters
    ----------
    run
        A Run or PROBES frame.
    kind
        A key of :data:`PLOT_KINDS`.
    streams
        Streams to draw (default all).
    lines
        Latency as lines rather than points (``pingexp`` and ``scatter``; ping-exp's ``-l``).
    events, spikes
        Overlays, as in :func:`qoslab.plots.latency`.
    window
        For ``loss``: loss percentage per window of this many seconds.

    Raises
    ------
    ConfigError
        For an unknown kind, or ``occupancy`` of a run without occupancy samples (only the
        simulator records them).

    Examples
    --------
    >>> import qoslab
    >>> run = qoslab.load(qoslab.data_path("flent/ping-v4-icmp-irtt.flent.gz"))
    >>> len(plot_kind(run, "bars").axes)
    3
    """
    if kind not in PLOT_KINDS:
        raise ConfigError(f"unknown plot kind {kind!r}; choose from {', '.join(PLOT_KINDS)}")
    if kind == "pingexp":
        return pingexp_figure(run, kind="line" if lines else "scatter", streams=streams,
                              events=events, spikes=spikes)
    if kind in ("scatter", "line"):
        return latency(run, kind="line" if (lines or kind == "line") else "scatter",
                       streams=streams, events=events, spikes=spikes)
    if kind == "cdf":
        return cdf(run, streams=streams)
    if kind == "box":
        return compare([run], "box", streams=streams)
    if kind == "hist":
        return histogram(run, streams=streams)
    if kind == "loss":
        return loss_over_time(run, streams=streams, window=window, events=events)
    if kind == "load":
        return latency_under_load(run, streams=streams)
    if kind == "occupancy":
        if not has_occupancy(run):
            raise ConfigError("plot kind 'occupancy': this run has no occupancy samples "
                              "(only simulated runs record which queue each flow used)")
        return occupancy(occupancy_table(run), events=run.events if events else None)
    return summary_bars(run, streams=streams)
