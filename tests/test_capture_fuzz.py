"""Fuzzing the capture reader: mutated and generated captures never crash, hang or mislead.

Every outcome is one of: a PACKETS table (every row kept, malformed headers and unusable time
stamps flagged in ``problem``, never a NaT time on a clean row), possibly with
:class:`~qoslab.capture.CaptureWarning` s for a cut file or a lying length; or qoslab's own
error (:class:`~qoslab.errors.CaptureFormatError`, :class:`~qoslab.errors.CaptureTooLargeError`)
naming the file. Nothing else is raised, and each read stays within the stated bounds:
:data:`SECONDS_PER_MB` per megabyte (plus one second) and 4x the file + 200 MB of memory.
Different ways of reading (chunk sizes, the lane walk or the sequential walk, the memory map or
pread windows) give identical tables.

The default run takes well under a minute. ``QOSLAB_FUZZ_EXAMPLES=N`` sets the examples per
property (default 60) for a longer run, e.g. ``QOSLAB_FUZZ_EXAMPLES=2000 make test``.
"""

from __future__ import annotations

import os
import struct
import time
import tracemalloc
import warnings
from functools import cache

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qoslab import CaptureFormatError, read_capture
from qoslab.capture import PROBLEMS, CaptureWarning
from qoslab.errors import CaptureTooLargeError
from qoslab.schema import PACKETS
from tests.test_capture_tshark import link_frames, write_pcap, write_pcapng

#: Examples per property; raise it for a long fuzzing run.
EXAMPLES = int(os.environ.get("QOSLAB_FUZZ_EXAMPLES", "60"))
#: Time bound of one read.
SECONDS_PER_MB = 10.0
SETTINGS = settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow, HealthCheck.data_too_large])


@cache
def _pcap(order: str, nano: bool, linktype: int) -> tuple[bytes, tuple[int, ...]]:
    """A valid classic pcap and the offset of each record."""
    import tempfile
    from pathlib import Path

    frames = link_frames(linktype)
    with tempfile.TemporaryDirectory() as d:
        data = write_pcap(Path(d) / "x.pcap", frames, linktype, order=order, nano=nano
                          ).read_bytes()
    offs, off = [], 24
    for f in frames:
        offs.append(off)
        off += 16 + len(f)
    return data, tuple(offs)


@cache
def _pcapng() -> bytes:
    import tempfile
    from pathlib import Path

    packets = [("epb", i % 2, 10**15 + i, f) for i, f in
               enumerate(link_frames(1)[:10] + link_frames(113)[:10])]
    with tempfile.TemporaryDirectory() as d:
        return write_pcapng(Path(d) / "x.pcapng", [(1, 0, None), (113, 0, 9)], packets
                            ).read_bytes()


def _read(tmp_path, data: bytes):
    path = tmp_path / "fuzz.cap"
    path.write_bytes(data)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            df = read_capture(path)
        except CaptureFormatError as exc:
            assert "fuzz.cap" in str(exc)
            return None, caught
    assert [c for c in caught if not issubclass(c.category, CaptureWarning)] == []
    assert list(df.columns) == list(PACKETS)
    assert set(df["problem"].astype(str)) <= set(PROBLEMS)
    assert (df["cap_len"] >= 0).all()
    return df, caught


files = st.sampled_from([("<", False, 1), (">", True, 1), ("<", True, 276), (">", False, 101),
                         ("<", False, 0)])


@pytest.mark.timeout(120 + EXAMPLES)
@SETTINGS
@given(spec=files, cut=st.integers(min_value=0, max_value=10**6))
def test_cut_anywhere_keeps_complete_records(tmp_path, walker, spec, cut):
    data, offs = _pcap(*spec)
    cut %= len(data) + 1
    df, caught = _read(tmp_path, data[:cut])
    if cut < 24:
        assert df is None  # not even a file header
        return
    complete = sum(1 for i, o in enumerate(offs)
                   if (offs[i + 1] if i + 1 < len(offs) else len(data)) <= cut)
    assert len(df) == complete
    mid_record = cut not in (*offs, len(data)) and cut > 24
    assert bool(caught) == mid_record


def reference_walk(data: bytes, order: str, limit: int = 262144) -> tuple[int, bool]:
    """Independent sequential walk: (complete records, whether a warning is due)."""
    off, n = 24, 0
    while off < len(data):
        if off + 16 > len(data):
            return n, True
        cap = struct.unpack_from(order + "I", data, off + 8)[0]
        if cap > limit or off + 16 + cap > len(data):
            return n, True
        off += 16 + cap
        n += 1
    return n, False


