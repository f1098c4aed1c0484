"""``custom``: your own qdisc tree and timed changes, under a flood, measured with pings.

The tree comes from a JSON or YAML file in :meth:`qoslab.lab.tc.Shaping.from_dict` form, plus
two optional keys: ``at`` (the attachment point, default ``router`` with a router, else
``client``) and ``changes``, a list of ``{"t": SECONDS, "tc": "qdisc replace dev DEV …"}``
run at ``t`` seconds after the pings start (``DEV`` is replaced by the interface), each one a
``config_change`` EVENT. Example::

    description: TBF 1 mbit, then a shorter queue
    qdiscs:
      - {kind: tbf, handle: "1:", options: {rate: 1mbit, burst: 10kb, limit: 200kb}}
    changes:
      - {t: 4, tc: "qdisc change dev DEV root handle 1: tbf rate 1mbit burst 10kb limit 10kb"}
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import yaml

from ..errors import ConfigError
from ..runs import Run
from .experiment import Experiment
from .tc import Shaping, htb, leaf

__all__ = ["custom", "read_experiment_file"]

_TC_OBJECTS = ("qdisc", "class", "filter")


def read_experiment_file(path: str | Path) -> tuple[Shaping, str | None, list[dict[str, Any]]]:
    """Read a tree file: return ``(shaping, at, changes)``.

    Raises
    ------
    ConfigError
        Naming the file and the offending field.

    Examples
    --------
    >>> import tempfile, os
    >>> f = os.path.join(tempfile.mkdtemp(), "t.json")
    >>> _ = open(f, "w").write('{"qdiscs": [{"kind": "pfifo", "options": {"limit": 5}}],'
    ...                        ' "changes": [{"t": 2, "tc": "qdisc change dev DEV root pfifo limit 9"}]}')
    >>> tree, at, changes = read_experiment_file(f)
    >>> tree.commands("eth0")[0], at, changes[0]["argv"][-2:]
    (['qdisc', 'add', 'dev', 'eth0', 'root', 'pfifo', 'limit', '5'], None, ['limit', '9'])
    """
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the experiment file: {exc.strerror}") from None
    try:
        doc = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: not valid {'JSON' if path.suffix == '.json' else 'YAML'}: "
                          f"{str(exc).splitlines()[0]}") from None
    if not isinstance(doc, dict):
        raise ConfigError(f"{path}: expected a mapping with qdiscs/classes/filters/changes")
    doc = dict(doc)
    at = doc.pop("at", None)
    raw_changes = doc.pop("changes", None) or []
    try:
        shaping = Shaping.from_dict(doc)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    if not shaping.qdiscs:
        raise ConfigError(f"{path}: qdiscs: at least a root qdisc is needed")
    if not isinstance(raw_changes, list):
        raise ConfigError(f"{path}: changes: expected a list")
    changes = []
    for i, ch in enumerate(raw_changes):
        where = f"{path}: changes[{i}]"
        if not isinstance(ch, dict) or "t" not in ch or "tc" not in ch:
            raise ConfigError(f"{where}: expected {{t: SECONDS, tc: 'qdisc|class|filter …'}}")
        try:
            t = float(ch["t"])
        except (TypeError, ValueError):
            raise ConfigError(f"{where}.t: expected seconds, got {ch['t']!r}") from None
        argv = ch["tc"].split() if isinstance(ch["tc"], str) else [str(a) for a in ch["tc"]]
        if not argv or argv[0] not in _TC_OBJECTS or "DEV" not in argv:
            raise ConfigError(f"{where}.tc: expected a tc command on {'/'.join(_TC_OBJECTS)} "
                              f"naming the device as DEV, got {ch['tc']!r}")
        changes.append({"t": t, "argv": argv, "detail": str(ch.get("detail", ""))})
    return shaping, at, sorted(changes, key=lambda c: c["t"])


def custom(*, shaping: str = "", flood_rate: str = "3mbit", size: int = 1000,
           flood_tos: int = 0, prefill: int = 0, tos: tuple[int, ...] = (0x10, 0x00), interval: float = 0.1,
           count: int = 50, settle: float = 1.0, timeout: float = 5.0, router: bool = True,
           family: int = 4, txqueuelen: int = 0, capture: str | None = None,
           path: str | None = None, force: bool = False) -> Run:
    """Run your own tree (``shaping`` = a JSON/YAML file, see the module docstring; default
    HTB 2 mbit + pfifo limit 100) under a UDP flood, with ping streams at each of ``tos``.

    Parameters
    ----------
    shaping
        Experiment file path ('' for the default tree).
    flood_rate, size, flood_tos, prefill
        The UDP flood (client to server): bits/s, IP packet bytes, TOS byte, packets sent at
        once first (to fill a long queue at the start).
    tos, interval, count, timeout
        Ping streams (one per TOS) to the server.
    settle
        Seconds of flood before the pings start.
    router, family, txqueuelen
        The bed (see :class:`~qoslab.lab.Testbed`); ``txqueuelen=0`` keeps the veth default.
    capture, path
        As for every preset.
    """
    if shaping:
        tree, at, changes = read_experiment_file(shaping)
    else:
        tree, at, changes = htb("2mbit", leaf=leaf("pfifo", limit=100)), None, []
    at = at or ("router" if router else "client")
    exp = Experiment(path, {
        "preset": "custom",
        "params": {"shaping": shaping, "flood_rate": flood_rate, "size": size,
                   "flood_tos": flood_tos, "prefill": prefill, "tos": list(tos), "interval": interval,
                   "count": count, "settle": settle, "timeout": timeout, "router": router,
                   "family": family, "txqueuelen": txqueuelen},
        "changes": [{"t": c["t"], "tc": " ".join(c["argv"])} for c in changes],
    }, router=router, txqueuelen=txqueuelen or None, capture=capture, force=force)
    with exp as (tb, ping_file):
        tb.point(at)  # a clear error for a point this topology lacks, before anything runs
        tb.apply(tree, at)
        tb.snapshot("before", at)
        tb.sample(at)
        if capture:
            tb.capture(capture, force=force)
        flood = tb.udp_flood(flood_rate, size=size, tos=flood_tos, family=family,
                             prefill=prefill, duration=settle + count * interval + timeout + 60)
        time.sleep(settle)
        proc = tb.start_ping(tb.ping_targets(list(tos), family=family), interval=interval,
                             count=count, path=ping_file, timeout=timeout)
        t_ping = proc.wait_started() - tb.t0
        for ch in changes:
            tb.at_time(t_ping + ch["t"],
                       lambda ch=ch: tb.tc(at, *ch["argv"], detail=ch["detail"] or None))
        pings = proc.result(t0_unix=tb.t0_unix)
        tb.snapshot("after pings", at)
        flood.finish()
        tb.snapshot("after", at)
    return exp.finish(pings)
