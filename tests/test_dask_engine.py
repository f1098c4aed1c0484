"""The Dask engine on a real local cluster gives the pandas engine's results on the same files.

The cluster (fixture ``dask_client``, tests/conftest.py) is a ``dask.distributed.LocalCluster``
of 2 worker *processes* with one thread each, started by the tests. Processes rather than
threads: tasks, plans and partial results then cross process boundaries pickled, as on a
cluster of machines, and each worker's memory limit is enforced by its nanny — threads in one
process would hide both (the memory test starts its own cluster with a low limit).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from scapy.all import IP, UDP, Ether, Raw, rdpcap, wrpcap, wrpcapng

import qoslab
from qoslab.capture import echo_rtts, flows
from qoslab.capture.reader import concat_packets
from qoslab.engines.captures import compute_packets, read_captures
from qoslab.engines.cluster import local_cluster
from qoslab.engines.ordered import iter_partitions
from qoslab.errors import EngineUnavailableError, QoslabError
from qoslab.hashing import FqCodel, sharing
from tests.capture_sets import write_set

CHUNK = 1500
TC_FLOW = ("tc filter add dev eth0 parent 1: protocol ip prio 1 flow hash "
           "keys src,dst,proto,proto-src,proto-dst divisor 1024 perturb 10")


@pytest.fixture(scope="module")
def captures(tmp_path_factory):
    """A folder of captures: a 4-file ring buffer (ns pcap) in a subfolder, the bundled
    tunnel capture (4in4, 6in4, 4in6, 6in6; µs pcap) and a pcapng file."""
    folder = tmp_path_factory.mktemp("captures")
    write_set(folder / "ring", 4, 5000, seed=5, seconds=10.0, echo_share=0.2)
    shutil.copy(qoslab.data_path("captures/tunnel_uploads.pcap"), folder / "tunnel.pcap")
    wrpcapng(str(folder / "lan.pcapng"), rdpcap(str(folder / "ring" / "ring_3.pcap"))[:3200])
    return folder


@pytest.fixture(scope="module")
def both(captures, dask_client):
    """(pandas frame, Dask frame) of the same folder."""
    return (read_captures(captures, chunk_packets=CHUNK),
            read_captures(captures, engine="dask", chunk_packets=CHUNK))


def test_dask_frame_is_the_pandas_frame(both):
    pk, dk = both
    files = ["lan.pcapng", "ring/ring_1.pcap", "ring/ring_2.pcap", "ring/ring_3.pcap",
             "ring/ring_4.pcap", "tunnel.pcap"]
    assert list(pk["file"].cat.categories) == files
    per_file = pk.groupby("file", observed=True).size()
    assert dk.known_divisions and dk.npartitions == int(np.ceil(per_file / CHUNK).sum())
    assert dk.divisions[0] == 0 and dk.divisions[-1] == len(pk) - 1
    assert list(dk.dtypes.astype(str)) == list(pk.dtypes.astype(str))
    for col in ("tunnel", "problem", "file"):  # known categories, exactly the pandas ones
        assert list(dk[col].cat.categories) == list(pk[col].cat.categories)
    assert not dk["src"].cat.known
    pd.testing.assert_frame_equal(compute_packets(dk), pk)
    plain = dk.compute()  # address categories merged in partition order: same values
    pd.testing.assert_frame_equal(plain, pk, check_categorical=False)
    for col in ("src", "dst", "inner_src", "inner_dst"):
        assert set(plain[col].cat.categories) == set(pk[col].cat.categories)
    assert pk["t"].min() == 0.0
    assert (pk.groupby("file", observed=True)["frame"].agg(["min", "max", "size"])
            .eval("min == 1 and max == size").all())


@pytest.mark.parametrize("level", ["inner", "outer"])
def test_flows(both, level):
    pk, dk = both
    expected = flows(pk, level)
    assert len(expected) > 1000 and (expected["tunnel"] != "none").any()
    pd.testing.assert_frame_equal(flows(dk, level), expected)
    tcp = (pk["proto"] == 6).fillna(False)  # any Dask expression of the frame works too
    pd.testing.assert_frame_equal(flows(dk[dk["proto"] == 6], level), flows(pk[tcp], level))


def test_echo_rtts_pair_across_files_and_chunks(both, captures):
    pk, dk = both
    expected = echo_rtts(pk)
    pd.testing.assert_frame_equal(echo_rtts(dk), expected)
    ok = int((expected["status"] == "ok").sum())
    # pairing each file alone loses the requests answered in the next file …
    per_file = sum(int((echo_rtts(qoslab.read_capture(p))["status"] == "ok").sum())
                   for p in sorted((captures / "ring").iterdir()) + [captures / "lan.pcapng",
                                                                     captures / "tunnel.pcap"])
    # … and pairing each chunk alone loses those answered in the next chunk
    per_chunk = dk.map_partitions(
        lambda p: pd.DataFrame({"ok": [int((echo_rtts(p)["status"] == "ok").sum())]}),
        meta=pd.DataFrame({"ok": pd.Series(dtype="int64")})).compute()["ok"].sum()
    assert per_file < ok and per_chunk < per_file
    assert {"lost", "duplicate"} <= set(expected["status"])


def test_tcp_rtts_meet_both_directions_across_files_and_chunks(both, tmp_path):
    from qoslab.capture import tcp_rtts

    pk, dk = both
    pd.testing.assert_frame_equal(tcp_rtts(dk), tcp_rtts(pk))
    # the tunnel capture's TCP connections cut in two files, in chunks of 200 frames: segments
    # and their acknowledgements in different files and chunks still make their samples
    frames = rdpcap(str(qoslab.data_path("captures/tunnel_uploads.pcap")))
    half = len(frames) // 2
    wrpcap(str(tmp_path / "a.pcap"), frames[:half])
    wrpcap(str(tmp_path / "b.pcap"), frames[half:])
    expected = tcp_rtts(read_captures(tmp_path, chunk_packets=200))
    got = tcp_rtts(read_captures(tmp_path, "dask", chunk_packets=200))
    assert len(expected) > 100
    pd.testing.assert_frame_equal(got, expected)
    seg, ack = expected["segment_row"].to_numpy(), expected["ack_row"].to_numpy()
    assert ((seg < half) & (ack >= half)).any()  # across the files
    chunk = lambda rows: np.where(rows < half, rows // 200, 10**6 + (rows - half) // 200)  # noqa: E731
    assert (chunk(seg) != chunk(ack)).sum() >= 5  # across chunks (of 200 frames of one file)


def test_classify_and_sfq_buckets(both):
    pk, dk = both
    fc = qoslab.FlowClassifier.from_tc(TC_FLOW)
    at, seeds = [0.5, 40.0, 3.7e7], [0x1234, 0xBEEF, 7, 99]  # perturb schedule over the set
    got = fc.classify(dk, seeds, at)
    assert got.npartitions == dk.npartitions
    np.testing.assert_array_equal(got.compute().to_numpy(), fc.classify(pk, seeds, at))
    pd.testing.assert_index_equal(got.compute().index, pk.index)
    for sfq in (qoslab.Sfq(profile="classic-2.6.3x"), qoslab.Sfq(profile="5.18+"),
                qoslab.Sfq(divisor=128, classifier=fc)):
        np.testing.assert_array_equal(sfq.bucket(dk, seed=0xC0FFEE).compute().to_numpy(),
                                      sfq.bucket(pk, seed=0xC0FFEE))


@pytest.mark.parametrize("make", [lambda: qoslab.FlowClassifier.from_tc(TC_FLOW),
                                  lambda: qoslab.Sfq(profile="classic-2.6.3x"),
                                  lambda: FqCodel(flows=64)], ids=["cls_flow", "sfq", "fq_codel"])
def test_sharing(both, make):
    pk, dk = both
    classifier = make()
    expected = sharing(pk, classifier, seed=5, trials=5)
    got = sharing(dk, classifier, seed=5, trials=5)
    pd.testing.assert_frame_equal(got.flows, expected.flows)
    assert (got.shared_now, got.shared_always, got.reasons, got.p_measured) == (
        expected.shared_now, expected.shared_always, expected.reasons, expected.p_measured)
    assert expected.flows["packets"].sum() == pk["src"].notna().sum() or \
        expected.flows["packets"].sum() == len(pk)


def test_replay(both):
    """A qdisc replayed over the Dask frame decides exactly as over the pandas frame."""
    pk, dk = both
    ring = ["ring/ring_2.pcap", "ring/ring_3.pcap"]  # one link, 5 s of its ring buffer
    mine = pk[pk["file"].isin(ring)]
    options = dict(rate=4e6, profile="classic-2.6.3x", t0=mine["time"].min())
    tc = "sfq limit 20 perturb 5"
    expected = qoslab.replay(mine, tc, chunk_packets=2000, **options)
    got = qoslab.replay(dk[dk["file"].isin(ring)], tc, **options)
    assert len(expected.decisions) == len(mine) and expected.decisions["dropped"].any()
    pd.testing.assert_frame_equal(got.decisions, expected.decisions)
    pd.testing.assert_frame_equal(got.probes, expected.probes)
    pd.testing.assert_frame_equal(got.events, expected.events)


def test_extra_vxlan_ports_reach_every_file_and_engine(tmp_path, dask_client, capsys):
    """VXLAN on Linux's old port 8472 is decoded in every file of a set when asked, by both
    engines and by `qoslab capture DIR --vxlan-port 8472`; without it, it is plain UDP."""
    from scapy.layers.inet import IP, TCP, UDP
    from scapy.layers.l2 import Ether
    from scapy.layers.vxlan import VXLAN
    from scapy.utils import wrpcap

    from qoslab.cli import main

    e = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
    inner = Ether() / IP(src="172.16.0.1", dst="172.16.0.2") / TCP(sport=33000, dport=443)
    for k in range(2):
        wrpcap(str(tmp_path / f"vx_{k}.pcap"),
               [e / IP(src="192.0.2.1", dst="192.0.2.2") / UDP(sport=50000 + i, dport=8472)
                / VXLAN(vni=7) / inner for i in range(40)])
    plain = read_captures(tmp_path, chunk_packets=16)
    assert set(plain["tunnel"]) == {"none"}
    for engine in ("pandas", "dask"):
        pk = compute_packets(read_captures(tmp_path, engine, chunk_packets=16,
                                           udp_tunnels={8472: "vxlan"}))
        assert len(pk) == 80 and set(pk["tunnel"]) == {"vxlan"}, engine
        assert set(pk["inner_src"].astype(str)) == {"172.16.0.1"}
        assert set(pk["tunnel_id"]) == {7}
    with pytest.raises(QoslabError, match="udp_tunnels: .gre. is not a UDP tunnel kind"):
        read_captures(tmp_path, udp_tunnels={8472: "gre"})
    assert main(["capture", str(tmp_path), "--level", "inner", "--vxlan-port", "8472",
                 "--chunk-packets", "16"]) == 0
    assert "172.16.0.1" in capsys.readouterr().out


def test_partitions_in_order_for_sequential_consumers(both):
    """What a replay consumes: every partition once, in set order, decoded ahead."""
    pk, dk = both
    seen = []
    for part in iter_partitions(dk, prefetch=3):
        seen.append(part)
    assert len(seen) == dk.npartitions
    pd.testing.assert_frame_equal(concat_packets(seen), pk)


def test_without_dask_the_error_says_what_to_install(captures, monkeypatch):
    for name in [m for m in sys.modules if m == "dask" or m.startswith("dask.")]:
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(EngineUnavailableError, match=r"pip install 'qoslab\[dask\]'") as err:
        read_captures(captures, engine="dask")
    assert isinstance(err.value, QoslabError)


def _peak_rss_bytes() -> int:
    """This process's peak resident memory (VmHWM: its own, unlike ``ru_maxrss``, which
    includes the RSS of the process that forked it)."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM in /proc/self/status")