@pytest.fixture(params=["sequential", "lanes"])
def walker(request, monkeypatch):
    """Run each example through the sequential walk and through the lane walk (forced on
    these small files with tiny segments, so guesses, proofs and repairs all happen)."""
    if request.param == "lanes":
        from qoslab.capture import _walk

        monkeypatch.setattr(_walk, "LANE_MIN_BYTES", 0)
        monkeypatch.setattr(_walk, "SEGMENT", 256)
        monkeypatch.setattr(_walk, "SCAN", 128)
    return request.param


@pytest.mark.timeout(120 + EXAMPLES)
@SETTINGS
@given(spec=files, which=st.lists(st.integers(0, 10**6), min_size=1, max_size=3),
       field=st.sampled_from([8, 12]), value=st.integers(0, 2**32 - 1))
def test_lying_lengths_never_read_past_the_file(tmp_path, walker, spec, which, field, value):
    data, offs = _pcap(*spec)
    order = spec[0]
    buf = bytearray(data)
    for w in which:
        struct.pack_into(order + "I", buf, offs[w % len(offs)] + field, value)
    df, caught = _read(tmp_path, bytes(buf))
    assert df is not None
    count, warn = reference_walk(bytes(buf), order)
    assert len(df) == count and bool(caught) == warn
    assert len(df) >= min(w % len(offs) for w in which)  # records before the lie are kept
    if field == 12:  # the original length may lie freely: records are unaffected
        assert len(df) == len(offs)


@pytest.mark.timeout(120 + EXAMPLES)
@SETTINGS
@given(spec=files, flips=st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)),
                                  min_size=1, max_size=40))
def test_flipped_frame_bytes_keep_every_row(tmp_path, spec, flips):
    data, offs = _pcap(*spec)
    buf = bytearray(data)
    heads = {o + i for o in offs for i in range(16)}
    for pos, value in flips:
        pos = 24 + pos % (len(buf) - 24)
        if pos not in heads:  # damage frames only, not the record headers
            buf[pos] = value
    df, caught = _read(tmp_path, bytes(buf))
    assert len(df) == len(offs) and not caught


@pytest.mark.timeout(120 + EXAMPLES)
@SETTINGS
@given(flips=st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), min_size=1,
                      max_size=8), cut=st.integers(0, 10**6))
def test_damaged_pcapng_never_crashes(tmp_path, walker, flips, cut):
    buf = bytearray(_pcapng())
    for pos, value in flips:
        buf[pos % len(buf)] = value
    buf = buf[:len(buf) - cut % 200]
    df, caught = _read(tmp_path, bytes(buf))
    if walker == "lanes" and df is not None:
        # the lane walk must agree with the plain sequential walk, warnings included
        import pandas as pd

        from qoslab.capture import _walk

        lanes = _walk.LANE_MIN_BYTES
        try:
            _walk.LANE_MIN_BYTES = 1 << 40
            ref, ref_caught = _read(tmp_path, bytes(buf))
        finally:
            _walk.LANE_MIN_BYTES = lanes
        pd.testing.assert_frame_equal(df, ref)
        assert [str(w.message) for w in caught] == [str(w.message) for w in ref_caught]


# ---------------------------------------------------------------- generated corpora
_LINKTYPES = (1, 113, 276, 101, 228, 229, 0, 108, 147)


@cache
def _pool(linktype: int) -> tuple[bytes, ...]:
    if linktype == 147:
        return (b"\x01\x02\x03" * 9,)
    if linktype == 1:  # Ethernet: every tunnel kind too
        from tests.test_capture_tshark import tunnel_frames

        return tuple(link_frames(1)) + tunnel_frames()
    return tuple(link_frames(linktype))


def _blk(order: str, btype: int, body: bytes) -> bytes:
    body += b"\0" * (-len(body) % 4)
    n = len(body) + 12
    return struct.pack(order + "II", btype, n) + body + struct.pack(order + "I", n)


