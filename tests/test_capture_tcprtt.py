"""TCP round-trip times (qoslab.capture.tcp_rtts) against tshark's tcp.analysis.ack_rtt.

The kernel test (tests/test_capture_kernel.py) compares real iperf3 traffic; here crafted
conversations walk the corners of Wireshark's analysis: retransmissions (the oldest copy is
timed), cumulative and partial acknowledgements, keep-alives, SYN/FIN counting one, a reset,
a reused port pair with a new initial sequence number, sequence numbers wrapping past 2^32, an
acknowledgement in the same microsecond (no RTT), and a direction with more than 10 000
unacknowledged segments (Wireshark's cap: replayed frame by frame).
"""

from __future__ import annotations

import subprocess

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.all import IP, TCP, Ether, IPv6, Raw

from qoslab.capture import read_capture, tcp_rtts
from qoslab.capture import tcprtt as mod
from tests.conftest import need_tool
from tests.test_capture_tshark import write_pcap

E = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")


def _conv(client, server, cport, sport, isn_c, isn_s, script, ip=IP):
    """Frames of a scripted conversation: (who, flags, seq offset, ack offset, payload)."""
    out = []
    for who, flags, seq, ack, size in script:
        if who == "c":
            f = E / ip(src=client, dst=server) / TCP(sport=cport, dport=sport, flags=flags,
                                                      seq=(isn_c + seq) % 2**32,
                                                      ack=(isn_s + ack) % 2**32 if "A" in flags
                                                      else ack)
        else:
            f = E / ip(src=server, dst=client) / TCP(sport=sport, dport=cport, flags=flags,
                                                      seq=(isn_s + seq) % 2**32,
                                                      ack=(isn_c + ack) % 2**32 if "A" in flags
                                                      else ack)
        out.append(bytes(f / Raw(b"d" * size)) if size else bytes(f))
    return out


def corners():
    """Frames and their times (ns) of conversations walking the analysis' corners."""
    script = [
        ("c", "S", 0, 0, 0), ("s", "SA", 0, 1, 0), ("c", "A", 1, 1, 0),
        ("c", "PA", 1, 1, 1000), ("c", "PA", 1001, 1, 1000), ("c", "PA", 2001, 1, 1000),
        ("s", "A", 1, 1001, 0),  # acks the first exactly
        ("s", "A", 1, 3001, 0),  # cumulative: acks the third exactly, the second silently
        ("c", "PA", 3001, 1, 1000), ("c", "PA", 3001, 1, 1000),  # a retransmission
        ("s", "A", 1, 4001, 0),  # exactly both copies: the oldest is timed
        ("c", "PA", 4001, 1, 1000), ("s", "A", 1, 4501, 0),  # a partial ack: no RTT
        ("s", "A", 1, 5001, 0),  # the rest
        ("c", "A", 5000, 1, 1),  # a keep-alive (one byte before nextseq)
        ("s", "A", 1, 5001, 0),
        ("c", "PA", 5001, 1, 500), ("s", "A", 1, 5501, 0),  # same microsecond: no RTT
        ("s", "PA", 1, 5501, 700), ("c", "A", 5501, 701, 0),  # the server sends too
        ("c", "FA", 5501, 701, 0), ("s", "FA", 701, 5502, 0), ("c", "A", 5502, 702, 0),
    ]
    frames = _conv("10.0.0.1", "10.0.0.2", 40000, 5201, 2**32 - 1500, 77, script)
    gaps = [0, 10, 1, 1, 1, 1, 12, 3, 1, 200, 15, 1, 9, 4, 50, 11, 1, 0, 2, 7, 1, 6, 5]
    # the same ports again with a new ISN; a reset with a garbage acknowledgement
    again = [("c", "S", 0, 0, 0), ("s", "SA", 0, 1, 0), ("c", "A", 1, 1, 0),
             ("c", "PA", 1, 1, 100), ("s", "R", 1, 12345, 0)]
    frames += _conv("10.0.0.1", "10.0.0.2", 40000, 5201, 555, 999, again)
    gaps += [100, 8, 1, 1, 3]
    six = [("c", "S", 0, 0, 0), ("s", "SA", 0, 1, 0), ("c", "PA", 1, 1, 10),
           ("s", "A", 1, 11, 0)]
    frames += _conv("2001:db8::1", "2001:db8::2", 1234, 80, 10, 20, six, ip=IPv6)
    gaps += [5, 4, 1, 2]
    times = 1_700_000_000 * 10**9 + np.cumsum(gaps) * 1_000_000
    return frames, [int(t) for t in times]


