"""Declarative shaping configurations, their ``tc`` command lines, and ``tc -s`` statistics.

A :class:`Shaping` is plain data: qdiscs, classes and filters with their ``tc`` options. It
turns into the exact ``tc`` argument lists that build it (:meth:`Shaping.commands`), which the
lab runs and records in META, so a peer can rebuild the same tree by hand. It is the form of
trees written as ``tc`` lines by the user (the ``custom`` scenario); trees qoslab models are the
specs of :mod:`qoslab.qdiscs` (``Htb``, ``Tbf``, ``Sfq`` …), rendered by their own ``to_tc()``.

Statistics come from ``tc -s -j qdisc show`` (JSON) and ``tc -s class show`` (text: iproute2
6.1 prints HTB class statistics only as text, so it is parsed here).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from ..errors import ConfigError
from ..qdiscs import walk

__all__ = [
    "Qdisc",
    "TcClass",
    "Filter",
    "Shaping",
    "parse_class_stats",
    "qdisc_stats",
    "tree_facts",
]


def _tokens(options: Mapping[str, Any] | Sequence[str] | None) -> tuple[str, ...]:
    """``{"limit": 10}`` -> ``("limit", "10")``; a sequence is taken as tokens; None -> ()."""
    if options is None:
        return ()
    if isinstance(options, Mapping):
        out: list[str] = []
        for key, value in options.items():
            if value is None or value is False:
                continue
            out.append(str(key).replace("_", "-"))
            if value is not True:
                out.append(str(value))
        return tuple(out)
    if isinstance(options, str):
        return tuple(options.split())
    return tuple(str(t) for t in options)


@dataclass(frozen=True)
class Qdisc:
    """One qdisc: ``tc qdisc add dev DEV {root|parent P} [handle H] KIND OPTIONS``.

    Examples
    --------
    >>> Qdisc("pfifo", parent="1:10", handle="10:", options=("limit", "10")).argv("eth0")
    ['qdisc', 'add', 'dev', 'eth0', 'parent', '1:10', 'handle', '10:', 'pfifo', 'limit', '10']
    """

    kind: str
    parent: str = "root"
    handle: str | None = None
    options: tuple[str, ...] = ()

    def argv(self, dev: str, verb: str = "add") -> list[str]:
        """The ``tc`` arguments (without the program name) that create this qdisc."""
        where = ["root"] if self.parent == "root" else ["parent", self.parent]
        handle = ["handle", self.handle] if self.handle else []
        return ["qdisc", verb, "dev", dev, *where, *handle, self.kind, *self.options]


@dataclass(frozen=True)
class TcClass:
    """One class: ``tc class add dev DEV parent P classid C KIND OPTIONS``."""

    classid: str
    parent: str
    kind: str = "htb"
    options: tuple[str, ...] = ()

    def argv(self, dev: str, verb: str = "add") -> list[str]:
        """The ``tc`` arguments that create this class."""
        return ["class", verb, "dev", dev, "parent", self.parent, "classid", self.classid,
                self.kind, *self.options]


@dataclass(frozen=True)
class Filter:
    """One classifier: ``tc filter add dev DEV parent P protocol PROTO prio N KIND OPTIONS``.

    Examples
    --------
    >>> Filter("u32", options=("match", "ip", "tos", "0x10", "0xff", "flowid", "1:20")).argv("e")[-3:]
    ['0xff', 'flowid', '1:20']
    """

    kind: str
    parent: str = "1:"
    protocol: str = "all"
    prio: int = 1
    options: tuple[str, ...] = ()

    def argv(self, dev: str, verb: str = "add") -> list[str]:
        """The ``tc`` arguments that create this filter."""
        return ["filter", verb, "dev", dev, "parent", self.parent, "protocol", self.protocol,
                "prio", str(self.prio), self.kind, *self.options]


@dataclass(frozen=True)
class Shaping:
    """A whole qdisc tree for one interface: qdiscs, classes and filters, in build order.

    Examples
    --------
    >>> tree = Shaping.from_dict({
    ...     "qdiscs": [{"kind": "htb", "handle": "1:", "options": ["default", "10"]},
    ...                {"kind": "pfifo", "parent": "1:10", "handle": "10:",
    ...                 "options": ["limit", "10"]}],
    ...     "classes": [{"classid": "1:10", "parent": "1:", "kind": "htb",
    ...                  "options": ["rate", "2mbit"]}]})
    >>> for argv in tree.commands("veth0"):
    ...     print(" ".join(argv))
    qdisc add dev veth0 root handle 1: htb default 10
    class add dev veth0 parent 1: classid 1:10 htb rate 2mbit
    qdisc add dev veth0 parent 1:10 handle 10: pfifo limit 10
    >>> sorted(tree.qdisc_kinds()), sorted(tree.filter_kinds())
    (['htb', 'pfifo'], [])
    """

    qdiscs: tuple[Qdisc, ...] = ()
    classes: tuple[TcClass, ...] = ()
    filters: tuple[Filter, ...] = ()
    description: str = field(default="", compare=False)

    def commands(self, dev: str) -> list[list[str]]:
        """``tc`` argument lists building the tree on ``dev``: root qdisc, classes, leaves,
        filters."""
        root = [q for q in self.qdiscs if q.parent == "root"]
        rest = [q for q in self.qdiscs if q.parent != "root"]
        return ([q.argv(dev) for q in root] + [c.argv(dev) for c in self.classes]
                + [q.argv(dev) for q in rest] + [f.argv(dev) for f in self.filters])

    def qdisc_kinds(self) -> set[str]:
        """Qdisc kinds the tree needs."""
        return {q.kind for q in self.qdiscs}

    def filter_kinds(self) -> set[str]:
        """Classifier kinds the tree needs."""
        return {f.kind for f in self.filters}

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able form (for META); :meth:`from_dict` reverses it."""
        return {"description": self.description,
                "qdiscs": [asdict(q) for q in self.qdiscs],
                "classes": [asdict(c) for c in self.classes],
                "filters": [asdict(f) for f in self.filters]}

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> Shaping:
        """Build a tree from :meth:`to_dict` output or a hand-written JSON/YAML document.

        ``options`` may be a list of tokens, a string or a mapping.

        Raises
        ------
        ConfigError
            Naming the offending entry.

        Examples
        --------
        >>> Shaping.from_dict({"qdiscs": [{"kind": "tbf", "options": {"rate": "1mbit",
        ...     "burst": "10kb", "latency": "50ms"}}]}).commands("e0")[0][-6:]
        ['rate', '1mbit', 'burst', '10kb', 'latency', '50ms']
        """
        def build(kind_cls: type, key: str) -> tuple:
            out = []
            entries = doc.get(key) or ()
            if not isinstance(entries, (list, tuple)):
                raise ConfigError(f"shaping.{key}: expected a list, got {entries!r}")
            for i, entry in enumerate(entries):
                if not isinstance(entry, Mapping):
                    raise ConfigError(f"shaping.{key}[{i}]: expected an object, got {entry!r}")
                entry = dict(entry)
                for name, value in entry.items():
                    if name == "options":
                        if value is not None and not isinstance(value, (Mapping, str, list)):
                            raise ConfigError(f"shaping.{key}[{i}].options: expected a mapping, "
                                              f"a string or a list of tokens, got {value!r}")
                        continue
                    if name == "handle" and value is None:
                        continue
                    whole = name == "prio" and isinstance(value, int)
                    if isinstance(value, bool) or not (isinstance(value, str) or whole):
                        raise ConfigError(
                            f"shaping.{key}[{i}].{name}: expected a string, got {value!r}"
                            + (" (YAML reads an unquoted 1:10 as a number: quote it)"
                               if isinstance(value, int) else ""))
                entry["options"] = _tokens(entry.get("options"))
                try:
                    out.append(kind_cls(**entry))
                except TypeError as exc:
                    raise ConfigError(f"shaping.{key}[{i}]: {exc}") from None
            return tuple(out)

        unknown = set(doc) - {"qdiscs", "classes", "filters", "description"}
        if unknown:
            raise ConfigError(f"shaping: unknown key(s) {', '.join(sorted(unknown))}; expected "
                              "qdiscs, classes, filters, description")
        return cls(build(Qdisc, "qdiscs"), build(TcClass, "classes"), build(Filter, "filters"),
                   str(doc.get("description", "")))


