"""Capture sets: which files, in which order, cut into chunks that read back exactly.

These run without a cluster (the pandas engine and the chunk reader the Dask engine calls in
its workers); tests/test_dask_engine.py runs the same on a LocalCluster.
"""

from __future__ import annotations

import os
import shutil
import warnings

import numpy as np
import pandas as pd
import pytest
from scapy.all import rdpcap, wrpcapng

import qoslab
from qoslab.capture import CaptureWarning, iter_capture, read_capture
from qoslab.capture.reader import concat_packets
from qoslab.engines.captures import compute_packets, plan_captures, read_captures
from qoslab.engines.captureset import capture_files, plan_file, read_chunk
from qoslab.errors import CaptureFormatError, ConfigError
from tests.capture_sets import write_set

TUNNELS = qoslab.data_path("captures/tunnel_uploads.pcap")


@pytest.fixture(scope="module")
def ring(tmp_path_factory):
    """A ring buffer of 11 pcap files (names sort numerically: ring_2 before ring_10)."""
    folder = tmp_path_factory.mktemp("ring")
    write_set(folder, 11, 1200, seed=2, seconds=30.0)
    return folder


def test_folder_order_names_and_what_is_skipped(tmp_path):
    (tmp_path / "day1" / ".hidden").mkdir(parents=True)
    for name in ("day1/b10.pcap", "day1/b9.pcap", "a.pcapng", "day1/.hidden/x.pcap",
                 ".dot.pcap"):
        shutil.copy(TUNNELS, tmp_path / name)
    (tmp_path / "README.md").write_text("notes")  # not a capture, not named like one: skipped
    (tmp_path / "day1" / "ring.pcap3").write_bytes(TUNNELS.read_bytes())  # tcpdump -C name
    (tmp_path / "empty.pcap").write_bytes(b"")  # a ring buffer's file just opened
    with pytest.warns(CaptureWarning, match="empty.pcap: empty file, skipped"):
        files = capture_files(tmp_path)
    assert [name for name, _ in files] == ["a.pcapng", "day1/b9.pcap", "day1/b10.pcap",
                                           "day1/ring.pcap3"]
    (tmp_path / "notes.pcap").write_text("not a capture")
    with pytest.raises(CaptureFormatError, match="notes.pcap: named like a capture"):
        capture_files(tmp_path)


def test_globs_lists_and_bad_names(tmp_path):
    for name in ("x1.pcap", "x2.pcap", "y.pcap"):
        shutil.copy(TUNNELS, tmp_path / name)
    assert [n for n, _ in capture_files(str(tmp_path / "x*.pcap"))] == ["x1.pcap", "x2.pcap"]
    assert [n for n, _ in capture_files([tmp_path / "y.pcap", tmp_path / "x1.pcap"])] == [
        "x1.pcap", "y.pcap"]
    with pytest.raises(CaptureFormatError, match="no file matches"):
        capture_files(str(tmp_path / "z*.pcap"))
    with pytest.raises(FileNotFoundError, match="nothing.pcap"):
        capture_files([tmp_path / "nothing.pcap"])
    (tmp_path / "text.txt").write_text("hello")
    with pytest.raises(CaptureFormatError, match="text.txt: not a pcap or pcapng"):
        capture_files([tmp_path / "text.txt"])
    empty = tmp_path / "nothing_here"
    empty.mkdir()
    with pytest.raises(CaptureFormatError, match="no pcap or pcapng capture in this folder"):
        read_captures(empty)
    with pytest.raises(ConfigError, match="engine must be"):
        read_captures(tmp_path / "y.pcap", engine="spark")
    with pytest.raises(ConfigError, match="chunk_packets must be >= 1"):
        read_captures(tmp_path / "y.pcap", chunk_packets=0)


def test_set_is_the_files_one_after_the_other(ring):
    pk = read_captures(ring, chunk_packets=500)
    names = [f"ring_{k}.pcap" for k in range(1, 12)]
    assert list(pk["file"].cat.categories) == names
    assert len(pk) == 11 * 1200 and isinstance(pk.index, pd.RangeIndex)
    t0 = pk["time"].min()
    assert pk["t"].min() == 0.0
    np.testing.assert_allclose(pk["t"], (pk["time"] - t0).dt.total_seconds(), atol=1e-9)
    for k, name in enumerate(names):
        alone = read_capture(ring / name)
        mine = pk[pk["file"] == name]
        assert mine["frame"].tolist() == list(range(1, len(alone) + 1))
        assert mine.index[0] == k * 1200
        pd.testing.assert_frame_equal(mine.drop(columns=["t", "file", "frame"])
                                      .reset_index(drop=True),
                                      alone.drop(columns=["t"]), check_categorical=False)


