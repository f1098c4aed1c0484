"""read_capture / iter_capture behaviour on bad input, chunks, flows, echo pairs and the CLI."""

from __future__ import annotations

import importlib.util
import struct
import warnings
from functools import lru_cache

import numpy as np
import pandas as pd
import pytest
from scapy.all import (
    GRE,
    ICMP,
    IP,
    TCP,
    UDP,
    Ether,
    IPOption_Router_Alert,
    IPv6,
    IPv6ExtHdrDestOpt,
    IPv6ExtHdrHopByHop,
    Raw,
)
from scapy.layers.vxlan import VXLAN

import qoslab
from qoslab import CaptureFormatError, data_path, read_capture
from qoslab.capture import CaptureWarning, concat_packets, echo_rtts, flows, iter_capture
from qoslab.cli import main
from qoslab.schema import PACKETS, PROBES
from tests.test_capture_tshark import compare, link_frames, write_pcap, write_pcapng

TUNNEL = data_path("captures/tunnel_uploads.pcap")


@lru_cache(maxsize=1)
def _generator():
    spec = importlib.util.spec_from_file_location("make_captures",
                                                  data_path("make_captures.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@lru_cache(maxsize=1)
def _crafted():
    """The generator's timeline and ground truth (frames left unbuilt: scapy is slow)."""
    return _generator().tunnel_uploads(build=False)


def test_columns_and_dtypes_follow_the_schema():
    df = read_capture(TUNNEL)
    assert list(df.columns) == list(PACKETS)
    assert {c: str(t) for c, t in df.dtypes.items()} == PACKETS
    assert df["t"].iloc[0] == 0.0 and df["t"].is_monotonic_increasing


def test_bundled_capture_follows_the_generator_timeline():
    frames, _ = _crafted()
    df = read_capture(TUNNEL)
    assert len(df) == len(frames)
    assert (df["time"].astype("int64").to_numpy() // 1000
            == np.array([t for t, _ in frames]) // 1000).all()


def test_bundled_captures_match_tshark():
    compare(TUNNEL)
    real = data_path("lab/bufferbloat-pings.pcap")  # written by tcpdump in the lab
    df = compare(real)
    assert (df["problem"] == "").all() and df["icmp_seq"].notna().sum() > 100


def test_chunks_concatenate_to_the_whole_frame():
    whole = read_capture(TUNNEL)
    chunks = list(iter_capture(TUNNEL, chunk_packets=700))
    assert [len(c) for c in chunks] == [700, 700, 700, 700, len(whole) - 2800]
    pd.testing.assert_frame_equal(concat_packets(chunks), whole)


def test_progress_bar_on_request(capsys):
    list(iter_capture(TUNNEL, 1000, progress=True))
    assert "tunnel_uploads.pcap" in capsys.readouterr().err


@pytest.mark.parametrize("content", [b"", b"hello world, not a capture\n", b"\xd4\xc3\xb2"])
def test_not_a_capture_is_a_clear_error(tmp_path, content):
    path = tmp_path / "notes.txt"
    path.write_bytes(content)
    with pytest.raises(CaptureFormatError, match="notes.txt"):
        read_capture(path)


def test_pcap_with_wrong_version_and_pcapng_with_wrong_bom(tmp_path):
    bad = tmp_path / "v3.pcap"
    bad.write_bytes(struct.pack("<IHHiIII", 0xA1B2C3D4, 3, 0, 0, 0, 65535, 1))
    with pytest.raises(CaptureFormatError, match="version 3.0, expected 2"):
        read_capture(bad)
    ng = tmp_path / "bom.pcapng"
    ng.write_bytes(struct.pack("<IIIHHq", 0x0A0D0D0A, 28, 0x11223344, 1, 0, -1)
                   + struct.pack("<I", 28))
    with pytest.raises(CaptureFormatError, match="byte-order magic"):
        read_capture(ng)


def _record_offsets(frames):
    offs, off = [], 24
    for f in frames:
        offs.append(off)
        off += 16 + len(f)
    return offs, off


def test_cut_file_keeps_complete_records_and_warns(tmp_path):
    frames = link_frames(1)
    full = write_pcap(tmp_path / "full.pcap", frames).read_bytes()
    offs, _ = _record_offsets(frames)
    for k, extra in ((5, 3), (9, 16 + 7), (len(frames) - 1, 1)):
        cut = tmp_path / f"cut{k}.pcap"
        cut.write_bytes(full[:offs[k] + extra])
        with pytest.warns(CaptureWarning, match="cut capture"):
            df = read_capture(cut)
        assert len(df) == k
        assert df["wire_len"].tolist() == [len(f) for f in frames[:k]]


def test_lying_record_length_stops_with_a_warning(tmp_path):
    frames = link_frames(1)
    data = bytearray(write_pcap(tmp_path / "ok.pcap", frames).read_bytes())
    offs, _ = _record_offsets(frames)
    struct.pack_into("<I", data, offs[7] + 8, 0x7FFFFFF0)  # caplen of record 7
    path = tmp_path / "lying.pcap"
    path.write_bytes(bytes(data))
    with pytest.warns(CaptureWarning, match="claims 2147483632 captured bytes"):
        df = read_capture(path)
    assert len(df) == 7


def test_absurd_snaplen_in_the_file_header_is_not_trusted(tmp_path):
    frames = link_frames(1)[:5]
    path = write_pcap(tmp_path / "snap.pcap", frames, snaplen=0xFFFFFFFF)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(read_capture(path)) == 5


def test_pcapng_lying_block_and_cut_file(tmp_path):
    frames = link_frames(1)[:6]
    ok = write_pcapng(tmp_path / "ok.pcapng", [(1, 0, None)],
                      [("epb", 0, 10**15 + i, f) for i, f in enumerate(frames)],
                      extra_blocks=False).read_bytes()
    first_epb = 28 + 20  # SHB 28 bytes, IDB 20 bytes
    sizes = [32 + len(f) + (-len(f) % 4) for f in frames]
    third = first_epb + sizes[0] + sizes[1]
    cut = tmp_path / "cut.pcapng"
    cut.write_bytes(ok[:third + 10])
    with pytest.warns(CaptureWarning, match="cut capture"):
        assert len(read_capture(cut)) == 2
    lying = bytearray(ok)
    struct.pack_into("<I", lying, third + 4, 0x10000000)
    (tmp_path / "lying.pcapng").write_bytes(bytes(lying))
    with pytest.warns(CaptureWarning, match="claims length"):
        assert len(read_capture(tmp_path / "lying.pcapng")) == 2
    caplen = bytearray(ok)
    struct.pack_into("<I", caplen, third + 20, 5000)  # EPB captured length beyond its block
    (tmp_path / "caplen.pcapng").write_bytes(bytes(caplen))
    with pytest.warns(CaptureWarning, match="more captured bytes than the block holds"):
        df = read_capture(tmp_path / "caplen.pcapng")
    assert len(df) == 6 and df["cap_len"].iloc[2] == sizes[2] - 32


def test_pcapng_damaged_second_section_keeps_the_first(tmp_path):
    one = write_pcapng(tmp_path / "a.pcapng", [(1, 0, None)],
                       [("epb", 0, 10**15 + i, f) for i, f in enumerate(link_frames(1)[:4])],
                       extra_blocks=False).read_bytes()
    for tail, message in ((one[:10], "cut short"),
                          (one[:8] + b"\x11\x22\x33\x44" + one[12:], "byte-order magic")):
        path = tmp_path / "two.pcapng"
        path.write_bytes(one + tail)
        with pytest.warns(CaptureWarning, match=message):
            assert len(read_capture(path)) == 4


def test_malformed_headers_are_flagged_with_the_fields_that_decode(tmp_path):
    e = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
    short_ihl = bytearray(bytes(e / IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=1, dport=2)))
    short_ihl[14] = 0x43  # IHL 3 words: shorter than the fixed header
    bad_total = bytearray(bytes(e / IP(src="10.0.0.3", dst="10.0.0.4") / TCP()))
    struct.pack_into(">H", bad_total, 16, 12)  # total length below the header length
    wrong_version = bytes(e / IP(src="10.0.0.5", dst="10.0.0.6") / Raw(
        b"\x65" + b"\0" * 39))  # 4in4 whose inner header says version 6
    wrong_version = bytearray(wrong_version)
    wrong_version[14 + 9] = 4
    long_chain = IPv6(src="2001:db8::1", dst="2001:db8::2")
    for _ in range(20):
        long_chain = long_chain / IPv6ExtHdrDestOpt()
    long_chain = bytes(e / long_chain / UDP())
    frames = [bytes(short_ihl), bytes(bad_total), bytes(wrong_version), long_chain,
              bytes(e / IP(src="10.0.0.7", dst="10.0.0.8") / ICMP())[:14 + 20 + 3]]
    df = read_capture(write_pcap(tmp_path / "bad.pcap", frames))
    # the last frame's record says it was 37 bytes on the wire: its IP total length (28)
    # runs past it, a lying header; cut by the snap length, the same bytes are truncated
    assert df["problem"].tolist() == ["bad_ip_header", "bad_ip_header", "bad_inner_ip_header",
                                      "bad_ext_header", "bad_ip_header"]
    assert df["src"].astype(str).tolist()[:3] == ["10.0.0.1", "10.0.0.3", "10.0.0.5"]
    assert df["sport"].isna().all() and df["ttl"].notna().all()
    assert df["tunnel"].iloc[2] == "4in4" and pd.isna(df["inner_src"].iloc[2])
    cut = read_capture(write_pcap(tmp_path / "cut.pcap", [bytes(
        e / IP(src="10.0.0.7", dst="10.0.0.8") / ICMP())], snaplen=14 + 20 + 3))
    for row in (df.iloc[4], cut.iloc[0]):
        assert row["proto"] == 1 and row["icmp_type"] == 8 and pd.isna(row["icmp_seq"])
    assert cut["problem"].tolist() == ["truncated"]


def test_unknown_link_type_rows_stay(tmp_path):
    df = read_capture(write_pcap(tmp_path / "lt.pcap", [b"\x01\x02\x03" * 10] * 3, 147))
    assert len(df) == 3 and (df["problem"] == "unsupported_link").all()
    assert df["wire_len"].tolist() == [30] * 3


def test_flows_count_what_was_crafted(tmp_path):
    e = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
    a = e / IP(src="10.0.0.1", dst="10.0.0.2", tos=0x10) / TCP(sport=1000, dport=22)
    a2 = e / IP(src="10.0.0.1", dst="10.0.0.2", tos=0x08) / TCP(sport=1000, dport=22) / Raw(
        b"x" * 100)
    b = e / IP(src="10.0.0.3", dst="10.0.0.2") / UDP(sport=5, dport=6)
    tun = e / IP(src="192.0.2.1", dst="192.0.2.2") / IP(src="10.0.0.1", dst="10.0.0.2",
                                                         tos=0x10) / TCP(sport=1000, dport=22)
    frames = [bytes(a), bytes(b), bytes(a2), bytes(tun)]
    times = [10**18, 10**18 + 10**9, 10**18 + 2 * 10**9, 10**18 + 4 * 10**9]
    pk = read_capture(write_pcap(tmp_path / "f.pcap", frames, nano=True, times=times))
    inner = flows(pk, "inner").set_index(["src", "sport"])
    first = inner.loc[("10.0.0.1", 1000)]
    assert first["packets"] == 3 and first["bytes"] == len(a) + len(a2) + len(tun)
    assert first["first"] == 0.0 and first["last"] == 4.0 and first["tos"] == "0x08,0x10"
    assert first["rate_bps"] == pytest.approx(first["bytes"] * 8 / 4.0)
    outer = flows(pk, "outer")
    assert len(outer) == 3 and set(outer["tunnel"]) == {"none", "4in4"}
    assert np.isnan(outer.set_index("src").loc["10.0.0.3", "rate_bps"])
    with pytest.raises(qoslab.ConfigError):
        flows(pk, "middle")


def test_echo_rtts_recover_the_crafted_pings():
    gen = _generator()
    _, truth = _crafted()
    probes = echo_rtts(read_capture(TUNNEL))
    assert list(probes.columns) == [*PROBES, "request_row", "reply_row"]
    want = pd.DataFrame(truth["pings"]).sort_values("t").reset_index(drop=True)
    assert len(probes) == len(want)
    got = probes.sort_values("t_sent").reset_index(drop=True)
    t0 = read_capture(TUNNEL)["time"].iloc[0].value / 1e9 - gen.START_NS / 1e9
    assert np.allclose(got["t_sent"] + t0, want["t"], atol=2e-6)
    lost = want["reply_t"].isna()
    assert (got["status"] == np.where(lost, "lost", "ok")).all()
    rtt = (want["reply_t"] - want["t"]) * 1000
    assert np.allclose(got.loc[~lost, "rtt_ms"], rtt[~lost], atol=2e-3)
    assert got.loc[lost, "rtt_ms"].isna().all()
    assert (got["tos"] == want["tos"]).all() and (got["size"] == want["size"]).all()
    assert set(got["stream"]) == {"10.20.0.5 tos=0x00 size=56", "10.20.0.5 tos=0x10 size=56",
                                  "10.20.0.5 tos=0x08 size=56", "2001:db8:20::5 tos=0x10 size=32"}


def test_echo_rtts_duplicates_losses_and_timeout(tmp_path):
    e = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")

    def echo(src, dst, kind, seq, tos=0):
        return bytes(e / IP(src=src, dst=dst, tos=tos) / ICMP(type=kind, id=7, seq=seq)
                     / Raw(b"x" * 20))

    a, b = "10.0.0.1", "10.0.0.2"
    frames = [echo(a, b, 8, 1), echo(b, a, 0, 1), echo(b, a, 0, 1),  # answered twice
              echo(a, b, 8, 2),  # never answered
              echo(a, b, 8, 3, tos=0x10), echo(b, a, 0, 3),  # answered after 30 s: too late
              echo(b, a, 0, 9)]  # a reply nobody asked for
    ms = 10**6
    times = [0, 5 * ms, 6 * ms, 100 * ms, 200 * ms, 30_200 * ms, 30_300 * ms]
    pk = read_capture(write_pcap(tmp_path / "e.pcap", frames, nano=True,
                                 times=[10**18 + t for t in times]))
    probes = echo_rtts(pk)
    assert probes["seq"].tolist() == [1, 1, 2, 3]
    assert probes["status"].tolist() == ["ok", "duplicate", "lost", "lost"]
    assert probes["rtt_ms"].iloc[:2].tolist() == [5.0, 6.0]
    assert probes["stream"].tolist()[2:] == ["10.0.0.2 tos=0x00 size=20",
                                             "10.0.0.2 tos=0x10 size=20"]
    assert echo_rtts(pk, timeout=60)["status"].tolist() == ["ok", "duplicate", "lost", "ok"]


def test_cli_prints_summary_and_flows_and_exports(tmp_path, capsys):
    out_csv, out_pq = tmp_path / "p.csv", tmp_path / "p.parquet"
    assert main(["capture", str(TUNNEL), "--csv", str(out_csv), "--top", "5"]) == 0
    text = capsys.readouterr().out
    assert "2913 packets" in text and "4in4 2873" in text and "11 flows" in text
    csv = pd.read_csv(out_csv)
    assert len(csv) == 2913 and list(csv.columns) == list(PACKETS)
    assert main(["capture", str(TUNNEL), "--parquet", str(out_pq), "--level", "outer"]) == 0
    back = pd.read_parquet(out_pq)
    assert len(back) == 2913 and back["src"].astype(str).iloc[0] == "192.0.2.1"
    junk = tmp_path / "junk.pcap"
    junk.write_text("no capture here")
    assert main(["capture", str(junk)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "junk.pcap" in err and "pcap magic" in err


def test_cli_reads_chunk_by_chunk_with_the_same_result(tmp_path, capsys, monkeypatch):
    """Summary, flows and exports are built chunk by chunk: captures larger than memory work,
    and the output does not depend on the chunk size."""
    from qoslab.capture import cli

    outputs = {}
    for chunk in (cli.CHUNK, 333):
        monkeypatch.setattr(cli, "CHUNK", chunk)
        (tmp_path / str(chunk)).mkdir()
        csv, pq = tmp_path / str(chunk) / "p.csv", tmp_path / str(chunk) / "p.parquet"
        assert main(["capture", str(TUNNEL), "--csv", str(csv), "--top", "0"]) == 0
        text = capsys.readouterr().out
        assert main(["capture", str(TUNNEL), "--parquet", str(pq), "--level", "outer"]) == 0
        outputs[chunk] = (text, capsys.readouterr().out, csv.read_bytes(), pd.read_parquet(pq))
    (a, b, c, d), (a2, b2, c2, d2) = outputs.values()
    assert a.replace("/1048576/", "/333/") == a2 and c == c2
    assert b.replace("/1048576/", "/333/") == b2
    pd.testing.assert_frame_equal(d.astype(str), d2.astype(str))
    assert len(d) == 2913 and list(d.columns) == list(PACKETS)


def test_real_tcpdump_capture_of_loopback_pings(tmp_path):
    """tcpdump's own file of iputils pings at TOS 0x10 on lo: tshark agrees, RTTs pair up."""
    from tests.conftest import need_root, need_tool

    need_root("capturing with tcpdump")
    tcpdump, ping = need_tool("tcpdump"), need_tool("ping")
    import subprocess
    import time

    path = tmp_path / "lo.pcap"
    cap = subprocess.Popen([tcpdump, "-i", "lo", "-U", "-w", str(path), "icmp"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 20  # tcpdump says "listening" once the socket is open
        while b"listening" not in cap.stderr.readline() and time.monotonic() < deadline:
            assert cap.poll() is None, "tcpdump exited"
        # an unusual payload size keeps other loopback pings out of this stream
        subprocess.run([ping, "-c", "4", "-i", "0.2", "-s", "61", "-Q", "0x10", "127.0.0.1"],
                       stdout=subprocess.DEVNULL, check=True, timeout=30)
        time.sleep(0.5)
    finally:
        cap.terminate()
        cap.wait(10)
    df = compare(path)
    probes = echo_rtts(df)
    ours = probes[probes["stream"] == "127.0.0.1 tos=0x10 size=61"]
    assert len(ours) == 4 and (ours["status"] == "ok").all()
    assert ours["seq"].tolist() == [1, 2, 3, 4]
    assert ((ours["rtt_ms"] > 0) & (ours["rtt_ms"] < 1000)).all()


def test_threaded_sub_batches_decode_exactly_like_one_pass(monkeypatch):
    from qoslab.capture import decode

    whole = read_capture(TUNNEL)
    monkeypatch.setattr(decode, "SUB_BATCH", 97)
    monkeypatch.setattr(decode, "THREADS", 3)
    pd.testing.assert_frame_equal(read_capture(TUNNEL), whole)


def test_cli_lists_the_inner_flows_of_udp_tunnels(tmp_path, capsys):
    """VXLAN traffic used to show only its outer UDP 4789 flows."""
    from scapy.layers.vxlan import VXLAN

    e = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
    inner = Ether(src="02:00:00:00:00:0a", dst="02:00:00:00:00:0b") / IP(
        src="172.16.0.1", dst="172.16.0.2") / TCP(sport=33000, dport=443)
    frames = [bytes(e / IP(src="192.0.2.1", dst="192.0.2.2") / UDP(sport=50000 + i % 3,
                                                                  dport=port) / VXLAN(vni=7)
                    / inner) for i in range(6) for port in (4789, 8472)]
    path = write_pcap(tmp_path / "vx.pcap", frames)
    assert main(["capture", str(path), "--level", "inner"]) == 0
    text = capsys.readouterr().out
    assert "172.16.0.1" in text and "vxlan 6" in text and "none 6" in text
    assert main(["capture", str(path), "--level", "inner", "--vxlan-port", "8472"]) == 0
    text = capsys.readouterr().out
    assert "vxlan 12" in text and "\n1 flows" in text.replace("\n\n", "\n")
    assert main(["capture", str(path), "--level", "outer", "--vxlan-port", "8472"]) == 0
    assert "4789" in capsys.readouterr().out


def _set(frame, at, fmt, value):
    b = bytearray(bytes(frame))
    struct.pack_into(fmt, b, at, value)
    return bytes(b)


def test_headers_whose_own_lengths_lie_are_flagged_by_name(tmp_path):
    """One frame per lie; each is flagged with the problem naming its header, and the
    fields before the lie stay decoded."""
    e = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
    a4, b4, a6, b6 = "10.0.0.1", "10.0.0.2", "2001:db8::1", "2001:db8::2"
    tcp = e / IP(src=a4, dst=b4) / TCP(sport=1, dport=2, options=[("MSS", 1460), ("EOL", None)]) \
        / Raw(b"x")
    udp = e / IP(src=a4, dst=b4) / UDP(sport=3, dport=4) / Raw(b"y" * 8)
    cases = [  # (frame, problem)
        (_set(tcp, 16, ">H", 200), "bad_ip_header"),  # total length past the frame
        (_set(e / IP(src=a4, dst=b4, options=[IPOption_Router_Alert()]) / UDP(), 35, "B", 9),
         "bad_ip_header"),  # an IPv4 option running past the header
        (_set(tcp, 46, "B", 0x30), "bad_transport_header"),  # TCP data offset 12 bytes
        (_set(tcp, 55, "B", 30), "bad_transport_header"),  # a TCP option past the header
        (_set(tcp, 59, "B", 7), "bad_transport_header"),  # padding after end-of-options
        (_set(udp, 38, ">H", 3), "bad_transport_header"),  # UDP length under its header
        (_set(udp, 38, ">H", 99), "bad_transport_header"),  # UDP length past the payload
        (_set(e / IPv6(src=a6, dst=b6) / UDP(), 18, ">H", 99), "bad_ip_header"),
        (bytes(e / IPv6(src=a6, dst=b6) / IPv6ExtHdrDestOpt() / IPv6ExtHdrHopByHop()
               / UDP()), "bad_ext_header"),  # hop-by-hop after another header
        (_set(e / IPv6(src=a6, dst=b6) / IPv6ExtHdrDestOpt() / UDP(), 57, "B", 9),
         "bad_ext_header"),  # an option running past its header
        (_set(e / IP(src=a4, dst=b4) / GRE() / IP(src=b4, dst=a4), 35, "B", 2),
         "bad_tunnel_header"),  # GRE version 2
        (_set(e / IP(src=a4, dst=b4) / UDP(sport=50000, dport=4789) / VXLAN(vni=7)
              / Ether() / IP(), 38, ">H", 12), "bad_tunnel_header"),  # VXLAN cut by UDP
    ]
    df = read_capture(write_pcap(tmp_path / "lies.pcap", [f for f, _ in cases]))
    assert df["problem"].tolist() == [p for _, p in cases]
    assert df["src"].notna().all() and df["ttl"].notna().all()
    assert df["sport"].iloc[2:7].tolist() == [1, 1, 1, 3, 3]
    assert df["tunnel"].tolist()[-2:] == ["gre", "vxlan"] and df["inner_src"].isna().all()
