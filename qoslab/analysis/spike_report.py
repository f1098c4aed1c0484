"""Spikes of a RUN against its events, in one call: what notebooks and explorers show.

:func:`spikes_vs_events` runs the whole chain -- :func:`~qoslab.analysis.detect_spikes` per
stream, :func:`~qoslab.analysis.spike_events` (one row per queue event), the alignment of those
events with one EVENTS kind over the probes' time span, and the period inferred from their
onsets alone -- so a notebook and a widget looking at the same RUN report the same numbers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..errors import RunFormatError
from .alignment import Alignment, align_to_events
from .period import PeriodEstimate, infer_period
from .spikes import EVENT_GAP, detect_spikes, spike_events

__all__ = ["SpikeReport", "spikes_vs_events"]


@dataclass(frozen=True)
class SpikeReport:
    """What :func:`spikes_vs_events` found.

    Attributes
    ----------
    spikes
        Per-stream spikes (:func:`~qoslab.analysis.detect_spikes`).
    events
        Spike events (:func:`~qoslab.analysis.spike_events`): the count people mean.
    alignment
        Spike-event onsets against the EVENTS of ``kind`` (:class:`~qoslab.analysis.Alignment`).
    period
        The grid period found from the onsets alone (:class:`~qoslab.analysis.PeriodEstimate`).
    kind
        The EVENTS kind aligned with.
    span
        ``(t0, t1)``: the probes' time span every statistic uses.
    n_changes
        EVENTS of ``kind`` inside the span.
    """

    spikes: pd.DataFrame
    events: pd.DataFrame
    alignment: Alignment
    period: PeriodEstimate
    kind: str
    span: tuple[float, float]
    n_changes: int

    @property
    def n_events(self) -> int:
        """Spike events."""
        return len(self.events)

    def summary(self) -> str:
        """Two sentences: spike events and their alignment; the period from latency alone."""
        what = self.kind.replace("_", " ")
        head = (f"{self.n_events} spike event{'s' if self.n_events != 1 else ''} "
                f"({len(self.spikes)} per-stream spike{'s' if len(self.spikes) != 1 else ''}), "
                f"{self.n_changes} {what}{'s' if self.n_changes != 1 else ''}")
        return f"{head}. {self.alignment.summary()}. Period from latency alone: " \
            f"{self.period.summary()}."

    def table(self) -> pd.DataFrame:
        """The headline figures as a two-column table (figure, value) for display."""
        a, est = self.alignment, self.period
        rows = [
            ("spike events", f"{self.n_events}"),
            ("per-stream spikes", f"{len(self.spikes)}"),
            (f"{self.kind.replace('_', ' ')}s", f"{self.n_changes}"),
            (f"events within {a.window:g} s after a change", f"{a.n_aligned} of {a.n_spikes}"),
            ("fraction aligned", "n/a" if a.n_spikes == 0 else f"{a.fraction:.2f}"),
            ("expected by chance", f"{a.expected_fraction:.3f}"),
            ("alignment", str(a.p)),
            ("period from latency alone",
             f"{est.period:.2f} s" if est.significant() else
             "no significant grid" + ("" if est.period != est.period
                                      else f" (best {est.period:.2f} s)")),
            ("period test", str(est.p)),
        ]
        return pd.DataFrame(rows, columns=["figure", "value"]).set_index("figure")


def spikes_vs_events(run, kind: str = "hash_change", *, gap: float = EVENT_GAP,
                     window: float = 0.6, before: float = 0.1, **detect) -> SpikeReport:
    """Detect spikes in a RUN and test them against its EVENTS of one kind.

    Parameters
    ----------
    run
        A :class:`~qoslab.runs.Run` (PROBES and EVENTS).
    kind
        EVENTS kind to align with (``hash_change``: SFQ perturbation).
    gap
        Seconds between onsets that still make one spike event.
    window, before
        Alignment window (see :func:`~qoslab.analysis.align_to_events`).
    **detect
        Passed to :func:`~qoslab.analysis.detect_spikes` (``k``, ``window`` is named
        ``baseline_window`` here to keep it apart from the alignment window).

    Returns
    -------
    SpikeReport

    Examples
    --------
    >>> from qoslab.runs import Run
    >>> t = np.arange(0, 60, 0.2)
    >>> rtt = np.where((t % 5 >= 0.2) & (t % 5 < 0.6) & (t > 1), 300.0, 20.0)
    >>> run = Run(probes={"stream": "a", "host": "h", "tos": 0, "size": 56,
    ...                   "seq": np.arange(t.size), "t_sent": t, "rtt_ms": rtt, "status": "ok",
    ...                   "ttl": 64},
    ...           events={"t": np.arange(5.0, 60, 5.0), "kind": "hash_change", "detail": ""})
    >>> rep = spikes_vs_events(run)
    >>> rep.n_events, rep.alignment.n_aligned, round(rep.period.period, 1)
    (11, 11, 5.0)
    """
    probes, events = getattr(run, "probes", None), getattr(run, "events", None)
    if probes is None or events is None:
        raise RunFormatError(f"spikes_vs_events: expected a Run, got {type(run).__name__}")
    if "baseline_window" in detect:
        detect["window"] = detect.pop("baseline_window")
    spikes = detect_spikes(probes, **detect)
    merged = spike_events(spikes, gap=gap)
    t = pd.to_numeric(probes["t_sent"], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    t = t[np.isfinite(t)]
    span = (float(t.min()), float(t.max())) if t.size else (0.0, 0.0)
    onsets = merged["t_start"].to_numpy(float)
    alignment = align_to_events(onsets, events, kind=kind, window=window, before=before,
                                span=span)
    period = infer_period(onsets, span=span) if span[1] > span[0] else infer_period([])
    ev_t = pd.to_numeric(events.loc[events["kind"] == kind, "t"], errors="coerce")
    n_changes = int(ev_t.between(span[0], span[1]).sum())
    return SpikeReport(spikes, merged, alignment, period, kind, span, n_changes)
