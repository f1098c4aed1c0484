"""Original ping-exp files: Python 2 pickles of plain dicts load into RUN; code never runs.

The pickles are written here byte by byte the way Python 2's ``pickle`` module wrote them
(protocol 0 text opcodes, protocol 2 binary opcodes; a py2 ``str`` is ``STRING`` in protocol 0
and ``SHORT_BINSTRING``/``BINSTRING`` in protocol 2), so no Python 3 pickler is involved.
"""

from __future__ import annotations

import math
import pickle
import pickletools
import struct

import numpy as np
import pytest

import qoslab
from qoslab.io.pingexp import read_pingexp, safe_unpickle


class Py2Pickler:
    """Emit Python 2 ``pickle.dumps(obj, protocol)`` bytes for plain data (memo PUTs included)."""

    def __init__(self, protocol: int):
        self.protocol, self.out, self.memo = protocol, bytearray(), 0

    def dumps(self, obj) -> bytes:
        if self.protocol == 2:
            self.out += b"\x80\x02"
        self._save(obj)
        self.out += b"."
        return bytes(self.out)

    def _put(self):
        if self.protocol == 0:
            self.out += b"p%d\n" % self.memo
        else:
            self.out += b"q" + bytes([self.memo])
        self.memo += 1

    def _save(self, obj):
        p0 = self.protocol == 0
        if obj is None:
            self.out += b"N"
        elif isinstance(obj, bool):
            self.out += (b"I01\n" if obj else b"I00\n") if p0 else (b"\x88" if obj else b"\x89")
        elif isinstance(obj, int) and not -2**63 <= obj < 2**63:  # a Python 2 long
            if p0:
                self.out += b"L%dL\n" % obj
            else:
                n = (obj.bit_length() + 8) // 8
                self.out += b"\x8a" + bytes([n]) + obj.to_bytes(n, "little", signed=True)
        elif isinstance(obj, int):
            if p0 or not -2**31 <= obj < 2**31:
                self.out += b"I%d\n" % obj  # save_int's text form beyond 32 bits
            elif 0 <= obj < 256:
                self.out += b"K" + bytes([obj])
            elif 0 <= obj < 65536:
                self.out += b"M" + struct.pack("<H", obj)
            else:
                self.out += b"J" + struct.pack("<i", obj)
        elif isinstance(obj, float):
            self.out += (b"F" + repr(obj).encode() + b"\n") if p0 else b"G" + struct.pack(">d", obj)
        elif isinstance(obj, str):  # a Python 2 byte string
            raw = obj.encode("latin1")
            if p0:
                self.out += b"S" + repr(obj).encode() + b"\n"
            elif len(raw) < 256:
                self.out += b"U" + bytes([len(raw)]) + raw
            else:
                self.out += b"T" + struct.pack("<i", len(raw)) + raw
            self._put()
        elif isinstance(obj, tuple):
            if not p0 and len(obj) == 3:
                for v in obj:
                    self._save(v)
                self.out += b"\x87"
            else:
                self.out += b"("
                for v in obj:
                    self._save(v)
                self.out += b"t"
            self._put()
        elif isinstance(obj, list):
            self.out += b"(lp%d\n" % self.memo if p0 else b"]q" + bytes([self.memo])
            self.memo += 1
            if p0:
                for v in obj:
                    self._save(v)
                    self.out += b"a"
            elif obj:
                self.out += b"("
                for v in obj:
                    self._save(v)
                self.out += b"e"
        elif isinstance(obj, dict):
            self.out += b"(dp%d\n" % self.memo if p0 else b"}q" + bytes([self.memo])
            self.memo += 1
            if p0:
                for k, v in obj.items():
                    self._save(k)
                    self._save(v)
                    self.out += b"s"
            elif obj:
                self.out += b"("
                for k, v in obj.items():
                    self._save(k)
                    self._save(v)
                self.out += b"u"
        else:
            raise TypeError(type(obj))


