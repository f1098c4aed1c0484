"""Hostile and broken captures: each case was seen to crash, stall or mislead the reader.

Every outcome is a result, a flagged row or warned partial result, or qoslab's own error naming
the file; the command line ends such a file with one line on stderr and a non-zero status.
"""

from __future__ import annotations

import os
import struct
import subprocess
import sys
import textwrap
import time
import warnings
from fractions import Fraction

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.all import Dot1Q, Ether

from qoslab.capture import CaptureWarning, concat_packets, iter_capture, read_capture
from qoslab.capture.linktypes import MAX_VLAN_TAGS
from qoslab.capture.timestamps import MAX_SECONDS, MIN_SECONDS, ticks_to_ns
from qoslab.errors import CaptureFormatError, CaptureTooLargeError
from tests.test_capture_tshark import (
    T0,
    _block,
    compare,
    ip_packets,
    link_frames,
    pcapng_bytes,
    write_pcap,
    write_pcapng,
)

FRAMES = link_frames(1)


def _read(path, **kw):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        df = read_capture(path, **kw)
    assert all(issubclass(w.category, CaptureWarning) for w in caught), caught
    return df, [str(w.message) for w in caught]


# ---------------------------------------------------------------- time stamps
@pytest.mark.parametrize("tsresol", [127, 0x80 | 127, 0x80 | 64, 20])
def test_tsresol_beyond_what_wireshark_reads_flags_the_rows(tmp_path, tsresol):
    """Resolutions of 10^-127 s or 2^-127 s used to raise OverflowError."""
    path = write_pcapng(tmp_path / "r.pcapng", [(1, 0, tsresol), (1, 0, 9)],
                        [("epb", i % 2, 10**15 + i, f) for i, f in enumerate(FRAMES[:6])])
    df, caught = _read(path)
    assert not caught and len(df) == 6
    odd = df["ifindex"] == 0
    assert df.loc[odd, "time"].isna().all() and (df.loc[odd, "problem"] == "bad_timestamp").all()
    assert df.loc[~odd, "time"].notna().all() and (df.loc[~odd, "problem"] == "").all()
    assert df.loc[~odd, "time"].iloc[0].value == 10**15 + 1  # ns resolution: ticks are ns


@pytest.mark.parametrize("offset", [2**63 - 1, -(2**63), 10**10, -(10**10)])
def test_tsoffset_extremes_flag_rows_instead_of_overflowing(tmp_path, offset):
    path = write_pcapng(tmp_path / "o.pcapng", [(1, 0, 9, offset), (1, 0, 9, -1)],
                        [("epb", i % 2, 10**15 + i, f) for i, f in enumerate(FRAMES[:4])])
    df, _ = _read(path)
    moved = df["ifindex"] == 0
    assert (df.loc[moved, "problem"] == "bad_timestamp").all() and df.loc[moved, "t"].isna().all()
    assert df.loc[~moved, "time"].iloc[0].value == 10**15 + 1 - 10**9  # if_tsoffset -1 s
    assert df.loc[~moved, "t"].iloc[0] == 0.0


def test_64_bit_timestamps_past_2_63_are_not_1969(tmp_path):
    ticks = [2**63 + 5, 2**64 - 1, 2**60, T0 * 10**6]
    path = write_pcapng(tmp_path / "big.pcapng", [(1, 0, 9), (1, 0, 3), (1, 0, None)],
                        [("epb", 0, ticks[0], FRAMES[0]), ("epb", 0, ticks[1], FRAMES[1]),
                         ("epb", 1, ticks[2], FRAMES[2]), ("epb", 2, ticks[3], FRAMES[3])])
    df, _ = _read(path)
    assert df["problem"].tolist() == ["bad_timestamp"] * 3 + [""]
    assert df["time"].isna().tolist() == [True, True, True, False]
    assert df["time"].iloc[3].value == T0 * 10**9 and df["t"].iloc[3] == 0.0


