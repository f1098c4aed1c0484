"""pfifo_fast band selection: TOS → ``skb->priority`` → band.

Tables (one place each):

* :data:`PRIO2BAND` — ``prio2band`` of ``net/sched/sch_generic.c`` (``sch_default_prio2band``).
* :data:`TOS2PRIO_OLD` — ``ip_tos2prio`` of ``net/ipv4/route.c`` in 2.6.x, where entry 1 is
  ``ECN_OR_COST(FILLER)``: a TOS byte of 0x02 (ECT(0)) lands in the *lowest* band.
* :data:`TOS2PRIO_NEW` — the fixed table (entry 1 = ``ECN_OR_COST(BESTEFFORT)``), 2.6.38–3.0 on.

``rt_tos2priority(tos) = ip_tos2prio[IPTOS_TOS(tos) >> 1]`` with ``IPTOS_TOS(t) = t & 0x1E``.
"""

from __future__ import annotations

import numpy as np

from ..errors import ConfigError
from ._packets import column, header
from .profiles import KernelProfile, get_profile

__all__ = ["PRIO2BAND", "TOS2PRIO_OLD", "TOS2PRIO_NEW", "TC_PRIO", "tos_to_priority",
           "skb_priority",
           "pfifo_fast_band", "IPTOS_TOS_MASK"]

IPTOS_TOS_MASK = 0x1E
#: TC_PRIO_* values of include/uapi/linux/pkt_sched.h.
TC_PRIO = {"BESTEFFORT": 0, "FILLER": 1, "BULK": 2, "INTERACTIVE_BULK": 4, "INTERACTIVE": 6,
           "CONTROL": 7, "MAX": 15}
PRIO2BAND = np.array([1, 2, 2, 2, 1, 2, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1], dtype=np.int64)
TOS2PRIO_OLD = np.array([0, 1, 0, 0, 2, 2, 2, 2, 6, 6, 6, 6, 4, 4, 4, 4], dtype=np.int64)
TOS2PRIO_NEW = np.array([0, 0, 0, 0, 2, 2, 2, 2, 6, 6, 6, 6, 4, 4, 4, 4], dtype=np.int64)
_TABLES = {"old": TOS2PRIO_OLD, "new": TOS2PRIO_NEW}


def _table(table: str | None, profile: str | KernelProfile | None) -> np.ndarray:
    if profile is not None:
        table = get_profile(profile).tos2prio
    if table not in _TABLES:
        raise ConfigError(f"TOS table {table!r}: expected 'old' or 'new'")
    return _TABLES[table]


def tos_to_priority(tos, table: str = "new", *, profile: str | KernelProfile | None = None):
    """``rt_tos2priority``: the ``skb->priority`` that a TOS byte gives.

    Examples
    --------
    >>> tos_to_priority(0x10), tos_to_priority(0x02, table="old"), tos_to_priority(0x02)
    (6, 1, 0)
    """
    arr = np.asarray(tos, dtype=np.int64)
    out = _table(table, profile)[(arr & IPTOS_TOS_MASK) >> 1]
    return int(out) if out.ndim == 0 else out


def pfifo_fast_band(tos=None, table: str = "new", *, profile: str | KernelProfile | None = None,
                    priority=None):
    """pfifo_fast band (0 is dequeued first) from the TOS byte, or from ``priority`` directly.

    Examples
    --------
    >>> pfifo_fast_band(0x02, table="old"), pfifo_fast_band(0x02, table="new")
    (2, 1)
    >>> pfifo_fast_band([0x00, 0x10, 0x08]).tolist()
    [1, 0, 2]
    >>> pfifo_fast_band(priority=7)
    0
    """
    if priority is None:
        if tos is None:
            raise ConfigError("pfifo_fast_band: give tos or priority")
        priority = tos_to_priority(tos, table, profile=profile)
    out = PRIO2BAND[np.asarray(priority, dtype=np.int64) & TC_PRIO["MAX"]]
    return int(out) if out.ndim == 0 else out


def skb_priority(packets, profile: str | KernelProfile | None = None) -> np.ndarray:
    """``skb->priority`` of each packet of a PACKETS-like frame (uint32).

    The ``priority`` column when present; otherwise what ``ip_forward`` and the ``IP_TOS``
    socket option set: ``rt_tos2priority`` of the (inner, for IP-in-IP) IPv4 TOS byte with the
    profile's table, and 0 for IPv6 (``IPV6_TCLASS`` sets no priority) and non-IP.

    Examples
    --------
    >>> import pandas as pd
    >>> pk = pd.DataFrame({"ip_version": [4, 4, 6, 4], "tos": [0x10, 0x02, 0x10, 0x08],
    ...     "tunnel": ["none", "none", "none", "4in4"], "inner_src": [None, None, None, "10.1.1.1"],
    ...     "inner_dst": [None, None, None, "10.1.1.2"], "inner_proto": [None, None, None, 1],
    ...     "inner_sport": [None] * 4, "inner_dport": [None] * 4, "inner_tos": [None, None, None, 0x10]})
    >>> skb_priority(pk, "classic-2.6.3x").tolist(), skb_priority(pk, "5.18+").tolist()
    ([6, 1, 0, 6], [6, 0, 0, 6])
    """
    if "priority" in packets.columns:
        return column(packets, "priority")
    table = get_profile(profile or "5.18+").tos2prio
    version = column(packets, "ip_version").astype(np.int64)
    tos = column(packets, "tos").astype(np.int64)
    if _INNER_COLUMNS <= set(packets.columns):
        inner = header(packets, "inner")
        tunnelled = inner.version > 0
        version = np.where(tunnelled, inner.version, version)
        tos = np.where(tunnelled, inner.tos, tos)
    return np.where(version == 4, tos_to_priority(tos, table), 0).astype(np.uint32)


_INNER_COLUMNS = {"tunnel", "inner_src", "inner_dst", "inner_proto", "inner_sport",
                  "inner_dport"}
