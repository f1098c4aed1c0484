"""simulate(): RUN tables, META, occupancy, traffic models, the CLI."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import qoslab
from qoslab.cli import main
from qoslab.errors import ConfigError
from qoslab.schema import EVENT_KINDS, PROBES
from qoslab.sim import (
    BulkFlow,
    FqCodel,
    Link,
    Pfifo,
    PingFlood,
    PingStream,
    SfqQdisc,
    SimConfig,
    Tunnel,
    UdpFlood,
    flow_frame,
    occupancy,
    simulate,
)
from qoslab.sim.cli import parse_params


def test_idle_link_rtt_is_propagation_plus_serialisation():
    cfg = SimConfig(traffic=(PingStream("10.0.0.2", interval=0.5),),
                    link=Link(rate=1e6, delay=0.010), duration=10)
    run = simulate(cfg)
    p = run.probes
    assert list(p.columns[: len(PROBES)]) == list(PROBES)
    assert len(p) == 20 and (p["status"] == "ok").all()
    assert p["seq"].tolist() == list(range(1, 21))
    # 98 bytes at 1 Mbit/s = 0.784 ms, plus 2 x 10 ms
    assert np.allclose(p["rtt_ms"], 20.784)
    assert set(run.events["kind"]) <= set(EVENT_KINDS)
    assert run.events["kind"].iloc[0] == "run_start"


def test_cbr_overload_fills_pfifo_and_drops():
    cfg = SimConfig(traffic=(PingStream("10.0.0.2"), UdpFlood("10.0.9.1", rate=2e6)),
                    qdisc=Pfifo(limit=20), link=Link(rate=1e6, delay=0.01), duration=10)
    run = simulate(cfg)
    ok = run.probes[run.probes["status"] == "ok"]
    # a full 20-packet queue of 1514-byte packets at 1 Mbit/s is ~242 ms
    assert ok["rtt_ms"].iloc[5:].median() == pytest.approx(20.78 + 242.2, abs=15)
    assert (run.probes["status"] == "lost").sum() > 5
    stats = {s["flow"]: s for s in run.meta["flow_stats"]}
    udp = stats["udp 10.0.0.1:5001 > 10.0.9.1:5001"]
    assert udp["dropped"] > 0.4 * udp["sent"]
    kinds = run.events["kind"].tolist()
    assert kinds.count("load_start") == 1 and kinds.count("load_stop") == 1


def test_bulk_flow_fills_the_link_and_backs_off():
    cfg = SimConfig(traffic=(BulkFlow("10.0.9.1"),), qdisc=Pfifo(limit=50),
                    link=Link(rate=10e6, delay=0.02), duration=20, sample_interval=0)
    run = simulate(cfg)
    eng = run.meta["engine"]
    goodput = eng["bytes"] * 8 / (20 + 3)
    assert goodput > 0.85 * 10e6 * 20 / 23
    stats = run.meta["flow_stats"][0]
    assert stats["dropped"] > 0  # Reno probes until the queue overflows, then halves


def test_ecn_bulk_flow_is_marked_not_dropped_by_fq_codel():
    cfg = SimConfig(traffic=(BulkFlow("10.0.9.1", ecn=True), PingStream("10.0.1.1")),
                    qdisc=FqCodel(), link=Link(rate=10e6, delay=0.02), duration=20)
    run = simulate(cfg)
    assert run.meta["qdisc_stats"]["marks"] > 10
    assert run.meta["flow_stats"][0]["dropped"] == 0
    assert run.probes["rtt_ms"].median() < 45


def test_tunnel_hides_inner_header_from_outer_keys():
    flows = flow_frame(Tunnel("192.0.2.1", "198.51.100.1").wrap(
        [PingStream("10.0.1.1", tos=0x10), BulkFlow("10.0.9.1", ecn=True)]))
    assert flows["src"].astype(str).tolist() == ["192.0.2.1"] * 2
    assert flows["proto"].tolist() == [4, 4]
    assert flows["inner_proto"].tolist() == [1, 6]
    assert flows["tos"].tolist() == [0x10, 0x02]  # tos inherit, ECN copied
    assert flows["sport"].isna().all() and flows["inner_dport"].tolist()[1] == 22
    fixed = flow_frame(Tunnel("192.0.2.1", "198.51.100.1", tos=0).wrap(
        [BulkFlow("10.0.9.1", ecn=True, tos=0x08)]))
    assert fixed["tos"].tolist() == [0x02]


def test_occupancy_matches_hashing_buckets():
    """With a modern SFQ (rehash), a flow's queued packets sit in the bucket that
    the same spec's bucket() computes for the seed in force."""

    traffic = (UdpFlood("10.0.9.1", rate=2e6, sport=7000), UdpFlood("10.0.9.2", rate=2e6),
               PingStream("10.0.1.1"))
    cfg = SimConfig(traffic=traffic, qdisc=SfqQdisc(limit=40, perturb=3, profile="4.18-5.3"),
                    link=Link(rate=1e6), duration=10, sample_interval=0.25)
    run = simulate(cfg)
    occ = occupancy(run)
    assert list(occ.columns) == ["t", "flow", "bucket", "packets", "bytes"]
    seeds = [int(s, 16) for s in run.meta["hash_seeds"]]
    times = run.meta["hash_seed_times"]
    frame = flow_frame(list(traffic))
    hs = cfg.qdisc  # the very spec the simulator ran
    labels = frame["flow"].tolist()
    checked = 0
    for _, row in occ[occ["flow"].str.startswith("udp")].iterrows():
        k = int(np.searchsorted(times, row["t"], side="right")) - 1
        if any(abs(row["t"] - x) < 1e-9 for x in times[1:]):
            continue  # sampled at the instant of a change
        expected = hs.bucket(frame, seed=seeds[k])[labels.index(row["flow"])]
        assert row["bucket"] == expected
        checked += 1
    assert checked > 20