@pytest.mark.parametrize("nano", [False, True])
def test_pcap_fraction_of_a_second_or_more_is_flagged_not_carried(tmp_path, nano):
    """A classic record's micro/nanoseconds field of 10^6 / 10^9 or more is not a time stamp
    (tshark: "Fractional second ... is invalid"); it was silently carried into the seconds
    (0xFFFFFFFF µs read as 71 minutes later)."""
    unit = 10**9 if nano else 10**6
    fracs = [unit - 1, unit, 2**32 - 1, 0]
    out = [struct.pack("<IHHiIII", 0xA1B23C4D if nano else 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)]
    for i, (frac, frame) in enumerate(zip(fracs, FRAMES, strict=False)):
        out.append(struct.pack("<IIII", T0 + i, frac, len(frame), len(frame)) + frame)
    path = tmp_path / "f.pcap"
    path.write_bytes(b"".join(out))
    df, caught = _read(path)
    assert not caught
    assert df["problem"].tolist() == ["", "bad_timestamp", "bad_timestamp", ""]
    assert df["time"].isna().tolist() == [False, True, True, False]
    assert df["time"].iloc[0].value == T0 * 10**9 + (unit - 1) * (10**9 // unit)
    assert df["t"].iloc[3] == pytest.approx(3 - (unit - 1) / unit)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(ticks=st.lists(st.integers(0, 2**64 - 1), min_size=1, max_size=8),
       tsresol=st.integers(0, 255), offset=st.integers(-(2**63), 2**63 - 1))
def test_tick_conversion_is_exact(ticks, tsresol, offset):
    """Against exact rational arithmetic: floor(ticks / units + offset) in nanoseconds."""
    units = (1 << (tsresol & 0x7F)) if tsresol & 0x80 else 10 ** (tsresol & 0x7F)
    ns, ok = ticks_to_ns(np.array(ticks, np.uint64), units, offset)
    for t, got, good in zip(ticks, ns, ok, strict=True):
        seconds = t // units + offset
        want = int(Fraction(t, units) * 10**9 // 1) + offset * 10**9
        assert bool(good) == (MIN_SECONDS <= seconds <= MAX_SECONDS)
        if good:
            assert int(got) == want


# ---------------------------------------------------------------- cut files, tags, interfaces
@pytest.mark.parametrize("extra", range(1, 8))
def test_big_pcapng_cut_just_after_a_block_warns(tmp_path, extra):
    """A >= 2 MB file (lane walk) cut 1-7 bytes into the next block header used to raise
    struct.error."""
    packets = [("epb", 0, 10**15 + i, FRAMES[i % len(FRAMES)]) for i in range(25_000)]
    data = pcapng_bytes([(1, 0, None)], packets, extra_blocks=False)
    assert len(data) > 2 << 20
    path = tmp_path / "cut.pcapng"
    path.write_bytes(data + b"\x06\0\0\0\x80\0\0"[:extra])
    df, caught = _read(path)
    assert len(df) == len(packets)
    assert len(caught) == 1 and "cut capture" in caught[0] and str(len(data)) in caught[0]


def test_many_vlan_tags(tmp_path):
    """Up to MAX_VLAN_TAGS tags decode (as tshark does); more are flagged, never left as a
    clean row with empty IP fields."""
    def tagged(k):
        f = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
        for i in range(k):
            f = f / Dot1Q(vlan=10 + i)
        return bytes(f / ip_packets()[0])

    frames = [tagged(k) for k in (1, 5, 6, MAX_VLAN_TAGS)]
    df = compare(write_pcap(tmp_path / "tags.pcap", frames))
    assert (df["problem"] == "").all() and (df["src"] == "10.0.0.1").all()
    assert (df["vlan"] == 10).all() and (df["l2_proto"] == 0x0800).all()
    deep, _ = _read(write_pcap(tmp_path / "deep.pcap", [tagged(MAX_VLAN_TAGS + 1)]))
    assert deep["problem"].tolist() == ["too_many_vlan_tags"]
    assert deep["l2_proto"].isna().all() and deep["vlan"].tolist() == [10]


def test_packet_before_its_interface_reads_the_same_in_every_chunking(tmp_path):
    """An EPB naming interface 0 before the IDB that describes it: flagged (tshark refuses
    the file), and iter_capture(..., 1) gives exactly read_capture's columns."""
    f = FRAMES[0]
    shb = _block("<", 0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))
    epb = _block("<", 6, struct.pack("<IIIII", 0, 0, 1000, len(f), len(f)) + f)
    idb = _block("<", 1, struct.pack("<HHI", 1, 0, 0))
    path = tmp_path / "order.pcapng"
    path.write_bytes(shb + epb + idb + epb + epb)
    whole, _ = _read(path)
    assert whole["problem"].tolist() == ["unknown_interface", "", ""]
    assert whole["l2_proto"].isna().tolist() == [True, False, False]
    assert whole["time"].isna().tolist() == [True, False, False]
    for size in (1, 2):
        pd.testing.assert_frame_equal(concat_packets(list(iter_capture(path, size))), whole)


# ---------------------------------------------------------------- sections
def _sections(n: int, alternate: bool) -> bytes:
    f = FRAMES[3]
    parts = []
    for i in range(n):
        o = ">" if alternate and i % 2 else "<"
        parts.append(pcapng_bytes([(1, 0, None)], [("epb", 0, T0 * 10**6 + i, f)], order=o,
                                  extra_blocks=False))
    return b"".join(parts)


@pytest.mark.parametrize("alternate", [False, True])
def test_many_sections_read_in_linear_time(tmp_path, alternate):
    """50 k one-packet sections used to take 35 s (quadratic); sections of alternating byte
    order are the hardest case. The time per section must not grow with their number."""
    times = {}
    for n in (5_000, 50_000):
        path = tmp_path / f"s{n}.pcapng"
        path.write_bytes(_sections(n, alternate))
        t = time.perf_counter()
        df, caught = _read(path)
        times[n] = time.perf_counter() - t
        assert not caught and len(df) == n and (df["problem"] == "").all()
        assert df["section"].tolist() == list(range(n)) and (df["ifindex"] == 0).all()
        assert df["t"].iloc[-1] == pytest.approx((n - 1) * 1e-6)
    assert times[50_000] < 30 * times[5_000] + 1.0, times  # linear: ~10x; quadratic: ~100x


def test_block_lengths_not_a_multiple_of_4_read_as_tshark_reads_them(tmp_path):
    """Wireshark rounds a block's length (and its trailing copy) up to a multiple of 4."""
    f = FRAMES[0][:61]
    body = struct.pack("<IIIII", 0, 0, 1000, len(f), len(f)) + f
    n = len(body) + 12  # 93
    pad = b"\0" * (-len(body) % 4)
    good = _block("<", 6, struct.pack("<IIIII", 0, 0, 2000, len(FRAMES[1]), len(FRAMES[1]))
                  + FRAMES[1])
    head = pcapng_bytes([(1, 0, None)], [], extra_blocks=False)
    for trailer in (93, 94, 96):  # all round to 96: tshark reads both packets
        path = tmp_path / f"len{trailer}.pcapng"
        path.write_bytes(head + struct.pack("<II", 6, n) + body + pad
                         + struct.pack("<I", trailer) + good)
        df = compare(path, 2)
        assert df["wire_len"].tolist() == [61, len(FRAMES[1])]
    path = tmp_path / "len100.pcapng"  # rounds to 100: the block is damaged
    path.write_bytes(head + struct.pack("<II", 6, n) + body + pad + struct.pack("<I", 97) + good)
    df, caught = _read(path)
    assert len(df) == 0 and "trailing length 97 disagrees with 93" in caught[0]


def test_section_versions(tmp_path):
    """1.x sections are read; a first section of another major version is an error; a later
    one stops the reading with a warning and keeps the sections before it (as tshark)."""
    packets = [("epb", 0, 10**15, FRAMES[0])]
    one = pcapng_bytes([(1, 0, None)], packets)
    for minor in (0, 1, 2, 7):
        path = tmp_path / f"v1{minor}.pcapng"
        path.write_bytes(pcapng_bytes([(1, 0, None)], packets, version=(1, minor)) + one)
        assert len(_read(path)[0]) == 2
    v2 = pcapng_bytes([(1, 0, None)], packets, version=(2, 0))
    path = tmp_path / "v2.pcapng"
    path.write_bytes(v2 + one)
    with pytest.raises(CaptureFormatError, match=r"v2\.pcapng: section at byte 0 has pcapng "
                                                 r"version 2\.0, expected 1\.x"):
        read_capture(path)
    path.write_bytes(one + v2 + one)
    df, caught = _read(path)
    assert len(df) == 1 and "version 2.0" in caught[0] and f"byte {len(one)}" in caught[0]


# ---------------------------------------------------------------- resource limits
def _zero_records(path, n: int):
    head = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)
    rec = np.zeros((n, 4), "<u4")
    rec[:, 0] = T0
    rec[:, 1] = np.arange(n) % 1_000_000
    path.write_bytes(head + rec.tobytes())
    return path


