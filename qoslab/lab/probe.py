"""Which qdiscs, classifiers and tunnel devices this kernel has: found by trying them.

A kernel may lack a scheduler (``sch_sfq`` not built, a module not loadable in a container), so
the lab never assumes: it adds each kind once, with a minimal valid configuration, on a veth
inside a throw-away namespace, and remembers the answer for the life of the process. A shaping
configuration that needs a kind the kernel refuses raises
:class:`~qoslab.errors.KernelFeatureMissing` naming the kind, its kernel module and config
option, before anything is built.
"""

from __future__ import annotations

import platform
import threading
from collections.abc import Iterable
from dataclasses import dataclass

from ..errors import KernelFeatureMissing
from .netns import (
    create_namespace,
    delete_namespace,
    namespace_name,
    new_runid,
    require_lab,
    run_cmd,
)

__all__ = ["QDISC_PROBES", "FILTER_PROBES", "LINK_PROBES", "Feature", "supported",
           "kernel_features", "require_features"]

#: qdisc kind -> minimal options that a kernel having it accepts (as a child of HTB class 1:1).
QDISC_PROBES: dict[str, tuple[str, ...]] = {
    "htb": (),
    "tbf": ("rate", "1mbit", "burst", "10kb", "latency", "50ms"),
    "pfifo": ("limit", "10"),
    "bfifo": ("limit", "10kb"),
    "pfifo_fast": (),
    "prio": (),
    "sfq": ("perturb", "10"),
    "fq_codel": (),
    "codel": (),
    "fq": (),
    "cake": (),
    "netem": ("delay", "1ms"),
    "red": ("limit", "400000", "min", "30000", "max", "90000", "avpkt", "1000",
            "burst", "55", "bandwidth", "10mbit"),
    "drr": (),
    "hfsc": (),
    "multiq": (),
}

#: classifier kind -> minimal options (attached to HTB root ``1:`` with class ``1:1``).
FILTER_PROBES: dict[str, tuple[str, ...]] = {
    "u32": ("match", "u32", "0", "0", "flowid", "1:1"),
    "bpf": ("bytecode", "1,6 0 0 4294967295,", "flowid", "1:1"),
    "flow": ("hash", "keys", "src,dst", "divisor", "8", "baseclass", "1:1"),
    "fw": (),
    "basic": ("classid", "1:1"),
    "matchall": ("classid", "1:1"),
    "route": (),
    "flower": ("classid", "1:1"),
}

#: tunnel / virtual device type -> ``ip link add NAME type T …`` options.
LINK_PROBES: dict[str, tuple[str, ...]] = {
    "ipip": ("local", "10.99.0.1", "remote", "10.99.0.2"),
    "sit": ("local", "10.99.0.1", "remote", "10.99.0.2"),
    "gre": ("local", "10.99.0.1", "remote", "10.99.0.2"),
    "ip6tnl": ("local", "fd99::1", "remote", "fd99::2"),
    "ip6gre": ("local", "fd99::1", "remote", "fd99::2"),
    "vxlan": ("id", "42", "dstport", "4789", "local", "10.99.0.1", "remote", "10.99.0.2"),
    "dummy": (),
    "ifb": (),
}

#: kind -> (kernel module, Kconfig option), for messages.
MODULES: dict[tuple[str, str], tuple[str, str]] = {
    **{("qdisc", k): (f"sch_{k}", f"CONFIG_NET_SCH_{k.upper()}") for k in QDISC_PROBES},
    **{("filter", k): (f"cls_{k}", f"CONFIG_NET_CLS_{k.upper()}") for k in FILTER_PROBES},
    **{("link", k): (k, f"CONFIG_{k.upper()}") for k in LINK_PROBES},
}
MODULES[("qdisc", "pfifo_fast")] = ("built in (sch_generic)", "always")
MODULES[("qdisc", "pfifo")] = ("sch_fifo", "CONFIG_NET_SCHED")
MODULES[("qdisc", "bfifo")] = ("sch_fifo", "CONFIG_NET_SCHED")
MODULES[("qdisc", "fq_codel")] = ("sch_fq_codel", "CONFIG_NET_SCH_FQ_CODEL")
MODULES[("link", "ipip")] = ("ipip", "CONFIG_NET_IPIP")
MODULES[("link", "sit")] = ("sit", "CONFIG_IPV6_SIT")
MODULES[("link", "gre")] = ("ip_gre", "CONFIG_NET_IPGRE")
MODULES[("link", "ip6tnl")] = ("ip6_tunnel", "CONFIG_IPV6_TUNNEL")
MODULES[("link", "ip6gre")] = ("ip6_gre", "CONFIG_IPV6_GRE")
MODULES[("link", "dummy")] = ("dummy", "CONFIG_DUMMY")
MODULES[("link", "ifb")] = ("ifb", "CONFIG_IFB")

