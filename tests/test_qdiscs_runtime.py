"""Runtime qdisc semantics (qoslab.qdiscs), driven packet by packet (no event loop)."""

from __future__ import annotations

import math

import pytest

from qoslab.errors import ConfigError
from qoslab.qdiscs import (
    BuildContext,
    FlowTable,
    FqCodel,
    Htb,
    HtbClass,
    Pfifo,
    PfifoFast,
    Prio,
    Sfq,
    U32Filter,
    U32Match,
    build,
    new_packet,
)
from qoslab.sim import Link, PingFlood, PingStream, TokenBucket
from qoslab.sim.traffic import BulkFlow, flow_frame

MTU = 1514


class Sink:
    """Stands in for a source: records the packets dropped."""

    def __init__(self):
        self.dropped = []

    def on_drop(self, pkt, t):
        self.dropped.append(pkt)


def ctx_for(specs, seeds=(0,)):
    return BuildContext(FlowTable(flow_frame(specs)), seeds=list(seeds))


def pkt(fid, sink, size=MTU, t=0.0, seq=0):
    return new_packet(fid, size, t, seq, sink)


def drain(q, t=0.0):
    out = []
    while (p := q.dequeue(t)) is not None:
        out.append(p)
    return out


def test_pfifo_tail_drops_beyond_limit():
    sink = Sink()
    q = build(Pfifo(limit=3), ctx_for([PingStream("10.0.0.2")]))
    for i in range(5):
        q.enqueue(pkt(0, sink, seq=i), 0.0)
    assert [p[3] for p in drain(q)] == [0, 1, 2]
    assert [p[3] for p in sink.dropped] == [3, 4]


@pytest.mark.parametrize(("profile", "band"), [("classic-2.6.3x", 2), ("5.18+", 1)])
def test_pfifo_fast_bands_and_strict_priority(profile, band):
    """The old ip_tos2prio (classic) sends ECT(0) to band 2, the fixed one to band 1."""
    specs = [BulkFlow("10.0.9.1", ecn=True), PingStream("10.0.1.1", tos=0x10),
             PingStream("10.0.2.1", tos=0x00)]
    q = build(PfifoFast(profile=profile), ctx_for(specs))
    assert q.band_of == [band, 0, 1]
    table = "old" if profile == "classic-2.6.3x" else "new"
    sink = Sink()
    for fid in (0, 2, 1):
        q.enqueue(pkt(fid, sink), 0.0)
    order = [p[0] for p in drain(q)]
    assert order[0] == 1  # TOS 0x10 (low delay) is band 0
    assert order[1:] == ([2, 0] if table == "old" else [0, 2])


@pytest.mark.parametrize(("txqueuelen", "batch"), [(100, 16), (20, 1)])
def test_pfifo_fast_band_frees_its_ring_slots_a_batch_at_a_time(txqueuelen, batch):
    """4.16+: a band is a ptr_ring of txqueuelen slots whose consumer frees read slots 16 at
    a time (one at a time in a ring under 32 slots): a full band takes a new packet only when
    a batch has been read. The kernel's band 1 under a flood on a 100-packet device holds
    85-100 packets (measured: pfifo_fast_tos on the kernel backend, ~87 on average)."""
    from qoslab.qdiscs.pfifo_fast import RING_BATCH

    assert RING_BATCH == 16
    sink = Sink()
    ctx = BuildContext(FlowTable(flow_frame([PingStream("10.0.2.1")])), seeds=[0],
                       txqueuelen=txqueuelen)
    q = build(PfifoFast(profile="5.18+"), ctx)
    seq = iter(range(10**6))
    for _ in range(txqueuelen + 1):
        q.enqueue(pkt(0, sink, seq=next(seq)), 0.0)
    assert q.qlen == txqueuelen and len(sink.dropped) == 1
    for read in range(1, batch + 1):
        assert q.dequeue(0.0) is not None
        q.enqueue(pkt(0, sink, seq=next(seq)), 0.0)
        freed = read == batch  # the batch's last read frees its slots
        assert len(sink.dropped) == 1 + read - freed, read  # each refused until freed
    assert q.qlen == txqueuelen - batch + 1
    for _ in range(batch):
        q.enqueue(pkt(0, sink, seq=next(seq)), 0.0)
    assert q.qlen == txqueuelen  # the freed slots took new packets, one more is refused
    classic = build(PfifoFast(profile="classic-2.6.3x"), ctx)  # one list, no ring
    for _ in range(txqueuelen):
        classic.enqueue(pkt(0, sink), 0.0)
    classic.dequeue(0.0)
    before = len(sink.dropped)
    classic.enqueue(pkt(0, sink), 0.0)
    assert len(sink.dropped) == before and classic.qlen == txqueuelen


