"""Loads through a real shaped bottleneck, and the kernel feature probe."""

from __future__ import annotations

import pytest

from qoslab.errors import KernelFeatureMissing
from tests.conftest import need_root, need_tool

pytestmark = pytest.mark.netns

RATE = 4e6  # the HTB rate the loads below are shaped to


def _shaped_bed():
    from qoslab.lab import Testbed
    from qoslab.qdiscs import Htb, HtbClass, Pfifo

    tb = Testbed(router=True)
    tb.__enter__()
    try:
        tb.apply(Htb(classes=(HtbClass("1:10", "4mbit", leaf=Pfifo(limit=50)),), default=0x10), "router")
    except BaseException:
        tb.close()
        raise
    return tb


@pytest.mark.parametrize("backend", ["builtin", "iperf3"])
def test_tcp_bulk_fills_the_shaped_rate(backend):
    need_root()
    if backend == "iperf3":
        need_tool("iperf3")
    tb = _shaped_bed()
    try:
        load = tb.tcp_bulk(duration=2, backend=backend)
        load.wait(60)
        load.finish()
    finally:
        tb.close()
    (rec,) = tb.meta["loads"]
    assert rec["backend"] == backend
    got = rec["sender"]["received_rate_bps"] if backend == "iperf3" else rec["sink"]["rate_bps"]
    # TCP goodput through a 4 mbit HTB: headers (~4 %) and slow start keep it a bit below
    assert 0.7 * RATE <= got <= 1.05 * RATE, got


def test_udp_flood_is_cut_to_the_shaped_rate_and_the_rest_is_dropped():
    need_root()
    tb = _shaped_bed()
    try:
        load = tb.udp_flood("6mbit", size=1000, duration=2.5)
        load.wait(60)
        load.finish()
        snap = tb.snapshot("after", "router")
    finally:
        tb.close()
    (rec,) = tb.meta["loads"]
    sent, sink = rec["sender"], rec["sink"]
    assert 0.9 * 6e6 <= sent["rate_bps"] <= 1.1 * 6e6
    # HTB counts 1014 bytes per 1000-byte IP packet; the sink sees 972-byte payloads
    expected = RATE * 972 / 1014
    assert 0.8 * expected <= sink["payload_rate_bps"] <= 1.1 * expected
    leaf_q = next(q for q in snap["qdiscs"] if q["kind"] == "pfifo")
    assert leaf_q["drops"] > 0.2 * sent["sent"]  # a third of the flood cannot pass
    assert leaf_q["packets"] + leaf_q["drops"] + leaf_q["qlen"] >= sink["received"]


def test_probe_matches_what_tc_accepts_and_missing_kinds_are_refused_up_front():
    need_root()
    from qoslab.lab import Testbed
    from qoslab.lab.probe import QDISC_PROBES, kernel_features, supported
    from qoslab.lab.tc import Qdisc, Shaping, TcClass

    def htb_with(kind):  # the probe's own options for KIND, as a leaf of a 1 Mbit/s HTB class
        return Shaping((Qdisc("htb", handle="1:", options=("default", "10")),
                        Qdisc(kind, parent="1:10", handle="10:", options=QDISC_PROBES[kind])),
                       (TcClass("1:10", "1:", "htb", ("rate", "1mbit")),))

    features = kernel_features()
    assert features["qdisc"]["htb"] and features["qdisc"]["pfifo"]
    have = [k for k, ok in features["qdisc"].items() if ok and k != "htb"]
    missing = [k for k, ok in features["qdisc"].items() if not ok]
    with Testbed() as tb:
        for kind in have:  # every kind the probe reports works as an HTB leaf here too
            tb.apply(htb_with(kind), "client")
        if not missing:
            pytest.skip("this kernel has every qdisc the lab probes for")
        kind = missing[0]
        before = list(tb.commands)
        with pytest.raises(KernelFeatureMissing, match=rf"qdisc '{kind}'.*sch_|{kind}"):
            tb.apply(htb_with(kind), "client")
        assert tb.commands == before  # refused before any tc command ran
    assert not supported("qdisc", [kind])[kind].available
