"""The phase-folding periodogram of spike onsets: how well each candidate period fits."""

from __future__ import annotations

from matplotlib.axes import Axes
from matplotlib.figure import Figure

from ..errors import ConfigError
from ._common import log_axis, new_axes, plot_style

__all__ = ["periodogram"]


def periodogram(estimate, *, true_period: float | None = None, ax: Axes | None = None
                ) -> Figure:
    """Plot the mean resultant length *R* against the candidate period, on a log axis.

    A perfect grid folds to *R* = 1 at its period (and at its divisors); random onsets stay
    near 0. The period found is marked with its p-value; ``true_period`` (when known, as in a
    simulation) is a dashed line to compare with.

    Parameters
    ----------
    estimate
        A :class:`qoslab.analysis.PeriodEstimate` (``spikes_vs_events(run).period``).
    true_period
        The real perturb interval in seconds, if known.
    ax
        Axes to draw into.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> from qoslab.analysis import infer_period
    >>> est = infer_period([5.1 + 5 * k for k in range(12)], span=(0, 62))
    >>> ax = periodogram(est, true_period=5).axes[0]
    >>> ax.get_xscale(), [t.get_text() for t in ax.get_legend().get_texts()][2]
    ('log', 'true period 5 s')
    """
    scan = getattr(estimate, "periodogram", None)
    if scan is None:
        raise ConfigError("periodogram: expected a PeriodEstimate (analysis.infer_period or "
                          "spikes_vs_events(run).period)")
    fig, ax = new_axes(ax, figsize=(8, 2.8))
    with plot_style():
        if len(scan):
            ax.plot(scan["period"], scan["resultant"], color="#2166ac", lw=1.0,
                    label=f"R of {estimate.n} spike onsets")
            log_axis(ax, "x")
        if estimate.period == estimate.period:  # not NaN: a grid was searched for
            ax.plot([estimate.period], [estimate.resultant], "o", color="#b2182b", ms=6,
                    label=f"best fit {estimate.period:.2f} s ({estimate.p.text})")
        if true_period:
            ax.axvline(true_period, color="#555555", lw=1, ls="--",
                       label=f"true period {true_period:g} s")
        ax.set_ylim(0, 1.3)  # room for the legend above a perfect fit
        ax.set_xlabel("candidate period (s)")
        ax.set_ylabel("R (1 = perfect grid)")
        title = "phase-folding periodogram of the spike onsets"
        if not len(scan):
            title += f": {estimate.n} onsets are too few to fold"
        ax.set_title(title, loc="left")
        if ax.get_legend_handles_labels()[0]:
            ax.legend(loc="upper right", fontsize="small", framealpha=0.9)
    return fig