_MEMORY_CHILD = textwrap.dedent("""
    import resource, sys, warnings
    import qoslab
    from qoslab.capture import iter_capture
    from qoslab.errors import CaptureTooLargeError
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    try:
        qoslab.read_capture(sys.argv[1])
        outcome = "read"
    except CaptureTooLargeError as exc:
        outcome = "refused: " + str(exc)
    peak = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) * 1024
    rows = sum(len(c) for c in iter_capture(sys.argv[1], 500_000))
    print(outcome); print(peak); print(rows)
""")


def test_millions_of_zero_length_records_are_refused_within_the_memory_budget(tmp_path):
    """4 M zero-length records (64 MB) would need ~470 MB as one table: read_capture refuses
    before its memory passes 4x the file + 200 MB, and names iter_capture, which reads it."""
    path = _zero_records(tmp_path / "zero.pcap", 4_000_000)
    out = subprocess.run([sys.executable, "-c", _MEMORY_CHILD, str(path)], capture_output=True,
                         text=True, timeout=300, check=True).stdout.splitlines()
    outcome, peak, rows = out[0], int(out[1]), int(out[2])
    size = path.stat().st_size
    assert outcome.startswith("refused: ") and "zero.pcap" in outcome
    assert "iter_capture" in outcome and "max_memory" in outcome
    assert peak <= 4 * size + (200 << 20), (peak, size)
    assert rows == 4_000_000  # iter_capture reads it, chunk by chunk