def tree_facts(tree: Any) -> tuple[set[str], set[str], str, dict[str, Any]]:
    """What a tree needs and says: ``(qdisc kinds, filter kinds, description, META form)`` of a
    :class:`Shaping` or a qdisc spec of :mod:`qoslab.qdiscs`.

    >>> from qoslab.qdiscs import Htb, HtbClass, Sfq
    >>> tree = Htb(classes=(HtbClass("1:10", 2e6, leaf=Sfq(perturb=10)),), default=0x10)
    >>> sorted(tree_facts(tree)[0]), tree_facts(tree)[2]
    (['htb', 'sfq'], 'htb default 10')
    """
    if isinstance(tree, Shaping):
        return tree.qdisc_kinds(), tree.filter_kinds(), tree.description, tree.to_dict()

    qdiscs = {spec.kind for spec in walk(tree)}
    filters = {getattr(f, "kind", "flow") for spec in walk(tree) for f in spec.filter_specs()}
    return qdiscs, filters, " ".join([tree.kind, *tree.options()]), {"tc": tree.to_tc()}


# ---------------------------------------------------------------------------- statistics
_STAT_KEYS = ("bytes", "packets", "drops", "overlimits", "requeues", "backlog", "qlen")


def qdisc_stats(doc: str | list) -> list[dict[str, Any]]:
    """Flatten ``tc -s -j qdisc show`` output to one dict per qdisc.

    Examples
    --------
    >>> qdisc_stats('[{"kind":"pfifo","handle":"10:","parent":"1:10","options":{"limit":10},'
    ...             '"bytes":5000,"packets":10,"drops":3,"overlimits":0,"requeues":0,'
    ...             '"backlog":2000,"qlen":4}]')[0]["drops"]
    3
    """
    rows = json.loads(doc) if isinstance(doc, str) else doc
    out = []
    for q in rows or ():
        row = {"kind": q.get("kind"), "handle": q.get("handle"),
               "parent": "root" if q.get("root") else q.get("parent"),
               "options": q.get("options", {})}
        row.update({k: q.get(k) for k in _STAT_KEYS})
        out.append(row)
    return out


