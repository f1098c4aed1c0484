"""Analysis of RUN tables: summary statistics, spike detection, alignment with events,
perturbation-period inference."""

from .alignment import Alignment, align_to_events
from .period import PeriodEstimate, infer_period, rayleigh_p
from .spikes import SPIKE_COLUMNS, detect_spikes, spike_times
from .summary import summarize

__all__ = [
    "Alignment",
    "PeriodEstimate",
    "SPIKE_COLUMNS",
    "align_to_events",
    "detect_spikes",
    "infer_period",
    "rayleigh_p",
    "spike_times",
    "summarize",
]
