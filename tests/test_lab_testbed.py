"""The lab's Testbed: real namespaces, veth, addresses, and cleanup on every way out."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import need_root

pytestmark = pytest.mark.netns


def _netns() -> set[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return {line.split()[0] for line in out.splitlines() if line.strip()}


def _root_links() -> set[str]:
    out = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout
    return {line.split(":")[1].strip().split("@")[0] for line in out.splitlines()}


@pytest.mark.parametrize("router", [False, True])
def test_bed_reaches_server_over_ipv4_and_ipv6_and_leaves_nothing(router):
    need_root()
    from qoslab.lab import Testbed

    before, links_before = _netns(), _root_links()
    with Testbed(router=router) as tb:
        names = set(tb.meta["namespaces"].values())
        assert names <= _netns()
        assert all(n.startswith(f"qlab-{os.getpid()}-{tb.runid}-") for n in names)
        for family in (4, 6):
            r = tb.ns("client").run(["ping", "-c", "1", "-W", "3", tb.addr("server", family)],
                                    check=False)
            assert r.returncode == 0, r.stdout + r.stderr
            assert ("ttl=63" in r.stdout) == router  # one forwarding hop with a router
        assert tb.meta["kernel_release"] == os.uname().release
        assert _root_links() == links_before  # the veths never appear in the root namespace
    assert _netns() == before
    assert _root_links() == links_before
    assert [e["kind"] for e in tb.events] == ["run_start", "run_stop"]


def test_exception_inside_the_bed_removes_everything():
    need_root()
    from qoslab.lab import Testbed

    before = _netns()
    with pytest.raises(RuntimeError, match="boom"), Testbed(router=True) as tb:
        assert len(_netns() - before) == 3
        raise RuntimeError("boom")
    assert _netns() == before
    assert tb.namespaces  # names were real ...
    assert not set(tb.meta["namespaces"].values()) & _netns()  # ... and are gone


def test_leftovers_of_a_dead_process_are_removed_and_live_ones_kept():
    need_root()
    from qoslab.lab import netns

    # a namespace "created" by a process that has exited, one by a live process (us)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    dead_name = netns.namespace_name("c", netns.new_runid(), pid=int(dead))
    live_name = netns.namespace_name("c", netns.new_runid())
    try:
        netns.create_namespace(dead_name)
        netns.create_namespace(live_name)
        assert dead_name in netns.find_leftovers()
        assert live_name not in netns.find_leftovers()
        removed = netns.remove_leftovers()
        assert dead_name in removed and live_name not in removed
        assert dead_name not in _netns() and live_name in _netns()
    finally:
        netns.delete_namespace(live_name)
        netns.delete_namespace(dead_name)
    with pytest.raises(ValueError, match="not a lab namespace"):
        netns.delete_namespace("not-ours")


def test_not_root_is_a_clear_error(monkeypatch):
    from qoslab.lab import LabUnavailableError, Testbed, netns

    monkeypatch.setattr(netns.os, "geteuid", lambda: 1000)
    with pytest.raises(LabUnavailableError, match="needs root"):
        Testbed().__enter__()
