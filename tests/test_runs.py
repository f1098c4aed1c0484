"""RUN: schema coercion, atomic save, reload, validation errors, journal recovery."""

from __future__ import annotations

import gzip
import json
import math

import numpy as np
import pandas as pd
import pytest

import qoslab
from qoslab.runs import Run, RunJournal


def _probes(n=5):
    return {
        "stream": ["a"] * n, "host": ["10.0.0.2"] * n, "tos": [16] * n, "size": [56] * n,
        "seq": list(range(1, n + 1)), "t_sent": [0.2 * i for i in range(n)],
        "rtt_ms": [1.0, 2.0, None, 4.0, 5.0][:n], "status": ["ok", "ok", "lost", "ok", "ok"][:n],
        "ttl": [64, 64, None, 64, 64][:n],
    }


def test_roundtrip_keeps_every_value(tmp_path):
    run = Run(_probes(), {"t": [1.0], "kind": ["hash_change"], "detail": ["seed 0x1"]},
              {"interval": 0.2, "seed": np.int64(7), "nan": float("nan")})
    path = run.save(tmp_path / "r.json.gz")
    back = qoslab.load(path)
    pd.testing.assert_frame_equal(back.probes, run.probes)
    pd.testing.assert_frame_equal(back.events, run.events)
    assert back.meta["seed"] == 7 and back.meta["nan"] is None
    assert back.meta["source"] == "qoslab"
    assert math.isnan(back.probes.loc[2, "rtt_ms"]) and back.probes.loc[2, "ttl"] is pd.NA


def test_whole_columns_are_written_as_each_value_would_be():
    """A RUN's tables are converted column by column (millions of rows of a replay); every
    dtype gives exactly what the one sanitizer, ``jsonable``, gives value by value."""
    from qoslab.runs import _columns, jsonable

    frame = pd.DataFrame({
        "i": np.array([1, -2, 3], np.int64), "u": np.array([2**64 - 1, 0, 1], np.uint64),
        "f": [1.5, np.inf, np.nan], "b": [True, False, True],
        "I": pd.array([1, None, 2**63 - 1], dtype="Int64"),
        "U": pd.array([2**64 - 1, None, 0], dtype="UInt64"),
        "c": pd.Categorical(["x", None, "y"]), "s": pd.array(["s", None, "t"], dtype="string"),
        "o": [np.int64(4), None, "z"]})
    per_value = {c: [jsonable(v) for v in frame[c].astype(object).where(frame[c].notna(), None)
                     .tolist()] for c in frame.columns}
    assert _columns(frame) == per_value
    assert _columns(frame)["f"] == [1.5, None, None] and _columns(frame)["U"][0] == 2**64 - 1
    json.dumps(_columns(frame), allow_nan=False)


def test_save_is_atomic_and_leaves_no_temporaries(tmp_path):
    Run(_probes()).save(tmp_path / "r.json.gz")
    assert [p.name for p in tmp_path.iterdir()] == ["r.json.gz"]


def _write(path, doc):
    path.write_bytes(gzip.compress(json.dumps(doc).encode()))
    return path


@pytest.mark.parametrize("mutate, message", [
    (lambda d: d.update(version="1"), "version: expected an integer"),
    (lambda d: d.update(version=99), "version: 99 is newer"),
    (lambda d: d["probes"].pop("rtt_ms"), "probes: missing column(s) rtt_ms"),
    (lambda d: d["probes"]["rtt_ms"].__setitem__(1, "fast"), "probes.rtt_ms: expected numbers"),
    (lambda d: d["probes"]["status"].__setitem__(0, "great"), "probes.status: row 0: 'great'"),
    (lambda d: d["probes"]["seq"].__setitem__(0, 1.5), "probes.seq: expected integers"),
    (lambda d: d["events"].update(kind=["party"], t=[0.0], detail=[""]), "events.kind: row 0"),
    (lambda d: d.update(meta=[1]), "meta: expected an object"),
])
def test_bad_fields_are_named(tmp_path, mutate, message):
    doc = Run(_probes()).to_json_dict()
    mutate(doc)
    path = _write(tmp_path / "bad.json.gz", doc)
    with pytest.raises(qoslab.RunFormatError) as err:
        qoslab.load(path)
    assert str(path) in str(err.value) and message in str(err.value)


def test_not_a_run_file(tmp_path):
    p = tmp_path / "x.txt"
    p.write_text("hello")
    with pytest.raises(qoslab.RunFormatError, match="not a qoslab RUN file"):
        qoslab.load(p)
    p.write_bytes(b"")
    with pytest.raises(qoslab.RunFormatError, match="empty"):
        qoslab.load(p)
    p.write_bytes(gzip.compress(b"[1,2]"))
    with pytest.raises(qoslab.RunFormatError, match="neither a qoslab RUN"):
        qoslab.load(p)
    p.write_bytes(b"\x1f\x8b\x08\x00garbage")
    with pytest.raises(qoslab.RunFormatError, match="damaged gzip"):
        qoslab.load(p)


def test_journal_recovers_every_record_and_drops_a_torn_line(tmp_path):
    j = RunJournal(tmp_path / "r.json.gz", {"interval": 0.2})
    for i in range(3):
        j.add_probe(stream="s", host="h", tos=0, size=56, seq=i, t_sent=0.2 * i, rtt_ms=1.0 + i,
                    status="ok", ttl=64)
    j.add_event(0.5, "load_start", "flood")
    j.update_meta(kernel="6.1")
    j.close()
    with open(j.journal_path, "a") as fh:
        fh.write('{"probe": {"stream": "s", "ho')  # killed mid-write
    with pytest.warns(UserWarning, match="incomplete"):
        run = qoslab.load(j.journal_path)
    assert list(run.probes["seq"]) == [0, 1, 2]
    assert run.events["kind"].tolist() == ["load_start"]
    assert run.meta["kernel"] == "6.1" and run.meta["interval"] == 0.2


def test_journal_finish_replaces_journal_with_run(tmp_path):
    j = RunJournal(tmp_path / "r.json.gz")
    j.add_probe(**{k: v[0] for k, v in _probes(1).items()})
    out = j.finish(Run(_probes(1)))
    assert out.exists() and not j.journal_path.exists()
    assert len(qoslab.load(out).probes) == 1


def test_corrupt_journal_line_in_the_middle_is_an_error(tmp_path):
    p = tmp_path / "r.json.gz.partial"
    p.write_text('{"format": "qoslab-run-journal", "version": 1, "meta": {}}\nnot json\n{}\n')
    with pytest.raises(qoslab.RunFormatError, match="line 2"):
        qoslab.load(p)


def test_extra_text_column_with_gaps_survives_a_round_trip(tmp_path):
    probes = dict(_probes(), detail=[None, "from 10.0.0.1", None, None, "x"])
    run = Run(probes)
    assert str(run.probes["detail"].dtype) == "string"
    back = qoslab.load(run.save(tmp_path / "r.json.gz"))
    pd.testing.assert_frame_equal(back.probes, run.probes)
