"""Typed experiment parameters: declared once, parsed and checked the same way everywhere.

A scenario declares its parameters as a tuple of :class:`Param`; from that one declaration come
the command-line options (``qoslab run NAME --perturb 5``), the ``qoslab report -p NAME=VALUE``
checks, the notebook widgets (units and ranges shown) and the META ``params`` record. Every
value, whatever its origin (CLI text, a widget, a Python call), goes through
:meth:`Param.check`, so a bad value gives the same message everywhere: the parameter, what was
given, the unit and the allowed range.

Kinds (``Param.kind``):

========== ====================================== =============================================
kind       Python value                            text accepted
========== ====================================== =============================================
``float``  float in ``unit``                       ``5``, ``0.2``, ``1e-3``
``int``    int                                     ``10``, ``0x10``
``bool``   bool                                    ``yes/no``, ``true/false``, ``on/off``, ``1/0``
``rate``   float, bit/s                            ``2mbit``, ``900kbit``, ``1e6`` (tc units)
``time``   float, seconds                          ``5``, ``5s``, ``100ms`` (a bare number: s)
``size``   int, bytes                              ``1514``, ``32k``
``choice`` one of ``choices`` (str)                the choice itself
``hex``    int, written in hex (seeds, TOS bytes)  ``0x1234``, ``4660``
``ints``   tuple of ints                           ``0x10,0,8``
``str``    str                                     anything
========== ====================================== =============================================
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import ConfigError
from ..units import format_rate, parse_rate, parse_size, parse_time

__all__ = ["Param", "KINDS", "resolve", "parse_cli_items", "parse_assignment"]

KINDS = ("float", "int", "bool", "rate", "time", "size", "choice", "hex", "ints", "str")
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


@dataclass(frozen=True)
class Param:
    """One experiment parameter.

    Parameters
    ----------
    name
        Python identifier (``shaper_rate``); the CLI option is ``--shaper-rate``.
    kind
        One of :data:`KINDS` (see the module docstring).
    default
        Default value (already typed); ``None`` only with ``optional``.
    help
        One line: what it is, for ``--help`` and widget tooltips.
    unit
        Display unit (``"s"``, ``"bit/s"``, ``"packets"``, ``"bytes"``); rates are always
        bit/s, times seconds, sizes bytes.
    min, max
        Allowed range (inclusive unless ``min_open``/``max_open``); None = unbounded.
    choices
        Allowed values of a ``choice``.
    optional
        ``None`` (CLI ``none``) is allowed and means "not set" (e.g. no key switch).
    zero_means
        What 0 means when it is special (``"off"``: no perturbation); shown in help and widgets.
    log
        A widget should use a logarithmic slider.

    Examples
    --------
    >>> p = Param("perturb", "time", 5.0, "seconds between hash changes", unit="s",
    ...           min=0, max=3600, zero_means="no perturbation")
    >>> p.parse("10"), p.parse("500ms")
    (10.0, 0.5)
    >>> p.check(-1)
    Traceback (most recent call last):
    ...
    qoslab.errors.ConfigError: perturb = -1 s: expected 0 … 3600 s (0 = no perturbation)
    >>> p.describe()
    'seconds between hash changes (0 = no perturbation); 0 … 3600 s; default 5 s'
    """

    name: str
    kind: str
    default: Any
    help: str
    unit: str = ""
    min: float | None = None
    max: float | None = None
    min_open: bool = False
    max_open: bool = False
    choices: tuple[str, ...] = ()
    optional: bool = False
    zero_means: str | None = None
    log: bool = False
    step: float | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"param {self.name}: kind {self.kind!r} not in {KINDS}")
        if self.kind == "choice" and not self.choices:
            raise ValueError(f"param {self.name}: a choice needs choices")
        if self.default is not None or not self.optional:
            object.__setattr__(self, "default", self.check(self.default))

    # ------------------------------------------------------------------ reading values
    @property
    def flag(self) -> str:
        """The command-line option, ``--shaper-rate``."""
        return "--" + self.name.replace("_", "-")

    def parse(self, text: str) -> Any:
        """Text (CLI, ``report -p``) → a checked value of this parameter."""
        raw = str(text).strip()
        if self.optional and raw.lower() in ("none", ""):
            return None
        try:
            value = self._from_text(raw)
        except (ValueError, ConfigError):
            raise ConfigError(f"{self.name} = {text!r}: expected {self._expected()}") from None
        return self.check(value)

    def _from_text(self, raw: str) -> Any:
        k = self.kind
        if k == "bool":
            low = raw.lower()
            if low in _TRUE:
                return True
            if low in _FALSE:
                return False
            raise ValueError(raw)
        if k == "int":
            return int(raw, 0)
        if k == "hex":
            return int(raw, 0) if raw.lower().startswith("0x") else int(raw, 10)
        if k in ("float", "time"):
            if k == "time" and raw and raw[-1].isalpha():
                return parse_time(raw, self.name)
            return float(raw)
        if k == "rate":
            return parse_rate(raw, self.name)
        if k == "size":
            return parse_size(raw, self.name)
        if k == "ints":
            return tuple(int(x, 0) for x in raw.split(",") if x.strip())
        if k == "choice":
            return next((c for c in self.choices if str(c) == raw), raw)
        return raw  # str

    def check(self, value: Any) -> Any:
        """Check (and normalise) a typed value; raise :class:`ConfigError` naming the parameter,
        the value, the unit and the allowed range."""
        if value is None:
            if self.optional:
                return None
            raise ConfigError(f"{self.name}: a value is required ({self._expected()})")
        k = self.kind
        try:
            if k == "bool":
                if not isinstance(value, (bool,)) and value not in (0, 1):
                    raise TypeError
                return bool(value)
            if k in ("int", "hex", "size"):
                if isinstance(value, bool) or isinstance(value, float) and not value.is_integer():
                    raise TypeError
                value = int(value) if k != "size" else parse_size(value, self.name)
            elif k in ("float", "time", "rate"):
                if isinstance(value, bool):
                    raise TypeError
                value = float(parse_rate(value, self.name) if k == "rate" and
                              isinstance(value, str) else value)
                if not math.isfinite(value):
                    raise TypeError
            elif k == "ints":
                value = tuple(int(v) for v in (value if isinstance(value, Iterable) and
                                               not isinstance(value, str) else [value]))
            elif k == "choice":
                if value not in self.choices:
                    raise ConfigError(f"{self.name} = {value!r}: expected one of "
                                      f"{', '.join(self.choices)}")
                return value
            elif k == "str":
                if not isinstance(value, str):
                    raise TypeError
                return value
        except ConfigError:
            raise
        except (TypeError, ValueError):
            raise ConfigError(f"{self.name} = {value!r}: expected {self._expected()}") from None
        for item in (value if k == "ints" else (value,)):
            if not self._in_range(item):
                raise ConfigError(f"{self.name} = {self.format(value)}: expected "
                                  f"{self.range_text()}"
                                  + (f" ({0} = {self.zero_means})" if self.zero_means else ""))
        return value

    def _in_range(self, v: float) -> bool:
        if self.min is not None and (v < self.min or (self.min_open and v == self.min)):
            return False
        if self.max is not None and (v > self.max or (self.max_open and v == self.max)):
            return False
        return True

    # ------------------------------------------------------------------ describing
    def _expected(self) -> str:
        what = {"float": "a number", "int": "an integer", "bool": "yes or no",
                "rate": "a rate (e.g. 2mbit, 900kbit or bit/s)",
                "time": "a time in seconds (e.g. 5, 0.2 or 100ms)",
                "size": "a size in bytes (e.g. 1514 or 32k)",
                "choice": "one of " + ", ".join(map(str, self.choices)),
                "hex": "an integer (0x… for hex)", "ints": "comma-separated integers",
                "str": "text"}[self.kind]
        rng = self.range_text()
        return what + (f" in {rng}" if rng and self.kind not in ("choice", "bool") else "") + \
            (", or none" if self.optional else "")

    def range_text(self) -> str:
        """``"0 … 3600 s"``, ``"> 0 s"`` …"""
        lo, hi = self.min, self.max
        if lo is None and hi is None:
            return ""
        f = self.format
        if lo is not None and hi is not None:
            lo_s = f(lo) if not self.unit else f(lo).removesuffix(" " + self.unit)
            text = (f"{lo_s} … {f(hi)}" if not (self.min_open or self.max_open) else
                    f"{'>' if self.min_open else '≥'} {f(lo)} and "
                    f"{'<' if self.max_open else '≤'} {f(hi)}")
            return text
        if lo is not None:
            return f"{'>' if self.min_open else '≥'} {f(lo)}"
        return f"{'<' if self.max_open else '≤'} {f(hi)}"

    def format(self, value: Any) -> str:
        """A value for people: ``'5 s'``, ``'900 kbit/s'``, ``'0x10'``, ``'none'``.

        Examples
        --------
        >>> Param("shaper_rate", "rate", 9e5, "HTB rate", unit="bit/s").format(9e5)
        '900 kbit/s'
        """
        if value is None:
            return "none"
        k = self.kind
        if k == "rate":
            text = format_rate(value)
            for suffix, unit in (("gbit", " Gbit/s"), ("mbit", " Mbit/s"), ("kbit", " kbit/s"),
                                 ("bit", " bit/s")):
                if text.endswith(suffix):
                    return text[: -len(suffix)] + unit
        if k == "hex":
            return f"0x{int(value):x}"
        if k == "ints":
            items = value if isinstance(value, Iterable) else (value,)
            return ",".join(f"0x{v:02x}" if self.unit == "TOS" else str(v) for v in items)
        if k == "bool":
            return "yes" if value else "no"
        if k in ("float", "time"):
            text = f"{float(value):g}"
        else:
            text = str(value)
        return f"{text} {self.unit}" if self.unit and k not in ("choice", "str", "ints") else text

    def to_text(self, value: Any) -> str:
        """A value as :meth:`parse` reads it back (``--perturb 5``, ``-p shaper_rate=900000``)."""
        if value is None:
            return "none"
        if self.kind == "bool":
            return "yes" if value else "no"
        if self.kind == "hex":
            return f"0x{int(value):x}"
        if self.kind == "ints":
            return ",".join(str(v) for v in value)
        if self.kind in ("float", "time", "rate"):
            value = float(value)
            text = f"{value:.15g}"  # the shortest that reads back exactly: 0.2, not 0.2000…01
            return text if float(text) == value else f"{value:.17g}"
        return str(value)

    def describe(self) -> str:
        """One line for ``--help``: what, special zero, range, default."""
        parts = [self.help + (f" (0 = {self.zero_means})" if self.zero_means else "")]
        rng = self.range_text()
        if self.kind == "choice":
            parts.append("one of " + ", ".join(map(str, self.choices)))
        elif rng:
            parts.append(rng)
        parts.append(f"default {self.format(self.default)}")
        return "; ".join(parts)


def resolve(params: Sequence[Param], given: Mapping[str, Any] | None = None, *,
            owner: str = "scenario") -> dict[str, Any]:
    """All parameter values: ``given`` (typed values) checked, the rest from defaults.

    Raises
    ------
    ConfigError
        Unknown names (the message lists the known ones) or bad values.

    Examples
    --------
    >>> ps = (Param("perturb", "time", 5.0, "s between changes", unit="s", min=0),
    ...       Param("limit", "int", 10, "packets", unit="packets", min=2))
    >>> resolve(ps, {"limit": 20})
    {'perturb': 5.0, 'limit': 20}
    >>> resolve(ps, {"limt": 20}, owner="sfq_perturb")
    Traceback (most recent call last):
    ...
    qoslab.errors.ConfigError: sfq_perturb: no parameter 'limt'; its parameters are perturb, limit
    """
    by_name = {p.name: p for p in params}
    given = dict(given or {})
    unknown = [k for k in given if k not in by_name]
    if unknown:
        raise ConfigError(f"{owner}: no parameter {unknown[0]!r}; its parameters are "
                          f"{', '.join(by_name)}")
    return {p.name: p.check(given[p.name]) if p.name in given else p.default for p in params}


def parse_assignment(params: Sequence[Param], text: str, *, owner: str = "scenario"
                     ) -> tuple[str, Any]:
    """``"shaper_rate=900kbit"`` → ``("shaper_rate", 900000.0)`` (dashes allowed in names).

    Examples
    --------
    >>> parse_assignment((Param("n_pings", "int", 3, "ping streams", min=1),), "n-pings=5")
    ('n_pings', 5)
    """
    name, sep, value = str(text).partition("=")
    key = name.strip().replace("-", "_")
    by_name = {p.name: p for p in params}
    if not sep or key not in by_name:
        raise ConfigError(f"{owner}: {text!r}: expected NAME=VALUE with NAME one of "
                          f"{', '.join(by_name)}")
    return key, by_name[key].parse(value)


def parse_cli_items(params: Sequence[Param], items: Sequence[str], *,
                    owner: str = "scenario") -> dict[str, Any]:
    """``["--perturb", "20", "--limit=5"]`` → typed values (only those given).

    Examples
    --------
    >>> ps = (Param("perturb", "time", 5.0, "s", unit="s", min=0),)
    >>> parse_cli_items(ps, ["--perturb", "20"])
    {'perturb': 20.0}
    """
    by_flag = {p.flag: p for p in params}
    out: dict[str, Any] = {}
    it = iter(items)
    for item in it:
        flag, sep, value = str(item).partition("=")
        p = by_flag.get(flag)
        if p is None:
            name = flag.lstrip("-").replace("-", "_")
            raise ConfigError(f"{owner}: no parameter {name!r} ({flag}); its parameters are "
                              f"{', '.join(q.name for q in params)}")
        if not sep:
            value = next(it, None)
            if value is None:
                raise ConfigError(f"{owner}: {flag} needs a value ({p._expected()})")
        out[p.name] = p.parse(value)
    return out
