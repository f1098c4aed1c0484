"""The decision log: what a qdisc tree decided for every packet, whoever drives it.

Every driver of the runtime qdiscs — the simulator, the userspace datapath, capture replay —
records the same thing per packet: when it arrived, when the link took it (or that it was
dropped), the class or band and the bucket the tree picked (the packet record's ``cls`` and
``queue``, see :mod:`.runtime`), and which hash seed was in force. :class:`DecisionLog` holds
those columns while a run goes — all three drivers use it — and turns them into the DECISIONS
table (:data:`qoslab.schema.DECISIONS`) at the end.

:class:`LoggedRoot` wraps a runtime root qdisc so that a driver gets the log without changing
anything else: it numbers each packet at enqueue (the number travels with the packet as one
more field of its record), stands in for the packet's owner to hear about drops, and notes
the departure at dequeue.
"""

from __future__ import annotations

import math
from array import array
from typing import Any

import numpy as np
import pandas as pd

from .runtime import CLS, FID, OWNER, QUEUE, SIZE

__all__ = ["DecisionLog", "LoggedRoot", "LOG", "decisions_frame", "unique_labels"]

#: Index of the log number appended to a packet record by :class:`LoggedRoot`.
LOG = 8


class DecisionLog:
    """Columns of the decision log, appended to packet by packet.

    The columns are typed arrays (:mod:`array`: 8 bytes a value, 1 for ``dropped``; nothing
    for a garbage collector to walk), named as in DECISIONS. Drivers with a hot loop (replay,
    the datapath) bind them to local names and append or assign directly; the simulator goes
    through :meth:`arrive` / :meth:`decide` / :meth:`depart` / :meth:`drop`. ``packet`` numbers
    each row (the driver's own packet number: replay's row of the capture).

    Examples
    --------
    >>> log = DecisionLog()
    >>> i = log.arrive(fid=0, size=1514, t=0.5, seed_index=0)
    >>> log.decide(i, cls=-1, queue=7)
    >>> log.depart(i, 0.75)
    >>> log.frame(["flow a"])[["flow", "t_arrival", "t_departure", "queue", "dropped"]]
         flow  t_arrival  t_departure  queue  dropped
    0  flow a        0.5         0.75      7    False
    """

    #: column -> typecode of its array (DECISIONS order; ``flow`` is ``fid`` with labels)
    TYPECODES = {"packet": "q", "fid": "q", "t_arrival": "d", "t_departure": "d", "size": "q",
                 "cls": "q", "queue": "q", "seed_index": "q", "dropped": "b"}

    __slots__ = tuple(TYPECODES)

    def __init__(self) -> None:
        for name, code in self.TYPECODES.items():
            setattr(self, name, array(code))

    def __len__(self) -> int:
        return len(self.fid)

    def arrive(self, fid: int, size: int, t: float, seed_index: int) -> int:
        """A packet reached the tree; return its number in the log."""
        i = len(self.fid)
        self.packet.append(i)
        self.fid.append(fid)
        self.size.append(size)
        self.t_arrival.append(t)
        self.t_departure.append(math.nan)
        self.cls.append(-1)
        self.queue.append(-1)
        self.seed_index.append(seed_index)
        self.dropped.append(0)
        return i

    def decide(self, i: int, cls: int, queue: int) -> None:
        """The class / band and bucket the tree wrote into packet ``i``'s record."""
        self.cls[i] = cls
        self.queue[i] = queue

    def depart(self, i: int, t: float) -> None:
        """Packet ``i`` left the tree at ``t`` (the link took it)."""
        self.t_departure[i] = t

    def drop(self, i: int) -> None:
        """Packet ``i`` was dropped."""
        self.dropped[i] = 1

    def columns(self) -> dict[str, np.ndarray]:
        """The columns as numpy arrays (int64, float64, bool), e.g. for ``np.savez``."""
        out = {name: np.frombuffer(getattr(self, name), dtype=code).copy() if len(self)
               else np.zeros(0, dtype=code) for name, code in _NUMPY_CODES.items()}
        out["dropped"] = out["dropped"].astype(bool)
        return out

    def take(self, k: int) -> dict[str, np.ndarray]:
        """The first ``k`` rows as :meth:`columns` gives them, removed from the log (a
        driver writing its log out as it goes)."""
        out = {}
        for name, code in _NUMPY_CODES.items():
            arr = getattr(self, name)
            out[name] = np.frombuffer(arr[:k], dtype=code) if k else np.zeros(0, dtype=code)
            del arr[:k]
        out["dropped"] = out["dropped"].astype(bool)
        return out

    def frame(self, labels: list[str], *, first: int = 0) -> pd.DataFrame:
        """The DECISIONS table; ``labels[fid]`` names each flow, ``first`` is added to each
        packet number."""
        cols = self.columns()
        cols["packet"] = cols["packet"] + first
        return decisions_frame(labels=labels, **cols)