def test_run_roundtrip_and_meta(tmp_path):
    cfg = SimConfig(traffic=(PingStream("10.0.0.2"), UdpFlood("10.0.9.1", rate=5e5)),
                    duration=5, name="tiny", params={"x": 1})
    run = simulate(cfg)
    path = run.save(tmp_path / "sim.json.gz")
    back = qoslab.load(path)
    pd.testing.assert_frame_equal(back.probes, run.probes)
    pd.testing.assert_frame_equal(back.events, run.events)
    for key in ("source", "scenario", "params", "seed", "link", "qdisc", "traffic", "flows",
                "occupancy", "qdisc_stats"):
        assert key in back.meta
    assert back.meta["source"] == "sim" and back.meta["qdisc"] == "pfifo limit 1000"


def test_config_errors():
    with pytest.raises(ConfigError, match="traffic"):
        SimConfig(traffic=())
    with pytest.raises(ConfigError, match="duration"):
        SimConfig(traffic=(PingStream("10.0.0.2"),), duration=0)
    with pytest.raises(ConfigError, match="tos"):
        flow_frame([PingStream("10.0.0.2", tos=300)])
    with pytest.raises(ConfigError, match="no parameter 'perturb'"):
        parse_params("bufferbloat", ["--perturb", "5"])
    with pytest.raises(ConfigError, match="limit = 'ten': expected an integer"):
        parse_params("sfq_perturb", ["--limit", "ten"])


def test_cli_writes_run_and_png(tmp_path, capsys):
    out = tmp_path / "run.json.gz"
    png = tmp_path / "run.png"
    status = main(["sim", "sfq_perturb", "--perturb", "5", "--duration", "20", "--seed", "4",
                   "-w", str(out), "-o", str(png)])
    assert status == 0
    run = qoslab.load(out)
    assert run.meta["params"]["perturb"] == 5 and run.meta["seed"] == 4
    # every 5 s while the qdisc exists: the last while the pings wait for their answers
    assert run.events.loc[run.events["kind"] == "hash_change", "t"].tolist() == [5, 10, 15, 20]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    status = main(["sim", "bufferbloat", "--perturb", "5", "-w", str(out)])
    assert status == 2
    assert "no parameter 'perturb'" in capsys.readouterr().err


def test_identical_sources_stay_distinct_flows():
    cfg = SimConfig(traffic=(PingStream("10.0.0.2"), PingStream("10.0.0.2"),
                             UdpFlood("10.0.9.1", rate=1e5), UdpFlood("10.0.9.1", rate=1e5)),
                    link=Link(rate=1e6), duration=4)
    run = simulate(cfg)
    assert run.streams == ["10.0.0.2 tos=0x00 size=56", "10.0.0.2 tos=0x00 size=56 #2"]
    assert (run.probes.groupby("stream").size() == 20).all()
    starts = run.events[run.events["kind"] == "load_start"]["detail"].tolist()
    assert len(set(starts)) == 2


