"""Hostile and broken files: each ends in a result or qoslab's own error, quickly and in bounded
memory (the limits of qoslab.io.limits), never in another exception, a hang or silent garbage."""

from __future__ import annotations

import gzip
import json
import os
import pickle
import struct
import subprocess
import sys
import threading
import time
import tracemalloc

import pytest

import qoslab
from qoslab.errors import (
    ColumnLimitError,
    DecompressedSizeLimitError,
    ImpliedRowsLimitError,
    NestingDepthLimitError,
    ProbeLimitError,
    QoslabError,
    ResourceLimitError,
    RunFormatError,
    SeriesLimitError,
)
from qoslab.io import limits
from qoslab.runs import JOURNAL_FORMAT, Run

from .conftest import SHARED_FLENT

#: The promise (README, "Loading hostile or broken files"): at most this long per MB of input,
#: plus a 5 s floor (a shared 2-core machine).
SECONDS_PER_MB = 10.0
#: ... and at most this much memory beyond the input: 4 × input + 200 MB.
MEMORY = lambda size: 4 * size + (200 << 20)  # noqa: E731


def measured_load(path):
    """Load ``path``; return (run or the QoslabError raised, seconds, peak traced bytes)."""
    tracemalloc.start()
    tracemalloc.reset_peak()
    t0 = time.monotonic()
    try:
        outcome = qoslab.load(path)
    except QoslabError as exc:
        outcome = exc
    finally:
        elapsed = time.monotonic() - t0
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    size = os.path.getsize(path) if os.path.isfile(path) else 0
    assert elapsed <= 5 + SECONDS_PER_MB * size / 1e6, f"{path}: {elapsed:.1f} s"
    assert peak <= MEMORY(size), f"{path}: peak {peak / 2**20:.0f} MiB"
    if isinstance(outcome, QoslabError):
        assert str(path) in str(outcome)
    return outcome


def _gz(path, doc, text=None):
    path.write_bytes(gzip.compress((text if text is not None else json.dumps(doc)).encode(),
                                   mtime=0))
    return path


def _run_doc(n=3):
    return Run({"stream": ["a"] * n, "host": ["h"] * n, "tos": [0] * n, "size": [56] * n,
                "seq": list(range(n)), "t_sent": [0.2 * i for i in range(n)],
                "rtt_ms": [1.0] * n, "status": ["ok"] * n, "ttl": [64] * n}).to_json_dict()


def _flent_doc():
    with gzip.open(SHARED_FLENT / "ping-v4-icmp-irtt.flent.gz") as fh:
        return json.load(fh)


# --- nesting ---------------------------------------------------------------------------------

@pytest.mark.parametrize("depth", [40, 100_000])
def test_deep_json_nesting_is_a_limit_error(tmp_path, depth):
    text = json.dumps(_run_doc()).replace('"meta": {', '"meta": {"x": ' + "[" * depth
                                          + "]" * depth + ", ", 1)
    p = _gz(tmp_path / "deep.json.gz", None, text)
    err = measured_load(p)
    assert isinstance(err, NestingDepthLimitError), err
    assert f"limit is {limits.MAX_NESTING_DEPTH}" in str(err)


def test_deep_nesting_in_a_journal_line(tmp_path):
    p = tmp_path / "r.json.gz.partial"
    p.write_text(json.dumps({"format": JOURNAL_FORMAT, "version": 1, "meta": {}}) + "\n"
                 + '{"meta": {"x": ' + "[" * 50_000 + "]" * 50_000 + "}}\n")
    assert isinstance(measured_load(p), NestingDepthLimitError)


# --- wrong types -----------------------------------------------------------------------------

@pytest.mark.parametrize("mutate, field", [
    (lambda d: d["probes"].update(seq=[{"a": 1}, 2, 3]), "probes.seq: row 0"),
    (lambda d: d["probes"].update(stream=[["x"], "a", "a"]), "probes.stream: row 0"),
    (lambda d: d["probes"].update(extra=[[1], 2, 3]), "probes.extra: row 0"),
    (lambda d: d["events"].update(t="soon"), "events.t: expected a list"),
    (lambda d: d.update(probes=[1, 2]), "probes: expected an object of columns"),
])
def test_wrong_types_in_a_run_file_name_the_field(tmp_path, mutate, field):
    doc = _run_doc()
    mutate(doc)
    err = measured_load(_gz(tmp_path / "bad.json.gz", doc))
    assert isinstance(err, RunFormatError) and field in str(err), err


