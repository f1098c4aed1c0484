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
from qoslab.io.pingexp import EARLY_EXPERIMENT_TOS, safe_unpickle

DATA = Path(__file__).parent / "data" / "pingexp"
FILES = sorted(DATA.glob("*.pickle"))


def find_lost_sequence_numbers(exp: dict) -> list[int]:
    """pingexp.py's own (l.146-163): 1..transmitted less the answered sequence numbers (files
    of versions before it kept no ``losses``)."""
    sent = set(range(1, exp["summary"]["transmitted"] + 1))
    return list(sent - {r[0] for r in exp["responses"]})


def original_figure(results: dict) -> dict:
    """What ping-exp's graph() computes from its results dict (pingexp.py, graph())."""
    exps = results["experiments"]
    order = sorted(exps)  # l.256, 278, 284, 290, 296, 306, 320: sorted(experiments)
    step = 1 / results["ping_interval"]  # l.261 and l.325: icmp_seq / (1 / ping_interval)
    return {
        "order": order,
        "x": {k: [seq / step for seq, _ttl, _ms in exps[k]["responses"]] for k in order},
        "y": {k: [ms for _seq, _ttl, ms in exps[k]["responses"]] for k in order},
        "loss_x": {k: sorted(seq / step for seq in exps[k].get("losses")
                             or find_lost_sequence_numbers(exps[k])) for k in order},
        "loss_pct": [exps[k]["summary"]["packet_loss"] for k in order],  # l.278
        "avg": [exps[k]["rtt_summary"]["avg"] for k in order],  # l.284
        "mdev": [exps[k]["rtt_summary"]["mdev"] for k in order],  # l.290
    }


def recorded_figure(path: Path) -> dict:
    """The calls the original graph() made on this file (recorded when the file was made)."""
    calls = json.loads(path.with_name(path.stem + ".figure.json").read_text())
    scatter = [c["args"] for c in calls if (c["axes"] or "").startswith("Latency vs time")
               and c["call"] in ("scatter", "plot")]
    bars = {c["axes"]: c["args"][1] for c in calls if c["call"] == "bar"}
    legend = next(c["args"][1] for c in calls if c["call"] == "legend")
    # "Loss vs time": one scatter per experiment with losses, at y = its index + 1 (l.327)
    lost = {c["args"][1][0] - 1: c["args"][0] for c in calls
            if c["axes"] == "Loss vs time" and c["call"] == "scatter"}
    if not any(c["axes"] == "Loss vs time" for c in calls):
        lost = None  # versions before April 2011 drew no loss panel
    return {"scatter": scatter, "loss_pct": bars["Packet loss"], "avg": bars["Latency avg"],
            "mdev": bars["Latency mdev"], "legend": legend, "lost": lost}


@pytest.fixture(params=FILES, ids=lambda p: p.name)
def pingexp_file(request):
    return request.param


def test_a_file_with_losses_non_ascii_ids_and_a_decimal_tos_is_among_them():
    run = qoslab.load(DATA / "pingexp-loss-utf8.pickle")
    assert [t["id"] for t in run.meta["targets"]] == ["Größe", "big", "small"]  # bytes order
    assert [t["tos"] for t in run.meta["targets"]] == [184, 0, 10]  # '010' is -Q 10
    lost = run.probes[run.probes.status == "lost"].groupby("stream").size()
    assert lost.min() > 0 and lost.sum() == 24


def test_files_of_earlier_versions_show_their_losses_and_fixed_experiments():
    run = qoslab.load(DATA / "pingexp-2011-4ddd92e.pickle")  # no "losses" kept yet
    summary = qoslab.analysis.summarize(run)
    own = qoslab.analysis.reported_summary(run)
    assert (summary["loss_pct"] > 0).all()
    assert (summary["sent"] == own["sent"]).all() and (summary["received"] == own["received"]).all()
    assert summary["loss_pct"].round().tolist() == own["loss_pct"].tolist() == [10, 18]
    early = qoslab.load(DATA / "pingexp-2009-ca14ef1.pickle")  # one host, no qos
    assert [(t["id"], t["tos"]) for t in early.meta["targets"]] == [
        ("Default", 0), ("High priority", 16), ("Low priority", 8)]
    assert set(early.probes["host"]) == {early.meta["targets"][0]["host"]}


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
        if drawn["lost"] is not None:
            assert sorted(drawn["lost"].get(i, [])) == want["loss_x"][ident]  # what it drew
        qos = results["experiments"][ident].get("qos", EARLY_EXPERIMENT_TOS.get(ident))
        assert run.meta["targets"][i]["tos"] == int(qos)
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