def pingexp_doc():
    """A two-experiment ping-exp result as its save function built it."""
    return {
        "experiments": {
            "tos10": {"responses": [(1, 64, 0.051), (2, 64, 12.5), (4, 64, 0.061)],
                      "losses": [3], "host": "10.0.0.2", "qos": 16, "min": 0.051, "max": 12.5,
                      "summary": {"transmitted": 4, "received": 3, "packet_loss": 25,
                                  "time": 602},
                      "rtt_summary": {"min": 0.051, "avg": 4.204, "max": 12.5, "mdev": 5.868}},
            "tos0": {"responses": [(1, 63, 100.25), (2, 63, 180.0), (3, 63, 95.5),
                                   (4, 63, 99.0)],
                     "losses": [], "host": "example.net", "qos": 0, "min": 95.5, "max": 180.0,
                     "summary": {"transmitted": 4, "received": 4, "packet_loss": 0, "time": 603},
                     "rtt_summary": {"min": 95.5, "avg": 118.687, "max": 180.0, "mdev": 35.4}},
        },
        "start-time": 1240153200.25, "end-time": 1240153201.5, "ping_count": 4,
        "ping_interval": 0.2,
    }


#: Protocol 0 bytes written out by hand: one experiment, one answer, one loss.
HANDWRITTEN_P0 = (
    b"(dp0\nS'ping_interval'\np1\nF0.5\nsS'experiments'\np2\n(dp3\nS'x'\np4\n(dp5\n"
    b"S'host'\np6\nS'127.0.0.1'\np7\nsS'qos'\np8\nI8\nsS'responses'\np9\n(lp10\n"
    b"(I1\nI64\nF0.25\ntp11\nasS'losses'\np12\n(lp13\nI2\nas"
    b"ssS'ping_count'\np14\nI2\nsS'start-time'\np15\nF1240153200.0\ns."
)


def test_handwritten_protocol0_file(tmp_path):
    p = tmp_path / "old.pingexp"
    p.write_bytes(HANDWRITTEN_P0)
    with open(tmp_path / "dis.txt", "w") as fh:
        pickletools.dis(HANDWRITTEN_P0, out=fh)  # a well-formed pickle
    run = qoslab.load(p)
    assert run.meta["source"] == "ping-exp"
    assert run.streams == ["x: 127.0.0.1 tos=0x08"]
    assert run.probes["seq"].tolist() == [1, 2]
    assert run.probes["status"].tolist() == ["ok", "lost"]
    assert run.probes["rtt_ms"].iloc[0] == 0.25 and math.isnan(run.probes["rtt_ms"].iloc[1])
    # the original's x axis: icmp_seq N at N × interval
    assert run.probes["t_sent"].tolist() == [0.5, 1.0]
    assert run.meta["start_time"].startswith("2009-04-19T15:00:00")


@pytest.mark.parametrize("protocol", [0, 2])
def test_python2_pickles_load(tmp_path, protocol):
    data = Py2Pickler(protocol).dumps(pingexp_doc())
    ops = {op.name for op, _, _ in pickletools.genops(data)}
    assert ("STRING" if protocol == 0 else "SHORT_BINSTRING") in ops
    p = tmp_path / f"exp-p{protocol}"
    p.write_bytes(data)
    run = qoslab.load(p)
    # sorted by id, as the original's figure walks sorted(experiments)
    assert run.streams == ["tos0: example.net tos=0x00", "tos10: 10.0.0.2 tos=0x10"]
    a = run.probes[run.probes.stream == run.streams[1]]
    assert a["seq"].tolist() == [1, 2, 3, 4]
    assert a["status"].tolist() == ["ok", "ok", "lost", "ok"]
    np.testing.assert_allclose(a["rtt_ms"].dropna(), [0.051, 12.5, 0.061])
    assert a["ttl"].tolist()[:2] == [64, 64] and a["tos"].unique().tolist() == [16]
    np.testing.assert_allclose(a["t_sent"], [0.2, 0.4, 0.6, 0.8])
    b = run.probes[run.probes.stream == run.streams[0]]
    # ping-exp's own summary survives, and agrees with the samples
    summ = run.meta["pingexp_summary"]["tos0"]
    assert summ["rtt_summary"]["max"] == b["rtt_ms"].max()
    assert summ["summary"]["received"] == (b["status"] == "ok").sum()
    assert run.meta["interval"] == 0.2 and run.meta["count"] == 4


