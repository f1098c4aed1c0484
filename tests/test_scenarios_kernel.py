"""Scenarios on the real kernel (the ``kernel`` backend): pfifo_fast's TOS bands,
bufferbloat, what a lab RUN holds, and the same declaration on the simulator and the kernel.

These build namespaces, shape with tc and flood a 2 mbit bottleneck; the effects asserted are
one to two orders of magnitude, so a loaded machine cannot blur them: a full 100-packet band of
1000-byte packets is ~400 ms at 2 mbit while one packet is 4 ms; a 1000-packet pfifo of
500-byte packets is ~2 s while a 10-packet one is ~20 ms.
"""

from __future__ import annotations

import numpy as np
import pytest

import qoslab
from tests.conftest import need_root

pytestmark = pytest.mark.netns


def _by_id(run: qoslab.Run) -> dict[str, np.ndarray]:
    """RTTs (answered probes) per ping TOS, keyed like ``tos10``."""
    p = run.probes
    ids = "tos" + p["tos"].astype(int).map("{:02x}".format)
    return {i: p.loc[(ids == i) & (p["status"] == "ok"), "rtt_ms"].to_numpy(float)
            for i in ids.unique()}


def _pfifo_fast_tos(**kw):
    from qoslab.scenarios import get

    return get("pfifo_fast_tos").run("kernel", **kw)


def test_pfifo_fast_tos_bands_on_two_namespaces_joined_by_veth():
    """The seed's TOS figure on the real kernel (issue 5's first 'must show')."""
    need_root()
    # 0x10/0x00/0x08 are the seed's figure; 0x02, 0x14 and 0x1c check qoslab's TOS->band
    # model against the kernel (0x02 is where the pre-ECN table differed: band 2, not 1)
    run = _pfifo_fast_tos(count=30, router=False, tos=(0x10, 0x00, 0x08, 0x02, 0x14, 0x1c))
    rtt = _by_id(run)
    assert len(rtt["tos10"]) >= 25, "band 0 pings must get through the flood"
    assert len(rtt["tos00"]) >= 3
    fast, normal = np.median(rtt["tos10"]), np.median(rtt["tos00"])
    assert fast * 10 <= normal, (fast, normal)
    # 0x08 (band 2) is starved while band 1 is never empty, or at least the slowest
    assert len(rtt["tos08"]) == 0 or np.median(rtt["tos08"]) >= normal
    # every stream behaves as the band qoslab.hashing predicts for its TOS
    def measured_band(r: np.ndarray) -> int:
        if len(r) == 0 or np.median(r) >= 1.5 * normal:
            return 2
        return 0 if np.median(r) * 10 <= normal else 1
    measured = {i: measured_band(r) for i, r in rtt.items()}
    model = {f"tos{int(name.split('tos=')[1][2:4], 16):02x}": band
             for name, band in run.meta["model_band"].items()}
    assert measured == model
    assert model["tos02"] == 1
    # band 1 waits behind ~txqueuelen packets: the predicted drain time, within a factor 2
    predicted = run.meta["predicted_band1_delay_ms"]
    assert predicted / 2 <= normal <= predicted * 2, (normal, predicted)
    # the topology and the recorded configuration are what the issue asks for
    lab = run.meta["lab"]
    assert lab["topology"] == "direct" and set(lab["namespaces"]) == {"client", "server"}
    (shaping,) = lab["shaping"]["client"]
    assert shaping["commands"][0].endswith("htb default 10")
    assert any("pfifo_fast" in c for c in shaping["commands"])
    during = next(s for s in lab["tc_snapshots"] if s["label"] == "during")
    leaf_q = next(q for q in during["qdiscs"] if q["kind"] == "pfifo_fast")
    assert leaf_q["qlen"] >= 50  # the flood keeps band 1 (limit txqueuelen=100) full
    assert run.meta["lab"]["loads"][0]["sender"]["tos"] == 0


def test_pfifo_fast_ignores_the_ipv6_traffic_class(tmp_path):
    """pfifo_fast selects bands by skb->priority; IPV6_TCLASS sets none (IP_TOS does), so
    over IPv6 a traffic class of 0x10 waits in band 1 with 0x00. The capture proves the
    class really was on the wire."""
    need_root()
    from qoslab.capture import read_capture

    run = _pfifo_fast_tos(count=20, family=6, tos=(0x10, 0x00),
                          capture=str(tmp_path / "c.pcap"))
    rtt = _by_id(run)
    fast, normal = np.median(rtt["tos10"]), np.median(rtt["tos00"])
    predicted = run.meta["predicted_band1_delay_ms"]
    assert fast >= predicted / 3 and normal >= predicted / 3, (fast, normal, predicted)
    assert 0.5 <= fast / normal <= 2
    packets = read_capture(tmp_path / "c.pcap")
    requests = packets[(packets["ip_version"] == 6) & (packets["icmp_type"] == 128)]
    assert set(requests["tos"].dropna().astype(int)) == {0x10, 0x00}