@pytest.mark.parametrize("mutate, field", [
    (lambda d: d["metadata"].update(SERIES_META=[1]), "metadata.SERIES_META"),
    (lambda d: d["metadata"]["SERIES_META"].update({"Ping (ms) ICMP": "x"}), "SERIES_META["),
    (lambda d: d["metadata"].update(STEP_SIZE="fast"), "metadata.STEP_SIZE"),
    (lambda d: d["raw_values"]["Ping (ms) ICMP"].__setitem__(0, [1, 2]), "[0].t"),
    (lambda d: d["raw_values"]["Ping (ms) UDP"][1].update(owd_up="x"), "[1].owd_up"),
    (lambda d: d["metadata"].update(T0=5), None),  # not a time: the samples give the start
])
def test_wrong_types_in_a_flent_file_name_the_field(tmp_path, mutate, field):
    doc = _flent_doc()
    mutate(doc)
    out = measured_load(_gz(tmp_path / "bad.flent.gz", doc))
    if field is None:
        assert isinstance(out, Run)
    else:
        assert isinstance(out, RunFormatError) and field in str(out), out


# --- NaN, inf, huge numbers ------------------------------------------------------------------

@pytest.mark.parametrize("value, kind", [
    (1e300, RunFormatError), (2**62, RunFormatError), (2**31, ImpliedRowsLimitError),
    (float("nan"), RunFormatError),
    (-5, RunFormatError), (2**31 + 0.5, RunFormatError)])
def test_huge_or_nonsense_flent_sequence_numbers(tmp_path, value, kind):
    doc = _flent_doc()
    doc["raw_values"]["Ping (ms) ICMP"][-1]["seq"] = value
    err = measured_load(_gz(tmp_path / "seq.flent.gz", doc))
    assert isinstance(err, kind), err
    assert "Ping (ms) ICMP" in str(err)


def test_flent_gaps_of_every_series_count_against_the_file_limit(tmp_path):
    """Two series whose gaps imply 600 k lost probes each: each alone is within the limit on
    implied rows, both together are not (each checked alone, 15 M each built 30 M rows --
    minutes, gigabytes -- from 3 KB)."""
    doc = _flent_doc()
    for name in ("Ping (ms) ICMP", "Ping (ms) UDP"):
        doc["raw_values"][name][-1]["seq"] = 600_000
    err = measured_load(_gz(tmp_path / "gaps.flent.gz", doc))
    assert isinstance(err, ImpliedRowsLimitError), err
    assert "raw_values['Ping (ms) UDP']" in str(err) and "in the file so far" in str(err), err


def test_flent_rows_past_max_rows_when_implied_rows_are_allowed(tmp_path, monkeypatch):
    """The limit on implied rows can be raised (a trusted file); the file's total rows are
    still limited by MAX_ROWS, checked before anything is built."""
    monkeypatch.setattr(limits, "MIN_IMPLIED_ROWS", 10**9)
    doc = _flent_doc()
    for name in ("Ping (ms) ICMP", "Ping (ms) UDP"):
        doc["raw_values"][name][-1]["seq"] = 15_000_000
    err = measured_load(_gz(tmp_path / "gaps.flent.gz", doc))
    assert isinstance(err, ProbeLimitError) and "Ping (ms) UDP" in str(err), err


@pytest.mark.parametrize("column, literal, message", [
    ("rtt_ms", "1e999", "probes.rtt_ms: row 1: inf"),
    ("rtt_ms", "-3.0", "probes.rtt_ms: row 1: -3.0"),
    ("t_sent", "null", "probes.t_sent: row 1: nan: an answered probe needs a send time"),
    ("seq", "1e300", "probes.seq"),
    ("tos", "300", "probes.tos: row 1: 300.0"),
])
def test_nonsense_values_in_a_run_file_are_refused(tmp_path, column, literal, message):
    doc = _run_doc()
    doc["probes"][column][1] = "@@"
    text = json.dumps(doc).replace('"@@"', literal)
    err = measured_load(_gz(tmp_path / "v.json.gz", None, text))
    assert isinstance(err, RunFormatError) and message in str(err), err


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_nan_literals_in_a_run_file_are_refused(tmp_path, literal):
    doc = _run_doc()
    doc["probes"]["rtt_ms"][1] = "@@"
    text = json.dumps(doc).replace('"@@"', literal)
    err = measured_load(_gz(tmp_path / "v.json.gz", None, text))
    assert isinstance(err, RunFormatError) and f"{literal} literal" in str(err), err