def _sfq(profile, limit=20):
    specs = [PingFlood("10.0.9.1"), PingStream("10.0.1.1"), PingStream("10.0.2.1")]
    q = build(Sfq(limit=limit, profile=profile), ctx_for(specs))
    q.bucket_of = [100, 200, 300]  # pin the buckets; the hash itself is tested in hashing
    return q


def _free_slot(q):
    """The slot the next new flow gets: head of the depth-0 list (LIFO)."""
    return q.dep_next[q.NONE] if hasattr(q, "NONE") else q.dep_next[q.slots]


def _stale_allot_run(profile, n_pings=20):
    """Flood backlogged; ``n_pings`` pings pass through; the flood moves; count its head
    start."""
    sink = Sink()
    q = _sfq(profile)
    for i in range(6):
        q.enqueue(pkt(0, sink, seq=i), 0.0)
    seq = 6
    for _ in range(n_pings):
        q.enqueue(pkt(1, sink, size=98), 0.0)
        while True:
            p = q.dequeue(0.0)
            if p[0] == 0:  # keep the flood backlogged
                q.enqueue(pkt(0, sink, seq=seq), 0.0)
                seq += 1
            else:
                break
    old_slot = q.ht[100]
    ping_slot_free = _free_slot(q)
    q.bucket_of = [101, 200, 300]  # a perturbation moved the flood
    for _ in range(12):
        q.enqueue(pkt(0, sink, seq=seq), 0.0)
        seq += 1
    new_slot = q.ht[101]
    q.enqueue(pkt(2, sink, size=98), 0.0)
    served_new_first = 0
    while True:
        p = q.dequeue(0.0)
        if p[0] == 2:
            break
        if p[0] == 0 and p[3] >= seq - 12:
            served_new_first += 1
            q.enqueue(pkt(0, sink, seq=seq), 0.0)
            seq += 1
    return old_slot, ping_slot_free, new_slot, served_new_first


def test_classic_sfq_new_flow_inherits_stale_allotment():
    old_slot, ping_slot, new_slot, served = _stale_allot_run("classic-2.6.3x")
    assert new_slot == ping_slot != old_slot  # LIFO free list: the ping's emptied slot
    # each ping left one quantum in that slot (20 x 1514 bytes): the moved flood is served
    # alone for about 20 packets
    assert 18 <= served <= 21


def test_classic_sfq_allotment_is_a_16_bit_short_and_wraps():
    """30 pings would leave 45420 bytes; 2.6.32's ``short allot`` wraps that to -20116, so
    the moved flood gets no head start at all."""
    *_, served = _stale_allot_run("classic-2.6.3x", n_pings=30)
    assert served <= 1


def test_2_6_38_sfq_new_flow_gets_one_quantum():
    *_, served = _stale_allot_run("2.6.37-3.2")
    assert served <= 2


