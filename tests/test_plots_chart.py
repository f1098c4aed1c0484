"""qoslab.plots.chart: the spec a zoomable chart carries, its HTML, thinning, saving."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest

import qoslab
from qoslab import plots
from qoslab.errors import ConfigError
from qoslab.plots.chart import LIBRARY_MARK, SPIKE_COLOR, _thin, chart_assets
from qoslab.plots.theme import dark_color
from qoslab.runs import Run


def spiky_run(duration=120.0, interval=0.2) -> Run:
    """Two streams; a 0.3 s spike at 60 s; hash changes every 10 s; a lost probe at 30 s."""
    t = np.arange(0, duration, interval)
    rows = []
    for name, base in (("a", 20.0), ("b", 30.0)):
        rtt = np.full(t.size, base)
        rtt[(t >= 60.0) & (t < 60.3)] = 400.0
        status = np.where(np.isclose(t, 30.0), "lost", "ok")
        rtt = np.where(status == "lost", np.nan, rtt)
        rows.append(pd.DataFrame({"stream": name, "host": "h", "tos": 0, "size": 56,
                                  "seq": np.arange(t.size), "t_sent": t, "rtt_ms": rtt,
                                  "status": status, "ttl": 64}))
    events = {"t": np.arange(10.0, duration, 10.0), "kind": "hash_change", "detail": ""}
    return Run(pd.concat(rows, ignore_index=True), events, {"source": "sim",
                                                            "scenario": "toy", "seed": 3})


def spec_of(html: str) -> dict:
    m = re.search(r'<script type="application/json">(.*?)</script>', html, re.S)
    return json.loads(m.group(1).replace("<\\/", "</"))


def test_latency_chart_spec_holds_streams_events_and_spike_events():
    run = spiky_run()
    spikes = qoslab.analysis.detect_spikes(run.probes)
    c = plots.latency_chart(run, kind="line", spikes=spikes)
    spec = c.spec
    assert [s["name"] for s in spec["series"]] == ["a", "b"]
    a = spec["series"][0]
    assert a["mode"] == "line" and len(a["x"]) == 600
    assert a["y"][150] is None  # the lost probe at 30 s breaks the line
    (ev,) = spec["events"]
    assert ev["kind"] == "hash_change" and len(ev["t"]) == 11 and ev["label"].endswith("(11)")
    (sp,) = spec["spans"]  # two streams saw one spike: one spike event
    assert sp["t0"] == [60.0] and sp["t1"] == [pytest.approx(60.2)]
    assert sp["color"] == SPIKE_COLOR and sp["label"] == "spike event (1)"
    assert spec["x_range"][0] == 0 and 119.8 < spec["x_range"][1]
    assert spec["title"] == "toy, simulated: seed 3"
    embedded = spec_of(c.to_html(library=False))
    # with each data colour's twin for dark pages
    theme = embedded.pop("theme")
    assert theme["dark"][SPIKE_COLOR] == dark_color(SPIKE_COLOR)
    assert set(theme["dark"]) == {g["color"] for k in ("series", "events", "spans")
                                  for g in spec[k]}
    assert embedded == json.loads(json.dumps(spec))


def test_scatter_drops_lost_probes_and_log_axis_drops_non_positive_rtts():
    run = spiky_run()
    run.probes.loc[0, "rtt_ms"] = 0.0
    c = plots.latency_chart(run, kind="scatter", logy=True)
    a = c.spec["series"][0]
    assert a["mode"] == "points" and 30.0 not in a["x"] and 0.0 not in a["x"]
    assert c.spec["logy"] is True


def test_note_marks_the_first_spike_and_hlines_are_kept():
    c = plots.latency_chart(spiky_run(), spikes=True, note="first",
                            hlines=[{"y": 250, "label": "full queue"}])
    (note,) = c.spec["notes"]
    assert note == {"t": 60.0, "y": 400.0, "text": "this is a spike"}
    assert c.spec["hlines"] == [{"label": "full queue", "y": 250.0, "color": "#7b3294"}]
    with pytest.raises(ConfigError, match="first spike"):
        plots.latency_chart(spiky_run(), note="first")  # no spikes to mark


def test_html_carries_the_library_once_and_never_closes_its_script_early():
    html = plots.latency_chart(spiky_run()).to_html()
    assert html.count(LIBRARY_MARK) == 2  # one <style>, one <script>
    css, js = chart_assets()
    assert "uPlot" in js and "qoslabChart" in js and ".uplot" in css
    # a stream label cannot end the data script: </script> inside JSON is escaped
    run = spiky_run()
    run.probes["stream"] = run.probes["stream"].replace({"a": "</script><b>x"})
    html = plots.latency_chart(run).to_html(library=False)
    assert "</script><b>" not in html and spec_of(html)["series"][0]["name"] == "</script><b>x"


def test_thinning_keeps_every_spike():
    t = np.arange(0, 600, 0.001)  # 600 000 points
    y = np.full(t.size, 10.0)
    y[[123_456, 400_001]] = [500.0, 900.0]
    y[200_000] = np.nan
    tt, yy = _thin(t, y, 40_000)
    assert tt.size <= 40_100 and 500.0 in yy and 900.0 in yy and np.isnan(yy).sum() == 1
    assert np.all(np.diff(tt) > 0)


def test_mapping_of_runs_is_overlaid_with_names_and_static_twin_matches():
    run = spiky_run()
    c = plots.latency_chart({"before": run, "after": run}, kind="line")
    assert [s["name"] for s in c.spec["series"]] == ["before: a", "before: b", "after: a",
                                                     "after: b"]
    # one colour per run (flent's comparison), the streams of a run told apart by dashes
    colors = [s["color"] for s in c.spec["series"]]
    assert colors[0] == colors[1] != colors[2] == colors[3]
    assert [s.get("dash", []) for s in c.spec["series"]][:2] == [[], [7, 3]]
    assert c.spec["title"] == "before vs after" and c.spec["subtitle"].endswith("per run")
    fig = c.figure()
    assert [ln.get_label() for ln in fig.axes[0].lines if (ln.get_gid() or "").startswith(
        "stream:")] == ["before: a", "before: b", "after: a", "after: b"]


def test_save_writes_a_standalone_offline_page(tmp_path):
    c = plots.latency_chart(spiky_run())
    path = c.save(tmp_path / "chart.html")
    page = path.read_text()
    assert page.startswith("<!DOCTYPE html>") and "window.qoslabChart" in page
    assert qoslab.report.fetched_urls(page, remote_only=True) == []
    with pytest.raises(qoslab.outputs.OutputExistsError):
        c.save(path)
    with pytest.raises(ConfigError, match="html"):
        c.save(tmp_path / "chart.png")


def test_notebook_display_is_the_chart():
    c = plots.latency_chart(spiky_run())
    bundle = c._repr_mimebundle_()
    assert "qoslab-chart-wrap" in bundle["text/html"]
    assert "1198 points" in bundle["text/plain"]  # scatter: 2 x 600 minus the two lost probes


def test_x_axis_of_a_run_from_zero_never_starts_below_zero():
    spec = plots.latency_chart(spiky_run()).spec
    assert spec["x_range"][0] == 0.0 and spec["x_range"][1] > 119.8
    # a first probe sent 40 us before time 0 (flent: reply time minus RTT): no margin below
    # it, the axis reads "0.00", not "-1.20"
    run = spiky_run()
    early = run.probes.assign(t_sent=run.probes["t_sent"] - 4e-5)
    assert plots.latency_chart(early).spec["x_range"][0] == pytest.approx(-4e-5)
    late = run.probes.assign(t_sent=run.probes["t_sent"] - 5.0)  # really before 0: padded
    assert plots.latency_chart(late).spec["x_range"][0] < -5.0


def test_a_replay_says_time_in_the_qdisc_not_rtt():
    run = spiky_run()
    replay = Run(run.probes, run.events, {"source": "replay", "tc": "sfq limit 127 perturb 3",
                                          "link": {"rate": 200e3}, "profile": "classic-2.6.3x"})
    spec = plots.latency_chart(replay).spec
    assert spec["ylabel"] == "time in the qdisc (ms)"
    assert spec["subtitle"] == "time in the qdisc of 2 flows against arrival time"
    assert spec["title"] == "replay: sfq limit 127 perturb 3 at 200kbit, profile classic-2.6.3x"
    assert plots.latency(replay).axes[0].get_ylabel() == "time in the qdisc (ms)"


def test_overlaid_runs_with_the_same_hash_changes_draw_each_change_once():
    run = spiky_run()
    (ev,) = plots.latency_chart({"old": run, "new": run}).spec["events"]
    assert len(ev["t"]) == 11 and ev["label"] == "hash change (perturb) (11)"
