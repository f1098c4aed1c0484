"""Rates, sizes and times as ``tc`` writes them: one parser and one formatter for each.

``tc`` (iproute2 ``tc/tc_util.c``) reads rates as bit/s with SI prefixes (``kbit`` = 1000 bit/s,
``mbit``, ``gbit``; ``bps`` = bytes per second, so ``kbps`` = 8000 bit/s), sizes in bytes with
binary prefixes (``k``/``kb`` = 1024 bytes, ``m``/``mb``, ``g``/``gb``; ``kbit`` = 128 bytes)
and times in seconds with ``s``, ``ms``, ``us`` suffixes (a bare number is microseconds).
Everything in qoslab holds rates in bit/s, sizes in bytes and times in seconds (floats).
"""

from __future__ import annotations

import math
import re

from .errors import ConfigError

__all__ = ["parse_rate", "format_rate", "parse_size", "format_size", "parse_time",
           "format_time"]

_RATE = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:e[+-]?[0-9]+)?)\s*([kmgt]?)(bit|bps)?\s*$",
                   re.IGNORECASE)
_SI = {"": 1.0, "k": 1e3, "m": 1e6, "g": 1e9, "t": 1e12}
_SIZE = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*([kmg]?)(b|bit)?\s*$", re.IGNORECASE)
_BIN = {"": 1, "k": 1024, "m": 1024 ** 2, "g": 1024 ** 3}
_TIME = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:e[+-]?[0-9]+)?)\s*(s|sec|secs|ms|msec|msecs|us|"
                   r"usec|usecs)?\s*$", re.IGNORECASE)
_TIME_UNIT = {"s": 1.0, "sec": 1.0, "secs": 1.0, "ms": 1e-3, "msec": 1e-3, "msecs": 1e-3,
              "us": 1e-6, "usec": 1e-6, "usecs": 1e-6}


def parse_rate(rate: str | float | int, what: str = "rate") -> float:
    """A rate in ``tc`` units (or a number of bit/s) → bit/s.

    Examples
    --------
    >>> parse_rate("2mbit"), parse_rate("500kbit"), parse_rate(1e6), parse_rate("1mbps")
    (2000000.0, 500000.0, 1000000.0, 8000000.0)
    >>> parse_rate("fast")
    Traceback (most recent call last):
    ...
    qoslab.errors.ConfigError: rate 'fast': expected bit/s as a number or with a tc unit (kbit, mbit, gbit; kbps = kilobytes/s), e.g. '4mbit'
    """
    if isinstance(rate, bool):
        raise ConfigError(f"{what} {rate!r}: expected a rate, e.g. '4mbit'")
    if isinstance(rate, (int, float)):
        value = float(rate)
    else:
        m = _RATE.match(str(rate))
        if not m:
            raise ConfigError(f"{what} {rate!r}: expected bit/s as a number or with a tc unit "
                              "(kbit, mbit, gbit; kbps = kilobytes/s), e.g. '4mbit'")
        value = float(m[1]) * _SI[m[2].lower()] * (8 if (m[3] or "").lower() == "bps" else 1)
    if not (math.isfinite(value) and value > 0):
        raise ConfigError(f"{what} {rate!r}: expected a positive finite rate")
    return value


def format_rate(bps: float) -> str:
    """bit/s → the shortest exact ``tc`` spelling.

    Examples
    --------
    >>> format_rate(2e6), format_rate(900_000), format_rate(1234), format_rate(1.5e9)
    ('2mbit', '900kbit', '1234bit', '1500mbit')
    """
    value = float(bps)
    for unit, mult in (("gbit", 1e9), ("mbit", 1e6), ("kbit", 1e3)):
        if value >= mult and value % mult == 0:
            return f"{int(value // mult)}{unit}"
    return f"{value:g}bit" if value != int(value) else f"{int(value)}bit"


def parse_size(size: str | int, what: str = "size") -> int:
    """A size in ``tc`` units (or a number of bytes) → bytes.

    Examples
    --------
    >>> parse_size("1514"), parse_size("32k"), parse_size("1mb"), parse_size("8kbit")
    (1514, 32768, 1048576, 1024)
    """
    if isinstance(size, bool):
        raise ConfigError(f"{what} {size!r}: expected a number of bytes")
    if isinstance(size, (int, float)):
        value = float(size)
    else:
        m = _SIZE.match(str(size))
        if not m:
            raise ConfigError(f"{what} {size!r}: expected bytes as a number or with a tc unit "
                              "(k, m, g = 1024-based; kbit), e.g. '32k'")
        value = float(m[1]) * _BIN[m[2].lower()] / (8 if (m[3] or "").lower() == "bit" else 1)
    if not (math.isfinite(value) and value >= 0 and value == int(value)):
        raise ConfigError(f"{what} {size!r}: expected a whole, non-negative number of bytes")
    return int(value)


def format_size(nbytes: int) -> str:
    """bytes → ``tc`` spelling (``32Kb``-style prefixes only when exact).

    Examples
    --------
    >>> format_size(1514), format_size(32768), format_size(1048576)
    ('1514b', '32kb', '1mb')
    """
    n = int(nbytes)
    for unit, mult in (("gb", 1024 ** 3), ("mb", 1024 ** 2), ("kb", 1024)):
        if n >= mult and n % mult == 0:
            return f"{n // mult}{unit}"
    return f"{n}b"


def parse_time(value: str | float | int, what: str = "time") -> float:
    """A time in ``tc`` units → seconds; a bare string number is microseconds as in tc, a
    Python number is seconds.

    Examples
    --------
    >>> parse_time("5ms"), parse_time("100ms"), parse_time("1s"), parse_time(0.25)
    (0.005, 0.1, 1.0, 0.25)
    >>> parse_time("500")
    0.0005
    """
    if isinstance(value, bool):
        raise ConfigError(f"{what} {value!r}: expected a time, e.g. '5ms'")
    if isinstance(value, (int, float)):
        seconds = float(value)
    else:
        m = _TIME.match(str(value))
        if not m:
            raise ConfigError(f"{what} {value!r}: expected a time with a unit (s, ms, us), "
                              "e.g. '5ms'")
        seconds = float(m[1]) * _TIME_UNIT[(m[2] or "us").lower()]
    if not (math.isfinite(seconds) and seconds >= 0):
        raise ConfigError(f"{what} {value!r}: expected a non-negative finite time")
    return seconds


def format_time(seconds: float) -> str:
    """seconds → ``tc`` spelling (``us`` precision, the unit tc prints).

    Examples
    --------
    >>> format_time(0.005), format_time(0.1), format_time(2.0), format_time(0.0000015)
    ('5ms', '100ms', '2s', '1.5us')
    """
    us = round(float(seconds) * 1e6, 3)
    if us >= 1e6 and us % 1e6 == 0:
        return f"{int(us // 1e6)}s"
    if us >= 1e3 and us % 1e3 == 0:
        return f"{int(us // 1e3)}ms"
    return f"{us:.15g}us"
