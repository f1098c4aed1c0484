"""Latency spikes in a probe series: robust baseline, robust threshold, contiguous episodes.

Method, per stream (probes sorted by ``t_sent``):

1. **Baseline** -- the rolling median of the RTT over a centred window of ``window`` seconds
   (converted to probes with the stream's median send interval; lost probes are ignored).
   A median is not pulled up by the spikes it is meant to expose as long as they last less
   than half the window.
2. **Scale** -- the median absolute deviation (MAD) of the residuals ``rtt - baseline`` over
   the whole stream, times 1.4826 (the MAD of a normal sample equals 0.6745 σ), so ``sigma``
   is a standard deviation the spikes cannot inflate.
3. **Threshold** -- ``baseline + max(k * sigma, min_excess_ms)``: ``k`` robust standard
   deviations, but never closer to the baseline than ``min_excess_ms`` (a perfectly steady
   simulated series has ``sigma = 0``).
4. **Episodes** -- consecutive probes above the threshold form one spike; probes lost while a
   spike is in progress do not split it, and spikes closer than ``merge_gap`` seconds merge.

**Spike events.** Several streams crossing one queue see the same queue event, each as its own
spike. :func:`spike_events` chains spikes of any streams whose onsets lie within ``gap`` seconds
of the previous onset into one *spike event* (its onset is the earliest). That is the one
definition of "a spike" every count, alignment and period in qoslab uses: the notebooks, the
explorers and :func:`~qoslab.analysis.spikes_vs_events` count spike events, never per-stream
rows.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import ConfigError, RunFormatError

__all__ = ["detect_spikes", "spike_events", "spike_times", "SPIKE_COLUMNS",
           "SPIKE_EVENT_COLUMNS", "EVENT_GAP"]

#: Columns of the frame :func:`detect_spikes` returns.
SPIKE_COLUMNS: tuple[str, ...] = ("stream", "t_start", "t_end", "t_peak", "peak_ms",
                                  "baseline_ms", "threshold_ms", "n_probes")

#: Columns of the frame :func:`spike_events` returns.
SPIKE_EVENT_COLUMNS: tuple[str, ...] = ("t_start", "t_end", "t_peak", "peak_ms", "n_streams",
                                        "streams")

#: Seconds between onsets of spikes that still count as one spike event (see module docstring).
EVENT_GAP = 1.0

_MAD_TO_SIGMA = 1.4826


def _empty() -> pd.DataFrame:
    return pd.DataFrame({
        "stream": pd.Series(dtype="string"), "t_start": pd.Series(dtype="float64"),
        "t_end": pd.Series(dtype="float64"), "t_peak": pd.Series(dtype="float64"),
        "peak_ms": pd.Series(dtype="float64"), "baseline_ms": pd.Series(dtype="float64"),
        "threshold_ms": pd.Series(dtype="float64"), "n_probes": pd.Series(dtype="int64")})


def detect_spikes(probes: pd.DataFrame, *, window: float = 30.0, k: float = 6.0,
                  min_excess_ms: float = 5.0, merge_gap: float = 0.0,
                  streams: list[str] | None = None) -> pd.DataFrame:
    """Find latency spikes in every stream of a PROBES table.

    Parameters
    ----------
    probes
        PROBES (needs ``stream``, ``t_sent``, ``rtt_ms``).
    window
        Seconds of the centred rolling-median baseline.
    k
        Threshold in robust standard deviations above the baseline.
    min_excess_ms
        Smallest excess over the baseline that counts as a spike.
    merge_gap
        Spikes of one stream separated by at most this many seconds become one.
    streams
        Only these streams (default: all).

    Returns
    -------
    pandas.DataFrame
        One row per spike: ``stream``, ``t_start``/``t_end`` (send times of its first and
        last probe above the threshold), ``t_peak``, ``peak_ms``, ``baseline_ms`` (median
        baseline during the spike), ``threshold_ms``, ``n_probes``; sorted by ``t_start``.

    Raises
    ------
    RunFormatError
        When a needed column is missing.

    Examples
    --------
    >>> t = np.arange(0, 60, 0.2)
    >>> rtt = 20 + 0.1 * np.sin(t)
    >>> rtt[(t >= 30) & (t < 31)] = 400
    >>> p = pd.DataFrame({"stream": "a", "t_sent": t, "rtt_ms": rtt})
    >>> detect_spikes(p)[["t_start", "t_end", "peak_ms", "n_probes"]].round(1)
       t_start  t_end  peak_ms  n_probes
    0     30.0   30.8    400.0         5
    """
    for col in ("stream", "t_sent", "rtt_ms"):
        if col not in probes.columns:
            raise RunFormatError(f"detect_spikes: probes has no column {col!r}")
    rows = []
    names = streams if streams is not None else list(pd.unique(probes["stream"].dropna()))
    for name in names:
        sub = probes[probes["stream"] == name]
        rows.extend(_stream_spikes(str(name), sub["t_sent"].to_numpy(float),
                                   sub["rtt_ms"].to_numpy(float), window, k, min_excess_ms,
                                   merge_gap))
    if not rows:
        return _empty()
    out = pd.DataFrame(rows, columns=list(SPIKE_COLUMNS))
    out = out.astype({"stream": "string", "n_probes": "int64"})
    return out.sort_values(["t_start", "stream"], kind="stable").reset_index(drop=True)


def _stream_spikes(name, t, rtt, window, k, min_excess_ms, merge_gap) -> list[tuple]:
    order = np.argsort(t, kind="stable")
    t, rtt = t[order], rtt[order]
    ok = ~np.isnan(rtt)
    if ok.sum() < 3:
        return []
    ta, ra = t[ok], rtt[ok]
    step = float(np.median(np.diff(ta))) if len(ta) > 1 else 1.0
    n_win = max(3, int(round(window / step)) | 1) if step > 0 else 3
    baseline = pd.Series(ra).rolling(n_win, center=True, min_periods=1).median().to_numpy()
    resid = ra - baseline
    sigma = _MAD_TO_SIGMA * float(np.median(np.abs(resid - np.median(resid))))
    excess = max(k * sigma, min_excess_ms)
    threshold = baseline + excess
    above = ra > threshold
    if not above.any():
        return []
    # Episodes over answered probes: lost probes between two "above" probes do not split.
    idx = np.flatnonzero(above)
    breaks = np.flatnonzero(np.diff(idx) > 1) + 1
    groups = np.split(idx, breaks)
    episodes = [[g[0], g[-1]] for g in groups]
    if merge_gap > 0:
        merged = [episodes[0]]
        for e in episodes[1:]:
            if ta[e[0]] - ta[merged[-1][1]] <= merge_gap:
                merged[-1][1] = e[1]
            else:
                merged.append(e)
        episodes = merged
    rows = []
    for a, b in episodes:
        seg = slice(a, b + 1)
        peak = a + int(np.argmax(ra[seg]))
        rows.append((name, float(ta[a]), float(ta[b]), float(ta[peak]), float(ra[peak]),
                     float(np.median(baseline[seg])), float(np.median(threshold[seg])),
                     int(above[seg].sum())))
    return rows


def spike_events(spikes: pd.DataFrame, *, gap: float = EVENT_GAP) -> pd.DataFrame:
    """Merge per-stream spikes into spike events: one row per queue event, whichever streams
    saw it.

    Spikes are sorted by onset; a spike whose onset is at most ``gap`` seconds after the
    previous spike's onset joins that spike's event (a chain: three onsets 0.8 s apart are one
    event).

    Parameters
    ----------
    spikes
        A table with ``t_start`` (and optionally ``t_end``, ``t_peak``, ``peak_ms``,
        ``stream``), e.g. from :func:`detect_spikes`.
    gap
        Seconds (default :data:`EVENT_GAP`).

    Returns
    -------
    pandas.DataFrame
        :data:`SPIKE_EVENT_COLUMNS`: the event's first onset and last end, the time and RTT of
        its highest probe, how many streams saw it and their labels (joined by ``", "``).

    Examples
    --------
    >>> s = pd.DataFrame({"stream": ["a", "b", "a"], "t_start": [5.1, 5.3, 10.2],
    ...                   "t_end": [5.6, 5.5, 10.4], "t_peak": [5.2, 5.4, 10.3],
    ...                   "peak_ms": [300.0, 350.0, 200.0]})
    >>> spike_events(s)[["t_start", "t_end", "peak_ms", "n_streams"]]
       t_start  t_end  peak_ms  n_streams
    0      5.1    5.6    350.0          2
    1     10.2   10.4    200.0          1
    """
    if "t_start" not in spikes.columns:
        raise RunFormatError("spike_events: spikes has no column 't_start'")
    if not gap >= 0:
        raise ConfigError(f"spike_events: gap must be >= 0 seconds, not {gap}")
    n = len(spikes)
    t0 = spikes["t_start"].to_numpy(float)
    order = np.argsort(t0, kind="stable")
    t0 = t0[order]

    def col(name: str, fallback: np.ndarray) -> np.ndarray:
        return spikes[name].to_numpy(float)[order] if name in spikes.columns else fallback

    t1 = col("t_end", t0)
    tp = col("t_peak", t0)
    peak = col("peak_ms", np.full(n, np.nan))
    stream = (spikes["stream"].astype("string").fillna("").to_numpy(dtype=object)[order]
              if "stream" in spikes.columns else np.full(n, "", dtype=object))
    if n == 0:
        return pd.DataFrame({"t_start": pd.Series(dtype="float64"),
                             "t_end": pd.Series(dtype="float64"),
                             "t_peak": pd.Series(dtype="float64"),
                             "peak_ms": pd.Series(dtype="float64"),
                             "n_streams": pd.Series(dtype="int64"),
                             "streams": pd.Series(dtype="string")})
    event = np.concatenate([[0], np.cumsum(np.diff(t0) > gap)])
    rows = []
    for e in range(int(event[-1]) + 1):
        sel = np.flatnonzero(event == e)
        p = peak[sel]
        top = sel[int(np.nanargmax(p))] if np.isfinite(p).any() else sel[0]
        names = list(dict.fromkeys(s for s in stream[sel] if s))
        rows.append((float(t0[sel[0]]), float(np.nanmax(t1[sel])), float(tp[top]),
                     float(peak[top]), max(len(names), 1), ", ".join(names)))
    out = pd.DataFrame(rows, columns=list(SPIKE_EVENT_COLUMNS))
    return out.astype({"n_streams": "int64", "streams": "string"})


def spike_times(spikes: pd.DataFrame, *, gap: float = EVENT_GAP) -> np.ndarray:
    """Onset times of the spike events of :func:`spike_events` (one per queue event).

    :func:`~qoslab.analysis.align_to_events` and :func:`~qoslab.analysis.infer_period` count
    these onsets.

    >>> s = pd.DataFrame({"t_start": [5.1, 5.3, 10.2, 30.0]})
    >>> spike_times(s).tolist()
    [5.1, 10.2, 30.0]
    """
    if "t_start" not in spikes.columns:
        raise RunFormatError("spike_times: spikes has no column 't_start'")
    return spike_events(spikes, gap=gap)["t_start"].to_numpy(float)
