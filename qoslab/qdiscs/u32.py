"""u32 filters (``net/sched/cls_u32.c``) as classful qdiscs use them: match IPv4 header fields.

Only the ``match ip FIELD VALUE MASK`` selectors people write for class splits are modelled:
``protocol``, ``tos`` (``dsfield``), ``src``, ``dst`` (prefixes), ``sport``, ``dport``, and
``match u32 0 0`` (everything). They read the **outer** IPv4 header (u32 sees bytes, not a
dissected flow); ports are read at the fixed offset tc assumes (a 20-byte header). A flow whose
field is absent (no ports) does not match that selector.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pandas as pd

from ..errors import ConfigError
from ..tcspec import Words, parse_tc_line

__all__ = ["U32Match", "U32Filter", "classify_flows"]

#: selector -> (PACKETS column, width in bits)
_FIELDS = {"protocol": ("proto", 8), "tos": ("tos", 8), "dsfield": ("tos", 8),
           "sport": ("sport", 16), "dport": ("dport", 16), "src": ("src", 32),
           "dst": ("dst", 32)}


@dataclass(frozen=True)
class U32Match:
    """One ``match ip FIELD VALUE MASK`` (addresses: ``VALUE`` as an int, ``MASK`` the prefix).

    Examples
    --------
    >>> U32Match("tos", 0x10, 0xfc).words()
    ['match', 'ip', 'tos', '0x10', '0xfc']
    >>> U32Match("dst", int(ipaddress.ip_address("10.0.0.0")), 0xff000000).words()
    ['match', 'ip', 'dst', '10.0.0.0/8']
    """

    field: str
    value: int
    mask: int

    def __post_init__(self) -> None:
        if self.field not in _FIELDS:
            raise ConfigError(f"u32: match ip {self.field!r} is not modelled; use one of "
                              f"{', '.join(_FIELDS)}")
        width = _FIELDS[self.field][1]
        full = (1 << width) - 1
        if not (0 <= self.mask <= full and 0 <= self.value <= full):
            raise ConfigError(f"u32: match ip {self.field}: value and mask must fit "
                              f"{width} bits")
        object.__setattr__(self, "value", self.value & self.mask)

    def words(self) -> list[str]:
        if self.field in ("src", "dst"):
            bits = bin(self.mask).count("1")
            return ["match", "ip", self.field,
                    f"{ipaddress.IPv4Address(self.value)}/{bits}"]
        return ["match", "ip", self.field, f"0x{self.value:x}" if self.field != "protocol"
                else str(self.value), f"0x{self.mask:x}"]

    def hits(self, flows: pd.DataFrame) -> np.ndarray:
        """Per flow: the selector matches."""
        col, _ = _FIELDS[self.field]
        if col not in flows.columns:
            return np.zeros(len(flows), dtype=bool)
        values = flows[col]
        if col in ("src", "dst"):
            ok = (flows.get("ip_version", pd.Series(4, index=flows.index)).astype("Int64")
                  .fillna(0).to_numpy() == 4) & values.notna().to_numpy()
            ints = np.array([int(ipaddress.ip_address(str(v))) if o else 0
                             for v, o in zip(values.astype(object), ok, strict=True)],
                            dtype=np.int64)
        else:
            ok = values.notna().to_numpy()
            ints = values.astype("Int64").fillna(0).to_numpy().astype(np.int64)
        return ok & ((ints & self.mask) == self.value)


@dataclass(frozen=True)
class U32Filter:
    """``tc filter add dev DEV parent P protocol ip prio N u32 MATCH… flowid CLASS``.

    ``matches`` empty is ``match u32 0 0`` (every IPv4 packet).

    Examples
    --------
    >>> f = U32Filter("1:10", (U32Match("protocol", 1, 0xff),))
    >>> f.to_tc()
    'u32 match ip protocol 1 0xff flowid 1:10'
    >>> U32Filter.from_tc("tc filter add dev eth0 parent 1: protocol ip prio 1 " + f.to_tc()) == f
    True
    """

    kind: ClassVar[str] = "u32"
    flowid: str
    matches: tuple[U32Match, ...] = ()
    prio: int = 1
    parent: str = "1:"

    def __post_init__(self) -> None:
        fields = [_FIELDS[m.field][0] for m in self.matches]
        if len(set(fields)) != len(fields):
            raise ConfigError(f"u32 filter to {self.flowid}: two matches on one field (tc "
                              "merges them into one key and refuses conflicting ones)")

    def options(self) -> list[str]:
        words = [w for m in self.matches for w in m.words()] or ["match", "u32", "0", "0"]
        return [*words, "flowid", self.flowid]

    def to_tc(self) -> str:
        return " ".join(["u32", *self.options()])

    def commands(self, dev: str) -> list[list[str]]:
        return [["filter", "add", "dev", dev, "parent", self.parent, "protocol", "ip", "prio",
                 str(self.prio), "u32", *self.options()]]

    @classmethod
    def from_tc(cls, text: str | Sequence[str], **context) -> U32Filter:
        line = parse_tc_line(text)
        if line.kind != "u32":
            raise ConfigError(f"tc text {text!r}: expected a u32 filter")
        w = Words(line.options, "u32 filter")
        matches: list[U32Match] = []
        flowid = None
        for word in w:
            if word == "match":
                layer = w.value("match")
                if layer == "u32":
                    value, mask = w.number("match u32"), w.number("match u32")
                    if (value, mask) != (0, 0):
                        raise ConfigError("u32 filter: only 'match u32 0 0' of the raw "
                                          "selectors is modelled")
                    continue
                if layer != "ip":
                    raise ConfigError(f"u32 filter: match {layer!r} is not modelled (only "
                                      "'match ip …' and 'match u32 0 0')")
                field = w.value("match ip")
                if field in ("src", "dst"):
                    net = ipaddress.ip_network(w.value(field), strict=False)
                    if net.version != 4:
                        raise ConfigError("u32 filter: only IPv4 prefixes are modelled")
                    matches.append(U32Match(field, int(net.network_address),
                                            int(net.netmask)))
                else:
                    matches.append(U32Match("tos" if field == "dsfield" else field,
                                            w.number(field), w.number(field)))
            elif word in ("flowid", "classid"):
                flowid = w.value(word)
            else:
                raise w.unknown(word)
        if flowid is None:
            raise ConfigError(f"u32 filter {text!r}: no flowid")
        return cls(flowid, tuple(matches), prio=line.prio if line.prio is not None else 1,
                   parent=line.parent or "1:")

    def hits(self, flows: pd.DataFrame) -> np.ndarray:
        ok = np.ones(len(flows), dtype=bool)
        if "ip_version" in flows.columns:
            ok &= flows["ip_version"].astype("Int64").fillna(0).to_numpy() == 4
        for m in self.matches:
            ok &= m.hits(flows)
        return ok


def classify_flows(flows: pd.DataFrame, filters: Sequence[U32Filter], default: str | None
                   ) -> list[str | None]:
    """The class id each flow goes to: first filter (by prio, then order) that matches, else
    ``default``.

    Examples
    --------
    >>> f = pd.DataFrame({"ip_version": [4, 4], "proto": [1, 6], "tos": [0, 0]})
    >>> classify_flows(f, [U32Filter("1:10", (U32Match("protocol", 1, 0xff),))], "1:20")
    ['1:10', '1:20']
    """
    out: list[str | None] = [default] * len(flows)
    taken = np.zeros(len(flows), dtype=bool)
    for flt in sorted(filters, key=lambda f: f.prio):
        hit = flt.hits(flows) & ~taken
        for i in np.flatnonzero(hit):
            out[i] = flt.flowid
        taken |= hit
    return out
