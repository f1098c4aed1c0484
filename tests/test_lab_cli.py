"""``qoslab lab``: feature listing, leftover clean-up, tunnel_keys where the kernel allows,
and the custom scenario (your own tree and timed tc changes) on the kernel."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from qoslab.errors import KernelFeatureMissing
from tests.conftest import need_root

pytestmark = pytest.mark.netns


def test_features_lists_what_the_kernel_accepts(capsys):
    need_root()
    from qoslab.cli import main

    assert main(["lab", "--features"]) == 0
    feats = json.loads(capsys.readouterr().out)
    assert feats["qdisc"]["htb"] is True and feats["filter"]["u32"] is True
    assert set(feats) == {"qdisc", "filter", "link"}


def test_cleanup_removes_namespaces_of_dead_runs(capsys):
    need_root()
    from qoslab.cli import main
    from qoslab.lab import netns

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    name = netns.namespace_name("s", netns.new_runid(), pid=int(dead))
    netns.create_namespace(name)
    try:
        assert main(["lab", "--cleanup"]) == 0
        assert name in capsys.readouterr().out
        assert name not in netns.list_namespaces()
    finally:
        netns.delete_namespace(name)


def test_tunnel_keys_runs_or_is_refused_naming_the_missing_pieces(tmp_path, capsys):
    need_root()
    from qoslab.cli import main
    from qoslab.lab.probe import require_features

    try:
        require_features(qdiscs=["htb", "sfq"], links=["ipip"])
    except KernelFeatureMissing as exc:
        missing = [k for k in ("sfq", "ipip") if f"'{k}'" in str(exc)]
        assert main(["lab", "tunnel_keys", "-w", str(tmp_path / "t.json.gz")]) == 2
        err = capsys.readouterr().err
        assert err.startswith("qoslab lab: error:") and err.count("\n") == 1  # one line
        for kind in missing:
            assert f"'{kind}'" in err
        assert not (tmp_path / "t.json.gz").exists()
        assert not (tmp_path / "t.json.gz.partial").exists()
        return
    from qoslab.scenarios import get

    run = get("tunnel_keys").run("kernel", duration=8.0, switch_at=4.0,
                                 path=str(tmp_path / "t.json.gz"))
    assert (run.probes["status"] == "ok").sum() >= 10
    assert np.isfinite(run.probes["rtt_ms"].median())


def test_custom_tree_from_a_yaml_file_with_a_timed_tbf_change(tmp_path):
    """A user's own tree: TBF 1 mbit with a 60 kB queue, cut to 15 kB 2 s into the pings."""
    need_root()
    from qoslab.scenarios import get

    tree = tmp_path / "tbf.yaml"
    tree.write_text(
        "description: TBF 1 mbit, 60 kB then 15 kB\n"
        "qdiscs:\n"
        "  - {kind: tbf, handle: '1:', options: {rate: 1mbit, burst: 5kb, limit: 60kb}}\n"
        "changes:\n"
        "  - {t: 2, tc: 'qdisc change dev DEV root handle 1: tbf rate 1mbit burst 5kb "
        "limit 15kb', detail: cut the queue}\n")
    run = get("custom").run("kernel", tree=str(tree), tos=(0,), count=45, flood_rate=1.2e6,
                            prefill=60, settle=0.5)
    (change,) = run.events.loc[run.events["detail"] == "cut the queue", "t"]
    p = run.probes[run.probes["status"] == "ok"]
    first = run.probes["t_sent"].min()
    assert abs(change - (first + 2)) < 0.5
    # 60 kB drained at 1 mbit is ~480 ms; 15 kB is ~120 ms
    # (the change flushes what exceeds the new limit: pings queued then are lost)
    long_q = p.loc[p["t_sent"] < change - 0.6, "rtt_ms"]
    short_q = p.loc[p["t_sent"] > change + 0.2, "rtt_ms"]
    assert len(long_q) >= 5 and len(short_q) >= 5
    assert 300 <= long_q.median() <= 700 and 60 <= short_q.median() <= 200
    after = next(s for s in run.meta["lab"]["tc_snapshots"] if s["label"] == "after")
    tbf = after["qdiscs"][0]
    assert tbf["kind"] == "tbf" and tbf["backlog"] <= 15 * 1024
    assert run.meta["changes"] == [{"t": 2.5, "detail": "cut the queue",
                                    "tc": "qdisc change dev DEV root handle 1: tbf rate 1mbit "
                                          "burst 5kb limit 15kb"}]


def test_experiment_file_errors_name_the_file_and_field(tmp_path):
    from qoslab.errors import ConfigError
    from qoslab.scenarios.custom import read_experiment_file

    bad = tmp_path / "x.yaml"
    bad.write_text("qdiscs: [{kind: pfifo}]\nchanges: [{t: soon, tc: 'qdisc del dev DEV root'}]\n")
    with pytest.raises(ConfigError, match=r"x\.yaml: changes\[0\]\.t"):
        read_experiment_file(bad)
    bad.write_text("qdiscs: [{kind: pfifo}]\nchanges: [{t: 1, tc: 'rm -rf /'}]\n")
    with pytest.raises(ConfigError, match=r"changes\[0\]\.tc"):
        read_experiment_file(bad)
    bad.write_text("qdiscs: [\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        read_experiment_file(bad)


def test_custom_htb_classes_with_a_u32_filter_give_tos_0x10_its_own_queue(tmp_path):
    """Two HTB classes and a u32 filter on the TOS byte: the flood fills class 1:10, pings
    with TOS 0x10 are filtered into 1:20 and never wait behind it."""
    need_root()
    from qoslab.scenarios import get

    tree = tmp_path / "classes.json"
    tree.write_text(json.dumps({
        "description": "HTB 2 mbit, TOS 0x10 to its own class",
        "qdiscs": [{"kind": "htb", "handle": "1:", "options": {"default": 10}},
                   {"kind": "pfifo", "parent": "1:10", "handle": "10:",
                    "options": {"limit": 100}},
                   {"kind": "pfifo", "parent": "1:20", "handle": "20:",
                    "options": {"limit": 100}}],
        "classes": [{"classid": "1:1", "parent": "1:", "options": {"rate": "2mbit"}},
                    {"classid": "1:10", "parent": "1:1",
                     "options": {"rate": "1mbit", "ceil": "2mbit", "prio": 1}},
                    {"classid": "1:20", "parent": "1:1",
                     "options": {"rate": "1mbit", "ceil": "2mbit", "prio": 0}}],
        "filters": [{"kind": "u32", "protocol": "ip",
                     "options": "match ip tos 0x10 0xff flowid 1:20"}]}))
    run = get("custom").run("kernel", tree=str(tree), tos=(0x10, 0x00), count=20,
                            prefill=100, settle=0.5)
    p = run.probes[run.probes["status"] == "ok"]
    fast, slow = p.loc[p["tos"] == 0x10, "rtt_ms"], p.loc[p["tos"] == 0, "rtt_ms"]
    assert len(fast) >= 18 and len(slow) >= 3
    assert fast.median() * 10 <= slow.median()
    # the flood's class holds the backlog, the pings' class none; tc -s class agrees
    during = next(s for s in run.meta["lab"]["tc_snapshots"] if s["label"] == "after")
    classes = {c["classid"]: c for c in during["classes"]}
    assert classes["1:10"]["qlen"] >= 50 and classes["1:20"]["qlen"] <= 2
    assert classes["1:20"]["packets"] >= len(fast)
