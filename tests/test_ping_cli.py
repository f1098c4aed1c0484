"""``qoslab ping``: ping-exp's options, saved files, reload, signals, bad input."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import pytest

import qoslab
from qoslab.cli import main

from .conftest import need_root


def _cli(*args, **kw):
    return subprocess.run([sys.executable, "-m", "qoslab", "ping", *args], capture_output=True,
                          text=True, timeout=60, **kw)


def test_pingexp_style_run_save_reload_and_plot(tmp_path, capsys):
    out, png = tmp_path / "r.json.gz", tmp_path / "r.png"
    code = main(["ping", "-t", "a,127.0.0.1,0x10", "-t", "b,127.0.0.1,0,1000", "-i", "0.01",
                 "-c", "10", "-w", str(out)])
    assert code == 0
    text = capsys.readouterr().out
    assert re.search(r"^a: 127.0.0.1 tos=0x10 size=56 +sent 10  received 10  loss 0.0%  "
                     r"rtt min/avg/max/mdev = [\d.]+/[\d.]+/[\d.]+/[\d.]+ ms$", text, re.M)
    run = qoslab.load(out)
    assert run.streams == ["a: 127.0.0.1 tos=0x10 size=56", "b: 127.0.0.1 tos=0x00 size=1000"]
    assert run.probes.groupby("stream")["size"].first().tolist() == [56, 1000]
    assert not out.with_name(out.name + ".partial").exists()
    assert main(["ping", "-r", str(out), "-o", str(png), "-l", "-q"]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_matrix_options_and_ipv6(tmp_path):
    out = tmp_path / "m.json.gz"
    assert main(["ping", "-6", "::1", "-Q", "0", "-Q", "0x08", "-s", "16", "-s", "200",
                 "-i", "0.01", "-c", "3", "-w", str(out), "-q"]) == 0
    run = qoslab.load(out)
    assert len(run.streams) == 4
    assert {t["address"] for t in run.meta["targets"]} == {"::1"}
    assert sorted(run.probes[["tos", "size"]].drop_duplicates().itertuples(index=False)) == \
        [(0, 16), (0, 200), (8, 16), (8, 200)]


def test_deadline_without_count(tmp_path):
    out = tmp_path / "d.json.gz"
    t0 = time.monotonic()
    assert main(["ping", "127.0.0.1", "-i", "0.05", "--deadline", "0.5", "-w", str(out),
                 "-q"]) == 0
    assert time.monotonic() - t0 < 5
    run = qoslab.load(out)
    assert 8 <= len(run.probes) <= 11 and run.meta["stop_reason"] == "deadline"


@pytest.mark.parametrize("args, message", [
    ([], "nothing to ping"),
    (["-t", "a,no-such-host.invalid,0"], "cannot resolve 'no-such-host.invalid'"),
    (["-t", "a,127.0.0.1"], "expected ID,HOST,TOS"),
    (["-t", "a,127.0.0.1,0x10", "-r", "x.json.gz"], "does not go with -t"),
    (["127.0.0.1", "--interval=-1"], "positive number"),
    (["127.0.0.1", "-c", "0"], "at least 1 probe"),
    (["127.0.0.1", "--backend", "raw", "-i", "0.00001"], "below what the raw backend"),
])
def test_bad_input_is_one_line_without_traceback(args, message, capsys):
    assert main(["ping", *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("qoslab ping: error:") and err.count("\n") == 1
    assert message in err


def test_reading_a_missing_file(capsys):
    assert main(["ping", "-r", "/nonexistent/run.json.gz"]) == 2
    assert "No such file" in capsys.readouterr().err


@pytest.mark.parametrize("sig, status, backend", [(signal.SIGINT, 130, "auto"),
                                                  (signal.SIGTERM, 143, "system")])
def test_signal_mid_run_saves_every_probe_sent(tmp_path, sig, status, backend):
    out = tmp_path / "s.json.gz"
    proc = subprocess.Popen([sys.executable, "-m", "qoslab", "ping", "-t", "a,127.0.0.1,0",
                             "-t", "b,::1,0x10", "-i", "0.02", "-c", "100000", "-w", str(out),
                             "--backend", backend],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    journal = out.with_name(out.name + ".partial")
    deadline = time.monotonic() + 30
    while not journal.exists() and time.monotonic() < deadline:  # wait for the run to start
        time.sleep(0.05)
    time.sleep(2)
    proc.send_signal(sig)
    stdout, stderr = proc.communicate(timeout=30)
    assert proc.returncode == status, stderr
    assert "Traceback" not in stderr
    run = qoslab.load(out)
    assert not journal.exists()
    assert run.meta["stop_reason"] == sig.name and run.meta["interrupted"] is True
    p = run.probes
    for stream in run.streams:
        seqs = sorted(p.loc[p.stream == stream, "seq"])
        # every probe sent is there, numbered without a gap, answered (loopback)
        assert seqs == list(range(1, len(seqs) + 1))
        assert len(seqs) >= 50  # 2 s at 50 Hz, with a wide margin for a loaded machine
    assert p["status"].eq("ok").all()
    assert run.meta["probes_sent"] == len(p)


def test_kill_leaves_a_journal_that_loads(tmp_path):
    out = tmp_path / "k.json.gz"
    proc = subprocess.Popen([sys.executable, "-m", "qoslab", "ping", "127.0.0.1", "-i", "0.02",
                             "-c", "100000", "-w", str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    journal = out.with_name(out.name + ".partial")
    deadline = time.monotonic() + 30
    while not journal.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(1.5)
    proc.kill()
    proc.wait()
    run = qoslab.load(journal)
    assert run.meta["recovered_from_journal"] and run.meta["backend"] == "raw"
    assert len(run.probes) >= 20  # flushed at least every quarter second


def test_runs_inside_a_namespace_as_the_lab_runs_it(tmp_path):
    need_root("network namespaces")
    from qoslab.lab import Testbed

    out = tmp_path / "ns.json.gz"
    with Testbed(ipv6=False) as tb:
        addr = tb.addr("server")
        r = subprocess.run(["ip", "netns", "exec", tb.ns("client").name, sys.executable, "-m",
                            "qoslab", "ping", "-t", f"a,{addr},0x10", "-t", f"b,{addr},0",
                            "-i", "0.05", "-c", "20", "-w", str(out)],
                           capture_output=True, text=True, timeout=60, cwd=os.getcwd())
    assert r.returncode == 0, r.stderr
    run = qoslab.load(out)
    assert run.meta["backend"] == "raw"
    assert run.probes.groupby("tos")["status"].apply(lambda s: (s == "ok").sum()).to_dict() == \
        {0: 20, 16: 20}
