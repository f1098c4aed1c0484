"""Figures of RUN and PACKETS tables (matplotlib + seaborn palette, one style).

Every function takes tables (a :class:`~qoslab.runs.Run`, a PROBES frame, an OCCUPANCY frame)
and returns a :class:`matplotlib.figure.Figure`; :func:`save_figure` writes PNG or SVG. The
figures are :class:`QoslabFigure` objects (a ``Figure`` with ``_repr_mimebundle_``) not
registered with pyplot, so a notebook shows the returned figure exactly once, without
``%matplotlib``, and a loop of plots leaks no open figures; on a dark page it shows its dark
twin (:mod:`.theme`). :func:`show_figure` opens a window for one.

Modules: :mod:`.timeseries` (latency, loss over time, event and spike overlays),
:mod:`.distributions` (histogram, CDF, summary bars), :mod:`.pingexp` (ping-exp's figure),
:mod:`.occupancy` (flows in buckets over time), :mod:`.period` (the periodogram of spike
onsets), :mod:`.tos` (pfifo_fast TOS → band table),
:mod:`.compare` (several runs overlaid, as flent does with several files), :mod:`.chart`
(zoomable latency charts drawn in the browser: JupyterLab and offline HTML reports),
:mod:`.theme` (figures in light and dark themes).
"""

from ._common import (
    EVENT_STYLES,
    STYLE,
    QoslabFigure,
    describe_run,
    new_figure,
    plot_style,
    save_figure,
    show_figure,
    stream_colors,
)
from .chart import Chart, latency_chart
from .compare import COMPARE_KINDS, combine_runs, compare
from .distributions import BAR_METRICS, cdf, histogram, summary_bars
from .kinds import PLOT_KINDS, plot_kind
from .load import latency_under_load
from .occupancy import (
    OCCUPANCY_COLUMNS,
    flow_labels,
    occupancy,
    occupancy_frame,
    occupancy_window,
    shared_buckets,
)
from .period import periodogram
from .pingexp import pingexp_figure
from .timeseries import LATENCY_KINDS, latency, loss_over_time, overlay_events, shade_spikes
from .tos import tos_band_frame, tos_band_table

__all__ = [
    "BAR_METRICS",
    "COMPARE_KINDS",
    "Chart",
    "combine_runs",
    "compare",
    "describe_run",
    "latency_chart",
    "latency_under_load",
    "EVENT_STYLES",
    "LATENCY_KINDS",
    "OCCUPANCY_COLUMNS",
    "QoslabFigure",
    "PLOT_KINDS",
    "STYLE",
    "cdf",
    "flow_labels",
    "histogram",
    "latency",
    "loss_over_time",
    "new_figure",
    "occupancy",
    "occupancy_frame",
    "occupancy_window",
    "overlay_events",
    "periodogram",
    "pingexp_figure",
    "plot_kind",
    "plot_style",
    "save_figure",
    "shade_spikes",
    "shared_buckets",
    "show_figure",
    "stream_colors",
    "summary_bars",
    "tos_band_frame",
    "tos_band_table",
]