@pytest.fixture(scope="module")
def bufferbloat_run(tmp_path_factory):
    need_root()
    from qoslab.scenarios import get

    d = tmp_path_factory.mktemp("bufferbloat")
    run = get("bufferbloat").run("kernel", switch_at=6.0, duration=9.0,
                                 capture=str(d / "bb.pcap"), path=str(d / "bb.json.gz"))
    return run, d


def _phase_rtts(run: qoslab.Run) -> list[np.ndarray]:
    p = run.probes
    out = []
    for ph in run.meta["phases"]:
        sel = (p["t_sent"] >= ph["t_start"]) & (p["t_sent"] < ph["t_end"]) & (p["status"] == "ok")
        out.append(p.loc[sel, "rtt_ms"].to_numpy(float))
    return out


def test_bufferbloat_long_queue_is_ten_times_the_short_one_and_tc_agrees(bufferbloat_run):
    run, _ = bufferbloat_run
    long_q, short_q = run.meta["phases"]
    long_rtt, short_rtt = _phase_rtts(run)
    assert len(long_rtt) >= 3 and len(short_rtt) >= 3
    assert np.median(long_rtt) >= 10 * np.median(short_rtt)
    # tc -s at the end of each phase: the long queue is full and its backlog, drained at the
    # shaping rate, is the delay the pings saw; the short queue drops
    rate_bps = 2e6
    assert long_q["tc"]["qlen"] >= 0.8 * long_q["limit"]
    backlog_delay_ms = long_q["tc"]["backlog"] * 8 / rate_bps * 1000
    assert backlog_delay_ms / 1.5 <= np.median(long_rtt) <= backlog_delay_ms * 1.5
    assert short_q["tc"]["qlen"] <= short_q["limit"]
    assert short_q["tc"]["drops"] > 0
    assert short_q["tc"]["backlog"] * 8 / rate_bps * 1000 <= 3 * np.median(short_rtt) + 10
    # the switch is an EVENT at the phase boundary, and the sampled backlog falls across it
    change = run.events[(run.events["kind"] == "config_change")
                        & run.events["detail"].str.endswith("-> pfifo limit 10")]
    assert len(change) == 1
    assert abs(float(change["t"].iloc[0]) - long_q["t_end"]) < 0.5
    samples = run.meta["lab"]["tc_samples"]["router"]
    t = np.array(samples["t"], float) - run.meta["scenario_t0_on_bed_clock"]
    qlen = np.array([np.nan if v is None else v for v in samples["qlen"]], float)
    is_leaf = np.array([k == "pfifo" for k in samples["kind"]])
    before = qlen[is_leaf & (t > long_q["t_start"] + 1) & (t < long_q["t_end"] - 0.3)]
    after = qlen[is_leaf & (t > long_q["t_end"] + 0.5) & (t < short_q["t_end"] - 0.3)]
    assert before.size and after.size
    assert np.median(before) >= 500 and after.max() <= short_q["limit"]


def test_lab_run_file_reloads_and_plots_like_a_simulated_run(bufferbloat_run):
    run, d = bufferbloat_run
    from qoslab.analysis import summarize
    from qoslab.plots import cdf, latency, pingexp_figure
    from qoslab.sim.scenarios import bufferbloat as sim_bufferbloat

    path = d / "bb.json.gz"
    assert path.exists() and not (d / "bb.json.gz.partial").exists()
    again = qoslab.load(path)
    assert again.meta["source"] == "qoslab-lab" and again.meta["scenario"] == "bufferbloat"
    assert again.meta["backend"] == "kernel"
    np.testing.assert_array_equal(again.probes["rtt_ms"].to_numpy(float),
                                  run.probes["rtt_ms"].to_numpy(float))
    assert list(again.events["kind"]) == list(run.events["kind"])
    sim = sim_bufferbloat(duration=5.0)
    for r in (again, sim):
        table = summarize(r)
        assert {"median", "loss_pct"} <= set(table.columns) and len(table) >= 1
        for fig in (latency(r), latency(r, kind="line"), pingexp_figure(r), cdf(r)):
            assert fig.axes and any(ax.has_data() for ax in fig.axes)


def test_capture_during_the_run_holds_the_echo_pairs_and_agrees_with_the_runner(
        bufferbloat_run):
    """tcpdump on the router's client-side interface sees each request before the bottleneck
    queue and its reply on the way back, so the capture times the same queueing delay."""
    run, d = bufferbloat_run
    from qoslab.capture import echo_rtts, read_capture

    packets = read_capture(d / "bb.pcap")
    server = "10.0.1.1"  # the scenario's ping target, given to the server namespace
    requests = packets[(packets["icmp_type"] == 8) & (packets["dst"] == server)]
    replies = packets[(packets["icmp_type"] == 0) & (packets["src"] == server)]
    runner = run.probes.set_index("seq")
    answered = runner[runner["status"] == "ok"]
    # every probe the runner sent crossed the capture point (none is lost before the router)
    assert set(requests["icmp_seq"].dropna().astype(int)) >= set(runner.index.astype(int))
    assert len(replies) >= len(answered)
    cap = echo_rtts(packets)
    cap = cap[(cap["host"] == server) & (cap["status"] == "ok")].set_index("seq")
    both = answered.join(cap[["rtt_ms"]].rename(columns={"rtt_ms": "rtt_ms_capture"}),
                         how="inner")
    assert len(both) >= 0.9 * len(answered)
    for ph in run.meta["phases"]:
        sel = both[(both["t_sent"] >= ph["t_start"]) & (both["t_sent"] < ph["t_end"])]
        assert len(sel) >= 3, ph["name"]
        ours, theirs = sel["rtt_ms_capture"].median(), sel["rtt_ms"].median()
        assert abs(ours - theirs) <= 0.1 * theirs, (ph["name"], ours, theirs)


