"""Do spikes coincide with events (hash changes) more often than chance would allow?

For each spike onset the signed distance to the nearest event of the kind is measured; a
spike is *aligned* when ``0 - before <= distance <= window`` (default: up to ``window``
seconds after the event, or ``before`` seconds ahead of it). The fraction of aligned
spikes is compared with the fraction **expected by chance**: the share of the observed time
span covered by the union of the event windows.

p-value, ``method="uniform"`` (default): under the null hypothesis spike onsets are
independent of the events and uniform over the span, so the number of aligned spikes is
Binomial(n, expected fraction); the p-value is its exact upper tail. ``method="circular"``:
the spike train is shifted circularly by random offsets (keeping its own spacing) and the
p-value is the share of shifts that align at least as many spikes. The circular test
respects clustering of spikes but is powerless against a *periodic* event grid (a shift by a
multiple of the period realigns everything), so for perturbation grids use the default.

A spike table (``t_start`` and ``stream``, as :func:`~qoslab.analysis.detect_spikes` returns) is
first merged into spike events (:func:`~qoslab.analysis.spike_events`): one queue event seen by
three streams counts once, as everywhere in qoslab.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..errors import ConfigError, RunFormatError
from .pvalues import PValue
from .spikes import spike_times

__all__ = ["Alignment", "align_to_events"]


@dataclass(frozen=True)
class Alignment:
    """Result of :func:`align_to_events`.

    Attributes
    ----------
    n_spikes, n_events, n_aligned
        Counts.
    fraction
        ``n_aligned / n_spikes`` (NaN without spikes).
    expected_fraction
        Share of the time span within the event windows.
    p_value
        Probability of at least ``n_aligned`` aligned spikes under the null hypothesis (NaN
        when there were no spikes or no events: nothing was tested).
    method
        ``"uniform"`` or ``"circular"``.
    window
        Seconds after an event within which a spike counts as aligned.
    distances
        Per spike: onset time, signed distance to the nearest event (s), aligned flag.
    """

    n_spikes: int
    n_events: int
    n_aligned: int
    fraction: float
    expected_fraction: float
    p_value: float
    method: str
    window: float
    distances: pd.DataFrame = field(repr=False)

    @property
    def test(self) -> str:
        """The test behind :attr:`p_value`, as a reader needs it."""
        if self.method == "uniform":
            return "exact binomial test, onsets uniform under the null"
        return "circular-shift permutation test"

    @property
    def p(self) -> PValue:
        """:attr:`p_value` with its test (``str(a.p)`` never says "p = 0")."""
        floor = None
        if self.method == "circular":
            floor = 1.0 / (1 + int(self.distances.attrs.get("n_perm", 0) or 0))
        return PValue(self.p_value, self.test, floor)

    def summary(self) -> str:
        """One line: ``'7 of 7 spike events within 0.6 s after a hash change (expected by
        chance 13 %), p = 6.1e-07 (exact binomial test …)'``."""
        if self.n_spikes == 0:
            return "no spike events to align"
        return (f"{self.n_aligned} of {self.n_spikes} spike event(s) start within "
                f"{self.window:g} s after an event (expected by chance "
                f"{self.expected_fraction:.0%}); {self.p}")

    @property
    def enrichment(self) -> float:
        """``fraction / expected_fraction``."""
        if not self.expected_fraction or math.isnan(self.fraction):
            return math.nan
        return self.fraction / self.expected_fraction


def _times(x, col: str) -> np.ndarray:
    if isinstance(x, pd.DataFrame):
        if col not in x.columns:
            raise RunFormatError(f"align_to_events: table has no column {col!r}")
        if col == "t_start" and "stream" in x.columns:
            return np.sort(spike_times(x))  # per-stream spikes -> spike events
        return np.sort(x[col].to_numpy(float))
    return np.sort(np.asarray(x, dtype=float))


def _nearest(times: np.ndarray, events: np.ndarray) -> np.ndarray:
    """Signed distance of each time to the nearest event (time - event)."""
    if len(events) == 0:
        return np.full(len(times), np.inf)
    i = np.searchsorted(events, times)
    left = events[np.clip(i - 1, 0, len(events) - 1)]
    right = events[np.clip(i, 0, len(events) - 1)]
    dl, dr = times - left, times - right
    return np.where(np.abs(dl) <= np.abs(dr), dl, dr)


