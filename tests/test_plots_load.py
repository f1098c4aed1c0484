"""Latency under load: RTT above throughput on a shared time axis, for real flent runs."""

from __future__ import annotations

import numpy as np
import pytest

import qoslab
from qoslab.plots import latency_under_load

from .conftest import SHARED_FLENT


@pytest.mark.parametrize("test", ["rrul", "tcp_upload", "udp_flood", "rtt_fair", "voip", "ping"])
def test_any_flent_test_draws(test):
    run = qoslab.load(SHARED_FLENT / f"lab-{test}.flent.gz")
    fig = latency_under_load(run)
    top, bottom = fig.axes
    assert top.get_shared_x_axes().joined(top, bottom)
    assert len(top.lines) == len(run.streams)
    thr = run.samples[run.samples.metric == "throughput"]
    assert len(bottom.lines) == thr.groupby(["series", "computed"]).ngroups
    for line in bottom.lines:  # the values drawn are the samples
        g = thr[thr.series == line.get_label()].sort_values("t")
        if len(g) == len(line.get_xdata()):
            np.testing.assert_allclose(line.get_ydata(), g["value"])


def test_socket_stats_panel():
    run = qoslab.load(SHARED_FLENT / "lab-tcp_upload.flent.gz")
    fig = latency_under_load(run, metric="tcp_rtt")
    assert "ms" in fig.axes[1].get_ylabel() and len(fig.axes[1].lines) == 1