def test_long_strings_use_binstring_and_duplicates_are_kept(tmp_path):
    doc = pingexp_doc()
    doc["experiments"]["tos0"]["host"] = "h" * 300
    doc["experiments"]["tos10"]["responses"].append((2, 64, 13.0))  # a duplicate answer
    data = Py2Pickler(2).dumps(doc)
    assert "BINSTRING" in {op.name for op, _, _ in pickletools.genops(data)}
    p = tmp_path / "f"
    p.write_bytes(data)
    run = read_pingexp(p)
    assert run.probes["status"].tolist().count("duplicate") == 1
    assert run.probes["host"].str.len().max() == 300


@pytest.mark.parametrize("payload, opcode", [
    (b"cos\nsystem\n(S'touch {marker}'\ntR.", "GLOBAL"),
    (b"(cos\nsystem\nS'touch {marker}'\no.", "GLOBAL"),
    (b"(ios\nsystem\nS'touch {marker}'\n.", "INST"),
    (b"\x80\x04\x95\x00\x00\x00\x00\x00\x00\x00\x00\x8c\x02os\x94\x8c\x06system\x94\x93"
     b"\x8c\x0etouch {marker}\x85R.", "STACK_GLOBAL"),
    (b"}q\x00U\x01aNs\x80\x02cos\nsystem\nq\x01.", "GLOBAL"),
])
def test_malicious_pickles_are_refused_and_nothing_runs(tmp_path, payload, opcode):
    marker = tmp_path / "pwned"
    data = payload.replace(b"{marker}", str(marker).encode())
    if payload.startswith(b"\x80\x04"):  # fix the two lengths for the path just inserted
        arg = b"touch " + str(marker).encode()
        data = (b"\x80\x04\x95" + struct.pack("<Q", 0) + b"\x8c\x02os\x94\x8c\x06system\x94\x93"
                + b"\x8c" + bytes([len(arg)]) + arg + b"\x85R.")
    p = tmp_path / "evil.pickle"
    p.write_bytes(data)
    with pytest.raises(qoslab.RunFormatError, match=f"opcode {opcode}.*refusing") as err:
        qoslab.load(p)
    assert str(p) in str(err.value)
    assert not marker.exists()


def test_python3_objects_are_refused():
    import collections

    data = pickle.dumps(collections.OrderedDict(a=1), protocol=2)
    with pytest.raises(qoslab.RunFormatError, match="GLOBAL"):
        safe_unpickle(data)


@pytest.mark.parametrize("mutate, message", [
    (lambda d: d.pop("experiments"), "'experiments' entry"),
    (lambda d: d["experiments"]["tos0"].update(responses=[(1, 64)]), r"\['tos0'\]\.responses\[0\]"),
    (lambda d: d["experiments"]["tos0"].update(qos=999), r"\.qos: expected a TOS byte"),
    (lambda d: d["experiments"]["tos0"].update(host=None), r"\.host: expected text"),
    (lambda d: d["experiments"]["tos10"].update(losses=["x"]), r"\.losses\[0\]"),
    (lambda d: d.update(ping_interval=-1), "ping_interval"),
])
def test_bad_fields_are_named(tmp_path, mutate, message):
    doc = pingexp_doc()
    mutate(doc)
    p = tmp_path / "bad"
    p.write_bytes(Py2Pickler(0).dumps(doc))
    with pytest.raises(qoslab.RunFormatError, match=message):
        qoslab.load(p)


def test_truncated_pickle(tmp_path):
    p = tmp_path / "cut"
    p.write_bytes(Py2Pickler(2).dumps(pingexp_doc())[:-40])
    with pytest.raises(qoslab.RunFormatError, match="not a valid pickle"):
        qoslab.load(p)