def test_classic_sfq_limit_drops_from_longest_slot_tail():
    sink = Sink()
    q = _sfq("classic-2.6.3x", limit=5)
    for i in range(5):
        q.enqueue(pkt(0, sink, seq=i), 0.0)
    q.enqueue(pkt(1, sink, seq=99), 0.0)
    assert [p[3] for p in sink.dropped] == [4]  # tail of the flood's slot
    assert q.qlen == 5
    q.enqueue(pkt(0, sink, seq=5), 0.0)
    # queued at the tail of the longest slot, then dropped from there as the total overflows
    assert [p[3] for p in sink.dropped] == [4, 5]
    assert sum(len(s) for s in q.qs) == 5


def test_modern_sfq_headdrop_drops_oldest():
    specs = [PingFlood("10.0.9.1")]
    q = build(Sfq(limit=50, depth=3, headdrop=True, profile="5.18+"), ctx_for(specs))
    sink = Sink()
    for i in range(5):
        q.enqueue(pkt(0, sink, seq=i), 0.0)
    assert [p[3] for p in sink.dropped] == [0, 1]
    assert [p[3] for p in drain(q)] == [2, 3, 4]


def test_modern_sfq_rehash_moves_queued_packets_classic_does_not():
    for profile, moved in (("5.18+", True), ("classic-2.6.3x", False)):
        specs = [PingFlood("10.0.9.1"), PingStream("10.0.1.1")]
        q = build(Sfq(limit=20, perturb=5, profile=profile), ctx_for(specs, seeds=[1, 2, 3]))
        sink = Sink()
        for i in range(4):
            q.enqueue(pkt(0, sink, seq=i), 0.0)
        before = q.bucket_of[0]
        q.on_hash_change(1, 5.0)
        after = q.bucket_of[0]
        assert before != after
        occupied = {b for b, pkts in q.snapshot()}
        assert occupied == ({after} if moved else {before})


def test_sfq_classifier_out_of_range_drops():
    from qoslab.hashing import FlowClassifier

    specs = [PingStream("10.0.1.1"), PingStream("10.0.2.1")]
    # no divisor: minor = 1 + hash (mod 2**16) mostly exceeds the SFQ divisor -> dropped
    cls = FlowClassifier("dst", mode="map", addend=5000, profile="5.18+")
    q = build(Sfq(limit=20, classifier=cls), ctx_for(specs))
    sink = Sink()
    q.enqueue(pkt(0, sink), 0.0)
    assert q.bucket_of[0] == -1 and len(sink.dropped) == 1 and q.qlen == 0


def test_fq_codel_serves_sparse_flow_first_and_controls_standing_queue():
    specs = [BulkFlow("10.0.9.1"), PingStream("10.0.1.1")]
    q = build(FqCodel(flows=1024), ctx_for(specs))
    if q.flow_of[0] == q.flow_of[1]:
        q.flow_of = [0, 1]
    sink = Sink()
    # a standing queue of the bulk flow served at 1 packet / 12 ms, refilled each time
    t, served, seq = 0.0, 0, 0
    for _ in range(40):
        q.enqueue(pkt(0, sink, t=t, seq=seq), t)
        seq += 1
    q.enqueue(pkt(1, sink, t=t, size=98), t)
    first = q.dequeue(t)
    assert first[0] == 0  # the bulk flow was new first, with a quantum ...
    second = q.dequeue(t)
    assert second[0] == 1  # ... then the ping's new flow is served before old flows
    while t < 3.0:
        t += 0.012
        if q.dequeue(t) is not None:
            served += 1
        q.enqueue(pkt(0, sink, t=t, seq=seq), t)
        seq += 1
    # sojourn stayed above 5 ms for over 100 ms: CoDel dropped, at a growing rate
    assert len(sink.dropped) >= 5
    assert q.marks == 0


def test_fq_codel_marks_ect_packets_instead_of_dropping():
    specs = [BulkFlow("10.0.9.1", ecn=True)]
    q = build(FqCodel(), ctx_for(specs))
    assert q.ect == [True]
    sink = Sink()
    t, seq = 0.0, 0
    for _ in range(40):
        q.enqueue(pkt(0, sink, t=t, seq=seq), t)
        seq += 1
    marked = []
    while t < 3.0:
        t += 0.012
        p = q.dequeue(t)
        if p is not None and p[4]:
            marked.append(p)
        q.enqueue(pkt(0, sink, t=t, seq=seq), t)
        seq += 1
    assert len(marked) >= 5 and q.marks == len(marked)
    assert sink.dropped == []