@pytest.mark.parametrize("make, message", [
    (lambda: PingStream("10.0.1.1", interval=0), "interval = 0 s: expected a finite number > 0 s"),
    (lambda: PingStream("10.0.1.1", interval=float("inf")), "interval = inf s"),
    (lambda: PingFlood("10.0.9.1", min_interval=0.0), "min_interval = 0.0 s"),
    (lambda: UdpFlood("10.0.9.1", rate=-1), "rate = -1 bit/s"),
])
def test_a_source_that_would_never_end_is_refused_naming_the_value_and_unit(make, message):
    # a ping timer of 0 s rescheduled itself at the same instant forever: the kernel hung
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(".", r"\.")):
        make()


def _flooded_pings(timeout: float) -> qoslab.Run:
    """Pings behind a 200-packet pfifo (2.4 s at 1 Mbit/s) that a flood fills until t = 3 s;
    the queue is empty again from ~5.4 s, the pings go on until 8 s."""
    return simulate(SimConfig(
        traffic=(UdpFlood("10.0.0.3", rate=2e6, stop=3.0),
                 PingStream("10.0.0.2", interval=0.1)),
        qdisc=Pfifo(limit=200), link=Link(rate=1e6), duration=8.0, ping_timeout=timeout))


def test_sim_pings_have_the_ping_runners_timeout_and_statuses():
    """As qoslab's ping runner (the kernel and userspace backends): an answer within the
    timeout is ok, a probe without one by then is lost, and an answer after its timeout,
    while the runner still waits for later probes, turns it late with its RTT."""
    assert SimConfig(traffic=(PingStream("10.0.0.2"),)).ping_timeout == qoslab.ping.DEFAULT_TIMEOUT
    short, long_ = _flooded_pings(1.0), _flooded_pings(5.0)
    p, q = short.probes, long_.probes
    assert set(p["status"]) == {"ok", "late", "lost"} and set(q["status"]) == {"ok", "lost"}
    late = p["status"] == "late"
    assert late.sum() >= 10 and (p.loc[late, "rtt_ms"] > 1000).all()
    assert (p.loc[p["status"] == "ok", "rtt_ms"] <= 1000).all()
    assert p.loc[p["status"] == "lost", "rtt_ms"].isna().all()
    # the timeout decides the status, never the RTT; drops are lost whatever the timeout
    np.testing.assert_array_equal(p["rtt_ms"], q["rtt_ms"])
    assert ((p["status"] == "lost") == (q["status"] == "lost")).all()
    assert (q.loc[late, "status"] == "ok").all()
    assert short.meta["ping_timeout"] == 1.0 and long_.meta["ping_timeout"] == 5.0


def test_a_starved_ping_is_lost_as_on_the_kernel():
    """pfifo_fast_tos: TOS 0x08 (band 2) is never served while the flood keeps band 1 full.
    The kernel backend stops the flood once its ping runner is done, so those pings never
    come back: lost. The simulator ends a run the same way (loads without a stop run until
    the pings are done), with the same timeout for the same scenario."""
    from qoslab.scenarios import get
    from qoslab.scenarios.backend_kernel import KernelBed

    sc = get("pfifo_fast_tos")
    setup = sc.setup(count=30)
    run = sc.run("sim", count=30)
    p = run.probes
    band2 = p[p["tos"] == 0x08]
    assert len(band2) == 30 and (band2["status"] == "lost").all()
    assert (p.loc[p["tos"] == 0x10, "status"] == "ok").all()
    timeout = run.meta["ping_timeout"]
    bed = KernelBed(setup, sc, sc.values({"count": 30}), path=None, capture=None,
                    force=False, progress=None)
    assert timeout == setup.ping_timeout == bed._timeout() == 4.0
    # the runner waited the timeout for the last band-2 probe; the flood ran until then
    last = band2["t_sent"].max()
    assert run.meta["pings_done"] == pytest.approx(last + timeout)
    stop = run.events.loc[run.events["kind"] == "load_stop", "t"]
    assert stop.tolist() == [pytest.approx(last + timeout)]
