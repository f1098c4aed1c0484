"""Property tests: mutated captures (cut, flipped bytes, lying lengths) never crash or hang.

Promises checked (issue 3, "Bad input"): a damaged file header is a CaptureFormatError; a cut
file returns every complete record plus a CaptureWarning; a lying length stops the walk with a
warning and never reads out of bounds; damaged frame bytes leave the row in place, flagged in
``problem`` when a decoded header is malformed; nothing else is ever raised.
"""

from __future__ import annotations

import struct
import warnings
from functools import cache

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qoslab import CaptureFormatError, read_capture
from qoslab.capture import PROBLEMS, CaptureWarning
from qoslab.schema import PACKETS
from tests.test_capture_tshark import link_frames, write_pcap, write_pcapng

SETTINGS = settings(max_examples=60, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])


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


@pytest.mark.timeout(120)
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


@pytest.mark.timeout(120)
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


@pytest.mark.timeout(120)
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


@pytest.mark.timeout(120)
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
        # the vectorized block walk must agree with the block-by-block loop
        from qoslab.capture import pcapng

        fast = pcapng._fast_blocks
        try:
            pcapng._fast_blocks = lambda path, src: None
            ref, ref_caught = _read(tmp_path, bytes(buf))
        finally:
            pcapng._fast_blocks = fast
        import pandas as pd

        pd.testing.assert_frame_equal(df, ref)
        assert [str(w.message) for w in caught] == [str(w.message) for w in ref_caught]