def test_max_memory_is_checked_before_decoding(tmp_path):
    path = write_pcap(tmp_path / "small.pcap", FRAMES * 50)
    with pytest.raises(CaptureTooLargeError, match="small.pcap: more than"):
        read_capture(path, max_memory=1000)
    assert len(read_capture(path)) == len(FRAMES) * 50


@pytest.mark.parametrize("kind", ["fifo", "dir", "devnull"])
def test_files_that_could_be_read_forever_are_refused(tmp_path, kind):
    path = tmp_path / "x.pcap"
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "dir":
        path.mkdir()
    else:
        path = "/dev/zero"
    with pytest.raises(CaptureFormatError, match="expected a pcap or pcapng capture"):
        read_capture(path)


# ---------------------------------------------------------------- files cut while being read
_TRUNCATED_CHILD = textwrap.dedent("""
    import sys, warnings
    from qoslab.capture import iter_capture, pcap, source
    source._ACCESS = sys.argv[2]
    pcap.WINDOW = 1 << 20  # many windows: most are read after the cut
    rows = 0
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for i, chunk in enumerate(iter_capture(sys.argv[1], 20_000)):
            rows += len(chunk)
            if i == 0:
                print("first", flush=True)
                sys.stdin.readline()  # the parent cuts the file now
    print(rows)
    for w in caught:
        print("warning:", w.message)
""")