_CLASS_HEAD = re.compile(r"^class (\S+) (\S+) (?:root|parent (\S+))")
_SENT = re.compile(r"Sent (\d+) bytes (\d+) pkt \(dropped (\d+), overlimits (\d+) requeues (\d+)\)")
_BACKLOG = re.compile(r"backlog (\d+)([kKmM]?)b (\d+)p")
_UNIT = {"": 1, "k": 1000, "K": 1024, "m": 1000_000, "M": 1024 * 1024}


def parse_class_stats(text: str) -> list[dict[str, Any]]:
    """Parse ``tc -s class show`` text into one dict per class (kind, classid, parent, bytes,
    packets, drops, overlimits, requeues, backlog (bytes), qlen).

    Examples
    --------
    >>> text = ('class htb 1:10 root leaf 10: prio 0 rate 2Mbit ceil 2Mbit burst 1600b\\n'
    ...         ' Sent 42000 bytes 42 pkt (dropped 7, overlimits 9 requeues 0)\\n'
    ...         ' backlog 3000b 3p requeues 0\\n')
    >>> parse_class_stats(text)[0]["drops"], parse_class_stats(text)[0]["qlen"]
    (7, 3)
    """
    out: list[dict[str, Any]] = []
    for line in text.splitlines():
        line = line.strip()
        m = _CLASS_HEAD.match(line)
        if m:
            out.append({"kind": m[1], "classid": m[2], "parent": m[3] or "root"})
            continue
        if not out:
            continue
        m = _SENT.search(line)
        if m:
            out[-1].update(bytes=int(m[1]), packets=int(m[2]), drops=int(m[3]),
                           overlimits=int(m[4]), requeues=int(m[5]))
            continue
        m = _BACKLOG.search(line)
        if m:
            out[-1].update(backlog=int(m[1]) * _UNIT[m[2]], qlen=int(m[3]))
    return out