@pytest.mark.parametrize("mode", ["htb", "tbf"])
def test_token_bucket_rate(mode):
    specs = [PingFlood("10.0.9.1")]
    tb = TokenBucket(rate=1_000_000, mode=mode)
    root = build(tb.wrap(Pfifo(limit=10_000)), ctx_for(specs))
    sink = Sink()
    for i in range(2000):
        root.enqueue(pkt(0, sink, seq=i), 0.0)
    t, sent = 0.0, 0
    while t < 10.0:
        p = root.dequeue(t)
        if p is None:
            t = root.next_wake
            continue
        sent += p[1]
        t += p[1] * 8 / 100e6  # a 100 Mbit/s line under the shaper
    rate = (sent - 1600) * 8 / t  # minus tc's default burst
    assert rate == pytest.approx(1_000_000, rel=0.01)


@pytest.mark.parametrize(("lo_rate", "hi_expected"), [(800_000, 200_000), (300_000, 700_000)])
def test_htb_rates_and_borrowing(lo_rate, hi_expected):
    """Both classes backlogged: each gets its rate; the spare goes to the prio-0 class."""
    specs = [PingFlood("10.0.9.1"), PingFlood("10.0.1.1")]
    tree = Htb(classes=(
        HtbClass("1:1", 1_000_000),
        HtbClass("1:10", 200_000, ceil=1_000_000, prio=0, parent="1:1"),
        HtbClass("1:20", lo_rate, ceil=1_000_000, prio=1, parent="1:1")),
        default=0x20, filters=(U32Filter.from_tc("u32 match ip dst 10.0.1.1/32 flowid 1:10"),))
    q = build(tree, ctx_for(specs))
    sink = Sink()
    for i in range(3000):
        q.enqueue(pkt(0, sink, seq=i), 0.0)
        q.enqueue(pkt(1, sink, seq=i), 0.0)
    t, sent = 0.0, [0, 0]
    while t < 10.0:
        p = q.dequeue(t)
        if p is None:
            t = q.next_wake
            continue
        sent[p[0]] += p[1]
        t += p[1] * 8 / 100e6
    lo, hi = (b * 8 / t for b in sent)
    assert hi + lo == pytest.approx(1_000_000, rel=0.02)
    assert hi == pytest.approx(hi_expected, rel=0.03)
    assert lo == pytest.approx(1_000_000 - hi_expected, rel=0.03)


def test_bad_configs_raise_config_error():
    with pytest.raises(ConfigError, match="limit"):
        Sfq(limit=1)
    with pytest.raises(ConfigError, match="divisor"):
        Sfq(divisor=1000)
    with pytest.raises(ConfigError, match="rate"):
        Link(rate=0)
    with pytest.raises(ConfigError, match="profile"):
        PfifoFast(profile="older")
    assert math.isclose(Link(rate=1e6, delay=0.01).base_rtt(98), 0.02)


def test_tbf_waits_for_the_whole_packet_htb_goes_negative():
    """TBF needs the head packet's bytes in the bucket; HTB sends at >= 0 tokens."""
    specs = [PingFlood("10.0.9.1")]
    sink = Sink()
    starts = {}
    for mode in ("tbf", "htb"):
        root = build(TokenBucket(rate=8_000, burst=2000, mode=mode).wrap(Pfifo()),
                     ctx_for(specs))
        for i in range(3):
            root.enqueue(pkt(0, sink, seq=i), 0.0)
        t, times = 0.0, []
        while len(times) < 3:
            p = root.dequeue(t)
            if p is None:
                t = root.next_wake
                continue
            times.append(t)
        starts[mode] = times
    # 1000 bytes/s: after the first 1514 bytes, 486 tokens are left
    assert starts["tbf"] == pytest.approx([0.0, 1.028, 2.542], abs=1e-6)
    assert starts["htb"] == pytest.approx([0.0, 0.0, 1.028], abs=1e-6)