@st.composite
def pcapng_files(draw) -> bytes:
    """pcapng files of 1-4 sections of either byte order and any version, interfaces with
    any if_tsresol / if_tsoffset, EPB / OPB / SPB / unknown blocks naming existing or missing
    interfaces, with any 64-bit time stamp; then flipped bytes and a cut."""
    out = []
    for _ in range(draw(st.integers(1, 4))):
        o = draw(st.sampled_from("<>"))
        version = draw(st.sampled_from([(1, 0), (1, 0), (1, 2), (1, 7), (2, 0)]))
        out.append(_blk(o, 0x0A0D0D0A, struct.pack(o + "IHHq", 0x1A2B3C4D, *version, -1)))
        ifaces = []
        for _ in range(draw(st.integers(0, 3))):
            lt = draw(st.sampled_from(_LINKTYPES))
            snap = draw(st.sampled_from([0, 0, 60, 65535]))
            opts = b""
            if draw(st.booleans()):
                opts += struct.pack(o + "HHB3x", 9, 1, draw(st.integers(0, 255)))
            if draw(st.booleans()):
                opts += struct.pack(o + "HHq", 14, 8, draw(st.integers(-(2**63), 2**63 - 1)))
            out.append(_blk(o, 1, struct.pack(o + "HHI", lt, 0, snap) + opts
                            + (struct.pack(o + "HH", 0, 0) if opts else b"")))
            ifaces.append((lt, snap))
        for _ in range(draw(st.integers(0, 12))):
            kind = draw(st.sampled_from(["epb", "epb", "epb", "opb", "spb", "unknown"]))
            iface = draw(st.integers(0, len(ifaces))) if ifaces else 0
            lt = ifaces[iface][0] if iface < len(ifaces) else 1
            frame = draw(st.one_of(st.sampled_from(_pool(lt)), st.binary(max_size=80)))
            ticks = draw(st.one_of(st.integers(0, 2**64 - 1),
                                   st.integers(10**15, 2 * 10**15)))
            if kind == "epb":
                out.append(_blk(o, 6, struct.pack(o + "IIIII", iface, ticks >> 32,
                                                  ticks & 0xFFFFFFFF, len(frame), len(frame))
                                + frame))
            elif kind == "opb":
                out.append(_blk(o, 2, struct.pack(o + "HHIIII", iface, 0, ticks >> 32,
                                                  ticks & 0xFFFFFFFF, len(frame), len(frame))
                                + frame))
            elif kind == "spb":
                out.append(_blk(o, 3, struct.pack(o + "I", len(frame)) + frame))
            else:
                out.append(_blk(o, draw(st.sampled_from([4, 5, 0x0BAD, 0x40000BAD])),
                                frame))
    data = bytearray(b"".join(out))
    for pos, value in draw(st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)),
                                    max_size=6)):
        data[pos % len(data)] = value
    cut = draw(st.integers(0, 10**6)) % (len(data) + 1) if draw(st.booleans()) else len(data)
    return bytes(data[:cut])


@st.composite
def pcap_files(draw) -> bytes:
    """Classic pcap files of any magic, snap length and link type with any record header."""
    magic = draw(st.sampled_from([0xA1B2C3D4, 0xA1B23C4D, 0xA1B2CD34]))
    o = draw(st.sampled_from("<>"))
    lt = draw(st.sampled_from(_LINKTYPES))
    snap = draw(st.sampled_from([0, 64, 65535, 262144, 0x7FFFFFFF, 0xFFFFFFFF]))
    out = [struct.pack(o + "IHHiIII", magic, 2, 4, 0, 0, snap, lt)]
    for _ in range(draw(st.integers(0, 20))):
        frame = draw(st.one_of(st.sampled_from(_pool(lt)), st.binary(max_size=80)))
        sec = draw(st.one_of(st.just(1_700_000_000), st.integers(0, 2**32 - 1)))
        frac = draw(st.integers(0, 2**32 - 1)) if draw(st.booleans()) else 1234
        wire = draw(st.one_of(st.just(len(frame)), st.integers(0, 2**32 - 1)))
        rec = struct.pack(o + "IIII", sec, frac, len(frame), wire)
        if magic == 0xA1B2CD34:
            rec += b"\0" * 8
        out.append(rec + frame)
    data = bytearray(b"".join(out))
    for pos, value in draw(st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)),
                                    max_size=4)):
        data[pos % len(data)] = value
    return bytes(data)