#: numpy dtype of each typed array (``array``'s "q", "d" and "b" are these on every platform
#: CPython supports)
_NUMPY_CODES = {name: {"q": np.int64, "d": np.float64, "b": np.int8}[code]
                for name, code in DecisionLog.TYPECODES.items()}


def decisions_frame(*, packet: np.ndarray, fid: np.ndarray, labels, t_arrival: np.ndarray,
                    t_departure: np.ndarray, size: np.ndarray, cls: np.ndarray,
                    queue: np.ndarray, seed_index: np.ndarray, dropped: np.ndarray
                    ) -> pd.DataFrame:
    """The DECISIONS table from numpy columns (``cls`` and ``queue`` -1: NA).

    The flow column is categorical: the codes are ``fid``, the categories ``labels``.
    """
    labels = unique_labels(labels)
    flow = pd.Categorical.from_codes(fid, categories=pd.Index(labels, dtype=str)) \
        if len(labels) else pd.Categorical([], categories=pd.Index([], dtype=str))
    return pd.DataFrame({
        "packet": packet.astype(np.int64),
        "flow": flow,
        "t_arrival": t_arrival.astype(float),
        "t_departure": t_departure.astype(float),
        "size": size.astype(np.int64),
        "cls": pd.arrays.IntegerArray(cls.astype(np.int64), cls < 0),
        "queue": pd.arrays.IntegerArray(queue.astype(np.int64), queue < 0),
        "seed_index": seed_index.astype(np.int64),
        "dropped": dropped.astype(bool),
    })


def unique_labels(labels) -> list[str]:
    """Flow labels as categories: the second flow of a label is ``"label #2"`` and so on.

    >>> unique_labels(["a", "b", "a"])
    ['a', 'b', 'a #2']
    """
    labels = [str(x) for x in labels]
    if len(set(labels)) == len(labels):
        return labels
    seen: dict[str, int] = {}
    out = []
    for x in labels:
        seen[x] = seen.get(x, 0) + 1
        out.append(x if seen[x] == 1 else f"{x} #{seen[x]}")
    return out


class _Owner:
    """Stands in for a packet's owner: notes a drop, then tells the owner."""

    __slots__ = ("owner", "log")

    def __init__(self, owner: Any, log: DecisionLog) -> None:
        self.owner = owner
        self.log = log

    def on_drop(self, pkt: list, now: float) -> None:
        self.log.dropped[pkt[LOG]] = 1
        pkt[OWNER] = self.owner
        self.owner.on_drop(pkt, now)

    def on_sent(self, pkt: list, t: float) -> None:
        pkt[OWNER] = self.owner
        self.owner.on_sent(pkt, t)


class LoggedRoot:
    """A runtime root qdisc that records every decision into ``log``.

    Drivers use it in place of the root: ``enqueue``, ``dequeue``, ``next_wake``,
    ``on_hash_change`` (the seed index in force is noted for the next arrivals), and every
    other attribute passes through to the wrapped root. Packets get their log number as one
    more field (:data:`LOG`); their owner is replaced by a stand-in while they are in the tree
    and put back when they leave or are dropped.
    """

    def __init__(self, root: Any, log: DecisionLog | None = None) -> None:
        self.root = root
        self.log = log if log is not None else DecisionLog()
        self.seed_index = 0
        self._owners: dict[int, _Owner] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self.root, name)

    @property
    def next_wake(self) -> float:
        return self.root.next_wake

    @property
    def qlen(self) -> int:
        return self.root.qlen

    def enqueue(self, pkt: list, now: float) -> None:
        log = self.log
        i = log.arrive(pkt[FID], pkt[SIZE], now, self.seed_index)
        pkt.append(i)
        owner = pkt[OWNER]
        stand_in = self._owners.get(id(owner))
        if stand_in is None:
            stand_in = self._owners[id(owner)] = _Owner(owner, log)
        pkt[OWNER] = stand_in
        self.root.enqueue(pkt, now)
        log.cls[i] = pkt[CLS]
        log.queue[i] = pkt[QUEUE]

    def dequeue(self, now: float):
        pkt = self.root.dequeue(now)
        if pkt is not None:
            self.log.t_departure[pkt[LOG]] = now
            pkt[OWNER] = pkt[OWNER].owner
        return pkt

    def on_hash_change(self, seed_index: int, now: float) -> None:
        self.seed_index = seed_index
        self.root.on_hash_change(seed_index, now)
