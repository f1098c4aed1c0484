"""Infer a perturbation period from spike times alone (Rayleigh periodogram).

For a trial period ``P`` every spike time becomes a phase ``2π t / P``; if the spikes sit on a
grid of period ``P`` the phases agree and their mean resultant length ``R`` (0..1) is near 1.
The Rayleigh statistic ``Z = n R²`` measures it; for uniform phases its tail is
``P ≈ exp(√(1 + 4n + 4(n² − (nR)²)) − (1 + 2n))`` (Zar, Biostatistical Analysis, eq. 27.4;
``≈ e^(-Z)`` for large ``n``, and never below 0 where a truncated series would go negative). The periodogram is scanned on a frequency grid eight
times finer than the resolution ``1 / span``. Searching many frequencies inflates the best
peak, so its p-value is calibrated by Monte Carlo: ``n_null`` sets of as many uniform random
times over the same span are scanned on the same grid, and the p-value is the share of them
whose best ``Z`` reaches the observed one, ``(1 + k) / (1 + n_null)``. Below what the Monte
Carlo can resolve, the analytic tail ``1 - (1 - p_Z)^M`` is reported, with
``M = 6 (f_max - f_min) span`` effective independent frequencies (an empirical calibration of
the oversampled scan against a 3000-set Monte Carlo: close in the tail, conservative above).

Spikes on a ``P`` grid also fit ``P/2``, ``P/3`` … perfectly; with onset jitter those fit
worse, so the maximum is usually at the fundamental. Ties within ``tie`` (exact grids) go to
the longest period, and a peak whose multiples ``k·P`` (k ≤ 8) fit within ``max(tie, 2/n)``
of it (one stray onset can favour a sub-harmonic) is replaced by the longest such multiple. Spikes that happen at only some changes (every other one, say) cannot be
told from a grid of twice the period -- an inherent ambiguity of the data.

The work grows with the span: ``8 × span / min_period`` frequencies for each onset, and as
much again for each Monte Carlo set. A search is limited to :data:`MAX_PERIOD_WORK` phase
evaluations: when the Monte Carlo would take more, the analytic p-value is reported (``method``
says so); when the scan alone would, :class:`~qoslab.errors.PeriodSearchLimitError` says how to
narrow it (a larger ``min_period``, a smaller ``max_period`` or ``oversample``, a shorter
``span``). A RUN file's times may span centuries; a day of onsets scans in seconds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..errors import ConfigError, PeriodSearchLimitError
from .pvalues import PValue

__all__ = ["PeriodEstimate", "infer_period", "rayleigh_p", "MAX_PERIOD_WORK"]

#: Most phase evaluations (frequencies × onsets, Monte Carlo sets included) one period search
#: makes: about a minute of numpy. A day of 500 onsets scans its 700,000 frequencies once
#: (analytic p-value); an hour of 300 onsets gets its Monte Carlo p-value.
MAX_PERIOD_WORK = 1_000_000_000


@dataclass(frozen=True)
class PeriodEstimate:
    """Result of :func:`infer_period`.

    Attributes
    ----------
    period
        Best period in seconds (NaN when fewer than ``min_spikes`` times).
    phase
        Offset of the grid in seconds, ``0 <= phase < period``: times ≈ ``phase + k·period``.
    resultant
        Mean resultant length ``R`` at the best period.
    rayleigh_z
        ``n R²``.
    p_value
        Chance of so strong a peak anywhere in the searched band with uniform random times
        (NaN when too few times were given to test anything).
    n
        Number of times.
    periodogram
        ``period``, ``frequency``, ``resultant``, ``z`` over the grid.
    """

    period: float
    phase: float
    resultant: float
    rayleigh_z: float
    p_value: float
    n: int
    periodogram: pd.DataFrame = field(repr=False)

    #: How :attr:`p_value` was obtained (see :attr:`test`); "" when no test was made.
    method: str = ""
    #: The Monte Carlo resolution ``1 / (n_null + 1)`` when the p-value is a Monte Carlo one.
    p_floor: float | None = None

    def significant(self, alpha: float = 0.01) -> bool:
        """Whether a grid was found at level ``alpha``."""
        return bool(self.p_value < alpha)

    @property
    def test(self) -> str:
        """The test behind :attr:`p_value`, as a reader needs it."""
        return {
            "monte-carlo": "Rayleigh periodogram peak vs uniform random onsets (Monte Carlo)",
            "analytic": "Rayleigh periodogram peak, analytic tail over the searched band",
        }.get(self.method, "no test: too few onsets")

    @property
    def p(self) -> PValue:
        """:attr:`p_value` with its test (``str(est.p)`` never says "p = 0")."""
        return PValue(self.p_value, self.test, self.p_floor)

    def summary(self) -> str:
        """One line: the period and phase found, or that no grid was found, with the p-value.

        Examples
        --------
        >>> infer_period([3.0, 8.0]).summary()
        'no grid: 2 spike onsets are too few'
        >>> infer_period([3.0, 8.0]).p.text
        'p = n/a'
        """
        if self.period != self.period:  # NaN
            return f"no grid: {self.n} spike onsets are too few"
        verdict = "grid" if self.significant() else "no significant grid"
        return (f"{verdict}: period {self.period:.2f} s, phase {self.phase:.2f} s from "
                f"{self.n} spike onsets; {self.p}")


def _fundamental(i: int, freqs: np.ndarray, r: np.ndarray, width: int, tol: float) -> int:
    """Prefer the longest period ``k·P`` (k = 2..8) that fits within ``tol`` of the best.

    A grid of period ``P`` also fits ``P/k``; one stray onset can tip the scale towards a
    sub-harmonic, so a peak whose multiples fit (nearly) as well is replaced by the longest.
    """
    best = i
    for k in range(2, 9):
        target = freqs[i] / k
        if target < freqs[0]:
            break
        j = int(np.searchsorted(freqs, target))
        lo, hi = max(j - width, 0), min(j + width + 1, len(freqs))
        if lo >= hi:
            break
        jj = lo + int(np.argmax(r[lo:hi]))
        if r[jj] >= r[i] - tol:
            best = jj
    return best


def _sums(freqs: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sums of cos and sin of ``2π f t`` per frequency (chunked to bound memory)."""
    c = np.empty(len(freqs))
    s = np.empty(len(freqs))
    step = max(1, 2_000_000 // max(len(t), 1))
    for a in range(0, len(freqs), step):
        ph = (2 * np.pi) * np.outer(freqs[a:a + step], t)
        c[a:a + step] = np.cos(ph).sum(axis=1)
        s[a:a + step] = np.sin(ph).sum(axis=1)
    return c, s


def _p_value(z: float, n: int, freqs: np.ndarray, span, band: float, length: float,
             n_null: int, seed: int) -> tuple[float, str, float | None]:
    """``(p, method, floor)``: the Monte Carlo p-value and its resolution, or the analytic one
    where the Monte Carlo could not resolve it."""
    m = max(1.0, 6.0 * band * length)
    p_one = rayleigh_p(z, n)
    analytic = min(1.0, p_one * m) if p_one < 1e-9 else float(1 - (1 - p_one) ** m)
    if n_null <= 0 or analytic < 0.5 / (1 + n_null):
        return analytic, "analytic", None  # the Monte Carlo could not resolve it
    rng = np.random.default_rng(seed)
    exceed = 0
    for _ in range(n_null):
        t = rng.uniform(span[0], span[1], n)
        c, s = _sums(freqs, t)
        if float(((c * c + s * s) / n).max()) >= z:
            exceed += 1
    p = (1 + exceed) / (1 + n_null)
    if exceed == 0 and analytic < p:
        return analytic, "analytic", None
    return p, "monte-carlo", 1.0 / (1 + n_null)


def rayleigh_p(z: float, n: int) -> float:
    """P-value of the Rayleigh test for ``Z = n R²`` (Zar, Biostatistical Analysis, eq. 27.4).

    ``exp(√(1 + 4n + 4(n² − R_n²)) − (1 + 2n))`` with ``R_n = n R``: close to ``e^(-Z)`` for
    many phases, and positive however tight a few phases are (seven perfectly aligned onsets
    give about 7e-5, not 0).

    >>> round(rayleigh_p(3.0, 50), 4)
    0.049
    >>> 0 < rayleigh_p(7.0, 7) < 1e-4
    True
    """
    if n <= 0:
        return 1.0
    rn2 = min(max(z * n, 0.0), float(n) * n)  # (n R)², R <= 1
    p = math.exp(math.sqrt(1 + 4 * n + 4 * (n * n - rn2)) - (1 + 2 * n))
    return float(min(1.0, max(p, 0.0)))


def infer_period(times, *, min_period: float = 1.0, max_period: float | None = None,
                 span: tuple[float, float] | None = None, oversample: int = 8,
                 tie: float = 0.02, min_spikes: int = 3, n_null: int = 100,
                 seed: int = 0) -> PeriodEstimate:
    """Find the grid period and phase of event times (spike onsets).

    Parameters
    ----------
    times
        Onset times in seconds (e.g. :func:`~qoslab.analysis.spike_times`).
    min_period, max_period
        Band searched; ``max_period`` defaults to a third of the span (three cycles at least).
    span
        ``(t0, t1)`` of the observation (default: first to last time).
    oversample
        Frequency grid steps per resolution element ``1 / span``.
    tie
        Periods whose ``R`` is within ``tie`` of the best count as tied; the longest wins.
    min_spikes
        Fewer times give NaN period and p-value 1.
    n_null, seed
        Monte Carlo null sets for the p-value and their random seed (deterministic); none
        (the analytic p-value) when they would take more than :data:`MAX_PERIOD_WORK`.

    Returns
    -------
    PeriodEstimate

    Examples
    --------
    >>> t = np.array([5, 15, 20, 35, 40, 55, 70, 85, 90]) + 0.1
    >>> est = infer_period(t, span=(0, 100))
    >>> round(est.period, 1), round(est.phase, 1), est.significant()
    (5.0, 0.1, True)
    """
    t = np.sort(np.asarray(times, dtype=float))
    t = t[np.isfinite(t)]
    n = len(t)
    if span is None:
        span = (float(t[0]), float(t[-1])) if n else (0.0, 0.0)
    length = float(span[1] - span[0])
    empty = pd.DataFrame({"period": [], "frequency": [], "resultant": [], "z": []})
    if n < min_spikes or length <= 0:
        # no test was made: the p-value is not 1 but undefined ("p = n/a")
        return PeriodEstimate(math.nan, math.nan, math.nan, 0.0, math.nan, n, empty)
    if max_period is None:
        max_period = length / 3
    if not 0 < min_period < max_period:
        raise ConfigError(f"infer_period: need 0 < min_period < max_period, got "
                          f"{min_period}, {max_period} (span {length:g} s)")
    if isinstance(oversample, bool) or not isinstance(oversample, (int, np.integer)) or \
            oversample < 1:
        raise ConfigError(f"infer_period: oversample (frequency steps per 1/span) must be "
                          f"an integer >= 1, got {oversample!r}")
    f_lo, f_hi = 1.0 / max_period, 1.0 / min_period
    step = 1.0 / (oversample * length)
    grid = math.floor((f_hi - f_lo) / step) + 1  # np.arange's length, before it allocates
    if grid * n > MAX_PERIOD_WORK:
        raise PeriodSearchLimitError(
            f"infer_period: {n} onsets over {length:g} s on a grid of {grid:,} frequencies "
            f"(periods {min_period:g} to {max_period:g} s, oversample {oversample}) is more "
            f"than MAX_PERIOD_WORK = {MAX_PERIOD_WORK:,} phase evaluations "
            "(qoslab.analysis.period): give a larger min_period, a smaller max_period or "
            "oversample, or a shorter span")
    if grid * n * (1 + n_null) > MAX_PERIOD_WORK:
        n_null = 0  # the Monte Carlo would take too long: the analytic tail
    freqs = np.arange(f_lo, f_hi + step / 2, step)
    c, s = _sums(freqs, t)
    r = np.hypot(c, s) / n
    best_r = float(r.max())
    tied = np.flatnonzero(r >= best_r - tie)
    i = int(tied[np.argmin(freqs[tied])])  # longest period among the tied
    # refine locally: the maximum of R near the chosen grid point
    lo, hi = max(i - oversample, 0), min(i + oversample + 1, len(freqs))
    i = lo + int(np.argmax(r[lo:hi]))
    i = _fundamental(i, freqs, r, oversample, max(tie, 2.0 / n))
    f = float(freqs[i])
    z = n * float(r[i]) ** 2
    p, method, floor = _p_value(z, n, freqs, span, f_hi - f_lo, length, n_null, seed)
    angle = math.atan2(float(s[i]), float(c[i]))
    period = 1.0 / f
    phase = (angle / (2 * np.pi) * period) % period
    gram = pd.DataFrame({"period": 1.0 / freqs, "frequency": freqs, "resultant": r,
                         "z": n * r**2})
    return PeriodEstimate(period=period, phase=float(phase), resultant=float(r[i]),
                          rayleigh_z=z, p_value=p, n=n, periodogram=gram, method=method,
                          p_floor=floor)