def tshark_ack_rtts(path):
    out = subprocess.run([need_tool("tshark"), "-n", "-r", str(path), "-T", "fields", "-e",
                          "frame.number", "-e", "tcp.analysis.ack_rtt", "-e",
                          "tcp.analysis.acks_frame"], capture_output=True, text=True,
                         check=True, timeout=60).stdout
    ref = {}
    for line in out.splitlines():
        frame, rtt, acked = line.split("\t")
        if rtt:
            ref[int(frame) - 1] = (float(rtt), int(acked) - 1)
    return ref


def ours(path):
    rtt = tcp_rtts(read_capture(path))
    return {int(a): (r / 1000, int(s)) for a, r, s in
            zip(rtt["ack_row"], rtt["rtt_ms"], rtt["segment_row"], strict=True)}, rtt


def test_crafted_corners_match_tshark(tmp_path):
    frames, times = corners()
    path = write_pcap(tmp_path / "tcp.pcap", frames, nano=True, times=times)
    ref = tshark_ack_rtts(path)
    got, table = ours(path)
    assert got.keys() == ref.keys()
    for k in ref:
        assert got[k][1] == ref[k][1] and abs(got[k][0] - ref[k][0]) < 1e-9, (k, got[k], ref[k])
    assert len(ref) >= 12
    # the retransmitted segment is timed from its first copy (frame 8, acked by frame 10)
    assert got[10][1] == 8
    assert set(table["kind"]) == {"handshake", "data", "fin"}
    assert table.loc[table["kind"] == "handshake", "seq"].tolist()[:2] == [0, 0]
    streams = set(table["stream"])
    assert "10.0.0.1:40000 > 10.0.0.2:5201 tcp" in streams
    assert "[2001:db8::1]:1234 > [2001:db8::2]:80 tcp" in streams


def test_more_unacknowledged_segments_than_wireshark_keeps(tmp_path, monkeypatch):
    """A direction whose ACKs are missing for a while: Wireshark stops remembering segments
    at 10 000; qoslab notices and replays that direction frame by frame."""
    monkeypatch.setattr(mod, "MAX_UNACKED", 50)  # Wireshark's 10 000, scaled for the test
    script = [("c", "S", 0, 0, 0), ("s", "SA", 0, 1, 0), ("c", "A", 1, 1, 0)]
    script += [("c", "PA", 1 + 10 * i, 1, 10) for i in range(80)]
    script += [("s", "A", 1, 1 + 10 * i, 0) for i in (10, 45, 60, 79, 80)]
    frames = _conv("10.0.0.1", "10.0.0.2", 40000, 5201, 1000, 2000, script)
    times = [1_700_000_000 * 10**9 + i * 1_000_000 for i in range(len(frames))]
    path = write_pcap(tmp_path / "many.pcap", frames, nano=True, times=times)
    got, _ = ours(path)
    monkeypatch.setattr(mod, "MAX_UNACKED", 10_000)
    unlimited, _ = ours(path)
    assert got != unlimited  # the cap changes which segments can be timed ...
    replayed = _replay_directly(path, cap=50)
    assert got == replayed  # ... exactly as the frame-by-frame walk says


def _replay_directly(path, cap):
    mod.MAX_UNACKED = cap
    try:
        packets = read_capture(path)
        seg = mod._segments(packets)
        conn, direction = mod._connections(seg)
        seg["conn"], seg["dir"] = conn, direction
        flags = seg["flags"].to_numpy()
        synfin = (flags & (mod.TCP_SYN | mod.TCP_FIN)) != 0
        is_seg = (seg["len"].to_numpy() > 0) | synfin
        n = len(seg)
        space_seg, space_ack = conn * 2 + direction, conn * 2 + 1 - direction
        useq = seg["seq"].to_numpy()
        uack = seg["ack"].to_numpy()
        nextseq = useq + seg["len"].to_numpy() + synfin
        s_rows, a_rows = mod._replay(seg, is_seg, space_seg, space_ack, nextseq, uack)
        t = seg["t"].to_numpy()
        return {int(seg["label"].iloc[a]): ((t[a] - t[s]), int(seg["label"].iloc[s]))
                for s, a in zip(s_rows, a_rows, strict=True) if t[a] != t[s]} if n else {}
    finally:
        mod.MAX_UNACKED = 10_000


