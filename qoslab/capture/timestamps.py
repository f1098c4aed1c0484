"""Exact conversion of capture time stamps to nanoseconds since the Unix epoch.

pcapng stores a 64-bit unsigned tick count per packet and, per interface, the ticks per second
(``if_tsresol``: 10^-r or 2^-r s, r up to 127) and a whole-second offset (``if_tsoffset``,
signed 64 bits). The nanosecond value is ``floor(ticks * 10^9 / units) + offset * 10^9``,
computed here without rounding or overflow; the fraction is truncated as Wireshark truncates
it. A result outside what ``datetime64[ns]`` holds (1677-09-21 to 2262-04-11) is not wrapped
into another date: it is marked invalid, and the reader shows ``NaT`` and flags the row.
"""

from __future__ import annotations

import numpy as np

__all__ = ["NAT", "ticks_to_ns", "resolution_units", "MIN_SECONDS", "MAX_SECONDS"]

#: The int64 value of ``NaT`` in a ``datetime64[ns]`` array.
NAT = np.iinfo(np.int64).min
#: Whole seconds since the epoch that always fit in int64 nanoseconds with any fraction.
MAX_SECONDS = (2**63 - 1) // 10**9 - 1
MIN_SECONDS = -MAX_SECONDS
_NS = 10**9
_U64 = 2**64


def resolution_units(tsresol: int) -> int:
    """Ticks per second of a pcapng ``if_tsresol`` byte (exact, any exponent).

    >>> resolution_units(6), resolution_units(9), resolution_units(0x80 | 20)
    (1000000, 1000000000, 1048576)
    >>> resolution_units(127) == 10**127
    True
    """
    exponent = tsresol & 0x7F
    return (1 << exponent) if tsresol & 0x80 else 10**exponent


def ticks_to_ns(ticks: np.ndarray, units: int, offset_s: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Nanoseconds since the epoch of unsigned ``ticks`` at ``units`` ticks per second.

    Parameters
    ----------
    ticks
        Unsigned 64-bit tick counts (any integer dtype; read as uint64).
    units
        Ticks per second (a Python int, any size > 0).
    offset_s
        Seconds added to every stamp (pcapng ``if_tsoffset``).

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        int64 nanoseconds (:data:`NAT` where invalid) and a bool array, True where the stamp
        fits ``datetime64[ns]``.

    Examples
    --------
    >>> ns, ok = ticks_to_ns(np.array([1_500_000, 2**64 - 1], np.uint64), 1_000_000)
    >>> ns[0], bool(ok[0]), bool(ok[1])
    (np.int64(1500000000), True, False)
    >>> ticks_to_ns(np.array([3 << 20], np.uint64), 1 << 20, offset_s=-1)[0]
    array([2000000000])
    """
    ticks = np.asarray(ticks).astype(np.uint64, copy=False)
    n = len(ticks)
    ns = np.full(n, NAT, np.int64)
    if units <= 0 or n == 0:
        return ns, np.zeros(n, bool)
    if units >= _U64:
        whole = np.zeros(n, np.uint64)
        rest = ticks
    else:
        u = np.uint64(units)
        whole = ticks // u
        rest = ticks - whole * u
    frac = _fraction_ns(rest, units)
    # seconds = whole + offset must lie in [MIN_SECONDS, MAX_SECONDS]
    hi = MAX_SECONDS - offset_s
    lo = MIN_SECONDS - offset_s
    if hi < 0:
        return ns, np.zeros(n, bool)
    ok = whole <= np.uint64(min(hi, _U64 - 1))
    if lo > 0:
        ok &= whole >= np.uint64(min(lo, _U64 - 1))
    if not ok.any():
        return ns, ok
    # modular uint64 addition gives the exact int64 result wherever it is in range
    seconds = (whole[ok] + np.uint64(offset_s % _U64)).view(np.int64)
    ns[ok] = seconds * _NS + frac[ok]
    return ns, ok


def _fraction_ns(rest: np.ndarray, units: int) -> np.ndarray:
    """``floor(rest * 1e9 / units)`` for uint64 ``rest < units`` (int64, exact)."""
    if _NS % units == 0:
        return rest.astype(np.int64) * (_NS // units)
    if units % _NS == 0 and units < _U64:
        return (rest // np.uint64(units // _NS)).astype(np.int64)
    if units > _U64 * _NS:  # rest < 2**64, so rest * 1e9 < units: no nanosecond reached
        return np.zeros(len(rest), np.int64)
    k = units.bit_length() - 1
    if units == 1 << k and k <= 34:  # rest * 1e9 < 2**34 * 1e9 < 2**64
        return ((rest * np.uint64(_NS)) >> np.uint64(k)).astype(np.int64)
    if units < _U64 // 10:  # long division, one decimal digit at a time, in uint64
        u = np.uint64(units)
        ten = np.uint64(10)
        r = rest.copy()
        out = np.zeros(len(rest), np.uint64)
        for _ in range(9):
            r *= ten
            digit = r // u
            r -= digit * u
            out = out * ten + digit
        return out.astype(np.int64)
    # exotic resolutions (over 1.8e18 ticks per second): exact Python integers
    return np.array([(int(x) * _NS) // units for x in rest.tolist()], np.int64)