_TABLES = {"qdisc": QDISC_PROBES, "filter": FILTER_PROBES, "link": LINK_PROBES}
_CACHE: dict[tuple[str, str], Feature] = {}
_LOCK = threading.Lock()


@dataclass(frozen=True)
class Feature:
    """Result of probing one kind: ``available``, and the kernel's message when refused."""

    category: str
    kind: str
    available: bool
    message: str = ""


def _probe_all(wanted: list[tuple[str, str]]) -> dict[tuple[str, str], Feature]:
    require_lab()
    ns = namespace_name("p", new_runid())
    out: dict[tuple[str, str], Feature] = {}
    create_namespace(ns)
    try:
        def ip(*a: str, check: bool = True):
            return run_cmd(["ip", "-n", ns, *a], check=check)

        ip("link", "add", "name", "pa", "type", "veth", "peer", "name", "pb")
        ip("link", "set", "pa", "up")

        def tc(*a: str):
            return run_cmd(["tc", *a], ns=ns, check=False)

        for category, kind in wanted:
            opts = _TABLES[category][kind]
            tc("qdisc", "del", "dev", "pa", "root")
            if category == "qdisc":
                base = tc("qdisc", "add", "dev", "pa", "root", "handle", "1:", "htb",
                          "default", "1")
                tc("class", "add", "dev", "pa", "parent", "1:", "classid", "1:1", "htb",
                   "rate", "10mbit")
                if kind == "htb":
                    proc = base
                else:
                    proc = tc("qdisc", "add", "dev", "pa", "parent", "1:1", "handle", "10:",
                              kind, *opts)
            elif category == "filter":
                tc("qdisc", "add", "dev", "pa", "root", "handle", "1:", "htb", "default", "1")
                tc("class", "add", "dev", "pa", "parent", "1:", "classid", "1:1", "htb",
                   "rate", "10mbit")
                proc = tc("filter", "add", "dev", "pa", "parent", "1:", "protocol", "all",
                          "prio", "1", kind, *opts)
            else:
                proc = ip("link", "add", "name", "pt", "type", kind, *opts, check=False)
                ip("link", "del", "pt", check=False)
            msg = (proc.stderr or proc.stdout).strip().splitlines()
            out[(category, kind)] = Feature(category, kind, proc.returncode == 0,
                                            "" if proc.returncode == 0 else " / ".join(msg[:2]))
    finally:
        delete_namespace(ns)
    return out


def supported(category: str, kinds: Iterable[str]) -> dict[str, Feature]:
    """Probe (once per process) whether this kernel has each of ``kinds``.

    Parameters
    ----------
    category
        ``"qdisc"``, ``"filter"`` or ``"link"``.
    kinds
        Names as ``tc``/``ip`` spell them (``"sfq"``, ``"u32"``, ``"ipip"``).

    Raises
    ------
    ValueError
        For a kind the lab has no probe for.
    """
    if category not in _TABLES:
        raise ValueError(f"category must be one of {', '.join(_TABLES)}, not {category!r}")
    kinds = list(dict.fromkeys(kinds))
    unknown = [k for k in kinds if k not in _TABLES[category]]
    if unknown:
        raise ValueError(f"no probe for {category} kind(s) {', '.join(unknown)}; known: "
                         f"{', '.join(_TABLES[category])}")
    with _LOCK:
        todo = [(category, k) for k in kinds if (category, k) not in _CACHE]
        if todo:
            _CACHE.update(_probe_all(todo))
        return {k: _CACHE[(category, k)] for k in kinds}


def kernel_features() -> dict[str, dict[str, bool]]:
    """Probe every known kind; return ``{"qdisc": {kind: bool}, "filter": …, "link": …}``."""
    return {cat: {k: f.available for k, f in supported(cat, table).items()}
            for cat, table in _TABLES.items()}


def require_features(*, qdiscs: Iterable[str] = (), filters: Iterable[str] = (),
                     links: Iterable[str] = (), what: str = "this configuration") -> None:
    """Raise :class:`KernelFeatureMissing` unless the kernel has every listed kind.

    The message names each missing kind with its module and config option, the kernel's own
    refusal, and what the kernel does have.
    """
    missing = []
    for category, kinds in (("qdisc", qdiscs), ("filter", filters), ("link", links)):
        kinds = list(kinds)
        if not kinds:
            continue
        for kind, feat in supported(category, kinds).items():
            if not feat.available:
                module, config = MODULES[(category, kind)]
                missing.append(f"{category} {kind!r} ({module}, {config}; kernel said: "
                               f"{feat.message or 'refused'})")
    if missing:
        supported("qdisc", QDISC_PROBES)
        supported("filter", FILTER_PROBES)
        have = sorted(k for (c, k), f in _CACHE.items() if f.available and c != "link")
        raise KernelFeatureMissing(
            f"{what} needs what this kernel ({platform.release()}) lacks: "
            + "; ".join(missing) + f". Available here: {', '.join(have) or 'nothing probed'}")
