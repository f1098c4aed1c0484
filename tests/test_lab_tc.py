"""The lab's pure parts: tc command generation, tc -s parsing on captured output, scenario
parameters on the lab command line, and the load generator's pacing on loopback (no root
needed)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys

import pytest

from qoslab.errors import ConfigError
from qoslab.lab.experiment import queue_delay_ms
from qoslab.lab.flood import parse_rate
from qoslab.lab.loads import FLOOD_SCRIPT
from qoslab.lab.tc import Filter, Qdisc, Shaping, TcClass, parse_class_stats, qdisc_stats
from qoslab.scenarios.cli import options_of
from tests.conftest import REPO

DATA = REPO / "tests" / "data" / "lab"


def test_shaping_builds_root_class_leaf_then_filters_in_that_order():
    tree = Shaping((Qdisc("pfifo_fast", parent="1:10", handle="10:"),  # given out of order
                    Qdisc("htb", handle="1:", options=("default", "10"))),
                   (TcClass("1:10", "1:", "htb", ("rate", "2mbit", "ceil", "3mbit", "burst", "15k")),),
                   (Filter("u32", protocol="ip", options=("match", "ip", "tos", "0x10", "0xff",
                                                          "flowid", "1:10")),))
    cmds = [" ".join(a) for a in tree.commands("veth0")]
    assert cmds == [
        "qdisc add dev veth0 root handle 1: htb default 10",
        "class add dev veth0 parent 1: classid 1:10 htb rate 2mbit ceil 3mbit burst 15k",
        "qdisc add dev veth0 parent 1:10 handle 10: pfifo_fast",
        "filter add dev veth0 parent 1: protocol ip prio 1 u32 match ip tos 0x10 0xff "
        "flowid 1:10",
    ]
    assert tree.qdisc_kinds() == {"htb", "pfifo_fast"} and tree.filter_kinds() == {"u32"}
    # the declarative form survives JSON (it goes into META) unchanged
    again = Shaping.from_dict(json.loads(json.dumps(tree.to_dict())))
    assert again == tree and again.commands("veth0") == tree.commands("veth0")


def test_bad_shaping_documents_name_the_entry():
    with pytest.raises(ConfigError, match=r"shaping\.qdiscs\[0\]"):
        Shaping.from_dict({"qdiscs": [{"kind": "htb", "bogus": 1}]})
    with pytest.raises(ConfigError, match="unknown key"):
        Shaping.from_dict({"qdisk": []})


def test_tc_statistics_parse_captured_iproute2_output():
    # captured from iproute2 6.1 on Linux 6.18: HTB 2mbit + pfifo limit 50 under a 3 mbit flood
    qd = qdisc_stats((DATA / "tc-s-j-qdisc-htb-pfifo.json").read_text())
    assert [(q["kind"], q["handle"], q["parent"]) for q in qd] == [
        ("htb", "1:", "root"), ("pfifo", "10:", "1:10")]
    leaf_q = qd[1]
    assert leaf_q["qlen"] == 49 and leaf_q["backlog"] == 49686 and leaf_q["drops"] == 206
    cls = parse_class_stats((DATA / "tc-s-class-htb.txt").read_text())
    assert len(cls) == 1
    c = cls[0]
    assert (c["classid"], c["parent"], c["packets"], c["drops"]) == ("1:10", "root", 500, 207)
    assert (c["backlog"], c["qlen"]) == (50700, 50)
    assert c["bytes"] == leaf_q["bytes"]  # class and leaf saw the same packets


def test_lab_parameters_are_typed_by_the_scenario_declaration():
    """``--param NAME=VALUE`` and ``--NAME VALUE`` give the same typed values."""
    _, values = options_of("bufferbloat", ["--param", "queue_limit=500", "--param",
                                           "rate=4mbit", "--param", "router=no"])
    assert values == {"queue_limit": 500, "rate": 4e6, "router": False}
    _, same = options_of("bufferbloat", ["--queue-limit", "500", "--rate", "4mbit",
                                         "--router", "no"])
    assert same == values
    with pytest.raises(ConfigError, match="queue_limit"):
        options_of("bufferbloat", ["--param", "queue_limit=many"])
    with pytest.raises(ConfigError, match="no scenario 'nope'"):
        options_of("nope", [])


def test_rates_and_queue_delays():
    assert parse_rate("2.5mbit") == 2.5e6 and parse_rate("100kbps") == 800e3
    with pytest.raises(ValueError, match="rate"):
        parse_rate("fast")
    # 1000 packets of 1000 bytes (+14 link header) at 2 mbit: about 4 s of queue
    assert queue_delay_ms(1000, 1000, "2mbit") == pytest.approx(4056)


def test_udp_flood_paces_its_rate_on_loopback():
    """The CBR sender sends rate x duration (plus the prefill), and the sink counts them."""
    sink = subprocess.Popen([sys.executable, FLOOD_SCRIPT, "udp-sink", "--port",
                             "0", "--duration", "20"], stdout=subprocess.PIPE, text=True)
    try:
        port = json.loads(sink.stdout.readline())["port"]
        out = subprocess.run([sys.executable, FLOOD_SCRIPT, "udp-send", "--dst",
                              "127.0.0.1", "--port", str(port), "--rate", "800kbit", "--size",
                              "200", "--duration", "1.0", "--prefill", "25"],
                             capture_output=True, text=True, timeout=60)
    finally:
        sink.send_signal(signal.SIGTERM)
        rest, _ = sink.communicate(timeout=30)
    assert out.returncode == 0, out.stderr
    sent = json.loads(out.stdout.splitlines()[-1])
    got = json.loads(rest.splitlines()[-1])
    # 800 kbit/s of 200-byte IP packets = 500 packets/s for 1 s (+-10 %), plus the prefill
    assert sent["prefill"] == 25
    assert 450 + 25 <= sent["sent"] <= 551 + 25
    assert sent["bytes"] == sent["sent"] * 200
    # loopback loses nothing the sink's large buffer can hold; payload = 200 - 28 bytes
    assert got["received"] == sent["sent"]
    assert got["payload_bytes"] == sent["sent"] * 172


def test_lab_cli_without_root_says_what_it_needs_and_leaves_no_file(tmp_path, monkeypatch,
                                                                     capsys):
    from qoslab.cli import main
    from qoslab.lab import netns

    monkeypatch.setattr(netns.os, "geteuid", lambda: 1000)
    out = tmp_path / "r.json.gz"
    assert main(["lab", "bufferbloat", "-w", str(out)]) == 2
    err = capsys.readouterr().err
    assert "needs root" in err and err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


def test_lab_cli_prints_the_summary_and_draws_the_run(tmp_path, monkeypatch, capsys):
    """The CLI's output side, fed with the bundled real bufferbloat run (no root needed)."""
    import qoslab
    from qoslab.cli import main
    from qoslab.scenarios import get

    saved = qoslab.load(qoslab.data_path("lab/bufferbloat.json.gz"))
    seen = {}
    scenario = get("bufferbloat")

    def fake_run(self, backend=None, **kwargs):
        seen.update(kwargs, backend=backend)
        return saved

    monkeypatch.setattr(type(scenario), "run", fake_run)
    png = tmp_path / "bb.png"
    assert main(["lab", "bufferbloat", "--param", "queue_limit=500", "-o", str(png)]) == 0
    assert seen == {"queue_limit": 500, "path": None, "capture": None, "force": False,
                    "backend": "kernel"}
    out = capsys.readouterr().out
    assert "tos00: 10.71.2.2 tos=0x00 size=56" in out and "median" in out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