def test_folder_four_times_a_workers_memory_limit(tmp_path):
    """1.6 GB of full-size frames through 2 workers limited to 384 MiB each: nothing is
    killed, nothing spills, the results are right, and each worker's peak RSS (capture bytes
    included) stays under the point where Dask pauses a worker (80 % of its limit)."""
    limit = 384 << 20
    paths = write_set(tmp_path, 12, 110_000, seed=9, snaplen=65535, flows=800,
                      echo_share=0.01, tcp_payloads=(1448,), ack_share=0.0)
    size = sum(p.stat().st_size for p in paths)
    assert size >= 4 * limit
    with local_cluster(2, memory_limit=limit) as c:
        pids = c.run(os.getpid)
        dk = read_captures(tmp_path, engine="dask", chunk_packets=25_000)
        assert dk.npartitions == 12 * 5
        table = flows(dk)
        probes = echo_rtts(dk)
        assert c.run(os.getpid) == pids  # no worker was killed and restarted
        peaks = c.run(_peak_rss_bytes)
        spilled = c.run(lambda dask_worker: sum(dask_worker.data.spilled_total))
    assert all(peak < 0.8 * limit for peak in peaks.values()), peaks
    assert not any(spilled.values()), spilled
    print(f"{size / 2**20:.0f} MiB of captures; worker limit {limit / 2**20:.0f} MiB; peak "
          "RSS per worker (MiB): " + ", ".join(f"{p / 2**20:.0f}" for p in peaks.values()))
    assert int(table["packets"].sum()) == 12 * 110_000
    assert (probes["status"] == "ok").sum() > 0.95 * len(probes)


