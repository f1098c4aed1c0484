"""Children qoslab starts never run code from the caller's folder or environment."""

from __future__ import annotations

import subprocess
import sys

import pytest

from qoslab.children import isolation, python_argv, qoslab_argv

from .conftest import need_root

#: Module names a qoslab child imports (the standard library, numpy, pandas, qoslab's own
#: imports) — a planted file of any of these names must never run.
PLANTED = ("timeit", "argparse", "json", "socket", "selectors", "random", "numpy", "pandas",
           "gzip", "ipaddress", "signal", "asyncio", "sitecustomize", "usercustomize")


@pytest.fixture
def booby_trapped(tmp_path, monkeypatch):
    """A folder full of planted modules; the test runs from it with it on PYTHONPATH."""
    trap = tmp_path / "trap"
    trap.mkdir()
    marker = tmp_path / "EXECUTED"
    for name in PLANTED:
        (trap / f"{name}.py").write_text(
            f"open({str(marker)!r}, 'a').write({name!r} + '\\n')\n")
    monkeypatch.chdir(trap)
    monkeypatch.setenv("PYTHONPATH", str(trap))
    monkeypatch.setenv("PYTHONSTARTUP", str(trap / "timeit.py"))
    return marker


def test_the_trap_works_on_an_unisolated_child(booby_trapped):
    """Control: a child started the naive way does run the planted code."""
    subprocess.run([sys.executable, "-m", "qoslab", "--version"], capture_output=True,
                   timeout=60)
    assert booby_trapped.exists()


def test_isolated_qoslab_child_runs_no_planted_module(booby_trapped):
    r = subprocess.run(qoslab_argv("ping", "127.0.0.1", "-c", "2", "-i", "0.05", "-q",
                                   "--no-plot"),
                       capture_output=True, text=True, timeout=60, **isolation())
    assert r.returncode == 0, r.stderr
    assert not booby_trapped.exists(), booby_trapped.read_text()


def test_isolated_script_child_runs_no_planted_module(booby_trapped):
    from qoslab.lab.loads import FLOOD_SCRIPT

    r = subprocess.run(python_argv(FLOOD_SCRIPT, "--help"), capture_output=True, text=True,
                       timeout=60, **isolation())
    assert r.returncode == 0, r.stderr
    assert not booby_trapped.exists(), booby_trapped.read_text()


def test_lab_children_run_no_planted_module(booby_trapped, tmp_path):
    """The real lab path (as root): the ping runner and a flood started from the trap."""
    need_root("network namespaces")
    from qoslab.lab import Testbed

    with Testbed(ipv6=False) as tb:
        flood = tb.udp_flood("1mbit", size=200, duration=5)
        pings = tb.start_ping(tb.ping_targets([0]), interval=0.05, count=5,
                              path=tmp_path / "p.json.gz").result(t0_unix=tb.t0_unix)
        flood.finish()
    assert (pings.probes["status"] == "ok").sum() == 5
    assert not booby_trapped.exists(), booby_trapped.read_text()


@pytest.mark.parametrize("entry", [".", "", "trap"])
def test_programs_are_found_only_in_absolute_path_folders(tmp_path, monkeypatch, entry):
    """The lab (as root) runs tcpdump, iperf3, ping, ip and tc by the path found on PATH: a
    relative or empty PATH entry would find one planted in the caller's folder."""
    import os
    import shutil

    from qoslab.children import find_program

    real = shutil.which("sh")
    (tmp_path / "trap").mkdir()
    for folder in (tmp_path, tmp_path / "trap"):
        fake = folder / "sh"
        fake.write_text("#!/bin/sh\necho planted\n")
        fake.chmod(0o755)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PATH", f"{entry}:{os.path.dirname(real)}")
    assert shutil.which("sh") != real  # control: the naive look-up finds the planted one
    assert find_program("sh") == real
    monkeypatch.setenv("PATH", entry)
    assert find_program("sh") is None