@pytest.mark.parametrize("name", ["bufferbloat", "pfifo_fast_tos"])
def test_one_declaration_runs_on_the_simulator_and_the_kernel_alike(name):
    """The same scenario declaration on both backends: per-phase ping medians agree.

    Tolerance: 25 % where the RTT is a queue's drain time (hundreds of ms to seconds: the
    simulator's HTB and the kernel's differ by burst rounding, and the kernel's load generator
    is a real process a loaded machine may delay); where the RTT is one packet's serialisation
    (band 0 of pfifo_fast: ~4 ms per 1000-byte packet at 2 mbit) the two agree within one
    packet time; a starved band (pfifo_fast band 2, served only when band 1 happens to empty)
    measures the load's timing, so both backends need only agree that it waits longer than
    band 1.
    """
    need_root()
    from qoslab.scenarios import get
    from qoslab.scenarios.setup import phase_medians

    sc = get(name)
    kernel = phase_medians(sc.run("kernel")).set_index(["phase", "tos"])
    sim = phase_medians(sc.run("sim")).set_index(["phase", "tos"])
    starved = {(ph, 0x08) for ph in sim.index.get_level_values(0)} \
        if name == "pfifo_fast_tos" else set()
    assert set(kernel.index) - starved == set(sim.index) - starved
    packet_ms = 1014 * 8 / 2e6 * 1000
    for key in sim.index:
        s = sim.loc[key, "median_ms"]
        if key in starved:  # band 2: longer than band 1, or no answer at all
            band1 = (kernel.loc[(key[0], 0), "median_ms"], sim.loc[(key[0], 0), "median_ms"])
            k = kernel.loc[key, "median_ms"] if key in kernel.index else np.inf
            assert k > band1[0] and s > band1[1], (key, k, s, band1)
            continue
        k = kernel.loc[key, "median_ms"]
        if name == "pfifo_fast_tos" and key[1] == 0x10:
            assert abs(k - s) <= packet_ms, (key, k, s)
        else:
            assert abs(k - s) <= 0.25 * s, (key, k, s)


def test_a_load_with_a_stop_time_ends_then_on_every_backend():
    """A flood (3x the rate) declared with ``start=0.2, stop=2`` fills a 20-packet queue
    (~400 ms at 200 kbit) within 0.3 s of its start and ends at t = 2 s on every backend:
    pings queue behind it (or are dropped) before, and not after it drained. (A load that
    starts after time 0 is started by a scheduling thread: it must outlive that thread.)"""
    need_root()
    from qoslab.qdiscs import Htb, HtbClass, Pfifo
    from qoslab.scenarios import REGISTRY, Param, Scenario, Setup, register
    from qoslab.sim import Link, PingStream, UdpFlood

    def build(v):
        return Setup(traffic=(UdpFlood("10.0.9.1", rate=6e5, size=472, start=0.2,
                                       stop=v["flood_stop"]),
                              PingStream("10.0.1.1", interval=0.1, start=0.5)),
                     qdisc=Htb(classes=(HtbClass("1:10", 2e5, leaf=Pfifo(limit=20)),),
                               default=0x10),
                     link=Link(rate=1e9, delay=0.0), duration=4.0)

    sc = register(Scenario("toy_stop", "a flood that stops", (
        Param("flood_stop", "time", 2.0, "when the flood stops", unit="s", min=0.5, max=4),
        Param("seed", "int", 1, "seed", min=0, max=9)), build,
        backends=("sim", "kernel", "userspace")))
    try:
        for backend in ("sim", "kernel", "userspace"):
            run = sc.run(backend)
            p = run.probes
            # while the queue is full a ping is tail-dropped or waits behind ~19 packets
            # (~380 ms): none comes back quickly; once the flood stopped and the queue
            # drained (~0.4 s), they all do
            # (from 1.2 s: a loaded machine may take half a second to start the flood)
            during = p[(p["t_sent"] >= 1.2) & (p["t_sent"] < 2.0)]
            quick = (during["status"] == "ok") & (during["rtt_ms"] < 150)
            assert len(during) >= 7 and not quick.any(), (backend, during)
            after = p[p["t_sent"] >= 3.0]
            ok = after["status"] == "ok"
            assert ok.mean() >= 0.9 and after.loc[ok, "rtt_ms"].max() < 50, (backend, after)
            if backend != "sim":
                stops = run.events.loc[run.events["kind"] == "load_stop", "t"]
                assert len(stops) == 1 and 1.95 <= stops.iloc[0] <= 2.5, stops
    finally:
        REGISTRY.pop("toy_stop")