def test_progress_is_a_widget_in_notebooks(tmp_path):
    """In Jupyter, qoslab.engines.progress() shows Dask's progress widget."""
    import nbformat
    from nbclient import NotebookClient

    shutil.copy(qoslab.data_path("captures/tunnel_uploads.pcap"), tmp_path / "a.pcap")
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(src) for src in (
        "import qoslab\nfrom qoslab.engines.cluster import local_cluster\n"
        "session = local_cluster(1)\nclient = session.__enter__()",
        f"packets = qoslab.read_captures({str(tmp_path)!r}, engine='dask', chunk_packets=500)\n"
        "with qoslab.engines.progress():\n    table = qoslab.capture.flows(packets)\n"
        "print(len(table))",
        "session.__exit__(None, None, None)")]
    NotebookClient(nb, timeout=120, kernel_name="python3", resources={
        "metadata": {"path": str(tmp_path)}}).execute()
    outputs = nb.cells[1].outputs
    assert any("application/vnd.jupyter.widget-view+json" in o.get("data", {})
               for o in outputs), outputs
    assert any(o.get("text", "").strip() == str(len(flows(qoslab.read_capture(
        tmp_path / "a.pcap")))) for o in outputs), outputs


def test_readme_dask_example_runs(repo, tmp_path):
    """The README's capture-set example runs as written (in a script, under the main guard
    Dask's worker processes need)."""
    import re
    import subprocess

    text = (repo / "README.md").read_text()
    block = next(b for b in re.findall(r"```python\n(.*?)```", text, flags=re.S)
                 if 'engine="dask"' in b)
    body = "\n".join("    " + line for line in block.splitlines())
    script = tmp_path / "example.py"
    script.write_text("if __name__ == '__main__':\n" + body + "\n"
                      "    print(len(flows), len(probes), report.classes)\n")
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                         timeout=300, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    pk = qoslab.read_capture(qoslab.data_path("captures/tunnel_uploads.pcap"))
    assert out.stdout.split()[-3:] == [str(len(flows(pk))), str(len(echo_rtts(pk))), "1024"]