def test_nonsense_in_flent_samples(tmp_path):
    for field, value, message in [("val", float("inf"), "[2].val"), ("val", -1.0, "[2].val"),
                                  ("t", float("nan"), "[2].t")]:
        doc = _flent_doc()
        doc["raw_values"]["Ping (ms) ICMP"][2][field] = value
        err = measured_load(_gz(tmp_path / "n.flent.gz", doc))
        assert isinstance(err, RunFormatError) and message in str(err), (field, err)
    doc = _flent_doc()
    doc["raw_values"]["Ping (ms) ICMP"][2]["val"] = float("nan")  # flent's "no value"
    run = measured_load(_gz(tmp_path / "n.flent.gz", doc))
    icmp = run.probes[run.probes.stream == "Ping (ms) ICMP"]
    assert icmp["status"].iloc[2] == "lost"


def test_nan_event_time_in_a_journal(tmp_path):
    p = tmp_path / "r.json.gz.partial"
    p.write_text(json.dumps({"format": JOURNAL_FORMAT, "version": 1, "meta": {}}) + "\n"
                 + '{"event": {"t": NaN, "kind": "note", "detail": ""}}\n'
                 + '{"event": {"t": 1.0, "kind": "note", "detail": ""}}\n')
    err = measured_load(p)
    assert isinstance(err, RunFormatError) and "line 2" in str(err), err
    p.write_text(json.dumps({"format": JOURNAL_FORMAT, "version": 1, "meta": {}}) + "\n"
                 + '{"event": {"t": null, "kind": "note", "detail": ""}}\n')
    err = measured_load(p)
    assert isinstance(err, RunFormatError) and "events.t: row 0" in str(err), err


# --- bombs -----------------------------------------------------------------------------------

def _memo_bomb() -> bytes:
    # protocol 2: an empty list memoised at index 2**31 - 1 (the C unpickler grows its memo
    # table to that size)
    return b"\x80\x02]r" + struct.pack("<I", 2**31 - 1) + b"."


def _shared_bomb(depth=30) -> bytes:
    # each level a list holding the previous level twice: 2**depth leaves from ~250 bytes
    out = b"\x80\x02]q\x00"
    for i in range(1, depth):
        out += b"]q" + bytes([i]) + b"(h" + bytes([i - 1]) + b"h" + bytes([i - 1]) + b"e"
    return out + b"."


@pytest.mark.parametrize("data, message", [
    (_memo_bomb(), "memo bomb"),
    (_shared_bomb(), "appears twice"),
    (b"\x80\x02]q\x00h\x00a.", "appears twice"),  # a list containing itself
    (b"\x80\x02" + b"]" * 10_000 + b"a" * 9_999 + b".", "limit is 32"),
])
def test_pickle_bombs(tmp_path, data, message):
    p = tmp_path / "bomb.pingexp"
    p.write_bytes(data)
    err = measured_load(p)
    assert isinstance(err, RunFormatError) and message in str(err), err


def _count_bomb(experiments: int, sent: int) -> bytes:
    """A ping-exp file of before April 2011 (no list of losses): each experiment's ping count
    implies ``sent`` lost probes -- a few hundred bytes."""
    return pickle.dumps({"experiments": {f"e{i}": {
        "responses": [], "host": "h", "qos": 0,
        "summary": {"transmitted": sent, "received": 0, "packet_loss": 100, "time": 1}}
        for i in range(experiments)}, "ping_interval": 0.2}, protocol=0)


def test_ping_counts_implying_too_many_probes_are_refused_before_anything_is_built(tmp_path):
    """Three experiments of 400 k implied losses each: the file's total is over the limit on
    implied rows, at the third (each experiment was once checked on its own)."""
    p = tmp_path / "counts.pingexp"
    p.write_bytes(_count_bomb(3, 400_000))
    err = measured_load(p)
    assert isinstance(err, ImpliedRowsLimitError), err
    assert "experiments['e2']: 400000 lost probes" in str(err), err
    assert "1200000 in the file so far" in str(err), err


