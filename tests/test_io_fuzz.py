"""Property tests over the importers: mutated flent files, ping-exp pickles, RUN files and
journals. Every outcome is a Run or qoslab's own error naming the file -- never another
exception, never more than the stated time and memory (tests/test_io_hostile.py), never a
nonsense value kept (every loaded table passes qoslab.schema.check_values).

The default run is bounded (~30 s); ``QOSLAB_FUZZ_EXAMPLES=N`` runs N examples per property
(see README.md, "Loading hostile or broken files").
"""

from __future__ import annotations

import gzip
import json
import os
import pickle
import warnings

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qoslab.errors import QoslabError
from qoslab.runs import JOURNAL_FORMAT, Run
from qoslab.schema import check_values

from .conftest import JSON_VALUES, SHARED_FLENT, json_paths
from .test_io_hostile import measured_load
from .test_pingexp_import import Py2Pickler, pingexp_doc

EXAMPLES = int(os.environ.get("QOSLAB_FUZZ_EXAMPLES", "40"))
SETTINGS = settings(max_examples=EXAMPLES, deadline=None, derandomize=EXAMPLES <= 40,
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow])

#: JSON values a broken or hostile file may hold where something else was expected.
def _set(doc, path, value):
    node = doc
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value


def _check(outcome):
    if isinstance(outcome, Run):
        for table in ("probes", "events", "samples"):
            check_values(getattr(outcome, table), table)
    else:
        assert isinstance(outcome, QoslabError)


def _load(tmp_path, name, data: bytes):
    p = tmp_path / name
    p.write_bytes(data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a torn journal line warns: a flagged partial result
        _check(measured_load(p))


def _mutations(doc, data):
    paths = list(json_paths(doc))
    for _ in range(data.draw(st.integers(1, 3))):
        path = data.draw(st.sampled_from(paths))
        try:
            _set(doc, path, data.draw(JSON_VALUES))
        except (KeyError, IndexError, TypeError):
            pass
    return doc


def _flent(name):
    with gzip.open(SHARED_FLENT / name) as fh:
        return json.load(fh)


FLENT = ["lab-rrul.flent.gz", "lab-voip.flent.gz", "ping-v4-icmp-irtt.flent.gz",
         "lab-tcp_upload.flent.gz"]


@pytest.mark.timeout(300)
@SETTINGS
@given(name=st.sampled_from(FLENT), data=st.data())
def test_mutated_flent_files(tmp_path, name, data):
    doc = _mutations(_flent(name), data)
    _load(tmp_path, "f.flent.gz", gzip.compress(json.dumps(doc).encode(), mtime=0))


def _run_doc():
    n = 6
    return Run({"stream": ["a", "b"] * 3, "host": ["h"] * n, "tos": [0, 16] * 3,
                "size": [56] * n, "seq": list(range(n)), "t_sent": [0.2 * i for i in range(n)],
                "rtt_ms": [1.0, None, 3.0, 4.0, 5.0, 6.0],
                "status": ["ok", "lost", "ok", "ok", "ok", "late"], "ttl": [64] * n},
               {"t": [0.5], "kind": ["load_start"], "detail": ["x"]}, {"interval": 0.2},
               {"series": ["s"], "metric": ["throughput"], "t": [1.0], "value": [3.0],
                "unit": ["Mbit/s"], "span_s": [0.2], "direction": ["up"], "tos": [0],
                "host": ["h"], "computed": [False]}).to_json_dict()


@pytest.mark.timeout(300)
@SETTINGS
@given(data=st.data())
def test_mutated_run_files(tmp_path, data):
    doc = _mutations(_run_doc(), data)
    _load(tmp_path, "r.json.gz", gzip.compress(json.dumps(doc).encode(), mtime=0))


@pytest.mark.timeout(300)
@SETTINGS
@given(data=st.data(), cut=st.integers(0, 2000))
def test_mutated_and_cut_journals(tmp_path, data, cut):
    doc = _run_doc()
    lines = [json.dumps({"format": JOURNAL_FORMAT, "version": 1, "meta": doc["meta"]})]
    cols = doc["probes"]
    for i in range(len(cols["seq"])):
        rec = {"probe": {k: v[i] for k, v in cols.items()}}
        if data.draw(st.booleans()):
            rec = _mutations(rec, data)
        lines.append(json.dumps(rec))
    lines.append(json.dumps({"probe_update": {k: v[1] for k, v in cols.items()}}))
    lines.append(json.dumps({"event": {"t": 1.0, "kind": "note", "detail": ""}}))
    text = ("\n".join(lines) + "\n").encode()
    _load(tmp_path, "r.json.gz.partial", text[:max(len(lines[0]) + 1, len(text) - cut)])


def _pickle_values():
    return st.recursive(
        st.none() | st.booleans() | st.integers(-2**40, 2**40) | st.floats()
        | st.text(alphabet=st.characters(max_codepoint=255), max_size=6),
        lambda inner: st.lists(inner, max_size=3) | st.tuples(inner, inner, inner)
        | st.dictionaries(st.text(alphabet="abc", max_size=3), inner, max_size=3),
        max_leaves=10)


@pytest.mark.timeout(300)
@SETTINGS
@given(data=st.data(), protocol=st.sampled_from([0, 2]))
def test_mutated_pingexp_pickles(tmp_path, data, protocol):
    doc = pingexp_doc()
    paths = list(json_paths(doc))
    for _ in range(data.draw(st.integers(1, 3))):
        path = data.draw(st.sampled_from(paths))
        try:
            _set(doc, path, data.draw(_pickle_values()))
        except (KeyError, IndexError, TypeError):
            pass
    try:
        raw = Py2Pickler(protocol).dumps(doc)
    except TypeError:
        raw = pickle.dumps(doc, protocol=2)  # a value Python 2 could not have written
    _load(tmp_path, "exp.pingexp", raw)


@pytest.mark.timeout(300)
@SETTINGS
@given(data=st.data(), fmt=st.sampled_from(["flent", "run", "pickle"]))
def test_flipped_and_cut_bytes(tmp_path, data, fmt):
    if fmt == "flent":
        raw = (SHARED_FLENT / "lab-voip.flent.gz").read_bytes()
    elif fmt == "run":
        raw = gzip.compress(json.dumps(_run_doc()).encode(), mtime=0)
    else:
        raw = Py2Pickler(2).dumps(pingexp_doc())
    buf = bytearray(raw)
    for _ in range(data.draw(st.integers(0, 4))):
        i = data.draw(st.integers(0, len(buf) - 1))
        buf[i] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(buf)))
    _load(tmp_path, "x.bin", bytes(buf[:cut] if cut else buf))