def _overlapping_set(folder):
    """Three captures read in name order but not in time order: b.pcap starts before
    a.pcap ends (two interfaces captured side by side), c.pcapng (ns, two sections, two
    interfaces) begins with two simple packet blocks (no time) and lies inside a's range."""
    from tests.test_capture_tshark import pcapng_bytes

    e = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")

    def udp(host, port, size):
        return e / IP(src=f"10.0.0.{host}", dst="192.0.2.9") / UDP(sport=port, dport=9) \
            / Raw(b"u" * size)

    t0 = 1_764_000_000
    a = [udp(1, 1000 + i % 4, 900) for i in range(24)]
    for i, p in enumerate(a):
        p.time = t0 + 10 + i * 0.002
    b = [udp(2, 2000 + i % 3, 1200) for i in range(20)]
    for i, p in enumerate(b):
        p.time = t0 + 9.95 + i * 0.003  # overlaps a, earlier start
    wrpcap(str(folder / "a.pcap"), a)
    wrpcap(str(folder / "b.pcap"), b)
    frames = [bytes(udp(3, 3000 + i % 2, 600)) for i in range(12)]
    ns = (t0 + 10) * 10**9 + 50_000_000
    first = pcapng_bytes([(1, 0, 9), (1, 0, 6)],
                         [("spb", 0, 0, frames[0]), ("spb", 0, 0, frames[1])]
                         + [("epb", i % 2, ns + i * 1_000_003 if i % 2 == 0
                             else (ns + i * 1_000_003) // 1000, f)
                            for i, f in enumerate(frames[2:6])])
    second = pcapng_bytes([(1, 0, 9)], [("epb", 0, ns - 7_000_001 + i * 999_999, f)
                                        for i, f in enumerate(frames[6:])], order=">")
    (folder / "c.pcapng").write_bytes(first + second)


@pytest.mark.parametrize("chunk", [2, 10**6])
def test_replay_of_files_out_of_time_order(tmp_path, dask_client, chunk):
    """Files whose time ranges overlap, and a chunk holding only untimed packets (pcapng
    simple packet blocks), replay on Dask exactly as the pandas frame (sorted by time as a
    whole): the partitions are merged by time, not fed one after the other."""
    _overlapping_set(tmp_path)
    pk = read_captures(tmp_path, chunk_packets=chunk)
    dk = read_captures(tmp_path, "dask", chunk_packets=chunk)
    assert not pk["time"].dropna().is_monotonic_increasing and pk["time"].isna().any()
    for options in ({"t0": pk["time"].min()}, {}):
        expected = qoslab.replay(pk, "sfq limit 12 perturb 1", rate=2e6,
                                 profile="classic-2.6.3x", **options)
        got = qoslab.replay(dk, "sfq limit 12 perturb 1", rate=2e6, profile="classic-2.6.3x",
                            **options)
        assert expected.decisions["dropped"].any() and len(expected.decisions) == len(pk) - 2
        pd.testing.assert_frame_equal(got.decisions, expected.decisions)
        pd.testing.assert_frame_equal(got.probes, expected.probes)
        pd.testing.assert_frame_equal(got.events, expected.events)
        assert got.meta == expected.meta and expected.meta["packets_reordered"] > 0


def test_per_packet_functions_of_a_filtered_frame_with_empty_partitions(both):
    """A filter leaves most partitions empty: each of them hashes to an empty Series (the
    jhash of no packets is no hash, not a broadcasting error), as an empty pandas frame."""
    pk, dk = both
    mine, dmine = pk[pk["file"] == "tunnel.pcap"], dk[dk["file"] == "tunnel.pcap"]
    assert 0 < len(mine) < CHUNK * (dk.npartitions - 1)
    fc = qoslab.FlowClassifier.from_tc(TC_FLOW)
    for sfq in (qoslab.Sfq(profile="classic-2.6.3x"), qoslab.Sfq(profile="2.6.37-3.2"),
                qoslab.Sfq(divisor=128, classifier=fc)):
        np.testing.assert_array_equal(sfq.bucket(dmine, seed=7).compute().to_numpy(),
                                      sfq.bucket(mine, seed=7))
        assert len(sfq.bucket(pk.iloc[:0], seed=7)) == 0
    np.testing.assert_array_equal(fc.classify(dmine, [5]).compute().to_numpy(),
                                  fc.classify(mine, [5]))


_WITHOUT_DASK = r"""
import sys

class NoDask:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("dask", "distributed"):
            raise ModuleNotFoundError(f"No module named {name!r}")

sys.meta_path.insert(0, NoDask())
import qoslab
from qoslab.cli import main
from qoslab.errors import EngineUnavailableError

folder, out = sys.argv[1], sys.argv[2]
assert main(["capture", folder, "--top", "0", "--parquet", out]) == 0
print("PANDAS", len(qoslab.read_packets(out)))
for call in (lambda: qoslab.read_captures(folder, engine="dask"),
             lambda: qoslab.read_packets(out, engine="dask")):
    try:
        call()
    except EngineUnavailableError as exc:
        print("ERROR", exc)
print("IMPORTED" if "dask" in sys.modules else "NOT IMPORTED")
print("CLI", main(["capture", folder, "--engine", "dask"]))
"""


def test_without_dask_installed_every_entry_says_what_to_install(tmp_path):
    """In a fresh interpreter where dask and distributed cannot be imported (``python -I``):
    the pandas engine and Parquet datasets work, and every Dask entry — read_captures,
    read_packets and ``qoslab capture --engine dask`` (which needs distributed too) — ends in
    a one-line EngineUnavailableError naming what to install."""
    (tmp_path / "caps").mkdir()
    shutil.copy(qoslab.data_path("captures/tunnel_uploads.pcap"), tmp_path / "caps" / "a.pcap")
    packets = len(qoslab.read_capture(tmp_path / "caps" / "a.pcap"))
    run = subprocess.run([sys.executable, "-I", "-c", _WITHOUT_DASK, str(tmp_path / "caps"),
                          str(tmp_path / "ds")], capture_output=True, text=True, timeout=120,
                         cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    errors = [line for line in lines if line.startswith("ERROR")]
    assert len(errors) == 2 and all("pip install 'qoslab[dask]'" in e for e in errors)
    assert "NOT IMPORTED" in lines and f"PANDAS {packets}" in lines
    assert "CLI 2" in lines
    assert "needs dask.distributed" in run.stderr and "pip install 'qoslab[dask]'" in run.stderr
    assert "Traceback" not in run.stderr


def test_replay_of_a_set_decodes_each_partition_once(captures, dask_client, monkeypatch):
    """The partitions' time ranges come from the set's plan (record headers): the replay
    computes nothing but the partitions it feeds — no first pass over the set — and decides
    as the pandas frame; a frame derived from the set (filtered) still takes that pass."""
    from qoslab.engines import ordered
    from qoslab.engines.captures import plan_of

    files = [captures / "ring" / "ring_2.pcap", captures / "ring" / "ring_1.pcap"]
    pk = read_captures(files, chunk_packets=CHUNK)
    dk = read_captures(files, engine="dask", chunk_packets=CHUNK)
    passes = []
    real = ordered.compute
    monkeypatch.setattr(ordered, "compute", lambda *a, **k: passes.append(k) or real(*a, **k))
    options = dict(rate=4e6, profile="classic-2.6.3x", t0=pk["time"].min())
    got = qoslab.replay(dk, "sfq limit 20 perturb 5", **options)
    expected = qoslab.replay(pk, "sfq limit 20 perturb 5", **options)
    pd.testing.assert_frame_equal(got.decisions, expected.decisions)
    assert got.meta == expected.meta and expected.decisions["dropped"].any()
    assert passes == [] and plan_of(dk) is not None
    udp = dk[dk["proto"] == 17]
    assert plan_of(udp) is None
    qoslab.replay(udp, "sfq limit 20", **options)
    assert [k["what"] for k in passes] == ["time ranges of the partitions"]