def test_ping_counts_past_max_rows_when_implied_rows_are_allowed(tmp_path, monkeypatch):
    """Three experiments of 19 M implied losses each (a 560-byte file) used to build the first
    ones' rows for minutes and gigabytes; with the limit on implied rows raised, MAX_ROWS
    still refuses them before anything is built."""
    monkeypatch.setattr(limits, "MIN_IMPLIED_ROWS", 10**9)
    p = tmp_path / "counts.pingexp"
    p.write_bytes(_count_bomb(3, 19_000_000))
    err = measured_load(p)
    assert isinstance(err, ProbeLimitError) and "57000000" in str(err), err


def test_implied_losses_are_built_in_linear_time(tmp_path):
    """1 M implied losses: vectorised (it took 14 s for 2 M, set differences and per-value
    checks in Python)."""
    p = tmp_path / "counts.pingexp"
    p.write_bytes(_count_bomb(1, 1_000_000))
    started = time.monotonic()
    run = qoslab.load(p)
    assert len(run.probes) == 1_000_000 and (run.probes["status"] == "lost").all()
    assert run.probes["seq"].tolist()[:3] == [1, 2, 3] and run.probes["ttl"].isna().all()
    assert time.monotonic() - started < 10


# --- lost rows implied by sequence gaps -------------------------------------------------------

def _tiny_flent(path, seqs, command=None):
    """A flent file of one ping series holding a reply per sequence number in ``seqs``."""
    smeta = {"Ping (ms) ICMP": {"COMMAND": command}} if command else {}
    return _gz(path, {"version": 4, "x_values": [], "results": {},
                      "metadata": {"SERIES_META": smeta},
                      "raw_values": {"Ping (ms) ICMP": [
                          {"t": 1.7e9 + 0.2 * s, "val": 1.5, "seq": s} for s in seqs]}})


def _tiny_pingexp(path, sent, answered=0, *, in_summary=True):
    """A ping-exp file of before April 2011: ``answered`` replies of ``sent`` (the losses only
    implied), ``sent`` as ping's summary or as the run's ``ping_count``."""
    exp = {"responses": [(i, 64, 1.5) for i in range(1, answered + 1)], "host": "h", "qos": 0}
    if in_summary:
        exp["summary"] = {"transmitted": sent, "received": answered, "packet_loss": 0, "time": 1}
    doc = {"experiments": {"e0": exp}, "ping_interval": 0.2}
    if not in_summary:
        doc["ping_count"] = sent
    path.write_bytes(pickle.dumps(doc, protocol=0))
    return path


@pytest.mark.parametrize("kind, where, lost, how", [
    ("pingexp", "experiments['e0']", 19_999_999, "summary.transmitted"),
    ("pingexp-count", "experiments['e0']", 19_999_999, "ping_count"),
    ("flent", "raw_values['Ping (ms) ICMP']", 19_999_998, "sequence gaps"),
    ("fping", "raw_values['Ping (ms) ICMP']", 19_999_998, "fping's -c 20000000"),
])
def test_a_few_hundred_bytes_cannot_imply_20_m_lost_probes(tmp_path, kind, where, lost, how):
    """Within MAX_ROWS, a 300-byte file implied 20 M lost rows (~20 s, ~4 GB): implied rows
    have their own limit, checked before anything is built."""
    if kind.startswith("pingexp"):
        p = _tiny_pingexp(tmp_path / "gap.pingexp", 19_999_999, in_summary=kind == "pingexp")
    elif kind == "flent":
        p = _tiny_flent(tmp_path / "gap.flent.gz", [0, 19_999_999])
    else:
        p = _tiny_flent(tmp_path / "gap.flent.gz", [0, 1], "fping -c 20000000 -p 200 h")
    assert p.stat().st_size < 400
    started = time.monotonic()
    err = measured_load(p)
    assert time.monotonic() - started < 2
    assert isinstance(err, ImpliedRowsLimitError), err
    message = str(err)
    assert f"{p}: {where}: {lost} lost probes" in message, message
    assert how in message and "at most 1000000" in message, message