@settings(max_examples=150, deadline=None, derandomize=True)
@given(events=st.lists(st.tuples(st.sampled_from(["c", "s"]), st.integers(0, 6),
                                 st.integers(0, 3), st.integers(0, 60)), min_size=1,
                       max_size=60),
       isn=st.integers(0, 2**32 - 1))
def test_vectorized_walk_equals_the_frame_by_frame_walk(events, isn):
    """Random segments and acknowledgements (reordered, repeated, wrapping): the vectorized
    search finds exactly the samples of Wireshark's walk."""
    rows = []
    sent = {"c": 0, "s": 0}
    for who, step, back, size in events:
        sent[who] += step * 10
        other = "s" if who == "c" else "c"
        rows.append({"who": who, "seq": (isn + sent[who] - back * 10) % 2**32,
                     "ack": (isn + sent[other] - back * 10) % 2**32, "len": size})
    seg = pd.DataFrame({
        "frame": np.arange(len(rows)), "label": np.arange(len(rows)),
        "t": np.arange(len(rows)) * 0.001,
        "src": ["a" if r["who"] == "c" else "b" for r in rows],
        "dst": ["b" if r["who"] == "c" else "a" for r in rows],
        "sport": [1 if r["who"] == "c" else 2 for r in rows],
        "dport": [2 if r["who"] == "c" else 1 for r in rows],
        "seq": [r["seq"] for r in rows], "ack": [r["ack"] for r in rows],
        "len": [r["len"] for r in rows], "flags": [0x010] * len(rows),
        "tos": [0.0] * len(rows), "ttl": [64.0] * len(rows)})
    conn, direction = mod._connections(seg)
    seg["conn"], seg["dir"] = conn, direction
    is_seg = seg["len"].to_numpy() > 0
    n = len(seg)
    space_seg, space_ack = conn * 2 + direction, conn * 2 + 1 - direction
    values = np.r_[seg["seq"].to_numpy(), seg["ack"].to_numpy()]
    spaces = np.r_[space_seg, space_ack]
    by_time = np.argsort(np.r_[np.arange(n) * 2, np.arange(n) * 2 + 1], kind="stable")
    unwrapped = np.empty(2 * n, np.int64)
    unwrapped[by_time] = mod._unwrap(values[by_time], spaces[by_time])
    useq, uack = unwrapped[:n], unwrapped[n:]
    nextseq = useq + seg["len"].to_numpy()
    fast = mod._vectorized(seg, is_seg, space_seg, space_ack, nextseq, uack)
    slow = mod._replay(seg, is_seg, space_seg, space_ack, nextseq, uack)
    assert sorted(zip(*fast, strict=True)) == sorted(zip(*slow, strict=True))


def test_tcp_rtts_of_an_upload_alone_feed_plots_analysis_and_runs(tmp_path):
    """A capture of uploads alone becomes a RUN: plotted, analysed, saved and loaded."""
    import qoslab
    from qoslab import data_path
    from qoslab.runs import Run

    probes = tcp_rtts(read_capture(data_path("captures/tunnel_uploads.pcap")))
    assert probes["stream"].nunique() == 2 and (probes["status"] == "ok").all()
    run = Run(probes, qoslab.schema.empty_events(), {"source": "tcp_rtts"})
    fig = qoslab.plots.latency(run, kind="scatter")
    assert fig is not None
    qoslab.analysis.detect_spikes(run.probes)
    back = qoslab.load(run.save(tmp_path / "upload.json.gz"))
    pd.testing.assert_frame_equal(back.probes[list(probes.columns)], probes,
                                  check_dtype=False)