@pytest.mark.parametrize("access", ["auto", "read"])
def test_file_cut_while_being_read_never_kills_the_reader(tmp_path, access):
    """A mapped file truncated under the reader used to kill it with SIGBUS. Mapped under a
    lease, the truncation waits for the reader to let go and the reader goes on with pread;
    read with pread from the start, the file just ends early."""
    n = 200_000
    path = write_pcap(tmp_path / "live.pcap", FRAMES * (n // len(FRAMES)))
    size = path.stat().st_size
    child = subprocess.Popen([sys.executable, "-c", _TRUNCATED_CHILD, str(path), access],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "first"
    cutter = subprocess.Popen([sys.executable, "-c",
                               f"import os; os.truncate({str(path)!r}, {size // 3})"])
    time.sleep(0.3)  # mapped: the truncation waits for the lease to be released
    child.stdin.write("\n")
    child.stdin.flush()
    out, _ = child.communicate(timeout=120)
    assert cutter.wait(timeout=60) == 0
    assert child.returncode == 0, f"reader died: {child.returncode}"
    lines = out.splitlines()
    rows = int(lines[0])
    assert path.stat().st_size == size // 3
    assert 20_000 <= rows < n
    assert any("cut" in line for line in lines[1:]), lines


# ---------------------------------------------------------------- the command line
def _cli_cases(tmp_path):
    """(file, expected exit status) of broken inputs for `qoslab capture` / `qoslab hash`."""
    junk = tmp_path / "junk.pcap"
    junk.write_text("no capture here")
    empty = tmp_path / "empty.pcap"
    empty.write_bytes(b"")
    v2 = tmp_path / "v2.pcapng"
    v2.write_bytes(pcapng_bytes([(1, 0, None)], [("epb", 0, 1, FRAMES[0])], version=(2, 0)))
    zero = _zero_records(tmp_path / "zero.pcap", 20)
    bad_ts = write_pcapng(tmp_path / "ts.pcapng", [(1, 0, 127)],
                          [("epb", 0, 2**64 - 1, FRAMES[0])])
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(write_pcap(tmp_path / "whole.pcap", FRAMES).read_bytes()[:200])
    fifo = tmp_path / "fifo.pcap"
    os.mkfifo(fifo)
    return [(junk, 2), (empty, 2), (v2, 2), (tmp_path / "missing.pcap", 2), (fifo, 2),
            (tmp_path, 2), (zero, 0), (bad_ts, 0), (cut, 0)]


def test_cli_on_broken_files_ends_with_one_line(tmp_path, capsys):
    """Every broken input: one line on stderr naming the file, status 2 — in-process for
    every case, and as a real process for an error and for a warned partial result."""
    from qoslab.cli import main

    for command in ("capture", "hash"):
        (tmp_path / command).mkdir()
        cases = _cli_cases(tmp_path / command)
        for path, status in cases:
            code = main([command, str(path)])
            err = capsys.readouterr().err
            if status:
                assert code == status, (command, path, code, err)
                assert err.count("\n") == 1 and path.name in err, err
                assert err.startswith(f"qoslab {command}: error: "), err
            else:
                assert code in (0, 2), (command, path, err)
        for path, status in (cases[0], cases[-1]):  # junk: an error; cut: a warning
            res = subprocess.run([sys.executable, "-m", "qoslab", command, str(path)],
                                 capture_output=True, text=True, timeout=120)
            assert "Traceback" not in res.stderr, (command, path, res.stderr)
            lines = res.stderr.splitlines()
            assert lines and all(line.startswith(f"qoslab {command}: ") for line in lines)
            assert path.name in res.stderr
            if status:
                assert res.returncode == status and len(lines) == 1, res.stderr


def test_long_sections_of_both_byte_orders_walk_in_lanes(tmp_path, monkeypatch):
    """Sections long enough for the lane walk, alternating byte orders: each lane reads its
    blocks in its own section's order, and the result is the sequential walk's, and tshark's."""
    from qoslab.capture import _walk

    frames = FRAMES[:12]
    parts = [pcapng_bytes([(1, 0, 9)], [("epb", 0, T0 * 10**9 + k * 10**8 + i,
                                          frames[i % len(frames)]) for i in range(4000)],
                          order="<>"[k % 2]) for k in range(4)]
    path = tmp_path / "orders.pcapng"
    path.write_bytes(b"".join(parts))
    assert path.stat().st_size > _walk.LANE_MIN_BYTES + 4 * _walk.SEGMENT  # lanes cross sections
    lanes, _ = _read(path)
    monkeypatch.setattr(_walk, "LANE_MIN_BYTES", 1 << 40)
    plain, _ = _read(path)
    pd.testing.assert_frame_equal(lanes, plain)
    assert lanes["section"].tolist() == [k for k in range(4) for _ in range(4000)]
    compare(path, 16_000)