def test_implied_rows_scale_with_the_records_a_file_holds(tmp_path, monkeypatch):
    """Past MIN_IMPLIED_ROWS a file may imply MAX_IMPLIED_RATIO lost rows per record it holds
    (here the floor is lowered to show the ratio on a small file)."""
    monkeypatch.setattr(limits, "MIN_IMPLIED_ROWS", 100)
    assert limits.MAX_IMPLIED_RATIO == 4
    run = qoslab.load(_tiny_pingexp(tmp_path / "ok.pingexp", 1500, 300))
    assert run.probes["status"].value_counts().to_dict() == {"lost": 1200, "ok": 300}
    err = measured_load(_tiny_pingexp(tmp_path / "over.pingexp", 1501, 300))
    assert isinstance(err, ImpliedRowsLimitError) and "1201 lost probes" in str(err), err
    assert "a file holding 300 probe records may imply at most 1200" in str(err), err
    records = list(range(299)) + [1499]  # 300 replies, seq 0..1499: 1200 lost
    run = qoslab.load(_tiny_flent(tmp_path / "ok.flent.gz", records))
    assert run.probes["status"].value_counts().to_dict() == {"lost": 1200, "ok": 300}
    err = measured_load(_tiny_flent(tmp_path / "over.flent.gz", records[:-1] + [1500]))
    assert isinstance(err, ImpliedRowsLimitError) and "1201 lost probes" in str(err), err


def test_a_run_that_lost_everything_still_loads(tmp_path):
    """Real losses, even 100 %, are within the limit: a 400-probe experiment nothing answered,
    and a flent series whose replies stopped for most of the test."""
    run = qoslab.load(_tiny_pingexp(tmp_path / "dark.pingexp", 400))
    assert len(run.probes) == 400 and (run.probes["status"] == "lost").all()
    run = qoslab.load(_tiny_flent(tmp_path / "outage.flent.gz", [0, 1, 2, 2999]))
    assert run.probes["status"].value_counts().to_dict() == {"lost": 2996, "ok": 4}


def test_gzip_bomb_is_stopped_early(tmp_path):
    p = tmp_path / "bomb.json.gz"
    chunk = gzip.compress(b"\0" * (64 << 20), compresslevel=9)  # 64 MiB -> ~64 KiB
    p.write_bytes(chunk * 16)  # ~1 MB of gzip members inflating to 1 GiB
    err = measured_load(p)
    assert isinstance(err, DecompressedSizeLimitError), err
    assert str(limits.inflate_limit(p.stat().st_size)) in str(err)


def _dense_run_file(path, values: int, cell: str = "1"):
    """A gzipped RUN-like document: one column of ``values`` copies of ``cell`` (~2 bytes a
    value, a few KB compressed), the densest content JSON can hand the loader."""
    text = ('{"format": "qoslab-run", "version": 1, "meta": {}, "events": {}, "probes": '
            '{"seq": [' + ",".join([cell] * values) + "]}}")
    path.write_bytes(gzip.compress(text.encode(), compresslevel=9, mtime=0))
    return path, len(text)


def test_a_small_gzip_file_inflates_to_a_few_mb_only(tmp_path):
    """A 31 KB file inflating to 32 MB of numbers (8 M values) took ~10 s and ~800 MB before
    failing; any gzip file may inflate to MIN_INFLATE_ALLOWANCE (5 MiB), a larger one 100 ×
    its size."""
    p, inflated = _dense_run_file(tmp_path / "dense.run.gz", 8_000_000, "1.5")
    assert p.stat().st_size < 40_000 and inflated > 30e6
    err = measured_load(p)
    assert isinstance(err, DecompressedSizeLimitError), err
    assert f"more than {limits.MIN_INFLATE_ALLOWANCE} bytes" in str(err), err


