"""A qdisc tree from ``tc`` command lines: qdiscs, classes and filters put back together.

:func:`parse_tree` reads the lines a person (or :meth:`QdiscSpec.to_tc
<qoslab.tcspec.QdiscSpec.to_tc>`) writes to build a tree on one device — ``tc qdisc add …``,
``tc class add …``, ``tc filter add …`` (the leading ``tc`` and the device name are optional;
``#`` starts a comment) — and returns the root spec with its children and filters attached.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from ..errors import ConfigError
from ..hashing.cls_flow import FlowClassifier
from ..tcspec import SPEC_KINDS, TcLine, format_handle, parse_handle, parse_tc_line
from .htb import HtbClass, child_handle
from .u32 import U32Filter

__all__ = ["parse_tree", "parse_filter"]


def parse_filter(line: TcLine, **context: Any) -> Any:
    """A filter spec from a parsed ``tc filter`` line (``u32`` or ``flow``)."""
    if line.kind == "u32":
        return U32Filter.from_tc(["filter", "add", "parent", line.parent or "1:", "prio",
                                  str(line.prio or 1), "u32", *line.options])
    if line.kind == "flow":
        kw = {k: v for k, v in context.items() if k in ("profile", "endianness")}
        return FlowClassifier.from_tc(" ".join(["filter", "add", "parent", line.parent or "1:",
                                                "flow", *line.options]), **kw)
    raise ConfigError(f"tc filter {line.kind!r}: qoslab models u32 and flow filters")


def _key(handle: str) -> int:
    return parse_handle(handle)


def parse_tree(text: str, **context: Any):
    """The root qdisc spec of the ``tc`` lines in ``text`` (see the module docstring).

    ``context`` carries what tc text does not say (``profile=`` for era-dependent specs).

    Examples
    --------
    >>> tree = parse_tree('''
    ...     tc qdisc add dev eth0 root handle 1: htb default 20
    ...     tc class add dev eth0 parent 1: classid 1:1 htb rate 900kbit
    ...     tc class add dev eth0 parent 1:1 classid 1:10 htb rate 300kbit ceil 900kbit
    ...     tc class add dev eth0 parent 1:1 classid 1:20 htb rate 600kbit ceil 900kbit prio 1
    ...     tc qdisc add dev eth0 parent 1:20 handle 20: sfq perturb 10
    ...     tc filter add dev eth0 parent 1: protocol ip prio 1 u32 match ip protocol 1 0xff flowid 1:10
    ... ''', profile="5.18+")
    >>> [c.classid for c in tree.classes], tree.classes[2].leaf.to_tc(), len(tree.filters)
    (['1:1', '1:10', '1:20'], 'sfq perturb 10', 1)
    """
    lines = []
    for raw in text.splitlines():
        stripped = raw.split("#", 1)[0].strip()
        if stripped:
            lines.append(parse_tc_line(stripped))
    if not lines:
        raise ConfigError("tc tree: no tc lines")
    qdiscs = [ln for ln in lines if ln.obj in ("qdisc", None)]
    classes = [ln for ln in lines if ln.obj == "class"]
    filters = [ln for ln in lines if ln.obj == "filter"]
    roots = [q for q in qdiscs if q.parent in (None, "root")]
    if len(roots) != 1:
        raise ConfigError(f"tc tree: expected exactly one root qdisc, found {len(roots)}")
    for ln in qdiscs + classes + filters:
        if ln.verb not in (None, "add", "replace"):
            raise ConfigError(f"tc tree: only 'add' lines build a tree, got {ln.verb!r}")
    majors: dict[int, TcLine] = {}
    for q in qdiscs:
        if q.handle is None:
            continue
        if _key(q.handle) & 0xFFFF:
            raise ConfigError(f"tc tree: qdisc handle {q.handle}: a qdisc's handle is "
                              "'major:' (its classes are major:minor)")
        if _key(q.handle) in majors:
            raise ConfigError(f"tc tree: two qdiscs have the handle {q.handle}")
        majors[_key(q.handle)] = q
    used: set[int] = set()
    building: set[int] = set()

    def build(line: TcLine, handle: str) -> Any:
        if id(line) in building:  # e.g. an automatic handle equal to an ancestor's
            raise ConfigError(f"tc tree: the {line.kind} qdisc under {line.parent} would be "
                              "its own ancestor (give it a handle of its own)")
        building.add(id(line))
        used.add(id(line))
        cls = SPEC_KINDS.get(line.kind)
        if cls is None:
            raise ConfigError(f"tc tree: qoslab does not model the {line.kind!r} qdisc")
        ctx = context if cls.uses_profile else {k: v for k, v in context.items()
                                                if k != "profile"}
        spec = cls.parse_options(line.options, **ctx)
        major = _key(handle) & 0xFFFF0000
        mine = [f for f in filters if f.parent and _key(f.parent) & 0xFFFF0000 == major
                and _key(f.parent) & 0xFFFF == 0]
        for f in mine:
            used.add(id(f))
        flts = [parse_filter(f, **context) for f in sorted(mine, key=lambda f: f.prio or 1)]
        if line.kind == "htb":
            return _htb(spec, handle, classes, qdiscs, flts, build, used)
        children: dict[str, Any] = {}
        for q in qdiscs:
            if q.parent not in (None, "root") and _key(q.parent) & 0xFFFF0000 == major:
                children[format_handle(_key(q.parent))] = build(q, q.handle or
                                                                 _auto_handle(q.parent))
        building.discard(id(line))
        return spec.graft(children, flts, handle)

    root = build(roots[0], roots[0].handle or "1:")
    leftover = [ln for ln in lines if id(ln) not in used]
    if leftover:
        first = leftover[0]
        raise ConfigError(f"tc tree: the {first.obj} {first.kind} under {first.parent} hangs "
                          "from nothing in the tree")
    return root


def _auto_handle(parent: str) -> str:
    return child_handle(parent)


def _htb(spec, handle, classes, qdiscs, flts, build, used):
    major = _key(handle) & 0xFFFF0000
    mine = [c for c in classes if c.handle and _key(c.handle) & 0xFFFF0000 == major]
    out = []
    for c in mine:
        used.add(id(c))
        leaf_line = next((q for q in qdiscs if q.parent not in (None, "root")
                          and _key(q.parent) == _key(c.handle)), None)
        leaf = build(leaf_line, leaf_line.handle or _auto_handle(c.handle)) if leaf_line \
            else None
        out.append(replace(HtbClass.parse(format_handle(_key(c.handle)),
                                          format_handle(_key(c.parent or handle), qdisc=True),
                                          c.options), leaf=leaf))
    return replace(spec, classes=tuple(out), filters=tuple(flts))
