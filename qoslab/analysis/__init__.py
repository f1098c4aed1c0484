"""Analysis of RUN tables: summary statistics, spike detection, spike events, alignment with
events, perturbation-period inference, p-values labelled by their test."""

from .alignment import Alignment, align_to_events
from .period import PeriodEstimate, infer_period, rayleigh_p
from .pvalues import PValue, format_p
from .spike_report import SpikeReport, spikes_vs_events
from .spikes import (
    EVENT_GAP,
    SPIKE_COLUMNS,
    SPIKE_EVENT_COLUMNS,
    detect_spikes,
    spike_events,
    spike_times,
)
from .summary import reported_summary, summarize

__all__ = [
    "Alignment",
    "EVENT_GAP",
    "PValue",
    "PeriodEstimate",
    "SPIKE_COLUMNS",
    "SPIKE_EVENT_COLUMNS",
    "SpikeReport",
    "align_to_events",
    "detect_spikes",
    "format_p",
    "infer_period",
    "rayleigh_p",
    "reported_summary",
    "spike_events",
    "spike_times",
    "spikes_vs_events",
    "summarize",
]
