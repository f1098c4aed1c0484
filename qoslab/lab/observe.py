"""What the lab records while an experiment runs: tcpdump captures and ``tc -s`` statistics.

:class:`Capture` runs ``tcpdump`` inside a namespace on one interface and writes a pcap that
:func:`qoslab.read_capture` reads back. :class:`TcSampler` polls ``tc -s -j qdisc show`` on
one interface every ``period`` seconds in a thread, so the backlog and drops of every qdisc
over time (queue occupancy) go into META beside the before/after snapshots.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from ..capture import read_capture
from ..children import find_program
from ..outputs import open_output
from .loads import LabProcess
from .netns import LabCommandError, Namespace, run_cmd
from .tc import parse_class_stats, qdisc_stats

__all__ = ["Capture", "TcSampler", "tc_snapshot", "tc_samples"]


def tc_snapshot(ns: Namespace, dev: str) -> dict[str, Any]:
    """``tc -s`` statistics of every qdisc and class on ``dev`` inside ``ns``.

    Returns ``{"qdiscs": [...], "classes": [...]}`` (see :func:`qoslab.lab.tc.qdisc_stats`
    and :func:`~qoslab.lab.tc.parse_class_stats` for the fields).
    """
    q = run_cmd(["tc", "-s", "-j", "qdisc", "show", "dev", dev], ns=ns.name, check=False)
    c = run_cmd(["tc", "-s", "class", "show", "dev", dev], ns=ns.name, check=False)
    return {"qdiscs": qdisc_stats(q.stdout) if q.returncode == 0 and q.stdout.strip() else [],
            "classes": parse_class_stats(c.stdout) if c.returncode == 0 else []}


class TcSampler:
    """Sample ``tc -s -j qdisc show dev DEV`` every ``period`` s until :meth:`stop`.

    Rows (one per qdisc per sample): ``t`` (s from the bed's start given by ``clock``), ``dev``,
    ``handle``, ``kind``, ``parent``, ``backlog`` (bytes), ``qlen`` (packets), ``drops``,
    ``packets``, ``bytes``, ``overlimits``.
    """

    def __init__(self, ns: Namespace, dev: str, clock: Callable[[], float],
                 period: float = 0.25) -> None:
        self.ns, self.dev, self.clock, self.period = ns, dev, clock, float(period)
        self.rows: list[dict[str, Any]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"tc-sampler {dev}",
                                        daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            t = self.clock()
            try:
                proc = run_cmd(["tc", "-s", "-j", "qdisc", "show", "dev", self.dev],
                               ns=self.ns.name, check=False, timeout=10)
            except LabCommandError:  # a slow sample is skipped, the next one is taken
                self._stop.wait(self.period)
                continue
            if proc.returncode == 0 and proc.stdout.strip():
                try:
                    for row in qdisc_stats(proc.stdout):
                        self.rows.append({"t": round(t, 4), "dev": self.dev, **row})
                except ValueError:
                    pass
            self._stop.wait(self.period)

    def stop(self) -> list[dict[str, Any]]:
        """Stop sampling; return the rows."""
        self._stop.set()
        self._thread.join(timeout=15)
        return self.rows

    def columns(self) -> dict[str, list]:
        """The rows as columns (compact for META)."""
        keys = ["t", "dev", "handle", "kind", "parent", "backlog", "qlen", "drops", "packets",
                "bytes", "overlimits"]
        return {k: [r.get(k) for r in self.rows] for k in keys}


class Capture:
    """``tcpdump`` writing a pcap of one interface inside a lab namespace.

    Parameters
    ----------
    ns, dev
        Where to listen.
    path
        The pcap file to write.
    bpf
        A capture filter (tcpdump syntax), e.g. ``"icmp or icmp6"``; None: everything.
    snaplen
        Bytes kept per packet (headers are enough: default 192).
    force
        Replace an existing file at ``path``.

    qoslab creates the file itself (never through a planted symlink, never over an existing
    file without ``force``: :func:`qoslab.outputs.open_output`) and tcpdump writes the pcap to
    its standard output, packet by packet (``-U -w -``), so a killed run keeps what it captured.
    """

    def __init__(self, ns: Namespace, dev: str, path: str | Path, *, bpf: str | None = None,
                 snaplen: int = 192, force: bool = False) -> None:
        tcpdump = find_program("tcpdump")
        if tcpdump is None:
            raise LabCommandError("captures need tcpdump (Debian package tcpdump)")
        self.path = Path(path)
        self.dev = dev
        self.bpf = bpf
        argv = [tcpdump, "-i", dev, "-n", "-U", "-s", str(int(snaplen)), "-w", "-",
                "--immediate-mode", "-Z", "root"]
        if bpf:
            argv.append(bpf)
        with open_output(self.path, force=force, what="capture") as out:
            self.process = LabProcess(ns, argv, f"tcpdump on {dev}", ready=self._ready,
                                      ready_stream="stderr", stdout=out)
        time.sleep(0.05)

    @staticmethod
    def _ready(line: str) -> bool:
        return "listening on" in line

    def stop(self) -> Path:
        """Stop tcpdump (SIGINT makes it flush and close the file); return the pcap path."""
        if self.process.proc.poll() is None:
            time.sleep(0.05)  # let the last packets reach the ring
        self.process.stop(sig=signal.SIGINT)
        return self.path

    def read(self) -> pd.DataFrame:
        """Stop the capture if it runs and return its PACKETS (:func:`qoslab.read_capture`)."""
        return read_capture(self.stop())

    @property
    def summary(self) -> str:
        """tcpdump's own closing lines (packets captured / dropped by kernel)."""
        lines = [ln for ln in self.process.stderr.splitlines() if "packets" in ln]
        return "; ".join(lines)


def tc_samples(run: Any, at: str | None = None) -> pd.DataFrame:
    """The qdisc statistics a lab run sampled over time, as a table.

    Parameters
    ----------
    run
        A lab :class:`~qoslab.Run` (or its META dict).
    at
        Attachment point (``"client"``, ``"router"`` …); None: all, with an ``at`` column.

    Returns
    -------
    pandas.DataFrame
        One row per qdisc per sample: ``t`` (s, the RUN's time base), ``at``, ``dev``,
        ``handle``, ``kind``, ``parent``, ``backlog`` (bytes), ``qlen`` (packets) and the
        cumulative ``drops``, ``packets``, ``bytes``, ``overlimits``; empty if none were taken.

    Examples
    --------
    >>> meta = {"lab": {"tc_samples": {"client": {"t": [0.0, 0.25], "dev": ["d", "d"],
    ...     "handle": ["10:", "10:"], "kind": ["pfifo", "pfifo"], "parent": ["1:10", "1:10"],
    ...     "backlog": [0, 5000], "qlen": [0, 5], "drops": [0, 1], "packets": [0, 9],
    ...     "bytes": [0, 9000], "overlimits": [0, 0]}}}}
    >>> tc_samples(meta)[["t", "kind", "qlen"]].values.tolist()
    [[0.0, 'pfifo', 0], [0.25, 'pfifo', 5]]
    """
    meta = run if isinstance(run, dict) else run.meta
    samples = (meta.get("lab") or {}).get("tc_samples") or {}
    frames = [pd.DataFrame(cols).assign(at=point) for point, cols in samples.items()
              if at is None or point == at]
    if not frames:
        return pd.DataFrame(columns=["t", "at", "dev", "handle", "kind", "parent", "backlog",
                                     "qlen", "drops", "packets", "bytes", "overlimits"])
    out = pd.concat(frames, ignore_index=True)
    return out[["t", "at"] + [c for c in out.columns if c not in ("t", "at")]]