def _covered(events: np.ndarray, before: float, window: float, t0: float, t1: float) -> float:
    if len(events) == 0 or t1 <= t0:
        return 0.0
    lo = np.clip(events - before, t0, t1)
    hi = np.clip(events + window, t0, t1)
    total, cur_lo, cur_hi = 0.0, lo[0], hi[0]
    for a, b in zip(lo[1:], hi[1:], strict=True):
        if a > cur_hi:
            total += cur_hi - cur_lo
            cur_lo, cur_hi = a, b
        else:
            cur_hi = max(cur_hi, b)
    total += cur_hi - cur_lo
    return float(total / (t1 - t0))


def _binom_sf(k: int, n: int, p: float) -> float:
    """P(X >= k) for X ~ Binomial(n, p), exact (summed in log space: no early underflow).

    >>> round(_binom_sf(3, 3, 0.5), 12), _binom_sf(300, 300, 0.01) > 0
    (0.125, False)
    """
    if k <= 0:
        return 1.0
    if k > n or p <= 0:
        return 0.0
    if p >= 1:
        return 1.0
    lp, lq = math.log(p), math.log1p(-p)
    logs = [math.lgamma(n + 1) - math.lgamma(j + 1) - math.lgamma(n - j + 1) + j * lp
            + (n - j) * lq for j in range(k, n + 1)]
    top = max(logs)
    return float(min(1.0, math.exp(top) * sum(math.exp(v - top) for v in logs)))


def align_to_events(spikes, events, kind: str = "hash_change", *, window: float = 0.6,
                    before: float = 0.1, span: tuple[float, float] | None = None,
                    method: str = "uniform", n_perm: int = 2000, seed: int = 0) -> Alignment:
    """Measure how well spike onsets line up with events of one kind.

    Parameters
    ----------
    spikes
        Spike table (``t_start``; a table with ``stream``, as
        :func:`~qoslab.analysis.detect_spikes` returns, is merged into spike events first) or
        an array of onset times.
    events
        EVENTS table (``t``, ``kind``) or an array of event times.
    kind
        EVENTS kind to align with.
    window, before
        A spike is aligned when it starts at most ``before`` seconds before or ``window``
        seconds after an event (a change acts on the probes sent after it).
    span
        ``(t0, t1)`` of the observation; default: from the first to the last of spikes and
        events.
    method
        ``"uniform"`` (exact binomial) or ``"circular"`` (circular-shift permutation).
    n_perm, seed
        Permutations and their seed for ``"circular"``.

    Returns
    -------
    Alignment

    Examples
    --------
    >>> ev = np.arange(5.0, 200, 5.0)
    >>> sp = ev[::3] + 0.15
    >>> a = align_to_events(sp, ev, span=(0, 200))
    >>> a.n_aligned, a.n_spikes, round(a.expected_fraction, 2), a.p_value < 1e-6
    (13, 13, 0.14, True)
    """
    if method not in ("uniform", "circular"):
        raise ConfigError(f"align_to_events: method must be 'uniform' or 'circular', not {method!r}")
    if window < 0 or before < 0:
        raise ConfigError("align_to_events: window and before must be >= 0")
    t = _times(spikes, "t_start")
    if isinstance(events, pd.DataFrame):
        if "kind" not in events.columns:
            raise RunFormatError("align_to_events: events has no column 'kind'")
        ev = _times(events[events["kind"] == kind], "t")
    else:
        ev = _times(events, "t")
    if span is None:
        both = np.concatenate([t, ev])
        span = (float(both.min()), float(both.max())) if len(both) else (0.0, 0.0)
    t0, t1 = float(span[0]), float(span[1])
    d = _nearest(t, ev)
    aligned = (d >= -before) & (d <= window)
    n, hits = len(t), int(aligned.sum())
    expected = _covered(ev, before, window, t0, t1)
    if n == 0 or len(ev) == 0:
        p = math.nan  # nothing to test: "p = n/a", never "p = 1"
    elif method == "uniform":
        p = _binom_sf(hits, n, expected)
    else:
        rng = np.random.default_rng(seed)
        length = t1 - t0
        shifts = rng.uniform(0, length, n_perm)
        count = 0
        for s in shifts:
            ts = np.sort((t - t0 + s) % length + t0)
            dd = _nearest(ts, ev)
            count += int(((dd >= -before) & (dd <= window)).sum()) >= hits
        p = (1 + count) / (1 + n_perm)
    table = pd.DataFrame({"t": t, "distance": d, "aligned": aligned})
    table.attrs["n_perm"] = n_perm if method == "circular" else 0
    return Alignment(n_spikes=n, n_events=len(ev), n_aligned=hits,
                     fraction=hits / n if n else math.nan, expected_fraction=expected,
                     p_value=float(p), method=method, window=window, distances=table)