def test_prio_bands_by_tos_and_by_filter():
    specs = [BulkFlow("10.0.9.1"), PingStream("10.0.1.1", tos=0x10), PingStream("10.0.2.1")]
    sink = Sink()
    by_tos = build(Prio(), ctx_for(specs))
    icmp = U32Filter("1:1", (U32Match("protocol", 1, 0xFF),))
    by_match = build(Prio(bands=2, priomap=(1,) * 16, children=(Pfifo(), Pfifo()),
                          filters=(icmp,)), ctx_for(specs))
    for q, expected in ((by_tos, [1, 0, 2]), (by_match, [2, 1, 0])):
        for fid in (0, 2, 1):
            q.enqueue(pkt(fid, sink), 0.0)
        assert [p[0] for p in drain(q)] == expected
        assert q.qlen == 0


def test_sfq_priority_override_picks_the_bucket():
    specs = [PingStream("10.0.1.1", priority=0x10000 + 7), PingStream("10.0.2.1"),
             PingStream("10.0.3.1", priority=0x20000 + 7)]
    q = build(Sfq(limit=20, profile="5.18+"), ctx_for(specs), handle="1:")
    assert q.bucket_of[0] == 6  # minor 7 of handle 1: -> bucket 6
    plain = build(Sfq(limit=20, profile="5.18+"),
                  ctx_for([PingStream("10.0.1.1"), PingStream("10.0.2.1"),
                           PingStream("10.0.3.1")]), handle="1:")
    assert q.bucket_of[1:] == plain.bucket_of[1:]  # no or another major: hashed as usual


def test_fq_codel_overflow_drops_half_of_the_fattest_flow():
    specs = [BulkFlow("10.0.9.1"), PingStream("10.0.1.1")]
    q = build(FqCodel(limit=20, flows=1024), ctx_for(specs))
    q.flow_of = [0, 1]
    sink = Sink()
    for i in range(3):
        q.enqueue(pkt(1, sink, size=98, seq=100 + i), 0.0)
    for i in range(18):
        q.enqueue(pkt(0, sink, seq=i), 0.0)
    # the 21st packet overflows: the bulk flow (18 x 1514 bytes) loses its oldest half
    assert [p[3] for p in sink.dropped] == list(range(9))
    assert all(p[0] == 0 for p in sink.dropped)
    assert q.qlen == 12


def test_occupancy_needs_samples():
    from qoslab import Run
    from qoslab.sim import occupancy

    with pytest.raises(ConfigError, match="occupancy"):
        occupancy(Run())


def test_a_shared_flow_table_never_serves_a_runtime_another_ones_answer():
    """Runtimes cache per-flow answers in their FlowTable under their own key; a table that
    outlives its runtimes (a harness, a long-lived datapath) must not give a new runtime the
    answer of a dead one whose object address it happens to reuse."""
    specs = [PingStream("10.0.0.2", tos=0x10), PingStream("10.0.0.3", tos=0x00)]
    ctx = ctx_for(specs)
    two_classes = Htb(classes=(HtbClass("1:10", 1e6), HtbClass("1:20", 1e6)), default=0x10,
                      filters=(U32Filter("1:20", (U32Match("tos", 0x10, 0xFF),)),))
    seen = set()
    for k in range(50):  # alternate two trees: addresses of dead runtimes get reused
        spec = two_classes if k % 2 else Htb(classes=(HtbClass("1:10", 1e6),), default=0x10)
        q = build(spec, ctx)
        assert q.uid not in seen
        seen.add(q.uid)
        fresh = build(spec, ctx_for(specs))  # its own table: nothing cached
        assert q.class_of == fresh.class_of, k
        del q, fresh
