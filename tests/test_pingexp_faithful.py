"""Files written by the original ping-exp load with the x positions, stream order, loss % and
summary figures its own figure shows.

The files in tests/data/pingexp/ were written by ping-exp's ``pingexp.py -w`` under CPython
2.7.18 (tests/data/pingexp/README.md). Each is checked twice:

* against the original's plotting computation reimplemented here from its source (public
  repository biyiklioglu/ping-exp, ``pingexp.py`` at commit 92ca1bb, function ``graph()``; line
  numbers below);
* against ``*.figure.json``: what that ``graph()`` itself drew when run on the same file
  (every plotting call recorded).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import qoslab
from qoslab.io.pingexp import safe_unpickle

DATA = Path(__file__).parent / "data" / "pingexp"
FILES = sorted(DATA.glob("*.pickle"))


def original_figure(results: dict) -> dict:
    """What ping-exp's graph() computes from its results dict (pingexp.py, graph())."""
    exps = results["experiments"]
    order = sorted(exps)  # l.256, 278, 284, 290, 296, 306, 320: sorted(experiments)
    step = 1 / results["ping_interval"]  # l.261 and l.325: icmp_seq / (1 / ping_interval)
    return {
        "order": order,
        "x": {k: [seq / step for seq, _ttl, _ms in exps[k]["responses"]] for k in order},
        "y": {k: [ms for _seq, _ttl, ms in exps[k]["responses"]] for k in order},
        "loss_x": {k: sorted(seq / step for seq in exps[k]["losses"]) for k in order},
        "loss_pct": [exps[k]["summary"]["packet_loss"] for k in order],  # l.278
        "avg": [exps[k]["rtt_summary"]["avg"] for k in order],  # l.284
        "mdev": [exps[k]["rtt_summary"]["mdev"] for k in order],  # l.290
    }


def recorded_figure(path: Path) -> dict:
    """The calls the original graph() made on this file (recorded when the file was made)."""
    calls = json.loads(path.with_name(path.stem + ".figure.json").read_text())
    scatter = [c["args"] for c in calls if c["axes"] == "Latency vs time"
               and c["call"] in ("scatter", "plot")]
    bars = {c["axes"]: c["args"][1] for c in calls if c["call"] == "bar"}
    legend = next(c["args"][1] for c in calls if c["call"] == "legend")
    return {"scatter": scatter, "loss_pct": bars["Packet loss"], "avg": bars["Latency avg"],
            "mdev": bars["Latency mdev"], "legend": legend}


@pytest.fixture(params=FILES, ids=lambda p: p.name)
def pingexp_file(request):
    return request.param


def test_files_were_written_by_python2_pickle(pingexp_file):
    data = pingexp_file.read_bytes()
    assert data[:2] == b"(d" and b"S'experiments'" in data  # protocol 0, py2 str


def test_same_figure_as_the_original(pingexp_file):
    results = safe_unpickle(pingexp_file.read_bytes(), str(pingexp_file))
    want = original_figure(results)
    drawn = recorded_figure(pingexp_file)
    run = qoslab.load(pingexp_file)
    ids = [t["id"] for t in run.meta["targets"]]
    # stream order (and so colours and legend) as the original's sorted(experiments)
    assert ids == want["order"] == drawn["legend"]
    assert [run.meta["targets"][i]["stream"] for i in range(len(ids))] == run.streams
    for i, ident in enumerate(ids):
        stream = run.streams[i]
        rows = run.probes[run.probes.stream == stream]
        ok = rows[rows.status.isin(["ok", "duplicate"])]
        # x positions: exactly the original's floats (ping N at N × interval)
        assert ok["t_sent"].tolist() == want["x"][ident] == drawn["scatter"][i][0]
        assert ok["rtt_ms"].tolist() == want["y"][ident] == drawn["scatter"][i][1]
        lost = rows[rows.status == "lost"]
        assert lost["t_sent"].tolist() == want["loss_x"][ident]
        # ping's own figures, which the original's bars show
        reported = run.meta["reported_summary"][stream]
        assert reported["by"] == "ping"
        assert reported["loss_pct"] == want["loss_pct"][i] == drawn["loss_pct"][i]
        assert reported["mean"] == want["avg"][i] == drawn["avg"][i]
        assert reported["mdev"] == want["mdev"][i] == drawn["mdev"][i]


def test_pings_own_summary_differs_from_a_recomputation():
    # ping prints replies over 100 ms with 3 significant digits; its summary line comes from
    # the exact times: the two must not be confused (the queued TOS 0x10 stream shows it)
    run = qoslab.load(DATA / "pingexp-tos.pickle")
    from qoslab.analysis import summarize

    stream = next(s for s in run.streams if s.startswith("tos16-big"))
    recomputed = summarize(run.probes).loc[stream, "mean"]
    reported = run.meta["reported_summary"][stream]["mean"]
    assert reported != recomputed and abs(reported - recomputed) < 0.5
    assert reported > 100  # it queued behind the 100 kbit class


def test_the_time_axis_starts_one_interval_in():
    run = qoslab.load(DATA / "pingexp-default-interval.pickle")
    first = run.probes.groupby("stream")["t_sent"].min()
    np.testing.assert_array_equal(first.to_numpy(), 1 / (1 / 0.2))
    assert "icmp_seq × interval" in run.meta["time_axis"]
