"""What an experiment is, whatever runs it: traffic, the qdisc tree, the link, timed changes.

A :class:`Setup` is plain data built by a scenario from its parameters. Every backend turns the
same ``Setup`` into a run: the simulator (:mod:`qoslab.sim`), the real kernel in network
namespaces (:mod:`qoslab.lab`), and the userspace datapath. Nothing in it is backend-specific:

* ``traffic`` — ping streams, ping floods, UDP floods, TCP bulk uploads, optionally through an
  IP-in-IP tunnel (:mod:`qoslab.sim.traffic` specs); addresses are the scenario's own (the lab
  gives every destination to its server namespace);
* ``qdisc`` — the whole qdisc tree on the bottleneck's egress (a :mod:`qoslab.qdiscs` spec;
  shapers included), with the kernel ``profile`` its era-dependent parts follow;
* ``link`` — the device after the qdisc: line rate, propagation delay, MTU, ``txqueuelen``;
* ``changes`` — what happens at given times (a filter or a qdisc replaced);
* ``forwarded`` — the shaping host routes the traffic (a router) instead of sending it itself;
* ``phases`` — named time windows the results are summarised over (before/after a change).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ..errors import ConfigError
from ..ping.runner import DEFAULT_TIMEOUT
from ..qdiscs.changes import ConfigChange
from ..sim.link import Link

__all__ = ["Setup", "Phase", "ConfigChange", "phase_medians"]


@dataclass(frozen=True)
class Phase:
    """A named window ``[start, end)`` of scenario time (seconds), e.g. ``"long queue"``;
    ``info`` is recorded with it in META (e.g. the queue limit in force)."""

    name: str
    start: float
    end: float
    info: dict = field(default_factory=dict, compare=False)

    def meta(self) -> dict:
        """The phase as META records it."""
        return {"name": self.name, "t_start": self.start, "t_end": self.end, **self.info}


@dataclass(frozen=True)
class Setup:
    """One experiment, ready for any backend (see the module docstring)."""

    traffic: tuple
    qdisc: Any
    link: Link = field(default_factory=Link)
    duration: float = 60.0
    changes: tuple[ConfigChange, ...] = ()
    forwarded: bool = False
    phases: tuple[Phase, ...] = ()
    predictions: dict = field(default_factory=dict)
    sample_interval: float = 0.1

    def __post_init__(self) -> None:
        if not self.traffic:
            raise ConfigError("setup: no traffic")
        if not self.duration > 0:
            raise ConfigError(f"setup: duration must be > 0 s, got {self.duration}")
        for c in self.changes:
            if not 0 <= c.t <= self.duration:
                raise ConfigError(f"setup: a change at t={c.t} s is outside the run "
                                  f"(0 … {self.duration} s)")

    @property
    def ping_timeout(self) -> float:
        """Seconds the ping runner waits for a probe's answer on every backend: the ping
        runner's :data:`~qoslab.ping.DEFAULT_TIMEOUT`, or, where the scenario predicts a full
        queue's delay (``predictions["full_queue_delay_ms"]``, per phase), three times the
        worst of them plus one second (a probe behind a full queue is answered, not lost);
        without that prediction, as if it were one second; at most 60 s.

        >>> from qoslab.scenarios import get
        >>> get("pfifo_fast_tos").setup().ping_timeout, get("bufferbloat").setup().ping_timeout
        (4.0, 7.168)
        """
        delays = self.predictions.get("full_queue_delay_ms")
        worst = max(delays.values()) / 1000 if isinstance(delays, dict) and delays else 1.0
        return float(min(max(DEFAULT_TIMEOUT, 3 * worst + 1), 60.0))

    def phase_of(self, t: float) -> str | None:
        """The name of the phase that contains scenario time ``t`` (None: none does)."""
        for p in self.phases:
            if p.start <= t < p.end:
                return p.name
        return None


def phase_medians(run) -> pd.DataFrame:
    """Median RTT per phase and stream of a scenario's RUN (any backend): columns ``phase``,
    ``stream``, ``tos``, ``median_ms``, ``n`` (answered probes).

    The phases are the RUN's ``meta["phases"]`` (name, ``t_start``, ``t_end`` in the RUN's
    time).

    Examples
    --------
    >>> from qoslab.scenarios import get
    >>> m = phase_medians(get("bufferbloat").run()).set_index("phase")["median_ms"]
    >>> round(float(m["pfifo limit 1000"]), -1), round(float(m["pfifo limit 10"]), -1)
    (2040.0, 20.0)
    """
    p = run.probes
    t = p["t_sent"].to_numpy(dtype=float)
    names = np.full(len(p), None, dtype=object)
    for ph in run.meta.get("phases") or []:
        names[(t >= ph["t_start"]) & (t < ph["t_end"])] = ph["name"]
    frame = p.assign(phase=names).dropna(subset=["phase"])
    frame = frame[frame["status"].isin(["ok", "late"])]
    out = frame.groupby(["phase", "stream"], sort=True).agg(
        tos=("tos", "first"), median_ms=("rtt_ms", "median"), n=("rtt_ms", "size"))
    return out.reset_index()
