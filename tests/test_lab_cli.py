"""``qoslab lab``: feature listing, leftover clean-up, and tunnel_keys where the kernel allows."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from qoslab.errors import KernelFeatureMissing
from tests.conftest import need_root

pytestmark = pytest.mark.netns


def _qoslab(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "qoslab", "lab", *args], capture_output=True,
                          text=True, timeout=timeout)


def test_features_lists_what_the_kernel_accepts(capsys):
    need_root()
    from qoslab.cli import main

    assert main(["lab", "--features"]) == 0
    feats = json.loads(capsys.readouterr().out)
    assert feats["qdisc"]["htb"] is True and feats["filter"]["u32"] is True
    assert set(feats) == {"qdisc", "filter", "link"}


def test_cleanup_removes_namespaces_of_dead_runs():
    need_root()
    from qoslab.lab import netns

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    name = netns.namespace_name("s", netns.new_runid(), pid=int(dead))
    netns.create_namespace(name)
    try:
        out = _qoslab("--cleanup")
        assert out.returncode == 0 and name in out.stdout
        assert name not in netns.list_namespaces()
    finally:
        netns.delete_namespace(name)


def test_tunnel_keys_runs_or_is_refused_naming_the_missing_pieces(tmp_path):
    need_root()
    from qoslab.lab.probe import require_features

    try:
        require_features(qdiscs=["htb", "sfq"], links=["ipip"])
    except KernelFeatureMissing as exc:
        missing = [k for k in ("sfq", "ipip") if f"'{k}'" in str(exc)]
        out = _qoslab("tunnel_keys", "-w", str(tmp_path / "t.json.gz"))
        assert out.returncode == 2 and "Traceback" not in out.stderr
        assert out.stderr.count("\n") == 1  # one line, naming every missing piece
        for kind in missing:
            assert f"'{kind}'" in out.stderr
        assert not (tmp_path / "t.json.gz").exists()
        assert not (tmp_path / "t.json.gz.partial").exists()
        return
    from qoslab.lab.presets import tunnel_keys

    run = tunnel_keys(duration=4.0, path=str(tmp_path / "t.json.gz"))
    ids = run.probes["stream"].str.split(":").str[0]
    for name in ("inner", "outer"):
        assert (run.probes.loc[ids == name, "status"] == "ok").sum() >= 10
    assert np.isfinite(run.meta["inner_over_outer_median"])
    assert any("type ipip" in c for c in run.meta["lab"]["commands"])