def check_outcome(tmp_path, data: bytes, name: str = "fuzz.cap"):
    """Read ``data`` once and check the outcome classes and bounds; return the table or
    None (qoslab's own error)."""
    path = tmp_path / name
    path.write_bytes(data)
    tracemalloc.start()
    t = time.perf_counter()
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                df = read_capture(path)
            except (CaptureFormatError, CaptureTooLargeError) as exc:
                assert name in str(exc)
                df = None
    finally:
        elapsed = time.perf_counter() - t
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert elapsed <= 1.0 + SECONDS_PER_MB * len(data) / 1e6, elapsed
    assert peak <= 4 * len(data) + (200 << 20), peak
    assert [c.message for c in caught if not issubclass(c.category, CaptureWarning)] == []
    if df is None:
        return None
    assert list(df.columns) == list(PACKETS)
    assert {c: str(t) for c, t in df.dtypes.items()} == PACKETS
    assert set(df["problem"].astype(str)) <= set(PROBLEMS)
    assert (df["cap_len"] >= 0).all() and (df["wire_len"] >= 0).all()
    no_time = df["time"].isna()
    assert (no_time == df["t"].isna()).all()
    assert (df.loc[no_time, "problem"] != "").all(), "a row without a time is flagged"
    return df


@pytest.mark.timeout(120 + 2 * EXAMPLES)
@SETTINGS
@given(data=pcapng_files())
def test_generated_pcapng_files(tmp_path, data):
    check_outcome(tmp_path, data)


@pytest.mark.timeout(120 + 2 * EXAMPLES)
@SETTINGS
@given(data=pcap_files())
def test_generated_pcap_files(tmp_path, data):
    check_outcome(tmp_path, data)


@pytest.mark.timeout(120 + 4 * EXAMPLES)
@settings(SETTINGS, max_examples=max(EXAMPLES // 2, 10))
@given(data=st.one_of(pcapng_files(), pcap_files()), chunk=st.integers(1, 7))
def test_every_way_of_reading_gives_the_same_table(tmp_path, monkeypatch, data, chunk):
    """Chunks of any size, the lane walk and pread windows of a few hundred bytes give exactly
    what one read_capture gives (warnings included)."""
    import pandas as pd

    from qoslab.capture import _walk, concat_packets, iter_capture, pcap, pcapng, source

    def read(path):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                df = read_capture(path)
            except (CaptureFormatError, CaptureTooLargeError) as exc:
                return type(exc), []
        return df, [str(w.message) for w in caught]

    path = tmp_path / "same.cap"
    path.write_bytes(data)
    ref, ref_warn = read(path)
    if not isinstance(ref, pd.DataFrame):
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        chunks = list(iter_capture(path, chunk))
    if chunks:
        pd.testing.assert_frame_equal(concat_packets(chunks), ref)
    with monkeypatch.context() as m:
        m.setattr(source, "_ACCESS", "read")
        m.setattr(pcap, "WINDOW", 256)
        m.setattr(pcapng, "WINDOW", 256)
        m.setattr(pcapng, "_FIRST_STEP", 64)
        m.setattr(_walk, "LANE_MIN_BYTES", 0)
        m.setattr(_walk, "SEGMENT", 256)
        m.setattr(_walk, "SCAN", 128)
        other, other_warn = read(path)
    pd.testing.assert_frame_equal(other, ref)
    assert len(other_warn) == len(ref_warn)


@pytest.mark.timeout(120 + 4 * EXAMPLES)
@settings(SETTINGS, max_examples=max(EXAMPLES // 2, 10))
@given(data=pcapng_files(), chunk=st.integers(1, 7))
def test_planned_pcapng_chunks_read_alone_as_one_read(tmp_path, monkeypatch, data, chunk):
    """A capture set's pcapng chunks, each read on its own from where the plan says its walk
    resumes (section, byte order and interfaces carried in the plan), are the reader's table:
    sections and interfaces declared anywhere, walk windows of a few hundred bytes."""
    import pandas as pd

    from qoslab.capture import concat_packets, pcapng
    from qoslab.engines.captureset import plan_file, read_chunk

    path = tmp_path / "set.pcapng"
    path.write_bytes(data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            ref = read_capture(path)
        except (CaptureFormatError, CaptureTooLargeError):
            return
        monkeypatch.setattr(pcapng, "WINDOW", 256)
        monkeypatch.setattr(pcapng, "_FIRST_STEP", 64)
        plan = plan_file("set.pcapng", str(path), chunk)
        parts = [read_chunk(c, 0, ["set.pcapng"], c.first_frame - 1) for c in plan.chunks]
    assert plan.packets == len(ref)
    assert all(c.resume is not None for c in plan.chunks)
    if parts:
        got = concat_packets(parts).drop(columns=["file", "frame", "t"])
        pd.testing.assert_frame_equal(got, ref.drop(columns="t"))