@pytest.mark.parametrize("kind", ["pcap", "pcapng"])
def test_every_chunk_reads_alone_as_the_reader_reads_it(ring, tmp_path, kind):
    path = ring / "ring_3.pcap"
    if kind == "pcapng":
        path = tmp_path / "ring_3.pcapng"
        wrpcapng(str(path), rdpcap(str(ring / "ring_3.pcap")))
    plan = plan_file("x", str(path), 250)
    assert [c.packets for c in plan.chunks] == [250] * 4 + [200]
    assert (plan.chunks[1].start > 0) == (kind == "pcap")  # pcap chunks are byte ranges
    whole = list(iter_capture(path, 250))
    t0 = plan.ts_min_ns
    for chunk, expected in zip(reversed(plan.chunks), reversed(whole), strict=True):
        got = read_chunk(chunk, t0, ["x"], position=1000 + chunk.first_frame)
        assert got["frame"].iloc[0] == chunk.first_frame
        assert got.index[0] == 1000 + chunk.first_frame
        pd.testing.assert_frame_equal(got.drop(columns=["t", "file", "frame"])
                                      .reset_index(drop=True), expected.drop(columns=["t"]))


def test_a_pcapng_chunk_is_read_from_its_own_place_not_from_the_file_start(ring, tmp_path,
                                                                         monkeypatch):
    """Two sections (two files' bytes one after the other), walk windows of 4 kB: the last
    chunk's read touches only the bytes from where its walk resumes — not the file's start,
    which would make reading a set of large pcapng files quadratic."""
    from qoslab.capture import pcapng, source

    one, two = tmp_path / "one.pcapng", tmp_path / "two.pcapng"
    frames = rdpcap(str(ring / "ring_3.pcap"))
    wrpcapng(str(one), frames[:500])
    wrpcapng(str(two), frames[500:])
    path = tmp_path / "both.pcapng"
    path.write_bytes(one.read_bytes() + two.read_bytes())
    monkeypatch.setattr(pcapng, "WINDOW", 4096)
    plan = plan_file("x", str(path), 100)
    last = plan.chunks[-1]
    assert last.resume.state.section == 1 and last.resume.offset > one.stat().st_size
    spans = []
    real_span = source.CaptureSource.span

    def span(self, lo, hi, keep=None):
        spans.append(lo)
        return real_span(self, lo, hi, keep)

    monkeypatch.setattr(source.CaptureSource, "span", span)
    got = read_chunk(last, plan.ts_min_ns, ["x"])
    assert min(spans) == last.resume.offset
    expected = list(iter_capture(path, 100))[-1]
    pd.testing.assert_frame_equal(got.drop(columns=["t", "file", "frame"])
                                  .reset_index(drop=True), expected.drop(columns=["t"]))
    assert (got["section"] == 1).all()


def test_cut_file_warns_once_and_keeps_its_records(tmp_path):
    data = TUNNELS.read_bytes()
    (tmp_path / "cut.pcap").write_bytes(data[:-50])
    shutil.copy(TUNNELS, tmp_path / "whole.pcap")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        expected = read_capture(tmp_path / "cut.pcap")
        plan = plan_captures(capture_files(tmp_path), 400, use_dask=False)
        pieces = [read_chunk(c, plan.t0_ns, plan.files, pos) for pos, c in plan.chunks]
    notes = [str(w.message) for w in caught if issubclass(w.category, CaptureWarning)]
    assert len(notes) == 2 and notes[0] == notes[1] and "cut capture" in notes[0]
    got = concat_packets(pieces)
    assert (got["file"] == "cut.pcap").sum() == len(expected)


def test_a_file_changed_after_planning_is_an_error(tmp_path):
    shutil.copy(TUNNELS, tmp_path / "a.pcap")
    plan = plan_captures(capture_files(tmp_path), 1000, use_dask=False)
    os.truncate(tmp_path / "a.pcap", 5000)
    position, last = plan.chunks[-1]
    with pytest.raises(CaptureFormatError, match="shorter than when it was planned"):
        read_chunk(last, plan.t0_ns, plan.files, position)


def test_compute_packets_of_a_pandas_frame_is_itself(ring):
    pk = read_captures(ring)
    assert compute_packets(pk) is pk


def test_a_ring_buffers_file_just_opened_is_skipped_by_globs_too(tmp_path):
    """``dumpcap -b`` creates its next file empty: a glob over the live ring skips it with a
    warning, as a folder does; naming it explicitly is an error that says it is empty."""
    shutil.copy(TUNNELS, tmp_path / "ring_1.pcap")
    (tmp_path / "ring_2.pcap").touch()
    for source in (tmp_path, str(tmp_path / "ring_*.pcap")):
        with pytest.warns(CaptureWarning, match="ring_2.pcap: empty file, skipped"):
            assert [n for n, _ in capture_files(source)] == ["ring_1.pcap"]
    with pytest.raises(CaptureFormatError, match="ring_2.pcap: empty file .0 bytes."):
        capture_files([tmp_path / "ring_1.pcap", tmp_path / "ring_2.pcap"])
    with pytest.raises(CaptureFormatError, match="every file matching this pattern is empty"), \
            pytest.warns(CaptureWarning, match="ring_2.pcap: empty file"):
        capture_files(str(tmp_path / "ring_2*"))
