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
    if test == "voip":  # no throughput: what it measured in ms (flent's voip_delay plot)
        thr = run.samples[run.samples.unit == "ms"]
        assert {"delay", "jitter"} <= set(thr.metric) and "ms" in bottom.get_ylabel()
    assert len(bottom.lines) == thr.groupby(["series", "metric", "computed"]).ngroups
    for line in bottom.lines:  # the values drawn are the samples
        g = thr[thr.series == line.get_label()].sort_values("t")  # one metric per series
        if len(g) == len(line.get_xdata()):
            np.testing.assert_allclose(line.get_ydata(), g["value"])


def test_socket_stats_panel():
    run = qoslab.load(SHARED_FLENT / "lab-tcp_upload.flent.gz")
    fig = latency_under_load(run, metric="tcp_rtt")
    assert "ms" in fig.axes[1].get_ylabel() and len(fig.axes[1].lines) == 1


def test_plot_command_draws_latency_under_load(tmp_path):
    from qoslab.plot_cli import plot_files

    fig = plot_files([SHARED_FLENT / "lab-rrul.flent.gz"], kind="load")
    top, bottom = fig.axes
    assert "latency under load" in top.get_title() and "flent rrul" in top.get_title()
    assert "throughput (Mbit/s)" == bottom.get_ylabel()
    # two files: each file's streams and series, named apart
    fig = plot_files([SHARED_FLENT / "lab-rrul.flent.gz", SHARED_FLENT / "lab-tcp_upload.flent.gz"],
                     kind="load")
    labels = [line.get_label() for line in fig.axes[1].lines]
    want = sum(qoslab.load(SHARED_FLENT / f).samples.query("metric == 'throughput'")
               ["series"].nunique() for f in ("lab-rrul.flent.gz", "lab-tcp_upload.flent.gz"))
    assert len(labels) == len(set(labels)) == want
    assert "lab-tcp_upload: TCP upload" in labels


def test_run_without_load_samples_says_so():
    run = qoslab.load(SHARED_FLENT / "lab-ping.flent.gz")
    fig = latency_under_load(run)
    assert not fig.axes[1].lines
    assert any("no throughput samples" in t.get_text() for t in fig.axes[1].texts)
