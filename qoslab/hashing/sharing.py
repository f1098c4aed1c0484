"""Which flows share a queue or class — for one seed, and for every seed.

The seeds are random at runtime, so the exact answer needs the seed. What holds for *every*
seed is decided by the hash input alone: flows whose inputs are equal always share (ICMP
between the same hosts when no ports are hashed, everything inside a tunnel when only the
outer header is read, the XOR-fold collisions of classic SFQ, both directions of a flow from
4.2 on, map mode). For the rest the chance that some pair collides for a random seed is the
birthday bound over the distinct inputs, measured here too by drawing seeds.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..engines.dispatch import dask_aware
from ..errors import ConfigError
from ..labels import flow_labels
from ._packets import string_codes
from .cls_flow import FlowClassifier
from .dissect import Flow
from .fq_codel import FqCodelHash, reciprocal_scale
from .sfq import SfqHash
from .skbhash import consistentify, flow_keys_bytes, hash_flow_bytes, select_rows

__all__ = ["SharingReport", "sharing", "flow_representatives", "birthday_probability",
           "check_trials", "FLOW_COLUMNS", "FLOW_PACKETS", "MAX_TRIALS"]

#: Columns that tell flows apart (those present in the frame are used).
FLOW_COLUMNS = ("ip_version", "src", "dst", "proto", "sport", "dport", "tos", "tunnel",
                "inner_src", "inner_dst", "inner_proto", "inner_sport", "inner_dport",
                "inner_tos", "mark", "priority", "vlan", "flow_label", "spi", "sk_token",
                "route_token", "nfct_token", "iif")


#: The most random seeds :func:`sharing` draws for its collision estimate (``trials``).
MAX_TRIALS = 100_000


def check_trials(trials) -> int:
    """``trials`` if it is a count of random seeds :func:`sharing` accepts, else a ConfigError.

    Examples
    --------
    >>> check_trials(200)
    200
    >>> check_trials(-1)
    Traceback (most recent call last):
    ...
    qoslab.errors.ConfigError: trials -1: expected an integer 0 … 100000 (random seeds for the collision estimate; 0 = none)
    """
    if isinstance(trials, bool) or not isinstance(trials, (int, np.integer)) \
            or not 0 <= trials <= MAX_TRIALS:
        raise ConfigError(f"trials {trials!r}: expected an integer 0 … {MAX_TRIALS} "
                          "(random seeds for the collision estimate; 0 = none)")
    return int(trials)


def birthday_probability(groups: int, classes: int) -> float:
    """P(at least two of ``groups`` independent uniform picks among ``classes`` coincide).

    Examples
    --------
    >>> round(birthday_probability(2, 1024), 6)
    0.000977
    >>> birthday_probability(129, 128)
    1.0
    """
    if groups <= 1:
        return 0.0
    if groups > classes:
        return 1.0
    i = np.arange(groups, dtype=float)
    return float(1.0 - np.exp(np.sum(np.log1p(-i / classes))))


@dataclass
class SharingReport:
    """Result of :func:`sharing`.

    Attributes
    ----------
    flows
        One row per flow: ``flow`` (label), ``packets``, ``cls`` (class/bucket for the given
        seed; -1 = dropped), ``input_group`` (flows with the same number get the same class
        for every seed).
    shared_now, shared_always
        Lists of flow-label groups (size ≥ 2) sharing a class for this seed / for every seed,
        with ``reasons`` for the latter.
    classes
        Number of classes the hash spreads over.
    p_birthday, p_measured
        Probability that any two distinct-input flows collide for a random seed: birthday
        bound, and the fraction of ``trials`` random seeds for which it happened.
    """

    flows: pd.DataFrame
    shared_now: list[list[str]]
    shared_always: list[list[str]]
    reasons: list[str]
    classes: int
    p_birthday: float
    p_measured: float
    trials: int
    deterministic: bool = False
    notes: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        inputs = int(self.flows["input_group"].nunique())
        lines = [f"{_count(len(self.flows), 'flow')}, {_count(inputs, 'distinct hash input')}, "
                 f"{_count(self.classes, 'class', 'classes')}"]
        for grp, why in zip(self.shared_always, self.reasons, strict=True):
            lines.append(f"  always shared, {why}:")
            lines += ["    " + label for label in grp]
        extra = [g for g in self.shared_now if g not in self.shared_always]
        for grp in extra:
            lines.append("  shared with this seed:")
            lines += ["    " + label for label in grp]
        if self.deterministic:
            lines.append("  map mode: classes do not depend on any seed")
        elif inputs < 2:
            lines.append("  one hash input for every flow: no seed can give them different "
                         "classes")
        else:
            measured = (f"{self.p_measured:.3g} measured ({round(self.p_measured * self.trials)}"
                        f" of {self.trials} random seeds)" if self.trials else "not measured")
            lines.append(f"  P(two distinct inputs share a class) = {self.p_birthday:.3g} "
                         f"(birthday bound), {measured}")
        return "\n".join(lines)


def _count(n: int, one: str, many: str | None = None) -> str:
    return f"{n} {one if n == 1 else (many or one + 's')}"


def _flow_ids(packets: pd.DataFrame, cols: list[str]) -> np.ndarray:
    """One integer per distinct combination of ``cols`` (missing values included)."""
    key = np.zeros(len(packets), dtype=np.int64)
    for c in cols:
        codes, cats = string_codes(packets[c])
        key, _ = pd.factorize(key * (len(cats) + 1) + (codes + 1))
        key = key.astype(np.int64)
    return key


def _row_groups(ident: np.ndarray) -> np.ndarray:
    """Group number per row of a 2-D array (equal rows, equal number)."""
    a = np.ascontiguousarray(ident)
    if a.ndim == 1:
        a = a[:, None]
    rows = a.view(np.dtype((np.void, a.dtype.itemsize * a.shape[1]))).ravel()
    return np.unique(rows, return_inverse=True)[1].ravel()


@dataclass
class _Prepared:
    """Consistentified ``flow_keys`` bytes computed once for many seeds."""

    buf: np.ndarray
    lengths: np.ndarray
    flow: Flow


class _Adapter:
    """Uniform view: identity of hash inputs, classes from inputs and a seed."""

    def __init__(self, obj) -> None:
        if callable(getattr(obj, "selector", None)):  # an Sfq / FqCodel spec: its selection
            obj = obj.selector()
        self.obj = obj
        self.sfq_like = isinstance(obj, (SfqHash, FqCodelHash))
        self.clf = obj.classifier if self.sfq_like else obj if isinstance(
            obj, FlowClassifier) else None
        if self.clf is None and not self.sfq_like:
            raise ConfigError("sharing: classifier must be a FlowClassifier, Sfq or FqCodel, "
                              f"got {type(obj).__name__}")
        self.deterministic = self.clf is not None and self.clf.mode == "map"
        if self.clf is not None:
            d = self.clf.divisor
            self.classes = obj.divisor if self.sfq_like else (d if d else 65536)
        else:
            self.classes = obj.divisor

    def inputs(self, packets: pd.DataFrame):
        if self.clf is not None:
            values = self.clf.key_matrix(packets)
            return values, values
        inp = self.obj.hash_inputs(packets)
        if isinstance(inp, Flow):
            prof = self.obj.profile
            f = consistentify(inp, prof.consistentify, self.obj.endianness) \
                if prof.skb_hash == "flow-keys" else consistentify(inp, "unsigned")
            buf, n = flow_keys_bytes(f, prof.flow_keys_layout or "5.18", self.obj.endianness,
                                     prof.vlan_tci_hashed, prof.vlan_prio_bit)
            ident = np.column_stack([buf, n.astype(np.uint8)])
            return ident, _Prepared(buf, n, inp)  # Flow inputs only exist in flow-keys eras
        return inp, inp

    def classes_of(self, payload, rows, seed) -> np.ndarray:
        if self.clf is not None:
            minor = self.clf.finish(self.clf.classid_of(payload[rows], seed)).astype(np.int64)
            if self.sfq_like:
                return np.where((minor >= 1) & (minor <= self.obj.divisor), minor - 1, -1)
            return minor
        if isinstance(payload, _Prepared):
            h = hash_flow_bytes(payload.buf[rows], payload.lengths[rows], seed,
                                self.obj.profile, self.obj.endianness)
            if isinstance(self.obj, FqCodelHash):
                return reciprocal_scale(h, self.obj.flows)
            return (h & (self.obj.divisor - 1)).astype(np.int64)
        sub = select_rows(payload, rows) if isinstance(payload, Flow) else payload[rows]
        return self.obj.hash_buckets(sub, seed)

    def random_seed(self, rng: np.random.Generator):
        prof = (self.clf or self.obj).profile
        if self.clf is None and prof.flow_hash == "siphash" and prof.skb_hash == "flow-keys":
            return rng.bytes(16)
        return int(rng.integers(0, 2**32, dtype=np.uint64))


#: Column of :func:`flow_representatives`: how many packets of the flow its row stands for.
FLOW_PACKETS = "flow_packets"


def flow_representatives(packets: pd.DataFrame, weight: str | None = None) -> pd.DataFrame:
    """The first packet of each flow (distinct :data:`FLOW_COLUMNS` values), in order of
    first appearance, with the flow's packet count in column :data:`FLOW_PACKETS`.

    ``weight`` names a column giving how many packets each row stands for (default 1), so
    the representatives of consecutive pieces of a table, concatenated in order, give with
    ``weight=FLOW_PACKETS`` the representatives of the whole table: what
    :func:`sharing` needs, from one small frame per chunk or Dask partition.

    Examples
    --------
    >>> from qoslab import data_path, read_capture
    >>> pk = read_capture(data_path("captures/tunnel_uploads.pcap"))
    >>> whole = flow_representatives(pk)
    >>> parts = pd.concat([flow_representatives(pk.iloc[:5000]),
    ...                    flow_representatives(pk.iloc[5000:])])
    >>> again = flow_representatives(parts, weight=FLOW_PACKETS)
    >>> again[FLOW_PACKETS].tolist() == whole[FLOW_PACKETS].tolist()
    True
    """
    cols = [c for c in FLOW_COLUMNS if c in packets.columns]
    flow_id = _flow_ids(packets, cols)
    first = np.unique(flow_id, return_index=True)[1]
    weights = None if weight is None else packets[weight].to_numpy(dtype=np.float64)
    counts = np.bincount(flow_id, weights, minlength=len(first))
    reps = packets.iloc[first].copy()
    reps[FLOW_PACKETS] = np.rint(counts).astype(np.int64)
    return reps


@dask_aware("sharing")
def sharing(packets: pd.DataFrame, classifier, *, seed=0, trials: int = 200,
            rng_seed: int | None = 0, weight: str | None = None) -> SharingReport:
    """Which flows share a class/bucket, for ``seed`` and for every seed.

    Parameters
    ----------
    packets
        PACKETS-like frame, or a Dask one (:func:`qoslab.read_captures`,
        ``engine="dask"``: the flows' representatives are found partition by partition
        with :func:`flow_representatives` and combined).
    classifier
        :class:`~qoslab.FlowClassifier`, :class:`~qoslab.Sfq` (with or without an attached
        classifier) or :class:`~qoslab.hashing.FqCodel` (or their selections,
        :class:`SfqHash` / :class:`FqCodelHash`).
    seed
        The seed for the "this seed" answer (cls_flow ``hashrnd``, SFQ perturbation, flow
        hash key).
    trials
        Random seeds drawn to measure the collision probability (0 … :data:`MAX_TRIALS`;
        0 = no estimate).
    weight
        Column giving how many packets each row stands for (default: one each), e.g.
        :data:`FLOW_PACKETS` of combined :func:`flow_representatives`.

    Examples
    --------
    >>> import pandas as pd
    >>> base = {"ip_version": 4, "proto": 6, "tos": 0, "frag": False, "tunnel": "none",
    ...         "inner_src": None, "inner_dst": None, "inner_proto": None,
    ...         "inner_sport": None, "inner_dport": None}
    >>> pk = pd.DataFrame([
    ...     {**base, "src": "10.0.0.1", "dst": "192.0.2.9", "sport": 40000, "dport": 80},
    ...     {**base, "src": "10.0.0.2", "dst": "192.0.2.9", "sport": 40000, "dport": 83},
    ...     {**base, "src": "10.0.0.3", "dst": "192.0.2.9", "sport": 40001, "dport": 80}])
    >>> from qoslab import Sfq
    >>> rep = sharing(pk, Sfq(profile="classic-2.6.3x"))
    >>> rep.shared_always
    [['tcp 10.0.0.1:40000 > 192.0.2.9:80', 'tcp 10.0.0.2:40000 > 192.0.2.9:83']]
    >>> rep.reasons
    ['XOR-fold of saddr ^ proto ^ ports: different flows, same hash input']
    """
    ad = _Adapter(classifier)
    trials = check_trials(trials)
    if not len(packets):
        raise ConfigError("sharing: packets is empty")
    if weight is not None and weight not in packets.columns:
        raise ConfigError(f"sharing: weight column {weight!r} is not in packets")
    reps = flow_representatives(packets, weight)
    counts = reps.pop(FLOW_PACKETS).to_numpy()
    ident, payload = ad.inputs(reps)
    input_group = _row_groups(np.asarray(ident))
    rows = np.arange(len(reps))
    cls = ad.classes_of(payload, rows, seed)
    labels = flow_labels(reps).tolist()
    flows = pd.DataFrame({"flow": labels, "packets": counts, "cls": cls,
                          "input_group": input_group})
    kept = flows[flows["cls"] >= 0]
    sizes = kept.groupby("cls")["flow"].transform("size")
    now = kept[sizes > 1].groupby("cls")["flow"].agg(list).tolist()
    gsize = flows.groupby("input_group")["flow"].transform("size")
    always, reasons = [], []
    for _, g in flows[gsize > 1].groupby("input_group"):
        always.append(list(g["flow"]))
        reasons.append(_reason(ad, reps.iloc[g.index.to_numpy()]))
    if ad.deterministic:
        always = now
        reasons = ["map mode: the class is a fixed function of the key"] * len(now)
    distinct = int(input_group.max()) + 1
    # one representative per distinct input
    uniq_rows = pd.Series(rows).groupby(input_group).first().to_numpy()
    rng = np.random.default_rng(rng_seed)
    hits = 0
    if distinct > ad.classes:  # pigeonhole: some pair collides for every seed
        hits = trials
    elif not ad.deterministic and distinct > 1:
        for _ in range(trials):
            c = ad.classes_of(payload, uniq_rows, ad.random_seed(rng))
            c = c[c >= 0]
            hits += len(np.unique(c)) < len(c)
    notes = []
    if ad.clf is None and getattr(classifier.profile, "skb_hash", None) == "flow-keys":
        notes.append("a hash already on the skb (NIC RSS, socket txhash) makes fq_codel "
                     "≥ 4.12 unpredictable; SFQ always re-dissects")
    return SharingReport(flows, now, always, reasons, ad.classes,
                         0.0 if ad.deterministic else birthday_probability(distinct, ad.classes),
                         hits / trials if trials and not ad.deterministic else 0.0,
                         trials if not ad.deterministic else 0, ad.deterministic, notes)


def _reason(ad: _Adapter, group: pd.DataFrame) -> str:
    def tup(r, rev=False):
        a = (str(r.get("src")), str(r.get("dst")), str(r.get("sport")), str(r.get("dport")))
        return (a[1], a[0], a[3], a[2]) if rev else a
    rows = [r for _, r in group.iterrows()]
    if len(rows) == 2 and tup(rows[0]) == tup(rows[1], rev=True) and tup(rows[0]) != tup(rows[1]):
        return "both directions of one flow (direction-independent hash)"
    prof = (ad.clf or ad.obj).profile
    if ad.clf is None and prof.sfq in ("fold", "jhash-2words"):
        five = {(r.get("src"), r.get("proto"), r.get("sport"), r.get("dport")) for r in rows}
        if len(five) > 1 and len({str(r.get("dst")) for r in rows}) == 1:
            return "XOR-fold of saddr ^ proto ^ ports: different flows, same hash input"
    tunnelled = "tunnel" in group and (group["tunnel"].astype(str) != "none").all()
    inner = {tuple(str(r.get(c)) for c in ("inner_src", "inner_dst", "inner_proto",
                                           "inner_sport", "inner_dport")) for r in rows}
    reads_outer = prof.clsflow != "dissector" if ad.clf is not None else \
        prof.sfq in ("fold", "jhash-2words")
    if tunnelled and reads_outer and len(inner) > 1:
        return "same hash input: the kernel reads only the outer header of the tunnel"
    return "same hash input (fields the kernel does not hash differ, e.g. TOS or ICMP id)"