def test_densest_content_at_the_inflate_floor_stays_in_the_memory_bound(tmp_path):
    """1 M integers in 2 MB of JSON (from 2 KB), the worst memory per inflated byte (each
    value a Python object before it is a column): a tiny file inflating to the whole
    MIN_INFLATE_ALLOWANCE (2.5 × this, memory linear in it) stays within the promise (~170
    of 200 MB: the floor is chosen with that margin)."""
    p, inflated = _dense_run_file(tmp_path / "dense.run.gz", 1_000_000)
    # measured in a fresh interpreter: in the suite's process, threads that earlier tests
    # left running allocate while tracemalloc counts (0.1 % over the bound once)
    measure = ("import sys, tracemalloc, qoslab\n"
               "tracemalloc.start()\n"
               "try:\n    qoslab.load(sys.argv[1])\n"
               "except qoslab.errors.RunFormatError as exc:\n    assert 'missing column' in str(exc)\n"
               "else:\n    raise SystemExit('loaded')\n"
               "print(tracemalloc.get_traced_memory()[1])\n")
    done = subprocess.run([sys.executable, "-I", "-c", measure, str(p)], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    peak = int(done.stdout.split()[-1])
    at_floor = peak * limits.MIN_INFLATE_ALLOWANCE / inflated
    assert at_floor <= MEMORY(p.stat().st_size), f"{at_floor / 2**20:.0f} MiB at the floor"


def test_a_container_among_millions_of_values_is_still_found(tmp_path):
    """Columns of scalars are checked by their set of types; a list hidden in one is named."""
    doc = _run_doc(5)
    doc["probes"]["rtt_ms"][3] = [1.0]
    err = measured_load(_gz(tmp_path / "nested.run.gz", doc))
    assert isinstance(err, RunFormatError), err
    assert "probes.rtt_ms: row 3: expected a value, got a list" in str(err), err
    deep = '{"a": [1, "x", null, ' + "[" * 40 + "]" * 40 + "]}"
    with pytest.raises(NestingDepthLimitError, match="nested 42 levels deep"):
        limits.parse_json(deep, "deep.json")


# --- quadratic paths -------------------------------------------------------------------------

def test_journal_with_many_updates_loads_in_linear_time(tmp_path):
    p = tmp_path / "big.json.gz.partial"
    n = 40_000
    lines = [json.dumps({"format": JOURNAL_FORMAT, "version": 1, "meta": {}})]
    probe = {"stream": "s", "host": "h", "tos": 0, "size": 56, "t_sent": 0.0, "rtt_ms": None,
             "status": "lost", "ttl": None}
    lines += [json.dumps({"probe": dict(probe, seq=i, t_sent=i * 0.01)}) for i in range(n)]
    lines += [json.dumps({"probe_update": dict(probe, seq=i, t_sent=i * 0.01, rtt_ms=1.0,
                                               status="late")}) for i in range(n)]
    p.write_text("\n".join(lines) + "\n")
    run = measured_load(p)
    assert len(run.probes) == n and set(run.probes["status"]) == {"late"}


def test_flent_file_with_many_series(tmp_path):
    doc = _flent_doc()
    rec = doc["raw_values"]["Ping (ms) ICMP"][0]
    for i in range(3000):
        name = f"Ping (ms) s{i}"
        doc["raw_values"][name] = [dict(rec)]
        doc["metadata"]["SERIES_META"][name] = {"UNITS": "ms"}
    run = measured_load(_gz(tmp_path / "many.flent.gz", doc))
    assert len(run.streams) == 3002
    for i in range(limits.MAX_SERIES):
        doc["raw_values"][f"x{i}"] = []
    assert isinstance(measured_load(_gz(tmp_path / "more.flent.gz", doc)), SeriesLimitError)


def test_run_file_with_many_columns(tmp_path):
    doc = _run_doc()
    for i in range(limits.MAX_COLUMNS + 1):
        doc["probes"][f"c{i}"] = [0, 1, 2]
    assert isinstance(measured_load(_gz(tmp_path / "cols.json.gz", doc)), ColumnLimitError)
    doc = _run_doc()
    for i in range(500):
        doc["probes"][f"c{i}"] = [0, 1, 2]
    assert len(measured_load(_gz(tmp_path / "cols.json.gz", doc)).probes.columns) == 509


@pytest.mark.parametrize("kind", ["probe", "event"])
def test_journal_lines_each_with_a_column_of_their_own(tmp_path, kind):
    """20,000 journal lines each naming a new column (3 MB) made a 20,000 × 20,000 table:
    a MemoryError after 90 s and 6 GB. The journal's columns count against MAX_COLUMNS."""
    lines = [json.dumps({"format": JOURNAL_FORMAT, "version": 1, "meta": {}})]
    body = {"probe": {"stream": "s", "host": "h", "tos": 0, "size": 56, "seq": 0, "t_sent": 0.0,
                      "rtt_ms": 1.0, "status": "ok", "ttl": 64},
            "event": {"t": 0.0, "kind": "note", "detail": ""}}[kind]
    for i in range(20_000):
        lines.append(json.dumps({kind: {**body, "seq" if kind == "probe" else "t": i,
                                        f"x{i}": 1}}))
    p = tmp_path / "cols.json.gz.partial"
    p.write_text("\n".join(lines) + "\n")
    err = measured_load(p)
    assert isinstance(err, ColumnLimitError) and f"more than {limits.MAX_COLUMNS}" in str(err)
    p.write_text("\n".join(lines[:400]) + "\n")  # a few extra columns are fine
    assert len(measured_load(p).probes) == (399 if kind == "probe" else 0)


def test_journal_bytes_that_are_not_utf8_are_refused_not_replaced(tmp_path):
    """A damaged byte inside a journal line was replaced by U+FFFD in silence (a stream named
    's\ufffd'); only a last line cut inside a character is a torn line."""
    lines = [json.dumps({"format": JOURNAL_FORMAT, "version": 1, "meta": {}})]
    for i in range(3):
        lines.append(json.dumps({"probe": {"stream": "s", "host": "h", "tos": 0, "size": 56,
                                           "seq": i, "t_sent": 0.1 * i, "rtt_ms": 1.0,
                                           "status": "ok", "ttl": 64}}))
    data = ("\n".join(lines) + "\n").encode()
    p = tmp_path / "bytes.json.gz.partial"
    p.write_bytes(data.replace(b'"stream": "s"', b'"stream": "s\xff"', 1))
    err = measured_load(p)
    assert isinstance(err, RunFormatError) and "line 2: not UTF-8 text (byte 23)" in str(err)
    p.write_bytes(data[:-20] + b"\xc3")  # cut inside a character: the torn last line
    with pytest.warns(UserWarning, match="line 4 is incomplete"):
        assert len(measured_load(p).probes) == 2


# --- not files -------------------------------------------------------------------------------

@pytest.mark.parametrize("device", ["/dev/zero", "/dev/urandom", "/dev/null"])
def test_devices_are_refused_at_once(device):
    err = measured_load(device)
    assert isinstance(err, RunFormatError) and "not a regular file" in str(err)


@pytest.mark.timeout(20)
def test_fifo_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    err = measured_load(fifo)
    assert isinstance(err, RunFormatError) and "a FIFO" in str(err)
    # ... also with a writer that never stops
    stop = threading.Event()

    def writer():
        with open(fifo, "wb") as fh:
            while not stop.is_set():
                try:
                    fh.write(b"\0" * 65536)
                except BrokenPipeError:
                    return

    t = threading.Thread(target=writer, daemon=True)
    t.start()
    try:
        assert isinstance(measured_load(fifo), RunFormatError)
    finally:
        stop.set()
        os.close(os.open(fifo, os.O_RDONLY | os.O_NONBLOCK))


def test_limit_errors_are_run_format_errors():
    for cls in (ColumnLimitError, DecompressedSizeLimitError, NestingDepthLimitError,
                ProbeLimitError, SeriesLimitError, ImpliedRowsLimitError):
        assert issubclass(cls, ResourceLimitError) and issubclass(cls, RunFormatError)


# --- the command line ------------------------------------------------------------------------

def _hostile_files(tmp_path):
    files = {}
    files["deep"] = _gz(tmp_path / "deep.json.gz", None,
                        '{"format": "qoslab-run", "x": ' + "[" * 5000 + "]" * 5000 + "}")
    bomb = tmp_path / "bomb.json.gz"
    bomb.write_bytes(gzip.compress(b"\0" * (64 << 20), compresslevel=9))
    files["bomb"] = bomb
    memo = tmp_path / "memo.pingexp"
    memo.write_bytes(_memo_bomb())
    files["memo"] = memo
    doc = _run_doc()
    doc["probes"]["rtt_ms"][0] = -1.0
    files["negative"] = _gz(tmp_path / "neg.json.gz", doc)
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    files["fifo"] = fifo
    files["dir"] = tmp_path
    files["zero"] = "/dev/zero"
    return files


@pytest.mark.timeout(300)
def test_cli_ends_with_one_line_on_stderr(tmp_path):
    import subprocess
    import sys

    for name, path in _hostile_files(tmp_path).items():
        for argv in (["plot", str(path), "-o", str(tmp_path / "x.png")],
                     ["ping", "-r", str(path), "--no-plot"]):
            r = subprocess.run([sys.executable, "-m", "qoslab", *argv], capture_output=True,
                               text=True, timeout=60)
            assert r.returncode != 0, (name, argv)
            lines = r.stderr.strip().splitlines()
            assert len(lines) == 1 and "Traceback" not in r.stderr, (name, argv, r.stderr)
            assert str(path) in lines[0], (name, lines)
