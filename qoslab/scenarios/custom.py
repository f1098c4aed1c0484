"""``custom``: your own qdisc tree and timed ``tc`` changes, under a flood, measured with pings.

The tree comes from a file: either plain ``tc`` lines (``qdisc``/``class``/``filter add …``,
``DEV`` or any device name; read by :func:`qoslab.qdiscs.parse_tree`) or a JSON/YAML document
with ``qdiscs``/``classes``/``filters`` entries (the lab's :class:`~qoslab.lab.tc.Shaping` form)
plus two optional keys: ``at`` (where the tree sits: ``router``, on a router between client and
server, or ``client``, on the sending host; it overrides the ``router`` parameter) and
``changes``, a list of ``{"t": SECONDS, "tc": "qdisc change dev DEV …", "detail": …}`` run at
``t`` seconds after the pings start, each a ``config_change`` EVENT. Example::

    description: TBF 1 mbit, then a shorter queue
    qdiscs:
      - {kind: tbf, handle: "1:", options: {rate: 1mbit, burst: 10kb, limit: 200kb}}
    changes:
      - {t: 4, tc: "qdisc change dev DEV root handle 1: tbf rate 1mbit burst 10kb limit 10kb"}

On the kernel backend every line runs as written. On the simulator and the userspace datapath
a qdisc change replaces the qdisc (its queue is dropped, as ``tc qdisc replace`` does) and a
``flow`` filter change replaces the filter; class changes are refused there (not modelled).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import yaml

from ..errors import ConfigError, NestingDepthLimitError
from ..hashing import PROFILES, FlowClassifier
from ..io.limits import MAX_NESTING_DEPTH, check_document, read_config_text
from ..lab.tc import Shaping
from ..qdiscs import parse_tree
from ..sim.link import Link
from ..sim.traffic import PingStream, UdpFlood
from ..tcspec import SPEC_KINDS, parse_tc_line
from .params import Param
from .registry import Scenario, register
from .setup import ConfigChange, Phase, Setup

__all__ = ["read_experiment_file", "DEFAULT_TREE", "ATTACHMENTS"]

#: The tree when no file is given: HTB 2 mbit with a 100-packet pfifo.
DEFAULT_TREE = ("tc qdisc add dev DEV root handle 1: htb default 10\n"
                "tc class add dev DEV parent 1: classid 1:10 htb rate 2mbit\n"
                "tc qdisc add dev DEV parent 1:10 handle 10: pfifo limit 100\n")
_TC_OBJECTS = ("qdisc", "class", "filter")


#: Where a tree file's ``at`` may put the tree: on the router (forwarded traffic) or on the
#: client's own interface.
ATTACHMENTS = ("router", "client")


def read_experiment_file(path: str | Path, *, profile: str = "5.18+"
                         ) -> tuple[Any, str | None, list[ConfigChange]]:
    """Read a tree file: return ``(tree spec, at, changes)``; change times are seconds after
    the pings start.

    Raises
    ------
    ConfigError
        Naming the file and the offending field.

    Examples
    --------
    >>> import tempfile, os
    >>> f = os.path.join(tempfile.mkdtemp(), "t.json")
    >>> _ = open(f, "w").write('{"qdiscs": [{"kind": "pfifo", "options": {"limit": 5}}],'
    ...     ' "changes": [{"t": 2, "tc": "qdisc change dev DEV root pfifo limit 9"}]}')
    >>> tree, at, changes = read_experiment_file(f)
    >>> tree.to_tc(), at, changes[0].qdisc.to_tc(), changes[0].t
    ('pfifo limit 5', None, 'pfifo limit 9', 2.0)
    """
    path = Path(path)
    text = read_config_text(path, "experiment file")
    if path.suffix in (".json", ".yaml", ".yml"):
        doc = _document(path, text)
        doc = dict(doc)
        at = doc.pop("at", None)
        raw_changes = doc.pop("changes", None) or []
        if at is not None and at not in ATTACHMENTS:
            raise ConfigError(f"{path}: at: expected one of {', '.join(ATTACHMENTS)} (where "
                              f"the tree sits), got {at!r}")
        if not isinstance(raw_changes, list):
            raise ConfigError(f"{path}: changes: expected a list of {{t: SECONDS, tc: …}}, got "
                              f"{type(raw_changes).__name__}")

        try:
            shaping = Shaping.from_dict(doc)
        except ConfigError as exc:
            raise ConfigError(f"{path}: {exc}") from None
        if not shaping.qdiscs:
            raise ConfigError(f"{path}: qdiscs: at least a root qdisc is needed")
        text = "\n".join("tc " + " ".join(a) for a in shaping.commands("DEV"))
    else:
        at, raw_changes = None, []
    try:
        tree = parse_tree(text, profile=profile)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    if not isinstance(raw_changes, list):
        raise ConfigError(f"{path}: changes: expected a list")
    changes = [_change(ch, f"{path}: changes[{i}]", profile) for i, ch in enumerate(raw_changes)]
    return tree, at, sorted(changes, key=lambda c: c.t)


def _document(path: Path, text: str) -> dict:
    what = "JSON" if path.suffix == ".json" else "YAML"
    try:
        doc = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: not valid {what}: {str(exc).splitlines()[0]}") from None
    except RecursionError:
        raise NestingDepthLimitError(f"{path}: {what} nested deeper than the parser can "
                                     f"follow; the limit is {MAX_NESTING_DEPTH}") from None
    check_document(doc, str(path), what=what)
    if not isinstance(doc, dict):
        raise ConfigError(f"{path}: expected a mapping with qdiscs/classes/filters/changes")
    return doc


def _change(ch: Any, where: str, profile: str) -> ConfigChange:
    if not isinstance(ch, dict) or "t" not in ch or "tc" not in ch:
        raise ConfigError(f"{where}: expected {{t: SECONDS, tc: 'qdisc|class|filter …'}}")
    try:
        t = float(ch["t"])
    except (TypeError, ValueError, OverflowError):
        t = math.nan
    if not math.isfinite(t) or isinstance(ch["t"], bool):
        raise ConfigError(f"{where}.t: expected seconds, got {ch['t']!r}")
    tc = ch["tc"]
    argv = tc.split() if isinstance(tc, str) else \
        [str(a) for a in tc] if isinstance(tc, list) else []
    if not argv or argv[0] not in _TC_OBJECTS or "DEV" not in argv:
        raise ConfigError(f"{where}.tc: expected a tc command on {'/'.join(_TC_OBJECTS)} "
                          f"naming the device as DEV, got {ch['tc']!r}")
    detail = str(ch.get("detail", "")) or " ".join(argv)
    line = parse_tc_line(argv)
    qdisc = classifier = None
    try:
        if line.obj == "qdisc" and line.verb in ("add", "replace", "change") \
                and line.kind in SPEC_KINDS:
            cls = SPEC_KINDS[line.kind]
            qdisc = cls.parse_options(line.options, **({"profile": profile}
                                                       if cls.uses_profile else {}))
        elif line.obj == "filter" and line.kind == "flow":
            classifier = FlowClassifier.from_tc(" ".join(argv), profile=profile)
    except ConfigError as exc:
        raise ConfigError(f"{where}.tc: {exc}") from None
    parent = None if line.parent in (None, "root") else line.parent
    return ConfigChange(t, detail, classifier=classifier, qdisc=qdisc, parent=parent,
                        tc=tuple(argv))


def _custom(v: dict[str, Any]) -> Setup:
    if v["tree"]:
        tree, at, changes = read_experiment_file(v["tree"], profile=v["profile"])
    else:
        tree, at, changes = parse_tree(DEFAULT_TREE, profile=v["profile"]), None, []
    router = v["router"] if at is None else at == "router"
    family = v["family"]
    settle, interval, count = v["settle"], v["interval"], v["count"]
    duration = settle + count * interval
    flood_dst, ping_dst = ("10.0.9.1", "10.0.1.1") if family == 4 else ("fd00:9::1",
                                                                         "fd00:1::1")
    header = 48 if family == 6 else 28
    flood = UdpFlood(flood_dst, rate=v["flood_rate"], size=v["size"] - header, sport=9000,
                     dport=9000, tos=v["flood_tos"], prefill=v["prefill"], jitter=0.5)
    tos = v["tos"]
    pings = [PingStream(ping_dst, tos=t, interval=interval,
                        start=settle + i * interval / (len(tos) + 1)) for i, t in enumerate(tos)]
    shifted = tuple(ConfigChange(settle + c.t, c.detail, classifier=c.classifier,
                                 qdisc=c.qdisc, parent=c.parent, tc=c.tc) for c in changes)
    bounds = [settle, *[c.t for c in shifted], duration]
    phases = tuple(Phase(f"phase {i + 1}", a, b) for i, (a, b) in
                   enumerate(zip(bounds, bounds[1:], strict=False)) if b > a)
    return Setup(traffic=(flood, *pings), qdisc=tree,
                 link=Link(rate=1e9, delay=0.0, txqueuelen=v["txqueuelen"]),
                 duration=duration, changes=shifted, forwarded=router, phases=phases)


register(Scenario(
    "custom", "Your own qdisc tree and timed tc changes under a flood",
    (Param("tree", "str", "", "a file of tc lines, or a JSON/YAML tree with timed changes "
           "(empty: HTB 2 mbit + pfifo limit 100)"),
     Param("flood_rate", "rate", 3e6, "UDP flood rate", unit="bit/s", min=1e3, max=1e11,
           log=True),
     Param("size", "int", 1000, "flood packet size (IP bytes)", unit="bytes", min=64,
           max=1500),
     Param("flood_tos", "hex", 0, "TOS byte of the flood", unit="TOS", min=0, max=255),
     Param("prefill", "int", 0, "flood packets sent at once first", unit="packets", min=0,
           max=100000),
     Param("tos", "ints", (0x10, 0x00), "ping TOS bytes (one stream each)", unit="TOS",
           min=0, max=255),
     Param("seed", "int", 1, "seed of every random choice", min=0, max=2**63 - 1),
     Param("interval", "time", 0.1, "ping interval", unit="s", min=0.001, max=60),
     Param("count", "int", 50, "probes per stream", min=1, max=1000000),
     Param("settle", "time", 1.0, "flood time before the pings start", unit="s", min=0,
           max=600),
     Param("router", "bool", True, "shape on a router between client and server (a tree "
           "file's 'at: router|client' says it instead)"),
     Param("family", "choice", 4, "address family", choices=(4, 6)),
     Param("txqueuelen", "int", 1000, "device queue length", unit="packets", min=1,
           max=100000),
     Param("profile", "choice", "5.18+", "kernel era of the tree's era-dependent qdiscs",
           choices=tuple(PROFILES))),
    _custom, backends=("sim", "kernel", "userspace")))
