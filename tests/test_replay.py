"""Capture replay (qoslab/replay): packets through the runtime qdiscs, as the simulator runs
them."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

import qoslab
from qoslab.analysis import detect_spikes
from qoslab.capture import iter_capture
from qoslab.cli import main
from qoslab.errors import ConfigError
from qoslab.qdiscs import Pfifo, Sfq
from qoslab.replay import FlowIndex, flow_label, seeds_of
from qoslab.scenarios import get
from qoslab.scenarios.backend_sim import sim_config
from qoslab.schema import DECISIONS, PROBES
from qoslab.sim import simulate

CAPTURE = qoslab.data_path("captures/tunnel_uploads.pcap")


def simulated(name: str, **values):
    """A simulated run with its decision log, its setup and its seed."""
    sc = get(name)
    vals = sc.values(values)
    setup = sc.build(vals)
    cfg = dataclasses.replace(sim_config(setup, name=name, seed=vals["seed"], params=vals),
                              decisions=True, sample_interval=0)
    return simulate(cfg), setup, vals["seed"]


def packets_of(run) -> pd.DataFrame:
    """The packets a simulated run offered its qdisc tree, as a PACKETS-like frame (each
    flow's header fields, the arrival time as ``t``, the accounted size as ``wire_len``)."""
    flows = pd.DataFrame(run.meta["flows"])
    d = run.decisions
    fid = d["stream"].map({x: i for i, x in enumerate(flows["flow"])}).astype(int).to_numpy()
    pk = flows.iloc[fid].reset_index(drop=True).drop(columns=["flow"])
    types = {"proto": "UInt8", "inner_proto": "UInt8", "tos": "UInt8", "inner_tos": "UInt8",
             "sport": "UInt16", "dport": "UInt16", "inner_sport": "UInt16",
             "inner_dport": "UInt16", "icmp_id": "UInt16", "l2_proto": "UInt16"}
    pk = pk.astype({k: v for k, v in types.items() if k in pk})
    return pk.assign(t=d["t_arrival"].to_numpy(), wire_len=d["size"].to_numpy())


@pytest.fixture(scope="module")
def perturbed():
    return simulated("sfq_perturb", duration=40.0, seed=5)


@pytest.mark.parametrize(("name", "values"), [
    ("sfq_perturb", dict(duration=40.0, seed=5)),
    ("tunnel_keys", dict(duration=30.0, switch_at=15.0)),
    ("tos_proto_dst", dict(duration=20.0)),
    ("latency_first", dict(duration=20.0)),  # HTB borrowing; TCP bursts into SFQ and pfifo
    ("bufferbloat", {}),  # a burst of 1001 packets into an idle link's 1000-packet pfifo
    ("pfifo_fast_tos", {}),
])
def test_replaying_the_simulators_arrivals_gives_its_decisions(name, values):
    """The same runtime, seeds, link and changes: given the simulator's arrival times and
    sizes, replay decides exactly what the simulator decided, packet by packet. Packets that
    arrive at the same instant (a TCP window, a flood's prefill) meet the link as in the
    kernel: an idle link takes the first before the second is enqueued, in both."""
    run, setup, seed = simulated(name, **values)
    out = qoslab.replay(packets_of(run), setup, seed=seed)
    a, b = run.decisions, out.decisions
    assert len(a) == len(b) > 1000
    # one flow label: the simulator's DECISIONS and replay's join on `flow`
    assert a["flow"].astype(str).tolist() == b["flow"].astype(str).tolist()
    for col in ("queue", "cls", "seed_index", "dropped", "size"):
        np.testing.assert_array_equal(a[col].to_numpy(na_value=-1), b[col].to_numpy(na_value=-1),
                                      err_msg=col)
    sent = a["t_departure"].notna().to_numpy()  # the simulator stops; replay drains the tree
    np.testing.assert_allclose(a["t_departure"][sent], b["t_departure"][sent], atol=1e-9)
    assert a["dropped"].any() or name != "sfq_perturb"
    # one rule for hash changes: the perturb timer runs as long as the tree exists, through
    # the drain: the same changes up to the end of the shorter run (replay's: its tree empty)
    end = float(out.events["t"].max())
    pd.testing.assert_frame_equal(changes(run, end), changes(out, end))


def changes(run, end: float) -> pd.DataFrame:
    """A RUN's hash and config changes up to ``end``."""
    ev = run.events
    keep = ev["kind"].isin(["hash_change", "config_change"]) & (ev["t"] <= end)
    return ev.loc[keep, ["t", "kind", "detail"]].reset_index(drop=True)


def test_hash_changes_go_on_while_the_tree_drains_in_the_simulator_and_replay(perturbed):
    """After the sources' duration the simulator's loads run until the pings are done and the
    tree drains: the perturbation goes on meanwhile, in the simulator as in replay of its
    arrivals (and as the kernel's timer, which runs while the qdisc exists)."""
    run, setup, seed = perturbed
    out = qoslab.replay(packets_of(run), setup, seed=seed)
    duration = run.meta["duration"]
    end = float(out.events["t"].max())
    late = changes(out, end)
    late = late[(late["kind"] == "hash_change") & (late["t"] >= duration)]
    assert len(late) >= 1 and end > duration
    pd.testing.assert_frame_equal(changes(run, end), changes(out, end))
    a, b = run.decisions, out.decisions
    after = (a["t_arrival"] > late["t"].iloc[0]).to_numpy()
    assert after.sum() > 10  # packets arrived after that change: hashed with its seed
    assert (a.loc[after, "seed_index"] == a["seed_index"].max()).all()
    for col in ("queue", "seed_index", "dropped"):
        np.testing.assert_array_equal(a[col].to_numpy(na_value=-1),
                                      b[col].to_numpy(na_value=-1), err_msg=col)
    assert run.meta["hash_seed_times"][1:] == [t for t in changes(run, np.inf)["t"]]


def test_given_seeds_are_the_schedules(perturbed):
    run, setup, seed = perturbed
    seeds, times = seeds_of(run)
    by_seed = qoslab.replay(packets_of(run), setup, seed=seed)
    given = qoslab.replay(packets_of(run), setup, seeds=seeds, seed_times=times)
    pd.testing.assert_frame_equal(by_seed.decisions, given.decisions)
    other = qoslab.replay(packets_of(run), setup, seed=seed + 1)
    assert (other.decisions["queue"] != by_seed.decisions["queue"]).any()


def test_the_result_is_a_run_every_analysis_reads(perturbed):
    run, setup, seed = perturbed
    out = qoslab.replay(packets_of(run), setup, seed=seed)
    assert list(out.probes.columns[:len(PROBES)]) == list(PROBES)
    assert list(out.decisions.columns) == list(DECISIONS)
    assert out.probes["stream"].nunique() == len(run.meta["flows"]["flow"]) == 5
    assert "icmp 10.0.0.1 > 10.0.9.1 id=0x1000" in set(out.probes["stream"])
    d = out.decisions
    delay = (d["t_departure"] - d["t_arrival"]).to_numpy() * 1000
    np.testing.assert_allclose(out.probes["rtt_ms"].to_numpy(), np.where(d["dropped"], np.nan,
                                                                          delay))
    assert (out.probes["status"] == "lost").sum() == d["dropped"].sum() > 0
    assert detect_spikes(out.probes).shape[0] > 0  # the floods' queueing delay spikes
    assert out.meta["source"] == "replay" and out.meta["hash_seeds"][0] == \
        run.meta["hash_seeds"][0]


def test_chunks_and_files_replay_as_one_frame(tmp_path):
    whole = qoslab.replay(qoslab.read_capture(CAPTURE), "sfq limit 10 perturb 2", rate=5e5,
                          profile="classic-2.6.3x")
    by_file = qoslab.replay(CAPTURE, "sfq limit 10 perturb 2", rate=5e5,
                            profile="classic-2.6.3x", chunk_packets=500)
    chunks = qoslab.replay(iter_capture(CAPTURE, 333), "sfq limit 10 perturb 2", rate=5e5,
                           profile="classic-2.6.3x")
    for other in (by_file, chunks):
        pd.testing.assert_frame_equal(whole.decisions, other.decisions)
        pd.testing.assert_frame_equal(whole.probes, other.probes)
    d = whole.decisions
    assert d["dropped"].any() and d["seed_index"].max() >= 3
    assert d["packet"].tolist() == list(range(len(d)))


def test_time_zero_and_raw_captures(perturbed):
    pk = qoslab.read_capture(CAPTURE)
    base = qoslab.replay(pk, Pfifo(limit=20), rate=3e6)
    t0 = pk["time"].iloc[0] - pd.Timedelta(seconds=2)
    later = qoslab.replay(pk, Pfifo(limit=20), rate=3e6, t0=t0)
    np.testing.assert_allclose(later.decisions["t_arrival"], base.decisions["t_arrival"] + 2)
    raw = qoslab.replay(pk, Pfifo(limit=20), rate=3e6, l2_bytes=14)
    assert (raw.decisions["size"] == base.decisions["size"] + 14).all()


def test_packets_before_time_zero_meet_an_idle_link_and_full_buckets():
    """Replay time 0 may be later than the first packet (``--t0`` = a live run's scenario
    start; its loads began before): packets at negative times are shaped as any others — the
    link was idle and the shaper's buckets full before the first packet, whatever the clock."""
    pk = qoslab.read_capture(CAPTURE)
    tree = ("tc qdisc add dev DEV root handle 1: htb default 10\n"
            "tc class add dev DEV parent 1: classid 1:10 htb rate 600kbit burst 3000\n"
            "tc qdisc add dev DEV parent 1:10 handle 10: pfifo limit 20\n")
    base = qoslab.replay(pk, tree, rate=1e6).decisions
    late = qoslab.replay(pk, tree, rate=1e6,
                         t0=pk["time"].iloc[0] + pd.Timedelta(seconds=12)).decisions
    assert (late["t_arrival"] < 0).sum() > 100 and base["dropped"].any()
    np.testing.assert_array_equal(late["dropped"], base["dropped"])
    np.testing.assert_allclose(late["t_departure"] - late["t_arrival"],
                               base["t_departure"] - base["t_arrival"], atol=1e-9)


def test_out_of_order_packets_arrive_in_time_order():
    pk = qoslab.read_capture(CAPTURE).iloc[:400]
    shuffled = pk.sample(frac=1.0, random_state=3)
    a = qoslab.replay(pk, Pfifo(limit=5), rate=1e6)
    b = qoslab.replay(shuffled, Pfifo(limit=5), rate=1e6)
    assert b.meta["packets_reordered"] > 0
    order = np.argsort(shuffled.index.to_numpy(), kind="stable")
    # packet numbers name the rows of the frame given; the decisions are the same
    assert sorted(b.decisions["packet"]) == list(range(400))
    same = b.decisions.set_index(shuffled.index.to_numpy()[b.decisions["packet"]]).sort_index()
    np.testing.assert_array_equal(same["dropped"], a.decisions["dropped"])
    assert len(order) == 400


def test_flows_are_the_hashes_inputs():
    pk = qoslab.read_capture(CAPTURE)
    index = FlowIndex()
    fid = index.fids(pk)
    # packets of one flow agree on every hashed field; a change of TOS is another flow
    sub = pk.assign(fid=fid)
    assert (sub.groupby("fid")[["src", "dst", "proto", "tos", "inner_sport"]]
            .nunique(dropna=False) <= 1).all().all()
    bumped = pk.iloc[:1].assign(tos=pk["tos"].iloc[:1] + 4)
    assert index.fids(bumped)[0] == len(np.unique(fid))
    assert "via 4in4" in flow_label(pk.iloc[0])


def test_bad_requests_say_what_is_wrong(perturbed):
    pk = qoslab.read_capture(CAPTURE)
    with pytest.raises(ConfigError, match="rate"):
        qoslab.replay(pk, Sfq(limit=10))
    with pytest.raises(ConfigError, match="change times"):
        qoslab.replay(pk, Sfq(limit=10), rate=1e6, seeds=[1, 2, 3], seed_times=[4.0])
    with pytest.raises(ConfigError, match="no scenario"):
        qoslab.replay(pk, "no_such_scenario")
    with pytest.raises(ConfigError, match="perturb"):
        qoslab.replay(pk, "sfq_perturb", perturb=-1)
    with pytest.raises(ConfigError, match="PACKETS"):
        qoslab.replay(pd.DataFrame({"t": [0.0], "wire_len": [100]}), Sfq(), rate=1e6)


def test_the_command_line(tmp_path, capsys):
    out = tmp_path / "r.json.gz"
    argv = ["replay", str(CAPTURE), "--tc", "sfq limit 10 perturb 2", "--profile",
            "classic-2.6.3x", "--rate", "500kbit", "-w", str(out)]
    assert main(argv) == 0
    run = qoslab.load(out)
    assert len(run.decisions) == len(qoslab.read_capture(CAPTURE))
    assert "hash changes" in capsys.readouterr().out
    assert main(argv) == 2  # never over an existing file without --force
    assert "exists" in capsys.readouterr().err
    assert main([*argv, "--force", "--scenario", "x"]) == 2
    assert main(["replay", str(CAPTURE), "--scenario", "tunnel_keys", "--switch-at", "1",
                 "--duration", "3", "-w", str(out), "--force"]) == 0
    assert (qoslab.load(out).events["kind"] == "config_change").sum() == 1


def test_every_packets_column_is_a_flow_column_or_a_per_packet_one():
    """A column added to PACKETS must be placed: hashed fields define flows; fields that
    change from packet to packet (sequence numbers, lengths, TTL …) must not, or every packet
    would be a flow of its own."""
    from qoslab.replay.flows import PER_PACKET_COLUMNS
    from qoslab.schema import CAPTURE_SET, PACKETS

    flow_defining = {
        "l2_proto", "vlan", "vlan_pcp", "vlan_dei", "ip_version", "src", "dst", "proto",
        "ipv6_nexthdr", "tos", "flow_label", "frag", "sport", "dport", "icmp_type",
        "icmp_code", "icmp_id", "spi", "tunnel", "tunnel_id", "inner_l2_proto", "inner_vlan",
        "inner_ip_version", "inner_src", "inner_dst", "inner_proto", "inner_tos",
        "inner_flow_label", "inner_ipv6_nexthdr", "inner_sport", "inner_dport",
        "inner_icmp_type", "inner_icmp_id", "inner_spi"}
    columns = set(PACKETS) | set(CAPTURE_SET)
    assert not flow_defining & PER_PACKET_COLUMNS
    assert columns == (flow_defining | PER_PACKET_COLUMNS) & columns, \
        sorted(columns - flow_defining - PER_PACKET_COLUMNS)
    pk = qoslab.read_capture(CAPTURE)
    assert len(FlowIndex().fids(pk).__array__().tolist()) == len(pk)
    assert FlowIndex().fids(pk).max() + 1 == 15  # the capture's flows, not its packets


def test_what_if_a_capture_went_through_sfq_with_tunnel_keys():
    from qoslab.replay.whatif import WHATIF_PARAMS, occupancy, shared_buckets, what_if
    from qoslab.scenarios.catalog import TUNNEL_KEYS
    from qoslab.schema import OCCUPANCY
    from qoslab.widgets import WhatIfExplorer

    pk = qoslab.read_capture(CAPTURE)
    up = pk[pk["src"] == "192.0.2.1"]
    plain = what_if(up, perturb=0, rate=200e3, profile="tunnel-patch")
    keyed = what_if(up, keys=TUNNEL_KEYS, perturb=0, rate=200e3, profile="tunnel-patch")
    # the qdisc's own hash sees one 4in4 tunnel: every flow in one bucket; the tunnel keys
    # give each inner 5-tuple its own (the three pings, differing only in ICMP id and TOS,
    # still share one: no key reads those)
    shared = shared_buckets(plain.decisions)
    assert shared["n_flows"].max() >= 5 and shared["flows"].str.contains("tcp").any()
    shared = shared_buckets(keyed.decisions[keyed.decisions["flow"].str.contains("4in4")])
    assert len(shared) == 1 and shared["n_flows"].iloc[0] == 3
    assert not shared["flows"].str.contains("tcp").any()
    ping = "icmp 10.10.0.4 > 10.20.0.5 id=0x4000 via 4in4 192.0.2.1 > 198.51.100.1"
    assert keyed.probes.groupby("stream")["rtt_ms"].median()[ping] < \
        plain.probes.groupby("stream")["rtt_ms"].median()[ping] / 3
    occ = occupancy(plain.decisions)
    assert list(occ.columns) == list(OCCUPANCY) and (occ["packets"] > 0).all()
    # packets queued at a sample time, counted from the log directly
    d = plain.decisions[~plain.decisions["dropped"]]
    t = occ["t"].iloc[len(occ) // 2]
    queued = ((d["t_arrival"] <= t) & (d["t_departure"] >= t)).sum()
    assert occ.loc[occ["t"] == t, "packets"].sum() == queued
    with pytest.raises(ConfigError, match="rate"):
        what_if(up, rate=0)
    with pytest.raises(ConfigError, match="pfifo"):
        what_if(up, qdisc="pfifo", keys="src")
    ex = WhatIfExplorer(up, perturb=3, rate=200e3, profile="classic-2.6.3x")
    ex.update()
    assert ex.report.n_events >= 1 and ex.last_error is None
    assert [p.name for p in WHATIF_PARAMS] == list(ex.params)


def test_the_readme_replay_example_runs(repo, tmp_path):
    import re
    import subprocess
    import sys

    text = (repo / "README.md").read_text()
    block = next(b for b in re.findall(r"```python\n(.*?)```", text, flags=re.S)
                 if "qoslab.replay(" in b)
    script = tmp_path / "replay.py"
    script.write_text(block + "\nprint(len(run.decisions))\n")
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                         timeout=300, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split()[-1] == "2913"


# ----------------------------------------------------------------- per-packet tables on disk
def tiled(times: int, pk: pd.DataFrame | None = None):
    """The capture ``times`` over, one copy after the other in time: chunks made as they
    are asked for (the same flows, ever more packets)."""
    pk = qoslab.read_capture(CAPTURE) if pk is None else pk
    span = float(pk["t"].max()) + 1.0
    for k in range(times):
        yield pk.assign(t=pk["t"] + k * span)


def test_per_packet_tables_on_disk_are_the_in_memory_ones(tmp_path):
    """Written part by part as the replay goes (parts of ~500 rows here), read back by
    qoslab.load: the same DECISIONS and PROBES, row for row, as the replay in memory; META
    names the dataset and holds the per-flow totals both ways."""
    tree = dict(what="sfq limit 10 perturb 2", rate=5e5, profile="classic-2.6.3x")
    whole = qoslab.replay(qoslab.read_capture(CAPTURE), **tree)
    out = tmp_path / "tables"
    streamed = qoslab.replay(CAPTURE, **tree, chunk_packets=500, per_packet=out)
    parts = sorted((out / "decisions").iterdir())
    assert len(parts) >= 4 and len(sorted((out / "probes").iterdir())) == len(parts)
    pd.testing.assert_frame_equal(whole.decisions, streamed.decisions)
    pd.testing.assert_frame_equal(whole.probes, streamed.probes)
    assert streamed.meta["flow_summary"] == whole.meta["flow_summary"]
    summary = pd.DataFrame(whole.meta["flow_summary"]).set_index("flow")
    d = whole.decisions
    assert summary["packets"].to_dict() == d.groupby("flow", observed=True).size().to_dict()
    assert summary["dropped"].sum() == d["dropped"].sum() == streamed.meta["dropped"] > 0
    delay = ((d["t_departure"] - d["t_arrival"]) * 1000)[~d["dropped"]]
    for q, name in ((0.5, "median"), (0.99, "p99")):
        exact = np.quantile(delay, q, method="inverted_cdf")
        assert abs(streamed.meta["delay_ms"][name] / exact - 1) < 0.003
    run_file = tmp_path / "run.json.gz"
    streamed.save(run_file)
    moved = tmp_path / "elsewhere"
    moved.mkdir()
    (tmp_path / "run.json.gz").rename(moved / "run.json.gz")
    out.rename(moved / "tables")  # RUN and dataset moved together: the relative path holds
    back = qoslab.load(moved / "run.json.gz")
    assert back.meta["per_packet"]["path"] == "tables"
    pd.testing.assert_frame_equal(whole.decisions, back.decisions)
    pd.testing.assert_frame_equal(whole.probes, back.probes)
    assert [len(f) for f in back.iter_table("decisions")] == \
        [len(pd.read_parquet(moved / "tables" / "decisions" / p.name)) for p in parts]
    assert detect_spikes(back.probes).shape[0] == detect_spikes(whole.probes).shape[0]


#: Peak traced memory of one replay, measured in a fresh interpreter: in the suite's own
#: process, threads that earlier tests left running (servers, progress bars, spawners)
#: allocate while tracemalloc counts, and moved the ratio by 20 % under load.
_PEAK_SCRIPT = """
import sys, tempfile, tracemalloc
import qoslab
from tests.test_replay import tiled
times, on_disk = int(sys.argv[1]), sys.argv[2] == "disk"
pk = qoslab.read_capture(qoslab.data_path("captures/tunnel_uploads.pcap"))
with tempfile.TemporaryDirectory() as folder:
    tracemalloc.start()
    run = qoslab.replay(tiled(times, pk), "sfq limit 10 perturb 2", rate=5e5,
                        profile="classic-2.6.3x", chunk_packets=4096,
                        per_packet=f"{folder}/t" if on_disk else None)
    assert run.meta["packets"] == times * len(pk)
    print(tracemalloc.get_traced_memory()[1])
"""


def test_per_packet_memory_stays_bounded_as_the_capture_grows():
    """Peak memory (tracemalloc) of a replay whose per-packet tables go to disk hardly grows
    with the packets; in memory it grows with every packet (which this test would catch).

    From 2 to 10 copies of the capture (5.8 k to 29 k packets, parts of 4096 rows), the
    on-disk peak grows by what grows with the run's duration, not its packets (the hash
    changes and their seeds: ~0.6 MB here), the in-memory peak by the tables themselves
    (~6 MB): the bound is a fifth of the latter."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent

    def peak(times: int, on_disk: bool) -> int:
        done = subprocess.run(
            [sys.executable, "-c", _PEAK_SCRIPT, str(times), "disk" if on_disk else "memory"],
            cwd=root, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-2000:]
        return int(done.stdout.split()[-1])

    on_disk = peak(10, True) - peak(2, True)
    in_memory = peak(10, False) - peak(2, False)
    assert on_disk < 0.2 * in_memory, (on_disk, in_memory)


def test_per_packet_outputs_are_checked_first_and_never_clobbered(tmp_path, capsys):
    pk = qoslab.read_capture(CAPTURE).iloc[:300]
    out = tmp_path / "tables"
    qoslab.replay(pk, Pfifo(limit=5), rate=1e6, per_packet=out)
    with pytest.raises(FileExistsError, match="--force"):
        qoslab.replay(pk, Pfifo(limit=5), rate=1e6, per_packet=out)
    again = qoslab.replay(pk, Pfifo(limit=7), rate=1e6, per_packet=out, force=True)
    assert again.meta["tc"] == "pfifo limit 7" and len(again.decisions) == 300
    (tmp_path / "notes").mkdir()
    with pytest.raises(OSError, match="not a qoslab per-packet dataset"):
        qoslab.replay(pk, Pfifo(limit=5), rate=1e6, per_packet=tmp_path / "notes", force=True)
    with pytest.raises(ConfigError, match="rate"):  # a failed replay leaves no folder behind
        qoslab.replay(pk, Sfq(limit=10), per_packet=tmp_path / "never")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes", "tables"]
    # the command line: --per-packet, then the RUN names the dataset
    run_file = tmp_path / "r.json.gz"
    argv = ["replay", str(CAPTURE), "--tc", "pfifo limit 5", "--rate", "1mbit", "-w",
            str(run_file), "--per-packet", str(tmp_path / "cli")]
    assert main(argv) == 0
    said = capsys.readouterr().out
    assert "per-packet tables" in said and "median" in said
    assert qoslab.load(run_file).meta["per_packet"]["path"] == "cli"
    assert main(argv) == 2  # the RUN file exists: refused before replaying
    assert main([*argv[:-4], "-w", str(tmp_path / "r2.json.gz"), "--per-packet",
                 str(tmp_path / "cli")]) == 2
    assert "exists" in capsys.readouterr().err


def test_a_large_capture_gets_its_tables_beside_the_run(tmp_path, monkeypatch, capsys):
    from qoslab.replay import cli

    monkeypatch.setattr(cli, "AUTO_PER_PACKET_BYTES", 1000)  # "large": over 1000 bytes
    argv = ["replay", str(CAPTURE), "--tc", "pfifo limit 5", "--rate", "1mbit"]
    assert main([*argv, "-w", str(tmp_path / "day.json.gz")]) == 0
    assert "day.parts" in capsys.readouterr().out
    run = qoslab.load(tmp_path / "day.json.gz")
    assert run.meta["per_packet"]["path"] == "day.parts" and len(run.decisions) == 2913
    assert main([*argv, "-w", str(tmp_path / "kept.json.gz"), "--in-memory"]) == 0
    assert "per_packet" not in qoslab.load(tmp_path / "kept.json.gz").meta
    assert sorted(p.name for p in tmp_path.iterdir()) == ["day.json.gz", "day.parts",
                                                          "kept.json.gz"]


def test_every_long_phase_shows_progress(tmp_path, capsys):
    """Replaying (a frame, or chunks that say their total), building the per-flow tables and
    saving the RUN each show a bar when asked."""
    from qoslab.replay import Chunks

    pk = qoslab.read_capture(CAPTURE)
    run = qoslab.replay(pk, Pfifo(limit=5), rate=1e6, progress=True)
    run.save(tmp_path / "r.json.gz", progress=True)
    err = capsys.readouterr().err
    for phase in ("replay", "per-flow tables", "saving"):
        assert f"{phase}: 100%" in err, phase
    qoslab.replay(Chunks(tiled(2, pk), 2 * len(pk)), Pfifo(limit=5), rate=1e6,
                  progress=True, per_packet=tmp_path / "t")
    assert f"{2 * len(pk)}/{2 * len(pk)}" in capsys.readouterr().err
    qoslab.replay(pk, Pfifo(limit=5), rate=1e6)  # a short capture: no bar by default
    assert capsys.readouterr().err == ""


def test_a_starved_packet_does_not_hold_the_tables_back(tmp_path):
    """Pings in pfifo_fast's band 2 wait behind a flood of band 0 until the flood ends: the
    rows after them are written part by part all the same (the waiting rows held aside and
    written once their packet leaves), and the tables read back in arrival order are the
    in-memory ones."""
    pk = qoslab.read_capture(CAPTURE)
    flood = pk.iloc[:1].loc[[pk.index[0]] * 6000].assign(tos=0x10, wire_len=1000)
    flood = flood.assign(t=np.arange(6000) * 0.001)  # 8 Mbit/s into a 4 Mbit/s link
    pings = pk.iloc[:1].loc[[pk.index[0]] * 3].assign(tos=0x08, proto=1, wire_len=84,
                                                      t=[0.5, 1.0, 1.5])
    frame = pd.concat([flood, pings]).sort_values("t", kind="stable").reset_index(drop=True)
    tree = dict(what=qoslab.qdiscs.parse_tree("pfifo_fast", profile="5.18+"), rate=4e6)
    whole = qoslab.replay(frame, **tree)
    waited = whole.decisions[whole.decisions["flow"].str.startswith("icmp")]
    assert (waited["t_departure"] > 5.9).all()  # sent once the flood was over
    streamed = qoslab.replay(frame, **tree, chunk_packets=256, per_packet=tmp_path / "t")
    manifest = (tmp_path / "t" / "_qoslab_run_tables.json").read_text()
    assert '"ordered": false' in manifest
    assert len(list((tmp_path / "t" / "decisions").iterdir())) > 10
    pd.testing.assert_frame_equal(whole.decisions, streamed.decisions)
    pd.testing.assert_frame_equal(whole.probes, streamed.probes)
    assert streamed.meta["flow_summary"] == whole.meta["flow_summary"]