def test_figure_bars_are_pings_own_figures_and_say_so(pingexp_file):
    """qoslab's ping-exp figure shows the bars the original drew (ping's summary lines)."""
    from qoslab.plots import pingexp_figure

    drawn = recorded_figure(pingexp_file)
    run = qoslab.load(pingexp_file)
    fig = pingexp_figure(run)
    bars = {ax.get_title().splitlines()[0]: ax for ax in fig.subfigs[1].axes}
    for title, key in (("packet loss (%)", "loss_pct"), ("RTT mean (ms)", "avg"),
                       ("RTT mdev (ms)", "mdev")):
        ax = bars[title]
        assert [p.get_height() for p in ax.patches] == drawn[key], title
        assert ax.get_title().splitlines()[1] == "as ping printed it"
        assert {p.get_gid() for p in ax.patches} == {"reported"}
    assert fig._suptitle.get_text().startswith("ping-exp: ping ")


def test_recomputed_bars_are_hatched_and_named_when_ping_printed_nothing_for_a_stream():
    from qoslab.plots import summary_bars

    run = qoslab.load(DATA / "pingexp-tos.pickle")
    stream = next(s for s in run.streams if s.startswith("tos16-big"))
    del run.meta["reported_summary"][stream]
    ax = summary_bars(run, metrics=("mean",)).axes[0]
    gids = [p.get_gid() for p in ax.patches]
    assert gids[run.streams.index(stream)] == "recomputed" and gids.count("reported") == 2
    assert ax.get_title().endswith("as ping printed it; hatched: recomputed")
    recomputed = qoslab.analysis.summarize(run).loc[stream, "mean"]
    assert ax.patches[run.streams.index(stream)].get_height() == recomputed
    plain = summary_bars(run, metrics=("mean",), reported=False).axes[0]
    assert plain.get_title() == "RTT mean (ms)"


def test_summary_lines_show_pings_own_line_under_the_recomputed_one():
    from qoslab.ping.cli import summary_lines

    run = qoslab.load(DATA / "pingexp-tos.pickle")
    results = safe_unpickle((DATA / "pingexp-tos.pickle").read_bytes())
    lines = summary_lines(run)
    assert lines[0] == ("--- ping-exp: 3 streams (recomputed from the replies; the tool's own "
                        "figures below each) ---")
    for ident, exp in results["experiments"].items():
        i = next(i for i, line in enumerate(lines) if line.startswith(f"{ident}: "))
        own = exp["rtt_summary"]
        assert lines[i + 1].startswith("   as ping printed it: ")
        assert lines[i + 1].endswith(f"rtt min/avg/max/mdev = {own['min']:.3f}/{own['avg']:.3f}/"
                                     f"{own['max']:.3f}/{own['mdev']:.3f} ms")
        assert f"loss {exp['summary']['packet_loss']}%" in lines[i + 1]


def test_without_pings_summary_the_run_count_says_what_was_sent():
    # versions before 2011 saved experiments whose ping summary line their pattern missed
    # (a newer ping prints "17.5% packet loss"); ping -c COUNT still sent COUNT probes
    results = safe_unpickle((DATA / "pingexp-2011-4ddd92e.pickle").read_bytes())
    for exp in results["experiments"].values():
        del exp["summary"]
    run = qoslab.io.pingexp.pingexp_to_run(results, "no-summary")
    summary = qoslab.analysis.summarize(run)
    assert results["ping_count"] == 50 and (summary["sent"] == 50).all()
    assert summary["loss_pct"].tolist() == [10.0, 18.0]
