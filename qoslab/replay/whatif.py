""""What if my traffic went through this qdisc?": a capture, a qdisc and a rate, replayed.

:data:`WHATIF_PARAMS` declares the choices (typed :class:`~qoslab.scenarios.Param`, so widgets
and ``qoslab report -p`` read them as they read a scenario's): the qdisc, the classifier keys
(none: the qdisc's own hash), the perturb interval, the link rate, the queue limit and the
kernel era. :func:`what_if` replays a capture through that tree; :func:`shared_buckets` says
which flows shared a bucket, from when to when; :func:`occupancy` turns the decision log into
the OCCUPANCY table :func:`qoslab.plots.occupancy` draws.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ..errors import ConfigError
from ..hashing import PROFILES, FlowClassifier
from ..qdiscs import FqCodel, Pfifo, Sfq
from ..scenarios.params import Param, resolve
from ..schema import conform
from . import replay

__all__ = ["WHATIF_PARAMS", "what_if", "what_if_tree", "shared_buckets", "occupancy"]

_QDISCS = ("sfq", "fq_codel", "pfifo")


def _profiles() -> tuple[str, ...]:
    return tuple(PROFILES)


#: The choices of a what-if replay (see the module docstring).
WHATIF_PARAMS: tuple[Param, ...] = (
    Param("qdisc", "choice", "sfq", "the qdisc the capture's packets go through",
          choices=_QDISCS),
    Param("keys", "str", "", "cls_flow keys of an attached flow filter (e.g. "
          "src,dst,proto,proto-src,proto-dst); empty: the qdisc's own hash"),
    Param("perturb", "int", 10, "seconds between hash perturbations", unit="s", min=0,
          max=3600, zero_means="no perturbation"),
    Param("rate", "rate", 400e3, "link rate the qdisc feeds", unit="bit/s", min=1e3, max=1e11,
          log=True),
    Param("limit", "int", 127, "queue limit", unit="packets", min=2, max=100000, log=True),
    Param("profile", "choice", "tunnel-patch", "kernel era of the qdisc and its hash",
          choices=_profiles()),
    Param("seed", "int", 1, "seed of the hash seeds", min=0, max=2**63 - 1),
)


def what_if_tree(values: dict[str, Any]) -> Any:
    """The qdisc spec of checked what-if values."""
    profile, keys = values["profile"], values["keys"].strip()
    perturb = int(values["perturb"])
    classifier = None
    if keys:
        if values["qdisc"] == "pfifo":
            raise ConfigError("keys: a pfifo has no buckets for a flow filter to choose")
        classifier = FlowClassifier(keys, divisor=1024, perturb=perturb or None,
                                    profile=profile)
    if values["qdisc"] == "sfq":
        return Sfq(limit=min(values["limit"], 127), perturb=0 if classifier else perturb,
                   profile=profile, classifier=classifier)
    if values["qdisc"] == "fq_codel":
        return FqCodel(limit=values["limit"], profile=profile, classifier=classifier)
    return Pfifo(limit=values["limit"])


def what_if(packets: pd.DataFrame | Any, **given: Any):
    """Replay ``packets`` (a PACKETS frame or a capture file) through the tree the values
    describe (:data:`WHATIF_PARAMS`; others keep their defaults); return the RUN.

    Examples
    --------
    >>> import qoslab
    >>> pk = qoslab.read_capture(qoslab.data_path("captures/tunnel_uploads.pcap"))
    >>> run = what_if(pk, perturb=5, rate=300e3)
    >>> run.meta["tc"], int((run.events["kind"] == "hash_change").sum())
    ('sfq limit 127 perturb 5', 7)
    """
    values = resolve(WHATIF_PARAMS, given, owner="what-if")
    run = replay(packets, what_if_tree(values), rate=values["rate"], seed=values["seed"])
    run.meta["params"] = dict(values)
    return run


def shared_buckets(decisions: pd.DataFrame) -> pd.DataFrame:
    """Which flows shared a bucket, and when: one row per seed epoch and bucket that held
    packets of two flows or more.

    Columns ``seed_index``, ``from``, ``to`` (first and last arrival in that bucket during the
    epoch), ``queue``, ``n_flows``, ``flows`` (their labels, ``" | "``-joined), ``packets``.

    Examples
    --------
    >>> d = pd.DataFrame({"flow": pd.Categorical(["a", "b", "a", "c"]), "queue": [7, 7, 7, 9],
    ...                   "seed_index": [0, 0, 0, 0], "t_arrival": [0.0, 0.5, 1.0, 1.5]})
    >>> shared_buckets(d)[["queue", "n_flows", "flows"]].to_dict("records")
    [{'queue': 7, 'n_flows': 2, 'flows': 'a | b'}]
    """
    d = decisions.dropna(subset=["queue"])
    if not len(d):
        return pd.DataFrame(columns=["seed_index", "from", "to", "queue", "n_flows", "flows",
                                     "packets"])
    g = d.groupby(["seed_index", "queue"], observed=True)
    out = g.agg(**{"from": ("t_arrival", "min"), "to": ("t_arrival", "max"),
                   "n_flows": ("flow", "nunique"), "packets": ("flow", "size")})
    out["flows"] = g["flow"].agg(lambda s: " | ".join(sorted(set(map(str, s)))))
    out = out[out["n_flows"] >= 2].reset_index()
    out["queue"] = out["queue"].astype("int64")
    return out[["seed_index", "from", "to", "queue", "n_flows", "flows", "packets"]]


def occupancy(decisions: pd.DataFrame, every: float = 0.1) -> pd.DataFrame:
    """What each flow had queued in each bucket, sampled every ``every`` seconds: the
    OCCUPANCY table (:data:`qoslab.schema.OCCUPANCY`) of a decision log.

    Examples
    --------
    >>> d = pd.DataFrame({"flow": ["a", "a"], "queue": [3, 3], "size": [1514, 1514],
    ...                   "t_arrival": [0.05, 0.06], "t_departure": [0.25, 0.35],
    ...                   "dropped": [False, False]})
    >>> occupancy(d)[["t", "flow", "bucket", "packets"]].to_dict("records")
    [{'t': 0.1, 'flow': 'a', 'bucket': 3, 'packets': 2}, {'t': 0.2, 'flow': 'a', 'bucket': 3, 'packets': 2}, {'t': 0.3, 'flow': 'a', 'bucket': 3, 'packets': 1}]
    """
    if not every > 0:
        raise ConfigError(f"occupancy: every = {every}: expected seconds > 0")
    d = decisions[~decisions["dropped"].to_numpy(dtype=bool)].dropna(subset=["t_departure"])
    cols = {"t": [], "flow": [], "bucket": [], "packets": [], "bytes": []}
    if len(d):
        t0 = np.ceil(d["t_arrival"].min() / every) * every
        ticks = np.arange(t0, d["t_departure"].max() + every / 2, every)
        arr, dep = d["t_arrival"].to_numpy(), d["t_departure"].to_numpy()
        first = np.searchsorted(ticks, arr, side="left")  # samples a packet is queued at
        last = np.searchsorted(ticks, dep, side="right")
        counts = np.maximum(last - first, 0)
        rows = np.repeat(np.arange(len(d)), counts)
        tick = np.concatenate([np.arange(a, b) for a, b in zip(first, last, strict=True)
                               if b > a]) if counts.sum() else np.zeros(0, int)
        sample = pd.DataFrame({
            "t": np.round(ticks[tick], 9),
            "flow": d["flow"].astype(str).to_numpy()[rows],
            "bucket": d["queue"].fillna(-1).astype("int64").to_numpy()[rows],
            "bytes": d["size"].to_numpy()[rows]})
        g = sample.groupby(["t", "flow", "bucket"], sort=True).agg(
            packets=("bytes", "size"), bytes=("bytes", "sum")).reset_index()
        cols = {k: g[k] for k in cols}
    return conform(cols, "occupancy")
